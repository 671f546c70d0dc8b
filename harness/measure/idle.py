"""The machine's idle power, measured once per suite before its runs, in a child process
that loads nothing: ``python -m harness.measure.idle DEVICE COUNTRY [SECONDS]`` prints an
:class:`~harness.measure.energy.IdlePower` as JSON. Runs subtract it for their
``dynamic_energy_j_per_1k`` (energy above idle, as Zeus and MLPerf power report it)."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

from harness.measure.energy import IdlePower, open_meter
from harness.measure.figures import combine

IDLE_SECONDS = 2.0


def measure_idle(device: str, country: str, seconds: float = IDLE_SECONDS) -> IdlePower:
    meter = open_meter(device, country)
    meter.start()
    time.sleep(seconds)
    reading = meter.stop()
    host, gpu = reading.host, reading.gpu
    cpu_w = host.cpu_j / reading.seconds if host and host.cpu_j is not None else None
    ram_w = host.ram_j / reading.seconds if host and host.ram_j is not None else None
    gpu_w = gpu.joules / reading.seconds if gpu and gpu.joules is not None else None
    parts = [host.provenance if host else f"absent: {reading.host_absent}"]
    if gpu is not None:
        parts.append(gpu.provenance)
    present = [p for p in parts if not p.startswith("absent")]
    how = combine(present) if present else "absent: " + "; ".join(p.removeprefix("absent: ") for p in parts)
    kind, _, why = how.partition(": ")
    return IdlePower(cpu_w, ram_w, gpu_w, reading.seconds,
                     f"{kind}: idle power over {reading.seconds:.1f} s before the suite's runs, nothing loaded; {why}")


def main(argv: list[str]) -> int:
    device, country = argv[0], argv[1]
    seconds = float(argv[2]) if len(argv) > 2 else IDLE_SECONDS
    print(json.dumps(dataclasses.asdict(measure_idle(device, country, seconds))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
