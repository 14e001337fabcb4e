"""VAEI: variational-autoencoder imputation (McCoy, Kroon & Auret, IFAC MMM 2018).

A VAE with Gaussian encoder and Gaussian decoder (two ReLU layers of 20 units each way, a
5-dimensional latent space), trained by Adam on the ELBO; missing entries are then imputed by
iterating "reconstruct the row, put the reconstruction into the missing entries" 25 times,
starting from the column mean. This is the pseudo-Gibbs / Markov chain of Rezende et al. (2014)
that the authors' code (ProcessMonitoringStellenboschUniversity/IFAC-VAE-Imputation,
``autoencoders.py`` ``impute``) runs.

Training has a model axis (``baselines._batched``): ``VAEImputer.fit_group`` trains K fits of
equal shape as one computation, each with its own generators (initial weights, batch order,
latent noise), and ``fit`` is that code at K = 1; the fitted ``model_`` is one K = 1 slice.

Where this implementation departs from the reference code, and why:

* **Training rows.** The reference trains on the complete records only. With the harness's
  corruption (every entry hidden independently) few rows are complete — at ratio 0.2 on 16
  columns about 3 % — so here the VAE is trained on every training row: the missing entries
  enter the encoder at the column mean (zero after standardising, the value the reference's
  chain starts from) and the reconstruction term of the ELBO counts observed entries only.
* **Standardising.** The reference z-scores the data before training (``main.py``: "Zscore of
  data produces much better results"); here the columns are z-scored internally with the
  mean and standard deviation of the observed training values and mapped back afterwards.
* **Decoder variance.** The reference decoder outputs a "log σ²" but uses its exponential as
  the standard deviation in the likelihood; here it is a log-variance throughout, with a
  floor (variance ≥ 1e-4 in standardised units) so that a column the decoder reproduces
  exactly — a categorical one — cannot drive the likelihood to infinity.
* **Deterministic imputation.** ``transform`` runs the chain with z = μ(x) and the decoder
  mean, so it is a fixed function of the fitted model; ``sample`` runs independent chains
  that draw z from q(z|x) and x from p(x|z) at every step, as the reference does.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from baselines import _batched
from baselines._base import BaseImputer, raise_first, resolve_device, seed_streams
from baselines.schema import Schema

LOG_VAR_FLOOR = math.log(1e-4)  # decoder variance floor, standardised units
CHECK_STEPS = 64  # divergence is read back to the host once at least this many steps have run (at an epoch end)


# ---------------------------------------------------------------------------- building blocks
class GaussianHeads(nn.Module):
    """Two K-model linear heads ``width → out`` (a mean and a log-variance) computed as one layer.

    Each head is initialised as its own layer (the reference's xavier_init per layer, zero
    biases), then the two are stored side by side so that one ``baddbmm`` computes both.
    """

    def __init__(self, width: int, out: int, generators: list[torch.Generator]):
        super().__init__()
        mean, log_var = (_batched.Linear(width, out, generators, init="xavier") for _ in range(2))
        self.out = int(out)
        self.weight = nn.Parameter(torch.cat([mean.weight.data, log_var.weight.data], dim=2))  # (K, width, 2·out)
        self.bias = nn.Parameter(torch.cat([mean.bias.data, log_var.bias.data], dim=2))        # (K, 1, 2·out)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        both = torch.baddbmm(self.bias, h, self.weight)
        return both[..., :self.out], both[..., self.out:]


class GaussianVAE(nn.Module):
    """K VAEs: encoder x → (μ_z, log σ²_z) and decoder z → (μ_x, log σ²_x), both ReLU MLPs.

    Activations are ``(K, rows, features)``; model k's initial weights (Glorot-uniform, zero
    biases, as the reference's ``xavier_init``) come from ``generators[k]``.
    """

    def __init__(self, n_features: int, hidden_width: int, n_hidden_layers: int, latent_dim: int,
                 generators: list[torch.Generator]):
        super().__init__()
        hidden = [hidden_width] * n_hidden_layers
        self.encoder = _batched.mlp([n_features, *hidden], generators, "xavier", nn.ReLU, nn.ReLU())
        self.z_heads = GaussianHeads(hidden_width, latent_dim, generators)
        self.decoder = _batched.mlp([latent_dim, *hidden], generators, "xavier", nn.ReLU, nn.ReLU())
        self.x_heads = GaussianHeads(hidden_width, n_features, generators)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z_heads(self.encoder(x))  # (K, rows, latent) each

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_mean, x_log_var = self.x_heads(self.decoder(z))
        return x_mean, x_log_var.clamp(min=LOG_VAR_FLOOR)  # (K, rows, d) each


def negative_elbo(model: GaussianVAE, x: torch.Tensor, observed: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Each model's mean over its rows of −ELBO: Gaussian NLL of the observed entries + KL(q(z|x) ‖ N(0, I)).

    ``x``, ``observed``: (K, rows, d); ``eps``: (K, rows, latent) standard normal noise. Returns (K,).
    """
    z_mean, z_log_var = model.encode(x)
    z = z_mean + torch.exp(0.5 * z_log_var) * eps  # reparameterisation
    x_mean, x_log_var = model.decode(z)
    # (x − μ)² · exp(−log σ²), not / exp(log σ²): a log-variance past float32's exp range (≈ 88, reached
    # in the first steps on valley's 100 columns) then gives a finite loss and a zero gradient instead of
    # inf · 0 = NaN in the backward pass (version 3)
    nll = 0.5 * (math.log(2 * math.pi) + x_log_var + (x - x_mean) ** 2 * torch.exp(-x_log_var))
    nll = (nll * observed).sum(dim=2)
    kl = -0.5 * (1 + z_log_var - z_mean**2 - torch.exp(z_log_var)).sum(dim=2)
    return (nll + kl).mean(dim=1)


