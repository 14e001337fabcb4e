"""The paper's tables rebuilt from the run store: ours (mean ± std over seeds) beside the paper's.

Everything here is a function of the store's rows (a DataFrame, one row per cell, as
``experiments.store.load_rows`` returns it) and the paper's numbers
(``results/reference/paper_tables.csv``). Only ``status == "ok"`` rows of one profile count;
cells with no such row show "—", and cells whose rows were skipped or failed carry a footnote
with the reason. Each table is written as Markdown, LaTeX (booktabs) and a long CSV under
``<results>/<profile>/tables/``; nothing in them depends on the date or the machine, so they are
byte-identical whenever the numbers are. ``PROVENANCE.md`` beside them says what made them.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import paper as _paper
from experiments.paper import COMPONENTS, Column, TableSpec, ablation_label  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parent.parent
PAPER_CSV = ROOT / "results" / "reference" / "paper_tables.csv"
MISSING = "—"

# The paper's layout comes from conf/ through one loader (experiments/paper.py): no list of
# methods or datasets is written here.
LAYOUT = _paper.load()
DATASETS = LAYOUT.datasets                 # the paper's order (its tables' rows)
DATASET_LABELS = LAYOUT.dataset_labels
METHOD_LABELS = LAYOUT.methods             # the paper's compared methods, in its column order
ABLATIONS = LAYOUT.ablations               # Table 5's variants: key -> (ID, MN, TR)
TABLES: dict[str, TableSpec] = LAYOUT.tables
PAPER_TABLES = LAYOUT.paper_tables

IDENTITY = ["dataset", "mechanism", "ratio", "imputer", "seed", "profile"]
STORE_COLUMNS = IDENTITY + [
    "cell_key", "status", "error", "metric_armse_test", "metric_armse_train", "metric_rmse_test",
    "metric_rmse_train", "metric_accuracy", "metric_accuracy_complete", "metric_diversity_std",
    "metric_armse_mean_draw", "metric_realised_ratio", "metric_coverage", "metric_coverage_nominal",
    "metric_crps", "metric_brier", "metric_accuracy_native", "metric_accuracy_indicator",
    "info_beta", "info_gamma", "info_eta",
    "fit_seconds", "transform_seconds", "peak_memory_mb", "device", "git_sha",
]
SUMMARY_COLUMNS = ["table", "dataset", "method", "label", "ours_mean", "ours_std", "n_seeds", "paper",
                   "delta", "best", "paper_best", "note_kind", "note"]


# --------------------------------------------------------------------------- inputs

def normalise_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The store's rows with every column this module reads present and typed.

    An empty store (no ``runs/`` yet) may come back without columns; missing ones become NaN.
    """
    rows = rows.copy()
    for column in STORE_COLUMNS:
        if column not in rows.columns:
            rows[column] = np.nan
    rows["ratio"] = pd.to_numeric(rows["ratio"], errors="coerce").round(6)
    numeric = [c for c in rows.columns if (c.startswith(("metric_", "info_")) or c.endswith("_seconds"))
               and not c.endswith("_trajectory")]  # trajectories are JSON text
    for column in ["seed", "peak_memory_mb", *numeric]:
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    for column in ("dataset", "mechanism", "imputer", "profile", "status"):
        rows[column] = rows[column].astype(object)
    return rows


def load_paper(path: Path | str = PAPER_CSV) -> dict[tuple, float]:
    """The paper's numbers keyed by (metric, mechanism, ratio, dataset, method label).

    Tables 1 and 5 share metric, mechanism and ratio but use different method labels, so this
    key is unique; a duplicate would be a transcription error and is refused.
    """
    frame = pd.read_csv(path)
    keys = list(zip(frame["metric"], frame["mechanism"].str.lower(), frame["missing_ratio"].round(6),
                    frame["dataset"], frame["method"]))
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path} holds the same (metric, mechanism, ratio, dataset, method) twice; "
                         "fix the transcription.")
    return dict(zip(keys, frame["value"].astype(float)))


def _paper_value(paper: dict, spec: TableSpec, dataset: str, column: Column) -> float:
    if column.paper_label is None:
        return float("nan")
    key = (spec.paper_metric, spec.mechanism, round(spec.ratio, 6), dataset, column.paper_label)
    return paper.get(key, float("nan"))


