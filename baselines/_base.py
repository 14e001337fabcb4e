"""The imputer contract every imputer of the harness follows (docs/DESIGN.md, "Imputer interface").

``fit(X, y=None, schema=None) -> self``, ``transform(X) -> ndarray`` and
``fit_transform``: ``X`` is a float array with NaN for missing entries (scaled to [0, 1]
by the runner); ``transform`` returns the same shape with no NaN and every observed entry
unchanged. :class:`BaseImputer` does the checks once so that each imputer only writes
``_fit`` and ``_transform`` (and ``_sample`` when it can draw multiple imputations).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from baselines.schema import Schema


class TrainingDivergedError(RuntimeError):
    """Raised when a model's loss or output becomes NaN/inf during training."""


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when a GPU is present, else ``"cpu"``; other values pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use device='auto'.")
    return device


def seed_torch(random_state) -> "torch.Generator":  # noqa: F821
    """Seed torch from ``random_state`` (int or None) and return a CPU generator for sampling."""
    import torch

    seed = int(np.random.SeedSequence(random_state).generate_state(1)[0]) if random_state is None \
        else int(random_state)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def seed_streams(random_state, device: str):
    """Seed torch and split the seed in two streams: training noise, and a seed kept for ``sample``.

    Returns ``(cpu_generator, train_generator_on_device, sample_seed)``; drawing imputations
    then never depends on how training consumed random numbers.
    """
    import torch

    cpu_generator = seed_torch(random_state)
    train_seed, sample_seed = (int(s) for s in torch.randint(2**62, (2,), generator=cpu_generator))
    return cpu_generator, torch.Generator(device=device).manual_seed(train_seed), sample_seed


def check_finite_loss(loss_value: float, where: str) -> None:
    """Stop training with a clear error when the loss is NaN or inf."""
    if not np.isfinite(loss_value):
        raise TrainingDivergedError(
            f"Training diverged in {where}: the loss became {loss_value}. "
            "Lower the learning rate or check the input scaling."
        )


