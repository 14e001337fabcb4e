"""Building blocks shared by GAIN (baselines/gain.py) and Meta-GAIN (metagain/model.py).

Both methods fill the missing entries with small uniform noise, show the discriminator a hint
matrix, train the discriminator to tell observed from imputed entries, and push the generator
to fool it. The two differ only in the hint: GAIN (Yoon et al. 2018, reference code
jsyoon0823/GAIN ``gain.py``) uses ``H = B ⊙ M``; Meta-GAIN (Algorithm 1, line 8) uses
``H = B ⊙ M + 0.5 (1 − B)``, which marks the entries the hint does not reveal as "unknown".
Every random draw takes an explicit ``torch.Generator``, so a fit is reproducible from its seed.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

EPS = 1e-8  # inside every log, as the GAIN reference code does (gain.py, D_loss_temp)


# ---------------------------------------------------------------------------- data
class ObservedMinMax:
    """Min-max scaling to [0, 1] from the observed (non-NaN) values of the training rows.

    The runner already hands imputers data scaled this way, so on its data this is the identity;
    it lets the public estimators take raw, unscaled arrays as well (GAIN's ``normalization``
    in jsyoon0823/GAIN ``utils.py`` does the same inside ``gain``).
    """

    def fit(self, X: np.ndarray) -> "ObservedMinMax":
        self.low_ = np.nanmin(X, axis=0)
        span = np.nanmax(X, axis=0) - self.low_
        self.span_ = np.where(span > 0, span, 1.0)  # a constant column maps to 0, not to NaN
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.low_) / self.span_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return X * self.span_ + self.low_


def to_tensors(X: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(values with NaN → 0, mask M with 1 = observed) as float32 tensors on ``device``."""
    mask = ~np.isnan(X)
    values = np.where(mask, X, 0.0)
    return (torch.as_tensor(values, dtype=torch.float32, device=device),
            torch.as_tensor(mask, dtype=torch.float32, device=device))


class BatchSampler:
    """Row indices of one mini-batch: the first ``batch_size`` rows of a fresh permutation.

    Sampling without replacement inside a batch and independently across batches, as GAIN's
    ``sample_batch_index`` (jsyoon0823/GAIN ``utils.py``); a set smaller than a batch is used whole.
    """

    def __init__(self, n_rows: int, batch_size: int, generator: torch.Generator):
        if n_rows < 1:
            raise ValueError("BatchSampler needs at least one row.")
        self.n_rows, self.batch_size, self.generator = n_rows, int(batch_size), generator

    def __call__(self) -> torch.Tensor:
        perm = torch.randperm(self.n_rows, generator=self.generator, device=self.generator.device)
        return perm[: self.batch_size]


def noise_fill(x: torch.Tensor, m: torch.Tensor, generator: torch.Generator,
               high: float = 0.01) -> torch.Tensor:
    """X̃ = M ⊙ X + (1 − M) ⊙ S with S ~ U(0, high) (GAIN ``uniform_sampler(0, 0.01, ...)``; paper Eq. 5)."""
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * high
    return m * x + (1 - m) * noise


def sample_hint(m: torch.Tensor, hint_rate: float, generator: torch.Generator,
                unknown: float | None = None) -> torch.Tensor:
    """Hint matrix from B ~ Bernoulli(hint_rate).

    ``unknown=None``: GAIN's ``H = B ⊙ M`` (jsyoon0823/GAIN ``gain.py``). ``unknown=0.5``:
    Meta-GAIN's ``H = B ⊙ M + 0.5 (1 − B)`` (paper, Algorithm 1 line 8).
    """
    u = torch.rand(m.shape, generator=generator, device=m.device, dtype=m.dtype)
    b = (u < hint_rate).to(m.dtype)
    hint = b * m
    return hint if unknown is None else hint + unknown * (1 - b)


# ---------------------------------------------------------------------------- networks
def gain_init_(linear: nn.Linear) -> nn.Linear:
    """GAIN's ``xavier_init``: normal weights with std 1/sqrt(fan_in / 2), zero biases.

    (jsyoon0823/GAIN ``utils.py``; despite its name the std is He's sqrt(2 / fan_in).)
    """
    with torch.no_grad():
        linear.weight.normal_(0.0, 1.0 / math.sqrt(linear.in_features / 2.0))
        linear.bias.zero_()
    return linear


def mlp(sizes: list[int], out_activation: nn.Module | None = None, gain_init: bool = False):
    """Fully connected layers ``sizes[0] → … → sizes[-1]`` with ReLU between them."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out)
        layers.append(gain_init_(linear) if gain_init else linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_activation is not None:
        layers.append(out_activation)
    return nn.Sequential(*layers)


class Discriminator(nn.Module):
    """D([X̂, H]) → M̂ ∈ (0, 1)^d: per-entry probability of being observed.

    Three fully connected layers, ReLU, sigmoid output, as GAIN's ``discriminator`` (gain.py);
    GAIN uses ``hidden = d``, Meta-GAIN a width of 100 (docs/DESIGN.md, Meta-GAIN).
    """

    def __init__(self, n_features: int, hidden: int, gain_init: bool = False):
        super().__init__()
        self.net = mlp([2 * n_features, hidden, hidden, n_features], nn.Sigmoid(), gain_init)

    def forward(self, x_hat: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_hat, hint], dim=1))  # (batch, 2d) → (batch, d)


# ---------------------------------------------------------------------------- losses
def observed_mse(x: torch.Tensor, x_bar: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the observed entries only (GAIN's ``MSE_loss``; L_rc)."""
    return ((m * (x_bar - x)) ** 2).sum() / m.sum().clamp_min(1.0)


def discriminator_loss(m: torch.Tensor, m_hat: torch.Tensor) -> torch.Tensor:
    """L_D = −mean(M log M̂ + (1 − M) log(1 − M̂)) (paper Eq. 4; GAIN ``D_loss_temp``)."""
    return -(m * torch.log(m_hat + EPS) + (1 - m) * torch.log(1 - m_hat + EPS)).mean()


def adversarial_loss(m: torch.Tensor, m_hat: torch.Tensor) -> torch.Tensor:
    """L_ad = −mean((1 − M) log M̂): imputed entries should look observed (GAIN ``G_loss_temp``)."""
    return -((1 - m) * torch.log(m_hat + EPS)).mean()
