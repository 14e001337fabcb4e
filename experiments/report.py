"""REPORT.md: the paper against ours, table by table, with the tests and the paper's claims.

``python -m experiments.report --profile quick`` rebuilds everything a profile shows from the
run store alone: the tables (``experiments.tables``), the figures (``experiments.figures``),
``REPORT.md`` and ``PROVENANCE.md`` under ``<results>/<profile>/``. The report gives, per table
and dataset, who wins (ours and the paper's), Kendall's tau between the paper's order of the
methods and ours, each method's score relative to Mean (ours and the paper's), the Friedman
test with the Nemenyi critical difference, and paired Wilcoxon tests of Meta-GAIN against
every other method across datasets. Each of the paper's headline claims is then judged held,
not held, or not yet measured by a rule stated beside it, from the numbers printed with it.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from experiments import figures, stats, tables
from experiments.paper import PROPOSED

HELD, NOT_HELD, NOT_MEASURED = "held", "not held", "not yet measured"
CALIBRATION_MD = tables.ROOT / "results" / "calibration.md"
PROFILE_DIR = tables.ROOT / "conf" / "profile"
TARGET = PROPOSED
# Table 5's variants with one and with two components on (from each yaml's switches).
SINGLES = tuple(k for k, flags in tables.ABLATIONS.items() if sum(flags) == 1)
PAIRS = tuple(k for k, flags in tables.ABLATIONS.items() if sum(flags) == 2)
TABLE5 = next(name for name, spec in tables.TABLES.items() if spec.variants_as_rows)


@dataclass(frozen=True)
class Claim:
    """One headline claim of the paper and our verdict on it, with the numbers behind it."""

    statement: str
    verdict: str  # HELD | NOT_HELD | NOT_MEASURED
    rule: str  # how the verdict follows from the numbers
    evidence: tuple[str, ...]  # Markdown lines with the numbers
    paper_verdict: str = ""  # the same rule on the paper's own numbers ('' where it has none)
    paper_evidence: tuple[str, ...] = ()


def _f(value: float, digits: int = 3) -> str:
    return tables.MISSING if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return tables.MISSING if not np.isfinite(value) else f"{value:.3g}"


def _verdict(outcomes: list[bool]) -> str:
    if not outcomes:
        return NOT_MEASURED
    return HELD if all(outcomes) else NOT_HELD


def _label(dataset: str) -> str:
    return tables.DATASET_LABELS.get(dataset, dataset)


def _better(a: float, b: float, higher_is_better: bool) -> bool:
    return a > b if higher_is_better else a < b


def _variant(key: str) -> str:
    return tables.ablation_label(tables.ABLATIONS[key])


# --------------------------------------------------------------------------- claims

def _target_wins(matrix: pd.DataFrame, target: str, higher_is_better: bool, name=str):
    """Per dataset where ``target`` and another method were measured: is ``target`` strictly best?

    Returns the outcomes, one 'Dataset: winner value vs target value' text per loss, and the
    set of other methods that were measured somewhere. ``name`` labels a column in the texts.
    """
    outcomes, losses, measured = [], [], set()
    for dataset, scores in matrix.iterrows():
        others = scores.drop(target).dropna()
        if not np.isfinite(scores[target]) or others.empty:
            continue
        measured |= set(others.index)
        best_other = others.max() if higher_is_better else others.min()
        outcomes.append(bool(_better(scores[target], best_other, higher_is_better)))
        if not outcomes[-1]:
            winner = others.idxmax() if higher_is_better else others.idxmin()
            losses.append(f"{_label(dataset)}: {name(winner)} {_f(best_other)} vs {_f(scores[target])}")
    return outcomes, losses, measured


def beats_all(summaries: dict[str, pd.DataFrame], value: str = "ours_mean") -> tuple[str, list[str]]:
    """Is Meta-GAIN strictly best on every dataset of Tables 1–4 (among the methods measured)?

    ``value`` is ``ours_mean`` or ``paper``. Returns the verdict and one evidence line per table.
    """
    outcomes, lines = [], []
    for name in ("table1", "table2", "table3", "table4"):
        if name not in summaries:
            continue
        spec = tables.TABLES[name]
        matrix = tables.score_matrix(summaries[name], value, spec=spec)
        wins, losses, measured = _target_wins(matrix, spec.target, spec.higher_is_better)
        outcomes += wins
        head = f"{spec.title} ({spec.paper_metric}, {spec.mechanism.upper()})"
        if not wins:
            lines.append(f"{head}: not measured")
            continue
        unmeasured = [c for c in matrix.columns if c != spec.target and c not in measured]
        line = (f"{head}: best on {sum(wins)} of {len(wins)} datasets, against {len(measured)} "
                "other methods")
        if unmeasured:
            line += f" (not measured: {', '.join(unmeasured)})"
        if losses:
            line += "; lost on " + "; ".join(losses)
        lines.append(line)
    return _verdict(outcomes), lines


def _variant_matrix(summary5: pd.DataFrame, value: str) -> pd.DataFrame:
    """Datasets × ablation keys of Table 5's ``value`` (``ours_mean`` or ``paper``)."""
    frame = summary5[summary5["method"].isin(list(tables.ABLATIONS))]
    return frame.pivot(index="dataset", columns="method", values=value).reindex(
        columns=list(tables.ABLATIONS))


