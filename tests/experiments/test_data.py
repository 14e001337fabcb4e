"""Loading, checksums, encoding, subsampling and scaling of datasets."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from experiments.data import DataError, Scaler, load_dataset, subsample
from experiments.registry import CONF_DIR
from tests.conftest import ROOT

CACHE = ROOT.parent / "shared" / "data" / "uci"
DATASETS = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
needs_cache = pytest.mark.skipif(not CACHE.exists(), reason="the shared UCI cache is not beside the project")


def spec(key):
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / f"{key}.yaml"))


@needs_cache
@pytest.mark.parametrize("key", DATASETS)
def test_every_dataset_loads_complete_and_encoded(key):
    ds = load_dataset(spec(key), CACHE)
    assert not np.isnan(ds.X).any()
    assert ds.X.shape[1] == ds.schema.n_features
    assert len(ds.classes) >= 2 and set(np.unique(ds.y)) == set(range(len(ds.classes)))
    cat = ds.schema.is_categorical
    for j in np.flatnonzero(cat):  # codes 0..k-1, every code used
        assert set(np.unique(ds.X[:, j])) == set(range(ds.schema.n_categories[j]))
    assert (ds.ranges[~cat] > 0).all()


@needs_cache
def test_heart_drops_incomplete_rows_and_binarises():
    ds = load_dataset(spec("heart"), CACHE)
    assert ds.n_rows == 297  # 303 rows, 6 with a '?'
    assert ds.classes == [0, 1]


@needs_cache
def test_wrong_checksum_is_one_clear_error(tmp_path):
    target = tmp_path / "wine.csv.gz"
    shutil.copy(CACHE / "wine.csv.gz", target)
    with gzip.open(target, "ab") as handle:
        handle.write(b"1,2,3,4,5,6,7,8,9,10,11,12,13,1\n")
    with pytest.raises(DataError, match="Checksum mismatch for .*wine.csv.gz"):
        load_dataset(spec("wine"), tmp_path)


def test_missing_file_without_network_names_the_file(tmp_path, monkeypatch):
    import ucimlrepo

    def offline(**kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(ucimlrepo, "fetch_ucirepo", offline)
    with pytest.raises(DataError, match="wine.csv.gz is not in the cache"):
        load_dataset(spec("wine"), tmp_path)


def test_download_is_written_in_cache_format_and_verified(tmp_path, monkeypatch):
    import types

    import pandas as pd
    import ucimlrepo

    frame = pd.DataFrame({"class": [1, 2, 1, 2], "a": [0.1, 0.2, 0.3, 0.4], "b": [1, 2, 3, 4]})

    def fake_fetch(id):
        return types.SimpleNamespace(data=types.SimpleNamespace(original=frame))

    monkeypatch.setattr(ucimlrepo, "fetch_ucirepo", fake_fetch)
    new_spec = {"key": "toy", "file": "toy.csv.gz", "uci_id": 999, "target": "class"}
    ds = load_dataset(new_spec, tmp_path)
    assert ds.X.shape == (4, 2) and (tmp_path / "manifest.local.json").exists()
    written = pd.read_csv(tmp_path / "toy.csv.gz")
    assert list(written.columns) == ["a", "b", "class"]  # target last, as in the cache
    with gzip.open(tmp_path / "toy.csv.gz", "ab") as handle:  # a later corruption is caught
        handle.write(b"9,9,9\n")
    with pytest.raises(DataError, match="Checksum mismatch"):
        load_dataset(new_spec, tmp_path)


def test_unreadable_file_is_one_clear_error(tmp_path, monkeypatch):
    import experiments.data as data

    (tmp_path / "wine.csv.gz").write_bytes(b"not gzip at all")
    monkeypatch.setattr(data, "verify_checksum", lambda path, data_dir: None)
    with pytest.raises(DataError, match="Cannot read .*wine.csv.gz"):
        load_dataset(spec("wine"), tmp_path)


def test_single_class_target_is_rejected():
    bad = dict(spec("synthetic"), target="colour", nominal=[], drop=["target"])
    from experiments.data import prepare
    from experiments.synthetic import make_mixed_frame

    frame = make_mixed_frame(50)
    frame["colour"] = "red"
    with pytest.raises(DataError, match="single class"):
        prepare(frame, bad, "synthetic")


def test_text_in_numeric_column_names_the_column():
    from experiments.data import prepare
    from experiments.synthetic import make_mixed_frame

    with pytest.raises(DataError, match="'colour' is configured numeric"):
        prepare(make_mixed_frame(50), dict(spec("synthetic"), nominal=[]), "synthetic")


def test_subsample_is_stratified_and_keeps_every_class():
    ds = load_dataset(spec("synthetic"))
    sub, idx = subsample(ds, 60, seed=0)
    assert sub.n_rows <= 60 and set(np.unique(sub.y)) == set(np.unique(ds.y))
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
