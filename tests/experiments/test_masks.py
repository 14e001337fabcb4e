"""Missingness mechanisms: realised ratio, limits, determinism, redraws."""
from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments.data import load_dataset
from experiments.masks import MaskError, draw_mask, make_mask, mar_limit, tolerance
from experiments.registry import CONF_DIR
from experiments.runner import complete_unit_scale
from tests.experiments.test_data import DATASETS

RATIOS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


@pytest.fixture(scope="module")
def unit_data():
    out = {}
    for key in DATASETS:
        spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / f"{key}.yaml"))
        ds = load_dataset(spec)
        # the check is about the mechanism, not the size: 3000 rows keep the test fast
        rows = np.random.default_rng(0).permutation(ds.n_rows)[:3000]
        out[key] = complete_unit_scale(ds)[rows]
    return out


@pytest.mark.parametrize("mechanism", ["mcar", "mnar", "mnar_self", "mnar_quantile", "mar"])
def test_realised_ratio_is_within_tolerance_everywhere(unit_data, mechanism):
    for key, X in unit_data.items():
        ratios = RATIOS if mechanism != "mar" else [r for r in RATIOS if r <= mar_limit(X.shape[1])]
        for ratio in ratios:
            hidden = make_mask(X, mechanism, ratio, np.random.default_rng(1))
            gap = abs(hidden.mean() - ratio)
            assert gap <= tolerance(hidden.size, ratio), (key, mechanism, ratio, hidden.mean())


def test_mar_keeps_driving_columns_observed_and_refuses_beyond_its_limit():
    X = np.random.default_rng(0).random((500, 10))
    hidden = make_mask(X, "mar", 0.4, np.random.default_rng(0))
    assert (hidden.sum(axis=0) == 0).sum() == 3  # p_obs = 0.3 of 10 columns
    assert mar_limit(10) == pytest.approx(0.63)
    with pytest.raises(MaskError, match="at most 0.630 of all entries; ratio=0.7"):
        make_mask(X, "mar", 0.7, np.random.default_rng(0))


def test_mnar_depends_on_the_hidden_values():
    rng = np.random.default_rng(0)
    X = rng.random((4000, 5))
    hidden = make_mask(X, "mnar_self", 0.3, np.random.default_rng(2))
    # self-masking: hidden values differ in distribution from observed ones in every column
    gaps = [abs(X[hidden[:, j], j].mean() - X[~hidden[:, j], j].mean()) for j in range(5)]
    assert min(gaps) > 0.05
    quant = make_mask(X, "mnar_quantile", 0.3, np.random.default_rng(2))
    assert all(X[quant[:, j], j].min() >= X[~quant[:, j], j].max() for j in range(5))


@pytest.mark.parametrize("mechanism", ["mcar", "mar", "mnar", "mnar_self", "mnar_quantile"])
def test_same_seed_same_mask(mechanism):
    X = np.random.default_rng(0).random((200, 6))
    a = make_mask(X, mechanism, 0.3, np.random.default_rng(5))
    b = make_mask(X, mechanism, 0.3, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_unit_interval_is_rejected(bad):
    with pytest.raises(MaskError, match="strictly between 0 and 1"):
        make_mask(np.zeros((10, 3)), "mcar", bad, 0)


def test_unknown_mechanism_is_rejected_not_turned_into_mcar():
    with pytest.raises(MaskError, match="Unknown missingness mechanism 'nmar'"):
        make_mask(np.zeros((10, 3)), "nmar", 0.2, 0)


def test_redraw_then_clear_error_when_a_column_stays_unobserved():
    X = np.random.default_rng(0).random((6, 3))
    train = np.arange(2)
    hidden = draw_mask(X, "mcar", 0.5, seed=0, train_idx=train)  # redraws until both rows leave a value
    assert not hidden[train].all(axis=0).any()
    with pytest.raises(MaskError, match="still have no observed training value"):
        draw_mask(X, "mcar", 0.99, seed=0, train_idx=np.arange(6))
