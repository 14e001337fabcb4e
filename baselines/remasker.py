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
  on CUDA only, as there, with one dynamic loss scale per model (an overflowing model's
  gradients are zeroed for that step instead of skipping the whole step); CPU runs are full
  precision and bit-identical for a seed.
* ``max_steps`` (not in the reference) caps the number of optimiser steps for reduced budgets:
  the quick profile gives every dataset the same number of updates instead of the same number
  of epochs. ``dataset`` selects the reference's per-dataset architecture
  (:data:`DATASET_OVERRIDES`); the harness runner does not pass it yet.

Training is written for K models at once (a leading model axis on every parameter, buffer and
activation; see :mod:`baselines._batched`): :meth:`ReMaskerImputer.fit_group` trains the fits of
one group (equal parameters but the seed, equal data shape) as one computation, and one fit is
the same code at K = 1. Each model draws its initial weights, row orders and re-masking noise
from its own generators, so a fit's numbers do not depend on the group it trained in.

The reference treats every column as numeric ("current implementation: only support numerical
values", ``model_mae.py``); so does this. The harness snaps categorical outputs afterwards.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from baselines import _batched
from baselines._base import BaseImputer, raise_first, resolve_device, seed_torch
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
# K models at once: every parameter and buffer has a leading model axis of length K and every
# activation is (K, rows, tokens, width). The linears are baselines._batched.Linear (one baddbmm
# for all K); attention, once each model has projected its own queries, keys and values, treats
# (K · rows) as one batch axis, so no number of one model ever meets another model's.
def _tokens(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a per-token batched layer to (K, rows, tokens, E): flattened to (K, rows · tokens, E)."""
    n_models, rows, n_tokens, width = x.shape
    out = layer(x.reshape(n_models, rows * n_tokens, width))
    return out.view(n_models, rows, n_tokens, out.shape[-1])


class _Softmax(torch.autograd.Function):
    """Softmax over the last axis from elementwise ops and sums: the same function as
    ``Tensor.softmax``, but on CPU torch's kernel is slow for rows this short (d + 1 ≤ ~100
    entries): 9.4 ms against 1.7 ms forward for (960, 4, 14, 14), likewise backward."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor) -> torch.Tensor:
        shifted = (scores - scores.amax(dim=-1, keepdim=True)).exp_()   # the class token's key keeps a row finite
        out = shifted.div_(shifted.sum(dim=-1, keepdim=True))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return (grad - (grad * out).sum(dim=-1, keepdim=True)).mul_(out)


class LayerNorm(nn.Module):
    """K LayerNorms over the last axis, each with its own affine weight and bias (ones and zeros)."""

    def __init__(self, n_models: int, dim: int, eps: float = NORM_EPS):
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(n_models, 1, dim))   # (K, 1, E)
        self.bias = nn.Parameter(torch.zeros(n_models, 1, dim))    # (K, 1, E)

    def forward(self, x: torch.Tensor) -> torch.Tensor:            # (K, N, E) → (K, N, E)
        normed = nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)
        return torch.addcmul(self.bias, normed, self.weight)


class TransformerBlock(nn.Module):
    """K pre-norm blocks as timm's ``Block`` (qkv bias, GELU MLP, no dropout), with an optional key mask."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, generators: list[torch.Generator]):
        super().__init__()
        n_models, hidden = len(generators), int(dim * mlp_ratio)
        self.num_heads = num_heads
        self.norm1 = LayerNorm(n_models, dim)
        self.qkv = _batched.Linear(dim, 3 * dim, generators, init="xavier")
        self.proj = _batched.Linear(dim, dim, generators, init="xavier")
        self.norm2 = LayerNorm(n_models, dim)
        self.mlp = _batched.mlp([dim, hidden, dim], generators, init="xavier", activation=nn.GELU)

    def forward(self, x: torch.Tensor, key_visible: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (K, rows, T, E); ``key_visible`` (K, rows, T) bool, False for padding slots."""
        n_models, rows, n_tokens, dim = x.shape
        flat = x.view(n_models, rows * n_tokens, dim)
        qkv = self.qkv(self.norm1(flat)).view(n_models * rows, n_tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                            # each (K·rows, heads, T, E/heads)
        # Written out rather than F.scaled_dot_product_attention: for these short sequences
        # (d + 1 tokens, 8-wide heads) the plain form is faster on CPU.
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)           # (K·rows, heads, T, T)
        if key_visible is not None:
            scores = scores.masked_fill(~key_visible.reshape(n_models * rows, 1, 1, n_tokens), float("-inf"))
        attended = _Softmax.apply(scores) @ v                              # (K·rows, heads, T, E/heads)
        flat = flat + self.proj(attended.transpose(1, 2).reshape(n_models, rows * n_tokens, dim))
        flat = flat + self.mlp(self.norm2(flat))
        return flat.view(n_models, rows, n_tokens, dim)


