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
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from experiments import figures, stats, tables
from experiments.claims import _f, _label, _p, _variant, evaluate_claims
from experiments.paper import PROPOSED

CALIBRATION_MD = tables.ROOT / "results" / "calibration.md"
PROFILE_DIR = tables.ROOT / "conf" / "profile"


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


def rests_on(summary: pd.DataFrame, seeds: int | None = None) -> str:
    """One sentence: the ok cells a table (``summary``, its imputers' rows) rests on, its datasets,
    and the measured datasets' (dataset, method) entries with fewer than ``seeds`` seeds."""
    counts = summary.set_index(["dataset", "label"])["n_seeds"]
    datasets = list(dict.fromkeys(summary["dataset"]))
    done = [d for d in datasets if counts.loc[d].gt(0).any()]
    text = (f"Rests on {int(counts.sum())} ok cells: {len(done)} of {len(datasets)} datasets"
            + (f", {seeds} seeds per (dataset, method) in the profile" if seeds else "") + ".")
    measured = counts[counts.index.get_level_values("dataset").isin(done)]
    by_method = measured.groupby(level="label", sort=False).sum()
    absent = [label for label, n in by_method.items() if n == 0]
    if absent and done:
        text += " No cell yet: " + ", ".join(absent) + "."
    short = [f"{_label(d)} {label} ({int(n)} of {seeds})" for (d, label), n in measured.items()
             if label not in absent and seeds and n < seeds]
    if short:
        text += " Fewer seeds: " + ", ".join(short) + "."
    missing = [_label(d) for d in datasets if d not in done]
    if missing:
        text += " Not measured: " + ", ".join(missing) + "."
    return text


def table_section(name: str, summary: pd.DataFrame, spec=None, seeds: int | None = None) -> list[str]:
    """Markdown section for one table: what it rests on, winners and tau per dataset, ratios,
    Friedman, Wilcoxon."""
    spec = tables.TABLES[name] if spec is None else spec
    ours = tables.score_matrix(summary, "ours_mean", spec=spec)
    paper = tables.score_matrix(summary, "paper", spec=spec)
    target, higher = spec.target, spec.higher_is_better
    lines = [f"## {spec.title}: {spec.caption}", "",
             f"Table: [`tables/{name}.md`](tables/{name}.md) · CD diagram: "
             f"[`figures/cd_{name}.png`](figures/cd_{name}.png)", ""]
    if ours.notna().sum().sum() == 0:
        return lines + ["Not measured yet.", ""]
    lines += [rests_on(summary[summary["method"].isin(spec.imputers)], seeds), ""]

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


def _pair_tables() -> list:
    """The paper's ARMSE tables with one mechanism each (Tables 1–3): the pairs' source."""
    return [spec for spec in tables.TABLES.values()
            if spec.paper and spec.paper_metric == "ARMSE" and not spec.variants_as_rows]


def pair_matrix(summaries: dict[str, pd.DataFrame], value: str = "ours_mean") -> pd.DataFrame:
    """(Dataset, mechanism) pairs × the paper's methods of Tables 1–3: the unit of the paired
    comparisons when few datasets are measured."""
    parts = []
    for spec in _pair_tables():
        if spec.name not in summaries:
            continue
        matrix = tables.score_matrix(summaries[spec.name], value, spec=spec)  # the paper's methods only
        matrix.index = [f"{_label(d)}, {spec.mechanism.upper()}" for d in matrix.index]
        parts.append(matrix)
    return pd.concat(parts) if parts else pd.DataFrame()


