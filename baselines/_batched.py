"""K independent models trained as one computation: the model axis shared by the deep imputers.

Every parameter and buffer of a batched module has a leading axis of length K, one slice per
model; activations are ``(K, batch, features)``. A layer is one ``baddbmm`` for all K models, a
loss is a ``(K,)`` vector (one entry per model, reduced over that model's batch only), and one
backward of its sum gives each model the gradient of its own loss (the models share no
parameter). SGD and Adam are element-wise, so one optimiser over the stacked tensors is K
independent optimisers. The estimator of each imputer is this code at K = 1: there is no second
copy of any model.

Randomness is per model: model k draws its initial weights, batches and noise from its own
generators, seeded from its own seed, so its numbers do not depend on which models share its
group (``tests/baselines/test_batched.py`` checks a group of K against each model alone). Random numbers
are drawn ``BLOCK`` steps at a time (one call per model and block instead of one per step), and
mini-batches walk through a fresh permutation of the rows (an epoch) instead of drawing a
permutation of all rows every step.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

BLOCK = 64  # steps of random numbers drawn per call (memory: BLOCK × K × batch × width floats)


# ---------------------------------------------------------------------------- layers
class Linear(nn.Module):
    """K fully connected layers ``fan_in → fan_out``: ``x @ W_k + b_k`` for each model k.

    ``init``: ``"gain"`` — N(0, 2 / fan_in) weights, zero biases (GAIN's ``xavier_init``,
    jsyoon0823/GAIN utils.py); ``"torch"`` — PyTorch's ``nn.Linear`` default, U(±1/√fan_in) for
    weights and biases; ``"xavier"`` — Glorot-uniform weights, zero biases. Model k's weights come
    from ``generators[k]`` (CPU), so they do not depend on the other models of its group.
    """

    def __init__(self, fan_in: int, fan_out: int, generators: list[torch.Generator], init: str = "torch"):
        super().__init__()
        self.fan_in, self.fan_out = int(fan_in), int(fan_out)
        weights, biases = zip(*(_init_one(self.fan_in, self.fan_out, g, init) for g in generators))
        self.weight = nn.Parameter(torch.stack(weights))           # (K, fan_in, fan_out)
        self.bias = nn.Parameter(torch.stack(biases)[:, None, :])  # (K, 1, fan_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)            # (K, B, fan_in) → (K, B, fan_out)


def _init_one(fan_in: int, fan_out: int, generator: torch.Generator, init: str):
    if init == "gain":
        weight = torch.randn(fan_in, fan_out, generator=generator) / math.sqrt(fan_in / 2.0)
        return weight, torch.zeros(fan_out)
    if init == "xavier":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound, torch.zeros(fan_out)
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        weight = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound
        return weight, (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
    raise ValueError(f"init must be 'gain', 'torch' or 'xavier', got {init!r}.")


def mlp(sizes: list[int], generators: list[torch.Generator], init: str = "torch",
        activation=nn.ReLU, out_activation: nn.Module | None = None) -> nn.Sequential:
    """K fully connected networks ``sizes[0] → … → sizes[-1]``, ``activation`` between layers."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(fan_in, fan_out, generators, init))
        if i < len(sizes) - 2:
            layers.append(activation())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


def select(module: nn.Module, k: int) -> nn.Module:
    """A K = 1 copy of model ``k`` of a batched module (every parameter and buffer sliced at k)."""
    out = copy.deepcopy(module)
    with torch.no_grad():
        for tensor in [*out.parameters(), *out.buffers()]:
            tensor.data = tensor.data[k:k + 1].clone()
    return out


# ---------------------------------------------------------------------------- element-wise maths
ALIGN = 64  # floats: a multiple of every CPU vector loop's stride (2 × 16 floats on AVX-512)


def aligned(fn, t: torch.Tensor) -> torch.Tensor:
    """``fn(t)`` for an element-wise ``fn``, computed so that each model's values do not depend on K.

    On CPU, PyTorch evaluates exp/log/sigmoid/tanh/softplus with SIMD code over whole vectors and
    with scalar code over the tail of a tensor; the two can differ in the last bit, so where a
    model's slice of a (K, ...) tensor starts would change its numbers. Padding each model's slice
    to a multiple of ``ALIGN`` elements makes every slice start and end on the same vector
    boundaries whatever K is. Arithmetic (+ − × ÷ √, max) is exact either way and needs none of
    this; nor does CUDA, which has no separate tail path.
    """
    if t.device.type != "cpu":
        return fn(t)
    flat = t.reshape(t.shape[0], -1)
    pad = (-flat.shape[1]) % ALIGN
    if pad == 0:
        return fn(t)
    return fn(nn.functional.pad(flat, (0, pad)))[:, :flat.shape[1]].reshape(t.shape)


ROWS = 16  # floats per 64 bytes: a batch of a multiple of 16 rows keeps every model's matrix 64-byte aligned


def pad_rows(t: torch.Tensor, multiple: int = ROWS) -> torch.Tensor:
    """(K, rows, ·) → (K, rows rounded up to ``multiple``, ·), the new rows zero.

    BLAS kernels on CPU take different paths for matrices that do not start on a 64-byte
    boundary, so model k ≥ 1 of a batch whose rows × width is not a multiple of 16 floats can
    differ in the last bit from the same model alone (measured: 31 rows into a 100 → 6 layer).
    Batches of a multiple of 16 rows avoid it; the batches of the published budgets are (GAIN
    128, Meta-GAIN 64), and a smaller batch (the meta batch on a small dataset) is padded with
    rows whose mask is zero, which every loss that uses this ignores.
    """
    pad = (-t.shape[1]) % multiple
    return t if pad == 0 else nn.functional.pad(t, (0, 0, 0, pad))


