"""Hydra entry point: one cell, or a sweep with ``-m``.

    python -m experiments.run dataset=letter mechanism=mar ratio=0.2 imputer=missfi seed=0
    python -m experiments.run -m dataset=wine,heart mechanism=mcar,mar imputer=mean,knni hydra/launcher=joblib
    python -m experiments.run -m +sweep=table1 hydra/launcher=submitit_slurm
    python -m experiments.run dataset=wine imputer=gain force=true      # rerun a stored cell

Each cell prints one line, ``[ok]``, ``[cached]`` (served from the store), ``[invalid]``,
``[failed]`` or ``[skipped]``; the command ends with a summary line and its exit code says what
happened (:data:`EXIT_CODES`). Every job appends its outcome to a folder named by the
``METAGAIN_OUTCOMES`` environment variable, which this command creates and the launchers' workers
inherit (joblib, submitit local and SLURM alike), so the summary covers jobs run elsewhere.
An environment fault (data file unreadable, results folder unwritable) is recorded there once;
the jobs after it return at once, and the command exits with its message.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import traceback
import uuid
from collections import Counter
from pathlib import Path

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig

from experiments.config import register_schema
from experiments.registry import config_dirs
from experiments.runner import EnvironmentFault, run_group
from hydra_plugins.metagain_sweeper.grouped_sweeper import member_overrides

register_schema()
log = logging.getLogger("experiments.run")

#: Exit codes of ``experiments.run`` and ``experiments.reproduce`` (the highest that applies wins).
EXIT_CODES = {
    0: "every cell ok, cached or skipped",
    1: "a cell failed (its row says why; it is retried on the next run)",
    2: "a cell is invalid (ill-posed: its row says why; it is not retried until its config changes)",
    3: "usage error (bad override, unknown config): nothing ran",
    4: "environment fault (data file unreadable, results folder unwritable): the sweep stopped",
}
OUTCOMES_ENV = "METAGAIN_OUTCOMES"
FAULT_FILE = "FAULT.txt"


def outcome_of(row: dict) -> str:
    """``cached`` for an ok row served from the store, else the row's status (an invalid row stays invalid)."""
    return "cached" if row.get("served") == "cached" and row["status"] == "ok" else str(row["status"])


def record(folder: str | None, name: str, text: str) -> None:
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_text(text)


def cell_line(row: dict) -> str:
    metrics = {k: row.get(k) for k in ("metric_armse_test", "metric_armse_train", "metric_rmse_test",
                                       "metric_accuracy", "metric_accuracy_complete")}
    return (f"[{outcome_of(row)}] {row['dataset']} {row['mechanism']} r={row['ratio']} {row['imputer']} "
            f"seed={row['seed']} profile={row['profile']} "
            + " ".join(f"{k.removeprefix('metric_')}={v:.4f}" for k, v in metrics.items()
                       if isinstance(v, (int, float)))
            + (" (variant: " + row["overrides"] + ")" if row.get("variant") else "")
            + (" (from the store)" if row.get("served") == "cached" and row["status"] != "ok" else "")
            + (f" error={row['error']}" if row.get("error") and row.get("status") != "ok" else ""))


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str | None:
    folder = os.environ.get(OUTCOMES_ENV)
    if folder and (Path(folder) / FAULT_FILE).exists():
        return None  # an earlier job met an environment fault: the sweep is over
    try:
        rows = run_group(group_configs(cfg), force=bool(cfg.get("force", False)))
    except EnvironmentFault as err:
        if not folder:
            raise
        record(folder, FAULT_FILE, str(err))  # cli() prints it once, after the sweep
        return "fault"
    except Exception:
        record(folder, f"{uuid.uuid4().hex}.failed", "")
        raise
    for row in rows:
        record(folder, f"{row['cell_key']}.{uuid.uuid4().hex[:8]}.{outcome_of(row)}", "")
        print(cell_line(row), flush=True)
    return ",".join(outcome_of(row) for row in rows)


def group_configs(cfg: DictConfig) -> list:
    """The job's cells: itself, or the cells the grouped sweeper merged into it (``group=…``)."""
    if not cfg.get("group"):
        return [cfg]
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    # the job's own search path (a user's config folders), which compose does not inherit
    searchpath = ["hydra.searchpath=[" + ",".join(hydra_cfg.searchpath) + "]"] if hydra_cfg.searchpath else []
    return [compose(config_name="config", overrides=overrides + searchpath)
            for overrides in member_overrides(list(hydra_cfg.overrides.task))]


def tally(folder: Path) -> Counter:
    """Outcomes recorded in ``folder``: ok / cached / skipped / failed / invalid."""
    return Counter(path.suffix.lstrip(".") for path in folder.iterdir() if path.name != FAULT_FILE)


def exit_code(counts: Counter, fault: bool, usage_error: bool) -> int:
    if fault:
        return 4
    if usage_error:
        return 3
    if counts.get("invalid"):
        return 2
    if counts.get("failed"):
        return 1
    return 0


def summary_line(counts: Counter) -> str:
    order = ("ok", "cached", "skipped", "failed", "invalid")
    return "summary: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in order)


def cli() -> int:
    """Run ``main`` under Hydra, then print the summary and return the exit code."""
    user_dirs = config_dirs()[1:]  # $METAGAIN_CONFIG_PATH: a user's own imputer and dataset yamls
    if user_dirs and not any(arg.startswith("hydra.searchpath") for arg in sys.argv[1:]):
        sys.argv.append("hydra.searchpath=[" + ",".join(f"file://{d}" for d in user_dirs) + "]")
    inherited = os.environ.get(OUTCOMES_ENV)
    folder = Path(inherited) if inherited else _new_outcomes_folder()
    os.environ[OUTCOMES_ENV] = str(folder)
    hydra_code = 0
    try:
        main()
    except SystemExit as stop:  # Hydra exits 1 on a config error, and 0 after --help/--cfg
        hydra_code = stop.code if isinstance(stop.code, int) else 1
    except HydraException:  # raised instead of the exit above when HYDRA_FULL_ERROR=1
        traceback.print_exc()
        hydra_code = 1
    fault_file = folder / FAULT_FILE
    fault = fault_file.exists()
    counts = tally(folder) if folder.exists() else Counter()
    usage_error = hydra_code != 0 and not sum(counts.values()) and not fault
    code = exit_code(counts, fault, usage_error)
    if fault:
        print(f"stopped: {fault_file.read_text()}", file=sys.stderr)
    if sum(counts.values()):
        print(summary_line(counts), file=sys.stderr)
    if not inherited:
        shutil.rmtree(folder, ignore_errors=True)
    if code == 0 and hydra_code != 0:
        code = 1  # a job raised past the runner (a bug): Hydra printed it
    return code


def _new_outcomes_folder() -> Path:
    """A fresh folder for this command's outcomes, under ``multirun/`` of the working directory
    (which cluster workers share), else the system's temporary folder."""
    for root in (Path.cwd() / "multirun" / ".outcomes", Path(tempfile.gettempdir())):
        try:
            root.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="outcomes-", dir=root))
        except OSError:
            continue
    raise SystemExit("error: cannot create a folder for the sweep's outcomes (cwd and /tmp unwritable).")


if __name__ == "__main__":
    sys.exit(cli())
