"""What every section validator shares: the problems found so far and the plugins."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.params import build, nearest
from harness.requirements import requirement_problem


@dataclass
class Checker:
    path: Path
    plugins: Any  # harness.plugins.PluginSet
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def suite_dir(self) -> Path:
        return self.path.parent

    def build(self, cls: type, table: Any, where: str) -> Any | None:
        """``cls`` built from ``table``, or None with the problems recorded."""
        return build(cls, table, where, self.problems)

    def array(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            self.problems.append(f"{key}: expected an array of tables ([[{key}]]), got {type(value).__name__}")
            return []
        if not value:
            self.problems.append(f"{key}: at least one [[{key}]] entry is needed")
        return value

    def unique(self, names: list[str], key: str) -> None:
        for name, count in Counter(names).items():
            if count > 1:
                self.problems.append(f"{key}: name '{name}' is used more than once")

    def known(self, kind: str, name: str, where: str, what: str) -> bool:
        """Whether a plugin provides ``name``; report it as a problem when none does.

        An unknown method while some plugin is broken is a warning instead: the broken
        plugin may be the one that provides it, so only the runs that use it fail."""
        if self.plugins.get(kind, name) is not None:
            return True
        hint = nearest(name, self.plugins.names(kind))
        broken = self.plugins.broken()
        if kind == "method" and broken:
            culprits = "; ".join(f"'{p.name}': {p.errors[0]}" for p in broken)
            self.warnings.append(f"{where}: {what} '{name}' is not registered{hint} "
                                 f"(broken plugins: {culprits}); its runs will fail")
            return True
        self.problems.append(f"{where}: unknown {what} '{name}'{hint}")
        return False

    def installed(self, kind: str, name: str, where: str) -> bool:
        """Whether what the known ``name`` requires is installed; report it when it is not."""
        problem = requirement_problem(kind, name, self.plugins.lookup(kind, name), self.plugins.get(kind, name).plugin)
        if problem:
            self.problems.append(f"{where}: {problem}")
        return problem is None
