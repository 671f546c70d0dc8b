"""The results file under faults: deleted, replaced, truncated, written by two benches at
once, on a full disk; rows of the wrong shape; names and errors that look like markup."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.result import RunResult
from harness.results import read_results
from harness.results_store import ResultsLost, ResultsStore

from conftest import ROOT, cli, digits_suite


def result(run_id: str, status: str = "ok") -> RunResult:
    return RunResult(run_id=run_id, suite="s", model="m", method=run_id, task="t", status=status)


def ids(path: Path) -> list[str]:
    return [r.run_id for r in read_results(path, warn=False)]


@pytest.mark.parametrize("tamper, says", [
    (lambda p: p.unlink(), "was deleted"),
    (lambda p: (p.unlink(), p.write_text("")), "was replaced"),
    (lambda p: os.truncate(p, 10), "was truncated"),
])
def test_a_results_file_changed_under_the_driver_stops_it_and_keeps_the_rows(tmp_path: Path, tamper, says) -> None:
    path = tmp_path / "results.jsonl"
    with ResultsStore(path) as store:
        store.append(result("a"))
        store.append(result("b"))
        tamper(path)
        with pytest.raises(ResultsLost, match=says) as caught:
            store.append(result("c"))
        with pytest.raises(ResultsLost):  # and it stays stopped
            store.append(result("d"))
    saved = next(tmp_path.glob("results.jsonl.recovered-*"))
    assert str(saved) in str(caught.value)
    if says != "was truncated":  # the held file still had every row, and c was added
        assert ids(saved) == ["a", "b", "c"]


def test_a_second_bench_on_the_same_results_is_refused(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "locked")
    with ResultsStore(tmp_path / "r" / "locked" / "results.jsonl"):
        with pytest.raises(UsageError, match=f"another 'harness bench' \\(pid {os.getpid()}\\)"):
            ResultsStore(tmp_path / "r" / "locked" / "results.jsonl").__enter__()
        proc = cli("bench", str(suite), "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and "another 'harness bench'" in proc.stderr
    assert not (tmp_path / "r" / "locked" / "results.jsonl").read_text()  # nothing ran


def test_a_failed_write_rolls_back_to_the_last_row_and_stops(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "results.jsonl"
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])  # a full disk takes half the line

    with ResultsStore(path) as store:
        store.append(result("a"))
        monkeypatch.setattr("harness.results_store.os.write", short_write)
        with pytest.raises(ResultsLost, match="could not write"):
            store.append(result("b"))
    assert path.read_text().count("\n") == 1 and ids(path) == ["a"]  # no torn line


def test_too_little_free_space_is_refused_before_running(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 99, 1 << 20))
    with pytest.raises(UsageError, match="only 1 MiB free"):
        ResultsStore(tmp_path / "results.jsonl").__enter__()


def test_a_full_disk_keeps_the_stored_rows(tmp_path: Path) -> None:
    """On a real 64 KiB tmpfs (where this test may mount one)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        path = mount / "results.jsonl"
        big = "x" * 3000
        with ResultsStore(path, min_free_bytes=0) as store:
            stored = 0
            with pytest.raises(ResultsLost, match="could not write"):
                for i in range(100):
                    r = result(f"r{i}")
                    r.error = big
                    store.append(r)
                    stored += 1
        assert stored > 5 and ids(path) == [f"r{i}" for i in range(stored)]
        assert path.read_bytes().endswith(b"\n")
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_rows_of_the_wrong_shape_are_reported_and_skipped(tmp_path: Path, capsys) -> None:
    good = result("good").to_row()
    lines = [json.dumps(good), '{"run_id": "abc"}', json.dumps(good | {"run_id": "x", "model": ["a"]}),
             json.dumps(good | {"run_id": "y", "error": 3}), "[1, 2]", json.dumps(good | {"run_id": "z", "status": "meh"})]
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "results.jsonl").write_text("\n".join(lines) + "\n")
    assert [r.run_id for r in read_results(directory)] == ["good"]
    err = capsys.readouterr().err
    assert ":2: skipping a row of the wrong shape ('suite' is missing)" in err
    assert ":3: skipping" in err and "'model' should be a string" in err and ":6:" in err
    board = cli("leaderboard", str(directory))
    assert board.returncode == 0 and "good" in board.stdout and "Traceback" not in board.stderr


def test_names_that_look_like_markup_are_shown_as_written(tmp_path: Path) -> None:
    suite = digits_suite(tmp_path, "markup", methods="""
        [[methods]]
        name = "[/]"
        use = "prune.magnitude"
        [[methods]]
        name = "[bold]x-{amount}"
        use = "prune.magnitude"
        sweep = { amount = [0.5] }
    """)
    proc = cli("validate", str(suite))
    assert proc.returncode == 0, proc.stderr
    assert "/ [/] /" in proc.stdout and "[bold]x-0.5" in proc.stdout


@pytest.mark.e2e
def test_errors_that_look_like_markup_reach_progress_and_rows_intact(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugins"))
    suite = digits_suite(tmp_path, "brackets", methods="""
        [[methods]]
        name = "[red]b[/]"
        use = "test.brackets"
    """)
    env = {"HARNESS_PLUGINS": "markup_plugin", "PYTHONPATH": str(ROOT / "tests" / "plugins")}
    proc = cli("bench", str(suite), "--results", str(tmp_path / "r"), "--only", "[[]red]*", env=env)
    assert proc.returncode == 1, proc.stderr
    assert "[red]b[/]" in proc.stdout and "bad shape [/x] in layer [/] of [torch.FloatTensor]" in proc.stdout
    row = read_results(tmp_path / "r" / "brackets", warn=False)[0]
    assert row.status == "failed" and "[torch.FloatTensor]" in row.error
