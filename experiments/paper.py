"""The paper's layout, read from ``conf/``: which sweeps, tables and figures exist and what each shows.

Everything the reporting layer knows about the paper's design lives in the yaml files and comes
through :func:`load`, the one loader:

- ``conf/sweep/<name>.yaml``: the sweep's grid (``hydra.sweeper.params``) and, under ``sweep:``,
  how it is shown: its order in ``make reproduce``, which profile lists replace its datasets and
  ratios, whether extra imputers join it, and the tables it feeds (caption, metric, columns
  before/after the grid's methods, layout, whether the paper has numbers for it, the baseline of
  the "ratio to" section);
- ``conf/profile/paper.yaml``: the paper's datasets, in the order of its tables;
- ``conf/dataset/<key>.yaml`` and ``conf/imputer/<key>.yaml``: each one's display ``label``
  (presentation only: never a constructor argument, never part of a cell key) and, for the
  ablation variants, which components are on (``use_kl``, ``use_meta``, ``use_task``).

Adding a table is one yaml: a sweep file with a ``sweep.show`` entry. The methods a table
compares are its sweep's imputer list, in order; imputers in no sweep (a user's own, ``mice``)
are *extras*, shown after them where the sweep says ``extras: true``, with no paper value and no
part in the paper-claim verdicts.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
PROPOSED = "metagain"                      # the method this harness reproduces
COMPONENTS = ("ID", "MN", "TR")            # Table 5's components, in the paper's order
COMPONENT_KEYS = ("use_kl", "use_meta", "use_task")  # their switches in an imputer yaml
STORE_METRIC = {"ARMSE": "metric_armse_test", "accuracy": "metric_accuracy"}
#: Reference columns that need no imputer: a per-(dataset, seed) score every row carries.
REFERENCE_COLUMNS = {
    "complete": ("Complete", "metric_accuracy_complete"),
    "xgb_native": ("XGBoost on holes", "metric_accuracy_native"),
    "mean_indicator": ("Mean + indicators", "metric_accuracy_indicator"),
}


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``paper_label`` is its name in the paper's CSV (None: the paper has no value for it);
    ``compete`` is False for reference columns that are never marked best; ``row_metric`` names
    the row score a reference column reads instead of an imputer's cells; ``extra`` marks an
    imputer that is not one of the paper's (shown after them, left out of the claims).
    """

    key: str
    label: str
    paper_label: str | None
    compete: bool = True
    flags: tuple[bool, bool, bool] | None = None  # ablation components (ID, MN, TR)
    row_metric: str | None = None
    extra: bool = False


@dataclass(frozen=True)
class TableSpec:
    """Which cells a table shows and how: metric, mechanism, ratio and the columns compared."""

    name: str
    caption: str
    paper_metric: str  # "ARMSE" | "accuracy" (the paper CSV's metric)
    mechanism: str
    ratio: float
    columns: tuple[Column, ...]
    variants_as_rows: bool = False  # Table 5: methods down the side, datasets across
    paper: bool = True               # the paper has numbers for it (claims read them)
    baseline: str | None = "mean"    # the column the "ratio to" section divides by
    extras: bool = False             # extra imputers join it

    @property
    def title(self) -> str:
        """'Table 1', or 'Supplement (MAR)' for a table named supplement_mar."""
        if self.name.startswith("table"):
            return f"Table {self.name[len('table'):]}"
        head, _, tail = self.name.partition("_")
        return f"{head.capitalize()} ({tail.upper()})" if tail else head.capitalize()

    @property
    def metric(self) -> str:
        return STORE_METRIC[self.paper_metric]

    @property
    def higher_is_better(self) -> bool:
        return self.paper_metric == "accuracy"

    @property
    def imputers(self) -> list[str]:
        return [c.key for c in self.columns if c.row_metric is None]

    @property
    def target(self) -> str:
        """Label of the proposed method's column (all-on Meta-GAIN)."""
        return next(c.label for c in self.columns if c.key == PROPOSED)

    @property
    def baseline_label(self) -> str | None:
        return next((c.label for c in self.columns if c.key == self.baseline), None)

    def with_extras(self, extras: dict[str, str]) -> "TableSpec":
        """The same table with ``extras`` (key → label) appended when it takes extras."""
        if not self.extras:
            return self
        known = {c.key for c in self.columns}
        added = tuple(Column(key, label, None, extra=True) for key, label in extras.items() if key not in known)
        return replace(self, columns=self.columns + added)


