"""experiments.stats: ranks, Friedman/Nemenyi, Kendall tau, Wilcoxon, Holm on known cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import stats

DATASETS = [f"d{i}" for i in range(11)]


def _scores(n_methods: int = 4, seed: int = 0) -> pd.DataFrame:
    """ARMSE-like matrix where method m0 is best on every dataset, then m1, ... (plus noise)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.4, size=(len(DATASETS), 1))
    values = base + 0.05 * np.arange(n_methods) + rng.uniform(0, 0.01, size=(len(DATASETS), n_methods))
    return pd.DataFrame(values, index=DATASETS, columns=[f"m{i}" for i in range(n_methods)])


@pytest.mark.parametrize("k, q", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850),
                                  (7, 2.949), (8, 3.031), (9, 3.102), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table(k, q):
    assert stats.nemenyi_q(k) == pytest.approx(q, abs=1e-3)


def test_nemenyi_cd_formula():
    assert stats.nemenyi_cd(10, 11) == pytest.approx(3.164 * np.sqrt(10 * 11 / (6 * 11)), abs=2e-3)
    with pytest.raises(ValueError, match="at least 2 methods"):
        stats.nemenyi_q(1)


def test_rank_rows_direction_and_ties():
    scores = pd.DataFrame({"a": [0.1, 0.9], "b": [0.2, 0.9], "c": [0.3, 0.1]})
    assert stats.rank_rows(scores, higher_is_better=False).iloc[0].tolist() == [1, 2, 3]
    assert stats.rank_rows(scores, higher_is_better=True).iloc[0].tolist() == [3, 2, 1]
    assert stats.rank_rows(scores, higher_is_better=True).iloc[1].tolist() == [1.5, 1.5, 3]


def test_friedman_on_a_consistent_order():
    result = stats.friedman(_scores(), higher_is_better=False)
    assert result.n_datasets == 11 and result.n_methods == 4
    assert result.average_ranks.to_dict() == {"m0": 1.0, "m1": 2.0, "m2": 3.0, "m3": 4.0}
    assert result.pvalue < 1e-5
    assert result.critical_difference == pytest.approx(stats.nemenyi_cd(4, 11))


def test_friedman_uses_complete_datasets_and_drops_unmeasured_methods():
    scores = _scores()
    scores.loc["d0", "m2"] = np.nan
    scores["never"] = np.nan
    result = stats.friedman(scores, higher_is_better=False)
    assert (result.n_datasets, result.n_methods) == (10, 4)


def test_friedman_undefined_with_two_methods_still_ranks():
    result = stats.friedman(_scores(2), higher_is_better=False)
    assert np.isnan(result.pvalue)
    assert result.average_ranks["m0"] == 1.0


def test_cd_cliques_are_maximal_groups_within_cd():
    ranks = pd.Series({"a": 1.0, "b": 1.5, "c": 3.0, "d": 3.2, "e": 6.0})
    assert stats.cd_cliques(ranks, 1.0) == [["a", "b"], ["c", "d"]]
    assert stats.cd_cliques(ranks, 2.1) == [["a", "b", "c"], ["b", "c", "d"]]  # overlapping
    assert stats.cd_cliques(ranks, 2.3) == [["a", "b", "c", "d"]]  # [b, c, d] is inside it
    assert stats.cd_cliques(ranks, 0.1) == []


def test_kendall_tau_same_and_reversed_order():
    paper = pd.Series({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4})
    assert stats.kendall_tau(paper, paper * 0.5)[0] == pytest.approx(1.0)
    assert stats.kendall_tau(paper, -paper)[0] == pytest.approx(-1.0)
    tau, _, n = stats.kendall_tau(paper, pd.Series({"a": 1.0, "b": 2.0, "x": 0.0}))
    assert (tau, n) == (pytest.approx(1.0), 2)
    assert np.isnan(stats.kendall_tau(paper, pd.Series({"a": 1.0}))[0])