def components_help(summary5: pd.DataFrame, value: str = "ours_mean") -> tuple[str, list[str]]:
    """Table 5: does each single component beat none, and is all-on the best variant?

    Per dataset (lower ARMSE is better); a comparison counts where both sides were measured.
    """
    matrix = _variant_matrix(summary5, value)
    outcomes, lines = [], []
    for single in SINGLES:
        both = matrix[[single, "metagain_none"]].dropna()
        if both.empty:
            continue
        wins = both[single] < both["metagain_none"]
        outcomes += list(wins)
        lines.append(f"{_variant(single)} beats none on {int(wins.sum())} of {len(both)} datasets "
                     f"(mean ARMSE {_f(both[single].mean())} vs {_f(both['metagain_none'].mean())})")
    wins, losses, _ = _target_wins(matrix, "metagain", False, name=_variant)
    outcomes += wins
    if wins:
        line = f"ID+MN+TR is the best variant on {sum(wins)} of {len(wins)} datasets"
        lines.append(line + ("; not on " + "; ".join(losses) if losses else ""))
    return _verdict(outcomes), lines


def pairs_beat_singles(summary5: pd.DataFrame, value: str = "ours_mean") -> tuple[str, list[str]]:
    """Table 5: does every two-component variant beat every one-component variant, per dataset?"""
    matrix = _variant_matrix(summary5, value)
    outcomes, lines = [], []
    for pair in PAIRS:
        for single in SINGLES:
            both = matrix[[pair, single]].dropna()
            if both.empty:
                continue
            wins = both[pair] < both[single]
            outcomes += list(wins)
            lines.append(f"{_variant(pair)} beats {_variant(single)} on {int(wins.sum())} of "
                         f"{len(both)} datasets (mean ARMSE {_f(both[pair].mean())} vs "
                         f"{_f(both[single].mean())})")
    return _verdict(outcomes), lines


def mn_beats_id_tr(summary5: pd.DataFrame, value: str = "ours_mean") -> tuple[str, list[str]]:
    """Table 5: is MN alone better than ID alone and than TR alone, on mean ARMSE over datasets?

    The means are over the datasets where all three single-component variants were measured.
    """
    matrix = _variant_matrix(summary5, value)[list(SINGLES)].dropna()
    if matrix.empty:
        return NOT_MEASURED, []
    means = matrix.mean()
    outcomes, lines = [], []
    for other in ("metagain_id", "metagain_tr"):
        outcomes.append(bool(means["metagain_mn"] < means[other]))
        wins = int((matrix["metagain_mn"] < matrix[other]).sum())
        lines.append(f"MN {_f(means['metagain_mn'])} vs {_variant(other)} {_f(means[other])} mean ARMSE "
                     f"over {len(matrix)} datasets (decline {_f(means[other] - means['metagain_mn'])}; "
                     f"MN better on {wins} of {len(matrix)})")
    return _verdict(outcomes), lines


