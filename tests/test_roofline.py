"""Each run's distance to the roofline: FLOPs per call are exact on the digits MLP (also
after int8, whose kernels FlopCounterMode cannot see), bytes are counted by a stated
rule, the peaks are probed once per machine and cached, and no figure fails a run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest


def digits_mlp() -> Any:
    """The builtin source's digits-mlp architecture (untrained: FLOPs do not depend on weights)."""
    from harness_plugins.sources.builtin import digits

    return digits.build(digits.MODELS["digits-mlp"]).eval()


def linear_flops(model: Any) -> int:
    """2 × Σ in×out over the float model's Linear layers: FLOPs per sample."""
    import torch

    return 2 * sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def fake_peaks(flops: float = 100e9, bytes_per_s: float = 10e9, **more: Any) -> Any:
    from harness.measure.peaks import Peaks

    return Peaks({"host": "test"}, flops={"float32": flops, **more}, bytes_per_s=bytes_per_s,
                 notes={"float32": "stand-in", "memory": "stand-in"}, probe_s=0.5)


@pytest.mark.parametrize("batch", [1, 64])
def test_digits_mlp_flops_are_two_in_out_per_linear_times_the_batch(batch: int) -> None:
    import torch

    from harness.measure.roofline import count_forward

    model = digits_mlp()
    count = count_forward(model, torch.randn(batch, 64))
    assert count.flops == linear_flops(model) * batch == (64 * 256 + 256 * 256 + 256 * 10) * 2 * batch
    assert dict(count.by_dtype) == {"float32": count.flops} and not count.hooked


def test_int8_dynamic_counts_the_same_math_through_hooks() -> None:
    """torch.ao's quantized::linear_dynamic is invisible to FlopCounterMode: the hooks
    count each int8 Linear as its float form, in the int8 dtype."""
    import copy

    import torch

    from harness.measure.roofline import count_forward
    from harness.plugins import load_plugins

    model = digits_mlp()
    method = load_plugins().lookup("method", "quant.int8-dynamic")()
    quantized, _ = method.apply(copy.deepcopy(model), method.Params(), SimpleNamespace(device="cpu", seed=0))
    count = count_forward(quantized, torch.randn(64, 64))
    assert count.flops == linear_flops(model) * 64
    assert count.hooked and count.by_dtype["int8"] == sum(  # the quantized layers; a float head stays float32
        2 * m.in_features * m.out_features * 64 for m in quantized.modules()
        if type(m).__module__.startswith("torch.ao.nn.quantized") and hasattr(m, "in_features"))
    assert count.foreign["quantized.linear_dynamic"] == len(count.hooked)


def test_int_mm_and_conv_are_counted_exactly() -> None:
    import torch

    from harness.measure.roofline import count_forward, layer_flops

    class IntMM(torch.nn.Module):  # torchao's int8 GEMM: aten._int_mm, not in the counter's registry
        def forward(self, a: torch.Tensor) -> torch.Tensor:
            return torch._int_mm(a, torch.ones(64, 32, dtype=torch.int8))

    count = count_forward(IntMM(), torch.ones(32, 64, dtype=torch.int8))
    assert dict(count.by_dtype) == {"int8": 2 * 32 * 64 * 32}
    conv, x = torch.nn.Conv2d(4, 8, 3, padding=1, groups=2), torch.randn(2, 4, 8, 8)
    assert layer_flops(conv, (x,), conv(x)) == count_forward(conv, x).flops  # the hook's formula is the counter's


def test_bytes_are_weights_input_and_created_tensors() -> None:
    """Stored weights read once, the input read, each intermediate written and read, the
    output written: the rule docs/roofline.md states, exactly."""
    import torch

    from harness.measure.roofline import count_forward, weight_traffic

    model = digits_mlp()
    count = count_forward(model, torch.randn(64, 64))
    weights, how = weight_traffic(model, model)
    assert weights == 4 * (64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10) and how.startswith("measured")
    assert count.input_bytes == 64 * 64 * 4
    assert count.created_bytes == 4 * (64 * 256 * 4) * 2 + 64 * 10 * 4  # 2 Linear + 2 ReLU outputs, then logits
    tagger = torch.nn.Sequential(torch.nn.Embedding(1000, 16), torch.nn.Linear(16, 4))
    assert weight_traffic(tagger, tagger)[0] == 4 * (16 * 4 + 4)  # the table by the rows gathered
    runtime = SimpleNamespace(source=model, weight_bytes=1234)  # a RuntimeModel's stand-in
    assert weight_traffic(runtime, model) == (1234, "measured: the runtime's stored weights (1,234 B), read once per call")


