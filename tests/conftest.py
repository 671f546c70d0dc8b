"""Shared fixtures: an isolated model cache, offline Hugging Face, and a CLI runner."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.process import exclusive

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Under xdist each worker computes in one torch thread: two workers on two cores,
    each spinning two OpenMP threads over tiny matrices, run 3-4x slower than one each
    (the harness's own runs set their threads themselves, in their own processes)."""
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # the runs' processes, whose threads a suite leaves to torch
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked vision run where torchvision is installed (.venv-vision: make test);
    elsewhere they are deselected, not skipped."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("vision")])
        items[:] = [item for item in items if not item.get_closest_marker("vision")]


def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A directory of this test session shared by its xdist workers (``make test`` runs
    two; what is built there is built under a lock, :func:`harness.process.exclusive`)."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The builtin models train once into a cache shared by the session's xdist workers
    (``make test`` runs two), which wait on each other's training (a lock in the cache)
    rather than train twice: ``$HARNESS_TEST_CACHE`` (the Makefile's ``.cache/test``, kept
    across sessions, its models keyed by a hash of what decides their weights), else one
    of the session's own."""
    cache = Path(os.environ.get("HARNESS_TEST_CACHE") or shared_dir(tmp_path_factory, "harness-cache"))
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["HARNESS_CACHE"] = str(cache)
    os.environ.setdefault("HF_DATASETS_CACHE", str(cache / "hf-datasets"))  # not the user's ~/.cache
    return cache


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """``harness ARGS`` in a subprocess, as a user would run it: for what only a fresh
    process shows (start-up imports, exit codes after crashes). Prefer :func:`cli`."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``harness ARGS`` in this process (runs still get their own worker processes):
    the same exit code, stdout and stderr as :func:`run_cli`, without starting Python."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["harness", *args], code, out.getvalue(), err.getvalue())


def dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_suite(directory: Path, body: str, name: str = "suite.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


# A fast [measure] table for tests: timing figures exist but are not the point.
FAST_MEASURE = """
[measure]
batch_sizes = [1, 8]
warmup_s = 0.0
min_time_s = 0.05
min_iterations = 5
max_time_s = 1.0
energy = false
"""

# The least a run measures: for tests of processes, faults and plumbing, whose runs' figures
# only need to exist (each timed batch size costs a run ~0.25 s of warm-up and sampling).
QUICK_MEASURE = """
[measure]
batch_sizes = [1]
warmup_s = 0.0
min_time_s = 0.01
min_iterations = 3
max_time_s = 0.05
energy = false
"""


DIGITS_MLP = """
[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"
"""


def digits_suite(directory: Path, name: str, methods: str = "", *, suite: str = "",
                 measure: str = QUICK_MEASURE) -> Path:
    """A suite of the builtin digits MLP on the digits task, with ``methods`` (TOML),
    measured as little as a run can be (``measure``: another [measure] table)."""
    body = f"[suite]\nname = \"{name}\"\n{textwrap.dedent(suite)}\n{measure}\n{DIGITS_MLP}\n{textwrap.dedent(methods)}"
    return write_suite(directory, body)


# The one shared end-to-end bench: a method, a sweep and a chain on the digits MLP, two
# at a time, energy on. Tests of results, leaderboards, reports and provenance read it.
TINY_SUITE = f"""
[suite]
name = "tiny"
timeout_s = 300

[measure]
batch_sizes = [1, 8]
warmup_s = 0.0
min_time_s = 0.05
min_iterations = 5
max_time_s = 0.5
energy = true
sustained_s = 1.0
carbon_country = "DEU"

{DIGITS_MLP}

[[methods]]
name = "int8"
use = "quant.int8-dynamic"

[[methods]]
name = "magnitude-{{amount}}"
use = "prune.magnitude"
sweep = {{ amount = [0.5] }}

[[methods]]
name = "prune-ft-int8"
steps = [
  {{ use = "prune.magnitude", params = {{ amount = 0.5 }} }},
  {{ use = "train.finetune", params = {{ epochs = 1 }} }},
  {{ use = "quant.int8-dynamic" }},
]
"""


def once_per_session(tmp_path_factory: pytest.TempPathFactory, name: str,
                     run: Callable[[Path], subprocess.CompletedProcess]) -> tuple[Path, subprocess.CompletedProcess]:
    """``run(root)`` once per test session, whichever xdist worker asks first; the others
    wait for it and get the same (root, finished process)."""
    root = shared_dir(tmp_path_factory, name)
    record = root.with_name(name + ".proc.json")  # beside root: root holds only what run wrote
    with exclusive(root):
        if not record.exists():
            proc = run(root)
            record.write_text(json.dumps([proc.args, proc.returncode, proc.stdout, proc.stderr]))
    return root, subprocess.CompletedProcess(*json.loads(record.read_text()))


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """(root, suite file, the finished `harness bench` process); results in root/results."""
    root, proc = once_per_session(tmp_path_factory, "tiny", lambda root: run_cli(
        "bench", str(write_suite(root, TINY_SUITE)), "--results", str(root / "results"), "--jobs", "2", cwd=root))
    return root, root / "suite.toml", proc


# The one shared bench of misbehaving methods (tests/plugins/misbehave.py), warm workers, two
# at a time: isolation (test_isolation.py), processes left behind, logs and temp dirs
# (test_processes.py), and the warm half of the fork server's fault tests (test_forkserver.py).
def uses(*names: str) -> str:
    """``[[methods]]`` tables (TOML) that use each of ``names`` as it is."""
    return "".join(f'[[methods]]\nuse = "{name}"\n' for name in names)


CRASHES = ("test.raise", "test.segfault", "test.oom-killed", "test.os-exit", "test.leave-children")
MISBEHAVING = uses(*CRASHES, "test.oom", "test.chatty", "test.skip", "broken.method", "quant.int8-dynamic") + """
[[methods]]
name = "awq4"
use = "quant.awq"
params = { bits = 4 }
[[methods]]
name = "fq-{bits}"
use = "example.fake-quant"
sweep = { bits = [2, 8] }
"""  # the last: examples/harness-example, installed as a user would (the Makefile does)
MISBEHAVE_LOG_CAP = 64 << 10  # HARNESS_LOG_CAP_BYTES of that bench: test.chatty prints ~5 MB


@pytest.fixture(scope="session")
def misbehave_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The shared misbehaving bench, run from a folder holding a ``torch.py`` that would shadow
    torch in any child started with the current directory on its path (it writes ``imported``),
    with a stale run dir of a dead driver in its ``$TMPDIR``. Its ``root`` holds ``results``,
    ``pids`` (``child.pid``, ``daemon.pid``: what test.leave-children left) and ``hook.log``."""
    def bench(root: Path) -> subprocess.CompletedProcess:
        here, tmp, pids = root / "here", root / "tmp", root / "pids"
        for folder in (here, tmp, pids):
            folder.mkdir()
        (here / "torch.py").write_text(
            f"import sys\nwith open({str(root / 'imported')!r}, 'a') as fh:\n    fh.write(repr(sys.argv) + '\\n')\n")
        stale = tmp / f"harness-runs-{os.getuid()}" / f"harness-run-{dead_pid()}-stale"  # what a driver killed with -9 left
        stale.mkdir(parents=True)
        (stale / "spec.json").write_text("{}")
        (root / "stale.txt").write_text(str(stale))
        suite = digits_suite(root, "misbehave", suite="timeout_s = 120", methods=MISBEHAVING)
        return run_cli("bench", str(suite), "--results", str(root / "results"), "--jobs", "2", cwd=here, env={
            "HARNESS_PLUGINS": "misbehave,broken_import", "PYTHONPATH": str(ROOT / "tests" / "plugins"),
            "MISBEHAVE_PID_DIR": str(pids), "MISBEHAVE_RESULT_LOG": str(root / "hook.log"), "TMPDIR": str(tmp),
            "HARNESS_LOG_CAP_BYTES": str(MISBEHAVE_LOG_CAP)})

    root, proc = once_per_session(tmp_path_factory, "misbehave", bench)
    lines = (root / "results" / "misbehave" / "results.jsonl").read_text().splitlines()
    pids = {p.stem: int(p.read_text()) for p in (root / "pids").glob("*.pid")}
    yield {"root": root, "proc": proc, "rows": {r["method"]: r for r in map(json.loads, lines)}, "pids": pids,
           "stale": Path((root / "stale.txt").read_text())}
    for pid in pids.values():  # what a failing bench left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def zoo(model_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """Tiny real models and data sets (tests/zoo.py), each built once: kept with the builtin
    models under ``$HARNESS_TEST_CACHE``, keyed by tests/zoo.py and the versions of the
    libraries that build them; without that variable, once per session."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    from zoo import Zoo

    if not os.environ.get("HARNESS_TEST_CACHE"):
        return Zoo(shared_dir(tmp_path_factory, "zoo"))
    key = hashlib.sha256((ROOT / "tests" / "zoo.py").read_bytes())
    for name in ("torch", "transformers", "tokenizers", "pillow", "numpy", "scikit-learn"):
        with contextlib.suppress(PackageNotFoundError):  # .venv-vision has fewer
            key.update(f"{name} {version(name)}".encode())
    root = model_cache / f"zoo-{key.hexdigest()[:16]}"
    root.mkdir(exist_ok=True)
    return Zoo(root)


@pytest.fixture(scope="session")
def zoo_bench(zoo, tmp_path_factory: pytest.TempPathFactory):
    """(root, the finished `harness bench`, {(model, task, method): row}) of one suite of every
    model source × task kind (tests/zoo.py: zoo_suite), two runs at a time."""
    import json

    from zoo import zoo_suite

    root, proc = once_per_session(tmp_path_factory, "zoo-bench", lambda root: cli(
        "bench", str(zoo_suite(zoo, root)), "--results", str(root / "results"), "--jobs", "2"))
    lines = (root / "results" / "zoo" / "results.jsonl").read_text().splitlines()
    rows = {(r["model"], r["task"], r["method"]): r for r in map(json.loads, lines)}
    return root, proc, rows
