"""Kernel truth from what ran: one forward of the timed model under ``torch.profiler``
(or, for a model another runtime runs, that runtime's own report of the ops it ran), the
compute kernels classified as low-precision, sparse, half-precision or float32, and a
method's claim of ``real`` kernels confirmed or contradicted by them.

Figures (see :mod:`harness.measure.figures`): ``kernels_seen``, the few compute kernels
that ran (low-precision and sparse first), and ``kernels``: ``"real"`` or ``"simulated"``.
The tables below are what torch 2.13, torchao 0.18, ONNX Runtime 1.32 and OpenVINO 2026.4
report (docs/kernels.md lists them with the method each was seen for).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from harness.measure.figures import Figures

SPARSE, LOW, HALF, FLOAT = "sparse", "low-precision", "half-precision", "float"
ORDER = (SPARSE, LOW, HALF, FLOAT)
MAX_SEEN = 6

# torch ops (``namespace::op``). The innermost compute op of a call is what ran: a
# quantized op that falls back to a float matmul counts as the float matmul.
TORCH_SPARSE = re.compile(r"^aten::(_sparse_semi_structured_\w+|_cslt_\w+)$|^torchao::\w*sparse\w*$")
TORCH_LOW = re.compile(
    r"^(quantized|fbgemm|mslk)::\w+$"  # torch.ao's fbgemm/x86/qnnpack ops; fbgemm-gpu, mslk kernels
    r"|^aten::(_int_mm|_weight_int[48]pack_mm\w*|_scaled_mm\w*|_scaled_grouped_mm\w*|_dyn_quant_matmul\w*"
    r"|fbgemm_linear_int8\w*)$"
    r"|^(onednn|mkldnn)::_?q(linear|conv)\w*$")  # inductor's quantized CPU ops
TORCHAO_HELPER = re.compile(r"quantize|qparams|pack|fake")  # torchao's (de)quantize ops: no compute
# float compute: matmuls, convolutions, attention (the dtype of the first input decides)
TORCH_COMPUTE = re.compile(r"(^|_)(mm|addmm|bmm|baddbmm|matmul|linear)(_|$)|conv(olution|\dd|_transpose|_depthwise)"
                           r"|attention")
DTYPES = {"float": "float32", "double": "float64", "c10::Half": "float16", "c10::BFloat16": "bfloat16",
          "signed char": "int8", "unsigned char": "uint8", "c10::qint8": "qint8", "c10::quint8": "quint8",
          "c10::qint32": "qint32", "c10::quint4x2": "quint4x2"}

# A device kernel (CUDA) counts only where it is a GEMM/conv whose name says int8/fp8/fp4
# (an elementwise kernel on int8 data, e.g. dequantizing weights, is no low-precision compute).
DEVICE_GEMM = re.compile(r"gemm|mma|matmul|_mm|conv|cutlass|cublas|tinygemm|marlin|sparse", re.I)
DEVICE_LOW = re.compile(r"(?<![a-z0-9])(i8|s8|u8|int8|imma|e4m3|e5m2|fp8|f8f8|int4|s4|u4|fp4|e2m1|nvfp4|mxfp[468]"
                        r"|tinygemm|marlin)", re.I)
DEVICE_SPARSE = re.compile(r"cusparselt|sparse", re.I)

# Another runtime's op names, optionally with ":<precision>" (OpenVINO's exec graph:
# layerType:runtimePrecision, e.g. "FullyConnected:i8").
RUNTIME_LOW = {"MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulNBits",
               "MatMulBnb4", "MatMulFpQ4", "QGemm", "QAttention", "DynamicQuantizeLSTM", "QMoE"}
RUNTIME_LOW_PREFIXES = ("QLinear", "QOrdered")  # ORT's QLinearMatMul, QLinearConv, QLinearAdd, ...
RUNTIME_COMPUTE = {"MatMul", "Gemm", "FusedGemm", "FusedMatMul", "Conv", "FusedConv", "NhwcConv", "NhwcFusedConv",
                   "ConvTranspose", "Attention", "MultiHeadAttention", "GroupQueryAttention", "Einsum",
                   "FullyConnected", "Convolution", "GroupConvolution", "Deconvolution", "ScaledAttn",
                   "ScaledDotProductAttention", "RNNSeq", "LSTMSequence", "GRUSequence"}
LOW_PRECISIONS = {"i8", "u8", "i4", "u4", "i2", "u2", "u1", "nf4", "f4e2m1", "f8e4m3", "f8e5m2", "f8e8m0",
                  "int8", "uint8", "int4", "uint4", "fp8", "fp4"}
HALF_PRECISIONS = {"f16", "bf16", "fp16", "float16", "bfloat16", "half"}

# What a claim is about: its text and the method's name.
CLAIM_SPARSE = re.compile(r"sparse|2:4|semi", re.I)
CLAIM_LOW = re.compile(r"int\d|fp[48]|float[48]|nvfp4|mxfp|fbgemm|tinygemm", re.I)
CLAIM_HALF = re.compile(r"fp16|bf16|float16|bfloat16|half", re.I)


def dtype_name(name: str) -> str:
    return DTYPES.get(name, name.removeprefix("c10::"))


def torch_kind(name: str, dtype: str = "") -> str | None:
    """The kind of a torch op given its first tensor input's dtype, or None (no compute)."""
    if TORCH_SPARSE.match(name):
        return SPARSE
    if TORCH_LOW.match(name) or (name.startswith("torchao::") and not TORCHAO_HELPER.search(name)):
        return HALF if name.endswith("_fp16") else LOW  # quantized::linear_dynamic_fp16: fp16 weights
    namespace, _, op = name.partition("::")
    if namespace not in ("aten", "mkldnn", "onednn") or not TORCH_COMPUTE.search(op):
        return None
    if dtype in ("float16", "bfloat16"):
        return HALF
    return LOW if dtype.startswith(("int", "uint", "qint", "quint", "Float8", "float8")) else FLOAT


