"""The fork server daemon (HARNESS_WORKERS=daemon): kept between benches, it serves only
benches whose interpreter, code, installs, environment and preload match its own; a bench
that is killed has its workers killed; it leaves when idle, or when stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from test_faults import processes_tagged
from test_processes import alive

from conftest import cli, digits_suite

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux-only")


def test_the_key_follows_what_the_imports_depend_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.warm.daemon_key import key

    base = key(False, ["method:prune.magnitude", "source:builtin"])
    assert key(False, ["source:builtin", "method:prune.magnitude"]) == base  # order does not matter
    assert key(True, ["method:prune.magnitude", "source:builtin"]) != base  # codecarbon's set-up
    assert key(False, ["method:quant.int8-weight", "source:builtin"]) != base  # torchao
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    assert key(False, ["method:prune.magnitude", "source:builtin"]) == base  # where a bench starts from
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # e.g. read once, when a library is imported
    changed = key(False, ["method:prune.magnitude", "source:builtin"])
    assert changed != base
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # `taskset -c 0 harness bench`: forked
    assert key(False, ["method:prune.magnitude", "source:builtin"]) != changed  # workers inherit the daemon's


@linux_only
def test_a_daemon_greets_each_driver_and_leaves_when_idle(tmp_path: Path) -> None:
    from harness.warm.server import Server

    path = str(tmp_path / "d.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(4)
    server = Server(0, listener=listener, idle_s=0.3, hello={"cuda": False, "pid": 42})
    try:
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        for _ in range(2):  # one driver after another
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as driver:
                driver.connect(path)
                assert json.loads(driver.recv(1 << 16)) == {"cuda": False, "pid": 42, "ready": True}
            time.sleep(0.1)  # shorter than the idle limit: still there
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as rude, \
                socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as polite:
            rude.connect(path)
            polite.connect(path)
            assert json.loads(rude.recv(1 << 16))["ready"] and json.loads(polite.recv(1 << 16))["ready"]
            rude.send(b"{not json")  # one driver talking nonsense is dropped, and no one else
            assert rude.recv(1 << 16) == b""
            assert thread.is_alive()
            polite.send(json.dumps({"op": "reap", "id": 7}).encode())  # an id it never had: nothing happens
            time.sleep(0.1)
            assert thread.is_alive()
        thread.join(timeout=5)
        assert not thread.is_alive(), "the daemon did not leave when idle"
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        listener.close()


def _daemon_pid(results: Path, suite: str) -> set[int]:
    rows = [json.loads(line) for line in (results / suite / "results.jsonl").read_text().splitlines()]
    assert all(r["status"] == "ok" for r in rows), rows
    modes = {r["env"]["worker_mode"] for r in rows}
    assert all(m.startswith("warm: forked from fork server daemon ") for m in modes), modes
    return {int(m.split("daemon ")[1].split()[0]) for m in modes}


@pytest.mark.e2e
@linux_only
def test_benches_share_one_daemon_and_a_killed_bench_loses_only_its_workers(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "plugins"))  # the driver's plugins, in this process
    tag = uuid.uuid4().hex  # in the environment: a daemon of this test alone
    gate = tmp_path / "hang"  # test.hang hangs only while it exists: the same plugins (and daemon) in each bench
    env = {"HARNESS_WORKERS": "daemon", "HARNESS_DAEMON_IDLE_S": "120", "HARNESS_DAEMON_TEST": tag,
           "HARNESS_PLUGINS": "misbehave", "PYTHONPATH": str(Path(__file__).parent / "plugins"),
           "MISBEHAVE_HANG_WHILE": str(gate)}
    suite = digits_suite(tmp_path, "kept", suite="timeout_s = 120", methods="""
        [[methods]]
        use = "prune.magnitude"
        [[methods]]
        use = "test.hang"
    """)
    driver, pid = None, 0
    try:
        first = cli("bench", str(suite), "--results", str(tmp_path / "a"), env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        (pid,) = _daemon_pid(tmp_path / "a", "kept")
        second = cli("bench", str(suite), "--results", str(tmp_path / "b"), env=env)
        assert second.returncode == 0 and "warning" not in second.stderr, second.stdout + second.stderr
        assert _daemon_pid(tmp_path / "b", "kept") == {pid}  # no second daemon: the first one forked them
        listed = cli("daemon", env=env)
        assert f"daemon {pid}: up" in listed.stdout and "leaves after 120 s idle" in listed.stdout

        gate.touch()
        driver = subprocess.Popen([sys.executable, "-m", "harness.cli", "bench", str(suite), "--results",
                                   str(tmp_path / "c")], env=dict(os.environ, **env),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logs, deadline = tmp_path / "c" / "kept" / "logs", time.monotonic() + 60
        while not any("hanging now" in p.read_text(errors="replace") for p in logs.glob("*.log")):
            if time.monotonic() > deadline or driver.poll() is not None:
                driver.kill()
                pytest.fail("the run never started hanging:\n" + driver.communicate()[0])
            time.sleep(0.05)
        assert set(processes_tagged(tag)) - {driver.pid, pid}, "no worker forked from the daemon"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        for _ in range(50):
            if set(processes_tagged(tag)) == {pid}:
                break
            time.sleep(0.1)
        left = {p: (Path(f"/proc/{p}/cmdline").read_bytes()[:150], Path(f"/proc/{p}/stat").read_text()[:80])
                for p in processes_tagged(tag)}
        assert set(left) == {pid}, left  # the worker went with its bench; the daemon stays
        os.kill(pid, signal.SIGTERM)  # as `harness daemon --stop` does, for this test's daemon only
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.1)
        assert not alive(pid)
    finally:  # whatever failed: nothing of this test stays behind
        for leftover in processes_tagged(tag):
            os.kill(leftover, signal.SIGTERM)
        time.sleep(0.2 if processes_tagged(tag) else 0)
        for leftover in processes_tagged(tag):
            os.kill(leftover, signal.SIGKILL)
    assert f"daemon {pid}" not in cli("daemon", env=env).stdout


def test_idle_power_is_reused_only_within_idle_reuse_s(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from harness import bench

    root = tmp_path / "harness-runs-test"
    root.mkdir(mode=0o700)
    monkeypatch.setattr(bench, "private_runs_root", lambda: root)
    calls, ram_w = [], [3.0]

    class Helpers:  # stands in for the fork server's helper child: python -m harness.measure.idle
        def call(self, module: str, args: list[str]) -> tuple[int, list[str]]:
            calls.append((module, args))
            return 0, [json.dumps({"cpu_w": 0.5, "ram_w": ram_w[0], "gpu_w": None, "seconds": 2.0,
                                   "provenance": "measured"})]

    def runs(reuse_s: float) -> list:
        measure = SimpleNamespace(energy=True, carbon_country="DEU", idle_reuse_s=reuse_s)
        return [SimpleNamespace(device="cpu", measure=measure, idle=None) for _ in range(2)]

    out = SimpleNamespace(print=lambda *a, **k: None)
    fresh = runs(0)
    bench.measure_idle_power(fresh, out, Helpers())
    assert len(calls) == 1 and calls[0] == ("harness.measure.idle", ["cpu", "DEU"])  # once for both runs
    assert fresh[1].idle["provenance"] == "measured"
    bench.measure_idle_power(runs(0), out, Helpers())  # 0: a fresh window every bench
    assert len(calls) == 2
    kept = runs(600)
    bench.measure_idle_power(kept, out, Helpers())  # measured a moment ago: reused
    assert len(calls) == 2
    assert kept[0].idle["ram_w"] == 3.0 and "reused: measured 0 s before this bench (idle_reuse_s = 600)" in \
        kept[0].idle["provenance"]
    other = runs(600)
    other[0].measure.carbon_country = other[1].measure.carbon_country = "USA"  # another meter set-up: its own figure
    bench.measure_idle_power(other, out, Helpers())
    assert len(calls) == 3
    path = bench._idle_file(("cpu", "DEU"))
    path.write_text(json.dumps(dict(json.loads(path.read_text()), measured_at=time.time() - 700)))
    bench.measure_idle_power(runs(600), out, Helpers())  # too old
    assert len(calls) == 4
    path.unlink()
    ram_w[0] = None  # a figure with a part absent is not kept for later benches
    bench.measure_idle_power(runs(600), out, Helpers())
    bench.measure_idle_power(runs(600), out, Helpers())
    assert len(calls) == 6 and not path.exists()
    path.write_text('{"measured_at": 1e12, "idle": {"cpu_w": 1}}')  # a broken file: measured afresh
    bench.measure_idle_power(runs(600), out, Helpers())
    assert len(calls) == 7


def test_a_daemon_that_closes_before_greeting_is_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.warm import daemon
    from harness.warm.client import ForkServer

    peers, calls = [], []

    def connect(energy: bool, uses: list[str], limit_s: float) -> socket.socket:
        calls.append(uses)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if len(calls) == 1:
            theirs.close()  # left for idleness as this bench came: no greeting
        else:
            theirs.send(json.dumps({"ready": True, "cuda": False, "pid": 4242}).encode())
            peers.append(theirs)
        return mine

    monkeypatch.setattr(daemon, "connect", connect)
    server = ForkServer(tmp_path / "unused.log", uses=["source:builtin"], daemon=True)
    try:
        assert server.wait_ready() == "" and len(calls) == 2
        assert server.mode == "warm: forked from fork server daemon 4242 (kept between benches)"
    finally:
        server.close()
        for peer in peers:
            peer.close()
