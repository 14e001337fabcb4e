"""One home for each kind of knowledge: docs cited exist, config names match their files, no torch for data."""
from __future__ import annotations

import re
import subprocess
import sys

from omegaconf import OmegaConf

from tests.conftest import ROOT

DESIGN = ROOT / "docs" / "DESIGN.md"


def tracked_text_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        if name.startswith(("results/", "docs/", "data/")) or name == "tests/test_layout.py" \
                or not name.endswith((".py", ".yaml", ".md", ".toml")):
            continue
        yield name, (ROOT / name).read_text(encoding="utf-8")


def test_every_design_citation_points_at_the_shipped_document_and_its_sections():
    headings = {line.lstrip("#").strip() for line in DESIGN.read_text().splitlines() if line.startswith("## ")}
    for name, text in tracked_text_files():
        for match in re.finditer(r"(\S*)DESIGN\.md(?:, \"?([A-Z][A-Za-z -]+))?", text):
            assert match.group(1).endswith("docs/") or "docs/DESIGN.md" in match.group(0), \
                f"{name}: cites {match.group(0)!r}; point it at docs/DESIGN.md"
            section = match.group(2)
            if section:
                assert any(section.strip().startswith(h) for h in headings), f"{name}: no section {section!r}"


def test_config_names_equal_their_file_stems():
    for path in sorted((ROOT / "conf" / "imputer").glob("*.yaml")):
        node = OmegaConf.load(path)
        assert node.get("name") == path.stem, path
        assert isinstance(node.get("label"), str) and node.get("label"), f"{path}: a display label"
    for path in sorted((ROOT / "conf" / "dataset").glob("*.yaml")):
        node = OmegaConf.load(path)
        assert node.get("key") == path.stem, path
        assert isinstance(node.get("label"), str) and node.get("label"), f"{path}: a display label"


def test_loading_data_does_not_import_torch():
    code = "import sys, experiments.data, experiments.store, experiments.tables; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_list_of_methods_or_datasets_is_written_in_experiments():
    for path in sorted((ROOT / "experiments").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"MAIN_METHODS|SUPPLEMENT_METHODS", text), path
        for names in (r"\"mean\", \"knni\"", r"\"wireless\", \"yeast\""):
            assert not re.search(names, text), f"{path} writes out a list of the paper's names"
