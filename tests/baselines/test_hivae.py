"""HIVAE baseline (Nazabal et al. 2020): categories stay valid, every argument reaches the model,
draws differ, divergence is one clear error, and (slow) it beats Mean on wine."""
from __future__ import annotations

import numpy as np
import pytest

from baselines.hivae import HIVAEImputer
from experiments.registry import build_imputer
from baselines._base import TrainingDivergedError
from tests.conftest import hide, quick_armse

FAST = dict(epochs=3, random_state=0, device="cpu", verbose=False)


@pytest.fixture(scope="module")
def data(mixed):
    X, y, schema = mixed
    return X, hide(X, 0.3, seed=4), schema


def _codes_are_valid(values: np.ndarray, schema) -> None:
    for j in np.flatnonzero(schema.is_categorical):
        k = schema.n_categories[j]
        codes = values[..., j] * max(k - 1, 1)
        np.testing.assert_allclose(codes, np.rint(codes), atol=1e-9, err_msg=f"column {j} off the code grid")
        assert codes.min() >= 0 and codes.max() <= k - 1, f"column {j} has codes outside 0..{k - 1}"


def test_categorical_outputs_are_valid_categories(data):
    _, X_missing, schema = data
    imputer = HIVAEImputer(**FAST).fit(X_missing, schema=schema)
    assert imputer.likelihoods_ == ("real",) * 4 + ("cat", "ordinal")
    _codes_are_valid(imputer.transform(X_missing), schema)
    _codes_are_valid(imputer.sample(X_missing, 4), schema)


@pytest.mark.parametrize("base, change", [
    ({}, {"epochs": 4}), ({}, {"z_dim": 3}), ({}, {"y_dim": 3}), ({}, {"s_dim": 4}),
    ({}, {"batch_size": 50}), ({}, {"learning_rate": 1e-2}), ({}, {"tau_decay": 0.3}),
    ({"tau_decay": 0.5}, {"tau_min": 0.7}),  # tau_min only bites once the annealing reaches it
    ({}, {"numeric_likelihood": "pos"}),
], ids=lambda value: next(iter(value), "default"))
def test_every_argument_changes_the_output(data, base, change):
    _, X_missing, schema = data
    before = HIVAEImputer(**{**FAST, **base}).fit(X_missing, schema=schema).transform(X_missing)
    changed = HIVAEImputer(**{**FAST, **base, **change}).fit(X_missing, schema=schema).transform(X_missing)
    assert not np.array_equal(before, changed), f"{change} did not reach the model"


def test_params_round_trip_through_registry():
    imputer = build_imputer("hivae", profile="quick", random_state=5, device="cpu", z_dim=4)
    params = imputer.get_params()
    assert params["epochs"] == 50 and params["z_dim"] == 4 and params["random_state"] == 5
    assert HIVAEImputer(**params).get_params() == params
    assert build_imputer("hivae", profile="paper").epochs == 200


def test_draws_differ_and_keep_observed_entries(data):
    _, X_missing, schema = data
    imputer = HIVAEImputer(**FAST).fit(X_missing, schema=schema)
    draws = imputer.sample(X_missing, 3)
    hidden = np.isnan(X_missing)
    for a, b in ((0, 1), (1, 2)):
        assert (draws[a][hidden] != draws[b][hidden]).mean() > 0.5, "draws should differ on hidden entries"
        np.testing.assert_array_equal(draws[a][~hidden], draws[b][~hidden])
    # Sampling is seeded from random_state: the same call gives the same draws.
    np.testing.assert_array_equal(draws, imputer.sample(X_missing, 3))


def test_transform_is_row_independent(data):
    """Inputs are normalised with training moments, so a row's imputation ignores its batch mates."""
    _, X_missing, schema = data
    imputer = HIVAEImputer(**FAST).fit(X_missing, schema=schema)
    full = imputer.transform(X_missing)
    np.testing.assert_allclose(imputer.transform(X_missing[5:8]), full[5:8], rtol=1e-6, atol=1e-7)


def test_numeric_likelihood_auto_and_pos(data):
    X, X_missing, schema = data
    shifted = X_missing.copy()
    shifted[:, 0] += 0.5  # column 0 strictly positive: "auto" makes it log-normal, others stay real
    imputer = HIVAEImputer(**{**FAST, "numeric_likelihood": "auto"}).fit(shifted, schema=schema)
    assert imputer.likelihoods_[:4] == ("pos", "real", "real", "real")
    assert (imputer.transform(shifted)[:, 0] >= 0).all()
    with pytest.raises(ValueError, match="numeric_likelihood"):
        HIVAEImputer(**{**FAST, "numeric_likelihood": "pos"}).fit(X_missing - 0.5, schema=schema)
    with pytest.raises(ValueError, match="numeric_likelihood"):
        HIVAEImputer(**{**FAST, "numeric_likelihood": "count"}).fit(X_missing, schema=schema)


def test_divergence_raises_training_diverged(data):
    _, X_missing, schema = data
    with pytest.raises(TrainingDivergedError, match="HIVAE epoch"):
        HIVAEImputer(**{**FAST, "learning_rate": 1e12}).fit(X_missing, schema=schema)


@pytest.mark.slow
def test_beats_mean_on_wine_mcar(tmp_path):
    assert quick_armse("wine", "hivae", tmp_path) < quick_armse("wine", "mean", tmp_path)
