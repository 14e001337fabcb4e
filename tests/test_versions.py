"""Versions are honest: a change of an imputer's or the scoring's source comes with a version bump."""
from __future__ import annotations

import json

from scripts import lock_versions as lv


def test_every_source_change_came_with_a_version_bump():
    locked = json.loads(lv.LOCK.read_text())
    found = lv.problems(locked, lv.current_entries())
    assert not found, "\n".join(found)


def test_an_edit_without_a_bump_is_caught(tmp_path, monkeypatch):
    """Edit a copy of the Mean imputer's module: same version, new source → a problem is named."""
    target = "baselines.mean.MeanImputer"
    locked = json.loads(lv.LOCK.read_text())
    copy = tmp_path / "baselines"
    copy.mkdir()
    original = lv.module_file("baselines.mean").read_text()
    (copy / "mean.py").write_text(original + "\n\ndef _new_behaviour():\n    return 1\n")
    real = lv.module_file

    def patched(name):
        return copy / "mean.py" if name == "baselines.mean" else real(name)

    monkeypatch.setattr(lv, "module_file", patched)
    current = {target: {"version": locked[target]["version"], "source": lv.source_hash(["baselines.mean"]),
                        "modules": []}}
    found = lv.problems(locked, current)
    assert len(found) == 1 and "bump its `version`" in found[0]
    # a comment or docstring edit is not a code change
    (copy / "mean.py").write_text(original.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert lv.source_hash(["baselines.mean"]) == locked[target]["source"]


def test_the_closure_follows_project_imports():
    modules = lv.closure(["baselines.gain"])
    assert "baselines.gain" in modules and "baselines._base" in modules and "baselines.schema" in modules
    assert not any(m.startswith(("numpy", "torch")) for m in modules)
    assert "experiments.metrics" in lv.closure(lv.SCORE_ROOTS)