def _ablation_cells(rows: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Table 5's ok rows, one per (dataset, variant, seed)."""
    rows = tables.normalise_rows(rows)
    spec = tables.TABLES[TABLE5]
    cells = tables.select_cells(rows, profile, spec.mechanism, spec.ratio, tables.ABLATIONS)
    return tables.ok_rows(cells)


def _component_pairs(component: str) -> list[tuple[str, str]]:
    """(without, with) pairs of ablation keys that differ only in ``component``."""
    index = tables.COMPONENTS.index(component)
    by_flags = {flags: key for key, flags in tables.ABLATIONS.items()}
    pairs = []
    for flags, key in by_flags.items():
        if not flags[index]:
            on = tuple(True if i == index else f for i, f in enumerate(flags))
            pairs.append((key, by_flags[on]))
    return pairs


def _paired_component_effect(values: pd.DataFrame, component: str, want_higher: bool,
                             what: str) -> tuple[list[bool], list[str]]:
    """Compare mean ``values`` (datasets × variant keys) with vs without ``component``."""
    outcomes, lines = [], []
    for without, with_ in _component_pairs(component):
        if without not in values or with_ not in values:
            continue
        both = values[[without, with_]].dropna()
        if both.empty:
            continue
        mean_without, mean_with = both[without].mean(), both[with_].mean()
        outcomes.append(bool(mean_with > mean_without if want_higher else mean_with < mean_without))
        per_dataset = both[with_] > both[without] if want_higher else both[with_] < both[without]
        lines.append(f"{component}: {_variant(without)} → {_variant(with_)}: {what} {_f(mean_without, 4)} "
                     f"→ {_f(mean_with, 4)} (mean over {len(both)} datasets; "
                     f"{'higher' if want_higher else 'lower'} with {component} on "
                     f"{int(per_dataset.sum())} of {len(both)})")
    return outcomes, lines


def _variant_means(cells: pd.DataFrame, column: pd.Series) -> pd.DataFrame:
    """Datasets × variant keys of the mean of ``column`` (aligned with ``cells``) over seeds."""
    frame = cells.assign(value=column).dropna(subset=["value"])
    return frame.groupby(["dataset", "imputer"])["value"].mean().unstack()


def diversity_raised(rows: pd.DataFrame, profile: str) -> tuple[str, list[str]]:
    """Do the KL term (ID) and the meta network (MN) raise ``metric_diversity_std``?"""
    cells = _ablation_cells(rows, profile)
    values = _variant_means(cells, cells["metric_diversity_std"].astype(float))
    outcomes, lines = [], []
    for component in ("ID", "MN"):
        more, text = _paired_component_effect(values, component, True, "diversity")
        outcomes += more
        lines += text
    return _verdict(outcomes), lines


def task_generalises(rows: pd.DataFrame, profile: str) -> tuple[str, list[str]]:
    """Does TR shrink the generalisation gap ARMSE(test) − ARMSE(train)?"""
    cells = _ablation_cells(rows, profile)
    gap = cells["metric_armse_test"].astype(float) - cells["metric_armse_train"].astype(float)
    outcomes, lines = _paired_component_effect(_variant_means(cells, gap), "TR", False, "gap")
    return _verdict(outcomes), lines


def ratio_robust(data: pd.DataFrame) -> tuple[str, list[str]]:
    """Figure 2: is Meta-GAIN best at every missing ratio, for ARMSE and for accuracy?

    ``data`` is :func:`experiments.figures.figure2_data`'s table. Each line gives, per ratio,
    ✓ or the winner, and Meta-GAIN's margin over the best other method (positive = ahead).
    Needs two or more ratios with Meta-GAIN and another method measured.
    """
    outcomes, lines = [], []
    if data.empty:
        return NOT_MEASURED, lines
    data = data[data["method"].isin(tables.LAYOUT.figure2_methods)]  # the paper's methods: no extras
    labels = dict(zip(data["method"], data["label"]))
    for (dataset, metric), part in data.groupby(["dataset", "metric"], sort=False):
        higher = metric == "Accuracy"
        grid = part.pivot(index="ratio", columns="method", values="mean")
        if PROPOSED not in grid:
            continue
        points = []
        for ratio, scores in grid.iterrows():
            others = scores.drop(PROPOSED).dropna()
            if not np.isfinite(scores[PROPOSED]) or others.empty:
                continue
            best_other = others.max() if higher else others.min()
            margin = (scores[PROPOSED] - best_other) * (1 if higher else -1)
            won = margin > 0
            winner = "✓" if won else labels[others.idxmax() if higher else others.idxmin()]
            points.append((won, f"{ratio:g} {winner} ({margin:+.3f})"))
        if len(points) >= 2:
            outcomes += [won for won, _ in points]
            lines.append(f"{_label(dataset)} {metric}: " + ", ".join(text for _, text in points))
    return _verdict(outcomes), lines


def beta_largest(rows: pd.DataFrame, profile: str) -> tuple[str, list[str]]:
    """Is Meta-GAIN's learned β larger than γ and than η in every measured cell?"""
    rows = tables.normalise_rows(rows)
    mine = rows[(rows["profile"] == profile) & (rows["imputer"] == TARGET) & (rows["status"] == "ok")]
    weights = mine[["info_beta", "info_gamma", "info_eta"]].astype(float).dropna()
    if weights.empty:
        return NOT_MEASURED, []
    larger = (weights["info_beta"] > weights["info_gamma"]) & (weights["info_beta"] > weights["info_eta"])
    medians = weights.median()
    line = (f"β > γ and β > η in {int(larger.sum())} of {len(weights)} Meta-GAIN cells (median β "
            f"{_f(medians['info_beta'], 4)}, γ {_f(medians['info_gamma'], 4)}, η {_f(medians['info_eta'], 4)})")
    return _verdict(list(larger)), [line]


def draws_calibrated(rows: pd.DataFrame, profile: str, tolerance: float = 0.1) -> tuple[str, list[str]]:
    """Are Meta-GAIN's draws calibrated (Table 1's cells: MCAR 0.2)?

    Held when Meta-GAIN's interval coverage, averaged over datasets, lies within ``tolerance`` of
    its nominal level and its mean CRPS is no worse than that of every other imputer that draws.
    One evidence line per drawing imputer: coverage against nominal, CRPS, Brier.
    """
    rows = tables.normalise_rows(rows)
    needed = ("metric_coverage", "metric_coverage_nominal", "metric_crps", "metric_brier")
    for column in needed:
        if column not in rows:
            rows[column] = np.nan
    mine = rows[(rows["profile"] == profile) & (rows["status"] == "ok") & (rows["mechanism"] == "mcar")
                & np.isclose(rows["ratio"].astype(float), 0.2) & rows["metric_coverage"].notna()]
    if mine.empty or TARGET not in set(mine["imputer"]):
        return NOT_MEASURED, []
    per_dataset = mine.groupby(["imputer", "dataset"])[list(needed)].mean(numeric_only=True)
    means = per_dataset.groupby("imputer").mean()
    counts = per_dataset.groupby("imputer").size()
    lines = [f"{imputer}: coverage {_f(r.metric_coverage)} (nominal {_f(r.metric_coverage_nominal)}), "
             f"CRPS {_f(r.metric_crps, 4)}, Brier {_f(r.metric_brier)} over {counts[imputer]} datasets"
             for imputer, r in means.sort_values("metric_crps").iterrows()]
    target = means.loc[TARGET]
    covered = abs(target["metric_coverage"] - target["metric_coverage_nominal"]) <= tolerance
    others = means.drop(TARGET)["metric_crps"].dropna()
    sharpest = bool(others.empty or target["metric_crps"] <= others.min())
    return _verdict([bool(covered), sharpest]), lines


def evaluate_claims(rows: pd.DataFrame, profile: str, summaries: dict[str, pd.DataFrame],
                    figure2: pd.DataFrame, paper: dict | None = None) -> list[Claim]:
    """Every headline claim of the paper, judged on our numbers and, where its tables have the
    numbers, on the paper's own (always over all 11 datasets, whatever the profile runs)."""
    paper = tables.load_paper() if paper is None else paper
    summary5 = summaries.get("table5")
    if summary5 is None:
        summary5 = tables.summarise(rows, tables.TABLES[TABLE5], profile, paper)
    no_rows = rows.iloc[0:0]
    paper_only = {name: tables.summarise(no_rows, tables.TABLES[name], profile, paper,
                                         datasets=tables.DATASETS) for name in tables.PAPER_TABLES}
    claims = []

    def on_tables(statement, rule, judge, ours, theirs):
        verdict, lines = judge(ours)
        paper_verdict, paper_lines = judge(theirs, "paper")
        return Claim(statement, verdict, rule, tuple(lines), paper_verdict, tuple(paper_lines))

    claims.append(on_tables("Meta-GAIN beats all methods on all datasets (Tables 1–4)",
                            "held when Meta-GAIN's mean is strictly the best of each measured row",
                            beats_all, summaries, paper_only))
    claims.append(on_tables("Every component helps (Table 5)",
                            "held when each single component beats none on every dataset and all-on "
                            "is the best variant on every dataset", components_help, summary5,
                            paper_only["table5"]))
    claims.append(on_tables("Two components beat any single one (Table 5)",
                            "held when every two-component variant beats every one-component "
                            "variant on every dataset", pairs_beat_singles, summary5,
                            paper_only["table5"]))
    claims.append(on_tables("MN beats ID and TR alone (Table 5)",
                            "held when MN alone has a lower mean ARMSE than ID alone and than TR "
                            "alone", mn_beats_id_tr, summary5, paper_only["table5"]))
    verdict, lines = ratio_robust(figure2)
    claims.append(Claim("Meta-GAIN's advantage holds as the missing ratio grows (Figure 2)", verdict,
                        "held when Meta-GAIN has the best mean ARMSE and accuracy at every measured "
                        "ratio (2 or more) of every Figure 2 dataset", tuple(lines)))
    verdict, lines = diversity_raised(rows, profile)
    claims.append(Claim("The KL term and the meta network raise imputation diversity", verdict,
                        "held when, for every pair of Table 5 variants that differ only in ID (or MN), "
                        "the mean metric_diversity_std over datasets is higher with it", tuple(lines)))
    verdict, lines = draws_calibrated(rows, profile)
    claims.append(Claim("Meta-GAIN's draws are calibrated (ours, not the paper's)", verdict,
                        "held when Meta-GAIN's [min, max] interval over its draws covers the truth at its "
                        "nominal level ± 0.10 (mean over Table 1's datasets) and its mean CRPS is no worse "
                        "than any other imputer's that draws (a proper score: noise alone does not win)",
                        tuple(lines)))
    verdict, lines = task_generalises(rows, profile)
    claims.append(Claim("The task regulariser improves generalisation", verdict,
                        "held when, for every pair of Table 5 variants that differ only in TR, the "
                        "mean gap metric_armse_test − metric_armse_train over datasets is smaller "
                        "with it", tuple(lines)))
    verdict, lines = beta_largest(rows, profile)
    claims.append(Claim("The learned β exceeds γ and η", verdict,
                        "held when info_beta > info_gamma and info_beta > info_eta in every ok "
                        "Meta-GAIN cell", tuple(lines)))
    return claims


# --------------------------------------------------------------------------- report text

def _md_table(header: list[str], body: list[list[str]], text_columns: int = 1) -> list[str]:
    """Markdown table; the first ``text_columns`` are left-aligned, the numbers right-aligned."""
    align = ["---"] * text_columns + ["---:"] * (len(header) - text_columns)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in body]