def seed_matrix(rows: pd.DataFrame, profile: str) -> pd.DataFrame:
    """(Dataset, mechanism, seed) cells × the paper's methods of Tables 1–3: each seed's ARMSE.

    Every method of one seed saw the same mask, so a seed is a matched pair too. Its test speaks
    to how steady a difference is from draw to draw on the measured datasets, not to other datasets.
    """
    rows = tables.normalise_rows(rows)
    parts = []
    for spec in _pair_tables():
        labels = {c.key: c.label for c in spec.columns if c.compete and c.row_metric is None}
        ok = tables.ok_rows(tables.select_cells(rows, profile, spec.mechanism, spec.ratio, labels))
        ok = ok.dropna(subset=[spec.metric])
        if ok.empty:
            continue
        matrix = ok.pivot_table(index=["dataset", "seed"], columns="imputer", values=spec.metric, aggfunc="first")
        order = tables.ordered_datasets(matrix.index.get_level_values("dataset"))
        matrix = matrix.reindex(columns=[k for k in labels if k in matrix.columns]).rename(columns=labels)
        matrix = matrix.loc[sorted(matrix.index, key=lambda i: (order.index(i[0]), i[1]))]
        matrix.index = [f"{_label(d)}, {spec.mechanism.upper()}, seed {int(s)}" for d, s in matrix.index]
        parts.append(matrix)
    return pd.concat(parts) if parts else pd.DataFrame()


def _target_label() -> str | None:
    return next((spec.target for spec in tables.TABLES.values() if spec.paper), None)


