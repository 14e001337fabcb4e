"""Cell identity and cell keys: what makes a stored row *this* cell's row, and whether it is current.

A cell is the tuple of sweep axes ``(dataset, mechanism, ratio, imputer, seed, profile)``. Its
key hashes everything that sets a score: the dataset config and the content hash of its data,
the mechanism and its parameters, the profile's row cap, the scaling, the classifier, the draw
count, the imputer's resolved arguments and its ``version``, and the scoring code's
``SCORE_VERSION``. Change any of them and the key changes, so an old row is never served again.

The *canonical* config of a cell is the one the sweep axes alone give (``conf/`` as committed,
no other override). :func:`canonical_key` computes its key without Hydra (the group yamls are
plain files), so the store can tell, for any row, whether it is the current canonical row of its
cell, a *stale* one (made by another version of the code, data or config) or a *variant* (made
with overrides beyond the axes). Tables and the report use current canonical rows only.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
from functools import lru_cache

from omegaconf import OmegaConf

from experiments.registry import CONF_DIR, CONFIG_PATH_ENV, load_group_node, resolve_params

AXES = ("dataset", "mechanism", "ratio", "imputer", "seed", "profile")
#: Dataset config keys that never move a number (download layout, display): left out of the key.
PRESENTATION_KEYS = ("uci_columns", "label")


def hash_payload(payload) -> str:
    """Stable short hash of a JSON-able payload (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@lru_cache(maxsize=None)
def imputer_version(target: str) -> str:
    """The ``version`` of the imputer class ``target``.

    Project imputers declare it (``BaseImputer.version``); a foreign class without one (e.g.
    ``sklearn.impute.SimpleImputer``) is versioned by its distribution's version.
    """
    module_name, _, name = target.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    version = getattr(cls, "version", None)
    if isinstance(version, str):
        return version
    import importlib.metadata as md

    top = module_name.split(".")[0]
    try:
        dist = md.packages_distributions().get(top, [top])[0]
        return f"{dist}=={md.version(dist)}"
    except (md.PackageNotFoundError, IndexError):
        return "unversioned"


def score_version() -> str:
    from experiments.scoring import SCORE_VERSION

    return SCORE_VERSION


def data_hash(dataset_spec: dict, data_dir=None) -> str:
    from experiments.data import dataset_hash

    return dataset_hash(dataset_spec, data_dir)


def cell_identity(cfg: dict) -> dict:
    """The sweep axes of a composed cell config."""
    return {
        "dataset": cfg["dataset"]["key"],
        "mechanism": cfg["mechanism"]["name"],
        "ratio": float(cfg["ratio"]),
        "imputer": cfg["imputer"]["name"],
        "seed": int(cfg["seed"]),
        "profile": cfg["profile"]["name"],
    }


def cell_payload(cfg: dict, params: dict) -> dict:
    """Everything that sets a cell's numbers (the key is its hash)."""
    return {
        **cell_identity(cfg),
        "dataset_spec": {k: v for k, v in cfg["dataset"].items() if k not in PRESENTATION_KEYS},
        "data_hash": data_hash(cfg["dataset"], cfg.get("data_dir")),
        "mechanism_params": cfg["mechanism"].get("params") or {},
        "max_rows": cfg["profile"].get("max_rows"),
        "scaling": cfg["scaling"],
        "classifier": cfg["classifier"],
        "n_draws": cfg["n_draws"],
        "imputer_params": params,
        "imputer_version": imputer_version(params["_target_"]),
        "score_version": score_version(),
    }


def cell_key(cfg: dict, params: dict) -> str:
    return hash_payload(cell_payload(cfg, params))


# ---------------------------------------------------------------------------- canonical configs
def _group_node(group: str, name: str) -> dict | None:
    """``<config dir>/<group>/<name>.yaml`` as a plain dict (a ``defaults: [other, _self_]`` list composes)."""
    return _group_node_in(group, name, os.environ.get(CONFIG_PATH_ENV, ""))


@lru_cache(maxsize=None)
def _group_node_in(group: str, name: str, config_path: str) -> dict | None:
    node = load_group_node(group, name)
    return None if node is None else OmegaConf.to_container(node, resolve=True)


@lru_cache(maxsize=1)
def _top_level() -> dict:
    """The top-level keys of ``conf/config.yaml`` over the structured schema's defaults."""
    from experiments.config import CellConfig

    body = OmegaConf.load(CONF_DIR / "config.yaml")
    body = {k: v for k, v in OmegaConf.to_container(body).items() if k not in ("defaults", "hydra")}
    merged = OmegaConf.merge(OmegaConf.structured(CellConfig), body)
    return {k: OmegaConf.to_container(merged)[k] for k in ("scaling", "classifier", "n_draws")}


@lru_cache(maxsize=None)  # one entry per cell identity met (a paper store holds a few thousand)
def _canonical_payload(dataset: str, mechanism: str, ratio: float, imputer: str, seed: int, profile: str,
                       data_dir: str | None, config_path: str = "") -> dict | None:
    nodes = {group: _group_node(group, name) for group, name in
             (("dataset", dataset), ("mechanism", mechanism), ("imputer", imputer), ("profile", profile))}
    if any(node is None for node in nodes.values()):
        return None  # an imputer or dataset with no committed yaml has no canonical row
    cfg = {**_top_level(), **nodes, "ratio": float(ratio), "seed": int(seed), "data_dir": data_dir}
    try:
        params = resolve_params(nodes["imputer"], profile)
        return cell_payload(cfg, params)
    except (ValueError, ImportError, AttributeError):
        return None  # a yaml that no longer resolves (its class is gone) has no canonical row


def canonical_payload(identity: dict, data_dir=None) -> dict | None:
    """What :func:`cell_payload` gives for ``identity`` (a mapping with the :data:`AXES`) at ``conf/``'s values."""
    return _canonical_payload(str(identity["dataset"]), str(identity["mechanism"]), float(identity["ratio"]),
                              str(identity["imputer"]), int(identity["seed"]), str(identity["profile"]),
                              None if data_dir is None else str(data_dir), os.environ.get(CONFIG_PATH_ENV, ""))


def canonical_key(identity: dict, data_dir=None) -> str | None:
    """The key of the canonical row of ``identity``; None when the cell has no committed config."""
    payload = canonical_payload(identity, data_dir)
    return None if payload is None else hash_payload(payload)


def payload_differences(actual: dict, canonical: dict, prefix: str = "") -> list[str]:
    """``path=value`` for every leaf where ``actual`` departs from ``canonical`` (for variant rows)."""
    out = []
    for key in sorted(set(actual) | set(canonical)):
        a, c = actual.get(key), canonical.get(key)
        if isinstance(a, dict) and isinstance(c, dict):
            out += payload_differences(a, c, f"{prefix}{key}.")
        elif a != c:
            out.append(f"{prefix}{key}={a}")
    return out
