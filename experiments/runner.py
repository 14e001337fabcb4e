"""One cell of the benchmark: load → subsample → split → mask → scale → fit → transform → score.

:func:`run_cell` takes a composed config (see ``conf/config.yaml``) and returns one flat result
row, which it also writes to the store. The Hydra entry point (``experiments/run.py``) is a thin
wrapper over it; :func:`compose_cell` builds the same config from Python (tests, scripts).
"""
from __future__ import annotations

import io
import json
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

from experiments import keys, metrics, store
from experiments.data import Dataset, DataError, DataFileError, Scaler, load_dataset, subsample
from experiments.masks import MaskError, draw_mask
from experiments.registry import CONF_DIR, imputer_arguments, instantiate_imputer
from experiments.scoring import SCORE_VERSION, complete_unit_scale, downstream_references, score, score_draws
from experiments.split import stratified_split
from baselines._base import MissingExtraError

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


class CellError(ValueError):
    """The cell itself is ill-posed (bad ratio, mechanism limit, bad dataset config): an ``invalid`` row."""


class EnvironmentFault(RuntimeError):
    """Nothing can run here as asked (data file unreadable, results folder unwritable).

    Not a property of the cell: no row is written, and a sweep stops once with this message.
    """


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
    try:
        dataset = load_dataset(cfg["dataset"], cfg.get("data_dir"))
    except DataFileError as err:
        raise EnvironmentFault(str(err)) from err
    except DataError as err:
        raise CellError(str(err)) from err
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


def cached_mask(cfg: dict, dataset: Dataset, train_idx: np.ndarray, X_true01: np.ndarray) -> np.ndarray:
    """The hidden-entry mask of (dataset, mechanism, ratio, seed, rows): drawn once, then reused."""
    mech = cfg["mechanism"]
    params = dict(mech.get("params") or {})
    key = keys.hash_payload({"dataset": cfg["dataset"], "data_hash": dataset.content_hash, "mechanism": mech,
                             "ratio": float(cfg["ratio"]), "seed": int(cfg["seed"]),
                             "max_rows": cfg["profile"].get("max_rows"), "n_rows": dataset.n_rows,
                             "score_version": SCORE_VERSION})
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
    buffer = io.BytesIO()
    np.savez_compressed(buffer, hidden=hidden)
    store.write_bytes_atomic(path, buffer.getvalue())
    return hidden


def complete_accuracy(cfg: dict, prepared: dict) -> float:
    """The same classifier on the uncorrupted data (cached per dataset, seed, rows, classifier)."""
    ds, tr, te = prepared["dataset"], prepared["train_idx"], prepared["test_idx"]
    key = {"seed": int(cfg["seed"])}
    return cached_scores(cfg, prepared, "complete", key, lambda: {"accuracy": metrics.xgb_accuracy(
        ds.X[tr], ds.y[tr], ds.X[te], ds.y[te], dict(cfg["classifier"]), int(cfg["seed"]),
        int(cfg.get("threads", 1)))})["accuracy"]


def reference_accuracies(cfg: dict, prepared: dict) -> dict:
    """Table 4's imputer-free references (:func:`scoring.downstream_references`), cached per mask."""
    key = {"seed": int(cfg["seed"]), "mechanism": cfg["mechanism"], "ratio": float(cfg["ratio"])}
    return cached_scores(cfg, prepared, "references", key, lambda: downstream_references(prepared, cfg))


def cached_scores(cfg: dict, prepared: dict, kind: str, key: dict, compute) -> dict:
    """``compute()`` once per (``kind``, ``key``, dataset content, rows, classifier, scoring version)."""
    digest = keys.hash_payload({**key, "dataset": cfg["dataset"], "data_hash": prepared["dataset"].content_hash,
                                "max_rows": cfg["profile"].get("max_rows"), "classifier": cfg["classifier"],
                                "score_version": SCORE_VERSION})
    path = Path(cfg["results_dir"]) / "cache" / f"{kind}-{cfg['dataset']['key']}-{digest}.json"
    cached = store.read_json(path) if path.exists() else None
    if cached is not None:
        return cached
    scores = compute()
    store.write_json_atomic(path, scores)
    return scores


# ---------------------------------------------------------------------------- the cell
def cell_key_of(cfg: dict) -> tuple[dict, dict, dict, str]:
    """``(identity, imputer params, key payload, cell key)`` of a composed config (Hydra has merged
    the profile's budget and any command-line override into ``cfg["imputer"]``)."""
    params = imputer_arguments(cfg["imputer"])
    try:
        payload = keys.cell_payload(cfg, params)
    except DataFileError as err:
        raise EnvironmentFault(str(err)) from err
    return keys.cell_identity(cfg), params, payload, keys.hash_payload(payload)


