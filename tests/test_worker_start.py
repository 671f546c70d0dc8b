"""What warm and cold workers share: a run starts from the same state either way (its
peak RSS counts what the run added), and the driver's helper children (model
preparation, idle power) report their progress and failures as runs do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and fork")


HELPER = """
import sys

def main(argv):
    print("prepare: step 1 of " + argv[0], flush=True)
    print("noise on stderr", file=sys.stderr, flush=True)
    raise SystemExit("broken: " + argv[0])

if __name__ == "__main__":
    main(sys.argv[1:])
"""


def test_a_helper_childs_progress_and_failure_reach_the_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model preparation and idle power run as helper children (forked where a server is,
    here cold): their lines come as they are printed, their failure with its last line."""
    from harness.workers import Workers

    (tmp_path / "helper_probe.py").write_text(HELPER)
    monkeypatch.setenv("HARNESS_WORKERS", "cold")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    lines: list[str] = []
    code, tail = Workers().call("helper_probe", ["the model"], lines.append)
    assert code == 1 and lines[0] == "prepare: step 1 of the model"
    assert tail[-1] == "broken: the model" and "noise on stderr" in tail


RSS_ABOVE_START = """
import os, sys
from harness.measure import memory
runtime = bytearray(os.urandom(1 << 20)) * 60  # 60 MB standing in for torch and the plugins
import json  # and a module's file pages

def run():  # what a worker does: mark its start, reset the peak, add 30 MB, read the figure
    memory.mark_start()
    memory.reset_peak_rss()
    model = bytearray(30 << 20)
    for i in range(0, len(model), 4096):
        model[i] = 1
    return memory.peak_rss_figure(True)

if sys.argv[1] == "warm":  # forked after the runtime is loaded, as from the fork server
    r, w = os.pipe()
    if os.fork() == 0:
        os.write(w, json.dumps(run()).encode())
        os._exit(0)
    os.close(w)
    print(os.read(r, 1 << 16).decode())
else:  # cold: the runtime loaded in this fresh interpreter, then the run
    print(json.dumps(run()))
"""


@linux_only
def test_peak_rss_counts_what_the_run_added_alike_warm_and_cold() -> None:
    figures = {}
    for mode in ("warm", "cold"):
        proc = subprocess.run([sys.executable, "-c", RSS_ABOVE_START, mode], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        figures[mode] = json.loads(proc.stdout)
    for mb, how in figures.values():
        assert 30 <= mb < 40, figures  # the run's 30 MB, not the 60 MB runtime it started with
        assert "anonymous memory at the run's start" in how
    assert abs(figures["warm"][0] - figures["cold"][0]) < 3, figures
