"""Rows that travel: a profile's current canonical rows as one committed file, and merging them.

    python -m experiments.export --profile quick                 # make export PROFILE=quick
    python -m experiments.export --profile paper --merge a.csv.gz b.csv.gz   # make merge

The export of profile ``P`` is ``<results_dir>/P/rows.csv.gz``: one line per cell (identity,
versions, parameters, metrics, timings, git sha), sorted by cell key, columns sorted, gzip with
``mtime=0``, so exporting the same rows twice gives the same bytes. The store reads every
``<results_dir>/*/rows.csv.gz`` as if its rows were local files (:func:`experiments.store.read_store`):
a fresh clone has them, ``make plan`` counts them done and times from them, a sweep continues
from where they stand, and ``make report`` rebuilds the tables from them without running a cell.
``ok``, ``invalid`` and ``failed`` rows are exported, and only rows that are current for the
code that exports them. A ``failed`` row travels so that a fresh clone's tables and report say
why its cell is missing (the error's first line, as a footnote); it is never served: the next
run retries the cell, and its new row (a local file) takes the failed one's place. ``skipped``
rows stay on the machine (they say which optional extra that machine lacks).
"""
from __future__ import annotations

import argparse
import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

EXPORT_NAME = "rows.csv.gz"
#: Columns that stay on the machine: long tracebacks, local paths.
LOCAL_ONLY = ("traceback", "trace_file", "served", "current", "canonical_key")
EXPORTED = ("ok", "invalid", "failed")   # statuses that travel; a skipped row is the machine's own
SUCCEEDED = ("ok", "invalid")            # a row of these replaces a failed row of its cell
METRIC_PREFIX = "metric_"


def export_path(results_dir, profile: str) -> Path:
    return Path(results_dir) / profile / EXPORT_NAME


def to_csv_bytes(rows: pd.DataFrame) -> bytes:
    """``rows`` as deterministic gzip CSV bytes (sorted rows and columns, floats round-trip exact)."""
    rows = rows.drop(columns=[c for c in LOCAL_ONLY if c in rows.columns])
    rows = rows.sort_values("cell_key", kind="stable").reset_index(drop=True)
    rows = rows[sorted(rows.columns)]
    text = rows.to_csv(index=False, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        gz.write(text.encode())
    return buffer.getvalue()


def read_csv_rows(source) -> pd.DataFrame:
    """Rows from export CSV (a path or bytes), parsed the one way every reader of rows uses."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(gzip.decompress(source))
    return pd.read_csv(source, float_precision="round_trip", low_memory=False)


def exportable(rows: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The current canonical ``ok``/``invalid``/``failed`` rows of ``profile`` (``rows`` as ``load_rows``
    gives: one row per key, a success already ahead of a failure)."""
    if rows.empty:
        return rows
    keep = (rows["profile"] == profile) & rows["status"].isin(EXPORTED)
    return rows[keep].drop_duplicates("cell_key")


def _superseded(rows: pd.DataFrame) -> pd.Series:
    """True for each failed row whose cell key also has an ``ok`` or ``invalid`` row (the success stands)."""
    succeeded = set(rows.loc[rows["status"].isin(SUCCEEDED), "cell_key"])
    return (rows["status"] == "failed") & rows["cell_key"].isin(succeeded)


def write_export(results_dir, profile: str) -> tuple[Path, int]:
    """Write ``<results_dir>/<profile>/rows.csv.gz`` from the store (local rows and exports)."""
    from experiments.store import load_rows, write_bytes_atomic

    rows = exportable(load_rows(results_dir, profile=profile), profile)
    path = export_path(results_dir, profile)
    write_bytes_atomic(path, to_csv_bytes(rows))
    return path, len(rows)


def conflicts(rows: pd.DataFrame) -> list[str]:
    """Cells with two rows of the same key whose metrics differ (two different canonical rows)."""
    metrics = [c for c in rows.columns if c.startswith(METRIC_PREFIX)] + ["status"]
    out = []
    for key, group in rows.groupby("cell_key"):
        if len(group) < 2:
            continue
        values = group[metrics].astype(object).where(group[metrics].notna(), None)
        if len({tuple(_canonical(v) for v in row) for row in values.itertuples(index=False)}) > 1:
            first = group.iloc[0]
            out.append(f"{first['dataset']} {first['mechanism']} r={first['ratio']} {first['imputer']} "
                       f"seed={first['seed']} (key {key}): "
                       + " vs ".join(f"armse_test={r.get('metric_armse_test')}" for _, r in group.iterrows()))
    return out


def _canonical(value):
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return value


def merge(results_dir, profile: str, files: list[Path]) -> tuple[Path, dict]:
    """Combine exports from several machines with the store into ``profile``'s export.

    Refuses (``ValueError``) two different rows for one cell key (a failed row and a successful
    one are not different: the success stands); drops rows that are not current for this
    checkout's code (they would be stale here), counting them.
    """
    from experiments.store import load_rows, mark_rows, write_bytes_atomic

    mine = load_rows(results_dir, profile=profile)
    theirs = [read_csv_rows(Path(f)) for f in files]
    theirs = [t[t["profile"] == profile] for t in theirs if not t.empty]
    combined = pd.concat([mine, *[mark_rows(t) for t in theirs]], ignore_index=True) if theirs else mine
    combined = combined[combined["status"].isin(EXPORTED)]
    combined = combined[~_superseded(combined)]
    found = conflicts(combined)
    if found:
        raise ValueError(f"{len(found)} cells have two different rows; nothing was written. "
                         "Rerun those cells on one machine (force=true) and export again:\n  "
                         + "\n  ".join(found[:20]))
    current = combined["current"].astype(bool)
    counts = {"stale_dropped": int((~current).sum())}
    merged = combined[current].drop_duplicates("cell_key")
    counts["cells"] = len(merged)
    path = export_path(results_dir, profile)
    write_bytes_atomic(path, to_csv_bytes(merged))
    return path, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Export a profile's current canonical rows to "
                                                 "<results>/<profile>/rows.csv.gz, or merge exports.")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--results-dir", default=None, help="store root (default: $METAGAIN_RESULTS_DIR "
                        "or results)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="FILE",
                        help="exports from other machines to combine with this store's rows")
    args = parser.parse_args(argv)
    from experiments.report import results_root

    root = results_root(args.results_dir)
    if args.merge:
        missing = [f for f in args.merge if not Path(f).exists()]
        if missing:
            parser.error(f"no such export: {', '.join(missing)}")
        try:
            path, counts = merge(root, args.profile, [Path(f) for f in args.merge])
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"wrote {path}: {counts['cells']} cells ({counts['stale_dropped']} stale rows dropped)")
        return 0
    path, n = write_export(root, args.profile)
    print(f"wrote {path}: {n} cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