def select_cells(rows: pd.DataFrame, profile: str, mechanism: str, ratio: float | None,
                 imputers) -> pd.DataFrame:
    """Rows (any status) of one profile, mechanism and ratio (None: every ratio) for ``imputers``."""
    keep = (rows["profile"] == profile) & (rows["mechanism"] == mechanism) & rows["imputer"].isin(
        list(imputers))
    if ratio is not None:
        keep &= np.isclose(rows["ratio"].astype(float), ratio)
    return rows[keep]


def ok_rows(cells: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` rows, one per (dataset, mechanism, ratio, imputer, seed).

    Two ok rows for one identity mean the same cell ran with different parameters (e.g. a
    command-line override); the table cannot tell which is meant, so it keeps the first by
    ``cell_key`` and warns.
    """
    ok = cells[cells["status"] == "ok"].sort_values("cell_key", kind="stable")
    duplicated = ok.duplicated(IDENTITY, keep="first")
    if duplicated.any():
        extra = ok[duplicated][IDENTITY].drop_duplicates().to_dict("records")
        warnings.warn(f"{int(duplicated.sum())} cells have more than one ok row (different "
                      f"parameters?); keeping the first by cell_key: {extra[:3]}", stacklevel=2)
    return ok[~duplicated]


def ordered_datasets(names) -> list[str]:
    """Datasets in the paper's order, unknown ones after them alphabetically."""
    names = set(names)
    return [d for d in DATASETS if d in names] + sorted(names - set(DATASETS))


def _first_line(text, limit: int = 160) -> str:
    """First non-empty line of an error (a traceback's headline), cut to ``limit`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
    line = lines[0] if lines else "no reason recorded"
    return line if len(line) <= limit else line[:limit - 1] + "…"


# --------------------------------------------------------------------------- summary

def summarise(rows: pd.DataFrame, spec: TableSpec, profile: str, paper: dict,
              datasets=None) -> pd.DataFrame:
    """One row per (dataset, method) of ``spec``: ours (mean, std, n over seeds), paper, best.

    ``datasets`` defaults to those with any row of this table in the store. Returns the long
    table that the renderers and ``experiments.report`` use (columns ``SUMMARY_COLUMNS``).
    """
    rows = normalise_rows(rows)
    cells = select_cells(rows, profile, spec.mechanism, spec.ratio, spec.imputers)
    ok = ok_rows(cells)
    if datasets is None:
        datasets = ordered_datasets(cells["dataset"].dropna().unique())
    aggregate = ["mean", "std", "count"]  # std over seeds with ddof=1: NaN for a single seed
    ours = ok.dropna(subset=[spec.metric]).groupby(["dataset", "imputer"])[spec.metric].agg(aggregate)
    # A reference column (Complete accuracy, …) depends on (dataset, seed) only: any row of that
    # seed holds it.
    references = {c.row_metric: ok.dropna(subset=[c.row_metric]).groupby(["dataset", "seed"])[c.row_metric]
                  .first().groupby(level="dataset").agg(aggregate)
                  for c in spec.columns if c.row_metric is not None and c.row_metric in ok}
    not_ok = dict(list(cells[cells["status"] != "ok"].groupby(["dataset", "imputer"])))
    records = []
    for dataset in datasets:
        for column in spec.columns:
            if column.row_metric is not None:
                reference = references.get(column.row_metric)
                found = reference.loc[dataset] if reference is not None and dataset in reference.index else None
                note_kind, note = "", ""
            else:
                key = (dataset, column.key)
                found = ours.loc[key] if key in ours.index else None
                n_ok = 0 if found is None else int(found["count"])
                note_kind, note = _note(not_ok.get(key), n_ok)
            mean, std, n = (np.nan, np.nan, 0) if found is None else (
                found["mean"], found["std"], int(found["count"]))
            paper_value = _paper_value(paper, spec, dataset, column)
            records.append({
                "table": spec.name, "dataset": dataset, "method": column.key, "label": column.label,
                "ours_mean": mean, "ours_std": std, "n_seeds": n, "paper": paper_value,
                "delta": mean - paper_value, "note_kind": note_kind, "note": note,
            })
    measured = [c for c in SUMMARY_COLUMNS if c not in ("best", "paper_best")]
    summary = pd.DataFrame.from_records(records, columns=measured)
    summary = summary.astype({"ours_mean": float, "ours_std": float, "paper": float, "delta": float,
                              "n_seeds": int})
    competing = {c.key for c in spec.columns if c.compete}
    summary["best"] = _mark_best(summary, "ours_mean", competing, spec.higher_is_better)
    summary["paper_best"] = _mark_best(summary, "paper", competing, spec.higher_is_better)
    return summary[SUMMARY_COLUMNS]


def _note(others: pd.DataFrame, n_ok: int) -> tuple[str, str]:
    """Why a cell is missing or partial: the skipped/failed rows' reason ('' when none)."""
    if others is None or others.empty:
        return "", ""
    for kind in ("skipped", "failed"):
        mine = others[others["status"] == kind]
        if len(mine):
            reason = _first_line(mine["error"].dropna().iloc[0] if mine["error"].notna().any()
                                 else None)
            if n_ok:
                reason = f"{len(mine)} of {len(mine) + n_ok} seeds {kind}: {reason}"
            return kind, reason
    return "", ""


def _mark_best(summary: pd.DataFrame, value: str, competing: set, higher_is_better: bool) -> pd.Series:
    """True where ``value`` is the best of its dataset among competing methods (ties all True)."""
    best = pd.Series(False, index=summary.index)
    eligible = summary[summary["method"].isin(competing) & np.isfinite(summary[value])]
    for _, group in eligible.groupby("dataset", sort=False):
        target = group[value].max() if higher_is_better else group[value].min()
        best[group.index[group[value] == target]] = True
    return best


def score_matrix(summary: pd.DataFrame, value: str = "ours_mean", competing_only: bool = True,
                 spec: TableSpec | None = None) -> pd.DataFrame:
    """Datasets × method labels of ``value`` (``ours_mean`` or ``paper``), in table order."""
    frame = summary
    if competing_only and spec is not None:
        frame = frame[frame["method"].isin([c.key for c in spec.columns if c.compete])]
    matrix = frame.pivot(index="dataset", columns="label", values=value)
    labels = list(dict.fromkeys(frame["label"]))
    return matrix.reindex(index=list(dict.fromkeys(frame["dataset"])), columns=labels)


# --------------------------------------------------------------------------- rendering

def _fmt(value: float) -> str:
    return MISSING if not np.isfinite(value) else f"{value:.3f}"


def _footnotes(summary: pd.DataFrame) -> tuple[dict[int, str], list[str]]:
    """Footnote number for each summary row with a note, and the footnote lines (numbered)."""
    numbers: dict[tuple, int] = {}
    affected: dict[tuple, list[str]] = {}
    marks: dict[int, str] = {}
    for index, row in summary.iterrows():
        if not row["note_kind"]:
            continue
        key = (row["label"], row["note_kind"], row["note"])
        numbers.setdefault(key, len(numbers) + 1)
        affected.setdefault(key, []).append(DATASET_LABELS.get(row["dataset"], row["dataset"]))
        marks[index] = f"[{numbers[key]}]"
    lines = [f"[{n}] {label} {kind} ({', '.join(affected[(label, kind, note)])}): {note}"
             for (label, kind, note), n in numbers.items()]
    return marks, lines


def _cell_texts(summary: pd.DataFrame, spec: TableSpec, marks: dict, bold, pm: str) -> pd.Series:
    """Rendered text of every summary row: 'ours ± std (paper)', best in bold, footnote mark."""
    with_paper = {c.key for c in spec.columns if c.paper_label is not None}
    texts = {}
    for index, row in summary.iterrows():
        ours = _fmt(row["ours_mean"])
        if np.isfinite(row["ours_std"]):
            ours += f" {pm} {row['ours_std']:.3f}"
        if row["best"]:
            ours = bold(ours)
        ours += marks.get(index, "")
        if row["method"] in with_paper:
            ours += f" ({_fmt(row['paper'])})"
        texts[index] = ours
    return pd.Series(texts)


def _grid(summary: pd.DataFrame, spec: TableSpec, texts: pd.Series, tick) -> tuple[list[str], list[list[str]]]:
    """Header and body rows in the table's layout (datasets down, or Table 5's variants down)."""
    frame = summary.assign(text=texts)
    datasets = list(dict.fromkeys(summary["dataset"]))
    dataset_labels = [DATASET_LABELS.get(d, d) for d in datasets]
    if not spec.variants_as_rows:
        header = ["Dataset"] + [c.label for c in spec.columns]
        body = []
        for dataset, label in zip(datasets, dataset_labels):
            here = frame[frame["dataset"] == dataset].set_index("method")["text"]
            body.append([label] + [here.get(c.key, MISSING) for c in spec.columns])
        return header, body
    header = ["Variant", *COMPONENTS] + dataset_labels
    body = []
    for column in spec.columns:
        here = frame[frame["method"] == column.key].set_index("dataset")["text"]
        flags = [tick(f) for f in column.flags] if column.flags else ["", "", ""]
        body.append([column.label, *flags] + [here.get(d, MISSING) for d in datasets])
    return header, body


def _legend(spec: TableSpec, summary: pd.DataFrame) -> str:
    seeds = sorted({int(n) for n in summary["n_seeds"] if n > 0})
    seed_text = ("no measured cell yet" if not seeds else
                 f"over {seeds[0]} seed{'s' if seeds[0] != 1 else ''}" if len(seeds) == 1 else
                 f"over {seeds[0]}–{seeds[-1]} seeds")
    direction = "highest" if spec.higher_is_better else "lowest"
    where = "dataset column" if spec.variants_as_rows else "row"
    return (f"Ours: mean ± std of `{spec.metric}` {seed_text}; in brackets the paper's value. "
            f"Bold: best of the {where} by our mean ({direction} {spec.paper_metric}). "
            f"{MISSING}: not measured.")


def to_markdown(summary: pd.DataFrame, spec: TableSpec, profile: str) -> str:
    """The table as GitHub Markdown (title, legend, table, footnotes)."""
    marks, notes = _footnotes(summary)
    texts = _cell_texts(summary, spec, marks, bold=lambda s: f"**{s}**", pm="±")
    header, body = _grid(summary, spec, texts, tick=lambda on: "✓" if on else "×")
    align = ["---"] + ["---" if spec.variants_as_rows and i < 3 else "---:"
                       for i in range(len(header) - 1)]
    lines = [f"# {spec.title}: {spec.caption} (profile `{profile}`)",
             "", _legend(spec, summary), "",
             "| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    if notes:
        lines += [""] + [f"{note}  " if i < len(notes) - 1 else note for i, note in enumerate(notes)]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "—": "---", "–": "--", "…": r"\ldots{}",
                  "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(summary: pd.DataFrame, spec: TableSpec, profile: str) -> str:
    """The table as a booktabs LaTeX ``table`` (needs ``booktabs`` and ``amssymb``)."""
    safe = summary.assign(note=summary["note"].map(latex_escape))
    marks, notes = _footnotes(safe)
    texts = _cell_texts(safe, spec, marks, bold=lambda s: f"\\textbf{{{s}}}", pm="$\\pm$")
    texts = texts.str.replace(MISSING, "---", regex=False)
    header, body = _grid(safe, spec, texts, tick=lambda on: "$\\checkmark$" if on else "$\\times$")
    n_label = 4 if spec.variants_as_rows else 1
    colspec = "l" * n_label + "c" * (len(header) - n_label)
    lines = [f"% {spec.name}: generated by experiments.tables from the run store (profile {profile}); "
             "do not edit.",
             "% Needs \\usepackage{booktabs} and \\usepackage{amssymb}.",
             "\\begin{table}[t]", "\\centering", "\\scriptsize",
             f"\\caption{{{latex_escape(spec.caption)} (profile {latex_escape(profile)}). "
             f"{latex_escape(_legend(spec, summary).replace('`', ''))}}}",
             f"\\label{{tab:{spec.name}}}",
             f"\\begin{{tabular}}{{{colspec}}}", "\\toprule",
             " & ".join(latex_escape(h) for h in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(row) + " \\\\" for row in body]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if notes:
        lines += ["", "\\par\\smallskip"] + [f"{note}\\\\" for note in notes]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(summary: pd.DataFrame) -> str:
    """The long summary as CSV (one line per dataset and method)."""
    return summary.to_csv(index=False, float_format="%.6g", lineterminator="\n")


# --------------------------------------------------------------------------- files

def extra_imputers(rows: pd.DataFrame, profile: str) -> dict[str, str]:
    """Imputers with rows of ``profile`` that no sweep of the paper's layout lists: key → label."""
    rows = normalise_rows(rows)
    present = rows.loc[(rows["profile"] == profile) & (rows["status"] == "ok"), "imputer"].dropna()
    return _paper.extra_imputers(set(present), LAYOUT)


def table_specs(rows: pd.DataFrame, profile: str) -> dict[str, TableSpec]:
    """The tables of ``profile``: the paper's layout, with the extra imputers its rows hold appended
    to the tables that take extras (after the paper's methods, no paper value)."""
    extras = extra_imputers(rows, profile)
    return {name: spec.with_extras(extras) for name, spec in TABLES.items()}


def write_tables(rows: pd.DataFrame, profile: str, out_dir: Path | str, paper: dict | None = None,
                 datasets=None, names=None, specs: dict | None = None) -> dict[str, pd.DataFrame]:
    """Write ``<out_dir>/tables/<name>.{md,tex,csv}`` for every table; return their summaries."""
    paper = load_paper() if paper is None else paper
    specs = TABLES if specs is None else specs
    table_dir = Path(out_dir) / "tables"
    table_dir.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for name in names or specs:
        spec = specs[name]
        summary = summarise(rows, spec, profile, paper, datasets=datasets)
        summaries[name] = summary
        (table_dir / f"{name}.md").write_text(to_markdown(summary, spec, profile), encoding="utf-8")
        (table_dir / f"{name}.tex").write_text(to_latex(summary, spec, profile), encoding="utf-8")
        (table_dir / f"{name}.csv").write_text(to_csv(summary), encoding="utf-8")
    return summaries


def write_provenance(rows: pd.DataFrame, profile: str, out_dir: Path | str, command: str = "") -> Path:
    """``<out_dir>/PROVENANCE.md``: what made the tables, a function of the rows alone.

    It names no date, machine or checkout, so rebuilding it from the same rows anywhere (a fresh
    clone's ``make report``) gives the same bytes; when and where each cell ran is in its row.
    """
    unreadable = list(rows.attrs.get("unreadable", []))
    rows = normalise_rows(rows)
    mine = rows[rows["profile"] == profile]
    counts = mine["status"].value_counts()
    by_sha = mine["git_sha"].fillna("unknown").value_counts().sort_index()
    by_device = mine["device"].fillna("unknown").value_counts().sort_index()
    versions = (mine.groupby(["imputer", "version_imputer"]).size().reset_index()
                if {"version_imputer"} <= set(mine.columns) and mine["version_imputer"].notna().any()
                else pd.DataFrame(columns=["imputer", "version_imputer"]))
    scoring = sorted({str(v) for v in mine.get("version_score", pd.Series(dtype=object)).dropna()})
    lines = [
        f"# Provenance of `results/{profile}/`", "",
        f"- profile: `{profile}`",
        f"- rebuild without running a cell: `make report PROFILE={profile}` (reads the run store and "
        f"the committed export `results/{profile}/rows.csv.gz`)",
        f"- cells of this profile: {len(mine)} "
        f"(ok {counts.get('ok', 0)}, failed {counts.get('failed', 0)}, "
        f"skipped {counts.get('skipped', 0)}, invalid {counts.get('invalid', 0)}); each cell's current "
        "canonical row only",
        f"- unreadable row files, left out and counted as to-run: {len(unreadable)}"
        + ("".join(f"\n  - `{u}`" for u in unreadable)),
        "- code of the cells (git sha at run time): "
        + (", ".join(f"`{sha}` ({n})" for sha, n in by_sha.items()) or "none"),
        "- devices of the cells: " + (", ".join(f"{d} ({n})" for d, n in by_device.items()) or "none"),
        "- scoring version: " + (", ".join(f"`{v}`" for v in scoring) or "none"),
        "- imputer versions: " + (", ".join(f"{r.imputer} `{r.version_imputer}`"
                                           for r in versions.itertuples(index=False)) or "none"),
        "",
        "Tables (`tables/*.md|tex|csv`), figures (`figures/*.png|pdf`) and `REPORT.md` are built",
        "from the rows alone by `python -m experiments.report --profile " + profile + "`.",
    ]
    path = Path(out_dir) / "PROVENANCE.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