def _winner(scores: pd.Series, higher_is_better: bool) -> str:
    scores = scores.dropna()
    if scores.empty:
        return tables.MISSING
    best = scores.max() if higher_is_better else scores.min()
    return ", ".join(scores.index[scores == best])


def _rank_of(scores: pd.Series, method: str, higher_is_better: bool) -> str:
    scores = scores.dropna()
    if method not in scores:
        return tables.MISSING
    ranks = scores.rank(ascending=not higher_is_better, method="min")
    return f"{int(ranks[method])}/{len(scores)}"


def table_section(name: str, summary: pd.DataFrame, spec=None) -> list[str]:
    """Markdown section for one table: winners and tau per dataset, ratios, Friedman, Wilcoxon."""
    spec = tables.TABLES[name] if spec is None else spec
    ours = tables.score_matrix(summary, "ours_mean", spec=spec)
    paper = tables.score_matrix(summary, "paper", spec=spec)
    target, higher = spec.target, spec.higher_is_better
    lines = [f"## {spec.title}: {spec.caption}", "",
             f"Table: [`tables/{name}.md`](tables/{name}.md) · CD diagram: "
             f"[`figures/cd_{name}.png`](figures/cd_{name}.png)", ""]
    if ours.notna().sum().sum() == 0:
        return lines + ["Not measured yet.", ""]

    lines += ["### Per dataset", "",
              f"Winner by mean {spec.paper_metric}; {target}'s rank among the methods measured; "
              "Kendall τ-b between the paper's values and ours over the methods both have "
              "(1 = the same order).", ""]
    body, taus = [], []
    for dataset in ours.index:
        tau, p, n = stats.kendall_tau(paper.loc[dataset], ours.loc[dataset])
        if np.isfinite(tau):
            taus.append(tau)
        body.append([_label(dataset), _winner(ours.loc[dataset], higher), _winner(paper.loc[dataset], higher),
                     _rank_of(ours.loc[dataset], target, higher), _rank_of(paper.loc[dataset], target, higher),
                     f"{_f(tau, 2)} (n={n}, p={_p(p)})"])
    lines += _md_table(["Dataset", "Winner (ours)", "Winner (paper)", f"{target} rank (ours)",
                        f"{target} rank (paper)", "Kendall τ"], body, text_columns=3)
    lines += ["", f"Mean Kendall τ over {len(taus)} datasets: {_f(np.mean(taus) if taus else np.nan, 2)}.", ""]

    reference = spec.baseline_label
    if reference is not None and reference in ours.columns and ours[reference].notna().any():
        ratio_ours, ratio_paper = stats.ratio_to(ours, reference), stats.ratio_to(paper, reference)
        columns = [c for c in ours.columns if c != reference and ours[c].notna().any()]
        lines += [f"### Ratio to {reference}", "",
                  f"Each method's {spec.paper_metric} divided by {reference}'s on the same dataset, "
                  "ours / paper's (last row: geometric mean over the datasets we measured).", ""]
        body = [[_label(d)] + [f"{_f(ratio_ours.loc[d, c], 2)} / {_f(ratio_paper.loc[d, c], 2)}"
                               for c in columns] for d in ours.index]
        body.append(["geometric mean"] + [
            f"{_f(stats.geometric_mean(ratio_ours[c]), 2)} / "
            f"{_f(stats.geometric_mean(ratio_paper[c].where(ratio_ours[c].notna())), 2)}"
            for c in columns])
        lines += _md_table(["Dataset"] + columns, body) + [""]

    # The paper's numbers are tested on exactly the cells we have, so the two lines compare.
    full = stats.complete_rows(ours.dropna(axis=1, how="all"))
    result = stats.friedman(full, higher)
    paper_result = stats.friedman(paper.loc[full.index, full.columns], higher)
    lines += ["### Friedman test and Nemenyi critical difference", ""]
    if result.n_datasets < 2 or result.n_methods < 3:
        lines += [f"Needs 3 or more methods measured on 2 or more datasets; have {result.n_methods} "
                  f"methods on {result.n_datasets} complete datasets.", ""]
    else:
        lines += [f"Ours over {result.n_datasets} datasets × {result.n_methods} methods: χ²_F = "
                  f"{_f(result.statistic, 2)}, p = {_p(result.pvalue)}; Nemenyi CD at α = {result.alpha}: "
                  f"{_f(result.critical_difference, 2)} ranks. The paper's numbers on the same cells: "
                  f"χ²_F = {_f(paper_result.statistic, 2)}, p = {_p(paper_result.pvalue)}.", ""]
    if result.n_methods:
        body = [[method, _f(rank, 2), _f(paper_result.average_ranks.get(method, np.nan), 2)]
                for method, rank in result.average_ranks.items()]
        lines += _md_table(["Method", "Average rank (ours)", "Average rank (paper, same cells)"], body) + [""]

    if target in ours.columns and ours[target].notna().any():
        tests = stats.wilcoxon_against(ours, target, higher)
        tests = tests[tests["n"] > 0]
        lines += [f"### Wilcoxon signed-rank: {target} against each method", "",
                  f"Paired over datasets, two-sided; advantage = mean over datasets of how much "
                  f"{target} is better (in {spec.paper_metric}); p (Holm) adjusts for the "
                  f"{len(tests)} comparison{'s' if len(tests) != 1 else ''}.", ""]
        body = [[row.method, str(row.n), f"{row.wins}/{row.ties}/{row.losses}", _f(row.advantage),
                 _p(row.p), _p(row.p_holm)] for row in tests.itertuples()]
        lines += _md_table(["Method", "Datasets", "Wins/ties/losses", "Advantage", "p", "p (Holm)"],
                           body) + [""]
    return lines


