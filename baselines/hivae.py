"""HIVAE: Heterogeneous-Incomplete VAE (Nazabal, Olmos, Ghahramani & Valera, Pattern Recognition 2020).

"Handling incomplete heterogeneous data using VAEs". The generative model, read from the
authors' TensorFlow reference code probabilistic-learning/HI-VAE (files cited inline):

    s ~ Cat(uniform over s_dim)                 mixture component
    z | s ~ N(W_s s + b, I)                     Gaussian-mixture prior, z_dim wide
    y = W_y z + b                               deterministic, y_dim units per feature
    x_d | y_d, s ~ p_d(θ_d(y_d, s))             one likelihood per column, by its kind

with these likelihoods (``loglik_models_missing_normalize.py``, heads in ``VAE_functions.py``
``theta_*_s``):

* numeric "real": Gaussian; mean from [y_d, s], variance from s alone, both in batch-normalised
  units and mapped back with the batch's observed mean and variance;
* numeric "pos": log-normal on log(1 + x), same heads (the reference's positive type);
* nominal: categorical, logits from [y_d, s] with the first logit fixed at 0;
* ordinal: cumulative-logit, increasing thresholds from s (softplus steps), location from [y_d, s].

Inference (``model_HIVAE_inputDropout.py``, "input dropout" encoder): q(s|x°) is a linear
softmax of the observed inputs, relaxed with Gumbel-softmax during training at a temperature
annealed per epoch; q(z|x°, s) is a linear Gaussian of [x°, s]. Missing entries enter the
encoder as zeros (after normalisation, i.e. at the batch mean for numerics) and the
reconstruction term only counts observed entries. Every layer is linear, weights drawn from
N(0, 0.05²) and biases at zero, as in the reference.

Imputation (``transform``) is the reference's ``samples_generator`` plus
``read_functions.statistics``: s = argmax q(s|x°), z = mean of q(z|x°, s), then the mode of each
likelihood (Gaussian mean, log-normal mode exp(μ − σ²) − 1, most probable category).
``sample`` draws s, z and x from the model, so each draw is a different imputation.

Choices of ours, not fixed by the reference:

* The harness shows imputers data min-max scaled to [0, 1] with the observed training range, so
  the minimum of every numeric column is 0 and the reference's "all values positive" rule for the
  log-normal cannot be read from the data. Numeric columns are "real" by default
  (``numeric_likelihood``; "auto" picks "pos" when every observed training value is > 0). The
  Poisson "count" type is not offered: integer counts are no longer visible after scaling.
* ``transform`` normalises numeric inputs with the mean and variance of the observed *training*
  values, where the reference's test pass normalises with the batch being imputed (its whole
  training file, so on training rows both agree); this keeps each row's imputation independent
  of which other rows are passed with it.
* A batch in which a numeric column has no observed value normalises that column with mean 0
  and variance 1 (the reference would produce NaN there).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from baselines._base import BaseImputer, check_finite_loss, resolve_device, seed_streams
from baselines.schema import Schema

NUMERIC_LIKELIHOODS = ("real", "pos", "auto")
INIT_STD = 0.05          # VAE_functions.py: every dense layer uses random_normal_initializer(stddev=0.05)
INPUT_VAR_FLOOR = 1e-6   # VAE_functions.batch_normalization: clip of the batch variance for the inputs
LIK_EPS = 1e-3           # loglik_models_missing_normalize.loglik_real/pos: floor of data and unit variances
POS_VAR_CAP = 1.0        # loglik_pos: the unit variance of the log-normal is capped at 1
ORD_EPS = 1e-6           # loglik_ordinal: floor of threshold steps and of category probabilities
LOGVAR_CLIP = 15.0       # VAE_functions.z_proposal_GMM: log-variance of q(z) clipped to ±15
PAD_LOGIT = -1e9         # logit of a padding category (columns have different category counts)


# ---------------------------------------------------------------------------- data layout
class _Columns:
    """Column indices and sizes per likelihood family, in the order the network stores them."""

    def __init__(self, schema: Schema, likelihoods: tuple[str, ...]):
        kinds = np.array(likelihoods)
        self.n_features = len(likelihoods)
        self.numeric = np.flatnonzero((kinds == "real") | (kinds == "pos"))
        self.is_pos = kinds[self.numeric] == "pos"
        self.nominal = np.flatnonzero(kinds == "cat")
        self.ordinal = np.flatnonzero(kinds == "ordinal")
        k = np.array(schema.n_categories)
        self.nominal_k = k[self.nominal]
        self.ordinal_k = k[self.ordinal]


def _to_tensors(X: np.ndarray, cols: _Columns, device: str) -> dict[str, torch.Tensor]:
    """Split scaled ``X`` (NaN = missing) into per-family values and observed masks on ``device``."""
    observed = ~np.isnan(X)
    num = np.nan_to_num(X[:, cols.numeric], nan=0.0)
    # log(1 + x) is the variable the "pos" Gaussian models (loglik_pos); clamp at 0 because a test
    # value below the training minimum would otherwise leave the log-normal's support.
    num[:, cols.is_pos] = np.log1p(np.clip(num[:, cols.is_pos], 0.0, None))

    def codes(idx, k):
        steps = np.maximum(k - 1, 1)
        c = np.rint(np.nan_to_num(X[:, idx], nan=0.0) * steps)
        return np.clip(c, 0, k - 1).astype(np.int64)

    as_float = dict(dtype=torch.float32, device=device)
    return {
        "num": torch.as_tensor(num, **as_float),
        "num_obs": torch.as_tensor(observed[:, cols.numeric], **as_float),
        "nom": torch.as_tensor(codes(cols.nominal, cols.nominal_k), dtype=torch.long, device=device),
        "nom_obs": torch.as_tensor(observed[:, cols.nominal], **as_float),
        "ord": torch.as_tensor(codes(cols.ordinal, cols.ordinal_k), dtype=torch.long, device=device),
        "ord_obs": torch.as_tensor(observed[:, cols.ordinal], **as_float),
    }


def _rows(data: dict[str, torch.Tensor], idx) -> dict[str, torch.Tensor]:
    """The rows ``idx`` of every tensor of a split batch."""
    return {key: value[idx] for key, value in data.items()}


def observed_moments(values: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) variance of each column over its observed entries.

    Matches ``VAE_functions.batch_normalization`` (``tf.nn.moments`` on the observed part, variance
    clipped below at 1e-6); a column with no observed entry gets mean 0, variance 1.
    """
    count = observed.sum(0)
    safe = count.clamp(min=1.0)
    mean = (values * observed).sum(0) / safe
    var = (((values - mean) ** 2) * observed).sum(0) / safe
    empty = count == 0
    mean = torch.where(empty, torch.zeros_like(mean), mean)
    var = torch.where(empty, torch.ones_like(var), var.clamp(min=INPUT_VAR_FLOOR))
    return mean, var


