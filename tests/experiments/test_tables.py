"""experiments.tables: known numbers give known table text, best and missing cells marked right."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import tables
from tests.experiments.rows import cell, store_rows

PAPER = tables.load_paper()


def _table1_rows() -> pd.DataFrame:
    """Wine: Mean 0.29/0.31, KNNI 0.20/0.20, Meta-GAIN 0.15/0.15; Balance: only Mean."""
    return store_rows([
        cell("wine", "mean", 0, metric_armse_test=0.29), cell("wine", "mean", 1, metric_armse_test=0.31),
        cell("wine", "knni", 0, metric_armse_test=0.20), cell("wine", "knni", 1, metric_armse_test=0.20),
        cell("wine", "metagain", 0, metric_armse_test=0.15),
        cell("wine", "metagain", 1, metric_armse_test=0.15),
        cell("balance", "mean", 0, metric_armse_test=0.40),
    ])


def _markdown_row(text: str, first_cell: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [part.strip() for part in line.strip("|").split("|")]


def test_paper_reference_is_the_shared_csv_and_keyed_by_label():
    assert PAPER[("ARMSE", "mcar", 0.2, "wireless", "Meta-GAIN")] == 0.115
    assert PAPER[("accuracy", "mcar", 0.2, "heart", "Complete")] == 0.850
    assert PAPER[("ARMSE", "mcar", 0.2, "letter", "Meta-GAIN[ID+MN]")] == 0.119
    assert PAPER[("accuracy", "mcar", 0.2, "wine", "HIVAE")] == 0.951


def test_known_numbers_give_known_markdown():
    spec = tables.TABLES["table1"]
    summary = tables.summarise(_table1_rows(), spec, "quick", PAPER)
    text = tables.to_markdown(summary, spec, "quick")
    assert text.startswith("# Table 1: ARMSE of all methods at 20% missing under MCAR (profile `quick`)\n")
    wine = _markdown_row(text, "Wine")
    assert wine == ["Wine", "0.300 ± 0.014 (0.228)", "0.200 ± 0.000 (0.204)", "— (0.259)", "— (0.207)",
                    "— (0.231)", "— (0.428)", "— (0.218)", "— (0.205)", "— (0.171)",
                    "**0.150 ± 0.000** (0.156)"]
    # One seed: no std; the only measured method of the row is its best.
    assert _markdown_row(text, "Balance")[1] == "**0.400** (0.438)"
    # Rows follow the paper's dataset order (Balance before Wine).
    assert text.index("| Balance |") < text.index("| Wine |")


def test_missing_cells_are_missing_never_zero():
    spec = tables.TABLES["table1"]
    summary = tables.summarise(_table1_rows(), spec, "quick", PAPER, datasets=["wine", "heart"])
    heart = summary[summary["dataset"] == "heart"]
    assert heart["ours_mean"].isna().all() and (heart["n_seeds"] == 0).all()
    assert not heart["best"].any()
    assert _markdown_row(tables.to_markdown(summary, spec, "quick"), "Heart")[1] == "— (0.347)"
    csv_line = next(line for line in tables.to_csv(summary).splitlines()
                    if line.startswith("table1,heart,mean,"))
    assert csv_line.split(",")[4:7] == ["", "", "0"]  # ours_mean, ours_std empty; n_seeds 0


def test_only_ok_rows_of_the_profile_count():
    rows = pd.concat([_table1_rows(), store_rows([
        cell("wine", "mean", 2, status="failed", error="boom", metric_armse_test=0.0),
        cell("wine", "mean", 0, profile="smoke", metric_armse_test=0.0),
        cell("wine", "mean", 0, mechanism="mar", metric_armse_test=0.0),
        cell("wine", "mean", 0, ratio=0.4, metric_armse_test=0.0),
    ])])
    summary = tables.summarise(rows, tables.TABLES["table1"], "quick", PAPER).set_index(["dataset", "method"])
    assert summary.loc[("wine", "mean"), "ours_mean"] == pytest.approx(0.30)
    assert summary.loc[("wine", "mean"), "n_seeds"] == 2


def test_best_is_lowest_armse_and_highest_accuracy_and_ties_share_it():
    rows = store_rows([
        cell("wine", "mean", metric_armse_test=0.3, metric_accuracy=0.95, metric_accuracy_complete=0.99),
        cell("wine", "knni", metric_armse_test=0.2, metric_accuracy=0.90, metric_accuracy_complete=0.99),
        cell("wine", "gain", metric_armse_test=0.2, metric_accuracy=0.80, metric_accuracy_complete=0.99),
    ])
    armse = tables.summarise(rows, tables.TABLES["table1"], "quick", PAPER).set_index("method")
    assert armse["best"][armse["best"]].index.tolist() == ["knni", "gain"]
    accuracy = tables.summarise(rows, tables.TABLES["table4"], "quick", PAPER).set_index("method")
    # Complete (0.99) is a reference column: never marked best.
    assert accuracy.loc["complete", "ours_mean"] == pytest.approx(0.99)
    assert accuracy["best"][accuracy["best"]].index.tolist() == ["mean"]
    # The paper's best of the row is marked too (Wine Table 4: Meta-GAIN 0.962).
    assert accuracy["paper_best"][accuracy["paper_best"]].index.tolist() == ["metagain"]


def test_complete_accuracy_is_one_value_per_seed():
    rows = store_rows([cell("wine", "mean", 0, metric_accuracy=0.9, metric_accuracy_complete=0.96),
                       cell("wine", "knni", 0, metric_accuracy=0.9, metric_accuracy_complete=0.96),
                       cell("wine", "mean", 1, metric_accuracy=0.9, metric_accuracy_complete=0.98)])
    summary = tables.summarise(rows, tables.TABLES["table4"], "quick", PAPER).set_index("method")
    assert summary.loc["complete", "n_seeds"] == 2
    assert summary.loc["complete", "ours_mean"] == pytest.approx(0.97)


def test_skipped_and_failed_cells_show_missing_with_reason():
    rows = pd.concat([_table1_rows(), store_rows([
        cell("wine", "hyperimpute", status="skipped",
             error="The hyperimpute extra is not installed; run `make setup-hyperimpute`."),
        cell("balance", "hyperimpute", status="skipped",
             error="The hyperimpute extra is not installed; run `make setup-hyperimpute`."),
        cell("wine", "remasker", status="failed", error="TrainingDivergedError: loss is nan\nTraceback ..."),
        cell("wine", "gain", 0, metric_armse_test=0.17),
        cell("wine", "gain", 1, status="failed", error="RuntimeError: out of memory"),
    ])])
    spec = tables.TABLES["supplement_mcar"]
    text = tables.to_markdown(tables.summarise(rows, spec, "quick", PAPER), spec, "quick")
    wine = _markdown_row(text, "Wine")
    # Footnotes are numbered in reading order (Balance's row comes first).
    assert _markdown_row(text, "Balance")[4] == "—[1]"
    assert wine[3] == "—[3]" and wine[4] == "—[1]"  # no paper value: no brackets
    assert wine[2] == "0.170[2] (0.171)"
    assert ("[1] HyperImpute skipped (Balance, Wine): The hyperimpute extra is not installed; run "
            "`make setup-hyperimpute`.") in text
    assert "[2] GAIN failed (Wine): 1 of 2 seeds failed: RuntimeError: out of memory" in text
    assert "[3] ReMasker failed (Wine): TrainingDivergedError: loss is nan" in text


def test_table5_layout_is_variants_by_datasets():
    rows = store_rows([cell("wine", key, metric_armse_test=0.30 - 0.01 * i)
                       for i, key in enumerate(tables.ABLATIONS)] + [cell("wine", "gain", metric_armse_test=0.01)])
    spec = tables.TABLES["table5"]
    text = tables.to_markdown(tables.summarise(rows, spec, "quick", PAPER), spec, "quick")
    body = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert body[0] == "| Variant | ID | MN | TR | Wine |"
    assert [row.split("|")[1].strip() for row in body[1:]] == [
        "none", "ID", "MN", "TR", "ID+MN", "ID+TR", "MN+TR", "ID+MN+TR", "GAIN (Table 1)"]
    assert _markdown_row(text, "ID+TR") == ["ID+TR", "✓", "×", "✓", "0.250 (0.161)"]
    # Best of the dataset column is all-on; GAIN's lower reference value is not marked.
    assert _markdown_row(text, "ID+MN+TR")[4] == "**0.230** (0.156)"
    assert _markdown_row(text, "GAIN (Table 1)")[4] == "0.010 (0.171)"


def test_latex_is_booktabs_with_escapes():
    rows = pd.concat([_table1_rows(), store_rows([
        cell("wine", "hyperimpute", status="skipped", error="needs extra_deps & 100% of {them}")])])
    spec = tables.TABLES["supplement_mcar"]
    tex = tables.to_latex(tables.summarise(rows, spec, "quick", PAPER), spec, "quick")
    for command in ("\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lcccc}"):
        assert command in tex
    assert "Wine & \\textbf{0.150 $\\pm$ 0.000} (0.156) & --- (0.171) & --- & ---[1] \\\\" in tex
    assert "needs extra\\_deps \\& 100\\% of \\{them\\}" in tex


def test_write_tables_is_byte_stable_and_provenance_separate(tmp_path):
    rows = _table1_rows()
    tables.write_tables(rows, "quick", tmp_path)
    first = {p.name: p.read_bytes() for p in (tmp_path / "tables").iterdir()}
    assert {f"table{i}.{ext}" for i in range(1, 6) for ext in ("md", "tex", "csv")} <= set(first)
    tables.write_provenance(rows, "quick", tmp_path, "python -m experiments.report --profile quick")
    tables.write_tables(rows, "quick", tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / "tables").iterdir()} == first
    provenance = (tmp_path / "PROVENANCE.md").read_text()
    assert "profile: `quick`" in provenance and "(ok 7, failed 0, skipped 0, invalid 0)" in provenance
    assert "make report PROFILE=quick" in provenance
    before = (tmp_path / "PROVENANCE.md").read_bytes()
    tables.write_provenance(rows, "quick", tmp_path)
    assert (tmp_path / "PROVENANCE.md").read_bytes() == before  # a function of the rows alone
    date = re.compile(rb"20\d\d-\d\d-\d\d")
    assert not date.search(before) and not any(date.search(text) for text in first.values())


def test_duplicate_ok_rows_warn_and_keep_one():
    rows = store_rows([cell("wine", "mean", metric_armse_test=0.2),
                       {**cell("wine", "mean", metric_armse_test=0.4), "cell_key": "zzz"}])
    with pytest.warns(UserWarning, match="more than one ok row"):
        summary = tables.summarise(rows, tables.TABLES["table1"], "quick", PAPER)
    assert summary.set_index("method").loc["mean", "n_seeds"] == 1


def test_empty_store_gives_tables_of_missing_cells(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summaries = tables.write_tables(pd.DataFrame(), "smoke", tmp_path, datasets=["wine"])
    assert summaries["table1"]["ours_mean"].isna().all()
    assert "| Wine | — (0.228) |" in Path(tmp_path / "tables" / "table1.md").read_text()
    assert np.isnan(summaries["table4"].set_index("method").loc["complete", "ours_mean"])