def calibration_section(summaries: dict[str, pd.DataFrame], calibration: Path | None) -> list[str]:
    """Complete accuracy and Mean's ARMSE against the paper's, then ``results/calibration.md``."""
    lines = ["## Calibration", "",
             "Ours / the paper's. The paper's exact ARMSE definition is not published; these "
             "columns show how far our scale sits from its.", ""]
    columns = [("table4", "complete", "Complete accuracy")] + [
        (name, "mean", f"Mean ARMSE {tables.TABLES[name].mechanism.upper()}")
        for name in ("table1", "table2", "table3")]
    frames = {name: summaries[name].set_index(["dataset", "method"]) for name, _, _ in columns
              if name in summaries}
    datasets = tables.ordered_datasets({d for f in frames.values() for d in f.index.get_level_values(0)})
    body = []
    for dataset in datasets:
        row = [_label(dataset)]
        for name, method, _ in columns:
            frame = frames.get(name)
            if frame is None or (dataset, method) not in frame.index:
                row.append(tables.MISSING)
                continue
            cell = frame.loc[(dataset, method)]
            row.append(f"{_f(cell['ours_mean'])} / {_f(cell['paper'])}")
        body.append(row)
    if body:
        lines += _md_table(["Dataset"] + [title for _, _, title in columns], body) + [""]
    if calibration is not None and Path(calibration).exists():
        lines += [f"The calibration study follows, included from `results/{Path(calibration).name}`.", ""]
        lines += _demote_headings(Path(calibration).read_text(encoding="utf-8"), levels=2) + [""]
    else:
        lines += ["The calibration study (`results/calibration.md`, `make calibrate`) has not been "
                  "written yet.", ""]
    return lines


