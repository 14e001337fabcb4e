"""Hydra entry point: one cell, or a sweep with ``-m``.

    python -m experiments.run dataset=letter mechanism=mar ratio=0.2 imputer=missfi seed=0
    python -m experiments.run -m dataset=wine,heart mechanism=mcar,mar imputer=mean,knni hydra/launcher=joblib
    python -m experiments.run -m +sweep=table1 hydra/launcher=submitit_slurm
"""
from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from experiments.config import register_schema
from experiments.runner import CellError, run_cell

register_schema()
log = logging.getLogger("experiments.run")


def explicit_imputer_keys() -> frozenset:
    """Imputer arguments given on the command line (``imputer.epochs=5``): they beat the profile."""
    try:
        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return frozenset()
    keys = set()
    for item in overrides:
        name = item.split("=", 1)[0].lstrip("+~")
        if name.startswith("imputer."):
            keys.add(name.split(".", 1)[1].split(".")[0])
    return frozenset(keys)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    try:
        row = run_cell(cfg, explicit=explicit_imputer_keys())
    except CellError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    metrics = {k: row.get(k) for k in ("metric_armse_test", "metric_armse_train", "metric_rmse_test",
                                       "metric_accuracy", "metric_accuracy_complete")}
    print(f"[{row['status']}] {row['dataset']} {row['mechanism']} r={row['ratio']} {row['imputer']} "
          f"seed={row['seed']} profile={row['profile']} "
          + " ".join(f"{k.removeprefix('metric_')}={v:.4f}" for k, v in metrics.items() if v is not None)
          + (f" error={row['error']}" if row.get("error") else ""))
    return row.get("metric_armse_test")


if __name__ == "__main__":
    main()
