"""The one registry model: classes checked at register, lazy "module:attr" entries
checked at lookup, one register signature, hooks dispatched (and traced) by pluggy."""

from __future__ import annotations

import pytest

from harness.api import Executor, Method
from harness.bench import make_executor
from harness.errors import UsageError
from harness.plugins import PluginInfo, load_plugins
from harness.registry import Registry

from conftest import ROOT, cli

OWNER = PluginInfo("owner", "owner", "dist", "1")


class Local(Executor):
    name = "here"


def test_a_class_is_checked_when_registered_and_a_duplicate_names_the_first_owner() -> None:
    registry = Registry("executor", Executor)
    assert registry.add(Local, None, OWNER) == "here" and registry.get("here") is Local
    with pytest.raises(ValueError, match="already registered by plugin 'owner'"):
        registry.add(Local, None, PluginInfo("late", "late", "d", "1"))
    with pytest.raises(TypeError, match="not a subclass of harness.api.Executor"):
        registry.add(Method, None, OWNER)


def test_a_lazy_entry_is_imported_and_checked_only_at_lookup() -> None:
    registry = Registry("executor", Executor)
    registry.add("harness.executor:LocalExecutor", "local", OWNER)
    registry.add("harness.defaults:Baseline", "wrong", OWNER)  # a Method, not an Executor
    registry.add("no_such_module_anywhere:Thing", "missing", OWNER)
    assert registry.entry("local").lazy and registry.names() == ["local", "missing", "wrong"]
    assert registry.get("local").__name__ == "LocalExecutor" and not registry.entry("local").lazy
    with pytest.raises(TypeError, match="executor 'wrong'.*not a subclass of harness.api.Executor"):
        registry.get("wrong")
    with pytest.raises(ImportError):
        registry.get("missing")
    with pytest.raises(TypeError, match=r"register\('module:attr', name='...'\)"):
        registry.add("no-colon", "x", OWNER)


def test_the_old_two_argument_form_marks_the_plugin_broken_with_the_new_form(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    plugins = load_plugins(extra=["legacy_register"])
    legacy = next(p for p in plugins.plugins if p.name == "legacy_register")
    assert legacy.status == "broken" and "register('module:attr', name='...')" in legacy.errors[0]
    assert plugins.get("executor", "local") is not None  # the core defaults are unaffected


def test_an_executor_whose_module_cannot_import_is_one_sentence(monkeypatch) -> None:
    plugins = load_plugins()
    plugins.registries["executor"].add("no_such_module_anywhere:Thing", "far", OWNER)
    with pytest.raises(UsageError, match="executor 'far' cannot be used: .*install its extra"):
        make_executor(plugins, "far", 1)
    with pytest.raises(UsageError, match="unknown executor 'rey'; did you mean 'ray'"):
        make_executor(plugins, "rey", 1)


def test_core_defaults_cannot_be_disabled() -> None:
    plugins = load_plugins(disabled={"core", "pruning"}, extra=[])
    assert plugins.get("method", "baseline") is not None and plugins.get("reporter", "csv") is not None
    assert plugins.get("method", "prune.magnitude") is None


def test_trace_plugins_prints_every_hook_call() -> None:
    proc = cli("plugins", env={"HARNESS_TRACE_PLUGINS": "1"})
    assert "harness trace: harness_register_methods(register) -> quantization" in proc.stderr
    assert "harness trace" not in cli("plugins").stderr


def test_a_plugin_that_exits_at_import_is_broken_not_the_end(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    plugins = load_plugins(extra=["exits_at_import"])
    plugin = next(p for p in plugins.plugins if p.name == "exits_at_import")
    assert plugin.status == "broken" and "SystemExit" in plugin.errors[0]
    proc = cli("plugins", env={"HARNESS_PLUGINS": "exits_at_import"})
    assert proc.returncode == 1 and "exits_at_import" in proc.stdout
