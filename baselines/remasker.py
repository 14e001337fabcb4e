"""ReMasker: imputing tabular data with masked autoencoding (Du, Melis & Wang, ICLR 2024).

Every feature of a row is one token: its value goes through a linear map (shared by all
features) and a fixed sine-cosine position embedding says which feature it is. A transformer
encoder sees only the *visible* tokens plus a class token; a transformer decoder gets the
encoded visible tokens back in place, a learned mask token everywhere else, and predicts every
value through ``tanh(·)/2 + 1/2``. Training "re-masks" part of the observed entries on top of the
naturally missing ones and learns to reconstruct them; imputation shows the model all observed
entries and reads the missing ones off the decoder.

Facts taken from the reference code tydusky/remasker (the packaged class in
``remasker_impute.py``, the network in ``model_mae.py``, helpers and argument defaults in
``utils.py``, per-dataset settings in ``configs.py``, used by ``plugin_mae.py``/``run_exp.py``):

* defaults (``utils.get_args_parser``): embed 32, encoder depth 6, decoder depth 4, 4 heads,
  MLP ratio 4, mask ratio 0.5, batch 64, 600 epochs, base lr 1e-3, min lr 1e-5, 40 warm-up
  epochs; the decoder width and heads equal the encoder's (``remasker_impute.py`` passes
  ``decoder_embed_dim=self.embed_dim``, ``decoder_num_heads=self.num_heads``);
* learning rate: ``lr = blr * batch_size * accum_iter / 64`` (``remasker_impute.py``, ``fit``;
  the ``--blr`` help text says "/ 256", the code divides by 64 — the code is followed);
* optimiser: ``torch.optim.AdamW(self.model.parameters(), lr=self.lr, betas=(0.9, 0.95))``
  (``remasker_impute.py``, ``fit``). No weight decay is passed, so PyTorch's AdamW default of
  0.01 applies to every parameter; the ``--weight_decay 0.05`` argument is never used (the line
  that would build decayed parameter groups from it is commented out). The optimiser as built
  is followed: weight decay 0.01 on all parameters;
* schedule: ``utils.adjust_learning_rate`` once per iteration at fractional epoch
  ``epoch + iter / n_batches``: linear warm-up from 0, then half-cycle cosine down to ``min_lr``;
* loss (``model_mae.forward_loss``): squared error averaged over the re-masked entries plus
  squared error averaged over the visible entries; missing entries never count;
* masking (``model_mae.random_masking``): in training every row keeps
  ``int(d * (1 - mask_ratio))`` tokens visible, chosen at random among its observed entries;
  in evaluation all observed entries are visible;
* min-max scaling of each column by its observed training minimum and maximum with
  ``max - min + 1e-8`` as denominator, and LayerNorm eps 1e-8 (``remasker_impute.py``, ``eps``).
  The harness already hands imputers [0, 1] data, so there the scaling is (almost) the identity;
  it is kept so that the estimator also works on raw data.

Choices of ours, where the reference does something else:

* A row with fewer observed entries than ``int(d * (1 - mask_ratio))`` keeps all of them
  visible and nothing else. The reference then shows missing entries (zeros after
  ``nan_to_num``) to the encoder as if observed and trains the decoder to output 0 for them;
  that teaches the model a value it never saw, so it is not reproduced.
* Rows with different numbers of visible tokens share a batch: the encoder gathers each
  row's visible tokens to the front and masks the spare slots out of attention, which gives
  every visible token the same result as the reference's per-row computation. The reference
  imputes one row at a time (``transform``); this imputes whole batches.
* Mixed precision (``torch.cuda.amp.autocast`` with a gradient scaler in the reference) is used
  on CUDA only, as there; CPU runs are full precision and bit-identical for a seed.
* ``max_steps`` (not in the reference) caps the number of optimiser steps for reduced budgets:
  the quick profile gives every dataset the same number of updates instead of the same number
  of epochs. ``dataset`` selects the reference's per-dataset architecture
  (:data:`DATASET_OVERRIDES`); the harness runner does not pass it yet.

The reference treats every column as numeric ("current implementation: only support numerical
values", ``model_mae.py``); so does this. The harness snaps categorical outputs afterwards.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from baselines._base import BaseImputer, check_finite_loss, resolve_device, seed_torch
from baselines.schema import Schema

NORM_EPS = 1e-8  # remasker_impute.py: ``eps`` of the min-max denominator and of every LayerNorm
REFERENCE_BATCH = 64  # remasker_impute.py: lr = blr * eff_batch_size / 64

# The architecture when neither the constructor nor the dataset table says otherwise
# (tydusky/remasker utils.py, get_args_parser defaults).
REFERENCE_ARCHITECTURE = {"embed_dim": 32, "depth": 6, "decoder_depth": 4}

# Per-dataset settings of the reference (tydusky/remasker configs.py, read by plugin_mae.py for
# the paper's experiments) for the datasets of ours that it also ran. Only the keys that differ
# from REFERENCE_ARCHITECTURE are listed (heads 4, MLP ratio 4, mask ratio 0.5, 600 epochs and
# the linear encoding are the same everywhere). configs.py also has "wine" (64/8/6), but the
# reference's data/wine.csv is Wine Quality (red: 11 physico-chemical features, 1,599 rows),
# not our UCI 109 Wine (13 features, 178 rows), so it is deliberately not applied here.
DATASET_OVERRIDES: dict[str, dict[str, int]] = {
    "letter": {"embed_dim": 64, "depth": 8, "decoder_depth": 6},
}


# ---------------------------------------------------------------------------- optimiser facts
def reference_learning_rate(blr: float, batch_size: int, accum_iter: int = 1, lr: float | None = None) -> float:
    """Peak learning rate as the reference computes it: ``lr`` if given, else ``blr * batch * accum / 64``."""
    if lr is not None:
        return float(lr)
    return float(blr) * int(batch_size) * int(accum_iter) / REFERENCE_BATCH


def reference_optimizer(parameters, lr: float, weight_decay: float = 0.01,
                        betas: tuple[float, float] = (0.9, 0.95)) -> torch.optim.AdamW:
    """AdamW as the reference builds it: betas (0.9, 0.95), one group, PyTorch's default decay 0.01.

    ``fused=True`` is only the single-kernel implementation of the same update (about a sixth
    faster per step on CPU for this many small tensors).
    """
    return torch.optim.AdamW(parameters, lr=lr, betas=tuple(betas), weight_decay=float(weight_decay),
                             fused=True)


def scheduled_learning_rate(progress: float, lr: float, min_lr: float, epochs: int, warmup_epochs: float) -> float:
    """Learning rate at fractional epoch ``progress``: linear warm-up, then half-cycle cosine to ``min_lr``."""
    if progress < warmup_epochs:
        return lr * progress / warmup_epochs
    cosine = 0.5 * (1.0 + math.cos(math.pi * (progress - warmup_epochs) / (epochs - warmup_epochs)))
    return min_lr + (lr - min_lr) * cosine


def sincos_positions(embed_dim: int, n_features: int) -> torch.Tensor:
    """Fixed 1-D sine-cosine table, shape (1 + d, E); row 0 (the class token) is zeros."""
    if embed_dim % 2:
        raise ValueError(f"embed_dim must be even for the sine-cosine position table; got {embed_dim}.")
    frequencies = 1.0 / 10000 ** (np.arange(embed_dim // 2, dtype=np.float64) / (embed_dim / 2))
    angles = np.outer(np.arange(n_features, dtype=np.float64), frequencies)   # (d, E/2)
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)            # (d, E)
    table = np.concatenate([np.zeros((1, embed_dim)), table], axis=0)           # (1 + d, E)
    return torch.as_tensor(table, dtype=torch.float32)


# ---------------------------------------------------------------------------- network
class TransformerBlock(nn.Module):
    """Pre-norm block as timm's ``Block`` (qkv bias, GELU MLP, no dropout), with an optional key mask."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, key_visible: torch.Tensor | None = None) -> torch.Tensor:
        rows, tokens, dim = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(rows, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                              # each (rows, heads, T, E/heads)
        # Written out rather than F.scaled_dot_product_attention: for these short sequences
        # (d + 1 tokens, 8-wide heads) the plain form is faster on CPU.
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)             # (rows, heads, T, T)
        if key_visible is not None:
            scores = scores.masked_fill(~key_visible[:, None, None, :], float("-inf"))
        attended = scores.softmax(dim=-1) @ v                                # (rows, heads, T, E/heads)
        x = x + self.proj(attended.transpose(1, 2).reshape(rows, tokens, dim))
        return x + self.mlp(self.norm2(x))


