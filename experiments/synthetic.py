"""A small synthetic mixed-type dataset for tests and the ``synthetic`` dataset config.

Numeric columns are noisy linear functions of a 2-D latent factor (so they are correlated and
imputable), one nominal and one ordinal column are thresholded functions of the same factor,
and the class label is the sign pattern of the factor (3 classes).
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_mixed_frame(n_rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Raw (unscaled) DataFrame: 4 numeric, 1 nominal (3 values), 1 ordinal (4 levels), target."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 2))
    loadings = np.array([[1.0, 0.5], [-0.7, 1.0], [0.3, -1.2], [1.5, 1.5]])
    numeric = latent @ loadings.T + 0.2 * rng.normal(size=(n_rows, 4))
    nominal = np.select([latent[:, 0] < -0.5, latent[:, 0] < 0.5], ["red", "green"], "blue")
    ordinal = np.digitize(latent[:, 1] + 0.3 * rng.normal(size=n_rows), [-0.8, 0.0, 0.8]) + 1
    target = np.where(latent[:, 0] > 0, np.where(latent[:, 1] > 0, "a", "b"), "c")
    frame = pd.DataFrame(10 * numeric + 50, columns=["n1", "n2", "n3", "n4"])
    frame["colour"] = nominal
    frame["level"] = ordinal
    frame["target"] = target
    return frame
