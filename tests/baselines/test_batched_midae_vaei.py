"""MIDAE and VAEI trained with a model axis: a group of fits (``fit_group``) gives each fit the
numbers it gets alone, and a fit that diverges fails only its own entry."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from baselines import midae, vaei
from baselines._base import TrainingDivergedError
from baselines.midae import MIDAEImputer
from baselines.vaei import VAEImputer
from experiments.data import load_dataset
from experiments.registry import CONF_DIR
from experiments.scoring import complete_unit_scale
from tests.conftest import hide

# Small budgets on heart (297 rows, 13 columns, 6 nominal): MIDAE 10 steps per epoch, VAEI 3 (the last one short).
PARAMS = {MIDAEImputer: dict(epochs=4, device="cpu"), VAEImputer: dict(epochs=12, batch_size=128, device="cpu")}
SEEDS = (0, 1, 2)
CLASSES = [MIDAEImputer, VAEImputer]


@pytest.fixture(scope="module")
def heart():
    """Heart on [0, 1] with two MCAR masks of the same shape: fits 0 and 2 see mask A, fit 1 mask B."""
    spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / "heart.yaml"))
    dataset = load_dataset(spec)
    X = complete_unit_scale(dataset)
    a, b = hide(X, 0.2, seed=1), hide(X, 0.3, seed=2)
    return [a, b, a], dataset.schema


def _alone(cls, X, schema, seed, **extra):
    return cls(**PARAMS[cls], **extra, random_state=seed).fit(X, schema=schema)


def _assert_same_fit(grouped, alone, X):
    np.testing.assert_allclose(grouped.transform(X), alone.transform(X), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grouped.sample(X, 2), alone.sample(X, 2), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grouped.loss_history_, alone.loss_history_, rtol=1e-6)
    assert grouped.info_["epochs_run"] == alone.info_["epochs_run"]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_group_equals_each_fit_alone(heart, cls):
    """Fits of a group (different seeds and masks) match their runs alone: no leak between models."""
    Xs, schema = heart
    group = [cls(**PARAMS[cls], random_state=s) for s in SEEDS]
    assert cls.fit_group(group, Xs, schemas=[schema] * 3) == [None, None, None]
    outputs = []
    for imputer, X, seed in zip(group, Xs, SEEDS):
        assert all(p.shape[0] == 1 for p in imputer.model_.parameters()), "model_ is one K = 1 slice"
        _assert_same_fit(imputer, _alone(cls, X, schema, seed), X)
        outputs.append(imputer.transform(Xs[0]))
    # the fits really differ (seed, data): equal outputs would not show the model axis is kept apart
    assert not np.allclose(outputs[0], outputs[1]) and not np.allclose(outputs[0], outputs[2])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_group_order_does_not_matter(heart, cls):
    Xs, schema = heart
    forward = [cls(**PARAMS[cls], random_state=s) for s in SEEDS]
    backward = [cls(**PARAMS[cls], random_state=s) for s in SEEDS[::-1]]
    cls.fit_group(forward, Xs, schemas=[schema] * 3)
    cls.fit_group(backward, Xs[::-1], schemas=[schema] * 3)
    for a, b, X in zip(forward, backward[::-1], Xs):
        np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=1e-6, atol=1e-7)


def _poison_model_1(monkeypatch, cls):
    """Make model 1 of a 3-model group non-finite from its first step: NaN reaches its weights."""
    poison = torch.tensor([1.0, float("nan"), 1.0])
    if cls is MIDAEImputer:
        forward = midae.DenoisingAutoencoder.forward

        def poisoned(self, x):
            out = forward(self, x)
            return out * poison[:, None, None] if out.shape[0] == 3 else out
        monkeypatch.setattr(midae.DenoisingAutoencoder, "forward", poisoned)
    else:
        elbo = vaei.negative_elbo

        def poisoned(model, x, observed, eps):
            loss = elbo(model, x, observed, eps)
            return loss * poison if loss.shape[0] == 3 else loss
        monkeypatch.setattr(vaei, "negative_elbo", poisoned)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_a_diverged_fit_fails_only_its_own_entry(heart, cls, monkeypatch):
    Xs, schema = heart
    module = midae if cls is MIDAEImputer else vaei
    monkeypatch.setattr(module, "CHECK_STEPS", 5)  # several read-backs during training, not only the last
    _poison_model_1(monkeypatch, cls)
    group = [cls(**PARAMS[cls], random_state=s) for s in SEEDS]
    errors = cls.fit_group(group, Xs, schemas=[schema] * 3)
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], TrainingDivergedError)
    assert f"{'MIDAE' if cls is MIDAEImputer else 'VAEI'} epoch 1:" in str(errors[1])
    assert not hasattr(group[1], "model_")
    monkeypatch.undo()
    for k in (0, 2):
        _assert_same_fit(group[k], _alone(cls, Xs[k], schema, SEEDS[k]), Xs[k])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_divergence_of_every_fit_stops_training(heart, cls):
    Xs, schema = heart
    group = [cls(**{**PARAMS[cls], "lr": 1e12}, random_state=s) for s in SEEDS]
    errors = cls.fit_group(group, Xs, schemas=[schema] * 3)
    assert all(isinstance(e, TrainingDivergedError) for e in errors)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_bad_parameters_fail_every_fit_of_the_group(heart, cls):
    Xs, schema = heart
    group = [cls(**{**PARAMS[cls], "epochs": 0}, random_state=s) for s in SEEDS]
    errors = cls.fit_group(group, Xs, schemas=[schema] * 3)
    assert all(isinstance(e, ValueError) for e in errors)


def test_midae_partial_last_batch_and_no_dropout_group_equals_alone(heart):
    """Batch size not dividing the rows (a short last batch) and dropout 0 keep fits apart too."""
    Xs, schema = heart
    extra = dict(batch_size=50, dropout=0.0, missing_input="dropped")
    group = [MIDAEImputer(**PARAMS[MIDAEImputer], **extra, random_state=s) for s in SEEDS]
    assert MIDAEImputer.fit_group(group, Xs, schemas=[schema] * 3) == [None, None, None]
    for k in range(3):
        alone = _alone(MIDAEImputer, Xs[k], schema, SEEDS[k], **extra)
        np.testing.assert_allclose(group[k].transform(Xs[k]), alone.transform(Xs[k]), rtol=1e-6, atol=1e-7)
