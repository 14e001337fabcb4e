"""metagain/model.py: the networks, the meta network and one bi-level training iteration."""
from __future__ import annotations

import pytest
import torch

from metagain.model import Generator, MetaGAIN, MetaGAINConfig, MetaNet, hide_observed


def small_config(**overrides) -> MetaGAINConfig:
    base = dict(n_features=5, n_classes=3, hidden=16, n_layers=3, latent=6, disc_hidden=8, batch_size=16)
    return MetaGAINConfig(**{**base, **overrides})


def make_model(seed=0, **overrides) -> MetaGAIN:
    torch.manual_seed(seed)
    return MetaGAIN(small_config(**overrides)).configure_optimizers()


def make_batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 5, generator=g)
    m = (torch.rand(16, 5, generator=g) > 0.25).float()
    y = torch.randint(0, 3, (16,), generator=g)
    x_me = torch.rand(8, 5, generator=g)
    m_me = (torch.rand(8, 5, generator=g) > 0.25).float()
    return x, m, y, x_me, m_me


def step(model, seed=0):
    return model.train_step(*make_batches(seed), torch.Generator().manual_seed(seed + 1))


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def test_meta_step_moves_theta_with_nonzero_meta_gradient():
    model = make_model()
    before = snapshot(model.meta)
    stats = step(model)
    grads = [p.grad for p in model.meta.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0              # ∂L_me/∂θ ≠ 0: ŵ depends on θ
    assert any(not torch.equal(a, b) for a, b in zip(before, model.meta.parameters()))
    assert torch.isfinite(stats[5])                            # L_me was computed


def test_linear_virtual_step_equals_create_graph_version():
    """The cheap first-order form gives exactly the meta gradient of the textbook double backward."""
    a, b = make_model(virtual_step="linear"), make_model(virtual_step="create_graph")
    stats_a, stats_b = step(a), step(b)
    torch.testing.assert_close(stats_a, stats_b, equal_nan=True)
    for pa, pb in zip(a.meta.parameters(), b.meta.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-8)
    for pa, pb in zip(a.G.parameters(), b.G.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["mlp", "scalar"])
def test_meta_net_starts_at_initial_weights(kind):
    cfg = small_config(meta_net=kind, init_beta=0.1, init_gamma=0.2, init_eta=0.01)
    weights = MetaNet(cfg)(torch.tensor([93.0, 3.2, 0.1]))
    torch.testing.assert_close(weights, torch.tensor([0.1, 0.2, 0.01]))


def test_without_meta_network_there_are_no_meta_parameters():
    model = make_model(use_meta=False)
    assert model.meta is None and model.opt_meta is None
    assert not [n for n, _ in model.named_parameters() if n.startswith("meta")]
    stats = step(model)
    assert torch.isnan(stats[5])                               # no meta loss
    torch.testing.assert_close(stats[6:], torch.tensor([0.1, 0.1, 0.01]))


def test_virtual_and_meta_step_leave_real_weights_untouched():
    model = make_model(real_step_from="w")                      # from ŵ, w is set to ŵ before step (4)
    model.opt_G.step = lambda: None                             # skip only the real step (4)
    before = snapshot(model.G)
    meta_before = snapshot(model.meta)
    step(model)
    for a, b in zip(before, model.G.parameters()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(meta_before, model.meta.parameters()))


@pytest.mark.parametrize("real_step_from", ["w", "w_hat"])
def test_real_step_updates_generator(real_step_from):
    model = make_model(real_step_from=real_step_from)
    before = snapshot(model.G)
    step(model)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.G.parameters()))


def test_real_step_starts_from_w_hat_by_default():
    """Algorithm 1 line 19: w⁽ᵗ⁺¹⁾ is a step from ŵ, here ŵ = one plain step with the initial weights."""
    assert small_config().real_step_from == "w_hat"
    plain = dict(momentum=0.0, weight_decay=0.0)
    model = make_model(**plain)
    model.opt_G.step = lambda: None                             # stop at ŵ, before the step from it
    step(model)
    fixed = make_model(use_meta=False, **plain)                 # same init: G and D are built first
    step(fixed)                                                 # w − η₁ ∇L_G(w; 0.1, 0.1, 0.01) = ŵ
    for a, b in zip(model.G.parameters(), fixed.G.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("optimizer, kind", [("adam", torch.optim.Adam), ("sgd", torch.optim.SGD)])
def test_both_meta_optimisers_train_theta(optimizer, kind):
    model = make_model(meta_optimizer=optimizer, meta_lr=1e-3)
    assert type(model.opt_meta) is kind
    before = snapshot(model.meta)
    stats = step(model)
    assert torch.isfinite(stats).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.meta.parameters()))


def test_adam_is_the_default_meta_optimiser():
    cfg = small_config()
    assert (cfg.meta_optimizer, cfg.meta_lr, cfg.meta_draws) == ("adam", 1e-4, 1)
    with pytest.raises(ValueError, match="meta_optimizer"):
        small_config(meta_optimizer="rmsprop")


def test_real_step_options_differ():
    a, b = make_model(real_step_from="w"), make_model(real_step_from="w_hat")
    step(a), step(b)
    assert any(not torch.equal(pa, pb) for pa, pb in zip(a.G.parameters(), b.G.parameters()))


