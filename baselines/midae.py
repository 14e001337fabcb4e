"""MIDAE: Multiple Imputation using Denoising Autoencoders (Gondara & Wang, PAKDD 2018).

An over-complete denoising autoencoder: the encoder widens the input by ``theta`` units per
layer (d → d+θ → d+2θ → d+3θ for θ = 7, three layers) and the decoder mirrors it back to d,
with Tanh between layers and a linear output. Dropout of half the *inputs* is the denoising
corruption. Missing entries start at the column mean (mode for categorical columns, as the
harness's Mean baseline does), and the reconstruction loss is taken on observed entries only,
so the network never learns to reproduce its own initial fill.

Imputation (``transform``) is one deterministic forward pass with no random dropout. How the
missing entries enter that pass is ``missing_input``:

* ``"mean"`` (default): the paper's literal read-out — the mean/mode-filled row with dropout
  switched off. The harness runs each baseline as its authors did, so this is the default,
  although known entries never reached the network at scale 1 during training (inverted dropout
  doubles them), so a mean-filled entry is an input the network has not seen, and the error
  grows the longer the network trains. Measured on letter (2 000 rows, MCAR 0.2, batch 32,
  500 epochs) it gives RMSE 0.219 against Mean's 0.164.
* ``"dropped"`` (our variant): missing entries enter as *dropped* inputs — zero, with the observed
  entries rescaled by 1/(1 − dropout) — which is exactly how the network saw an unknown entry
  in training (inverted dropout). In every budget measured here (wine, letter; 50–500 epochs)
  this read-out beats Mean (letter as above: 0.132).

Multiple imputation (``sample``) applies random input dropout on top of that input, so each
pass sees a different subset of the row and gives a different draw (one trained network, many
dropout masks).

Hyperparameters follow the MIDA paper as the public PyTorch port Harry24k/MIDA-pytorch
(``MIDA.py``) encodes it: θ = 7, dropout 0.5, 500 epochs, Nesterov SGD with momentum 0.99 and
learning rate 0.01. That port marks its batch size (1) as "not in the paper"; see
``conf/imputer/midae.yaml`` for the batch size used here and why.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from baselines._base import BaseImputer, check_finite_loss, resolve_device, seed_streams
from baselines.schema import Schema


MISSING_INPUTS = ("dropped", "mean")


# ---------------------------------------------------------------------------- building blocks
def initial_fill(X: np.ndarray, schema: Schema) -> np.ndarray:
    """Per-column start values: observed mean (numeric) or most frequent observed value (categorical)."""
    fill = np.nanmean(X, axis=0)
    for j in np.flatnonzero(schema.is_categorical):
        values, counts = np.unique(X[~np.isnan(X[:, j]), j], return_counts=True)
        fill[j] = values[np.argmax(counts)]  # ties → smallest code, deterministic
    return fill


def input_dropout(x: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Inverted dropout drawn from ``generator`` (not the global RNG), so runs are reproducible."""
    if rate == 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= rate
    return x * keep / (1.0 - rate)


class DenoisingAutoencoder(nn.Module):
    """Over-complete autoencoder: ``depth`` layers each way, each adding/removing ``theta`` units."""

    def __init__(self, n_features: int, theta: int, depth: int):
        super().__init__()
        widths = [n_features + theta * i for i in range(depth + 1)]  # d, d+θ, ..., d+depth·θ
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):                  # encoder: widen
            layers += [nn.Linear(w_in, w_out), nn.Tanh()]
        for w_in, w_out in zip(widths[::-1][:-1], widths[::-1][1:]):      # decoder: narrow back
            layers += [nn.Linear(w_in, w_out), nn.Tanh()]
        # Linear output, as in the public ports. Unlike them (Harry24k/MIDA-pytorch MIDA.py puts no
        # Tanh after the widest layer, so two Linear maps meet there), every hidden layer has its
        # Tanh: the paper describes a Tanh network, not a linear bottleneck.
        layers.pop()
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (rows, d) → (rows, d)


