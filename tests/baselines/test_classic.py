"""The classic baselines: Mean, KNNI, XGBI, MissFI (MissForest) and PCAI (regularised iterative PCA).

Fast tests check hand-computed cases, that every constructor argument reaches the model,
MissForest's stopping rule, missMDA's GCV choice, and that ``transform`` reuses the fitted
models. The ``slow`` tests run one real cell per imputer and ask it to beat Mean.
"""
from __future__ import annotations

import numpy as np
import pytest

from baselines.knni import KNNImputer
from baselines.mean import MeanImputer
from baselines.missfi import MissForestImputer, missforest_differences, missforest_should_stop
from baselines.pcai import PCAImputer, choose_ncp, regularized_pca
from baselines.xgbi import XGBImputer
from metagain.schema import Schema
from tests.conftest import hide, quick_armse


@pytest.fixture(scope="module")
def split(mixed):
    X, y, schema = mixed
    return hide(X[:180], 0.2, seed=11), hide(X[180:], 0.3, seed=12), X[:180], X[180:], schema


def _hidden_rmse(X_true, X_hidden, X_imputed):
    holes = np.isnan(X_hidden)
    return float(np.sqrt(np.mean((X_true[holes] - X_imputed[holes]) ** 2)))


def _valid_category(values, k):
    codes = values * (k - 1)
    return np.allclose(codes, np.rint(codes)) and codes.min() >= 0 and codes.max() <= k - 1


# ---------------------------------------------------------------------------- Mean
def test_mean_fills_training_means_and_modes():
    schema = Schema(kinds=("numeric", "nominal", "ordinal"), n_categories=(0, 3, 4))
    nan = np.nan
    X_train = np.array([
        [0.2, 0.5, nan],
        [nan, 0.5, 1 / 3],
        [0.6, nan, 1.0],
        [0.4, 1.0, 1.0],
        [0.3, 0.0, 0.0],
    ])
    # numeric: (0.2 + 0.6 + 0.4 + 0.3) / 4 = 0.375; nominal codes 1, 1, 2, 0 -> mode 1 -> 0.5;
    # ordinal codes 1, 3, 3, 0 -> mode 3 -> 1.0.
    imputer = MeanImputer().fit(X_train, schema=schema)
    np.testing.assert_allclose(imputer.fill_values_, [0.375, 0.5, 1.0])
    X_new = np.array([[nan, nan, nan], [0.9, 0.0, nan]])
    expected = np.array([[0.375, 0.5, 1.0], [0.9, 0.0, 1.0]])
    np.testing.assert_allclose(imputer.transform(X_new), expected)


def test_mean_mode_tie_goes_to_lowest_code():
    schema = Schema(kinds=("nominal",), n_categories=(3,))
    X = np.array([[1.0], [0.5], [1.0], [0.5], [np.nan]])   # codes 2, 1, 2, 1: a tie
    assert MeanImputer().fit(X, schema=schema).fill_values_[0] == 0.5


# ---------------------------------------------------------------------------- KNNI
def test_knni_n_neighbors_reaches_the_model(split):
    X_train, X_test, _, _, schema = split
    one = KNNImputer(n_neighbors=1).fit(X_train, schema=schema).transform(X_test)
    ten = KNNImputer(n_neighbors=10).fit(X_train, schema=schema).transform(X_test)
    assert not np.allclose(one, ten)
    distance = KNNImputer(weights="distance").fit(X_train, schema=schema).transform(X_test)
    uniform = KNNImputer(weights="uniform").fit(X_train, schema=schema).transform(X_test)
    assert not np.allclose(distance, uniform)


def test_knni_categorical_takes_the_neighbours_mode():
    schema = Schema(kinds=("numeric", "nominal"), n_categories=(0, 3))
    # The three nearest rows of x = 0.05 are 0.0, 0.1 (category 0) and 0.2 (category 2).
    X_train = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 1.0], [0.9, 0.5], [1.0, 0.5]])
    X_new = np.array([[0.05, np.nan]])
    mode = KNNImputer(n_neighbors=3).fit(X_train, schema=schema).transform(X_new)
    mean = KNNImputer(n_neighbors=3, categorical="mean").fit(X_train, schema=schema).transform(X_new)
    assert mode[0, 1] == 0.0
    # The mean of codes 0, 0, 2 (scaled 0, 0, 1) is 1/3, which would snap to category 1.
    assert mean[0, 1] == pytest.approx(1 / 3)


