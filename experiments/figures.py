"""Figures rebuilt from the run store: Figure 2 and a critical-difference diagram per table.

Figure 2 of the paper plots ARMSE and classification accuracy against the missing ratio
(MCAR) for every method on Letter, Wireless and Anuran; ours has one column of panels per
dataset, ARMSE above accuracy, mean over seeds with ± std bars. The critical-difference
diagrams (Demšar 2006) place each method at its average rank over the datasets of a table and
join the methods that the Nemenyi test cannot tell apart. Everything is drawn on matplotlib
``Figure`` objects (Agg canvas, no pyplot state) and written as PNG and PDF under
``<results>/<profile>/figures/``; the PDF carries no creation date, so reruns on the same numbers
give the same files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments import stats, tables
from experiments.paper import PROPOSED

FIGURE2_METRICS = (("metric_armse_test", "ARMSE"), ("metric_accuracy", "Accuracy"))


def figure2_methods(rows: pd.DataFrame, profile: str) -> dict[str, str]:
    """Figure 2's methods (its sweep's list, then extra imputers with rows): key → label."""
    layout = tables.LAYOUT
    methods = {k: layout.imputer_labels.get(k, k) for k in layout.figure2_methods}
    return methods | tables.extra_imputers(rows, profile)


def figure2_data(rows: pd.DataFrame, profile: str, datasets=None) -> pd.DataFrame:
    """Mean and std over seeds per (dataset, method, ratio, metric) of the MCAR cells.

    ``datasets`` defaults to the datasets measured at two or more ratios (the others only have
    their Table 1 cell). Columns: dataset, method, label, ratio, metric, mean, std, n.
    """
    rows = tables.normalise_rows(rows)
    methods = figure2_methods(rows, profile)
    cells = tables.select_cells(rows, profile, "mcar", None, methods)
    ok = tables.ok_rows(cells)
    if datasets is None:
        n_ratios = ok.groupby("dataset")["ratio"].nunique()
        datasets = tables.ordered_datasets(n_ratios.index[n_ratios >= 2])
    ok = ok[ok["dataset"].isin(list(datasets))]
    parts = []
    for column, name in FIGURE2_METRICS:
        grouped = ok.dropna(subset=[column]).groupby(["dataset", "imputer", "ratio"])[column]
        part = grouped.agg(mean="mean", std="std", n="count").reset_index()
        part["metric"] = name
        parts.append(part)
    data = pd.concat(parts, ignore_index=True).rename(columns={"imputer": "method"})
    data["label"] = data["method"].map(methods)
    data["order"] = data["dataset"].map({d: i for i, d in enumerate(datasets)})
    data["method_order"] = data["method"].map({m: i for i, m in enumerate(methods)})
    data = data.sort_values(["order", "method_order", "metric", "ratio"], kind="stable")
    return data.reset_index(drop=True)[
        ["dataset", "method", "label", "ratio", "metric", "mean", "std", "n"]]


def _save(figure: Figure, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf (no timestamps inside, so reruns are byte-stable)."""
    FigureCanvasAgg(figure)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    figure.savefig(png, dpi=150, metadata={"Software": None})
    figure.savefig(pdf, metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return [png, pdf]


def plot_figure2(data: pd.DataFrame, stem: Path | str, profile: str) -> list[Path]:
    """Draw Figure 2 from :func:`figure2_data`'s table; returns the PNG and PDF paths ([] if empty)."""
    if data.empty:
        return []
    datasets = list(dict.fromkeys(data["dataset"]))
    labels = dict(zip(data["method"], data["label"]))
    methods = list(dict.fromkeys(data["method"]))  # figure2_data's order: the sweep's, then extras
    # Tab10 for the baselines (then tab20's light shades for extras); the proposed method in
    # black so it stands out in every panel.
    palette = [f"C{i}" for i in range(10)] + [f"tab:{c}" for c in ("olive", "cyan", "brown", "pink", "gray")]
    colours = {m: palette[i % len(palette)] for i, m in enumerate(methods)} | {PROPOSED: "black"}
    markers = {m: "osD^v<>ph*XP8d"[i % 14] for i, m in enumerate(methods)}
    figure = Figure(figsize=(max(4.0 * len(datasets) + 0.5, 9.0), 6.4), layout="constrained")
    axes = figure.subplots(len(FIGURE2_METRICS), len(datasets), squeeze=False, sharex="col")
    for col, dataset in enumerate(datasets):
        for row, (_, metric) in enumerate(FIGURE2_METRICS):
            ax = axes[row][col]
            here = data[(data["dataset"] == dataset) & (data["metric"] == metric)]
            for method in methods:
                line = here[here["method"] == method].sort_values("ratio")
                if line.empty:
                    continue
                proposed = method == PROPOSED
                ax.errorbar(line["ratio"], line["mean"], yerr=line["std"].fillna(0.0),
                            label=labels[method], color=colours[method],
                            marker=markers[method], markersize=4, capsize=2,
                            linewidth=2.4 if proposed else 1.2, zorder=3 if proposed else 2)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(tables.DATASET_LABELS.get(dataset, dataset))
            if row == len(FIGURE2_METRICS) - 1:
                ax.set_xlabel("missing ratio (MCAR)")
            if col == 0:
                ax.set_ylabel(metric)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in np.ravel(axes)[1:]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5),
                  frameon=False)
    figure.suptitle(f"Figure 2: ARMSE and accuracy against the missing ratio (profile {profile})")
    return _save(figure, Path(stem))


