"""Datasets: the local cache (or ``ucimlrepo``), checksums, encoding, scaling (DESIGN.md, Datasets).

A dataset config (``conf/dataset/<key>.yaml``) names the cache ``file``, the UCI id, the target,
dropped columns and the categorical columns (``nominal``/``ordinal``; everything else numeric).
:func:`load_dataset` returns a :class:`Dataset` in original units with categoricals as integer
codes (sorted categories → 0..k-1). Imputers never see it directly: the runner scales with
:class:`Scaler`, fitted on the observed training values only.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metagain.schema import Schema

log = logging.getLogger(__name__)
MANIFEST = Path(__file__).with_name("data_manifest.json")
LOCAL_MANIFEST = "manifest.local.json"  # checksums recorded on first download, in the cache dir


class DataError(ValueError):
    """A dataset file is missing, unreadable, or fails its checksum."""


@dataclass
class Dataset:
    """A complete (no missing value) dataset, ready to corrupt.

    ``X`` holds numeric columns in original units and categorical columns as integer codes;
    ``y`` the class index 0..C-1; ``ranges`` each column's max − min over all rows (numeric) —
    the ARMSE denominator; ``categories`` the original values behind each categorical code.
    """

    key: str
    X: np.ndarray
    y: np.ndarray
    schema: Schema
    classes: list
    categories: dict
    ranges: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]


# ---------------------------------------------------------------------------- reading files
def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def expected_checksum(file: str, data_dir: Path) -> str | None:
    """The checksum the project ships for ``file``, else one recorded at download time."""
    shipped = json.loads(MANIFEST.read_text())
    if file in shipped:
        return shipped[file]
    local = Path(data_dir) / LOCAL_MANIFEST
    if local.exists():
        return json.loads(local.read_text()).get(file)
    return None


def verify_checksum(path: Path, data_dir: Path) -> None:
    expected = expected_checksum(path.name, data_dir)
    if expected is None:
        raise DataError(
            f"No checksum is known for {path}; it is neither in experiments/data_manifest.json nor "
            f"in {Path(data_dir) / LOCAL_MANIFEST}. Delete the file to download it again."
        )
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"Checksum mismatch for {path}: expected sha256 {expected}, found {actual}. The file is "
            "corrupt or not the one the project was built on; delete it (it will be fetched again) "
            "or point METAGAIN_DATA_DIR at a good cache."
        )


def fetch_to_cache(file: str, uci_id: int, target: str | None, data_dir: Path) -> Path:
    """Download UCI dataset ``uci_id`` with ``ucimlrepo`` and write it in the cache's format.

    The cache format (MANIFEST.md of the shipped cache): gzip CSV with a header row, target last,
    missing values as empty cells, gzip ``mtime=0``. Its checksum is recorded in the cache's
    ``manifest.local.json`` so later loads verify it.
    """
    try:
        from ucimlrepo import fetch_ucirepo
    except ImportError as err:  # pragma: no cover - ucimlrepo is a core dependency
        raise DataError("ucimlrepo is not installed; run `make setup`.") from err
    try:
        fetched = fetch_ucirepo(id=int(uci_id))
    except Exception as err:  # network errors, unknown ids
        raise DataError(
            f"{file} is not in the cache {data_dir} and downloading UCI dataset {uci_id} failed "
            f"({err}). Set METAGAIN_DATA_DIR to a directory that holds {file}."
        ) from err
    frame = fetched.data.original.copy()
    if target is not None and target in frame.columns:  # target last, as in the cache
        frame = frame[[c for c in frame.columns if c != target] + [target]]
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / file
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(frame.to_csv(index=False, lineterminator="\n").encode())
    os.replace(tmp, path)
    local = data_dir / LOCAL_MANIFEST
    recorded = json.loads(local.read_text()) if local.exists() else {}
    recorded[file] = sha256_of(path)
    local.write_text(json.dumps(recorded, indent=2) + "\n")
    log.info("Downloaded UCI %s to %s", uci_id, path)
    return path


def read_raw_frame(spec, data_dir) -> pd.DataFrame:
    """The dataset's file as a DataFrame: from the cache (checksum verified) or downloaded."""
    data_dir = Path(data_dir)
    path = data_dir / spec["file"]
    if not path.exists():
        path = fetch_to_cache(spec["file"], spec["uci_id"], spec.get("target"), data_dir)
    verify_checksum(path, data_dir)
    try:
        return pd.read_csv(path, keep_default_na=True)
    except Exception as err:
        raise DataError(f"Cannot read {path} as a gzip CSV ({err}); delete it to fetch it again.") from err


# ---------------------------------------------------------------------------- preparing
TARGET_TRANSFORMS = {
    None: lambda s: s,
    "binary_nonzero": lambda s: (pd.to_numeric(s) > 0).astype(int),  # heart: disease present
}


def _sorted_categories(values: pd.Series) -> list:
    """Sorted distinct values; numbers sort numerically, text alphabetically."""
    uniq = values.dropna().unique().tolist()
    return sorted(uniq, key=lambda v: (isinstance(v, str), v))