@dataclass(frozen=True)
class Sweep:
    """One ``conf/sweep`` file: its grid and how ``reproduce`` fills it from a profile."""

    name: str
    order: int
    grid: dict = field(hash=False)  # axis -> list of strings, as the yaml writes them
    datasets_from: str = "datasets"
    ratios_from: str | None = None
    extras: bool = False
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    sweeps: dict = field(hash=False)           # name -> Sweep, in reproduce's order
    tables: dict = field(hash=False)           # name -> TableSpec, in report order
    datasets: tuple[str, ...] = ()             # the paper's datasets, in its order
    dataset_labels: dict = field(default_factory=dict, hash=False)
    imputer_labels: dict = field(default_factory=dict, hash=False)
    methods: dict = field(default_factory=dict, hash=False)    # the paper's compared methods: key -> label
    ablations: dict = field(default_factory=dict, hash=False)  # Table 5's variants: key -> flags
    figure2_methods: tuple[str, ...] = ()

    @property
    def paper_tables(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.tables.items() if spec.paper)

    @property
    def swept_imputers(self) -> set[str]:
        return {i for sweep in self.sweeps.values() for i in sweep.grid.get("imputer", [])}


def ablation_label(flags) -> str:
    """'ID+MN' style name of an ablation variant ('none' when every component is off)."""
    on = [name for name, flag in zip(COMPONENTS, flags) if flag]
    return "+".join(on) if on else "none"


def _yaml(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path)) if path.exists() else {}


def _imputer_node(name: str) -> dict:
    """An imputer yaml composed as Hydra composes it (labels and component switches only)."""
    from experiments.registry import load_group_node

    node = load_group_node("imputer", name)
    return {} if node is None else OmegaConf.to_container(node)


def _grid(params: dict) -> dict:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    grid = {}
    for key, value in params.items():
        override = parser.parse_override(f"{key}={value}")
        grid[key] = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                     else [override.get_value_element_as_str()])
    return grid


def _column(key: str, labels: dict, flags=None, *, template: str | None = None, compete: bool = True,
            has_paper: bool = True) -> Column:
    if key in REFERENCE_COLUMNS:
        label, metric = REFERENCE_COLUMNS[key]
        return Column(key, label, label if has_paper else None, compete=False, row_metric=metric)
    if flags is not None:
        label = ablation_label(flags)
        return Column(key, label, template.format(variant=label) if (template and has_paper) else None,
                      compete=compete, flags=flags)
    label = labels.get(key, key)
    return Column(key, label, label if has_paper else None, compete=compete)


def _table(name: str, show: dict, grid: dict, labels: dict, flags: dict) -> TableSpec:
    mechanisms, ratios = grid["mechanism"], grid["ratio"]
    mechanism = str(show.get("mechanism") or (mechanisms[0] if len(mechanisms) == 1 else None))
    ratio = float(show.get("ratio") or (ratios[0] if len(ratios) == 1 else 0.2))
    is_paper_table = bool(show.get("paper", True))
    paper_columns = show.get("paper_columns")  # default: every column of a paper table

    def has_paper(key: str) -> bool:
        return key in paper_columns if paper_columns is not None else is_paper_table

    rows_are_variants = show.get("layout", "columns") == "variants_as_rows"
    before = [_column(k, labels, has_paper=has_paper(k)) for k in show.get("before") or []]
    methods = [_column(k, labels, flags.get(k) if rows_are_variants else None, template=show.get("paper_label"),
                       has_paper=has_paper(k)) for k in grid["imputer"]]
    after = [_column(k, labels, compete=False, has_paper=has_paper(k)) for k in show.get("after") or []]
    if show.get("after_note"):
        after = [replace(c, label=f"{c.label} ({show['after_note']})") if c.row_metric is None else c
                 for c in after]
    baseline = show.get("baseline", "mean")
    return TableSpec(name=name, caption=str(show["caption"]), paper_metric=str(show.get("metric", "ARMSE")),
                     mechanism=mechanism, ratio=ratio, columns=tuple(before + methods + after),
                     variants_as_rows=rows_are_variants, paper=is_paper_table,
                     baseline=None if baseline in (None, "none") else str(baseline),
                     extras=bool(show.get("extras", False)))


