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
- imputation: G on freshly drawn noise, observed entries kept.

Trained with a model axis (``baselines/_batched.py``): ``fit_group`` trains many fits (seeds,
masks) as one computation and a single ``fit`` is the same code at K = 1. Mini-batches walk
through a shuffled epoch of the rows (the reference draws each batch independently), and each
fit's numbers come from its own seed whatever its group. The reference's rounding of
  columns with < 20 distinct values is not applied (docs/DESIGN.md, Scaling and decoding: categoricals are decoded for
  every method by the harness).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from baselines._base import BaseImputer, raise_first, resolve_device, seed_torch
from baselines._batched import Aligned, EpochSampler, Streams, gather_rows, generators, mlp, note_diverged, select
from baselines._gan import Discriminator, ObservedMinMax, adversarial_loss, discriminator_loss, noise_fill, \
    observed_mse, sample_hint, to_tensors

CHECK_EVERY = 100  # iterations between divergence checks (the only host reads of the training loop)
TRAIN_STREAM = 7   # model k's batches and noise come from seed_k + 7 (its init from seed_k)


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

    version = "2"  # 1 → 2: trained with a model axis: per-model generators, epoch batches, block-drawn noise

    def _fit(self, X, y, schema):
        raise_first(type(self)._fit_batched([self], [X], [y], [schema]))

    @classmethod
    def _fit_batched(cls, imputers, Xs, ys, schemas):
        """Train one GAIN per imputer as K models at once (``baselines/_batched.py``)."""
        first, K = imputers[0], len(imputers)
        if int(first.iterations) < 1:
            return [ValueError(f"iterations must be a positive number, got {first.iterations}.")] * K
        device = resolve_device(first.device)
        for imputer, X in zip(imputers, Xs):
            imputer.device_, imputer.seed_ = device, seed_torch(imputer.random_state).initial_seed()
            imputer.scaler_ = ObservedMinMax().fit(X)
        x_all, m_all = (torch.stack(t) for t in zip(*(to_tensors(imp.scaler_.transform(X), device)
                                                      for imp, X in zip(imputers, Xs))))
        seeds = [imp.seed_ for imp in imputers]
        init = [torch.Generator().manual_seed(s) for s in seeds]  # model k's init from its own seed
        d = x_all.shape[-1]
        # h_dim = dim in the reference (gain.py); G ends in a sigmoid, D's sigmoid is in Discriminator
        generator = mlp([2 * d, d, d, d], init, "gain", out_activation=Aligned(torch.sigmoid)).to(device)
        discriminator = Discriminator(d, d, init).to(device)
        # foreach: the same element-wise update as the default loop (CPU), fewer dispatches; CUDA's default
        opt_g = torch.optim.Adam(generator.parameters(), lr=first.learning_rate, foreach=True)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=first.learning_rate, foreach=True)
        gens = generators([s + TRAIN_STREAM for s in seeds], device)
        streams, batches = Streams(gens), EpochSampler(x_all.shape[1], first.batch_size, gens)
        finite, errors = torch.ones(K, dtype=torch.bool, device=device), [None] * K
        iterations = int(first.iterations)
        for it in tqdm(range(iterations), desc="GAIN", disable=not first.verbose):
            idx = batches()
            x, m = gather_rows(x_all, idx), gather_rows(m_all, idx)
            x_tilde = noise_fill(x, m, streams.uniform("noise", x.shape[1:]), first.noise_high)
            hint = sample_hint(m, streams.uniform("hint", x.shape[1:]), first.hint_rate)  # H = B ⊙ M
            streams.advance()
            g_out = generator(torch.cat([x_tilde, m], dim=-1))  # (K, batch, 2d) → (K, batch, d)
            x_hat = m * x_tilde + (1 - m) * g_out
            d_loss = discriminator_loss(m, discriminator(x_hat.detach(), hint))
            opt_d.zero_grad(set_to_none=True)
            d_loss.sum().backward()
            opt_d.step()
            # the G step sees the updated D, as the reference's second sess.run does
            g_loss = adversarial_loss(m, discriminator(x_hat, hint)) + first.alpha * observed_mse(x, g_out, m)
            opt_g.zero_grad(set_to_none=True)
            g_loss.sum().backward()
            opt_g.step()
            finite &= torch.isfinite(d_loss + g_loss)
            if (it + 1) % CHECK_EVERY == 0 or it == iterations - 1:  # a host read syncs a GPU: not every step
                note_diverged(finite, errors, f"GAIN at or before iteration {it}")
        for k, imputer in enumerate(imputers):
            if errors[k] is None:
                imputer.generator_ = select(generator, k).eval()
        return errors

    @torch.no_grad()
    def _impute(self, X, generator):
        x, m = (t[None] for t in to_tensors(self.scaler_.transform(X), self.device_))  # K = 1
        u = torch.rand(x.shape, generator=generator, device=x.device)
        g_out = self.generator_(torch.cat([noise_fill(x, m, u, self.noise_high), m], dim=-1))
        return self.scaler_.inverse_transform((m * x + (1 - m) * g_out)[0].cpu().double().numpy())

    def _transform(self, X):
        # fresh noise as the reference draws it, from a fixed seed so transform is deterministic
        return self._impute(X, torch.Generator(device=self.device_).manual_seed(self.seed_ + 1))

    def _sample(self, X, n):
        generator = torch.Generator(device=self.device_).manual_seed(self.seed_ + 2)
        return np.stack([self._impute(X, generator) for _ in range(n)])