def base_row(cfg: dict, identity: dict, params: dict, actual: dict, key: str) -> dict:
    """The columns every row has, whatever its status: identity, key, versions, variant marks.

    ``actual`` is the cell's key payload (:func:`keys.cell_payload`), compared with the canonical one.
    """
    canonical = keys.canonical_payload(identity, cfg.get("data_dir"))
    differences = [] if canonical is None else keys.payload_differences(actual, canonical)
    return {**identity, "cell_key": key, "status": "ok", "error": None,
            "variant": canonical is None or bool(differences),
            "overrides": "; ".join(differences) if canonical is not None else "no committed config",
            "version_imputer": actual["imputer_version"], "version_score": actual["score_version"],
            "data_hash": actual["data_hash"],
            **{f"param_{k}": _flat(v) for k, v in params.items() if k != "_target_"},
            "param_target": params.get("_target_"),
            "git_sha": git_sha(), "hostname": platform.node(), **versions()}


def run_cell(cfg, force: bool = False) -> dict:
    """Run one cell and store its row; serve the stored row when the cell is already done.

    Parameters
    ----------
    cfg : DictConfig or dict
        A composed config (``conf/config.yaml``).
    force : bool
        Rerun even when a row with this key exists.

    Returns
    -------
    dict
        The row, with ``served`` set to ``"cached"`` when it came from the store (the stored
        file has no ``served`` column) and ``"run"`` when it was computed now.

    Raises
    ------
    EnvironmentFault
        When nothing can run here (data file missing or corrupt, results folder unwritable).
        An ill-posed cell is not raised: it becomes an ``invalid`` row.
    """
    return run_group([cfg], force)[0]


def run_group(cfgs: list, force: bool = False) -> list[dict]:
    """Run several cells, training the fits that can share one batched model together.

    Each cell is prepared, fitted, scored and stored as :func:`run_cell` would; the fits of cells
    whose imputer class has ``_fit_batched`` and whose parameters (but the seed) and data shapes
    agree are trained as one computation (``BaseImputer.fit_group``), and each fit's numbers are
    those it gets alone. A cell's row is written as soon as it is scored, so a killed group
    resumes per cell; a fit that fails (a diverged model) fails its own row only. Rows of a group
    of two or more record ``group_size``, ``group_seconds`` (the group's training time) and their
    share of it as ``fit_seconds``. Returns the rows in the order of ``cfgs``.
    """
    cells, rows = [], [None] * len(cfgs)
    for i, cfg in enumerate(cfgs):
        cell = _start_cell(cfg, force)
        if "row" in cell:
            rows[i] = cell["row"]
        else:
            cells.append((i, cell))
    for members in _fit_groups([cell for _, cell in cells]):
        _fit_together(members)
    for i, cell in cells:
        rows[i] = _finish_cell(cell)
    return rows


def _start_cell(cfg, force: bool) -> dict:
    """Key, cache look-up, data and imputer of one cell; ``{"row": …}`` when it is already decided."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    results_dir = cfg["results_dir"]
    identity, params, payload, key = cell_key_of(cfg)
    existing = store.find_row(results_dir, key)
    if existing is not None and existing.get("status") in store.SERVED and not force:
        return {"row": {**existing, "served": "cached"}}
    try:
        store.check_writable(results_dir)
    except PermissionError as err:
        raise EnvironmentFault(str(err)) from err
    set_threads(int(cfg.get("threads", 1)))
    cell = {"cfg": cfg, "started": time.perf_counter(), "device": "cpu", "imputer": None, "fit_error": None}
    row = base_row(cfg, identity, params, payload, key)
    try:
        prepared = prepare_cell(cfg)
    except OSError as err:  # a mask could not be cached, the data could not be read
        raise EnvironmentFault(str(err)) from err
    except ValueError as err:  # CellError, and any other refusal of the cell's settings
        row.update(status="invalid", error=str(err), cell_seconds=time.perf_counter() - cell["started"])
        _write(results_dir, row)
        return {"row": {**row, "served": "run"}}
    row.update(n_rows=prepared["dataset"].n_rows, n_features=prepared["dataset"].schema.n_features)
    cell.update(prepared=prepared, pending=row, prepare_seconds=time.perf_counter() - cell["started"])
    try:
        try:
            cell["imputer"] = instantiate_imputer(params, random_state=int(cfg["seed"]),
                                                  device=cfg.get("device", "auto"),
                                                  verbose=bool(cfg.get("verbose", False)),
                                                  dataset=identity["dataset"])
        except (TypeError, ValueError, ImportError, AttributeError) as err:  # the yaml cannot build it
            raise CellError(f"cannot build imputer {identity['imputer']!r}: {err}") from err
        cell["device"] = getattr(cell["imputer"], "device_", None) or _requested_device(cfg)
    except Exception as err:  # noqa: BLE001 - recorded in the cell's row by _finish_cell
        cell["fit_error"] = err
    return cell


def _fit_groups(cells: list[dict]) -> list[list[dict]]:
    """The cells to fit together: one list per batched class and ``_group_key``, else one per cell."""
    groups: dict = {}
    for n, cell in enumerate(cells):
        imputer = cell["imputer"]
        if cell["fit_error"] is not None:
            continue
        key = ("alone", n)
        if hasattr(type(imputer), "_fit_batched"):
            X, y = _fit_data(cell)
            key = (type(imputer), imputer._group_key(X, y, cell["prepared"]["dataset"].schema))
        groups.setdefault(key, []).append(cell)
    return list(groups.values())


def _fit_data(cell: dict):
    prepared = cell["prepared"]
    return prepared["X_scaled"][prepared["train_idx"]], prepared["dataset"].y[prepared["train_idx"]]


def _fit_together(members: list[dict]) -> None:
    """Fit the members' imputers (one batched computation when there are several); errors stay per cell."""
    started = time.perf_counter()
    if len(members) == 1:
        cell = members[0]
        X, y = _fit_data(cell)
        try:
            cell["imputer"].fit(X, **fit_arguments(cell["imputer"], y, cell["prepared"]["dataset"].schema))
        except Exception as err:  # noqa: BLE001
            cell["fit_error"] = err
    else:
        data = [_fit_data(cell) for cell in members]
        errors = type(members[0]["imputer"]).fit_group(
            [cell["imputer"] for cell in members], [X for X, _ in data], [y for _, y in data],
            [cell["prepared"]["dataset"].schema for cell in members])
        for cell, error in zip(members, errors):
            cell["fit_error"] = error
    seconds = time.perf_counter() - started
    for cell in members:
        cell["pending"]["fit_seconds"] = seconds / len(members)
        if len(members) > 1:
            cell["pending"].update(group_size=len(members), group_seconds=seconds)


