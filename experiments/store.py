"""The run store: one JSON file per cell under ``<results_dir>/runs/`` named by its cell key.

Files are written atomically (temporary file + rename) and group-readable, so a killed sweep
leaves either a whole row or none. A row's ``status`` is one of

- ``ok``: scored; served again while its key is current;
- ``invalid``: the cell is ill-posed (a ratio beyond the mechanism's limit, a bad dataset
  config); served again, not retried, until its config or a version changes (a new key);
- ``failed``: the imputer raised; retried on the next run;
- ``skipped``: an optional extra is missing; retried on the next run.

:func:`load_rows` reads the store for tables, report, plan and provenance alike. By default it
returns only *current canonical* rows: those whose key is the one the committed ``conf/`` and
code give their cell (:mod:`experiments.keys`). Rows made by other code, data or config are
*stale*, rows made with overrides beyond the sweep axes are *variants*; both stay on disk and
``which="all"`` returns them, marked. Unreadable files are named in a warning and listed in
``frame.attrs["unreadable"]``; their cells count as to-run.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

SERVED = ("ok", "invalid")   # statuses served from the store instead of rerun
STATUSES = ("ok", "invalid", "failed", "skipped")


def runs_dir(results_dir) -> Path:
    return Path(results_dir) / "runs"


def row_path(results_dir, key: str) -> Path:
    return runs_dir(results_dir) / f"{key}.json"


def _clean(value):
    """JSON-safe scalars: NaN/inf become null (read back as NaN by pandas)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename; mode 0666 & ~umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: rows are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True, default=str)
    write_bytes_atomic(path, text.encode())


def write_row(results_dir, row: dict) -> Path:
    path = row_path(results_dir, row["cell_key"])
    write_json_atomic(path, {k: _clean(v) for k, v in row.items()})
    return path


def check_writable(results_dir) -> None:
    """Raise ``PermissionError`` naming the folder when rows cannot be written there."""
    folder = runs_dir(results_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"Cannot create the run store {folder} ({err}); set results_dir or "
                              "METAGAIN_RESULTS_DIR to a writable folder.") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"The run store {folder} is not writable; set results_dir or "
                              "METAGAIN_RESULTS_DIR to a writable folder.")


def read_json(path: Path) -> dict | None:
    """A JSON file's content, or None when absent or unreadable (then it is recomputed)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_row(results_dir, key: str) -> dict | None:
    """The stored row of ``key``, or None when absent or unreadable (then it is rerun)."""
    return read_json(row_path(results_dir, key))


# ---------------------------------------------------------------------------- reading the store
def export_files(results_dir) -> list[Path]:
    """The committed exports under the store root: ``<results_dir>/<profile>/rows.csv.gz``."""
    from experiments.export import EXPORT_NAME

    return sorted(Path(results_dir).glob(f"*/{EXPORT_NAME}"))


def _read_local(results_dir) -> tuple[list[dict], list[str]]:
    rows, unreadable = [], []
    for path in sorted(runs_dir(results_dir).glob("*.json")):
        try:
            row = json.loads(path.read_text())
            if not isinstance(row, dict) or "cell_key" not in row:
                raise ValueError("not a result row")
        except (OSError, ValueError) as err:
            unreadable.append(f"runs/{path.name} ({type(err).__name__})")
            continue
        rows.append(row)
    return rows, unreadable


def read_store(results_dir) -> pd.DataFrame:
    """Every row of the store, one per key: a served (``ok``/``invalid``) row before a failed or
    skipped one, then a local row file before an export's line (exports in name order).

    All rows go through one CSV round trip (:mod:`experiments.export`'s format) and are sorted by
    key, so a table built from local files and one built from their export are byte-identical.
    Unreadable files are named in a warning and in ``attrs["unreadable"]``.
    """
    from experiments.export import read_csv_rows, to_csv_bytes

    local, unreadable = _read_local(results_dir)
    frames = [pd.DataFrame(local)] if local else []
    for path in export_files(results_dir):
        try:
            frames.append(read_csv_rows(path))
        except (OSError, ValueError, EOFError) as err:
            unreadable.append(f"{path.parent.name}/{path.name} ({type(err).__name__})")
    frames = [f for f in frames if not f.empty]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not frame.empty:
        source = np.concatenate([np.full(len(f), i) for i, f in enumerate(frames)])
        rank = (~frame["status"].isin(SERVED)).to_numpy() * len(frames) + source
        frame = frame.iloc[np.argsort(rank, kind="stable")]
        frame = read_csv_rows(to_csv_bytes(frame[~frame["cell_key"].duplicated()]))
    frame.attrs["unreadable"] = unreadable
    if unreadable:
        warnings.warn(f"{len(unreadable)} unreadable row files in {Path(results_dir)} are left out "
                      f"and their cells count as to-run: {', '.join(unreadable[:5])}"
                      + (" ..." if len(unreadable) > 5 else ""), stacklevel=2)
    return frame


def find_row(results_dir, key: str) -> dict | None:
    """The row of ``key`` as :func:`read_store` ranks them (served first, then local, then exports);
    None when no file has it."""
    found = [read_row(results_dir, key)]
    if found[0] is not None and found[0].get("status") in SERVED:
        return found[0]
    for path in export_files(results_dir):
        found.append(_exported_index(str(path), path.stat().st_mtime_ns).get(key))
    found = [dict(row) for row in found if row is not None]
    served = [row for row in found if row.get("status") in SERVED]
    return (served or found or [None])[0]


@lru_cache(maxsize=16)
def _exported_index(path: str, mtime_ns: int) -> dict:
    from experiments.export import read_csv_rows

    try:
        frame = read_csv_rows(Path(path))
    except (OSError, ValueError, EOFError):
        return {}
    frame = frame.astype(object).where(frame.notna(), None)
    return {row["cell_key"]: row for row in frame.to_dict("records")}


def mark_rows(frame: pd.DataFrame, data_dir=None) -> pd.DataFrame:
    """Add ``canonical_key`` and ``current`` (the row is its cell's current canonical row)."""
    from experiments.keys import AXES, canonical_key

    frame = frame.copy()
    for axis in AXES:
        if axis not in frame.columns:
            frame[axis] = None
    if frame.empty:
        frame["canonical_key"], frame["current"] = [], []
        return frame
    keys = [canonical_key(dict(zip(AXES, values)), data_dir)
            if not any(pd.isna(v) for v in values) else None
            for values in frame[list(AXES)].itertuples(index=False, name=None)]
    frame["canonical_key"] = keys
    frame["current"] = frame["cell_key"] == frame["canonical_key"]
    return frame


def load_rows(results_dir, profile: str | None = None, which: str = "current", data_dir=None) -> pd.DataFrame:
    """The store's rows as one flat DataFrame.

    ``which="current"`` (default): each cell's current canonical row only, what tables and plans
    use. ``which="all"``: every readable row, with ``current`` and ``canonical_key`` columns.
    """
    if which not in ("current", "all"):
        raise ValueError(f"which must be 'current' or 'all', got {which!r}.")
    frame = read_store(results_dir)
    unreadable = frame.attrs.get("unreadable", [])
    if profile is not None and not frame.empty:
        frame = frame[frame["profile"] == profile].reset_index(drop=True)
    frame = mark_rows(frame, data_dir)
    if which == "current":
        frame = frame[frame["current"].astype(bool)].reset_index(drop=True)
    frame.attrs["unreadable"] = unreadable
    return frame
