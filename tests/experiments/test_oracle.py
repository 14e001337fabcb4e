"""Oracle checks of the scoring path on every shipped dataset config.

A perfect imputer must score 0 and the Complete accuracy; scaling then decoding the truth must
give the truth back, categoricals exactly; Mean imputation's ARMSE must equal a computation
written here from the raw CSV and the stored mask, without the project's scaler, decoder or
metrics. These would have caught the double decode of categoricals (SCORE_VERSION 1), which no
synthetic-only test did.
"""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from experiments import scoring
from experiments.data import subsample
from experiments.runner import complete_accuracy, compose_cell, prepare_cell, run_cell
from experiments.scoring import decode, score, score_draws
from experiments.split import stratified_split
from tests import spies

ROOT = Path(__file__).resolve().parents[2]
DATASETS = sorted(p.stem for p in (ROOT / "conf" / "dataset").glob("*.yaml"))
MAX_ROWS = 400
SEED = 0
OVERRIDES = ["profile=smoke", "mechanism=mcar", "ratio=0.2", f"seed={SEED}", f"profile.max_rows={MAX_ROWS}"]
ORACLE = {"name": "oracle", "_target_": "tests.spies.OracleImputer"}


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """``get(name) -> (cfg, prepared, results_dir)``, one results folder per dataset, prepared once."""
    cache = {}

    def get(name):
        if name not in cache:
            results = tmp_path_factory.mktemp(f"oracle-{name}")
            cfg = OmegaConf.to_container(compose_cell([f"dataset={name}", *OVERRIDES, f"results_dir={results}"]),
                                         resolve=True)
            cache[name] = (cfg, prepare_cell(cfg), results)
        return cache[name]

    return get


def scaled_truth(prepared):
    return prepared["scaler"].transform(prepared["dataset"].X)


def assert_is_truth(decoded, truth, schema, where=None):
    """Numeric columns to 1e-9 relative, categorical codes exactly (on ``where``, default all)."""
    where = np.ones(truth.shape, bool) if where is None else where
    cat = np.broadcast_to(schema.is_categorical, truth.shape)
    np.testing.assert_array_equal(decoded[where & cat], truth[where & cat], err_msg="categorical codes")
    np.testing.assert_allclose(decoded[where & ~cat], truth[where & ~cat], rtol=1e-9, atol=1e-12,
                               err_msg="numeric values")


def check_decode(prepared):
    """A1: observed entries survive scale → decode, and the decode arithmetic itself inverts the scaling."""
    ds = prepared["dataset"]
    rows = np.arange(ds.n_rows)
    observed = ~prepared["hidden"]
    assert_is_truth(decode(prepared["X_scaled"][rows], prepared, rows), ds.X, ds.schema, where=observed)
    # Nothing copied back: every entry hidden, so decode must get the whole truth from its arithmetic.
    nothing_observed = {**prepared, "hidden": np.ones_like(prepared["hidden"])}
    assert_is_truth(decode(scaled_truth(prepared), nothing_observed, rows), ds.X, ds.schema)
    # and the same for draws (n_draws, rows, d)
    draws = np.repeat(scaled_truth(prepared)[None], 2, axis=0)
    decoded = decode(draws, nothing_observed, rows)
    for d in decoded:
        assert_is_truth(d, ds.X, ds.schema)


# ---------------------------------------------------------------------------- A1: scale → decode
@pytest.mark.parametrize("name", DATASETS)
def test_decode_gives_back_the_truth(name, cells):
    check_decode(cells(name)[1])


def _version_1_decode(X_scaled, prepared, rows):
    """The decode of SCORE_VERSION 1: the inverse, then categoricals snapped a second time."""
    return prepared["dataset"].schema.to_codes(prepared["scaler"].inverse(np.asarray(X_scaled, float)))


def _double_decode_with_copy_back(X_scaled, prepared, rows):
    """Version 1's arithmetic behind version 2's copy-back of observed entries."""
    observed = ~prepared["hidden"][rows]
    return np.where(observed, prepared["dataset"].X[rows], _version_1_decode(X_scaled, prepared, rows))


@pytest.mark.parametrize("broken", [_version_1_decode, _double_decode_with_copy_back])
def test_the_decode_check_catches_the_double_decode(broken, cells, monkeypatch):
    """The checks above fail on balance (ordinal, k = 5) when decode decodes categoricals twice."""
    cfg, prepared, _ = cells("balance")
    monkeypatch.setattr(sys.modules[__name__], "decode", broken)
    with pytest.raises(AssertionError, match="categorical codes"):
        check_decode(prepared)
    if broken is _double_decode_with_copy_back:  # the copy-back alone hides it: only the strong check sees it
        rows = np.arange(prepared["dataset"].n_rows)
        assert_is_truth(broken(prepared["X_scaled"], prepared, rows), prepared["dataset"].X,
                        prepared["dataset"].schema, where=~prepared["hidden"])
    # and the oracle no longer scores 0
    monkeypatch.setattr(scoring, "decode", broken)
    truth = scaled_truth(prepared)
    tr, te = prepared["train_idx"], prepared["test_idx"]
    hidden = prepared["hidden"][te]
    decoded = broken(truth[te], prepared, te)
    assert (decoded != prepared["dataset"].X[te])[hidden].mean() > 0.5  # every code >= 1 became 4
    out = score({"train": truth[tr], "test": truth[te]}, prepared, cfg)
    assert out["metric_armse_test"] > 0.1


