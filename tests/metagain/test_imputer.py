"""MetaGAINImputer: the ablation configs, seeds, raw data, Pipeline use, errors, and (slow) quality."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.registry import build_imputer
from metagain import MetaGAINImputer
from baselines._base import TrainingDivergedError
from baselines._gan import to_tensors
from tests.conftest import hide, quick_armse

VARIANTS = ["metagain", "metagain_none", "metagain_id", "metagain_mn", "metagain_tr",
            "metagain_id_mn", "metagain_id_tr", "metagain_mn_tr"]
SWITCHES = {  # (use_kl, use_meta, use_task) each key must have
    "metagain": (True, True, True), "metagain_none": (False, False, False),
    "metagain_id": (True, False, False), "metagain_mn": (False, True, False),
    "metagain_tr": (False, False, True), "metagain_id_mn": (True, True, False),
    "metagain_id_tr": (True, False, True), "metagain_mn_tr": (False, True, True),
}
TINY = dict(iterations=6, hidden=12, latent=4, n_layers=3, disc_hidden=8, batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def data(mixed):
    X, y, schema = mixed
    return hide(X, 0.2, seed=4), y, schema


def tiny(**overrides) -> MetaGAINImputer:
    return MetaGAINImputer(**{**TINY, "random_state": 0, **overrides})


@pytest.mark.parametrize("name", VARIANTS)
def test_each_ablation_config_builds_and_trains(name, data):
    X, y, schema = data
    imputer = build_imputer(name, profile="smoke", device="cpu", iterations=4)
    assert (imputer.use_kl, imputer.use_meta, imputer.use_task) == SWITCHES[name]
    out = imputer.fit(X, y, schema=schema).transform(X)
    assert not np.isnan(out).any()
    assert set(imputer.info_) >= {"beta", "gamma", "eta", "weights_trajectory"}
    assert all(isinstance(v, float) for k, v in imputer.info_.items() if k != "weights_trajectory")
    trajectory = imputer.info_["weights_trajectory"]
    assert trajectory["iteration"] == [0.0, 3.0]                  # every 100 and the last iteration
    assert all(isinstance(v, float) for values in trajectory.values() for v in values)
    if not imputer.use_meta:                                      # fixed weights, as info_ reports them
        assert [trajectory[k][-1] for k in ("beta", "gamma", "eta")] == \
            pytest.approx([imputer.info_[k] for k in ("beta", "gamma", "eta")])
    assert (imputer.info_["beta"] > 0) == imputer.use_kl and (imputer.info_["gamma"] > 0) == imputer.use_task
    assert (imputer.model_.meta is not None) == imputer.use_meta
    assert all(p.shape[0] == 1 for p in imputer.model_.parameters())   # the fitted model is K = 1


@pytest.mark.parametrize("name, points", [("metagain_none", 3), ("metagain_id", 9), ("metagain_id_tr", 27)])
def test_quick_profile_searches_the_joint_grid_of_active_weights(name, points, data):
    X, y, schema = data
    imputer = build_imputer(name, profile="quick", device="cpu", iterations=3, search_iterations=2,
                            hidden=12, latent=4, n_layers=3)
    imputer.fit(X, y, schema=schema)
    assert imputer.info_["grid_points"] == points      # {0.01, 0.1, 1} over η (+ β with ID, + γ with TR)
    assert np.isfinite(imputer.info_["grid_meta_loss"])
    assert imputer.info_["eta"] in (0.01, 0.1, 1.0)


@pytest.mark.parametrize("name", VARIANTS)
def test_quick_profile_gets_at_least_gains_quick_iterations(name):
    gain = build_imputer("gain", profile="quick").iterations
    assert build_imputer(name, profile="quick").iterations >= gain == 2000


def test_same_seed_same_output_and_draws(data):
    X, y, schema = data
    a, b = tiny().fit(X, y, schema), tiny().fit(X, y, schema)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.sample(X, 2), b.sample(X, 2))
    assert not np.array_equal(a.transform(X), tiny(random_state=1).fit(X, y, schema).transform(X))


def test_transform_is_deterministic_and_sample_varies(data):
    X, y, schema = data
    imputer = tiny().fit(X, y, schema)
    first = imputer.transform(X)
    np.testing.assert_array_equal(first, imputer.transform(X))
    draws = imputer.sample(X, 3)
    assert draws.shape == (3,) + X.shape
    assert np.std(draws, axis=0)[np.isnan(X)].mean() > 0      # Z and S are drawn
    np.testing.assert_array_equal(first, imputer.transform(X))  # whatever was drawn in between


def test_transform_is_the_mean_of_impute_draws_draws(data):
    """transform = mean of impute_draws decoded draws of (Z, S) from the seed kept at fit; 0: Z = μ."""
    X, y, schema = data
    imputer = tiny(impute_draws=4).fit(X, y, schema)
    x, m = (t[None] for t in to_tensors(imputer.scaler_.transform(X), "cpu"))  # model_ is K = 1
    g = torch.Generator().manual_seed(imputer.seed_ + 3)
    draws = torch.stack([imputer.model_.impute(x, m, g)[0] for _ in range(4)])
    expected = imputer.scaler_.inverse_transform(draws.mean(dim=0).double().numpy())
    np.testing.assert_allclose(imputer.transform(X), expected, rtol=1e-6, atol=1e-7)
    point = imputer.scaler_.inverse_transform(imputer.model_.impute(x, m)[0].double().numpy())
    assert not np.allclose(imputer.transform(X), point)
    imputer.set_params(impute_draws=0)
    np.testing.assert_allclose(imputer.transform(X), point, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("arg, value", [
    ("iterations", 12), ("batch_size", 16), ("learning_rate", 0.05), ("momentum", 0.0), ("weight_decay", 0.1),
    ("hidden", 20), ("n_layers", 4), ("latent", 7), ("disc_hidden", 5), ("hint_rate", 0.5), ("noise_high", 0.3),
    ("meta_net", "scalar"), ("meta_hidden", 3), ("meta_optimizer", "sgd"), ("meta_lr", 0.1),
    ("init_beta", 1.0), ("init_gamma", 1.0), ("init_eta", 1.0), ("meta_fraction", 0.3), ("meta_hide_ratio", 0.6),
    ("reduction", "entry"), ("kl_reduction", "sum"), ("real_step_from", "w"), ("impute_draws", 0),
    ("impute_draws", 3), ("meta_draws", 0), ("meta_draws", 3),
])
def test_every_argument_reaches_the_model(arg, value, data):
    X, y, schema = data
    base = tiny().fit(X, y, schema).transform(X)
    changed = tiny(**{arg: value}).fit(X, y, schema).transform(X)
    assert not np.array_equal(base, changed), f"changing {arg} did not change the output"


def test_meta_momentum_reaches_the_sgd_meta_optimiser(data):
    X, y, schema = data
    base = tiny(meta_optimizer="sgd", meta_lr=1.0).fit(X, y, schema).transform(X)
    changed = tiny(meta_optimizer="sgd", meta_lr=1.0, meta_momentum=0.0).fit(X, y, schema).transform(X)
    assert not np.array_equal(base, changed)


def test_create_graph_virtual_step_gives_the_same_imputer(data):
    X, y, schema = data
    np.testing.assert_allclose(tiny().fit(X, y, schema).transform(X),
                               tiny(virtual_step="create_graph").fit(X, y, schema).transform(X), atol=1e-5)


def test_raw_unscaled_data_without_schema(data):
    X, y, _ = data
    low, span = np.array([-50, 0, 1000, 3, 0, 7.0]), np.array([10, 1e-3, 5000, 1, 2, 3.0])
    raw = X * span + low
    out = tiny().fit(raw, y).transform(raw)
    missing = np.isnan(raw)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[~missing], raw[~missing])
    lo, hi = np.nanmin(raw, axis=0), np.nanmax(raw, axis=0)
    assert np.all((out >= lo - 1e-9) & (out <= hi + 1e-9))      # sigmoid decoder, mapped back
    # scaling happens inside: the raw fit imputes what the scaled fit imputes, in raw units
    scaled = (raw - lo) / (hi - lo)
    np.testing.assert_allclose(out, tiny().fit(scaled, y).transform(scaled) * (hi - lo) + lo, rtol=1e-5)


def test_pipeline_with_xgboost(data):
    from sklearn.pipeline import make_pipeline
    from xgboost import XGBClassifier

    X, y, _ = data
    pipe = make_pipeline(tiny(), XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1))
    pipe.fit(X, y)
    assert pipe.predict(X).shape == y.shape
    assert pipe[0].info_["meta_rows"] > 0


def test_without_labels_the_task_regulariser_is_off_with_a_warning(data):
    """scikit-learn's fit(X) (a pipeline without y) works: the same fit as use_task=False."""
    X, _, schema = data
    with pytest.warns(UserWarning, match="fit without labels"):
        out = tiny().fit(X, schema=schema).transform(X)
    np.testing.assert_array_equal(out, tiny(use_task=False).fit(X, schema=schema).transform(X))


