"""Every config group option composes; every imputer instantiates; typos fail at composition."""
from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from experiments.registry import CONF_DIR, build_imputer, imputer_names
from experiments.runner import compose_cell
from baselines._base import MissingExtraError


def options(group):
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["dataset", "mechanism", "imputer", "profile"])
def test_every_option_composes(group):
    for option in options(group):
        cfg = compose_cell([f"{group}={option}"])
        assert cfg[group] is not None


@pytest.mark.parametrize("name", imputer_names())
@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_every_imputer_builds_at_every_profile(name, profile):
    try:
        imputer = build_imputer(name, profile=profile, device="cpu")
    except MissingExtraError as err:
        pytest.skip(str(err))
    assert hasattr(imputer, "fit") and hasattr(imputer, "transform")


def test_every_imputer_yaml_cites_its_sources():
    for path in (CONF_DIR / "imputer").glob("*.yaml"):
        assert path.read_text().lstrip().startswith("#"), f"{path.name} must start with a citation comment"


def test_sweeps_start_with_their_command():
    for path in (CONF_DIR / "sweep").glob("*.yaml"):
        header = "\n".join(path.read_text().splitlines()[:3])  # after Hydra's `# @package` line
        assert "python -m experiments.run" in header, f"{path.name} must start with the command that runs it"


def test_typo_in_top_level_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException):
        compose_cell(["ratoi=0.2"])


def test_wrong_type_fails_at_composition():
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_cell(["ratio=abc"])


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ConfigCompositionException, match="dataset"):
        compose_cell(["dataset=nope"])


@pytest.mark.parametrize("launcher", ["joblib", "local", "submitit_local", "submitit_slurm", "slurm"])
def test_launcher_presets_compose(launcher):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from experiments.config import register_schema

    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert "_target_" in cfg.hydra.launcher