class BaseImputer(TransformerMixin, BaseEstimator):
    """Shared contract: input checks, schema default, observed entries kept, no NaN left.

    Subclasses implement ``_fit(X, y, schema)`` (``X`` has NaN for missing) and
    ``_transform(X)`` returning a full array; optionally ``_sample(X, n)`` returning
    ``(n, rows, d)`` draws. Fitted state ends in ``_``.

    ``version`` names the numerical behaviour of the class: it enters every result row's cell
    key, so bump it whenever a change could move a number (``tests/test_versions.py`` fails when
    an imputer's source changes and its version does not).
    """

    version = "1"

    def fit(self, X, y=None, schema: Schema | None = None):
        X, y, schema = self._check_fit(X, y, schema)
        self._fit(X, y, schema)
        return self

    @classmethod
    def fit_group(cls, imputers: list, Xs: list, ys: list | None = None, schemas: list | None = None) -> list:
        """Fit ``imputers[i]`` on ``Xs[i]`` (labels ``ys[i]``, schema ``schemas[i]``), as a group.

        Returns one entry per imputer: ``None`` when it is fitted, else the exception that stopped
        it (the others go on). Classes with ``_fit_batched`` train the fits whose ``_group_key``
        agrees (the same parameters but ``random_state``, the same data shape) as one batched
        computation; each fit's numbers are those it gets alone. Other classes fit one by one.
        """
        n = len(imputers)
        ys, schemas = ys or [None] * n, schemas or [None] * n
        errors: list = [None] * n
        checked: dict = {}
        for i, (imputer, X, y, schema) in enumerate(zip(imputers, Xs, ys, schemas)):
            try:
                if not isinstance(imputer, cls):
                    raise TypeError(f"{cls.__name__}.fit_group got a {type(imputer).__name__}.")
                checked[i] = imputer._check_fit(X, y, schema)
            except Exception as error:  # noqa: BLE001 - reported per fit
                errors[i] = error
        groups: dict = {}
        for i, (X, y, schema) in checked.items():
            key = imputers[i]._group_key(X, y, schema) if hasattr(cls, "_fit_batched") else i
            groups.setdefault(key, []).append(i)
        for members in groups.values():
            args = [[checked[i][j] for i in members] for j in range(3)]
            if hasattr(cls, "_fit_batched"):
                results = cls._fit_batched([imputers[i] for i in members], *args)
            else:
                results = [_try(imputers[members[0]]._fit, *(a[0] for a in args))]
            for i, error in zip(members, results):
                errors[i] = error
        for imputer, error in zip(imputers, errors):
            if error is not None and isinstance(imputer, BaseImputer):
                imputer.__dict__.pop("schema_", None)  # not fitted: transform says so
        return errors

    def _group_key(self, X, y, schema: Schema | None = None) -> tuple:
        """Fits with equal keys can train as one batched model: the parameters but the seed, and X's shape.

        Called before ``fit`` (by ``fit_group`` and the runner), so it reads only its arguments.
        """
        params = {k: v for k, v in self.get_params().items() if k not in ("random_state", "verbose")}
        return (repr(sorted(params.items())), X.shape, None if y is None else len(np.unique(y)))

    def _check_fit(self, X, y, schema):
        """The checks of ``fit``: returns the validated ``(X, y, schema)`` and sets ``schema_``."""
        X = self._validate(X, reset=True)
        schema = Schema.all_numeric(X.shape[1]) if schema is None else schema
        schema.check_width(X.shape[1])
        empty = np.flatnonzero(np.isnan(X).all(axis=0))
        if empty.size:
            raise ValueError(
                f"Columns {empty.tolist()} have no observed value in the training rows; "
                "an imputer cannot learn them. Drop those columns or lower the missing ratio."
            )
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"y has {y.shape[0]} labels but X has {X.shape[0]} rows.")
        self.schema_ = schema
        return X, y, schema

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "schema_")
        X = self._validate(X, reset=False)
        filled = np.asarray(self._transform(X), dtype=float)
        return self._finish(X, filled)

    def fit_transform(self, X, y=None, schema: Schema | None = None, **fit_params) -> np.ndarray:
        return self.fit(X, y, schema).transform(X)

    def sample(self, X, n: int = 10) -> np.ndarray:
        """``n`` multiple-imputation draws, shape ``(n, rows, d)``, observed entries unchanged."""
        check_is_fitted(self, "schema_")
        if not hasattr(self, "_sample"):
            raise NotImplementedError(f"{type(self).__name__} does not draw multiple imputations.")
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of draws, got {n}.")
        X = self._validate(X, reset=False)
        draws = np.asarray(self._sample(X, int(n)), dtype=float)
        return np.stack([self._finish(X, d) for d in draws])

    # ------------------------------------------------------------------ helpers
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN marks a missing entry: it is the input, not an error
        return tags

    def _validate(self, X, *, reset: bool) -> np.ndarray:
        """scikit-learn's own validation: 2-D float, NaN allowed, no inf, no sparse, no complex,
        non-empty; ``n_features_in_`` set at fit (``reset``) and checked after it."""
        return validate_data(self, X, reset=reset, dtype=float, ensure_all_finite="allow-nan",
                             ensure_min_samples=1, ensure_min_features=1)

    def _finish(self, X: np.ndarray, filled: np.ndarray) -> np.ndarray:
        if filled.shape != X.shape:
            raise RuntimeError(f"{type(self).__name__} returned shape {filled.shape}, expected {X.shape}.")
        observed = ~np.isnan(X)
        out = np.where(observed, X, filled)
        if not np.isfinite(out).all():
            raise TrainingDivergedError(
                f"{type(self).__name__} left NaN/inf in its output: training probably diverged."
            )
        return out


def _try(function, *args):
    """``None`` when ``function(*args)`` returns, else the exception it raised."""
    try:
        function(*args)
    except Exception as error:  # noqa: BLE001 - reported per fit
        return error
    return None


def raise_first(errors: list) -> None:
    """Raise the first exception of a ``fit_group``-style result list, if any."""
    for error in errors:
        if error is not None:
            raise error


class MissingExtraError(ImportError):
    """An imputer's optional dependency is not installed; the runner records ``status=skipped``."""
