"""MICE: multiple imputation by chained equations, as scikit-learn's ``IterativeImputer`` runs it.

An extra imputer of the harness (not one of the paper's ten): the standard reference for "how
does my imputer compare". scikit-learn's ``IterativeImputer`` is modelled on the R package
``mice`` (van Buuren & Groothuis-Oudshoorn, "mice: Multivariate Imputation by Chained Equations
in R", J. Stat. Softw. 45(3), 2011): each column with holes is regressed on the others in turn,
round after round. We keep scikit-learn's defaults — ``BayesianRidge`` per column, mean initial
fill, ``max_iter=10``, ``tol=1e-3`` — and its documented route to multiple imputation:
``sample_posterior=True`` draws each imputed value from the Bayesian ridge's predictive
posterior (scikit-learn user guide, "Multiple vs. Single Imputation"). ``transform`` returns the
posterior-mean imputation (``sample_posterior=False``); ``sample`` draws from a second model
fitted with ``sample_posterior=True``. Categorical columns are imputed as numbers on their
``code / (k − 1)`` scale and snapped to the nearest category by the runner, like every imputer.
"""
from __future__ import annotations

import copy

import numpy as np

from baselines._base import BaseImputer


class MICEImputer(BaseImputer):
    """Chained equations with Bayesian ridge regressions (scikit-learn ``IterativeImputer``).

    Parameters
    ----------
    max_iter : int
        Rounds over the columns (scikit-learn's default 10).
    tol : float
        Stop when the largest change of an imputed value falls below ``tol`` × the largest
        observed magnitude (scikit-learn's rule and default 1e-3).
    random_state : int or None
        Seeds the column order's tie-breaks and the posterior draws.
    """

    version = "1"

    def __init__(self, max_iter: int = 10, tol: float = 1e-3, random_state=None):
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _model(self, sample_posterior: bool):
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        return IterativeImputer(max_iter=int(self.max_iter), tol=float(self.tol), sample_posterior=sample_posterior,
                                random_state=self.random_state, keep_empty_features=True)

    def _fit(self, X, y, schema):
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():  # reaching max_iter is the documented default, not a fault
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_ = self._model(False).fit(X)
            self.posterior_ = self._model(True).fit(X)
        self.n_iter_ = self.model_.n_iter_

    def _transform(self, X):
        return self.model_.transform(X)

    def _sample(self, X, n):
        model = copy.deepcopy(self.posterior_)  # every call draws the same n imputations
        return np.stack([model.transform(X) for _ in range(n)])
