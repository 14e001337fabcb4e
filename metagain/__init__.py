"""Meta-GAIN (Tong, Zhu & Gan, AAAI 2026) and the imputer contract of the harness."""
from metagain.base import BaseImputer, TrainingDivergedError
from metagain.imputer import MetaGAINImputer
from metagain.schema import Schema

__all__ = ["BaseImputer", "MetaGAINImputer", "Schema", "TrainingDivergedError"]