def _demote_headings(text: str, levels: int) -> list[str]:
    """Lines of an included Markdown file with its headings pushed ``levels`` down (not in code)."""
    out, in_code = [], False
    for line in text.rstrip("\n").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            line = "#" * levels + line
        out.append(line)
    return out


def weights_section(rows: pd.DataFrame, profile: str) -> list[str]:
    """What the meta network does with (β, γ, η): start, end and median over Table 5's cells."""
    data = figures.weights_data(rows, profile)
    lines = ["## Learned weights (β, γ, η)", ""]
    if data.empty:
        return lines + ["No weight trajectory stored yet.", ""]
    lines += ["Per Table 5 variant: the weights at the first and last stored iteration, median over "
              "its cells (datasets × seeds); figures `figures/weights_<variant>.png`. Variants without "
              "the meta network keep the weights their grid search chose.", ""]
    body = []
    for imputer, part in data.groupby("imputer", sort=False):
        first = part[part["iteration"] == part.groupby(["dataset", "seed"])["iteration"].transform("min")]
        last = part[part["iteration"] == part.groupby(["dataset", "seed"])["iteration"].transform("max")]
        body.append([f"[{_variant(imputer)}](figures/weights_{imputer}.png)",
                     str(len(last))] + [f"{_f(first[w].median(), 4)} → {_f(last[w].median(), 4)}"
                                        for w, _ in figures.WEIGHTS])
    lines += _md_table(["Variant", "Cells", "β start → end", "γ start → end", "η start → end"], body) + [""]
    return lines


