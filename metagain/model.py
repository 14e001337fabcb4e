"""Meta-GAIN (Tong, Zhu & Gan, "Meta-GAIN for Missing Data Imputation", AAAI 2026), one file.

Read top to bottom: the hyperparameters, the generator (encoder, decoder, task head), the meta
network that sets the loss weights (β, γ, η), then :class:`MetaGAIN`, whose ``train_step`` is one
iteration of the paper's Algorithm 1 in the four steps of DESIGN.md:

1. discriminator step on a training batch;
2. virtual step ŵ = w − η₁ ∇_w L_G(w; θ), differentiable in θ;
3. meta step: hide a further share of the meta batch's *observed* entries, reconstruct them with
   ŵ, L_me = MSE on those entries, θ ← θ − η₂ ∇_θ L_me (never the values of really missing entries);
4. real step w ← w − η₁ ∇_w L_G(w; θ_new), from w (or from ŵ, the paper's wording).

Why the virtual step is cheap: L_G = L_rc + β L_kl + γ L_tr + η L_ad and θ enters only through the
three weights, so ∇_w L_G(w; θ) = g_rc + β g_kl + γ g_tr + η g_ad with per-term gradients g that do
not depend on θ. ŵ built from those four (detached) gradients is exactly as differentiable in θ
as the create_graph version, without a second-order pass, and the real step reuses them.
``virtual_step="create_graph"`` runs the textbook second-order path; a test checks both agree.

Choices the paper leaves open (ours), checked on letter (2 000 rows, MCAR 0.2, 1 500 iterations):
- loss scales: ``reduction="row"`` sums L_rc and L_ad over a row's entries (Eq. 3 writes sums) and
  averages over rows; ``kl_reduction="mean"`` averages L_kl over latent dimensions. With per-entry
  means and the full KL ("entry"/"sum") the posterior collapses (L_kl → 0, even at β = 0.001) and
  Z = μ imputes ≈ 0.5 everywhere: RMSE 0.20 against Mean's 0.16;
- init: GAIN's N(0, 2/fan_in) weights and zero biases (blocks.gain_init_) in every network; with
  PyTorch's default init the ten layers from input to output barely learn under SGD at 10⁻²;
- the meta MLP reads log(1 + L): L_kl starts near 100 and raw inputs threw θ off in one step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from metagain.blocks import Discriminator, adversarial_loss, discriminator_loss, mlp, noise_fill, \
    observed_mse, sample_hint


@dataclass
class MetaGAINConfig:
    n_features: int = 1            # d: set from the data
    n_classes: int = 0             # C: set from the labels (needed when use_task)
    hidden: int = 100              # paper, Implementation Details: "every layer ... 100 neurons"
    n_layers: int = 5              # paper, Implementation Details: encoder, decoder, task head: 5 layers
    latent: int = 100              # DESIGN.md: latent width configurable, default the hidden width
    disc_hidden: int = 100         # ours (DESIGN.md): the paper gives no discriminator width
    batch_size: int = 64           # paper, Implementation Details
    lr: float = 1e-2               # paper ("learning weight 10^-2"); also η₁ of the virtual step
    momentum: float = 0.9          # paper: SGD with momentum 0.9
    weight_decay: float = 1e-5     # paper ("gradually decay as 10^-5")
    iterations: int = 10_000       # ours (DESIGN.md): GAIN's count; the paper gives none
    hint_rate: float = 0.9         # DESIGN.md: B ~ Bernoulli(0.9), GAIN's hint rate
    noise_high: float = 0.01       # DESIGN.md: S ~ U(0, 0.01), as GAIN's uniform_sampler
    use_kl: bool = True            # ID component: variational encoder + L_kl (off: Z = μ, no L_kl)
    use_meta: bool = True          # MN component: meta network sets (β, γ, η) (off: fixed weights)
    use_task: bool = True          # TR component: task head + L_tr (off: neither)
    meta_net: str = "mlp"          # DESIGN.md: "mlp" (Meta-Weight-Net style) | "scalar" (3 log-weights)
    meta_hidden: int = 100         # ours (DESIGN.md): one hidden layer of 100
    meta_lr: float = 1e-2          # ours (DESIGN.md): η₂
    meta_momentum: float = 0.9     # ours (DESIGN.md)
    init_beta: float = 0.1         # ours (DESIGN.md): first weight of L_kl
    init_gamma: float = 0.1        # ours (DESIGN.md): first weight of L_tr
    init_eta: float = 0.01         # ours (DESIGN.md): GAIN's alpha = 100 balance of L_rc and L_ad
    meta_hide_ratio: float = 0.2   # share of meta entries hidden for L_me (the imputer: the missing rate)
    reduction: str = "row"         # ours (above): "row" = L_rc, L_ad summed over a row | "entry" = per-entry means
    kl_reduction: str = "mean"     # ours (above): "mean" = L_kl per latent dim | "sum" = the full KL of a row
    real_step_from: str = "w"      # DESIGN.md step 4: "w" (default) | "w_hat" (paper's "re-update ŵ")
    virtual_step: str = "linear"   # "linear" (exact, first-order cost) | "create_graph" (second order)

    def __post_init__(self):
        for key, allowed in (("meta_net", ("mlp", "scalar")), ("real_step_from", ("w", "w_hat")),
                             ("reduction", ("row", "entry")), ("kl_reduction", ("mean", "sum")),
                             ("virtual_step", ("linear", "create_graph"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}.")
        if self.use_task and self.n_classes < 1:
            raise ValueError("use_task=True needs n_classes >= 1: pass the number of classes of the labels.")
        if not 0 < self.meta_hide_ratio < 1:
            raise ValueError(f"meta_hide_ratio must be in (0, 1), got {self.meta_hide_ratio}.")


class Generator(nn.Module):
    """Encoder [X̃, M] → (μ, log σ²) of Z; decoder Z → X̄ (sigmoid); task head Z → class logits."""

    def __init__(self, cfg: MetaGAINConfig):
        super().__init__()
        self.use_kl = cfg.use_kl
        inner = [cfg.hidden] * (cfg.n_layers - 1)  # n_layers fully connected layers in each network
        code_width = (2 if cfg.use_kl else 1) * cfg.latent  # (μ, log σ²) or μ alone
        self.encoder = mlp([2 * cfg.n_features, *inner, code_width], gain_init=True)
        self.decoder = mlp([cfg.latent, *inner, cfg.n_features], nn.Sigmoid(), gain_init=True)
        self.task_head = mlp([cfg.latent, *inner, cfg.n_classes], gain_init=True) if cfg.use_task else None

    def forward(self, x_tilde, m, eps=None, task: bool = True):
        """``eps`` (batch, latent) draws Z = μ + σ ε; ``None`` gives the point estimate Z = μ."""
        code = self.encoder(torch.cat([x_tilde, m], dim=1))  # (batch, 2d) → (batch, 2·latent | latent)
        if self.use_kl:
            mu, logvar = code.chunk(2, dim=1)                 # two (batch, latent) halves
            logvar = logvar.clamp(-10.0, 10.0)                # keeps exp() finite early in training
        else:
            mu, logvar = code, None
        z = mu if eps is None or logvar is None else mu + torch.exp(0.5 * logvar) * eps
        logits = self.task_head(z) if task and self.task_head is not None else None
        return mu, logvar, self.decoder(z), logits


class MetaNet(nn.Module):
    """θ: the detached losses (L_kl, L_tr, L_ad) → weights (β, γ, η) > 0."""

    def __init__(self, cfg: MetaGAINConfig):
        super().__init__()
        init = torch.tensor([cfg.init_beta, cfg.init_gamma, cfg.init_eta])
        self.kind = cfg.meta_net
        if self.kind == "scalar":
            self.log_weights = nn.Parameter(init.log())
        else:
            self.net = mlp([3, cfg.meta_hidden, 3])
            with torch.no_grad():  # zero output weights + inverse-softplus bias: the first output is `init`
                self.net[-1].weight.zero_()
                self.net[-1].bias.copy_(init + torch.log(-torch.expm1(-init)))

    def forward(self, losses):
        if self.kind == "scalar":
            return self.log_weights.exp()
        return F.softplus(self.net(torch.log1p(losses)))  # (3,) → (3,); log1p tames L_kl ≈ 100 at init


def hide_observed(m, ratio: float, generator):
    """Mask of a random ``ratio`` of the observed entries of ``m`` (at least one when any is observed)."""
    u = torch.rand(m.shape, generator=generator, device=m.device)
    hide = (u < ratio).to(m.dtype) * m
    if hide.sum() == 0 and m.sum() > 0:  # tiny meta batch: hide the observed entry with the smallest draw
        hide.view(-1)[torch.where(m.view(-1) > 0, u.view(-1), 2.0).argmin()] = 1.0
    return hide


class MetaGAIN(nn.Module):
    """Generator G (weights w), discriminator D, and meta network θ (absent without ``use_meta``)."""

    def __init__(self, cfg: MetaGAINConfig):
        super().__init__()
        self.cfg = cfg
        self.G = Generator(cfg)
        self.D = Discriminator(cfg.n_features, cfg.disc_hidden, gain_init=True)
        self.meta = MetaNet(cfg) if cfg.use_meta else None
        # β and γ only count when their component is on; η (the GAIN term) always does
        self.register_buffer("active", torch.tensor([float(cfg.use_kl), float(cfg.use_task), 1.0]))
        self.register_buffer("fixed", torch.tensor([cfg.init_beta, cfg.init_gamma, cfg.init_eta]))

    def configure_optimizers(self):
        """SGD everywhere (paper); call after moving the model to its device."""
        cfg = self.cfg
        self.opt_G = torch.optim.SGD(self.G.parameters(), cfg.lr, cfg.momentum, weight_decay=cfg.weight_decay)
        self.opt_D = torch.optim.SGD(self.D.parameters(), cfg.lr, cfg.momentum, weight_decay=cfg.weight_decay)
        self.opt_meta = None if self.meta is None else \
            torch.optim.SGD(self.meta.parameters(), cfg.meta_lr, cfg.meta_momentum)
        return self

    def weights(self, losses):
        """(β, γ, η) of this batch, zero for the components that are off."""
        return (self.fixed if self.meta is None else self.meta(losses)) * self.active

    # ------------------------------------------------------------------ losses
    def terms(self, out, x, m, y, hint):
        """L_rc and the weighted terms (L_kl, L_tr, L_ad) of the generator output ``out``."""
        mu, logvar, x_bar, logits = out
        zero, cfg = x_bar.new_zeros(()), self.cfg
        ad = adversarial_loss(m, self.D(m * x + (1 - m) * x_bar, hint))
        if cfg.reduction == "row":  # Eq. 3's sums over a row's entries, then the batch mean
            rc, ad = ((m * (x_bar - x)) ** 2).sum(dim=1).mean(), ad * x.shape[1]
        else:                       # GAIN's per-entry means
            rc = observed_mse(x, x_bar, m)
        if cfg.use_kl:
            kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp())           # (batch, latent)
            kl = kl.mean() if cfg.kl_reduction == "mean" else kl.sum(dim=1).mean()
        else:
            kl = zero
        tr = F.cross_entropy(logits, y) if cfg.use_task else zero
        return rc, torch.stack([kl, tr, ad])

    def meta_mse(self, params, x, m, hide):
        """MSE of the point imputation on the ``hide`` entries, with generator weights ``params``."""
        m_in = m * (1 - hide)
        x_tilde = m_in * x + (1 - m_in) * (0.5 * self.cfg.noise_high)
        x_bar = functional_call(self.G, params, (x_tilde, m_in), {"task": False})[2]
        return ((hide * (x_bar - x)) ** 2).sum() / hide.sum().clamp_min(1.0)

    # ------------------------------------------------------------------ one iteration
    def train_step(self, x, m, y, x_me, m_me, generator):
        """One iteration of Algorithm 1; returns the tensor (L_rc, L_kl, L_tr, L_ad, L_D, L_me, β, γ, η)."""
        cfg, names = self.cfg, [n for n, _ in self.G.named_parameters()]
        w = [p for _, p in self.G.named_parameters()]
        x_tilde = noise_fill(x, m, generator, cfg.noise_high)
        hint = sample_hint(m, cfg.hint_rate, generator, unknown=0.5)
        eps = torch.randn(x.shape[0], cfg.latent, generator=generator, device=x.device) \
            if cfg.use_kl else None
        out = self.G(x_tilde, m, eps)

        # (1) discriminator step on X̂ of the current generator (GAIN's order: D, then G on the same batch)
        d_loss = discriminator_loss(m, self.D(m * x + (1 - m) * out[2].detach(), hint))
        self.opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_D.step()

        rc, aux = self.terms(out, x, m, y, hint)
        losses = aux.detach()  # meta-net input: the batch's (L_kl, L_tr, L_ad), no gradient into w
        me = rc.new_full((), float("nan"))
        if self.meta is None:
            weights = self.weights(losses)
            grads = _grads(rc + (weights * aux).sum(), w)
        else:
            # per-term gradients, one batched backward: rows g_rc, g_kl, g_tr, g_ad of a (4, P) matrix
            batched = _grads(torch.cat([rc[None], aux]), w, batched=True)
            per_term = torch.cat([g.reshape(4, -1) for g in batched], dim=1)
            sizes, one = [p.numel() for p in w], torch.ones(1, device=x.device)
            hide = hide_observed(m_me, cfg.meta_hide_ratio, generator)
            if cfg.virtual_step == "linear":
                # (2) ŵ = w − η₁ (g_rc + β g_kl + γ g_tr + η g_ad): differentiable in θ through (β, γ, η)
                step = torch.cat([one, self.weights(losses)]) @ per_term  # (4,) @ (4, P) → (P,)
                w_hat = {n: p.detach() - cfg.lr * s.view_as(p)
                         for n, p, s in zip(names, w, step.split(sizes))}
            else:
                # (2) the textbook path: ∇_w L_G with create_graph, so ∂ŵ/∂θ flows by double backward
                g = _grads(rc + (self.weights(losses) * aux).sum(), w, create_graph=True)
                w_hat = {n: p - cfg.lr * gp for n, p, gp in zip(names, w, g)}
            # (3) meta step: reconstruct hidden observed meta entries with ŵ, descend θ on L_me
            me = self.meta_mse(w_hat, x_me, m_me, hide)
            theta = list(self.meta.parameters())
            for p, gp in zip(theta, torch.autograd.grad(me, theta)):
                p.grad = gp
            self.opt_meta.step()
            # (4) real step with the new weights, reusing the per-term gradients at w
            with torch.no_grad():
                weights = self.weights(losses)
                step = torch.cat([one, weights]) @ per_term
                grads = [s.view_as(p) for p, s in zip(w, step.split(sizes))]
            if cfg.real_step_from == "w_hat":
                with torch.no_grad():
                    for p, n in zip(w, names):
                        p.copy_(w_hat[n])
                rc2, aux2 = self.terms(self.G(x_tilde, m, eps), x, m, y, hint)
                grads = _grads(rc2 + (weights * aux2).sum(), w)
        for p, g in zip(w, grads):
            p.grad = g
        self.opt_G.step()
        return torch.stack([rc.detach(), *losses, d_loss.detach(), me.detach(), *weights.detach()])

    # ------------------------------------------------------------------ imputation
    @torch.no_grad()
    def impute(self, x, m, generator=None):
        """X̂ = M ⊙ X + (1 − M) ⊙ X̄; without ``generator`` Z = μ and S = E[S], with it both are drawn."""
        if generator is None:
            x_tilde, eps = m * x + (1 - m) * (0.5 * self.cfg.noise_high), None
        else:
            x_tilde = noise_fill(x, m, generator, self.cfg.noise_high)
            eps = torch.randn(x.shape[0], self.cfg.latent, generator=generator, device=x.device) \
                if self.cfg.use_kl else None
        return m * x + (1 - m) * self.G(x_tilde, m, eps)[2]


def _grads(loss, params, batched: bool = False, create_graph: bool = False):
    """∇ of ``loss`` (a vector of losses when ``batched``) with zeros for parameters it does not reach."""
    eye = torch.eye(loss.numel(), device=loss.device) if batched else None
    grads = torch.autograd.grad(loss, params, grad_outputs=eye, is_grads_batched=batched,
                                retain_graph=create_graph or batched, create_graph=create_graph,
                                allow_unused=True)
    shape = (lambda p: (loss.numel(), *p.shape)) if batched else (lambda p: p.shape)
    return [torch.zeros(shape(p), device=p.device) if g is None else g for p, g in zip(params, grads)]

