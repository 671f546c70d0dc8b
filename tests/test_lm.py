"""Language models end to end: a builtin LM saved to a directory, benchmarked through the
``hf`` source with lm-eval, fidelity and generation timing, and checked against
``lm_eval.simple_evaluate`` called directly on the same saved model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import QUICK_MEASURE, ROOT, cli, write_suite

pytestmark = pytest.mark.e2e  # runs `harness bench`

pytest.importorskip("transformers")
pytest.importorskip("lm_eval")

TASKS = ROOT / "suites" / "tasks"
LIMIT = 40


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    """The builtin mini LM (trained on first use), saved to its own HF directory."""
    from harness_plugins.sources.builtin import world_lm
    from harness_plugins.sources.hf import tokenizer_of

    world_lm.train_to_cache("world-lm-mini")  # here, not in a child that imports torch and transformers again
    model = world_lm.load("world-lm-mini", "cpu")
    out = tmp_path_factory.mktemp("lm") / "world-lm-mini"
    model.save_pretrained(out)
    tokenizer_of(model).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def bench(lm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """One small LM suite run through the CLI: lm-eval multiple choice and fidelity, with int8
    (magnitude pruning on an LM: tests/test_lm_parts.py, in process, to keep this quick)."""
    work = tmp_path_factory.mktemp("lm-bench")
    suite = write_suite(work, f"""
        [suite]
        name = "lm-test"
        seed = 0
        device = "cpu"
        timeout_s = 300
        {QUICK_MEASURE}
        [[models]]
        name = "mini"
        source = "hf"
        ref = "{lm_dir}"

        [[tasks]]
        name = "mc"
        kind = "lm-eval"
        task = "world_mc"
        include_path = "{TASKS}"
        limit = {LIMIT}
        batch_size = 8
        gen_batch_sizes = [1, 2]
        gen_prompt_tokens = 16
        gen_new_tokens = 8
        gen_repeats = 2

        [[tasks]]
        name = "fid"
        kind = "fidelity"
        text = "{TASKS / 'world.txt'}"
        max_tokens = 256
        gen_batch_sizes = []

        [[methods]]
        name = "int8"
        use = "quant.int8-dynamic"
    """)
    proc = cli("bench", str(suite), "--results", str(work / "results"), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (work / "results" / "lm-test" / "results.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert row["status"] == "ok", row.get("error")
    board = cli("leaderboard", str(work / "results" / "lm-test"), "--csv", str(work / "board.csv"))
    assert board.returncode == 0, board.stderr
    return rows


def by(rows: list[dict], task: str, method: str) -> dict:
    return next(r["metrics"] for r in rows if r["task"] == task and r["method"] == method)


def test_accuracy_equals_lm_eval_called_directly(lm_dir: Path, bench: list[dict]) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(lm_dir), "device": "cpu"}, tasks=["world_mc"],
        limit=LIMIT, batch_size=8, task_manager=TaskManager(include_path=str(TASKS), include_defaults=False))
    direct = out["results"]["world_mc"]
    ours = by(bench, "mc", "baseline")
    assert ours["accuracy"] == direct["acc,none"]
    assert ours["acc_norm"] == direct["acc_norm,none"]
    assert ours["accuracy_stderr"] == direct["acc_stderr,none"]
    info = ours["lm_eval"]
    assert info["version"] == lm_eval.__version__ and info["n-samples"]["world_mc"]["effective"] == LIMIT
    assert len(info["task_hashes"]["world_mc"]) == 64 and "world_mc" in info["configs"]


def test_int8_on_the_lm_is_smaller_and_follows_the_original(bench: list[dict]) -> None:
    base, int8 = by(bench, "mc", "baseline"), by(bench, "mc", "int8")
    assert int8["size_mb"] < base["size_mb"]
    assert abs(int8["accuracy"] - base["accuracy"]) <= 0.1
    same, follows = by(bench, "fid", "baseline"), by(bench, "fid", "int8")
    assert same["top1_agreement"] == 1.0 and same["kl_div_mean"] < 1e-6
    assert follows["top1_agreement"] > 0.9 and 0 < follows["kl_div_mean"] < 0.1


def test_generation_figures_reach_results_and_leaderboard(bench: list[dict], tmp_path_factory) -> None:
    for method in ("baseline", "int8"):
        metrics = by(bench, "mc", method)
        assert metrics["ttft_ms"] > 0 and metrics["decode_tokens_per_s"] > 0
        assert metrics["kv_cache_mb"] > 0
        per_batch = metrics["generation"]["per_batch_size"]
        assert set(per_batch) == {"1", "2"}
        assert per_batch["2"]["kv_cache_mb"] == pytest.approx(2 * per_batch["1"]["kv_cache_mb"])
    assert "ttft_ms" not in by(bench, "fid", "baseline")  # generation timing turned off there
    import pandas as pd

    csv = next(tmp_path_factory.getbasetemp().glob("lm-bench*/board.csv"))
    board = pd.read_csv(csv)
    mc = board[board["task"] == "mc"]
    assert mc["ttft_ms"].notna().all() and mc["decode_tokens_per_s"].notna().all()
    assert board[board["task"] == "fid"]["ttft_ms"].isna().all()
