"""Statistics for comparing imputers across datasets: pure functions on plain tables.

A *score matrix* is a DataFrame with one row per dataset and one column per method (NaN where
a cell was not measured). ``higher_is_better`` says which way the metric points: False for
ARMSE, True for accuracy. Ranks are 1 = best, ties share the average rank (Demšar 2006,
"Statistical comparisons of classifiers over multiple data sets", JMLR 7, which is also the
source of the Friedman/Nemenyi procedure and the critical-difference diagram).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps


def rank_rows(scores: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """Rank the methods within each dataset (1 = best; ties averaged; NaN stays NaN)."""
    return scores.rank(axis=1, ascending=not higher_is_better, method="average")


def complete_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """The datasets on which every method was measured (the Friedman test needs full blocks)."""
    return scores.dropna(axis=0, how="any")


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over the complete datasets, with the Nemenyi critical difference."""

    statistic: float
    pvalue: float
    n_datasets: int
    n_methods: int
    average_ranks: pd.Series  # method -> mean rank, best first
    critical_difference: float  # Nemenyi CD at ``alpha``
    alpha: float


def nemenyi_q(n_methods: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test: the studentized range quantile over sqrt(2).

    Gives Demšar's (2006) Table 5a values (k = 10: 3.164 at alpha = 0.05).
    """
    if n_methods < 2:
        raise ValueError(f"The Nemenyi test compares at least 2 methods; got {n_methods}.")
    return float(sps.studentized_range.ppf(1 - alpha, n_methods, np.inf) / np.sqrt(2))


def nemenyi_cd(n_methods: int, n_datasets: int, alpha: float = 0.05) -> float:
    """Critical difference of average ranks: q_alpha * sqrt(k (k + 1) / (6 N))."""
    if n_datasets < 1:
        raise ValueError("The critical difference needs at least one dataset.")
    return nemenyi_q(n_methods, alpha) * float(np.sqrt(n_methods * (n_methods + 1) / (6.0 * n_datasets)))


def friedman(scores: pd.DataFrame, higher_is_better: bool, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test of "all methods perform alike" over the datasets where all were measured.

    Methods never measured are dropped first; then datasets with any missing method. With fewer
    than 3 methods or 2 datasets the statistic and p-value are NaN (the test is undefined), but
    the average ranks are still given.
    """
    scores = scores.dropna(axis=1, how="all")
    full = complete_rows(scores)
    n, k = full.shape
    ranks = rank_rows(full, higher_is_better).mean(axis=0).sort_values(kind="stable")
    statistic = pvalue = float("nan")
    if k >= 3 and n >= 2:
        result = sps.friedmanchisquare(*(full[c].to_numpy() for c in full.columns))
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    cd = nemenyi_cd(k, n, alpha) if k >= 2 and n >= 1 else float("nan")
    return FriedmanResult(statistic, pvalue, n, k, ranks, cd, alpha)


def cd_cliques(average_ranks: pd.Series, cd: float) -> list[list[str]]:
    """Groups of methods whose average ranks lie within ``cd`` of each other (maximal, size ≥ 2).

    These are the bars of a critical-difference diagram: methods joined by one bar are not
    significantly different by the Nemenyi test.
    """
    ordered = average_ranks.sort_values(kind="stable")
    names, values = list(ordered.index), ordered.to_numpy()
    groups: list[list[str]] = []
    last_end = -1
    for start in range(len(values)):
        end = start
        while end + 1 < len(values) and values[end + 1] - values[start] <= cd:
            end += 1
        # A group ending where the previous one ended is contained in it.
        if end > start and end > last_end:
            groups.append(names[start:end + 1])
            last_end = end
    return groups


def kendall_tau(reference: pd.Series, ours: pd.Series) -> tuple[float, float, int]:
    """Kendall's tau-b between two scorings of the same methods (on the methods both measured).

    Returns (tau, p-value, number of methods compared); NaN when fewer than 2 methods are
    shared or one side is constant. Both scorings use the same metric, so tau = 1 means the
    same order of methods.
    """
    both = pd.concat([reference, ours], axis=1, join="inner").dropna()
    if len(both) < 2:
        return float("nan"), float("nan"), len(both)
    a, b = both.iloc[:, 0].to_numpy(dtype=float), both.iloc[:, 1].to_numpy(dtype=float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan"), len(both)
    result = sps.kendalltau(a, b)
    return float(result.statistic), float(result.pvalue), len(both)


def holm(pvalues: pd.Series) -> pd.Series:
    """Holm–Bonferroni adjusted p-values (NaN entries are left out and stay NaN)."""
    valid = pvalues.dropna().sort_values(kind="stable")
    m = len(valid)
    adjusted = pd.Series(np.nan, index=pvalues.index, dtype=float)
    running = 0.0
    for i, (name, p) in enumerate(valid.items()):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[name] = running
    return adjusted


EXACT_MAX_N = 16  # 2**16 sign patterns: exact null distribution up to here, normal beyond


def signed_rank_test(differences: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of "the differences are symmetric around 0".

    Zero differences are dropped (Wilcoxon's convention); tied magnitudes get average ranks.
    Up to ``EXACT_MAX_N`` non-zero differences the p-value is exact, from every sign pattern of
    the ranks (which stays exact with ties, where scipy switches to a slow permutation test);
    beyond, the normal approximation with the tie-corrected variance. Returns (min(T+, T-), p).
    """
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return 0.0, 1.0
    ranks = sps.rankdata(np.abs(d))
    t_plus = float(ranks[d > 0].sum())
    centre = float(ranks.sum()) / 2
    statistic = min(t_plus, 2 * centre - t_plus)
    if n <= EXACT_MAX_N:
        patterns = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1  # (2**n, n) sign choices
        null = patterns @ ranks
        extreme = np.abs(null - centre) >= abs(t_plus - centre) - 1e-9
        return statistic, float(extreme.mean())
    z = (t_plus - centre) / np.sqrt((ranks ** 2).sum() / 4)
    return statistic, float(2 * sps.norm.sf(abs(z)))


def wilcoxon_against(scores: pd.DataFrame, target: str, higher_is_better: bool) -> pd.DataFrame:
    """Paired two-sided Wilcoxon signed-rank test of ``target`` against every other method.

    Pairs are the datasets on which both were measured. ``advantage`` is the mean over those
    datasets of how much better ``target`` is (positive = target better, in the metric's units);
    wins / ties / losses count datasets. ``p_holm`` adjusts for the number of comparisons.
    """
    if target not in scores.columns:
        raise ValueError(f"Method {target!r} is not a column of the score matrix; "
                         f"it has {list(scores.columns)}.")
    sign = 1.0 if higher_is_better else -1.0
    records = []
    for other in scores.columns:
        if other == target:
            continue
        pair = scores[[target, other]].dropna()
        advantage = sign * (pair[target] - pair[other])
        n = len(pair)
        statistic = pvalue = float("nan")
        if n >= 1:
            statistic, pvalue = signed_rank_test(advantage.to_numpy())
        records.append({
            "method": other,
            "n": n,
            "wins": int((advantage > 0).sum()),
            "ties": int((advantage == 0).sum()),
            "losses": int((advantage < 0).sum()),
            "advantage": float(advantage.mean()) if n else float("nan"),
            "median_advantage": float(advantage.median()) if n else float("nan"),
            "effect": rank_biserial(advantage.to_numpy()),
            "statistic": statistic,
            "p": pvalue,
        })
    table = pd.DataFrame.from_records(
        records, columns=["method", "n", "wins", "ties", "losses", "advantage", "median_advantage", "effect",
                          "statistic", "p"])
    table["p_holm"] = holm(table["p"]).to_numpy() if len(table) else []
    return table


def rank_biserial(differences) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (Kerby 2014, "The simple
    difference formula", Comprehensive Psychology 3:11.IT.3.1): the share of the rank sum of the
    non-zero |differences| on the positive side minus the share on the negative side, in [−1, 1]
    (1: every pair favours the first method). The effect size that goes with the signed-rank test."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d) & (d != 0)]
    if d.size == 0:
        return float("nan")
    ranks = pd.Series(np.abs(d)).rank(method="average").to_numpy()
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def ratio_to(scores: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Each method's score divided by ``reference``'s on the same dataset (e.g. ARMSE / Mean's)."""
    if reference not in scores.columns:
        raise ValueError(f"Reference method {reference!r} is not a column of the score matrix.")
    return scores.div(scores[reference], axis=0)


def geometric_mean(values: pd.Series) -> float:
    """Geometric mean of the finite positive values (the right average of ratios); NaN if none."""
    finite = values[np.isfinite(values) & (values > 0)]
    return float(np.exp(np.log(finite).mean())) if len(finite) else float("nan")
