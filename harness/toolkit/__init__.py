"""The public surface for plugin authors, besides :mod:`harness.api` and
:mod:`harness.hookspecs`: helpers the built-in plugins use, on the same terms as yours.

Everything here is stable API; nothing imports torch until it is called.

- Training: :func:`fit` (a deterministic loop over a task's batches and loss),
  :class:`FitReport`, :func:`zero_masks`.
- Which layers to compress: :func:`target_layers` (Linear, optionally Conv, layers; the
  output head and tied embeddings left alone unless asked: the rule of every built-in),
  :func:`head_names`, :func:`layer_filter` (a torchao ``filter_fn`` for those names),
  :func:`no_layers` (the skip message when a model has none: e.g. an exported graph),
  :func:`output_layers` (the layers that produce the outputs), :func:`fresh_copy` (a
  re-initialised copy, for training from the same start).
- Model facts: :func:`count_params`, :func:`zero_fraction`, :func:`weight_sparsity`.
- Memory: :func:`reset_peak_rss`, :func:`peak_rss_bytes`.
- Messages: :func:`nearest` ("; did you mean 'x'?"), :func:`plural` ("1 run", "2 runs").
- Params: :data:`OMIT_AT_DEFAULT`, the ``field(metadata=...)`` of a key added to a
  released plugin's Params/Options/Config: left out of run ids while at its default, so
  that existing results keep their ids.
- Environment: :func:`installed_version`, :func:`library`, :func:`usable_cores`,
  :func:`cache_dir`, :func:`torchao_status` (which torchao extensions loaded).
- Executors: :func:`run_isolated` runs one :class:`RunSpec` in a fresh worker process and
  always returns its :class:`RunResult`; :class:`Workers` does the same with workers forked
  from a fork server of its own (warm), and runs helper modules (model preparation).
- Runtimes: :class:`Graph` (a model in a runtime's own form, as its ``export`` returns it
  and its methods transform it), :func:`export_onnx`, :class:`RuntimeModel` (the callable
  tasks and the timer get).
- Child processes: :func:`python_command` is the argv that runs a module in a fresh
  Python without the current directory on its import path; :func:`exclusive` holds a
  lock while one process builds what a cache path names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from harness.machine import installed_version, usable_cores
from harness.measure.memory import peak_rss_bytes, reset_peak_rss
from harness.measure.model_stats import count_params, weight_sparsity, zero_fraction
from harness.measure.torchao_status import torchao_status
from harness.params import OMIT_AT_DEFAULT, nearest
from harness.plural import plural
from harness.process import exclusive, python_command
from harness.result import RunResult
from harness.spec import RunSpec
from harness.toolkit.layers import (
    fresh_copy,
    head_names,
    layer_filter,
    no_layers,
    output_layers,
    target_layers,
)
from harness.toolkit.runtimes import Graph, RuntimeModel, export_onnx, save_files
from harness.toolkit.training import FitReport, fit, zero_masks
from harness.workers import Workers

if TYPE_CHECKING:
    import threading


def library(dist: str, label: str | None = None) -> str:
    """``"<label> <version>"`` of an installed distribution, for a method's ``info``."""
    return f"{label or dist} {installed_version(dist)}"


def cache_dir() -> Path:
    """Where plugins keep what they build once (trained models, converted data):
    ``$HARNESS_CACHE``, default ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE", Path.home() / ".cache" / "harness"))


def run_isolated(spec: RunSpec, log_path: Path, stop: threading.Event | None = None) -> RunResult:
    """Run ``spec`` in a fresh worker process (its own process group, killed at the
    spec's timeout or when ``stop`` is set); its output goes to ``log_path``."""
    from harness.supervise import run_in_subprocess

    return run_in_subprocess(spec, log_path, stop)


__all__ = [
    "OMIT_AT_DEFAULT", "FitReport", "Graph", "RuntimeModel", "export_onnx", "save_files", "RunResult", "RunSpec", "Workers", "cache_dir", "count_params", "exclusive", "fresh_copy", "head_names", "layer_filter", "no_layers", "output_layers", "target_layers", "fit", "installed_version",
    "library", "nearest", "peak_rss_bytes", "plural", "python_command", "reset_peak_rss", "run_isolated", "torchao_status",
    "usable_cores", "weight_sparsity", "zero_fraction", "zero_masks",
]

