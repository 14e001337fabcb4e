"""Test doubles: imputers that record what they receive, or fail on purpose."""
from __future__ import annotations

import numpy as np

from baselines._base import BaseImputer, MissingExtraError

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


class OracleImputer(BaseImputer):
    """Returns the truth: a test's yardstick for the scoring path (a perfect imputer scores 0).

    A test sets ``TRUTH`` (the scaled complete data, ``scaler.transform(dataset.X)``) and
    ``MISSING`` (the scaled data with NaN at hidden entries, ``prepared["X_scaled"]``) on the
    class, and optionally ``BLOCKS`` (the index arrays the runner hands out: ``train_idx``,
    ``test_idx``). Each incoming row is looked up in ``MISSING``: same NaN pattern, equal
    observed values. Where several rows match and their truths differ, the order of the block
    narrows it: the runner hands out rows in increasing index order, so the true indices form an
    increasing sequence lying, row by row, between the earliest (greedy from the left) and the
    latest (greedy from the right) increasing choice of candidates. If that window still holds
    different truths, the whole block is compared with ``MISSING[b]`` for each of ``BLOCKS``;
    if none matches, the imputer refuses (AssertionError) rather than guess. ``sample`` returns
    ``n`` copies of the truth. ``SETTLED`` counts rows the order settled, ``BY_BLOCK`` blocks
    the block comparison settled.
    """

    TRUTH: np.ndarray | None = None
    MISSING: np.ndarray | None = None
    BLOCKS: tuple = ()
    SETTLED = 0
    BY_BLOCK = 0

    def __init__(self, random_state=None):
        self.random_state = random_state

    def _fit(self, X, y, schema):
        self.fit_rows_ = self.rows_of(X)

    def _transform(self, X):
        return type(self).TRUTH[self.rows_of(X)]

    def _sample(self, X, n):
        return np.repeat(self._transform(X)[None], n, axis=0)

    @classmethod
    def rows_of(cls, X: np.ndarray) -> np.ndarray:
        """Index in ``MISSING`` of every row of ``X``."""
        missing, truth = cls.MISSING, cls.TRUTH
        assert missing is not None and truth is not None, "set OracleImputer.TRUTH and .MISSING first"
        gaps = np.isnan(X)
        matches = ((gaps[:, None, :] == np.isnan(missing)[None]).all(-1)
                   & (np.where(gaps, 0.0, X)[:, None, :] == np.nan_to_num(missing, nan=0.0)[None]).all(-1))
        candidates = [np.flatnonzero(m) for m in matches]
        unmatched = [r for r, c in enumerate(candidates) if c.size == 0]
        assert not unmatched, f"rows {unmatched[:5]} of the block are not rows of OracleImputer.MISSING"
        earliest, latest = np.empty(len(X), int), np.empty(len(X), int)
        previous = -1
        for r, c in enumerate(candidates):
            later = c[c > previous]
            assert later.size, "the block is not in increasing row order; the oracle cannot place it"
            earliest[r] = previous = later[0]
        following = missing.shape[0]
        for r in range(len(X) - 1, -1, -1):
            c = candidates[r]
            earlier = c[c < following]
            assert earlier.size, "the block is not in increasing row order; the oracle cannot place it"
            latest[r] = following = earlier[-1]
        unsettled = []
        for r, c in enumerate(candidates):
            if c.size > 1 and not (truth[c] == truth[c[0]]).all():
                window = c[(c >= earliest[r]) & (c <= latest[r])]
                if (truth[window] == truth[window[0]]).all():
                    cls.SETTLED += 1
                else:
                    unsettled.append((r, window.tolist()))
        if not unsettled:
            return earliest
        for block in cls.BLOCKS:
            block = np.asarray(block)
            if block.shape == (len(X),) and np.array_equal(missing[block], X, equal_nan=True):
                cls.BY_BLOCK += 1
                return block
        r, window = unsettled[0]
        raise AssertionError(f"row {r} matches rows {window} with different truths and no BLOCKS entry "
                             "matches the block; the oracle cannot tell")
