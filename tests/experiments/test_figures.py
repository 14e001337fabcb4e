"""experiments.figures: Figure 2 data and files, critical-difference diagrams."""
from __future__ import annotations

import pandas as pd
import pytest

from experiments import figures
from tests.experiments.rows import cell, store_rows


def _figure2_rows() -> pd.DataFrame:
    cells = []
    for ratio in (0.2, 0.4):
        for i, key in enumerate(("mean", "gain", "metagain")):
            for seed in (0, 1):
                cells.append(cell("letter", key, seed, ratio=ratio, metric_armse_test=0.3 - 0.05 * i + ratio
                                  + 0.01 * seed, metric_accuracy=0.8 + 0.02 * i - ratio / 4))
    cells.append(cell("wine", "mean", metric_armse_test=0.2, metric_accuracy=0.9))  # one ratio only
    return store_rows(cells)


def test_figure2_data_means_over_seeds_and_picks_multi_ratio_datasets():
    data = figures.figure2_data(_figure2_rows(), "quick")
    assert set(data["dataset"]) == {"letter"}
    point = data[(data["method"] == "gain") & (data["ratio"] == 0.4) & (data["metric"] == "ARMSE")]
    assert point["mean"].item() == pytest.approx(0.3 - 0.05 + 0.4 + 0.005)
    assert point["n"].item() == 2 and point["label"].item() == "GAIN"
    assert set(figures.figure2_data(_figure2_rows(), "quick", ["wine"])["dataset"]) == {"wine"}


def _is_png_and_pdf(paths):
    suffixes = sorted(p.suffix for p in paths)
    assert suffixes == [".pdf", ".png"]
    for path in paths:
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")


def test_figure2_writes_png_and_pdf_byte_stable(tmp_path):
    data = figures.figure2_data(_figure2_rows(), "quick")
    paths = figures.plot_figure2(data, tmp_path / "figure2", "quick")
    _is_png_and_pdf(paths)
    first = {p: p.read_bytes() for p in paths}
    figures.plot_figure2(data, tmp_path / "figure2", "quick")
    assert {p: p.read_bytes() for p in paths} == first  # no date inside
    assert figures.plot_figure2(data.iloc[0:0], tmp_path / "none", "quick") == []


def test_cd_diagram_files_and_degenerate_case(tmp_path):
    ranks = pd.Series({"Meta-GAIN": 1.2, "GAIN": 2.0, "HIVAE": 3.1, "Mean": 3.7})
    _is_png_and_pdf(figures.plot_cd_diagram(ranks, 1.4, tmp_path / "cd", "Table 1"))
    assert figures.plot_cd_diagram(ranks.iloc[:1], 1.0, tmp_path / "one", "one method") == []


def test_write_figures_draws_figure2_and_a_cd_diagram_per_measured_table(tmp_path):
    rows = _figure2_rows()
    paths = figures.write_figures(rows, "quick", tmp_path, figure2_datasets=["letter"])
    names = {p.name for p in paths}
    assert {"figure2.png", "figure2.pdf", "cd_table1.png", "cd_table1.pdf", "cd_table4.png"} <= names
    # Nothing measured for Table 5 or the MAR table: no diagram.
    assert not any(name.startswith(("cd_table5", "cd_table2")) for name in names)
    assert all(p.parent == tmp_path / "figures" for p in paths)
