"""Hydra multirun sweeps in a subprocess: rows written, reruns add none, a killed sweep resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def sweep(tmp_path, *args, wait=True, options=()):
    env = dict(os.environ, METAGAIN_RESULTS_DIR=str(tmp_path), HYDRA_FULL_ERROR="1")
    cmd = [sys.executable, "-m", "experiments.run", "-m", *options, "dataset=synthetic", "profile=smoke",
           f"hydra.sweep.dir={tmp_path / 'multirun'}", *args]
    if wait:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def rows(tmp_path):
    return {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}


def test_joblib_multirun_writes_rows_and_rerun_adds_none(tmp_path):
    args = ["imputer=mean,knni", "mechanism=mcar,mnar", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    done = sweep(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    first = rows(tmp_path)
    assert len(first) == 4
    for name in first:
        assert json.loads((tmp_path / "runs" / name).read_text())["status"] == "ok"
    again = sweep(tmp_path, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert rows(tmp_path) == first  # nothing added, nothing rewritten


def test_killed_sweep_resumes_without_duplicates_or_corrupt_rows(tmp_path):
    args = ["imputer=slow", "seed=0,1,2,3,4,5"]
    options = ["--config-dir", str(ROOT / "tests" / "conf")]
    proc = sweep(tmp_path, *args, wait=False, options=options)
    deadline = time.time() + 120
    while len(rows(tmp_path)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = rows(tmp_path)
    assert 2 <= len(partial) < 6, "the sweep should have been killed midway"
    done = sweep(tmp_path, *args, options=options)
    assert done.returncode == 0, done.stderr[-3000:]
    final = rows(tmp_path)
    assert len(final) == 6
    assert all(final[name] == stamp for name, stamp in partial.items())  # finished cells not rerun
    seeds = sorted(json.loads((tmp_path / "runs" / n).read_text())["seed"] for n in final)
    assert seeds == [0, 1, 2, 3, 4, 5]
    assert not list((tmp_path / "runs").glob("*.tmp"))


def test_submitit_local_launcher_runs_the_same_path(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    done = sweep(tmp_path, "imputer=mean", "seed=0,1", "hydra/launcher=submitit_local",
                 "hydra.launcher.timeout_min=5", "hydra.launcher.cpus_per_task=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(rows(tmp_path)) == 2


def test_an_ill_posed_cell_does_not_stop_the_sweep_and_the_exit_code_says_so(tmp_path):
    """Two infeasible MAR ratios among valid ones: 2 invalid rows, the valid cells run, exit 2."""
    args = ["ratio=0.95,0.2", "mechanism=mar", "imputer=mean,knni"]
    done = sweep(tmp_path, *args)
    assert done.returncode == 2, done.stderr[-3000:]
    stored = [json.loads((tmp_path / "runs" / n).read_text()) for n in rows(tmp_path)]
    assert sorted(r["status"] for r in stored) == ["invalid", "invalid", "ok", "ok"]
    assert "summary: 2 ok, 0 cached, 0 skipped, 0 failed, 2 invalid" in done.stderr
    again = sweep(tmp_path, *args)
    assert again.returncode == 2 and again.stdout.count("[cached]") == 2
    assert again.stdout.count("[invalid]") == 2 and again.stdout.count("(from the store)") == 2
    assert "summary: 0 ok, 2 cached, 0 skipped, 0 failed, 2 invalid" in again.stderr


def test_exit_codes_of_a_single_cell(tmp_path):
    ok = sweep(tmp_path, "imputer=mean")
    assert ok.returncode == 0 and "[ok]" in ok.stdout
    cached = sweep(tmp_path, "imputer=mean")
    assert cached.returncode == 0 and "[cached]" in cached.stdout
    forced = sweep(tmp_path, "imputer=mean", "force=true")
    assert forced.returncode == 0 and "[ok]" in forced.stdout
    failed = sweep(tmp_path, "imputer=failing", options=["--config-dir", str(ROOT / "tests" / "conf")])
    assert failed.returncode == 1 and "[failed]" in failed.stdout
    usage = sweep(tmp_path, "imputer=no_such_imputer")
    assert usage.returncode == 3


def test_an_environment_fault_stops_the_sweep_once(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "runs").write_text("not a folder")
    env = dict(os.environ, METAGAIN_RESULTS_DIR=str(store))
    done = subprocess.run([sys.executable, "-m", "experiments.run", "-m", "dataset=synthetic", "profile=smoke",
                           "imputer=mean,knni", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                           f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 4, done.stderr[-3000:]
    assert done.stderr.count("Cannot create the run store") == 1


def test_a_users_batched_imputer_from_their_own_config_folder_trains_as_a_group(tmp_path):
    """A grouped job composes its cells inside the job: the user's folder must reach that compose."""
    folder = tmp_path / "mine" / "imputer"
    folder.mkdir(parents=True)
    (folder / "mygain.yaml").write_text("name: mygain\nlabel: My GAIN\n_target_: baselines.gain.GAINImputer\n"
                                        "iterations: 50\nbatch_size: 32\n")
    env = dict(os.environ, METAGAIN_CONFIG_PATH=str(tmp_path / "mine"))
    done = subprocess.run([sys.executable, "-m", "experiments.run", "-m", "dataset=synthetic", "profile=smoke",
                           f"hydra.sweep.dir={tmp_path / 'multirun'}", f"results_dir={tmp_path}",
                           "imputer=mygain", "seed=0,1"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    made = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*.json")]
    assert sorted((r["imputer"], r["seed"], r["status"], r["group_size"]) for r in made) == \
        [("mygain", 0, "ok", 2), ("mygain", 1, "ok", 2)]