def test_knni_vote_uses_scikit_learns_donors():
    # With a binary column, k = 5 uniform donors and no distance ties, scikit-learn's mean is the
    # share of donors in category 1, so the mode is 1 exactly when that mean exceeds 1/2.
    rng = np.random.default_rng(0)
    numeric = rng.random((150, 4))
    binary = (numeric[:, 0] + 0.3 * rng.random(150) > 0.6).astype(float)
    X = hide(np.column_stack([numeric, binary]), 0.25, seed=3)
    schema = Schema(kinds=("numeric",) * 4 + ("nominal",), n_categories=(0,) * 4 + (2,))
    X_train, X_new = X[:100], X[100:]
    mode = KNNImputer(n_neighbors=5).fit(X_train, schema=schema).transform(X_new)
    mean = KNNImputer(n_neighbors=5, categorical="mean").fit(X_train, schema=schema).transform(X_new)
    holes = np.isnan(X_new[:, 4])
    assert holes.sum() > 5
    np.testing.assert_array_equal(mode[holes, 4], (mean[holes, 4] > 0.5).astype(float))
    np.testing.assert_array_equal(mode[:, :4], mean[:, :4])   # numeric columns: scikit-learn's output


# ---------------------------------------------------------------------------- XGBI
def test_xgbi_arguments_reach_the_models(split):
    X_train, X_test, _, _, schema = split
    few = XGBImputer(n_estimators=2, max_iter=3, random_state=0).fit(X_train, schema=schema)
    many = XGBImputer(n_estimators=10, max_iter=3, random_state=0).fit(X_train, schema=schema)
    assert not np.allclose(few.transform(X_test), many.transform(X_test))
    assert few.n_iter_ <= 3 and len(few.rounds_) == few.n_iter_
    for _, model in few.rounds_[0]:
        booster = getattr(model, "classifier", model)
        if hasattr(booster, "get_booster"):
            assert booster.get_booster().num_boosted_rounds() == 2
    one_round = XGBImputer(n_estimators=2, max_iter=1, random_state=0).fit(X_train, schema=schema)
    assert one_round.n_iter_ == 1


def test_xgbi_models_every_column_and_imputes_valid_categories(split):
    from xgboost import XGBClassifier, XGBRegressor

    X_train, X_test, _, _, schema = split
    imputer = XGBImputer(n_estimators=5, max_iter=2, random_state=0).fit(X_train, schema=schema)
    for models in imputer.rounds_:
        assert sorted(j for j, _ in models) == list(range(X_train.shape[1]))
        for j, model in models:
            expected = XGBClassifier if schema.is_categorical[j] else XGBRegressor
            assert isinstance(getattr(model, "classifier", model), expected)
    out = imputer.transform(X_test)
    for j in np.flatnonzero(schema.is_categorical):
        assert _valid_category(out[:, j], schema.n_categories[j])


def test_xgbi_transform_replays_the_fitted_models(split, monkeypatch):
    import xgboost

    X_train, X_test, _, _, schema = split
    imputer = XGBImputer(n_estimators=5, max_iter=2, random_state=0).fit(X_train, schema=schema)
    before = imputer.transform(X_test)

    def refuse(*args, **kwargs):
        raise AssertionError("transform must not refit a model")

    monkeypatch.setattr(xgboost.XGBRegressor, "fit", refuse)
    monkeypatch.setattr(xgboost.XGBClassifier, "fit", refuse)
    np.testing.assert_array_equal(imputer.transform(X_test), before)