def test_figures_place_the_run_on_the_roofline(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from harness.measure import peaks, roofline

    model, examples = digits_mlp(), {1: torch.randn(1, 64), 64: torch.randn(64, 64)}
    flops = linear_flops(model) * 64

    def figures(p50_ms: float, **peak: Any) -> Any:
        monkeypatch.setattr(peaks, "machine_peaks", lambda device: fake_peaks(**peak))
        return roofline.roofline_figures(model, examples, {"1": {"p50_ms": 0.01}, "64": {"p50_ms": p50_ms}}, "cpu")

    f = figures(1.0)  # 10.8 MFLOP in 1 ms; intensity ≈ 12 FLOP/B, ridge 10: compute-bound, 10.8 % of 100 GFLOP/s
    m = f.metrics
    assert m["flops"] == flops and m["gflop_per_s"] == pytest.approx(flops / 1e-3 / 1e9)
    assert m["gb_per_s"] == pytest.approx(m["bytes_moved"] / 1e-3 / 1e9)
    assert m["arithmetic_intensity"] == pytest.approx(flops / m["bytes_moved"])
    assert (m["peak_gflop_per_s"], m["peak_gb_per_s"]) == (100, 10)
    assert m["bound"] == "compute" and m["roofline_share"] == pytest.approx(flops / 1e-3 / 100e9)
    assert m["roofline"]["batches"]["1"]["flops"] == flops // 64 and m["roofline"]["batch"] == 64
    assert all(f.provenance[k].startswith("measured") for k in roofline.KEYS)
    assert "at batch 64" in f.provenance["flops"] and "ridge 10" in f.provenance["bound"]
    slow = figures(1.0, bytes_per_s=1e9).metrics  # ridge 100: memory-bound, attainable 12 GFLOP/s
    assert slow["bound"] == "memory" and slow["roofline_share"] == pytest.approx(m["gflop_per_s"] / (
        m["arithmetic_intensity"] * 1))
    assert figures(100.0).metrics["bound"] == "overhead"  # 0.1 % of the roofline: launch and dispatch
    mixed = figures(1.0, int8=400e9)  # no int8 FLOPs here: the float32 peak
    assert mixed.metrics["peak_gflop_per_s"] == 100


def test_runtime_and_compiled_models_have_estimated_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model another runtime runs is counted on the torch model it came from; its bytes
    (and what follows from them) are estimated, as are a compiled model's."""
    import torch

    from harness.measure import peaks, roofline

    monkeypatch.setattr(peaks, "machine_peaks", lambda device: fake_peaks())
    model, examples, latency = digits_mlp(), {8: torch.randn(8, 64)}, {"8": {"p50_ms": 0.1}}

    class Runtime:  # what harness.toolkit.RuntimeModel offers: source, weight_bytes, a forward
        source, weight_bytes = model, None

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return model(x)

    f = roofline.roofline_figures(Runtime(), examples, latency, "cpu")
    assert f.metrics["flops"] == linear_flops(model) * 8 and "exported from" in f.provenance["flops"]
    for key in ("bytes_moved", "gb_per_s", "arithmetic_intensity", "bound", "roofline_share"):
        assert f.provenance[key].startswith("estimated"), key
    assert "the runtime did not say what it stores" in f.provenance["bytes_moved"]
    Runtime.weight_bytes = 1000
    stored = roofline.roofline_figures(Runtime(), examples, latency, "cpu")  # the runtime's own weight bytes
    assert stored.metrics["bytes_moved"] == f.metrics["bytes_moved"] - 340_008 + 1000
    assert stored.provenance["bytes_moved"].startswith("estimated")  # its activations: still the torch model's
    compiled = roofline.roofline_figures(model, examples, latency, "cpu", compile_mode="default")
    assert "torch.compile (default)" in compiled.provenance["bytes_moved"]
    assert compiled.provenance["bound"].startswith("estimated") and compiled.provenance["flops"].startswith("measured")


def test_no_figure_fails_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from harness.measure import peaks, roofline

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    f = roofline.roofline_figures(Broken(), {8: torch.ones(8)}, {"8": {"p50_ms": 1.0}}, "cpu")
    assert not f.metrics and "boom" in f.provenance["bound"]
    assert roofline.roofline_figures(Broken(), {}, None, "cpu", absent="compile failed").provenance["flops"] \
        == "absent: compile failed"

    def no_probe(device: str) -> Any:
        raise OSError("no memory")

    monkeypatch.setattr(peaks, "machine_peaks", no_probe)
    f = roofline.roofline_figures(torch.nn.ReLU(), {8: torch.ones(8)}, {"8": {"p50_ms": 1.0}}, "cpu")
    assert "flops" not in f.metrics and "counted no FLOPs" in f.provenance["flops"]  # absent, never 0
    assert f.metrics["bytes_moved"] == 64 and "no memory" in f.provenance["peak_gb_per_s"]


def test_a_mix_of_dtypes_is_timed_at_each_dtypes_peak() -> None:
    peaks = fake_peaks(flops=100e9, int8=400e9)
    rate, how = peaks.for_mix({"float32": 1_000, "int8": 4_000})
    assert rate == pytest.approx(5_000 / (1_000 / 100e9 + 4_000 / 400e9))  # 250 GFLOP/s
    rate, how = peaks.for_mix({"float8_e4m3fn": 10})
    assert rate == 100e9 and "no float8_e4m3fn peak" in how and "float32 peak is used" in how


def test_cpu_peaks_are_probed_once_and_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from harness.measure import peaks

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    monkeypatch.setattr(peaks, "PROBE_S", 0.005)  # the real probe, smaller and shorter
    monkeypatch.setattr(peaks, "SIZES", {"cpu": (64, 128)})
    monkeypatch.setattr(peaks, "BUFFER_BYTES", (16 * 2**20, 16 * 2**20))
    monkeypatch.setattr(peaks, "_load", lambda: 0.0)
    first = peaks.machine_peaks("cpu")
    assert first.flops["float32"] > 0 and first.bytes_per_s > 0 and not first.cached
    assert {"float32", "bfloat16", "float16", "int8", "memory"} <= set(first.notes)
    assert "GB/s" in first.notes["memory"] and first.probe_s > 0
    monkeypatch.setattr(peaks, "probe", lambda device, key: pytest.fail("probed twice"))
    again = peaks.machine_peaks("cpu")
    assert again.cached and again.flops == first.flops
    assert peaks.cache_path(peaks.machine_key("cpu")).parent == tmp_path / "peaks"


def test_a_probe_on_a_busy_machine_is_redone_once_the_machine_is_quiet(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Any) -> None:
    from harness.measure import peaks

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    load, calls = [99.0], []

    def stand_in(device: str, key: dict[str, Any]) -> Any:
        calls.append(load[0])
        return peaks.Peaks(key, flops={"float32": 1.0}, bytes_per_s=1.0, busy=peaks._busy(load[0]),
                           load_average=load[0])

    monkeypatch.setattr(peaks, "probe", stand_in)
    monkeypatch.setattr(peaks, "_load", lambda: load[0])
    assert peaks.machine_peaks("cpu").busy
    assert peaks.machine_peaks("cpu").cached and calls == [99.0]  # still busy: the busy probe, not another
    load[0] = 0.0
    assert not peaks.machine_peaks("cpu").busy and calls == [99.0, 0.0]  # quiet: probed again
    assert peaks.machine_peaks("cpu").cached and calls == [99.0, 0.0]


def test_cuda_peaks_with_a_stand_in_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path without a GPU: device properties, the key and the probe's wiring."""
    import torch

    from harness.measure import peaks

    props = SimpleNamespace(name="Stand-in H100", major=9, minor=0, multi_processor_count=132, total_memory=80 * 2**30,
                            L2_cache_size=50 * 2**20, clock_rate=1_980_000, memory_clock_rate=2_619_000,
                            memory_bus_width=5120)
    synced = []
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: props.name)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    seen = {}

    def gemm(dtype: str, device: str, sync: Any) -> tuple[float, str]:
        sync()
        seen[dtype] = device
        return {"float32": 50e12, "bfloat16": 800e12, "float16": 800e12, "int8": 1500e12}[dtype], "stand-in"

    monkeypatch.setattr(peaks, "gemm_rate", gemm)
    monkeypatch.setattr(peaks, "memory_rate", lambda device, sync, cache: (3.0e12, f"stand-in, cache {cache}"))
    key = peaks.machine_key("cuda:0")
    assert key["gpu"] == "Stand-in H100" and "float32_matmul_precision" in key
    p = peaks.probe("cuda:0", key)
    assert synced and seen == dict.fromkeys(peaks.DTYPES, "cuda:0")
    assert p.cache_bytes == 50 * 2**20 and p.bytes_per_s == 3.0e12
    assert p.device_properties["dram_bytes_per_s"] == pytest.approx(3.352e12, rel=1e-3)  # H100 SXM: 3.35 TB/s