def device_kind(name: str) -> str | None:
    """The kind of a device (CUDA) kernel, where its name tells; else None."""
    if not DEVICE_GEMM.search(name):
        return None
    if DEVICE_SPARSE.search(name):
        return SPARSE
    return LOW if DEVICE_LOW.search(name) else None


def runtime_kind(name: str) -> str | None:
    """The kind of an ONNX Runtime op type or an OpenVINO ``layerType:precision``, or None."""
    op, _, precision = name.partition(":")
    if op in RUNTIME_LOW or op.startswith(RUNTIME_LOW_PREFIXES):
        return LOW
    if op not in RUNTIME_COMPUTE:
        return None
    precision = precision.lower()
    return LOW if precision in LOW_PRECISIONS else HALF if precision in HALF_PRECISIONS else FLOAT


def runtime_dtype(model: Any) -> tuple[str | None, str]:
    """("int8", how) where every compute op another runtime reports for its last calls ran in
    int8 (ONNX Runtime's integer and QLinear ops, OpenVINO's i8/u8 precisions), else (None, "")."""
    names = model.kernels() if callable(getattr(model, "kernels", None)) else None
    compute = [name for name in dict.fromkeys(names or []) if runtime_kind(name)]
    int8 = [name for name in compute if (name.partition(":")[2].lower() in {"i8", "u8"} if ":" in name else
                                         name in RUNTIME_LOW - {"MatMulNBits", "MatMulBnb4", "MatMulFpQ4"}
                                         or name.startswith(RUNTIME_LOW_PREFIXES))]
    if not compute or len(int8) < len(compute):
        return None, ""
    return "int8", (f"; counted as int8: every compute op the runtime reported ran in int8 ({', '.join(int8[:4])}"
                    f"{', …' if len(int8) > 4 else ''})")


def torch_kernels(events: Iterable[Any]) -> tuple[list[tuple[str, str]], int]:
    """(label, kind) of the compute kernels among profiler ``events`` (innermost CPU ops,
    and device kernels whose names tell), and how many distinct names ran in all."""
    from torch.autograd import DeviceType

    events = list(events)
    found: dict[int, tuple[str, str]] = {}
    outer: set[int] = set()
    for event in events:
        if event.device_type != DeviceType.CPU:
            kind = device_kind(event.name)
            if kind:
                found[id(event)] = (event.name, kind)
            continue
        dtypes = [d for d in (getattr(event, "input_dtypes", None) or []) if d and d not in ("Scalar", "ScalarList")]
        dtype = dtype_name(dtypes[0]) if dtypes else ""
        kind = torch_kind(event.name, dtype)
        if kind:
            found[id(event)] = (f"{event.name} ({dtype})" if kind in (HALF, FLOAT) and dtype else event.name, kind)
            parent = event.cpu_parent
            while parent is not None:
                outer.add(id(parent))
                parent = parent.cpu_parent
    return [k for i, k in found.items() if i not in outer], len({e.name for e in events})


def profile_torch(model: Any, example: Any, device: str) -> tuple[list[tuple[str, str]], int]:
    """The compute kernels of one ``model(example)`` under ``torch.profiler`` (CPU ops with
    their input dtypes; CUDA kernels too on a CUDA device)."""
    import os

    import torch

    # kineto prints "USDT: ... profiler_start/stop" to stderr at every profile (torch 2.13),
    # into the run's log after the method's own last words; level 6 is above all its levels
    # (read when the profiler starts; a user's own setting wins)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    cuda = device.startswith("cuda") and torch.cuda.is_available()
    # torch.profiler.profile's own wrapper around this one imports torch._inductor when it
    # starts (seconds, in a run that never compiles); the kineto profile is the same.
    with torch.inference_mode(), torch.autograd.profiler.profile(
            use_kineto=True, record_shapes=True, use_device="cuda" if cuda else None) as prof:
        model(example)
        if cuda:
            torch.cuda.synchronize(device)
    return torch_kernels(prof.function_events)


