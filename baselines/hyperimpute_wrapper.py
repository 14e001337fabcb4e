"""HyperImpute (Jarrett et al., ICML 2022) through the ``hyperimpute`` package's own plugin.

HyperImpute is iterative column-wise imputation with automatic model selection: starting from
mean imputation, it visits the columns in turn, picks a regressor or classifier for each column
from a pool by cross-validated score on the observed rows, fits it, and predicts the column's
missing entries from the other columns, until the imputations stop changing. This wrapper
builds the package's ``hyperimpute`` plugin with the settings below passed straight through;
every default is the plugin's (``hyperimpute/plugins/imputers/plugin_hyperimpute.py``, version
0.1.17). It is an optional extra: ``make setup-hyperimpute``.

Five things are done here on top of the plugin, each because the plugin alone would not give a
correct or reproducible result on the current stack (pandas 3, scikit-learn 1.9, xgboost 3):

1. **The per-column write is fixed.** ``IterativeErrorCorrection._impute_single_column`` in
   ``hyperimpute/plugins/imputers/_hyperimpute_internals.py`` stores each column's predictions
   with chained indexing, ``X[col][mask] = ...``. Under pandas' copy-on-write (the only mode of
   pandas 3) that writes into a temporary copy and never reaches ``X``, so the plugin silently
   returns the plain mean imputation it started from — and so do the package's ``ice`` and
   ``missforest`` plugins, which run the same loop. :func:`_impute_single_column` is the same
   step written with ``X.loc[mask, col] = ...``; it is bound to the plugin's own runner object
   in :meth:`HyperImputeImputer._fit` (an instance attribute, so nothing else in the process
   is changed). ``tests/baselines/test_supplementary.py`` proves the effect: the output differs
   from Mean's and beats it clearly on correlated data.
2. **A reused XGBoost classifier gets its objective back.** With ``select_lazy`` the loop
   deep-copies the fitted model of another column and refits it; xgboost 3 leaves
   ``objective="multi:softprob"`` on a classifier that saw three classes, and the refit on a
   two-class column then stops the whole fit ("num_class should be greater equal to 1"; seen
   on connect). :func:`_reset_xgboost_objective`, called in the same fixed step, undoes it.
3. **The global random generators are contained.** The plugin draws from Python's ``random``
   (the column order), numpy's global generator (``DataFrame.sample`` in the model search) and
   torch's, and its constructors reseed all three. The whole fit runs inside
   :func:`_seeded_global_rngs`, which seeds them from ``random_state`` and restores the caller's
   states afterwards: the same seed gives the same output, and the rest of the process keeps
   its own random streams.
4. **Logistic regression is built the way scikit-learn now takes it.** The package's
   ``logistic_regression`` model (``plugins/prediction/classifiers/plugin_logistic_regression.py``)
   passes ``multi_class=...`` to ``LogisticRegression``, an argument scikit-learn removed in
   1.8; the constructor then raises and the whole fit fails as soon as a column is treated as
   categorical. While the plugin runs, :func:`_logistic_regression_compat` lets that name build
   the equivalent model: ``"auto"`` and ``"multinomial"`` are what the current
   ``LogisticRegression`` does by itself for the plugin's solvers, ``"ovr"`` becomes
   ``OneVsRestClassifier(LogisticRegression(...))`` (scikit-learn's own advice). It is undone
   when the fit ends.
5. **New rows are imputed with the fitted models.** The plugin is transductive: it fits and
   imputes in one call on the rows it is given (``_transform`` runs the whole search). Here
   ``fit`` runs it once on the training rows and keeps its result for them; ``transform`` of
   those same rows returns that result, and ``transform`` of other rows starts from the
   training means and applies the last iteration's fitted column models, in the last column
   order, round after round until no imputed value moves by more than ``1e-3`` of the column's
   range or ``n_inner_iter`` rounds have run — chained equations with the models held fixed,
   as scikit-learn's ``IterativeImputer.transform`` reuses its fitted models. A column that had no missing training
   entry gets its model in ``fit`` the plugin's way (its optimiser's pick, fitted on the imputed
   training rows), so that any column can be imputed in new rows.
"""
from __future__ import annotations

import random
import sys
import types
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd

from baselines._base import BaseImputer, MissingExtraError
from baselines.schema import Schema

