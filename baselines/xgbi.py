"""XGBI: chained-equation imputation with XGBoost models (Chen & Guestrin 2016, KDD).

The paper's XGBI row cites only XGBoost itself, so the loop is scikit-learn's
``IterativeImputer`` (``sklearn/impute/_iterative.py``) with one XGBoost model per column:

1. fill every hole with the column mean (numeric) or mode (categorical);
2. visit the columns from fewest to most missing values (IterativeImputer's ``ascending``
   order); for each, fit a model on the rows that observe it, predicting it from all other
   columns as currently filled, and overwrite its holes with the model's predictions;
3. repeat for at most ``max_iter`` rounds, stopping early when the largest absolute row sum
   of the change between two rounds falls below ``tol`` times the largest observed
   magnitude (IterativeImputer's rule, same defaults: ``max_iter=10``, ``tol=1e-3``).

Numeric columns use ``XGBRegressor``; categorical columns use ``XGBClassifier`` on their
integer codes, so their imputations are always valid categories. The models of every round
are kept and ``transform`` replays them on new rows from the same initial fill, exactly as
IterativeImputer's ``transform`` does; nothing is refit. Like IterativeImputer
(``skip_complete=False``) every column gets a model, including columns complete in the
training rows, so a new row with a hole anywhere can be imputed.

XGBoost runs at its library defaults (learning rate 0.3, depth 6, ``hist`` trees, no
subsampling) except ``n_estimators``, one thread per model, on the CPU: thousands of tiny
fits gain nothing from a GPU.
"""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from baselines.mean import column_fill_values
from metagain.base import BaseImputer


class _Constant:
    """Stands in for a classifier when the training rows observe a single category."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, X):
        return np.full(X.shape[0], self.value)


class _CategoryModel:
    """An ``XGBClassifier`` on re-indexed codes (XGBoost needs labels 0..C-1, all present)."""

    def __init__(self, classifier, categories: np.ndarray, step: float):
        self.classifier = classifier
        self.categories = categories  # observed integer codes, sorted
        self.step = step              # scaled value = code / step

    def predict(self, X):
        return self.categories[self.classifier.predict(X).astype(int)] / self.step


def change_norm(new: np.ndarray, old: np.ndarray) -> float:
    """IterativeImputer's convergence measure: the largest absolute row sum of ``new - old``."""
    return float(np.abs(new - old).sum(axis=1).max())


class XGBImputer(BaseImputer):
    """Iterative imputation with one XGBoost regressor/classifier per column.

    Parameters
    ----------
    n_estimators : int, default=100
        Boosting rounds of every model (XGBoost's own default).
    max_iter : int, default=10
        Most imputation rounds (IterativeImputer's default).
    tol : float, default=1e-3
        Early-stopping tolerance, relative to the largest observed magnitude
        (IterativeImputer's default).
    n_jobs : int, default=1
        Threads per XGBoost model.
    random_state : int or None
        Seed of every XGBoost model.
    verbose : bool, default=False
        Show a progress bar over the rounds.

    Attributes
    ----------
    rounds_ : list of list of (int, model)
        For each round, the column visited and the model that imputed it, in visiting order.
    n_iter_ : int
        Number of rounds run.
    info_ : dict
        ``{"n_iter": n_iter_}`` for the result row.
    """

    def __init__(self, n_estimators: int = 100, max_iter: int = 10, tol: float = 1e-3,
                 n_jobs: int = 1, random_state=None, verbose: bool = False):
        self.n_estimators = n_estimators
        self.max_iter = max_iter
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ models
    def _xgb_params(self) -> dict:
        return dict(n_estimators=int(self.n_estimators), n_jobs=int(self.n_jobs),
                    random_state=self.random_state, verbosity=0)

    def _fit_column(self, features: np.ndarray, target: np.ndarray, j: int):
        from xgboost import XGBClassifier, XGBRegressor

        schema = self.schema_
        if not schema.is_categorical[j]:
            return XGBRegressor(**self._xgb_params()).fit(features, target)
        k = schema.n_categories[j]
        step = max(k - 1, 1)
        codes = np.rint(target * step).astype(int)
        categories, labels = np.unique(codes, return_inverse=True)
        if categories.size == 1:
            return _Constant(categories[0] / step)
        classifier = XGBClassifier(**self._xgb_params()).fit(features, labels)
        return _CategoryModel(classifier, categories, step)

    # ------------------------------------------------------------------ fit / transform
    def _fit(self, X, y, schema):
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}.")
        n_features = X.shape[1]
        missing = np.isnan(X)
        self.fill_values_ = column_fill_values(X, schema)
        self.order_ = np.argsort(missing.sum(axis=0), kind="stable")
        self.rounds_ = []
        if n_features == 1:  # nothing to predict from: the initial fill is the imputation
            self.n_iter_ = 0
            self.info_ = {"n_iter": 0}
            return
        filled = np.where(missing, self.fill_values_, X)
        previous = filled.copy()
        tolerance = float(self.tol) * np.max(np.abs(X[~missing]))
        for _ in tqdm(range(int(self.max_iter)), desc="XGBI rounds", disable=not self.verbose):
            models = []
            for j in self.order_:
                others = np.arange(n_features) != j
                observed = ~missing[:, j]
                model = self._fit_column(filled[observed][:, others], X[observed, j], j)
                if missing[:, j].any():
                    filled[missing[:, j], j] = model.predict(filled[missing[:, j]][:, others])
                models.append((int(j), model))
            self.rounds_.append(models)
            if change_norm(filled, previous) < tolerance:
                break
            previous = filled.copy()
        self.n_iter_ = len(self.rounds_)
        self.info_ = {"n_iter": self.n_iter_}

    def _transform(self, X):
        missing = np.isnan(X)
        filled = np.where(missing, self.fill_values_, X)
        n_features = X.shape[1]
        for models in self.rounds_:
            for j, model in models:
                if missing[:, j].any():
                    others = np.arange(n_features) != j
                    filled[missing[:, j], j] = model.predict(filled[missing[:, j]][:, others])
        return filled