@pytest.mark.cuda
def test_cuda_peaks_for_real() -> None:
    import torch

    from harness.measure import peaks

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    p = peaks.probe("cuda", peaks.machine_key("cuda"))
    assert p.flops["bfloat16"] > p.flops["float32"] > 0
    dram = p.device_properties.get("dram_bytes_per_s")
    assert p.bytes_per_s and (dram is None or 0.3 * dram < p.bytes_per_s < 1.2 * dram)


def test_the_leaderboard_shows_the_roofline_columns() -> None:
    from harness.leaderboard import build_frame
    from harness.report.columns import BY_KEY, cell
    from harness.result import RunResult

    row = RunResult("r1", "s", "mlp", "baseline", "digits", "ok", metrics={
        "flops": 10813440, "gflop_per_s": 54.1, "bound": "compute", "roofline_share": 0.36},
        provenance={"bound": "estimated: counted on the eager model"})
    frame = build_frame([row])
    record = frame.to_dict("records")[0]
    assert record["bound"] == "compute" and record["flops"] == 10813440
    assert cell(BY_KEY["roofline_share"], record) == "36.0" and "bound" in record["estimated"]


def test_a_failed_probe_is_not_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from harness.measure import peaks

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(peaks, "probe", lambda device, key: calls.append(1) or peaks.Peaks(key, flops={"float32": 1.0}))
    peaks.machine_peaks("cpu")
    peaks.machine_peaks("cpu")  # no memory peak (out of memory?): probed again, not read back
    assert len(calls) == 2


