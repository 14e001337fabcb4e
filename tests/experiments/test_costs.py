"""experiments.costs: the cost model's scaling, the store's timings, the plan's numbers, SLURM resources."""
from __future__ import annotations

import io
import math
import re

import pytest

from experiments import costs, report, reproduce
from experiments.costs import CostModel, Shape
from tests.experiments.rows import cell, store_rows

LAST_LINE = re.compile(r"^paper-profile estimate cpu_hours=\d+\.\d tables_figure_hours_2cores=\d+\.\d$")


def unit_costs(**imputers) -> dict:
    """A hand-made calibration: 1 s of overhead per cell, the given imputer entries."""
    return {"format": costs.FORMAT, "overhead": {"cell_fixed": 1.0, "load": {}, "xgb": [0.0, 0.0, 0.0]},
            "imputers": imputers}


class Shapes(CostModel):
    """A cost model whose datasets have the shapes the test gives them."""

    def __init__(self, data, shapes, rows=None):
        super().__init__(data, rows)
        self.shapes = shapes

    def shape(self, dataset, profile):
        return self.shapes[dataset]


GAIN = {"family": "gain", "fixed": 2.0, "per_unit": [1e-3, 0.0], "per_row": [0.0, 0.0]}


def test_iterations_scale_the_variable_cost_of_an_iteration_based_imputer():
    model = Shapes(unit_costs(gain=GAIN), {"x": Shape(1000, 250, 10)})
    params = model.params("gain", "paper")
    once = model.imputer_seconds("gain", "x", "paper", params=params)
    twice = model.imputer_seconds("gain", "x", "paper", params={**params, "iterations": 2 * params["iterations"]})
    assert once == pytest.approx(2.0 + 1e-3 * params["iterations"])
    assert twice - 2.0 == pytest.approx(2 * (once - 2.0))
    # the quick profile's cut (conf/budget/gain_quick.yaml) is what the estimate uses
    quick = model.params("gain", "quick")["iterations"]
    assert model.imputer_seconds("gain", "x", "quick") == pytest.approx(2.0 + 1e-3 * quick)


