"""Structured schema of the top-level config keys, so a typo or a wrong type fails at composition."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class Classifier:
    n_estimators: int = 100
    max_depth: int = 6
    learning_rate: float = 0.3


@dataclass
class CellConfig:
    dataset: Any = None
    mechanism: Any = None
    imputer: Any = None
    profile: Any = None
    sweep: Any = None
    ratio: float = 0.2
    seed: int = 0
    scaling: str = "minmax"
    device: str = "auto"
    threads: int = 1
    verbose: bool = False
    n_draws: int = 10
    force: bool = False
    group: Optional[str] = None  # set by the grouped sweeper: the cells this job trains together
    data_dir: Optional[str] = None
    results_dir: str = "results"
    classifier: Classifier = field(default_factory=Classifier)


def register_schema() -> None:
    ConfigStore.instance().store(name="cell_schema", node=CellConfig)