def figure2_section(data: pd.DataFrame) -> list[str]:
    lines = ["## Figure 2: ARMSE and accuracy against the missing ratio (MCAR)", "",
             "Figure: [`figures/figure2.png`](figures/figure2.png)", ""]
    if data.empty:
        return lines + ["Not measured yet.", ""]
    for (dataset, metric), part in data.groupby(["dataset", "metric"], sort=False):
        grid = part.pivot(index="ratio", columns="label", values="mean")
        grid = grid[list(dict.fromkeys(part["label"]))]  # figure2_data's order: the sweep's, then extras
        lines += [f"### {_label(dataset)}: {metric}", ""]
        body = [[f"{ratio:g}"] + [_f(v) for v in grid.loc[ratio]] +
                [_winner(grid.loc[ratio], metric == "Accuracy")] for ratio in grid.index]
        lines += _md_table(["Ratio"] + list(grid.columns) + ["Best"], body) + [""]
    return lines


def build_report(rows: pd.DataFrame, profile: str, summaries: dict[str, pd.DataFrame],
                 figure2: pd.DataFrame, calibration: Path | None = CALIBRATION_MD) -> str:
    """The whole REPORT.md text (no dates or machine names: those go to PROVENANCE.md)."""
    unreadable = list(rows.attrs.get("unreadable", []))
    rows = tables.normalise_rows(rows)
    mine = rows[rows["profile"] == profile]
    counts = mine["status"].value_counts()
    claims = evaluate_claims(rows, profile, summaries, figure2)
    lines = [f"# Reproduction report: profile `{profile}`", "",
             f"Built from the run store alone by `python -m experiments.report --profile {profile}` "
             "(what ran, where and when: [`PROVENANCE.md`](PROVENANCE.md)). Cells of this profile: "
             f"{len(mine)} (ok {counts.get('ok', 0)}, failed {counts.get('failed', 0)}, skipped "
             f"{counts.get('skipped', 0)}, invalid {counts.get('invalid', 0)}); only each cell's current "
             "canonical row counts (no stale row, no run with overrides). Scores are means over seeds of "
             "test-row ARMSE (`metric_armse_test`) and XGBoost accuracy (`metric_accuracy`).", ""]
    if unreadable:
        lines += [f"**{len(unreadable)} row files could not be read** and are left out (their cells count "
                  "as to-run): " + ", ".join(f"`{u}`" for u in unreadable), ""]
    lines += ["## The paper's claims", "",
              "| Claim | Ours | The paper's own numbers (its 11 datasets) |", "| --- | --- | --- |"]
    lines += [f"| {c.statement} | **{c.verdict}** | {c.paper_verdict or 'not in its tables'} |"
              for c in claims]
    lines.append("")
    for claim in claims:
        lines += [f"### {claim.statement}: {claim.verdict}", "", f"Rule: {claim.rule}.", ""]
        lines += [f"- {line}" for line in claim.evidence] or ["- no cell measured yet"]
        if claim.paper_evidence:
            lines += ["", f"The same rule on the paper's own numbers: {claim.paper_verdict}.", ""]
            lines += [f"- {line}" for line in claim.paper_evidence]
        lines.append("")
    specs = tables.table_specs(rows, profile)
    for name in specs:
        if name in summaries:
            lines += table_section(name, summaries[name], specs[name])
    lines += figure2_section(figure2)
    lines += weights_section(rows, profile)
    lines += calibration_section(summaries, calibration)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- driver

