"""The harness travels: no tracked file points at the read-only folders that once lay beside it."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

# Spelled in pieces so that this file does not match itself.
SHARED = "shared"
FORBIDDEN = ("../" + SHARED, SHARED + "/data/uci", SHARED + "/paper")
EXEMPT_DIRS = ("results/",)  # run records may quote the paths they were made with


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in out.stdout.decode().split("\0") if name]


def test_no_tracked_file_refers_to_shared_folders():
    offenders = []
    for name in tracked_files():
        if name.startswith(EXEMPT_DIRS):
            continue
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree, or a submodule
            continue
        raw = path.read_bytes()
        if b"\0" in raw[:8192]:  # binary (e.g. the gzip data)
            continue
        text = raw.decode("utf-8", errors="replace")
        for needle in FORBIDDEN:
            for number, line in enumerate(text.splitlines(), 1):
                if needle in line:
                    offenders.append(f"{name}:{number}: {needle}")
    assert not offenders, "tracked files refer to folders outside the repository:\n" + "\n".join(offenders)
