"""experiments.report (claims, report text) and experiments.reproduce (sweeps, plan, commands)."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from experiments import claims, figures, report, reproduce, tables
from tests.experiments.rows import cell, store_rows

PAPER = tables.load_paper()
DATASETS = list(tables.DATASETS)


def _summaries(rows: pd.DataFrame, names=("table1", "table2", "table3", "table4", "table5")) -> dict:
    return {name: tables.summarise(rows, tables.TABLES[name], "quick", PAPER, datasets=DATASETS)
            for name in names}


def _table1(loser_on: str | None = None) -> pd.DataFrame:
    """Table 1 cells where Meta-GAIN (0.15) beats every method, except GAIN (0.10) on ``loser_on``."""
    cells = []
    for dataset in DATASETS:
        for i, key in enumerate(tables.METHOD_LABELS):
            value = 0.15 if key == "metagain" else 0.40 - 0.02 * i
            if key == "gain" and dataset == loser_on:
                value = 0.10
            cells.append(cell(dataset, key, metric_armse_test=value))
    return store_rows(cells)


def _ablation(armse, **extra) -> pd.DataFrame:
    """Table 5 cells on three datasets; ``armse(flags)`` and each ``extra`` column(flags) give values."""
    cells = []
    for dataset in ("wine", "yeast", "heart"):
        for key, flags in tables.ABLATIONS.items():
            values = {name: fn(flags, dataset) for name, fn in extra.items()}
            cells.append(cell(dataset, key, metric_armse_test=armse(flags, dataset), **values))
    return store_rows(cells)


def _on(flags) -> int:
    return sum(flags)


# --------------------------------------------------------------------------- claims

def test_beats_all_verdicts():
    verdict, lines = claims.beats_all(_summaries(_table1()))
    assert verdict == claims.HELD
    assert lines[0] == "Table 1 (ARMSE, MCAR): best on 11 of 11 datasets, against 9 other methods"
    verdict, lines = claims.beats_all(_summaries(_table1(loser_on="wine")))
    assert verdict == claims.NOT_HELD
    assert lines[0].endswith("best on 10 of 11 datasets, against 9 other methods; lost on Wine: GAIN 0.100 vs 0.150")
    no_metagain = _table1()[lambda frame: frame["imputer"] != "metagain"]
    assert claims.beats_all(_summaries(no_metagain))[0] == claims.NOT_MEASURED


def test_beats_all_on_the_papers_numbers_is_not_held():
    verdict, lines = claims.beats_all(_summaries(store_rows([])), value="paper")
    assert verdict == claims.NOT_HELD
    assert "lost on Valley: HIVAE 0.383 vs 0.395" in lines[0]  # the paper's own Table 1


def test_components_help_and_pairs_beat_singles():
    # ARMSE falls with every component switched on: every Table 5 claim holds.
    rows = _ablation(lambda flags, _: 0.4 - 0.1 * _on(flags))
    summary = _summaries(rows, ["table5"])["table5"]
    verdict, lines = claims.components_help(summary)
    assert verdict == claims.HELD
    assert lines[0] == "ID beats none on 3 of 3 datasets (mean ARMSE 0.300 vs 0.400)"
    assert lines[-1] == "ID+MN+TR is the best variant on 3 of 3 datasets"
    assert claims.pairs_beat_singles(summary)[0] == claims.HELD
    # TR alone hurts on heart: "every component helps" fails, and says where.
    rows = _ablation(lambda flags, d: 0.5 if flags == (False, False, True) and d == "heart"
                     else 0.4 - 0.1 * _on(flags))
    verdict, lines = claims.components_help(_summaries(rows, ["table5"])["table5"])
    assert verdict == claims.NOT_HELD and "TR beats none on 2 of 3 datasets" in lines[2]


def test_mn_beats_id_and_tr():
    better_mn = _ablation(lambda flags, _: 0.3 - 0.05 * flags[1] - 0.01 * _on(flags))
    verdict, lines = claims.mn_beats_id_tr(_summaries(better_mn, ["table5"])["table5"])
    assert verdict == claims.HELD and lines[0].startswith("MN 0.240 vs ID 0.290")
    worse_mn = _ablation(lambda flags, _: 0.3 + 0.05 * flags[1] - 0.01 * _on(flags))
    assert claims.mn_beats_id_tr(_summaries(worse_mn, ["table5"])["table5"])[0] == claims.NOT_HELD
    assert claims.mn_beats_id_tr(_summaries(store_rows([]), ["table5"])["table5"])[0] == claims.NOT_MEASURED


def test_diversity_and_generalisation_claims():
    rows = _ablation(lambda flags, _: 0.2,
                     metric_diversity_std=lambda flags, _: 0.01 + 0.02 * flags[0] + 0.01 * flags[1],
                     metric_armse_train=lambda flags, _: 0.2 - 0.05 + 0.03 * flags[2])
    verdict, lines = claims.diversity_raised(rows, "quick")
    assert verdict == claims.HELD and len(lines) == 8
    assert lines[0] == ("ID: none → ID: diversity 0.0100 → 0.0300 (mean over 3 datasets; higher with "
                        "ID on 3 of 3)")
    verdict, lines = claims.task_generalises(rows, "quick")  # gap 0.05 without TR, 0.02 with
    assert verdict == claims.HELD and "gap 0.0500 → 0.0200" in lines[0]
    flat = _ablation(lambda flags, _: 0.2, metric_diversity_std=lambda flags, _: 0.05 - 0.01 * flags[1],
                     metric_armse_train=lambda flags, _: 0.1 - 0.05 * flags[2])
    assert claims.diversity_raised(flat, "quick")[0] == claims.NOT_HELD
    assert claims.task_generalises(flat, "quick")[0] == claims.NOT_HELD
    no_draws = _ablation(lambda flags, _: 0.2)
    assert claims.diversity_raised(no_draws, "quick") == (claims.NOT_MEASURED, [])


def test_ratio_claim_needs_two_ratios_and_names_the_winner():
    def data(metagain_at_04):
        return pd.DataFrame([
            {"dataset": "letter", "method": m, "label": tables.METHOD_LABELS[m], "ratio": r, "metric": "ARMSE",
             "mean": (metagain_at_04 if (m, r) == ("metagain", 0.4) else v + r), "std": 0.0, "n": 1}
            for r in (0.2, 0.4) for m, v in (("gain", 0.2), ("metagain", 0.1))])
    verdict, lines = claims.ratio_robust(data(0.5))
    assert verdict == claims.HELD
    assert lines == ["Letter ARMSE: 0.2 ✓ (+0.100), 0.4 ✓ (+0.100)"]
    verdict, lines = claims.ratio_robust(data(0.7))
    assert verdict == claims.NOT_HELD and lines == ["Letter ARMSE: 0.2 ✓ (+0.100), 0.4 GAIN (-0.100)"]
    assert claims.ratio_robust(data(0.5)[lambda d: d["ratio"] == 0.2])[0] == claims.NOT_MEASURED


def test_beta_claim():
    rows = store_rows([cell("wine", "metagain", s, info_beta=0.5, info_gamma=0.1, info_eta=0.01) for s in (0, 1)])
    verdict, lines = claims.beta_largest(rows, "quick")
    assert verdict == claims.HELD
    assert lines == ["β > γ and β > η in 2 of 2 Meta-GAIN cells (median β 0.5000, γ 0.1000, η 0.0100)"]
    rows.loc[1, "info_gamma"] = 0.9
    assert claims.beta_largest(rows, "quick")[0] == claims.NOT_HELD
    assert claims.beta_largest(store_rows([cell("wine", "gain")]), "quick")[0] == claims.NOT_MEASURED


# --------------------------------------------------------------------------- report text

def _paper_as_ours(table: str) -> pd.DataFrame:
    """Store rows whose means are exactly the paper's numbers of ``table``."""
    spec = tables.TABLES[table]
    metric = spec.metric
    cells = []
    for dataset in DATASETS:
        for column in spec.columns:
            if column.row_metric is not None:
                continue
            value = PAPER[(spec.paper_metric, spec.mechanism, 0.2, dataset, column.paper_label)]
            cells.append(cell(dataset, column.key, **{metric: value}))
    return store_rows(cells)