# ---------------------------------------------------------------------------- A2: an oracle scores 0
@pytest.mark.parametrize("name", DATASETS)
def test_the_truth_scores_zero_and_complete_accuracy(name, cells):
    cfg, prepared, _ = cells(name)
    truth = scaled_truth(prepared)
    tr, te = prepared["train_idx"], prepared["test_idx"]
    out = score({"train": truth[tr], "test": truth[te]}, prepared, cfg)
    for part in ("train", "test"):
        assert out[f"metric_armse_{part}"] < 1e-9, part
        assert out[f"metric_rmse_{part}"] < 1e-9, part
    assert out["metric_accuracy"] == complete_accuracy(cfg, prepared)


@pytest.mark.parametrize("name", ["heart", "balance", "wine"])
def test_an_oracle_imputer_through_run_cell(name, cells, monkeypatch):
    """The whole runner path (fit, transform, score, draws) with an imputer that returns the truth."""
    cfg, prepared, results = cells(name)
    monkeypatch.setattr(spies.OracleImputer, "TRUTH", scaled_truth(prepared))
    monkeypatch.setattr(spies.OracleImputer, "MISSING", prepared["X_scaled"])
    monkeypatch.setattr(spies.OracleImputer, "BLOCKS", (prepared["train_idx"], prepared["test_idx"]))
    row = run_cell({**cfg, "imputer": dict(ORACLE)})
    assert row["status"] == "ok", row.get("error")
    for part in ("train", "test"):
        assert row[f"metric_armse_{part}"] < 1e-9 and row[f"metric_rmse_{part}"] < 1e-9
    assert row["metric_accuracy"] == row["metric_accuracy_complete"]
    assert row["metric_diversity_std"] < 1e-12 and row["metric_armse_mean_draw"] < 1e-9
    assert row["metric_crps"] < 1e-9 and row["metric_coverage"] == 1.0
    assert row["metric_coverage_nominal"] == pytest.approx(9 / 11)
    if name == "heart":
        assert row["metric_brier"] == 0.0
    else:
        assert np.isnan(row["metric_brier"])


# ---------------------------------------------------------------------------- A3: Mean, computed independently
def _sorted_values(values) -> list:
    """Distinct values; numbers numerically, text alphabetically."""
    return sorted(set(values.tolist()), key=lambda v: (isinstance(v, str), v))


def independent_mean_armse(spec: dict, hidden: np.ndarray) -> float:
    """Test ARMSE of Mean imputation from the raw table and the mask alone.

    Numeric: mean of the observed training values; RMSE over hidden test entries / (max − min of
    the complete column). Categorical: the most frequent observed training category, a tie to
    the first in sorted order (``baselines/mean.py``); nominal: error rate; ordinal: mean
    |code shift| / number of categories. Unweighted mean over features with a hidden test entry.
    """
    if spec.get("generator") == "synthetic":
        from experiments.synthetic import make_mixed_frame  # the synthetic config's "raw CSV"

        frame = make_mixed_frame(n_rows=int(spec["n_rows"]), seed=int(spec["seed"]))
    else:
        frame = pd.read_csv(ROOT / "data" / spec["file"])
    frame = frame.drop(columns=list(spec.get("drop") or [])).dropna().reset_index(drop=True)
    labels = frame[spec["target"]]
    if spec.get("target_transform") == "binary_nonzero":
        labels = (pd.to_numeric(labels) > 0).astype(int)
    y = np.unique(labels.to_numpy(), return_inverse=True)[1].ravel()
    features = frame.drop(columns=[spec["target"]])
    # Row indices only: the runner's subsample and split (not the scoring path).
    stand_in = SimpleNamespace(key=spec["key"], n_rows=len(y), y=y, X=np.zeros((len(y), 1)), schema=None,
                               classes=None, categories=None, ranges=None, content_hash="")
    _, rows = subsample(stand_in, MAX_ROWS)
    train, test = stratified_split(y[rows], 0.2, SEED)
    assert hidden.shape == (rows.size, features.shape[1])
    nominal, ordinal = set(spec.get("nominal") or []), set(spec.get("ordinal") or [])
    errors = []
    for j, name in enumerate(features.columns):
        full = features[name]
        column = full.to_numpy()[rows]
        seen = column[train][~hidden[train, j]]
        truth = column[test][hidden[test, j]]
        if truth.size == 0:
            continue
        if name in nominal or name in ordinal:
            categories = _sorted_values(full)
            code = {c: i for i, c in enumerate(categories)}
            counts = [int(np.sum(seen == c)) for c in categories]
            mode = counts.index(max(counts))
            truth_codes = np.array([code[v] for v in truth])
            if name in nominal:
                errors.append(np.mean(truth_codes != mode))
            else:
                errors.append(np.mean(np.abs(truth_codes - mode)) / len(categories))
        else:
            values = pd.to_numeric(full).to_numpy(dtype=float)
            span = values.max() - values.min()
            fill = np.mean(seen.astype(float))
            errors.append(np.sqrt(np.mean((truth.astype(float) - fill) ** 2)) / (span if span > 0 else 1.0))
    return float(np.mean(errors))


