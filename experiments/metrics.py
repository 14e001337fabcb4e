"""Scores (docs/DESIGN.md, Metrics): ARMSE, GAIN's pooled RMSE, XGBoost accuracy, and the scores of
multiple-imputation draws (diversity, interval coverage, CRPS, Brier score).

Arrays are in original units with categorical columns as integer codes (imputed categoricals
already decoded to the nearest valid category), except :func:`gain_rmse` and :func:`diversity`,
which work on the [0, 1] scale of the complete data as GAIN's reference code does.

Draw scores (:func:`draw_scores`) take draws of shape ``(n_draws, rows, d)``; the per-entry
scores (:func:`crps_ensemble`, :func:`brier_ensemble`, :func:`interval_covered`) take draws of
shape ``(n_draws, entries)`` and the truth ``(entries,)``.
"""
from __future__ import annotations

import numpy as np

from baselines.schema import Schema


def feature_errors(X_true, X_imp, hidden, schema: Schema, ranges) -> np.ndarray:
    """Per-feature error on hidden entries; NaN for features with no hidden entry.

    numeric → RMSE / range (range = max − min of the complete column); nominal → error rate;
    ordinal → mean |shift| / number of categories (HI-VAE's ``error_computation``).
    """
    X_true, X_imp, hidden = np.asarray(X_true, float), np.asarray(X_imp, float), np.asarray(hidden, bool)
    errors = np.full(X_true.shape[1], np.nan)
    for j, kind in enumerate(schema.kinds):
        rows = hidden[:, j]
        if not rows.any():
            continue
        diff = X_imp[rows, j] - X_true[rows, j]
        if kind == "numeric":
            span = ranges[j] if ranges[j] > 0 else 1.0
            errors[j] = np.sqrt(np.mean(diff ** 2)) / span
        elif kind == "nominal":
            errors[j] = np.mean(np.rint(X_imp[rows, j]) != X_true[rows, j])
        else:
            errors[j] = np.mean(np.abs(diff)) / schema.n_categories[j]
    return errors


def armse(X_true, X_imp, hidden, schema: Schema, ranges) -> float:
    """Unweighted mean of :func:`feature_errors` over features with a hidden entry."""
    errors = feature_errors(X_true, X_imp, hidden, schema, ranges)
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def gain_rmse(X_true01, X_imp01, hidden) -> float:
    """GAIN's RMSE: all hidden entries pooled, on the complete data's [0, 1] scale."""
    hidden = np.asarray(hidden, bool)
    if not hidden.any():
        return float("nan")
    diff = (np.asarray(X_imp01, float) - np.asarray(X_true01, float))[hidden]
    return float(np.sqrt(np.mean(diff ** 2)))


def xgb_accuracy(X_train, y_train, X_test, y_test, params: dict, seed: int = 0, threads: int = 1) -> float:
    """Accuracy of one fixed XGBoost classifier trained on ``X_train`` and scored on ``X_test``."""
    from xgboost import XGBClassifier

    classes = np.unique(y_train)
    remap = {c: i for i, c in enumerate(classes)}  # XGBoost wants labels 0..K-1 present in training
    y_fit = np.array([remap[c] for c in y_train])
    model = XGBClassifier(**params, random_state=int(seed), n_jobs=int(threads), verbosity=0)
    model.fit(X_train, y_fit)
    predicted = classes[np.asarray(model.predict(X_test), dtype=int)]
    return float(np.mean(predicted == np.asarray(y_test)))


def diversity(draws01: np.ndarray, hidden) -> float:
    """Mean over hidden entries of the standard deviation across draws (on [0, 1] scale)."""
    hidden = np.asarray(hidden, bool)
    if not hidden.any():
        return float("nan")
    return float(np.std(np.asarray(draws01, float), axis=0)[hidden].mean())


# ---------------------------------------------------------------------------- draws (multiple imputation)
def interval_nominal(n_draws: int, k: int = 1) -> float:
    """Nominal level ``(n + 1 − 2k) / (n + 1)`` of the interval between order statistics ``k`` and
    ``n + 1 − k`` of ``n`` draws.

    Under a calibrated model the truth and the ``n`` draws are exchangeable, so the truth's rank
    among the ``n + 1`` values is uniform on ``1..n+1`` (ties aside): it falls below the ``k``-th
    draw with probability ``k / (n + 1)`` and above the ``(n + 1 − k)``-th with the same
    probability. The level is exact for every ``n``: 10 draws, ``k = 1`` → [min, max], 9/11.
    NaN when ``n < 2k`` (no interval).
    """
    n, k = int(n_draws), int(k)
    if k < 1 or n < 2 * k:
        return float("nan")
    return (n + 1 - 2 * k) / (n + 1)


def interval_covered(draws, truth, k: int = 1) -> np.ndarray:
    """Per entry: does ``truth`` lie in ``[x_(k), x_(n+1−k)]`` of its draws (closed interval)?

    ``draws`` ``(n, entries)``, ``truth`` ``(entries,)``. The interval is closed, so on discrete
    columns (ordinal codes) a truth equal to an end point counts as covered and the coverage of a
    calibrated model is at least :func:`interval_nominal` rather than equal to it.
    """
    draws, truth = np.sort(np.asarray(draws, float), axis=0), np.asarray(truth, float)
    n = draws.shape[0]
    if int(k) < 1 or n < 2 * int(k):
        raise ValueError(f"An interval between order statistics k={k} and n+1-k needs n >= 2k draws; got {n}.")
    return (draws[int(k) - 1] <= truth) & (truth <= draws[n - int(k)])


