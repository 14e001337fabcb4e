"""The classic baselines: Mean, KNNI, XGBI, MissFI (MissForest) and PCAI (regularised iterative PCA).

Fast tests check hand-computed cases, that every constructor argument reaches the model,
MissForest's stopping rule, missMDA's GCV choice, XGBI's (IterativeImputer's) stopping rule,
that ``transform`` reuses the fitted models and hands back ``fit``'s own imputation for the
training matrix, and that KNNI's faster distances leave its votes as they were. The ``slow`` tests run one real cell per imputer and ask it to beat Mean.
"""
from __future__ import annotations

import numpy as np
import pytest

from baselines.knni import KNNImputer, _NanEuclidean
from baselines.mean import MeanImputer
from baselines.missfi import MissForestImputer, missforest_differences, missforest_should_stop
from baselines.pcai import PCAImputer, choose_ncp, regularized_pca
from baselines.xgbi import XGBImputer, change_norm
from baselines.schema import Schema
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


# Votes of the KNNI code before its distances were sped up (same inputs, same seeds): the
# category codes of the holes of the categorical columns, in row-major order. ``board`` is
# all-categorical (connect-like), where distance ties are everywhere and argpartition's choice
# among tied donors decides the vote, so any change in the distances' bits would show here.
_KNNI_REFERENCE = {
    ("mixed", "uniform", "train"): "120201123320130231220000122130011311022122101022110211030010010011111113111201120101122020"
                                   "220121110120221031010222",
    ("mixed", "uniform", "test"): "22123111133120010120221223203023111",
    ("mixed", "distance", "train"): "11020012332013223001000212210001231102212210201211022103002001001111111311020112202012202"
                                    "0220121110120221011120223",
    ("mixed", "distance", "test"): "21223111102120110120221323203020111",
    ("board", "uniform", "train"): "121100121221202001101200002010111001220102111200010200211201000200121220211021201022010122"
                                   "021122101121110112210120201100021100121002200202221120121002210200002110112121010221001221"
                                   "012211011021211120001001222221020111211002210112021101122020102102122101011221200111200101"
                                   "201101012100102021012212120212212111221222002010212111111121001020210211222121111110102100"
                                   "101110110012100101100212120100112002111201002202012220102211110110001021211201212121010012"
                                   "101002121020022200222001212200012110202112121002221022012122111120000111120102102010022012"
                                   "000010121221021",
    ("board", "uniform", "test"): "020010012001020112022201110120111222122211021012021211100121010121210010122121200120121211"
                                  "220101102102000211022211002002221102200110010201212102020200211201102110011000011221121222"
                                  "1212102022000110200012112121112102010021212010012220102120022101122100000",
    ("board", "distance", "train"): "111101111221212001101200002010112001200102110200010000211211022200121220211021011122012102"
                                    "021122121222120112210120201110221100121020100202221120121022200200002110112121010221001221"
                                    "012211011021211120101000222201020111211101211112021101122022112101122101221221210112200111"
                                    "221101012100012011212102020212212110021220002010212111111121001020210211202221111111102100"
                                    "100110212011100101100012110100112010111201002222011120102111110110001021211201222211010012"
                                    "101002121020022200022101202200012110202112121002211022022112111120000111120102102120022012"
                                    "000010121212021",
    ("board", "distance", "test"): "020011012000020022011000010100011222122211021012021221100121011101011010022121200120121210"
                                   "110121112102000211022211202002221102220112001200212102022200211222102110011000011201121221"
                                   "1222102020100111200012112121110102000121202011010020002120022101122101000",
}