def test_a_run_faster_than_the_probed_peak_has_no_share_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO's int8 convolutions reached 4x torch's float32 GEMM on this CPU, their FLOPs
    counted in float32 on the torch model: a share of 406 % is no share. Absent with why; within the cache (memory's roof does not bind)
    a share above 1 stays, said so."""
    import torch

    from harness.measure import peaks, roofline

    model, examples = digits_mlp(), {64: torch.randn(64, 64)}
    flops = linear_flops(model) * 64

    class Runtime:
        source, weight_bytes = model, None

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return model(x)

    monkeypatch.setattr(peaks, "machine_peaks", lambda device: fake_peaks(int8=1e12))  # 100 GFLOP/s, 10 GB/s
    fast = roofline.roofline_figures(Runtime(), examples, {"64": {"p50_ms": flops / 400e9 * 1e3}}, "cpu")
    assert fast.metrics["gflop_per_s"] == pytest.approx(400) and fast.metrics["peak_gflop_per_s"] == 100
    for key in ("roofline_share", "bound"):
        assert key not in fast.metrics
        assert "are above the 100 GFLOP/s the probed peaks allow" in fast.provenance[key]
        assert "counted on the torch model it was exported from, in its dtypes, while this runtime ran them in lower " \
            "precision (int8's probed peak here: 1,000 GFLOP/s)" in fast.provenance[key]
    in_cache = fake_peaks(bytes_per_s=1e9)
    in_cache.cache_bytes = 2**30
    monkeypatch.setattr(peaks, "machine_peaks", lambda device: in_cache)
    cached = roofline.roofline_figures(model, examples, {"64": {"p50_ms": flops / 50e9 * 1e3}}, "cpu")
    assert cached.metrics["roofline_share"] > 1 and "fit in the" in cached.provenance["roofline_share"]


def test_a_runtime_that_ran_every_compute_op_in_int8_is_placed_against_the_int8_peak(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the runtime reports it ran decides the dtype its FLOPs count in: all int8
    (OpenVINO's u8 precisions, ONNX Runtime's QLinear/integer ops) at int8's peak; a float
    op among them, or an int4 one, leaves the torch model's dtypes."""
    import torch

    from harness.measure import peaks, roofline
    from harness.measure.kernels import runtime_dtype

    model, examples = digits_mlp(), {64: torch.randn(64, 64)}
    flops = linear_flops(model) * 64

    class Runtime:
        source, weight_bytes, ran = model, None, ["Convolution:u8", "FullyConnected:u8", "Reorder:f32"]

        def kernels(self) -> list[str]:
            return self.ran

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return model(x)

    monkeypatch.setattr(peaks, "machine_peaks", lambda device: fake_peaks(bytes_per_s=1e12, int8=1e12))
    runtime = Runtime()
    f = roofline.roofline_figures(runtime, examples, {"64": {"p50_ms": flops / 400e9 * 1e3}}, "cpu")
    assert f.metrics["peak_gflop_per_s"] == 1000 and f.metrics["roofline_share"] == pytest.approx(0.4)
    assert "counted as int8: every compute op the runtime reported ran in int8 (Convolution:u8, FullyConnected:u8)" \
        in f.provenance["flops"]
    assert runtime_dtype(SimpleNamespace(kernels=lambda: ["QLinearConv", "QGemm"]))[0] == "int8"
    assert runtime_dtype(SimpleNamespace(kernels=lambda: ["QGemm", "MatMul"])) == (None, "")  # a float MatMul too
    assert runtime_dtype(SimpleNamespace(kernels=lambda: ["MatMulNBits"])) == (None, "")  # int4: no int8 peak
    assert runtime_dtype(SimpleNamespace(kernels=lambda: None)) == (None, "")