class MaskedTabularAutoencoder(nn.Module):
    """K ReMasker networks (``model_mae.MaskedAutoencoder`` with the decoder as wide as the encoder).

    Model k's initial weights come from ``generators[k]`` (CPU generators), in the same order
    whatever K is. ``model_mae.initialize_weights``: Xavier-uniform linears with zero bias, unit
    LayerNorms, N(0, 0.02) class and mask tokens.
    """

    def __init__(self, n_features: int, embed_dim: int, depth: int, decoder_depth: int,
                 num_heads: int, mlp_ratio: float, generators: list[torch.Generator]):
        super().__init__()
        n_models = len(generators)
        # utils.MaskEmbed is Conv1d(1, E, kernel_size=1): one scalar → E map shared by all features.
        # Its weight gets the Xavier init (fan_in 1, fan_out E, as the linear's); its bias is
        # skipped by the reference's init loop and keeps Conv1d's default U(-1/sqrt(1), 1/sqrt(1)).
        self.value_embed = _batched.Linear(1, embed_dim, generators, init="xavier")
        self.cls_token = nn.Parameter(self._normal(generators, embed_dim))
        self.encoder = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio, generators)
                                     for _ in range(depth))
        self.encoder_norm = LayerNorm(n_models, embed_dim)
        self.decoder_embed = _batched.Linear(embed_dim, embed_dim, generators, init="xavier")
        self.mask_token = nn.Parameter(self._normal(generators, embed_dim))
        self.decoder = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio, generators)
                                     for _ in range(decoder_depth))
        self.decoder_norm = LayerNorm(n_models, embed_dim)
        self.head = _batched.Linear(embed_dim, 1, generators, init="xavier")
        with torch.no_grad():
            self.value_embed.bias.copy_(torch.stack(
                [torch.rand(1, embed_dim, generator=g) * 2 - 1 for g in generators]))
        # The fixed sine-cosine tables carry the model axis too (every buffer does), so that
        # _batched.select can slice them like everything else.
        table = sincos_positions(embed_dim, n_features)                               # (1 + d, E)
        self.register_buffer("positions", table.expand(n_models, -1, -1).clone())          # (K, 1 + d, E)
        self.register_buffer("decoder_positions", table.expand(n_models, -1, -1).clone())  # (K, 1 + d, E)

    @staticmethod
    def _normal(generators: list[torch.Generator], width: int) -> torch.Tensor:
        return torch.stack([torch.randn(1, width, generator=g) * 0.02 for g in generators])  # (K, 1, E)

    def forward(self, values: torch.Tensor, visible: torch.Tensor, n_slots: int | None = None) -> torch.Tensor:
        """Predicted values (K, rows, d) in (0, 1) from ``values`` (K, rows, d) where ``visible`` (bool) is True.

        ``n_slots``: encoder slots per row, at least the most visible entries of any row; ``None``
        counts them (one read-back to the host). Training passes its fixed number of visible
        entries, so the step has no data-dependent shape.
        """
        n_models, rows, n_features = values.shape
        width = self.cls_token.shape[-1]
        weight, bias = self.value_embed.weight[:, None], self.value_embed.bias[:, None]  # (K, 1, 1, E)
        tokens = torch.addcmul(bias, values.unsqueeze(-1), weight) + self.positions[:, None, 1:]  # (K, rows, d, E)
        # Like model_mae.random_masking, the encoder runs on the visible tokens only: gather them
        # to the front (n_slots slots per row; the spare slots are masked out of attention),
        # which halves its work in training.
        if n_slots is None:
            n_slots = int(visible.sum(dim=-1).max()) if visible.numel() else 0
        n_slots = min(max(int(n_slots), 1), n_features)
        slots = (~visible).to(torch.uint8).argsort(dim=-1, stable=True)[..., :n_slots]   # (K, rows, S)
        slot_visible = visible.gather(-1, slots)                                          # (K, rows, S)
        spread = slots.unsqueeze(-1).expand(-1, -1, -1, width)                            # (K, rows, S, E)
        kept = tokens.gather(2, spread)                                                   # (K, rows, S, E)
        cls = (self.cls_token + self.positions[:, :1])[:, None].expand(-1, rows, -1, -1)  # (K, rows, 1, E)
        hidden = torch.cat([cls, kept], dim=2)                                            # (K, rows, 1 + S, E)
        keys = torch.cat([slot_visible.new_ones(n_models, rows, 1), slot_visible], dim=2)  # (K, rows, 1 + S)
        for block in self.encoder:
            hidden = block(hidden, keys)
        hidden = _tokens(self.decoder_embed, _tokens(self.encoder_norm, hidden))
        # Decoder input: encoded tokens back in their places, the mask token everywhere else.
        mask_token = self.mask_token.to(hidden.dtype)[:, None]                            # (K, 1, 1, E)
        encoded = torch.where(slot_visible.unsqueeze(-1), hidden[:, :, 1:], mask_token)
        body = mask_token.expand(-1, rows, n_features, -1).scatter(2, spread, encoded)    # (K, rows, d, E)
        hidden = torch.cat([hidden[:, :, :1], body], dim=2) + self.decoder_positions[:, None]  # (K, rows, 1 + d, E)
        for block in self.decoder:
            hidden = block(hidden)
        hidden = _tokens(self.decoder_norm, hidden)
        # The E → 1 head as a product and a sum over the width: a one-column baddbmm takes another
        # BLAS path at K = 1 than at K > 1 (gemv against batched gemm; measured up to 4e-6 apart),
        # which would make a fit's numbers depend on its group.
        head = (hidden * self.head.weight.transpose(1, 2)[:, None]).sum(dim=-1) + self.head.bias  # (K, rows, 1 + d)
        out = torch.tanh(head) / 2 + 0.5
        return out[:, :, 1:]                                                               # (K, rows, d)


