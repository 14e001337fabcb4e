"""Scoring one cell: imputer output (scaled) → original units → ARMSE, RMSE, accuracy, draw scores.

Everything here is pure given ``prepared`` (what :func:`experiments.runner.prepare_cell`
returns: the complete dataset, the split, the hidden mask, the scaler). ``SCORE_VERSION``
names the numbers this module and the code it relies on (``metrics``, ``masks``, ``split``,
``data``'s encoding and scaling) produce: it enters every cell key and every cache key, so
bump it whenever a change could move a score (``tests/test_versions.py`` enforces that).
"""
from __future__ import annotations

import numpy as np

from experiments import metrics
from experiments.data import Dataset

# 1: first version. 2: categoricals decoded once (1 decoded them twice: every code >= 1 of a
# column with k > 2 categories became the top one) and observed entries copied back from the data.
SCORE_VERSION = "2"


def unit_scale(X: np.ndarray, dataset: Dataset) -> np.ndarray:
    """``X`` (original units) on the complete data's [0, 1] scale: GAIN's RMSE scale, mask inputs."""
    lo, hi = dataset.X.min(0), dataset.X.max(0)
    return (X - lo) / np.where(hi > lo, hi - lo, 1.0)


def complete_unit_scale(dataset: Dataset) -> np.ndarray:
    """The complete data on [0, 1] by its own min/max."""
    return unit_scale(dataset.X, dataset)


def decode(X_scaled: np.ndarray, prepared: dict, rows: np.ndarray) -> np.ndarray:
    """Imputer output for ``rows`` → original units; works on ``(rows, d)`` and ``(draws, rows, d)``.

    Numeric columns go through the scaler's inverse; categorical columns are snapped to the
    nearest valid code straight from the scaled value (``Schema.to_codes``); every observed
    entry is copied back from the data, so a score never depends on a float round trip.
    """
    dataset = prepared["dataset"]
    schema = dataset.schema
    X = prepared["scaler"].inverse(np.asarray(X_scaled, dtype=float))
    cat = schema.is_categorical
    if cat.any():
        X[..., cat] = schema.to_codes(X_scaled)[..., cat]
    observed = ~prepared["hidden"][rows]
    return np.where(observed, dataset.X[rows], X)


def score(imputed_scaled: dict, prepared: dict, cfg: dict) -> dict:
    """ARMSE and GAIN's RMSE on train and test rows, XGBoost accuracy, Complete accuracy."""
    ds, hidden = prepared["dataset"], prepared["hidden"]
    out = {}
    imputed = {part: decode(x, prepared, prepared[f"{part}_idx"]) for part, x in imputed_scaled.items()}
    for part in ("train", "test"):
        rows = prepared[f"{part}_idx"]
        out[f"metric_armse_{part}"] = metrics.armse(ds.X[rows], imputed[part], hidden[rows], ds.schema, ds.ranges)
        out[f"metric_rmse_{part}"] = metrics.gain_rmse(prepared["X_true01"][rows], unit_scale(imputed[part], ds),
                                                       hidden[rows])
    tr, te = prepared["train_idx"], prepared["test_idx"]
    out["metric_accuracy"] = metrics.xgb_accuracy(imputed["train"], ds.y[tr], imputed["test"], ds.y[te],
                                                  dict(cfg["classifier"]), int(cfg["seed"]),
                                                  int(cfg.get("threads", 1)))
    out["metric_realised_ratio"] = float(hidden.mean())
    return out


def mean_draw(draws_scaled: np.ndarray, decoded: np.ndarray, prepared: dict, rows: np.ndarray) -> np.ndarray:
    """The pooled point imputation of the draws, in original units (categoricals as codes).

    Numeric columns: the mean of the draws (the pooling of Rubin's rules, and the Bayes act for
    the squared error that ARMSE's RMSE scores). Ordinal columns: the mean of the scaled draws
    snapped to the nearest code (a rounded mean code; codes are ordered, so a mean is defined).
    Nominal columns: the majority vote over the draws' codes, ties to the lowest code. Not the
    snapped mean: nominal codes are labels in sorted order, not quantities, so the mean of
    "blue" (0) and "red" (2) would be "green" (1), a category no draw proposed and one that moves
    if the categories are renamed; the most frequent category is invariant to the coding and is
    the Bayes act for the 0-1 loss that ARMSE's nominal error rate scores.
    """
    schema = prepared["dataset"].schema
    out = decode(np.asarray(draws_scaled, dtype=float).mean(axis=0), prepared, rows)
    for j in np.flatnonzero(schema.is_nominal):
        out[:, j] = metrics.majority_vote(decoded[:, :, j], schema.n_categories[j])
    observed = ~prepared["hidden"][rows]
    return np.where(observed, prepared["dataset"].X[rows], out)


