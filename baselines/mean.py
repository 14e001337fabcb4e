"""Mean imputation: the column mean of the observed training values, the mode for categoricals.

The simplest baseline of the paper ("Mean", Table 1). It is also the initial fill of the
iterative baselines (XGBI, MissFI), which import :func:`column_fill_values` from here so that
all three start from the same guess.
"""
from __future__ import annotations

import numpy as np

from baselines._base import BaseImputer
from baselines.schema import Schema


def column_fill_values(X: np.ndarray, schema: Schema) -> np.ndarray:
    """Per-column fill value of ``X`` (NaN = missing), in the scaled units the imputers see.

    Numeric columns get the mean of their observed values; categorical columns (nominal or
    ordinal) get their most frequent observed category, ties going to the lowest code so the
    result never depends on a random draw.
    """
    fill = np.nanmean(X, axis=0)
    categorical = np.flatnonzero(schema.is_categorical)
    if categorical.size:
        codes = schema.to_codes(X)
        for j in categorical:
            observed = codes[~np.isnan(codes[:, j]), j].astype(int)
            counts = np.bincount(observed, minlength=schema.n_categories[j])
            mode = np.zeros(X.shape[1])
            mode[j] = np.argmax(counts)  # argmax takes the first maximum: lowest code wins a tie
            fill[j] = schema.from_codes(mode)[j]
    return fill


class MeanImputer(BaseImputer):
    """Fill each missing entry with its column's mean (numeric) or mode (categorical).

    The statistics come from the observed entries of the rows passed to ``fit`` and are
    reused unchanged by ``transform``, so test rows are filled with training statistics.

    Attributes
    ----------
    fill_values_ : ndarray of shape (n_features,)
        The value written into each column's holes, in the scaled units of ``X``.
    """

    def __init__(self):
        pass

    def _fit(self, X, y, schema):
        self.fill_values_ = column_fill_values(X, schema)

    def _transform(self, X):
        return np.where(np.isnan(X), self.fill_values_, X)
