"""The one-cell runner: rows, resume, failures, and that hidden values never reach an imputer."""
from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments import store
from experiments.runner import CellError, compose_cell, run_cell
from tests import spies


def cell(tmp_path, *overrides, imputer=None):
    cfg = compose_cell(["dataset=synthetic", "profile=smoke", f"results_dir={tmp_path}", *overrides])
    if imputer is not None:
        cfg.imputer = OmegaConf.create(imputer)
    return cfg


SPY = {"name": "spy", "_target_": "tests.spies.SpyImputer"}


def test_row_has_identity_metrics_and_provenance(tmp_path):
    row = run_cell(cell(tmp_path, "imputer=mean", "mechanism=mar", "ratio=0.3"))
    assert row["status"] == "ok", row.get("error")
    for key in ("metric_armse_test", "metric_armse_train", "metric_rmse_test", "metric_rmse_train",
                "metric_accuracy", "metric_accuracy_complete", "fit_seconds", "transform_seconds",
                "peak_memory_mb", "device", "git_sha", "version_torch"):
        assert row.get(key) is not None, key
    assert 0 < row["metric_armse_test"] < 1 and 0 <= row["metric_accuracy"] <= 1
    assert abs(row["metric_realised_ratio"] - 0.3) < 0.05
    stored = json.loads(store.row_path(tmp_path, row["cell_key"]).read_text())
    assert stored["metric_armse_test"] == pytest.approx(row["metric_armse_test"])


def test_finished_cell_is_skipped_and_same_seed_gives_same_scores(tmp_path):
    cfg = cell(tmp_path, "imputer=mean")
    first = run_cell(cfg)
    path = store.row_path(tmp_path, first["cell_key"])
    stamp = path.stat().st_mtime_ns
    assert run_cell(cfg) == first and path.stat().st_mtime_ns == stamp
    rerun = run_cell(cell(tmp_path / "other", "imputer=mean"))
    for key in ("metric_armse_test", "metric_accuracy", "metric_rmse_train"):
        assert rerun[key] == first[key]


def test_hidden_values_never_reach_the_imputer(tmp_path, monkeypatch):
    """Plant a sentinel at every hidden entry; nothing the imputer receives may carry it."""
    import experiments.runner as runner

    cfg = cell(tmp_path, imputer=SPY)
    run_cell(cfg)  # draws and caches the mask
    original = runner.load_dataset
    masks = list((tmp_path / "masks").glob("*.npz"))
    hidden = np.load(masks[0])["hidden"]
    sentinel = 1e9

    def poisoned(spec, data_dir=None):
        ds = original(spec, data_dir)
        X = ds.X.copy()
        X[hidden & ds.schema.is_numeric] = sentinel
        ds.X = X
        return ds

    monkeypatch.setattr(runner, "load_dataset", poisoned)
    spies.RECEIVED.clear()
    run_cell(cfg, force=True)
    assert len(spies.RECEIVED) >= 3  # fit, transform train/test, sample
    for X in spies.RECEIVED:
        finite = X[~np.isnan(X)]
        assert finite.max() <= 1.0 + 1e-9, "a hidden value (or its scaling) reached the imputer"


def test_imputers_with_per_dataset_settings_learn_the_dataset_key(tmp_path):
    spies.DATASETS_SEEN.clear()
    run_cell(cell(tmp_path, imputer=SPY))
    assert spies.DATASETS_SEEN == ["synthetic"]


def test_masks_are_shared_by_every_imputer(tmp_path):
    run_cell(cell(tmp_path, "imputer=mean"))
    run_cell(cell(tmp_path, imputer=SPY))
    assert len(list((tmp_path / "masks").glob("*.npz"))) == 1
    assert len(list(store.runs_dir(tmp_path).glob("*.json"))) == 2


def test_failing_imputer_writes_failed_row_and_is_retried(tmp_path):
    cfg = cell(tmp_path, imputer={"name": "failing", "_target_": "tests.spies.FailingImputer"})
    row = run_cell(cfg)
    assert row["status"] == "failed" and "boom on purpose" in row["error"]
    assert not store.is_done(tmp_path, row["cell_key"])
    assert run_cell(cfg)["status"] == "failed"  # retried, not skipped


def test_missing_extra_gives_skipped_row(tmp_path):
    row = run_cell(cell(tmp_path, imputer={"name": "extra", "_target_": "tests.spies.MissingExtraImputer"}))
    assert row["status"] == "skipped" and "make setup-nothing" in row["error"]


@pytest.mark.parametrize("overrides, message", [
    (["ratio=1.5"], "strictly between 0 and 1"),
    (["mechanism=mar", "ratio=0.8"], "beyond that limit"),
])
def test_ill_posed_cell_is_one_clear_error_and_writes_nothing(tmp_path, overrides, message):
    with pytest.raises(CellError, match=message):
        run_cell(cell(tmp_path, "imputer=mean", *overrides))
    assert not store.runs_dir(tmp_path).exists() or not list(store.runs_dir(tmp_path).iterdir())


def test_explicit_override_beats_the_profile(tmp_path):
    from experiments.registry import resolve_params

    conf = {"name": "x", "_target_": "t", "epochs": 100, "profiles": {"smoke": {"epochs": 2}}}
    assert resolve_params(conf, "smoke")["epochs"] == 2
    assert resolve_params(conf, "paper")["epochs"] == 100
    assert resolve_params(conf, "smoke", explicit={"epochs"})["epochs"] == 100
    with pytest.raises(ValueError, match="not arguments in its yaml"):
        resolve_params({**conf, "profiles": {"smoke": {"epochz": 2}}}, "smoke")


def test_profile_is_part_of_the_cell_key(tmp_path):
    a = run_cell(cell(tmp_path, "imputer=mean"))
    b = run_cell(compose_cell(["dataset=synthetic", "profile=quick", f"results_dir={tmp_path}", "imputer=mean"]))
    assert a["cell_key"] != b["cell_key"] and {a["profile"], b["profile"]} == {"smoke", "quick"}
    assert set(store.load_rows(tmp_path, profile="smoke")["cell_key"]) == {a["cell_key"]}


def test_metagain_row_has_learned_weights_and_trace_on_request(tmp_path):
    row = run_cell(cell(tmp_path, "imputer=metagain", "+imputer.trace=true"))
    assert row["status"] == "ok", row.get("error")
    for key in ("info_beta", "info_gamma", "info_eta", "metric_diversity_std", "metric_armse_mean_draw"):
        assert row[key] is not None and row[key] >= 0, key
    trace = json.loads(open(row["trace_file"]).read())
    assert len(trace) == row["param_iterations"] and {"beta", "gamma", "eta"} <= set(trace[-1])
