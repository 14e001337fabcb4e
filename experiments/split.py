"""Stratified train/test split by seed (docs/DESIGN.md, Split).

Meta-GAIN carves its meta set from the training rows itself (:mod:`metagain.meta_set`): the
pipeline only splits.
"""
from __future__ import annotations

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(y, test_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx): ``round(test_size·count)`` test rows from every class.

    A class with a single row stays in training, so every class the test set holds is also
    in the training rows.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}.")
    y = np.asarray(y)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5F17]))
    test = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        n_test = min(int(round(test_size * rows.size)), rows.size - 1)
        if n_test > 0:
            test.append(rng.choice(rows, size=n_test, replace=False))
    test_idx = np.sort(np.concatenate(test)) if test else np.array([], dtype=int)
    if test_idx.size == 0:
        raise ValueError("The split left no test row; the dataset is too small to score out of sample.")
    return np.setdiff1d(np.arange(y.size), test_idx), test_idx
