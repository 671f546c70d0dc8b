"""What a runtime plugin builds on: the compressed torch model, called by tasks and the
timer as usual, run by another runtime (ONNX Runtime, OpenVINO, ...).

:class:`RuntimeModel` is that callable. On the first call with a new *signature* (which
positional and keyword tensors, of which dtypes and ranks), it wraps the torch model into
a module with flat tensor inputs and outputs, asks the runtime to ``export`` it, applies
the runtime's own compression steps to the :class:`Graph`, and ``load``\\s it; later calls
with that signature run the loaded graph, converting tensors to numpy arrays and the
outputs back into the torch model's own output type (a tensor, a tuple, or a
``ModelOutput``/dict). A task and the timer usually call with different signatures (e.g.
``model(input_ids=..., attention_mask=...)`` and ``model(input_ids)``): each gets its own
graph, exactly the call it makes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Keyword inputs a calibration batch may lack, and what a Hugging Face model assumes when
# they are not given (its own defaults).
DEFAULT_INPUTS = {"attention_mask": "ones", "token_type_ids": "zeros"}


@dataclass
class Graph:
    """A model in a runtime's own form, as ``Runtime.export`` returns it and a runtime's
    methods transform it: ``form`` is the runtime's object (an ``.onnx`` path, an
    ``openvino.Model``), ``inputs``/``outputs`` the flat tensor names in call order,
    ``examples`` the example inputs it was exported with (numpy arrays), ``work_dir`` a
    folder private to the run for the files a step writes."""

    form: Any
    inputs: list[str]
    outputs: list[str]
    examples: list[Any]
    work_dir: Path
    notes: list[str] = field(default_factory=list)

    def feeds(self, batch: Any) -> dict[str, Any]:
        """The graph's inputs (name -> numpy array) for a task's batch (a tensor, a tuple
        of tensors, or a dict of tensors such as a calibration batch): inputs the batch
        lacks get the model's own defaults (``attention_mask``: ones; ``token_type_ids``:
        zeros); a batch that cannot fill an input raises ValueError."""
        import numpy as np

        positional = [n for n in self.inputs if n.startswith("input_")] or ["input_ids"]  # else a keyword graph
        if isinstance(batch, dict):
            given = {k: v for k, v in batch.items() if v is not None}
        elif isinstance(batch, (tuple, list)):
            given = dict(zip(positional, batch))
        else:  # a tensor: the first positional input, or the token ids of a graph exported from keywords
            given = {positional[0]: batch}
        first = _numpy(next(iter(given.values())))
        out = {}
        for name in self.inputs:
            if name in given:
                out[name] = _numpy(given[name])
            elif DEFAULT_INPUTS.get(name) == "ones":
                out[name] = np.ones(first.shape[:2], dtype=first.dtype)
            elif DEFAULT_INPUTS.get(name) == "zeros":
                out[name] = np.zeros(first.shape[:2], dtype=first.dtype)
            else:
                raise ValueError(f"the batch has no input '{name}' (it has {', '.join(given)})")
        return out


def _numpy(x: Any) -> Any:
    return x.detach().cpu().contiguous().numpy() if hasattr(x, "detach") else x


@dataclass
class Built:
    run: Callable[[list[Any]], list[Any]]
    inputs: list[str]
    rebuild: Callable[[list[Any]], Any]
    seconds: float  # export + steps + load


def signature(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """What decides the exported graph: positions and names of the tensor inputs, with
    their dtypes and ranks (not their sizes: every graph takes any batch and length)."""
    def of(x: Any) -> Any:
        return (str(x.dtype), x.dim()) if hasattr(x, "dim") else repr(x)

    return tuple(of(a) for a in args), tuple(sorted((k, of(v)) for k, v in kwargs.items() if v is not None))


class RuntimeModel:
    """The compressed model as a runtime runs it: call it like the torch model.

    ``build(args, kwargs) -> Built`` makes the graph for a new signature (export → the
    runtime's steps → load). ``source`` is the torch model it is made from (for model
    facts such as FLOPs and ``config``); ``weight_bytes`` the runtime's stored weights.
    """

    def __init__(self, runtime: str, source: Any, build: Callable[[tuple, dict], Built]):
        self.runtime, self.source, self._build = runtime, source, build
        self.graphs: dict[tuple[Any, ...], Built] = {}
        self.weight_bytes: int | None = None
        self.kernels_of: Callable[[], list[str] | None] | None = None

    @property
    def config(self) -> Any:  # a Hugging Face model's config, read by LM tasks
        return self.source.config

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name.startswith("harness_"):
            raise AttributeError(name)
        raise AttributeError(f"the {self.runtime} runtime runs the model's forward only; "
                             f"'{name}' is the torch model's (use runtime = 'torch' for what needs it)")

    def eval(self) -> RuntimeModel:
        return self

    def kernels(self) -> list[str] | None:
        """The kernels/ops the runtime ran in its last calls, where it can say."""
        return self.kernels_of() if self.kernels_of else None

    def prepare(self, *args: Any, **kwargs: Any) -> Built:
        """The graph for this call's signature, built now if it is new."""
        key = signature(args, kwargs)
        if key not in self.graphs:
            self.graphs[key] = self._build(args, kwargs)
        return self.graphs[key]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        built = self.prepare(*args, **kwargs)
        return built.rebuild(built.run(_arrays(args, kwargs)))

    def bound(self, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        """The runtime's own call on these inputs, converted to its arrays once: arrays in,
        its arrays out, as a program serving with the runtime calls it. The timer times
        this (the torch-tensor conversions of ``__call__`` cost ~10 µs a call, a third of a
        small model's latency in ONNX Runtime)."""
        built, arrays = self.prepare(*args, **kwargs), _arrays(args, kwargs)
        return lambda: built.run(arrays)

    @property
    def build_seconds(self) -> float:
        return sum(b.seconds for b in self.graphs.values())


def _arrays(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """A call's tensors as numpy arrays, in the order :func:`flat_module` names them."""
    return [_numpy(t) for t in list(args) + [kwargs[k] for k in sorted(kwargs) if kwargs[k] is not None]]


def flat_module(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, tuple[Any, ...],
                                                                                   list[str], list[str],
                                                                                   Callable[[list[Any]], Any]]:
    """(module, inputs, input names, output names, rebuild): ``module(*inputs)`` is
    ``model(*args, **kwargs)`` with its outputs flattened to a tuple of tensors, and
    ``rebuild(arrays)`` turns the runtime's outputs back into the model's output type."""
    import torch

    names = [f"input_{i}" for i in range(len(args))] + sorted(k for k, v in kwargs.items() if v is not None)
    n_args = len(args)
    kw_names = names[n_args:]
    inputs = tuple(args) + tuple(kwargs[k] for k in kw_names)
    with torch.no_grad():
        out = model(*args, **kwargs)
    if isinstance(out, torch.Tensor):
        keys: list[Any] = [None]
    elif isinstance(out, (tuple, list)):
        keys = list(range(len(out)))
    elif isinstance(out, dict):  # a transformers ModelOutput is a dict of its non-None fields
        keys = [k for k, v in out.items() if isinstance(v, torch.Tensor)]
    else:
        raise TypeError(f"the model returns {type(out).__name__}: a runtime needs tensors, a tuple or a dict of them")
    kind = type(out)

    class Flat(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *xs: Any) -> tuple[Any, ...]:
            result = self.model(*xs[:n_args], **dict(zip(kw_names, xs[n_args:])))
            return (result,) if keys == [None] else tuple(result[k] for k in keys)

    def rebuild(arrays: list[Any]) -> Any:
        tensors = [torch.from_numpy(a) for a in arrays]
        if keys == [None]:
            return tensors[0]
        if isinstance(out, (tuple, list)):
            return kind(tensors) if kind in (tuple, list) else tuple(tensors)
        return kind(**dict(zip(keys, tensors)))

    outputs = ["output" if k is None else str(k) for k in keys]
    return Flat().eval(), inputs, names, outputs, rebuild


def export_onnx(module: Any, inputs: tuple[Any, ...], names: list[str], outputs: list[str], path: Path) -> str:
    """Export ``module(*inputs)`` to ONNX at ``path`` with every batch dimension (and the
    length of integer inputs such as token ids) dynamic; returns how it was exported.

    torch's own exporter (``torch.onnx.export(..., dynamo=True)``) first; where it cannot
    take the model, the TorchScript exporter, and the note says so."""
    import torch

    widened = tuple(_at_least_two(x) for x in inputs)  # a size of 1 would be specialised
    dims = [{0: "batch"} | ({1: "length"} if not x.is_floating_point() and x.dim() >= 2 else {}) for x in widened]
    path = Path(path)
    # forward(*inputs): the varargs are one argument, whose dimensions are a tuple per tensor
    shapes = (tuple({d: torch.export.Dim.DYNAMIC for d in dim} for dim in dims),)
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")  # "torchvision is not installed"
    level = quiet.level
    try:
        quiet.setLevel(logging.ERROR)
        big = sum(p.numel() * p.element_size() for p in module.parameters()) > 1.5e9  # ONNX's 2 GB protobuf limit
        torch.onnx.export(module, widened, str(path), dynamo=True, input_names=names, output_names=outputs,
                          dynamic_shapes=shapes, optimize=True, verbose=False, external_data=big)
        return f"torch.onnx.export(dynamo=True), torch {torch.__version__}"
    except Exception as first:  # noqa: BLE001 - the older exporter takes more models
        path.unlink(missing_ok=True)
        try:
            torch.onnx.export(module, widened, str(path), dynamo=False, input_names=names, output_names=outputs,
                              dynamic_axes={n: d for n, d in zip(names, dims)})
        except Exception as second:
            # the TorchScript exporter names the operator; torch.export's first line says "step 1/3"
            raise RuntimeError(f"the model does not export to ONNX: {_line(second)}") from None
        return (f"torch.onnx.export(dynamo=False) (the dynamo exporter failed: {type(first).__name__}), "
                f"torch {torch.__version__}")
    finally:
        quiet.setLevel(level)


def _line(exc: Exception) -> str:
    """An exception's first line, without terminal colours, at most 200 characters."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"


def _at_least_two(x: Any) -> Any:
    import torch

    if x.dim() >= 1 and x.shape[0] == 1:
        x = torch.cat([x, x])
    if not x.is_floating_point() and x.dim() >= 2 and x.shape[1] == 1:
        x = torch.cat([x, x], dim=1)
    return x


def save_files(graph: Graph, folder: Path) -> Path | None:
    """Copy a graph that is a file (an ``.onnx``, with its ``.data`` weights beside it for
    models over 2 GB) into ``folder``; the graph's path there."""
    import shutil

    form = Path(graph.form) if isinstance(graph.form, (str, Path)) else None
    if form is None or not form.is_file():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for part in (form, Path(f"{form}.data")):
        if part.is_file():
            shutil.copyfile(part, folder / part.name)
    return folder / form.name


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0
