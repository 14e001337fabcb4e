"""Meta-GAIN (Tong, Zhu & Gan, AAAI 2026) and the imputer contract of the harness."""
from metagain.base import BaseImputer, TrainingDivergedError
from metagain.schema import Schema

__all__ = ["BaseImputer", "Schema", "TrainingDivergedError"]

try:  # the method itself; present once metagain/imputer.py exists
    from metagain.imputer import MetaGAINImputer  # noqa: F401

    __all__.append("MetaGAINImputer")
except ImportError:  # pragma: no cover - only during bootstrap
    pass
