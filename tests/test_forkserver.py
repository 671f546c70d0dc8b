"""Warm workers: runs forked from a fork server behave as fresh interpreters do. Crashes,
exits, timeouts and left-behind children end the same way in both modes (warm: the shared
misbehaving bench of tests/conftest.py; cold: a fork server that cannot start, and
HARNESS_WORKERS=cold for the timeouts); a server that cannot start, or dies, means cold runs;
the server dies with its driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_faults import processes_tagged
from test_processes import alive, ended_within

from conftest import CRASHES, ROOT, cli, digits_suite, uses

PLUGIN_ENV = {"HARNESS_PLUGINS": "misbehave", "PYTHONPATH": str(ROOT / "tests" / "plugins")}
WARM = "warm: forked from a fork server"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux-only")


def rows_of(results: Path, suite: str) -> dict[str, dict]:
    lines = (results / suite / "results.jsonl").read_text().splitlines()
    return {r["method"]: r for r in map(json.loads, lines)}


# -- in-process: the pieces ---------------------------------------------------------------------

def test_warm_is_refused_where_fork_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.warm import client

    monkeypatch.setenv("HARNESS_WORKERS", "cold")
    assert client.warm_unavailable() == "HARNESS_WORKERS=cold"
    monkeypatch.delenv("HARNESS_WORKERS")
    monkeypatch.setattr(client.sys, "platform", "darwin")
    assert "darwin" in client.warm_unavailable()
    monkeypatch.setattr(client.sys, "platform", "linux")
    assert client.warm_unavailable() is None


def test_a_cuda_run_is_cold_when_the_server_initialised_cuda() -> None:
    from types import SimpleNamespace

    from harness.supervise import why_cold

    cpu, cuda = SimpleNamespace(device="cpu"), SimpleNamespace(device="cuda:0")
    clean = SimpleNamespace(failure="", cuda=False)
    touched = SimpleNamespace(failure="", cuda=True)
    assert why_cold(cpu, clean) == "" and why_cold(cuda, clean) == ""
    assert why_cold(cpu, touched) == "" and why_cold(cuda, touched) == "the fork server initialised CUDA"
    assert why_cold(cpu, SimpleNamespace(failure="it broke", cuda=False)) == "it broke"
    assert why_cold(cpu, None, "HARNESS_WORKERS=cold") == "HARNESS_WORKERS=cold"


def test_the_worker_mode_defaults_to_cold(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.warm import MODE_VAR, worker_mode

    monkeypatch.delenv(MODE_VAR, raising=False)
    assert worker_mode() == "cold: fresh interpreter"
    monkeypatch.setenv(MODE_VAR, WARM)
    assert worker_mode() == WARM


@linux_only
def test_the_server_starts_without_touching_cuda_and_ends_when_closed(tmp_path: Path) -> None:
    from harness.warm.client import ForkServer

    server = ForkServer(tmp_path / "server.log")
    try:
        assert server.wait_ready() == "", (tmp_path / "server.log").read_text()
        assert server.cuda is False  # importing torch, torchao and the plugins must not initialise CUDA
        pid = server.proc.pid
        assert alive(pid)
    finally:
        server.close()
    assert not ended_within([pid], 5)


CODECARBON_IN_A_CHILD = """
import os, time
from codecarbon.core.resource_tracker import ResourceTracker
from harness.measure import carbon
from harness.warm.server import single_threaded
carbon.prepare()  # what the fork server does before forking
unsafe = single_threaded()  # and what it checks: no thread left to fork past
assert not unsafe, unsafe
pid = os.fork()
if pid == 0:
    setups = []  # the hardware set-up must not run again here: the child inherits its plan
    full_setup = ResourceTracker._run_full_hardware_setup
    ResourceTracker._run_full_hardware_setup = lambda self: setups.append(1) or full_setup(self)
    t0 = time.perf_counter()
    meter = carbon.HostEnergyMeter("FRA")
    meter.start()
    started = time.perf_counter() - t0
    cpu = next(h for h in meter._tracker._hardware if type(h).__name__ == "CPU")
    end = time.perf_counter() + 1.1
    while time.perf_counter() < end:
        sum(range(1000))
    reading = meter.stop()
    ok = not setups and cpu._pid == os.getpid() and reading.cpu_j > 0 and "FRA" in reading.intensity_provenance
    print(setups, started, cpu._pid == os.getpid(), reading.cpu_j, reading.provenance, flush=True)
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


