"""Loading, content hashes, downloads, user CSVs, encoding, subsampling and scaling of datasets."""
from __future__ import annotations

import gzip
import json
import shutil
import sys
import types

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import experiments.data as data
from experiments.data import (DataError, DataFileError, Scaler, dataset_hash, frame_hash, load_dataset,
                              subsample, table_hash)
from experiments.registry import CONF_DIR
from tests.conftest import ROOT

CACHE = ROOT / "data"  # the shipped data (experiments.data.SHIPPED_DATA_DIR)
DATASETS = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
MANIFEST = json.loads((ROOT / "experiments" / "data_manifest.json").read_text())


def spec(key):
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / f"{key}.yaml"))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No shipped data, an empty download cache, no METAGAIN_DATA_DIR: (shipped, cache) folders."""
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    shipped.mkdir()
    monkeypatch.setattr(data, "SHIPPED_DATA_DIR", shipped)
    monkeypatch.setattr(data, "DOWNLOAD_CACHE", cache)
    monkeypatch.delenv("METAGAIN_DATA_DIR", raising=False)
    return shipped, cache


def fake_ucimlrepo(monkeypatch, original: pd.DataFrame | None = None, error: Exception | None = None):
    """Install a fake ``ucimlrepo`` whose ``fetch_ucirepo`` returns ``original`` (or raises)."""
    calls = []

    def fetch_ucirepo(id):
        calls.append(id)
        if error is not None:
            raise error
        return types.SimpleNamespace(data=types.SimpleNamespace(original=original.copy()))

    module = types.ModuleType("ucimlrepo")
    module.fetch_ucirepo = fetch_ucirepo
    monkeypatch.setitem(sys.modules, "ucimlrepo", module)
    return calls


def uci_layout(key: str) -> pd.DataFrame:
    """The shipped table of ``key`` as UCI delivers it: UCI's column names, target first."""
    cfg = spec(key)
    frame = pd.read_csv(CACHE / cfg["file"])
    frame = frame.rename(columns=cfg.get("uci_columns") or {})
    target = cfg["target"]
    return frame[[target] + [c for c in frame.columns if c != target]]


# ---------------------------------------------------------------------------- the shipped data
@pytest.mark.parametrize("key", DATASETS)
def test_every_dataset_loads_complete_and_encoded(key, monkeypatch):
    monkeypatch.delenv("METAGAIN_DATA_DIR", raising=False)
    ds = load_dataset(spec(key))  # no data_dir: the shipped data/
    assert not np.isnan(ds.X).any()
    assert ds.X.shape[1] == ds.schema.n_features
    assert len(ds.classes) >= 2 and set(np.unique(ds.y)) == set(range(len(ds.classes)))
    cat = ds.schema.is_categorical
    for j in np.flatnonzero(cat):  # codes 0..k-1, every code used
        assert set(np.unique(ds.X[:, j])) == set(range(ds.schema.n_categories[j]))
    assert (ds.ranges[~cat] > 0).all()
    assert ds.content_hash == dataset_hash(spec(key))
    if key != "synthetic":
        assert ds.content_hash == MANIFEST[spec(key)["file"]]["content"]


def test_heart_drops_incomplete_rows_and_binarises():
    ds = load_dataset(spec("heart"), CACHE)
    assert ds.n_rows == 297  # 303 rows, 6 with a '?'
    assert ds.classes == [0, 1]


def test_every_shipped_file_matches_the_manifest_and_its_readme():
    files = sorted(p.name for p in CACHE.glob("*.csv.gz"))
    assert files == sorted(MANIFEST) and len(files) == 12
    readme = (CACHE / "README.md").read_text()
    for name in files:
        frame = pd.read_csv(CACHE / name)
        entry = MANIFEST[name]
        assert frame_hash(frame) == entry["content"], name
        assert data.sha256_of(CACHE / name) == entry["sha256"], name
        assert list(frame.columns) == entry["columns"] and len(frame) == entry["rows"]
        assert entry["content"] in readme and entry["sha256"] in readme, name
    referenced = {spec(k)["file"] for k in DATASETS if spec(k).get("file")}
    assert referenced <= set(files)


