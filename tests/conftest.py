"""Shared fixtures: a small mixed-type dataset already scaled the way imputers see it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Two cores: keep every library to one thread so tests do not oversubscribe.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def mixed():
    """(X_complete in [0,1], y as 0..C-1, schema) for 240 rows, 6 features (mixed kinds)."""
    from baselines.schema import Schema

    rng = np.random.default_rng(0)
    n = 240
    latent = rng.normal(size=(n, 2))
    numeric = latent @ np.array([[1.0, 0.5], [-0.7, 1.0], [0.3, -1.2], [1.5, 1.5]]).T
    numeric += 0.2 * rng.normal(size=numeric.shape)
    numeric = (numeric - numeric.min(0)) / (numeric.max(0) - numeric.min(0))
    nominal = np.digitize(latent[:, 0], [-0.5, 0.5]).astype(float)      # 3 categories
    ordinal = np.digitize(latent[:, 1], [-0.8, 0.0, 0.8]).astype(float)  # 4 levels
    schema = Schema(kinds=("numeric",) * 4 + ("nominal", "ordinal"), n_categories=(0,) * 4 + (3, 4))
    X = np.column_stack([numeric, nominal, ordinal])
    X = schema.from_codes(X)
    y = np.where(latent[:, 0] > 0, np.where(latent[:, 1] > 0, 0, 1), 2)
    return X, y, schema


def hide(X: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """MCAR holes for tests (keeps at least one observed value per column)."""
    rng = np.random.default_rng(seed)
    hidden = rng.random(X.shape) < ratio
    hidden[0] = False
    out = X.copy()
    out[hidden] = np.nan
    return out


def quick_armse(dataset: str, imputer: str, results_dir) -> float:
    """Test ARMSE of one quick-profile cell (MCAR 0.2, seed 0), for the slow beats-Mean checks."""
    from experiments.runner import compose_cell, run_cell

    row = run_cell(compose_cell([f"dataset={dataset}", "mechanism=mcar", "ratio=0.2", f"imputer={imputer}",
                                 "profile=quick", "seed=0", f"results_dir={results_dir}"]))
    assert row["status"] == "ok", row.get("error")
    return row["metric_armse_test"]