def test_report_kendall_tau_one_and_significant_wilcoxon():
    # In the paper's Table 4 Meta-GAIN has the best accuracy on all 11 datasets.
    rows = _paper_as_ours("table4")
    summaries = _summaries(rows, ["table4"])
    text = "\n".join(report.table_section("table4", summaries["table4"]))
    assert text.count("| 1.00 (n=10, p=") == 11
    assert "Mean Kendall τ over 11 datasets: 1.00." in text
    assert "| GAIN | 11 | 11/0/0 | 0.024 | 0.000977 | 0.00879 |" in text  # 9 comparisons (Holm)
    assert "| Mean | 1.00 / 1.00 |" not in text  # the reference column is left out of the ratios


def test_build_report_on_an_empty_store_says_not_yet_measured(tmp_path):
    rows = store_rows([])
    summaries = _summaries(rows)
    calibration = tmp_path / "calibration.md"
    calibration.write_text("# Calibration study\n\n## Mean ARMSE\n\n```\n# not a heading\n```\n")
    text = report.build_report(rows, "quick", summaries, pd.DataFrame(columns=["dataset", "metric"]),
                               calibration)
    verdicts = [line for line in text.splitlines() if line.startswith("| ") and "**" in line]
    assert len(verdicts) == 9 and all(f"**{claims.NOT_MEASURED}**" in line for line in verdicts)
    assert "| Meta-GAIN beats all methods on all datasets (Tables 1–4) | **not yet measured** | not held |" in text
    assert "Not measured yet." in text
    assert "### Calibration study" in text and "#### Mean ARMSE" in text and "\n# not a heading\n" in text
    assert "Cells of this profile: 0 (ok 0, failed 0, skipped 0, invalid 0)" in text


