"""Does the harness's CPU+RAM energy agree with codecarbon's own offline tracker?

Both measure the same loop (a small MLP at batch 64, one thread, process mode) for the
same window; the ratio of average power harness / codecarbon should be within 0.95–1.05.
The harness's windows include multiples of the harness meter's own 1 s interval, which
used to double-count one interval at the window's end (codecarbon's stop() racing its own
scheduled measurement); the direct reference uses an interval that divides no window.

    python benchmarks/energy_agreement.py [--repeats 3] [--windows 3 3.5 2] [--interval 0.8]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time


def busy_loop(seconds: float) -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                torch.nn.ReLU(), torch.nn.Linear(256, 10)).eval()
    x = torch.randn(64, 64)
    deadline = time.perf_counter() + seconds
    with torch.inference_mode():
        while time.perf_counter() < deadline:
            model(x)


def direct(seconds: float, interval: float) -> tuple[float, float, float]:
    """(cpu W, ram W, seconds) from codecarbon's tracker run directly around the loop."""
    from codecarbon import OfflineEmissionsTracker

    tracker = OfflineEmissionsTracker(country_iso_code="USA", tracking_mode="process", measure_power_secs=interval,
                                      output_methods=[], output_dir=tempfile.gettempdir(), log_level="error",
                                      allow_multiple_runs=True)
    tracker.start()
    busy_loop(seconds)
    tracker.stop()
    data = tracker.final_emissions_data
    return data.cpu_energy * 3.6e6 / data.duration, data.ram_energy * 3.6e6 / data.duration, data.duration


def harness(seconds: float) -> tuple[float, float, float]:
    from harness.measure.carbon import HostEnergyMeter

    meter = HostEnergyMeter("USA")
    meter.start()
    busy_loop(seconds)
    reading = meter.stop()
    return reading.cpu_j / reading.duration_s, reading.ram_j / reading.duration_s, reading.duration_s


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=float, nargs="+", default=[3.0, 3.5, 2.0])
    parser.add_argument("--interval", type=float, default=0.8,
                        help="codecarbon's measure_power_secs for the direct reference: one that does not divide "
                             "the windows (with 1 s, its stop() double-counts an interval of the 3 s window)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    busy_loop(0.5)  # warm up
    print(f"{'window s':>8} {'run':>3} {'direct W (cpu+ram)':>20} {'harness W (cpu+ram)':>21} {'ratio':>6}")
    for window in args.windows:
        for i in range(args.repeats):
            d_cpu, d_ram, _ = direct(window, args.interval)
            h_cpu, h_ram, _ = harness(window)
            ratio = (h_cpu + h_ram) / (d_cpu + d_ram)
            print(f"{window:>8.1f} {i + 1:>3} {d_cpu:>8.2f} + {d_ram:>5.2f} W {h_cpu:>9.2f} + {h_ram:>5.2f} W {ratio:>6.3f}")


if __name__ == "__main__":
    main()
