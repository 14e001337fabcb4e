"""Cost model of a cell: per-unit costs measured on this machine × the cell's budget and shape.

    python -m experiments.costs --calibrate            # measure (about 1–2 min), write the cache
    python -m experiments.costs --show --profile paper # seconds per cell, imputer × dataset
    make costs                                          # the same as --calibrate

**Calibration** (:func:`calibrate`) runs every imputer's real code (``build_imputer`` with its yaml,
on the CPU, one thread) at tiny budgets and times it in CPU seconds (``time.process_time``: on a
busy machine wall time would measure the neighbours). Two budgets per shape (best of two runs
each) separate a fixed cost from the per-unit slope; two or three shapes give the slope as a
function of the width:

=================  ==========================================  ===========================================
family             unit timed (shapes)                         cell cost
=================  ==========================================  ===========================================
GAIN               iteration (synthetic d = 8, 48)             iterations × c(d) + eval rows × r(d)
Meta-GAIN (8)      iteration of its own code, 2nd generator    (iterations + G·S) × c(d) + (1 + G) × fixed
                   pass included (d = 8, 48); transform per    (G = |grid|^active weights, S =
                   row × draw                                  search_iterations or iterations // 10);
                                                               rows × impute_draws × r(d) + 10 draws
MIDAE / VAEI       optimiser step (d = 8, 48)                  epochs × ⌈n / batch⌉ × c(d) + eval rows × r(d)
HIVAE              step (8 num, 32 num, 8 num + 8 cat)         epochs × ⌊n / batch⌋ × c(d_num, d_cat)
ReMasker           step (d = 8, 32, 96: quadratic in the       epochs (or the ``max_steps`` cap) × ⌈n/64⌉
                   tokens); letter's own architecture          × c(d) × arch factor + rows × r(d)
                   (reference configs.py) as a factor
MissFI             one sweep of the real imputer **on each     sweeps × (F + ntree × (a + b·n_obs));
                   dataset's real rows** (≤ 6 000 rows,        sweeps: the store's info_n_iter, else
                   2 and k trees)                              the paper rows' mean (``MISSFI_SWEEPS``)
XGBI               its column models at the profiles' tree     max_iter × (round(n_obs, trees) + replay)
                   budgets on 4 real columns of each dataset,  (the tol rule never fired on the paper
                   at ≤ 1 600 and ≤ 16 000 rows                data: 10 rounds)
KNNI               fit + both transforms (2 000–4 000 rows,    ∝ (n_train + n_test) · n_train · d, numeric
                   numeric and categorical)                    and voting passes apart
PCAI               SVD pass (passes forced)                    (1 + ncp_max) × 70 passes × (a + b·n·d·min(n, d))
MICE               fit + transforms + 10 draws, 2 rounds       max_iter × (d, n·d², n·d³, eval rows · d²)
every cell         run_cell of the mean imputer; loading and   fixed + load + accuracy(n_train); the first
                   the XGBoost accuracy on each real dataset   cell of a mask also 3 accuracies (shared)
=================  ==========================================  ===========================================

Batched families (GAIN, Meta-GAIN, MIDAE, VAEI, HIVAE, ReMasker) also get ``group_ratio``: the CPU
time per training unit of 15 fits trained as one group (``fit_group``) over that of one fit. A
cell that trains in a group of K (the grouped sweeper: seeds × mechanisms for Tables 1–3, seeds ×
ratios for Figure 2, seeds for Table 5) is charged its share, t(K) / (K · t(1)) with t(K) = a + b·K
fitted to that ratio (:func:`group_factor`); ``make plan`` and the estimate line group cells as
``reproduce`` launches them.

Tree costs depend on the data's values (few distinct values make cheap trees: 6× on connect
against uniform noise, and XGBI's later rounds see continuous imputations, 1.5× a mean-filled
round on letter), so MissFI, XGBI and the XGBoost accuracy are probed on each dataset of the
profiles; a dataset without a probe gets the median per column and row. Known limits: MissFI's
sweep count is data dependent (4–10 per cell at the paper budget); PCAI's passes are assumed; MICE is timed
at its 10 rounds (its tol rule stops some datasets earlier); Figure 2's ratios scale the tree
models by the observed rows only.

**Estimate** (:func:`estimate_seconds`): the imputer's budget at the profile
(``resolve_params``: the profile's ``conf/budget`` cuts) and the dataset's shape at the profile
(``max_rows`` subsample, 80 % training rows) put into the family's formula, plus the per-cell
overhead. :class:`CostModel` prefers the store: where it has ok rows of the same (imputer,
dataset, profile) and imputer version, their mean ``cell_seconds`` is used, scaled by the model's
ratio when the row's budget differs. Peak memory likewise (:meth:`CostModel.memory_mb`).

**GPU estimate** (:func:`gpu_estimate`, a line of ``make plan``): the deep families' training on one
GPU in eager PyTorch, from counts a CPU run can make (:func:`count_step_work`): kernels dispatched
per training unit (one stream for a whole group) and FLOPs per unit and model, fitted on the width
like the CPU cost; a group's time is steps × kernels × ``GPU_LAUNCH_S`` + its models' FLOPs /
``GPU_FLOPS``. Both rates are assumptions until a GPU times the CUDA path (scripts/gpu_check.sh).

**Cache**: ``results/cache/costs-<hostname>.json`` holds the measurements. Each imputer's entry is
keyed by its class ``version`` and its paper parameters apart from the budget; an entry whose key
changed (another version of Meta-GAIN) is measured again, alone, the next time an estimate needs
it; ``--calibrate`` measures everything again. ``--no-calibrate`` (here and in ``reproduce
--plan``) never measures: it uses the cache, else ``experiments/costs_default.json``, the
calibration of the machine the project was developed on (2 shared cores, see ``host`` in it).
"""
from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONF_PROFILES = ROOT / "conf" / "profile"
CACHE_DIR = ROOT / "results" / "cache"
DEFAULT_FILE = Path(__file__).with_name("costs_default.json")
FORMAT = 1

# SLURM resources: an array task's limit is the sweep's largest cell estimate × TIME_MARGIN (CPU
# seconds measured here; a cluster core may be slower, wall ≥ CPU, the model is ±30 %), never
# under MIN_TIMEOUT_MIN; its memory the largest peak × MEM_MARGIN, never under MIN_MEM_GB.
TIME_MARGIN = 2.0
MIN_TIMEOUT_MIN = 60
MEM_MARGIN = 1.5
MIN_MEM_GB = 4
NIGHT_HOURS = 10.0  # a sweep longer than this (wall, here) is flagged for a GPU or a cluster
BASE_MEMORY_MB = 650.0  # a cell's process: Python, torch, XGBoost, scikit-learn (store: 420–600 MB)
N_DRAWS = 10  # config.yaml n_draws: sample(test, 10) for imputers that draw
CLASSIFIER = {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.3}  # config.yaml classifier

FAMILIES = {
    "baselines.mean.MeanImputer": "mean",
    "baselines.gain.GAINImputer": "gain",
    "metagain.imputer.MetaGAINImputer": "metagain",
    "baselines.midae.MIDAEImputer": "midae",
    "baselines.vaei.VAEImputer": "vaei",
    "baselines.hivae.HIVAEImputer": "hivae",
    "baselines.remasker.ReMaskerImputer": "remasker",
    "baselines.missfi.MissForestImputer": "missfi",
    "baselines.xgbi.XGBImputer": "xgbi",
    "baselines.knni.KNNImputer": "knni",
    "baselines.pcai.PCAImputer": "pcai",
    "baselines.mice.MICEImputer": "mice",
    "baselines.hyperimpute_wrapper.HyperImputeImputer": "hyperimpute",
}
# Budget arguments: they scale the cost, so they stay out of an entry's key.
BUDGET_KEYS = {"iterations", "weight_grid", "search_iterations", "epochs", "max_steps", "warmup_epochs",
               "ntree", "max_iter", "n_estimators", "impute_draws", "trajectory_every", "tol", "dataset"}
# MissForest sweeps at the paper budget: the mean info_n_iter of the committed paper rows (results/paper,
# every mechanism and seed run so far, 4–10 per cell); a dataset not listed gets DEFAULT_SWEEPS (their
# median), and the store's own rows win where it has them. The first guesses (4–6, shared/reviews/perf.md
# §1) were short: chess needs 8.7 sweeps, not 5, and its cells ran 68% over the model.
MISSFI_SWEEPS = {"wine": 5.4, "heart": 6.6, "balance": 5.7, "yeast": 5.9, "wireless": 7.4, "turkiye": 6.3,
                 "anuran": 6.0, "chess": 8.7, "valley": 4.9}