# ---------------------------------------------------------------------------- MissFI
def test_missforest_stopping_rule():
    inf, nan = np.inf, np.nan
    # First sweep always continues (old differences are infinite).
    assert not missforest_should_stop(np.array([0.3, 0.2]), np.array([inf, inf]))
    # Both types decreased, or only one did: go on.
    assert not missforest_should_stop(np.array([0.1, 0.1]), np.array([0.3, 0.2]))
    assert not missforest_should_stop(np.array([0.4, 0.1]), np.array([0.3, 0.2]))
    assert not missforest_should_stop(np.array([0.1, 0.3]), np.array([0.3, 0.2]))
    # Both increased: stop. An equal difference counts as "not decreased", as in R.
    assert missforest_should_stop(np.array([0.4, 0.3]), np.array([0.3, 0.2]))
    assert missforest_should_stop(np.array([0.3, 0.2]), np.array([0.3, 0.2]))
    # A type absent from the data (NaN) is ignored.
    assert missforest_should_stop(np.array([0.4, nan]), np.array([0.3, nan]))
    assert not missforest_should_stop(np.array([nan, 0.1]), np.array([nan, 0.2]))


def test_missforest_differences_hand_computed():
    categorical = np.array([False, False, True])
    old = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]])
    new = np.array([[1.0, 1.0, 0.0], [3.0, 4.0, 0.0]])
    # numeric: (2 - 1)^2 / (1 + 1 + 9 + 16) = 1 / 27; categorical: 1 of 2 entries changed.
    np.testing.assert_allclose(missforest_differences(new, old, categorical), [1 / 27, 0.5])


def test_missforest_arguments_reach_the_forests(split):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    X_train, _, _, _, schema = split
    imputer = MissForestImputer(ntree=7, max_iter=1, mtry=2, nodesize_numeric=3,
                                nodesize_categorical=4, random_state=0).fit(X_train, schema=schema)
    assert imputer.n_iter_ == 1 and imputer.accepted_iter_ == 1
    assert sorted(j for j, _ in imputer.forests_) == list(range(X_train.shape[1]))
    for j, model in imputer.forests_:
        forest = getattr(model, "forest", model)
        assert isinstance(forest, RandomForestClassifier if schema.is_categorical[j] else RandomForestRegressor)
        assert len(forest.estimators_) == 7 and forest.max_features == 2
        assert forest.min_samples_split == (5 if schema.is_categorical[j] else 4)
    default = MissForestImputer(ntree=3, max_iter=1, random_state=0).fit(X_train, schema=schema)
    # missForest's mtry = floor(sqrt(p)) with p = 6 columns.
    assert all(getattr(m, "forest", m).max_features == 2 for _, m in default.forests_)


def test_missforest_keeps_the_previous_sweep_when_the_difference_increases(split):
    X_train, X_test, _, _, schema = split
    full = MissForestImputer(ntree=10, max_iter=10, random_state=0).fit(X_train, schema=schema)
    assert full.n_iter_ < 10, "this data should trigger the stopping rule before max_iter"
    assert full.accepted_iter_ == full.n_iter_ - 1
    diffs = full.differences_
    assert missforest_should_stop(diffs[-1], diffs[-2])
    for sweep in range(2, full.n_iter_):   # every earlier sweep was allowed to go on
        assert not missforest_should_stop(diffs[sweep - 1], diffs[sweep - 2])
    # Stopping at the accepted sweep by max_iter grows the same forests (same seed stream),
    # so the kept forests must be that sweep's, not the last one's.
    capped = MissForestImputer(ntree=10, max_iter=full.accepted_iter_, random_state=0).fit(X_train, schema=schema)
    probe = np.nan_to_num(X_test, nan=0.5)
    for (j, kept), (k, reference) in zip(full.forests_, capped.forests_):
        others = np.arange(X_train.shape[1]) != j
        assert j == k
        np.testing.assert_array_equal(kept.predict(probe[:, others]), reference.predict(probe[:, others]))
    assert full.info_ == {"n_iter": full.n_iter_, "accepted_iter": full.accepted_iter_}


