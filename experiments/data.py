"""Datasets: the shipped ``data/`` folder (or ``ucimlrepo``), content hashes, encoding, scaling.

A dataset config (``conf/dataset/<key>.yaml``) names the ``file``, the UCI id, the target,
dropped columns and the categorical columns (``nominal``/``ordinal``; everything else numeric).
:func:`load_dataset` returns a :class:`Dataset` in original units with categoricals as integer
codes (sorted categories → 0..k-1). Imputers never see it directly: the runner scales with
:class:`Scaler`, fitted on the observed training values only.

Where files come from (``data/README.md``): a file is looked up in ``data_dir`` (the config key,
else ``METAGAIN_DATA_DIR``) when one is set, then in the repository's ``data/`` (the shipped
copies), then in the download cache ``data_cache/``. A file found nowhere is downloaded with
``ucimlrepo`` when the config has a ``uci_id``, into ``data_dir`` when one is set, else into
``data_cache/`` (``data/`` is treated as read-only), and installed only if its content hash is
the one the project expects.

Every table is verified by its *content hash* (:func:`table_hash`), a hash of the parsed table
rather than of the file bytes, so a re-serialised copy (``.28`` written as ``0.28``, another gzip
level) still verifies. Expected hashes: ``experiments/data_manifest.json`` for the shipped files,
else ``manifest.local.json`` in the folder holding the file (recorded on first use, for a user's
own CSV or a new download).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from baselines.schema import Schema

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DATA_DIR = ROOT / "data"          # the files the repository ships (treated read-only)
DOWNLOAD_CACHE = ROOT / "data_cache"      # downloads when no data_dir is set (git-ignored)
MANIFEST = Path(__file__).with_name("data_manifest.json")
LOCAL_MANIFEST = "manifest.local.json"    # hashes recorded on first use, beside the files
HASH_VERSION = "metagain-table-v1"


class DataError(ValueError):
    """A dataset config does not fit its table (unknown target or column, text in a numeric
    column, a single class): the cell is ill-posed."""


class DataFileError(DataError):
    """A dataset file is absent and cannot be downloaded, unreadable, or not the expected table
    (content hash mismatch): the environment needs fixing; a sweep should stop."""


@dataclass
class Dataset:
    """A complete (no missing value) dataset, ready to corrupt.

    ``X`` holds numeric columns in original units and categorical columns as integer codes;
    ``y`` the class index 0..C-1; ``ranges`` each column's max − min over all rows (numeric) —
    the ARMSE denominator; ``categories`` the original values behind each categorical code;
    ``content_hash`` the :func:`dataset_hash` of the table it was built from.
    """

    key: str
    X: np.ndarray
    y: np.ndarray
    schema: Schema
    classes: list
    categories: dict
    ranges: np.ndarray
    content_hash: str = ""

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]


# ---------------------------------------------------------------------------- content hashes
def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _kind(col: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_integer_dtype(col):
        return "int"
    if pd.api.types.is_float_dtype(col):
        return "float"
    return "text"


def frame_hash(frame: pd.DataFrame) -> str:
    """Content hash of a table: sha256 over a canonical text of its columns.

    One line for the shape, then per column (in order) the JSON of ``[name, kind, values]``:
    kind is ``int``/``float``/``bool``/``text``; floats are written by ``repr`` (shortest round
    trip), ints as integers, text as JSON strings and every missing value as ``null``. Reading a
    file with ``pd.read_csv`` and hashing the frame is thus independent of how the CSV spelled
    its numbers, quoted its text or was compressed.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([HASH_VERSION, int(frame.shape[0]), int(frame.shape[1])]).encode() + b"\n")
    for name in frame.columns:
        col = frame[name]
        kind = _kind(col)
        values = col.tolist()
        missing = col.isna().to_numpy()
        if kind == "text" and pd.api.types.infer_dtype(col, skipna=True) not in ("string", "empty"):
            values = [str(v) for v in values]
        if missing.any():
            values = [None if m else v for v, m in zip(values, missing)]
        digest.update(json.dumps([str(name), kind, values]).encode() + b"\n")
    return digest.hexdigest()


_HASHES: "OrderedDict[tuple, str]" = OrderedDict()
_HASHES_MAX = 128


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def read_table(path: Path) -> pd.DataFrame:
    """A dataset file as pandas reads it (the project's one way of parsing it)."""
    try:
        return pd.read_csv(path, keep_default_na=True)
    except Exception as err:  # bad gzip, truncated stream, not a CSV, not UTF-8
        raise DataFileError(
            f"Cannot read {path} as a gzip CSV ({type(err).__name__}: {err}). The file is damaged; "
            f"{_restore_advice(path)}"
        ) from err


