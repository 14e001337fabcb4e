"""Seconds per training iteration of every Meta-GAIN variant and of GAIN (``make bench``).

    python -m scripts.bench_step                       # CPU, and CUDA when present
    python -m scripts.bench_step --iterations 400 --devices cpu

Data: a self-made 2 000 × 16 table (3 latent factors through a random linear map and a
sigmoid, 5 classes from the factors, 20% MCAR holes), so the numbers need no download. Each
imputer is built at its paper settings (``conf/imputer/<key>.yaml``) with the grid search off; the
time per iteration is (fit time at ``--iterations`` − fit time at ``--warmup``) / the difference,
so scaling, meta-set carving and network construction do not count. The last column is each
time over ``metagain_id_tr`` (the same networks without the meta step); DESIGN asks full
Meta-GAIN to stay within 3× of it. Since version 2 the meta-network variants take their real
step from ŵ (Algorithm 1 line 19), a second generator pass per iteration the others do not have.

Then the time of one Meta-GAIN ``transform`` of the whole table: the mean of ``impute_draws``
(50) decoded draws, against the point decoding Z = μ (``impute_draws=0``); best of 3.

Batched training (issue 12): for each model with a model axis, the time per training step of
K = 15 fits trained as one computation (``fit_group``, 15 seeds and 15 masks) over the time of one
fit, each measured as (fit at a budget − fit at a smaller budget) so set-up does not count.
Iteration-based models (GAIN, Meta-GAIN) use the 2 000-row table, epoch-based ones its first
1 000 rows. Printed as ``batched <model> K=15 ratio=<time K / time one>`` lines for scripts.
Then, per model, the matrix-product FLOPs of one fit per unit (torch's flop counter), the rates one
fit and K = 15 run them at, and the *ratio floor*: K = 15's FLOPs at this CPU's one-thread matmul
peak over one fit's measured time. No batching goes under it without removing arithmetic. A ratio
far above its floor, with the K = 15 rate not much above one fit's, says the step is held by small
matrix products and element-wise work that scale with K, not by per-step overhead a group shares.
Last, the cost model's paper-profile estimate line (as ``make plan``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from experiments.registry import build_imputer

NAMES = ["metagain", "metagain_none", "metagain_id", "metagain_mn", "metagain_tr", "metagain_id_mn",
         "metagain_id_tr", "metagain_mn_tr", "gain"]


def make_data(rows: int = 2000, features: int = 16, ratio: float = 0.2, seed: int = 0):
    """(X with NaN holes in [0, 1], y in 0..4): a smooth low-rank table an imputer can learn.

    The table is the same for every ``seed``; the holes are drawn from ``seed``.
    """
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(rows, 3))
    signal = factors @ rng.normal(size=(3, features)) + 0.3 * rng.normal(size=(rows, features))
    X = 1 / (1 + np.exp(-signal))
    y = np.digitize(factors[:, 0] + 0.5 * factors[:, 1], [-1.0, -0.3, 0.3, 1.0])
    X[np.random.default_rng(seed).random(X.shape) < ratio] = np.nan
    return X, y


def fit_seconds(name: str, X, y, iterations: int, device: str) -> float:
    overrides = {} if name == "gain" else {"weight_grid": None}
    imputer = build_imputer(name, profile="paper", random_state=0, device=device, iterations=iterations,
                            **overrides)
    start = time.perf_counter()
    imputer.fit(X, y)
    return time.perf_counter() - start


def transform_seconds(X, y, device: str, draws: int) -> float:
    """Best of 3 times of one ``transform`` of ``X`` by a (briefly) fitted Meta-GAIN."""
    imputer = build_imputer("metagain", profile="paper", random_state=0, device=device, iterations=2,
                            impute_draws=draws).fit(X, y)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        imputer.transform(X)
        times.append(time.perf_counter() - start)
    return min(times)


def bench(device: str, X, y, iterations: int, warmup: int) -> dict[str, float]:
    fit_seconds("metagain", X, y, 2, device)  # first-call costs (kernels, allocator) outside the timing
    return {name: (fit_seconds(name, X, y, iterations, device) - fit_seconds(name, X, y, warmup, device))
            / (iterations - warmup) for name in NAMES}


# model: (budget parameter, small budget, large budget, rows): one step of each kind several dozen times
BATCHED = {"gain": ("iterations", 100, 1000, 2000), "metagain": ("iterations", 10, 60, 2000),
           "midae": ("epochs", 1, 3, 1000), "vaei": ("epochs", 4, 20, 1000),
           "hivae": ("epochs", 2, 8, 1000), "remasker": ("epochs", 1, 3, 1000)}
EXTRA = {"remasker": {"warmup_epochs": 0}}  # its 40 warm-up epochs need more than the budgets above
GROUP = 15


def group_seconds(name: str, k: int, budget: int, rows: int, device: str) -> float:
    """Seconds of one ``fit_group`` of ``k`` fits (seeds 0..k−1, each its own mask) at ``budget``."""
    key, _, _, _ = BATCHED[name]
    data = [make_data(rows, 16, seed=seed) for seed in range(k)]
    imputers = [build_imputer(name, profile="paper", random_state=seed, device=device, **{key: budget},
                              **EXTRA.get(name, {}))
                for seed in range(k)]
    start = time.perf_counter()
    errors = type(imputers[0]).fit_group(imputers, [X for X, _ in data], [y for _, y in data])
    seconds = time.perf_counter() - start
    if any(error is not None for error in errors):
        raise next(error for error in errors if error is not None)
    return seconds


def batched_times(name: str, device: str) -> tuple[float, float]:
    """Seconds per budget unit (iteration or epoch) of one fit and of K = ``GROUP`` fits in one computation."""
    _, small, large, rows = BATCHED[name]
    group_seconds(name, GROUP, small, rows, device)  # first-call costs (imports, kernels) outside the timing
    one, group = [(group_seconds(name, k, large, rows, device) - group_seconds(name, k, small, rows, device))
                  / (large - small) for k in (1, GROUP)]
    return one, group


def unit_flops(name: str, device: str) -> float:
    """Matrix-product FLOPs per budget unit of one fit (torch's flop counter; a group does K times these)."""
    from experiments.costs import count_step_work

    _, small, large, rows = BATCHED[name]
    counted = [count_step_work(lambda b=b: group_seconds(name, 1, b, rows, device))[1] for b in (small, large)]
    return (counted[1] - counted[0]) / (large - small)


def matmul_peak(size: int = 1024, repeats: int = 5) -> float:
    """CPU FLOP/s of the best of ``repeats`` ``size``² matrix products: what the BLAS can reach."""
    a, b = torch.rand(size, size), torch.rand(size, size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="iterations of the timed fit")
    parser.add_argument("--warmup", type=int, default=20, help="iterations of the fit subtracted as setup")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when present")
    args = parser.parse_args(argv)
    if args.iterations <= args.warmup:
        parser.error("--iterations must be larger than --warmup.")
    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    X, y = make_data(args.rows, args.features)
    print(f"data {args.rows} × {args.features}, 20% MCAR; {args.iterations} − {args.warmup} timed iterations; "
          f"torch {torch.__version__}, {args.threads} CPU thread(s)")
    for device in devices:
        label = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
        seconds = bench(device, X, y, args.iterations, args.warmup)
        base = seconds["metagain_id_tr"]
        print(f"\n{label}\n{'imputer':<16}{'ms / iteration':>16}{'× id_tr':>10}")
        for name in NAMES:
            print(f"{name:<16}{1e3 * seconds[name]:>16.2f}{seconds[name] / base:>10.2f}")
        print(f"full Meta-GAIN / metagain_id_tr = {seconds['metagain'] / base:.2f} (target ≤ 3)")
        draws = build_imputer("metagain").impute_draws
        sampled, point = (transform_seconds(X, y, device, k) for k in (draws, 0))
        print(f"transform of {args.rows} × {args.features}: {1e3 * sampled:.1f} ms ({draws} draws), "
              f"{1e3 * point:.1f} ms (Z = μ)")
    print()
    peak = matmul_peak()
    floors = {}
    for name in BATCHED:
        one, group = batched_times(name, "cpu")
        flops = unit_flops(name, "cpu")
        # K fits do K times one fit's matrix products; even at the BLAS peak they take this long
        floors[name] = (flops, one, group, max(1.0, GROUP * flops / peak / one))
        print(f"batched {name} K={GROUP} ratio={group / one:.2f}", flush=True)
    print(f"\nmatrix products per budget unit of one fit, the rate one fit and K={GROUP} run them at, and the "
          f"ratio floor: K={GROUP}'s products at this CPU's one-thread matmul peak ({peak / 1e9:.0f} GFLOP/s, "
          f"a 1024² product) over one fit's time")
    print(f"{'model':<10}{'GFLOP/unit':>12}{'one GFLOP/s':>13}{f'K={GROUP} GFLOP/s':>14}{'ratio floor':>13}")
    for name, (flops, one, group, floor) in floors.items():
        print(f"{name:<10}{flops / 1e9:>12.3f}{flops / one / 1e9:>13.1f}{GROUP * flops / group / 1e9:>14.1f}"
              f"{floor:>13.2f}")
    from experiments.costs import paper_estimate_line  # the cost model of `make plan` (calibrates if needed)

    print("\n" + paper_estimate_line())


if __name__ == "__main__":
    main()