def load_profile(profile: str) -> dict:
    """``conf/profile/<profile>.yaml`` as a dict ({} when there is no such file)."""
    path = PROFILE_DIR / f"{profile}.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True) if path.exists() else {}



def build_outputs(rows: pd.DataFrame, profile: str, out_dir: Path | str, command: str,
                  profile_conf: dict | None = None, calibration: Path | None = CALIBRATION_MD) -> Path:
    """Tables, figures, REPORT.md and PROVENANCE.md of ``profile`` under ``out_dir``."""
    out_dir = Path(out_dir)
    profile_conf = load_profile(profile) if profile_conf is None else profile_conf
    rows = tables.normalise_rows(rows)
    present = rows.loc[rows["profile"] == profile, "dataset"].dropna().unique()
    datasets = tables.ordered_datasets(set(profile_conf.get("datasets") or []) | set(present))
    summaries = tables.write_tables(rows, profile, out_dir, datasets=datasets,
                                    specs=tables.table_specs(rows, profile))
    figure2 = figures.figure2_data(rows, profile, profile_conf.get("figure2_datasets"))
    figures.write_figures(rows, profile, out_dir, summaries, profile_conf.get("figure2_datasets"))
    report = out_dir / "REPORT.md"
    report.write_text(build_report(rows, profile, summaries, figure2, calibration), encoding="utf-8")
    tables.write_provenance(rows, profile, out_dir, command)
    return report


def results_root(explicit: str | None) -> Path:
    """``--results-dir``, else ``$METAGAIN_RESULTS_DIR``, else ``results`` (as the runner resolves it)."""
    return Path(explicit or os.environ.get("METAGAIN_RESULTS_DIR") or "results")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild a profile's tables, figures and REPORT.md "
                                                 "from the run store.")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--results-dir", default=None, help="store root (default: "
                        "$METAGAIN_RESULTS_DIR or results)")
    args = parser.parse_args(argv)
    from experiments.store import load_rows

    root = results_root(args.results_dir)
    command = "python -m experiments.report " + " ".join(sys.argv[1:] if argv is None else argv)
    report = build_outputs(load_rows(root), args.profile, root / args.profile, command.strip())
    print(f"wrote {report} and the tables, figures and provenance beside it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
