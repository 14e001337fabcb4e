"""metagain/model.py: the networks, the meta network and one bi-level training iteration.

Everything has a leading model axis K (``baselines/_batched.py``): most tests run K = 1 (the
estimator's case), a few K = 2 to check that the models of one batch stay apart.
"""
from __future__ import annotations

import pytest
import torch

from baselines._batched import Streams, generators
from metagain.model import Generator, MetaGAIN, MetaGAINConfig, MetaNet, hide_observed


def small_config(**overrides) -> MetaGAINConfig:
    base = dict(n_features=5, n_classes=3, hidden=16, n_layers=3, latent=6, disc_hidden=8, batch_size=16)
    return MetaGAINConfig(**{**base, **overrides})


def init_gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def make_model(seed=0, K=1, init_weights=None, hide_ratios=None, **overrides) -> MetaGAIN:
    """K models, model k initialised from seed ``seed + k``."""
    return MetaGAIN(small_config(**overrides), init_gens([seed + k for k in range(K)]),
                    init_weights, hide_ratios).configure_optimizers()


def make_batches(seed=0, K=1):
    """(x, m, y, x_me, m_me) of K models, each (K, rows, ·); model k's data from seed ``seed + k``."""
    parts = []
    for k in range(K):
        g = torch.Generator().manual_seed(seed + k)
        x = torch.rand(16, 5, generator=g)
        m = (torch.rand(16, 5, generator=g) > 0.25).float()
        y = torch.randint(0, 3, (16,), generator=g)
        x_me = torch.rand(8, 5, generator=g)
        m_me = (torch.rand(8, 5, generator=g) > 0.25).float()
        parts.append((x, m, y, x_me, m_me))
    return tuple(torch.stack(t) for t in zip(*parts))


def streams(seed=0, K=1):
    return Streams(generators([seed + 1 + k for k in range(K)], "cpu"))


def step(model, seed=0):
    K = model.hide_ratio.shape[0]
    return model.train_step(*make_batches(seed, K), streams(seed, K))


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def test_train_step_returns_nine_stats_per_model():
    stats = step(make_model(K=2))
    assert stats.shape == (2, 9)
    assert torch.isfinite(stats).all()


