"""Scores (DESIGN.md, Metrics): ARMSE, GAIN's pooled RMSE, XGBoost accuracy, diversity.

Arrays are in original units with categorical columns as integer codes (imputed categoricals
already decoded to the nearest valid category), except :func:`gain_rmse`, which works on the
[0, 1] scale of the complete data as GAIN's reference code does.
"""
from __future__ import annotations

import numpy as np

from metagain.schema import Schema


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
