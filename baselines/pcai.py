"""PCAI: regularised iterative PCA imputation (Josse, Pagès & Husson 2011; Josse & Husson 2012).

The paper's PCAI row, as missMDA's ``imputePCA(method="Regularized")`` computes it
(cran/missMDA ``R/imputePCA.R``), with the number of components chosen by
``estim_ncpPCA(method.cv="gcv")`` (``R/estim_ncpPCA.R``):

1. centre each column by its observed mean, scale it by its (population) standard deviation,
   and put 0 — the mean — in every hole;
2. repeat: write the current reconstruction into the holes, re-centre and re-scale the
   completed matrix, take its SVD and rebuild it from the first ``ncp`` components with each
   singular value shrunk: with ``lambda_s`` the eigenvalues of the completed matrix under row
   weights ``1/n`` (``lambda_s = d_s^2 / n`` for the plain singular values ``d_s``)::

       sigma2 = n p / min(p, n - 1) * sum_{s > ncp} lambda_s / ((n - 1 - ncp) (p - ncp))
       sigma2 = min(coeff_ridge * sigma2, lambda_{ncp + 1})
       d_s  <-  d_s (lambda_s - sigma2) / lambda_s          for s <= ncp

   until the weighted residual on observed entries changes by less than ``threshold``
   relatively (at least 5 passes, at most ``max_iter``). ``coeff_ridge=0`` is plain EM-PCA.

``ncp`` (when not given) is chosen on the training rows by missMDA's GCV rule: for
``q = 0..ncp_max`` the criterion is the mean over observed entries of
``((n p - n_missing) (X - X_hat_q) / ((n - 1) p - n_missing - q (n + p - q - 1)))^2`` with
``X_hat_0`` the column means; the chosen ``q`` is the last before the criterion first
increases, or its minimum if it never does. ``ncp_max=5`` (missMDA's default and docs/DESIGN.md's
cap), and never above ``min(p - 1, n - 2)``. Where a too-large ``q`` leaves no degrees of
freedom (the denominator is not positive, which heavy missingness on few columns can cause)
the criterion is taken as infinite, so the search stops there; R would go on with a
meaningless value.

New rows: the rebuild above is a fixed linear map of the scaled row,
``z -> z V diag(shrink) V^T`` (``V`` the kept loadings), since ``U D = Z V``. ``transform``
scales new rows with the training means and deviations and iterates this map on their holes
with ``V`` and the shrinkage held fixed, from the mean, until the largest change is below
``threshold`` (at most ``max_iter`` passes).

Categorical columns are treated as numeric codes (their scaled ``code / (k - 1)`` values);
the runner snaps the imputations to the nearest category. A constant column has standard
deviation 0 and is left unscaled (R would divide by zero).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from baselines._base import BaseImputer

_MIN_PASSES = 5  # imputePCA checks its stopping rule only from the fifth pass on


@dataclass
class PCAFit:
    """What one regularised iterative PCA run leaves: the completed matrix and the model."""

    completed: np.ndarray      # (n, p) training rows with holes filled, original units
    reconstruction: np.ndarray  # (n, p) the low-rank fit of every entry, original units
    mean: np.ndarray           # (p,) column means of the completed matrix
    std: np.ndarray            # (p,) column standard deviations used for scaling
    loadings: np.ndarray       # (p, ncp) the kept right singular vectors
    shrink: np.ndarray         # (ncp,) (lambda_s - sigma2) / lambda_s
    n_iter: int


def _standardise(completed: np.ndarray, scale: bool):
    mean = completed.mean(axis=0)
    centred = completed - mean
    std = np.sqrt((centred ** 2).mean(axis=0)) if scale else np.ones(completed.shape[1])
    std = np.where(std > 0, std, 1.0)
    return centred / std, mean, std


def regularized_pca(X: np.ndarray, ncp: int, *, scale: bool = True, coeff_ridge: float = 1.0,
                    threshold: float = 1e-6, max_iter: int = 1000) -> PCAFit:
    """Regularised iterative PCA of ``X`` (NaN = missing) with ``ncp`` components.

    Follows missMDA's ``imputePCA(method="Regularized")`` with uniform row weights;
    ``ncp=0`` gives mean imputation.
    """
    n, p = X.shape
    missing = np.isnan(X)
    mean = np.nanmean(X, axis=0)
    completed = np.where(missing, mean, X)
    Z, mean, std = _standardise(completed, scale)
    if ncp == 0:
        return PCAFit(completed, np.broadcast_to(mean, X.shape).copy(), mean, std,
                      np.zeros((p, 0)), np.zeros(0), 0)
    fitted = Z.copy()
    old_objective, n_iter = np.inf, 0
    loadings = shrink = None
    while True:
        Z = np.where(missing, fitted, Z)
        completed = Z * std + mean
        Z, mean, std = _standardise(completed, scale)
        U, d, Vt = np.linalg.svd(Z, full_matrices=False)       # Z (n, p) = U diag(d) Vt
        eigenvalues = d ** 2 / n                                 # row weights 1/n
        sigma2 = (n * p / min(p, n - 1) * eigenvalues[ncp:].sum()
                  / ((n - 1) * p - (n - 1) * ncp - p * ncp + ncp ** 2))
        sigma2 = min(sigma2 * coeff_ridge, eigenvalues[ncp])
        kept = eigenvalues[:ncp]
        # An axis of zero variance (rank-deficient data) contributes nothing: shrink it to 0.
        shrink = np.divide(kept - sigma2, kept, out=np.zeros(ncp), where=kept > 0)
        loadings = Vt[:ncp].T                                   # (p, ncp)
        fitted = (U[:, :ncp] * (d[:ncp] * shrink)) @ Vt[:ncp]   # (n, p)
        objective = np.sum(np.where(missing, 0.0, Z - fitted) ** 2) / n
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 is R's NaN: not a stop
            criterion = abs(1 - objective / old_objective) if np.isfinite(old_objective) else 1.0
        old_objective = objective
        n_iter += 1
        if n_iter >= _MIN_PASSES and (criterion < threshold or objective < threshold):
            break
        if n_iter >= max_iter:
            break
    completed = np.where(missing, fitted * std + mean, X)
    return PCAFit(completed, fitted * std + mean, mean, std, loadings, shrink, n_iter)


def gcv_criteria(X: np.ndarray, ncp_max: int = 5, *, scale: bool = True, coeff_ridge: float = 1.0,
                 threshold: float = 1e-6, max_iter: int = 1000, stop_at_increase: bool = True,
                 on_step=None) -> list[float]:
    """missMDA's GCV criterion for ``ncp = 0, 1, ...`` (``estim_ncpPCA``, ``method.cv="gcv"``).

    With ``stop_at_increase`` the search stops at the first increase, which is all
    :func:`choose_ncp` needs, so larger models are not fit for nothing. ``on_step`` (if given)
    is called after each candidate, for a progress bar.
    """
    n, p = X.shape
    observed = ~np.isnan(X)
    n_missing = int((~observed).sum())
    ncp_max = max(0, min(int(ncp_max), p - 1, n - 2))
    criteria = [float(np.mean((X - np.nanmean(X, axis=0))[observed] ** 2))]
    for q in range(1, ncp_max + 1):
        denominator = (n - 1) * p - n_missing - q * (n + p - q - 1)
        if denominator <= 0:
            criteria.append(np.inf)
        else:
            rec = regularized_pca(X, q, scale=scale, coeff_ridge=coeff_ridge, threshold=threshold,
                                  max_iter=max_iter).reconstruction
            residual = (n * p - n_missing) * (X - rec)[observed] / denominator
            criteria.append(float(np.mean(residual ** 2)))
        if on_step is not None:
            on_step()
        if stop_at_increase and criteria[-1] > criteria[-2]:
            break
    return criteria


def choose_ncp(criteria) -> int:
    """estim_ncpPCA's choice: the ``ncp`` before the first increase, else the minimiser."""
    steps = np.diff(np.asarray(criteria, dtype=float))
    increases = np.flatnonzero(steps > 0)
    return int(increases[0]) if increases.size else int(np.argmin(criteria))


