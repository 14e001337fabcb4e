"""One cell of the benchmark: load → subsample → split → mask → scale → fit → transform → score.

:func:`run_cell` takes a composed config (see ``conf/config.yaml``) and returns one flat result
row, which it also writes to the store. The Hydra entry point (``experiments/run.py``) is a thin
wrapper over it; :func:`compose_cell` builds the same config from Python (tests, scripts).
"""
from __future__ import annotations

import logging
import os
import platform
import resource
import subprocess
import time
import traceback
from functools import lru_cache
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import metrics, store
from experiments.data import Dataset, Scaler, load_dataset, subsample
from experiments.masks import MaskError, draw_mask
from experiments.registry import CONF_DIR, instantiate_imputer, resolve_params
from experiments.split import stratified_split
from metagain.base import MissingExtraError

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


class CellError(ValueError):
    """The cell itself is ill-posed (bad ratio, bad data): no row is written."""


# ---------------------------------------------------------------------------- config
def compose_cell(overrides: list[str] | None = None) -> DictConfig:
    """Compose ``conf/config.yaml`` with Hydra overrides, as ``python -m experiments.run`` would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from experiments.config import register_schema

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides or []))


def cell_identity(cfg: dict, params: dict) -> tuple[dict, str]:
    """The identity columns of a cell and its store key (a hash of everything that sets a score)."""
    identity = {
        "dataset": cfg["dataset"]["key"],
        "mechanism": cfg["mechanism"]["name"],
        "ratio": float(cfg["ratio"]),
        "imputer": cfg["imputer"]["name"],
        "seed": int(cfg["seed"]),
        "profile": cfg["profile"]["name"],
    }
    payload = {
        **identity,
        "dataset_spec": cfg["dataset"],
        "mechanism_params": cfg["mechanism"].get("params") or {},
        "max_rows": cfg["profile"].get("max_rows"),
        "scaling": cfg["scaling"],
        "classifier": cfg["classifier"],
        "n_draws": cfg["n_draws"],
        "imputer_params": params,
    }
    return identity, store.cell_key(payload)


# ---------------------------------------------------------------------------- provenance
@lru_cache(maxsize=1)
def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@lru_cache(maxsize=1)
def versions() -> dict:
    import importlib.metadata as md

    out = {"version_python": platform.python_version()}
    for package in ("numpy", "pandas", "scikit-learn", "torch", "xgboost", "hydra-core"):
        try:
            out[f"version_{package.replace('-', '_')}"] = md.version(package)
        except md.PackageNotFoundError:
            out[f"version_{package.replace('-', '_')}"] = None
    return out


def set_threads(threads: int) -> None:
    """One knob for torch, BLAS and XGBoost threads (2 cores: oversubscription is brutal)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import torch

        torch.set_num_threads(int(threads))
    except ImportError:  # pragma: no cover
        pass


