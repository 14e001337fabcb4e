"""The one-cell runner: rows, resume, failures, and that hidden values never reach an imputer."""
from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments import store
from experiments.runner import EnvironmentFault, compose_cell, run_cell
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
    again = run_cell(cfg)
    assert first["served"] == "run" and again["served"] == "cached"
    assert {**again, "served": "run"} == first and path.stat().st_mtime_ns == stamp
    forced = run_cell(cfg, force=True)
    assert forced["served"] == "run" and path.stat().st_mtime_ns != stamp
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
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
    again = run_cell(cfg)
    assert again["status"] == "failed" and again["served"] == "run"  # retried, not served


def test_missing_extra_gives_skipped_row(tmp_path):
    row = run_cell(cell(tmp_path, imputer={"name": "extra", "_target_": "tests.spies.MissingExtraImputer"}))
    assert row["status"] == "skipped" and "make setup-nothing" in row["error"]


@pytest.mark.parametrize("overrides, message", [
    (["ratio=1.5"], "strictly between 0 and 1"),
    (["mechanism=mar", "ratio=0.8"], "beyond that limit"),
])
def test_ill_posed_cell_writes_an_invalid_row_that_is_not_retried(tmp_path, overrides, message):
    cfg = cell(tmp_path, "imputer=mean", *overrides)
    row = run_cell(cfg)
    assert row["status"] == "invalid" and message in row["error"] and row["served"] == "run"
    assert [p.name for p in store.runs_dir(tmp_path).iterdir()] == [f"{row['cell_key']}.json"]
    assert run_cell(cfg)["served"] == "cached"  # invalid until its config or a version changes


def test_an_environment_fault_raises_and_writes_nothing(tmp_path):
    (tmp_path / "runs").write_text("a file where the store's folder should be")
    with pytest.raises(EnvironmentFault, match="Cannot create the run store"):
        run_cell(cell(tmp_path, "imputer=mean"))


def test_a_missing_data_file_is_an_environment_fault(tmp_path):
    cfg = compose_cell(["dataset=wine", "profile=smoke", f"results_dir={tmp_path}", "imputer=mean"])
    cfg.dataset.file = "no-such-file.csv.gz"
    cfg.dataset.uci_id = None
    with pytest.raises(EnvironmentFault):
        run_cell(cfg)


def test_override_rows_are_variants_and_never_reach_the_tables(tmp_path):
    canonical = run_cell(compose_cell(["dataset=wine", "profile=smoke", f"results_dir={tmp_path}", "imputer=gain"]))
    variant = run_cell(compose_cell(["dataset=wine", "profile=smoke", f"results_dir={tmp_path}", "imputer=gain",
                                     "imputer.iterations=3"]))
    assert canonical["variant"] is False and canonical["overrides"] == ""
    assert variant["variant"] is True and "imputer_params.iterations=3" in variant["overrides"]
    current = store.load_rows(tmp_path)
    assert list(current["cell_key"]) == [canonical["cell_key"]]
    every = store.load_rows(tmp_path, which="all").set_index("cell_key")
    assert bool(every.loc[variant["cell_key"], "current"]) is False


def test_a_version_bump_makes_old_rows_stale(tmp_path, monkeypatch):
    from experiments import keys

    cfg = compose_cell(["dataset=wine", "profile=smoke", f"results_dir={tmp_path}", "imputer=mean"])
    old = run_cell(cfg)
    monkeypatch.setattr("baselines.mean.MeanImputer.version", "999")
    keys.imputer_version.cache_clear()
    keys._canonical_payload.cache_clear()
    try:
        assert store.load_rows(tmp_path).empty  # the old row is stale: not served to tables
        new = run_cell(cfg)
        assert new["served"] == "run" and new["cell_key"] != old["cell_key"] and new["version_imputer"] == "999"
        assert list(store.load_rows(tmp_path)["cell_key"]) == [new["cell_key"]]
    finally:
        keys.imputer_version.cache_clear()
        keys._canonical_payload.cache_clear()


def test_unreadable_row_files_are_named_and_left_out(tmp_path):
    row = run_cell(cell(tmp_path, "imputer=mean"))
    path = store.row_path(tmp_path, row["cell_key"])
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    with pytest.warns(UserWarning, match="unreadable row files"):
        rows = store.load_rows(tmp_path, which="all")
    assert rows.empty and rows.attrs["unreadable"] == [f"runs/{path.name} (JSONDecodeError)"]
    assert run_cell(cell(tmp_path, "imputer=mean"))["served"] == "run"  # to-run again


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_budget_cuts_apply_to_a_yaml_read_without_hydra(tmp_path, monkeypatch):
    from experiments.registry import CONFIG_PATH_ENV, resolve_params

    (tmp_path / "budget").mkdir()
    (tmp_path / "budget" / "x_smoke.yaml").write_text("# @package imputer\nepochs: 2\n")
    (tmp_path / "budget" / "y_smoke.yaml").write_text("# @package imputer\nepochz: 2\n")
    monkeypatch.setenv(CONFIG_PATH_ENV, str(tmp_path))
    conf = {"name": "x", "_target_": "t", "epochs": 100}
    assert resolve_params(conf, "smoke")["epochs"] == 2
    assert resolve_params(conf, "paper")["epochs"] == 100
    with pytest.raises(ValueError, match="not arguments in conf/imputer/y.yaml"):
        resolve_params({**conf, "name": "y"}, "smoke")