@linux_only
def test_codecarbon_set_up_before_a_fork_is_inherited_by_the_child() -> None:
    pytest.importorskip("codecarbon")
    proc = subprocess.run([sys.executable, "-c", CODECARBON_IN_A_CHILD], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, JE_ARROW_MALLOC_CONF="background_thread:false"))  # as preload sets
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no RAPL" in proc.stdout or "counters" in proc.stdout  # the set-up's findings reach the child


@linux_only
def test_the_server_counts_native_threads_and_refuses_to_fork_past_them() -> None:
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests' / 'plugins')!r})\n"
              "from harness.warm.server import other_threads, single_threaded\n"
              "import torch, numpy  # numpy's OpenBLAS starts its pool at import: a throwaway fork ends it\n"
              "assert single_threaded() == '' and other_threads() == [], other_threads()\n"
              "import native_thread  # a thread nothing here can end\n"
              "print(single_threaded(limit_s=0.5))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "1 native thread still runs after its imports (named python)"


# -- end to end -----------------------------------------------------------------------------------

COLD = "cold: fresh interpreter (HARNESS_WORKERS=cold)"
BOTH_MODES = pytest.mark.parametrize("mode", [WARM, COLD], ids=["warm", "cold"])


def crashes_end_alike(rows: dict[str, dict], pids: list[int], mode: str) -> None:
    """What each misbehaving run of ``rows`` ends as, in worker mode ``mode``."""
    assert {r["env"].get("worker_mode") for name, r in rows.items() if name.startswith("test.") and r.get("env")} \
        == {mode}
    assert rows["test.leave-children"]["metrics"]["accuracy"] > 0.9  # an ok run (the model unchanged) as a baseline's
    assert "RuntimeError: this method always fails" in rows["test.raise"]["error"]
    segfault = rows["test.segfault"]
    assert segfault["status"] == "failed" and "SIGSEGV" in segfault["error"] and "about to crash" in segfault["error"]
    killed = rows["test.oom-killed"]["error"]
    assert "SIGKILL" in killed and "out of memory" in killed
    exited = rows["test.os-exit"]["error"]
    assert "exited with code 3 without writing a result" in exited and "leaving now" in exited
    assert rows["test.leave-children"]["status"] == "ok"
    assert len(pids) == 2
    assert not ended_within(pids, 5), f"children of the runs still running: {pids}"


@pytest.mark.e2e
@linux_only
def test_crashes_exits_and_left_children_end_alike_in_warm_workers(misbehave_bench) -> None:
    proc = misbehave_bench["proc"]
    assert "runs start cold" not in proc.stderr
    crashes_end_alike(misbehave_bench["rows"], list(misbehave_bench["pids"].values()), WARM)