def table_hash(path, frame: pd.DataFrame | None = None) -> str:
    """Content hash (:func:`frame_hash`) of the file at ``path``, cached by path, mtime and size.

    ``frame``, when given, must be ``read_table(path)``; it spares a second read.
    """
    path = Path(path)
    key = _file_key(path)
    if key in _HASHES:
        _HASHES.move_to_end(key)
        return _HASHES[key]
    value = frame_hash(read_table(path) if frame is None else frame)
    _HASHES[key] = value
    while len(_HASHES) > _HASHES_MAX:
        _HASHES.popitem(last=False)
    return value


@lru_cache(maxsize=None)
def _shipped_manifest_cached(mtime_ns: int) -> dict:
    return json.loads(MANIFEST.read_text())


def shipped_manifest() -> dict:
    """``experiments/data_manifest.json``: per shipped file its content hash, sha256, shape."""
    return _shipped_manifest_cached(MANIFEST.stat().st_mtime_ns)


def synthetic_hash(spec) -> str:
    """Hash of a ``generator: synthetic`` config's generator parameters (its table's identity)."""
    params = {"generator": "synthetic", "n_rows": int(spec.get("n_rows", 300)), "seed": int(spec.get("seed", 0))}
    return hashlib.sha256(json.dumps([HASH_VERSION, params], sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- where files are
def _chosen_dir(data_dir) -> Path | None:
    chosen = data_dir or os.environ.get("METAGAIN_DATA_DIR") or None
    return Path(chosen) if chosen else None


def search_dirs(data_dir=None) -> list[Path]:
    """Folders searched for a dataset file, in order: ``data_dir`` (or ``METAGAIN_DATA_DIR``)
    when set, the shipped ``data/``, the download cache ``data_cache/``."""
    out, seen = [], set()
    for folder in [_chosen_dir(data_dir), SHIPPED_DATA_DIR, DOWNLOAD_CACHE]:
        if folder is None:
            continue
        resolved = folder.resolve()
        if resolved not in seen:
            seen.add(resolved)
            out.append(folder)
    return out


def download_dir(data_dir=None) -> Path:
    """Where a download goes: ``data_dir`` (or ``METAGAIN_DATA_DIR``) when set, else ``data_cache/``."""
    return _chosen_dir(data_dir) or DOWNLOAD_CACHE


def _restore_advice(path: Path) -> str:
    path = Path(path)
    if path.parent.resolve() == SHIPPED_DATA_DIR.resolve():
        return f"restore the repository's copy (`git checkout -- data/{path.name}`)."
    return (f"replace it with a good copy (the repository ships one in data/{path.name} if it is a "
            "project dataset) or remove it to use the shipped one.")


def _spec_file(spec, key: str) -> str:
    file = spec.get("file")
    if not file:
        raise DataError(f"Dataset {key!r} names no file; set `file:` in conf/dataset/{key}.yaml.")
    return str(file)


def locate(spec, data_dir=None) -> Path:
    """The path of the dataset's file: found in :func:`search_dirs`, else downloaded (``uci_id``)."""
    key = spec.get("key") or spec.get("file", "?")
    file = _spec_file(spec, key)
    dirs = search_dirs(data_dir)
    for folder in dirs:
        if (folder / file).is_file():
            return folder / file
    where = ", ".join(str(d) for d in dirs)
    if spec.get("uci_id") is None:
        raise DataFileError(
            f"{file} (dataset {key!r}, no uci_id) is not in any of the folders searched ({where}). "
            f"Put it in one of them, or set data_dir=... (or METAGAIN_DATA_DIR) to the folder that holds it."
        )
    return fetch_to_cache(spec, data_dir, searched=where)


# ---------------------------------------------------------------------------- local manifests
def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _read_local(manifest: Path) -> dict:
    if not manifest.exists():
        return {}
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        raise DataFileError(f"Cannot read the local manifest {manifest} ({err}); fix or remove it.") from err


def _record_local(folder: Path, file: str, entry: dict) -> None:
    """Add ``file``'s entry to ``folder/manifest.local.json`` (merged, atomic replace)."""
    manifest = Path(folder) / LOCAL_MANIFEST
    try:
        recorded = _read_local(manifest)
        recorded[file] = entry
        tmp = manifest.with_name(f"{LOCAL_MANIFEST}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, manifest)
    except OSError as err:  # a read-only folder: the file still loads, but changes go unnoticed
        log.warning("Cannot record the content hash of %s in %s (%s); later changes will not be detected.",
                    file, manifest, err)


def verify(path: Path, content: str, spec=None) -> None:
    """Check ``content`` (the table hash of ``path``) against the shipped or the local manifest.

    A file the project ships is checked against ``experiments/data_manifest.json``. Any other
    file is checked against ``manifest.local.json`` beside it; on first use its hash is recorded
    there (trust on first use: a user's own CSV needs no hand-written manifest).
    """
    path = Path(path)
    shipped = shipped_manifest().get(path.name)
    if shipped is not None:
        if content != shipped["content"]:
            raise DataFileError(
                f"Checksum mismatch for {path}: its content hash is {content}, but the project's "
                f"{path.name} has {shipped['content']} (experiments/data_manifest.json). It is not the "
                f"table the project was built on; {_restore_advice(path)}"
            )
        return
    manifest = path.parent / LOCAL_MANIFEST
    entry = _read_local(manifest).get(path.name)
    if entry is None:
        source = "first use"
        if spec is not None and spec.get("uci_id") is not None:
            source = f"first use (UCI id {spec['uci_id']})"
        _record_local(path.parent, path.name, {"content": content, "sha256": sha256_of(path),
                                               "recorded": _now(), "source": source})
        log.info("Recorded the content hash of %s in %s", path, manifest)
        return
    if isinstance(entry, str):  # an older manifest recorded the sha256 of the file bytes
        if sha256_of(path) == entry:
            _record_local(path.parent, path.name, {"content": content, "sha256": entry, "recorded": _now(),
                                                   "source": "upgraded from a sha256 entry"})
            return
        entry = {"content": entry, "recorded": "an earlier date"}
    if content != entry.get("content"):
        raise DataFileError(
            f"{path} changed since its content hash was recorded on {entry.get('recorded', '?')}: "
            f"recorded {entry.get('content')}, found {content}; if the change is intended, remove its "
            f"entry from {manifest}."
        )


# ---------------------------------------------------------------------------- downloading
def _write_gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(frame.to_csv(index=False, lineterminator="\n").encode())
    os.replace(tmp, path)


def to_shipped_layout(original: pd.DataFrame, spec, columns: list | None) -> pd.DataFrame:
    """A ``ucimlrepo`` download (``data.original``: UCI's names and order) in the project's layout.

    ``uci_columns`` in the dataset config maps our column names to UCI's where they differ, or is
    ``positional``: UCI's columns in their order are ours in the shipped order. ``columns`` is
    the shipped file's column list (``experiments/data_manifest.json``); without one (a dataset the
    project does not ship) UCI's columns are kept, renamed, with the target moved last.
    """
    key = spec.get("key") or spec.get("file", "?")
    mapping = spec.get("uci_columns") or {}
    frame = original.copy()
    if mapping == "positional":
        if columns is None or len(columns) != frame.shape[1]:
            raise DataFileError(
                f"Dataset {key!r}: uci_columns is positional but the download has {frame.shape[1]} columns "
                f"{list(frame.columns)} and the project's file {len(columns) if columns else 'no known'} columns."
            )
        frame.columns = list(columns)
        return frame
    if not isinstance(mapping, dict):
        raise DataError(f"Dataset {key!r}: uci_columns must be a mapping (ours: UCI's) or 'positional'.")
    frame = frame.rename(columns={uci: ours for ours, uci in mapping.items()})
    if columns is None:
        target = spec.get("target")
        if target in frame.columns:
            frame = frame[[c for c in frame.columns if c != target] + [target]]
        return frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFileError(
            f"Dataset {key!r}: the download lacks the columns {missing} (after renaming by uci_columns); "
            f"it has {list(original.columns)}. Map our names to UCI's under uci_columns in "
            f"conf/dataset/{key}.yaml."
        )
    return frame[list(columns)]


def fetch_to_cache(spec, data_dir=None, searched: str = "") -> Path:
    """Download the config's UCI dataset with ``ucimlrepo``, convert it, verify it, install it.

    The download is converted to the shipped format (columns renamed and ordered as ours, gzip
    CSV with ``mtime=0``) and written to ``<file>.download.csv.gz`` in :func:`download_dir`. It is
    installed as ``<file>`` only if its content hash is the expected one (shipped manifest, else
    the local one, else recorded now); otherwise it stays there for inspection and a
    :class:`DataFileError` says so.
    """
    key = spec.get("key") or spec.get("file", "?")
    file, uci_id = _spec_file(spec, key), spec["uci_id"]
    folder = download_dir(data_dir)
    where = searched or ", ".join(str(d) for d in search_dirs(data_dir))
    try:
        from ucimlrepo import fetch_ucirepo
    except ImportError as err:  # pragma: no cover - ucimlrepo is a core dependency
        raise DataFileError(f"{file} is not in the cache directories searched ({where}) and ucimlrepo "
                            "is not installed to download it; run `make setup`.") from err
    try:
        fetched = fetch_ucirepo(id=int(uci_id))
        original = fetched.data.original
    except Exception as err:  # network errors, unknown ids
        raise DataFileError(
            f"{file} is not in the cache directories searched ({where}) and downloading UCI dataset "
            f"{uci_id} failed ({type(err).__name__}: {err}). The repository ships the project's datasets "
            f"in data/; for another dataset put {file} in one of those folders."
        ) from err
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataFileError(f"Cannot create the download folder {folder} ({err}); set data_dir=... "
                            "(or METAGAIN_DATA_DIR) to a writable folder.") from err
    shipped = shipped_manifest().get(file)
    download = folder / f"{file}.download.csv.gz"
    try:
        frame = to_shipped_layout(original, spec, shipped["columns"] if shipped else None)
    except DataFileError as err:
        _write_gzip_csv(original, download)
        raise DataFileError(f"{err} The download, as UCI delivered it, is kept at {download}.") from err
    _write_gzip_csv(frame, download)
    found = table_hash(download)
    path = folder / file
    expected = shipped["content"] if shipped else None
    if expected is None:
        entry = _read_local(folder / LOCAL_MANIFEST).get(file)
        expected = entry.get("content") if isinstance(entry, dict) else None
    if expected is not None and found != expected:
        raise DataFileError(
            f"The download of UCI dataset {uci_id} does not match the project's {file}: expected content "
            f"hash {expected}, found {found}. The download is kept at {download} for inspection; {file} "
            f"was not installed. The UCI data may have been revised, or uci_columns in "
            f"conf/dataset/{key}.yaml may not match UCI's layout. The repository ships the expected "
            f"table as data/{file}."
        )
    os.replace(download, path)
    if shipped is None:
        _record_local(folder, file, {"content": found, "sha256": sha256_of(path), "recorded": _now(),
                                     "source": f"download of UCI id {uci_id}"})
    log.info("Downloaded UCI %s to %s (content hash %s)", uci_id, path, found)
    return path


def read_raw_frame(spec, data_dir=None) -> tuple[pd.DataFrame, str]:
    """The dataset's table as read from its (verified) file, and its content hash."""
    path = locate(spec, data_dir)
    frame = read_table(path)
    content = table_hash(path, frame)
    verify(path, content, spec)
    return frame, content


def dataset_hash(spec, data_dir=None) -> str:
    """Content hash of the table a dataset config loads (verified), or of a synthetic config's
    generator parameters. Cached by path, mtime and size: cheap to call for every cell."""
    spec = dict(spec)
    if spec.get("generator") == "synthetic":
        return synthetic_hash(spec)
    path = locate(spec, data_dir)
    content = table_hash(path)
    verify(path, content, spec)
    return content


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
    """Load the dataset a ``conf/dataset`` entry describes (:func:`search_dirs`, then UCI).

    ``data_dir`` (else ``METAGAIN_DATA_DIR``) is searched before the shipped ``data/``; ``None``
    means the shipped files. The result's ``content_hash`` is :func:`dataset_hash` of ``spec``.
    """
    spec = dict(spec)
    key = spec.get("key") or spec.get("file", "?")
    if spec.get("generator") == "synthetic":
        from experiments.synthetic import make_mixed_frame

        frame = make_mixed_frame(n_rows=int(spec.get("n_rows", 300)), seed=int(spec.get("seed", 0)))
        return dataclasses.replace(prepare(frame, spec, key), content_hash=synthetic_hash(spec))
    frame, content = read_raw_frame(spec, data_dir)
    return dataclasses.replace(prepare(frame, spec, key), content_hash=content)


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
                  classes=dataset.classes, categories=dataset.categories, ranges=dataset.ranges,
                  content_hash=dataset.content_hash)
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