def paired_comparisons(summaries: dict[str, pd.DataFrame], pairs=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Meta-GAIN against every paper method over the (dataset, mechanism) pairs of Tables 1–3
    (only ``pairs``, labels such as "Wine, MCAR", when given): Wilcoxon signed-rank, rank-biserial
    effect, Holm-corrected p; ours and the paper's numbers on the same pairs (the same rule on both)."""
    ours, paper = pair_matrix(summaries), pair_matrix(summaries, "paper")
    target = _target_label()
    if pairs is not None and not ours.empty:
        ours = ours.loc[[p for p in ours.index if p in set(pairs)]]
    if ours.empty or target not in ours or ours[target].notna().sum() == 0:
        return pd.DataFrame(), pd.DataFrame()
    ours = ours.dropna(axis=1, how="all")
    measured = ours[target].notna()
    paper = paper.loc[measured[measured].index, [c for c in ours.columns if c in paper.columns]]
    return stats.wilcoxon_against(ours, target, False), stats.wilcoxon_against(paper, target, False)


def seed_comparisons(rows: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Meta-GAIN against every paper method over the (dataset, mechanism, seed) cells of Tables 1–3
    (:func:`seed_matrix`): the same test and Holm correction as :func:`paired_comparisons`."""
    matrix, target = seed_matrix(rows, profile), _target_label()
    if matrix.empty or target not in matrix or matrix[target].notna().sum() == 0:
        return pd.DataFrame()
    return stats.wilcoxon_against(matrix.dropna(axis=1, how="all"), target, False)


def paired_section(comparisons: tuple[pd.DataFrame, pd.DataFrame], seeds: pd.DataFrame | None = None) -> list[str]:
    """The paired comparisons (:func:`paired_comparisons`, ours and the paper's; and
    :func:`seed_comparisons` when given) as a section."""
    ours, paper = comparisons
    lines = ["## Meta-GAIN against each method over (dataset, mechanism) pairs (Tables 1–3)", ""]
    if ours.empty:
        return lines + ["Not measured yet.", ""]
    lines += ["Each (dataset, mechanism) cell of Tables 1–3 is one pair, so three mechanisms on a few datasets "
              "still give a test. Advantage: how much lower Meta-GAIN's ARMSE is (positive = Meta-GAIN "
              "better); r: the matched-pairs rank-biserial effect (1: every pair favours Meta-GAIN); "
              f"p (Holm) adjusts for the {len(ours)} comparisons. The paper's numbers are tested on the same "
              "pairs.", ""]
    paper = paper.set_index("method")
    body = []
    for row in ours.itertuples():
        theirs = paper.loc[row.method] if row.method in paper.index else None
        body.append([row.method, str(row.n), f"{row.wins}/{row.ties}/{row.losses}", _f(row.median_advantage),
                     _f(row.effect, 2), _p(row.p_holm),
                     "—" if theirs is None else f"{int(theirs['wins'])}/{int(theirs['ties'])}/{int(theirs['losses'])}",
                     "—" if theirs is None else _f(theirs["effect"], 2),
                     "—" if theirs is None else _p(theirs["p_holm"])])
    lines += _md_table(["Method", "Pairs", "Wins/ties/losses", "Median advantage", "r", "p (Holm)",
                        "Paper: wins/ties/losses", "Paper: r", "Paper: p (Holm)"], body) + [""]
    if seeds is not None and not seeds.empty:
        lines += ["### Over seeds", "",
                  "The same test with each (dataset, mechanism, seed) cell as a pair: every method of one seed "
                  "saw the same mask. Seeds of one dataset are not new datasets, so this p says how steady a "
                  "difference is from draw to draw on the datasets measured, not that it holds on others. "
                  f"p (Holm) adjusts for the {len(seeds)} comparisons.", ""]
        body = [[row.method, str(row.n), f"{row.wins}/{row.ties}/{row.losses}", _f(row.median_advantage),
                 _f(row.effect, 2), _p(row.p_holm)] for row in seeds.itertuples()]
        lines += _md_table(["Method", "Seed cells", "Wins/ties/losses", "Median advantage", "r", "p (Holm)"],
                           body) + [""]
    return lines


def mean_ranks(summary: pd.DataFrame, spec, datasets=None) -> tuple[pd.Series, pd.DataFrame]:
    """Mean rank of every measured method of ``spec`` over the datasets where all of them were
    measured (only ``datasets`` when given), and the ranks themselves (datasets × methods).

    A dataset with a method missing is left out (as the Friedman test does): ranked among fewer
    methods, Meta-GAIN would look better there than it is (alone, it is first)."""
    matrix = _measured(summary, spec)
    if datasets is not None:
        matrix = matrix.loc[[d for d in matrix.index if d in set(datasets)]]
    full = stats.complete_rows(matrix)
    if full.empty or spec.target not in full:
        return pd.Series(dtype=float), pd.DataFrame()
    ranks = full.rank(axis=1, ascending=not spec.higher_is_better, method="min")
    return ranks.mean(), ranks


def _measured(summary: pd.DataFrame, spec) -> pd.DataFrame:
    """Datasets × methods of ``spec``'s scores, without the datasets and methods never measured."""
    return tables.score_matrix(summary, spec=spec).dropna(how="all").dropna(axis=1, how="all")


def partial_datasets(summary: pd.DataFrame, spec) -> int:
    """Datasets where ``spec``'s target was measured but some other measured method was not."""
    matrix = _measured(summary, spec)
    if spec.target not in matrix:
        return 0
    return int((matrix[spec.target].notna() & matrix.isna().any(axis=1)).sum())


def rivals(comparisons: pd.DataFrame, worst: int = 3) -> list[str]:
    """GAIN (what Meta-GAIN builds on), then up to ``worst`` methods Meta-GAIN loses to by median
    advantage, worst first."""
    by_method = comparisons.set_index("method")
    losing = by_method[by_method["median_advantage"] < 0]["median_advantage"].sort_values()
    return list(dict.fromkeys([m for m in ["GAIN", *losing.index[:worst]] if m in by_method.index]))


def _pairs_line(row, method: str, prefix: str, seeds: pd.DataFrame | None = None) -> str:
    text = (f"{prefix}Meta-GAIN beats {method} on {int(row['wins'])} and loses on {int(row['losses'])} of "
            f"{int(row['n'])} (dataset, mechanism) pairs (median ARMSE advantage {_f(row['median_advantage'])}, "
            f"r = {_f(row['effect'], 2)}, Holm p = {_p(row['p_holm'])})")
    if seeds is not None and not seeds.empty and method in set(seeds["method"]):
        s = seeds.set_index("method").loc[method]
        text += (f"; over its {int(s['n'])} seed cells it wins {int(s['wins'])} and loses {int(s['losses'])} "
                 f"(r = {_f(s['effect'], 2)}, Holm p = {_p(s['p_holm'])})")
    return text + "."


def budget_contrast(rows: pd.DataFrame, profile: str, other: str, summaries: dict[str, pd.DataFrame],
                    paper: dict | None = None, ours: pd.DataFrame | None = None) -> list[str]:
    """How ``other`` profile's rows answer the same questions on the same datasets and pairs as
    ``profile``'s (``summaries``; ``ours``: its paired comparisons when already computed): mean
    ranks per table and the paired comparisons."""
    rows = tables.normalise_rows(rows)
    if not (rows["profile"] == other).any():
        return [f"- Profile `{other}`: no rows to compare with."]
    paper = tables.load_paper() if paper is None else paper
    specs = tables.table_specs(rows, other)
    theirs = {name: tables.summarise(rows, specs[name], other, paper) for name in summaries if name in specs}
    lines = []
    for name, spec in tables.TABLES.items():
        if not spec.paper or name not in summaries or name not in theirs:
            continue
        _, ranks = mean_ranks(summaries[name], spec)
        _, their_ranks = mean_ranks(theirs[name], spec, datasets=ranks.index)
        if their_ranks.empty:
            continue
        both = list(their_ranks.index)  # the datasets where both profiles measured Meta-GAIN
        here, there = mean_ranks(summaries[name], spec, both)[0], mean_ranks(theirs[name], spec, both)[0]
        lines.append(f"- **{spec.title}**, on the {len(both)} datasets both measured: {spec.target}'s mean rank "
                     f"{_f(here[spec.target], 2)} here, {_f(there[spec.target], 2)} at `{other}` (best: "
                     f"{here.idxmin()} here, {there.idxmin()} there).")
    ours = paired_comparisons(summaries)[0] if ours is None else ours
    if not ours.empty:
        pairs = list(pair_matrix(summaries).dropna(subset=[_target_label()]).index)
        same, _ = paired_comparisons(theirs, pairs=pairs)
        every, _ = paired_comparisons(theirs)
        views = [(same, "the pairs both measured")]
        their_pairs = pair_matrix(theirs).dropna(subset=[_target_label()]).index
        if any(p not in set(pairs) for p in their_pairs):  # it has pairs this profile has not
            views.append((every, f"all of `{other}`'s pairs"))
        for method in rivals(ours):
            for frame, where in views:
                if not frame.empty and method in set(frame["method"]):
                    lines.append(_pairs_line(frame.set_index("method").loc[method], method,
                                             f"- At `{other}`, on {where}: "))
    return lines


def summary_section(summaries: dict[str, pd.DataFrame], profile: str,
                    comparisons: tuple[pd.DataFrame, pd.DataFrame] | None = None,
                    seeds: pd.DataFrame | None = None, contrast: dict[str, list[str]] | None = None) -> list[str]:
    """The plain-language answer first: where Meta-GAIN stands, per table, with the numbers; then
    how other profiles (``contrast``: profile → lines from :func:`budget_contrast`) answer."""
    lines = ["## In short", ""]
    for name, spec in tables.TABLES.items():
        if not spec.paper or name not in summaries:
            continue
        mean_rank, ranks = mean_ranks(summaries[name], spec)
        if mean_rank.empty:
            continue
        best = mean_rank.idxmin()
        wins = int((ranks[spec.target] == 1).sum())
        what = " variants" if spec.variants_as_rows else ""  # Table 5: Meta-GAIN with all components on
        partial = partial_datasets(summaries[name], spec)
        left_out = f"; {partial} more with a method not measured left out" if partial else ""
        lines.append(f"- **{spec.title}** ({spec.paper_metric}, {spec.mechanism.upper()}, {len(ranks)} datasets"
                     f"{left_out}): "
                     f"{spec.target} has mean rank {_f(mean_rank[spec.target], 2)} of {ranks.shape[1]}{what} and "
                     f"is best on {wins}; the best mean rank is {best}'s ({_f(mean_rank[best], 2)}).")
    ours, _ = paired_comparisons(summaries) if comparisons is None else comparisons
    if not ours.empty:
        by_method = ours.set_index("method")
        for method in rivals(ours):
            lines.append(_pairs_line(by_method.loc[method], method, "- Over Tables 1–3: ", seeds))
    for other, contrast_lines in (contrast or {}).items():
        if contrast_lines:
            lines += ["", f"How the `{other}` profile answers the same questions (its own rows, the same rules):", ""]
            lines += contrast_lines
    lines += ["", f"Profile `{profile}`: every number below says how many datasets, cells and seeds it rests on; "
              "the claims section applies each rule to the paper's own numbers too.", ""]
    return lines if len(lines) > 4 else []


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
    for imputer in [k for k in tables.ABLATIONS if k in set(data["imputer"])]:  # Table 5's order
        part = data[data["imputer"] == imputer]
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


#: The sweeps each claim's numbers come from (its verdict says on how many datasets it rests)
CLAIM_SWEEPS = {"Meta-GAIN beats all methods": ("table1", "table2", "table3", "table4"),
                "Every component helps": ("table5",), "Two components beat": ("table5",),
                "MN beats ID and TR": ("table5",), "Meta-GAIN's advantage holds": ("figure2",),
                "The KL term and the meta network": ("table5",), "Meta-GAIN's draws": ("table1",),
                "The task regulariser": ("table5",), "The learned β": ("table1", "table5")}


def coverage(rows: pd.DataFrame, profile: str, settings: dict | None = None) -> pd.DataFrame:
    """Per sweep and dataset of the profile: cells in its grid, cells ok and failed, and the seeds among the ok."""
    from experiments import reproduce

    settings = load_profile(profile) if settings is None else settings
    extras = [str(n) for n in settings.get("extra_imputers") or []]
    records = []
    for sweep in reproduce.SWEEPS:
        cells = reproduce.expand(reproduce.sweep_grid(sweep, settings, extras))
        cells["status"] = reproduce.cell_status(cells, rows, profile).to_numpy()
        for dataset, group in cells.groupby("dataset", sort=False):
            ok = group[group["status"] == "ok"]
            proposed = ok["imputer"].astype(str) == PROPOSED  # the full Meta-GAIN
            records.append({"sweep": sweep, "dataset": dataset, "cells": len(group), "ok": len(ok),
                            "failed": int((group["status"] == "failed").sum()),
                            "seeds": len(ok["seed"].unique()), "proposed_ok": int(proposed.sum())})
    return pd.DataFrame.from_records(records, columns=["sweep", "dataset", "cells", "ok", "failed", "seeds",
                                                       "proposed_ok"])


def coverage_section(table: pd.DataFrame) -> list[str]:
    """Cells done / cells in the grid, per dataset (rows) and sweep (columns)."""
    if table.empty or (table["ok"] == table["cells"]).all():
        return []
    sweeps = list(dict.fromkeys(table["sweep"]))
    lines = ["## Coverage", "",
             "Cells ok / cells in the profile's grid, per dataset and sweep (the seeds among the ok cells in "
             "brackets; cells that ran and failed, after a comma). A table or claim rests only on the cells "
             "done; a verdict on fewer datasets than the paper's (11, or 3 for Figure 2) says so.", ""]
    body = []
    for dataset in dict.fromkeys(table["dataset"]):
        cells = []
        for sweep in sweeps:
            hit = table[(table["sweep"] == sweep) & (table["dataset"] == dataset)]
            cells.append("" if hit.empty else _coverage_cell(hit.iloc[0]))
        body.append([_label(dataset), *cells])
    totals = table.groupby("sweep", sort=False)[["ok", "cells"]].sum()
    body.append(["all", *[f"{int(totals.loc[s, 'ok'])}/{int(totals.loc[s, 'cells'])}" for s in sweeps]])
    return lines + _md_table(["Dataset", *sweeps], body) + [""]


def _coverage_cell(entry) -> str:
    text = f"{int(entry['ok'])}/{int(entry['cells'])}" + (f" ({int(entry['seeds'])})" if entry["ok"] else "")
    return text + (f", {int(entry['failed'])} failed" if entry["failed"] else "")


def failures_section(rows: pd.DataFrame, profile: str, limit: int = 20) -> list[str]:
    """The profile's failed cells, each with its error's first line (the next run retries them)."""
    failed = rows[(rows["profile"] == profile) & (rows["status"] == "failed")]
    if failed.empty:
        return []
    failed = failed.sort_values(["dataset", "mechanism", "ratio", "imputer", "seed"], kind="stable")
    lines = ["### Failed cells", "",
             f"{len(failed)} cells ran and failed; their rows say why, and the next run of their sweep "
             "retries them. Their tables' entries rest on the other seeds and carry a footnote.", ""]
    for row in failed.head(limit).itertuples(index=False):
        lines.append(f"- {_label(row.dataset)} {str(row.mechanism).upper()} r={float(row.ratio):g} "
                     f"{tables.LAYOUT.imputer_labels.get(row.imputer, row.imputer)} seed {int(row.seed)}: "
                     f"{tables._first_line(row.error)}")
    if len(failed) > limit:
        lines.append(f"- … and {len(failed) - limit} more (`make plan PROFILE={profile}` counts them)")
    return lines + [""]


def _claim_datasets(statement: str, table: pd.DataFrame) -> tuple[int, int] | None:
    """(n, of): how many datasets have, in the sweeps a claim's numbers come from, an ok Meta-GAIN
    cell and an ok cell of something to compare it with (another method or variant: Table 5's
    variants, not only the full Meta-GAIN that Tables 1–3 share with it), and how many datasets
    the paper's grid of those sweeps has (11 for the tables, 3 for Figure 2)."""
    from experiments import reproduce

    sweeps = next((v for k, v in CLAIM_SWEEPS.items() if statement.startswith(k)), None)
    if sweeps is None or table.empty:
        return None
    hit = table[table["sweep"].isin(sweeps) & (table["proposed_ok"] > 0) & (table["ok"] > table["proposed_ok"])]
    paper = {d for sweep in sweeps for d in reproduce.sweep_params(sweep)["dataset"]}
    return int(hit["dataset"].nunique()), len(paper)


def build_report(rows: pd.DataFrame, profile: str, summaries: dict[str, pd.DataFrame],
                 figure2: pd.DataFrame, calibration: Path | None = CALIBRATION_MD,
                 profile_conf: dict | None = None) -> str:
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
    comparisons = paired_comparisons(summaries)
    seeds = seed_comparisons(rows, profile)
    covered = coverage(rows, profile, profile_conf)
    contrast = {other: budget_contrast(rows, profile, other, summaries, ours=comparisons[0])
                for other in (profile_conf or {}).get("compare_with") or []}
    lines += summary_section(summaries, profile, comparisons, seeds, contrast)
    lines += coverage_section(covered)
    lines += failures_section(rows, profile)
    lines += ["## The paper's claims", "",
              "| Claim | Ours | The paper's own numbers (its 11 datasets) |", "| --- | --- | --- |"]
    for c in claims:
        n, of = _claim_datasets(c.statement, covered) or (None, None)
        short = n is not None and n < of and c.verdict != "not yet measured"
        ours = f"**{c.verdict}**" + (f" (on {n} of the paper's {of} datasets)" if short else "")
        lines.append(f"| {c.statement} | {ours} | {c.paper_verdict or 'not in its tables'} |")
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
            lines += table_section(name, summaries[name], specs[name], len((profile_conf or {}).get("seeds") or []))
    lines += paired_section(comparisons, seeds)
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
    report.write_text(build_report(rows, profile, summaries, figure2, calibration, profile_conf),
                      encoding="utf-8")
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
