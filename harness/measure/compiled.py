"""``[measure] compile``: the model as deployed with ``torch.compile``, compiled before
timing, with what the compilation cost kept apart from latency.

``torch.compile(model, mode=..., dynamic=False)`` compiles lazily, on the first call for
each new input shape; with ``dynamic=False`` every timed batch size gets its own static
graph (the fastest kernels, as a server with fixed batch sizes would have). So each batch
size is called once, synchronized, before anything is timed: that call is its
``compile_s``. Two more calls follow (untimed): ``reduce-overhead`` records its CUDA graph
on a later call than the first. Inductor's on-disk cache is a fresh directory per run
(unless ``TORCHINDUCTOR_CACHE_DIR`` is set), so ``compile_s`` is the cold cost every
method pays alike, not whatever an earlier run left behind.

A compilation that fails, or captures no graph at all, does not fail the run: the
figures of the compiled model are absent with the reason (an eager fallback labelled
"compiled" would mislead, and a suite that wants eager figures runs ``"none"`` too).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.plural import plural

EXTRA_CALLS = 2  # after the compiling call: CUDA graph trees record on a later call


@dataclass
class Compiled:
    model: Any  # what to time: the compiled model, or None when compilation failed
    seconds: dict[int, float] = field(default_factory=dict)  # batch size -> its compiling call
    how: str = ""  # for provenance
    failed: str = ""  # why there is nothing to time
    failed_batches: dict[int, str] = field(default_factory=dict)  # batch size -> why it did not compile
    graphs: int = 0  # graphs dynamo captured
    graph_breaks: int = 0


@contextlib.contextmanager
def _fresh_inductor_cache() -> Iterator[str]:
    """A fresh inductor cache directory for the compilation, unless the user set
    ``TORCHINDUCTOR_CACHE_DIR`` (torch itself sets it to its default on import)."""
    from torch._inductor.runtime import cache_dir_utils

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen and os.path.abspath(chosen) != os.path.abspath(cache_dir_utils.default_cache_dir()):
        yield f"TORCHINDUCTOR_CACHE_DIR={chosen} (may be warm)"
        return
    with tempfile.TemporaryDirectory(prefix="harness-inductor-") as directory, \
            cache_dir_utils.temporary_cache_dir(directory):
        yield "a fresh inductor cache for this run (a cold compile)"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def _dynamo_counts() -> tuple[int, int]:
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"]), int(sum(counters["graph_break"].values()))


def _first_line(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:300]}"


def compile_for_timing(model: Any, examples: dict[int, Any], mode: str, device: str) -> Compiled:
    """Compile ``model`` with ``mode`` and warm every batch size in ``examples``."""
    import torch

    out = Compiled(None, how=f"torch.compile(mode={mode!r}, dynamic=False)")
    try:
        torch._dynamo.reset()  # a clean slate: no graph of an earlier model in this process
        graphs0, breaks0 = _dynamo_counts()
        with _fresh_inductor_cache() as cache, torch.inference_mode():
            compiled = torch.compile(model, mode=mode, dynamic=False)
            for batch, example in sorted(examples.items()):
                try:  # a kernel may refuse one shape (torchao's int8 matmul: batch 1 on CUDA)
                    _sync(device)
                    t0 = time.perf_counter()
                    compiled(example)
                    _sync(device)
                    out.seconds[batch] = time.perf_counter() - t0
                    for _ in range(EXTRA_CALLS):
                        compiled(example)
                    _sync(device)
                except Exception as exc:  # a compiler error is a finding about this model, not a failed run
                    out.failed_batches[batch] = f"{out.how} failed at batch {batch}: {_first_line(exc)}"
        graphs, breaks = _dynamo_counts()
    except Exception as exc:
        out.failed = f"{out.how} failed: {_first_line(exc)}"
        return out
    if not out.seconds:
        out.failed = next(iter(out.failed_batches.values()))
        return out
    out.graphs, out.graph_breaks = graphs - graphs0, breaks - breaks0
    if out.graphs == 0:
        out.failed = f"{out.how} captured no graph (every call fell back to eager; {plural(out.graph_breaks, 'graph break')})"
        return out
    out.model = compiled
    out.how += f"; {plural(out.graphs, 'graph')}, {plural(out.graph_breaks, 'graph break')}; {cache}"
    return out