def test_missforest_transform_reuses_the_forests(split, monkeypatch):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    X_train, X_test, _, X_test_true, schema = split
    imputer = MissForestImputer(ntree=10, max_iter=3, random_state=0).fit(X_train, schema=schema)
    before = imputer.transform(X_test)

    def refuse(*args, **kwargs):
        raise AssertionError("transform must not refit a forest")

    monkeypatch.setattr(RandomForestRegressor, "fit", refuse)
    monkeypatch.setattr(RandomForestClassifier, "fit", refuse)
    np.testing.assert_array_equal(imputer.transform(X_test), before)
    for j in np.flatnonzero(schema.is_categorical):
        assert _valid_category(before[:, j], schema.n_categories[j])
    mean = MeanImputer().fit(X_train, schema=schema).transform(X_test)
    numeric = schema.is_numeric
    assert (_hidden_rmse(X_test_true[:, numeric], X_test[:, numeric], before[:, numeric])
            < _hidden_rmse(X_test_true[:, numeric], X_test[:, numeric], mean[:, numeric]))


# ---------------------------------------------------------------------------- PCAI
@pytest.fixture(scope="module")
def low_rank():
    """A rank-2 matrix (300 x 10) plus small noise, with 20 % of its entries hidden."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 10)) + 0.05 * rng.normal(size=(300, 10))
    return X, hide(X, 0.2, seed=8)


def test_pcai_recovers_a_low_rank_matrix_much_better_than_mean(low_rank):
    X, X_hidden = low_rank
    train, new = slice(0, 240), slice(240, 300)
    pcai = PCAImputer().fit(X_hidden[train])
    mean = MeanImputer().fit(X_hidden[train])
    assert pcai.ncp_ == 2 and pcai.info_["ncp"] == 2          # GCV finds the true rank
    for rows in (train, new):
        pca_error = _hidden_rmse(X[rows], X_hidden[rows], pcai.transform(X_hidden[rows]))
        mean_error = _hidden_rmse(X[rows], X_hidden[rows], mean.transform(X_hidden[rows]))
        assert pca_error < 0.2 * mean_error


def test_pcai_transform_matches_the_training_completion(low_rank):
    # With the components held fixed, transform's fixed point on the training rows is the
    # completion imputePCA itself converges to (both run to a tight threshold: imputePCA's
    # relative-objective rule at 1e-6 stops while holes still drift by ~1e-3).
    _, X_hidden = low_rank
    train = X_hidden[:240]
    tight = dict(threshold=1e-13, max_iter=100_000)
    completed = regularized_pca(train, 2, **tight).completed
    out = PCAImputer(ncp=2, **tight).fit(train).transform(train)
    np.testing.assert_allclose(out, completed, atol=1e-8)


def test_pcai_arguments_reach_the_model(low_rank):
    _, X_hidden = low_rank
    one = PCAImputer(ncp=1).fit(X_hidden)
    three = PCAImputer(ncp=3).fit(X_hidden)
    assert one.ncp_ == 1 and one.loadings_.shape == (10, 1) and one.gcv_ == []
    assert three.ncp_ == 3 and three.loadings_.shape == (10, 3)
    assert not np.allclose(one.transform(X_hidden), three.transform(X_hidden))
    em = PCAImputer(ncp=3, coeff_ridge=0.0).fit(X_hidden)
    np.testing.assert_allclose(em.shrink_, 1.0)               # EM-PCA: nothing shrunk
    assert np.all(three.shrink_ < 1.0)
    assert PCAImputer(ncp_max=1).fit(X_hidden).ncp_ == 1      # the cap bounds the GCV search
    with pytest.raises(ValueError, match="out of range"):
        PCAImputer(ncp=10).fit(X_hidden)


def test_gcv_choice_is_the_last_ncp_before_the_first_increase():
    assert choose_ncp([1.0, 0.5, 0.6, 0.2]) == 1
    assert choose_ncp([1.0, 0.5, 0.4]) == 2
    assert choose_ncp([1.0, 2.0, 0.1]) == 0
    assert choose_ncp([1.0, 0.5, 0.5]) == 1      # a flat step is no increase: the minimiser


# ---------------------------------------------------------------------------- quality (slow)
@pytest.fixture(scope="module")
def mean_armse(tmp_path_factory):
    return quick_armse("wine", "mean", tmp_path_factory.mktemp("mean"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["knni", "xgbi", "missfi", "pcai"])
def test_beats_mean_on_wine_mcar(name, mean_armse, tmp_path):
    assert quick_armse("wine", name, tmp_path) < mean_armse
