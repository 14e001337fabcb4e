"""The run store: one JSON file per cell under ``<results_dir>/runs/`` named by its cell key.

Files are written atomically (temporary file + rename), so a killed sweep leaves either a whole
row or none. A sweep skips cells whose row exists with status ``ok``; ``failed`` and ``skipped``
rows are retried.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

DONE = ("ok",)


def cell_key(payload: dict) -> str:
    """Stable hash of the resolved cell config (sorted JSON)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def runs_dir(results_dir) -> Path:
    return Path(results_dir) / "runs"


def row_path(results_dir, key: str) -> Path:
    return runs_dir(results_dir) / f"{key}.json"


def _clean(value):
    """JSON-safe scalars: NaN/inf become null (read back as NaN by pandas)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(obj, handle, indent=1, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_row(results_dir, row: dict) -> Path:
    path = row_path(results_dir, row["cell_key"])
    write_json_atomic(path, {k: _clean(v) for k, v in row.items()})
    return path


def read_json(path: Path) -> dict | None:
    """A JSON file's content, or None when absent or unreadable (then it is recomputed)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_row(results_dir, key: str) -> dict | None:
    """The stored row of ``key``, or None when absent or unreadable (then it is rerun)."""
    return read_json(row_path(results_dir, key))


def is_done(results_dir, key: str) -> bool:
    row = read_row(results_dir, key)
    return row is not None and row.get("status") in DONE


def load_rows(results_dir, profile: str | None = None) -> pd.DataFrame:
    """Every stored row as one flat DataFrame (optionally one profile's rows only)."""
    rows = []
    for path in sorted(runs_dir(results_dir).glob("*.json")):
        try:
            rows.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a foreign or partial file never breaks the tables
    frame = pd.DataFrame(rows)
    if profile is not None and not frame.empty:
        frame = frame[frame["profile"] == profile].reset_index(drop=True)
    return frame