class Aligned(nn.Module):
    """An element-wise activation (e.g. ``torch.sigmoid``) applied through :func:`aligned`."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return aligned(self.fn, x)


# ---------------------------------------------------------------------------- randomness
def generators(seeds: list[int], device) -> list[torch.Generator]:
    """One generator per model on ``device``, seeded with that model's seed."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


class Streams:
    """Per-model random numbers, drawn ``block`` steps at a time.

    ``uniform(name, shape)`` / ``normal(name, shape)`` return a ``(K, *shape)`` tensor for the
    current step: row k comes from ``generators[k]``. Each name keeps its own block; call
    ``advance()`` once per step. Every model consumes its generator in the same order whatever K
    is, so a model's draws do not depend on its group.
    """

    def __init__(self, gens: list[torch.Generator], block: int = BLOCK):
        self.gens, self.block, self.step, self.cache = gens, int(block), 0, {}

    def _take(self, name: str, shape: tuple, draw) -> torch.Tensor:
        held = self.cache.get(name)
        if held is None or self.step - held[1] >= self.block:  # a new block of `block` steps
            held = (torch.stack([draw((self.block, *shape), g) for g in self.gens], dim=1), self.step)
            self.cache[name] = held
        return held[0][self.step - held[1]]

    def uniform(self, name: str, shape: tuple) -> torch.Tensor:
        return self._take(name, tuple(shape), lambda size, g: torch.rand(size, generator=g, device=g.device))

    def normal(self, name: str, shape: tuple) -> torch.Tensor:
        return self._take(name, tuple(shape), lambda size, g: torch.randn(size, generator=g, device=g.device))

    def advance(self) -> None:
        self.step += 1


class EpochSampler:
    """Mini-batch row indices per model: consecutive slices of fresh permutations (epochs).

    Each batch has ``min(batch_size, n_rows)`` distinct rows; batches of one model walk through a
    permutation of the rows before the next is drawn (a shuffling data loader with
    ``drop_last``), so no step draws a permutation of all rows. Indices are prepared ``block``
    batches at a time.
    Returns ``(K, batch)`` long tensors.
    """

    def __init__(self, n_rows: int, batch_size: int, gens: list[torch.Generator], block: int = BLOCK):
        if n_rows < 1:
            raise ValueError("EpochSampler needs at least one row.")
        self.n, self.batch = int(n_rows), min(int(batch_size), int(n_rows))
        self.gens, self.block = gens, int(block)
        self.rest = [torch.empty(0, self.batch, dtype=torch.long, device=g.device) for g in gens]
        self.ready, self.t = None, 0

    def _refill(self) -> None:
        per_epoch, batches = self.n // self.batch, []
        for k, g in enumerate(self.gens):
            parts, have = [self.rest[k]], self.rest[k].shape[0]
            while have < self.block:  # an epoch's last n mod batch rows are left out (drop_last)
                perm = torch.randperm(self.n, generator=g, device=g.device)
                parts.append(perm[:per_epoch * self.batch].view(per_epoch, self.batch))
                have += per_epoch
            epoch = torch.cat(parts)
            batches.append(epoch[:self.block])
            self.rest[k] = epoch[self.block:]
        self.ready, self.t = torch.stack(batches, dim=1), 0  # (block, K, batch)

    def __call__(self) -> torch.Tensor:
        if self.ready is None or self.t == self.block:
            self._refill()
        idx = self.ready[self.t]
        self.t += 1
        return idx


def gather_rows(data: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (K, B) of each model's data (K, n, ...) → (K, B, ...).

    One ``index_select`` over the K·n stacked rows (several times faster on CPU than a ``gather``
    along the row axis); a pure copy, so the values are the same.
    """
    K, n = data.shape[:2]
    offsets = torch.arange(K, device=idx.device)[:, None] * n
    flat = data.reshape(K * n, *data.shape[2:])
    return flat.index_select(0, (idx + offsets).reshape(-1)).view(*idx.shape, *data.shape[2:])


def batch_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the model axis: (K, ...) → (K,)."""
    return t.reshape(t.shape[0], -1).mean(dim=1)


def batch_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over every axis but the model axis: (K, ...) → (K,)."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


# ---------------------------------------------------------------------------- divergence
def note_diverged(finite: torch.Tensor, errors: list, where: str) -> None:
    """Record a ``TrainingDivergedError`` for each model whose (K,) ``finite`` flag fell (one host read)."""
    from baselines._base import TrainingDivergedError

    for k, ok in enumerate(finite.tolist()):
        if not ok and errors[k] is None:
            errors[k] = TrainingDivergedError(
                f"Training diverged in {where}: the loss became NaN or inf. "
                "Lower the learning rate or check the input scaling.")


def record_epochs(losses, first_epoch: int, histories: list, errors: list, model: str) -> None:
    """Append epochs' losses ``(epochs, K)`` (read back at once) to each model's history.

    A non-finite loss fails that model with a ``TrainingDivergedError`` naming ``model`` and the
    epoch (epochs count from ``first_epoch + 1``); its history stops there.
    """
    import numpy as np

    from baselines._base import TrainingDivergedError

    for k, history in enumerate(histories):
        if errors[k] is not None:
            continue
        for e, value in enumerate(losses[:, k]):
            if not np.isfinite(value):
                errors[k] = TrainingDivergedError(
                    f"Training diverged in {model} epoch {first_epoch + e + 1}: the loss became {value}. "
                    "Lower the learning rate or check the input scaling.")
                break
            history.append(float(value))
