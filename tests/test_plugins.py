"""Plugin discovery: built-ins, a third-party distribution, and broken plugins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.plugins import load_plugins

from conftest import ROOT, cli, run_cli

TEST_PLUGINS = {"PYTHONPATH": str(ROOT / "tests" / "plugins")}


def test_builtins_register_through_entry_points() -> None:
    registry = load_plugins(disabled=set(), extra=[])
    assert {"baseline", "quant.int8-dynamic", "prune.magnitude", "train.finetune"} <= set(registry.names("method"))
    assert {"builtin", "file"} <= set(registry.names("source"))
    assert "classification" in registry.names("task")
    assert "local" in registry.names("executor")
    core = next(p for p in registry.plugins if p.name == "core")
    assert core.dist == "compression-harness" and core.status == "ok" and "harness_register_methods" in core.hooks


def test_plugins_command_is_fast_and_imports_no_torch() -> None:
    code = ("import sys, harness.cli; rc = harness.cli.main(['plugins']); "
            "print('HEAVY', [m for m in ('torch', 'pandas', 'transformers') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("module, fragment", [
    ("broken_import", "Error importing plugin 'broken_import' (broken_import): ModuleNotFoundError"),
    ("duplicate", "method 'baseline' is already registered by plugin 'core'"),
    ("bad_registration", "not a subclass of harness.api.Method"),
])
def test_broken_plugins_are_listed_as_broken(module: str, fragment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    proc = cli("plugins", env={"HARNESS_PLUGINS": module})
    assert proc.returncode == 1  # something is broken: say so
    flat = " ".join(proc.stdout.split())
    assert "broken" in flat and module in flat, proc.stdout
    registry = load_plugins(extra=[module])
    plugin = next(p for p in registry.plugins if p.name == module)
    assert plugin.status == "broken" and fragment in plugin.errors[0]
    assert registry.get("method", "baseline").plugin.name == "core"  # built-ins unaffected


def test_a_method_may_name_a_family_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    registry = load_plugins(extra=["own_family"])
    assert registry.lookup("method", "test.low-rank").family == "low-rank"
    plugin = next(p for p in registry.plugins if p.name == "own_family")
    assert plugin.status == "broken" and plugin.errors[0].endswith(
        "Spaced.family 'Low Rank' must be a lowercase word such as quantization, pruning, sparsity, distillation, "
        "training (or one of your own, e.g. 'low-rank')")


def test_disable_plugins_blocks_by_name() -> None:
    registry = load_plugins(disabled={"pruning"}, extra=[])
    assert registry.get("method", "prune.magnitude") is None
    assert next(p for p in registry.plugins if p.name == "pruning").status == "disabled"
    proc = cli("plugins", env={"HARNESS_DISABLE_PLUGINS": "pruning"})
    assert "disabled" in proc.stdout


@pytest.mark.e2e
def test_third_party_plugin_is_discovered_and_runs(misbehave_bench) -> None:
    """examples/harness-example, installed as a user would (``pip install``; the Makefile does);
    its sweep runs in the shared misbehaving bench (tests/conftest.py)."""
    proc = run_cli("plugins", env={"COLUMNS": "400"})
    assert "harness-example" in proc.stdout and "0.2.0" in proc.stdout
    assert "method:example.fake-quant" in proc.stdout
    methods = run_cli("methods", env={"COLUMNS": "400"})
    assert "example.fake-quant" in methods.stdout and "bits=4" in methods.stdout

    rows = misbehave_bench["rows"]
    assert rows["fq-8"]["status"] == "ok" and rows["fq-2"]["status"] == "ok"
    assert rows["fq-8"]["steps"][0]["info"]["kernels"].startswith("simulated")
    # 8 bits keeps the accuracy, 2 bits loses some: the plugin really changed the model
    assert rows["fq-8"]["metrics"]["accuracy"] >= rows["baseline"]["metrics"]["accuracy"] - 0.02
    assert rows["fq-2"]["metrics"]["accuracy"] < rows["fq-8"]["metrics"]["accuracy"]
    # in the run's identity: the version and the hash of the plugin's code
    assert rows["fq-8"]["spec"]["versions"]["plugins"]["example"].startswith("0.2.0+code.")


def test_every_hook_is_typed_and_documented() -> None:
    import inspect

    from harness import hookspecs

    readme = (ROOT / "README.md").read_text()
    hooks = [name for name, fn in vars(hookspecs).items() if name.startswith("harness_") and callable(fn)]
    assert "harness_register_methods" in hooks and "harness_result" in hooks
    for name in hooks:
        fn = getattr(hookspecs, name)
        assert ":param" in (fn.__doc__ or ""), f"{name} has no documented params"
        assert all(p.annotation is not inspect.Parameter.empty for p in inspect.signature(fn).parameters.values())
        assert name in readme, f"{name} is not in the README"
