"""ReMasker trained with a model axis: a group of fits is the same fits run alone (issue 12)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from baselines import remasker
from baselines._base import TrainingDivergedError
from baselines.remasker import ReMaskerImputer
from experiments.data import load_dataset
from experiments.registry import CONF_DIR
from experiments.runner import complete_unit_scale
from tests.conftest import hide

# Small network and budget: 3 epochs of 3 batches on wine's 178 rows.
SMALL = dict(epochs=3, warmup_epochs=1, embed_dim=16, depth=1, decoder_depth=1, device="cpu")


@pytest.fixture(scope="module")
def wine_masks():
    """Wine (UCI 109, 178 × 13) scaled to [0, 1], under two different MCAR masks of the same shape."""
    spec = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / "wine.yaml"))
    X = complete_unit_scale(load_dataset(spec))
    return hide(X, 0.2, seed=1), hide(X, 0.3, seed=2)


def alone(X, seed, **params):
    return ReMaskerImputer(random_state=seed, **{**SMALL, **params}).fit(X)


def assert_same_fit(grouped: ReMaskerImputer, single: ReMaskerImputer, Xs) -> None:
    for X in Xs:
        np.testing.assert_allclose(grouped.transform(X), single.transform(X), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(grouped.loss_history_, single.loss_history_, rtol=1e-6, atol=1e-7)
    assert grouped.info_ == pytest.approx(single.info_, rel=1e-6)


def test_a_group_trains_each_fit_as_it_trains_alone(wine_masks):
    # Different seeds and different data (two masks) in one group: if the model axis leaked
    # (a shared generator, a loss normalised over the group, attention across models), the
    # grouped fits would differ from the single ones.
    X_a, X_b = wine_masks
    Xs, seeds = [X_a, X_b, X_a], [0, 1, 2]
    group = [ReMaskerImputer(random_state=s, **SMALL) for s in seeds]
    assert ReMaskerImputer.fit_group(group, Xs) == [None, None, None]
    for grouped, X, seed in zip(group, Xs, seeds):
        assert grouped.model_.cls_token.shape[0] == 1  # each fit keeps its own K = 1 slice
        assert_same_fit(grouped, alone(X, seed), [X_a, X_b])
    # Same data, other seed: another model (the seed reaches every model of the group).
    assert not np.allclose(group[0].transform(X_a), group[2].transform(X_a))


def test_fits_with_other_parameters_form_their_own_group(wine_masks):
    X_a, X_b = wine_masks
    group = [ReMaskerImputer(random_state=0, **SMALL), ReMaskerImputer(random_state=1, **{**SMALL, "epochs": 2})]
    assert group[0]._group_key(X_a, None) != group[1]._group_key(X_b, None)
    assert ReMaskerImputer.fit_group(group, [X_a, X_b]) == [None, None]
    assert_same_fit(group[0], alone(X_a, 0), [X_a])
    assert_same_fit(group[1], alone(X_b, 1, epochs=2), [X_b])


def test_a_diverging_model_fails_only_its_own_fit(wine_masks, monkeypatch):
    # Model 1 of a group of 3 gets NaN predictions, so NaN gradients and NaN weights from its
    # first step on; the other two must train on exactly as alone.
    X_a, X_b = wine_masks
    Xs, seeds = [X_a, X_b, X_b], [0, 1, 2]
    singles = [alone(X, s) for X, s in zip(Xs, seeds)]
    original = remasker.remasker_loss

    def poisoned(pred, target, visible, observed):
        if pred.shape[0] == 3:
            factor = torch.ones(3, 1, 1)
            factor[1] = float("nan")
            pred = pred * factor
        return original(pred, target, visible, observed)

    monkeypatch.setattr(remasker, "remasker_loss", poisoned)
    group = [ReMaskerImputer(random_state=s, **SMALL) for s in seeds]
    errors = ReMaskerImputer.fit_group(group, Xs)
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], TrainingDivergedError) and "epoch 1" in str(errors[1])
    assert not hasattr(group[1], "model_")
    for k in (0, 2):
        assert_same_fit(group[k], singles[k], [Xs[k]])
    # Alone, the same failure is raised by fit.
    monkeypatch.setattr(remasker, "remasker_loss", lambda pred, *rest: original(pred * float("nan"), *rest))
    with pytest.raises(TrainingDivergedError, match="diverged"):
        alone(X_a, 0)


def test_a_wrong_parameter_fails_every_fit_of_its_group(wine_masks):
    X_a, _ = wine_masks
    group = [ReMaskerImputer(random_state=s, **{**SMALL, "warmup_epochs": 5}) for s in (0, 1)]
    errors = ReMaskerImputer.fit_group(group, [X_a, X_a])
    assert all(isinstance(e, ValueError) and "warmup_epochs" in str(e) for e in errors)