def peak_memory_mb(device: str) -> float:
    """Peak resident memory of this process (MB); on CUDA the peak allocated GPU memory is added."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if device.startswith("cuda"):
        import torch

        peak += torch.cuda.max_memory_allocated() / 2 ** 20
    return peak


# ---------------------------------------------------------------------------- data for a cell
def prepare_cell(cfg: dict) -> dict:
    """Everything before the imputer: data, split, mask (cached per cell identity), scaling."""
    ratio = float(cfg["ratio"])
    if not 0.0 < ratio < 1.0:
        raise CellError(f"ratio must lie strictly between 0 and 1 (a share of entries), got {ratio}.")
    seed = int(cfg["seed"])
    dataset = load_dataset(cfg["dataset"], cfg.get("data_dir"))
    dataset, _ = subsample(dataset, cfg["profile"].get("max_rows"))
    train_idx, test_idx = stratified_split(dataset.y, 0.2, seed)
    X_true01 = complete_unit_scale(dataset)
    hidden = cached_mask(cfg, dataset, train_idx, X_true01)
    X_missing = np.where(hidden, np.nan, dataset.X)
    scaler = Scaler.fit(X_missing[train_idx], dataset.schema, cfg.get("scaling", "minmax"))
    return {
        "dataset": dataset, "train_idx": train_idx, "test_idx": test_idx, "hidden": hidden,
        "X_true01": X_true01, "scaler": scaler, "X_scaled": scaler.transform(X_missing),
    }


def unit_scale(X: np.ndarray, dataset: Dataset) -> np.ndarray:
    """``X`` (original units) on the complete data's [0, 1] scale: GAIN's RMSE scale, mask inputs."""
    lo, hi = dataset.X.min(0), dataset.X.max(0)
    return (X - lo) / np.where(hi > lo, hi - lo, 1.0)


def complete_unit_scale(dataset: Dataset) -> np.ndarray:
    """The complete data on [0, 1] by its own min/max."""
    return unit_scale(dataset.X, dataset)


def cached_mask(cfg: dict, dataset: Dataset, train_idx: np.ndarray, X_true01: np.ndarray) -> np.ndarray:
    """The hidden-entry mask of (dataset, mechanism, ratio, seed, rows): drawn once, then reused."""
    mech = cfg["mechanism"]
    params = dict(mech.get("params") or {})
    key = store.cell_key({"dataset": cfg["dataset"], "mechanism": mech, "ratio": float(cfg["ratio"]),
                          "seed": int(cfg["seed"]), "max_rows": cfg["profile"].get("max_rows"),
                          "n_rows": dataset.n_rows})
    path = Path(cfg["results_dir"]) / "masks" / f"{dataset.key}-{mech['name']}-{key}.npz"
    if path.exists():
        with np.load(path) as saved:
            hidden = saved["hidden"]
        if hidden.shape == dataset.X.shape:
            return hidden
    try:
        hidden = draw_mask(X_true01, mech["name"], float(cfg["ratio"]),
                           int(cfg["seed"]), train_idx, **params)
    except MaskError as err:
        raise CellError(str(err)) from err
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, hidden=hidden)
    os.replace(tmp, path)
    return hidden


def complete_accuracy(cfg: dict, prepared: dict) -> float:
    """The same classifier on the uncorrupted data (cached per dataset, seed, rows, classifier)."""
    key = store.cell_key({"dataset": cfg["dataset"], "seed": int(cfg["seed"]),
                          "max_rows": cfg["profile"].get("max_rows"), "classifier": cfg["classifier"]})
    path = Path(cfg["results_dir"]) / "cache" / f"complete-{cfg['dataset']['key']}-{key}.json"
    cached = store.read_json(path) if path.exists() else None
    if cached is not None:
        return float(cached["accuracy"])
    ds, tr, te = prepared["dataset"], prepared["train_idx"], prepared["test_idx"]
    acc = metrics.xgb_accuracy(ds.X[tr], ds.y[tr], ds.X[te], ds.y[te], dict(cfg["classifier"]),
                               int(cfg["seed"]), int(cfg.get("threads", 1)))
    store.write_json_atomic(path, {"accuracy": acc})
    return acc


# ---------------------------------------------------------------------------- scoring
def decode(X_scaled: np.ndarray, prepared: dict) -> np.ndarray:
    """Imputer output → original units, categoricals snapped to the nearest valid code."""
    return prepared["dataset"].schema.to_codes(prepared["scaler"].inverse(X_scaled))


def score(imputed_scaled: dict, prepared: dict, cfg: dict) -> dict:
    ds, hidden = prepared["dataset"], prepared["hidden"]
    out = {}
    imputed = {part: decode(x, prepared) for part, x in imputed_scaled.items()}
    for part in ("train", "test"):
        rows = prepared[f"{part}_idx"]
        out[f"metric_armse_{part}"] = metrics.armse(ds.X[rows], imputed[part], hidden[rows], ds.schema, ds.ranges)
        out[f"metric_rmse_{part}"] = metrics.gain_rmse(prepared["X_true01"][rows], unit_scale(imputed[part], ds),
                                                       hidden[rows])
    tr, te = prepared["train_idx"], prepared["test_idx"]
    out["metric_accuracy"] = metrics.xgb_accuracy(imputed["train"], ds.y[tr], imputed["test"], ds.y[te],
                                                  dict(cfg["classifier"]), int(cfg["seed"]),
                                                  int(cfg.get("threads", 1)))
    out["metric_accuracy_complete"] = complete_accuracy(cfg, prepared)
    out["metric_realised_ratio"] = float(hidden.mean())
    return out


def score_draws(imputer, prepared: dict, cfg: dict) -> dict:
    """Diversity (mean per-entry std over draws) and the ARMSE of the mean draw, on test rows."""
    ds, te = prepared["dataset"], prepared["test_idx"]
    draws = imputer.sample(prepared["X_scaled"][te], int(cfg["n_draws"]))
    decoded = np.stack([prepared["scaler"].inverse(d) for d in draws])  # (n_draws, rows, d)
    unit = unit_scale(decoded, ds)
    mean_draw = ds.schema.to_codes(decoded.mean(axis=0))
    return {
        "metric_diversity_std": metrics.diversity(unit, prepared["hidden"][te]),
        "metric_armse_mean_draw": metrics.armse(ds.X[te], mean_draw, prepared["hidden"][te], ds.schema, ds.ranges),
    }


# ---------------------------------------------------------------------------- the cell
def run_cell(cfg, explicit: frozenset = frozenset(), force: bool = False) -> dict:
    """Run one cell and store its row; return the stored row when it is already done.

    Parameters
    ----------
    cfg : DictConfig or dict
        A composed config (``conf/config.yaml``).
    explicit : set of str
        Imputer arguments set on the command line; they win over the profile's cuts.
    force : bool
        Rerun even when a finished row exists.

    Raises
    ------
    CellError
        When the cell is ill-posed (bad ratio, mechanism limit, data errors). No row is written.
    """
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    params = resolve_params(cfg["imputer"], cfg["profile"]["name"], explicit)
    identity, key = cell_identity(cfg, params)
    results_dir = cfg["results_dir"]
    existing = store.read_row(results_dir, key)
    if existing is not None and existing.get("status") in store.DONE and not force:
        log.info("cell %s already done; skipped", key)
        return existing
    set_threads(int(cfg.get("threads", 1)))
    cell_started = time.perf_counter()
    try:
        prepared = prepare_cell(cfg)
    except (ValueError, OSError) as err:  # DataError, MaskError, CellError: the cell is ill-posed
        raise CellError(str(err)) from err

    device = "cpu"
    row = {**identity, "cell_key": key, "status": "ok", "error": None,
           **{f"param_{k}": _flat(v) for k, v in params.items() if k != "_target_"},
           "param_target": params.get("_target_"),
           "n_rows": prepared["dataset"].n_rows, "n_features": prepared["dataset"].schema.n_features,
           "git_sha": git_sha(), "hostname": platform.node(), **versions()}
    try:
        imputer = instantiate_imputer(params, random_state=int(cfg["seed"]), device=cfg.get("device", "auto"),
                                      verbose=bool(cfg.get("verbose", False)), dataset=identity["dataset"])
        device = getattr(imputer, "device_", None) or _requested_device(cfg)
        X, tr, te = prepared["X_scaled"], prepared["train_idx"], prepared["test_idx"]
        started = time.perf_counter()
        imputer.fit(X[tr], prepared["dataset"].y[tr], schema=prepared["dataset"].schema)
        row["fit_seconds"] = time.perf_counter() - started
        device = str(getattr(imputer, "device_", None) or device)
        started = time.perf_counter()
        imputed = {"train": imputer.transform(X[tr]), "test": imputer.transform(X[te])}
        row["transform_seconds"] = time.perf_counter() - started
        row.update(score(imputed, prepared, cfg))
        if hasattr(imputer, "_sample"):
            row.update(score_draws(imputer, prepared, cfg))
        for name, value in (getattr(imputer, "info_", None) or {}).items():
            if np.isscalar(value):
                row[f"info_{name}"] = _flat(value)
        trace = getattr(imputer, "trace_", None)
        if trace:  # per-iteration trace (e.g. Meta-GAIN's β, γ, η): a file beside the flat row
            path = Path(results_dir) / "traces" / f"{key}.json"
            store.write_json_atomic(path, trace)
            row["trace_file"] = str(path)
    except MissingExtraError as err:
        row.update(status="skipped", error=str(err))
    except Exception as err:  # noqa: BLE001 - any imputer failure becomes a failure row
        row.update(status="failed", error=f"{type(err).__name__}: {err}",
                   traceback="".join(traceback.format_exception(err))[-4000:])
        log.error("cell %s failed: %s", key, row["error"])
    row["device"] = str(device)
    row["cell_seconds"] = time.perf_counter() - cell_started
    row["peak_memory_mb"] = peak_memory_mb(str(device))
    store.write_row(results_dir, row)
    return row


def _requested_device(cfg: dict) -> str:
    from metagain.base import resolve_device

    return resolve_device(cfg.get("device", "auto"))


def _flat(value):
    """Row values stay scalars: lists/dicts become their JSON-ish text."""
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    return value
