"""The imputer registry: ``conf/imputer/*.yaml`` is the list of imputers.

Each yaml holds ``name``, ``label``, ``_target_`` and the constructor arguments at the imputer's
published defaults (each with a comment citing its source). The budget cuts of the ``smoke`` and
``quick`` profiles are their own files, ``conf/budget/<imputer>_<profile>.yaml`` (``paper`` uses the
defaults), which Hydra composes into the imputer node, so ``--cfg job`` prints what runs::

    # conf/imputer/gain.yaml
    name: gain
    _target_: baselines.gain.GAINImputer
    iterations: 10000          # Yoon et al. 2018, reference code main.py
    # conf/budget/gain_quick.yaml
    # @package imputer
    iterations: 2000
"""
from __future__ import annotations

import inspect
import os
from functools import lru_cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
RESERVED = ("name", "label")  # yaml keys that are not constructor arguments
#: Folders of a user's own configs (``<dir>/imputer/<name>.yaml``, ``<dir>/dataset/…``), searched after
#: ``conf/``; ``python -m experiments.run`` adds them to Hydra's search path.
CONFIG_PATH_ENV = "METAGAIN_CONFIG_PATH"


def config_dirs() -> list[Path]:
    """``conf/``, then every folder named in ``$METAGAIN_CONFIG_PATH`` (``os.pathsep``-separated)."""
    extra = [Path(p).expanduser().resolve() for p in os.environ.get(CONFIG_PATH_ENV, "").split(os.pathsep) if p]
    return [CONF_DIR] + extra


def group_file(group: str, name: str) -> Path | None:
    """The first ``<dir>/<group>/<name>.yaml`` of :func:`config_dirs`, or None."""
    for folder in config_dirs():
        path = folder / group / f"{name}.yaml"
        if path.exists():
            return path
    return None


def imputer_names() -> list[str]:
    """Every imputer key: the files in ``conf/imputer/`` and in the user's config folders."""
    return sorted({p.stem for folder in config_dirs() for p in (folder / "imputer").glob("*.yaml")})


def load_group_node(group: str, name: str) -> DictConfig | None:
    """``<dir>/<group>/<name>.yaml`` composed as Hydra composes it: a ``defaults: [base, _self_]``
    list merges ``base`` of the same group first (the Meta-GAIN ablations extend ``metagain``)."""
    path = group_file(group, name)
    if path is None:
        return None
    node = OmegaConf.load(path)
    defaults = list(node.pop("defaults", None) or [])
    merged = OmegaConf.create()
    for item in defaults:
        if item == "_self_":
            merged = OmegaConf.merge(merged, node)
            continue
        base = load_group_node(group, str(item))
        if base is None:
            raise ValueError(f"{path} extends {group}/{item}, which does not exist.")
        merged = OmegaConf.merge(merged, base)
    return merged if "_self_" in defaults else OmegaConf.merge(merged, node)


def load_imputer_conf(name: str) -> DictConfig:
    node = load_group_node("imputer", name)
    if node is None:
        raise ValueError(f"Unknown imputer {name!r}; choose one of {imputer_names()}.")
    return node


def budget_cuts(imputer: str, profile: str) -> dict:
    """The profile's budget for an imputer: ``<config dir>/budget/<imputer>_<profile>.yaml`` ({} if none).

    Hydra composes the same file into the cell config (``conf/config.yaml``:
    ``optional budget: ${imputer}_${profile}``, package ``imputer``), so ``--cfg job`` shows the
    arguments that run; this reads it for code that builds an imputer without Hydra.
    """
    return dict(_budget_cuts(imputer, profile, os.environ.get(CONFIG_PATH_ENV, "")))


@lru_cache(maxsize=None)
def _budget_cuts(imputer: str, profile: str, config_path: str) -> dict:
    node = load_group_node("budget", f"{imputer}_{profile}")
    return {} if node is None else OmegaConf.to_container(node, resolve=True)


def imputer_arguments(imputer_conf) -> dict:
    """An imputer node's constructor arguments (``_target_`` kept; ``name`` and ``label`` removed).

    For a node Hydra composed (``cfg.imputer`` of a cell) these are exactly what runs: the yaml,
    then the profile's budget file, then command-line overrides, merged in that order.
    """
    conf = OmegaConf.to_container(imputer_conf, resolve=True) if not isinstance(imputer_conf, dict) \
        else dict(imputer_conf)
    return {k: v for k, v in conf.items() if k not in RESERVED}


def resolve_params(imputer_conf, profile: str) -> dict:
    """Constructor arguments at ``profile``'s budget, for an imputer's yaml read without Hydra:
    the yaml's arguments, then the profile's budget cuts (what Hydra's composition gives).

    A budget naming a key that is not an argument in the imputer's yaml is an error.
    """
    params = imputer_arguments(imputer_conf)
    name = imputer_conf.get("name")
    cuts = budget_cuts(str(name), profile)
    unknown = set(cuts) - set(params)
    if unknown:
        raise ValueError(
            f"conf/budget/{name}_{profile}.yaml sets {sorted(unknown)}, which are not "
            f"arguments in conf/imputer/{name}.yaml."
        )
    return {**params, **cuts}


def instantiate_imputer(params: dict, *, random_state=None, device: str | None = None,
                        verbose: bool | None = None, dataset: str | None = None):
    """Build the imputer from resolved params; inject seed/device/verbosity/dataset key where accepted.

    ``dataset`` reaches imputers whose reference code has per-dataset settings (ReMasker).
    """
    from hydra.utils import get_class

    params = dict(params)
    target = params.pop("_target_")
    cls = get_class(target)
    accepted = inspect.signature(cls.__init__).parameters
    injected = (("random_state", random_state), ("device", device), ("verbose", verbose), ("dataset", dataset))
    for key, value in injected:
        if value is not None and key in accepted:
            params[key] = value
    unknown = set(params) - set(accepted)
    if unknown:
        raise ValueError(f"{target} does not take the arguments {sorted(unknown)}; check its yaml.")
    return cls(**params)


def build_imputer(name: str, profile: str = "paper", *, random_state=0, device="auto",
                  verbose=False, **overrides):
    """Convenience for tests and scripts: the imputer ``name`` at ``profile``'s budget."""
    params = resolve_params(load_imputer_conf(name), profile)
    params.update(overrides)
    return instantiate_imputer(params, random_state=random_state, device=device, verbose=verbose)
