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

Training is written for K models at once (``baselines/_batched.py``): every parameter and
activation has a leading model axis, each model's loss is averaged over its own batch and each
batch is normalised with that model's own observed moments. Model k draws its initial weights,
its batch order (one permutation of its rows per epoch) and its Gumbel and reparameterisation
noise from its own generators, so a fit alone is the same code at K = 1 and ``fit_group`` trains
fits that share parameters and column layout as one computation, each with the numbers it gets
alone; a model whose loss becomes NaN/inf fails alone.

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

from baselines._base import BaseImputer, raise_first, resolve_device, seed_streams
from baselines._batched import EpochSampler, Streams, gather_rows, record_epochs, select
from baselines.schema import Schema

NUMERIC_LIKELIHOODS = ("real", "pos", "auto")
INIT_STD = 0.05          # VAE_functions.py: every dense layer uses random_normal_initializer(stddev=0.05)
INPUT_VAR_FLOOR = 1e-6   # VAE_functions.batch_normalization: clip of the batch variance for the inputs
LIK_EPS = 1e-3           # loglik_models_missing_normalize.loglik_real/pos: floor of data and unit variances
POS_VAR_CAP = 1.0        # loglik_pos: the unit variance of the log-normal is capped at 1
ORD_EPS = 1e-6           # loglik_ordinal: floor of threshold steps and of category probabilities
LOGVAR_CLIP = 15.0       # VAE_functions.z_proposal_GMM: log-variance of q(z) clipped to ±15
PAD_LOGIT = -1e9         # logit of a padding category (columns have different category counts)
CHECK_STEPS = 64         # read the losses back to the host (a GPU sync) about every this many steps


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
        # category codes are stored small (a group holds K copies of the data) and widened per batch
        self.code_dtype = torch.int16 if int(k.max(initial=0)) < 2**15 else torch.int64


def _to_tensors(X: np.ndarray, cols: _Columns, device: str) -> dict[str, torch.Tensor]:
    """Split scaled ``X`` (NaN = missing) into per-family values and observed masks on ``device``.

    Stored compactly (codes as small integers, masks as booleans); :func:`_widen` gives the
    dtypes the network computes with.
    """
    observed = ~np.isnan(X)
    num = np.nan_to_num(X[:, cols.numeric], nan=0.0)
    # log(1 + x) is the variable the "pos" Gaussian models (loglik_pos); clamp at 0 because a test
    # value below the training minimum would otherwise leave the log-normal's support.
    num[:, cols.is_pos] = np.log1p(np.clip(num[:, cols.is_pos], 0.0, None))

    def codes(idx, k):
        steps = np.maximum(k - 1, 1)
        c = np.rint(np.nan_to_num(X[:, idx], nan=0.0) * steps)
        return torch.as_tensor(np.clip(c, 0, k - 1).astype(np.int64)).to(device, cols.code_dtype)

    as_bool = dict(dtype=torch.bool, device=device)
    return {
        "num": torch.as_tensor(num, dtype=torch.float32, device=device),
        "num_obs": torch.as_tensor(observed[:, cols.numeric], **as_bool),
        "nom": codes(cols.nominal, cols.nominal_k),
        "nom_obs": torch.as_tensor(observed[:, cols.nominal], **as_bool),
        "ord": codes(cols.ordinal, cols.ordinal_k),
        "ord_obs": torch.as_tensor(observed[:, cols.ordinal], **as_bool),
    }


