"""KNNI: k-nearest-neighbour imputation (Troyanskaya et al. 2001, Bioinformatics 17(6)).

The paper's KNNI row. Numeric columns are imputed by scikit-learn's ``KNNImputer``: the
uniform mean of the ``n_neighbors`` nearest training rows that observe the column, with the
``nan_euclidean`` distance computed over the coordinates both rows observe. For a
categorical column a mean of codes is not a category (the mean of codes 0, 0, 2 snaps to 1,
which no neighbour has), so here the same neighbours *vote*: the imputed category is the
neighbours' mode, ties going to the category of the nearest tied neighbour. The donor rule
is scikit-learn's own, repeated in :func:`_neighbour_vote` (same distances, same
``argpartition``, a NaN distance gets weight 0), and a test checks both pick the same donors.

Training rows are the only donors: ``transform`` imputes new rows against the rows seen in
``fit``. A row never donates to itself, since a row is a donor for a column only where it
observes that column.

The vote's distances are scikit-learn's ``nan_euclidean_distances``, computed by
:class:`_NanEuclidean` with the same floating-point operations in the same order (so the same
bits, and the same ``argpartition`` ties), but with the donor-side arrays prepared once per
``transform`` rather than once per block, and the count of shared coordinates as a float matrix
product (scikit-learn multiplies an int64 by a boolean matrix, which no BLAS does: about a
third of an all-categorical ``transform`` such as connect's). A test keeps the distances
bit-identical to scikit-learn's and the votes identical to those of the version before this
change.
"""
from __future__ import annotations

import numpy as np
from sklearn.impute import KNNImputer as _SklearnKNNImputer
from sklearn.utils.extmath import row_norms

from baselines.mean import column_fill_values
from baselines._base import BaseImputer

_WEIGHTS = ("uniform", "distance")
_CATEGORICAL = ("mode", "mean")
# Receivers per distance block: keeps a block of the (receivers x training rows) distance
# matrix near 32 MB however large the training set is (as pairwise_distances_chunked does).
_BLOCK_ENTRIES = 1 << 22


def _donor_weights(distances: np.ndarray, weights: str) -> np.ndarray:
    """Weights of the chosen donors, as scikit-learn's ``_get_weights`` gives them; NaN → 0."""
    if weights == "uniform":
        w = np.ones_like(distances)
    else:
        with np.errstate(divide="ignore"):
            w = 1.0 / distances
        exact = np.isinf(w)
        exact_rows = exact.any(axis=1)
        # A donor at distance 0 takes all the weight of its receiver's vote.
        w[exact_rows] = exact[exact_rows]
    w[np.isnan(w)] = 0.0
    return w


def _neighbour_vote(distances: np.ndarray, donor_codes: np.ndarray, n_neighbors: int,
                    n_categories: int, weights: str) -> np.ndarray:
    """Weighted mode of each receiver's ``n_neighbors`` nearest donors.

    ``distances`` is (receivers, donors) with NaN where two rows share no observed
    coordinate; ``donor_codes`` the donors' integer categories. Returns one code per receiver.
    """
    k = min(n_neighbors, distances.shape[1])
    nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]            # (r, k), as sklearn
    nearest_dist = np.take_along_axis(distances, nearest, axis=1)          # (r, k)
    w = _donor_weights(nearest_dist, weights)                              # (r, k)
    codes = donor_codes[nearest]                                           # (r, k)
    onehot = codes[:, :, None] == np.arange(n_categories)                  # (r, k, K)
    votes = (onehot * w[:, :, None]).sum(axis=1)                           # (r, K)
    is_top = np.isclose(votes, votes.max(axis=1, keepdims=True))           # (r, K)
    # Tie-break: walk the donors from nearest to farthest and take the first top category.
    by_distance = np.argsort(nearest_dist, axis=1)                         # NaN sorts last
    codes_by_distance = np.take_along_axis(codes, by_distance, axis=1)     # (r, k)
    top_in_order = np.take_along_axis(is_top, codes_by_distance, axis=1)   # (r, k)
    first = np.argmax(top_in_order, axis=1)
    return codes_by_distance[np.arange(len(first)), first]