def test_build_outputs_writes_everything(tmp_path):
    ablation = _ablation(lambda flags, _: 0.4 - 0.1 * _on(flags))
    rows = pd.concat([_table1(), ablation[ablation["imputer"] != "metagain"]])
    path = report.build_outputs(rows, "quick", tmp_path, "python -m experiments.report --profile quick",
                                profile_conf={"datasets": ["wine", "heart"]}, calibration=None)
    text = path.read_text()
    # held on the two datasets run, and the verdict says it rests on fewer than the paper's 11
    assert "| Meta-GAIN beats all methods on all datasets (Tables 1–4) | **held** (on 2 of the paper's 11" in text
    assert "| Every component helps (Table 5) | **held** (on 2 of the paper's 11 datasets) |" in text
    assert (tmp_path / "PROVENANCE.md").exists()
    assert (tmp_path / "tables" / "table5.tex").exists() and (tmp_path / "figures" / "cd_table1.pdf").exists()
    # The profile's datasets are rows even where nothing ran yet.
    assert "| Heart |" in (tmp_path / "tables" / "table2.md").read_text()


# --------------------------------------------------------------------------- reproduce

SMOKE = {"datasets": ["wine", "balance"], "seeds": [0], "figure2_ratios": [0.2, 0.4],
         "figure2_datasets": ["wine"],
         "imputers": ["mean", "gain", "metagain", "metagain_none", "remasker", "hyperimpute"]}


def test_sweep_files_start_with_package_then_command():
    for sweep in reproduce.SWEEPS:
        lines = (reproduce.SWEEP_DIR / f"{sweep}.yaml").read_text().splitlines()
        # Hydra reads the package header only before the first other line, so it comes first.
        assert lines[0] == "# @package _global_"
        assert lines[1] == f"# python -m experiments.run -m +sweep={sweep} hydra/launcher=joblib"


def test_sweep_grids_at_the_paper_profile():
    grids = {s: reproduce.sweep_params(s) for s in reproduce.SWEEPS}
    assert grids["table4"] == grids["table1"]
    assert grids["table1"]["imputer"] == list(tables.METHOD_LABELS)
    assert grids["table1"]["dataset"] == DATASETS and grids["table1"]["seed"] == list("01234")
    assert [grids[t]["mechanism"] for t in ("table1", "table2", "table3")] == [["mcar"], ["mar"], ["mnar"]]
    assert grids["table5"]["imputer"] == list(tables.ABLATIONS)
    assert grids["figure2"]["dataset"] == ["letter", "wireless", "anuran"]
    assert grids["figure2"]["ratio"] == [f"0.{i}" for i in range(1, 9)]
    assert grids["supplement"]["mechanism"] == ["mcar", "mar", "mnar"]
    assert grids["supplement"]["imputer"] == ["remasker", "hyperimpute"]