def plot_cd_diagram(average_ranks: pd.Series, cd: float, stem: Path | str, title: str) -> list[Path]:
    """Critical-difference diagram: methods at their average rank (1 = best, at the left).

    The bar at the top is the Nemenyi critical difference; thick bars under the axis join
    methods whose average ranks differ by less than it. Returns the PNG and PDF paths.
    """
    ranks = average_ranks.dropna().sort_values(kind="stable")
    k = len(ranks)
    if k < 2:
        return []
    cliques = stats.cd_cliques(ranks, cd) if np.isfinite(cd) else []
    span = k - 1
    half = (k + 1) // 2
    left, right = list(ranks.index[:half]), list(ranks.index[half:])[::-1]  # worst at the top right
    row_gap, clique_gap = 0.32, 0.11
    first_row = -(0.35 + clique_gap * len(cliques))
    bottom = first_row - row_gap * (max(len(left), len(right)) - 1) - 0.35
    figure = Figure(figsize=(7.0, 1.3 + 0.9 * (0.9 - bottom)))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(1 - 0.55 * span - 0.4, k + 0.55 * span + 0.4)
    ax.set_ylim(bottom, 1.25)
    ax.text((1 + k) / 2, 1.12, title, ha="center", va="center", fontsize=9)
    # Rank axis with integer ticks.
    ax.plot([1, k], [0, 0], color="black", linewidth=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.07], color="black", linewidth=1)
        ax.text(tick, 0.13, str(tick), ha="center", va="bottom", fontsize=8)
    # Critical difference bar.
    if np.isfinite(cd):
        end = min(1 + cd, k)
        ax.plot([1, end], [0.62, 0.62], color="black", linewidth=1.5)
        for x in (1, end):
            ax.plot([x, x], [0.57, 0.67], color="black", linewidth=1.5)
        ax.text((1 + end) / 2, 0.72, f"CD = {cd:.2f}" + (" (wider than the axis)" if 1 + cd > k else ""),
                ha="center", va="bottom", fontsize=8)
    # Methods: an elbow from the rank down to the label, best half to the left.
    for side, names in (("left", left), ("right", right)):
        for i, name in enumerate(names):
            y = first_row - row_gap * i
            x_rank = ranks[name]
            x_text = 1 - 0.12 * span - 0.1 if side == "left" else k + 0.12 * span + 0.1
            ax.plot([x_rank, x_rank, x_text], [0, y, y], color="black", linewidth=0.8)
            label = f"{name} ({x_rank:.2f})" if side == "left" else f"({x_rank:.2f}) {name}"
            ax.text(x_text + (-0.05 if side == "left" else 0.05), y, label, va="center",
                    ha="right" if side == "left" else "left", fontsize=8,
                    fontweight="bold" if name in ("Meta-GAIN", "ID+MN+TR") else "normal")
    for c, group in enumerate(cliques):
        y = -0.2 - clique_gap * c
        ax.plot([ranks[group[0]] - 0.03, ranks[group[-1]] + 0.03], [y, y], color="black",
                linewidth=3, solid_capstyle="butt")
    return _save(figure, Path(stem))


WEIGHTS = (("beta", "β (KL, ID)"), ("gamma", "γ (task, TR)"), ("eta", "η (adversarial)"))
TRAJECTORY = "info_weights_trajectory"


