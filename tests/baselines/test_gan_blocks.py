"""The pieces GAIN and Meta-GAIN share: noise fill, hints, discriminator, losses, batches, scaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines._gan import BatchSampler, Discriminator, ObservedMinMax, adversarial_loss, \
    discriminator_loss, noise_fill, observed_mse, sample_hint


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 7, generator=g)
    m = (torch.rand(50, 7, generator=g) > 0.3).float()
    return x, m


def test_noise_fill_keeps_observed_and_draws_small_noise(batch):
    x, m = batch
    x_tilde = noise_fill(x, m, torch.Generator().manual_seed(1), high=0.01)
    assert torch.equal(x_tilde[m == 1], x[m == 1])
    noise = x_tilde[m == 0]
    assert noise.min() >= 0 and noise.max() <= 0.01 and noise.std() > 0


def test_gain_hint_is_b_times_m(batch):
    _, m = batch
    hint = sample_hint(m, 0.9, torch.Generator().manual_seed(2))
    assert set(hint.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(hint <= m)                       # never reveals a missing entry as observed
    revealed = (hint == m)[m == 1].float().mean()
    assert 0.8 < revealed < 0.97                      # B ~ Bernoulli(0.9) on the observed entries


def test_metagain_hint_marks_hidden_entries_one_half(batch):
    _, m = batch
    hint = sample_hint(m, 0.9, torch.Generator().manual_seed(2), unknown=0.5)
    assert set(hint.unique().tolist()) == {0.0, 0.5, 1.0}
    b = hint != 0.5
    assert torch.equal(hint[b], m[b])                 # where B = 1 the hint is the mask itself
    assert 0.05 < (~b).float().mean() < 0.15


def test_same_generator_seed_same_draws(batch):
    x, m = batch
    a = noise_fill(x, m, torch.Generator().manual_seed(5))
    b = noise_fill(x, m, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_discriminator_shape_and_range(batch):
    x, m = batch
    torch.manual_seed(0)
    out = Discriminator(7, 11)(x, m)
    assert out.shape == x.shape and torch.all((out > 0) & (out < 1))
    assert len([p for p in Discriminator(7, 11).parameters() if p.dim() == 2]) == 3  # 3 layers, as GAIN


def test_losses_match_their_definitions(batch):
    x, m = batch
    m_hat = torch.full_like(m, 0.7)
    assert torch.isclose(discriminator_loss(m, m_hat),
                         -(m * np.log(0.7) + (1 - m) * np.log(0.3)).mean(), atol=1e-5)
    assert torch.isclose(adversarial_loss(m, m_hat), -((1 - m) * np.log(0.7)).mean(), atol=1e-5)
    x_bar = x + 0.1 * (1 - m)                         # wrong only where missing
    assert observed_mse(x, x_bar, m) == 0


def test_batch_sampler_without_replacement_and_small_sets():
    sampler = BatchSampler(10, 4, torch.Generator().manual_seed(0))
    idx = sampler()
    assert len(idx) == 4 and len(set(idx.tolist())) == 4
    assert sorted(BatchSampler(3, 64, torch.Generator())().tolist()) == [0, 1, 2]


def test_observed_min_max_round_trip_and_constant_column():
    X = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, 10.0], [np.nan, 5.0, 20.0]])
    scaler = ObservedMinMax().fit(X)
    Z = scaler.transform(X)
    assert np.nanmin(Z) == 0 and np.nanmax(Z) == 1 and np.all(Z[:, 1] == 0)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X)
