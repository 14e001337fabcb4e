"""Meta-GAIN (Tong, Zhu & Gan, "Meta-GAIN for Missing Data Imputation", AAAI 2026), one file.

Read top to bottom: the hyperparameters, the generator (encoder, decoder, task head), the meta
network that sets the loss weights (β, γ, η), then :class:`MetaGAIN`, whose ``train_step`` is one
iteration of the paper's Algorithm 1 in four steps:

1. discriminator step on a training batch;
2. virtual step ŵ = w − η₁ ∇_w L_G(w; θ), differentiable in θ;
3. meta step: hide a further share of the meta batch's *observed* entries, reconstruct them with
   ŵ from a draw of (Z, S) (``meta_draws``), L_me = MSE on those entries (Eq. 10; never the values of
   really missing entries), θ ← θ − η₂ ∇_θ L_me (Eq. 13, with Adam: below);
4. real step w⁽ᵗ⁺¹⁾ = ŵ − η₁ ∇_w L_G(ŵ; θ_new), from ŵ as Algorithm 1 line 19 says ("Update w with
   Eq. (12) (from ŵᵗ to wᵗ⁺¹)"; the text: "we re-update ŵ⁽ᵗ⁾ to w⁽ᵗ⁺¹⁾"). This costs the meta-network
   variants a second generator pass per iteration that the variants without MN do not have.
   ``real_step_from="w"`` is Meta-Weight-Net's order (a step from w with θ_new, reusing the gradients
   at w); measured on yeast/valley (quick, MCAR 0.2, seed 0, audit §2) it sits on the "column mean"
   plateau of valley for the whole quick budget (test ARMSE 0.149 vs 0.015 from ŵ).

Why the virtual step is cheap: L_G = L_rc + β L_kl + γ L_tr + η L_ad and θ enters only through the
three weights, so ∇_w L_G(w; θ) = g_rc + β g_kl + γ g_tr + η g_ad with per-term gradients g that do
not depend on θ. ŵ built from those four (detached) gradients is exactly as differentiable in θ
as the create_graph version, without a second-order pass.
``virtual_step="create_graph"`` runs the textbook second-order path; a test checks both agree.

The meta optimiser (η₂ is not given; Eq. 13 writes an SGD step): Adam on θ, as Meta-Weight-Net's
public code builds for its VNet. The hypergradient ∂L_me/∂θ is a one-step look-ahead,
η₁⟨∇L_me(ŵ), g_k⟩, and spans 10⁻³ … 10⁻⁶ during training, so with SGD at η₂ = 10⁻² the weights
stay where they start (a drift of ~10⁻³ in 1 500 steps, audit §3): ``meta_optimizer="sgd"`` keeps
that update. Adam's step does not scale with the hypergradient, so θ does learn. Our choices,
measured on training data only (quick cells, MCAR 0.2, 2 000 iterations; train ARMSE of the
training rows' hidden entries; numbers in ``conf/imputer/metagain.yaml``):

- ``meta_lr=1e-4``. At Meta-Weight-Net's 10⁻³ the meta network switches the KL (ID) and
  adversarial terms off within ~500 iterations (β, η → 10⁻⁴ … 10⁻⁶), and train ARMSE is worse
  than with the inert SGD update in all 5 cells tried. At 10⁻⁴ it is within 1.5% of SGD on
  yeast and letter and 2–11% better on valley.
- ``meta_draws=1``: L_me scores one reparametrised draw of (Z, S), as the imputation uses draws.
  At Z = μ (``meta_draws=0``), Adam tunes the weights for the point decoding, which is not what
  is imputed: yeast train ARMSE 0.136 (Adam 10⁻³) against Mean's 0.120.

What the meta network does with these settings, plainly: it mostly turns the KL term down. Over
the quick budget β falls from 0.1 to 0.03–0.05 on valley and yeast seed 0 (yeast seed 1 ends
near 0.11), γ stays near 0.1 and η moves both ways (valley 0.01 → 0.003). Over 10 000 iterations
it ends at β ≈ 0.004, γ ≈ 0.02, η ≈ 0.004 on yeast, and on valley η climbs to 0.2–0.3 while γ
falls to 0.004. Train ARMSE at 10 000 iterations is worse than at 2 000 (yeast 0.126 against
0.115, and SGD's 0.113; valley 0.013 against 0.010, and SGD's 0.014, where β runs off to 0.98). That
contradicts the paper's remark that the learned β exceeds γ and η. It is consistent with the known
short-horizon bias of one-step meta-gradients: a greedy look-ahead favours dropping regularisers.

Imputation (``impute``): the mean of K decoded draws of (Z, S). This is the paper's "imputed
values are sampled from the embedding space" (Method, Imputation Diversity), pooled into one point
estimate. Without a generator ``impute`` decodes Z = μ, S = E[S]. The decoder only ever trains on
Z = μ + σε, so at Z = μ its output is biased (a Jensen gap through the ReLUs): on yeast (quick,
MCAR 0.2) Z = μ imputes at test ARMSE 0.151 and the mean of draws at 0.110 (audit §2).

Choices the paper leaves open (ours), checked on letter (2 000 rows, MCAR 0.2, 1 500 iterations):
- loss scales: ``reduction="row"`` sums L_rc and L_ad over a row's entries (Eq. 3 writes sums) and
  averages over rows; ``kl_reduction="mean"`` averages L_kl over latent dimensions. With per-entry
  means and the full KL ("entry"/"sum") the posterior collapses (L_kl → 0, even at β = 0.001) and
  Z = μ imputes ≈ 0.5 everywhere: RMSE 0.20 against Mean's 0.16;
- init: GAIN's N(0, 2/fan_in) weights and zero biases (blocks.gain_init_) in every network; with
  PyTorch's default init the ten layers from input to output barely learn under SGD at 10⁻²;
- the meta MLP reads log(1 + L): L_kl starts near 100 and raw inputs threw θ off in one step.

Every tensor has a leading model axis (``baselines/_batched.py``): ``MetaGAIN`` is K models
trained as one computation (seeds, masks, grid points of the searches), each with its own
initial weights and random numbers, and one fit is K = 1. No step of ``train_step`` reads a
value back to the host, so a GPU run is never synchronised per iteration; the imputer checks
for divergence every 100 steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines._batched import Aligned, aligned, batch_mean, batch_sum, mlp, pad_rows
from baselines._gan import Discriminator, adversarial_loss, discriminator_loss, noise_fill, observed_mse, \
    sample_hint


@dataclass
class MetaGAINConfig:
    n_features: int = 1            # d: set from the data
    n_classes: int = 0             # C: set from the labels (needed when use_task)
    hidden: int = 100              # paper, Implementation Details: "every layer ... 100 neurons"
    n_layers: int = 5              # paper, Implementation Details: encoder, decoder, task head: 5 layers
    latent: int = 100              # docs/DESIGN.md: latent width configurable, default the hidden width
    disc_hidden: int = 100         # ours (docs/DESIGN.md): the paper gives no discriminator width
    batch_size: int = 64           # paper, Implementation Details
    lr: float = 1e-2               # paper ("learning weight 10^-2"); also η₁ of the virtual step
    momentum: float = 0.9          # paper: SGD with momentum 0.9
    weight_decay: float = 1e-5     # paper ("gradually decay as 10^-5")
    iterations: int = 10_000       # ours (docs/DESIGN.md): GAIN's count; the paper gives none
    hint_rate: float = 0.9         # docs/DESIGN.md: B ~ Bernoulli(0.9), GAIN's hint rate
    noise_high: float = 0.01       # docs/DESIGN.md: S ~ U(0, 0.01), as GAIN's uniform_sampler
    use_kl: bool = True            # ID component: variational encoder + L_kl (off: Z = μ, no L_kl)
    use_meta: bool = True          # MN component: meta network sets (β, γ, η) (off: fixed weights)
    use_task: bool = True          # TR component: task head + L_tr (off: neither)
    meta_net: str = "mlp"          # docs/DESIGN.md: "mlp" (Meta-Weight-Net style) | "scalar" (3 log-weights)
    meta_hidden: int = 100         # ours (docs/DESIGN.md): one hidden layer of 100
    meta_optimizer: str = "adam"   # Meta-Weight-Net's code (Adam, its VNet) | "sgd": Eq. 13 as written (inert)
    meta_lr: float = 1e-4          # η₂, ours, measured (above); Meta-Weight-Net's 1e-3 switches β, η off
    meta_momentum: float = 0.9     # ours (docs/DESIGN.md): momentum of the "sgd" meta optimiser only
    init_beta: float = 0.1         # ours (docs/DESIGN.md): first weight of L_kl
    init_gamma: float = 0.1        # ours (docs/DESIGN.md): first weight of L_tr
    init_eta: float = 0.01         # ours (docs/DESIGN.md): GAIN's alpha = 100 balance of L_rc and L_ad
    meta_draws: int = 1            # ours, measured (above): L_me of one draw of (Z, S) | 0: of Z = μ
    meta_hide_ratio: float = 0.2   # share of meta entries hidden for L_me (the imputer: the missing rate)
    reduction: str = "row"         # ours (above): "row" = L_rc, L_ad summed over a row | "entry" = per-entry means
    kl_reduction: str = "mean"     # ours (above): "mean" = L_kl per latent dim | "sum" = the full KL of a row
    real_step_from: str = "w_hat"  # Algorithm 1 line 19 ("from ŵᵗ to wᵗ⁺¹") | "w" (Meta-Weight-Net's order)
    virtual_step: str = "linear"   # "linear" (exact, first-order cost) | "create_graph" (second order)

    def __post_init__(self):
        for key, allowed in (("meta_net", ("mlp", "scalar")), ("meta_optimizer", ("adam", "sgd")),
                             ("real_step_from", ("w", "w_hat")),
                             ("reduction", ("row", "entry")), ("kl_reduction", ("mean", "sum")),
                             ("virtual_step", ("linear", "create_graph"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}.")
        if self.use_task and self.n_classes < 1:
            raise ValueError("use_task=True needs n_classes >= 1: pass the number of classes of the labels.")
        if not 0 < self.meta_hide_ratio < 1:
            raise ValueError(f"meta_hide_ratio must be in (0, 1), got {self.meta_hide_ratio}.")
        if self.meta_draws < 0:
            raise ValueError(f"meta_draws must be >= 0 (0: score Z = mu), got {self.meta_draws}.")


class Generator(nn.Module):
    """Encoder [X̃, M] → (μ, log σ²) of Z; decoder Z → X̄ (sigmoid); task head Z → class logits.

    K generators at once (``baselines/_batched.py``): inputs and outputs are (K, batch, ·).
    """

    def __init__(self, cfg: MetaGAINConfig, init_generators: list[torch.Generator]):
        super().__init__()
        self.use_kl = cfg.use_kl
        inner = [cfg.hidden] * (cfg.n_layers - 1)  # n_layers fully connected layers in each network
        code_width = (2 if cfg.use_kl else 1) * cfg.latent  # (μ, log σ²) or μ alone
        gens = init_generators
        self.encoder = mlp([2 * cfg.n_features, *inner, code_width], gens, "gain")
        self.decoder = mlp([cfg.latent, *inner, cfg.n_features], gens, "gain",
                           out_activation=Aligned(torch.sigmoid))
        self.task_head = mlp([cfg.latent, *inner, cfg.n_classes], gens, "gain") if cfg.use_task else None

    def forward(self, x_tilde, m, eps=None, task: bool = True):
        """``eps`` (K, batch, latent) draws Z = μ + σ ε; ``None`` gives the point estimate Z = μ."""
        code = self.encoder(torch.cat([x_tilde, m], dim=-1))  # (K, batch, 2d) → (K, batch, 2·latent | latent)
        if self.use_kl:
            mu, logvar = code.chunk(2, dim=-1)                 # two (K, batch, latent) halves
            logvar = logvar.clamp(-10.0, 10.0)                 # keeps exp() finite early in training
        else:
            mu, logvar = code, None
        z = mu if eps is None or logvar is None else mu + aligned(torch.exp, 0.5 * logvar) * eps
        logits = self.task_head(z) if task and self.task_head is not None else None
        return mu, logvar, self.decoder(z), logits


class MetaNet(nn.Module):
    """θ: the detached losses (L_kl, L_tr, L_ad) → weights (β, γ, η) > 0, for K models: (K, 3) → (K, 3).

    ``init`` (K, 3) are the first weights of each model.
    """

    def __init__(self, cfg: MetaGAINConfig, init: torch.Tensor, init_generators: list[torch.Generator]):
        super().__init__()
        self.kind = cfg.meta_net
        if self.kind == "scalar":
            self.log_weights = nn.Parameter(aligned(torch.log, init))
        else:
            self.net = mlp([3, cfg.meta_hidden, 3], init_generators, "torch")
            with torch.no_grad():  # zero output weights + inverse-softplus bias: the first output is `init`
                self.net[-1].weight.zero_()
                inverse = init + aligned(lambda t: torch.log(-torch.expm1(-t)), init)  # softplus⁻¹(init)
                self.net[-1].bias.copy_(inverse[:, None, :])

    def forward(self, losses):
        if self.kind == "scalar":
            return aligned(torch.exp, self.log_weights)
        # log1p tames L_kl ≈ 100 at init
        return aligned(F.softplus, self.net(aligned(torch.log1p, losses)[:, None, :]))[:, 0, :]


def hide_observed(m, ratio, u):
    """Mask of a random ``ratio`` (K, 1, 1) of each model's observed entries of ``m`` (K, batch, d).

    ``u`` ~ U(0, 1) of the same shape as ``m``. At least one entry is hidden when any is observed:
    for a tiny meta batch with nothing hidden, the observed entry with the smallest draw (chosen on
    the device, without an ``if`` on a tensor, so no host synchronisation per step).
    """
    hide = (u < ratio).to(m.dtype) * m
    flat = torch.where(m > 0, u, 2.0).reshape(m.shape[0], -1)
    fallback = F.one_hot(flat.argmin(dim=1), flat.shape[1]).to(m.dtype).view(m.shape) * m
    return torch.where(batch_sum(hide)[:, None, None] > 0, hide, fallback)


class MetaGAIN(nn.Module):
    """K models, each a generator G (weights w), discriminator D, and meta network θ (absent without MN).

    Model k draws its initial weights from ``init_generators[k]``; ``init_weights`` (K, 3) are its
    first (MN) or fixed (no MN) (β, γ, η) and ``hide_ratios`` (K,) its share of hidden meta entries
    (both default to ``cfg``'s for every model).
    """

    def __init__(self, cfg: MetaGAINConfig, init_generators: list[torch.Generator],
                 init_weights: torch.Tensor | None = None, hide_ratios: torch.Tensor | None = None):
        super().__init__()
        self.cfg, K = cfg, len(init_generators)
        if init_weights is None:
            init_weights = torch.tensor([[cfg.init_beta, cfg.init_gamma, cfg.init_eta]] * K)
        if hide_ratios is None:
            hide_ratios = torch.full((K,), cfg.meta_hide_ratio)
        self.G = Generator(cfg, init_generators)
        self.D = Discriminator(cfg.n_features, cfg.disc_hidden, init_generators)
        self.meta = MetaNet(cfg, init_weights, init_generators) if cfg.use_meta else None
        # β and γ only count when their component is on; η (the GAIN term) always does
        active = torch.tensor([float(cfg.use_kl), float(cfg.use_task), 1.0])
        self.register_buffer("active", active.expand(K, 3).clone())
        self.register_buffer("fixed", init_weights.float().clone())
        self.register_buffer("hide_ratio", hide_ratios.float().view(K, 1, 1).clone())

    def configure_optimizers(self):
        """SGD for G and D (paper); Adam or SGD for θ (``meta_optimizer``). Call after ``.to(device)``.

        The optimisers are element-wise, so one over the K stacked models is K independent ones;
        ``foreach`` (CUDA's default) updates all tensors in a few dispatches with the same numbers.
        """
        cfg = self.cfg
        self.opt_G = torch.optim.SGD(self.G.parameters(), cfg.lr, cfg.momentum, weight_decay=cfg.weight_decay,
                                     foreach=True)
        self.opt_D = torch.optim.SGD(self.D.parameters(), cfg.lr, cfg.momentum, weight_decay=cfg.weight_decay,
                                     foreach=True)
        if self.meta is None:
            self.opt_meta = None
        elif cfg.meta_optimizer == "adam":  # scale-free in the tiny hypergradient (module docstring)
            self.opt_meta = torch.optim.Adam(self.meta.parameters(), cfg.meta_lr, foreach=True)
        else:
            self.opt_meta = torch.optim.SGD(self.meta.parameters(), cfg.meta_lr, cfg.meta_momentum, foreach=True)
        return self

    def drop_optimizers(self):
        """Forget the optimisers (before ``baselines._batched.select`` copies one model out)."""
        self.opt_G = self.opt_D = self.opt_meta = None
        return self

    def weights(self, losses):
        """(K, 3) (β, γ, η) of this batch, zero for the components that are off."""
        return (self.fixed if self.meta is None else self.meta(losses)) * self.active

    # ------------------------------------------------------------------ losses
    def terms(self, out, x, m, y, hint):
        """(K,) L_rc and (K, 3) weighted terms (L_kl, L_tr, L_ad) of the generator output ``out``."""
        mu, logvar, x_bar, logits = out
        zero, cfg = x_bar.new_zeros(x.shape[0]), self.cfg
        ad = adversarial_loss(m, self.D(m * x + (1 - m) * x_bar, hint))
        if cfg.reduction == "row":  # Eq. 3's sums over a row's entries, then the batch mean
            rc, ad = ((m * (x_bar - x)) ** 2).sum(dim=-1).mean(dim=-1), ad * x.shape[-1]
        else:                       # GAIN's per-entry means
            rc = observed_mse(x, x_bar, m)
        if cfg.use_kl:
            kl = -0.5 * (1 + logvar - mu ** 2 - aligned(torch.exp, logvar))  # (K, batch, latent)
            kl = batch_mean(kl) if cfg.kl_reduction == "mean" else kl.sum(dim=-1).mean(dim=-1)
        else:
            kl = zero
        if cfg.use_task:
            tr = cross_entropy(logits, y)
        else:
            tr = zero
        return rc, torch.stack([kl, tr, ad], dim=1)

    def meta_mse(self, params, x, m, hide, u=None, eps=None, draws: int = 0):
        """(K,) MSE on the ``hide`` entries of the imputation with generator weights ``params``.

        ``draws`` ≥ 1: the mean of that many decoded draws of (Z, S), the estimator ``impute``
        uses, one batched pass (differentiable in θ through the reparametrised draws), from the
        uniform draws ``u`` (K, draws·batch, d) and normal ``eps`` (K, draws·batch, latent);
        ``draws=0``: the point decoding Z = μ, S = E[S].
        """
        m_in = m * (1 - hide)
        if draws == 0:
            x_tilde, eps, m_rep = m_in * x + (1 - m_in) * (0.5 * self.cfg.noise_high), None, m_in
        else:
            x_rep, m_rep = x.repeat(1, draws, 1), m_in.repeat(1, draws, 1)   # (K, draws · batch, d)
            x_tilde = noise_fill(x_rep, m_rep, u, self.cfg.noise_high)
            eps = eps if self.cfg.use_kl else None
        x_bar = functional_call(self.G, params, (x_tilde, m_rep, eps), {"task": False})[2]
        x_bar = x_bar.view(x.shape[0], max(draws, 1), *x.shape[1:]).mean(dim=1)
        return batch_sum((hide * (x_bar - x)) ** 2) / batch_sum(hide).clamp_min(1.0)

    def meta_draws(self, streams, n_rows: int, draws: int):
        """The (u, eps) of ``meta_mse``'s ``draws`` draws for ``n_rows`` meta rows, from ``streams``."""
        if draws == 0:
            return None, None
        u = streams.uniform("meta_noise", (draws * n_rows, self.cfg.n_features))
        eps = streams.normal("meta_eps", (draws * n_rows, self.cfg.latent)) if self.cfg.use_kl else None
        return u, eps

    # ------------------------------------------------------------------ one iteration
    def train_step(self, x, m, y, x_me, m_me, streams):
        """One iteration of Algorithm 1 for the K models; returns (K, 9): (L_rc, L_kl, L_tr, L_ad, L_D,
        L_me, β, γ, η) per model. ``streams`` (``baselines._batched.Streams``) gives each model its
        own random numbers; call ``streams.advance()`` after."""
        cfg, names = self.cfg, [n for n, _ in self.G.named_parameters()]
        w = [p for _, p in self.G.named_parameters()]
        K, rows = x.shape[0], x.shape[1:]
        x_tilde = noise_fill(x, m, streams.uniform("noise", rows), cfg.noise_high)
        hint = sample_hint(m, streams.uniform("hint", rows), cfg.hint_rate, unknown=0.5)
        eps = streams.normal("eps", (rows[0], cfg.latent)) if cfg.use_kl else None
        out = self.G(x_tilde, m, eps)

        # (1) discriminator step on X̂ of the current generator (GAIN's order: D, then G on the same batch)
        d_loss = discriminator_loss(m, self.D(m * x + (1 - m) * out[2].detach(), hint))
        self.opt_D.zero_grad(set_to_none=True)
        d_loss.sum().backward()
        self.opt_D.step()

        rc, aux = self.terms(out, x, m, y, hint)
        losses = aux.detach()  # meta-net input: the batch's (L_kl, L_tr, L_ad), no gradient into w
        me = rc.new_full((K,), float("nan"))
        if self.meta is None:
            weights = self.weights(losses)
            grads = _grads((rc + (weights * aux).sum(dim=1)).sum(), w)
        else:
            # per-term gradients, one batched backward: g_rc, g_kl, g_tr, g_ad of each model,
            # a (4, K, *shape) tensor per parameter
            per_term = _grads(torch.stack([rc.sum(), *aux.sum(dim=0)]), w, batched=True)
            ones = torch.ones(K, 1, device=x.device)
            # meta rows padded to a multiple of 16 with m = 0 rows (never hidden, so L_me ignores them):
            # the BLAS calls then give each model the numbers it gets alone (baselines/_batched.py)
            x_me, m_me = pad_rows(x_me), pad_rows(m_me)
            hide = hide_observed(m_me, self.hide_ratio, streams.uniform("hide", m_me.shape[1:]))
            u_me, eps_me = self.meta_draws(streams, m_me.shape[1], cfg.meta_draws)
            if cfg.virtual_step == "linear":
                # (2) ŵ = w − η₁ (g_rc + β g_kl + γ g_tr + η g_ad): differentiable in θ through (β, γ, η)
                step = _combine(torch.cat([ones, self.weights(losses)], dim=1), per_term)
                w_hat = {n: p.detach() - cfg.lr * s for n, p, s in zip(names, w, step)}
            else:
                # (2) the textbook path: ∇_w L_G with create_graph, so ∂ŵ/∂θ flows by double backward
                g = _grads((rc + (self.weights(losses) * aux).sum(dim=1)).sum(), w, create_graph=True)
                w_hat = {n: p - cfg.lr * gp for n, p, gp in zip(names, w, g)}
            # (3) meta step: reconstruct hidden observed meta entries with ŵ, descend θ on L_me
            me = self.meta_mse(w_hat, x_me, m_me, hide, u_me, eps_me, cfg.meta_draws)
            theta = list(self.meta.parameters())
            for p, gp in zip(theta, torch.autograd.grad(me.sum(), theta)):
                p.grad = gp
            self.opt_meta.step()
            # (4) real step with the new weights θ_new
            with torch.no_grad():
                weights = self.weights(losses)
            if cfg.real_step_from == "w_hat":  # Algorithm 1 l.19: from ŵ, with a second pass of G at ŵ
                with torch.no_grad():
                    for p, n in zip(w, names):
                        p.copy_(w_hat[n])
                rc2, aux2 = self.terms(self.G(x_tilde, m, eps), x, m, y, hint)
                grads = _grads((rc2 + (weights * aux2).sum(dim=1)).sum(), w)
            else:                              # Meta-Weight-Net: from w, reusing the per-term gradients at w
                with torch.no_grad():
                    grads = _combine(torch.cat([ones, weights], dim=1), per_term)
        for p, g in zip(w, grads):
            p.grad = g
        self.opt_G.step()
        return torch.cat([torch.stack([rc.detach(), *losses.T, d_loss.detach(), me.detach()], dim=1),
                          weights.detach()], dim=1)

    # ------------------------------------------------------------------ imputation
    @torch.no_grad()
    def impute(self, x, m, generator=None, draws: int = 1):
        """X̂ = M ⊙ X + (1 − M) ⊙ X̄ for (K, rows, d) inputs.

        With ``generator``, X̄ is the mean of ``draws`` decoded draws of (Z, S) (one draw: a multiple
        imputation); without it, the point decoding Z = μ, S = E[S] (module docstring: biased).
        """
        if generator is None:
            x_bar = self.G(m * x + (1 - m) * (0.5 * self.cfg.noise_high), m, task=False)[2]
        else:
            if draws < 1:
                raise ValueError(f"draws must be at least 1, got {draws}.")
            x_bar = torch.zeros_like(x)
            for _ in range(draws):
                u = torch.rand(x.shape, generator=generator, device=x.device)
                eps = torch.randn(*x.shape[:-1], self.cfg.latent, generator=generator, device=x.device) \
                    if self.cfg.use_kl else None
                x_bar += self.G(noise_fill(x, m, u, self.cfg.noise_high), m, eps, task=False)[2]
            x_bar /= draws
        return m * x + (1 - m) * x_bar


def cross_entropy(logits, y):
    """(K,) mean cross-entropy of each model's (K, batch, C) logits and (K, batch) labels.

    ``F.cross_entropy`` over the stacked rows would compute its exp (backward too) with SIMD code
    whose last-bit results depend on where a row falls in the tensor; this form uses
    :func:`baselines._batched.aligned`, so a model's numbers do not depend on K.
    """
    shifted = logits - logits.detach().amax(dim=-1, keepdim=True)
    log_norm = aligned(torch.log, aligned(torch.exp, shifted).sum(dim=-1))          # (K, batch)
    picked = torch.gather(shifted, -1, y[..., None])[..., 0]                       # (K, batch)
    return (log_norm - picked).mean(dim=1)


def _combine(coefficients, per_term):
    """Σ_t c[k, t] · g_t[k] per parameter: (K, 4) and (4, K, *shape) tensors → (K, *shape) tensors.

    Written element-wise (not as a matrix product) so that each model's sums run in the same
    order whatever K is: a model's numbers do not depend on its group, to the last bit.
    """
    return [(coefficients.T.reshape(4, -1, *[1] * (g.dim() - 2)) * g).sum(dim=0) for g in per_term]


def _grads(loss, params, batched: bool = False, create_graph: bool = False):
    """∇ of ``loss`` (a vector of losses when ``batched``) with zeros for parameters it does not reach."""
    eye = torch.eye(loss.numel(), device=loss.device) if batched else None
    grads = torch.autograd.grad(loss, params, grad_outputs=eye, is_grads_batched=batched,
                                retain_graph=create_graph or batched, create_graph=create_graph,
                                allow_unused=True)
    shape = (lambda p: (loss.numel(), *p.shape)) if batched else (lambda p: p.shape)
    return [torch.zeros(shape(p), device=p.device) if g is None else g for p, g in zip(params, grads)]