def weights_data(rows: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The (β, γ, η) trajectories of Table 5's cells (MCAR 0.2), one line per stored point.

    Columns: imputer, dataset, seed, iteration, beta, gamma, eta. A row's trajectory is the JSON
    text ``info_weights_trajectory`` (``{"iteration": [...], "beta": [...], ...}``).
    """
    import json

    rows = tables.normalise_rows(rows)
    if TRAJECTORY not in rows:
        return pd.DataFrame(columns=["imputer", "dataset", "seed", "iteration", "beta", "gamma", "eta"])
    table5 = next(spec for spec in tables.TABLES.values() if spec.variants_as_rows)
    cells = tables.ok_rows(tables.select_cells(rows, profile, table5.mechanism, table5.ratio, tables.ABLATIONS))
    parts = []
    for row in cells.dropna(subset=[TRAJECTORY]).itertuples(index=False):
        trajectory = json.loads(getattr(row, TRAJECTORY))
        parts.append(pd.DataFrame({"imputer": row.imputer, "dataset": row.dataset, "seed": int(row.seed),
                                   **{k: trajectory[k] for k in ("iteration", "beta", "gamma", "eta")}}))
    if not parts:
        return pd.DataFrame(columns=["imputer", "dataset", "seed", "iteration", "beta", "gamma", "eta"])
    return pd.concat(parts, ignore_index=True)


def plot_weights(data: pd.DataFrame, imputer: str, stem: Path | str) -> list[Path]:
    """One small figure per Table 5 variant: β, γ, η against the iteration, a line per dataset
    (seed-wise median), log scale. Returns the PNG and PDF paths ([] when nothing was stored)."""
    part = data[data["imputer"] == imputer]
    if part.empty:
        return []
    figure = Figure(figsize=(9, 2.6), layout="constrained")
    axes = figure.subplots(1, len(WEIGHTS), sharex=True)
    datasets = tables.ordered_datasets(set(part["dataset"]))
    for ax, (weight, title) in zip(axes, WEIGHTS):
        if not (part[weight] > 0).any():  # a switched-off component: its weight is 0 throughout
            ax.text(0.5, 0.5, "off (component not used)", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
        for i, dataset in enumerate(datasets):
            line = part[part["dataset"] == dataset].groupby("iteration")[weight].median()
            if (line > 0).any():
                ax.plot(line.index, line.to_numpy(), color=f"C{i % 10}", linewidth=1,
                        linestyle="-" if i < 10 else "--",  # tab10 has ten colours
                        label=tables.DATASET_LABELS.get(dataset, dataset))
        if (part[weight] > 0).any():
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
    if axes[-1].get_legend_handles_labels()[0]:
        axes[-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.suptitle(f"Learned weights of {tables.LAYOUT.imputer_labels.get(imputer, imputer)} (Table 5)",
                    fontsize=10)
    return _save(figure, Path(stem))


def write_figures(rows: pd.DataFrame, profile: str, out_dir: Path | str, summaries=None,
                  figure2_datasets=None) -> list[Path]:
    """Write Figure 2 and one CD diagram per table with data under ``<out_dir>/figures/``."""
    figure_dir = Path(out_dir) / "figures"
    written = plot_figure2(figure2_data(rows, profile, figure2_datasets), figure_dir / "figure2",
                           profile)
    weights = weights_data(rows, profile)
    for imputer in dict.fromkeys(weights["imputer"]):
        written += plot_weights(weights, imputer, figure_dir / f"weights_{imputer}")
    specs = tables.table_specs(rows, profile)
    if summaries is None:
        paper = tables.load_paper()
        summaries = {name: tables.summarise(rows, spec, profile, paper) for name, spec in specs.items()}
    for name, summary in summaries.items():
        spec = specs[name]
        result = stats.friedman(tables.score_matrix(summary, spec=spec), spec.higher_is_better)
        if result.n_datasets < 1 or result.n_methods < 2:
            continue
        pvalue = "n/a" if not np.isfinite(result.pvalue) else f"{result.pvalue:.3g}"
        plural = "s" if result.n_datasets != 1 else ""
        title = (f"{spec.title}: average rank over {result.n_datasets} dataset{plural} "
                 f"(Friedman p = {pvalue}, Nemenyi α = {result.alpha})")
        written += plot_cd_diagram(result.average_ranks, result.critical_difference,
                                   figure_dir / f"cd_{name}", title)
    return written
