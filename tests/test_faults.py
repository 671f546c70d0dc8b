"""Faults around the driver, end to end: a plugin deletes the results file mid-suite, and
the driver itself is killed with SIGKILL. Each ends with every finished run's row stored
exactly once, no process left behind, no traceback, and the documented exit code."""

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

from harness.results import read_results

from conftest import ROOT, cli, digits_suite

pytestmark = pytest.mark.e2e  # runs `harness bench`
PLUGINS = str(ROOT / "tests" / "plugins")


def processes_tagged(tag: str) -> list[int]:
    """PIDs of live processes whose environment holds ``tag``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "environ").read_bytes():
                stat = (entry / "stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_deleted_results_file_stops_the_suite_and_every_finished_row_is_kept(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "vandal", methods="""
        [[methods]]
        use = "test.delete-results"
        [[methods]]
        use = "prune.magnitude"
    """)
    results = tmp_path / "r" / "vandal" / "results.jsonl"
    proc = cli("bench", str(suite), "--results", str(tmp_path / "r"),
               env={"HARNESS_PLUGINS": "vandal", "PYTHONPATH": PLUGINS, "VANDAL_TARGET": str(results)})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "was deleted while the suite ran" in proc.stderr and "Traceback" not in proc.stderr
    saved = next(results.parent.glob("results.jsonl.recovered-*"))
    stored = [r.method for r in read_results(saved, warn=False)]
    assert stored == ["baseline", "test.delete-results"]  # each finished run, once
    assert "prune.magnitude" not in proc.stdout  # the suite stopped: nothing ran after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_the_driver_leaves_no_worker_and_the_next_bench_goes_on(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "killed", suite="timeout_s = 120", methods="""
        [[methods]]
        use = "test.hang"
    """)
    tag = f"HARNESS_FAULT_TEST={uuid.uuid4().hex}"
    env = dict(os.environ, HARNESS_PLUGINS="misbehave", PYTHONPATH=PLUGINS, HARNESS_FAULT_TEST=tag.split("=")[1])
    driver = subprocess.Popen([sys.executable, "-m", "harness.cli", "bench", str(suite), "--results", str(tmp_path / "r")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = tmp_path / "r" / "killed" / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # baseline stored, and the hanging run under way
        logs = list((tmp_path / "r" / "killed" / "logs").glob("*.log")) if results.exists() else []
        if results.exists() and results.read_text().count("\n") == 1 and \
                any("hanging now" in log.read_text(errors="replace") for log in logs):
            break
        time.sleep(0.2)
    else:
        driver.kill()
        pytest.fail("the suite did not reach its hanging run:\n" + driver.communicate()[0])
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    for _ in range(50):  # the worker dies with its driver (PR_SET_PDEATHSIG)
        if not processes_tagged(tag.split("=")[1]):
            break
        time.sleep(0.1)
    assert processes_tagged(tag.split("=")[1]) == []
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["method"] for r in rows] == ["baseline"]  # stored once, intact
    again = cli("bench", str(suite), "--results", str(tmp_path / "r"), "--dry-run",
                env={"HARNESS_PLUGINS": "misbehave", "PYTHONPATH": PLUGINS})
    assert again.returncode == 0 and "2 runs selected, 1 would run" in again.stdout