def test_empty_meta_set_is_a_clear_error(data):
    X, _, _ = data
    with pytest.raises(ValueError, match="meta set is empty"):
        tiny().fit(X, np.arange(X.shape[0]))                        # every class has one row


def test_grid_with_meta_network_is_a_clear_error(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="weight_grid"):
        tiny(weight_grid=[0.1, 1]).fit(X, y)


def test_meta_set_is_ten_percent_of_each_class(data):
    X, y, _ = data
    imputer = tiny().fit(X, y)
    counts = np.bincount(y)
    assert imputer.info_["meta_rows"] == sum(int(np.ceil(0.1 * c)) for c in counts)


def test_trace_is_kept_apart_from_info(data):
    X, y, _ = data
    imputer = tiny(trace=True).fit(X, y)
    assert len(imputer.trace_) == TINY["iterations"]
    assert {"beta", "gamma", "eta", "rc", "me"} <= set(imputer.trace_[0])
    assert imputer.info_["beta"] == imputer.trace_[-1]["beta"]
    assert tiny().fit(X, y).trace_ is None


@pytest.mark.parametrize("name", ["metagain", "metagain_none"])
def test_weights_trajectory_is_sampled_every_trajectory_every_iterations(name, data):
    X, y, _ = data
    imputer = build_imputer(name, profile="smoke", device="cpu", iterations=250, trajectory_every=100,
                            weight_grid=None, hidden=12, latent=4, n_layers=3, disc_hidden=8, trace=True)
    imputer.fit(X, y)
    trajectory = imputer.info_["weights_trajectory"]
    assert trajectory["iteration"] == [0.0, 100.0, 200.0, 249.0]
    for key in ("beta", "gamma", "eta"):
        assert trajectory[key] == [imputer.trace_[int(it)][key] for it in trajectory["iteration"]]
        assert trajectory[key][-1] == pytest.approx(imputer.info_[key])
    if name == "metagain_none":                                   # no MN: the fixed weights throughout
        assert trajectory["eta"] == pytest.approx([0.01] * 4) and trajectory["beta"] == [0.0] * 4


