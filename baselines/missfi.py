"""MissFI: MissForest (Stekhoven & Bühlmann 2012, Bioinformatics 28(1)).

Iterative imputation with one random forest per column, as the reference R package runs it
(stekhoven/missForest, ``R/missForest.R``):

1. fill every hole with the column mean (numeric) or mode (categorical);
2. visit the columns that have holes in increasing amount of missingness; for each, grow a
   forest on the rows that observe it (predictors: all other columns as currently filled)
   and overwrite its holes with the forest's predictions;
3. after each sweep measure the change from the previous imputation, per variable type —
   numeric: ``sum((new - old)^2) / sum(new^2)`` over the numeric columns; categorical: the
   share of categorical entries that changed — and stop as soon as no type's change
   decreased (:func:`missforest_should_stop`), returning the *previous* imputation; or stop
   after ``max_iter`` sweeps, returning the last one.

Defaults are missForest's: ``max_iter=10``, ``ntree=100``, ``mtry=floor(sqrt(p))`` with
``p`` the number of columns, bootstrap samples of full size (``replace=TRUE``; scikit-learn
cannot subsample without replacement, so R's ``replace=FALSE`` is not offered), and
missForest's node sizes (1
for regression, 5 for classification). randomForest (``src/regTree.c``) keeps a node of at
most ``nodesize`` rows as a leaf, which is scikit-learn's ``min_samples_split = nodesize + 1``.

Differences from R, all forced by scikit-learn: splits on categorical *predictors* treat
their codes as ordered numbers (randomForest splits on category subsets); a classification
forest predicts by averaging tree probabilities rather than by majority vote; ties of the
initial mode go to the lowest code rather than to a random category.

Training rows. ``transform`` of the very matrix given to ``fit`` (same shape, same values, same
holes) returns the imputation ``fit`` accepted, which is what the R package returns for it
(``ximp``) and what missForest's paper scores; it is not swept again.

New rows. The R package imputes only the matrix it is given. Here the forests of the
accepted sweep are kept, and ``transform`` fills new rows with the training mean/mode and
then sweeps those fixed forests over them under the same stopping rule (at most
``max_iter`` sweeps); nothing is refit. A column complete in the training rows has no forest
from the loop, so it gets one, grown once on the accepted imputation, for new rows with a
hole there. Keeping forests costs memory: two sweeps' forests are alive at once during
``fit`` (the previous sweep may be the one accepted).
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from baselines.mean import column_fill_values
from baselines._base import BaseImputer


def missforest_differences(new: np.ndarray, old: np.ndarray, categorical: np.ndarray) -> np.ndarray:
    """Change between two imputations as missForest measures it: ``[numeric, categorical]``.

    Numeric: ``sum((new - old)^2) / sum(new^2)`` over all entries of the numeric columns;
    categorical: the share of categorical entries (rows x categorical columns) that differ.
    A type with no column gets NaN, which the stopping rule ignores.
    """
    numeric = ~categorical
    out = np.full(2, np.nan)
    if numeric.any():
        denominator = np.sum(new[:, numeric] ** 2)
        change = np.sum((new[:, numeric] - old[:, numeric]) ** 2)
        out[0] = change / denominator if denominator > 0 else 0.0
    if categorical.any():
        out[1] = np.mean(new[:, categorical] != old[:, categorical])
    return out


def missforest_should_stop(new: np.ndarray, old: np.ndarray) -> bool:
    """missForest's stopping rule: stop once no variable type's difference decreased.

    ``new`` and ``old`` are ``[numeric, categorical]`` differences of the last two sweeps
    (NaN for an absent type). R's loop goes on while ``new < old`` for any present type
    (``stopCriterion`` in ``R/missForest.R``), so an equal difference also stops it.
    """
    present = ~np.isnan(new)
    return not bool(np.any(new[present] < old[present]))


def same_matrix(X: np.ndarray, reference: np.ndarray | None) -> bool:
    """Whether ``X`` is the matrix ``reference`` again: same shape, values and NaN holes."""
    return reference is not None and X.shape == reference.shape and np.array_equal(X, reference, equal_nan=True)


class MissForestImputer(BaseImputer):
    """MissForest: iterative random-forest imputation for mixed-type data.

    Parameters
    ----------
    max_iter : int, default=10
        Most sweeps over the columns (missForest's ``maxiter``).
    ntree : int, default=100
        Trees per forest (missForest's ``ntree``).
    mtry : int or None, default=None
        Columns tried at each split; ``None`` gives ``floor(sqrt(p))`` (missForest's default).
    nodesize_numeric, nodesize_categorical : int, default=1, 5
        Largest node kept as a leaf for regression / classification forests (missForest's
        ``nodesize`` defaults).
    n_jobs : int, default=1
        Threads per forest.
    random_state : int or None
        Seed of the stream of per-forest seeds.
    verbose : bool, default=False
        Show a progress bar over the sweeps.

    Attributes
    ----------
    forests_ : list of (int, estimator)
        The accepted sweep's forests in visiting order, then forests of training-complete columns.
    n_iter_ : int
        Sweeps run during ``fit``.
    accepted_iter_ : int
        The sweep whose imputation (and forests) was accepted.
    differences_ : ndarray of shape (n_iter_, 2)
        ``[numeric, categorical]`` difference after each sweep.
    info_ : dict
        ``{"n_iter": ..., "accepted_iter": ...}`` for the result row.
    fit_X_, fit_imputation_ : ndarray of shape (n_samples, n_features)
        The training matrix and the imputation ``fit`` accepted for it, which ``transform``
        returns when given that matrix again.
    """

    # Version 2: transform of the training matrix returns fit's accepted imputation (missForest's
    # own output) instead of sweeping the kept forests over it again from the mean/mode fill;
    # the training rows' scores (metric_armse_train, and the accuracy of a classifier trained on
    # them) change, and the re-sweep's cost (~9 % of MissFI's CPU) is gone.
    version = "2"

    def __init__(self, max_iter: int = 10, ntree: int = 100, mtry: int | None = None,
                 nodesize_numeric: int = 1, nodesize_categorical: int = 5, n_jobs: int = 1, random_state=None, verbose: bool = False):
        self.max_iter = max_iter
        self.ntree = ntree
        self.mtry = mtry
        self.nodesize_numeric = nodesize_numeric
        self.nodesize_categorical = nodesize_categorical
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ forests
    def _grow(self, features: np.ndarray, target: np.ndarray, j: int, rng: np.random.Generator):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        n_features = self.n_features_in_
        mtry = int(np.floor(np.sqrt(n_features))) if self.mtry is None else int(self.mtry)
        mtry = min(max(mtry, 1), features.shape[1])
        common = dict(n_estimators=int(self.ntree), max_features=mtry, bootstrap=True,
                      n_jobs=int(self.n_jobs), random_state=int(rng.integers(2**31 - 1)))
        if self.schema_.is_categorical[j]:
            step = max(self.schema_.n_categories[j] - 1, 1)
            codes = np.rint(target * step).astype(int)
            forest = RandomForestClassifier(min_samples_split=int(self.nodesize_categorical) + 1, **common)
            return _CategoricalForest(forest.fit(features, codes), step)
        forest = RandomForestRegressor(min_samples_split=int(self.nodesize_numeric) + 1, **common)
        return forest.fit(features, target)

    def _sweep(self, filled, missing, forests):
        """One pass of fixed ``forests`` over the holes of ``filled`` (in place)."""
        n_features = filled.shape[1]
        for j, forest in forests:
            holes = missing[:, j]
            if holes.any():
                others = np.arange(n_features) != j
                filled[holes, j] = forest.predict(filled[holes][:, others])

    # ------------------------------------------------------------------ fit / transform
    def _fit(self, X, y, schema):
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}.")
        if int(self.ntree) < 1:
            raise ValueError(f"ntree must be at least 1, got {self.ntree}.")
        rng = np.random.default_rng(self.random_state)
        n_features = X.shape[1]
        missing = np.isnan(X)
        categorical = schema.is_categorical
        self.fill_values_ = column_fill_values(X, schema)
        counts = missing.sum(axis=0)
        order = [int(j) for j in np.argsort(counts, kind="stable") if counts[j] > 0]
        self.forests_, self.differences_ = [], np.empty((0, 2))
        self.n_iter_ = self.accepted_iter_ = 0
        self.fit_X_ = X.copy()
        filled = np.where(missing, self.fill_values_, X)
        if n_features == 1:  # nothing to predict from: the initial fill is the imputation
            self.fit_imputation_ = filled
            self.info_ = {"n_iter": 0, "accepted_iter": 0}
            return

        previous_forests, previous_diff = [], np.full(2, np.inf)
        differences = []
        bar = tqdm(total=int(self.max_iter), desc="MissForest sweeps", disable=not self.verbose)
        while True:
            before = filled.copy()
            forests = []
            for j in order:
                others = np.arange(n_features) != j
                observed = ~missing[:, j]
                forest = self._grow(filled[observed][:, others], X[observed, j], j, rng)
                filled[missing[:, j], j] = forest.predict(filled[missing[:, j]][:, others])
                forests.append((j, forest))
            differences.append(missforest_differences(filled, before, categorical))
            bar.update()
            sweep = len(differences)
            if sweep == int(self.max_iter):
                accepted, accepted_forests, accepted_sweep = filled, forests, sweep
                break
            if sweep > 1 and missforest_should_stop(differences[-1], previous_diff):
                accepted, accepted_forests, accepted_sweep = before, previous_forests, sweep - 1
                break
            previous_forests, previous_diff = forests, differences[-1]
        bar.close()

        # Columns complete in training still need a forest for new rows with holes there.
        for j in range(n_features):
            if counts[j] == 0:
                others = np.arange(n_features) != j
                accepted_forests.append((j, self._grow(accepted[:, others], X[:, j], j, rng)))
        self.forests_ = accepted_forests
        self.fit_imputation_ = accepted
        self.n_iter_, self.accepted_iter_ = len(differences), accepted_sweep
        self.differences_ = np.array(differences)
        self.info_ = {"n_iter": self.n_iter_, "accepted_iter": self.accepted_iter_}

    def _transform(self, X):
        if same_matrix(X, getattr(self, "fit_X_", None)):
            return self.fit_imputation_.copy()
        return self._impute(X)

    def _impute(self, X):
        """Fill ``X`` with the training mean/mode and sweep the kept forests over it."""
        missing = np.isnan(X)
        filled = np.where(missing, self.fill_values_, X)
        if not self.forests_ or not missing.any():
            return filled
        categorical = self.schema_.is_categorical
        previous_diff = np.full(2, np.inf)
        for sweep in range(1, int(self.max_iter) + 1):
            before = filled.copy()
            self._sweep(filled, missing, self.forests_)
            diff = missforest_differences(filled, before, categorical)
            if sweep > 1 and missforest_should_stop(diff, previous_diff):
                return before
            previous_diff = diff
        return filled


class _CategoricalForest:
    """A classification forest on integer codes that predicts in the scaled units."""

    def __init__(self, forest, step: float):
        self.forest = forest
        self.step = step

    def predict(self, X):
        return self.forest.predict(X) / self.step

    @property
    def n_estimators(self) -> int:
        return len(self.forest.estimators_)