# ---------------------------------------------------------------------------- the network
class HIVAENet(nn.Module):
    """Encoder q(s|x°), q(z|x°,s); prior p(z|s); decoder z → y → per-column likelihood parameters."""

    def __init__(self, cols: _Columns, z_dim: int, y_dim: int, s_dim: int, generator: torch.Generator):
        super().__init__()
        self.z_dim, self.y_dim, self.s_dim = z_dim, y_dim, s_dim
        n_num, n_nom, n_ord = len(cols.numeric), len(cols.nominal), len(cols.ordinal)
        self.nom_kmax = int(cols.nominal_k.max(initial=1))
        self.ord_kmax = int(cols.ordinal_k.max(initial=1))
        # Encoder input: normalised numerics, one-hot nominals, thermometer ordinals
        # (read_functions.read_data builds the same codes), all zero where missing.
        in_dim = n_num + int(cols.nominal_k.sum()) + int(cols.ordinal_k.sum())
        head_in = y_dim + s_dim  # theta_*_s: the heads read [y_d, s]

        self.enc_s = nn.Linear(in_dim, s_dim)                       # s_proposal_multinomial
        self.enc_z_mean = nn.Linear(in_dim + s_dim, z_dim)          # z_proposal_GMM
        self.enc_z_logvar = nn.Linear(in_dim + s_dim, z_dim)
        self.prior_z_mean = nn.Linear(s_dim, z_dim)                 # z_distribution_GMM (unit variance)
        # graph_new.HVAE_graph: y has y_dim units per feature; y_partition hands each feature its slice.
        self.to_y = nn.Linear(z_dim, y_dim * cols.n_features)
        # Per-column heads, stacked by family; the reference's theta_*_s layers have no bias.
        self.num_mean = nn.Parameter(torch.empty(n_num, head_in))
        self.num_var = nn.Parameter(torch.empty(n_num, s_dim))
        self.nom_logits = nn.Parameter(torch.empty(n_nom, self.nom_kmax - 1, head_in))
        self.ord_steps = nn.Parameter(torch.empty(n_ord, self.ord_kmax - 1, s_dim))
        self.ord_location = nn.Parameter(torch.empty(n_ord, head_in))

        as_long = dict(dtype=torch.long)
        self.register_buffer("num_cols", torch.as_tensor(cols.numeric, **as_long))
        self.register_buffer("nom_cols", torch.as_tensor(cols.nominal, **as_long))
        self.register_buffer("ord_cols", torch.as_tensor(cols.ordinal, **as_long))
        self.register_buffer("num_is_pos", torch.as_tensor(cols.is_pos, dtype=torch.bool))
        self.register_buffer("num_var_cap", torch.where(torch.as_tensor(cols.is_pos), POS_VAR_CAP, math.inf))
        nom_valid = torch.arange(self.nom_kmax)[None, :] < torch.as_tensor(cols.nominal_k)[:, None]
        ord_valid = torch.arange(self.ord_kmax)[None, :] < torch.as_tensor(cols.ordinal_k)[:, None]
        self.register_buffer("nom_valid", nom_valid)                  # (n_nom, Kmax)
        self.register_buffer("ord_valid", ord_valid)                  # (n_ord, Kmax)
        self.register_buffer("nom_in", torch.nonzero(nom_valid.flatten())[:, 0])  # one-hot slots kept
        self.register_buffer("ord_in", torch.nonzero(ord_valid.flatten())[:, 0])

        for name, param in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(param)
            else:
                nn.init.normal_(param, 0.0, INIT_STD, generator=generator)

    # ------------------------------------------------------------------ encoder
    def encoder_input(self, data: dict, moments) -> torch.Tensor:
        mean, var = moments
        num = (data["num"] - mean) / torch.sqrt(var + INPUT_VAR_FLOOR) * data["num_obs"]
        rows = num.shape[0]
        one_hot = F.one_hot(data["nom"], self.nom_kmax).float() * data["nom_obs"][..., None]
        levels = torch.arange(self.ord_kmax, device=num.device)
        thermometer = (levels <= data["ord"][..., None]).float() * data["ord_obs"][..., None]
        return torch.cat([num, one_hot.reshape(rows, -1)[:, self.nom_in],
                          thermometer.reshape(rows, -1)[:, self.ord_in]], dim=1)

    def q_z(self, x_in: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([x_in, s], dim=1)
        return self.enc_z_mean(h), self.enc_z_logvar(h).clamp(-LOGVAR_CLIP, LOGVAR_CLIP)

    # ------------------------------------------------------------------ decoder
    def heads(self, z: torch.Tensor, s: torch.Tensor, moments) -> dict[str, torch.Tensor]:
        """Likelihood parameters of every column given z (rows, z_dim) and s (rows, s_dim)."""
        rows, mean, var = z.shape[0], *moments
        y = self.to_y(z).view(rows, -1, self.y_dim)                  # (rows, d, y_dim)

        def y_and_s(cols):                                          # (rows, n_cols, y_dim + s_dim)
            return torch.cat([y[:, cols], s[:, None, :].expand(rows, len(cols), self.s_dim)], dim=2)

        # Numeric: unit-scale mean and variance, mapped back with the batch moments (loglik_real).
        lik_var = var.clamp(min=LIK_EPS)
        unit_mean = torch.einsum("bjh,jh->bj", y_and_s(self.num_cols), self.num_mean)
        unit_var = torch.minimum(F.softplus(s @ self.num_var.T).clamp(min=LIK_EPS), self.num_var_cap)
        num_mean = torch.sqrt(lik_var) * unit_mean + mean
        num_var = lik_var * unit_var

        # Nominal: K-1 free logits after a fixed 0 (theta_cat_s); padding slots never win.
        free = torch.einsum("bjh,jkh->bjk", y_and_s(self.nom_cols), self.nom_logits)
        logits = torch.cat([torch.zeros_like(free[..., :1]), free], dim=2)
        logits = logits.masked_fill(~self.nom_valid, PAD_LOGIT)

        # Ordinal: P(x ≤ k) = σ(θ_k − μ) with θ increasing by softplus steps (loglik_ordinal).
        location = torch.einsum("bjh,jh->bj", y_and_s(self.ord_cols), self.ord_location)
        steps = torch.einsum("bh,jkh->bjk", s, self.ord_steps)
        thresholds = torch.cumsum(F.softplus(steps).clamp(min=ORD_EPS), dim=2)
        below = torch.sigmoid(thresholds - location[..., None])     # (rows, n_ord, Kmax-1)
        below = torch.where(self.ord_valid[:, 1:], below, torch.ones_like(below))  # padding: P = 1
        ones, zeros = torch.ones_like(location[..., None]), torch.zeros_like(location[..., None])
        probs = torch.cat([below, ones], dim=2) - torch.cat([zeros, below], dim=2)
        return {"num_mean": num_mean, "num_var": num_var, "nom_logits": logits, "ord_probs": probs}

    def log_likelihood(self, params: dict, data: dict) -> torch.Tensor:
        """Σ over observed columns of log p(x_d | y_d, s), per row."""
        t = data["num"]
        num = -0.5 * (t - params["num_mean"]) ** 2 / params["num_var"] \
            - 0.5 * torch.log(2 * math.pi * params["num_var"])
        num = num - t * self.num_is_pos  # Jacobian of log(1 + x) for the log-normal (loglik_pos)
        nom = torch.log_softmax(params["nom_logits"], dim=2).gather(2, data["nom"][..., None])[..., 0]
        ordinal = torch.log(params["ord_probs"].clamp(ORD_EPS, 1.0)).gather(2, data["ord"][..., None])[..., 0]
        return (num * data["num_obs"]).sum(1) + (nom * data["nom_obs"]).sum(1) \
            + (ordinal * data["ord_obs"]).sum(1)

    # ------------------------------------------------------------------ objective
    def negative_elbo(self, data: dict, moments, tau: float, noise: torch.Generator):
        """−ELBO averaged over the batch (model_HIVAE_inputDropout.cost_function)."""
        x_in = self.encoder_input(data, moments)
        s_logits = self.enc_s(x_in)
        log_q_s = torch.log(torch.softmax(s_logits, dim=1).clamp(ORD_EPS, 1.0))
        u = torch.rand(log_q_s.shape, generator=noise, device=log_q_s.device)
        gumbel = -torch.log(-torch.log(u.clamp(min=1e-20)))
        s = torch.softmax((log_q_s + gumbel) / tau, dim=1)           # relaxed one-hot sample of s
        mean_q, logvar_q = self.q_z(x_in, s)
        eps = torch.randn(mean_q.shape, generator=noise, device=mean_q.device)
        z = mean_q + torch.exp(0.5 * logvar_q) * eps
        mean_p = self.prior_z_mean(s)                              # p(z|s) = N(mean_p, I)

        reconstruction = self.log_likelihood(self.heads(z, s, moments), data)
        q_s = torch.softmax(s_logits, dim=1)
        kl_s = (q_s * torch.log_softmax(s_logits, dim=1)).sum(1) + math.log(self.s_dim)  # vs uniform p(s)
        kl_z = 0.5 * (torch.exp(logvar_q) + (mean_p - mean_q) ** 2 - 1.0 - logvar_q).sum(1)
        return -(reconstruction - kl_z - kl_s).mean()

    # ------------------------------------------------------------------ imputation
    def posterior(self, data: dict, moments, noise: torch.Generator | None):
        """Likelihood parameters at the posterior mode (``noise`` None) or at a draw of s and z."""
        x_in = self.encoder_input(data, moments)
        s_logits = self.enc_s(x_in)
        if noise is None:
            s = F.one_hot(s_logits.argmax(1), self.s_dim).float()
            z, _ = self.q_z(x_in, s)
        else:
            s_index = torch.multinomial(torch.softmax(s_logits, dim=1), 1, generator=noise)[:, 0]
            s = F.one_hot(s_index, self.s_dim).float()
            mean_q, logvar_q = self.q_z(x_in, s)
            eps = torch.randn(mean_q.shape, generator=noise, device=mean_q.device)
            z = mean_q + torch.exp(0.5 * logvar_q) * eps
        return self.heads(z, s, moments)

    def decode(self, params: dict, noise: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Numeric values (scaled units) and category codes: likelihood modes, or draws from them."""
        mean, var = params["num_mean"], params["num_var"]
        nom_probs = torch.softmax(params["nom_logits"], dim=2)
        ord_probs = params["ord_probs"].clamp(min=0.0) * self.ord_valid
        if noise is None:
            # read_functions.statistics: Gaussian mean; log-normal mode exp(μ − σ²) − 1.
            num = torch.where(self.num_is_pos, torch.exp(mean - var) - 1.0, mean)
            nom, ordinal = _most_probable(nom_probs), _most_probable(ord_probs)
        else:
            num = mean + torch.sqrt(var) * torch.randn(mean.shape, generator=noise, device=mean.device)
            num = torch.where(self.num_is_pos, torch.exp(num) - 1.0, num)
            nom, ordinal = _draw_categories(nom_probs, noise), _draw_categories(ord_probs, noise)
        num = torch.where(self.num_is_pos, num.clamp(min=0.0), num)
        return {"num": num, "nom": nom, "ord": ordinal}


def _most_probable(probs: torch.Tensor) -> torch.Tensor:
    """Most probable category per (row, column); torch's argmax refuses an empty tensor."""
    if probs.numel() == 0:
        return torch.zeros(probs.shape[:2], dtype=torch.long, device=probs.device)
    return probs.argmax(2)


def _draw_categories(probs: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """One category per (row, column) from probabilities of shape (rows, cols, K)."""
    rows, n_cols, k = probs.shape
    if rows * n_cols == 0:
        return torch.zeros((rows, n_cols), dtype=torch.long, device=probs.device)
    flat = torch.multinomial(probs.reshape(-1, k), 1, generator=noise)
    return flat.view(rows, n_cols)


# ---------------------------------------------------------------------------- the imputer
class HIVAEImputer(BaseImputer):
    """Heterogeneous-incomplete VAE imputer of Nazabal et al. (2020), input-dropout encoder.

    Parameters
    ----------
    z_dim : int, default 2
        Width of the Gaussian latent z.
    y_dim : int, default 5
        Units of the deterministic layer y per feature.
    s_dim : int, default 10
        Number of mixture components (categorical latent s).
    batch_size : int, default 100
        Rows per Adam step (capped at the number of training rows); each epoch runs
        ``n // batch_size`` steps over a fresh shuffle, dropping the remainder as the reference does.
    epochs : int, default 200
        Passes over the training rows.
    learning_rate : float, default 1e-3
        Adam learning rate.
    tau_decay : float, default 0.01
        The Gumbel-softmax temperature at epoch ``e`` (from 0) is ``max(1 - tau_decay * e, tau_min)``.
    tau_min : float, default 1e-3
        Final temperature of the annealing.
    numeric_likelihood : {"real", "pos", "auto"}, default "real"
        Likelihood of numeric columns: Gaussian ("real"), log-normal on log(1 + x) ("pos"), or
        "pos" where every observed training value of the column is > 0 and "real" elsewhere ("auto").
    random_state : int or None, default None
        Seeds initialisation, shuffling, Gumbel and reparameterisation noise, and ``sample``;
        CPU runs with the same seed are bit-identical.
    device : str, default "auto"
        ``"auto"`` uses CUDA when available, else CPU.
    verbose : bool, default False
        Show a progress bar over epochs.

    Attributes
    ----------
    net_ : HIVAENet
        The trained network.
    likelihoods_ : tuple of str
        Likelihood of each column: "real", "pos", "cat" or "ordinal".
    moments_ : tuple of Tensor
        Mean and variance of the observed training values of the numeric columns (in the
        modelled units), used to normalise inputs at imputation time.
    loss_history_ : list of float
        Mean −ELBO per epoch.
    info_ : dict
        Scalars for the result row: final −ELBO, epochs run, mixture components in use.
    """

    def __init__(self, z_dim: int = 2, y_dim: int = 5, s_dim: int = 10, batch_size: int = 100,
                 epochs: int = 200, learning_rate: float = 1e-3, tau_decay: float = 0.01,
                 tau_min: float = 1e-3, numeric_likelihood: str = "real", random_state=None,
                 device: str = "auto", verbose: bool = False):
        self.z_dim = z_dim
        self.y_dim = y_dim
        self.s_dim = s_dim
        self.batch_size = batch_size
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.tau_decay = tau_decay
        self.tau_min = tau_min
        self.numeric_likelihood = numeric_likelihood
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _check_params(self) -> None:
        for name in ("z_dim", "y_dim", "s_dim", "batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer; got {getattr(self, name)}.")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be positive; got {self.learning_rate}.")
        if not 0 < float(self.tau_min) <= 1 or float(self.tau_decay) < 0:
            raise ValueError(f"tau_min must be in (0, 1] and tau_decay ≥ 0; got {self.tau_min}, {self.tau_decay}.")
        if self.numeric_likelihood not in NUMERIC_LIKELIHOODS:
            raise ValueError(f"numeric_likelihood must be one of {NUMERIC_LIKELIHOODS}; "
                             f"got {self.numeric_likelihood!r}.")

    def _likelihoods(self, X: np.ndarray, schema: Schema) -> tuple[str, ...]:
        out = []
        for j, kind in enumerate(schema.kinds):
            if kind == "nominal":
                out.append("cat")
            elif kind == "ordinal":
                out.append("ordinal")
            else:
                values = X[~np.isnan(X[:, j]), j]
                if self.numeric_likelihood == "pos" and (values < 0).any():
                    raise ValueError(
                        f"Column {j} has negative observed values, outside the log-normal's support; "
                        "use numeric_likelihood='real' or 'auto'."
                    )
                positive = self.numeric_likelihood == "pos" or (
                    self.numeric_likelihood == "auto" and (values > 0).all())
                out.append("pos" if positive else "real")
        return tuple(out)

    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        self._check_params()
        self.device_ = resolve_device(self.device)
        # two streams from one seed: training noise, and a seed kept for `sample`
        cpu_generator, noise, self.sample_seed_ = seed_streams(self.random_state, self.device_)

        self.likelihoods_ = self._likelihoods(X, schema)
        self.columns_ = _Columns(schema, self.likelihoods_)
        data = _to_tensors(X, self.columns_, self.device_)
        self.moments_ = observed_moments(data["num"], data["num_obs"])
        net = HIVAENet(self.columns_, int(self.z_dim), int(self.y_dim), int(self.s_dim),
                       cpu_generator).to(self.device_)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))

        n_rows = X.shape[0]
        batch_size = min(int(self.batch_size), n_rows)   # main_scripts.py caps the batch at n
        n_batches = n_rows // batch_size                 # main_scripts.py: floor, remainder dropped
        self.loss_history_ = []
        net.train()
        for epoch in tqdm(range(int(self.epochs)), desc="HIVAE", disable=not self.verbose):
            tau = max(1.0 - float(self.tau_decay) * epoch, float(self.tau_min))  # main_scripts.py annealing
            order = torch.randperm(n_rows, generator=cpu_generator).to(self.device_)
            total = torch.zeros((), device=self.device_)
            for b in range(n_batches):
                batch = _rows(data, order[b * batch_size:(b + 1) * batch_size])
                # Per-batch normalisation on observed entries (VAE_functions.batch_normalization).
                moments = observed_moments(batch["num"], batch["num_obs"])
                loss = net.negative_elbo(batch, moments, tau, noise)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.detach()
            epoch_loss = float(total / n_batches)  # one device sync per epoch
            check_finite_loss(epoch_loss, f"HIVAE epoch {epoch + 1}")
            self.loss_history_.append(epoch_loss)
        net.eval()
        self.net_ = net
        with torch.no_grad():
            x_in = net.encoder_input(data, self.moments_)
            components = int(torch.unique(net.enc_s(x_in).argmax(1)).numel())
        self.info_ = {"final_loss": self.loss_history_[-1], "epochs_run": len(self.loss_history_),
                      "components_used": components}

    # ------------------------------------------------------------------ impute
    def _impute(self, X: np.ndarray, noise: torch.Generator | None, chunk: int = 4096) -> np.ndarray:
        """Full (rows, d) array of modes (``noise`` None) or one draw, in the input's scale."""
        cols = self.columns_
        out = np.empty(X.shape, dtype=float)
        for start in range(0, X.shape[0], chunk):  # bounded memory on large datasets
            data = _to_tensors(X[start:start + chunk], cols, self.device_)
            values = self.net_.decode(self.net_.posterior(data, self.moments_, noise), noise)
            rows = slice(start, start + chunk)
            out[rows, cols.numeric] = values["num"].cpu().numpy()
            out[rows, cols.nominal] = values["nom"].cpu().numpy()
            out[rows, cols.ordinal] = values["ord"].cpu().numpy()
        return self.schema_.from_codes(out)  # category codes → code / (k - 1)

    @torch.no_grad()
    def _transform(self, X: np.ndarray) -> np.ndarray:
        return self._impute(X, noise=None)

    @torch.no_grad()
    def _sample(self, X: np.ndarray, n: int) -> np.ndarray:
        noise = torch.Generator(device=self.device_).manual_seed(self.sample_seed_)
        return np.stack([self._impute(X, noise) for _ in range(n)])  # (n, rows, d)
