"""The common contract, run over every imputer in ``conf/imputer/`` at the smoke budget.

It is also the validator for your own imputer: put its yaml in ``<dir>/imputer/<name>.yaml`` and
run ``METAGAIN_CONFIG_PATH=<dir> pytest tests/test_imputer_contract.py -k <name>``.
"""
from __future__ import annotations

import numpy as np
import pytest

from experiments.registry import build_imputer, imputer_names
from baselines._base import MissingExtraError
from tests.conftest import hide

NAMES = imputer_names()


def _build(name, seed=0):
    try:
        return build_imputer(name, profile="smoke", random_state=seed, device="cpu", verbose=False)
    except MissingExtraError as err:
        pytest.skip(f"{name}: optional extra not installed ({err})")


@pytest.fixture(scope="module")
def split(mixed):
    X, y, schema = mixed
    X_train, X_test = hide(X[:180], 0.2, seed=1), hide(X[180:], 0.3, seed=2)
    return X_train, y[:180], X_test, schema


def _fit_transform(name, split, seed=0):
    X_train, y_train, X_test, schema = split
    from experiments.runner import fit_arguments

    imputer = _build(name, seed)
    try:
        imputer.fit(X_train, **fit_arguments(imputer, y_train, schema))  # as the runner calls it
    except MissingExtraError as err:
        pytest.skip(f"{name}: optional extra not installed ({err})")
    return imputer, imputer.transform(X_train), imputer.transform(X_test)


@pytest.mark.parametrize("name", NAMES)
def test_contract(name, split):
    X_train, _, X_test, _ = split
    imputer, out_train, out_test = _fit_transform(name, split)
    for X, out in ((X_train, out_train), (X_test, out_test)):
        assert out.shape == X.shape
        assert not np.isnan(out).any(), f"{name} left NaN"
        observed = ~np.isnan(X)
        np.testing.assert_array_equal(out[observed], X[observed], err_msg=f"{name} changed observed entries")


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name, split):
    _, a_train, a_test = _fit_transform(name, split, seed=3)
    _, b_train, b_test = _fit_transform(name, split, seed=3)
    np.testing.assert_array_equal(a_train, b_train)
    np.testing.assert_array_equal(a_test, b_test)


@pytest.mark.parametrize("name", NAMES)
def test_sample_draws_if_offered(name, split):
    _, _, X_test, _ = split
    imputer, _, _ = _fit_transform(name, split)
    if not callable(getattr(imputer, "_sample", None)):
        pytest.skip(f"{name} does not offer multiple imputation")
    draws = imputer.sample(X_test, 3)
    assert draws.shape == (3,) + X_test.shape
    observed = ~np.isnan(X_test)
    for draw in draws:
        np.testing.assert_array_equal(draw[observed], X_test[observed])


@pytest.mark.parametrize("name", NAMES)
def test_transform_before_fit_is_an_error(name):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _build(name).transform(np.full((3, 6), 0.5))


#: Checks an optional extra fails for reasons outside our wrapper, each named with its reason.
KNOWN_FAILURES = {
    "hyperimpute": {
        "check_estimators_pickle": "hyperimpute loads its plugins from file paths, so a fitted plugin "
                                   "cannot be pickled (the module is not importable by name)",
        "check_fit2d_1feature": "the plugin rejects a single feature with its own message, not "
                                "scikit-learn's",
    },
}


@pytest.mark.parametrize("name", NAMES)
def test_scikit_learn_estimator_checks_pass(name):
    """scikit-learn's own estimator checks, run as a client would (NaN allowed by the tags)."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    imputer = _build(name)
    try:
        _build(name).fit(np.random.default_rng(0).random((20, 3)))
    except MissingExtraError as err:
        pytest.skip(f"{name}: optional extra not installed ({err})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(imputer, on_fail=None)
    failed = [r for r in results if r["status"] == "failed" and r["check_name"] not in KNOWN_FAILURES.get(name, {})]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]