# ---------------------------------------------------------------------------- the imputer
class VAEImputer(BaseImputer):
    """Variational-autoencoder imputer of McCoy, Kroon & Auret (2018).

    Parameters
    ----------
    hidden_width : int, default 20
        Units of every hidden layer of the encoder and of the decoder.
    n_hidden_layers : int, default 2
        Hidden layers of the encoder (the decoder has as many).
    latent_dim : int, default 5
        Dimension of the latent space.
    epochs : int, default 500
        Passes over the training rows.
    batch_size : int, default 250
        Rows per Adam step (capped at the number of training rows).
    lr : float, default 0.001
        Adam learning rate.
    impute_iterations : int, default 25
        Steps of the reconstruct-and-replace chain that imputes the missing entries.
    random_state : int or None, default None
        Seeds weight initialisation, batch order and the latent noise; CPU runs with the same
        seed are bit-identical, and a fit in a ``fit_group`` gets the numbers it gets alone
        (within float rounding: 1e-6 relative).
    device : str, default "auto"
        ``"auto"`` uses CUDA when available, else CPU.
    verbose : bool, default False
        Show a progress bar over epochs.

    Attributes
    ----------
    model_ : GaussianVAE
        The trained network, a K = 1 slice of the batched model.
    center_, scale_ : ndarray of shape (d,)
        Mean and standard deviation of the observed training values (standardising).
    loss_history_ : list of float
        Mean −ELBO per row of each epoch.
    info_ : dict
        Scalars for the result row (final −ELBO, epochs run).
    """

    version = "3"  # 2: model axis (per-model generators, latent noise in blocks); 3: overflow-safe NLL

    def __init__(self, hidden_width: int = 20, n_hidden_layers: int = 2, latent_dim: int = 5,
                 epochs: int = 500, batch_size: int = 250, lr: float = 0.001,
                 impute_iterations: int = 25, random_state=None, device: str = "auto",
                 verbose: bool = False):
        self.hidden_width = hidden_width
        self.n_hidden_layers = n_hidden_layers
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.impute_iterations = impute_iterations
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        sizes = {"hidden_width": self.hidden_width, "n_hidden_layers": self.n_hidden_layers,
                 "latent_dim": self.latent_dim, "epochs": self.epochs, "batch_size": self.batch_size}
        bad = {k: v for k, v in sizes.items() if int(v) < 1}
        if bad:
            raise ValueError(f"These arguments must be positive integers: {bad}.")
        if int(self.impute_iterations) < 1:
            raise ValueError(f"impute_iterations must be at least 1; got {self.impute_iterations}.")

    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        raise_first(type(self)._fit_batched([self], [X], [y], [schema]))

    @classmethod
    def _fit_batched(cls, imputers: list, Xs: list, ys: list, schemas: list) -> list:
        """Train ``len(imputers)`` fits (equal parameters but the seed, equal shapes) as one model.

        Returns one entry per fit: ``None`` when fitted, else the exception that stopped it.
        """
        try:
            return cls._train_group(imputers, Xs, schemas)
        except Exception as error:  # noqa: BLE001 - bad parameters, memory: the group's, so every fit's
            return [error] * len(imputers)

    @classmethod
    def _train_group(cls, imputers: list, Xs: list, schemas: list) -> list:
        """The training of ``_fit_batched``: K models, one step for all; divergence fails one model."""
        K = len(imputers)
        first = imputers[0]
        for imputer in imputers:
            imputer._check_params()
        device = resolve_device(first.device)
        init_gens, noise_gens = [], []
        for imputer, X in zip(imputers, Xs):
            imputer.device_ = device
            # two streams from one seed: training noise, and a seed kept for `sample`; the CPU
            # generator gives the initial weights, then each epoch's permutation of the rows
            cpu_generator, noise, imputer.sample_seed_ = seed_streams(imputer.random_state, device)
            init_gens.append(cpu_generator)
            noise_gens.append(noise)
            imputer._set_scaling(X)
        # each model's standardised data and observed mask side by side: (K, n, 2d), one row gather per epoch
        rows = torch.stack([torch.cat([imp._standardised_start(X),
                                       torch.as_tensor(~np.isnan(X), dtype=torch.float32, device=device)], dim=1)
                            for imp, X in zip(imputers, Xs)])
        n_rows, n_features = rows.shape[1], rows.shape[2] // 2
        batch_size = min(int(first.batch_size), n_rows)
        latent_dim = int(first.latent_dim)

        model = GaussianVAE(n_features, int(first.hidden_width), int(first.n_hidden_layers), latent_dim,
                            init_gens).to(device)
        # foreach: the same element-wise update as the default loop, fewer dispatches (K-invariant, unlike fused)
        optimizer = torch.optim.Adam(model.parameters(), lr=float(first.lr), foreach=True)
        streams = _batched.Streams(noise_gens)
        histories: list[list[float]] = [[] for _ in range(K)]
        errors: list = [None] * K
        pending: list[torch.Tensor] = []  # per-epoch (K,) losses not yet read back
        steps_since_check = 0
        epochs = int(first.epochs)
        for epoch in tqdm(range(epochs), desc="VAEI", disable=not any(i.verbose for i in imputers)):
            order = torch.stack([torch.randperm(n_rows, generator=g) for g in init_gens]).to(device)
            shuffled = _batched.gather_rows(rows, order)  # (K, n, 2d): this epoch's row order
            total = torch.zeros(K, device=device)
            for start in range(0, n_rows, batch_size):
                part = shuffled[:, start:start + batch_size]              # (K, b, 2d): the same positions for all
                eps = streams.normal("z", (batch_size, latent_dim))[:, :part.shape[1]]
                streams.advance()
                loss = negative_elbo(model, part[..., :n_features], part[..., n_features:], eps)  # (K,)
                optimizer.zero_grad()
                loss.sum().backward()
                optimizer.step()
                total += loss.detach() * part.shape[1]
                steps_since_check += 1
            pending.append(total / n_rows)
            if steps_since_check >= CHECK_STEPS or epoch == epochs - 1:  # one device sync per check
                steps_since_check = 0
                _batched.record_epochs(torch.stack(pending).cpu().numpy(), epoch + 1 - len(pending), histories,
                                       errors, "VAEI")
                pending = []
                if all(e is not None for e in errors):
                    break
        for k, imputer in enumerate(imputers):
            if errors[k] is None:
                imputer.model_ = _batched.select(model, k)
                imputer.loss_history_ = histories[k]
                imputer.info_ = {"final_neg_elbo": histories[k][-1], "epochs_run": len(histories[k])}
        return errors

    def _set_scaling(self, X: np.ndarray) -> None:
        """Standardising from the observed training values, and the range the stochastic chain keeps to."""
        self.center_ = np.nanmean(X, axis=0)
        scale = np.nanstd(X, axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)  # a constant column stays constant
        # Range of the observed training values (standardised): the stochastic chain is kept
        # inside it. Ours, not the reference's: with x-noise re-fed 25 times, a near-constant
        # column (tiny std, e.g. a rarely filled connect-4 cell) otherwise runs off to inf.
        standardised = (X - self.center_) / self.scale_
        self.low_ = torch.as_tensor(np.nanmin(standardised, axis=0), dtype=torch.float32, device=self.device_)
        self.high_ = torch.as_tensor(np.nanmax(standardised, axis=0), dtype=torch.float32, device=self.device_)

    # ------------------------------------------------------------------ impute
    def _standardised_start(self, X: np.ndarray) -> torch.Tensor:
        """Z-scored ``X`` with missing entries at 0, the column mean."""
        z = np.where(np.isnan(X), 0.0, (X - self.center_) / self.scale_)
        return torch.as_tensor(z, dtype=torch.float32, device=self.device_)

    @torch.no_grad()
    def _chain(self, X: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
        """Reconstruct-and-replace ``impute_iterations`` times; ``generator=None`` means z = μ, x = μ_x."""
        current = self._standardised_start(X)[None]                    # (1, rows, d): the K = 1 model
        missing = torch.as_tensor(np.isnan(X), device=self.device_)
        for _ in range(int(self.impute_iterations)):
            z_mean, z_log_var = self.model_.encode(current)
            if generator is None:
                recon, _ = self.model_.decode(z_mean)
            else:
                eps = torch.randn(z_mean.shape, generator=generator, device=current.device)
                x_mean, x_log_var = self.model_.decode(z_mean + torch.exp(0.5 * z_log_var) * eps)
                eps = torch.randn(x_mean.shape, generator=generator, device=current.device)
                recon = torch.clamp(x_mean + torch.exp(0.5 * x_log_var) * eps, self.low_, self.high_)
            current = torch.where(missing, recon, current)
        return current[0].cpu().numpy().astype(float) * self.scale_ + self.center_

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return self._chain(X, generator=None)

    def _sample(self, X: np.ndarray, n: int) -> np.ndarray:
        generator = torch.Generator(device=self.device_).manual_seed(self.sample_seed_)
        return np.stack([self._chain(X, generator) for _ in range(n)])  # (n, rows, d)