def _board():
    """260 rows of 10 three-way categorical columns, half of them copies of the others 70 % of the time."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3, size=(260, 10)).astype(float)
    codes[:, 5:] = np.where(rng.random((260, 5)) < 0.7, codes[:, :5], codes[:, 5:])
    schema = Schema(kinds=("nominal",) * 10, n_categories=(3,) * 10)
    return schema.from_codes(codes), schema


@pytest.mark.parametrize("data", ["mixed", "board"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knni_votes_are_those_of_the_reference_code(data, weights, mixed):
    X, schema = _board() if data == "board" else (mixed[0], mixed[2])
    X_train, X_new = hide(X[:180], 0.3, seed=11), hide(X[180:], 0.3, seed=12)
    imputer = KNNImputer(weights=weights).fit(X_train, schema=schema)
    categorical = np.flatnonzero(schema.is_categorical)
    for part, rows in (("train", X_train), ("test", X_new)):
        out = imputer.transform(rows)
        holes = np.isnan(rows[:, categorical])
        codes = "".join(str(int(c)) for c in schema.to_codes(out)[:, categorical][holes])
        assert codes == _KNNI_REFERENCE[(data, weights, part)], (data, weights, part)


def test_knni_distances_are_scikit_learns_bit_for_bit(mixed):
    from sklearn.metrics.pairwise import nan_euclidean_distances

    X_board, _ = _board()
    for X in (hide(mixed[0], 0.3, seed=4), hide(X_board, 0.3, seed=4)):
        donors, receivers = X[:200], X[200:].copy()
        receivers[0, 1:] = np.nan                                 # shares a coordinate with few rows
        donors_without = donors.copy()
        donors_without[:50, 0] = np.nan                          # ... and with none of these
        for D in (donors, donors_without):
            distances = _NanEuclidean(D)
            for block in (receivers, receivers[:1], receivers[7:9]):
                got, no_common = distances(block)
                expected = nan_euclidean_distances(block, D)
                np.testing.assert_array_equal(got, expected)     # NaN where expected is NaN
                np.testing.assert_array_equal(no_common, np.isnan(expected))
        assert np.isnan(_NanEuclidean(donors_without)(receivers[:1])[0]).sum() >= 50


def test_knni_receiver_sharing_no_coordinate_with_the_donors_gets_the_mode():
    schema = Schema(kinds=("numeric", "numeric", "nominal"), n_categories=(0, 0, 3))
    nan = np.nan
    # Every donor of column 2 (it observes column 2) misses column 0, the receiver's only value.
    X_train = np.array([[nan, 0.1, 1.0], [nan, 0.2, 1.0], [nan, 0.9, 0.0], [0.5, 0.5, nan], [0.4, 0.6, nan]])
    out = KNNImputer(n_neighbors=2).fit(X_train, schema=schema).transform(np.array([[0.3, nan, nan]]))
    assert out[0, 2] == 1.0                                      # the training mode (codes 2, 2, 0)


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


def test_xgbi_change_norm_is_scikit_learns_matrix_inf_norm():
    rng = np.random.default_rng(1)
    new, old = rng.random((30, 5)), rng.random((30, 5))
    assert change_norm(new, old) == pytest.approx(np.linalg.norm(new - old, ord=np.inf, axis=None))
    assert change_norm(new, old) > np.max(np.abs(new - old))     # row sum, not the largest entry


def test_xgbi_stops_once_the_change_falls_under_tol(mixed):
    X, _, schema = mixed
    X_train = X[:180].copy()
    # One column with holes: every other column stays as observed, so from the second round on
    # the refit of that column sees the same inputs, predicts the same values: change 0 < tol.
    X_train[np.random.default_rng(3).random(180) < 0.3, 2] = np.nan
    imputer = XGBImputer(n_estimators=5, max_iter=10, random_state=0).fit(X_train, schema=schema)
    assert imputer.n_iter_ == 2 and len(imputer.rounds_) == 2
    # A tolerance above any possible row change stops after the first round.
    loose = XGBImputer(n_estimators=5, max_iter=10, tol=100.0, random_state=0).fit(X_train, schema=schema)
    assert loose.n_iter_ == 1


def test_xgbi_runs_every_round_while_the_change_stays_above_tol(split):
    X_train, _, _, _, schema = split
    imputer = XGBImputer(n_estimators=5, max_iter=4, random_state=0).fit(X_train, schema=schema)
    assert imputer.n_iter_ == 4 and imputer.info_ == {"n_iter": 4}


def test_xgbi_transform_of_the_training_matrix_is_fits_imputation(split, monkeypatch):
    import xgboost

    X_train, X_test, _, _, schema = split
    imputer = XGBImputer(n_estimators=5, max_iter=3, random_state=0).fit(X_train, schema=schema)
    replayed = imputer._finish(X_train, imputer._impute(X_train))
    new_rows = imputer.transform(X_test)

    def refuse(*args, **kwargs):
        raise AssertionError("the training matrix must not be imputed again")

    monkeypatch.setattr(xgboost.XGBRegressor, "predict", refuse)
    monkeypatch.setattr(xgboost.XGBClassifier, "predict", refuse)
    out = imputer.transform(X_train.copy())                    # another array, same values
    np.testing.assert_array_equal(out, imputer.fit_imputation_)
    np.testing.assert_array_equal(out, replayed)               # the same bits as the replay
    monkeypatch.undo()
    np.testing.assert_array_equal(imputer.transform(X_test), new_rows)
    changed = X_train.copy()
    changed[1, np.flatnonzero(~np.isnan(changed[1]))[0]] = np.nan   # one more hole: new rows
    assert not np.array_equal(imputer.transform(changed), out)


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


def test_missforest_transform_of_the_training_matrix_is_fits_accepted_imputation(split, monkeypatch):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    X_train, X_test, _, _, schema = split
    full = MissForestImputer(ntree=10, max_iter=10, random_state=0).fit(X_train, schema=schema)
    assert full.accepted_iter_ == full.n_iter_ - 1
    # The run capped at the accepted sweep grows the same forests and ends on that sweep's
    # imputation, which is the one the full run must hand back for its training rows.
    capped = MissForestImputer(ntree=10, max_iter=full.accepted_iter_, random_state=0).fit(X_train, schema=schema)
    new_rows = full.transform(X_test)

    def refuse(*args, **kwargs):
        raise AssertionError("the training matrix must not be swept again")

    monkeypatch.setattr(RandomForestRegressor, "predict", refuse)
    monkeypatch.setattr(RandomForestClassifier, "predict", refuse)
    out = full.transform(X_train.copy())                       # another array, same values
    np.testing.assert_array_equal(out, full.fit_imputation_)
    np.testing.assert_array_equal(out, capped.transform(X_train))
    monkeypatch.undo()
    np.testing.assert_array_equal(full.transform(X_test), new_rows)   # new rows: swept as before
    again = MissForestImputer(ntree=10, max_iter=10, random_state=0).fit_transform(X_train, schema=schema)
    np.testing.assert_array_equal(again, out)
    assert not np.array_equal(full._finish(X_train, full._impute(X_train)), out)


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
