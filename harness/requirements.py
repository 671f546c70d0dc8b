"""What a plugin's class needs installed beyond the harness: its ``requires``, the
top-level modules without which it cannot work (``requires = ("datasets",)``), checked
without importing them. ``harness validate`` refuses a suite that uses a class whose
requirement is missing, and ``harness plugins`` lists them, each in one sentence with the
command that installs it: the extra of the plugin's distribution that lists it
(``pip install 'compression-harness[data]'``), else the package itself.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import re
from typing import Any

DISTRIBUTION_OF = {"PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}  # where the names differ
KIND_WORDS = {"source": "model source", "task": "task kind"}


def missing(cls: type) -> list[str]:
    """The modules of ``cls.requires`` that cannot be found here."""
    return [module for module in getattr(cls, "requires", ()) if not _found(module)]


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_command(dist: str, modules: list[str]) -> str:
    """The pip command that installs ``modules``: the extras of ``dist`` that list them."""
    wanted = {_normal(DISTRIBUTION_OF.get(m, m)): m for m in modules}
    extras: dict[str, None] = {}
    try:
        requirements = md.requires(dist) or []
    except md.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if name and extra and _normal(name.group()) in wanted:
            extras.setdefault(extra.group(1))
            wanted.pop(_normal(name.group()))
    parts = [f"'{dist}[{','.join(extras)}]'"] if extras else []
    return "pip install " + " ".join(parts + sorted(DISTRIBUTION_OF.get(m, m) for m in wanted.values()))


def requirement_problem(kind: str, name: str, cls: type, plugin: Any) -> str | None:
    """One sentence when ``cls`` (the ``kind`` ``name`` of ``plugin``, a PluginInfo) lacks
    a requirement, else None."""
    absent = missing(cls)
    if not absent:
        return None
    what = " and ".join(absent)
    verb = "is" if len(absent) == 1 else "are"
    return (f"{KIND_WORDS.get(kind, kind)} '{name}' (plugin '{plugin.name}') needs {what}, which {verb} not installed: "
            f"{install_command(plugin.dist, absent)}")


def plugin_problems(plugins: Any) -> dict[str, list[str]]:
    """Per plugin name, one sentence for each of its registered classes that lacks a
    requirement (lazy entries are left unimported)."""
    found: dict[str, list[str]] = {}
    for kind, registry in plugins.registries.items():
        for name in registry.names():
            entry = registry.entry(name)
            if entry.lazy:
                continue
            problem = requirement_problem(kind, name, entry.target, entry.plugin)
            if problem:
                found.setdefault(entry.plugin.name, []).append(problem)
    return found