DEFAULT_SWEEPS = 6.0
PCAI_PASSES_PER_FIT = 70  # SVD passes per regularised-PCA fit (counted: 15–99 per fit on the paper data)
TABLE_FIGURE_SWEEPS = ("table1", "table2", "table3", "table4", "table5", "figure2")
STEPWISE = ("gain", "metagain", "midae", "vaei", "hivae", "remasker")  # the batched deep families
# The GPU estimate's two rates (module docstring, "GPU estimate"): assumptions, not measurements,
# until scripts/gpu_check.sh times the CUDA path (make bench there gives seconds per step: divide by
# the kernels per step).
GPU_LAUNCH_S = 8e-6  # host seconds per eager kernel (PyTorch dispatch + CUDA launch: 5–10 µs is typical)
GPU_FLOPS = 20e12    # sustained fp32 FLOP/s of these small batched matmuls (H100/H200 fp32 peak: 60–67e12)


# ---------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Shape:
    """What a cell's cost depends on: training/test rows, widths, categories, classes."""

    n_train: int
    n_test: int
    d_num: int
    categories: tuple = ()  # n_categories of each categorical column
    classes: int = 2

    @property
    def d(self) -> int:
        return self.d_num + len(self.categories)

    @property
    def d_cat(self) -> int:
        return len(self.categories)


def _dataset_spec(key: str) -> dict:
    from omegaconf import OmegaConf

    from experiments.registry import group_file

    path = group_file("dataset", key)
    if path is None:
        raise ValueError(f"There is no conf/dataset/{key}.yaml.")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


@lru_cache(maxsize=None)
def _load(key: str):
    from experiments.data import load_dataset

    return load_dataset(_dataset_spec(key), os.environ.get("METAGAIN_DATA_DIR") or None)


@lru_cache(maxsize=None)
def measure_shape(key: str, max_rows: int | None) -> Shape:
    """The shape a cell of ``key`` sees at ``max_rows`` (the runner's subsample and 80/20 split)."""
    from experiments.data import subsample
    from experiments.split import stratified_split

    dataset, _ = subsample(_load(key), max_rows)
    train, test = stratified_split(dataset.y, 0.2, 0)
    schema = dataset.schema
    cats = tuple(int(k) for k, c in zip(schema.n_categories, schema.is_categorical) if c)
    return Shape(int(train.size), int(test.size), int((~schema.is_categorical).sum()), cats,
                 int(np.unique(dataset.y).size))


def present_shapes(keys):
    """``(key, full-size Shape)`` of the datasets whose data can be read here, in order; a missing
    file is skipped (its cost then comes from the others: the median, or the synthetic formula)."""
    for key in keys:
        try:
            shape = measure_shape(key, None)
        except Exception:  # noqa: BLE001 - no data file here
            continue
        yield key, shape


def _shape_key(key: str, max_rows) -> str:
    return f"{key}@{max_rows if max_rows is not None else 'all'}"


# ---------------------------------------------------------------------------- small helpers
def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _nnls(features: list[list[float]], targets: list[float]) -> list[float]:
    """Non-negative least squares (columns scaled first, so tiny and huge features mix)."""
    from scipy.optimize import nnls

    A = np.asarray(features, dtype=float)
    scale = np.where(np.abs(A).max(axis=0) > 0, np.abs(A).max(axis=0), 1.0)
    coef, _ = nnls(A / scale, np.asarray(targets, dtype=float))
    return [float(c) for c in coef / scale]


def _dot(coef, feats) -> float:
    return float(sum(c * f for c, f in zip(coef, feats)))


def synthetic(n: int, d_num: int, categories=(), classes: int = 3, ratio: float = 0.2, seed: int = 0):
    """(X with NaN holes on [0, 1], y, schema): a smooth low-rank table with optional categoricals."""
    from baselines.schema import Schema

    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 3))
    width = d_num + len(categories)
    signal = factors @ rng.normal(size=(3, width)) + 0.3 * rng.normal(size=(n, width))
    X = 1 / (1 + np.exp(-signal))
    for i, k in enumerate(categories):
        j = d_num + i
        X[:, j] = np.minimum(np.floor(X[:, j] * k), k - 1) / max(k - 1, 1)
    y = np.digitize(factors[:, 0] + 0.5 * factors[:, 1], np.linspace(-1.0, 1.0, classes - 1))
    hidden = rng.random(X.shape) < ratio
    hidden[rng.integers(n, size=width), np.arange(width)] = False  # no column entirely hidden
    hidden[0] = False
    X[hidden] = np.nan
    schema = Schema(kinds=("numeric",) * d_num + ("nominal",) * len(categories),
                    n_categories=(0,) * d_num + tuple(int(k) for k in categories))
    return X, y, schema


def _real(key: str, n: int, seed: int = 0):
    """``n`` random rows of dataset ``key`` on its [0, 1] scale with 20 % MCAR holes."""
    from experiments.scoring import complete_unit_scale

    dataset = _load(key)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(dataset.n_rows)[:n])
    X = complete_unit_scale(dataset)[rows].copy()
    hidden = rng.random(X.shape) < 0.2
    hidden[0] = False
    X[hidden] = np.nan
    return X, dataset.y[rows], dataset.schema


def _warm_up() -> None:
    """First calls of torch, XGBoost and scikit-learn's forests (lazy imports, allocators) untimed."""
    import torch
    from sklearn.ensemble import RandomForestRegressor
    from xgboost import XGBRegressor

    X = np.nan_to_num(synthetic(200, 6, ())[0])
    _build("gain", iterations=5).fit(X)
    XGBRegressor(n_estimators=5, n_jobs=1, verbosity=0).fit(X[:, 1:], X[:, 0])
    RandomForestRegressor(n_estimators=5, n_jobs=1).fit(X[:, 1:], X[:, 0])
    torch.set_num_threads(1)


def _fit(imputer, X, y, schema):
    from experiments.runner import fit_arguments

    return imputer.fit(X, **fit_arguments(imputer, y, schema))


def _build(name: str, **overrides):
    from experiments.registry import build_imputer

    return build_imputer(name, "paper", **{"random_state": 0, "device": "cpu", "verbose": False, **overrides})


# ---------------------------------------------------------------------------- calibration per family
def _slope(name, data, budget_key, budgets, units, extra=None, repeat: int = 2):
    """Fit time at two budgets (best of ``repeat``) → (fixed seconds, seconds per unit), and the
    larger fitted imputer."""
    X, y, schema = data
    times, fitted = [], None
    for budget in budgets:
        imputer = _build(name, **{budget_key: budget, **(extra or {})})
        times.append(min(_cpu(lambda: _fit(imputer, X, y, schema)) for _ in range(repeat)))
        fitted = imputer
    u1, u2 = units(budgets[0]), units(budgets[1])
    per = max(times[1] - times[0], 1e-9) / (u2 - u1)
    return max(times[0] - per * u1, 0.0), per, fitted


def _per_row(imputer, X_eval, draws: int = 1) -> float:
    return _cpu(lambda: imputer.transform(X_eval)) / (X_eval.shape[0] * max(draws, 1))


