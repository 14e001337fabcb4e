"""Corruption: which entries are hidden (docs/DESIGN.md, Corruption). Written for this project.

``make_mask(X, mechanism, ratio, rng, **params)`` returns a boolean ``hidden`` array (True =
hidden) for complete data ``X`` scaled to [0, 1]. ``ratio`` is the share of ALL feature entries
hidden. The logistic mechanisms follow Muzellec et al. 2020 ("Missing data imputation using
optimal transport", reference code BorisMuzellec/MissingDataOT, ``utils.py``): Gaussian weights
normalised by the spread of the linear score, one intercept per column found by bisection so the
column's mean missing probability equals its target rate.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)
MECHANISMS = ("mcar", "mar", "mnar", "mnar_self", "mnar_quantile")
MAX_COLUMN_RATE = 0.9  # MAR: above this per-column rate the logistic fit no longer lands on ratio


class MaskError(ValueError):
    """A mask cannot be drawn as asked (bad ratio, infeasible mechanism, empty column)."""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _fit_intercepts(scores: np.ndarray, rate: float) -> np.ndarray:
    """Per column, the intercept b with mean(sigmoid(score + b)) = rate (bisection)."""
    intercepts = np.empty(scores.shape[1])
    for j in range(scores.shape[1]):
        lo, hi = -50.0, 50.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if _sigmoid(scores[:, j] + mid).mean() > rate:
                hi = mid
            else:
                lo = mid
        intercepts[j] = 0.5 * (lo + hi)
    return intercepts


def _logistic_weights(inputs: np.ndarray, n_out: int, rng) -> np.ndarray:
    """Gaussian weights, each output's score scaled to unit standard deviation (Muzellec)."""
    weights = rng.standard_normal((inputs.shape[1], n_out))
    spread = (inputs @ weights).std(axis=0)
    return weights / np.where(spread > 0, spread, 1.0)


def _logistic_hidden(inputs: np.ndarray, n_out: int, rate: float, rng) -> np.ndarray:
    weights = _logistic_weights(inputs, n_out, rng)
    scores = inputs @ weights
    probs = _sigmoid(scores + _fit_intercepts(scores, rate))
    return rng.random(probs.shape) < probs


def mar_limit(n_features: int, p_obs: float = 0.3) -> float:
    """The largest overall ratio logistic MAR reaches when a ``p_obs`` share stays observed."""
    n_obs = max(int(p_obs * n_features), 1)
    return MAX_COLUMN_RATE * (n_features - n_obs) / n_features


def mcar(X, ratio, rng):
    return rng.random(X.shape) < ratio


def mar(X, ratio, rng, p_obs: float = 0.3):
    """Logistic MAR: a ``p_obs`` share of columns stays observed and drives the others' holes.

    The other columns' rate is raised to ``ratio * d / d_na`` so the overall share is ``ratio``
    (Muzellec's version hides only ``ratio * (1 - p_obs)`` overall).
    """
    n, d = X.shape
    if d < 2:
        raise MaskError("MAR needs at least two columns (one observed to drive the other).")
    n_obs = max(int(p_obs * d), 1)
    limit = mar_limit(d, p_obs)
    if ratio > limit:
        raise MaskError(
            f"MAR with p_obs={p_obs} keeps {n_obs} of {d} columns fully observed, so it can hide at "
            f"most {limit:.3f} of all entries; ratio={ratio} is beyond that limit. Use a smaller ratio, "
            "a smaller mechanism.p_obs, or MCAR/MNAR."
        )
    observed_cols = rng.choice(d, size=n_obs, replace=False)
    target_cols = np.setdiff1d(np.arange(d), observed_cols)
    hidden = np.zeros((n, d), dtype=bool)
    hidden[:, target_cols] = _logistic_hidden(X[:, observed_cols], target_cols.size,
                                               ratio * d / target_cols.size, rng)
    return hidden


