"""Calibration study: settle what the paper leaves open, from evidence (docs/DESIGN.md, Datasets and Metrics).

    python -m scripts.calibrate            # or: make calibrate   → results/calibration.md

1. Complete-data XGBoost accuracy (the harness's one classifier, 80/20 stratified split, seeds
   0–2) for every dataset and for each candidate target/file of the ambiguous ones, beside the
   majority-class rate and the paper's Table 4 "Complete" value. The rule: the candidate nearest
   the paper's value wins, provided it beats the majority-class rate.
2. Mean-imputation ARMSE (MCAR 0.2, seeds 0–2) under the metric variants — the default (test rows,
   numeric RMSE/range, nominal error rate, ordinal |shift|/k), ordinal columns treated as numeric,
   all rows instead of test rows, numeric features only, RMSE/std instead of /range, and GAIN's
   pooled RMSE — each beside the paper's Table 1 Mean value.
The report is generated; nothing in it is typed by hand.
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from experiments import metrics
from experiments.data import Scaler, load_dataset
from experiments.masks import draw_mask
from experiments.registry import CONF_DIR
from experiments.runner import set_threads
from experiments.scoring import complete_unit_scale, decode, unit_scale
from experiments.split import stratified_split
from baselines.schema import Schema

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "results" / "reference" / "paper_tables.csv"
DATASETS = ["wireless", "yeast", "balance", "valley", "wine", "connect", "letter", "turkiye", "chess",
            "anuran", "heart"]
CLASSIFIER = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))["classifier"]
TURKIYE_ORDINAL = ["nb.repeat", "attendance", "difficulty"] + [f"Q{i}" for i in range(1, 29)]


def spec(key: str, **changes) -> dict:
    out = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / f"{key}.yaml"))
    out.update(changes)
    return out


def candidates() -> list[tuple[str, str, dict]]:
    """(paper dataset, candidate label, dataset spec) for every configured and candidate reading."""
    rows = [(key, f"{key} (configured)", spec(key)) for key in DATASETS]
    rows += [
        ("heart", "heart: 5-class num", spec("heart", target_transform=None)),
        ("heart", "heart: binary num > 0", spec("heart", target_transform="binary_nonzero")),
        ("chess", "chess: KR-vs-KP (UCI 22)", spec("chess_kp")),
        ("chess", "chess: KR-vs-K (UCI 23)", spec("chess_krk")),
        ("turkiye", "turkiye: instr, class as feature",
         spec("turkiye", target="instr", nominal=["class"], ordinal=TURKIYE_ORDINAL)),
        ("turkiye", "turkiye: instr, class dropped",
         spec("turkiye", target="instr", drop=["class"], nominal=[], ordinal=TURKIYE_ORDINAL)),
        ("turkiye", "turkiye: class (13 courses)",
         spec("turkiye", target="class", nominal=["instr"], ordinal=TURKIYE_ORDINAL)),
        ("turkiye", "turkiye: nb.repeat",
         spec("turkiye", target="nb.repeat", nominal=["instr", "class"],
              ordinal=[c for c in TURKIYE_ORDINAL if c != "nb.repeat"])),
    ]
    return rows


def complete_accuracy(dataset, seeds) -> tuple[float, float]:
    accs = []
    for seed in seeds:
        tr, te = stratified_split(dataset.y, 0.2, seed)
        accs.append(metrics.xgb_accuracy(dataset.X[tr], dataset.y[tr], dataset.X[te], dataset.y[te],
                                         CLASSIFIER, seed))
    return float(np.mean(accs)), float(np.std(accs))


def mean_imputation_variants(dataset, seeds, ratio=0.2) -> dict:
    """Mean imputation under MCAR ``ratio``, scored under every metric variant."""
    from baselines.mean import MeanImputer

    schema = dataset.schema
    as_numeric = Schema.all_numeric(schema.n_features)
    ranges_all = dataset.X.max(0) - dataset.X.min(0)
    stds = dataset.X.std(0)
    X_true01 = complete_unit_scale(dataset)
    ordinal_numeric = Schema(kinds=tuple("numeric" if k == "ordinal" else k for k in schema.kinds),
                             n_categories=tuple(0 if k == "ordinal" else n
                                                for k, n in zip(schema.kinds, schema.n_categories)))
    out = {k: [] for k in ("default", "ordinal_as_numeric", "all_rows", "numeric_only", "rmse_over_std",
                           "gain_rmse")}
    for seed in seeds:
        tr, te = stratified_split(dataset.y, 0.2, seed)
        hidden = draw_mask(X_true01, "mcar", ratio, seed, tr)
        X_missing = np.where(hidden, np.nan, dataset.X)
        scaler = Scaler.fit(X_missing[tr], schema)
        imputer = MeanImputer().fit(scaler.transform(X_missing[tr]), schema=schema)
        prepared = {"dataset": dataset, "scaler": scaler, "hidden": hidden}
        imputed = decode(imputer.transform(scaler.transform(X_missing)), prepared, np.arange(dataset.n_rows))
        X_true, h = dataset.X, hidden
        out["default"].append(metrics.armse(X_true[te], imputed[te], h[te], schema, dataset.ranges))
        out["ordinal_as_numeric"].append(metrics.armse(X_true[te], imputed[te], h[te], ordinal_numeric, ranges_all))
        out["all_rows"].append(metrics.armse(X_true, imputed, h, schema, dataset.ranges))
        numeric = schema.is_numeric
        out["numeric_only"].append(  # NaN for datasets without numeric features
            metrics.armse(X_true[te][:, numeric], imputed[te][:, numeric], h[te][:, numeric],
                          Schema.all_numeric(int(numeric.sum())), ranges_all[numeric]) if numeric.any() else np.nan)
        out["rmse_over_std"].append(metrics.armse(X_true[te], imputed[te], h[te], as_numeric, stds))
        out["gain_rmse"].append(metrics.gain_rmse(X_true01[te], unit_scale(imputed, dataset)[te], h[te]))
    return {k: float(np.mean(v)) for k, v in out.items()}


def paper_values() -> pd.DataFrame:
    return pd.read_csv(PAPER)


def paper_value(paper, table, dataset, method) -> float:
    hit = paper[(paper.table == table) & (paper.dataset == dataset) & (paper.method == method)]
    return float(hit.value.iloc[0]) if len(hit) else float("nan")


def fmt(x, digits=3) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "results" / "calibration.md"))
    args = parser.parse_args(argv)
    set_threads(1)
    seeds = list(range(args.seeds))
    paper = paper_values()

    acc_rows = []
    for paper_key, label, dataset_spec in candidates():
        ds = load_dataset(dataset_spec)
        mean_acc, std_acc = complete_accuracy(ds, seeds)
        majority = float(np.bincount(ds.y).max() / ds.y.size)
        target = paper_value(paper, "table4", paper_key, "Complete")
        acc_rows.append({"paper dataset": paper_key, "candidate": label, "rows": ds.n_rows,
                         "classes": len(ds.classes), "majority": majority, "complete": mean_acc,
                         "std": std_acc, "paper": target, "gap": abs(mean_acc - target)})
        print(f"{label:40s} complete {mean_acc:.3f} majority {majority:.3f} paper {target:.3f}", flush=True)
    acc = pd.DataFrame(acc_rows)

    arm_rows = []
    for key, paper_key in [(k, k) for k in DATASETS] + [("chess_kp", "chess")]:
        ds = load_dataset(spec(key))
        variants = mean_imputation_variants(ds, seeds)
        arm_rows.append({"dataset": key, "paper": paper_value(paper, "table1", paper_key, "Mean"), **variants})
        print(f"{key:10s} " + " ".join(f"{k}={v:.3f}" for k, v in variants.items()), flush=True)
    arm = pd.DataFrame(arm_rows)

    Path(args.out).write_text(render(acc, arm, seeds))
    print(f"wrote {args.out}")


def decisions(acc: pd.DataFrame) -> list[str]:
    """Apply the rule to each ambiguous dataset and say which candidate wins."""
    lines = []
    for key in ("heart", "chess", "turkiye"):
        options = acc[(acc["paper dataset"] == key) & ~acc.candidate.str.contains("configured")]
        valid = options[options.complete > options.majority + 0.01]
        best = valid.loc[valid.gap.idxmin()] if len(valid) else None
        if best is None:
            lines.append(f"- **{key}**: no candidate beats its majority-class rate.")
            continue
        lines.append(f"- **{key}** → {best.candidate}: complete accuracy {best.complete:.3f} vs paper "
                     f"{best.paper:.3f} (gap {best.gap:.3f}; majority rate {best.majority:.3f}).")
    return lines


def render(acc: pd.DataFrame, arm: pd.DataFrame, seeds) -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip() or "unknown"
    out = ["# Calibration study", "",
           f"Generated by `python -m scripts.calibrate` (`make calibrate`) at git {sha}; seeds {seeds}; "
           f"XGBoost {CLASSIFIER}; stratified 80/20 split. Paper values from "
           "`results/reference/paper_tables.csv` (Tong, Zhu & Gan, AAAI 2026).", "",
           "## 1. Complete-data accuracy per candidate", "",
           "| paper dataset | candidate | rows | classes | majority rate | complete (ours) | paper Complete | gap |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in acc.itertuples():
        out.append(f"| {r[1]} | {r.candidate} | {r.rows} | {r.classes} | {fmt(r.majority)} | "
                   f"{fmt(r.complete)} ± {fmt(r.std)} | {fmt(r.paper)} | {fmt(r.gap)} |")
    out += ["", "Rule (docs/DESIGN.md, Datasets): the candidate nearest the paper's Complete accuracy wins, provided it "
            "beats the majority-class rate. Applied:", "", *decisions(acc), "",
            "## 2. Mean-imputation ARMSE under metric variants (MCAR 0.2)", "",
            "| dataset | paper Mean | default | ordinal as numeric | all rows | numeric only | RMSE/std | GAIN RMSE |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    variants = ["default", "ordinal_as_numeric", "all_rows", "numeric_only", "rmse_over_std", "gain_rmse"]
    for r in arm.itertuples():
        out.append(f"| {r.dataset} | {fmt(r.paper)} | " + " | ".join(fmt(getattr(r, v)) for v in variants) + " |")
    out += ["", "`chess_kp` is the rejected KR-vs-KP reading of the paper's Chess, shown for comparison and "
            "left out of the fit below.", "",
            "Fit of each variant to the paper's Mean column (over datasets where both exist): "
            "geometric-mean ratio ours/paper and mean |log ratio| (0 = identical).", "",
            "| variant | geo-mean ratio | mean abs log ratio |", "|---|---:|---:|"]
    fits = {}
    for v in variants:
        ok = arm[arm.dataset != "chess_kp"][["paper", v]].dropna()
        logr = np.log(ok[v] / ok.paper)
        fits[v] = float(np.mean(np.abs(logr)))
        out.append(f"| {v} | {np.exp(np.mean(logr)):.3f} | {fits[v]:.3f} |")
    best = min(fits, key=fits.get)
    out += ["", f"Closest variant to the paper's Mean column: **{best}** (mean |log ratio| {fits[best]:.3f}). "
            "The harness keeps the `default` definition (docs/DESIGN.md, Metrics) as its headline ARMSE; fidelity is judged "
            "by method order (Kendall τ) and ratios to Mean, not absolute values.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
