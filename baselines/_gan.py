"""Building blocks shared by GAIN (baselines/gain.py) and Meta-GAIN (metagain/model.py).

Both methods fill the missing entries with small uniform noise, show the discriminator a hint
matrix, train the discriminator to tell observed from imputed entries, and push the generator
to fool it. Everything here works on K models at once (``baselines/_batched.py``): tensors are
(K, batch, d) and every loss is a (K,) vector. The two differ only in the hint: GAIN (Yoon et al. 2018, reference code
jsyoon0823/GAIN ``gain.py``) uses ``H = B ⊙ M``; Meta-GAIN (Algorithm 1, line 8) uses
``H = B ⊙ M + 0.5 (1 − B)``, which marks the entries the hint does not reveal as "unknown".
The random numbers (noise, hint draws) come from the caller's per-model streams, so a fit is
reproducible from its seed.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from baselines._batched import Aligned, aligned, batch_mean, batch_sum, mlp

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


def noise_fill(x: torch.Tensor, m: torch.Tensor, u: torch.Tensor, high: float = 0.01) -> torch.Tensor:
    """X̃ = M ⊙ X + (1 − M) ⊙ S, S = high · u with u ~ U(0, 1) drawn by the caller
    (GAIN ``uniform_sampler(0, 0.01, ...)``; paper Eq. 5)."""
    return m * x + (1 - m) * (u * high)


def sample_hint(m: torch.Tensor, u: torch.Tensor, hint_rate: float, unknown: float | None = None) -> torch.Tensor:
    """Hint matrix from B = [u < hint_rate] ~ Bernoulli(hint_rate), u ~ U(0, 1) drawn by the caller.

    ``unknown=None``: GAIN's ``H = B ⊙ M`` (jsyoon0823/GAIN ``gain.py``). ``unknown=0.5``:
    Meta-GAIN's ``H = B ⊙ M + 0.5 (1 − B)`` (paper, Algorithm 1 line 8).
    """
    b = (u < hint_rate).to(m.dtype)
    hint = b * m
    return hint if unknown is None else hint + unknown * (1 - b)


# ---------------------------------------------------------------------------- networks
class Discriminator(nn.Module):
    """D([X̂, H]) → M̂ ∈ (0, 1)^d for K models: per-entry probability of being observed.

    Three fully connected layers, ReLU, sigmoid output, GAIN's init (N(0, 2/fan_in) weights, zero
    biases), as GAIN's ``discriminator`` (gain.py); GAIN uses ``hidden = d``, Meta-GAIN a width of
    100 (docs/DESIGN.md, Meta-GAIN). Inputs and output are (K, batch, ·).
    """

    def __init__(self, n_features: int, hidden: int, init_generators: list[torch.Generator]):
        super().__init__()
        self.net = mlp([2 * n_features, hidden, hidden, n_features], init_generators, "gain",
                       out_activation=Aligned(torch.sigmoid))

    def forward(self, x_hat: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_hat, hint], dim=-1))  # (K, batch, 2d) → (K, batch, d)


# ---------------------------------------------------------------------------- losses (one per model)
def observed_mse(x: torch.Tensor, x_bar: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(K,) mean squared error over each model's observed entries (GAIN's ``MSE_loss``; L_rc)."""
    return batch_sum((m * (x_bar - x)) ** 2) / batch_sum(m).clamp_min(1.0)


def discriminator_loss(m: torch.Tensor, m_hat: torch.Tensor) -> torch.Tensor:
    """(K,) L_D = −mean(M log M̂ + (1 − M) log(1 − M̂)) (paper Eq. 4; GAIN ``D_loss_temp``)."""
    return -batch_mean(m * _log(m_hat + EPS) + (1 - m) * _log(1 - m_hat + EPS))


def adversarial_loss(m: torch.Tensor, m_hat: torch.Tensor) -> torch.Tensor:
    """(K,) L_ad = −mean((1 − M) log M̂): imputed entries should look observed (GAIN ``G_loss_temp``)."""
    return -batch_mean((1 - m) * _log(m_hat + EPS))


def _log(t: torch.Tensor) -> torch.Tensor:
    return aligned(torch.log, t)  # a model's numbers must not depend on K (baselines/_batched.py)
