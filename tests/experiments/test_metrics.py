"""Metrics on small hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.metrics import armse, diversity, feature_errors, gain_rmse, xgb_accuracy
from experiments.split import carve_meta_set, stratified_split
from metagain.schema import Schema

SCHEMA = Schema(kinds=("numeric", "nominal", "ordinal"), n_categories=(0, 3, 4))


def test_feature_errors_by_kind():
    X_true = np.array([[0.0, 0, 0], [10.0, 1, 3], [5.0, 2, 1]])
    X_imp = np.array([[3.0, 0, 1], [6.0, 2, 3], [5.0, 2, 1]])
    hidden = np.array([[True, False, True], [True, True, False], [False, False, False]])
    ranges = np.array([10.0, 0, 0])
    errors = feature_errors(X_true, X_imp, hidden, SCHEMA, ranges)
    # numeric: RMSE of (3, -4) = sqrt(12.5), / range 10; nominal: 1 wrong of 1; ordinal: |1-0| / 4
    np.testing.assert_allclose(errors, [np.sqrt(12.5) / 10, 1.0, 0.25])
    assert armse(X_true, X_imp, hidden, SCHEMA, ranges) == pytest.approx(np.mean(errors))


def test_features_without_hidden_entries_are_left_out():
    X = np.array([[1.0, 0, 0], [2.0, 1, 1]])
    hidden = np.array([[True, False, False], [False, False, False]])
    assert armse(X, X + 1, hidden, SCHEMA, np.array([2.0, 0, 0])) == pytest.approx(0.5)


def test_gain_rmse_pools_hidden_entries():
    X = np.zeros((2, 2))
    imp = np.array([[0.3, 0.0], [0.0, 0.4]])
    hidden = np.array([[True, False], [False, True]])
    assert gain_rmse(X, imp, hidden) == pytest.approx(np.sqrt((0.09 + 0.16) / 2))


def test_diversity_is_mean_std_over_hidden_entries():
    draws = np.array([[[0.0, 1.0]], [[1.0, 1.0]]])  # 2 draws, 1 row, 2 columns
    assert diversity(draws, np.array([[True, False]])) == pytest.approx(0.5)


def test_xgb_accuracy_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    X = rng.random((200, 3))
    y = (X[:, 0] > 0.5).astype(int) * 2  # labels {0, 2}: remapped for XGBoost
    acc = xgb_accuracy(X[:150], y[:150], X[150:], y[150:], {"n_estimators": 20}, seed=0)
    assert acc > 0.9


def test_stratified_split_and_meta_set():
    y = np.array([0] * 50 + [1] * 30 + [2] * 1)
    train, test = stratified_split(y, 0.2, seed=0)
    assert len(test) == 16 and 80 in train  # singleton class stays in training
    assert np.intersect1d(train, test).size == 0
    kept, meta = carve_meta_set(y[train], 0.1, rng=0)
    counts = np.bincount(y[train][meta], minlength=3)
    np.testing.assert_array_equal(counts, [4, 3, 0])  # ceil(10%) of 40 and 24; singleton out
    with pytest.raises(ValueError, match="meta set is empty"):
        carve_meta_set(np.array([0, 1, 2]), 0.1, rng=0)