@lru_cache(maxsize=4)
def load(conf_dir: Path = CONF_DIR) -> Layout:
    """The paper's layout from ``conf_dir`` (cached; the files do not change while a report is built)."""
    conf_dir = Path(conf_dir)
    dataset_labels = {p.stem: _yaml(p).get("label", p.stem) for p in sorted((conf_dir / "dataset").glob("*.yaml"))}
    imputers = {p.stem: _imputer_node(p.stem) for p in sorted((conf_dir / "imputer").glob("*.yaml"))}
    imputer_labels = {k: node.get("label", k) for k, node in imputers.items()}
    flags = {k: tuple(bool(node[c]) for c in COMPONENT_KEYS) for k, node in imputers.items()
             if all(c in node for c in COMPONENT_KEYS)}
    sweeps, tables = [], {}
    for path in sorted((conf_dir / "sweep").glob("*.yaml")):
        node = _yaml(path)
        meta = node.get("sweep") or {}
        grid = _grid(node["hydra"]["sweeper"]["params"])
        shows = meta.get("show") or {}
        for name, show in shows.items():
            tables[name] = _table(name, show, {**grid, **({"mechanism": [show["mechanism"]]}
                                                          if "mechanism" in show else {})},
                                  imputer_labels, flags)
        sweeps.append(Sweep(name=path.stem, order=int(meta.get("order", 99)), grid=grid,
                            datasets_from=str(meta.get("datasets_from", "datasets")),
                            ratios_from=meta.get("ratios_from"), extras=bool(meta.get("extras", False)),
                            tables=tuple(shows)))
    sweeps.sort(key=lambda s: (s.order, s.name))
    ordered_tables = {name: tables[name] for sweep in sweeps for name in sweep.tables}
    paper_profile = _yaml(conf_dir / "profile" / "paper.yaml")
    main = next((s for s in sweeps if PROPOSED in s.grid.get("imputer", []) and s.tables
                 and not ordered_tables[s.tables[0]].variants_as_rows), None)
    ablation_sweep = next((s for s in sweeps if s.tables and ordered_tables[s.tables[0]].variants_as_rows), None)
    figure2 = next((s for s in sweeps if s.ratios_from), None)
    return Layout(
        sweeps={s.name: s for s in sweeps}, tables=ordered_tables,
        datasets=tuple(paper_profile.get("datasets") or ()), dataset_labels=dataset_labels,
        imputer_labels=imputer_labels,
        methods={k: imputer_labels.get(k, k) for k in (main.grid["imputer"] if main else [])},
        ablations={k: flags[k] for k in (ablation_sweep.grid["imputer"] if ablation_sweep else []) if k in flags},
        figure2_methods=tuple(figure2.grid["imputer"]) if figure2 else (),
    )


def extra_imputers(imputers, layout: Layout | None = None) -> dict[str, str]:
    """Of ``imputers`` (e.g. those with rows in the store), the ones in no sweep: key → label."""
    from experiments.registry import group_file

    layout = layout or load()
    out = {}
    for key in sorted(set(imputers) - layout.swept_imputers):
        path = group_file("imputer", key)  # a user's own yaml may live on $METAGAIN_CONFIG_PATH
        out[key] = (layout.imputer_labels.get(key) or (_yaml(path).get("label") if path else None) or key)
    return out
