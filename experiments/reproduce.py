"""Run every sweep of a profile, then rebuild its tables, figures and report.

    python -m experiments.reproduce --profile quick --launcher joblib
    python -m experiments.reproduce --profile paper --plan
    python -m experiments.reproduce --profile paper --launcher submitit_slurm -- hydra.launcher.partition=gpu

For each sweep in ``conf/sweep/`` (sweeps whose grids differ only in the mechanism, Tables 1–4,
share one command: :func:`merge_runs`) it builds one Hydra multirun command whose grid is the
sweep's, with the profile's datasets and seeds (and, for Figure 2, its ratios and datasets)
and the sweep's imputers narrowed to the profile's ``imputers`` list when it has one. The
command runs as a subprocess; cells already in the store are skipped by the runner, so an
interrupted reproduce resumes, and a sweep whose cells are all ok in the store, or were all
run by an earlier sweep of the same call (Table 4 after Table 1), is not launched at all. Failed and skipped cells are retried by the runner, as the
store defines (a skipped cell returns at once unless its optional extra is now installed).
While a sweep runs, progress (cells done of total, failures, elapsed time, ETA) comes from
polling the store. ``--plan`` only counts: cells per sweep, how many are done, and a time
estimate from the cost model (:mod:`experiments.costs`: unit costs calibrated on this machine,
the store's times where it has them), with SLURM's time limit and memory per sweep derived
from it.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from experiments import report, tables
from experiments.registry import imputer_names

SWEEP_DIR = tables.ROOT / "conf" / "sweep"
SWEEPS = tuple(tables.LAYOUT.sweeps)  # conf/sweep/*.yaml in their `sweep.order`
AXES = ("dataset", "mechanism", "ratio", "imputer", "seed")
FINISHED = ("ok", "invalid", "failed", "skipped")  # a row of the current code exists
LAUNCHERS = ("joblib", "local", "submitit_local", "submitit_slurm", "slurm")  # local/slurm: conf/hydra/launcher presets


def sweep_params(sweep: str) -> dict[str, list[str]]:
    """The grid of ``conf/sweep/<sweep>.yaml`` (``hydra.sweeper.params``), each axis expanded."""
    if sweep not in tables.LAYOUT.sweeps:
        raise ValueError(f"There is no sweep {sweep!r}; choose from {list(SWEEPS)}.")
    return {axis: list(values) for axis, values in tables.LAYOUT.sweeps[sweep].grid.items()}


def sweep_grid(sweep: str, profile: dict, extras=()) -> dict[str, list[str]]:
    """The sweep's grid at ``profile``'s budget: its datasets, seeds, ratios and imputers.

    The profile's lists named by the sweep's ``datasets_from``/``ratios_from`` replace the grid's;
    ``imputers`` narrows the grid's imputers; ``extras`` (the profile's ``extra_imputers`` and
    ``--add-imputer``) join the sweeps whose ``sweep.extras`` is true, after the paper's methods.
    """
    spec = tables.LAYOUT.sweeps[sweep]
    grid = sweep_params(sweep)
    if profile.get(spec.datasets_from):
        grid["dataset"] = [str(d) for d in profile[spec.datasets_from]]
    if profile.get("seeds") is not None:
        grid["seed"] = [str(s) for s in profile["seeds"]]
    if spec.ratios_from and profile.get(spec.ratios_from):
        grid["ratio"] = [str(r) for r in profile[spec.ratios_from]]
    if profile.get("imputers"):
        allowed = set(profile["imputers"])
        grid["imputer"] = [name for name in grid["imputer"] if name in allowed]
    if spec.extras:
        grid["imputer"] += [name for name in extras if name not in grid["imputer"]]
    missing = [axis for axis in AXES if axis not in grid]
    if missing:
        raise ValueError(f"conf/sweep/{sweep}.yaml does not set {missing} under hydra.sweeper.params.")
    return {axis: grid[axis] for axis in AXES}


def expand(grid: dict[str, list[str]]) -> pd.DataFrame:
    """Every cell of a grid as a row (dataset, mechanism, ratio, imputer, seed), typed like the store."""
    index = pd.MultiIndex.from_product([grid[axis] for axis in AXES], names=list(AXES))
    cells = index.to_frame(index=False)
    cells["ratio"] = cells["ratio"].astype(float).round(6)
    cells["seed"] = cells["seed"].astype(int)
    return cells


def cell_status(cells: pd.DataFrame, rows: pd.DataFrame, profile: str) -> pd.Series:
    """Each cell's status in the store: 'ok', 'invalid', 'skipped', 'failed', 'stale' or '' (never run).

    ``rows`` as :func:`experiments.store.load_rows` gives them; with ``which="all"`` (a ``current``
    column), a cell whose only rows were made by other code, data or config is 'stale' (to run).
    """
    rows = tables.normalise_rows(rows)
    mine = rows[rows["profile"] == profile].copy()
    current = mine["current"].fillna(True).astype(bool) if "current" in mine else pd.Series(True, mine.index)
    variant = mine["variant"].fillna(False).astype(bool) if "variant" in mine else pd.Series(False, mine.index)
    stale = mine[~current & ~variant].drop_duplicates(list(AXES))[list(AXES)].assign(stale="stale")
    mine = mine[current]
    # Where one cell has several rows (a retry after a failure), the best status counts.
    mine["rank"] = mine["status"].map({"ok": 0, "invalid": 1, "skipped": 2, "failed": 3}).fillna(4)
    mine = mine.sort_values("rank", kind="stable").drop_duplicates(list(AXES))
    merged = cells.merge(mine[list(AXES) + ["status"]], on=list(AXES), how="left")
    merged = merged.merge(stale, on=list(AXES), how="left")
    return merged["status"].fillna(merged["stale"]).fillna("").astype(str)


def plan(rows: pd.DataFrame, profile_name: str, profile: dict, sweeps=SWEEPS, extras=(), *, model=None,
         n_jobs: int = 1, launcher: str = "joblib", extra=()) -> pd.DataFrame:
    """Per sweep: cells, ok, invalid, skipped, failed, stale, to run, and the estimated time left.

    Each cell to run (not ok or invalid; a skipped one returns at once and costs nothing) is
    costed by ``model`` (:class:`experiments.costs.CostModel`: the store's mean time of that
    imputer on that dataset at this profile where it has one, else the calibrated cost model):
    ``est_seconds`` sums them (CPU seconds, one thread), ``wall_seconds`` schedules them in grid
    order on the launcher's workers (``n_jobs`` locally, the array's parallelism on SLURM),
    ``longest_seconds`` is the largest, ``from_store`` counts the cells the store timed,
    ``unknown`` those no model covers and ``new_to_run`` those no earlier sweep runs. A last row
    ``all`` counts each distinct cell once (sweeps share cells: Table 4 is Table 1's grid) and its
    wall time runs the sweeps one after another, each paying only the cells no earlier sweep ran,
    as reproduce does.
    """
    from experiments import costs

    model = model if model is not None else costs.CostModel(costs.load_costs(calibrate_missing=False)[0], rows)
    workers = costs.launcher_workers(launcher, n_jobs, extra)
    records, every = [], []
    seen, wall_all = set(), 0.0
    launches = {part: expand(grid) for name, grid in merge_runs(
        {sweep: sweep_grid(sweep, profile, extras) for sweep in sweeps}) for part in name.split("+")}
    for sweep in sweeps:
        cells = expand(sweep_grid(sweep, profile, extras))
        launch = launches[sweep]  # the cells launched with it: batched groups span merged sweeps
        sizes = group_sizes(launch).groupby([launch["imputer"], launch["dataset"]]).first()
        cells["group"] = [int(sizes.get((i, d), 1)) for i, d in zip(cells["imputer"], cells["dataset"])]
        cells["status"] = cell_status(cells, rows, profile_name).to_numpy()
        cells["seconds"], cells["source"] = _cell_costs(cells, model, profile_name)
        every.append(cells)
        record = _count(cells)
        record["wall_seconds"] = costs.schedule(cells.loc[_to_time(cells), "seconds"].fillna(0).tolist(), workers)
        keys = list(cells[list(AXES)].itertuples(index=False, name=None))
        new = pd.Series([key not in seen for key in keys], index=cells.index)
        seen.update(keys)
        record["new_to_run"] = int((_to_time(cells) & new).sum())
        records.append({"sweep": sweep, **record})
        wall_all += costs.schedule(cells.loc[_to_time(cells) & new, "seconds"].fillna(0).tolist(), workers)
    if every:
        union = pd.concat(every).drop_duplicates(list(AXES))
        records.append({"sweep": "all", **_count(union), "wall_seconds": wall_all})
        records[-1]["new_to_run"] = int(_to_time(union).sum())
    return pd.DataFrame.from_records(records, columns=[
        "sweep", "cells", "ok", "invalid", "skipped", "failed", "stale", "to_run", "est_seconds", "unknown",
        "wall_seconds", "longest_seconds", "from_store", "new_to_run"])


def group_sizes(cells: pd.DataFrame) -> pd.Series:
    """Per cell, how many cells of one launch train with it as one batched group: its (imputer,
    dataset) cells when the imputer is batched (the grouped sweeper), else 1."""
    from hydra_plugins.metagain_sweeper.grouped_sweeper import _batchable

    counts = cells.groupby(["imputer", "dataset"])["seed"].transform("size")
    batched = cells["imputer"].map({name: _batchable(name) for name in cells["imputer"].unique()})
    return counts.where(batched.astype(bool), 1).astype(int)


def _cell_costs(cells: pd.DataFrame, model, profile_name: str) -> tuple[list, list]:
    seconds, sources = [], []
    groups = cells["group"] if "group" in cells else pd.Series(1, index=cells.index)
    for imputer, dataset, ratio, group in zip(cells["imputer"], cells["dataset"], cells["ratio"], groups):
        value, source = model.cell_seconds(imputer, dataset, profile_name, ratio, int(group))
        seconds.append(float("nan") if value is None else value)
        sources.append(source if value is not None else "unknown")
    return seconds, sources


def _to_time(cells: pd.DataFrame) -> pd.Series:
    """The cells a run would spend time on: not done (ok/invalid) and not skipped before."""
    return ~cells["status"].isin(["ok", "invalid", "skipped"])


def _count(cells: pd.DataFrame) -> dict:
    left = cells[~cells["status"].isin(["ok", "invalid"])]
    timed = left[left["status"] != "skipped"]  # a skipped cell returns at once
    known = timed["seconds"].notna()
    return {"cells": len(cells), "ok": int((cells["status"] == "ok").sum()),
            "invalid": int((cells["status"] == "invalid").sum()),
            "skipped": int((cells["status"] == "skipped").sum()),
            "failed": int((cells["status"] == "failed").sum()),
            "stale": int((cells["status"] == "stale").sum()), "to_run": len(left),
            "est_seconds": float(timed.loc[known, "seconds"].sum()), "unknown": int((~known).sum()),
            "longest_seconds": float(timed.loc[known, "seconds"].max()) if known.any() else 0.0,
            "from_store": int((timed["source"] == "store").sum())}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def format_plan(table: pd.DataFrame, n_jobs: int, launcher: str = "joblib", workers: int | None = None) -> str:
    """The plan as aligned text: counts, CPU hours, wall time on the launcher's workers, longest cell.

    ``table`` is :func:`plan`'s; without a ``wall_seconds`` column the wall time is the CPU time
    over ``n_jobs``. A sweep longer than a night here (``costs.NIGHT_HOURS`` of wall time) is
    flagged: it belongs on a GPU or a cluster.
    """
    from experiments.costs import NIGHT_HOURS

    workers = workers or n_jobs
    where = f"{workers} worker{'s' if workers != 1 else ''}" + ("" if launcher in ("joblib", "local") else f", {launcher}")
    lines = [f"{'sweep':<11}{'cells':>7}{'ok':>7}{'invalid':>9}{'skipped':>9}{'failed':>8}{'stale':>7}"
             f"{'to run':>8}{'CPU h':>9}   {'wall (' + where + ')':>24}{'longest cell':>14}"]
    for row in table.itertuples():
        wall = getattr(row, "wall_seconds", row.est_seconds / max(n_jobs, 1))
        longest = getattr(row, "longest_seconds", float("nan"))
        if row.to_run == 0:
            estimate = f"{'-':>9}   {'nothing left':>24}{'-':>14}"
        else:
            estimate = f"{row.est_seconds / 3600:>9.2f}   {_duration(wall):>24}" \
                       f"{_duration(longest) if longest == longest else '-':>14}"
        notes = []
        if getattr(row, "new_to_run", None) == 0 and row.to_run and row.sweep != "all":
            notes.append("its cells are run by earlier sweeps (a full reproduce skips it)")
        if row.unknown:
            notes.append(f"+ {row.unknown} cells with no cost model")
        if row.to_run and wall > NIGHT_HOURS * 3600:
            notes.append(f"> {NIGHT_HOURS:g} h wall here: better on a GPU or a cluster (--launcher slurm)")
        lines.append(f"{row.sweep:<11}{row.cells:>7}{row.ok:>7}{row.invalid:>9}{row.skipped:>9}{row.failed:>8}"
                     f"{row.stale:>7}{row.to_run:>8}{estimate}" + ("  " + "; ".join(notes) if notes else ""))
    return "\n".join(lines)


def sweep_command(sweep: str, grid: dict[str, list[str]], profile_name: str, launcher: str,
                  n_jobs: int, results_dir: str | None = None, extra=(), resources: dict | None = None) -> list[str]:
    """The Hydra multirun command of one sweep; the grid's axes are passed explicitly.

    On SLURM (``slurm``, ``submitit_slurm``) every array task gets the time limit and memory the
    cost model derives for the sweep's largest cell (:func:`experiments.costs.slurm_resources`:
    estimate × 2, peak memory × 1.5, floors 60 min and 4 GB), unless ``extra`` sets them;
    ``resources`` passes precomputed ones.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"Unknown launcher {launcher!r}; choose one of {list(LAUNCHERS)}.")
    command = [sys.executable, "-m", "experiments.run", "-m", f"+sweep={sweep}",
               f"profile={profile_name}"]
    command += [f"{axis}={','.join(values)}" for axis, values in grid.items()]
    command += [f"hydra/launcher={launcher}", "threads=1"]
    if launcher in ("joblib", "local"):
        command.append(f"hydra.launcher.n_jobs={n_jobs}")
    if launcher in ("slurm", "submitit_slurm"):
        if resources is None:
            from experiments import costs

            resources = costs.slurm_resources(grid, profile_name, _store_model(results_dir))
        for key in ("timeout_min", "mem_gb"):
            if not any(str(item).startswith(f"hydra.launcher.{key}=") for item in extra):
                command.append(f"hydra.launcher.{key}={resources[key]}")
    if results_dir is not None:
        command.append(f"results_dir={results_dir}")
    return command + list(extra)


