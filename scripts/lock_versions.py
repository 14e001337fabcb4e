"""Record which source each imputer ``version`` and the ``SCORE_VERSION`` stand for.

    python -m scripts.lock_versions                      # after bumping a version
    python -m scripts.lock_versions --same-numbers gain  # a refactor proven not to move numbers

A cell key holds the imputer's ``version`` and the scoring code's ``SCORE_VERSION``, so old rows
go stale exactly when a version is bumped. ``tests/versions.lock.json`` maps each to a hash of its
source (the module and every project module it imports, docstrings and comments ignored);
``tests/test_versions.py`` fails when a source changed and its version did not. This script
rewrites the lock, and refuses an entry whose source changed under the same version unless it is
named in ``--same-numbers`` (for moves and refactors shown to give identical rows).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "tests" / "versions.lock.json"
PACKAGES = ("baselines", "metagain", "experiments")
#: The modules behind every score (besides the imputer): what SCORE_VERSION names.
SCORE_ROOTS = ("experiments.scoring", "experiments.metrics", "experiments.masks", "experiments.split",
               "experiments.data")


def module_file(name: str) -> Path | None:
    """The source file of project module ``name`` (None for anything outside the project)."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.exists():
            return path
    return None


def imported_modules(path: Path, name: str) -> set[str]:
    """Project modules that ``path`` (module ``name``) imports, at any depth of its body."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from pkg import module` names a module
                found.add(f"{base}.{alias.name}" if module_file(f"{base}.{alias.name}") else base)
    return {m for m in found if module_file(m) is not None}


def closure(roots) -> list[str]:
    """``roots`` and every project module they import, transitively, sorted."""
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        todo += sorted(imported_modules(module_file(name), name) - seen)
    return sorted(seen)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_hash(roots) -> str:
    """Hash of the code of ``roots``' closure: its AST without docstrings (comments never count)."""
    digest = hashlib.sha256()
    for name in closure(roots):
        tree = _strip_docstrings(ast.parse(module_file(name).read_text()))
        digest.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return digest.hexdigest()[:16]


def imputer_targets() -> list[str]:
    """Every ``_target_`` of ``conf/imputer/*.yaml`` that lives in the project."""
    from omegaconf import OmegaConf

    targets = set()
    for path in sorted((ROOT / "conf" / "imputer").glob("*.yaml")):
        node = OmegaConf.to_container(OmegaConf.load(path))
        target = node.get("_target_")
        if target and target.split(".")[0] in PACKAGES:
            targets.add(target)
    return sorted(targets)


def current_entries() -> dict:
    """``{name: {"version", "source", "modules"}}`` for every imputer class and for scoring."""
    entries = {}
    for target in imputer_targets():
        module, _, cls_name = target.rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        entries[target] = {"version": str(cls.version), "source": source_hash([module]),
                           "modules": closure([module])}
    from experiments.scoring import SCORE_VERSION

    entries["SCORE_VERSION"] = {"version": SCORE_VERSION, "source": source_hash(SCORE_ROOTS),
                                "modules": closure(SCORE_ROOTS)}
    return entries


def problems(locked: dict, current: dict) -> list[str]:
    """What the lock and the code disagree on, each as one sentence."""
    out = []
    for name, now in current.items():
        was = locked.get(name)
        if was is None:
            out.append(f"{name} is not in {LOCK.name}: run `python -m scripts.lock_versions`.")
        elif was["version"] == now["version"] and was["source"] != now["source"]:
            out.append(f"The source of {name} changed but its version is still {now['version']!r}: "
                       "bump its `version` (old rows then go stale) and run `python -m scripts.lock_versions`; "
                       f"if the numbers provably do not move, run it with `--same-numbers {name}`. "
                       f"Modules: {', '.join(now['modules'])}.")
        elif was["version"] != now["version"]:
            out.append(f"{name} is at version {now['version']!r} but {LOCK.name} records "
                       f"{was['version']!r}: run `python -m scripts.lock_versions`.")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--same-numbers", nargs="*", default=[],
                        help="entries whose source changed without a version bump, on purpose")
    args = parser.parse_args(argv)
    locked = json.loads(LOCK.read_text()) if LOCK.exists() else {}
    current = current_entries()
    refused = [name for name, now in current.items()
               if name in locked and locked[name]["version"] == now["version"]
               and locked[name]["source"] != now["source"] and name not in args.same_numbers]
    if refused:
        for name in refused:
            print(f"refused: the source of {name} changed but its version did not; bump it, or pass "
                  f"--same-numbers {name} if its numbers provably do not move.", file=sys.stderr)
        return 1
    LOCK.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)} ({len(current)} entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