def test_budgets_are_composed_by_hydra_and_name_only_real_arguments():
    """--cfg job shows what runs: the profile's budget is in the composed imputer node."""
    from experiments.registry import CONF_DIR, load_imputer_conf

    cfg = compose_cell(["imputer=gain", "profile=quick"])
    assert cfg.imputer.iterations == 2000 and compose_cell(["imputer=gain"]).imputer.iterations == 10000
    assert compose_cell(["imputer=gain", "profile=quick", "imputer.iterations=7"]).imputer.iterations == 7
    for path in sorted((CONF_DIR / "budget").glob("*.yaml")):
        imputer, _, profile = path.stem.rpartition("_")
        budget = OmegaConf.load(path)
        assert set(budget) <= set(load_imputer_conf(imputer)), f"{path.name} names a key {imputer} does not take"
        assert profile in {p.stem for p in (CONF_DIR / "profile").glob("*.yaml")}, path.name


def test_profile_is_part_of_the_cell_key(tmp_path):
    a = run_cell(cell(tmp_path, "imputer=mean"))
    b = run_cell(compose_cell(["dataset=synthetic", "profile=quick", f"results_dir={tmp_path}", "imputer=mean"]))
    assert a["cell_key"] != b["cell_key"] and {a["profile"], b["profile"]} == {"smoke", "quick"}
    assert set(store.load_rows(tmp_path, profile="smoke")["cell_key"]) == {a["cell_key"]}


def test_canonical_keys_without_hydra_equal_the_composed_ones(tmp_path):
    """keys.canonical_key (plain yamls) must agree with Hydra's composition for every group option."""
    from experiments import keys
    from experiments.registry import imputer_names, resolve_params
    from omegaconf import OmegaConf

    cases = [("wine", "mcar", name, "smoke") for name in imputer_names()]
    cases += [(d, m, "mean", p) for d, m, p in (("balance", "mar", "quick"), ("heart", "mnar", "paper"),
                                                ("synthetic", "mnar_self", "smoke"), ("letter", "mnar_quantile", "quick"))]
    for dataset, mechanism, imputer, profile in cases:
        cfg = OmegaConf.to_container(compose_cell([f"dataset={dataset}", f"mechanism={mechanism}",
                                                   f"imputer={imputer}", f"profile={profile}", "seed=3",
                                                   "ratio=0.3"]), resolve=True)
        identity = keys.cell_identity(cfg)
        expected = keys.cell_key(cfg, resolve_params(cfg["imputer"], profile))
        assert keys.canonical_key(identity) == expected, identity


def test_metagain_row_has_learned_weights_and_trace_on_request(tmp_path):
    row = run_cell(cell(tmp_path, "imputer=metagain", "+imputer.trace=true"))
    assert row["status"] == "ok", row.get("error")
    for key in ("info_beta", "info_gamma", "info_eta", "metric_diversity_std", "metric_armse_mean_draw"):
        assert row[key] is not None and row[key] >= 0, key
    trace = json.loads(open(row["trace_file"]).read())
    assert len(trace) == row["param_iterations"] and {"beta", "gamma", "eta"} <= set(trace[-1])


def test_downstream_references_equal_complete_accuracy_without_holes(tmp_path):
    """With nothing hidden, XGBoost on holes and mean+indicators see the complete data."""
    from omegaconf import OmegaConf

    from experiments.runner import complete_accuracy, prepare_cell
    from experiments.scoring import downstream_references

    cfg = OmegaConf.to_container(compose_cell(["dataset=heart", "profile=smoke", f"results_dir={tmp_path}"]),
                                 resolve=True)
    prepared = prepare_cell(cfg)
    complete = complete_accuracy(cfg, prepared)
    none_hidden = {**prepared, "hidden": np.zeros_like(prepared["hidden"])}
    assert downstream_references(none_hidden, cfg) == {"metric_accuracy_native": complete,
                                                       "metric_accuracy_indicator": complete}
    with_holes = downstream_references(prepared, cfg)
    assert all(0 < v <= 1 for v in with_holes.values())
    row = run_cell(compose_cell(["dataset=heart", "profile=smoke", f"results_dir={tmp_path}", "imputer=mean"]))
    assert {k: row[k] for k in with_holes} == with_holes