_MODELS: dict = {}


def merge_runs(grids: dict[str, dict[str, list[str]]]) -> list[tuple[str, dict[str, list[str]]]]:
    """The sweeps to launch, with consecutive sweeps whose grids differ only in ``mechanism`` merged.

    Tables 1–3 share every axis but the mechanism, so they run as one Hydra command
    (``table1+table2+table3``): the grouped sweeper then trains a batched imputer's cells of one
    dataset, seeds × mechanisms, as one computation (15 fits at the paper profile's 5 seeds).
    """
    runs: list[tuple[str, dict[str, list[str]]]] = []
    for sweep, grid in grids.items():
        if runs:
            name, last = runs[-1]
            if all(last[axis] == grid[axis] for axis in AXES if axis != "mechanism"):
                mechanisms = last["mechanism"] + [m for m in grid["mechanism"] if m not in last["mechanism"]]
                runs[-1] = (f"{name}+{sweep}", {**last, "mechanism": mechanisms})
                continue
        runs.append((sweep, grid))
    return runs


def _store_model(results_dir: str | None):
    """The cost model over this machine's calibration (never measured here) and the store's rows."""
    from experiments import costs
    from experiments.store import load_rows

    root = str(report.results_root(results_dir))
    if root not in _MODELS:
        data, source = costs.load_costs(calibrate_missing=False)
        _MODELS[root] = costs.CostModel(data, load_rows(Path(root), which="all"), source)
    return _MODELS[root]


