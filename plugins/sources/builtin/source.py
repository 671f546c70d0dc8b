"""The ``builtin`` model source: reference models that train deterministically on data
the project ships or generates, cached by a hash of their code, recipe and data.

Each family module offers ``MODELS`` (ref → recipe), ``prepare(ref)`` and
``load(ref, device)``; its heavy imports happen inside those functions.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.api import ModelSource, NoParams

FAMILIES = ("harness_plugins.sources.builtin.digits", "harness_plugins.sources.builtin.world_lm")


def _families() -> list[ModuleType]:
    return [importlib.import_module(name) for name in FAMILIES]


def _family_of(ref: str) -> ModuleType | None:
    return next((family for family in _families() if ref in family.MODELS), None)


class BuiltinSource(ModelSource):
    name = "builtin"
    description = ("reference models trained on bundled or generated data: digits-mlp, digits-cnn "
                   "(and narrower -wN variants), world-lm, world-lm-mini")
    Options = NoParams

    def check_ref(self, ref: str, options: Any, suite_dir: Path) -> str | None:
        if _family_of(ref) is None:
            from harness.toolkit import nearest

            known = [r for family in _families() for r in family.MODELS]
            return f"unknown builtin model '{ref}'{nearest(ref, known)}"
        return None

    def prepare(self, ref: str, options: Any, suite_dir: Path) -> None:
        _family_of(ref).prepare(ref)

    def load(self, ref: str, options: Any, ctx: Any) -> Any:
        return _family_of(ref).load(ref, ctx.device)