def test_sweep_yaml_composes_into_the_sweeper_params(tmp_path):
    shutil.copytree(reproduce.SWEEP_DIR, tmp_path / "sweep")
    (tmp_path / "config.yaml").write_text("defaults:\n  - _self_\nratio: 0.5\n")
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose("config", overrides=["+sweep=figure2"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params.ratio == "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8"
    assert cfg.ratio == 0.5 and set(cfg.sweep) == {"order", "datasets_from", "ratios_from", "extras"}  # presentation only


def test_profile_narrows_the_grid():
    assert reproduce.sweep_grid("table1", SMOKE) == {
        "dataset": ["wine", "balance"], "mechanism": ["mcar"], "ratio": ["0.2"],
        "imputer": ["mean", "gain", "metagain"], "seed": ["0"]}
    figure2 = reproduce.sweep_grid("figure2", SMOKE)
    assert figure2["dataset"] == ["wine"] and figure2["ratio"] == ["0.2", "0.4"]
    assert reproduce.sweep_grid("table5", SMOKE)["imputer"] == ["metagain_none", "metagain"]
    full = reproduce.sweep_grid("table5", {**SMOKE, "imputers": None})
    assert full["imputer"] == list(tables.ABLATIONS)
    for name in ("smoke", "quick", "paper"):  # the shipped profiles expand without error
        profile = report.load_profile(name)
        assert all(len(reproduce.expand(reproduce.sweep_grid(s, profile))) for s in ("table1", "figure2"))


def test_plan_counts_a_synthetic_store(monkeypatch):
    from experiments import costs

    monkeypatch.setattr(costs, "_importable", lambda module: False)  # HyperImpute absent: skipped at once
    rows = store_rows([
        cell("wine", "mean", profile="smoke", fit_seconds=2.0, transform_seconds=1.0),
        cell("wine", "gain", profile="smoke", fit_seconds=10.0, transform_seconds=0.0),
        cell("balance", "mean", profile="smoke", status="failed", error="boom"),
        cell("balance", "gain", profile="quick", fit_seconds=99.0),  # another profile
        cell("wine", "hyperimpute", profile="smoke", status="skipped", error="extra missing"),
        cell("wine", "metagain", profile="smoke", current=False, variant=False,  # made by older code
             fit_seconds=4.0, transform_seconds=0.0),  # its timing still informs the estimate
        cell("balance", "metagain", profile="smoke", current=False, variant=True),  # an override run
    ])
    # Unit costs: 1 s per cell outside the imputer; GAIN 0.1 s and Meta-GAIN 0.5 s per iteration
    # (smoke: 50 and 20 iterations); ReMasker not calibrated.
    unit = {"format": costs.FORMAT, "overhead": {"cell_fixed": 1.0, "load": {}, "xgb": [0.0, 0.0, 0.0]},
            "imputers": {"gain": {"family": "gain", "fixed": 0.0, "per_unit": [0.1, 0.0], "per_row": [0.0, 0.0]},
                         "metagain": {"family": "metagain", "fixed": 0.0, "per_unit": [0.5, 0.0],
                                      "per_row": [0.0, 0.0]}}}
    model = costs.CostModel(unit, rows)
    table = reproduce.plan(rows, "smoke", SMOKE, model=model, n_jobs=2).set_index("sweep")
    # To run: balance mean (model, 1 s), balance gain (model, 6 s), wine metagain (store, 4 s),
    # balance metagain (model: the override run does not time it, 11 s).
    counts = ["cells", "ok", "invalid", "skipped", "failed", "stale", "to_run", "est_seconds", "unknown", "from_store"]
    assert table.loc["table1", counts].to_dict() == {"cells": 6, "ok": 2, "invalid": 0, "skipped": 0, "failed": 1,
                                                     "stale": 1, "to_run": 4, "est_seconds": 22.0, "unknown": 0,
                                                     "from_store": 1}
    # in grid order on 2 workers: wine metagain 4 | balance mean 1, balance gain 6 → 7 | balance metagain 11 → 15
    assert table.loc["table1", "wall_seconds"] == 15.0 and table.loc["table1", "longest_seconds"] == 11.0
    assert table.loc["table4", counts].to_dict() == table.loc["table1", counts].to_dict()
    assert table.loc["table4", "new_to_run"] == 0  # Table 1 runs its cells first
    assert table.loc["table5", "cells"] == 4 and table.loc["figure2", "cells"] == 6
    # Supplement: 6 ReMasker cells with no unit costs (unknown), 5 HyperImpute cells skipped at once
    # (overhead only) and the one already skipped (free).
    assert table.loc["supplement", counts].to_dict() == {"cells": 12, "ok": 0, "invalid": 0, "skipped": 1,
                                                         "failed": 0, "stale": 0, "to_run": 12, "est_seconds": 5.0,
                                                         "unknown": 6, "from_store": 0}
    # Distinct cells: Tables 1–3's 6 each, none's 2, Figure 2's 3 at ratio 0.4, the supplement's 12.
    assert table.loc["all", "cells"] == 35 and table.loc["all", "ok"] == 2
    text = reproduce.format_plan(table.reset_index(), n_jobs=2)
    line = next(x for x in text.splitlines() if x.startswith("table1 "))
    assert line.startswith("table1           6      2        0        0       1      1       4")
    assert "0.01" in line and "0:00:15" in line and "0:00:11" in line
    assert "run by earlier sweeps" in next(x for x in text.splitlines() if x.startswith("table4 "))
    assert "+ 6 cells with no cost model" in next(x for x in text.splitlines() if x.startswith("supplement "))


def test_sweep_command():
    command = reproduce.sweep_command("table1", reproduce.sweep_grid("table1", SMOKE), "smoke", "joblib", 4,
                                      "/tmp/store", ["hydra.launcher.verbose=1"])
    assert command[1:5] == ["-m", "experiments.run", "-m", "+sweep=table1"]
    assert command[5:] == ["profile=smoke", "dataset=wine,balance", "mechanism=mcar", "ratio=0.2",
                           "imputer=mean,gain,metagain", "seed=0", "hydra/launcher=joblib", "threads=1",
                           "hydra.launcher.n_jobs=4", "results_dir=/tmp/store", "hydra.launcher.verbose=1"]
    slurm = reproduce.sweep_command("table1", reproduce.sweep_grid("table1", SMOKE), "smoke",
                                    "submitit_slurm", 4)
    assert "hydra/launcher=submitit_slurm" in slurm and not any("n_jobs" in part for part in slurm)
    with pytest.raises(ValueError, match="Unknown launcher"):
        reproduce.sweep_command("table1", {}, "smoke", "ray", 1)


def test_unknown_sweep_is_a_clear_error():
    with pytest.raises(ValueError, match="There is no sweep 'table9'"):
        reproduce.sweep_params("table9")


def test_plan_command_line_on_an_empty_store(tmp_path, capsys, monkeypatch):
    import re

    monkeypatch.setenv("METAGAIN_COSTS_FILE", str(tmp_path / "no-cache.json"))  # the committed defaults
    assert reproduce.main(["--profile", "smoke", "--plan", "--jobs", "2", "--results-dir", str(tmp_path),
                           "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    smoke = report.load_profile("smoke")
    cells = len(reproduce.expand(reproduce.sweep_grid("table1", smoke, smoke["extra_imputers"])))
    assert f"{'table1':<11}{cells:>7}{0:>7}" in out  # cells, none ok yet
    assert "+sweep=table1 profile=smoke" in out and "hydra.launcher.n_jobs=2" in out
    assert "unknown" not in out and "no cost model" not in out  # every cell costed on a fresh clone
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(r"paper-profile estimate cpu_hours=\d+\.\d tables_figure_hours_2cores=\d+\.\d", last)
    assert not (tmp_path / "no-cache.json").exists()  # --no-calibrate measured nothing
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "--plan", "--only", "table9"])


def test_plan_command_line_on_slurm_derives_limits(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("METAGAIN_COSTS_FILE", str(tmp_path / "no-cache.json"))
    assert reproduce.main(["--profile", "smoke", "--plan", "--launcher", "slurm", "--results-dir", str(tmp_path),
                           "--no-calibrate", "--only", "supplement"]) == 0
    out = capsys.readouterr().out
    assert "hydra/launcher=slurm" in out and "hydra.launcher.timeout_min=" in out and "hydra.launcher.mem_gb=" in out
    assert "64 workers, slurm" in out


def _drawing(imputer, dataset, coverage, crps):
    return cell(dataset, imputer, metric_coverage=coverage, metric_coverage_nominal=9 / 11, metric_crps=crps,
                metric_brier=0.1)


def test_draws_calibrated_needs_nominal_coverage_and_the_best_proper_score():
    good = store_rows([_drawing("metagain", d, 0.80, 0.02) for d in ("wine", "yeast")]
                      + [_drawing("gain", d, 0.10, 0.03) for d in ("wine", "yeast")])
    verdict, lines = claims.draws_calibrated(good, "quick")
    assert verdict == claims.HELD and lines[0].startswith("metagain: coverage 0.800 (nominal 0.818)")
    noisy = store_rows([_drawing("metagain", d, 0.80, 0.05) for d in ("wine", "yeast")]
                       + [_drawing("gain", d, 0.10, 0.03) for d in ("wine", "yeast")])
    assert claims.draws_calibrated(noisy, "quick")[0] == claims.NOT_HELD  # covered, but a worse score
    narrow = store_rows([_drawing("metagain", "wine", 0.40, 0.01)])
    assert claims.draws_calibrated(narrow, "quick")[0] == claims.NOT_HELD  # best score, under-covers
    assert claims.draws_calibrated(store_rows([]), "quick")[0] == claims.NOT_MEASURED


def test_weight_trajectories_become_a_figure_and_a_report_section(tmp_path):
    import json

    def trajectory(beta_end):
        return json.dumps({"iteration": [0, 100, 200], "beta": [0.1, 0.05, beta_end],
                           "gamma": [0.1, 0.1, 0.1], "eta": [0.01, 0.01, 0.01]})

    rows = store_rows([cell(d, "metagain", info_weights_trajectory=trajectory(b))
                       for d, b in (("wine", 1e-3), ("yeast", 1e-5))])
    data = figures.weights_data(rows, "quick")
    assert len(data) == 6 and set(data["dataset"]) == {"wine", "yeast"}
    written = figures.write_figures(rows, "quick", tmp_path)
    assert tmp_path / "figures" / "weights_metagain.png" in written
    text = "\n".join(report.weights_section(rows, "quick"))
    assert "| [ID+MN+TR](figures/weights_metagain.png) | 2 | 0.1000 → 0.0005 |" in text


def test_paired_comparisons_pool_dataset_mechanism_pairs_and_apply_the_same_rule_to_the_paper():
    """Meta-GAIN better than GAIN on every (dataset, mechanism) of Tables 1-3 → 33 wins, r = 1."""
    cells = []
    for mechanism in ("mcar", "mar", "mnar"):
        for i, dataset in enumerate(DATASETS):
            cells.append(cell(dataset, "metagain", mechanism=mechanism, metric_armse_test=0.10 + 0.01 * i))
            cells.append(cell(dataset, "gain", mechanism=mechanism, metric_armse_test=0.20 + 0.01 * i))
    summaries = _summaries(store_rows(cells))
    ours, paper = report.paired_comparisons(summaries)
    gain = ours.set_index("method").loc["GAIN"]
    assert (gain["n"], gain["wins"], gain["losses"], gain["effect"]) == (33, 33, 0, 1.0)
    assert gain["median_advantage"] == pytest.approx(0.10) and gain["p_holm"] < 1e-5
    assert set(paper["method"]) == {"GAIN"} and paper.set_index("method").loc["GAIN", "n"] == 33
    text = "\n".join(report.summary_section(summaries, "quick"))
    assert "Meta-GAIN beats GAIN on 33 and loses on 0" in text


def test_the_summary_ranks_the_full_meta_gain_among_table_5s_variants():
    # ARMSE falls with each component, except MN alone on heart, which beats all-on there
    rows = _ablation(lambda flags, dataset: 0.30 - 0.02 * _on(flags)
                     - (0.10 if (dataset, flags) == ("heart", (False, True, False)) else 0))
    summaries = _summaries(rows, names=("table5",))
    text = "\n".join(report.summary_section(summaries, "quick"))
    assert ("- **Table 5** (ARMSE, MCAR, 3 datasets): ID+MN+TR has mean rank 1.33 of 8 variants and is best "
            "on 2; the best mean rank is ID+MN+TR's (1.33).") in text


def test_a_dataset_with_a_method_missing_is_left_out_of_the_mean_ranks():
    """Meta-GAIN last of 3 on wine and heart; on yeast only it and GAIN ran, where it wins. Ranked
    among the 2 measured there it would be first, and its mean rank 2.33 instead of 3."""
    cells = []
    for dataset in ("wine", "heart", "yeast"):
        cells += [cell(dataset, "metagain", metric_armse_test=0.30 if dataset != "yeast" else 0.05),
                  cell(dataset, "gain", metric_armse_test=0.20)]
        if dataset != "yeast":
            cells.append(cell(dataset, "mean", metric_armse_test=0.25))
    summaries = _summaries(store_rows(cells), names=("table1",))
    mean_rank, ranks = report.mean_ranks(summaries["table1"], tables.TABLES["table1"])
    assert len(ranks) == 2
    assert mean_rank["Meta-GAIN"] == pytest.approx(3.0) and ranks.shape[1] == 3
    text = "\n".join(report.summary_section(summaries, "quick"))
    assert ("- **Table 1** (ARMSE, MCAR, 2 datasets; 1 more with a method not measured left out): Meta-GAIN "
            "has mean rank 3.00 of 3 and is best on 0") in text


def test_a_partial_store_gets_a_coverage_table_and_verdicts_that_say_how_many_datasets():
    rows = _table1()
    rows = rows[rows["dataset"].isin(["wine", "heart"])]  # Table 1's cells on two datasets only
    conf = {"datasets": ["wine", "heart", "yeast"], "seeds": [0], "figure2_ratios": [0.2],
            "figure2_datasets": ["wine"], "imputers": None, "extra_imputers": []}
    summaries = _summaries(rows)
    text = report.build_report(rows, "quick", summaries, pd.DataFrame(columns=["dataset", "metric"]), None, conf)
    table = report.coverage(rows, "quick", conf)
    t1 = table[table["sweep"] == "table1"].set_index("dataset")
    assert t1.loc["wine", "ok"] == t1.loc["wine", "cells"] == 10 and t1.loc["yeast", "ok"] == 0
    assert "## Coverage" in text and "| Yeast | 0/10 |" in text
    assert ("| Meta-GAIN beats all methods on all datasets (Tables 1–4) | **held** (on 2 of the paper's 11 "
            "datasets) |") in text
    full = report.coverage_section(table.assign(ok=table["cells"]))
    assert full == []  # nothing to say when every cell is done


def test_failed_cells_are_counted_in_the_coverage_and_listed_with_their_reason():
    rows = _table1()
    rows = rows[rows["dataset"].isin(["wine", "heart"])]
    rows = pd.concat([rows, store_rows([cell("wine", "gain", 1, status="failed",
                                             error="TrainingDivergedError: loss is nan\nTraceback ...")])],
                     ignore_index=True)
    conf = {"datasets": ["wine", "heart"], "seeds": [0, 1], "figure2_ratios": [0.2],
            "figure2_datasets": ["wine"], "imputers": None, "extra_imputers": []}
    table = report.coverage(rows, "quick", conf).set_index(["sweep", "dataset"])
    assert table.loc[("table1", "wine"), ["ok", "failed"]].tolist() == [10, 1]
    assert table.loc[("table1", "heart"), "failed"] == 0
    text = report.build_report(rows, "quick", _summaries(rows), pd.DataFrame(columns=["dataset", "metric"]),
                               None, conf)
    assert "| Wine | 10/20 (1), 1 failed |" in text and "| Heart | 10/20 (1) |" in text
    assert "- Wine MCAR r=0.2 GAIN seed 1: TrainingDivergedError: loss is nan\n" in text


def test_a_claims_dataset_count_is_out_of_the_paper_grid_of_its_own_sweeps():
    table = pd.DataFrame([{"sweep": "figure2", "dataset": "wireless", "cells": 440, "ok": 185, "failed": 0,
                           "seeds": 5, "proposed_ok": 40},
                          {"sweep": "table5", "dataset": "wine", "cells": 40, "ok": 40, "failed": 0, "seeds": 5,
                           "proposed_ok": 5}])
    assert report._claim_datasets("Meta-GAIN's advantage holds as the missing ratio grows (Figure 2)",
                                  table) == (1, 3)  # Figure 2's letter, wireless, anuran
    assert report._claim_datasets("Every component helps (Table 5)", table) == (1, 11)


def _two_profiles() -> pd.DataFrame:
    """Tables 1-3 cells, 3 seeds: at `paper` on wine and heart Meta-GAIN (0.10 + 0.05·seed) beats GAIN
    (0.12 + 0.05·seed) on every seed but heart MAR seed 2; at `quick` it loses to GAIN on wine and heart and
    wins on yeast."""
    cells = []
    for mechanism in ("mcar", "mar", "mnar"):
        for seed in range(3):
            for dataset in ("wine", "heart"):
                gain = 0.12 + 0.05 * seed - (0.05 if (dataset, mechanism, seed) == ("heart", "mar", 2) else 0)
                cells += [cell(dataset, "metagain", seed, mechanism=mechanism, profile="paper",
                               metric_armse_test=0.10 + 0.05 * seed),
                          cell(dataset, "gain", seed, mechanism=mechanism, profile="paper", metric_armse_test=gain)]
            for dataset in ("wine", "heart", "yeast"):
                cells += [cell(dataset, "metagain", seed, mechanism=mechanism,
                               metric_armse_test=0.10 if dataset == "yeast" else 0.30),
                          cell(dataset, "gain", seed, mechanism=mechanism, metric_armse_test=0.20)]
    return store_rows(cells)


def test_seed_comparisons_pair_each_seed_with_the_same_seed():
    """A seed is a pair only with the same seed: misaligned seeds would give GAIN wins on seed 0 vs 2."""
    rows = _two_profiles()
    matrix = report.seed_matrix(rows, "paper")
    assert len(matrix) == 18 and "Wine, MCAR, seed 2" in matrix.index
    assert matrix.loc["Heart, MAR, seed 1", "Meta-GAIN"] == pytest.approx(0.15)
    gain = report.seed_comparisons(rows, "paper").set_index("method").loc["GAIN"]
    assert (gain["n"], gain["wins"], gain["losses"]) == (18, 17, 1)
    assert gain["p_holm"] < 0.01
    text = "\n".join(report.paired_section(report.paired_comparisons(
        {n: tables.summarise(rows, tables.TABLES[n], "paper", PAPER) for n in ("table1", "table2", "table3")}),
        report.seed_comparisons(rows, "paper")))
    assert "### Over seeds" in text and "| GAIN | 18 | 17/0/1 |" in text


def test_budget_contrast_answers_on_the_same_datasets_and_pairs():
    rows = _two_profiles()
    summaries = {n: tables.summarise(rows, tables.TABLES[n], "paper", PAPER) for n in ("table1", "table2", "table3")}
    lines = report.budget_contrast(rows, "paper", "quick", summaries, PAPER)
    text = "\n".join(lines)
    assert ("**Table 1**, on the 2 datasets both measured: Meta-GAIN's mean rank 1.00 here, 2.00 at `quick` "
            "(best: Meta-GAIN here, GAIN there)") in text
    assert "At `quick`, on the pairs both measured: Meta-GAIN beats GAIN on 0 and loses on 6 of 6 (dataset" in text
    assert "At `quick`, on all of `quick`'s pairs: Meta-GAIN beats GAIN on 3 and loses on 6 of 9" in text
    quick = {n: tables.summarise(rows, tables.TABLES[n], "quick", PAPER) for n in ("table1", "table2", "table3")}
    back = "\n".join(report.budget_contrast(rows, "quick", "paper", quick, PAPER))
    assert ("**Table 1**, on the 2 datasets both measured: Meta-GAIN's mean rank 2.00 here, 1.00 at `paper`"
            in back)  # not 1.67, its rank over all three quick datasets
    assert "At `paper`, on the pairs both measured: Meta-GAIN beats GAIN on 6 and loses on 0 of 6" in back
    assert "all of `paper`'s pairs" not in back  # the same 6 pairs: said once
    assert report.budget_contrast(rows, "paper", "nothing", summaries, PAPER) == [
        "- Profile `nothing`: no rows to compare with."]
    conf = {"datasets": ["wine", "heart"], "seeds": [0, 1, 2], "figure2_ratios": [0.2], "figure2_datasets": [],
            "imputers": None, "extra_imputers": [], "compare_with": ["quick"]}
    full = report.build_report(rows, "paper", summaries, pd.DataFrame(columns=["dataset", "metric"]), None, conf)
    short = full.split("## Coverage")[0]
    assert "How the `quick` profile answers the same questions" in short
    assert "- Over Tables 1–3: Meta-GAIN beats GAIN on 6 and loses on 0 of 6" in short
    assert "over its 18 seed cells it wins 17 and loses 1" in short


def test_rivals_are_gain_then_the_methods_meta_gain_loses_to_worst_first():
    frame = pd.DataFrame({"method": ["Mean", "GAIN", "MissFI", "XGBI", "PCAI", "KNNI"],
                          "median_advantage": [0.05, 0.01, -0.03, -0.01, -0.02, -0.001]})
    assert report.rivals(frame) == ["GAIN", "MissFI", "PCAI", "XGBI"]
    assert report.rivals(frame.iloc[:2]) == ["GAIN"]


def test_each_table_section_says_what_it_rests_on():
    """Wine and heart: every method at 3 seeds but GAIN at 1 on wine and HIVAE nowhere; 9 datasets not measured."""
    cells = [cell(d, key, seed, metric_armse_test=0.1 + 0.01 * seed)
             for d in ("wine", "heart") for key in tables.METHOD_LABELS for seed in range(3)
             if not (d == "wine" and key == "gain" and seed > 0) and key != "hivae"]
    summary = _summaries(store_rows(cells), names=("table1",))["table1"]
    text = "\n".join(report.table_section("table1", summary, seeds=3))
    assert ("Rests on 52 ok cells: 2 of 11 datasets, 3 seeds per (dataset, method) in the profile. "
            "No cell yet: HIVAE. Fewer seeds: Wine GAIN (1 of 3). Not measured: Wireless, Yeast, Balance, Valley, Connect, Letter, "
            "Turkiye, Chess, Anuran.") in text


def test_a_table5_claim_counts_only_datasets_where_a_variant_beside_meta_gain_was_measured():
    """Full Meta-GAIN's Table 1 cells fill Table 5's all-on row on every dataset; the verdict counts
    only the datasets where another variant ran too."""
    cells = [cell(d, "metagain", metric_armse_test=0.1) for d in ("wine", "heart", "yeast")]
    cells += [cell("wine", key, metric_armse_test=0.2) for key in tables.ABLATIONS if key != "metagain"]
    rows = store_rows(cells)
    conf = {"datasets": ["wine", "heart", "yeast"], "seeds": [0], "figure2_ratios": [0.2],
            "figure2_datasets": ["wine"], "imputers": None, "extra_imputers": []}
    text = report.build_report(rows, "quick", _summaries(rows), pd.DataFrame(columns=["dataset", "metric"]),
                               None, conf)
    assert "| Every component helps (Table 5) | **not held** (on 1 of the paper's 11 datasets) |" in text