INSTALL_HINT = (
    "HyperImpute needs the optional 'hyperimpute' package and its lean dependencies; "
    "install them with `make setup-hyperimpute` (hyperimpute==0.1.17 without its heavy extras)."
)
TRANSFORM_TOL = 1e-3  # stop the fixed-model rounds once no value moves more than this share of its column range


def _import_hyperimpute():
    """The plugin registry and the loop's module, or a MissingExtraError that says how to install them."""
    try:
        from hyperimpute.plugins.imputers import Imputers
        import hyperimpute.plugins.imputers._hyperimpute_internals as internals
    except ImportError as err:
        raise MissingExtraError(f"{INSTALL_HINT} (import failed: {err})") from err
    return Imputers, internals


def _impute_single_column(self, X: pd.DataFrame, col: str, train: bool) -> pd.DataFrame:
    """``IterativeErrorCorrection._impute_single_column`` with writes that land under copy-on-write.

    Same steps as hyperimpute 0.1.17: fit the column's model on the rows where the column is
    observed (all other columns as inputs), predict the missing rows, clip to the column's
    range; a column with a single observed value is filled with it. Only the three
    ``X[col][mask] = ...`` writes become ``X.loc[mask, col] = ...``, and an XGBoost classifier
    gets its default objective back before it is refitted (:func:`_reset_xgboost_objective`).
    """
    hidden = self.mask[col]
    if hidden.sum() == 0:
        return X
    covariates = X[self._get_neighbors_for_col(col)]
    target = X[col][~hidden]
    if col in self.categorical_cols:
        target = target.astype(int)
    if len(np.unique(target)) == 1:
        X.loc[hidden, col] = np.asarray(target)[0]
        return X
    model = self.column_to_model[col]
    if train:
        _reset_xgboost_objective(model)
        model.fit(covariates[~hidden], target)
    predicted = np.asarray(model.predict(covariates[hidden])).reshape(-1)
    low, high = self.limits[col]
    X.loc[hidden, col] = np.clip(predicted, low, high)
    return X


def _reset_xgboost_objective(model) -> None:
    """Undo XGBoost's rewrite of a classifier's objective before the model is fitted again.

    ``XGBClassifier.fit`` (xgboost >= 2) stores ``objective="multi:softprob"`` on the estimator
    when it sees more than two classes, and a later fit on a two-class target then fails
    ("num_class should be greater equal to 1"). HyperImpute refits such models on other columns:
    with ``select_lazy`` it deep-copies the fitted model of a column whose architecture keeps
    winning. The package's ``xgboost`` plugin never sets the objective, so the constructor's
    ``binary:logistic`` is its setting; ``fit`` switches to multi-class by itself when needed.
    """
    estimator = getattr(model, "model", None)
    if type(estimator).__name__ == "XGBClassifier":
        estimator.set_params(objective="binary:logistic")


@contextmanager
def _seeded_global_rngs(seed: int):
    """Seed Python's, numpy's and torch's global generators for the block, then restore them."""
    import torch

    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


@contextmanager
def _logistic_regression_compat():
    """Let ``sklearn.linear_model.LogisticRegression(multi_class=...)`` work again while the plugin runs."""
    import inspect

    import sklearn.linear_model as linear_model

    original = linear_model.LogisticRegression
    if "multi_class" in inspect.signature(original.__init__).parameters:
        yield  # an older scikit-learn still takes the argument
        return

    def logistic_regression(*args, multi_class: str = "auto", **kwargs):
        if multi_class == "ovr":
            from sklearn.multiclass import OneVsRestClassifier

            return OneVsRestClassifier(original(*args, **kwargs))
        return original(*args, **kwargs)

    linear_model.LogisticRegression = logistic_regression
    try:
        yield
    finally:
        linear_model.LogisticRegression = original


@contextmanager
def _log_to_stderr(enabled: bool):
    """Show HyperImpute's own progress log (loguru, silenced by the package) while ``enabled``."""
    if not enabled:
        yield
        return
    from loguru import logger

    handler = logger.add(sys.stderr, level="INFO")
    try:
        yield
    finally:
        logger.remove(handler)


