"""The toolkit adapters of contrib/ (each a distribution of its own, installed by ``make
test`` as a user installs it) run by one ``harness bench`` as a user runs it: found through
the entry-point group, preloaded by the fork server beside each other, each row ok with the
kernels the profiler saw. That each gives exactly what its toolkit called directly gives is
each adapter's own test (contrib/*/tests), in process."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import QUICK_MEASURE, ROOT, run_cli, write_suite

ADAPTERS = {"harness_quanto": "harness-quanto", "harness_nncf": "harness-nncf",
            "harness_modelopt": "harness-modelopt", "harness_llmcompressor": "harness-llmcompressor"}
if any(importlib.util.find_spec(module) is None for module in ADAPTERS):
    pytest.skip("the contrib/ adapters are not all installed (make test installs them)", allow_module_level=True)

WORLD = ROOT / "suites" / "tasks" / "world.txt"
SUITE = f"""
[suite]
name = "toolkits"
{QUICK_MEASURE}
[[models]]
name = "lm"
source = "builtin"
ref = "world-lm-mini"

[[tasks]]
name = "fidelity"
kind = "fidelity"
text = "{WORLD}"
seq_len = 32
max_tokens = 1024
gen_batch_sizes = []

[[methods]]
name = "tk-quanto-int4"
use = "quanto.quantize"
params = {{ weights = "qint4" }}

[[methods]]
name = "tk-quanto-w8a8"
use = "quanto.quantize"
params = {{ weights = "qint8", activations = "qint8" }}

[[methods]]
name = "tk-nncf-int4"
use = "nncf.int4-weights"
params = {{ group_size = 32 }}

[[methods]]
name = "tk-modelopt-w8a8"
use = "modelopt.quantize"
params = {{ config = "INT8_SMOOTHQUANT_CFG" }}

[[methods]]
name = "tk-llmc-gptq"
use = "llmcompressor.oneshot"
params = {{ scheme = "W4A16", group_size = 64 }}
"""


@pytest.mark.e2e
def test_every_toolkit_adapter_runs_through_harness_bench(tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    assert sorted((e.value, e.dist.name) for e in entry_points(group="harness") if e.value in ADAPTERS) == \
        sorted(ADAPTERS.items())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = run_cli("bench", str(write_suite(tmp_path, SUITE)), "--results", str(tmp_path / "r"), "--only", "tk-*",
                   cwd=cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "runs start cold" not in proc.stderr  # no toolkit's import leaves a thread the server cannot fork past
    assert list(cwd.iterdir()) == []  # no logs or checkpoints of a toolkit's in the user's folder
    rows = {r["method"]: r for r in map(json.loads, (tmp_path / "r" / "toolkits" / "results.jsonl").open())}
    assert sorted(rows) == ["tk-llmc-gptq", "tk-modelopt-w8a8", "tk-nncf-int4", "tk-quanto-int4", "tk-quanto-w8a8"]
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row.get("error"))
        assert row["env"]["worker_mode"] == "warm: forked from a fork server"
    kernels = {name: row["metrics"]["kernels"] for name, row in rows.items()}
    assert kernels == {"tk-quanto-int4": "simulated", "tk-quanto-w8a8": "real", "tk-nncf-int4": "simulated",
                       "tk-modelopt-w8a8": "simulated", "tk-llmc-gptq": "simulated"}, \
        {name: row["provenance"]["kernels"] for name, row in rows.items()}
    # each toolkit quantized the 2 blocks' 7 Linear layers (4 attention, 3 MLP) of the world LM, not its head
    info = {name: row["steps"][0]["info"] for name, row in rows.items()}
    assert info["tk-quanto-int4"]["quantized_layers"] == info["tk-quanto-w8a8"]["quantized_layers"] == {"QLinear": 14}
    assert info["tk-quanto-int4"]["left_float"] == ["lm_head"]
    assert info["tk-nncf-int4"]["decompressors"]["INT4SymmetricWeightsDecompressor"] == 14  # + int8 embeddings, head
    assert info["tk-modelopt-w8a8"]["quantizers"] == {"weight: int8": 14, "input: int8": 14}
    assert info["tk-llmc-gptq"]["quantized_layers"] == {"weights int4 groups of 64": 14}
    assert info["tk-llmc-gptq"]["ignored"] == ["lm_head"]
    for name, row in rows.items():  # close to the float model, not equal to it: it did quantize
        assert 0.9 < row["metrics"]["top1_agreement"] < 1.0, name