def test_training_loop_reads_the_host_only_every_check(data, monkeypatch):
    """No per-iteration host read (a GPU synchronisation): 250 iterations read a flag 3 times.

    Run with the SGD meta optimiser: torch's Adam reads its step counters with ``.item()``, but it
    keeps them on the CPU, so those reads never wait for the device.
    """
    import metagain.imputer as module

    X, y, _ = data
    reads = []
    train = module._train

    def counting_train(*args, **kwargs):
        for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
            def counted(tensor, *a, _real=getattr(torch.Tensor, name), _name=name, **k):
                reads.append(_name)
                return _real(tensor, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, counted)
        try:
            return train(*args, **kwargs)
        finally:
            monkeypatch.undo()

    monkeypatch.setattr(module, "_train", counting_train)
    tiny(iterations=250, meta_optimizer="sgd").fit(X, y)
    # the (K,) divergence flags read at 99, 199, 249 (one tolist each); the weights trajectory once
    assert sorted(reads) == ["tolist"] * 4


def test_divergence_is_one_clear_error(data):
    X, y, _ = data
    with pytest.raises(TrainingDivergedError, match="Meta-GAIN at or before iteration"):
        tiny(learning_rate=1e12, iterations=20).fit(X, y)


def test_bad_draw_and_trajectory_options_are_clear_errors(data):
    X, y, _ = data
    for bad in (dict(impute_draws=-1), dict(trajectory_every=0)):
        with pytest.raises(ValueError, match="impute_draws"):
            tiny(**bad).fit(X, y)


def test_meta_weights_move_during_training(data):
    X, y, _ = data
    imputer = tiny(trace=True, iterations=10).fit(X, y)
    betas = [row["beta"] for row in imputer.trace_]
    assert max(betas) != min(betas)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda(data):
    X, y, schema = data
    imputer = tiny(device="auto").fit(X, y, schema)
    assert imputer.device_ == "cuda"
    assert next(imputer.model_.parameters()).is_cuda
    out, draws = imputer.transform(X), imputer.sample(X, 2)
    assert not np.isnan(out).any() and draws.shape == (2,) + X.shape
    np.testing.assert_array_equal(out, tiny(device="cuda").fit(X, y, schema).transform(X))


@pytest.mark.slow
def test_metagain_and_gain_beat_mean_on_letter(tmp_path):
    mean = quick_armse("letter", "mean", tmp_path)
    assert quick_armse("letter", "metagain", tmp_path) < mean
    assert quick_armse("letter", "gain", tmp_path) < mean
