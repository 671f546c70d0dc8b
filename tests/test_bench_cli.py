"""End to end through the CLI: a tiny suite runs, is stored, resumes and ranks."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from conftest import cli

pytestmark = pytest.mark.e2e  # runs `harness bench`


def read_rows(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "tiny" / "results.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def first_run(tiny_bench):
    return tiny_bench


def test_every_run_is_ok_and_the_figures_make_sense(first_run) -> None:
    root, _, proc = first_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["method"]: r for r in read_rows(root / "results")}
    assert set(rows) == {"baseline", "int8", "magnitude-0.5", "prune-ft-int8"}
    assert all(r["status"] == "ok" for r in rows.values())
    base, int8, mag, chain = (rows[m]["metrics"] for m in ("baseline", "int8", "magnitude-0.5", "prune-ft-int8"))
    assert int8["size_mb"] < base["size_mb"] / 3
    assert abs(mag["sparsity"] - 0.5) <= 0.01
    assert abs(rows["magnitude-0.5"]["steps"][0]["info"]["sparsity_pruned_tensors"] - 0.5) <= 0.01
    assert abs(chain["sparsity"] - 0.5) <= 0.02 and chain["size_mb"] < base["size_mb"] / 3
    assert abs(int8["accuracy"] - base["accuracy"]) <= 0.02
    assert base["accuracy"] > 0.9 and 0 < base["accuracy_stderr"] < 0.02
    for m in (base, int8):
        assert m["latency_ms_p50"] > 0 and m["throughput_sps"] > 0 and m["params"] == 85002
        assert set(m["latency"]) == {"1", "8"}
    assert [s["use"] for s in rows["prune-ft-int8"]["steps"]] == ["prune.magnitude", "train.finetune", "quant.int8-dynamic"]
    env = rows["baseline"]["env"]
    assert env["torch"] and env["cpu"] and env["torch_threads"] >= 1
    assert rows["baseline"]["provenance"]["accuracy"].startswith("measured")
    # progress and the leaderboard were printed
    assert "[4/4]" in proc.stdout and "leaderboard" in proc.stdout and "prune-ft-int8" in proc.stdout


def test_second_run_skips_everything(first_run) -> None:
    root, suite, _ = first_run
    before = read_rows(root / "results")
    proc = cli("bench", str(suite), "--results", str(root / "results"))
    assert proc.returncode == 0, proc.stderr
    assert "4 already done, 0 to run" in proc.stdout
    assert read_rows(root / "results") == before


def test_resume_after_a_torn_last_line_redoes_only_that_run(first_run, tmp_path: Path) -> None:
    root, suite, _ = first_run
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    path = results / "tiny" / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    torn_method = json.loads(lines[-1])["method"]
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # kill -9 mid-write

    proc = cli("bench", str(suite), "--results", str(results), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "4 runs selected, 1 would run" in proc.stdout  # only the torn one
    assert "incomplete line" in proc.stderr
    assert f"· {torn_method} ·" in proc.stdout.splitlines()[-1]
    rows = read_rows_tolerant(path)
    assert sorted(r["method"] for r in rows) == sorted({"baseline", "int8", "magnitude-0.5", "prune-ft-int8"} - {torn_method})


def read_rows_tolerant(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_dry_run_only_and_force_select_runs(first_run) -> None:
    root, suite, _ = first_run
    proc = cli("bench", str(suite), "--results", str(root / "results"), "--dry-run", "--force", "--only", "*/int8/*")
    assert proc.returncode == 0, proc.stderr
    assert "1 run selected, 1 would run" in proc.stdout and "mlp · int8 · digits" in proc.stdout
    pending = cli("bench", str(suite), "--results", str(root / "results"), "--dry-run")
    assert "4 runs selected, 0 would run" in pending.stdout
    nothing = cli("bench", str(suite), "--results", str(root / "results"), "--only", "nope*")
    assert nothing.returncode == 2 and "matches no run" in nothing.stderr


def test_leaderboard_writes_csv_and_markdown(first_run, tmp_path: Path) -> None:
    root, _, _ = first_run
    proc = cli("leaderboard", str(root / "results" / "tiny"), "--csv", str(tmp_path / "lb.csv"),
                   "--markdown", str(tmp_path / "lb.md"))
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "lb.csv") as fh:
        table = {r["method"]: r for r in csv.DictReader(fh)}
    columns = ("model, task, method, status, accuracy, accuracy_stderr, accuracy_ratio, latency_ms_p50, "
               "latency_ms_p99, throughput_sps, speedup, size_mb, size_ratio, params, sparsity, peak_mem_mb, "
               "energy_j_per_1k, co2_g_per_1k, cost_usd_per_1m, compress_s, holds, retained, quality_metric").split(", ")
    assert set(columns) <= set(next(iter(table.values())))
    assert float(table["baseline"]["accuracy_ratio"]) == 1.0
    assert float(table["int8"]["size_ratio"]) > 3
    assert float(table["magnitude-0.5"]["energy_j_per_1k"]) > 0  # energy is on in this suite
    markdown = (tmp_path / "lb.md").read_text()
    assert markdown.startswith("| model | task | method |") and "prune-ft-int8" in markdown
    missing = cli("leaderboard", str(tmp_path / "nothing-here"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_report_and_compare(first_run, tmp_path: Path) -> None:
    root, _, _ = first_run
    results = root / "results" / "tiny"
    proc = cli("report", str(results), "-o", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert "prune-ft-int8" in html and "sparsity_pruned_tensors" in html and "Machines" in html
    assert html.count("<svg") == 1 and (tmp_path / "report" / "report.md").exists()  # one (model, task)
    compared = cli("compare", str(results), str(results), "--csv", str(tmp_path / "cmp.csv"))
    assert compared.returncode == 0, compared.stderr
    with open(tmp_path / "cmp.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(float(r["size_mb_b/a"]) == 1.0 for r in rows)
    assert all(r["latency_ms_p50_significant"] == "False" for r in rows)  # a run against itself
