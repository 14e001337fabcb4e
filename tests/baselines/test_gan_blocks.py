"""The pieces GAIN and Meta-GAIN share: noise fill, hints, discriminator, losses, scaling.

Every piece works on K models at once: tensors are (K, batch, d), losses are (K,) vectors (one
per model), and the random numbers are uniform draws ``u`` the caller passes in. The batch
sampler is ``baselines._batched.EpochSampler`` (tests/baselines/test_batched.py).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines._batched import generators
from baselines._gan import Discriminator, ObservedMinMax, adversarial_loss, discriminator_loss, noise_fill, \
    observed_mse, sample_hint


@pytest.fixture
def batch():
    """(K = 2, 50 rows, 7 features): two models with different data and masks."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 50, 7, generator=g)
    m = (torch.rand(2, 50, 7, generator=g) > 0.3).float()
    return x, m


def uniform(shape, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_noise_fill_keeps_observed_and_draws_small_noise(batch):
    x, m = batch
    u = uniform(x.shape, 1)
    x_tilde = noise_fill(x, m, u, high=0.01)
    assert x_tilde.shape == x.shape
    assert torch.equal(x_tilde[m == 1], x[m == 1])
    noise = x_tilde[m == 0]
    assert noise.min() >= 0 and noise.max() <= 0.01 and noise.std() > 0
    torch.testing.assert_close(noise, (0.01 * u)[m == 0])   # S = high · u, u from the caller


def test_gain_hint_is_b_times_m(batch):
    _, m = batch
    hint = sample_hint(m, uniform(m.shape, 2), 0.9)
    assert set(hint.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(hint <= m)                       # never reveals a missing entry as observed
    for k in range(m.shape[0]):                       # per model: B ~ Bernoulli(0.9) on the observed entries
        revealed = (hint[k] == m[k])[m[k] == 1].float().mean()
        assert 0.8 < revealed < 0.97


def test_hint_is_b_from_the_given_draws(batch):
    """B = [u < hint_rate]: the hint is a function of the draws the caller gives, not a hidden generator."""
    _, m = batch
    u = uniform(m.shape, 2)
    torch.testing.assert_close(sample_hint(m, u, 0.9), (u < 0.9).float() * m)
    assert torch.equal(sample_hint(m, torch.zeros_like(m), 0.9), m)   # every B = 1: H = M
    assert torch.equal(sample_hint(m, torch.ones_like(m), 0.9), torch.zeros_like(m))


def test_metagain_hint_marks_hidden_entries_one_half(batch):
    _, m = batch
    hint = sample_hint(m, uniform(m.shape, 2), 0.9, unknown=0.5)
    assert set(hint.unique().tolist()) == {0.0, 0.5, 1.0}
    b = hint != 0.5
    assert torch.equal(hint[b], m[b])                 # where B = 1 the hint is the mask itself
    assert 0.05 < (~b).float().mean() < 0.15


def test_same_draws_same_fill(batch):
    x, m = batch
    a = noise_fill(x, m, uniform(x.shape, 5))
    b = noise_fill(x, m, uniform(x.shape, 5))
    assert torch.equal(a, b)
    assert not torch.equal(a, noise_fill(x, m, uniform(x.shape, 6)))


def test_discriminator_shape_and_range(batch):
    x, m = batch
    disc = Discriminator(7, 11, generators([0, 1], "cpu"))
    out = disc(x, m)
    assert out.shape == x.shape and torch.all((out > 0) & (out < 1))
    weights = [p for n, p in disc.named_parameters() if n.endswith("weight")]
    assert [tuple(w.shape) for w in weights] == [(2, 14, 11), (2, 11, 11), (2, 11, 7)]  # 3 layers, as GAIN
    assert all(torch.equal(b, torch.zeros_like(b)) for n, b in disc.named_parameters() if n.endswith("bias"))
    assert not torch.equal(weights[0][0], weights[0][1])  # each model its own init


def test_discriminator_models_are_independent(batch):
    """Model k's output depends only on model k's input (no mixing across the model axis)."""
    x, m = batch
    disc = Discriminator(7, 11, generators([0, 1], "cpu"))
    out = disc(x, m)
    x2 = x.clone()
    x2[1] = 0.5
    out2 = disc(x2, m)
    assert torch.equal(out[0], out2[0]) and not torch.equal(out[1], out2[1])


def test_losses_match_their_definitions(batch):
    x, m = batch
    m_hat = torch.full_like(m, 0.7)
    d_loss, ad_loss = discriminator_loss(m, m_hat), adversarial_loss(m, m_hat)
    assert d_loss.shape == ad_loss.shape == (2,)      # one loss per model
    for k in range(2):                                # each over its own model's batch only
        assert torch.isclose(d_loss[k], -(m[k] * np.log(0.7) + (1 - m[k]) * np.log(0.3)).mean(), atol=1e-5)
        assert torch.isclose(ad_loss[k], -((1 - m[k]) * np.log(0.7)).mean(), atol=1e-5)
    x_bar = x + 0.1 * (1 - m)                         # wrong only where missing
    assert torch.equal(observed_mse(x, x_bar, m), torch.zeros(2))
    x_bar = x + 0.1 * m * torch.tensor([0.0, 1.0])[:, None, None]   # model 1 wrong where observed
    mse = observed_mse(x, x_bar, m)
    assert mse[0] == 0
    torch.testing.assert_close(mse[1], ((0.1 * m[1]) ** 2).sum() / m[1].sum())


def test_observed_min_max_round_trip_and_constant_column():
    X = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 10.0], [np.nan, 5.0, 20.0]])
    scaler = ObservedMinMax().fit(X)
    Z = scaler.transform(X)
    assert np.nanmin(Z) == 0 and np.nanmax(Z) == 1 and np.all(Z[:, 1] == 0)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X)
