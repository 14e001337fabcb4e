"""Grouped cells: the group runner, the grouped Hydra sweeper and reproduce's merged sweeps.

A batched imputer's cells of one dataset train as one computation; every cell still gets its own
row under its own key, with the numbers it gets alone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments import store
from experiments.reproduce import merge_runs
from experiments.runner import compose_cell, run_cell, run_group
from hydra_plugins.metagain_sweeper.grouped_sweeper import member_overrides, merge_jobs
from tests.conftest import ROOT

METRICS = ("metric_armse_test", "metric_armse_train", "metric_rmse_test", "metric_accuracy")
GROUP_CELLS = [("mcar", 0), ("mar", 0), ("mcar", 1), ("mnar", 2)]


def cells(tmp_path, imputer="gain", members=GROUP_CELLS, *extra):
    return [compose_cell([f"dataset=heart", "profile=smoke", f"imputer={imputer}", f"mechanism={mech}",
                          f"seed={seed}", f"results_dir={tmp_path}", *extra]) for mech, seed in members]


def test_a_group_gives_each_cell_its_alone_row(tmp_path):
    grouped = run_group(cells(tmp_path / "group"))
    alone = [run_cell(cfg) for cfg in cells(tmp_path / "alone")]
    for g, a in zip(grouped, alone):
        assert g["status"] == a["status"] == "ok", (g.get("error"), a.get("error"))
        assert g["cell_key"] == a["cell_key"]
        for metric in METRICS:
            assert g[metric] == pytest.approx(a[metric], rel=1e-6, abs=1e-9), metric
        assert g["group_size"] == len(GROUP_CELLS) and "group_size" not in a
        assert g["group_seconds"] == pytest.approx(g["fit_seconds"] * len(GROUP_CELLS))
    assert len({g["metric_armse_test"] for g in grouped}) == len(GROUP_CELLS)  # four different cells


@pytest.mark.parametrize("imputer", ["midae", "vaei", "hivae", "remasker", "metagain", "metagain_none"])
def test_every_batched_imputer_trains_as_a_group_in_the_runner(tmp_path, imputer):
    # the runner asks for the group key before any fit: every class must answer it unfitted
    rows = run_group(cells(tmp_path, imputer, GROUP_CELLS[:2]))
    assert [r["status"] for r in rows] == ["ok", "ok"], [r.get("error") for r in rows]
    assert [r["group_size"] for r in rows] == [2, 2]


def test_classic_imputers_are_fitted_one_by_one_in_a_group(tmp_path):
    rows = run_group(cells(tmp_path, "mean"))
    assert all(r["status"] == "ok" and "group_size" not in r for r in rows)


def test_a_killed_group_resumes_per_cell(tmp_path, monkeypatch):
    import experiments.runner as runner

    finish, written = runner._finish_cell, []

    def dies_after_two(cell):
        if len(written) == 2:
            raise KeyboardInterrupt  # the process is killed while scoring the third cell
        written.append(finish(cell))
        return written[-1]

    monkeypatch.setattr(runner, "_finish_cell", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_group(cells(tmp_path))
    monkeypatch.undo()
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    rows = run_group(cells(tmp_path))
    assert [r["served"] for r in rows] == ["cached", "cached", "run", "run"]
    assert rows[2]["group_size"] == 2  # only the two missing cells were trained again
    again = [run_cell(cfg) for cfg in cells(tmp_path / "alone")]
    for r, a in zip(rows, again):
        assert r["metric_armse_test"] == pytest.approx(a["metric_armse_test"], rel=1e-6)


def test_a_diverged_model_fails_only_its_own_row(tmp_path, monkeypatch):
    import baselines.gain as gain

    loss = gain.discriminator_loss

    def second_diverges(m, m_hat):
        value = loss(m, m_hat)
        if value.shape[0] == len(GROUP_CELLS):
            value = value * gain.torch.tensor([1.0, float("inf"), 1.0, 1.0])
        return value

    monkeypatch.setattr(gain, "discriminator_loss", second_diverges)
    rows = run_group(cells(tmp_path / "group"))
    monkeypatch.undo()
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "ok"]
    assert "TrainingDivergedError" in rows[1]["error"]
    alone = run_cell(cells(tmp_path / "alone", "gain", GROUP_CELLS[2:3])[0])
    assert rows[2]["metric_armse_test"] == pytest.approx(alone["metric_armse_test"], rel=1e-6)


def test_merge_jobs_groups_batched_imputers_only():
    jobs = [[f"dataset={d}", f"imputer={i}", f"mechanism={m}", f"seed={s}"]
            for d in ("wine", "heart") for i in ("gain", "mean") for m in ("mcar", "mar") for s in (0, 1)]
    merged = merge_jobs(jobs, lambda name: name == "gain")
    assert len(merged) == 2 + 2 * 4  # one gain job per dataset, the mean cells alone
    gain_job = next(job for job in merged if "imputer=gain" in job and "dataset=heart" in job)
    members = member_overrides(gain_job)
    assert sorted(tuple(sorted(m)) for m in members) == sorted(
        tuple(sorted(job)) for job in jobs if "imputer=gain" in job and "dataset=heart" in job)
    assert member_overrides(["dataset=wine", "seed=0"]) == [["dataset=wine", "seed=0"]]


def test_reproduce_runs_tables_one_to_three_as_one_command():
    grid = {"dataset": ["wine"], "mechanism": ["mcar"], "ratio": ["0.2"], "imputer": ["gain"], "seed": ["0"]}
    runs = merge_runs({"table1": grid, "table2": {**grid, "mechanism": ["mar"]},
                       "table5": {**grid, "imputer": ["metagain_none"]}})
    assert [name for name, _ in runs] == ["table1+table2", "table5"]
    assert runs[0][1]["mechanism"] == ["mcar", "mar"]


def sweep(tmp_path, *args):
    env = dict(os.environ, METAGAIN_RESULTS_DIR=str(tmp_path), HYDRA_FULL_ERROR="1")
    cmd = [sys.executable, "-m", "experiments.run", "-m", "dataset=heart", "profile=smoke",
           f"hydra.sweep.dir={tmp_path / 'multirun'}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def stored(tmp_path):
    return {row["cell_key"]: row for row in
            (json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json"))}


def test_a_hydra_sweep_groups_a_batched_imputer_and_matches_the_ungrouped_sweep(tmp_path):
    args = ["imputer=gain,mean", "mechanism=mcar,mar", "seed=0,1"]
    grouped = sweep(tmp_path / "g", *args)
    assert grouped.returncode == 0, grouped.stderr[-3000:]
    assert grouped.stderr.count("summary: 8 ok") == 1
    plain = sweep(tmp_path / "p", *args, "hydra.sweeper.group=false")
    assert plain.returncode == 0, plain.stderr[-3000:]
    g, p = stored(tmp_path / "g"), stored(tmp_path / "p")
    assert set(g) == set(p) and len(g) == 8
    for key, row in g.items():
        assert row["status"] == "ok"
        assert row.get("group_size") == (4 if row["imputer"] == "gain" else None)
        assert "group_size" not in p[key]
        assert row["metric_armse_test"] == pytest.approx(p[key]["metric_armse_test"], rel=1e-6)
    # four gain cells in one job: 1 gain job + 4 mean jobs
    assert len([d for d in (tmp_path / "g" / "multirun").iterdir() if d.is_dir()]) == 5
    again = sweep(tmp_path / "g", *args)
    assert again.returncode == 0 and "summary: 0 ok, 8 cached" in again.stderr
    assert store.read_json((tmp_path / "g" / "runs" / f"{next(iter(g))}.json")) is not None
