"""Rows that travel: export, a store that reads exports as local rows, merge, and a report rebuilt anywhere."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from experiments import export, report, store
from experiments.runner import compose_cell, prepare_cell, run_cell


def smoke_cell(results_dir, imputer, dataset="wine", seed=0):
    return compose_cell([f"dataset={dataset}", "profile=smoke", f"imputer={imputer}", f"seed={seed}",
                         f"results_dir={results_dir}"])


@pytest.fixture(scope="module")
def machine(tmp_path_factory):
    """A store with six ok cells, one invalid and one variant, and its export."""
    root = tmp_path_factory.mktemp("machine")
    for imputer in ("mean", "knni", "gain"):
        for dataset in ("wine", "balance"):
            assert run_cell(smoke_cell(root, imputer, dataset))["status"] == "ok"
    invalid = compose_cell(["dataset=wine", "profile=smoke", "imputer=mean", "mechanism=mar", "ratio=0.9",
                            f"results_dir={root}"])
    assert run_cell(invalid)["status"] == "invalid"
    variant = smoke_cell(root, "gain")
    variant.n_draws = 3  # an override beyond the sweep axes
    assert run_cell(variant)["variant"] is True
    path, n = export.write_export(root, "smoke")
    assert n == 7 and path == root / "smoke" / "rows.csv.gz"
    return root


def test_export_is_deterministic_and_holds_current_canonical_rows_only(machine):
    first = (machine / "smoke" / "rows.csv.gz").read_bytes()
    export.write_export(machine, "smoke")
    assert (machine / "smoke" / "rows.csv.gz").read_bytes() == first
    rows = export.read_csv_rows(machine / "smoke" / "rows.csv.gz")
    assert sorted(rows["status"]) == ["invalid"] + ["ok"] * 6
    assert not rows["variant"].astype(bool).any() and "traceback" not in rows
    for column in ("cell_key", "version_imputer", "version_score", "data_hash", "git_sha", "fit_seconds",
                   "metric_armse_test", "param_iterations"):
        assert column in rows, column


def test_a_fresh_store_with_only_the_export_serves_its_cells_and_rebuilds_the_same_report(machine, tmp_path):
    fresh = tmp_path / "fresh"
    (fresh / "smoke").mkdir(parents=True)
    shutil.copy(machine / "smoke" / "rows.csv.gz", fresh / "smoke" / "rows.csv.gz")
    row = run_cell(smoke_cell(fresh, "knni", "balance"))
    assert row["served"] == "cached" and not (fresh / "runs").exists()  # nothing ran, nothing written
    local = store.load_rows(machine, profile="smoke")
    carried = store.load_rows(fresh, profile="smoke")
    assert sorted(local["cell_key"]) == sorted(carried["cell_key"])
    a, b = machine / "out-a", fresh / "out-b"
    report.build_outputs(local, "smoke", a, "cmd")
    report.build_outputs(carried, "smoke", b, "cmd")
    files_a = {p.relative_to(a): p.read_bytes() for p in sorted(a.rglob("*")) if p.is_file()}
    files_b = {p.relative_to(b): p.read_bytes() for p in sorted(b.rglob("*")) if p.is_file()}
    assert files_a.keys() == files_b.keys() and files_a == files_b


def test_a_sweep_continues_from_the_export(machine, tmp_path):
    fresh = tmp_path / "fresh"
    (fresh / "smoke").mkdir(parents=True)
    shutil.copy(machine / "smoke" / "rows.csv.gz", fresh / "smoke" / "rows.csv.gz")
    new = run_cell(smoke_cell(fresh, "mean", seed=1))
    assert new["served"] == "run"
    assert len(store.load_rows(fresh, profile="smoke")) == 8  # 7 exported + 1 local


def test_masks_are_regenerated_from_seeds(machine, tmp_path):
    cfg = OmegaConf.to_container(smoke_cell(tmp_path, "mean", "balance"), resolve=True)
    again = OmegaConf.to_container(smoke_cell(tmp_path / "other", "mean", "balance"), resolve=True)
    assert np.array_equal(prepare_cell(cfg)["hidden"], prepare_cell(again)["hidden"])


def test_merge_combines_machines_and_refuses_two_different_rows_for_one_cell(machine, tmp_path):
    other = tmp_path / "other"
    run_cell(smoke_cell(other, "mean", seed=2))
    theirs = tmp_path / "theirs.csv.gz"
    export.write_export(other, "smoke")
    shutil.copy(other / "smoke" / "rows.csv.gz", theirs)
    mine = tmp_path / "mine"
    (mine / "smoke").mkdir(parents=True)
    shutil.copy(machine / "smoke" / "rows.csv.gz", mine / "smoke" / "rows.csv.gz")
    path, counts = export.merge(mine, "smoke", [theirs])
    assert counts == {"stale_dropped": 0, "cells": 8}
    merged = export.read_csv_rows(path)
    assert len(merged) == 8 and merged["cell_key"].is_unique

    tampered = export.read_csv_rows(machine / "smoke" / "rows.csv.gz")
    tampered.loc[tampered["status"] == "ok", "metric_armse_test"] += 0.01
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(export.to_csv_bytes(tampered))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="two different rows"):
        export.merge(mine, "smoke", [bad])
    assert path.read_bytes() == before


def test_merge_drops_rows_that_are_stale_here(machine, tmp_path):
    old = export.read_csv_rows(machine / "smoke" / "rows.csv.gz")
    old = old.assign(cell_key=old["cell_key"] + "x", version_imputer="0")  # as older code would key them
    stale = tmp_path / "stale.csv.gz"
    stale.write_bytes(export.to_csv_bytes(old))
    path, counts = export.merge(tmp_path / "empty", "smoke", [stale])
    assert counts == {"stale_dropped": 7, "cells": 0}
    assert pd.read_csv(path).empty


def test_a_failed_row_travels_says_why_is_retried_and_gives_way_to_a_success(tmp_path, monkeypatch):
    import baselines.mean as mean

    def refuse(self, X, y, schema):
        raise RuntimeError("boom: this cell cannot be imputed")

    root = tmp_path / "machine"
    assert run_cell(smoke_cell(root, "mean"))["status"] == "ok"
    with monkeypatch.context() as patch:
        patch.setattr(mean.MeanImputer, "_fit", refuse)
        failed = run_cell(smoke_cell(root, "mean", seed=1))
    assert failed["status"] == "failed"
    export.write_export(root, "smoke")
    rows = export.read_csv_rows(root / "smoke" / "rows.csv.gz").sort_values("seed")
    assert list(rows["status"]) == ["ok", "failed"]
    assert rows["error"].iloc[1].startswith("RuntimeError: boom") and "traceback" not in rows

    # A fresh clone: the table says why the seed is missing; a run retries the cell, and its new
    # row replaces the failed one in the next export.
    fresh = tmp_path / "fresh"
    (fresh / "smoke").mkdir(parents=True)
    shutil.copy(root / "smoke" / "rows.csv.gz", fresh / "smoke" / "rows.csv.gz")
    report.build_outputs(store.load_rows(fresh, profile="smoke"), "smoke", fresh / "out", "cmd")
    assert "boom" in (fresh / "out" / "tables" / "table1.md").read_text()
    retried = run_cell(smoke_cell(fresh, "mean", seed=1))
    assert retried["served"] == "run" and retried["status"] == "ok"
    export.write_export(fresh, "smoke")
    assert list(export.read_csv_rows(fresh / "smoke" / "rows.csv.gz")["status"]) == ["ok", "ok"]

    # Back on the first machine, its local failed row gives way to the exported success: served,
    # loaded and merged as ok (a failure and a success of one cell are not two different rows).
    theirs = tmp_path / "theirs.csv.gz"
    shutil.copy(fresh / "smoke" / "rows.csv.gz", theirs)
    path, counts = export.merge(root, "smoke", [theirs])
    assert counts == {"stale_dropped": 0, "cells": 2}
    assert list(export.read_csv_rows(path)["status"]) == ["ok", "ok"]
    assert (root / "runs" / f"{failed['cell_key']}.json").exists()  # the local failed row is still there
    assert set(store.load_rows(root, profile="smoke")["status"]) == {"ok"}
    assert run_cell(smoke_cell(root, "mean", seed=1))["served"] == "cached"