def test_the_no_meta_network_variants_pay_for_their_grid_search():
    entry = {"family": "metagain", "fixed": 0.0, "per_unit": [1e-3, 0.0], "per_row": [0.0, 0.0]}
    model = Shapes(unit_costs(metagain_none=entry, metagain=entry, metagain_id_tr=entry),
                   {"x": Shape(1000, 250, 10)})
    none = model.params("metagain_none", "paper")
    grid = len(none["weight_grid"])  # metagain_none: only eta is searched
    assert model.imputer_seconds("metagain_none", "x", "paper") == pytest.approx(
        1e-3 * (none["iterations"] + grid * (none["iterations"] // 10)))
    both = model.params("metagain_id_tr", "paper")  # beta, gamma and eta: |grid|^3 points
    assert model.imputer_seconds("metagain_id_tr", "x", "paper") == pytest.approx(
        1e-3 * (both["iterations"] + len(both["weight_grid"]) ** 3 * (both["iterations"] // 10)))
    full = model.params("metagain", "paper")  # the meta network: no grid
    assert model.imputer_seconds("metagain", "x", "paper") == pytest.approx(1e-3 * full["iterations"])


def test_knni_grows_with_the_square_of_the_rows():
    entry = {"family": "knni", "coef": [0.0, 1e-9, 0.0, 0.0]}
    model = Shapes(unit_costs(knni=entry), {"small": Shape(2000, 500, 8), "large": Shape(4000, 1000, 8)})
    small, large = (model.imputer_seconds("knni", k, "paper") for k in ("small", "large"))
    assert large / small == pytest.approx(4.0)


def test_epoch_based_imputers_scale_with_rows_and_remasker_stops_at_max_steps():
    entry = {"family": "midae", "fixed": 0.0, "per_unit": [1e-3, 0.0], "per_row": [0.0, 0.0]}
    remasker = {"family": "remasker", "fixed": 0.0, "per_unit": [1e-2, 0.0, 0.0], "per_row": [0.0, 0.0, 0.0]}
    model = Shapes(unit_costs(midae=entry, remasker=remasker),
                   {"small": Shape(3200, 800, 8), "large": Shape(6400, 1600, 8)})
    assert model.imputer_seconds("midae", "large", "paper") == pytest.approx(
        2 * model.imputer_seconds("midae", "small", "paper"))
    epochs = model.params("remasker", "paper")["epochs"]
    assert model.imputer_seconds("remasker", "small", "paper") == pytest.approx(1e-2 * epochs * 50)
    cap = model.params("remasker", "quick")["max_steps"]  # quick: about max_steps whatever the rows
    for key in ("small", "large"):
        batches = math.ceil(model.shapes[key].n_train / 64)
        assert model.imputer_seconds("remasker", key, "quick") == pytest.approx(
            1e-2 * math.ceil(cap / batches) * batches)


def test_trees_follow_sweeps_rows_and_budget():
    probe = {"fixed": 0.5, "a": 0.01, "b": 1e-5, "d": 8}
    model = Shapes(unit_costs(missfi={"family": "missfi", "datasets": {"yeast": probe}}),
                   {"yeast": Shape(1000, 250, 8)})
    ntree = model.params("missfi", "paper")["ntree"]
    per_sweep = 0.5 + ntree * (0.01 + 1e-5 * 1000)
    assert model.imputer_seconds("missfi", "yeast", "paper") == pytest.approx(costs.MISSFI_SWEEPS["yeast"] * per_sweep)
    # the store's sweep count wins over the measured default
    rows = store_rows([cell("yeast", "missfi", profile="paper", cell_seconds=None, info_n_iter=2)])
    stored = Shapes(model.costs, model.shapes, rows)
    assert stored.imputer_seconds("missfi", "yeast", "paper") == pytest.approx(2 * per_sweep)


def test_the_store_wins_and_is_scaled_to_the_budget():
    model = Shapes(unit_costs(gain=GAIN), {"wine": Shape(142, 36, 13)})
    iterations = model.params("gain", "smoke")["iterations"]
    rows = store_rows([cell("wine", "gain", profile="smoke", cell_seconds=7.0, param_iterations=iterations),
                       cell("wine", "gain", profile="smoke", cell_seconds=9.0, param_iterations=iterations),
                       cell("wine", "gain", profile="smoke", status="failed", cell_seconds=99.0)])
    stored = Shapes(model.costs, model.shapes, rows)
    assert stored.cell_seconds("gain", "wine", "smoke") == (8.0, "store")
    assert model.cell_seconds("gain", "wine", "smoke")[1] == "model"
    # a row made at another budget is scaled by the model's ratio
    other = store_rows([cell("wine", "gain", profile="smoke", cell_seconds=8.0, param_iterations=2 * iterations)])
    scaled, source = Shapes(model.costs, model.shapes, other).cell_seconds("gain", "wine", "smoke")
    now, then = (3.0 + 1e-3 * iterations), (3.0 + 2e-3 * iterations)
    assert source == "store" and scaled == pytest.approx(8.0 * now / then)


def test_an_imputer_without_a_model_is_unknown_not_zero():
    model = Shapes(unit_costs(), {"wine": Shape(142, 36, 13)})
    assert model.cell_seconds("gain", "wine", "paper") == (None, "model")  # not calibrated
    assert math.isnan(costs.estimate_seconds("gain", "wine", "paper", model=model))
    assert model.cell_seconds("mean", "wine", "paper")[0] == pytest.approx(1.0)  # overhead only


def test_schedule_packs_cells_on_workers():
    assert costs.schedule([10, 10, 10], 2) == 20
    assert costs.schedule([1, 1, 30], 8) == 30
    assert costs.schedule([], 2) == 0.0
    assert costs.launcher_workers("joblib", 3) == 3
    assert costs.launcher_workers("slurm", 3) == 64  # conf/hydra/launcher/slurm.yaml array_parallelism
    assert costs.launcher_workers("slurm", 3, ["hydra.launcher.array_parallelism=8"]) == 8


def test_a_new_version_or_argument_of_an_imputer_is_measured_again():
    family, target, key = costs.imputer_key("gain")
    assert family == "gain" and target == "baselines.gain.GAINImputer"
    assert not costs._needs({"key": key}, key, [])
    assert costs._needs({"key": "another"}, key, [])
    assert costs._needs(None, key, [])
    assert costs._needs({"key": key, "datasets": {"wine": {}}}, key, ["wine", "yeast"])  # a probe is missing


def test_without_calibration_the_committed_defaults_cover_every_imputer(tmp_path, monkeypatch):
    monkeypatch.setenv("METAGAIN_COSTS_FILE", str(tmp_path / "none.json"))
    data, source = costs.load_costs(calibrate_missing=False)
    assert source == str(costs.DEFAULT_FILE)
    from experiments.registry import imputer_names

    for name in imputer_names():
        family = costs.imputer_key(name)[0]
        assert family == "unknown" or name in data["imputers"], name
    assert {"cell_fixed", "load", "accuracy", "xgb"} <= set(data["overhead"])


def test_a_tiny_calibration_measures_a_positive_slope():
    data = costs.calibrate(["gain"], {"overhead": {"cell_fixed": 0.1, "load": {}, "xgb": [0, 0, 0]}},
                           datasets=["wine"], stream=io.StringIO())
    entry = data["imputers"]["gain"]
    assert entry["per_unit"][0] > 0 and entry["key"] == costs.imputer_key("gain")[2]
    model = CostModel(data)
    params = model.params("gain", "paper")
    once = model.imputer_seconds("gain", "wine", "paper")
    twice = model.imputer_seconds("gain", "wine", "paper", params={**params, "iterations": 2 * params["iterations"]})
    assert twice > 1.5 * (once - entry["fixed"])


def test_slurm_resources_cover_the_largest_estimate():
    model = costs.CostModel(costs.read_costs(costs.DEFAULT_FILE))
    profile = report.load_profile("paper")
    grid = reproduce.sweep_grid("supplement", profile)
    command = reproduce.sweep_command("supplement", grid, "paper", "slurm", 2, resources=None)
    settings = dict(part.split("=", 1) for part in command if part.startswith("hydra.launcher."))
    assert {"hydra.launcher.timeout_min", "hydra.launcher.mem_gb"} <= set(settings)
    resources = costs.slurm_resources(grid, "paper", model)
    largest = max(model.cell_seconds(i, d, "paper")[0] or 0.0 for i in grid["imputer"] for d in grid["dataset"])
    assert resources["timeout_min"] * 60 >= largest * costs.TIME_MARGIN
    assert resources["timeout_min"] > 240  # the old fixed limit, shorter than a ReMasker connect cell
    heaviest = max(model.memory_mb(i, d, "paper") for i in grid["imputer"] for d in grid["dataset"])
    assert resources["mem_gb"] * 1024 >= heaviest
    # an array task is a whole batched group (15 ReMasker cells of one dataset): its time is covered
    group = len(grid["seed"]) * len(grid["mechanism"])
    job = max(group * (model.cell_seconds("remasker", d, "paper", 0.2, group)[0] or 0.0) for d in grid["dataset"])
    assert job > largest and resources["timeout_min"] * 60 >= job * costs.TIME_MARGIN
    # a user's own limit wins; joblib gets none
    mine = reproduce.sweep_command("supplement", grid, "paper", "slurm", 2, extra=["hydra.launcher.timeout_min=5"],
                                   resources=resources)
    assert [p for p in mine if p.startswith("hydra.launcher.timeout_min=")] == ["hydra.launcher.timeout_min=5"]
    local = reproduce.sweep_command("supplement", grid, "paper", "joblib", 2)
    assert not any(p.startswith(("hydra.launcher.timeout_min", "hydra.launcher.mem_gb")) for p in local)


def test_paper_estimate_line_and_finite_plan_on_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("METAGAIN_COSTS_FILE", str(tmp_path / "none.json"))  # the committed defaults
    monkeypatch.setattr(costs, "_importable", lambda module: False)  # HyperImpute absent, as on a fresh clone
    model = costs.CostModel(costs.read_costs(costs.DEFAULT_FILE))
    line = costs.paper_estimate_line(model=model)
    assert LAST_LINE.match(line), line
    cpu, wall = costs.paper_estimate(model=model)
    assert 50 < cpu < 1000 and 0 < wall < cpu
    table = reproduce.plan(store_rows([]), "paper", report.load_profile("paper"), model=model, n_jobs=2)
    assert (table["unknown"] == 0).all() and table["est_seconds"].gt(0).all()
    assert table["wall_seconds"].map(math.isfinite).all()
    text = reproduce.format_plan(table, 2)
    assert "unknown" not in text and "no cost model" not in text
    assert "supplement" in text and "better on a GPU or a cluster" in text.split("supplement", 1)[1].splitlines()[0]


def test_a_batched_group_costs_each_cell_its_share_of_the_group():
    # t(K) = a + b·K fitted to t(15)/t(1) = 3: a cell of a group of 15 costs 3/15 of a cell alone,
    # one of 5 costs (1 + 2/14 · 4)/5, a group of one costs what it costs alone
    entry = {**GAIN, "fixed": 0.0, "group_ratio": 3.0}
    model = Shapes(unit_costs(gain=entry), {"x": Shape(1000, 250, 10)})
    alone = model.imputer_seconds("gain", "x", "paper")
    assert model.imputer_seconds("gain", "x", "paper", group=15) == pytest.approx(alone * 3 / 15)
    assert model.imputer_seconds("gain", "x", "paper", group=5) == pytest.approx(alone * (1 + 2 / 14 * 4) / 5)
    assert model.imputer_seconds("gain", "x", "paper", group=1) == pytest.approx(alone)
    assert costs.group_factor({"group_ratio": 30.0}, 15) == 1.0  # never dearer than alone
    assert costs.group_factor({}, 15) == 1.0                      # an old calibration: no batching assumed


def test_the_plan_groups_tables_one_to_three_and_figure_two_as_reproduce_launches_them():
    profile = report.load_profile("paper")
    grids = {sweep: reproduce.sweep_grid(sweep, profile) for sweep in ("table1", "table2", "figure2", "table5")}
    sizes = {}
    for name, grid in reproduce.merge_runs(grids):
        cells = reproduce.expand(grid)
        cells["group"] = reproduce.group_sizes(cells)
        sizes[name] = cells.groupby("imputer")["group"].max().to_dict()
    assert sizes["table1+table2"]["metagain"] == 10 and sizes["table1+table2"]["mean"] == 1  # 5 seeds × 2
    assert sizes["figure2"]["gain"] == 40 and sizes["figure2"]["missfi"] == 1                # 5 seeds × 8 ratios
    assert sizes["table5"]["metagain_id_tr"] == 5


# --------------------------------------------------------------------------- the GPU estimate

def test_training_steps_count_sequential_and_summed_steps():
    s = Shape(1000, 250, 10)
    model = Shapes(unit_costs(), {"x": s})
    gain, midae, hivae = (model.params(n, "paper") for n in ("gain", "midae", "hivae"))
    assert costs.training_steps("gain", gain, s) == (10000, 10000)
    assert costs.training_steps("midae", midae, s) == (500 * math.ceil(1000 / 32),) * 2
    assert costs.training_steps("hivae", hivae, s) == (200 * (1000 // 100),) * 2  # last partial batch dropped
    remasker = {**model.params("remasker", "paper"), "max_steps": 100}
    assert costs.training_steps("remasker", remasker, s) == (112, 112)  # 7 epochs of 16 batches: ≥ 100 steps
    # no-MN grid: 4 points over (η) for none, 4³ for ID+TR; 1 000 steps each, side by side as one batch
    none, id_tr = model.params("metagain_none", "paper"), model.params("metagain_id_tr", "paper")
    assert costs.training_steps("metagain", none, s) == (11000, 10000 + 4 * 1000)
    assert costs.training_steps("metagain", id_tr, s) == (11000, 10000 + 64 * 1000)
    assert costs.training_steps("metagain", model.params("metagain", "paper"), s) == (10000, 10000)


def test_gpu_seconds_are_launches_per_step_plus_every_models_flops():
    entry = {**GAIN, "gpu": {"kernels": 100.0, "flops": [2e6, 0.0]}}
    model = Shapes(unit_costs(gain=entry), {"x": Shape(1000, 250, 10)})
    launches = 10000 * 100 * costs.GPU_LAUNCH_S
    work = 10000 * 2e6 / costs.GPU_FLOPS
    assert model.gpu_seconds("gain", "x", "paper") == pytest.approx(launches + work)
    # a group of 15 launches the same kernels once for all: each cell pays 1/15 of them
    assert model.gpu_seconds("gain", "x", "paper", group=15) == pytest.approx(launches / 15 + work)
    assert Shapes(unit_costs(gain=GAIN), {"x": Shape(1000, 250, 10)}).gpu_seconds("gain", "x", "paper") is None
    assert model.gpu_seconds("mean", "x", "paper") is None


def test_count_step_work_counts_kernels_and_matmul_flops():
    import torch

    a, b = torch.ones(3, 4), torch.ones(4, 5)
    kernels, flops = costs.count_step_work(lambda: (a @ b).t().relu())  # mm, relu; the transpose is a view
    assert (kernels, flops) == (2, 2 * 3 * 4 * 5)


def test_a_group_dispatches_one_kernel_stream_and_every_models_flops():
    """GAIN fitted alone and as a group of 3: the kernels per step hardly change, the FLOPs triple."""
    X, y, schema = costs.synthetic(200, 6, ())

    def fit(k, iterations):
        imputers = [costs._build("gain", iterations=iterations, random_state=seed) for seed in range(k)]
        return costs.count_step_work(lambda: type(imputers[0]).fit_group(imputers, [X] * k, [y] * k, [schema] * k))

    per_step = {k: [(b - a) / 20 for a, b in zip(fit(k, 10), fit(k, 30))] for k in (1, 3)}
    assert per_step[3][0] == pytest.approx(per_step[1][0], rel=0.05)
    assert per_step[3][1] == pytest.approx(3 * per_step[1][1])


def test_the_gpu_estimate_line_names_its_assumptions(tmp_path, monkeypatch):
    monkeypatch.setenv("METAGAIN_COSTS_FILE", str(tmp_path / "none.json"))
    model = costs.CostModel(costs.read_costs(costs.DEFAULT_FILE))
    hours = costs.gpu_estimate(model)
    assert set(hours) == set(costs.STEPWISE) and all(h > 0 for h in hours.values())
    line = costs.gpu_estimate_line(model)
    assert re.match(r"^paper-profile gpu estimate deep_model_hours=\d+\.\d\d \(remasker ", line), line
    assert "not measured: 8 µs per kernel, 20 TFLOP/s" in line
