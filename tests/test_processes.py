"""The processes of a run: started without the current directory on their path, ended
whole after every run (children, daemons), with bounded logs and no temp dirs left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MISBEHAVE_LOG_CAP, dead_pid

CUT = "bytes cut ...]"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] not in "ZX"


def ended_within(pids: list[int], seconds: float) -> list[int]:
    """Those of ``pids`` still alive after ``seconds``."""
    deadline = time.monotonic() + seconds
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


# -- the shared misbehaving bench (tests/conftest.py): children left behind, a chatty run, a
# stale temp dir, a torch.py in the current directory ------------------------------------------

@pytest.mark.e2e
def test_children_and_daemons_of_a_method_end_with_its_run(misbehave_bench) -> None:
    rows, pids = misbehave_bench["rows"], misbehave_bench["pids"]
    assert rows["test.leave-children"]["status"] == "ok", rows["test.leave-children"].get("error")
    assert set(pids) == {"child", "daemon"}
    assert not ended_within(list(pids.values()), 5), f"still running after the bench: {pids}"


@pytest.mark.e2e
def test_a_log_keeps_its_head_and_tail_within_the_cap(misbehave_bench) -> None:
    rows, results = misbehave_bench["rows"], misbehave_bench["root"] / "results" / "misbehave"
    assert rows["test.chatty"]["status"] == "ok"
    log = (results / "logs" / f"{rows['test.chatty']['run_id']}.log").read_bytes()
    assert len(log) <= MISBEHAVE_LOG_CAP + 100, len(log)
    text = log.decode()
    assert CUT in text and "chatty 000000" in text
    assert text.rstrip().endswith("chatty: the last line")
    cut = int(text.split("[... ")[1].split(" bytes cut")[0])
    assert cut > 5_000_000 - MISBEHAVE_LOG_CAP  # what was cut is said, in bytes


@pytest.mark.e2e
def test_a_stale_run_dir_of_a_dead_driver_is_removed(misbehave_bench) -> None:
    stale = misbehave_bench["stale"]
    assert misbehave_bench["rows"]["baseline"]["status"] == "ok"
    assert not stale.exists()
    assert not list(stale.parent.iterdir())  # and the runs' own dirs are gone too


@pytest.mark.e2e
def test_modules_in_the_current_directory_are_not_imported_by_children(misbehave_bench) -> None:
    """`python -m` puts the cwd first on sys.path: the bench's folder holds a torch.py that
    would shadow torch in every child (and write ``imported``)."""
    marker = misbehave_bench["root"] / "imported"
    assert not marker.exists(), f"imported by: {marker.read_text()}"
    assert misbehave_bench["rows"]["baseline"]["status"] == "ok"


PROBE = """\
import json, sys
import pluggy
print(json.dumps({"argv": sys.argv[1:], "pluggy": pluggy.__file__, "name": __name__}))
sys.exit(7)
"""


@pytest.mark.parametrize("safe_flag", [True, False], ids=["-P", "bootstrap"])
def test_python_command_keeps_the_cwd_off_the_path_and_pythonpath_on(tmp_path: Path, safe_flag: bool) -> None:
    from harness import process

    if safe_flag and sys.version_info < (3, 11):
        pytest.skip("-P is Python 3.11+")
    here, lib, marker = tmp_path / "here", tmp_path / "lib", tmp_path / "imported"
    here.mkdir()
    lib.mkdir()
    for name in ("pluggy", "runpy", "json"):  # what a child, or the bootstrap itself, imports
        (here / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    (lib / "probe_module.py").write_text(PROBE)
    cmd = process.command("probe_module", ("a", "b c"), safe_flag=safe_flag)
    proc = subprocess.run(cmd, cwd=here, env=os.environ | {"PYTHONPATH": str(lib)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 7, proc.stderr
    out = json.loads(proc.stdout)
    assert out["argv"] == ["a", "b c"] and out["name"] == "__main__"
    assert not out["pluggy"].startswith(str(here))
    assert not marker.exists()
    assert process.python_command("m", "x") == process.command("m", ("x",), safe_flag=sys.version_info >= (3, 11))


# -- the pieces, in-process -------------------------------------------------------------------

def test_a_capped_log_keeps_head_and_tail(tmp_path: Path) -> None:
    from harness.supervise import CappedLog

    path = tmp_path / "run.log"
    with CappedLog(path, cap=1000) as log:
        for i in range(200):
            log.write(f"line {i:03d}\n".encode())  # 9 bytes each: 1800 in all
    text = path.read_text()
    assert text.startswith("line 000\n") and text.endswith("line 199\n")
    assert "\n[... 800 bytes cut ...]\n" in text
    assert len(text) == 1000 + len("[... 800 bytes cut ...]\n") + 1  # a line of its own
    with CappedLog(path, cap=1000) as log:
        log.write(b"short\n")
    assert path.read_text() == "short\n"


def test_stale_run_dirs_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    from harness.process import run_dir, sweep_run_dirs

    stale = tmp_path / f"harness-run-{dead_pid()}-abc"
    live = tmp_path / f"harness-run-{os.getpid()}-def"
    other = tmp_path / "not-a-run-dir"
    for d in (stale, live, other):
        d.mkdir()
    sweep_run_dirs(tmp_path)
    assert not stale.exists() and live.exists() and other.exists()
    with run_dir(tmp_path) as held:
        assert held.name.startswith(f"harness-run-{os.getpid()}-")
        # a dir whose pid looks dead here but whose lock is held (a driver in another pid
        # namespace sharing this temp dir) stays
        moved = tmp_path / f"harness-run-{dead_pid()}-held"
        held.rename(moved)
        sweep_run_dirs(tmp_path)
        assert moved.exists() == (sys.platform != "win32")
        moved.rename(held)
    assert not held.exists()


DAEMON = """\
import os, sys, time
from harness.process import become_subreaper
become_subreaper()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork():
        os._exit(0)
    time.sleep(300)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.5)
print(" ".join(str(p) for p in os.listdir("/proc") if p.isdigit() and open(f"/proc/{p}/stat").read().split(") ")[1].split()[1] == str(os.getpid())), flush=True)
time.sleep(300)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreaper and /proc are Linux")
def test_a_daemon_of_a_worker_that_dies_hard_is_still_ended() -> None:
    from harness.process import ProcessTree

    root = subprocess.Popen([sys.executable, "-c", DAEMON], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        daemon = int(root.stdout.readline())  # adopted by root: it is a subreaper
        tree = ProcessTree(root.pid)
        tree.scan()
        assert daemon in tree.seen
        os.killpg(root.pid, signal.SIGKILL)  # a timeout: no chance to clean up
        root.wait()
        assert alive(daemon)  # escaped: its own session, reparented away
        tree.kill()
        assert not ended_within([daemon], 5)
    finally:
        if root.poll() is None:
            root.kill()
            root.wait()
