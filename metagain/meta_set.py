"""The meta set of Meta-GAIN: ceil(10%) of each class of the training rows (docs/DESIGN.md, Split).

Every class with at least two training rows gives ``ceil(fraction * count)`` rows (so at least
one); a class with a single training row stays out, so the training part keeps every class.
"""
from __future__ import annotations

import math

import numpy as np


def carve_meta_set(y, fraction: float = 0.1, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices into (train_idx, meta_idx), stratified by the labels ``y``.

    Parameters
    ----------
    y : array of shape (n,)
        Class labels of the training rows.
    fraction : float
        Share of each class that goes to the meta set (the paper: 10%).
    rng : numpy Generator, int or None
        Randomness for which rows are chosen.

    Raises
    ------
    ValueError
        If the meta set would be empty (no class has two training rows).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}.")
    y = np.asarray(y)
    rng = np.random.default_rng(rng)
    meta = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        if rows.size < 2:
            continue
        take = min(math.ceil(fraction * rows.size), rows.size - 1)
        meta.append(rng.choice(rows, size=take, replace=False))
    if not meta:
        raise ValueError(
            "The meta set is empty: no class has two or more training rows. "
            "Meta-GAIN needs labelled rows of at least one class with two or more members."
        )
    meta_idx = np.sort(np.concatenate(meta))
    train_idx = np.setdiff1d(np.arange(y.size), meta_idx)
    return train_idx, meta_idx
