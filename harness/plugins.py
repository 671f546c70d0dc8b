"""Discover plugins through pluggy and the ``harness`` entry-point group.

Load order: the core defaults (:mod:`harness.defaults`: the baseline method, the local
executor, the csv and markdown writers; always on), then the built-ins of the
``compression-harness`` distribution, then third-party entry points by name, then modules named in
``HARNESS_PLUGINS`` (comma-separated import names, like ``pytest -p``).
``HARNESS_DISABLE_PLUGINS=a,b`` blocks plugins by name; ``HARNESS_TRACE_PLUGINS=1``
prints every hook call to stderr.

Each plugin is imported and asked to register on its own (through pluggy's dispatch,
restricted to that plugin), so one broken plugin — an import error, a bad registration,
a duplicate name — is recorded as broken with its error and the rest work.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata as md
import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from harness import DISTRIBUTION, __version__, api, defaults, hookspecs
from harness.registry import Entry, Registry


def _schema_check(attr: str) -> Callable[[type], str | None]:
    def check(cls: type) -> str | None:
        if not dataclasses.is_dataclass(getattr(cls, attr)):
            return f"{cls.__name__}.{attr} is not a dataclass"
        return None
    return check


def _method_check(cls: type) -> str | None:
    problem = _schema_check("Params")(cls)
    if problem:
        return problem
    if not isinstance(cls.family, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", cls.family):  # "low-rank": a word
        return (f"{cls.__name__}.family {cls.family!r} must be a lowercase word such as "
                f"{', '.join(api.FAMILIES[1:])} (or one of your own, e.g. 'low-rank')")
    bad = [n for n in cls.needs if n not in api.NEEDS]
    if bad:
        return f"{cls.__name__}.needs has unknown {bad}; valid: {', '.join(api.NEEDS)}"
    return None


# kind -> (registration hook, base class, extra check)
KINDS: dict[str, tuple[str, type, Callable[[type], str | None] | None]] = {
    "method": ("harness_register_methods", api.Method, _method_check),
    "source": ("harness_register_models", api.ModelSource, _schema_check("Options")),
    "task": ("harness_register_tasks", api.TaskKind, _schema_check("Config")),
    "runtime": ("harness_register_runtimes", api.Runtime, None),
    "executor": ("harness_register_executors", api.Executor, None),
    "reporter": ("harness_register_reporters", api.Reporter, None),
}
SCHEMA = {"method": "Params", "source": "Options", "task": "Config"}
# What a plugin's code may raise without ending the harness: a plugin that calls
# sys.exit() at import or in a hook is broken, not the end of the suite.
PLUGIN_ERRORS = (Exception, SystemExit)


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


@dataclass
class PluginSet:
    """The loaded plugins and, per kind, the registry of what they provide."""

    pm: pluggy.PluginManager
    plugins: list[PluginInfo] = field(default_factory=list)
    registries: dict[str, Registry] = field(
        default_factory=lambda: {kind: Registry(kind, base, check) for kind, (_, base, check) in KINDS.items()})

    def get(self, kind: str, name: str) -> Entry | None:
        return self.registries[kind].entry(name)

    def names(self, kind: str) -> list[str]:
        return self.registries[kind].names()

    def lookup(self, kind: str, name: str) -> Any:
        """The class registered as ``name``; a LookupError naming any broken plugins."""
        if self.get(kind, name) is None:
            culprits = "; ".join(f"plugin '{p.name}': {p.errors[0]}" for p in self.broken())
            hint = f" (broken plugins: {culprits})" if culprits else ""
            raise LookupError(f"{kind} '{name}' is not registered by any loaded plugin{hint}")
        return self.registries[kind].get(name)

    def schema_of(self, kind: str, name: str) -> type | None:
        """The Params/Options/Config dataclass of a method/source/task, or None."""
        return getattr(self.lookup(kind, name), SCHEMA[kind]) if self.get(kind, name) else None

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "broken"]

    def versions(self, plugin_names: set[str]) -> dict[str, str]:
        return {p.name: p.version for p in self.plugins if p.name in plugin_names}

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Exception]]:
        """Call ``hook_name`` on every plugin implementing it, each on its own, so one
        plugin's exception stops neither the others nor the caller; return the errors."""
        errors = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                self.call_alone(impl.plugin, hook_name, **kwargs)
            except PLUGIN_ERRORS as exc:
                errors.append((impl.plugin_name, exc))
        return errors

    def call_alone(self, plugin: object, hook_name: str, **kwargs: Any) -> None:
        """``hook_name`` of ``plugin`` only, through pluggy's dispatch (and its tracing)."""
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)


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
    found.sort(key=lambda item: (item[1] != DISTRIBUTION, item[0].name))
    return found


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        names = ", ".join(impl.plugin_name for impl in impls)
        print(f"harness trace: {hook_name}({', '.join(kwargs)}) -> {names}", file=sys.stderr)

    def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        if outcome.exception is not None:
            print(f"harness trace: {hook_name} raised {outcome.exception!r}", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def _register(plugins: PluginSet, plugin: object, info: PluginInfo) -> None:
    """Ask ``plugin`` alone to register its objects of every kind."""
    for kind, (hook_name, _, _) in KINDS.items():
        if not hasattr(plugin, hook_name):
            continue

        def register(target: Any, name: str | None = None, *, kind: str = kind) -> None:
            added = plugins.registries[kind].add(target, name, info)
            info.provides.append(f"{kind}:{added}")

        try:
            plugins.call_alone(plugin, hook_name, register=register)
        except PLUGIN_ERRORS as exc:  # a plugin's own bug must not stop the others
            info.status = "broken"
            info.errors.append(f"{hook_name}: {type(exc).__name__}: {exc}")


def _env_list(name: str) -> list[str]:
    return [n.strip() for n in os.environ.get(name, "").split(",") if n.strip()]


def load_plugins(disabled: set[str] | None = None, extra: list[str] | None = None) -> PluginSet:
    """Create the plugin manager, load every plugin, and collect what they register."""
    disabled = set(_env_list("HARNESS_DISABLE_PLUGINS")) if disabled is None else disabled
    extra = _env_list("HARNESS_PLUGINS") if extra is None else extra
    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    if os.environ.get("HARNESS_TRACE_PLUGINS", "") not in ("", "0"):
        _trace(pm)
    plugins = PluginSet(pm)
    candidates: list[tuple[str, str, str, str, Callable[[], Any]]] = [
        ("core", defaults.__name__, DISTRIBUTION, __version__, lambda: defaults)]
    candidates += [(ep.name, ep.value, dist, version, ep.load) for ep, dist, version in _entry_points()]
    candidates += [(m, m, "HARNESS_PLUGINS", "local", lambda m=m: importlib.import_module(m)) for m in extra]
    for name, module, dist, version, load in candidates:
        info = PluginInfo(name=name, module=module, dist=dist, version=version)
        plugins.plugins.append(info)
        if name in disabled and module != defaults.__name__:  # the core defaults stay on
            info.status = "disabled"
            pm.set_blocked(name)
            continue
        try:
            plugin = load()
        except PLUGIN_ERRORS as exc:
            info.status = "broken"
            tail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            info.errors.append(f"Error importing plugin '{name}' ({module}): {tail}")
            continue
        try:
            pm.register(plugin, name=name)
        except PLUGIN_ERRORS as exc:  # pluggy rejects unknown hooks and bad signatures
            info.status = "broken"
            info.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [] if h.name.startswith("harness_"))
        _register(plugins, plugin, info)
    return plugins
