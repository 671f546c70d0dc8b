"""Check the roofline's peaks against an independent measurement: torch.utils.benchmark.Timer
timing the same GEMMs and memory traffic (its own warm-up, blocked autorange, median).
Prints probe / Timer per figure (near 1: the probe reads what Timer reads; both take their
best block of calls),
how long the first probe takes and a cached read, the digits MLP's FLOPs against
2 × Σ in×out × batch, and its place on the roofline at batch 64.

    .venv/bin/python benchmarks/roofline_check.py [--device cuda] [--threads N]

Run it on a quiet machine: a busy one makes both low, and differently.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def timer_seconds(stmt: str, env: dict, min_run_time: float = 0.3) -> float:
    import torch
    from torch.utils.benchmark import Timer

    # Timer runs one thread unless told: the probe runs the run's threads
    timer = Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads())
    return min(timer.blocked_autorange(min_run_time=min_run_time).times)  # its best block, as the probe's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    device = args.device
    os.environ["HARNESS_CACHE"] = tempfile.mkdtemp(prefix="roofline-check-")  # a first probe, for real
    import torch
    from torch.utils.benchmark import Timer

    if args.threads:
        torch.set_num_threads(args.threads)

    from harness.measure import peaks as peaks_module
    from harness.measure.roofline import count_forward, roofline_figures
    from harness_plugins.sources.builtin import digits

    started = time.perf_counter()
    peaks = peaks_module.machine_peaks(device)
    first = time.perf_counter() - started
    started = time.perf_counter()
    peaks_module.machine_peaks(device)
    cached = time.perf_counter() - started
    print(f"{device}, {torch.get_num_threads()} threads, torch {torch.__version__}; load {peaks.load_average}"
          f"{' (busy: peaks may be low; kept until a quiet run probes again)' if peaks.busy else ''}")
    print(f"first probe {first:.2f} s (probes alone {peaks.probe_s:.2f} s), cached read {cached * 1e3:.1f} ms\n")
    print(f"{'figure':<22}{'probe':>14}{'Timer':>14}{'probe/Timer':>13}")
    for dtype, rate in peaks.flops.items():
        n = int(peaks.notes[dtype].rsplit("peak at ", 1)[1].split("×")[0])
        if dtype == "int8":
            a = torch.randint(-128, 128, (n, n), dtype=torch.int8, device=device)
            stmt = "torch._int_mm(a, a)"
        else:
            a = torch.randn(n, n, device=device, dtype=getattr(torch, dtype))
            stmt = "torch.mm(a, a)"
        other = 2 * n**3 / timer_seconds(stmt, {"torch": torch, "a": a})
        print(f"{dtype + f' GEMM {n}³':<22}{rate / 1e9:>10,.1f} GF/s{other / 1e9:>9,.1f} GF/s{rate / other:>13.2f}")
    if peaks.bytes_per_s:
        size = min(max(8 * (peaks.cache_bytes or 0), peaks_module.BUFFER_BYTES[0]), peaks_module.BUFFER_BYTES[1])
        buffer = torch.ones(size // 4, device=device)
        half = buffer.numel() // 2
        env = {"b": buffer, "h": half}
        read = size / timer_seconds("b.sum()", env)
        copy = 2 * half * 4 / timer_seconds("b[h:].copy_(b[:h])", env)
        other = max(read, copy)
        print(f"{'memory':<22}{peaks.bytes_per_s / 1e9:>10,.1f} GB/s{other / 1e9:>9,.1f} GB/s"
              f"{peaks.bytes_per_s / other:>13.2f}   (Timer: read {read / 1e9:.1f}, copy {copy / 1e9:.1f} GB/s)")
        del buffer
    model = digits.build(digits.MODELS["digits-mlp"]).eval().to(device)
    expected = 2 * sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    examples = {1: torch.randn(1, 64, device=device), 64: torch.randn(64, 64, device=device)}
    counted = {b: count_forward(model, x).flops for b, x in examples.items()}
    print("\ndigits-mlp FLOPs: " + ", ".join(f"batch {b}: {c:,} (2·Σin·out·batch = {expected * b:,}, "
                                               f"{'equal' if c == expected * b else 'DIFFERENT'})"
                                               for b, c in counted.items()))
    with torch.inference_mode():
        latency = {str(b): {"p50_ms": Timer("model(x)", globals={"model": model, "x": x},
                                            num_threads=torch.get_num_threads()).blocked_autorange(
            min_run_time=0.3).median * 1e3} for b, x in examples.items()}
    f = roofline_figures(model, examples, latency, device)
    for key in ("flops", "bytes_moved", "gflop_per_s", "gb_per_s", "arithmetic_intensity", "peak_gflop_per_s",
                "peak_gb_per_s", "bound", "roofline_share"):
        value = f.metrics.get(key)
        print(f"  {key:<22}{value if not isinstance(value, float) else f'{value:,.4g}'}")
    print(f"  bound: {f.provenance['bound']}")
    for b, row in f.metrics["roofline"]["batches"].items():
        print(f"  batch {b}: p50 {row['seconds'] * 1e3:.3f} ms, share {row.get('share', 0):.1%}, {row.get('bound')}")


if __name__ == "__main__":
    main()
