"""``MetaGAINImputer``: the sklearn-style estimator around :mod:`metagain.model`.

``fit`` scales the data from its observed values, carves the meta set out of the training rows
(ceil(10%) of each class, :func:`metagain.meta_set.carve_meta_set`), and trains
:class:`~metagain.model.MetaGAIN` for ``iterations`` steps of Algorithm 1. Without the meta
network (``use_meta=False``) the loss weights are fixed; with a ``weight_grid`` they are chosen by
meta-set loss first (footnote 2 of the paper's Table 5). ``transform`` imputes the mean of
``impute_draws`` decoded draws of (Z, S) ("imputed values are sampled from the embedding space"),
from a generator reseeded at every call, so it is deterministic; ``sample`` returns single draws
for multiple imputation. The loss weights (β, γ, η) are recorded every ``trajectory_every``
iterations in ``info_["weights_trajectory"]``.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from baselines._base import BaseImputer, raise_first, resolve_device, seed_torch
from baselines._batched import EpochSampler, Streams, gather_rows, generators, note_diverged, pad_rows, select
from baselines._gan import ObservedMinMax, to_tensors
from metagain.meta_set import carve_meta_set
from metagain.model import MetaGAIN, MetaGAINConfig, hide_observed

COLUMNS = ("rc", "kl", "tr", "ad", "d", "me", "beta", "gamma", "eta")  # what train_step returns
CHECK_EVERY = 100  # iterations between divergence checks (the only host reads of the training loop)
TRAIN_STREAM = 7   # model k's batches and noise come from seed_k + 7 (its init from seed_k)


class MetaGAINImputer(BaseImputer):
    """Meta-GAIN imputer (Tong, Zhu & Gan, AAAI 2026), with the ablation switches of Table 5.

    Version 2 (the cell keys of result rows change with it): ``transform`` imputes the mean of
    ``impute_draws`` draws instead of Z = μ, the real step starts from ŵ, θ is trained with Adam
    on the meta loss of one draw, and the weight grid (no MN) is scored on the mean of draws.

    Parameters
    ----------
    use_kl, use_meta, use_task : bool
        The components ID (variational encoder + KL), MN (meta network for β, γ, η) and TR
        (task regulariser, needs labels ``y`` in ``fit``).
    iterations : int
        Training iterations (each: discriminator, virtual, meta and real step).
    batch_size, learning_rate, momentum, weight_decay : SGD settings of the paper.
    hidden, n_layers, latent, disc_hidden : int
        Network widths and depth (5 fully connected layers of 100 in the paper).
    hint_rate, noise_high : float
        B ~ Bernoulli(hint_rate) of the hint; S ~ U(0, noise_high) of the noise fill.
    meta_net : {"mlp", "scalar"}
        Meta network kind; ``meta_hidden`` configures it.
    meta_optimizer : {"adam", "sgd"}
        Optimiser of θ: Adam (default, as Meta-Weight-Net's code trains its VNet) or SGD with
        ``meta_momentum`` (the paper's Eq. 13; at η₂ = 10⁻² it leaves the weights where they start).
        With Adam the meta network mostly turns the KL weight down: β 0.1 → 0.03–0.05 within the
        quick budget on valley, ≈ 0.004 after 10 000 iterations on yeast; at Meta-Weight-Net's
        η₂ = 10⁻³ it switches β and η off (→ 10⁻⁴ … 10⁻⁶) within ~500 iterations. See
        ``info_["weights_trajectory"]`` and the measurements in ``conf/imputer/metagain.yaml``.
    meta_lr, meta_momentum : float
        η₂ of the meta optimiser (default 10⁻⁴, measured); momentum of SGD only.
    meta_draws : int
        The meta loss scores the mean of this many decoded draws of (Z, S) through ŵ (default 1);
        0 scores the point decoding Z = μ, which is not what ``transform`` imputes.
    init_beta, init_gamma, init_eta : float
        First (MN) or fixed (no MN, no grid) loss weights.
    meta_fraction : float
        Share of each class of the training rows carved out as the meta set (paper: 10%).
    meta_hide_ratio : float or None
        Share of the meta rows' observed entries hidden for the meta loss; ``None`` uses the
        missing fraction of ``X`` (clipped to [0.05, 0.9]).
    weight_grid : list of float or None
        Without MN only: grid of values tried jointly for the active weights (η always; β with
        ``use_kl``; γ with ``use_task``). ``None`` trains with the initial weights.
    search_iterations : int or None
        Iterations each grid point trains before its meta loss is compared; ``None`` = 10% of
        ``iterations``. The chosen point is then trained from scratch for ``iterations``.
    reduction : {"row", "entry"}
        Scale of L_rc and L_ad: summed over a row's entries and averaged over rows (default), or
        averaged over entries (GAIN's code). See ``MetaGAINConfig``.
    kl_reduction : {"mean", "sum"}
        L_kl averaged over latent dimensions (default) or summed (the full KL), mean over rows.
    real_step_from : {"w_hat", "w"}
        Real step from the virtual-step weights ŵ (default, Algorithm 1 line 19: a second generator
        pass per iteration, which the variants without MN do not have) or from w (Meta-Weight-Net's
        order). Used only with the meta network.
    virtual_step : {"linear", "create_graph"}
        How ∂ŵ/∂θ is computed (same result; "linear" is cheaper, see metagain/model.py).
    impute_draws : int
        ``transform`` imputes the mean of this many decoded draws of (Z, S); 0 decodes Z = μ,
        S = E[S] instead (biased: yeast quick test ARMSE 0.151 against 0.110 with 50 draws).
    trajectory_every : int
        (β, γ, η) are recorded at iterations 0, k, 2k, … and at the last iteration.
    trace : bool
        Keep the per-iteration losses and weights in ``trace_`` (list of dicts).
    random_state : int or None
        Seeds model init, batches, noise and meta set: the same seed gives identical CPU runs.
    device : str
        "auto" (CUDA when present), "cpu" or "cuda".
    verbose : bool
        Progress bar.

    Attributes
    ----------
    model_ : MetaGAIN
    info_ : dict
        Floats: final ``beta``, ``gamma``, ``eta`` (0 for components that are off), ``meta_rows``,
        ``meta_hide_ratio``, ``grid_points`` (0 without a search) and ``grid_meta_loss``; and
        ``weights_trajectory``: ``{"iteration", "beta", "gamma", "eta"}`` lists of the weights every
        ``trajectory_every`` iterations of the final run (the fixed weights without MN).
    trace_ : list of dict or None
    """

    # 1 → 2: the changes above; 2 → 3: trained with a model axis (per-model generators, epoch
    # batches, block-drawn noise; metagain/model.py). The version enters the result rows' cell keys.
    version = "3"

    def __init__(self, use_kl=True, use_meta=True, use_task=True, iterations=10_000, batch_size=64,
                 learning_rate=1e-2, momentum=0.9, weight_decay=1e-5, hidden=100, n_layers=5, latent=100,
                 disc_hidden=100, hint_rate=0.9, noise_high=0.01, meta_net="mlp", meta_hidden=100,
                 meta_optimizer="adam", meta_lr=1e-4, meta_momentum=0.9, init_beta=0.1, init_gamma=0.1,
                 init_eta=0.01, meta_fraction=0.1, meta_hide_ratio=None, weight_grid=None,
                 search_iterations=None, reduction="row", kl_reduction="mean", real_step_from="w_hat",
                 virtual_step="linear", impute_draws=50, meta_draws=1, trajectory_every=100, trace=False,
                 random_state=None, device="auto", verbose=False):
        self.use_kl = use_kl
        self.use_meta = use_meta
        self.use_task = use_task
        self.iterations = iterations
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.hidden = hidden
        self.n_layers = n_layers
        self.latent = latent
        self.disc_hidden = disc_hidden
        self.hint_rate = hint_rate
        self.noise_high = noise_high
        self.meta_net = meta_net
        self.meta_hidden = meta_hidden
        self.meta_optimizer = meta_optimizer
        self.meta_lr = meta_lr
        self.meta_momentum = meta_momentum
        self.init_beta = init_beta
        self.init_gamma = init_gamma
        self.init_eta = init_eta
        self.meta_fraction = meta_fraction
        self.meta_hide_ratio = meta_hide_ratio
        self.weight_grid = weight_grid
        self.search_iterations = search_iterations
        self.reduction = reduction
        self.kl_reduction = kl_reduction
        self.real_step_from = real_step_from
        self.virtual_step = virtual_step
        self.impute_draws = impute_draws
        self.meta_draws = meta_draws
        self.trajectory_every = trajectory_every
        self.trace = trace
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, schema):
        raise_first(type(self)._fit_batched([self], [X], [y], [schema]))

    def _group_key(self, X, y, schema=None) -> tuple:
        # the meta set is ceil(10%) of each class: equal class counts give equal meta-set sizes
        counts = None if y is None else tuple(np.unique(np.asarray(y), return_counts=True)[1])
        return (*super()._group_key(X, y, schema), counts)

    def _check_params(self):
        if self.use_meta and self.weight_grid is not None:
            raise ValueError(
                "weight_grid is only used without the meta network; set use_meta=False or weight_grid=None."
            )
        if int(self.iterations) < 1:
            raise ValueError(f"iterations must be a positive number, got {self.iterations}.")
        if int(self.impute_draws) < 0 or int(self.trajectory_every) < 1:
            raise ValueError("impute_draws must be >= 0 (0: decode Z = mu) and trajectory_every >= 1, got "
                             f"{self.impute_draws} and {self.trajectory_every}.")

    @classmethod
    def _fit_batched(cls, imputers, Xs, ys, schemas):
        """Train one Meta-GAIN per imputer as K models at once (grid searches: K × grid points)."""
        first, K = imputers[0], len(imputers)
        try:
            first._check_params()
            cfg, data = _prepare(imputers, Xs, ys)
        except Exception as error:  # noqa: BLE001 - every fit of the group has these parameters
            return [error] * K
        errors = [None] * K
        seeds = [imp.seed_ for imp in imputers]
        hide = torch.tensor([imp.info_["meta_hide_ratio"] for imp in imputers])
        chosen = [(cfg.init_beta, cfg.init_gamma, cfg.init_eta)] * K   # Python floats, as configured
        if not first.use_meta and first.weight_grid is not None:
            chosen = _search(first, cfg, data, seeds, hide, imputers, errors)
        init = torch.tensor(chosen)
        model, stats, trace, trajectory = _train(first, cfg, data, cfg.iterations, seeds, init, hide,
                                                 errors, keep_trace=first.trace)
        model.drop_optimizers()
        for k, imputer in enumerate(imputers):
            if errors[k] is not None:
                continue
            imputer.model_ = select(model, k).eval()
            last = dict(zip(COLUMNS, stats[k].tolist()))
            if cfg.use_meta:  # the weights of the last real step
                imputer.info_.update(beta=last["beta"], gamma=last["gamma"], eta=last["eta"])
            else:             # fixed or grid-chosen weights as configured; 0 for components that are off
                beta, gamma, eta = chosen[k]
                imputer.info_.update(beta=beta * cfg.use_kl, gamma=gamma * cfg.use_task, eta=eta)
            imputer.info_["weights_trajectory"] = {"iteration": trajectory["iteration"],
                                                   **{n: v[k] for n, v in trajectory.items() if n != "iteration"}}
            imputer.trace_ = None if trace is None else [
                {"iteration": it, **dict(zip(COLUMNS, row[k]))} for it, row in enumerate(trace)]
        return errors

    # ------------------------------------------------------------------ transform / sample
    def _impute(self, X, generator=None, draws=1):
        x, m = (t[None] for t in to_tensors(self.scaler_.transform(X), self.device_))  # K = 1
        parts = [self.model_.impute(x[:, i:i + 8192], m[:, i:i + 8192], generator, draws)  # rows in chunks
                 for i in range(0, x.shape[1], 8192)]
        return self.scaler_.inverse_transform(torch.cat(parts, dim=1)[0].cpu().double().numpy())

    def _transform(self, X):
        if int(self.impute_draws) == 0:  # Z = μ, S = E[S]: the point decoding
            return self._impute(X)
        # a generator reseeded at every call: the same X gives the same imputation however often called
        generator = torch.Generator(device=self.device_).manual_seed(self.seed_ + 3)
        return self._impute(X, generator, int(self.impute_draws))

    def _sample(self, X, n):
        generator = torch.Generator(device=self.device_).manual_seed(self.seed_ + 2)
        return np.stack([self._impute(X, generator) for _ in range(n)])


# ---------------------------------------------------------------------------- training, K models
def _prepare(imputers, Xs, ys):
    """Per fit: seed, scaler, meta set, hide ratio (on the imputer); the group's config and stacked data."""
    first = imputers[0]
    device = resolve_device(first.device)
    use_task = bool(first.use_task) and ys[0] is not None
    if first.use_task and ys[0] is None:  # scikit-learn calls fit(X) in pipelines: impute without TR
        warnings.warn("MetaGAINImputer(use_task=True) was fit without labels: the task regulariser is "
                      "off for this fit (pass fit(X, y) to use it).", UserWarning, stacklevel=5)
    parts = []
    for imputer, X, y in zip(imputers, Xs, ys):
        imputer.device_, imputer.seed_ = device, seed_torch(imputer.random_state).initial_seed()
        imputer.scaler_ = ObservedMinMax().fit(X)
        labels = np.unique(np.asarray(y), return_inverse=True)[1].reshape(-1) if y is not None \
            else np.zeros(X.shape[0], dtype=int)  # without labels the meta set is a random 10%
        train_idx, meta_idx = carve_meta_set(labels, first.meta_fraction, np.random.default_rng(imputer.seed_))
        hide_ratio = first.meta_hide_ratio if first.meta_hide_ratio is not None \
            else float(np.clip(np.isnan(X).mean(), 0.05, 0.9))
        imputer.info_ = {"meta_rows": float(len(meta_idx)), "meta_hide_ratio": hide_ratio,
                         "grid_points": 0.0, "grid_meta_loss": float("nan")}
        x, m = to_tensors(imputer.scaler_.transform(X), device)
        y_t = torch.as_tensor(labels, dtype=torch.long, device=device)
        parts.append((x[train_idx], m[train_idx], y_t[train_idx], x[meta_idx], m[meta_idx]))
        n_classes = int(labels.max()) + 1
    cfg = MetaGAINConfig(
        n_features=Xs[0].shape[1], n_classes=n_classes if use_task else 0,
        hidden=first.hidden, n_layers=first.n_layers, latent=first.latent, disc_hidden=first.disc_hidden,
        batch_size=first.batch_size, lr=first.learning_rate, momentum=first.momentum,
        weight_decay=first.weight_decay, iterations=int(first.iterations), hint_rate=first.hint_rate,
        noise_high=first.noise_high, use_kl=first.use_kl, use_meta=first.use_meta, use_task=use_task,
        meta_net=first.meta_net, meta_hidden=first.meta_hidden, meta_optimizer=first.meta_optimizer,
        meta_lr=first.meta_lr, meta_momentum=first.meta_momentum, meta_draws=int(first.meta_draws),
        init_beta=first.init_beta, init_gamma=first.init_gamma, init_eta=first.init_eta,
        meta_hide_ratio=imputers[0].info_["meta_hide_ratio"], reduction=first.reduction,
        kl_reduction=first.kl_reduction, real_step_from=first.real_step_from, virtual_step=first.virtual_step)
    return cfg, tuple(torch.stack(t) for t in zip(*parts))  # each (K, rows, ·)


def _train(params, cfg, data, iterations, seeds, init, hide, errors, keep_trace=False):
    """Train K fresh models (model k from seed ``seeds[k]``, weights ``init[k]``, hide ratio ``hide[k]``).

    Returns (model, last iteration's (K, 9) stats, trace or None, weights trajectory with (K,) lists).
    The loop reads nothing back to the host but the (K,) divergence flags every ``CHECK_EVERY``
    iterations; a model that diverged gets its error in ``errors`` and the others go on.
    Every run of one seed (grid point or final) starts from the same init and batches.
    """
    device = data[0].device
    model = MetaGAIN(cfg, [torch.Generator().manual_seed(s) for s in seeds], init, hide)
    model = model.to(device).configure_optimizers()
    x, m, y, x_me, m_me = data
    gens = generators([s + TRAIN_STREAM for s in seeds], device)
    streams = Streams(gens)
    batches, meta_batches = EpochSampler(x.shape[1], cfg.batch_size, gens), \
        EpochSampler(x_me.shape[1], cfg.batch_size, gens)
    every = int(params.trajectory_every)
    marks = list(range(0, iterations, every))
    marks += [iterations - 1] if marks[-1] != iterations - 1 else []
    weights = torch.empty(len(marks), len(seeds), 3, device=device)  # (β, γ, η) at the marked iterations
    finite = torch.ones(len(seeds), dtype=torch.bool, device=device)
    rows, mark = [], 0
    for it in tqdm(range(iterations), desc="Meta-GAIN", disable=not params.verbose):
        idx, meta_idx = batches(), meta_batches()
        stats = model.train_step(gather_rows(x, idx), gather_rows(m, idx), gather_rows(y, idx),
                                 gather_rows(x_me, meta_idx), gather_rows(m_me, meta_idx), streams)
        streams.advance()
        finite &= torch.isfinite(stats[:, :5].sum(dim=1))             # L_rc + L_kl + L_tr + L_ad + L_D
        if it == marks[mark]:
            weights[mark] = stats[:, 6:]
            mark += 1
        if keep_trace:
            rows.append(stats)
        if (it + 1) % CHECK_EVERY == 0 or it == iterations - 1:
            note_diverged(finite, errors, f"Meta-GAIN at or before iteration {it}")
    trace = torch.stack(rows).tolist() if keep_trace else None       # (iterations, K, 9)
    trajectory = {"iteration": [float(it) for it in marks],
                  **dict(zip(("beta", "gamma", "eta"), weights.permute(2, 1, 0).tolist()))}
    return model.eval(), stats, trace, trajectory


def _search(params, cfg, data, seeds, hide, imputers, errors):
    """Joint grid over the active weights of each fit, all points of all fits trained as one batch.

    Each point trains ``search_iterations`` from its fit's seed and is scored by meta loss on the
    same hidden meta entries of that fit, with the estimator ``transform`` uses (the mean of
    ``impute_draws`` draws, the same draws for every point of a fit; Z = μ when it is 0). Returns
    the (K, 3) chosen (β, γ, η); ties: the first (smallest) weights.
    """
    names = ["init_beta"] * cfg.use_kl + ["init_gamma"] * cfg.use_task + ["init_eta"]
    steps = int(params.search_iterations) if params.search_iterations is not None \
        else max(1, cfg.iterations // 10)
    base = {"init_beta": cfg.init_beta, "init_gamma": cfg.init_gamma, "init_eta": cfg.init_eta}
    points = [{**base, **dict(zip(names, values))}
              for values in itertools.product([float(v) for v in params.weight_grid], repeat=len(names))]
    grid = torch.tensor([[p["init_beta"], p["init_gamma"], p["init_eta"]] for p in points])
    K, P, device = len(seeds), len(points), data[0].device
    # model k·P + p: fit k at grid point p
    expanded = tuple(t.repeat_interleave(P, dim=0) for t in data)
    point_errors = [None] * (K * P)
    model = _train(params, cfg, expanded, steps, [s for s in seeds for _ in range(P)], grid.repeat(K, 1),
                   hide.repeat_interleave(P), point_errors)[0]
    x_me, m_me = pad_rows(expanded[3]), pad_rows(expanded[4])  # m = 0 rows: never hidden, never scored
    draws = int(params.impute_draws)
    # the same holes (seed + 1) and draws (seed + 4) for every point of a fit
    hide_u = torch.stack([torch.rand(m_me.shape[1:], generator=g, device=device)
                          for g in generators([s + 1 for s in seeds for _ in range(P)], device)])
    holes = hide_observed(m_me, hide.repeat_interleave(P).view(-1, 1, 1).to(device), hide_u)
    u = eps = None
    if draws:
        shape = (draws * m_me.shape[1],)
        draw_gens = generators([s + 4 for s in seeds for _ in range(P)], device)
        u = torch.stack([torch.rand(*shape, cfg.n_features, generator=g, device=device) for g in draw_gens])
        eps = torch.stack([torch.randn(*shape, cfg.latent, generator=g, device=device) for g in draw_gens]) \
            if cfg.use_kl else None
    with torch.no_grad():
        loss = model.meta_mse(dict(model.G.named_parameters()), x_me, m_me, holes, u, eps, draws)
    loss = loss.view(K, P).cpu()
    loss = torch.where(torch.tensor([e is None for e in point_errors]).view(K, P), loss, float("inf"))
    best = loss.argmin(dim=1)  # the first minimum: the smallest weights among ties
    for k, imputer in enumerate(imputers):
        imputer.info_.update(grid_points=float(P), grid_meta_loss=float(loss[k, best[k]]))
        if not torch.isfinite(loss[k]).any():
            errors[k] = next(e for e in point_errors[k * P:(k + 1) * P] if e is not None)
    return [tuple(points[b][n] for n in ("init_beta", "init_gamma", "init_eta")) for b in best.tolist()]
