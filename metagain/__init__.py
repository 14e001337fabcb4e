"""Meta-GAIN (Tong, Zhu & Gan, AAAI 2026): the method only.

``from metagain import MetaGAINImputer`` is the public entry point; the imputer contract it
follows (``BaseImputer``, ``Schema``) lives in :mod:`baselines`, beside every other imputer.
The import is lazy, so importing a submodule (``metagain.meta_set``) does not load torch.
"""
from __future__ import annotations

__all__ = ["MetaGAINImputer"]


def __getattr__(name: str):
    if name == "MetaGAINImputer":
        from metagain.imputer import MetaGAINImputer

        return MetaGAINImputer
    raise AttributeError(f"module 'metagain' has no attribute {name!r}")