def test_wilcoxon_method_that_wins_everywhere_is_significant():
    scores = _scores()
    table = stats.wilcoxon_against(scores, "m0", higher_is_better=False).set_index("method")
    assert table.loc["m1", ["n", "wins", "ties", "losses"]].tolist() == [11, 11, 0, 0]
    assert table.loc["m1", "p"] == pytest.approx(2 / 2 ** 11)  # exact two-sided, all signs agree
    assert (table["p_holm"] < 0.01).all()
    assert (table["advantage"] > 0).all()


def test_wilcoxon_direction_and_losses():
    scores = _scores()
    losing = stats.wilcoxon_against(scores, "m3", higher_is_better=False).set_index("method")
    assert (losing["losses"] == 11).all() and (losing["advantage"] < 0).all()
    # As accuracy (higher is better), the same numbers make m3 the winner.
    winning = stats.wilcoxon_against(scores, "m3", higher_is_better=True).set_index("method")
    assert (winning["wins"] == 11).all()


def test_wilcoxon_pairs_only_measured_datasets_and_ties():
    scores = pd.DataFrame({"t": [0.1, 0.2, 0.3], "same": [0.1, 0.2, 0.3], "gap": [np.nan, 0.5, 0.6]})
    table = stats.wilcoxon_against(scores, "t", higher_is_better=False).set_index("method")
    assert table.loc["same", "p"] == 1.0 and table.loc["same", "ties"] == 3
    assert table.loc["gap", "n"] == 2
    with pytest.raises(ValueError, match="not a column"):
        stats.wilcoxon_against(scores, "missing", higher_is_better=False)


def test_holm_adjustment():
    adjusted = stats.holm(pd.Series({"a": 0.01, "b": 0.04, "c": 0.03, "d": np.nan}))
    assert adjusted[["a", "b", "c"]].tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(adjusted["d"])


def test_ratio_to_and_geometric_mean():
    scores = pd.DataFrame({"Mean": [0.2, 0.4], "X": [0.1, 0.4]})
    assert stats.ratio_to(scores, "Mean")["X"].tolist() == [0.5, 1.0]
    assert stats.geometric_mean(pd.Series([0.5, 2.0, np.nan])) == pytest.approx(1.0)
    assert np.isnan(stats.geometric_mean(pd.Series([np.nan])))


@pytest.mark.parametrize("n", [5, 11, 14, 30])
def test_signed_rank_test_matches_scipy_without_ties(n):
    from scipy import stats as sps

    differences = np.random.default_rng(n).normal(0.3, 1.0, size=n)
    expected = sps.wilcoxon(differences, method="exact" if n <= 16 else "approx")
    assert stats.signed_rank_test(differences) == pytest.approx((expected.statistic, expected.pvalue))


def test_signed_rank_test_exact_with_ties_and_zeros():
    # |d| = 1, 1, 2 -> ranks 1.5, 1.5, 3; T+ = 6; of the 8 sign patterns only 0 and 6 are as extreme.
    assert stats.signed_rank_test([1.0, 1.0, 2.0, 0.0]) == (0.0, 0.25)
    assert stats.signed_rank_test([0.0, 0.0]) == (0.0, 1.0)


def test_rank_biserial_matches_its_closed_form():
    assert stats.rank_biserial([1, 2, 3]) == 1.0 and stats.rank_biserial([-1, -2]) == -1.0
    # ranks of |d| = 1, 2, 3, 4: positive side 1 + 4 = 5, negative 2 + 3 = 5 → 0; zeros are dropped
    assert stats.rank_biserial([0.1, -0.2, -0.3, 0.4, 0.0]) == 0.0
    assert stats.rank_biserial([0.5, 0.5, -0.1]) == pytest.approx((2.5 + 2.5 - 1) / 6)
    assert np.isnan(stats.rank_biserial([0.0, 0.0]))
