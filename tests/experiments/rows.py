"""Hand-built result rows for the table, figure and report tests (the store's flat row format)."""
from __future__ import annotations

import pandas as pd


def cell(dataset: str, imputer: str, seed: int = 0, *, mechanism: str = "mcar", ratio: float = 0.2,
         profile: str = "quick", status: str = "ok", error: str | None = None, **values) -> dict:
    """One result row as ``experiments.store.load_rows`` gives it (unset metrics are absent → NaN)."""
    return {"dataset": dataset, "mechanism": mechanism, "ratio": ratio, "imputer": imputer,
            "seed": seed, "profile": profile, "status": status, "error": error,
            "cell_key": f"{profile}-{dataset}-{mechanism}-{ratio}-{imputer}-{seed}", **values}


def store_rows(cells: list[dict]) -> pd.DataFrame:
    return pd.DataFrame.from_records(cells)
