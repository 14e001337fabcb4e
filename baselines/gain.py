"""GAIN (Yoon, Jordon & van der Schaar, ICML 2018) as its reference code runs it.

Reference: jsyoon0823/GAIN — ``main_letter_spam.py`` (defaults: batch_size 128, hint_rate 0.9,
alpha 100, iterations 10 000), ``gain.py`` (networks, losses, training loop) and ``utils.py``
(``xavier_init``, ``uniform_sampler``, ``binary_sampler``, ``sample_batch_index``). What it does:

- generator G([X̃, M]) and discriminator D([X̂, H]): 3 fully connected layers of width d,
  ReLU, sigmoid output, weights N(0, 1/sqrt(fan_in/2)) and zero biases;
- X̃ = M ⊙ X + (1 − M) ⊙ S, S ~ U(0, 0.01); hint H = B ⊙ M, B ~ Bernoulli(hint_rate);
- per iteration, on one batch: a D step on L_D, then a G step on
  −mean((1 − M) log D) + alpha · MSE(observed), both with TF1's ``AdamOptimizer()`` defaults
  (lr 1e-3, betas 0.9/0.999, eps 1e-8);
- imputation: G on freshly drawn noise, observed entries kept. The reference's rounding of
  columns with < 20 distinct values is not applied (docs/DESIGN.md, Scaling and decoding: categoricals are decoded for
  every method by the harness).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from baselines._base import BaseImputer, check_finite_loss, resolve_device, seed_torch
from baselines._gan import BatchSampler, Discriminator, ObservedMinMax, adversarial_loss, \
    discriminator_loss, mlp, noise_fill, observed_mse, sample_hint, to_tensors


class GAINImputer(BaseImputer):
    """GAIN imputer with the reference code's defaults.

    Parameters
    ----------
    batch_size : int
        Rows per iteration (reference: 128).
    hint_rate : float
        Probability that the hint reveals an entry's mask value (reference: 0.9).
    alpha : float
        Weight of the observed-entry MSE in the generator loss (reference: 100).
    iterations : int
        Training iterations (reference: 10 000).
    learning_rate : float
        Adam step size of both networks (TF1 default: 1e-3).
    noise_high : float
        Upper end of the U(0, noise_high) noise in missing entries (reference: 0.01).
    random_state : int or None
        Seeds init, batches, hints and noise: the same seed gives identical CPU runs.
    device : str
        "auto" (CUDA when present), "cpu" or "cuda".
    verbose : bool
        Progress bar.
    """

    def __init__(self, batch_size=128, hint_rate=0.9, alpha=100.0, iterations=10_000, learning_rate=1e-3,
                 noise_high=0.01, random_state=None, device="auto", verbose=False):
        self.batch_size = batch_size
        self.hint_rate = hint_rate
        self.alpha = alpha
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.noise_high = noise_high
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _fit(self, X, y, schema):
        if int(self.iterations) < 1:
            raise ValueError(f"iterations must be a positive number, got {self.iterations}.")
        self.device_ = resolve_device(self.device)
        self.seed_ = seed_torch(self.random_state).initial_seed()
        generator = torch.Generator(device=self.device_).manual_seed(self.seed_)
        self.scaler_ = ObservedMinMax().fit(X)
        x_all, m_all = to_tensors(self.scaler_.transform(X), self.device_)
        d = X.shape[1]
        # h_dim = dim in the reference (gain.py); G ends in a sigmoid, D's sigmoid is in Discriminator
        self.generator_ = mlp([2 * d, d, d, d], nn.Sigmoid(), gain_init=True).to(self.device_)
        self.discriminator_ = Discriminator(d, d, gain_init=True).to(self.device_)
        opt_g = torch.optim.Adam(self.generator_.parameters(), lr=self.learning_rate)
        opt_d = torch.optim.Adam(self.discriminator_.parameters(), lr=self.learning_rate)
        batches = BatchSampler(X.shape[0], self.batch_size, generator)
        for it in tqdm(range(int(self.iterations)), desc="GAIN", disable=not self.verbose):
            idx = batches()
            x, m = x_all[idx], m_all[idx]
            x_tilde = noise_fill(x, m, generator, self.noise_high)
            hint = sample_hint(m, self.hint_rate, generator)       # H = B ⊙ M
            g_out = self.generator_(torch.cat([x_tilde, m], dim=1))  # (batch, 2d) → (batch, d)
            x_hat = m * x_tilde + (1 - m) * g_out
            d_loss = discriminator_loss(m, self.discriminator_(x_hat.detach(), hint))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # the G step sees the updated D, as the reference's second sess.run does
            g_loss = adversarial_loss(m, self.discriminator_(x_hat, hint)) \
                + self.alpha * observed_mse(x, g_out, m)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if it % 100 == 0 or it == int(self.iterations) - 1:  # .item() syncs a GPU: not every step
                check_finite_loss(d_loss.item() + g_loss.item(), f"GAIN iteration {it}")
        self.generator_.eval()

    @torch.no_grad()
    def _impute(self, X, generator):
        x, m = to_tensors(self.scaler_.transform(X), self.device_)
        g_out = self.generator_(torch.cat([noise_fill(x, m, generator, self.noise_high), m], dim=1))
        return self.scaler_.inverse_transform((m * x + (1 - m) * g_out).cpu().double().numpy())

    def _transform(self, X):
        # fresh noise as the reference draws it, from a fixed seed so transform is deterministic
        return self._impute(X, torch.Generator(device=self.device_).manual_seed(self.seed_ + 1))

    def _sample(self, X, n):
        generator = torch.Generator(device=self.device_).manual_seed(self.seed_ + 2)
        return np.stack([self._impute(X, generator) for _ in range(n)])
