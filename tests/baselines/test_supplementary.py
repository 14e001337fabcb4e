"""The supplementary baselines: ReMasker (baselines/remasker.py) and HyperImpute (baselines/hyperimpute_wrapper.py)."""
from __future__ import annotations

import importlib.util
import inspect
import random
import sys

import numpy as np
import pytest
import torch

from baselines import remasker
from baselines.remasker import ReMaskerImputer
from experiments.registry import build_imputer
from baselines._base import MissingExtraError
from tests.conftest import hide, quick_armse

HAS_HYPERIMPUTE = importlib.util.find_spec("hyperimpute") is not None
needs_hyperimpute = pytest.mark.skipif(
    not HAS_HYPERIMPUTE,
    reason="optional extra 'hyperimpute' is not installed; run `make setup-hyperimpute` to test HyperImpute",
)


@pytest.fixture(scope="module")
def split(mixed):
    X, y, schema = mixed
    return hide(X[:180], 0.2, seed=1), y[:180], hide(X[180:], 0.3, seed=2), schema


def correlated(n_rows: int, n_features: int, seed: int) -> np.ndarray:
    """Rank-2 data plus a little noise in [0, 1]: each column is well predicted by the others."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, 2))
    X = latent @ rng.normal(size=(2, n_features)) + 0.05 * rng.normal(size=(n_rows, n_features))
    return (X - X.min(0)) / (X.max(0) - X.min(0))


def hidden_rmse(imputed: np.ndarray, truth: np.ndarray, X_missing: np.ndarray) -> float:
    hidden = np.isnan(X_missing)
    return float(np.sqrt(np.mean((imputed[hidden] - truth[hidden]) ** 2)))


def mean_fill(X_fit: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(X), np.nanmean(X_fit, axis=0), X)


# ============================================================================ ReMasker
def _remasker(split, **overrides):
    X_train, y_train, X_test, schema = split
    imputer = build_imputer("remasker", "smoke", random_state=0, device="cpu", **overrides)
    return imputer.fit(X_train, y_train, schema=schema).transform(X_test)


def test_remasker_arguments_reach_the_model(split):
    base = _remasker(split)
    for change in ({"epochs": 3}, {"embed_dim": 16}, {"depth": 2}, {"mask_ratio": 0.25}, {"blr": 0.01},
                   {"max_steps": 3}):  # smoke runs 2 epochs of 3 batches; 3 steps = 1 epoch
        assert not np.array_equal(_remasker(split, **change), base), f"{change} did not change the imputation"


def test_remasker_learning_rate_is_the_reference_formula():
    # remasker_impute.py: lr = blr * batch_size * accum_iter / 64 unless --lr is given (its help
    # text says / 256; the code divides by 64).
    assert remasker.reference_learning_rate(1e-3, 64) == pytest.approx(1e-3)
    assert remasker.reference_learning_rate(1e-3, 256) == pytest.approx(4e-3)
    assert remasker.reference_learning_rate(1e-3, 32, accum_iter=4) == pytest.approx(2e-3)
    assert remasker.reference_learning_rate(1e-3, 256, lr=5e-4) == pytest.approx(5e-4)
    X = correlated(100, 4, seed=0)
    fitted = ReMaskerImputer(epochs=2, warmup_epochs=0, batch_size=32, depth=1, decoder_depth=1,
                             random_state=0, device="cpu").fit(hide(X, 0.2, seed=0))
    assert fitted.info_["peak_lr"] == pytest.approx(1e-3 * 32 / 64)


def test_remasker_weight_decay_is_what_the_reference_optimizer_uses():
    # remasker_impute.py builds AdamW(params, lr=..., betas=(0.9, 0.95)) with no weight_decay,
    # so torch's AdamW default applies to every parameter; --weight_decay 0.05 is never read.
    torch_default = inspect.signature(torch.optim.AdamW).parameters["weight_decay"].default
    assert ReMaskerImputer().weight_decay == torch_default == 0.01
    optimizer = remasker.reference_optimizer(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    (group,) = optimizer.param_groups
    assert group["weight_decay"] == 0.01 and tuple(group["betas"]) == (0.9, 0.95)


def test_remasker_schedule_warms_up_then_decays_to_min_lr():
    at = lambda progress: remasker.scheduled_learning_rate(progress, 1e-3, 1e-5, epochs=600, warmup_epochs=40)
    assert at(0) == 0.0
    assert at(20) == pytest.approx(5e-4)
    assert at(40) == pytest.approx(1e-3)
    assert at(320) == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)
    assert at(600) == pytest.approx(1e-5)


def test_remasker_dataset_table_and_explicit_arguments():
    assert ReMaskerImputer().resolved_architecture() == {"embed_dim": 32, "depth": 6, "decoder_depth": 4}
    assert ReMaskerImputer(dataset="letter").resolved_architecture() == {"embed_dim": 64, "depth": 8,
                                                                        "decoder_depth": 6}
    assert ReMaskerImputer(dataset="letter", depth=2).resolved_architecture()["depth"] == 2
    # the reference's "wine" is Wine Quality, not our UCI 109 Wine: no override
    assert ReMaskerImputer(dataset="wine").resolved_architecture() == remasker.REFERENCE_ARCHITECTURE


def test_remasker_warmup_longer_than_training_is_an_error():
    with pytest.raises(ValueError, match="warmup_epochs"):
        ReMaskerImputer(epochs=10, warmup_epochs=40).fit(hide(correlated(50, 4, seed=0), 0.2, seed=0))


def test_remasker_step_budget_caps_epochs_and_keeps_the_warmup_share():
    imputer = ReMaskerImputer(epochs=600, warmup_epochs=40, max_steps=600)
    assert imputer._budget(n_batches=25) == (24, pytest.approx(40 * 24 / 600))   # 2 000 rows: 24 epochs
    assert imputer._budget(n_batches=3) == (200, pytest.approx(40 * 200 / 600))  # wine: 200 epochs
    assert imputer._budget(n_batches=1000) == (1, pytest.approx(40 / 600))       # never below one epoch
    assert ReMaskerImputer(epochs=600, warmup_epochs=40)._budget(n_batches=25) == (600, 40)
    X = hide(correlated(130, 4, seed=0), 0.2, seed=0)  # 3 batches of 64
    fitted = ReMaskerImputer(epochs=600, warmup_epochs=40, max_steps=9, depth=1, decoder_depth=1,
                             random_state=0, device="cpu").fit(X)
    assert fitted.info_["epochs_run"] == 3 and fitted.info_["steps_run"] == 9


def test_remask_shows_only_observed_entries():
    generator = torch.Generator().manual_seed(0)
    observed = torch.rand(2, 500, 9, generator=generator) > 0.4  # two models' batches
    visible = remasker.remask(observed, n_visible=4, noise=torch.rand(2, 500, 9, generator=generator))
    assert not (visible & ~observed).any(), "a missing entry was shown to the encoder"
    expected = torch.clamp(observed.sum(dim=-1), max=4)
    assert torch.equal(visible.sum(dim=-1), expected)


def test_remasker_batch_equals_row_by_row():
    # Rows with different numbers of visible entries share a batch through padded slots; each
    # row's prediction must be what it gets alone (the reference imputes row by row).
    generator = torch.Generator().manual_seed(0)
    model = remasker.MaskedTabularAutoencoder(7, 16, 2, 1, 4, 4.0, [generator]).eval()  # K = 1
    values = torch.rand(1, 12, 7, generator=generator)
    visible = torch.rand(1, 12, 7, generator=generator) > 0.5
    visible[0, 0] = True
    visible[0, 1] = False
    with torch.no_grad():
        batched = model(values, visible)
        alone = torch.cat([model(values[:, i:i + 1], visible[:, i:i + 1]) for i in range(12)], dim=1)
        padded = model(values, visible, n_slots=7)  # spare encoder slots change nothing
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(padded, batched, atol=1e-5, rtol=1e-5)


# ============================================================================ HyperImpute
def test_hyperimpute_without_the_extra_says_how_to_install(monkeypatch):
    from baselines.hyperimpute_wrapper import HyperImputeImputer

    for module in ("hyperimpute", "hyperimpute.plugins.imputers",
                   "hyperimpute.plugins.imputers._hyperimpute_internals"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import` fail as if not installed
    with pytest.raises(MissingExtraError, match="make setup-hyperimpute"):
        HyperImputeImputer().fit(hide(correlated(40, 3, seed=0), 0.2, seed=0))


@pytest.fixture(scope="module")
def correlated_split():
    # Column 0 is complete in the training rows but has holes in the new rows: the plugin fits no
    # model for it, so the wrapper must give it one in fit.
    truth = correlated(300, 5, seed=0)
    X_train = hide(truth[:240], 0.2, seed=1)
    X_train[:, 0] = truth[:240, 0]
    return truth, X_train, hide(truth[240:], 0.2, seed=2)


# Linear models only in the fast tests (the plugin's default pool adds random forests, seconds per
# fit); they are enough to show whether predictions reach the output. The slow wine test runs the
# default pool.
LINEAR = {"classifier_seed": ["logistic_regression"], "regression_seed": ["linear_regression"]}


@pytest.fixture(scope="module")
def hyperimpute_fitted(correlated_split):
    from baselines.hyperimpute_wrapper import HyperImputeImputer

    _, X_train, _ = correlated_split
    return HyperImputeImputer(n_inner_iter=2, random_state=0, **LINEAR).fit(X_train)


@needs_hyperimpute
def test_hyperimpute_really_runs_and_beats_mean(correlated_split, hyperimpute_fitted):
    # The plugin alone returns the mean imputation under pandas 3 (its column writes never
    # land); with the wrapper's fix the models' predictions must reach the output.
    truth, X_train, X_test = correlated_split
    for X, rows in ((X_train, slice(0, 240)), (X_test, slice(240, 300))):
        imputed, by_mean = hyperimpute_fitted.transform(X), mean_fill(X_train, X)
        hidden = np.isnan(X)
        assert np.abs(imputed[hidden] - by_mean[hidden]).max() > 0.05, "HyperImpute returned Mean's imputation"
        assert hidden_rmse(imputed, truth[rows], X) < 0.5 * hidden_rmse(by_mean, truth[rows], X)
    new_holes = np.isnan(X_test[:, 0])
    assert new_holes.any() and hyperimpute_fitted.column_models_[0] == "linear_regression"
    error = lambda filled: np.sqrt(np.mean((filled[new_holes, 0] - truth[240:][new_holes, 0]) ** 2))
    assert error(hyperimpute_fitted.transform(X_test)) < 0.5 * error(mean_fill(X_train, X_test))


@needs_hyperimpute
@pytest.mark.filterwarnings("ignore")  # the package's own chained-assignment warnings: the defect shown here
def test_hyperimpute_plugin_alone_falls_back_to_mean_on_pandas_3(correlated_split):
    # Documents the defect the wrapper fixes; if this starts failing, a hyperimpute release has
    # fixed the write and the patch in baselines/hyperimpute_wrapper.py may go.
    import pandas as pd
    from hyperimpute.plugins.imputers import Imputers

    if int(pd.__version__.split(".")[0]) < 3:
        pytest.skip("the chained-assignment defect shows only under pandas copy-on-write (pandas >= 3)")
    _, X_train, _ = correlated_split
    plugin = Imputers().get("hyperimpute", n_inner_iter=2, random_state=0, **LINEAR)
    out = np.asarray(plugin.fit_transform(pd.DataFrame(X_train)), dtype=float)
    np.testing.assert_allclose(out, mean_fill(X_train, X_train))


@needs_hyperimpute
def test_hyperimpute_same_seed_same_output_and_global_generators_untouched(correlated_split, hyperimpute_fitted):
    from baselines.hyperimpute_wrapper import HyperImputeImputer

    _, X_train, X_test = correlated_split
    np.random.seed(123)
    random.seed(123)
    numpy_before, python_before = np.random.get_state()[1].copy(), random.getstate()
    again = HyperImputeImputer(n_inner_iter=2, random_state=0, **LINEAR).fit(X_train)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_before)
    assert random.getstate() == python_before
    np.testing.assert_array_equal(again.transform(X_train), hyperimpute_fitted.transform(X_train))
    np.testing.assert_array_equal(again.transform(X_test), hyperimpute_fitted.transform(X_test))


@needs_hyperimpute
def test_hyperimpute_arguments_reach_the_plugin(correlated_split):
    from baselines.hyperimpute_wrapper import HyperImputeImputer

    _, X_train, _ = correlated_split
    one = HyperImputeImputer(n_inner_iter=1, regression_seed=["linear_regression"], random_state=0).fit(X_train)
    three = HyperImputeImputer(n_inner_iter=3, regression_seed=["linear_regression"], random_state=0).fit(X_train)
    assert one.info_["iterations_run"] == 1 and three.info_["iterations_run"] == 3
    assert set(one.column_models_.values()) == {"linear_regression"}
    assert one.plugin_.model.n_inner_iter == 1 and one.plugin_.model.imputation_order_strategy == "random"


@needs_hyperimpute
def test_hyperimpute_categorical_column_gets_valid_categories(split):
    # The nominal column (3 categories) goes to the classifier pool, which includes the
    # logistic regression the wrapper makes buildable again on scikit-learn >= 1.8.
    from baselines.hyperimpute_wrapper import HyperImputeImputer

    X_train, y_train, X_test, schema = split
    imputer = HyperImputeImputer(n_inner_iter=1, random_state=0, **LINEAR).fit(X_train, y_train, schema=schema)
    assert imputer.column_models_[4] == "logistic_regression"
    for X in (X_train, X_test):
        nominal = imputer.transform(X)[:, 4]
        assert set(np.round(nominal, 6)) <= {0.0, 0.5, 1.0}


@needs_hyperimpute
def test_reused_xgboost_classifier_refits_on_two_classes():
    # HyperImpute deep-copies a fitted model for a column of the same architecture; xgboost 3
    # leaves "multi:softprob" on a classifier that saw three classes, and the refit on a
    # two-class column failed (seen on connect) until the wrapper reset the objective.
    import copy

    from hyperimpute.plugins.prediction import Predictions

    from baselines.hyperimpute_wrapper import _reset_xgboost_objective

    rng = np.random.default_rng(0)
    X = rng.random((60, 3))
    three_class = Predictions(category="classifier").get("xgboost", n_estimators=3)
    three_class.fit(X, rng.integers(0, 3, 60))
    reused = copy.deepcopy(three_class)
    _reset_xgboost_objective(reused)
    reused.fit(X, rng.integers(0, 2, 60))
    assert set(np.asarray(reused.predict(X)).ravel()) <= {0, 1}


# ============================================================================ quality (slow)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["remasker", pytest.param("hyperimpute", marks=needs_hyperimpute)])
def test_quick_wine_mcar_beats_mean(tmp_path, name):
    mean, ours = quick_armse("wine", "mean", tmp_path), quick_armse("wine", name, tmp_path)
    assert np.isfinite(ours)
    assert ours < mean, (ours, mean)
