"""The ``file`` model source on real local files: TorchScript, full pickles, state_dicts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from harness.api import RunContext
from harness_plugins.sources.builtin.digits import load_trained
from harness_plugins.sources.file import FileOptions, FileSource


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Module:
    return load_trained("digits-mlp")


def ctx(directory: Path) -> RunContext:
    return RunContext(device="cpu", seed=0, work_dir=directory, suite_dir=directory)


def same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.rand(4, 64)
    with torch.inference_mode():
        return torch.equal(a(x), b(x))


def test_torchscript_loads_and_computes_the_same(mlp, tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(mlp), tmp_path / "mlp.pt")
    loaded = FileSource().load("mlp.pt", FileOptions(), ctx(tmp_path))
    assert same_outputs(mlp, loaded)


def test_a_pickled_model_needs_the_suite_to_opt_in(mlp, tmp_path: Path) -> None:
    torch.save(mlp, tmp_path / "full.pt")
    with pytest.raises(ValueError, match=r"unsafe_pickle = true"):
        FileSource().load("full.pt", FileOptions(), ctx(tmp_path))
    loaded = FileSource().load("full.pt", FileOptions(unsafe_pickle=True), ctx(tmp_path))
    assert same_outputs(mlp, loaded)


def test_a_state_dict_is_refused_with_the_fix(mlp, tmp_path: Path) -> None:
    torch.save(mlp.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=r"holds a state_dict, not a model"):
        FileSource().load("weights.pt", FileOptions(), ctx(tmp_path))


def test_check_ref_finds_missing_files_relative_to_the_suite(mlp, tmp_path: Path) -> None:
    torch.jit.save(torch.jit.script(mlp), tmp_path / "there.pt")
    assert FileSource().check_ref("there.pt", FileOptions(), tmp_path) is None
    assert "does not exist" in FileSource().check_ref("nothere.pt", FileOptions(), tmp_path)


@pytest.mark.parametrize(("content", "expected"), [
    (b"", r"model file '.*empty\.pt' is empty; expected a torch\.export archive, TorchScript archive "
          r"or torch\.save checkpoint$"),
    (b"name,accuracy\n", r"model file '.*empty\.pt' is not a torch\.export archive, TorchScript archive or "
                         r"torch\.save checkpoint \(first bytes: b'name,accuracy\\n'\)$"),
    (b"PK\x05\x06" + bytes(18), r"is not a torch\.export archive"),  # an empty zip
], ids=["empty", "text", "empty-zip"])
def test_a_file_that_is_no_model_is_named_with_what_was_expected(content: bytes, expected: str,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(content)
    problem = FileSource().check_ref("empty.pt", FileOptions(), tmp_path)  # harness validate
    assert problem is not None and re.search(expected, problem), problem
    with pytest.raises(ValueError, match=expected):
        FileSource().load("empty.pt", FileOptions(), ctx(tmp_path))


def test_an_exported_program_loads_and_computes_the_same(mlp, tmp_path: Path) -> None:
    batch = torch.export.Dim("batch")  # the harness times several batch sizes
    program = torch.export.export(mlp, (torch.rand(2, 64),), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, tmp_path / "mlp.pt2")
    loaded = FileSource().load("mlp.pt2", FileOptions(), ctx(tmp_path))
    assert same_outputs(mlp, loaded)


@pytest.mark.parametrize("kind", ["pt2", "torchscript"])
def test_graph_models_run_their_baseline_and_methods_skip_naming_the_fix(mlp, tmp_path: Path, kind: str) -> None:
    """Through the worker's phases (in this process): the baseline is measured; a method
    skips with the cause (a graph, not an eager nn.Module) and what to do."""
    from harness.plan import build_plan
    from harness.plugins import load_plugins
    from harness.suite import load_suite
    from harness.worker import run

    from conftest import FAST_MEASURE, write_suite

    if kind == "pt2":
        batch = torch.export.Dim("batch")
        program = torch.export.export(mlp, (torch.rand(2, 64),), dynamic_shapes={"x": {0: batch}})
        torch.export.save(program, tmp_path / "model.pt2")
        ref = "model.pt2"
    else:
        torch.jit.save(torch.jit.script(mlp), tmp_path / "model.pt")
        ref = "model.pt"
    suite = write_suite(tmp_path, f"""
        [suite]
        name = "graph"
        {FAST_MEASURE}
        [[models]]
        name = "g"
        source = "file"
        ref = "{ref}"
        [[tasks]]
        name = "digits"
        kind = "classification"
        dataset = "digits"
        [[methods]]
        use = "quant.int8-dynamic"
    """)
    plugins = load_plugins()
    baseline, int8 = (run(spec, plugins) for spec in build_plan(load_suite(suite, plugins), plugins))
    assert baseline.status == "ok", baseline.error
    assert baseline.metrics["accuracy"] > 0.9 and baseline.metrics["latency_ms_p50"] > 0
    assert int8.status == "skipped"
    assert "can be evaluated and measured, but methods change an eager nn.Module's layers" in int8.error


NET = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x)


if __name__ == "__main__":
    raise SystemExit("a script's own code must not run when the harness imports it")
"""