@pytest.mark.parametrize("name", DATASETS)
def test_mean_armse_matches_an_independent_computation(name, cells):
    cfg, _, results = cells(name)
    row = run_cell({**cfg, "imputer": {"name": "mean", "_target_": "baselines.mean.MeanImputer"}})
    assert row["status"] == "ok", row.get("error")
    masks = list((results / "masks").glob("*.npz"))
    assert len(masks) == 1, masks
    with np.load(masks[0]) as saved:
        hidden = saved["hidden"]
    spec = yaml.safe_load((ROOT / "conf" / "dataset" / f"{name}.yaml").read_text())
    assert row["metric_armse_test"] == pytest.approx(independent_mean_armse(spec, hidden), rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------------- A4: the draw path
@pytest.mark.parametrize("name", DATASETS)
def test_oracle_draws_have_no_spread_and_no_error(name, cells):
    _, prepared, _ = cells(name)
    te = prepared["test_idx"]
    draws = np.repeat(scaled_truth(prepared)[te][None], 10, axis=0)
    out = score_draws(draws, prepared)
    assert out["metric_diversity_std"] < 1e-12  # np.std of equal floats: 0 up to rounding
    assert out["metric_armse_mean_draw"] < 1e-9
    assert out["metric_coverage_nominal"] == pytest.approx(9 / 11)
    schema, hidden = prepared["dataset"].schema, prepared["hidden"][te]
    if (hidden & schema.is_nominal).any():
        assert out["metric_brier"] == 0.0
    else:
        assert np.isnan(out["metric_brier"])
    if (hidden & ~schema.is_nominal).any():  # numeric or ordinal entries to cover
        assert out["metric_crps"] < 1e-9 and out["metric_coverage"] == 1.0
    else:  # chess_kp, connect: nominal only
        assert np.isnan(out["metric_crps"]) and np.isnan(out["metric_coverage"])


@pytest.mark.parametrize("name", DATASETS)
def test_draws_of_a_known_spread(name, cells):
    """Four draws per hidden entry: numeric truth + (−3, −1, 1, 3)·1% of the column's span;
    categorical truth, a neighbouring code, truth, neighbour. Diversity, CRPS and Brier by hand."""
    _, prepared, _ = cells(name)
    ds, te = prepared["dataset"], prepared["test_idx"]
    schema, hidden, X = ds.schema, prepared["hidden"][te], ds.X[te]
    span = ds.X.max(0) - ds.X.min(0)  # the complete (subsampled) data's [0, 1] scale of diversity
    span = np.where(span > 0, span, 1.0)
    k = np.array(schema.n_categories)
    neighbour = np.where(X + 1 <= k - 1, X + 1, X - 1)
    delta = np.array([-3, -1, 1, 3]) / 100
    draws = np.stack([np.where(schema.is_numeric, X + delta[i] * span,
                               X if i % 2 == 0 else neighbour) for i in range(4)])
    out = score_draws(prepared["scaler"].transform(draws), prepared)

    numeric = hidden & schema.is_numeric
    categorical = hidden & schema.is_categorical
    cat_span = np.broadcast_to(span, X.shape)[categorical]
    # population std of (-3, -1, 1, 3)/100 is sqrt(5)/100; of {c, c', c, c'} it is 1/2 a code
    per_entry = np.concatenate([np.full(numeric.sum(), np.sqrt(5) / 100), 0.5 / cat_span])
    assert out["metric_diversity_std"] == pytest.approx(per_entry.mean(), rel=1e-9)
    # CRPS: numeric E|X−y| = 0.02·span, E|X−X'| = 0.025·span → 0.0075·span / range;
    # ordinal E|X−y| = 1/2, E|X−X'| = 1/2 → 1/4 / k. Brier of frequencies (1/2, 1/2): 1/4 + 1/4.
    ranges = np.broadcast_to(np.where(ds.ranges > 0, ds.ranges, 1.0), X.shape)
    ordinal = hidden & schema.is_ordinal
    crps = np.concatenate([0.0075 * np.broadcast_to(span, X.shape)[numeric] / ranges[numeric],
                           0.25 / np.broadcast_to(k, X.shape)[ordinal]])
    if crps.size:
        assert out["metric_crps"] == pytest.approx(crps.mean(), rel=1e-9)
        assert out["metric_coverage"] == 1.0  # the truth lies inside [min, max] of its draws
    if (hidden & schema.is_nominal).any():
        assert out["metric_brier"] == pytest.approx(0.5)
