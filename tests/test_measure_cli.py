"""Provenance in real results: a tiny suite through the CLI, energy on, on this CPU."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from conftest import cli

pytestmark = pytest.mark.e2e  # runs `harness bench`


@pytest.fixture(scope="module")
def results(tiny_bench) -> Path:
    root, _, proc = tiny_bench
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in root.iterdir()) == ["results", "suite.toml"]  # no emissions.csv
    return root / "results"


def rows(results: Path) -> dict[str, dict]:
    lines = (results / "tiny" / "results.jsonl").read_text().splitlines()
    return {r["method"]: r for r in map(json.loads, lines)}


def test_every_figure_is_measured_estimated_or_absent_with_a_reason(results: Path) -> None:
    for row in rows(results).values():
        assert row["status"] == "ok", row.get("error")
        metrics, provenance = row["metrics"], row["provenance"]
        for key, how in provenance.items():
            kind, _, why = how.partition(": ")
            assert kind in ("measured", "estimated", "absent") and why, (key, how)
            assert (key in metrics) == (kind != "absent"), (key, how)
        assert set(metrics) <= set(provenance)


def test_cpu_energy_is_estimated_and_gpu_figures_absent_for_want_of_a_gpu(results: Path) -> None:
    for row in rows(results).values():
        metrics, provenance = row["metrics"], row["provenance"]
        for key in ("energy_j_per_1k", "co2_g_per_1k"):
            assert provenance[key].startswith("estimated: "), provenance[key]
        compress = provenance["compress_energy_j"]  # 0 for the baseline; a short step is below resolution
        assert compress.startswith(("estimated: ", "absent: below the meter's resolution", "measured: the baseline")), compress
        assert metrics["energy_j_per_1k"] > 0 and metrics["co2_g_per_1k"] > 0
        assert "DEU" in provenance["co2_g_per_1k"]
        for key in ("gpu_peak_mem_mb", "gpu_energy_j_per_1k", "gpu_model_mem_mb"):
            assert key not in metrics and provenance[key] == "absent: no GPU"
        assert provenance["cost_usd_per_1m"].startswith("absent: measure.price_per_hour is 0")
        assert row["env"]["gpu_state"] == {"absent": "no GPU"}
        assert metrics["sustained_throughput_sps"] > 0 and metrics["model_weight_mb"] > 0


def test_the_same_inputs_are_timed_for_every_method(results: Path) -> None:
    timing = [r["metrics"]["timing"] for r in rows(results).values()]
    assert len(timing) == 4
    assert all(t["input_sha256"] == timing[0]["input_sha256"] for t in timing)
    assert all(t["threads"] == timing[0]["threads"] for t in timing) and timing[0]["inference_mode"]
    for row in rows(results).values():
        for stats in row["metrics"]["latency"].values():
            assert {"median_ms", "iqr_ms", "p90_ms", "p99_ms", "ci95_ms", "n", "noisy"} <= set(stats)


def test_leaderboard_can_hide_the_estimated_figures(results: Path, tmp_path: Path) -> None:
    shown, hidden = tmp_path / "shown.csv", tmp_path / "hidden.csv"
    assert cli("leaderboard", str(results / "tiny"), "--csv", str(shown)).returncode == 0
    assert cli("leaderboard", str(results / "tiny"), "--hide-estimated", "--csv", str(hidden)).returncode == 0
    with shown.open() as a, hidden.open() as b:
        shown_rows, hidden_rows = list(csv.DictReader(a)), list(csv.DictReader(b))
    for s, h in zip(shown_rows, hidden_rows):
        assert s["energy_j_per_1k"] and not h["energy_j_per_1k"]
        assert s["co2_g_per_1k"] and not h["co2_g_per_1k"]
        assert s["latency_ms_p50"] == h["latency_ms_p50"] != ""
        assert not s["peak_mem_mb"] == ""  # measured on CPU (RSS)


def test_two_runs_at_once_share_the_ram_and_energy_above_idle_is_reported(results: Path) -> None:
    """tiny_bench runs two at a time: each run is charged the machine's RAM power divided by
    the runs that ran during its window (2, but a run left alone at the end pays it all)."""
    shares = []
    for method, row in rows(results).items():
        metrics, provenance = row["metrics"], row["provenance"]
        shared = re.search(r"1/([0-9.]+) of the machine's RAM power: \1 runs ran at once",
                           provenance["ram_energy_j_per_1k"])
        shares.append(float(shared.group(1)) if shared else 1.0)
        idle = row["spec"]["placement"]["idle"]
        assert idle is not None and idle["ram_w"] > 0
        seconds = metrics["timing"]["sustained_s"]
        inferences = metrics["sustained_throughput_sps"] * seconds
        ram_w = metrics["ram_energy_j_per_1k"] / 1000 * inferences / seconds
        assert ram_w == pytest.approx(idle["ram_w"] / shares[-1], rel=0.1)  # once for the machine, not twice
        total = sum(metrics[f"{p}_energy_j_per_1k"] for p in ("cpu", "ram"))
        assert metrics["energy_j_per_1k"] == pytest.approx(total)
        assert 0 < metrics["dynamic_energy_j_per_1k"] < metrics["energy_j_per_1k"]
        if method == "baseline":
            assert metrics["compress_energy_j"] == 0.0
            assert "0 by definition" in provenance["compress_energy_j"]
    assert all(1 <= share <= 2 for share in shares) and max(shares) > 1.5, shares  # the first two ran together
