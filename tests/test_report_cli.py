"""The leaderboard in a terminal (fitted to its width, --columns, --wide), results roots
and suite directories alike, --json output, and compare with confidence intervals.
Rows are made here (tests/test_report.py: make_row), no bench runs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_report import demo_rows, make_row, write_results

from conftest import ROOT, cli


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rows = demo_rows("demo") + [make_row("baseline", suite="other", model="tiny"),
                                make_row("int8", suite="other", model="tiny", accuracy=0.949)]
    return write_results(tmp_path / "results", rows)


def _table_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(("│", "┃"))]


def test_a_100_column_terminal_shows_the_main_columns_whole(root: Path) -> None:
    proc = cli("leaderboard", str(root), env={"COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    assert all(len(line) <= 100 for line in proc.stdout.splitlines() if line.startswith(("│", "┃", "┏", "└")))
    header = next(line for line in _table_lines(proc.stdout) if "method" in line)
    cells = [c.strip() for c in header.strip("┃").split("┃")]
    assert cells[:7] == ["#", "model", "task", "method", "status", "acc % ± se", "speedup"] or \
        {"model", "method", "status", "acc % ± se", "holds", "speedup"} <= set(cells), cells
    body = "\n".join(_table_lines(proc.stdout))
    assert "…" not in body  # nothing cut: the columns that do not fit are left out instead
    assert "prune-a-very-long-method-name-0.9" in body and "94.80 ± 0.50" in body
    assert "(… " in proc.stdout and "more columns: " in proc.stdout and "--wide" in proc.stdout
    # every suite of the root, one table each
    assert "suite demo" in proc.stdout and "suite other" in proc.stdout


def test_wide_and_chosen_columns(root: Path) -> None:
    wide = cli("leaderboard", str(root / "demo"), "--wide", env={"COLUMNS": "100"})
    assert wide.returncode == 0 and "more columns" not in wide.stdout
    assert "J/1k" in wide.stdout and "p99 ms" in wide.stdout and "…" not in wide.stdout
    chosen = cli("leaderboard", str(root / "demo"), "--columns", "model,method,p50 ms,energy_j_per_1k")
    header = next(line for line in _table_lines(chosen.stdout) if "method" in line)
    assert [c.strip() for c in header.strip("┃").split("┃")] == ["model", "method", "p50 ms", "J/1k"]
    assert "0.4*" in chosen.stdout  # estimated, marked
    bad = cli("leaderboard", str(root), "--columns", "model,nope")
    assert bad.returncode == 2 and "unknown column(s) nope" in bad.stderr and "latency_ms_p50" in bad.stderr


def test_results_root_suite_dir_and_suite_by_name(root: Path, tmp_path: Path) -> None:
    one = cli("leaderboard", str(root), "--suite", "other", "--json")
    assert {r["suite"] for r in json.loads(one.stdout)} == {"other"}
    same = cli("leaderboard", str(root / "other"), "--json")
    assert json.loads(same.stdout) == json.loads(one.stdout)
    missing = cli("leaderboard", str(root), "--suite", "nope")
    assert missing.returncode == 2 and "no suite 'nope'" in missing.stderr and "demo, other" in missing.stderr
    (tmp_path / "empty").mkdir()
    neither = cli("report", str(tmp_path / "empty"), "-o", str(tmp_path / "out"))
    assert neither.returncode == 2
    message = neither.stderr.removeprefix("error: ").strip()
    assert "neither a suite's results directory nor a results root" in message
    assert message.count(". ") == 0  # one sentence
    report = cli("report", str(root), "-o", str(tmp_path / "both"))
    html = (tmp_path / "both" / "report.html").read_text()
    assert report.returncode == 0 and "demo · mlp · digits" in html and "other · tiny · digits" in html


def test_json_output_is_only_json(root: Path, tmp_path: Path) -> None:
    board = cli("leaderboard", str(root), "--json", "--csv", str(tmp_path / "b.csv"))
    rows = json.loads(board.stdout)
    assert board.returncode == 0 and "wrote" in board.stderr
    int8 = next(r for r in rows if r["method"] == "int8" and r["model"] == "mlp")
    assert int8["size_ratio"] == pytest.approx(1 / 0.27) and int8["holds"] == "yes"
    assert next(r for r in rows if r["status"] == "skipped")["accuracy"] is None
    methods = json.loads(cli("methods", "--json").stdout)
    assert any(m["name"] == "quant.int8-dynamic" and m["family"] == "quantization" for m in methods)
    plugins = json.loads(cli("plugins", "--json").stdout)
    assert {"core", "trackers"} <= {p["name"] for p in plugins}
    suite = ROOT / "suites" / "quickstart.toml"
    plan = json.loads(cli("validate", str(suite), "--json").stdout)
    assert plan["suite"] == "quickstart" and len(plan["runs"]) == 10 and plan["runs"][0]["run_id"]


def test_the_cli_stays_light() -> None:
    code = ("import sys, harness.cli; harness.cli.main(['plugins', '--json']); "
            "print('HEAVY', [m for m in ('matplotlib', 'mlflow', 'wandb', 'pandas') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:] + proc.stderr


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    env_b = dict(make_row("x")["env"], torch="2.14.0+cpu", torch_threads=2)
    a = [make_row("baseline"), make_row("int8", latency_ms=0.08), make_row("prune", latency_ms=0.09)]
    b = [make_row("baseline", latency_ms=0.102, env=env_b),  # 2% slower: inside the margin
         make_row("int8", latency_ms=0.10, env=env_b),  # 25% slower, CIs apart: significant
         make_row("prune", latency_ms=0.12, ci=0.3, env=env_b)]  # slower, but the CIs overlap
    return write_results(tmp_path / "a", a), write_results(tmp_path / "b", b)


def test_compare_gives_intervals_significance_and_environment_differences(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    proc = cli("compare", str(a), str(b / "demo"), "--csv", str(tmp_path / "cmp.csv"), env={"COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "cmp.csv") as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh)}
    assert float(rows["int8"]["latency_ms_p50_b/a"]) == pytest.approx(1.25)
    assert rows["int8"]["latency_ms_p50_significant"] == "True"
    assert rows["baseline"]["latency_ms_p50_significant"] == "False"  # 2% < the 5% margin
    assert rows["prune"]["latency_ms_p50_significant"] == "False"  # intervals overlap
    lo, hi = float(rows["int8"]["latency_ms_p50_b/a_lo"]), float(rows["int8"]["latency_ms_p50_b/a_hi"])
    assert lo < 1.25 < hi and lo > 1.2
    assert rows["int8"]["accuracy_significant"] == "False" and rows["int8"]["size_mb_b/a"] == "1.0"
    line = next(line for line in proc.stdout.splitlines() if "│ int8" in line)
    assert "1.250 (" in line and "†" in line
    assert "torch: 2.13.0+cpu → 2.14.0+cpu" in proc.stdout and "threads: 1 → 2" in proc.stdout


def test_the_significance_rule() -> None:
    from harness.compare import judge

    apart = judge("latency_ms_p50", 1.0, 1.03, (0.99, 1.01), (1.02, 1.04))
    assert apart["ratio"] == pytest.approx(1.03) and apart["significant"] is False  # under the margin
    assert judge("latency_ms_p50", 1.0, 1.2, (0.99, 1.01), (1.19, 1.21))["significant"] is True
    assert judge("latency_ms_p50", 1.0, 1.2, None, None)["significant"] is None  # no interval: unknown
    assert judge("size_mb", 1.0, 0.5, (1.0, 1.0), (0.5, 0.5))["significant"] is True
    assert judge("energy_j_per_1k", 1.0, 1.05, None, None)["significant"] is False