def mnar(X, ratio, rng, p_params: float = 0.3):
    """Muzellec's "MNAR logistic": inputs of the logistic model are themselves masked MCAR."""
    n, d = X.shape
    if d < 2:
        raise MaskError("MNAR logistic needs at least two columns.")
    n_inputs = max(int(p_params * d), 1)
    input_cols = rng.choice(d, size=n_inputs, replace=False)
    target_cols = np.setdiff1d(np.arange(d), input_cols)
    hidden = np.zeros((n, d), dtype=bool)
    hidden[:, target_cols] = _logistic_hidden(X[:, input_cols], target_cols.size, ratio, rng)
    hidden[:, input_cols] = rng.random((n, n_inputs)) < ratio
    return hidden


def mnar_self(X, ratio, rng):
    """Self-masked logistic MNAR: each column's holes depend on its own values only."""
    n, d = X.shape
    hidden = np.zeros((n, d), dtype=bool)
    for j in range(d):
        hidden[:, j] = _logistic_hidden(X[:, [j]], 1, ratio, rng)[:, 0]
    return hidden


def mnar_quantile(X, ratio, rng, cut: str = "upper"):
    """Quantile censoring: in every column hide the ``ratio`` share of largest (``upper``),
    smallest (``lower``) or most extreme on both sides (``both``) values; ties broken at random."""
    if cut not in ("upper", "lower", "both"):
        raise MaskError(f"Unknown quantile cut {cut!r}; use 'upper', 'lower' or 'both'.")
    n, d = X.shape
    k = int(round(ratio * n))
    hidden = np.zeros((n, d), dtype=bool)
    for j in range(d):
        jitter = rng.random(n) * 1e-9
        col = X[:, j]
        if cut == "both":
            col = np.abs(col - np.median(col))
        elif cut == "lower":
            col = -col
        order = np.lexsort((jitter, col))
        hidden[order[n - k:], j] = True
    return hidden


_FUNCTIONS = {"mcar": mcar, "mar": mar, "mnar": mnar, "mnar_self": mnar_self, "mnar_quantile": mnar_quantile}


def make_mask(X: np.ndarray, mechanism: str, ratio: float, rng, **params) -> np.ndarray:
    """Boolean mask of hidden entries of complete ``X`` (scaled to [0, 1]).

    Raises :class:`MaskError` for an unknown mechanism, a ratio outside (0, 1), or a ratio
    beyond the mechanism's limit.
    """
    if mechanism not in _FUNCTIONS:
        raise MaskError(f"Unknown missingness mechanism {mechanism!r}; use one of {list(MECHANISMS)}.")
    if not 0.0 < float(ratio) < 1.0:
        raise MaskError(f"ratio must lie strictly between 0 and 1 (a share of entries), got {ratio}.")
    rng = np.random.default_rng(rng)
    return _FUNCTIONS[mechanism](np.asarray(X, dtype=float), float(ratio), rng, **params)


def tolerance(n_entries: int, ratio: float) -> float:
    """Allowed gap between realised and asked ratio: 0.02 or 4 binomial SDs, whichever is larger."""
    return max(0.02, 4.0 * np.sqrt(ratio * (1 - ratio) / n_entries))


def draw_mask(X, mechanism, ratio, seed, train_idx, max_redraws: int = 10, **params) -> np.ndarray:
    """A mask that leaves every column at least one observed training value.

    Redraws with derived seeds (logged) up to ``max_redraws`` times, then fails clearly.
    """
    for attempt in range(max_redraws + 1):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), attempt, 0x3A5C]))
        hidden = make_mask(X, mechanism, ratio, rng, **params)
        empty = np.flatnonzero(hidden[train_idx].all(axis=0))
        if empty.size == 0:
            return hidden
        log.warning("Mask attempt %d left columns %s without an observed training value; redrawing.",
                    attempt, empty.tolist())
    raise MaskError(
        f"After {max_redraws} redraws, columns {empty.tolist()} still have no observed training value "
        f"under {mechanism} at ratio {ratio}. Lower the ratio or use a dataset with more rows."
    )