def test_meta_step_moves_theta_with_nonzero_meta_gradient():
    model = make_model()
    before = snapshot(model.meta)
    stats = step(model)
    grads = [p.grad for p in model.meta.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0              # ∂L_me/∂θ ≠ 0: ŵ depends on θ
    assert any(not torch.equal(a, b) for a, b in zip(before, model.meta.parameters()))
    assert torch.isfinite(stats[0, 5])                         # L_me was computed


def test_linear_virtual_step_equals_create_graph_version():
    """The cheap first-order form gives exactly the meta gradient of the textbook double backward."""
    a, b = make_model(virtual_step="linear"), make_model(virtual_step="create_graph")
    stats_a, stats_b = step(a), step(b)
    torch.testing.assert_close(stats_a, stats_b, equal_nan=True)
    for pa, pb in zip(a.meta.parameters(), b.meta.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-8)
    for pa, pb in zip(a.G.parameters(), b.G.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-7)


def test_linear_virtual_step_equals_create_graph_version_for_two_models():
    a, b = make_model(K=2, virtual_step="linear"), make_model(K=2, virtual_step="create_graph")
    torch.testing.assert_close(step(a), step(b), equal_nan=True)
    for pa, pb in zip(a.meta.parameters(), b.meta.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("kind", ["mlp", "scalar"])
def test_meta_net_starts_at_initial_weights(kind):
    cfg = small_config(meta_net=kind)
    init = torch.tensor([[0.1, 0.2, 0.01], [1.0, 0.05, 0.3]])     # each model its own first weights
    weights = MetaNet(cfg, init, init_gens([0, 1]))(torch.tensor([[93.0, 3.2, 0.1], [5.0, 0.7, 2.0]]))
    torch.testing.assert_close(weights, init)


def test_without_meta_network_there_are_no_meta_parameters():
    model = make_model(use_meta=False)
    assert model.meta is None and model.opt_meta is None
    assert not [n for n, _ in model.named_parameters() if n.startswith("meta")]
    stats = step(model)
    assert torch.isnan(stats[0, 5])                            # no meta loss
    torch.testing.assert_close(stats[0, 6:], torch.tensor([0.1, 0.1, 0.01]))


def test_without_meta_network_each_model_keeps_its_fixed_weights():
    init = torch.tensor([[0.1, 0.1, 0.01], [1.0, 0.5, 0.3]])
    stats = step(make_model(K=2, init_weights=init, use_meta=False))
    torch.testing.assert_close(stats[:, 6:], init)
    off = step(make_model(K=2, init_weights=init, use_meta=False, use_kl=False))
    torch.testing.assert_close(off[:, 6:], init * torch.tensor([0.0, 1.0, 1.0]))  # β off without ID


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


@pytest.mark.parametrize("overrides", [{}, {"use_meta": False}, {"real_step_from": "w"},
                                       {"use_kl": False, "use_task": False, "n_classes": 0},
                                       {"meta_net": "scalar", "meta_draws": 2}])
def test_each_model_of_a_batch_equals_its_run_alone(overrides):
    """K = 2 models (own init, data, random streams) train exactly as each does at K = 1."""
    both = make_model(K=2, hide_ratios=torch.tensor([0.2, 0.4]), **overrides)
    alone = [make_model(seed=k, hide_ratios=torch.tensor([0.2 + 0.2 * k]), **overrides) for k in range(2)]
    data, stream = make_batches(K=2), streams(K=2)
    stream_alone = [Streams(generators([1 + k], "cpu")) for k in range(2)]
    for _ in range(3):
        stats = both.train_step(*data, stream)
        stream.advance()
        for k, model in enumerate(alone):
            one = model.train_step(*(t[k:k + 1] for t in data), stream_alone[k])
            stream_alone[k].advance()
            torch.testing.assert_close(stats[k:k + 1], one, rtol=1e-6, atol=1e-7, equal_nan=True)
    for k, model in enumerate(alone):
        for pb, pa in zip(both.G.parameters(), model.G.parameters()):
            torch.testing.assert_close(pb[k:k + 1], pa, rtol=1e-6, atol=1e-7)
    assert not torch.equal(stats[0], stats[1])                 # the two models really differ


def test_without_kl_the_encoder_is_deterministic():
    gen = Generator(small_config(use_kl=False), init_gens([0]))
    x, m = make_batches()[:2]
    assert gen.encoder[-1].fan_out == 6                        # μ only, no log σ²
    mu, logvar, x_bar, _ = gen(x, m, eps=torch.randn(1, 16, 6))
    assert logvar is None
    torch.testing.assert_close(x_bar, gen(x, m)[2])            # noise has no effect


def test_with_kl_the_encoder_samples():
    gen = Generator(small_config(use_kl=True), init_gens([0]))
    x, m = make_batches()[:2]
    assert gen.encoder[-1].fan_out == 12                       # μ and log σ²
    assert not torch.allclose(gen(x, m, eps=torch.randn(1, 16, 6))[2], gen(x, m)[2])


def test_without_task_there_is_no_task_head_and_no_task_loss():
    model = make_model(use_task=False, n_classes=0)
    assert model.G.task_head is None
    stats = step(model)
    assert stats[0, 2] == 0 and stats[0, 7] == 0               # L_tr and γ


def test_use_task_needs_classes():
    with pytest.raises(ValueError, match="n_classes"):
        small_config(use_task=True, n_classes=0)


def test_hide_observed_hides_only_observed_entries():
    g = torch.Generator().manual_seed(0)
    m = (torch.rand(2, 40, 6, generator=g) > 0.3).float()
    u = torch.rand(2, 40, 6, generator=g)
    hide = hide_observed(m, torch.tensor([0.2, 0.5]).view(2, 1, 1), u)
    assert torch.all(hide <= m)
    rates = hide.sum(dim=(1, 2)) / m.sum(dim=(1, 2))          # each model its own ratio
    assert 0.1 < rates[0] < 0.3 and 0.4 < rates[1] < 0.6
    torch.testing.assert_close(hide[1], (u[1] < 0.5).float() * m[1])
    one = torch.zeros(1, 1, 6)
    one[0, 0, 3] = 1
    ratio = torch.full((1, 1, 1), 1e-6)
    assert hide_observed(one, ratio, torch.rand(1, 1, 6)).sum() == 1   # at least one entry to score
    assert torch.equal(hide_observed(one, ratio, torch.rand(1, 1, 6)), one)


def test_hide_observed_fallback_is_per_model():
    """The at-least-one fallback picks the observed entry with the smallest draw, only where needed."""
    m = torch.ones(2, 4, 3)
    m[0, 0, 0] = 0                                             # the smallest draw of model 0 is missing
    u = torch.linspace(0.05, 0.95, 12).repeat(2, 1).view(2, 4, 3)
    hide = hide_observed(m, torch.tensor([1e-6, 0.3]).view(2, 1, 1), u)
    expected0 = torch.zeros(4, 3)
    expected0[0, 1] = 1                                        # the smallest draw among observed entries
    assert torch.equal(hide[0], expected0)
    assert torch.equal(hide[1], (u[1] < 0.3).float())          # model 1 hides its own share, untouched
    assert torch.equal(hide_observed(torch.zeros(1, 4, 3), torch.full((1, 1, 1), 0.3), u[:1]),
                       torch.zeros(1, 4, 3))                   # nothing observed: nothing hidden


def meta_inputs(K=1, ratio=0.3, seed=0):
    x, m = make_batches(K=K)[3:5]
    u = torch.rand(m.shape, generator=torch.Generator().manual_seed(seed))
    return x, m, hide_observed(m, torch.full((K, 1, 1), ratio), u)


def draws_for(model, K, rows, draws, seed=1):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(K, draws * rows, model.cfg.n_features, generator=g)
    eps = torch.randn(K, draws * rows, model.cfg.latent, generator=g)
    return u, eps


def test_meta_loss_ignores_really_missing_entries():
    model = make_model()
    x, m, hide = meta_inputs()
    params = dict(model.G.named_parameters())
    poisoned = torch.where(m == 0, torch.full_like(x, 1e6), x)     # true values of missing entries
    a = model.meta_mse(params, x, m, hide)
    assert a.shape == (1,)
    assert torch.equal(a, model.meta_mse(params, poisoned, m, hide))


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="virtual_step"):
        small_config(virtual_step="hessian")
    with pytest.raises(ValueError, match="real_step_from"):
        small_config(real_step_from="theta")


@pytest.mark.parametrize("draws", [0, 1, 3])
def test_meta_loss_ignores_really_missing_entries_with_draws(draws):
    model = make_model(K=2)
    x, m, hide = meta_inputs(K=2)
    params = dict(model.G.named_parameters())
    poisoned = torch.where(m == 0, torch.full_like(x, 1e6), x)
    u, eps = draws_for(model, 2, x.shape[1], draws) if draws else (None, None)
    a = model.meta_mse(params, x, m, hide, u, eps, draws)
    b = model.meta_mse(params, poisoned, m, hide, u, eps, draws)
    assert a.shape == (2,) and torch.equal(a, b)


def test_meta_loss_is_per_model():
    """Model 1's meta loss does not move when model 0's hidden values change."""
    model = make_model(K=2)
    x, m, hide = meta_inputs(K=2)
    params = dict(model.G.named_parameters())
    u, eps = draws_for(model, 2, x.shape[1], 1)
    a = model.meta_mse(params, x, m, hide, u, eps, 1)
    x2 = x.clone()
    x2[0] = x2[0] + 0.5 * hide[0]
    b = model.meta_mse(params, x2, m, hide, u, eps, 1)
    assert a[1] == b[1] and a[0] != b[0]


def test_meta_loss_of_one_draw_is_the_loss_of_that_draw():
    """L_me with draws scores what impute returns with the same draws (the imputed estimator)."""
    model = make_model()
    x, m, hide = meta_inputs()
    params = dict(model.G.named_parameters())
    m_in = m * (1 - hide)
    for draws in (1, 4):
        rows = draws * x.shape[1]
        g = torch.Generator().manual_seed(2)                    # impute draws u, then eps, per draw
        u = torch.rand(1, rows, model.cfg.n_features, generator=g)
        eps = torch.randn(1, rows, model.cfg.latent, generator=g)
        me = model.meta_mse(params, x, m, hide, u, eps, draws)
        x_imp = model.impute(x.repeat(1, draws, 1), m_in.repeat(1, draws, 1), torch.Generator().manual_seed(2), 1)
        x_bar = x_imp.view(draws, *x.shape[1:]).mean(dim=0)
        torch.testing.assert_close(me[0], ((hide[0] * (x_bar - x[0])) ** 2).sum() / hide[0].sum())


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