class _NanEuclidean:
    """scikit-learn's ``nan_euclidean_distances(X, donors)``, bit for bit, for many blocks of ``X``.

    The steps of ``sklearn/metrics/pairwise.py::nan_euclidean_distances`` (and of
    ``_euclidean_distances`` inside it) in their order, on the same operands: holes set to 0;
    ``-2 X·Dᵀ + |x|² + |d|²`` clipped at 0; minus the squares of each side at the other side's
    holes; divided by the number of coordinates both rows observe (NaN where none) and
    multiplied by the number of columns; square root. Only two things differ, neither in the
    result: the donor side (zero-filled rows, their squares and squared norms, hole mask) is
    prepared once (its hole mask as 0/1 floats, which is what numpy casts the boolean mask to),
    and the count of shared coordinates is a float BLAS product of 0/1 matrices, exact (integers
    far below 2**53) where scikit-learn's int64 x bool product runs without BLAS.
    """

    def __init__(self, donors: np.ndarray):
        missing = np.isnan(donors)
        self.filled = np.where(missing, 0.0, donors)
        self.squares = self.filled * self.filled
        self.norms = row_norms(self.filled, squared=True)[None, :]
        self.missing = missing.astype(float)   # numpy casts the boolean mask so anyway
        self.present = 1.0 - self.missing

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, no_common)``: (rows of X, donors), and where two rows share no coordinate."""
        missing = np.isnan(X)
        X = np.where(missing, 0.0, X)
        distances = -2 * (X @ self.filled.T)
        distances += row_norms(X, squared=True)[:, None]
        distances += self.norms
        np.maximum(distances, 0, out=distances)
        distances -= np.dot(X * X, self.missing.T)
        distances -= np.dot(missing.astype(float), self.squares.T)
        np.clip(distances, 0, None, out=distances)
        present_count = np.dot(1.0 - missing, self.present.T)
        no_common = present_count == 0
        distances[no_common] = np.nan
        np.maximum(1, present_count, out=present_count)
        distances /= present_count
        distances *= X.shape[1]
        np.sqrt(distances, out=distances)
        return distances, no_common


class KNNImputer(BaseImputer):
    # version 1 kept on purpose: the vote's distances are computed faster but bit-identically
    # (tests: same distances as scikit-learn, same output as before on fixed inputs).
    """k-NN imputation against the training rows (scikit-learn ``KNNImputer`` + categorical vote).

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of donors per imputed entry (scikit-learn's default).
    weights : {"uniform", "distance"}, default="uniform"
        Donor weights, as in scikit-learn: equal, or inverse to the distance.
    categorical : {"mode", "mean"}, default="mode"
        How a categorical column is imputed: the donors' (weighted) mode, or scikit-learn's
        mean of the scaled codes (which the runner later snaps to the nearest category).

    Attributes
    ----------
    knn_ : sklearn.impute.KNNImputer
        The fitted scikit-learn imputer (holds the training rows as donors).
    fill_values_ : ndarray of shape (n_features,)
        Column mean / mode of the training rows: the categorical fallback for a row that
        shares no observed coordinate with any donor (scikit-learn uses the mean there).
    """

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", categorical: str = "mode"):
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.categorical = categorical

    def _fit(self, X, y, schema):
        if int(self.n_neighbors) < 1:
            raise ValueError(f"n_neighbors must be at least 1, got {self.n_neighbors}.")
        if self.weights not in _WEIGHTS:
            raise ValueError(f"weights must be one of {_WEIGHTS}, got {self.weights!r}.")
        if self.categorical not in _CATEGORICAL:
            raise ValueError(f"categorical must be one of {_CATEGORICAL}, got {self.categorical!r}.")
        self.knn_ = _SklearnKNNImputer(n_neighbors=int(self.n_neighbors), weights=self.weights,
                                       metric="nan_euclidean").fit(X)
        self.fit_X_ = X.copy()
        self.fit_codes_ = schema.to_codes(X)
        self.fill_values_ = column_fill_values(X, schema)

    def _transform(self, X):
        missing = np.isnan(X)
        voting = self.schema_.is_categorical & (self.categorical == "mode")
        # scikit-learn's pass is only needed where some averaged column has a hole (on an
        # all-categorical dataset it would compute every distance for nothing).
        out = self.knn_.transform(X) if missing[:, ~voting].any() else X.copy()
        voted = [int(j) for j in np.flatnonzero(voting) if missing[:, j].any()]
        if voted:
            self._vote_categoricals(X, out, voted)
        return out

    def _vote_categoricals(self, X, out, columns):
        """Overwrite ``out``'s holes in the categorical ``columns`` with the donors' mode."""
        missing = np.isnan(X)
        receivers = np.flatnonzero(missing[:, columns].any(axis=1))
        donors_of = {j: np.flatnonzero(~np.isnan(self.fit_X_[:, j])) for j in columns}
        distance = _NanEuclidean(self.fit_X_)
        block = max(1, _BLOCK_ENTRIES // max(1, self.fit_X_.shape[0]))
        for start in range(0, len(receivers), block):
            rows = receivers[start:start + block]
            distances, no_common = distance(X[rows])                          # (block, n_fit)
            some_gap = no_common.any(axis=1)    # rows with a NaN distance to some training row
            for j in columns:
                takers = np.flatnonzero(missing[rows, j])
                if takers.size == 0:
                    continue
                donors = donors_of[j]
                # = distances[np.ix_(takers, donors)], the same C-ordered copy, twice as fast
                dist = np.take(np.take(distances, takers, axis=0), donors, axis=1)
                # a receiver shares no coordinate with any donor: all its distances are NaN
                no_overlap = np.zeros(takers.size, dtype=bool)
                gap = some_gap[takers]
                if gap.any():
                    no_overlap[gap] = np.take(no_common[takers[gap]], donors, axis=1).all(axis=1)
                values = np.full(takers.size, self.fill_values_[j])
                if (~no_overlap).any():
                    k = self.schema_.n_categories[j]
                    voters = dist[~no_overlap] if no_overlap.any() else dist    # no needless copy
                    codes = _neighbour_vote(voters, self.fit_codes_[donors, j].astype(int),
                                            int(self.n_neighbors), k, self.weights)
                    values[~no_overlap] = codes / max(k - 1, 1)
                out[rows[takers], j] = values
