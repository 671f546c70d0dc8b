"""The shape of the code: imports go down the layers, no import cycles, plugins use only
the public surface, small modules. These walk the source with ``ast``: imports inside
functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = {"harness": ROOT / "harness", "harness_plugins": ROOT / "plugins"}
PLUGIN_SURFACE = {"harness", "harness.api", "harness.toolkit", "harness.hookspecs"}

# The core's layers, top to bottom, as docs/architecture.md draws them: a module may import
# its own layer and those below it, never one above. An entry places a module and those
# under it; the longest entry that names a module wins. So ``harness.toolkit``, the
# plugins' facade, is the top (it re-exports helpers of every layer; the core never
# imports it), while its own runtimes and training helpers, which the worker uses, are at
# the bottom; ``harness.warm`` (worker mode names) is at the bottom, its fork server and
# clients with the executor; and a module that no entry names sits at the bottom.
LAYERS: list[set[str]] = [
    {"harness.toolkit"},
    {"harness.cli"},
    {"harness.commands"},
    {"harness.display", "harness.display_compare"},
    {"harness.bench"},
    {"harness.plan", "harness.executor", "harness.gpus", "harness.workers", "harness.supervise",
     "harness.warm.server", "harness.warm.client", "harness.warm.child", "harness.warm.cold", "harness.warm.preload"},
    {"harness.suite", "harness.requirements"},
    {"harness.worker", "harness.runtime_phase"},
    {"harness.report", "harness.compare", "harness.leaderboard", "harness.table_writers"},
    {"harness.measure"},
    {"harness.results", "harness.results_store", "harness.artifacts"},
    {"harness.plugins", "harness.defaults", "harness.registry"},
    {"harness.api", "harness.hookspecs"},
    {"harness.verdict", "harness.outcomes", "harness.metrics"},
    {"harness.spec", "harness.result", "harness.config"},
    {"harness", "harness.warm", "harness.toolkit.runtimes", "harness.toolkit.training", "harness.toolkit.layers", "harness.errors",
     "harness.params", "harness.plural", "harness.machine", "harness.process", "harness.fingerprint"},
]


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


def layer_of(name: str) -> int:
    """Where module ``name`` sits in LAYERS (0 = the top)."""
    entry = max((e for layer in LAYERS for e in layer if name == e or name.startswith(e + ".")), key=len)
    return next(i for i, layer in enumerate(LAYERS) if entry in layer)


def test_imports_go_down_the_layers() -> None:
    known = modules()
    entries = [e for layer in LAYERS for e in layer]
    assert not [e for e in entries if e not in known], "LAYERS names modules that do not exist"
    assert len(entries) == len(set(entries)), "a module is in two layers"
    core = {name: path for name, path in known.items() if name == "harness" or name.startswith("harness.")}
    upward = [f"{name} (layer {layer_of(name)}) imports {m} (layer {layer_of(m)})"
              for name, path in sorted(core.items()) for m in sorted(imports(name, path, known))
              if layer_of(m) < layer_of(name)]
    assert not upward, "imports up the layers (tests/test_architecture.py: LAYERS):\n" + "\n".join(upward)


def test_no_import_cycles_anywhere() -> None:
    known = modules()
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert len(graph) > 60  # the walk really saw the project
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_module_taking_a_name_from_its_package_init_is_a_cycle(tmp_path: Path) -> None:
    """Why the cycle test covers plugin packages, whose ``__init__`` imports their modules
    to register them: a module that takes a name from that ``__init__`` closes a cycle; one
    that names a sibling module (``import pkg.b``, ``from pkg import b``) does not."""
    (tmp_path / "__init__.py").write_text("from pkg.a import A\n")
    (tmp_path / "a.py").write_text("import pkg.b\nfrom pkg import b\nfrom pkg import REGISTERED\n")
    (tmp_path / "b.py").write_text("")
    known = {"pkg": tmp_path / "__init__.py", "pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg", "pkg.b"}, "pkg.b": set()}
    assert find_cycle(graph) == ["pkg", "pkg.a", "pkg"]


def test_builtin_plugins_import_only_the_public_surface() -> None:
    known = modules()
    offenders = []
    for name, path in known.items():
        if not name.startswith("harness_plugins"):
            continue
        core = {m for m in imports(name, path, known) if m == "harness" or m.startswith("harness.")}
        offenders += [f"{name} imports {m}" for m in sorted(core - PLUGIN_SURFACE)]
    assert not offenders, "\n".join(offenders)


def third_party_modules() -> dict[str, Path]:
    """Every module of the distributions under contrib/ and examples/ (each a package
    directory beside its pyproject.toml), by import name."""
    found = {}
    for project in sorted([*ROOT.glob("contrib/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]):
        for init in project.parent.glob("*/__init__.py"):
            for path in init.parent.rglob("*.py"):
                parts = [*path.relative_to(project.parent).with_suffix("").parts]
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


def test_third_party_distributions_import_only_the_public_surface() -> None:
    """contrib/ and examples/ are written as any third party writes a plugin: harness.api,
    harness.toolkit, harness.hookspecs (and ``hookimpl`` from harness), nothing of the
    core's internals or of the built-in plugins."""
    theirs = third_party_modules()
    assert "harness_nncf" in theirs and "harness_example" in theirs
    known = modules() | theirs
    offenders = []
    for name, path in theirs.items():
        used = {m for m in imports(name, path, known) if m.split(".")[0] in ("harness", "harness_plugins")}
        offenders += [f"{name} imports {m}" for m in sorted(used - PLUGIN_SURFACE)]
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