class HyperImputeImputer(BaseImputer):
    """HyperImpute of Jarrett et al. (2022): the ``hyperimpute`` package's plugin, made to run as published.

    Every argument except ``random_state`` and ``verbose`` goes to the plugin unchanged; the
    defaults are the plugin's (hyperimpute 0.1.17, ``plugin_hyperimpute.py``).

    Parameters
    ----------
    classifier_seed, regression_seed : list of str or None, default None
        Model pools searched for categorical and numeric columns. ``None`` keeps the plugin's
        pools: random forest, logistic/linear regression, XGBoost, CatBoost (plus the package's
        neural nets when CUDA is present). Columns with fewer than 500 observed values use only
        the first two, as the plugin does.
    imputation_order : int, default 2
        Column order: 0 ascending, 1 descending, 2 random (reshuffled every iteration).
    baseline_imputer : int, default 0
        Initial fill: 0 mean, 1 median, 2 most frequent.
    optimizer : {"simple", "hyperband", "bayesian"}, default "simple"
        Model search: default settings of each pool member, or a hyperparameter search.
    class_threshold : int, default 5
        A column with fewer distinct values (NaN counted, as the plugin counts) is categorical.
    optimize_thresh : int, default 5000
        Rows subsampled for the model search.
    n_inner_iter : int, default 40
        Maximum iterations of the loop (also the cap on fixed-model rounds for new rows).
    select_model_by_column, select_model_by_iteration, select_lazy : bool, default True
        Search a model per column / per iteration; reuse an architecture that keeps winning.
    select_patience : int, default 5
        Iterations without a better summed score before the loop stops.
    random_state : int or None, default None
        Seed of the global generators during the fit (restored afterwards).
    verbose : bool, default False
        Print HyperImpute's own log.

    Attributes
    ----------
    plugin_ : hyperimpute HyperImputePlugin
        The plugin after its run on the training rows.
    column_models_ : dict
        Column index → name of the model that imputes it.
    info_ : dict
        Scalars for the result row: iterations run and how many columns each model kind serves.
    """

    def __init__(self, classifier_seed: list | None = None, regression_seed: list | None = None,
                 imputation_order: int = 2, baseline_imputer: int = 0, optimizer: str = "simple",
                 class_threshold: int = 5, optimize_thresh: int = 5000, n_inner_iter: int = 40,
                 select_model_by_column: bool = True, select_model_by_iteration: bool = True,
                 select_patience: int = 5, select_lazy: bool = True, random_state=None, verbose: bool = False):
        self.classifier_seed = classifier_seed
        self.regression_seed = regression_seed
        self.imputation_order = imputation_order
        self.baseline_imputer = baseline_imputer
        self.optimizer = optimizer
        self.class_threshold = class_threshold
        self.optimize_thresh = optimize_thresh
        self.n_inner_iter = n_inner_iter
        self.select_model_by_column = select_model_by_column
        self.select_model_by_iteration = select_model_by_iteration
        self.select_patience = select_patience
        self.select_lazy = select_lazy
        self.random_state = random_state
        self.verbose = verbose

    def _plugin_kwargs(self, seed: int, internals, hook) -> dict:
        return {
            "classifier_seed": list(self.classifier_seed if self.classifier_seed is not None
                                    else internals.LARGE_DATA_CLF_SEEDS),
            "regression_seed": list(self.regression_seed if self.regression_seed is not None
                                    else internals.LARGE_DATA_REG_SEEDS),
            "imputation_order": int(self.imputation_order),
            "baseline_imputer": int(self.baseline_imputer),
            "optimizer": str(self.optimizer),
            "class_threshold": int(self.class_threshold),
            "optimize_thresh": int(self.optimize_thresh),
            "n_inner_iter": int(self.n_inner_iter),
            "random_state": seed,
            "select_model_by_column": bool(self.select_model_by_column),
            "select_model_by_iteration": bool(self.select_model_by_iteration),
            "select_patience": int(self.select_patience),
            "select_lazy": bool(self.select_lazy),
            "inner_loop_hook": hook,
        }

    # ------------------------------------------------------------------ fit
    def _fit(self, X: np.ndarray, y, schema: Schema) -> None:
        Imputers, internals = _import_hyperimpute()
        if int(self.n_inner_iter) < 1:
            raise ValueError(f"n_inner_iter must be at least 1; got {self.n_inner_iter}.")
        seed = int(np.random.SeedSequence(self.random_state).generate_state(1)[0]) \
            if self.random_state is None else int(self.random_state) % 2**32
        iterations: list[int] = []
        with _seeded_global_rngs(seed), _logistic_regression_compat(), _log_to_stderr(bool(self.verbose)), \
                warnings.catch_warnings():
            if not self.verbose:
                # The package calls scikit-learn and pydantic with arguments they deprecate; the
                # warnings repeat for every model of every column and say nothing about this fit.
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
            plugin = Imputers().get("hyperimpute", **self._plugin_kwargs(
                seed, internals, lambda it, _frame: iterations.append(it)))
            runner = plugin.model
            runner._impute_single_column = types.MethodType(_impute_single_column, runner)
            imputed = plugin.fit_transform(pd.DataFrame(X))
            self._fit_missing_models(runner, imputed)
        self.plugin_ = plugin
        self.fit_input_ = X.copy()
        self.fit_output_ = np.asarray(imputed, dtype=float)
        names = ["constant" if col in self.constant_columns_ else runner.column_to_model[col].name()
                 for col in runner.all_cols]
        self.column_models_ = dict(enumerate(names))
        self.info_ = {"iterations_run": len(iterations),
                      **{f"columns_{name}": names.count(name) for name in sorted(set(names))}}

    def _encode(self, runner, frame: pd.DataFrame) -> pd.DataFrame:
        """Categorical columns to the plugin's label codes (an unseen value → the nearest known one)."""
        frame = frame.copy()
        for col, encoder in runner.encoders.items():
            known = np.asarray(encoder.classes_, dtype=float)
            present = frame[col].notna()
            values = frame.loc[present, col].to_numpy(dtype=float)
            frame.loc[present, col] = np.abs(values[:, None] - known[None, :]).argmin(axis=1).astype(float)
        return frame

    def _fit_missing_models(self, runner, imputed: pd.DataFrame) -> None:
        """Give every column without a fitted model (none missing in training) one, the plugin's way."""
        encoded = self._encode(runner, pd.DataFrame(np.asarray(imputed, dtype=float), columns=runner.all_cols))
        self.constant_columns_ = {}
        for col in runner.all_cols:
            observed = ~runner.mask[col].to_numpy(dtype=bool)
            target = encoded.loc[observed, col]
            if target.nunique() <= 1:
                # the plugin fills such a column with its one observed value; new rows get the same
                self.constant_columns_[col] = float(target.iloc[0])
                continue
            if col in runner.column_to_model:
                continue
            covariates = encoded[runner._get_neighbors_for_col(col)]
            target = encoded[col].astype(int) if col in runner.categorical_cols else encoded[col]
            search_rows = covariates if len(covariates) <= runner.optimize_thresh \
                else covariates.sample(runner.optimize_thresh)
            model, _ = runner.column_to_optimizer[col].evaluate(search_rows, target[search_rows.index])
            runner.column_to_model[col] = model.fit(covariates, target)

    # ------------------------------------------------------------------ impute
    def _transform(self, X: np.ndarray) -> np.ndarray:
        if X.shape == self.fit_input_.shape and np.array_equal(X, self.fit_input_, equal_nan=True):
            return self.fit_output_.copy()  # the plugin's own imputation of its training rows
        return self._impute_new_rows(X)

    def _impute_new_rows(self, X: np.ndarray) -> np.ndarray:
        runner = self.plugin_.model
        columns = list(runner.all_cols)
        encoded = self._encode(runner, pd.DataFrame(X, columns=columns))
        hidden = encoded.isna()
        filled = pd.DataFrame(np.asarray(runner.baseline_imputer.transform(encoded), dtype=float),
                              columns=columns)
        for col, value in self.constant_columns_.items():
            filled.loc[hidden[col], col] = value
        to_predict = [col for col in runner.imputation_order
                      if hidden[col].any() and col not in self.constant_columns_]
        spans = {col: max(runner.limits[col][1] - runner.limits[col][0], 1e-12) for col in columns}
        for _ in range(int(self.n_inner_iter)):
            largest_move = 0.0
            for col in to_predict:
                rows = hidden[col]
                model = runner.column_to_model[col]
                predicted = np.asarray(model.predict(filled.loc[rows, runner._get_neighbors_for_col(col)]))
                low, high = runner.limits[col]
                predicted = np.clip(predicted.reshape(-1).astype(float), low, high)
                largest_move = max(largest_move,
                                   float(np.max(np.abs(predicted - filled.loc[rows, col].to_numpy())) / spans[col]))
                filled.loc[rows, col] = predicted
            if largest_move <= TRANSFORM_TOL:
                break
        for col, encoder in runner.encoders.items():  # label codes back to the column's values
            filled[col] = np.asarray(encoder.classes_, dtype=float)[filled[col].round().astype(int).to_numpy()]
        return filled.to_numpy(dtype=float)