def test_without_kl_the_encoder_is_deterministic():
    torch.manual_seed(0)
    gen = Generator(small_config(use_kl=False))
    x, m = make_batches()[:2]
    assert gen.encoder[-1].out_features == 6                   # μ only, no log σ²
    mu, logvar, x_bar, _ = gen(x, m, eps=torch.randn(16, 6))
    assert logvar is None
    torch.testing.assert_close(x_bar, gen(x, m)[2])            # noise has no effect


def test_with_kl_the_encoder_samples():
    torch.manual_seed(0)
    gen = Generator(small_config(use_kl=True))
    x, m = make_batches()[:2]
    assert gen.encoder[-1].out_features == 12                  # μ and log σ²
    assert not torch.allclose(gen(x, m, eps=torch.randn(16, 6))[2], gen(x, m)[2])


def test_without_task_there_is_no_task_head_and_no_task_loss():
    model = make_model(use_task=False, n_classes=0)
    assert model.G.task_head is None
    stats = step(model)
    assert stats[2] == 0 and stats[7] == 0                     # L_tr and γ


def test_use_task_needs_classes():
    with pytest.raises(ValueError, match="n_classes"):
        small_config(use_task=True, n_classes=0)


def test_hide_observed_hides_only_observed_entries():
    m = (torch.rand(40, 6, generator=torch.Generator().manual_seed(0)) > 0.3).float()
    hide = hide_observed(m, 0.2, torch.Generator().manual_seed(1))
    assert torch.all(hide <= m)
    assert 0.1 < hide.sum() / m.sum() < 0.3
    one = torch.zeros(1, 6)
    one[0, 3] = 1
    assert hide_observed(one, 1e-6, torch.Generator()).sum() == 1   # at least one entry to score


def test_meta_loss_ignores_really_missing_entries():
    model = make_model()
    x, m = make_batches()[3:5]
    hide = hide_observed(m, 0.3, torch.Generator().manual_seed(0))
    params = dict(model.G.named_parameters())
    poisoned = torch.where(m == 0, torch.full_like(x, 1e6), x)     # true values of missing entries
    assert model.meta_mse(params, x, m, hide) == model.meta_mse(params, poisoned, m, hide)


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="virtual_step"):
        small_config(virtual_step="hessian")
    with pytest.raises(ValueError, match="real_step_from"):
        small_config(real_step_from="theta")


@pytest.mark.parametrize("draws", [0, 1, 3])
def test_meta_loss_ignores_really_missing_entries_with_draws(draws):
    model = make_model()
    x, m = make_batches()[3:5]
    hide = hide_observed(m, 0.3, torch.Generator().manual_seed(0))
    params = dict(model.G.named_parameters())
    poisoned = torch.where(m == 0, torch.full_like(x, 1e6), x)
    a = model.meta_mse(params, x, m, hide, torch.Generator().manual_seed(1), draws)
    b = model.meta_mse(params, poisoned, m, hide, torch.Generator().manual_seed(1), draws)
    assert a == b


def test_meta_loss_of_one_draw_is_the_loss_of_that_draw():
    """L_me with draws scores what impute returns with the same draws (the imputed estimator)."""
    model = make_model()
    x, m = make_batches()[3:5]
    hide = hide_observed(m, 0.3, torch.Generator().manual_seed(0))
    params = dict(model.G.named_parameters())
    for draws in (1, 4):
        me = model.meta_mse(params, x, m, hide, torch.Generator().manual_seed(2), draws)
        m_in = m * (1 - hide)
        x_imp = model.impute(x.repeat(draws, 1), m_in.repeat(draws, 1), torch.Generator().manual_seed(2), 1)
        x_bar = x_imp.view(draws, *x.shape).mean(dim=0)
        torch.testing.assert_close(me, ((hide * (x_bar - x)) ** 2).sum() / hide.sum())


def test_meta_loss_with_draws_is_differentiable_in_theta():
    model = make_model(meta_draws=2)
    step(model)
    assert sum(p.grad.abs().sum() for p in model.meta.parameters()) > 0


def test_impute_averages_draws_of_z_and_s():
    """impute(draws=K) is the mean of the K single draws the same generator gives in turn."""
    model = make_model()
    x, m = make_batches()[:2]
    mean = model.impute(x, m, torch.Generator().manual_seed(5), draws=7)
    g = torch.Generator().manual_seed(5)
    singles = torch.stack([model.impute(x, m, g) for _ in range(7)])
    torch.testing.assert_close(mean, singles.mean(dim=0))
    assert torch.equal(mean[m == 1], x[m == 1])
    assert not torch.allclose(mean, model.impute(x, m))           # not the Z = μ point decoding
    assert torch.equal(mean, model.impute(x, m, torch.Generator().manual_seed(5), draws=7))
    with pytest.raises(ValueError, match="draws"):
        model.impute(x, m, torch.Generator(), draws=0)


def test_impute_is_deterministic_without_generator_and_keeps_observed():
    model = make_model()
    x, m = make_batches()[:2]
    a, b = model.impute(x, m), model.impute(x, m)
    assert torch.equal(a, b) and torch.equal(a[m == 1], x[m == 1])
    drawn = model.impute(x, m, torch.Generator().manual_seed(0))
    assert not torch.equal(drawn, a)
