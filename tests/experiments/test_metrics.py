"""Metrics on small hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.metrics import (armse, brier_ensemble, crps_ensemble, diversity, draw_scores, feature_errors,
                                 gain_rmse, interval_covered, interval_nominal, majority_vote, xgb_accuracy)
from experiments.split import stratified_split
from metagain.meta_set import carve_meta_set
from baselines.schema import Schema

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


# ---------------------------------------------------------------------------- draw scores
def test_crps_closed_forms():
    # a point mass at the truth: 0; a point mass elsewhere: the absolute error
    assert crps_ensemble(np.full((5, 1), 2.0), np.array([2.0]))[0] == 0.0
    assert crps_ensemble(np.full((5, 1), 2.0), np.array([3.5]))[0] == pytest.approx(1.5)
    # draws {0, 1}, truth 0: E|X - y| = 1/2, E|X - X'| = 1/2 → 1/2 - 1/4
    assert crps_ensemble(np.array([[0.0], [1.0]]), np.array([0.0]))[0] == pytest.approx(0.25)
    # n draws uniform on a grid of [0, 1], truth u: → u² - u + 1/3 (the CRPS of U(0, 1)) as n grows
    grid = (np.arange(2000)[:, None] + 0.5) / 2000
    u = np.array([0.0, 0.3, 1.0])
    np.testing.assert_allclose(crps_ensemble(np.broadcast_to(grid, (2000, 3)), u), u ** 2 - u + 1 / 3, atol=1e-6)


def test_crps_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    draws, truth = rng.normal(size=(7, 4)), rng.normal(size=4)
    brute = (np.abs(draws - truth).mean(0)
             - 0.5 * np.abs(draws[:, None, :] - draws[None, :, :]).mean(axis=(0, 1)))
    np.testing.assert_allclose(crps_ensemble(draws, truth), brute, rtol=1e-12)


def test_brier_closed_forms():
    truth = np.array([0, 2])
    assert brier_ensemble(np.array([[0, 2]] * 4), truth, 3).tolist() == [0.0, 0.0]  # all draws right
    assert brier_ensemble(np.array([[1, 1]] * 4), truth, 3).tolist() == [2.0, 2.0]  # all on one wrong
    for K in (2, 3, 5):  # uniform frequencies over K categories: (K - 1) / K whatever the truth
        codes = np.repeat(np.arange(K), 2)[:, None]
        assert brier_ensemble(codes, np.array([K - 1]), K)[0] == pytest.approx((K - 1) / K)
    # frequencies (1/2, 1/4, 1/4), truth 1: 1/4 + 9/16 + 1/16
    assert brier_ensemble(np.array([[0], [0], [1], [2]]), np.array([1]), 3)[0] == pytest.approx(0.875)


def test_interval_nominal_level_and_coverage():
    assert interval_nominal(10) == pytest.approx(9 / 11) and interval_nominal(10, k=2) == pytest.approx(7 / 11)
    assert np.isnan(interval_nominal(1)) and np.isnan(interval_nominal(3, k=2))
    draws = np.array([[0.0, 0.0, 5.0], [1.0, 1.0, 6.0], [2.0, 2.0, 7.0]])
    # closed [min, max]: end points count; the 2nd-from-each-end interval of 3 draws is [1, 1]
    assert interval_covered(draws, np.array([2.0, -0.1, 7.0])).tolist() == [True, False, True]
    assert interval_covered(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0.5]), k=2).tolist() == [False]
    with pytest.raises(ValueError, match="n >= 2k"):
        interval_covered(draws[:1], np.zeros(3))


@pytest.mark.parametrize("n, k", [(10, 1), (10, 2), (4, 1)])
def test_coverage_of_exchangeable_draws_is_the_nominal_level(n, k):
    """Truth and draws i.i.d. from one continuous law: coverage ≈ (n+1-2k)/(n+1) within binomial error."""
    rng = np.random.default_rng(n + k)
    m = 40_000
    values = rng.standard_t(3, size=(n + 1, m)) * rng.uniform(0.1, 10, size=m)  # any law, any scale per entry
    level = interval_nominal(n, k)
    coverage = interval_covered(values[1:], values[0], k).mean()
    assert abs(coverage - level) < 4 * np.sqrt(level * (1 - level) / m)


def test_majority_vote_ties_to_the_lowest_code():
    codes = np.array([[2, 0, 1], [2, 1, 1], [0, 1, 2], [0, 0, 2]])
    assert majority_vote(codes, 3).tolist() == [0.0, 0.0, 1.0]  # column 0 and 1 tie 2-2, column 2 ties 1-2


def test_draw_scores_pool_by_kind():
    schema = Schema(kinds=("numeric", "nominal", "ordinal"), n_categories=(0, 3, 4))
    X_true = np.array([[0.0, 0, 0], [10.0, 1, 3]])
    hidden = np.array([[True, True, True], [False, True, True]])
    draws = np.stack([X_true + [[-2.0, 0, 0], [0, 1, 0]], X_true + [[2.0, 0, 1], [0, 0, 0]]])  # (2, 2, 3)
    out = draw_scores(draws, X_true, hidden, schema, np.array([10.0, 0, 0]))
    # numeric (0, 0): draws {-2, 2}, truth 0 → 2 - 1 = 1, / range 10; ordinal (0, 2): {0, 1} → 1/4, / 4;
    # ordinal (1, 2): {3, 3} → 0
    assert out["crps"] == pytest.approx(np.mean([0.1, 0.0625, 0.0]))
    # nominal (0, 1): {0, 0} on truth → 0; (1, 1): {2, 1}, truth 1 → 1/4 + 1/4
    assert out["brier"] == pytest.approx(0.25)
    assert out["coverage"] == 1.0 and out["coverage_nominal"] == pytest.approx(1 / 3)
    only_nominal = draw_scores(draws, X_true, hidden & schema.is_nominal, schema, np.array([10.0, 0, 0]))
    assert np.isnan(only_nominal["crps"]) and np.isnan(only_nominal["coverage"])
    no_nominal = draw_scores(draws, X_true, hidden & ~schema.is_nominal, schema, np.array([10.0, 0, 0]))
    assert np.isnan(no_nominal["brier"])


def test_coverage_is_ranked_in_the_units_given():
    """A draw equal to the truth an ulp off after decoding still covers it when ``ranked`` is passed."""
    schema = Schema(kinds=("numeric",), n_categories=(0,))
    truth, hidden = np.array([[7.0]]), np.array([[True]])
    decoded = np.full((3, 1, 1), np.nextafter(7.0, 8.0))  # three draws of 7 that came back as 7 + 1 ulp
    assert draw_scores(decoded, truth, hidden, schema, np.array([1.0]))["coverage"] == 0.0
    ranked = (np.full((3, 1, 1), 0.5), np.array([[0.5]]))  # the same values in the imputer's units
    assert draw_scores(decoded, truth, hidden, schema, np.array([1.0]), ranked=ranked)["coverage"] == 1.0