def default_jobs() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_sweep(command: list[str], cells: pd.DataFrame, load_rows, root: Path, profile: str,
              sweep: str, poll_seconds: float = 10.0, stream=sys.stderr) -> int:
    """Run one sweep's command, printing store-based progress until it exits; returns its code."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    start = time.monotonic()
    # A cell counts as done once it has a row; rows of earlier runs count from the start, so the
    # ETA is paced by the cells this run adds (a retried failure shows only when it turns ok).
    done_before = int(cell_status(cells, load_rows(root), profile).isin(FINISHED).sum())
    process = subprocess.Popen(command, env=env)
    last = None
    while True:
        finished = process.poll() is not None
        status = cell_status(cells, load_rows(root), profile)
        done = int(status.isin(FINISHED).sum())
        counts = f"{done}/{len(cells)} cells done, {int((status == 'failed').sum())} failed"
        elapsed = time.monotonic() - start
        new, left = done - done_before, len(cells) - done
        eta = _duration(elapsed / new * left) if new > 0 and left > 0 else "—"
        if counts != last or finished:
            print(f"[{sweep}] {counts}, elapsed {_duration(elapsed)}, ETA {eta}", file=stream,
                  flush=True)
            last = counts
        if finished:
            return process.returncode
        time.sleep(poll_seconds)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # a usage error exits 3, as experiments.run's does
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
    parser = _Parser(
        description="Run every sweep of a profile (resuming), then build its tables, figures and "
                    "REPORT.md. Arguments after `--` go to every Hydra command unchanged.")
    parser.add_argument("--profile", default="paper", help="conf/profile/<name>.yaml")
    parser.add_argument("--launcher", default="joblib", choices=LAUNCHERS)
    parser.add_argument("--plan", action="store_true", help="only count cells and estimate time")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="with --plan: never measure unit costs (this machine's cache, else "
                             "experiments/costs_default.json)")
    parser.add_argument("--only", default=None, help="comma-separated sweeps, e.g. table1,table5")
    parser.add_argument("--jobs", type=int, default=None, help="parallel workers (default: cores)")
    parser.add_argument("--results-dir", default=None,
                        help="store root (default: $METAGAIN_RESULTS_DIR or results)")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument("--add-imputer", action="append", default=[], metavar="NAME[,NAME]",
                        help="run these imputers too, in Tables 1-4 and Figure 2 (after the paper's methods)")
    parser.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                        help="a folder with your own imputer/<name>.yaml (or dataset/...): added to "
                             "$METAGAIN_CONFIG_PATH for every command and for the report")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    from experiments.registry import CONFIG_PATH_ENV
    from experiments.store import load_rows

    if args.config_dir:
        missing = [d for d in args.config_dir if not Path(d).is_dir()]
        if missing:
            parser.error(f"--config-dir {', '.join(missing)} is not a folder.")
        known = [p for p in os.environ.get(CONFIG_PATH_ENV, "").split(os.pathsep) if p]
        os.environ[CONFIG_PATH_ENV] = os.pathsep.join(known + [str(Path(d).resolve()) for d in args.config_dir])
    profile_path = report.PROFILE_DIR / f"{args.profile}.yaml"
    if not profile_path.exists():
        parser.error(f"There is no profile {args.profile!r} (looked for {profile_path}).")
    profile = report.load_profile(args.profile)
    sweeps = SWEEPS if not args.only else tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in sweeps if s not in SWEEPS]
    if unknown:
        parser.error(f"Unknown sweeps {unknown}; choose from {', '.join(SWEEPS)}.")
    root = report.results_root(args.results_dir)
    n_jobs = args.jobs or default_jobs()
    extras = list(dict.fromkeys([str(n) for n in profile.get("extra_imputers") or []]
                                + [n.strip() for item in args.add_imputer for n in item.split(",") if n.strip()]))

    if args.plan:
        from experiments import costs

        rows = load_rows(root, which="all")
        grids = {sweep: sweep_grid(sweep, profile, extras) for sweep in sweeps}
        needed = sorted({name for grid in grids.values() for name in grid["imputer"]} & set(imputer_names()))
        data, source = costs.load_costs(needed, calibrate_missing=not args.no_calibrate)
        model = costs.CostModel(data, rows, source)
        table = plan(rows, args.profile, profile, sweeps, extras, model=model, n_jobs=n_jobs,
                     launcher=args.launcher, extra=extra)
        print(f"profile {args.profile}, store {root}/runs, unit costs {source} "
              f"(CPU seconds, one thread; {int(table['from_store'].iloc[-1])} cells to run timed by the store)")
        print(format_plan(table, n_jobs, args.launcher, costs.launcher_workers(args.launcher, n_jobs, extra)))
        for sweep in sweeps:
            resources = costs.slurm_resources(grids[sweep], args.profile, model) \
                if args.launcher in ("slurm", "submitit_slurm") else None
            command = sweep_command(sweep, grids[sweep], args.profile, args.launcher, n_jobs, args.results_dir,
                                    extra, resources)
            print(f"\n{sweep}: {shlex.join(['python'] + command[1:])}")
        print()
        print(costs.gpu_estimate_line(model))
        print(costs.paper_estimate_line(model=model))
        return 0

    grids = {sweep: sweep_grid(sweep, profile, extras) for sweep in sweeps}
    unregistered = sorted({name for grid in grids.values() for name in grid["imputer"]}
                          - set(imputer_names()))
    if unregistered:
        parser.error(f"The sweeps use imputers with no conf/imputer/<name>.yaml: {unregistered}; "
                     "add their configs or leave them out of the profile's `imputers`.")
    failures, launched = [], set()
    for sweep, grid in merge_runs(grids):
        cells = expand(grid)
        if cells.empty:
            print(f"[{sweep}] no cells at profile {args.profile} (no imputer of it is in the "
                  "profile's list); skipped", file=sys.stderr)
            continue
        keys = set(cells[list(AXES)].itertuples(index=False, name=None))
        status = cell_status(cells, load_rows(root), args.profile)
        if (status == "ok").all() or keys <= launched:
            # Table 4 is Table 1's grid: once that ran, rerunning it would only retry failures.
            print(f"[{sweep}] all {len(cells)} cells already ok in the store or run by an earlier "
                  "sweep", file=sys.stderr)
            continue
        launched |= keys
        command = sweep_command(sweep.split("+")[0], grid, args.profile, args.launcher, n_jobs,
                                args.results_dir, extra)
        print(f"[{sweep}] {shlex.join(['python'] + command[1:])}", file=sys.stderr, flush=True)
        code = run_sweep(command, cells, load_rows, root, args.profile, sweep, args.poll)
        if code in (3, 4):  # usage error or environment fault: the next sweep would meet it too
            print(f"[{sweep}] stopped with exit code {code}; no later sweep was started.", file=sys.stderr)
            return code
        if code != 0:
            failures.append(f"{sweep} (exit code {code})")

    invocation = "python -m experiments.reproduce " + shlex.join(argv)
    from experiments.export import write_export

    export, n_exported = write_export(root, args.profile)  # the rows that travel, beside the tables
    print(f"wrote {export} ({n_exported} cells)", file=sys.stderr)
    rows = load_rows(root)
    path = report.build_outputs(rows, args.profile, root / args.profile, invocation.strip())
    print(f"wrote {path} with the tables, figures and provenance beside it", file=sys.stderr)
    union = pd.concat([expand(grid) for grid in grids.values()]).drop_duplicates(list(AXES))
    status = cell_status(union, rows, args.profile)
    counts = {name: int((status == name).sum()) for name in ("ok", "skipped", "failed", "invalid")}
    counts["not run"] = int((~status.isin(FINISHED)).sum())
    print("summary: " + ", ".join(f"{n} {name}" for name, n in counts.items()), file=sys.stderr)
    if failures:
        print("These sweeps exited with an error (their failed or invalid cells are in the store and "
              f"the tables show them as missing): {', '.join(failures)}.", file=sys.stderr)
    if counts["invalid"]:
        return 2
    if counts["failed"] or counts["not run"] or failures:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
