"""Discover plugins through pluggy and the ``harness`` entry-point group.

Each plugin is loaded and asked to register on its own, so one broken plugin (an
import error, a bad registration, a duplicate name) is recorded as broken and the rest
work. Load order: the ``harness`` distribution's built-ins, then third-party entry
points by name, then modules named in ``HARNESS_PLUGINS`` (comma-separated import
names, like ``pytest -p``). ``HARNESS_DISABLE_PLUGINS=a,b`` blocks plugins by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as md
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness import api, hookspecs

KINDS = {
    "method": "harness_register_methods",
    "source": "harness_register_models",
    "task": "harness_register_tasks",
    "executor": "harness_register_executors",
    "reporter": "harness_register_reporters",
}


@dataclass
class PluginInfo:
    name: str
    module: str
    dist: str
    version: str
    status: str = "ok"  # ok | broken | disabled
    errors: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.dist == "harness"


@dataclass
class Registered:
    """One registered method/source/task/executor/reporter and who provided it."""

    kind: str
    name: str
    obj: Any
    plugin: PluginInfo


@dataclass
class Registry:
    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    items: dict[str, dict[str, Registered]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def names(self, kind: str) -> list[str]:
        return sorted(self.items[kind])

    def get(self, kind: str, name: str) -> Registered | None:
        return self.items[kind].get(name)

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "broken"]

    def versions(self, plugin_names: set[str]) -> dict[str, str]:
        return {p.name: p.version for p in self.plugins if p.name in plugin_names}


def _entry_points() -> list[tuple[md.EntryPoint, str, str]]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in md.entry_points(group="harness"):
        if (ep.name, ep.value) in seen:  # editable installs may list a dist twice
            continue
        seen.add((ep.name, ep.value))
        dist = ep.dist.metadata["Name"] if ep.dist else "?"
        version = ep.dist.version if ep.dist else "?"
        found.append((ep, dist, version))
    found.sort(key=lambda item: (item[1] != "harness", item[0].name))
    return found


def _validate(kind: str, obj: Any) -> str | None:
    """Why ``obj`` cannot be registered as a ``kind``, or None."""
    base = {"method": api.Method, "source": api.ModelSource, "task": api.TaskKind}.get(kind)
    if base is None:
        return None
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return f"registered {obj!r}, which is not a subclass of harness.api.{base.__name__}"
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        return f"{obj.__name__} has no 'name'"
    schema = {"method": "Params", "source": "Options", "task": "Config"}[kind]
    if not dataclasses.is_dataclass(getattr(obj, schema)):
        return f"{obj.__name__}.{schema} is not a dataclass"
    if kind == "method":
        if obj.family not in api.FAMILIES:
            return f"{obj.__name__}.family {obj.family!r} is not one of {', '.join(api.FAMILIES)}"
        bad = [n for n in obj.needs if n not in api.NEEDS]
        if bad:
            return f"{obj.__name__}.needs has unknown {bad}; valid: {', '.join(api.NEEDS)}"
    return None


def _register_from(registry: Registry, plugin: object, info: PluginInfo) -> None:
    for kind, hook_name in KINDS.items():
        impl = getattr(plugin, hook_name, None)
        if impl is None:
            continue

        def register(obj: Any, target: Any = None, *, kind: str = kind) -> None:
            if kind in ("executor", "reporter"):
                name, obj = obj, target
                if not (isinstance(name, str) and isinstance(obj, str) and ":" in obj):
                    raise TypeError(f"register a {kind} as (name, 'module:attr'), got {name!r}, {obj!r}")
            else:
                problem = _validate(kind, obj)
                if problem:
                    raise TypeError(problem)
                name = obj.name
            existing = registry.items[kind].get(name)
            if existing is not None:
                raise ValueError(
                    f"{kind} '{name}' is already registered by plugin '{existing.plugin.name}'"
                )
            registry.items[kind][name] = Registered(kind, name, obj, info)
            info.provides.append(f"{kind}:{name}")

        try:
            impl(register=register)
        except Exception as exc:  # a plugin's own bug must not stop the others
            info.status = "broken"
            info.errors.append(f"{hook_name}: {type(exc).__name__}: {exc}")


def load_registry(disabled: set[str] | None = None, extra: list[str] | None = None) -> Registry:
    """Create the plugin manager, load every plugin, and collect what they register."""
    if disabled is None:
        disabled = {n.strip() for n in os.environ.get("HARNESS_DISABLE_PLUGINS", "").split(",") if n.strip()}
    if extra is None:
        extra = [n.strip() for n in os.environ.get("HARNESS_PLUGINS", "").split(",") if n.strip()]
    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm)

    candidates: list[tuple[str, str, str, str, Any]] = [
        (ep.name, ep.value, dist, version, ep.load) for ep, dist, version in _entry_points()
    ]
    for module in extra:
        candidates.append((module, module, "HARNESS_PLUGINS", "local", lambda m=module: importlib.import_module(m)))

    for name, module, dist, version, load in candidates:
        info = PluginInfo(name=name, module=module, dist=dist, version=version)
        registry.plugins.append(info)
        if name in disabled:
            info.status = "disabled"
            pm.set_blocked(name)
            continue
        try:
            plugin = load()
        except Exception as exc:
            info.status = "broken"
            tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            info.errors.append(f"Error importing plugin '{name}' ({module}): {tail}")
            continue
        try:
            pm.register(plugin, name=name)
        except Exception as exc:  # pluggy rejects unknown hooks and bad signatures
            info.status = "broken"
            info.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        info.hooks = sorted(
            h.name for h in pm.get_hookcallers(plugin) or [] if h.name.startswith("harness_")
        )
        _register_from(registry, plugin, info)
    return registry
