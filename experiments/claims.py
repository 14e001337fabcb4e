"""The paper's headline claims, each judged held, not held or not yet measured by a stated rule.

Every claim is one function of the rows (or of the tables' summaries) that returns a verdict and
the lines of numbers behind it; :func:`evaluate_claims` lists them in the report's order. The
same rule is applied to the paper's own numbers where its tables have them. Claims compare the
paper's methods only: an extra imputer (a user's, MICE) never changes a verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import tables
from experiments.paper import PROPOSED

HELD, NOT_HELD, NOT_MEASURED = "held", "not held", "not yet measured"
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