def remask(observed: torch.Tensor, n_visible: int, noise: torch.Tensor) -> torch.Tensor:
    """Visible entries of a training batch: ``n_visible`` random observed entries per row (fewer if absent).

    ``observed`` and ``noise`` (uniform in [0, 1), the row's shuffle) share a shape; the last axis is the features.
    """
    noise = noise.masked_fill(~observed, 2.0)              # missing entries sort last, never visible
    rank = noise.argsort(dim=-1).argsort(dim=-1)           # position of each entry in the row's shuffle
    return (rank < n_visible) & observed


def remasker_loss(pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor,
                  observed: torch.Tensor) -> torch.Tensor:
    """``model_mae.forward_loss`` per model: (K,) mean squared error on re-masked entries + on visible entries.

    Inputs are (K, rows, d); each model's means are over its own batch only.
    """
    squared = (pred.float() - target) ** 2
    remasked = (observed & ~visible).float()
    shown = visible.float()
    return _batched.batch_sum(squared * remasked) / _batched.batch_sum(remasked).clamp(min=1.0) \
        + _batched.batch_sum(squared * shown) / _batched.batch_sum(shown).clamp(min=1.0)


class _LossScaler:
    """Dynamic fp16 loss scaling with one scale per model (``torch.amp.GradScaler``'s rule, per model).

    A shared GradScaler would skip every model's step when one model's gradients overflow; here
    model k's gradients are unscaled by its own scale, and where they are not finite they are
    zeroed for this step and its scale halves (the optimiser still applies momentum and weight
    decay to it: one optimiser serves all K models). Scales double after ``interval`` finite
    steps in a row, as GradScaler's defaults (init 2^16, factor 2, interval 2000).
    """

    def __init__(self, n_models: int, device: str, init: float = 2.0 ** 16, interval: int = 2000):
        self.scale = torch.full((n_models,), init, device=device)
        self.good = torch.zeros(n_models, dtype=torch.long, device=device)
        self.interval = int(interval)

    def unscale(self, parameters: list[nn.Parameter]) -> None:
        inverse = 1.0 / self.scale
        finite = torch.ones_like(self.good, dtype=torch.bool)
        for p in parameters:
            view = (-1,) + (1,) * (p.grad.dim() - 1)
            p.grad.mul_(inverse.view(view))
            finite &= torch.isfinite(p.grad).flatten(1).all(dim=1)
        for p in parameters:
            p.grad.masked_fill_(~finite.view((-1,) + (1,) * (p.grad.dim() - 1)), 0.0)
        self.good = torch.where(finite, self.good + 1, torch.zeros_like(self.good))
        grow = self.good >= self.interval
        self.scale = torch.where(finite, torch.where(grow, self.scale * 2.0, self.scale), self.scale * 0.5)
        self.good = torch.where(grow, torch.zeros_like(self.good), self.good)


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
        The trained network (eval mode), a model axis of length 1 (this fit's slice of its group).
    architecture_ : dict
        The resolved ``embed_dim``, ``depth`` and ``decoder_depth``.
    loss_history_ : list of float
        Mean training loss of each epoch.
    info_ : dict
        Scalars for the result row (final loss, epochs, peak learning rate, architecture).
    """

    # "2": trained with a model axis (fit_group); per-model generators for init, row order and
    # re-masking, re-masking noise drawn in blocks, a fixed number of encoder slots in training,
    # and per-model LayerNorm/loss-scaling — the random streams and so the numbers changed.
    version = "2"

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
    def _group_key(self, X, y, schema=None) -> tuple:
        # ReMasker reads neither labels nor schema: fits agree when parameters (but the seed) and X's shape do.
        params = {k: v for k, v in self.get_params().items() if k not in ("random_state", "verbose")}
        return (repr(sorted(params.items())), X.shape)

    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        raise_first(type(self)._fit_batched([self], [X], [y], [schema]))

    @classmethod
    def _fit_batched(cls, imputers: list, Xs: list, ys: list, schemas: list) -> list:
        """Train ``imputers[k]`` on ``Xs[k]`` for every k as one model axis of length K.

        The imputers have equal parameters but ``random_state`` and equal X shapes
        (:meth:`_group_key`). Returns one entry per imputer: ``None`` when fitted, else the
        exception that stopped it (a model that diverges gets a ``TrainingDivergedError`` and
        the others train on).
        """
        errors: list = [None] * len(imputers)
        first = imputers[0]
        arch = first.resolved_architecture()
        try:
            first._check_params(arch)
        except ValueError as error:
            return [error] * len(imputers)
        device = resolve_device(first.device)
        use_amp = bool(first.amp) and device.startswith("cuda")
        n_models = len(imputers)

        # Model k draws everything from generators seeded from its own random_state: initial
        # weights (CPU), the epochs' row orders and the re-masking noise (on the device).
        init_gens, order_gens, mask_gens = [], [], []
        for imputer in imputers:
            seeds = torch.randint(2**62, (3,), generator=seed_torch(imputer.random_state)).tolist()
            init_gens.append(torch.Generator().manual_seed(seeds[0]))
            order_gens.append(torch.Generator(device=device).manual_seed(seeds[1]))
            mask_gens.append(torch.Generator(device=device).manual_seed(seeds[2]))

        # Reference min-max scaling by the observed training range (remasker_impute.py, fit), per model.
        for imputer, X in zip(imputers, Xs):
            imputer.architecture_, imputer.device_ = arch, device
            imputer.low_ = np.nanmin(X, axis=0)
            imputer.span_ = np.nanmax(X, axis=0) - imputer.low_ + NORM_EPS
        scaled = np.stack([(X - imp.low_) / imp.span_ for imp, X in zip(imputers, Xs)])    # (K, n, d)
        observed = torch.as_tensor(~np.isnan(scaled), device=device)
        values = torch.as_tensor(np.nan_to_num(scaled, nan=0.0), dtype=torch.float32, device=device)
        _, n_rows, n_features = values.shape
        n_visible = int(n_features * (1 - float(first.mask_ratio)))

        model = MaskedTabularAutoencoder(n_features, arch["embed_dim"], arch["depth"], arch["decoder_depth"],
                                         int(first.num_heads), float(first.mlp_ratio), init_gens).to(device)
        parameters = list(model.parameters())
        peak_lr = reference_learning_rate(first.blr, first.batch_size, lr=first.lr)
        # One AdamW over the stacked parameters: its update is element-wise, so it is K
        # independent AdamWs; the schedule depends only on epochs and n, equal across the group.
        optimizer = reference_optimizer(parameters, peak_lr, first.weight_decay)
        scaler = _LossScaler(n_models, device) if use_amp else None
        noise = _batched.Streams(mask_gens)

        batch_size = min(int(first.batch_size), n_rows)
        n_batches = math.ceil(n_rows / batch_size)
        epochs, warmup = first._budget(n_batches)
        model.train()
        histories: list[list[float]] = [[] for _ in imputers]
        for epoch in tqdm(range(epochs), desc="ReMasker", disable=not first.verbose):
            # One permutation of the rows per model and epoch, from that model's generator.
            order = torch.stack([torch.randperm(n_rows, generator=g, device=device) for g in order_gens])
            total = torch.zeros(n_models, device=device)
            for step in range(n_batches):
                rate = scheduled_learning_rate(epoch + step / n_batches, peak_lr, float(first.min_lr),
                                               epochs, warmup)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                idx = order[:, step * batch_size:(step + 1) * batch_size]                 # (K, B)
                batch, batch_observed = _batched.gather_rows(values, idx), _batched.gather_rows(observed, idx)
                shuffle = noise.uniform("remask", (batch_size, n_features))[:, :idx.shape[1]]
                noise.advance()
                visible = remask(batch_observed, n_visible, shuffle)
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                    pred = model(batch, visible, n_slots=n_visible)
                loss = remasker_loss(pred, batch, visible, batch_observed)                # (K,)
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.sum().backward()
                else:
                    (loss * scaler.scale).sum().backward()
                    scaler.unscale(parameters)
                optimizer.step()
                total += loss.detach()
            epoch_loss = (total / n_batches).cpu().numpy()  # one device sync per epoch
            _batched.record_epochs(epoch_loss[None], epoch, histories, errors, "ReMasker")
            if all(e is not None for e in errors):
                break
        model.eval()
        for k, imputer in enumerate(imputers):
            if errors[k] is not None:
                continue
            imputer.model_ = _batched.select(model, int(k))
            imputer.loss_history_ = histories[k]
            imputer.info_ = {"final_loss": histories[k][-1], "epochs_run": len(histories[k]),
                             "steps_run": len(histories[k]) * n_batches, "peak_lr": peak_lr, **arch}
        return errors

    # ------------------------------------------------------------------ impute
    @torch.no_grad()
    def _transform(self, X: np.ndarray) -> np.ndarray:
        scaled = (X - self.low_) / self.span_
        observed = torch.as_tensor(~np.isnan(X), device=self.device_)[None]
        values = torch.as_tensor(np.nan_to_num(scaled, nan=0.0), dtype=torch.float32, device=self.device_)[None]
        self.model_.eval()
        # All observed entries visible, as the reference's evaluation-mode masking does row by row.
        chunks = [self.model_(values[:, i:i + 4096], observed[:, i:i + 4096])
                  for i in range(0, values.shape[1], 4096)]
        pred = torch.cat(chunks, dim=1)[0].float().cpu().numpy().astype(float)
        return pred * self.span_ + self.low_