def prepare(frame: pd.DataFrame, spec, key: str) -> Dataset:
    """Drop columns and incomplete rows, encode categoricals and the target, build the schema."""
    target = spec["target"]
    if target not in frame.columns:
        raise DataError(f"Dataset {key!r}: target column {target!r} is not in {list(frame.columns)}.")
    drop = list(spec.get("drop") or [])
    missing_cols = [c for c in drop if c not in frame.columns]
    if missing_cols:
        raise DataError(f"Dataset {key!r}: columns to drop {missing_cols} are not in the file.")
    frame = frame.drop(columns=drop).dropna(axis=0, how="any").reset_index(drop=True)
    transform = spec.get("target_transform")
    if transform not in TARGET_TRANSFORMS:
        raise DataError(f"Unknown target_transform {transform!r}; use one of {list(TARGET_TRANSFORMS)}.")
    labels = TARGET_TRANSFORMS[transform](frame[target])
    features = frame.drop(columns=[target])
    nominal, ordinal = set(spec.get("nominal") or []), set(spec.get("ordinal") or [])
    unknown = (nominal | ordinal) - set(features.columns)
    if unknown:
        raise DataError(f"Dataset {key!r}: categorical columns {sorted(unknown)} are not features.")

    columns, kinds, n_cats, categories = [], [], [], {}
    for name in features.columns:
        col = features[name]
        if name in nominal or name in ordinal:
            cats = _sorted_categories(col)
            categories[name] = cats
            columns.append(col.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float))
            kinds.append("nominal" if name in nominal else "ordinal")
            n_cats.append(len(cats))
        else:
            numeric = pd.to_numeric(col, errors="coerce")
            if numeric.isna().any():
                raise DataError(
                    f"Dataset {key!r}: column {name!r} is configured numeric but holds text such as "
                    f"{col[numeric.isna()].iloc[0]!r}; list it under nominal or ordinal."
                )
            columns.append(numeric.to_numpy(dtype=float))
            kinds.append("numeric")
            n_cats.append(0)
    X = np.column_stack(columns)
    classes = _sorted_categories(labels)
    if len(classes) < 2:
        raise DataError(
            f"Dataset {key!r}: the target {target!r} has a single class ({classes}); accuracy needs "
            "at least two. Choose another target in conf/dataset/."
        )
    y = labels.map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=int)
    schema = Schema(kinds=tuple(kinds), n_categories=tuple(n_cats), names=tuple(features.columns))
    ranges = np.where(schema.is_numeric, X.max(0) - X.min(0), 0.0)
    return Dataset(key=key, X=X, y=y, schema=schema, classes=classes, categories=categories, ranges=ranges)


def load_dataset(spec, data_dir=None) -> Dataset:
    """Load the dataset a ``conf/dataset`` entry describes (cache first, then UCI)."""
    spec = dict(spec)
    key = spec.get("key") or spec.get("file", "?")
    if spec.get("generator") == "synthetic":
        from experiments.synthetic import make_mixed_frame

        frame = make_mixed_frame(n_rows=int(spec.get("n_rows", 300)), seed=int(spec.get("seed", 0)))
        return prepare(frame, spec, key)
    data_dir = Path(data_dir or os.environ.get("METAGAIN_DATA_DIR", "data_cache"))
    return prepare(read_raw_frame(spec, data_dir), spec, key)


def subsample(dataset: Dataset, max_rows: int | None, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """Stratified subsample to at most ``max_rows`` rows (every class keeps at least one row).

    Returns the smaller dataset and the chosen row indices. Ranges and categories stay those of
    the full dataset, so scores are comparable across profiles.
    """
    n = dataset.n_rows
    if max_rows is None or n <= max_rows:
        return dataset, np.arange(n)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5AB]))
    chosen = []
    for label in np.unique(dataset.y):
        rows = np.flatnonzero(dataset.y == label)
        take = max(1, int(round(max_rows * rows.size / n)))
        chosen.append(rng.choice(rows, size=min(take, rows.size), replace=False))
    idx = np.sort(np.concatenate(chosen))
    if idx.size > max_rows:  # rounding up for tiny classes may overshoot by a few rows
        idx = np.sort(rng.choice(idx, size=max_rows, replace=False))
    sub = Dataset(key=dataset.key, X=dataset.X[idx], y=dataset.y[idx], schema=dataset.schema,
                  classes=dataset.classes, categories=dataset.categories, ranges=dataset.ranges)
    return sub, idx


# ---------------------------------------------------------------------------- scaling
@dataclass
class Scaler:
    """Affine per-column scaling ``(x - offset) / scale`` fitted on observed training values.

    ``minmax``: numeric columns to [0, 1] by the observed min/max; ``standard``: zero mean, unit
    variance. Categorical codes always become ``code / (k - 1)`` (the schema's encoding).
    """

    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X_observed: np.ndarray, schema: Schema, method: str = "minmax") -> "Scaler":
        if method not in ("minmax", "standard"):
            raise ValueError(f"Unknown scaling {method!r}; use 'minmax' or 'standard'.")
        if method == "minmax":
            offset = np.nanmin(X_observed, axis=0)
            scale = np.nanmax(X_observed, axis=0) - offset
        else:
            offset = np.nanmean(X_observed, axis=0)
            scale = np.nanstd(X_observed, axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        cat = schema.is_categorical
        offset = np.where(cat, 0.0, offset)
        scale = np.where(cat, schema.code_steps(), scale)
        return cls(offset=offset, scale=scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.offset) / self.scale

    def inverse(self, X: np.ndarray) -> np.ndarray:
        return X * self.scale + self.offset
