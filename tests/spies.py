"""Test doubles: imputers that record what they receive, or fail on purpose."""
from __future__ import annotations

import numpy as np

from metagain.base import BaseImputer, MissingExtraError

RECEIVED: list[np.ndarray] = []
DATASETS_SEEN: list[str | None] = []


class SpyImputer(BaseImputer):
    """Column-mean imputer that records every array handed to fit/transform/sample."""

    def __init__(self, random_state=None, shift: float = 0.0, dataset=None):
        self.random_state = random_state
        self.shift = shift
        self.dataset = dataset

    def _fit(self, X, y, schema):
        DATASETS_SEEN.append(self.dataset)
        RECEIVED.append(X.copy())
        self.means_ = np.nanmean(X, axis=0) + self.shift

    def _transform(self, X):
        RECEIVED.append(X.copy())
        return np.where(np.isnan(X), self.means_, X)

    def _sample(self, X, n):
        RECEIVED.append(X.copy())
        rng = np.random.default_rng(self.random_state)
        return np.stack([np.where(np.isnan(X), self.means_ + 0.01 * rng.standard_normal(X.shape), X)
                         for _ in range(n)])


class FailingImputer(BaseImputer):
    def __init__(self, random_state=None):
        self.random_state = random_state

    def _fit(self, X, y, schema):
        raise RuntimeError("boom on purpose")

    def _transform(self, X):  # pragma: no cover
        return X


class MissingExtraImputer(BaseImputer):
    def __init__(self):
        pass

    def _fit(self, X, y, schema):
        raise MissingExtraError("the extra 'nothing' is not installed; run `make setup-nothing`.")

    def _transform(self, X):  # pragma: no cover
        return X


class SlowImputer(BaseImputer):
    """Column means after ``delay`` seconds."""

    def __init__(self, delay: float = 0.5, random_state=None):
        self.delay = delay
        self.random_state = random_state

    def _fit(self, X, y, schema):
        import time

        time.sleep(self.delay)
        self.means_ = np.nanmean(X, axis=0)

    def _transform(self, X):
        return np.where(np.isnan(X), self.means_, X)