def _finish_cell(cell: dict) -> dict:
    """Transform, score and store one fitted cell (or its failure row)."""
    cfg, row, prepared, imputer = cell["cfg"], cell["pending"], cell["prepared"], cell["imputer"]
    results_dir, key = cfg["results_dir"], row["cell_key"]
    device, started_finish = cell["device"], time.perf_counter()
    try:
        if cell["fit_error"] is not None:
            raise cell["fit_error"]
        device = str(getattr(imputer, "device_", None) or device)
        X, tr, te = prepared["X_scaled"], prepared["train_idx"], prepared["test_idx"]
        started = time.perf_counter()
        imputed = {"train": imputer.transform(X[tr]), "test": imputer.transform(X[te])}
        row["transform_seconds"] = time.perf_counter() - started
        row.update(score(imputed, prepared, cfg))
        row["metric_accuracy_complete"] = complete_accuracy(cfg, prepared)
        row.update(reference_accuracies(cfg, prepared))
        if callable(getattr(imputer, "_sample", None)):
            row.update(score_draws(imputer.sample(X[te], int(cfg["n_draws"])), prepared))
        for name, value in (getattr(imputer, "info_", None) or {}).items():
            row[f"info_{name}"] = _flat(value)
        trace = getattr(imputer, "trace_", None)
        if trace:  # per-iteration trace (e.g. Meta-GAIN's β, γ, η): a file beside the flat row
            path = Path(results_dir) / "traces" / f"{key}.json"
            store.write_json_atomic(path, trace)
            row["trace_file"] = str(path)
    except CellError as err:
        row.update(status="invalid", error=str(err))
    except MissingExtraError as err:
        row.update(status="skipped", error=str(err))
    except Exception as err:  # noqa: BLE001 - any imputer failure becomes a failure row
        row.update(status="failed", error=f"{type(err).__name__}: {err}",
                   traceback="".join(traceback.format_exception(err))[-4000:])
        log.error("cell %s failed: %s", key, row["error"])
    row["device"] = str(device)
    # its own work: preparing, its share of the (group's) training, scoring
    row["cell_seconds"] = cell["prepare_seconds"] + row.get("fit_seconds", 0.0) \
        + time.perf_counter() - started_finish
    row["peak_memory_mb"] = peak_memory_mb(str(device))  # of the process: the group's peak in a group
    _write(results_dir, row)
    return {**row, "served": "run"}


def fit_arguments(imputer, y, schema) -> dict:
    """``y`` and ``schema`` for ``imputer.fit``, each only where its signature takes it."""
    import inspect

    accepted = inspect.signature(imputer.fit).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    return {name: value for name, value in (("y", y), ("schema", schema))
            if name in accepted or (takes_any and name == "schema")}


def _write(results_dir, row: dict) -> None:
    try:
        store.write_row(results_dir, row)
    except OSError as err:
        raise EnvironmentFault(f"Cannot write the row of cell {row['cell_key']} under {results_dir}: {err}") from err


def _requested_device(cfg: dict) -> str:
    from baselines._base import resolve_device

    return resolve_device(cfg.get("device", "auto"))


def _flat(value):
    """Row values stay scalars: numpy scalars become Python ones, lists/dicts/arrays JSON text."""
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=_flat, separators=(",", ":"))
    return value