@pytest.mark.e2e
@linux_only
def test_a_server_that_cannot_start_means_cold_runs_one_warning_and_crashes_end_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.warm import client

    broken = lambda *args: [sys.executable, "-c", "import sys; print('no torch here'); sys.exit(3)"]  # noqa: E731
    monkeypatch.setattr(client, "python_command", broken)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    suite = digits_suite(tmp_path, "modes", suite="timeout_s = 120", methods=uses(*CRASHES))
    proc = cli("bench", str(suite), "--results", str(tmp_path / "results"), "--jobs", "2", "--only", "test.*",
               env=PLUGIN_ENV | {"MISBEHAVE_PID_DIR": str(pid_dir)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("runs start cold") == 1 and "no torch here" in proc.stderr  # one warning for all
    crashes_end_alike(rows_of(tmp_path / "results", "modes"), [int(p.read_text()) for p in pid_dir.glob("*.pid")],
                      "cold: fresh interpreter (the fork server failed to start: no torch here)")


@pytest.mark.e2e
@linux_only
@BOTH_MODES
def test_a_hanging_run_is_killed_at_the_timeout_in_either_mode(tmp_path: Path, mode: str) -> None:
    timeout = 2 if mode == WARM else 6  # a cold worker imports torch and the plugins first (seconds on a busy machine)
    suite = digits_suite(tmp_path, "hang", suite=f"timeout_s = {timeout}", methods='[[methods]]\nuse = "test.hang"\n')
    proc = cli("bench", str(suite), "--results", str(tmp_path / "results"), "--only", "test.hang",
               env=PLUGIN_ENV | {"HARNESS_WORKERS": mode.split(":")[0]})
    assert proc.returncode == 1
    row = rows_of(tmp_path / "results", "hang")["test.hang"]
    assert row["status"] == "timeout"
    assert f"timeout_s = {timeout}" in row["error"] and "hanging now" in row["error"]
    assert timeout <= row["duration_s"] < 60  # killed at its timeout, not after (a hang guard, not a speed)


@pytest.mark.e2e
@linux_only
def test_a_server_with_a_native_thread_forks_nothing_and_says_why_once(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "threads", methods='[[methods]]\nuse = "test.native-thread"\n')
    proc = cli("bench", str(suite), "--results", str(tmp_path / "results"), "--only", "test.native-thread",
               env=PLUGIN_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.count("runs start cold") == 1, proc.stderr
    why = "the fork server forks nothing: 1 native thread still runs after its imports (named python)"
    assert why in proc.stderr
    rows = rows_of(tmp_path / "results", "threads")
    assert {r["status"] for r in rows.values()} == {"ok"}
    assert {r["env"]["worker_mode"] for r in rows.values()} == \
        {f"cold: fresh interpreter ({why}; a fork copies only one thread)"}


@pytest.mark.e2e
@linux_only
def test_the_server_and_its_workers_die_with_the_driver(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "orphans", suite="timeout_s = 120", methods='[[methods]]\nuse = "test.hang"\n')
    tag = uuid.uuid4().hex
    env = dict(os.environ, **PLUGIN_ENV, HARNESS_FORKSERVER_TEST=tag)
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", "bench", str(suite), "--results", str(tmp_path / "r"),
                               "--only", "test.hang"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    logs = tmp_path / "r" / "orphans" / "logs"
    deadline = time.monotonic() + 120
    while not any("hanging now" in p.read_text(errors="replace") for p in logs.glob("*.log")):
        if time.monotonic() > deadline or driver.poll() is not None:
            driver.kill()
            pytest.fail("the run never started hanging:\n" + driver.communicate()[0])
        time.sleep(0.1)
    parents = {p: int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) for p in processes_tagged(tag)}
    servers = [p for p, parent in parents.items() if parent == driver.pid]
    assert len(servers) == 1, parents
    assert [p for p, parent in parents.items() if parent == servers[0]], parents  # the worker it forked
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    for _ in range(50):
        if not processes_tagged(tag):
            break
        time.sleep(0.1)
    assert processes_tagged(tag) == []


@pytest.mark.e2e
@linux_only
def test_a_server_killed_mid_run_fails_that_run_and_the_rest_go_cold(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "lost", suite="timeout_s = 120", methods="""
        [[methods]]
        use = "test.hang"
        [[methods]]
        use = "prune.magnitude"
    """)
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", "bench", str(suite), "--results", str(tmp_path / "r")],
                              env=dict(os.environ, **PLUGIN_ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = tmp_path / "r" / "lost" / "logs"
    deadline = time.monotonic() + 120
    while not any("hanging now" in p.read_text(errors="replace") for p in logs.glob("*.log")):
        if time.monotonic() > deadline or driver.poll() is not None:
            driver.kill()
            pytest.fail("the run never started hanging:\n" + "".join(driver.communicate()))
        time.sleep(0.1)
    server = next(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and alive(int(p.name))
                  and b"harness.warm.server" in (p / "cmdline").read_bytes()
                  and int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == driver.pid)
    os.kill(server, signal.SIGKILL)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 1, out + err
    rows = rows_of(tmp_path / "r", "lost")
    assert rows["baseline"]["env"]["worker_mode"] == WARM
    assert rows["test.hang"]["status"] == "failed" and "fork server" in rows["test.hang"]["error"]
    assert rows["prune.magnitude"]["status"] == "ok"
    assert rows["prune.magnitude"]["env"]["worker_mode"] == "cold: fresh interpreter (the fork server ended)"
    assert err.count("runs start cold") == 1, err