def _step_plan(family: str, params: dict):
    """(shapes as (rows, d_num, categories), budget knob, two budgets, units(rows, budget), extra
    arguments) with which a stepwise family is timed and counted."""
    if family == "gain":
        return [((600, 8, ()), (600, 48, ())), "iterations", (40, 340), lambda n, b: b, {}]
    if family == "metagain":
        with_meta = bool(params.get("use_meta"))
        budgets = (6, 30) if with_meta else (20, 140)
        return [((600, 8, ()), (600, 48, ())), "iterations", budgets, lambda n, b: b,
                {} if with_meta else {"weight_grid": None}]
    if family == "midae":
        return [((320, 8, ()), (320, 48, ())), "epochs", (4, 40), lambda n, b: b * math.ceil(n / 32), {}]
    if family == "vaei":
        return [((1000, 8, ()), (1000, 48, ())), "epochs", (6, 56), lambda n, b: b * math.ceil(n / 250), {}]
    if family == "hivae":
        return [((400, 8, ()), (400, 32, ()), (400, 8, (4,) * 8)), "epochs", (3, 25),
                lambda n, b: b * (n // 100), {}]
    if family == "remasker":
        return [((128, 8, ()), (128, 32, ()), (128, 96, ())), "epochs", (1, 5),
                lambda n, b: b * math.ceil(n / 64), {"warmup_epochs": 0, "max_steps": None}]
    raise ValueError(family)  # pragma: no cover - guarded by the caller


def _calibrate_stepwise(name: str, family: str, params: dict) -> dict:
    """Iteration/epoch families: per-unit cost at a few widths, fixed cost, per-row eval cost."""
    shapes, knob, budgets, units, extra = _step_plan(family, params)
    fixed, points = [], []
    for rows, d_num, cats in shapes:
        data = synthetic(rows, d_num, cats)
        f, per, fitted = _slope(name, data, knob, budgets, lambda b: units(rows, b), extra)
        X_eval = synthetic(1500, d_num, cats, seed=1)[0]
        draws = int(params.get("impute_draws") or 0) if family == "metagain" else 1
        points.append({"d_num": d_num, "d_cat": len(cats), "per_unit": per,
                       "per_row": _per_row(fitted, X_eval, draws)})
        fixed.append(f)
    features = _unit_features(family)
    group = _group_ratio(name, synthetic(*shapes[0]), knob, budgets, extra)
    entry = {"fixed": float(np.median(fixed)), "points": points, "group_ratio": group,
             "per_unit": _nnls([features(p["d_num"], p["d_cat"]) for p in points], [p["per_unit"] for p in points]),
             "per_row": _nnls([features(p["d_num"], p["d_cat"]) for p in points], [p["per_row"] for p in points]),
             "gpu": _calibrate_gpu(name, family, params)}
    if family == "remasker":
        entry["arch_factor"] = _remasker_arch_factors(name, entry)
    return entry


def count_step_work(fit) -> tuple[int, float]:
    """(kernels, FLOPs) of running ``fit()``: every non-view aten op it dispatches, and the
    floating-point operations torch's flop counter assigns to its matrix products."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class _Kernels(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view:  # a view launches nothing
                _Kernels.count += 1
            return func(*args, **(kwargs or {}))

    _Kernels.count = 0
    flops = FlopCounterMode(display=False)
    with flops, _Kernels():
        fit()
    return _Kernels.count, float(flops.get_total_flops())


def _calibrate_gpu(name: str, family: str, params: dict) -> dict:
    """Kernels per training unit (one model; a group dispatches the same kernels for all) and
    FLOPs per unit and model as a function of the width, by counting two budgets on the CPU."""
    shapes, knob, budgets, units, extra = _step_plan(family, params)
    kernels, flops, widths = [], [], []
    for rows, d_num, cats in shapes:
        X, y, schema = synthetic(rows, d_num, cats)
        counted = [count_step_work(lambda b=b: _fit(_build(name, **{knob: b, **extra}), X, y, schema))
                   for b in budgets]
        du = units(rows, budgets[1]) - units(rows, budgets[0])
        kernels.append((counted[1][0] - counted[0][0]) / du)
        flops.append((counted[1][1] - counted[0][1]) / du)
        widths.append(_unit_features(family)(d_num, len(cats)))
    return {"kernels": float(np.median(kernels)), "flops": _nnls(widths, flops)}


GROUP = 15  # fits per batched group at which the ratio is measured (Tables 1–3 of the paper profile)


def _group_ratio(name: str, data, knob: str, budgets, extra) -> float:
    """CPU time per training unit of ``GROUP`` fits trained as one batched group over that of one fit."""
    X, y, schema = data
    rng = np.random.default_rng(7)

    def run(k, budget):
        imputers = [_build(name, **{knob: budget}, **(extra or {}), random_state=seed) for seed in range(k)]
        holes = [np.where(rng.random(X.shape) < 0.05, np.nan, X) for _ in range(k)]  # each fit its own mask
        holes = [np.where(np.isnan(h).all(axis=0), X, h) for h in holes]
        return _cpu(lambda: type(imputers[0]).fit_group(imputers, holes, [y] * k, [schema] * k))

    run(GROUP, budgets[0])  # first-call costs outside the timing
    per = [run(k, budgets[1]) - run(k, budgets[0]) for k in (1, GROUP)]
    return float(per[1] / per[0]) if per[0] > 0 and per[1] > 0 else float(GROUP)


def group_factor(entry: dict | None, size: int) -> float:
    """A cell's share of its group's training time, relative to training alone.

    Time of K fits as one group is modelled as a + b·K (a fixed cost per step shared by the group,
    b per model), fitted to the calibrated ratio at K = ``GROUP``; the share is t(K) / (K · t(1)).
    Without a calibrated ratio (an old cache) it is 1.
    """
    ratio = (entry or {}).get("group_ratio")
    if ratio is None or size <= 1:
        return 1.0
    slope = (float(ratio) - 1.0) / (GROUP - 1)
    return min(1.0, (1.0 + slope * (size - 1)) / size)


def _unit_features(family: str):
    if family == "remasker":  # tokens: attention grows with d²
        return lambda dn, dc: [1.0, dn + dc, (dn + dc) ** 2]
    if family == "hivae":     # per-column likelihood heads, categorical ones one-hot
        return lambda dn, dc: [1.0, dn, dc]
    return lambda dn, dc: [1.0, dn + dc]


def _remasker_arch_factors(name: str, entry: dict) -> dict:
    """Per-step cost of each dataset-specific architecture (reference configs.py) over the default's."""
    from baselines.remasker import DATASET_OVERRIDES

    factors = {}
    for key, shape in present_shapes(DATASET_OVERRIDES):  # a dataset not here keeps the default
        data = synthetic(128, shape.d, ())
        _, per, _ = _slope(name, data, "epochs", (1, 3), lambda b: b * 2,
                           {"warmup_epochs": 0, "max_steps": None, "dataset": key})
        factors[key] = per / max(_dot(entry["per_unit"], _unit_features("remasker")(shape.d, 0)), 1e-9)
    return factors


def _calibrate_trees(name: str, family: str, datasets) -> dict:
    """MissFI: one sweep (``max_iter=1``) of the real imputer over each dataset's real rows.

    Times at (n1, k1), (n1, k2), (n2, k2) trees and rows (n1 = min(1 500, n/3), n2 = min(6 000, n))
    give the sweep's fixed cost and the per-tree cost a + b·rows (random-forest trees are
    independent: linear in ``ntree``); k2 is chosen so that the (n1, k2) run takes about 0.3 s.
    """
    knob = "ntree" if family == "missfi" else "n_estimators"
    k1 = 2
    probes = {}
    for key, shape in present_shapes(datasets):  # a dataset not here gets the others' median
        n_full = shape.n_train
        n1, n2 = min(1500, max(60, n_full // 3)), min(6000, n_full)

        def run(n, k):
            X, y, schema = _real(key, n)
            imputer = _build(name, **{knob: k, "max_iter": 1})
            return _cpu(lambda: _fit(imputer, X, y, schema))

        t1 = run(n1, k1)
        k2 = int(min(40, max(k1 + 4, k1 + math.ceil(0.3 / max(t1 / k1, 1e-4)))))
        t2, t3 = run(n1, k2), run(n2, k2)
        p1 = max(t2 - t1, 1e-6) / (k2 - k1)  # seconds per tree (all columns) at n1
        fixed = max(t1 - k1 * p1, 0.0)
        p2 = max(t3 - fixed, 1e-6) / k2
        if n2 > 1.2 * n1:
            b = max((p2 - p1) / (n2 - n1), 0.0)
            a = max(p1 - b * n1, 0.0)
        else:  # a small dataset: proportional to rows below its size
            a, b = 0.0, p1 / n1
        probes[key] = {"fixed": fixed, "a": a, "b": b, "n1": n1, "n2": n2, "k": [k1, k2],
                       "d": shape.d, "times": [t1, t2, t3]}
    return {"datasets": probes}


def _imputed_like(X: np.ndarray, schema) -> np.ndarray:
    """``X`` with its holes filled as a later XGBI round sees them: each column's linear prediction
    from the others (continuous, smooth in the other columns, like the boosters' own predictions;
    categorical ones snapped to a code). Histogram trees cost more on the new distinct values:
    letter's 16-level columns make a round 1.5× dearer than mean-filled ones, and a random fill
    would overshoot on continuous data (valley: 1.7×)."""
    holes = np.isnan(X)
    filled = np.where(holes, np.nanmean(X, axis=0), X)
    design = np.column_stack([filled, np.ones(len(filled))])
    out = filled.copy()
    for j in np.flatnonzero(holes.any(axis=0)):
        h = holes[:, j]
        others = [k for k in range(design.shape[1]) if k != j]
        coef, *_ = np.linalg.lstsq(design[~h][:, others], X[~h, j], rcond=None)
        predicted = np.clip(design[h][:, others] @ coef, 0.0, 1.0)
        if schema.is_categorical[j]:
            step = max(int(schema.n_categories[j]) - 1, 1)
            predicted = np.rint(predicted * step) / step
        out[h, j] = predicted
    return out


def _calibrate_xgbi(name: str, datasets) -> dict:
    """XGBI: each dataset's boosters at the profiles' tree budgets, timed on a few real columns.

    XGBImputer's own ``_fit_column`` (other columns filled as a later round sees them, the
    column's observed rows) and the prediction of its holes, on up to four evenly spaced columns:
    at every profile's ``n_estimators`` on n2 = min(1 600, n/2) real rows, and at the paper's on
    n3 = min(16 000, n) rows; a round is d/|columns| times their sum, affine in rows between n2
    and n3, the other budgets in proportion. Timing the real budget at the real size matters:
    boosting is not linear in trees (later trees fit smaller residuals: on letter 100 trees cost
    ~4× what 11 do; valley's stop splitting after ~30) nor monotone in rows (letter: 1 500 rows
    cost more than 6 000).
    """
    from experiments.registry import budget_cuts, load_imputer_conf

    conf = load_imputer_conf(name)
    full = int(conf.get("n_estimators", 100))
    cuts = [budget_cuts(name, p.stem) for p in sorted((CONF_PROFILES).glob("*.yaml"))]
    budgets = sorted({int(v["n_estimators"]) for v in cuts if "n_estimators" in v} | {full})
    probes = {}
    for key, shape in present_shapes(datasets):  # a dataset not here gets the others' median
        n_full = shape.n_train
        n2, n3 = min(1600, max(60, n_full // 2)), min(16000, n_full)
        X3, _, schema = _real(key, n3)
        d = X3.shape[1]
        columns = sorted({int(j) for j in np.linspace(0, d - 1, min(4, d))})
        times, replay = {}, 0.0
        for n in (n2, n3):
            X = X3[:n]
            imputer = _build(name)
            imputer.schema_ = schema
            filled = _imputed_like(X, schema)
            for trees in (budgets if n == n2 else [full]):
                imputer.n_estimators = trees
                fit = predict = 0.0
                for j in columns:
                    observed = ~np.isnan(X[:, j])
                    others = np.arange(d) != j
                    model = []
                    fit += _cpu(lambda: model.append(imputer._fit_column(filled[observed][:, others],
                                                                         X[observed, j], j)))
                    # the round imputes the column's holes; transform replays that on new rows
                    predict += _cpu(lambda: model[0].predict(filled[~observed][:, others]))
                times[(n, trees)] = (fit + predict) * d / len(columns)
                if n == n3:
                    replay = predict * d / len(columns)
        slope = max((times[(n3, full)] - times[(n2, full)]) / (n3 - n2), 0.0)
        probes[key] = {"n2": n2, "n3": n3, "d": d, "columns": columns, "full": full, "slope": slope,
                       "round_n3": times[(n3, full)], "replay": replay,
                       "budget_ratio": {str(t): times[(n2, t)] / max(times[(n2, full)], 1e-9) for t in budgets}}
    return {"datasets": probes}


def _calibrate_knni(name: str) -> dict:
    """KNNI's whole work (fit, transform of the training and the test rows) on synthetic shapes."""
    points = []
    for n, d_num, cats in ((2000, 8, ()), (4000, 8, ()), (2000, 32, ()), (2000, 0, (3,) * 12),
                           (4000, 0, (3,) * 12), (2000, 0, (3,) * 40), (2000, 6, (3,) * 8)):
        X, y, schema = synthetic(int(n * 1.25), d_num, cats)
        train, test = X[:n], X[n:]
        imputer = _build(name)
        seconds = _cpu(lambda: (_fit(imputer, train, y[:n], schema), imputer.transform(train),
                                imputer.transform(test)))
        points.append({"n_train": n, "n_test": X.shape[0] - n, "d_num": d_num, "d_cat": len(cats),
                       "seconds": seconds})
    coef = _nnls([_knni_features(p["n_train"], p["n_test"], p["d_num"], p["d_cat"]) for p in points],
                 [p["seconds"] for p in points])
    return {"coef": coef, "points": points}


def _knni_features(n_train, n_test, d_num, d_cat):
    """Distances of every receiver (all rows have a hole at 20 %) to every donor: scikit-learn's
    pass for numeric columns, ours for the categorical vote, and the vote's per-column gathers."""
    pairs = (n_train + n_test) * n_train
    d = d_num + d_cat
    return [1.0, pairs * d * (d_num > 0), pairs * d * (d_cat > 0), pairs * d_cat]


def _calibrate_pcai(name: str) -> dict:
    """Seconds per SVD pass of regularised PCA (passes forced with threshold 0) on synthetic shapes."""
    points = []
    for n, d in ((2000, 8), (2000, 48), (6000, 16)):
        X, y, schema = synthetic(n, d, ())
        times = []
        for passes in (5, 25):
            imputer = _build(name, ncp=2, threshold=0.0, max_iter=passes)
            times.append(_cpu(lambda: _fit(imputer, X, y, schema)))
        points.append({"n": n, "d": d, "per_pass": max(times[1] - times[0], 1e-9) / 20})
    return {"per_pass": _nnls([[1.0, p["n"] * p["d"] * min(p["n"], p["d"])] for p in points],
                              [p["per_pass"] for p in points]), "points": points}


def _calibrate_mice(name: str) -> dict:
    """MICE's whole work (two chained-equation fits, transforms, 10 posterior draws), 2 rounds."""
    points = []
    for n, d in ((1000, 8), (1000, 32), (4000, 8), (4000, 32), (1000, 64)):
        X, y, schema = synthetic(int(n * 1.25), d, ())
        train, test = X[:n], X[n:]
        imputer = _build(name, max_iter=2, tol=0.0)
        seconds = _cpu(lambda: (_fit(imputer, train, y[:n], schema), imputer.transform(train),
                                imputer.transform(test), imputer.sample(test, N_DRAWS)))
        points.append({"n_train": n, "n_test": X.shape[0] - n, "d": d, "rounds": 2, "seconds": seconds})
    return {"coef": _nnls([_mice_features(p["rounds"], p["n_train"], p["n_test"], p["d"]) for p in points],
                          [p["seconds"] for p in points]), "points": points}


def _mice_features(rounds, n_train, n_test, d):
    """Per round: a BayesianRidge per column (Python, n·d² products, n·d³ SVDs) and the predictions."""
    return [1.0, rounds * d, rounds * n_train * d ** 2, rounds * n_train * d ** 3,
            rounds * (n_train + (N_DRAWS + 1) * n_test) * d ** 2]


def _calibrate_overhead(datasets) -> dict:
    """Per-cell costs outside the imputer: run_cell's own work, loading, the XGBoost accuracy."""
    import tempfile

    from experiments import metrics
    from experiments.data import load_dataset
    from experiments.runner import compose_cell, run_cell

    points = []  # synthetic: the fallback for a dataset without its own probe
    for n, d, classes in ((500, 8, 3), (3000, 8, 3), (3000, 32, 3), (3000, 8, 12), (3000, 32, 2)):
        X, y, _ = synthetic(int(n * 1.25), d, (), classes=classes)
        X = np.nan_to_num(X)
        seconds = _cpu(lambda: metrics.xgb_accuracy(X[:n], y[:n], X[n:], y[n:], CLASSIFIER))
        points.append({"n": n, "d": d, "classes": int(np.unique(y[:n]).size), "seconds": seconds})
    xgb = _nnls([_xgb_features(p["n"], p["d"], p["classes"]) for p in points], [p["seconds"] for p in points])
    load, accuracy = {}, {}
    for key, shape in present_shapes(datasets):  # a dataset not here gets the synthetic formula
        n_full = shape.n_train
        load[key] = _cpu(lambda: load_dataset(_dataset_spec(key), os.environ.get("METAGAIN_DATA_DIR") or None))
        # The classifier on the real rows (trees on few distinct values are cheap): affine in rows.
        sizes = sorted({min(1500, n_full), min(6000, n_full)})
        times = []
        for n in sizes:
            X, y, _ = _real(key, int(n * 1.25), seed=1)
            X = np.nan_to_num(X)
            times.append(_cpu(lambda: metrics.xgb_accuracy(X[:n], y[:n], X[n:], y[n:], CLASSIFIER)))
        if len(sizes) == 2:
            b = max((times[1] - times[0]) / (sizes[1] - sizes[0]), 0.0)
            accuracy[key] = [max(times[0] - b * sizes[0], 0.0), b]
        else:
            accuracy[key] = [0.0, times[0] / sizes[0]]
    with tempfile.TemporaryDirectory() as tmp:
        overrides = ["dataset=wine", "imputer=mean", f"results_dir={tmp}", "profile=paper"]
        run_cell(compose_cell(overrides), force=True)  # masks and the shared accuracies cached
        shape = measure_shape("wine", None)
        fixed = _cpu(lambda: run_cell(compose_cell(overrides), force=True))
        wine = accuracy.get("wine")
        fixed -= (wine[0] + wine[1] * shape.n_train if wine else _dot(xgb, _xgb_features(
            shape.n_train, shape.d, shape.classes))) + load.get("wine", 0.0)
    return {"cell_fixed": max(fixed, 0.0), "xgb": xgb, "xgb_points": points, "load": load, "accuracy": accuracy}


def _xgb_features(n, d, classes):
    c = classes if classes > 2 else 1
    return [1.0, n * c * d, n * c]


# ---------------------------------------------------------------------------- the cache
def cache_path() -> Path:
    """``results/cache/costs-<hostname>.json`` (``$METAGAIN_COSTS_FILE`` overrides it)."""
    explicit = os.environ.get("METAGAIN_COSTS_FILE")
    return Path(explicit) if explicit else CACHE_DIR / f"costs-{platform.node() or 'host'}.json"


@lru_cache(maxsize=None)
def imputer_key(name: str) -> tuple[str, str, str]:
    """(family, target, key): the key changes with the class version or a non-budget argument."""
    from experiments.keys import imputer_version
    from experiments.registry import load_imputer_conf, resolve_params

    params = resolve_params(load_imputer_conf(name), "paper")
    target = params["_target_"]
    family = FAMILIES.get(target, "unknown")
    try:
        version = imputer_version(target)
    except Exception:  # noqa: BLE001 - a class that does not import (an optional extra)
        version = "unimportable"
    shown = {k: v for k, v in sorted(params.items()) if k not in BUDGET_KEYS}
    digest = hashlib.sha256(json.dumps([version, shown], sort_keys=True, default=str).encode()).hexdigest()[:16]
    return family, target, digest


def profile_datasets() -> list[str]:
    """Every dataset some shipped profile runs (the tree probes and shapes cover these)."""
    from experiments.report import PROFILE_DIR, load_profile

    keys = []
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        profile = load_profile(path.stem)
        keys += [str(k) for k in (profile.get("datasets") or []) + (profile.get("figure2_datasets") or [])]
    return list(dict.fromkeys(keys))


def _needs(entry: dict | None, key: str, datasets) -> bool:
    """Whether an imputer's entry is missing, of another version/arguments, or lacks a dataset probe."""
    if entry is None or entry.get("key") != key:
        return True
    probed = entry.get("datasets")
    return probed is not None and any(k not in probed for k in datasets)


def calibrate(names=None, costs: dict | None = None, datasets=None, force: bool = False,
              stream=sys.stderr) -> dict:
    """Measure the imputers ``names`` (default: every registered one) into ``costs`` and return it.

    Entries whose key is unchanged are kept unless ``force``; the per-cell overhead is measured
    when missing or when everything is forced; the shapes of the profiles' datasets every time.
    """
    import torch

    from experiments.registry import imputer_names, load_imputer_conf, resolve_params
    from experiments.report import PROFILE_DIR, load_profile
    from experiments.runner import set_threads

    set_threads(1)
    started = time.perf_counter()
    warmed = False
    everything = names is None
    names = list(names) if names is not None else imputer_names()
    datasets = list(datasets) if datasets is not None else profile_datasets()
    measure_overhead = "overhead" not in (costs or {}) or (force and everything)
    costs = dict(costs or {})
    costs.setdefault("imputers", {})
    if measure_overhead:
        print("[costs] warming up; timing run_cell, loading and XGBoost accuracy", file=stream, flush=True)
        _warm_up()
        warmed = True
        costs["overhead"] = _calibrate_overhead(datasets)
    costs.setdefault("shapes", {})
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        max_rows = load_profile(path.stem).get("max_rows")
        for key in datasets:
            try:
                costs["shapes"][_shape_key(key, max_rows)] = asdict(measure_shape(key, max_rows))
            except Exception:  # noqa: BLE001 - a dataset file absent here
                pass
    for name in names:
        family, target, key = imputer_key(name)
        entry = costs["imputers"].get(name)
        if family in ("mean", "hyperimpute"):  # nothing to measure (HyperImpute: skipped when absent)
            costs["imputers"][name] = {"family": family, "target": target, "key": key}
            continue
        if family == "unknown":
            continue
        if not (force or _needs(entry, key, datasets)):
            if family in STEPWISE and "gpu" not in entry:  # a calibration from before the GPU estimate
                params = resolve_params(load_imputer_conf(name), "paper")
                costs["imputers"][name] = {**entry, "gpu": _calibrate_gpu(name, family, params)}
                print(f"[costs] {name}: kernels and FLOPs counted", file=stream, flush=True)
            continue
        if not warmed:
            _warm_up()
            warmed = True
        t0 = time.perf_counter()
        params = resolve_params(load_imputer_conf(name), "paper")
        if family in ("gain", "metagain", "midae", "vaei", "hivae", "remasker"):
            measured = _calibrate_stepwise(name, family, params)
        elif family == "missfi":
            measured = _calibrate_trees(name, family, datasets)
        elif family == "xgbi":
            measured = _calibrate_xgbi(name, datasets)
        elif family == "knni":
            measured = _calibrate_knni(name)
        elif family == "pcai":
            measured = _calibrate_pcai(name)
        else:
            measured = _calibrate_mice(name)
        costs["imputers"][name] = {"family": family, "target": target, "key": key, **measured,
                                   "seconds": round(time.perf_counter() - t0, 2)}
        print(f"[costs] {name}: measured in {time.perf_counter() - t0:.1f} s", file=stream, flush=True)
    import sklearn
    import xgboost

    costs.update(format=FORMAT, host=platform.node(), cpu=platform.processor() or platform.machine(),
                 created=time.strftime("%Y-%m-%dT%H:%M:%S"), torch=torch.__version__,
                 xgboost=xgboost.__version__, sklearn=sklearn.__version__,
                 last_calibration_seconds=round(time.perf_counter() - started, 1))
    return costs


def read_costs(path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("format") == FORMAT else None


def write_costs(costs: dict, path) -> None:
    from experiments.store import write_json_atomic

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(path), costs)


def load_costs(names=None, *, calibrate_missing: bool = True, force: bool = False,
               stream=sys.stderr) -> tuple[dict, str]:
    """The measurements and where they came from.

    The machine's cache; with ``calibrate_missing`` any imputer of ``names`` (default: all) that
    is missing or measured with another version is measured now and the cache rewritten. Without
    it: the cache as it is, else the committed defaults.
    """
    path = cache_path()
    cached = read_costs(path)
    if not calibrate_missing and not force:
        if cached is not None:
            return cached, str(path)
        return read_costs(DEFAULT_FILE) or {"imputers": {}}, str(DEFAULT_FILE)
    from experiments.registry import imputer_names

    names = list(names) if names is not None else imputer_names()
    datasets = profile_datasets()
    stale = []
    for name in names:
        family, _, key = imputer_key(name)
        entry = (cached or {}).get("imputers", {}).get(name)
        if family != "unknown" and (_needs(entry, key, datasets if family in ("missfi", "xgbi") else ())
                                    or (family in STEPWISE and "gpu" not in entry)):
            stale.append(name)
    if cached is None or force or stale or "overhead" not in cached:
        if cached is None and not force:
            print(f"[costs] no calibration for this machine at {path}: measuring "
                  f"(about 1–2 minutes; `--no-calibrate` uses {DEFAULT_FILE.name} instead)", file=stream)
        elif stale and not force:
            print(f"[costs] measuring again (new version or arguments): {', '.join(stale)}", file=stream)
        cached = calibrate(None if force else stale, cached, datasets, force=force, stream=stream)
        write_costs(cached, path)
    return cached, str(path)


# ---------------------------------------------------------------------------- the model
class CostModel:
    """Seconds and peak memory of any cell, from measured unit costs (and the store's timings).

    Parameters
    ----------
    costs : dict
        What :func:`load_costs` returns.
    rows : DataFrame, optional
        The store's rows (``load_rows(root, which="all")``); their ok timings and peak memory win
        over the model for their (imputer, dataset, profile), if made by the imputer's current
        version; a row made with another budget is scaled by the model's ratio.
    source : str
        Where ``costs`` came from, for the plan's header.
    """

    def __init__(self, costs: dict, rows=None, source: str = ""):
        self.costs = costs
        self.source = source
        self._timed: dict = {}
        self._peak: dict = {}
        self._sweeps: dict = {}
        self._memo: dict = {}
        if rows is not None and len(rows):
            self._read_store(rows)

    # -------------------------------------------------------------- store
    def _read_store(self, rows) -> None:
        import pandas as pd

        from experiments import tables
        from experiments.keys import imputer_version

        rows = tables.normalise_rows(rows)
        variant = rows["variant"].fillna(False).astype(bool) if "variant" in rows else pd.Series(False, rows.index)
        ok = rows[(rows["status"] == "ok") & ~variant]
        if ok.empty:
            return
        fit = ok["fit_seconds"].astype(float) if "fit_seconds" in ok else pd.Series(np.nan, ok.index)
        transform = ok["transform_seconds"].astype(float) if "transform_seconds" in ok \
            else pd.Series(np.nan, ok.index)
        seconds = fit.fillna(0) + transform.fillna(0)
        seconds[fit.isna() & transform.isna()] = np.nan
        if "cell_seconds" in ok:  # the whole cell, loading and scoring included, where recorded
            seconds = ok["cell_seconds"].astype(float).fillna(seconds)
        ok = ok.assign(_seconds=seconds)
        versions: dict = {}
        for (imputer, dataset, profile), group in ok.groupby(["imputer", "dataset", "profile"]):
            if "version_imputer" in group and "param_target" in group:
                target = group["param_target"].dropna()
                if len(target):
                    if target.iloc[0] not in versions:
                        try:
                            versions[target.iloc[0]] = imputer_version(target.iloc[0])
                        except Exception:  # noqa: BLE001
                            versions[target.iloc[0]] = None
                    same = group["version_imputer"].astype(str) == str(versions[target.iloc[0]])
                    group = group[same | group["version_imputer"].isna()]
            if group.empty:
                continue
            timed = group["_seconds"].dropna()
            if len(timed):
                params = {c[len("param_"):]: group[c].iloc[0] for c in group.columns
                          if c.startswith("param_") and c != "param_target" and not _missing(group[c].iloc[0])}
                self._timed[(imputer, dataset, profile)] = (float(timed.mean()), params)
            if "peak_memory_mb" in group and group["peak_memory_mb"].notna().any():
                self._peak[(imputer, dataset, profile)] = float(group["peak_memory_mb"].max())
            if "info_n_iter" in group and group["info_n_iter"].notna().any():
                self._sweeps[(imputer, dataset, profile)] = float(group["info_n_iter"].astype(float).mean())

    # -------------------------------------------------------------- inputs
    def params(self, imputer: str, profile: str) -> dict | None:
        key = ("params", imputer, profile)
        if key not in self._memo:
            from experiments.registry import load_imputer_conf, resolve_params

            try:
                self._memo[key] = resolve_params(load_imputer_conf(imputer), profile)
            except ValueError:
                self._memo[key] = None
        return self._memo[key]

    def shape(self, dataset: str, profile: str) -> Shape:
        key = ("shape", dataset, profile)
        if key not in self._memo:
            max_rows = _profile(profile).get("max_rows")
            try:
                self._memo[key] = measure_shape(dataset, max_rows)
            except Exception:  # noqa: BLE001 - no data file: the calibration's record of it
                saved = self.costs.get("shapes", {}).get(_shape_key(dataset, max_rows))
                if saved is None:
                    raise
                self._memo[key] = Shape(**{**saved, "categories": tuple(saved["categories"])})
        return self._memo[key]

    # -------------------------------------------------------------- seconds
    def overhead_seconds(self, dataset: str, profile: str) -> float:
        """run_cell's own work, loading the dataset, and the XGBoost accuracy on the imputed data."""
        over = self.costs.get("overhead") or {}
        loads = over.get("load") or {}
        load = loads.get(dataset, float(np.median(list(loads.values()))) if loads else 0.0)
        return float(over.get("cell_fixed", 0.3)) + float(load) + self.accuracy_seconds(dataset, profile)

    def accuracy_seconds(self, dataset: str, profile: str) -> float:
        """One XGBoost accuracy (train on the training rows, score the test rows)."""
        over = self.costs.get("overhead") or {}
        s = self.shape(dataset, profile)
        probe = over.get("accuracy", {}).get(dataset)
        if probe is not None:
            return probe[0] + probe[1] * s.n_train
        return _dot(over.get("xgb", [0.0, 5e-8, 0.0]), _xgb_features(s.n_train, s.d, s.classes))

    def shared_seconds(self, dataset: str, profile: str) -> float:
        """Fits the first cell of a mask pays for the others: Complete accuracy + 2 references."""
        return 3 * self.accuracy_seconds(dataset, profile)

    def imputer_seconds(self, imputer: str, dataset: str, profile: str, ratio: float = 0.2,
                        params: dict | None = None, group: int = 1) -> float | None:
        """The imputer's fit + transforms + draws from the model alone; None when not modelled.

        ``group``: the number of cells trained with it as one batched group (its share of the
        group's time, :func:`group_factor`; transforms are counted at the same share).
        """
        params = params if params is not None else self.params(imputer, profile)
        if params is None:
            return None
        family = FAMILIES.get(params.get("_target_"), "unknown")
        entry = (self.costs.get("imputers") or {}).get(imputer)
        if family == "mean":
            return 0.0
        if family == "hyperimpute":  # without its extra a cell is skipped at once
            return 0.0 if not _importable("hyperimpute") else None
        if family == "unknown" or entry is None:
            return None
        seconds = _FORMULAS[family](entry, params, self.shape(dataset, profile), dataset, float(ratio), self,
                                    imputer, profile)
        if seconds is None or not np.isfinite(seconds):
            return None
        return float(seconds) * group_factor(entry, group)

    def gpu_seconds(self, imputer: str, dataset: str, profile: str, group: int = 1) -> float | None:
        """Estimated GPU seconds of one cell's training in a group of ``group`` (its share), eager
        PyTorch: steps × kernels × GPU_LAUNCH_S + FLOPs of every model / GPU_FLOPS. None for the
        families that do not train on a GPU or an entry counted before the GPU estimate existed."""
        params = self.params(imputer, profile)
        family = FAMILIES.get((params or {}).get("_target_"), "unknown")
        entry = (self.costs.get("imputers") or {}).get(imputer) or {}
        if family not in STEPWISE or "gpu" not in entry:
            return None
        s = self.shape(dataset, profile)
        sequential, summed = training_steps(family, params, s)
        flops = _dot(entry["gpu"]["flops"], _unit_features(family)(s.d_num, s.d_cat))
        if family == "remasker":
            flops *= _arch_factor(entry, params, dataset)
        group = max(int(group), 1)
        seconds = sequential * entry["gpu"]["kernels"] * GPU_LAUNCH_S + group * summed * flops / GPU_FLOPS
        return seconds / group

    def model_seconds(self, imputer: str, dataset: str, profile: str, ratio: float = 0.2,
                      params: dict | None = None, group: int = 1) -> float | None:
        body = self.imputer_seconds(imputer, dataset, profile, ratio, params, group)
        return None if body is None else body + self.overhead_seconds(dataset, profile)

    def cell_seconds(self, imputer: str, dataset: str, profile: str,
                     ratio: float = 0.2, group: int = 1) -> tuple[float | None, str]:
        """(seconds, "store" or "model"): the store's mean for this kind of cell, else the model.

        ``group``: cells trained together with it (batched imputers); the store's rows already
        hold each cell's share of its group's time.
        """
        memo = ("cell", imputer, dataset, profile, round(float(ratio), 6), int(group))
        if memo in self._memo:
            return self._memo[memo]
        model = self.model_seconds(imputer, dataset, profile, ratio, group=group)
        out = (model, "model")
        timed = self._timed.get((imputer, dataset, profile))
        if timed is not None:
            seconds, row_params = timed
            current = self.params(imputer, profile) or {}
            budget = {k: _json(v) for k, v in row_params.items() if k in BUDGET_KEYS and k in current}
            if model is not None and any(not _same(current[k], v) for k, v in budget.items()):
                then = self.model_seconds(imputer, dataset, profile, ratio, {**current, **budget}, group)
                seconds = seconds * model / then if then else seconds
            out = (float(seconds), "store")
        self._memo[memo] = out
        return out

    # -------------------------------------------------------------- memory
    def memory_mb(self, imputer: str, dataset: str, profile: str, ratio: float = 0.2) -> float:
        """Peak resident memory of one cell: the store's largest, else base + data + the family's own."""
        stored = self._peak.get((imputer, dataset, profile))
        if stored is not None:
            return stored
        s = self.shape(dataset, profile)
        n = s.n_train + s.n_test
        mb = BASE_MEMORY_MB + 30 * 8 * n * s.d / 2 ** 20  # the cell's copies of the table and draws
        params = self.params(imputer, profile) or {}
        family = FAMILIES.get(params.get("_target_"), "unknown")
        if family == "missfi":  # two sweeps of forests alive (~40 B per tree-row regression, 12 classification)
            per_row = s.d_num * 40 + s.d_cat * 12
            mb += 2 * int(params.get("ntree", 100)) * s.n_train * (1 - ratio) * per_row / 2 ** 20
        elif family == "knni":  # scikit-learn's 1 GB working memory for distance chunks
            mb += min(1024.0, 3 * 8 * n * s.n_train / 2 ** 20) + 100
        elif family == "remasker":  # transform: 4 096-row chunks, attention over d + 1 tokens
            rows = min(4096, n)
            mb += 3 * rows * 4 * (s.d + 1) ** 2 * 4 / 2 ** 20 + 12 * rows * (s.d + 1) * 256 * 4 / 2 ** 20
        elif family == "metagain":  # transform: 8 192-row chunks × draws through 100-wide layers
            draws = max(int(params.get("impute_draws") or 1), 1)
            mb += 8 * min(8192, n) * draws * 100 * 4 / 2 ** 20
        elif family in ("xgbi", "mice", "pcai"):
            mb += 4 * 8 * n * s.d / 2 ** 20
        return float(mb)


def _missing(value) -> bool:
    try:
        return value is None or (isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def _same(a, b) -> bool:
    """Equal budgets, whatever the store's typing (10000 and 10000.0, a list and its JSON text)."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return json.dumps(_json(a), sort_keys=True, default=str) == json.dumps(_json(b), sort_keys=True, default=str)


def _json(value):
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@lru_cache(maxsize=None)
def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@lru_cache(maxsize=None)
def _profile_cached(name: str) -> str:
    from experiments.report import load_profile

    return json.dumps(load_profile(name))


def _profile(name: str) -> dict:
    return json.loads(_profile_cached(name))


# ---------------------------------------------------------------------------- formulas per family
def _eval_rows(s: Shape) -> float:
    """Rows an imputer's network sees after training: transform(train), transform(test), 10 draws of test."""
    return s.n_train + s.n_test + N_DRAWS * s.n_test


def _grid(params: dict) -> tuple[int, int]:
    """(points, steps per point) of Meta-GAIN's no-MN grid search; (0, 0) without one."""
    grid = params.get("weight_grid")
    if params.get("use_meta") or not grid:
        return 0, 0
    points = len(grid) ** (1 + bool(params.get("use_kl")) + bool(params.get("use_task")))
    steps = int(params["search_iterations"]) if params.get("search_iterations") is not None \
        else max(1, int(params["iterations"]) // 10)
    return points, steps


def training_steps(family: str, params: dict, s: Shape) -> tuple[int, int]:
    """(optimiser steps one after another, steps summed over the models) of one fit's training.

    They differ for Meta-GAIN's grid search, whose points train side by side as one batch.
    """
    if family in ("gain", "metagain"):
        iterations = int(params["iterations"])
        points, steps = _grid(params) if family == "metagain" else (0, 0)
        return iterations + (steps if points else 0), iterations + points * steps
    n = s.n_train
    epochs = int(params["epochs"])
    if family in ("midae", "vaei"):
        steps = epochs * math.ceil(n / min(int(params["batch_size"]), n))
    elif family == "hivae":  # the reference drops the last partial batch
        steps = epochs * (n // min(int(params["batch_size"]), n))
    else:  # remasker, with its max_steps cap
        batches = math.ceil(n / int(params["batch_size"]))
        if params.get("max_steps") is not None:
            epochs = min(epochs, max(1, math.ceil(int(params["max_steps"]) / batches)))
        steps = epochs * batches
    return steps, steps


def _gain(entry, params, s, dataset, ratio, model, imputer, profile):
    f = _unit_features("gain")(s.d_num, s.d_cat)
    return entry["fixed"] + training_steps("gain", params, s)[1] * _dot(entry["per_unit"], f) \
        + _eval_rows(s) * _dot(entry["per_row"], f)


def _metagain(entry, params, s, dataset, ratio, model, imputer, profile):
    """Training (+ the no-MN grid: G points × S iterations, each from a fresh model) and the draws."""
    f = _unit_features("metagain")(s.d_num, s.d_cat)
    points, _ = _grid(params)
    draws = max(int(params.get("impute_draws") or 0), 1)
    per_row = _dot(entry["per_row"], f)  # measured per row × draw of transform
    meta_rows = 0.1 * s.n_train  # each grid point is scored on the meta set with the transform's draws
    return (1 + points) * entry["fixed"] + training_steps("metagain", params, s)[1] * _dot(entry["per_unit"], f) \
        + per_row * ((s.n_train + s.n_test) * draws + N_DRAWS * s.n_test + points * meta_rows * draws)


def _epochs(entry, params, s, dataset, ratio, model, imputer, profile, family):
    f = _unit_features(family)(s.d_num, s.d_cat)
    steps = training_steps(family, params, s)[1]
    per_unit = _dot(entry["per_unit"], f)
    per_row = _dot(entry["per_row"], f)
    if family == "remasker":  # no draws; a dataset's own architecture (letter) as a measured factor
        return entry["fixed"] + (steps * per_unit + (s.n_train + s.n_test) * per_row) * _arch_factor(
            entry, params, dataset)
    return entry["fixed"] + steps * per_unit + _eval_rows(s) * per_row


def _arch_factor(entry: dict, params: dict, dataset: str) -> float:
    """ReMasker's per-step cost on ``dataset``'s own architecture over the default's (1 elsewhere)."""
    if _remasker_arch(params, dataset):
        return float(entry.get("arch_factor", {}).get(dataset, 1.0))
    return 1.0


def _remasker_arch(params, dataset) -> bool:
    """Whether the cell runs a dataset-specific architecture (reference configs.py) with its defaults."""
    from baselines.remasker import DATASET_OVERRIDES

    return dataset in DATASET_OVERRIDES and all(params.get(k) is None for k in DATASET_OVERRIDES[dataset])


def _trees(entry, params, s, dataset, ratio, model, imputer, profile, family):
    probes = entry.get("datasets") or {}
    probe = probes.get(dataset)
    n_eq = s.n_train * (1 - ratio) / 0.8  # the probes had 20 % holes: cost follows the observed rows
    if family == "xgbi":  # rounds of fits + predictions, and transform(test) replaying the predictions
        replay = probe["replay"] if probe is not None else 0.0
        return (_xgbi_round(probes, probe, int(params["n_estimators"]), n_eq, s.d) + replay) * int(params["max_iter"])
    if probe is None:  # no probe of this dataset: the median per column of the others
        if not probes:
            return None
        per_col = {k: float(np.median([p[k] / p["d"] for p in probes.values()])) for k in ("fixed", "a", "b")}
        probe = {k: v * s.d for k, v in per_col.items()}
    trees = int(params["ntree"])
    rounds = model._sweeps.get((imputer, dataset, profile)) or MISSFI_SWEEPS.get(dataset, DEFAULT_SWEEPS)
    rounds = min(float(rounds), int(params["max_iter"]))
    return rounds * (probe["fixed"] + trees * (probe["a"] + probe["b"] * n_eq))


def _xgbi_round(probes: dict, probe: dict | None, trees: int, n: float, d: int) -> float:
    """Seconds of one XGBI round of ``trees``-tree boosters on ``n`` rows (see :func:`_calibrate_xgbi`)."""
    if probe is None:  # another dataset: the median per column and row of the probed ones
        if not probes:
            return float("nan")
        per = float(np.median([p["round_n3"] / (p["d"] * p["n3"]) for p in probes.values()]))
        return per * d * n * trees / next(iter(probes.values()))["full"]
    ratios = sorted((int(t), r) for t, r in probe["budget_ratio"].items())
    ks, rs = [t for t, _ in ratios], [r for _, r in ratios]
    if trees > ks[-1] or trees < ks[0]:
        ratio = trees / probe["full"]
    else:
        ratio = float(np.interp(trees, ks, rs))
    full = probe["round_n3"] + probe["slope"] * (n - probe["n3"])
    return ratio * max(full, probe["round_n3"] * min(1.0, n / probe["n3"]))


def _knni(entry, params, s, dataset, ratio, model, imputer, profile):
    return _dot(entry["coef"], _knni_features(s.n_train, s.n_test, s.d_num, s.d_cat))


def _pcai(entry, params, s, dataset, ratio, model, imputer, profile):
    fits = (1 + min(int(params.get("ncp_max") or 5), max(s.d - 1, 0))) if params.get("ncp") is None else 1
    passes = fits * min(int(params["max_iter"]), PCAI_PASSES_PER_FIT)
    return passes * _dot(entry["per_pass"], [1.0, s.n_train * s.d * min(s.n_train, s.d)])


def _mice(entry, params, s, dataset, ratio, model, imputer, profile):
    return _dot(entry["coef"], _mice_features(int(params["max_iter"]), s.n_train, s.n_test, s.d))


_FORMULAS = {
    "gain": _gain, "metagain": _metagain,
    "midae": lambda *a: _epochs(*a, family="midae"), "vaei": lambda *a: _epochs(*a, family="vaei"),
    "hivae": lambda *a: _epochs(*a, family="hivae"), "remasker": lambda *a: _epochs(*a, family="remasker"),
    "missfi": lambda *a: _trees(*a, family="missfi"), "xgbi": lambda *a: _trees(*a, family="xgbi"),
    "knni": _knni, "pcai": _pcai, "mice": _mice,
}


# ---------------------------------------------------------------------------- public helpers
_DEFAULT_MODEL: CostModel | None = None


def default_model(calibrate_missing: bool = True) -> CostModel:
    """A model over this machine's calibration (measured now when missing), without the store."""
    global _DEFAULT_MODEL
    if _DEFAULT_MODEL is None:
        costs, source = load_costs(calibrate_missing=calibrate_missing)
        _DEFAULT_MODEL = CostModel(costs, source=source)
    return _DEFAULT_MODEL


def estimate_seconds(imputer_name: str, dataset_key: str, profile_name: str, ratio: float = 0.2,
                     model: CostModel | None = None) -> float:
    """CPU seconds of one cell (imputer, dataset, profile) on this machine, one thread.

    The store's timing when ``model`` holds one, else the cost model; ``nan`` when the imputer
    has no model (an unknown class, or HyperImpute installed).
    """
    seconds, _ = (model or default_model()).cell_seconds(imputer_name, dataset_key, profile_name, ratio)
    return float("nan") if seconds is None else float(seconds)


def schedule(seconds, workers: int) -> float:
    """Wall time of ``seconds`` (in dispatch order) on ``workers`` workers, each next job to the first free."""
    workers = max(1, int(workers))
    if not len(seconds):
        return 0.0
    free = [0.0] * min(workers, len(seconds))
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + float(s))
    return max(free)


def _paper_runs(model: CostModel):
    """Per command ``reproduce`` launches for the paper profile: (its sweeps joined by "+", its cells
    not already in an earlier one as (imputer, dataset, ratio, group size))."""
    from experiments import report, reproduce

    profile = report.load_profile("paper")
    extras = [str(n) for n in profile.get("extra_imputers") or []]
    seen = set()
    grids = {sweep: reproduce.sweep_grid(sweep, profile, extras) for sweep in reproduce.SWEEPS}
    for run, grid in reproduce.merge_runs(grids):  # as reproduce launches them, groups and all
        cells = reproduce.expand(grid)
        cells["group"] = reproduce.group_sizes(cells)
        fresh = []
        for cell in cells.itertuples(index=False):
            key = (cell.dataset, cell.mechanism, cell.ratio, cell.imputer, cell.seed)
            if key not in seen:
                seen.add(key)
                fresh.append((cell.imputer, cell.dataset, cell.ratio, int(cell.group)))
        yield run, fresh


def paper_estimate(rows=None, model: CostModel | None = None, workers: int = 2) -> tuple[float, float]:
    """(CPU hours of the whole paper profile from scratch, wall hours of Tables 1–5 + Figure 2 on
    ``workers`` workers, sweeps one after another, each cell once)."""
    model = model or CostModel(default_model().costs, rows, default_model().source)
    cpu = wall = 0.0
    for run, cells in _paper_runs(model):
        times = [model.cell_seconds(imputer, dataset, "paper", ratio, group)[0] or 0.0
                 for imputer, dataset, ratio, group in cells]
        cpu += sum(times)
        if any(sweep in TABLE_FIGURE_SWEEPS for sweep in run.split("+")):
            wall += schedule(times, workers)
    return cpu / 3600, wall / 3600


def paper_estimate_line(rows=None, model: CostModel | None = None) -> str:
    """``paper-profile estimate cpu_hours=<total> tables_figure_hours_2cores=<wall>``, as ``make plan``
    and ``make bench`` print it (model only unless ``rows``/``model`` bring store timings)."""
    cpu, wall = paper_estimate(rows, model, workers=2)
    return f"paper-profile estimate cpu_hours={cpu:.1f} tables_figure_hours_2cores={wall:.1f}"


def gpu_estimate(model: CostModel | None = None) -> dict[str, float]:
    """Estimated GPU hours of the paper profile's deep-model training per family, one GPU, eager
    PyTorch, cells grouped as ``reproduce`` launches them (:meth:`CostModel.gpu_seconds`; the
    transforms and scoring are left out: one pass over the rows each)."""
    model = model or default_model()
    hours: dict[str, float] = {}
    for _, cells in _paper_runs(model):
        for imputer, dataset, _, group in cells:
            seconds = model.gpu_seconds(imputer, dataset, "paper", group)
            if seconds is not None:
                family = FAMILIES[model.params(imputer, "paper")["_target_"]]
                hours[family] = hours.get(family, 0.0) + seconds / 3600
    return hours


def gpu_estimate_line(model: CostModel | None = None) -> str:
    """``paper-profile gpu estimate deep_model_hours=<total> (<family hours>)`` with its assumptions."""
    hours = gpu_estimate(model)
    if not hours:
        return "paper-profile gpu estimate deep_model_hours=unknown (no kernel counts in the calibration)"
    parts = ", ".join(f"{family} {h:.2f}" for family, h in sorted(hours.items(), key=lambda kv: -kv[1]))
    return (f"paper-profile gpu estimate deep_model_hours={sum(hours.values()):.2f} ({parts}; eager, not "
            f"measured: {GPU_LAUNCH_S * 1e6:.0f} µs per kernel, {GPU_FLOPS / 1e12:.0f} TFLOP/s)")


def launcher_workers(launcher: str, n_jobs: int, extra=()) -> int:
    """How many cells run at once under ``launcher``: ``n_jobs`` locally, the array's parallelism on SLURM."""
    for item in extra:
        if item.startswith("hydra.launcher.array_parallelism="):
            return int(item.split("=", 1)[1])
    if launcher == "slurm":
        from omegaconf import OmegaConf

        return int(OmegaConf.load(ROOT / "conf" / "hydra" / "launcher" / "slurm.yaml").get("array_parallelism", 64))
    if launcher == "submitit_slurm":
        return 256  # hydra-submitit-launcher's default array_parallelism
    return max(1, int(n_jobs))


PROCESS_MB = 500.0  # a worker's memory before any cell's data (Python, torch, XGBoost): shared by a group
# Each further fit of a batched group adds this share of a cell's memory above PROCESS_MB (measured
# on 16 000 × 16 rows, K = 15 against K = 1: ReMasker 0.19, Meta-GAIN 0.09, VAEI 0.05, HIVAE 0.02
# of it per extra fit; the group's scoring runs one cell at a time)
GROUP_MEMORY_SHARE = 0.25


def slurm_resources(grid: dict, profile_name: str, model: CostModel | None = None) -> dict:
    """``{"timeout_min", "mem_gb", "max_seconds", "max_mb"}`` for one sweep's array tasks.

    An array task is one job of the grouped sweeper: one cell, or all the cells of a batched
    imputer on one dataset trained as a group. Its time is the sum of its cells' estimates (each
    its share of the group, :func:`group_factor`) with the shared first-cell fits, × TIME_MARGIN;
    its memory the largest cell's plus ``GROUP_MEMORY_SHARE`` of it above ``PROCESS_MB`` per
    further fit, × MEM_MARGIN; the largest over the sweep's jobs, with floors.
    """
    from experiments import reproduce

    model = model or default_model(calibrate_missing=False)
    cells = reproduce.expand(grid)
    cells["group"] = reproduce.group_sizes(cells)
    worst_s, worst_mb = 0.0, 0.0
    for (dataset, imputer), job in cells.groupby(["dataset", "imputer"], sort=False):
        size = int(job["group"].iloc[0])
        jobs = [job] if size > 1 else [job.iloc[[i]] for i in range(len(job))]
        for part in jobs:
            seconds = [model.cell_seconds(imputer, dataset, profile_name, ratio, size)[0] for ratio in part["ratio"]]
            if all(s is not None for s in seconds):
                worst_s = max(worst_s, sum(seconds) + model.shared_seconds(dataset, profile_name))
            cell_mb = max(model.memory_mb(imputer, dataset, profile_name, ratio) for ratio in part["ratio"])
            base = min(cell_mb, PROCESS_MB)
            worst_mb = max(worst_mb, cell_mb + (len(part) - 1) * GROUP_MEMORY_SHARE * (cell_mb - base))
    return {"timeout_min": max(MIN_TIMEOUT_MIN, math.ceil(worst_s * TIME_MARGIN / 60)),
            "mem_gb": max(MIN_MEM_GB, math.ceil(worst_mb * MEM_MARGIN / 1024)),
            "max_seconds": worst_s, "max_mb": worst_mb}


# ---------------------------------------------------------------------------- command line
def _show(model: CostModel, profile: str) -> str:
    from experiments import report, reproduce

    prof = report.load_profile(profile)
    extras = [str(n) for n in prof.get("extra_imputers") or []]
    imputers, datasets = [], []
    for sweep in reproduce.SWEEPS:
        grid = reproduce.sweep_grid(sweep, prof, extras)
        imputers += grid["imputer"]
        datasets += grid["dataset"]
    imputers, datasets = list(dict.fromkeys(imputers)), list(dict.fromkeys(datasets))
    lines = [f"seconds per cell at profile {profile} (CPU, one thread; {model.source})",
             f"{'imputer':<16}" + "".join(f"{d[:9]:>10}" for d in datasets)]
    for imputer in imputers:
        values = []
        for d in datasets:
            s, _ = model.cell_seconds(imputer, d, profile)
            values.append(f"{'?':>10}" if s is None else f"{s:>10.1f}")
        lines.append(f"{imputer:<16}" + "".join(values))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Calibrate the cost model on this machine and show estimates.")
    parser.add_argument("--calibrate", action="store_true", help="measure every imputer again")
    parser.add_argument("--imputers", default=None, help="comma-separated: measure only these again")
    parser.add_argument("--show", action="store_true", help="print seconds per cell (imputer × dataset)")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--no-calibrate", action="store_true", help="never measure: cache, else defaults")
    parser.add_argument("--write-default", action="store_true",
                        help=f"also copy the result to {DEFAULT_FILE.relative_to(ROOT)} (developers)")
    args = parser.parse_args(argv)
    if args.imputers:
        costs, _ = load_costs(calibrate_missing=False)
        costs = calibrate([n.strip() for n in args.imputers.split(",") if n.strip()],
                          read_costs(cache_path()) or costs, force=True)
        write_costs(costs, cache_path())
        source = str(cache_path())
    else:
        costs, source = load_costs(calibrate_missing=not args.no_calibrate, force=args.calibrate)
    if args.calibrate or args.imputers:
        print(f"wrote {cache_path()} (last calibration {costs.get('last_calibration_seconds')} s)")
    if args.write_default:
        write_costs(costs, DEFAULT_FILE)
        print(f"wrote {DEFAULT_FILE}")
    if args.show or not (args.calibrate or args.imputers or args.write_default):
        from experiments import report
        from experiments.store import load_rows

        model = CostModel(costs, load_rows(report.results_root(None), which="all"), source)
        print(_show(model, args.profile))
        print(gpu_estimate_line(model))
        print(paper_estimate_line(model=model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
