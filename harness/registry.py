"""One registry model for every kind of plugin object (methods, sources, task kinds,
executors, reporters).

An entry is a class, checked when it is registered, or a lazy ``"module:attr"`` string,
imported (:func:`pkgutil.resolve_name`) and checked the first time it is looked up: an
executor that needs Ray costs nothing until a suite runs with it.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Entry:
    name: str
    target: Any  # the class, or "module:attr" until resolved
    plugin: Any  # the PluginInfo of the plugin that registered it

    @property
    def lazy(self) -> bool:
        return isinstance(self.target, str)


class Registry(Generic[T]):
    """Named classes of one kind, each a subclass of ``base``; ``check(cls)`` returns
    why a class cannot be registered (beyond the subclass test), or None."""

    def __init__(self, kind: str, base: type[T], check: Callable[[type], str | None] | None = None):
        self.kind, self.base, self._check = kind, base, check or (lambda cls: None)
        self._entries: dict[str, Entry] = {}

    def problem(self, obj: Any) -> str | None:
        """Why ``obj`` is not a valid class of this kind, or None."""
        if not (isinstance(obj, type) and issubclass(obj, self.base)):
            return f"registered {obj!r}, which is not a subclass of harness.api.{self.base.__name__}"
        name = getattr(obj, "name", None)
        if not isinstance(name, str) or not name:
            return f"{obj.__name__} has no 'name'"
        return self._check(obj)

    def add(self, target: Any, name: str | None, plugin: Any) -> str:
        """Register ``target`` (a class, or ``"module:attr"`` with ``name``); return its name."""
        if isinstance(target, str):
            if ":" not in target or not name:
                raise TypeError(f"a lazy {self.kind} is registered as register('module:attr', name='...'), "
                                f"got register({target!r}, name={name!r})")
        else:
            problem = self.problem(target)
            if problem:
                raise TypeError(problem)
            if name is not None and name != target.name:
                raise ValueError(f"register(..., name={name!r}) differs from {target.__name__}.name {target.name!r}")
            name = target.name
        existing = self._entries.get(name)
        if existing is not None:
            raise ValueError(f"{self.kind} '{name}' is already registered by plugin '{existing.plugin.name}'")
        self._entries[name] = Entry(name, target, plugin)
        return name

    def entry(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``, imported now if it was lazy.

        :raises KeyError: nothing is registered under ``name``.
        :raises ImportError: a lazy entry's module cannot be imported.
        :raises TypeError: a lazy entry resolved to something that is not of this kind.
        """
        entry = self._entries[name]
        if entry.lazy:
            obj = pkgutil.resolve_name(entry.target)
            problem = self.problem(obj)
            if problem:
                raise TypeError(f"{self.kind} '{name}' ({entry.target}): {problem}")
            entry.target = obj
        return entry.target
