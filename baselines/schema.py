"""Column schema shared by the runner and every imputer.

A :class:`Schema` tells an imputer which columns are numeric and which are categorical
(nominal or ordinal), and how many categories each categorical column has. Imputers see
every column scaled to [0, 1]; a categorical column with ``k`` categories encoded
``0..k-1`` is scaled as ``code / (k - 1)``, so its valid values are the ``k`` points
``0, 1/(k-1), ..., 1``. :meth:`Schema.to_codes` and :meth:`Schema.from_codes` convert
between the two, and :meth:`Schema.snap` moves any value to the nearest valid category.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KINDS = ("numeric", "nominal", "ordinal")


@dataclass(frozen=True)
class Schema:
    """Per-column kinds and category counts.

    Parameters
    ----------
    kinds : tuple of str
        ``"numeric"``, ``"nominal"`` or ``"ordinal"`` for every column.
    n_categories : tuple of int
        Number of categories of each categorical column; 0 for numeric columns.
    names : tuple of str, optional
        Column names, for messages and reports.
    """

    kinds: tuple[str, ...]
    n_categories: tuple[int, ...]
    names: tuple[str, ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "n_categories", tuple(int(k) for k in self.n_categories))
        object.__setattr__(self, "names", tuple(self.names))
        if len(self.kinds) != len(self.n_categories):
            raise ValueError(
                f"Schema has {len(self.kinds)} kinds but {len(self.n_categories)} category counts; "
                "give one of each per column."
            )
        if self.names and len(self.names) != len(self.kinds):
            raise ValueError(f"Schema has {len(self.kinds)} kinds but {len(self.names)} names.")
        for j, (kind, k) in enumerate(zip(self.kinds, self.n_categories)):
            if kind not in KINDS:
                raise ValueError(f"Column {j} has unknown kind {kind!r}; use one of {KINDS}.")
            if kind == "numeric" and k != 0:
                raise ValueError(f"Numeric column {j} must have n_categories 0, got {k}.")
            if kind != "numeric" and k < 1:
                raise ValueError(f"Categorical column {j} needs at least one category, got {k}.")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def all_numeric(cls, n_features: int) -> "Schema":
        """Schema of ``n_features`` numeric columns (what an imputer assumes without one)."""
        return cls(kinds=("numeric",) * n_features, n_categories=(0,) * n_features)

    # ------------------------------------------------------------------ views
    @property
    def n_features(self) -> int:
        return len(self.kinds)

    @property
    def is_categorical(self) -> np.ndarray:
        """Boolean mask of nominal or ordinal columns."""
        return np.array([k != "numeric" for k in self.kinds], dtype=bool)

    @property
    def is_numeric(self) -> np.ndarray:
        return ~self.is_categorical

    @property
    def is_nominal(self) -> np.ndarray:
        return np.array([k == "nominal" for k in self.kinds], dtype=bool)

    @property
    def is_ordinal(self) -> np.ndarray:
        return np.array([k == "ordinal" for k in self.kinds], dtype=bool)

    def check_width(self, n_features: int) -> None:
        """Raise a clear error when the data width does not match the schema."""
        if n_features != self.n_features:
            raise ValueError(
                f"The data has {n_features} columns but the schema describes {self.n_features}; "
                "pass the schema of this dataset."
            )

    # ------------------------------------------------------------------ encodings
    def code_steps(self) -> np.ndarray:
        """Scale step per column: ``k - 1`` for categoricals (at least 1), 1 for numerics."""
        return np.array([max(k - 1, 1) if kind != "numeric" else 1
                         for kind, k in zip(self.kinds, self.n_categories)], dtype=float)

    def to_codes(self, X: np.ndarray) -> np.ndarray:
        """Integer category codes of the categorical columns of scaled ``X`` (NaN stays NaN).

        Numeric columns are returned unchanged; categorical values are rounded to the nearest
        valid code and clipped to ``0..k-1``.
        """
        X = np.asarray(X, dtype=float)
        out = X.copy()
        cat = self.is_categorical
        if cat.any():
            steps = self.code_steps()[cat]
            upper = np.array(self.n_categories, dtype=float)[cat] - 1
            codes = np.clip(np.rint(X[..., cat] * steps), 0, upper)
            out[..., cat] = np.where(np.isnan(X[..., cat]), np.nan, codes)
        return out

    def from_codes(self, X_codes: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_codes`: scale the integer codes of categoricals to [0, 1]."""
        X = np.asarray(X_codes, dtype=float).copy()
        cat = self.is_categorical
        if cat.any():
            X[..., cat] = X[..., cat] / self.code_steps()[cat]
        return X

    def snap(self, X: np.ndarray) -> np.ndarray:
        """Move every categorical value of scaled ``X`` to the nearest valid category."""
        return self.from_codes(self.to_codes(X))