# ---------------------------------------------------------------------------- the imputer
class MIDAEImputer(BaseImputer):
    """Denoising-autoencoder imputer of Gondara & Wang (2018), with dropout multiple imputation.

    Parameters
    ----------
    theta : int, default 7
        Units added by each encoder layer (and removed by each decoder layer).
    depth : int, default 3
        Number of encoder layers (the decoder has as many).
    dropout : float, default 0.5
        Input dropout rate during training and in ``sample`` draws; 0 ≤ dropout < 1.
    epochs : int, default 500
        Passes over the training rows.
    lr : float, default 0.01
        Learning rate of Nesterov SGD.
    momentum : float, default 0.99
        Nesterov momentum.
    batch_size : int, default 32
        Rows per SGD step (capped at the number of training rows).
    missing_input : {"mean", "dropped"}, default "mean"
        How missing entries enter the imputation pass (see the module docstring).
    random_state : int or None, default None
        Seeds weight initialisation, batch order and dropout; CPU runs with the same seed are
        bit-identical.
    device : str, default "auto"
        ``"auto"`` uses CUDA when available, else CPU.
    verbose : bool, default False
        Show a progress bar over epochs.

    Attributes
    ----------
    model_ : DenoisingAutoencoder
        The trained network (in eval mode).
    fill_values_ : ndarray of shape (d,)
        Initial fill of each column (training mean or mode).
    loss_history_ : list of float
        Mean observed-entry MSE of each epoch.
    info_ : dict
        Scalars for the result row (final training loss, epochs run).
    """

    def __init__(self, theta: int = 7, depth: int = 3, dropout: float = 0.5, epochs: int = 500,
                 lr: float = 0.01, momentum: float = 0.99, batch_size: int = 32,
                 missing_input: str = "mean", random_state=None, device: str = "auto", verbose: bool = False):
        self.theta = theta
        self.depth = depth
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.missing_input = missing_input
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        if int(self.theta) < 0 or int(self.depth) < 1:
            raise ValueError(f"theta must be ≥ 0 and depth ≥ 1; got theta={self.theta}, depth={self.depth}.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}.")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError(f"epochs and batch_size must be positive; got {self.epochs}, {self.batch_size}.")
        if self.missing_input not in MISSING_INPUTS:
            raise ValueError(f"missing_input must be one of {MISSING_INPUTS}; got {self.missing_input!r}.")

    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        self._check_params()
        self.device_ = resolve_device(self.device)
        # two streams from one seed: training noise, and a seed kept for `sample`
        cpu_generator, noise, self.sample_seed_ = seed_streams(self.random_state, self.device_)

        self.fill_values_ = initial_fill(X, schema)
        observed = torch.as_tensor(~np.isnan(X), dtype=torch.float32, device=self.device_)
        data = torch.as_tensor(self._filled(X), dtype=torch.float32, device=self.device_)
        n_rows = data.shape[0]
        batch_size = min(int(self.batch_size), n_rows)

        model = DenoisingAutoencoder(X.shape[1], int(self.theta), int(self.depth)).to(self.device_)
        optimizer = torch.optim.SGD(model.parameters(), lr=float(self.lr), momentum=float(self.momentum),
                                    nesterov=True)
        model.train()
        self.loss_history_ = []
        for epoch in tqdm(range(int(self.epochs)), desc="MIDAE", disable=not self.verbose):
            order = torch.randperm(n_rows, generator=cpu_generator).to(self.device_)
            total, count = torch.zeros((), device=self.device_), torch.zeros((), device=self.device_)
            for start in range(0, n_rows, batch_size):
                idx = order[start:start + batch_size]
                batch, mask = data[idx], observed[idx]
                recon = model(input_dropout(batch, float(self.dropout), noise))
                squared = (recon - batch) ** 2 * mask
                loss = squared.sum() / mask.sum().clamp(min=1.0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += squared.sum().detach()
                count += mask.sum()
            epoch_loss = float(total / count.clamp(min=1.0))  # one device sync per epoch
            check_finite_loss(epoch_loss, f"MIDAE epoch {epoch + 1}")
            self.loss_history_.append(epoch_loss)
        model.eval()
        self.model_ = model
        self.info_ = {"final_loss": self.loss_history_[-1], "epochs_run": len(self.loss_history_)}

    # ------------------------------------------------------------------ impute
    def _filled(self, X: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(X), self.fill_values_, X)

    def _imputation_input(self, X: np.ndarray) -> torch.Tensor:
        """The network input for ``X`` under ``missing_input`` (see the module docstring)."""
        if self.missing_input == "mean":
            values = self._filled(X)
        else:
            keep_scale = 1.0 / (1.0 - float(self.dropout))  # observed entries at their training scale
            values = np.where(np.isnan(X), 0.0, X * keep_scale)
        return torch.as_tensor(values, dtype=torch.float32, device=self.device_)

    @torch.no_grad()
    def _transform(self, X: np.ndarray) -> np.ndarray:
        data = self._imputation_input(X)
        self.model_.eval()
        return self.model_(data).cpu().numpy().astype(float)

    @torch.no_grad()
    def _sample(self, X: np.ndarray, n: int) -> np.ndarray:
        noise = torch.Generator(device=self.device_).manual_seed(self.sample_seed_)
        data = self._imputation_input(X)
        rate = float(self.dropout)
        draws = []
        for _ in range(n):
            keep = torch.rand(data.shape, generator=noise, device=data.device) >= rate
            # "mean": ordinary inverted dropout of the filled row. "dropped": the observed entries
            # are already at 1/(1 − rate) scale and the missing ones are zero, so a kept entry
            # stays as it is and a dropped one becomes zero — the training corruption, applied
            # on top of the entries that are missing anyway.
            corrupted = data * keep / (1.0 - rate) if self.missing_input == "mean" else data * keep
            draws.append(self.model_(corrupted))
        return torch.stack(draws).cpu().numpy().astype(float)  # (n, rows, d)