def score_draws(draws_scaled: np.ndarray, prepared: dict) -> dict:
    """Scores of multiple-imputation draws ``(n_draws, test rows, d)`` on the hidden test entries.

    * ``metric_diversity_std``: mean per-entry std over draws, on the complete data's [0, 1] scale;
    * ``metric_armse_mean_draw``: ARMSE of the pooled point imputation (:func:`mean_draw`);
    * ``metric_coverage`` / ``metric_coverage_nominal``: share of hidden numeric and ordinal
      entries inside [min, max] of the draws, beside that interval's exact nominal level
      ``(n − 1)/(n + 1)`` for ``n`` exchangeable draws (:func:`metrics.interval_nominal`);
    * ``metric_crps``: CRPS of the draws on hidden numeric (÷ range) and ordinal (÷ categories)
      entries (:func:`metrics.crps_ensemble`);
    * ``metric_brier``: multi-category Brier score of the draws' category frequencies on hidden
      nominal entries (:func:`metrics.brier_ensemble`); NaN without a hidden nominal entry.
    """
    ds, te = prepared["dataset"], prepared["test_idx"]
    hidden = prepared["hidden"][te]
    decoded = decode(draws_scaled, prepared, te)  # (n_draws, rows, d), categoricals as codes
    pooled = mean_draw(draws_scaled, decoded, prepared, te)
    # Coverage compares truth and draws in the imputer's (scaled) units, where a draw equal to the
    # truth is bitwise equal; numeric only: categorical codes are exact after decoding.
    numeric, scaler = ds.schema.is_numeric, prepared["scaler"]
    ranked = (np.where(numeric, np.asarray(draws_scaled, dtype=float), decoded),
              np.where(numeric, scaler.transform(ds.X[te]), ds.X[te]))
    spread = metrics.draw_scores(decoded, ds.X[te], hidden, ds.schema, ds.ranges, ranked=ranked)
    return {
        "metric_diversity_std": metrics.diversity(unit_scale(decoded, ds), hidden),
        "metric_armse_mean_draw": metrics.armse(ds.X[te], pooled, hidden, ds.schema, ds.ranges),
        "metric_coverage": spread["coverage"],
        "metric_coverage_nominal": spread["coverage_nominal"],
        "metric_crps": spread["crps"],
        "metric_brier": spread["brier"],
    }


def downstream_references(prepared: dict, cfg: dict) -> dict:
    """Table 4's references that need no imputer, on the same split, mask and classifier.

    * ``metric_accuracy_native``: XGBoost trained and tested on the data with its holes (its
      native missing-value handling: each split learns a default direction for missing values;
      Chen & Guestrin 2016, "XGBoost", §3.4 sparsity-aware split finding);
    * ``metric_accuracy_indicator``: mean imputation (the mode for categorical columns, from the
      observed training values) plus one 0/1 missing-indicator column per feature that has a
      hidden entry (the "missing indicator" method; e.g. Little & Rubin 2019, §3.4).
    """
    ds, hidden = prepared["dataset"], prepared["hidden"]
    tr, te = prepared["train_idx"], prepared["test_idx"]
    classifier, seed, threads = dict(cfg["classifier"]), int(cfg["seed"]), int(cfg.get("threads", 1))
    holes = np.where(hidden, np.nan, ds.X)
    fill = np.nanmean(holes[tr], axis=0)
    for j in np.flatnonzero(ds.schema.is_categorical):
        observed = holes[tr, j][~np.isnan(holes[tr, j])].astype(int)
        fill[j] = np.argmax(np.bincount(observed, minlength=ds.schema.n_categories[j]))
    indicated = np.flatnonzero(hidden.any(axis=0))
    with_indicators = np.hstack([np.where(hidden, fill, ds.X), hidden[:, indicated].astype(float)])
    y = ds.y
    return {
        "metric_accuracy_native": metrics.xgb_accuracy(holes[tr], y[tr], holes[te], y[te], classifier, seed, threads),
        "metric_accuracy_indicator": metrics.xgb_accuracy(with_indicators[tr], y[tr], with_indicators[te], y[te],
                                                          classifier, seed, threads),
    }