def _widen(data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored tensors → compute dtypes: float values and 0/1 masks, long category codes."""
    out = {key: value.float() for key, value in data.items() if key.endswith("_obs")}
    return {**out, "num": data["num"], "nom": data["nom"].long(), "ord": data["ord"].long()}


def observed_moments(values: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) variance of each column over its observed entries, per model.

    ``values`` and ``observed`` are ``(K, rows, d)``; the moments are ``(K, 1, d)``, each model's
    reduced over its own rows only. Matches ``VAE_functions.batch_normalization``
    (``tf.nn.moments`` on the observed part, variance clipped below at 1e-6); a column with no
    observed entry gets mean 0, variance 1.
    """
    count = observed.sum(-2, keepdim=True)
    safe = count.clamp(min=1.0)
    mean = (values * observed).sum(-2, keepdim=True) / safe
    var = (((values - mean) ** 2) * observed).sum(-2, keepdim=True) / safe
    empty = count == 0
    mean = torch.where(empty, torch.zeros_like(mean), mean)
    var = torch.where(empty, torch.ones_like(var), var.clamp(min=INPUT_VAR_FLOOR))
    return mean, var


# ---------------------------------------------------------------------------- the network
class _Linear(nn.Module):
    """K dense layers ``x @ W_k + b_k`` (weights ``(K, fan_in, fan_out)``); initialised by :class:`HIVAENet`."""

    def __init__(self, fan_in: int, fan_out: int, n_models: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_models, fan_in, fan_out))
        self.bias = nn.Parameter(torch.empty(n_models, 1, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)  # (K, rows, fan_in) → (K, rows, fan_out)


class HIVAENet(nn.Module):
    """K HI-VAEs with one column layout: encoder q(s|x°), q(z|x°,s); prior p(z|s); decoder z → y → heads.

    Every parameter has a leading model axis (``len(generators)`` models; model k's initial
    weights come from ``generators[k]``) and every activation is ``(K, rows, ·)``.
    """

    def __init__(self, cols: _Columns, z_dim: int, y_dim: int, s_dim: int,
                 generators: list[torch.Generator], device: str = "cpu"):
        super().__init__()
        K = len(generators)
        self.z_dim, self.y_dim, self.s_dim = z_dim, y_dim, s_dim
        n_num, n_nom, n_ord = len(cols.numeric), len(cols.nominal), len(cols.ordinal)
        self.nom_kmax = int(cols.nominal_k.max(initial=1))
        self.ord_kmax = int(cols.ordinal_k.max(initial=1))
        # Encoder input: normalised numerics, one-hot nominals, thermometer ordinals
        # (read_functions.read_data builds the same codes), all zero where missing.
        in_dim = n_num + int(cols.nominal_k.sum()) + int(cols.ordinal_k.sum())

        self.enc_s = _Linear(in_dim, s_dim, K)                       # s_proposal_multinomial
        self.enc_z_mean = _Linear(in_dim + s_dim, z_dim, K)          # z_proposal_GMM
        self.enc_z_logvar = _Linear(in_dim + s_dim, z_dim, K)
        self.prior_z_mean = _Linear(s_dim, z_dim, K)                 # z_distribution_GMM (unit variance)
        # graph_new.HVAE_graph: y has y_dim units per feature; y_partition hands each feature its
        # slice. Here the features' slices are laid out by family (numeric, nominal, ordinal).
        self.to_y = _Linear(z_dim, y_dim * cols.n_features, K)
        self.families = [n_num, n_nom, n_ord]
        # Per-column heads (theta_*_s, no bias) read [y_d, s]: a head's weights on y_d are per
        # column; its weights on s are columns of one (s_dim, ·) matrix shared by all heads, so
        # s enters every head in one product. The numeric variance and the ordinal thresholds
        # read s alone.
        self.num_mean_y = nn.Parameter(torch.empty(K, n_num, y_dim))
        self.nom_logits_y = nn.Parameter(torch.empty(K, n_nom, self.nom_kmax - 1, y_dim))
        self.ord_location_y = nn.Parameter(torch.empty(K, n_ord, y_dim))
        # s → numeric mean, numeric variance, nominal logits, ordinal location, ordinal steps
        self.s_sizes = [n_num, n_num, n_nom * (self.nom_kmax - 1), n_ord, n_ord * (self.ord_kmax - 1)]
        self.s_heads = nn.Parameter(torch.empty(K, s_dim, sum(self.s_sizes)))
        with torch.no_grad():
            for k, generator in enumerate(generators):  # model k: its own generator, a fixed order
                for name, param in self.named_parameters():
                    if name.endswith("bias"):
                        param[k].zero_()
                    else:
                        param[k].normal_(0.0, INIT_STD, generator=generator)
        self.to(device)

        # The column layout is shared by the K models: plain tensors, not buffers (which carry
        # the model axis and are sliced by `_batched.select`).
        self.num_is_pos = torch.as_tensor(cols.is_pos, dtype=torch.bool, device=device)
        self.num_var_cap = torch.where(self.num_is_pos, POS_VAR_CAP, math.inf)
        nom_valid = torch.arange(self.nom_kmax)[None, :] < torch.as_tensor(cols.nominal_k)[:, None]
        ord_valid = torch.arange(self.ord_kmax)[None, :] < torch.as_tensor(cols.ordinal_k)[:, None]
        self.nom_valid = nom_valid.to(device)                         # (n_nom, Kmax)
        self.ord_valid = ord_valid.to(device)                         # (n_ord, Kmax)
        self.nom_in = torch.nonzero(nom_valid.flatten())[:, 0].to(device)  # one-hot slots kept
        self.ord_in = torch.nonzero(ord_valid.flatten())[:, 0].to(device)
        # whether some column has fewer categories than the widest of its family (fixed by the layout)
        self.nom_padded, self.ord_padded = not bool(nom_valid.all()), not bool(ord_valid.all())
        self.nom_levels = torch.arange(self.nom_kmax, device=device)
        self.ord_levels = torch.arange(self.ord_kmax, device=device)

    # ------------------------------------------------------------------ encoder
    def encoder_input(self, data: dict, moments) -> torch.Tensor:
        mean, var = moments
        num = (data["num"] - mean) / torch.sqrt(var + INPUT_VAR_FLOOR) * data["num_obs"]
        K, rows = num.shape[:2]
        one_hot = (self.nom_levels == data["nom"][..., None]).float() * data["nom_obs"][..., None]
        thermometer = (self.ord_levels <= data["ord"][..., None]).float() * data["ord_obs"][..., None]
        one_hot, thermometer = one_hot.reshape(K, rows, -1), thermometer.reshape(K, rows, -1)
        if self.nom_padded:  # drop the slots of categories a column does not have
            one_hot = one_hot[..., self.nom_in]
        if self.ord_padded:
            thermometer = thermometer[..., self.ord_in]
        return torch.cat([num, one_hot, thermometer], dim=2)

    def q_z(self, x_in: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.cat([x_in, s], dim=2)
        return self.enc_z_mean(h), self.enc_z_logvar(h).clamp(-LOGVAR_CLIP, LOGVAR_CLIP)

    # ------------------------------------------------------------------ decoder
    def heads(self, z: torch.Tensor, s: torch.Tensor, moments) -> dict[str, torch.Tensor]:
        """Likelihood parameters of every column given z (K, rows, z_dim) and s (K, rows, s_dim)."""
        (K, rows), (mean, var) = z.shape[:2], moments
        y = self.to_y(z).view(K, rows, -1, self.y_dim)               # (K, rows, d, y_dim)
        n_num, n_nom, n_ord = self.families
        y_num, y_nom, y_ord = y.split(self.families, dim=2)
        from_s = torch.bmm(s, self.s_heads).split(self.s_sizes, dim=2)
        mean_s, var_s, nom_s, location_s, steps_s = from_s

        # Numeric: unit-scale mean and variance, mapped back with the batch moments (loglik_real).
        lik_var = var.clamp(min=LIK_EPS)
        unit_mean = (y_num * self.num_mean_y[:, None]).sum(3) + mean_s
        unit_var = torch.minimum(F.softplus(var_s).clamp(min=LIK_EPS), self.num_var_cap)
        num_mean = torch.sqrt(lik_var) * unit_mean + mean
        num_var = lik_var * unit_var

        # Nominal: K-1 free logits after a fixed 0 (theta_cat_s); padding slots never win.
        free = torch.einsum("kbjh,kjch->kbjc", y_nom, self.nom_logits_y) \
            + nom_s.view(K, rows, n_nom, self.nom_kmax - 1)
        logits = torch.cat([torch.zeros_like(free[..., :1]), free], dim=3)
        if self.nom_padded:
            logits = logits.masked_fill(~self.nom_valid, PAD_LOGIT)

        # Ordinal: P(x ≤ k) = σ(θ_k − μ) with θ increasing by softplus steps (loglik_ordinal).
        location = (y_ord * self.ord_location_y[:, None]).sum(3) + location_s
        steps = steps_s.view(K, rows, n_ord, self.ord_kmax - 1)
        thresholds = torch.cumsum(F.softplus(steps).clamp(min=ORD_EPS), dim=3)
        below = torch.sigmoid(thresholds - location[..., None])     # (K, rows, n_ord, Kmax-1)
        if self.ord_padded:  # a padding level: P(x ≤ k) = 1
            below = torch.where(self.ord_valid[:, 1:], below, torch.ones_like(below))
        ones, zeros = torch.ones_like(location[..., None]), torch.zeros_like(location[..., None])
        probs = torch.cat([below, ones], dim=3) - torch.cat([zeros, below], dim=3)
        return {"num_mean": num_mean, "num_var": num_var, "nom_logits": logits, "ord_probs": probs}

    def log_likelihood(self, params: dict, data: dict) -> torch.Tensor:
        """Σ over observed columns of log p(x_d | y_d, s), per model and row: (K, rows)."""
        t = data["num"]
        num = -0.5 * (t - params["num_mean"]) ** 2 / params["num_var"] \
            - 0.5 * torch.log(2 * math.pi * params["num_var"])
        num = num - t * self.num_is_pos  # Jacobian of log(1 + x) for the log-normal (loglik_pos)
        nom = _log_softmax(params["nom_logits"]).gather(3, data["nom"][..., None])[..., 0]
        ordinal = torch.log(params["ord_probs"].clamp(ORD_EPS, 1.0)).gather(3, data["ord"][..., None])[..., 0]
        return (num * data["num_obs"]).sum(2) + (nom * data["nom_obs"]).sum(2) \
            + (ordinal * data["ord_obs"]).sum(2)

    # ------------------------------------------------------------------ objective
    def negative_elbo(self, data: dict, moments, tau: float, uniform: torch.Tensor,
                      normal: torch.Tensor) -> torch.Tensor:
        """−ELBO of each model averaged over its own batch (model_HIVAE_inputDropout.cost_function): (K,).

        ``uniform`` (K, rows, s_dim) drives the Gumbel noise of s, ``normal`` (K, rows, z_dim) the
        reparameterised z.
        """
        x_in = self.encoder_input(data, moments)
        s_logits = self.enc_s(x_in)
        log_q = _log_softmax(s_logits)
        log_q_s = log_q.clamp(math.log(ORD_EPS), 0.0)                # log of q(s|x°) clipped at ORD_EPS
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-20)))
        s = _softmax((log_q_s + gumbel) / tau)                       # relaxed one-hot sample of s
        mean_q, logvar_q = self.q_z(x_in, s)
        z = mean_q + torch.exp(0.5 * logvar_q) * normal
        mean_p = self.prior_z_mean(s)                              # p(z|s) = N(mean_p, I)

        reconstruction = self.log_likelihood(self.heads(z, s, moments), data)
        kl_s = (torch.exp(log_q) * log_q).sum(2) + math.log(self.s_dim)  # vs uniform p(s)
        kl_z = 0.5 * (torch.exp(logvar_q) + (mean_p - mean_q) ** 2 - 1.0 - logvar_q).sum(2)
        return -(reconstruction - kl_z - kl_s).mean(dim=1)

    # ------------------------------------------------------------------ imputation
    def posterior(self, data: dict, moments, noise: torch.Generator | None):
        """Likelihood parameters at the posterior mode (``noise`` None) or at a draw of s and z."""
        x_in = self.encoder_input(data, moments)
        s_logits = self.enc_s(x_in)
        if noise is None:
            s = F.one_hot(s_logits.argmax(2), self.s_dim).float()
            z, _ = self.q_z(x_in, s)
        else:
            s = F.one_hot(_draw_categories(_softmax(s_logits), noise), self.s_dim).float()
            mean_q, logvar_q = self.q_z(x_in, s)
            eps = torch.randn(mean_q.shape, generator=noise, device=mean_q.device)
            z = mean_q + torch.exp(0.5 * logvar_q) * eps
        return self.heads(z, s, moments)

    def decode(self, params: dict, noise: torch.Generator | None) -> dict[str, torch.Tensor]:
        """Numeric values (scaled units) and category codes: likelihood modes, or draws from them."""
        mean, var = params["num_mean"], params["num_var"]
        nom_probs = _softmax(params["nom_logits"])
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


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, from element-wise ops: on CPU, ``torch.softmax`` over a short
    last axis (s_dim, a column's categories) costs several times more at K = 15."""
    if logits.numel() == 0:  # no column of this family (amax refuses an empty tensor)
        return logits
    e = torch.exp(logits - logits.amax(-1, keepdim=True).detach())  # the shift cancels: no gradient
    return e / e.sum(-1, keepdim=True)


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the last axis, from element-wise ops (see :func:`_softmax`)."""
    if logits.numel() == 0:
        return logits
    shifted = logits - logits.amax(-1, keepdim=True).detach()
    return shifted - torch.log(torch.exp(shifted).sum(-1, keepdim=True))


def _most_probable(probs: torch.Tensor) -> torch.Tensor:
    """Most probable category along the last axis; torch's argmax refuses an empty tensor."""
    if probs.numel() == 0:
        return torch.zeros(probs.shape[:-1], dtype=torch.long, device=probs.device)
    return probs.argmax(-1)


def _draw_categories(probs: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """One category per leading index from probabilities of shape (..., categories)."""
    if probs.numel() == 0:
        return torch.zeros(probs.shape[:-1], dtype=torch.long, device=probs.device)
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=noise)
    return flat.view(probs.shape[:-1])


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
        CPU runs with the same seed are bit-identical, alone or in a ``fit_group``.
    device : str, default "auto"
        ``"auto"`` uses CUDA when available, else CPU.
    verbose : bool, default False
        Show a progress bar over epochs.

    Attributes
    ----------
    net_ : HIVAENet
        The trained network (the K = 1 slice of its group).
    likelihoods_ : tuple of str
        Likelihood of each column: "real", "pos", "cat" or "ordinal".
    moments_ : tuple of Tensor
        Mean and variance, shape (1, 1, numeric columns), of the observed training values of the
        numeric columns (in the modelled units), used to normalise inputs at imputation time.
    loss_history_ : list of float
        Mean −ELBO per epoch.
    info_ : dict
        Scalars for the result row: final −ELBO, epochs run, mixture components in use.
    """

    version = "2"  # 1 → 2: model axis: per-model generators, block-drawn noise, heads regrouped (new numbers)

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

    def _group_key(self, X, y, schema: Schema | None = None) -> tuple:
        """Batched fits must also share the column layout: schema kinds, category counts, likelihoods.

        HIVAE ignores ``y``, so labels do not split a group.
        """
        schema = Schema.all_numeric(X.shape[1]) if schema is None else schema
        try:
            likelihoods = self._likelihoods(X, schema)
        except ValueError:  # refused data: a group of its own, where _fit_batched reports the error
            likelihoods = ("refused", id(self))
        return (*super()._group_key(X, None, schema), schema.kinds, schema.n_categories, likelihoods)

    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        raise_first(type(self)._fit_batched([self], [X], [y], [schema]))

    @classmethod
    def _fit_batched(cls, imputers: list, Xs: list, ys: list, schemas: list) -> list:
        """Train one HI-VAE per imputer as K models at once; one entry per imputer (None or its error).

        The imputers share every parameter but ``random_state``, the data shape and the column
        layout (``_group_key``). Model k draws its initial weights from its own CPU generator and
        its batch order (one permutation of its rows per epoch), Gumbel and reparameterisation
        noise from its own training generator, and normalises each batch with its own observed
        moments, so its numbers are those it gets alone.
        """
        first, errors = imputers[0], [None] * len(imputers)
        try:
            first._check_params()
            device = resolve_device(first.device)
        except ValueError as error:  # the parameters are shared: every fit fails alike
            return [error] * len(imputers)

        members, layout = [], None
        for k, (imputer, X, schema) in enumerate(zip(imputers, Xs, schemas)):
            try:
                likelihoods = imputer._likelihoods(X, schema)
            except ValueError as error:
                errors[k] = error
                continue
            if layout is None:
                layout = (likelihoods, schema.n_categories)
            elif (likelihoods, schema.n_categories) != layout:
                raise ValueError("HIVAE fits batched together must share the column layout (see _group_key).")
            imputer.device_, imputer.likelihoods_ = device, likelihoods
            imputer.columns_ = _Columns(schema, likelihoods)
            members.append(k)
        if not members:
            return errors
        group = [imputers[k] for k in members]
        cols = group[0].columns_

        # per model: init generator (CPU), training generator (device), a seed kept for `sample`
        init_gens, train_gens = [], []
        for imputer in group:
            cpu_generator, train, imputer.sample_seed_ = seed_streams(imputer.random_state, device)
            init_gens.append(cpu_generator)
            train_gens.append(train)
        stored = [_to_tensors(Xs[k], cols, device) for k in members]
        for imputer, data in zip(group, stored):
            imputer.moments_ = observed_moments(data["num"][None], _widen(data)["num_obs"][None])
        data_all = {key: torch.stack([data[key] for data in stored]) for key in stored[0]}  # (K, n, ·)
        del stored

        net = HIVAENet(cols, int(first.z_dim), int(first.y_dim), int(first.s_dim), init_gens, device)
        # foreach: the same element-wise update as the default loop (CPU), fewer dispatches; CUDA's default
        optimizer = torch.optim.Adam(net.parameters(), lr=float(first.learning_rate), foreach=True)
        K, n_rows = len(group), Xs[members[0]].shape[0]
        batches = EpochSampler(n_rows, int(first.batch_size), train_gens)  # main_scripts.py caps the batch at n
        streams = Streams(train_gens)
        batch_size, n_batches = batches.batch, n_rows // batches.batch  # floor: the remainder is dropped
        epochs, s_dim, z_dim = int(first.epochs), int(first.s_dim), int(first.z_dim)
        check_every = max(1, math.ceil(CHECK_STEPS / n_batches))  # epochs between host reads
        history = torch.zeros(epochs, K, device=device)           # mean −ELBO per epoch and model
        histories: list[list[float]] = [[] for _ in range(K)]
        failed: list = [None] * K  # a model's TrainingDivergedError (record_epochs)
        read, epochs_run = 0, 0
        net.train()
        for epoch in tqdm(range(epochs), desc="HIVAE", disable=not first.verbose):
            tau = max(1.0 - float(first.tau_decay) * epoch, float(first.tau_min))  # main_scripts.py annealing
            total = torch.zeros(K, device=device)
            for _ in range(n_batches):
                idx = batches()                                    # (K, batch): each model's own rows
                batch = _widen({key: gather_rows(value, idx) for key, value in data_all.items()})
                # Per-batch normalisation on observed entries (VAE_functions.batch_normalization),
                # each model over its own batch.
                moments = observed_moments(batch["num"], batch["num_obs"])
                uniform = streams.uniform("gumbel", (batch_size, s_dim))
                normal = streams.normal("z", (batch_size, z_dim))
                streams.advance()
                loss = net.negative_elbo(batch, moments, tau, uniform, normal)  # (K,)
                optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()  # the models share no parameter: each gets its own gradient
                optimizer.step()
                total += loss.detach()
            history[epoch] = total / n_batches
            epochs_run = epoch + 1
            if epochs_run % check_every == 0 or epochs_run == epochs:  # a host read syncs a GPU: not every step
                record_epochs(history[read:epochs_run].cpu().numpy(), read, histories, failed, "HIVAE")
                read = epochs_run
                if all(f is not None for f in failed):  # nothing left to train
                    break
        net.eval()
        for k, (index, imputer) in enumerate(zip(members, group)):
            if failed[k] is not None:
                errors[index] = failed[k]
                continue
            imputer.net_ = select(net, k)
            imputer.loss_history_ = histories[k]
            imputer.info_ = {"final_loss": imputer.loss_history_[-1], "epochs_run": epochs_run,
                             "components_used": imputer._components(Xs[index])}
        return errors

    @torch.no_grad()
    def _components(self, X: np.ndarray, chunk: int = 4096) -> int:
        """Mixture components that are the most probable s of at least one training row."""
        used = set()
        for start in range(0, X.shape[0], chunk):
            data = _widen({key: value[None] for key, value in
                           _to_tensors(X[start:start + chunk], self.columns_, self.device_).items()})
            s_logits = self.net_.enc_s(self.net_.encoder_input(data, self.moments_))
            used.update(torch.unique(s_logits.argmax(2)).tolist())
        return len(used)

    # ------------------------------------------------------------------ impute
    def _impute(self, X: np.ndarray, noise: torch.Generator | None, chunk: int = 4096) -> np.ndarray:
        """Full (rows, d) array of modes (``noise`` None) or one draw, in the input's scale."""
        cols = self.columns_
        out = np.empty(X.shape, dtype=float)
        for start in range(0, X.shape[0], chunk):  # bounded memory on large datasets
            data = _widen({key: value[None]  # the fitted net is K = 1
                           for key, value in _to_tensors(X[start:start + chunk], cols, self.device_).items()})
            values = self.net_.decode(self.net_.posterior(data, self.moments_, noise), noise)
            rows = slice(start, start + chunk)
            out[rows, cols.numeric] = values["num"][0].cpu().numpy()
            out[rows, cols.nominal] = values["nom"][0].cpu().numpy()
            out[rows, cols.ordinal] = values["ord"][0].cpu().numpy()
        return self.schema_.from_codes(out)  # category codes → code / (k - 1)

    @torch.no_grad()
    def _transform(self, X: np.ndarray) -> np.ndarray:
        return self._impute(X, noise=None)

    @torch.no_grad()
    def _sample(self, X: np.ndarray, n: int) -> np.ndarray:
        noise = torch.Generator(device=self.device_).manual_seed(self.sample_seed_)
        return np.stack([self._impute(X, noise) for _ in range(n)])  # (n, rows, d)
