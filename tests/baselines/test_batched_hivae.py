"""HIVAE trained with a model axis: a group of fits gives each fit the numbers it gets alone,
a diverging model fails only its own entry, and fits group only when their column layout agrees."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from baselines._base import TrainingDivergedError
from baselines.hivae import HIVAEImputer, HIVAENet, observed_moments
from experiments.data import load_dataset
from experiments.registry import CONF_DIR
from experiments.runner import complete_unit_scale
from tests.conftest import hide

SMALL = dict(epochs=6, batch_size=50, device="cpu")  # 5 steps an epoch on heart's 297 rows
SEEDS = (0, 1, 2)
CLOSE = dict(rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def heart():
    """Heart (numeric, nominal and ordinal columns) on [0, 1], with two different MCAR masks."""
    dataset = load_dataset(OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / "heart.yaml")))
    X = complete_unit_scale(dataset)
    first, second = hide(X, 0.2, seed=1), hide(X, 0.35, seed=2)
    return [first, second, first], dataset.schema  # fits 0 and 2: same data, other seeds


@pytest.fixture(scope="module")
def alone(heart):
    """Each fit run by itself: ``fit`` is the batched code at K = 1."""
    Xs, schema = heart
    return [HIVAEImputer(random_state=seed, **SMALL).fit(X, schema=schema) for seed, X in zip(SEEDS, Xs)]


def assert_same_fit(imputer, reference, X):
    np.testing.assert_allclose(imputer.transform(X), reference.transform(X), **CLOSE)
    np.testing.assert_allclose(imputer.sample(X, 2), reference.sample(X, 2), **CLOSE)
    np.testing.assert_allclose(imputer.loss_history_, reference.loss_history_, **CLOSE)
    assert imputer.info_ == pytest.approx(reference.info_, rel=1e-6)


def test_a_group_gives_every_fit_its_alone_numbers(heart, alone, monkeypatch):
    Xs, schema = heart
    sizes = []
    batched = HIVAEImputer._fit_batched.__func__
    monkeypatch.setattr(HIVAEImputer, "_fit_batched",
                        classmethod(lambda cls, imps, *rest: sizes.append(len(imps)) or batched(cls, imps, *rest)))
    imputers = [HIVAEImputer(random_state=seed, **SMALL) for seed in SEEDS]
    assert HIVAEImputer.fit_group(imputers, Xs, schemas=[schema] * 3) == [None, None, None]
    assert sizes == [3], "the three fits should train as one batched model"
    for imputer, reference, X in zip(imputers, alone, Xs):
        assert_same_fit(imputer, reference, X)
    # the models really differ (a leak or a shared generator would make them agree or drift)
    assert not np.allclose(imputers[0].transform(Xs[0]), imputers[2].transform(Xs[0]))
    assert imputers[0].net_.enc_s.weight.shape[0] == 1, "each fit keeps its own K = 1 slice"


def test_a_diverging_model_fails_only_its_own_entry(heart, alone, monkeypatch):
    """NaN injected into model 1's loss (hence its gradients and weights) stays in model 1."""
    Xs, schema = heart
    elbo = HIVAENet.negative_elbo

    def poisoned(self, *args):
        loss = elbo(self, *args)
        if loss.shape[0] != 3:
            return loss
        return loss * torch.tensor([1.0, float("nan"), 1.0])

    monkeypatch.setattr(HIVAENet, "negative_elbo", poisoned)
    imputers = [HIVAEImputer(random_state=seed, **SMALL) for seed in SEEDS]
    errors = HIVAEImputer.fit_group(imputers, Xs, schemas=[schema] * 3)
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], TrainingDivergedError)
    assert "HIVAE epoch 1" in str(errors[1]) and "nan" in str(errors[1])
    assert not hasattr(imputers[1], "net_")
    for k in (0, 2):
        assert_same_fit(imputers[k], alone[k], Xs[k])


def test_fits_group_only_with_the_same_column_layout(heart, monkeypatch):
    """Likelihoods chosen from the data ("auto") and the schema's kinds must agree within a group;
    a fit whose data the likelihood refuses fails alone."""
    Xs, schema = heart
    sizes = []
    batched = HIVAEImputer._fit_batched.__func__
    monkeypatch.setattr(HIVAEImputer, "_fit_batched",
                        classmethod(lambda cls, imps, *rest: sizes.append(len(imps)) or batched(cls, imps, *rest)))
    shifted = Xs[0].copy()
    shifted[:, 0] += 0.5  # column 0 strictly positive: "auto" makes it log-normal
    kinds = list(schema.kinds)
    renamed = type(schema)(kinds=["nominal"] + kinds[1:], n_categories=(2,) + schema.n_categories[1:])
    nominal_first = Xs[0].copy()
    nominal_first[:, 0] = np.where(np.isnan(nominal_first[:, 0]), np.nan, np.round(nominal_first[:, 0]))
    params = dict(SMALL, epochs=1, numeric_likelihood="auto")
    imputers = [HIVAEImputer(random_state=seed, **params) for seed in range(4)]
    errors = HIVAEImputer.fit_group(imputers, [Xs[0], shifted, nominal_first, Xs[0]],
                                    schemas=[schema, schema, renamed, schema])
    assert errors == [None] * 4
    assert sorted(sizes) == [1, 1, 2]
    assert [imputer.likelihoods_[0] for imputer in imputers] == ["real", "pos", "cat", "real"]

    sizes.clear()
    pos = [HIVAEImputer(random_state=seed, **dict(params, numeric_likelihood="pos")) for seed in range(2)]
    errors = HIVAEImputer.fit_group(pos, [Xs[0], Xs[0] - 0.5], schemas=[schema] * 2)
    assert errors[0] is None and isinstance(errors[1], ValueError) and "numeric_likelihood" in str(errors[1])


def test_observed_moments_reduce_over_each_models_own_rows():
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(3, 40, 4, generator=generator)
    observed = (torch.rand(3, 40, 4, generator=generator) < 0.6).float()
    observed[1, :, 2] = 0.0  # a column with nothing observed in model 1 only
    mean, var = observed_moments(values, observed)
    assert mean.shape == var.shape == (3, 1, 4)
    for k in range(3):
        alone_mean, alone_var = observed_moments(values[k:k + 1], observed[k:k + 1])
        torch.testing.assert_close(mean[k:k + 1], alone_mean)
        torch.testing.assert_close(var[k:k + 1], alone_var)
    assert mean[1, 0, 2] == 0.0 and var[1, 0, 2] == 1.0 and var[0, 0, 2] != 1.0