def pickle_net(directory: Path, module: str, monkeypatch: pytest.MonkeyPatch) -> torch.nn.Module:
    """Net from ``directory/<module>.py``, pickled to ``net.pt`` as ``<module>.Net``, or as
    ``__main__.Net`` (module ``"__main__"``: saved by the script that defines the class)."""
    import importlib.util
    import sys

    (directory / "train.py").write_text(NET)
    spec = importlib.util.spec_from_file_location("train", directory / "train.py")
    code = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(code)
    if module == "__main__":
        code.Net.__module__ = "__main__"
        monkeypatch.setattr(sys.modules["__main__"], "Net", code.Net, raising=False)
    else:
        monkeypatch.setitem(sys.modules, "train", code)
    net = code.Net()
    torch.save(net, directory / "net.pt")
    monkeypatch.undo()  # the runs must find the code through the options alone
    return net


def test_python_path_finds_the_models_own_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "src").mkdir()
    net = pickle_net(tmp_path / "src", "train", monkeypatch)
    (tmp_path / "src" / "net.pt").rename(tmp_path / "net.pt")
    bare = FileOptions(unsafe_pickle=True)
    assert re.search(r"needs module train for its model class, which is not importable \(python_path: none set\); "
                     r"add the folder holding train to options.python_path", FileSource().check_ref("net.pt", bare, tmp_path))
    options = FileOptions(unsafe_pickle=True, python_path=("src",))
    assert FileSource().check_ref("net.pt", options, tmp_path) is None
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "train", raising=False)
    assert same_outputs(net, FileSource().load("net.pt", options, ctx(tmp_path)))


def test_a_class_pickled_from_a_script_is_named_and_read_from_main_module(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    net = pickle_net(tmp_path, "__main__", monkeypatch)
    problem = FileSource().check_ref("net.pt", FileOptions(unsafe_pickle=True), tmp_path)
    assert "holds class Net defined in the script that saved it (pickled as __main__.Net); move the class" in problem
    assert "or set options.main_module" in problem
    options = FileOptions(unsafe_pickle=True, python_path=(".",), main_module="train")
    assert FileSource().check_ref("net.pt", options, tmp_path) is None
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "train", raising=False)
    loaded = FileSource().load("net.pt", options, ctx(tmp_path))
    assert type(loaded).__module__ == "train" and same_outputs(net, loaded)


def test_code_options_need_unsafe_pickle() -> None:
    with pytest.raises(ValueError, match="python_path and main_module are for unpickling a model's code: set "
                                         "unsafe_pickle = true too"):
        FileOptions(python_path=("src",))
    with pytest.raises(ValueError, match="main_module 'train.py' must be a module name"):
        FileOptions(unsafe_pickle=True, main_module="train.py")
