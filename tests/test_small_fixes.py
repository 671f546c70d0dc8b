"""Issue 21, point 7: the smaller fixes, each with the case that went wrong before —
a hung model preparation, a full disk while storing an artifact, the RAM share of runs
left alone, a missing ``datasets``, fine-tuning on a fidelity task, progress numbers
with ``--jobs 2``, and counts of one."""

from __future__ import annotations

import errno
import io
import json
import os
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from conftest import cli, digits_suite, write_suite

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux: process groups, /dev/full")

HANGING_SOURCE = """
import time
from dataclasses import dataclass
from harness import hookimpl
from harness.api import ModelSource

@dataclass(frozen=True)
class NoOptions:
    pass

class Hanging(ModelSource):
    name = "hanging"
    Options = NoOptions

    def check_ref(self, ref, options, suite_dir):
        return None

    def prepare(self, ref, options, suite_dir):
        print("prepare: downloading " + ref + " …", flush=True)
        time.sleep(60)  # a download that never ends

@hookimpl
def harness_register_models(register):
    register(Hanging)
"""


def console() -> Console:
    return Console(file=io.StringIO(), width=400, highlight=False)


def text(out: Console) -> str:
    return " ".join(out.file.getvalue().split())


@linux_only
def test_a_hung_model_preparation_is_stopped_with_one_sentence_naming_the_model_and_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.bench import prepare_models
    from harness.workers import Workers

    (tmp_path / "hanging_source.py").write_text(HANGING_SOURCE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("HARNESS_PLUGINS", "hanging_source")  # in the preparing child
    monkeypatch.setenv("HARNESS_WORKERS", "cold")
    monkeypatch.setenv("HARNESS_PREPARE_TIMEOUT_S", "1.5")
    model = {"name": "big-lm", "source": "hanging", "ref": "org/big-lm", "options": {}}
    run = SimpleNamespace(model=SimpleNamespace(to_dict=lambda: model), suite_dir=str(tmp_path))
    out = console()
    prepare_models([run], out, Workers())
    said = text(out)
    assert ("preparing model 'big-lm' (source hanging, ref org/big-lm) took longer than 1.5 s and was stopped: "
            "if it is a slow download rather than a hung one, set HARNESS_PREPARE_TIMEOUT_S to more seconds "
            "(e.g. 6)") in said, said
    assert "its runs will report the error" in said


def test_the_workers_start_is_its_own_line_not_the_models_preparation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow fork server (a plugin's preload compiling kernels, say) was counted as
    "1 model ready in 30s"."""
    from harness.bench import prepare_models
    from harness.workers import Workers

    workers = Workers()
    monkeypatch.setattr(workers, "wait_ready", lambda: 29.5)
    monkeypatch.setattr(workers, "prepare", lambda *args, **kwargs: (0, []))
    model = {"name": "m", "source": "builtin", "ref": "digits-mlp", "options": {}}
    out = console()
    prepare_models([SimpleNamespace(model=SimpleNamespace(to_dict=lambda: model), suite_dir=".")], out, workers)
    said = text(out)
    assert "workers ready in 29.5s (torch and the suite's plugins imported once)" in said, said
    assert "1 model ready in 0.0s" in said, said


def test_a_mistyped_preparation_timeout_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import UsageError
    from harness.workers import PREPARE_TIMEOUT_S, prepare_timeout_s

    monkeypatch.delenv("HARNESS_PREPARE_TIMEOUT_S", raising=False)
    assert prepare_timeout_s() == PREPARE_TIMEOUT_S == 3600
    for bad in ("1h", "0", "-5", "nan"):
        monkeypatch.setenv("HARNESS_PREPARE_TIMEOUT_S", bad)
        with pytest.raises(UsageError, match="HARNESS_PREPARE_TIMEOUT_S=.* is not a positive number of seconds"):
            prepare_timeout_s()


def test_a_full_disk_while_storing_an_artifact_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from harness.artifacts import ArtifactStore

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = ArtifactStore(tmp_path / "artifacts")
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", full)
        why = store.save("k", torch.nn.Linear(2, 2), {"run_id": "r"})
    assert why == f"no space left on device at {tmp_path / 'artifacts'}"
    assert list((tmp_path / "artifacts").iterdir()) == []  # no partial file left

    unpicklable = torch.nn.Linear(2, 2)
    unpicklable.hook = lambda x: x
    assert store.save("k", unpicklable, {}).startswith("the compressed model cannot be pickled (")
    assert store.save("k", torch.nn.Linear(2, 2), {"run_id": "r"}) is None
    assert store.load("k", "cpu")[1] == {"run_id": "r"}


@linux_only
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_real_write_error_is_not_taken_for_a_pickling_error(tmp_path: Path) -> None:
    """torch.save into a path of its own turns ENOSPC into an opaque RuntimeError."""
    import torch

    from harness.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path)
    model_path, _ = store.paths("k")
    model_path.with_name(f"{model_path.name}.tmp{os.getpid()}").symlink_to("/dev/full")  # every write: ENOSPC
    assert store.save("k", torch.nn.Linear(64, 64), {}) == f"no space left on device at {tmp_path}"


def test_the_ram_share_is_the_number_of_runs_running_over_the_window(tmp_path: Path) -> None:
    """Two runs at once, then the second alone: its window while alone is charged all of
    the RAM's power, though it started beside another (``ram_share`` 2)."""
    from harness.measure.carbon import HostEnergy
    from harness.measure.concurrency import mean_running
    from harness.measure.energy import EnergyContext, EnergyReading, window_figures

    log = tmp_path / "running"
    log.write_text("100.0 1\n100.0 2\n110.0 1\n120.0 0\n130.5 ")  # the last line is being written
    assert mean_running(log, 105.0, 115.0) == pytest.approx(1.5)
    assert mean_running(log, 112.0, 118.0) == pytest.approx(1.0)
    assert mean_running(log, 50.0, 90.0) is None and mean_running(tmp_path / "none", 0.0, 1.0) is None

    host = HostEnergy(cpu_j=10.0, ram_j=6.0, duration_s=10.0, provenance="measured: codecarbon",
                      intensity_g_per_kwh=400.0, intensity_provenance="estimated: grid")

    def ram(ended: float) -> tuple[float, str]:
        reading = EnergyReading(10.0, host, "", None, "no GPU", ended)
        figures = window_figures(reading, 1000, 8, EnergyContext(ram_share=2, running_file=str(log)))
        return figures.metrics["ram_energy_j_per_1k"], figures.provenance["ram_energy_j_per_1k"]

    shared, how = ram(115.0)
    assert shared == pytest.approx(6.0 / 1.5) and "1.5 runs ran at once on average over the window" in how
    alone, how = ram(120.0)
    assert alone == pytest.approx(6.0) and "ran at once" not in how


def test_the_local_executor_logs_how_many_runs_are_running_for_its_workers(tmp_path: Path) -> None:
    from harness.executor import LocalExecutor
    from harness.measure.concurrency import RUNNING_FILE_VAR, mean_running

    both_started = threading.Barrier(2, timeout=10)
    first_done = threading.Event()
    seen: dict[str, Any] = {}

    class Workers:  # stands in for the worker processes
        def start(self, runs: list[Any]) -> None:
            pass

        def close(self) -> None:
            pass

        def run(self, spec: Any, log_path: Path, stop: Any, gpu: Any, env: dict[str, str]) -> Any:
            both_started.wait()
            if spec.run_id == "first":
                return SimpleNamespace(error=None)
            assert first_done.wait(10)  # the first run's end is logged: this one is alone now
            path = env[RUNNING_FILE_VAR]
            times, counts = zip(*(line.split() for line in Path(path).read_text().splitlines()))
            seen["counts"] = counts
            seen["together"] = mean_running(path, float(times[1]), float(times[2]))
            seen["alone"] = mean_running(path, float(times[2]), time.monotonic())
            return SimpleNamespace(error=None)

    executor = LocalExecutor(jobs=2)
    executor.workers = Workers()
    runs = [SimpleNamespace(run_id=name, device="cpu", placement=SimpleNamespace()) for name in ("first", "second")]

    def on_result(spec: Any, result: Any) -> None:
        if spec.run_id == "first":
            first_done.set()

    executor.run(runs, tmp_path / "logs", lambda spec: None, on_result)
    assert seen["counts"] == ("1", "2", "1")  # one started, both running, one left
    assert seen["together"] == 2.0 and seen["alone"] == 1.0


SENTIMENT = """
[suite]
name = "sentiment"

[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "reviews"
kind = "text-classification"
data_files = { train = "train.csv", test = "test.csv" }
"""


def test_validate_and_plugins_say_that_datasets_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text("text,label\ngood film,positive\nbad film,negative\n")
    suite = write_suite(tmp_path, SENTIMENT)
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails: not installed
    sentence = ("task kind 'text-classification' (plugin 'text') needs datasets, which is not installed: "
                "pip install 'compression-harness[data]'")
    proc = cli("validate", str(suite))
    assert proc.returncode == 2
    assert " ".join(proc.stderr.split()).endswith(f"tasks[0].kind: {sentence}"), proc.stderr

    listed = {p["name"]: p for p in json.loads(cli("plugins", "--json").stdout)}
    assert listed["text"]["status"] == "ok" and listed["text"]["missing"] == [sentence]
    assert listed["classification"]["missing"] == []
    shown = cli("plugins", env={"COLUMNS": "400"}).stdout
    assert "needs datasets, which is not installed" in shown


def test_fine_tuning_on_an_lm_task_trains_a_causal_lm_and_skips_any_other(tmp_path: Path) -> None:
    """An LM task's training is next-token prediction on its text; an encoder or a
    classifier on a ``fidelity`` task failed in the loss (a TypeError on a BERT encoder's
    output), and now skips saying why. Here the task as it is after ``before_compression``,
    with a character tokenizer and a tiny next-token model, without transformers."""
    import torch

    from harness.api import RunContext, Skip
    from harness_plugins.methods.training.finetune import Finetune, FinetuneParams
    from harness_plugins.tasks.lm.fidelity import Fidelity, FidelityConfig

    text = tmp_path / "text.txt"
    text.write_text("the film was good and the plot was fine\n" * 20)
    vocab = 128
    ctx = RunContext("cpu", 0, tmp_path, tmp_path)
    ctx.task = Fidelity().prepare(FidelityConfig(text=str(text), seq_len=8, gen_batch_sizes=()), ctx)
    ctx.task.tokenizer = lambda s: {"input_ids": [ord(c) % vocab for c in s]}
    ctx.evaluate = lambda model: {}
    model = torch.nn.Sequential(torch.nn.Embedding(vocab, 8), torch.nn.Linear(8, vocab))  # ids -> next-token logits

    ctx.task.causal = True
    assert Finetune().apply(model, FinetuneParams(epochs=1), ctx)[1]["steps"] >= 1
    ctx.task.causal = False  # an encoder, a masked LM or a classifier
    with pytest.raises(Skip, match="next-token prediction, which needs a causal LM, and this model is not one"):
        Finetune().apply(model, FinetuneParams(epochs=1), ctx)


def test_a_run_keeps_its_number_from_start_to_end() -> None:
    from harness.display import ProgressLog

    out = console()
    progress = ProgressLog(out, 4, jobs=2)
    progress.start("id-a", "mlp · int8 · digits")
    progress.start("id-b", "mlp · baseline · digits")
    progress.finish("id-b", "mlp · baseline · digits", "ok", 1.0)
    progress.finish("id-a", "mlp · int8 · digits", "ok", 2.0)
    lines = out.file.getvalue().splitlines()
    assert lines[2].startswith("[2/4] mlp · baseline · digits ok in 1.0s (1 done, elapsed")
    assert lines[3].startswith("[1/4] mlp · int8 · digits ok in 2.0s (2 done, elapsed")


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    from harness.plural import plural

    assert [plural(1, "run"), plural(2, "run"), plural(0, "GPU"), plural(0.5, "GPU")] == \
        ["1 run", "2 runs", "0 GPUs", "0.5 GPUs"]
    suite = digits_suite(tmp_path, "one")
    said = " ".join(cli("validate", str(suite)).stdout.split())
    assert "1 model × 1 method incl. baseline × 1 task → 1 run" in said, said
    said = cli("bench", str(suite), "--dry-run", "--results", str(tmp_path / "r")).stdout
    assert "dry run: 1 run selected, 1 would run" in said, said
    (tmp_path / "bad").mkdir()
    bad = digits_suite(tmp_path / "bad", "bad", suite="bogus = 1")
    assert "error: 1 problem in" in " ".join(cli("validate", str(bad)).stderr.split())