def claimed_kernels(steps: list[dict[str, Any]]) -> str | None:
    """What a run's steps claim about low-precision or sparse kernels, as ``"<method>:
    <claim>"``: the last step that claims real ones (they decide what the timed path can
    gain), else the last that says simulated; None when no step claims either (the
    baseline, fine-tuning, a smaller dense model)."""
    claims = []
    for step in steps:
        info = step.get("info") or {}
        text = str(info.get("kernels") or "")
        bits = info.get("bits_per_weight")
        lowered = isinstance(bits, (int, float)) and bits < 32
        if text.startswith("simulated") or (text.startswith("real") and (lowered or CLAIM_SPARSE.search(text))):
            claims.append(f"{step.get('use', 'a step')}: {text}")
    real = [c for c in claims if c.split(": ", 1)[1].startswith("real")]
    return (real or claims or [None])[-1]


def parse_claim(claimed: str) -> tuple[str, str]:
    """(method, claim text) of ``"<method>: <text>"`` (or of a bare claim text)."""
    method, _, text = claimed.partition(": ")
    return (method, text) if text.startswith(("real", "simulated")) else ("the method", claimed)


def expected_kind(claim: str) -> str:
    """The kind of kernel a claim (``"<method>: <text>"``) is about."""
    if CLAIM_SPARSE.search(claim):
        return SPARSE
    if CLAIM_LOW.search(claim):
        return LOW
    return HALF if CLAIM_HALF.search(claim) else LOW


def seen_list(kernels: list[tuple[str, str]]) -> list[str]:
    """The few kernels to show: sparse and low-precision first, then half, then float."""
    labels = [label for kind in ORDER for label, k in kernels if k == kind]
    return list(dict.fromkeys(labels))[:MAX_SEEN]


def kernel_verdict(kernels: list[tuple[str, str]], claimed: str | None) -> tuple[str, str]:
    """("real" | "simulated", why) from the compute kernels that ran and the claim."""
    kinds = {k for _, k in kernels}
    seen = ", ".join(seen_list(kernels))
    if claimed is None:
        return "real", f"no step claims low-precision or sparse kernels; the profiler saw {seen}"
    method, text = parse_claim(claimed)
    want = expected_kind(claimed)
    ran = ", ".join(dict.fromkeys(label for label, k in kernels if k == want))
    if text.startswith("real"):
        if want in kinds:
            return "real", f"claimed real by {method}; the profiler saw {ran}"
        return "simulated", f"claimed real by {method}, but the profiler saw only {seen} (no {want} kernel)"
    if want in kinds:
        return "real", f"claimed simulated by {method}, but the profiler saw {want} compute run: {ran}"
    return "simulated", f"as {method} says; the profiler saw only {seen}"


def measure_kernels(model: Any, example: Callable[[], Any], batch: int, device: str, claimed: str | None = None,
                    compiled: str = "none") -> Figures:
    """``kernels_seen`` and ``kernels`` of one forward of ``model`` on ``example()`` (the
    timer's input at ``batch``) against ``claimed`` (:func:`claimed_kernels`). Never
    raises: what cannot be had is absent, with why, and the claim stays a claim."""
    f = Figures()
    try:
        if callable(getattr(model, "kernels", None)):  # a harness.toolkit.RuntimeModel
            import torch

            with torch.inference_mode():
                model(example())
            names, runtime = model.kernels(), getattr(model, "runtime", "the runtime")
            if names is None:
                return _absent(f, f"{runtime} does not report the ops it ran", claimed)
            kernels = [(n, k) for n in dict.fromkeys(names) if (k := runtime_kind(n))]
            total, how = len(set(names)), f"{runtime}'s own report of the ops one call at batch {batch} ran"
        else:
            kernels, total = profile_torch(model, example(), device)
            how = f"torch.profiler over one forward at batch {batch}, after the timing"
            if compiled != "none":
                how += f" (eager: the timed torch.compile(mode={compiled}) graph's fused kernels were not profiled)"
    except Exception as exc:  # a profiler that cannot run must not fail the run
        message = str(exc).strip().splitlines()
        return _absent(f, f"the profiler could not run: {type(exc).__name__}" + (f": {message[0]}" if message else ""),
                       claimed)
    if not kernels:
        return _absent(f, f"none of the {total} ops seen is a compute kernel this harness knows ({how})", claimed)
    f.measured("kernels_seen", seen_list(kernels), f"{how}; low-precision and sparse kernels first")
    value, why = kernel_verdict(kernels, claimed)
    f.measured("kernels", value, f"{why} ({how})")
    return f


def _absent(f: Figures, why: str, claimed: str | None) -> Figures:
    f.absent("kernels_seen", why)
    if claimed:
        method, text = parse_claim(claimed)
        why += f"; {method} claims {text}: a claim, not confirmed"
    f.absent("kernels", why)
    return f
