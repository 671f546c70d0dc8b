"""The shape of the code: no import cycles, plugins use only the public surface, small
modules. These walk the source with ``ast``: imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = {"harness": ROOT / "harness", "harness_plugins": ROOT / "plugins"}
PLUGIN_SURFACE = {"harness", "harness.api", "harness.toolkit", "harness.hookspecs"}


def modules() -> dict[str, Path]:
    """Every module of harness/ and plugins/ by its import name."""
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its body."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # "from pkg import module" imports the module
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in out if m in known and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise StopIteration(stack[stack.index(nxt):] + [nxt])
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    try:
        for name in sorted(graph):
            if name not in state:
                visit(name)
    except StopIteration as found:
        return found.value
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_anywhere() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert len(graph) > 60  # the walk really saw the project
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_builtin_plugins_import_only_the_public_surface() -> None:
    known = modules()
    offenders = []
    for name, path in known.items():
        if not name.startswith("harness_plugins"):
            continue
        core = {m for m in imports(name, path, known) if m == "harness" or m.startswith("harness.")}
        offenders += [f"{name} imports {m}" for m in sorted(core - PLUGIN_SURFACE)]
    assert not offenders, "\n".join(offenders)


def test_modules_stay_small_and_the_worker_reads_as_phases() -> None:
    too_long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in modules().values()
                if (n := len(p.read_text().splitlines())) > 300]
    assert not too_long, too_long
    tree = ast.parse((ROOT / "harness" / "worker.py").read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    long = [f"{f.name}: {f.end_lineno - f.lineno + 1} lines" for f in functions if f.end_lineno - f.lineno + 1 > 40]
    assert not long, long
    assert {"load", "compress", "execute", "run"} <= {f.name for f in functions}