def crps_ensemble(draws, truth) -> np.ndarray:
    """Per-entry CRPS of the empirical distribution of the draws, in the energy form

    ``CRPS(F, y) = E|X − y| − ½ E|X − X′|``, ``X, X′ ~ F`` independent,

    with ``F`` the empirical distribution of the ``n`` draws (both expectations over all ``n``
    and ``n²`` pairs, so a single repeated draw scores its absolute error). Gneiting & Raftery
    (2007), "Strictly proper scoring rules, prediction, and estimation", JASA 102(477), eq. 21
    (there positively oriented, i.e. the negative of this; here lower is better, 0 only for a
    point mass at the truth). Same units as the data. ``draws`` ``(n, entries)``.
    """
    draws, truth = np.sort(np.asarray(draws, float), axis=0), np.asarray(truth, float)
    n = draws.shape[0]
    spread_to_truth = np.mean(np.abs(draws - truth), axis=0)
    # sum_{i,j} |x_i - x_j| = 2 sum_i (2i - n - 1) x_(i) over the sorted draws (i = 1..n)
    weights = (2 * np.arange(1, n + 1) - n - 1).astype(float)
    pair_mean = 2.0 * np.tensordot(weights, draws, axes=(0, 0)) / n ** 2
    return spread_to_truth - 0.5 * pair_mean


def brier_ensemble(codes, truth, n_categories: int) -> np.ndarray:
    """Per-entry multi-category Brier score of the draws' category frequencies:
    ``Σ_c (p_c − 1[y = c])²`` over the ``K`` categories, ``p_c`` the share of draws with code ``c``.

    Brier (1950), "Verification of forecasts expressed in terms of probability", Monthly Weather
    Review 78(1); Gneiting & Raftery (2007), JASA, §3 (the quadratic score; there positively
    oriented). 0 for all draws on the truth, 2 for all draws on one wrong category, ``(K−1)/K``
    for uniform frequencies. ``codes`` ``(n, entries)`` integer codes in ``0..K−1``.
    """
    codes, truth = np.asarray(codes), np.asarray(truth)
    categories = np.arange(int(n_categories))
    freq = (codes[..., None] == categories).mean(axis=0)          # (entries, K)
    onehot = (truth[:, None] == categories).astype(float)
    return ((freq - onehot) ** 2).sum(axis=1)


def majority_vote(codes, n_categories: int) -> np.ndarray:
    """Most frequent code over the draws (axis 0) per entry; a tie goes to the lowest code."""
    codes = np.asarray(codes)
    counts = (codes[..., None] == np.arange(int(n_categories))).sum(axis=0)
    return np.argmax(counts, axis=-1).astype(float)


def draw_scores(draws, X_true, hidden, schema: Schema, ranges, k: int = 1, ranked=None) -> dict:
    """Coverage, CRPS and Brier score of draws ``(n, rows, d)`` over the hidden entries.

    Draws and truth in original units, categoricals as integer codes. Scores are pooled over
    hidden entries (each entry weighs the same), not averaged per feature as ARMSE is:

    * ``coverage``: share of hidden numeric and ordinal entries inside the draws' interval
      between order statistics ``k`` and ``n+1−k`` (:func:`interval_covered`), beside its
      ``coverage_nominal`` level (:func:`interval_nominal`);
    * ``crps``: mean :func:`crps_ensemble` over hidden numeric and ordinal entries, numeric ones
      divided by the column's range (as ARMSE's RMSE is) and ordinal ones by the number of
      categories (as ARMSE's ordinal shift is), so columns are on comparable scales;
    * ``brier``: mean :func:`brier_ensemble` over hidden nominal entries.

    Each is NaN when it has no hidden entry to score.

    ``ranked``, when given, is ``(draws, X_true)`` under a per-column increasing map (the scaled
    values the imputer produced and the truth scaled the same way): coverage, which depends
    only on the order of truth and draws, is computed there. The scorer passes it because a
    draw equal to the truth (a donor value, an integer-valued column) stays bitwise equal in the
    imputer's units but may land an ulp off after the inverse scaling, and a closed interval's
    end point is exactly where that matters.
    """
    draws, X_true, hidden = np.asarray(draws, float), np.asarray(X_true, float), np.asarray(hidden, bool)
    order_draws, order_truth = (draws, X_true) if ranked is None else (np.asarray(r, float) for r in ranked)
    n = draws.shape[0]
    covered, crps, brier = [], [], []
    for j, kind in enumerate(schema.kinds):
        rows = hidden[:, j]
        if not rows.any():
            continue
        d, y = draws[:, rows, j], X_true[rows, j]
        if kind == "nominal":
            brier.append(brier_ensemble(np.rint(d).astype(int), y.astype(int), schema.n_categories[j]))
            continue
        span = (ranges[j] if ranges[j] > 0 else 1.0) if kind == "numeric" else schema.n_categories[j]
        crps.append(crps_ensemble(d, y) / span)
        if n >= 2 * int(k):
            covered.append(interval_covered(order_draws[:, rows, j], order_truth[rows, j], k))

    def pooled(parts):
        return float(np.concatenate(parts).mean()) if parts else float("nan")

    return {"coverage": pooled(covered), "coverage_nominal": interval_nominal(n, k),
            "crps": pooled(crps), "brier": pooled(brier)}
