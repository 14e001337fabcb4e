"""Hydra's basic sweeper, with the cells of one batched imputer × dataset merged into one job.

A sweep's jobs that differ only in ``seed``, ``mechanism`` and ``ratio`` (``GROUP_AXES``) and whose
imputer trains with a model axis (its class has ``_fit_batched``: GAIN, Meta-GAIN and its
ablations, MIDAE, VAEI, HIVAE, ReMasker) become one job: the first cell's overrides plus
``group='seed=0 mechanism=mcar|seed=1 mechanism=mcar|…'``, which ``experiments.run`` composes
back into the member cells and trains as one batched computation
(:func:`experiments.runner.run_group`). Every launcher (joblib, submitit local, SLURM) runs such
a job like any other. Other imputers keep one job per cell. ``hydra.sweeper.group=false`` turns
grouping off.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore

GROUP_AXES = ("seed", "mechanism", "ratio")
GROUP_KEY = "group"


@dataclass
class GroupedSweeperConf:
    _target_: str = "hydra_plugins.metagain_sweeper.grouped_sweeper.GroupedSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    group: bool = True  # false: one job per cell, as Hydra's basic sweeper


ConfigStore.instance().store(group="hydra/sweeper", name="grouped", node=GroupedSweeperConf, provider="metagain")


def axis_of(override: str) -> str:
    """The key of an override string (``seed=3`` → ``seed``, ``+sweep=table1`` → ``+sweep``)."""
    return override.split("=", 1)[0]


def merge_jobs(jobs: List[List[str]], batchable) -> List[List[str]]:
    """Jobs (lists of override strings) with those of one group merged, in first-seen order.

    ``batchable(imputer_name)`` says whether an imputer trains with a model axis.
    """
    groups: dict = {}
    for job in jobs:
        rest = tuple(o for o in job if axis_of(o) not in GROUP_AXES)
        imputer = next((o.split("=", 1)[1] for o in job if axis_of(o) == "imputer"), None)
        key = rest if imputer is not None and batchable(imputer) else ("alone", len(groups), tuple(job))
        groups.setdefault(key, []).append(job)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        cells = "|".join(" ".join(o for o in job if axis_of(o) in GROUP_AXES) for job in members)
        merged.append(members[0] + [f"{GROUP_KEY}='{cells}'"])
    return merged


def member_overrides(task: List[str]) -> List[List[str]]:
    """The override lists of a merged job's cells (``task``: the job's own overrides)."""
    encoded = next((o.split("=", 1)[1] for o in task if axis_of(o) == GROUP_KEY), None)
    if encoded is None:
        return [task]
    rest = [o for o in task if axis_of(o) not in (*GROUP_AXES, GROUP_KEY)]
    return [rest + cell.split(" ") for cell in encoded.strip("'\"").split("|")]


def _batchable(imputer: str) -> bool:
    from experiments.registry import load_group_node

    try:
        target = str(load_group_node("imputer", imputer).get("_target_", ""))
        module, _, name = target.rpartition(".")
        import importlib

        return hasattr(getattr(importlib.import_module(module), name), "_fit_batched")
    except Exception:  # noqa: BLE001 - an imputer that cannot be resolved here runs alone (its job reports why)
        return False


class GroupedSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[Dict[str, str]] = None, group: bool = True):
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.group = bool(group)

    def split_arguments(self, overrides, max_batch_size):  # BasicSweeper calls it on the instance
        batches = BasicSweeper.split_arguments(overrides, None)
        if not self.group:
            return BasicSweeper.split_arguments(overrides, max_batch_size)
        jobs = merge_jobs([job for batch in batches for job in batch], _batchable)
        size = max_batch_size or len(jobs) or 1
        return [jobs[i:i + size] for i in range(0, len(jobs), size)]
