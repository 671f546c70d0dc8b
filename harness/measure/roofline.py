"""Each run's distance to the physical limit: FLOPs and bytes moved per call, the FLOP/s
and bytes/s reached, the machine's peaks (:mod:`harness.measure.peaks`), what bounds the
model and what share of its roofline it reaches. See docs/roofline.md.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` over one forward at each
timed batch size; layers whose kernels it cannot see (torch.ao's packed int8 Linear and
Conv) are counted by forward hooks with the same math as their float form. Bytes are
counted, not profiled: the stored weights read once, the input read, every tensor an
operation creates written once and read once (the outputs written only). Nothing here
may fail a run: a figure that cannot be had is absent, with why.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.measure import model_stats
from harness.measure.figures import Figures
from harness.measure.peaks import OVERHEAD_SHARE

KEYS = ("flops", "bytes_moved", "gflop_per_s", "gb_per_s", "arithmetic_intensity", "peak_gflop_per_s",
        "peak_gb_per_s", "bound", "roofline_share", "roofline")
INT8 = {"int8", "uint8", "qint8", "quint8"}


@dataclass
class Count:
    """What one forward did: FLOPs by the dtype they ran in, the bytes of tensors it read
    and created, the layers counted by hook and the ops outside aten it ran."""

    by_dtype: Counter = field(default_factory=Counter)
    hooked: list[str] = field(default_factory=list)
    input_bytes: int = 0
    created_bytes: int = 0  # intermediates × 2 (written, read), outputs × 1 (written)
    foreign: Counter = field(default_factory=Counter)

    @property
    def flops(self) -> int:
        return sum(self.by_dtype.values())


def dtype_name(dtype: Any) -> str:
    name = str(dtype).removeprefix("torch.")
    return "int8" if name in INT8 else name


def _tensors(value: Any) -> list[Any]:
    """The plain tensors in ``value`` (nested tuples, lists, dicts; a tensor subclass by
    what it stores)."""
    import torch

    if isinstance(value, torch.Tensor):
        try:
            return model_stats.stored_tensors(value)
        except Exception:
            return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _ptr(tensor: Any) -> int:
    try:
        return tensor.untyped_storage().data_ptr()
    except Exception:
        return 0


def _nbytes(tensors: list[Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _is_layer(module: Any) -> bool:
    return (hasattr(module, "in_features") and hasattr(module, "out_features")) or \
        (hasattr(module, "in_channels") and hasattr(module, "kernel_size"))


def layer_flops(module: Any, args: tuple, output: Any) -> int:
    """The FLOPs of a Linear or Conv layer's float form for this call (0: not one)."""
    import torch

    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if x is None or not _is_layer(module) or getattr(module, "transposed", False):
        return 0
    if hasattr(module, "in_features"):
        return 2 * module.in_features * module.out_features * (x.numel() // module.in_features)
    kernel = module.kernel_size
    size = math.prod(kernel) if isinstance(kernel, (tuple, list)) else kernel
    return 2 * output.numel() * (module.in_channels // getattr(module, "groups", 1)) * size


def count_forward(model: Any, example: Any) -> Count:
    """FLOPs and bytes of one ``model(example)`` under inference mode."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    count = Count()
    created: list[tuple[int, int]] = []

    def recording(formula: Any) -> Any:
        def raw(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
            flops = formula(*args, out_val=out_val, **kwargs)
            first = next((a for a in args if isinstance(a, torch.Tensor)), None)
            count.by_dtype[dtype_name(first.dtype) if first is not None else "float32"] += flops
            return flops

        raw._get_raw = True  # FlopCounterMode hands it the tensors (their dtype), not only shapes
        return raw

    mapping = {op: recording(formula) for op, formula in flop_registry.items()}
    mapping[torch.ops.aten._int_mm] = recording(flop_registry[torch.ops.aten.mm])  # torchao's int8 GEMM

    class Traffic(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            if func.namespace != "aten":
                count.foreign[str(func._overloadpacket)] += 1
            read = {_ptr(t) for t in _tensors((args, kwargs or {}))}
            created.extend((p, _nbytes([t])) for t in _tensors(out) if (p := _ptr(t)) and p not in read)
            return out

    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    starts: list[int] = []

    def before(module: Any, args: tuple) -> None:
        starts.append(count.flops)

    def after(name: str) -> Any:
        def hook(module: Any, args: tuple, output: Any) -> None:
            if count.flops == starts.pop():  # the counter saw no FLOPs in this layer: its kernel is hidden
                flops = layer_flops(module, args, output)
                if flops:  # torch.ao's quantized layers run fbgemm/x86/qnnpack int8 GEMMs
                    int8 = type(module).__module__.startswith("torch.ao.nn.quantized")
                    count.by_dtype["int8" if int8 else dtype_name(args[0].dtype)] += flops
                    count.hooked.append(name)
        return hook

    handles = []
    for name, module in getattr(model, "named_modules", lambda: [])():
        if _is_layer(module):
            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after(name))]
    try:
        with torch.inference_mode(), counter, Traffic():
            output = model(example)
    finally:
        for handle in handles:
            handle.remove()
    count.input_bytes = _nbytes(_tensors(example))
    outputs = {_ptr(t) for t in _tensors(output)}
    for ptr, nbytes in reversed(created):  # the last tensor made at an output's address is that output
        count.created_bytes += nbytes if ptr in outputs else 2 * nbytes
        outputs.discard(ptr)
    return count


def weight_traffic(model: Any, torch_model: Any) -> tuple[int, str]:
    """(bytes of weights one call reads, provenance): the runtime's stored weights where
    it says, else the torch model's as stored — an embedding table by the rows gathered
    (counted with the activations), unless it is tied to a layer that reads it whole."""
    stored = getattr(model, "weight_bytes", None)
    if isinstance(stored, int) and not isinstance(stored, bool):
        return stored, f"measured: the runtime's stored weights ({stored:,} B), read once per call"
    total = model_stats.weight_bytes(torch_model)
    layers = {_ptr(t) for _, w in model_stats.weight_tensors(torch_model) for t in _tensors(w)}
    tables = [_tensors(w) for _, w in model_stats.embedding_tensors(torch_model)]
    gathered = sum(_nbytes(leaves) for leaves in tables if not any(_ptr(t) in layers for t in leaves))
    how = (f"weights and buffers as stored ({total - gathered:,} B; packed and quantized by what they store), "
           "read once per call" + (f"; {gathered:,} B of embedding tables by the rows gathered" if gathered else ""))
    if torch_model is not model:
        return total - gathered, f"estimated: the runtime did not say what it stores: the torch model's {how}"
    return total - gathered, f"measured: {how}"


def roofline_figures(model: Any, examples: dict[int, Any], latency: dict[str, Any] | None, device: str,
                     compile_mode: str = "none", absent: str = "") -> Figures:
    """The roofline figures of ``model`` at its largest timed batch (the throughput
    batch), from its ``latency`` per batch size (every batch in ``roofline``). A figure
    that cannot be had is absent with why; nothing here raises."""
    if not latency:
        return _all_absent(absent or "no latency was measured")
    try:
        return _figures(model, examples, latency, device, compile_mode)
    except Exception as exc:
        return _all_absent(f"could not be computed ({type(exc).__name__}: {exc})"[:300])


def _all_absent(why: str, f: Figures | None = None, keys: tuple[str, ...] = KEYS) -> Figures:
    f = f or Figures()
    for key in keys:
        f.absent(key, why)
    return f


def _figures(model: Any, examples: dict[int, Any], latency: dict[str, Any], device: str, compile_mode: str) -> Figures:
    from harness.measure.kernels import runtime_dtype
    from harness.measure.peaks import machine_peaks, place

    source = getattr(model, "source", None)
    torch_model = model if source is None else source
    batches = [n for n in sorted(examples) if str(n) in latency]
    counts = {n: count_forward(torch_model, examples[n]) for n in batches}  # first: the probe must not fail them
    ran, ran_how = runtime_dtype(model) if source is not None else (None, "")
    for c in counts.values() if ran else ():  # the runtime's int8 ops count at int8's peak, not float32's
        c.by_dtype = Counter({ran: c.flops})
    weights, weights_how = weight_traffic(model, torch_model)
    try:
        peaks = machine_peaks(device)
    except Exception as exc:
        peaks, unprobed = None, f"the machine's peaks could not be probed ({type(exc).__name__}: {exc})"[:300]
    b, f = batches[-1], Figures()
    c = counts[b]
    at = f"at batch {b} (the throughput batch; every timed batch in `roofline`)"
    caveats = ["counted on the torch model the runtime was exported from; the runtime may fuse ops"] * (
        source is not None) + [f"counted on the eager model: torch.compile ({compile_mode}) fuses ops, so fewer "
                               "intermediate bytes move"] * (compile_mode != "none")
    kind = "estimated" if caveats or weights_how.startswith("estimated") else "measured"  # and what follows
    bytes_how = f"{kind}: " + "; ".join([weights_how.split(": ", 1)[1], (
        f"counted, not profiled, {at}: + input {c.input_bytes:,} B read + {c.created_bytes:,} B of tensors the "
        "ops create (written once and read once; outputs written only; views and in-place updates not counted)"
    )] + caveats)
    nbytes = weights + c.input_bytes + c.created_bytes
    seconds = latency[str(b)]["p50_ms"] / 1e3
    f.put("bytes_moved", nbytes, bytes_how)
    f.put("gb_per_s", nbytes / seconds / 1e9, f"{kind}: bytes_moved / p50 latency at batch {b} ({seconds * 1e3:.3g} ms)")
    ops = f"; ops outside aten: {', '.join(f'{op} ×{n}' for op, n in c.foreign.most_common(5))}" if c.foreign else ""
    if not c.flops:
        why = f"FlopCounterMode (and the Linear/Conv hooks) counted no FLOPs in one forward{ops}"
        _all_absent(why, f, ("flops", "gflop_per_s", "arithmetic_intensity", "peak_gflop_per_s", "bound",
                             "roofline_share"))
    else:
        hooked = (f"; {len(c.hooked)} layer(s) whose kernel the counter cannot see ({', '.join(c.hooked[:4])}"
                  f"{', …' if len(c.hooked) > 4 else ''}) counted by forward hooks as their float form "
                  "(Linear 2·in·out per row, Conv 2·out·in/groups·kernel)") if c.hooked else ""
        f.measured("flops", c.flops, f"torch.utils.flop_counter.FlopCounterMode over one forward {at}{hooked}"
                   + ("; on the torch model the runtime was exported from" if source is not None else "") + ran_how + ops)
        f.measured("gflop_per_s", c.flops / seconds / 1e9, f"flops / p50 latency at batch {b} ({seconds * 1e3:.3g} ms)")
        f.put("arithmetic_intensity", c.flops / nbytes, f"{kind}: flops / bytes_moved")
    per = {str(n): place(counts[n].flops, weights + counts[n].input_bytes + counts[n].created_bytes,
                         latency[str(n)]["p50_ms"] / 1e3, counts[n].by_dtype, peaks) for n in batches}
    if peaks is None:
        _all_absent(unprobed, f, ("peak_gflop_per_s", "peak_gb_per_s", "bound", "roofline_share"))
    else:
        _peak_figures(f, per[str(b)], peaks, kind, b, runtime=source is not None)
    per = {n: {k: v for k, v in row.items() if k != "peak_how"} for n, row in per.items()}  # said once, above
    f.measured("roofline", {"batch": b, "overhead_below": OVERHEAD_SHARE, "batches": per,
                            "peaks": peaks.to_dict() if peaks else None},
               "per timed batch: FLOPs, bytes, p50 seconds, intensity, attainable GFLOP/s, share, bound; the peaks")
    return f


def _peak_figures(f: Figures, row: dict[str, Any], peaks: Any, kind: str, b: int, runtime: bool = False) -> None:
    """The peaks, the bound and the share of the roofline at batch ``b`` (``kind``: the bytes'
    provenance, which bound and share inherit; neither where :meth:`Peaks.beyond` says why)."""
    where = (f"probed once per machine in {peaks.probe_s:.2f} s" + (f" (cached: {peaks.cached})" if peaks.cached else "")
             + (f"; probed while the machine was busy (load {peaks.load_average}): may be low" if peaks.busy else ""))
    if peaks.bytes_per_s:
        f.measured("peak_gb_per_s", peaks.bytes_per_s / 1e9, f"{peaks.notes['memory']}; {where}")
    else:
        f.absent("peak_gb_per_s", peaks.notes.get("memory", "no memory probe"))
    if "flops" not in f.metrics:  # peak FLOP/s, bound and share are absent already, with why
        return
    if "peak_gflop_per_s" in row:
        f.measured("peak_gflop_per_s", row["peak_gflop_per_s"], f"{row['peak_how']}; {where}")
    else:
        f.absent("peak_gflop_per_s", row["peak_how"])
    if "share" not in row:
        _all_absent(row["why"], f, ("bound", "roofline_share"))
        return
    cache, achieved = "", row["flops"] / row["seconds"]
    if row["share"] > 1 and (achieved > row["peak_gflop_per_s"] * 1e9 or row["bytes"] > (peaks.cache_bytes or 0)):
        why = peaks.beyond(achieved, row["attainable_gflop_per_s"] * 1e9, row["peak_how"], runtime)
        _all_absent(f"{kind}: {why} (at batch {b})", f, ("bound", "roofline_share"))
        return
    if row["share"] > 1:  # within the cache and below the compute peak
        cache = (f"; above 1: the {row['bytes']:,} B a call moves fit in the {peaks.cache_bytes:,} B cache, "
                 "so memory's roofline (probed beyond the cache) does not bind")
    f.put("roofline_share", row["share"], f"{kind}: achieved / min(peak, intensity × peak bytes/s) at batch {b} = "
          f"{row['flops'] / row['seconds'] / 1e9:,.3g} / {row['attainable_gflop_per_s']:,.3g} GFLOP/s{cache}")
    f.put("bound", row["bound"], f"{kind}: intensity {row['intensity']:.3g} FLOP/B vs ridge {row['ridge']:.3g} FLOP/B, "
          f"share {row['share']:.1%} of the roofline; 'overhead' below {OVERHEAD_SHARE:.0%}: the roofline explains "
          f"under a tenth of the time (launch, dispatch, kernels far from peak on small shapes){cache}")