def test_data_dir_none_is_the_shipped_folder_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv("METAGAIN_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert data.SHIPPED_DATA_DIR == CACHE
    assert load_dataset(spec("wine")).n_rows == 178
    assert not (tmp_path / "data_cache").exists()


def test_content_hash_survives_reserialisation(tmp_path):
    original = CACHE / "wine.csv.gz"
    copy = tmp_path / "wine.csv.gz"
    pd.read_csv(original).to_csv(copy, index=False, compression={"method": "gzip", "compresslevel": 1})
    assert copy.read_bytes() != original.read_bytes()
    assert b"0.28" in gzip.decompress(copy.read_bytes()) and b",.28" in gzip.decompress(original.read_bytes())
    assert table_hash(copy) == table_hash(original) == MANIFEST["wine.csv.gz"]["content"]
    assert load_dataset(spec("wine"), tmp_path).content_hash == MANIFEST["wine.csv.gz"]["content"]


def test_content_hash_sees_values_names_order_and_kinds():
    frame = pd.DataFrame({"a": [1.5, np.nan], "b": ["x", "y"], "c": [1, 2]})
    base = frame_hash(frame)
    assert frame_hash(frame.copy()) == base
    assert frame_hash(frame.assign(c=[1, 3])) != base
    assert frame_hash(frame.assign(c=[1.0, 2.0])) != base  # int vs float column
    assert frame_hash(frame.rename(columns={"b": "B"})) != base
    assert frame_hash(frame[["b", "a", "c"]]) != base
    assert frame_hash(frame.assign(b=["x", None])) != frame_hash(frame.assign(b=["x", "nan"]))


def test_dataset_hash_is_cached_and_cheap(monkeypatch):
    first = dataset_hash(spec("letter"), CACHE)
    monkeypatch.setattr(data, "read_table", lambda path: pytest.fail("dataset_hash read the file again"))
    assert dataset_hash(spec("letter"), CACHE) == first == MANIFEST["letter.csv.gz"]["content"]


def test_dataset_hash_of_synthetic_is_its_generator_parameters():
    base = dataset_hash(spec("synthetic"))
    assert base == dataset_hash(dict(spec("synthetic"), target="target"))
    assert base != dataset_hash(dict(spec("synthetic"), seed=1))
    assert base != dataset_hash(dict(spec("synthetic"), n_rows=301))
    assert load_dataset(spec("synthetic")).content_hash == base


def test_wrong_checksum_is_one_clear_error(tmp_path):
    target = tmp_path / "wine.csv.gz"
    shutil.copy(CACHE / "wine.csv.gz", target)
    with gzip.open(target, "ab") as handle:
        handle.write(b"1,2,3,4,5,6,7,8,9,10,11,12,13,1\n")
    with pytest.raises(DataFileError, match="Checksum mismatch for .*wine.csv.gz") as err:
        load_dataset(spec("wine"), tmp_path)
    assert MANIFEST["wine.csv.gz"]["content"] in str(err.value) and "delete" not in str(err.value)
    with pytest.raises(DataFileError, match="Checksum mismatch"):
        dataset_hash(spec("wine"), tmp_path)


def test_unreadable_file_is_one_clear_error(tmp_path):
    (tmp_path / "wine.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFileError, match="Cannot read .*wine.csv.gz"):
        load_dataset(spec("wine"), tmp_path)


def test_config_problems_are_data_errors_not_file_errors():
    assert issubclass(DataFileError, DataError) and issubclass(DataError, ValueError)
    with pytest.raises(DataError) as err:
        load_dataset(dict(spec("wine"), target="no such column"))
    assert not isinstance(err.value, DataFileError)


# ---------------------------------------------------------------------------- downloads
def test_missing_file_without_network_names_the_file(isolated, monkeypatch):
    fake_ucimlrepo(monkeypatch, error=ConnectionError("no network"))
    with pytest.raises(DataFileError, match="wine.csv.gz is not in the cache") as err:
        load_dataset(spec("wine"))
    assert "delete" not in str(err.value)


def test_download_in_uci_layout_is_converted_and_verified(isolated, monkeypatch):
    shipped, cache = isolated
    calls = fake_ucimlrepo(monkeypatch, uci_layout("wine"))
    assert list(uci_layout("wine").columns[:3]) == ["class", "Alcohol", "Malicacid"]
    ds = load_dataset(spec("wine"))  # no data_dir: downloads go to the cache, not to data/
    assert calls == [109]
    assert ds.content_hash == MANIFEST["wine.csv.gz"]["content"] and ds.n_rows == 178
    assert (cache / "wine.csv.gz").exists() and not (cache / "wine.csv.gz.download.csv.gz").exists()
    assert not list(shipped.iterdir())
    assert list(pd.read_csv(cache / "wine.csv.gz").columns) == MANIFEST["wine.csv.gz"]["columns"]
    assert gzip.open(cache / "wine.csv.gz").read() != gzip.open(CACHE / "wine.csv.gz").read()  # 0.28 vs .28
    load_dataset(spec("wine"))  # found in the cache now: no second download
    assert calls == [109]


def test_positional_download_is_mapped_onto_our_columns(isolated, monkeypatch, tmp_path):
    frame = pd.read_csv(CACHE / "wireless.csv.gz")
    frame.columns = [f"Attribute{i}" for i in range(1, 8)] + ["Class"]
    fake_ucimlrepo(monkeypatch, frame)
    assert load_dataset(spec("wireless"), tmp_path / "mine").content_hash == MANIFEST["wireless.csv.gz"]["content"]
    assert (tmp_path / "mine" / "wireless.csv.gz").exists()  # a data_dir set: downloads go there


def test_download_that_differs_is_kept_not_installed(isolated, monkeypatch):
    _, cache = isolated
    changed = uci_layout("wine")
    changed.loc[3, "Alcohol"] += 0.01
    fake_ucimlrepo(monkeypatch, changed)
    with pytest.raises(DataFileError) as err:
        load_dataset(spec("wine"))
    message = str(err.value)
    found = table_hash(cache / "wine.csv.gz.download.csv.gz")
    assert f"expected content hash {MANIFEST['wine.csv.gz']['content']}, found {found}" in message
    assert f"kept at {cache / 'wine.csv.gz.download.csv.gz'}" in message
    assert "delete" not in message.lower() and "again" not in message
    assert not (cache / "wine.csv.gz").exists()
    with pytest.raises(DataFileError, match="does not match"):  # the next try says the same
        load_dataset(spec("wine"))


def test_download_with_unknown_columns_names_them(isolated, monkeypatch):
    _, cache = isolated
    fake_ucimlrepo(monkeypatch, uci_layout("wine").rename(columns={"Malicacid": "Malic_Acid"}))
    with pytest.raises(DataFileError, match=r"lacks the columns \['Malic acid'\].*uci_columns"):
        load_dataset(spec("wine"))
    assert (cache / "wine.csv.gz.download.csv.gz").exists() and not (cache / "wine.csv.gz").exists()


def test_download_of_a_new_dataset_is_recorded_then_verified(isolated, monkeypatch, tmp_path):
    frame = pd.DataFrame({"class": [1, 2, 1, 2], "a": [0.1, 0.2, 0.3, 0.4], "b": [1, 2, 3, 4]})
    fake_ucimlrepo(monkeypatch, frame)
    new_spec = {"key": "toy", "file": "toy.csv.gz", "uci_id": 999, "target": "class"}
    ds = load_dataset(new_spec, tmp_path)
    assert ds.X.shape == (4, 2)
    local = json.loads((tmp_path / "manifest.local.json").read_text())
    assert local["toy.csv.gz"]["content"] == ds.content_hash == dataset_hash(new_spec, tmp_path)
    assert list(pd.read_csv(tmp_path / "toy.csv.gz").columns) == ["a", "b", "class"]  # target last
    with gzip.open(tmp_path / "toy.csv.gz", "ab") as handle:  # a later corruption is caught
        handle.write(b"9,9,9\n")
    with pytest.raises(DataFileError, match="toy.csv.gz changed since its content hash was recorded"):
        load_dataset(new_spec, tmp_path)


# ---------------------------------------------------------------------------- a user's own CSV
def test_user_csv_is_recorded_on_first_load_and_a_change_is_reported(isolated, monkeypatch, tmp_path):
    calls = fake_ucimlrepo(monkeypatch, error=AssertionError("no download for a user's CSV"))
    folder = tmp_path / "mine"
    folder.mkdir()
    pd.DataFrame({"x": [1.0, 2.5, 3.0, 4.0], "c": ["u", "v", "u", "v"], "y": [0, 1, 0, 1]}).to_csv(
        folder / "mine.csv", index=False)
    user = {"key": "mine", "file": "mine.csv", "uci_id": None, "target": "y", "nominal": ["c"]}
    ds = load_dataset(user, folder)
    assert ds.X.shape == (4, 2)
    entry = json.loads((folder / "manifest.local.json").read_text())["mine.csv"]
    assert entry["content"] == ds.content_hash == dataset_hash(user, folder) and entry["recorded"]
    assert load_dataset(user, str(folder)).content_hash == ds.content_hash
    monkeypatch.setenv("METAGAIN_DATA_DIR", str(folder))  # the environment variable works as data_dir
    assert dataset_hash(user) == ds.content_hash
    (folder / "mine.csv").write_text("x,c,y\n1.0,u,0\n2.5,v,1\n3.0,u,0\n4.25,v,1\n")
    with pytest.raises(DataFileError) as err:
        load_dataset(user, folder)
    message = str(err.value)
    assert f"{folder / 'mine.csv'} changed since its content hash was recorded on {entry['recorded']}" in message
    assert f"remove its entry from {folder / 'manifest.local.json'}" in message
    assert "download" not in message and "delete" not in message.lower()
    assert calls == []


def test_missing_user_csv_is_not_downloaded(isolated, monkeypatch, tmp_path):
    calls = fake_ucimlrepo(monkeypatch, error=AssertionError("no download without uci_id"))
    user = {"key": "mine", "file": "mine.csv", "uci_id": None, "target": "y"}
    with pytest.raises(DataFileError, match="mine.csv .*no uci_id.* is not in any of the folders searched") as err:
        load_dataset(user, tmp_path)
    assert "download" not in str(err.value) and calls == []


# ---------------------------------------------------------------------------- preparing, scaling
def test_single_class_target_is_rejected():
    bad = dict(spec("synthetic"), target="colour", nominal=[], drop=["target"])
    from experiments.data import prepare
    from experiments.synthetic import make_mixed_frame

    frame = make_mixed_frame(50)
    frame["colour"] = "red"
    with pytest.raises(DataError, match="single class") as err:
        prepare(frame, bad, "synthetic")
    assert not isinstance(err.value, DataFileError)


def test_text_in_numeric_column_names_the_column():
    from experiments.data import prepare
    from experiments.synthetic import make_mixed_frame

    with pytest.raises(DataError, match="'colour' is configured numeric") as err:
        prepare(make_mixed_frame(50), dict(spec("synthetic"), nominal=[]), "synthetic")
    assert not isinstance(err.value, DataFileError)


def test_subsample_is_stratified_and_keeps_every_class():
    ds = load_dataset(spec("synthetic"))
    sub, idx = subsample(ds, 60, seed=0)
    assert sub.n_rows <= 60 and set(np.unique(sub.y)) == set(np.unique(ds.y))
    assert sub.content_hash == ds.content_hash
    again, idx2 = subsample(ds, 60, seed=0)
    np.testing.assert_array_equal(idx, idx2)


def test_scaler_uses_observed_training_values_only():
    ds = load_dataset(spec("synthetic"))
    X = ds.X.copy()
    X[0, 0] = np.nan  # a hidden huge value must not move the scaling
    true_max = ds.X[1:, 0].max()
    scaler = Scaler.fit(X, ds.schema)
    scaled = scaler.transform(X)
    assert np.nanmax(scaled[:, 0]) == pytest.approx(1.0)
    assert scaler.offset[0] + scaler.scale[0] == pytest.approx(true_max)
    cat = ds.schema.is_categorical
    assert np.nanmax(scaled[:, cat]) <= 1.0 and np.nanmin(scaled[:, cat]) >= 0.0
    np.testing.assert_allclose(scaler.inverse(scaled), X)