class MaskedTabularAutoencoder(nn.Module):
    """ReMasker's network (``model_mae.MaskedAutoencoder`` with the decoder as wide as the encoder)."""

    def __init__(self, n_features: int, embed_dim: int, depth: int, decoder_depth: int,
                 num_heads: int, mlp_ratio: float):
        super().__init__()
        # utils.MaskEmbed is Conv1d(1, E, kernel_size=1): one scalar → E map shared by all features.
        self.value_embed = nn.Linear(1, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("positions", sincos_positions(embed_dim, n_features))          # (1 + d, E)
        self.encoder = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.encoder_norm = nn.LayerNorm(embed_dim, eps=NORM_EPS)
        self.decoder_embed = nn.Linear(embed_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.register_buffer("decoder_positions", sincos_positions(embed_dim, n_features))  # (1 + d, E)
        self.decoder = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio)
                                     for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(embed_dim, eps=NORM_EPS)
        self.head = nn.Linear(embed_dim, 1)
        self._init_weights()

    def _init_weights(self) -> None:
        # model_mae.initialize_weights: Xavier-uniform linears with zero bias, unit LayerNorms,
        # N(0, 0.02) class and mask tokens.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        # The reference's value embedding is a Conv1d, which its init loop skips except for the
        # Xavier weight: the bias keeps Conv1d's default U(-1/sqrt(fan_in), ...) = U(-1, 1).
        nn.init.uniform_(self.value_embed.bias, -1.0, 1.0)

    def forward(self, values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Predicted values (rows, d) in (0, 1) from ``values`` (rows, d) where ``visible`` (bool) is True."""
        rows, n_features = values.shape
        width = self.cls_token.shape[-1]
        tokens = self.value_embed(values.unsqueeze(-1)) + self.positions[1:]            # (rows, d, E)
        # Like model_mae.random_masking, the encoder runs on the visible tokens only: gather them
        # to the front (as many slots as the row with most of them; the spare slots of other rows
        # are masked out of attention), which halves its work in training.
        n_slots = max(int(visible.sum(dim=1).max()), 1)
        slots = (~visible).to(torch.uint8).argsort(dim=1, stable=True)[:, :n_slots]      # (rows, S)
        slot_visible = visible.gather(1, slots)                                          # (rows, S)
        kept = tokens.gather(1, slots.unsqueeze(-1).expand(-1, -1, width))               # (rows, S, E)
        cls = (self.cls_token + self.positions[:1]).expand(rows, -1, -1)                 # (rows, 1, E)
        hidden = torch.cat([cls, kept], dim=1)                                           # (rows, 1 + S, E)
        keys = torch.cat([slot_visible.new_ones(rows, 1), slot_visible], dim=1)          # (rows, 1 + S)
        for block in self.encoder:
            hidden = block(hidden, keys)
        hidden = self.decoder_embed(self.encoder_norm(hidden))
        # Decoder input: encoded tokens back in their places, the mask token everywhere else.
        encoded = torch.where(slot_visible.unsqueeze(-1), hidden[:, 1:], self.mask_token.to(hidden.dtype))
        body = self.mask_token.to(hidden.dtype).expand(rows, n_features, -1)
        body = body.scatter(1, slots.unsqueeze(-1).expand(-1, -1, width), encoded)      # (rows, d, E)
        hidden = torch.cat([hidden[:, :1], body], dim=1) + self.decoder_positions       # (rows, 1 + d, E)
        for block in self.decoder:
            hidden = block(hidden)
        out = torch.tanh(self.head(self.decoder_norm(hidden))) / 2 + 0.5                 # (rows, 1 + d, 1)
        return out[:, 1:, 0]                                                             # (rows, d)


def remask(observed: torch.Tensor, n_visible: int, generator: torch.Generator) -> torch.Tensor:
    """Visible entries of a training batch: ``n_visible`` random observed entries per row (fewer if absent)."""
    noise = torch.rand(observed.shape, generator=generator, device=observed.device)
    noise = noise.masked_fill(~observed, 2.0)              # missing entries sort last, never visible
    rank = noise.argsort(dim=1).argsort(dim=1)             # (rows, d): position of each entry in the shuffle
    return (rank < n_visible) & observed


def remasker_loss(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor,
                  observed: torch.Tensor) -> torch.Tensor:
    """``model_mae.forward_loss``: mean squared error on re-masked entries + on visible entries."""
    squared = (pred.float() - target) ** 2
    remasked = (observed & ~visible).float()
    shown = visible.float()
    return (squared * remasked).sum() / remasked.sum().clamp(min=1.0) \
        + (squared * shown).sum() / shown.sum().clamp(min=1.0)


# ---------------------------------------------------------------------------- the imputer
class ReMaskerImputer(BaseImputer):
    """Masked-autoencoder imputer of Du, Melis & Wang (2024), as its reference code trains it.

    Parameters
    ----------
    epochs : int, default 600
        Passes over the training rows (reference ``--max_epochs``).
    batch_size : int, default 64
        Rows per step; also scales the learning rate (``blr * batch_size / 64``).
    mask_ratio : float, default 0.5
        Share of a row's tokens hidden in training: ``int(d * (1 - mask_ratio))`` observed
        entries stay visible, the other observed entries are re-masked and reconstructed.
    embed_dim, depth, decoder_depth : int or None, default None
        Token width, encoder blocks, decoder blocks. ``None`` takes the reference's value for
        ``dataset`` from :data:`DATASET_OVERRIDES` if listed there, else the reference default
        (32, 6, 4). An explicit value always wins.
    num_heads : int, default 4
        Attention heads in encoder and decoder; must divide the width.
    mlp_ratio : float, default 4.0
        Hidden width of each block's MLP relative to the token width.
    blr : float, default 1e-3
        Base learning rate; the peak rate is ``blr * batch_size / 64`` unless ``lr`` is given.
    lr : float or None, default None
        Absolute peak learning rate (overrides ``blr``).
    min_lr : float, default 1e-5
        Floor of the cosine schedule.
    warmup_epochs : int, default 40
        Epochs of linear warm-up; must be smaller than ``epochs``.
    max_steps : int or None, default None
        Budget cap of ours, not the reference's: when set, training stops after about this many
        optimiser steps by running fewer epochs (at least one); the warm-up shrinks in the same
        proportion, so the schedule keeps its shape. ``None`` (the paper profile) runs all
        ``epochs``. A step budget costs about the same on every dataset, where an epoch budget
        would starve small datasets of updates.
    weight_decay : float, default 0.01
        AdamW weight decay on all parameters (what the reference's optimiser actually uses).
    amp : bool, default True
        Mixed precision (float16 autocast + gradient scaling) on CUDA, as the reference; no effect on CPU.
    dataset : str or None, default None
        Harness dataset key, used only to look up :data:`DATASET_OVERRIDES`.
    random_state : int or None, default None
        Seeds initialisation, batch order and re-masking; CPU runs with one seed are bit-identical.
    device : str, default "auto"
        ``"auto"`` uses CUDA when available, else CPU.
    verbose : bool, default False
        Show a progress bar over epochs.

    Attributes
    ----------
    model_ : MaskedTabularAutoencoder
        The trained network (eval mode).
    architecture_ : dict
        The resolved ``embed_dim``, ``depth`` and ``decoder_depth``.
    loss_history_ : list of float
        Mean training loss of each epoch.
    info_ : dict
        Scalars for the result row (final loss, epochs, peak learning rate, architecture).
    """

    def __init__(self, epochs: int = 600, batch_size: int = 64, mask_ratio: float = 0.5,
                 embed_dim: int | None = None, depth: int | None = None, decoder_depth: int | None = None,
                 num_heads: int = 4, mlp_ratio: float = 4.0, blr: float = 1e-3, lr: float | None = None,
                 min_lr: float = 1e-5, warmup_epochs: int = 40, max_steps: int | None = None,
                 weight_decay: float = 0.01, amp: bool = True,
                 dataset: str | None = None, random_state=None, device: str = "auto", verbose: bool = False):
        self.epochs = epochs
        self.batch_size = batch_size
        self.mask_ratio = mask_ratio
        self.embed_dim = embed_dim
        self.depth = depth
        self.decoder_depth = decoder_depth
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.blr = blr
        self.lr = lr
        self.min_lr = min_lr
        self.warmup_epochs = warmup_epochs
        self.max_steps = max_steps
        self.weight_decay = weight_decay
        self.amp = amp
        self.dataset = dataset
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ settings
    def resolved_architecture(self) -> dict[str, int]:
        """Width and depths for this fit: explicit argument > dataset table > reference default."""
        table = DATASET_OVERRIDES.get(self.dataset, {}) if self.dataset is not None else {}
        arch = {}
        for key, default in REFERENCE_ARCHITECTURE.items():
            explicit = getattr(self, key)
            arch[key] = int(explicit if explicit is not None else table.get(key, default))
        return arch

    def _check_params(self, arch: dict[str, int]) -> None:
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError(f"epochs and batch_size must be positive; got {self.epochs}, {self.batch_size}.")
        if not 0.0 <= float(self.mask_ratio) < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1); got {self.mask_ratio}.")
        if not 0 <= int(self.warmup_epochs) < int(self.epochs):
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be at least 0 and smaller than epochs "
                f"({self.epochs}); lower it with the epochs (the reference warms up 40 of 600 epochs)."
            )
        if arch["embed_dim"] % int(self.num_heads) or arch["embed_dim"] % 2:
            raise ValueError(
                f"embed_dim ({arch['embed_dim']}) must be even and divisible by num_heads ({self.num_heads})."
            )
        if arch["depth"] < 1 or arch["decoder_depth"] < 1:
            raise ValueError(f"depth and decoder_depth must be at least 1; got {arch}.")
        if self.max_steps is not None and int(self.max_steps) < 1:
            raise ValueError(f"max_steps must be a positive number of steps or None; got {self.max_steps}.")

    def _budget(self, n_batches: int) -> tuple[int, float]:
        """(epochs, warm-up epochs) to run: the arguments, or fewer under ``max_steps``."""
        epochs, warmup = int(self.epochs), float(self.warmup_epochs)
        if self.max_steps is not None:
            capped = min(epochs, max(1, math.ceil(int(self.max_steps) / n_batches)))
            warmup, epochs = warmup * capped / epochs, capped
        return epochs, warmup

    # ------------------------------------------------------------------ fit
    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        arch = self.resolved_architecture()
        self._check_params(arch)
        self.architecture_ = arch
        self.device_ = resolve_device(self.device)
        use_amp = bool(self.amp) and self.device_.startswith("cuda")
        cpu_generator = seed_torch(self.random_state)  # also seeds the weight initialisation below
        mask_seed = int(torch.randint(2**62, (1,), generator=cpu_generator))
        mask_generator = torch.Generator(device=self.device_).manual_seed(mask_seed)

        # Reference min-max scaling by the observed training range (remasker_impute.py, fit).
        self.low_ = np.nanmin(X, axis=0)
        self.span_ = np.nanmax(X, axis=0) - self.low_ + NORM_EPS
        scaled = (X - self.low_) / self.span_
        observed = torch.as_tensor(~np.isnan(X), device=self.device_)
        values = torch.as_tensor(np.nan_to_num(scaled, nan=0.0), dtype=torch.float32, device=self.device_)
        n_rows, n_features = values.shape
        n_visible = int(n_features * (1 - float(self.mask_ratio)))

        model = MaskedTabularAutoencoder(n_features, arch["embed_dim"], arch["depth"], arch["decoder_depth"],
                                         int(self.num_heads), float(self.mlp_ratio)).to(self.device_)
        peak_lr = reference_learning_rate(self.blr, self.batch_size, lr=self.lr)
        optimizer = reference_optimizer(model.parameters(), peak_lr, self.weight_decay)
        scaler = torch.amp.GradScaler("cuda") if use_amp else None

        batch_size = int(self.batch_size)
        n_batches = math.ceil(n_rows / batch_size)
        epochs, warmup = self._budget(n_batches)
        model.train()
        self.loss_history_ = []
        for epoch in tqdm(range(epochs), desc="ReMasker", disable=not self.verbose):
            order = torch.randperm(n_rows, generator=cpu_generator).to(self.device_)
            total = torch.zeros((), device=self.device_)
            for step in range(n_batches):
                rate = scheduled_learning_rate(epoch + step / n_batches, peak_lr, float(self.min_lr),
                                               epochs, warmup)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                idx = order[step * batch_size:(step + 1) * batch_size]
                batch, batch_observed = values[idx], observed[idx]
                visible = remask(batch_observed, n_visible, mask_generator)
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                    pred = model(batch, visible)
                loss = remasker_loss(pred, batch, visible, batch_observed)
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                total += loss.detach()
            epoch_loss = float(total / n_batches)  # one device sync per epoch
            check_finite_loss(epoch_loss, f"ReMasker epoch {epoch + 1}")
            self.loss_history_.append(epoch_loss)
        model.eval()
        self.model_ = model
        self.info_ = {"final_loss": self.loss_history_[-1], "epochs_run": len(self.loss_history_),
                      "steps_run": len(self.loss_history_) * n_batches,
                      "peak_lr": peak_lr, **arch}

    # ------------------------------------------------------------------ impute
    @torch.no_grad()
    def _transform(self, X: np.ndarray) -> np.ndarray:
        scaled = (X - self.low_) / self.span_
        observed = torch.as_tensor(~np.isnan(X), device=self.device_)
        values = torch.as_tensor(np.nan_to_num(scaled, nan=0.0), dtype=torch.float32, device=self.device_)
        self.model_.eval()
        # All observed entries visible, as the reference's evaluation-mode masking does row by row.
        chunks = [self.model_(values[i:i + 4096], observed[i:i + 4096]) for i in range(0, len(values), 4096)]
        pred = torch.cat(chunks).float().cpu().numpy().astype(float)
        return pred * self.span_ + self.low_