class PCAImputer(BaseImputer):
    """Regularised iterative PCA imputation (missMDA ``imputePCA``), ncp chosen by GCV.

    Categorical columns are treated as numeric codes (their scaled values); the runner snaps
    the imputed values to the nearest valid category.

    Parameters
    ----------
    ncp : int or None, default=None
        Number of components; ``None`` chooses it on the training rows by missMDA's GCV rule.
    ncp_max : int, default=5
        Largest ``ncp`` the GCV search considers (estim_ncpPCA's ``ncp.max``).
    scale : bool, default=True
        Scale columns to unit variance (imputePCA's ``scale``).
    coeff_ridge : float, default=1.0
        Multiplier of the noise variance subtracted from the kept eigenvalues
        (imputePCA's ``coeff.ridge``); 0 gives EM-PCA.
    threshold : float, default=1e-6
        Relative change of the objective that ends the iterations (imputePCA's ``threshold``).
    max_iter : int, default=1000
        Most iterations of one PCA fit, and of the imputation of new rows (imputePCA's ``maxiter``).
    verbose : bool, default=False
        Show a progress bar over the GCV candidates.

    Attributes
    ----------
    ncp_ : int
        Components used.
    gcv_ : list of float
        GCV criterion for ``ncp = 0, 1, ...`` (up to its first increase); empty when ``ncp`` was given.
    mean_, std_ : ndarray of shape (n_features,)
        Centring and scaling of the completed training matrix.
    loadings_ : ndarray of shape (n_features, ncp_)
        Kept principal axes.
    shrink_ : ndarray of shape (ncp_,)
        Regularised shrinkage of each axis.
    info_ : dict
        ``{"ncp": ncp_, "n_iter": ...}`` for the result row.
    """

    def __init__(self, ncp: int | None = None, ncp_max: int = 5, scale: bool = True,
                 coeff_ridge: float = 1.0, threshold: float = 1e-6, max_iter: int = 1000,
                 verbose: bool = False):
        self.ncp = ncp
        self.ncp_max = ncp_max
        self.scale = scale
        self.coeff_ridge = coeff_ridge
        self.threshold = threshold
        self.max_iter = max_iter
        self.verbose = verbose

    def _fit(self, X, y, schema):
        n, p = X.shape
        largest = max(0, min(p - 1, n - 2))
        options = dict(scale=bool(self.scale), coeff_ridge=float(self.coeff_ridge),
                       threshold=float(self.threshold), max_iter=int(self.max_iter))
        if self.ncp is None:
            with tqdm(total=max(0, min(int(self.ncp_max), largest)), desc="PCAI GCV over ncp",
                      disable=not self.verbose) as bar:
                self.gcv_ = gcv_criteria(X, int(self.ncp_max), on_step=bar.update, **options)
            ncp = choose_ncp(self.gcv_)
        else:
            ncp = int(self.ncp)
            if not 0 <= ncp <= largest:
                raise ValueError(
                    f"ncp={ncp} is out of range for {n} rows and {p} columns; "
                    f"choose 0..{largest} or ncp=None to pick it by GCV."
                )
            self.gcv_ = []
        model = regularized_pca(X, ncp, **options)
        self.ncp_ = ncp
        self.mean_, self.std_ = model.mean, model.std
        self.loadings_, self.shrink_ = model.loadings, model.shrink
        self.n_iter_ = model.n_iter  # scikit-learn's name for the passes an estimator with max_iter made
        self.info_ = {"ncp": ncp, "n_iter": model.n_iter}

    def _transform(self, X):
        missing = np.isnan(X)
        Z = np.where(missing, 0.0, (X - self.mean_) / self.std_)
        if self.ncp_ > 0 and missing.any():
            projector = (self.loadings_ * self.shrink_) @ self.loadings_.T   # (p, p)
            for _ in range(int(self.max_iter)):
                updated = np.where(missing, Z @ projector, Z)
                change = np.max(np.abs(updated - Z))
                Z = updated
                if change < float(self.threshold):
                    break
        return Z * self.std_ + self.mean_
