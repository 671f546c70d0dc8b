"""CPU and RAM energy, and grid carbon intensity, through codecarbon's offline tracker.

The tracker runs in ``process`` mode (this process's share, not the whole machine, which
other jobs share), offline: the carbon intensity is codecarbon's yearly average for the
suite's ``carbon_country``; no network, no geolocation, nothing written to disk.

codecarbon measures the CPU only where it can read energy counters (Intel RAPL, Power
Gadget, Windows EMI, powermetrics); otherwise it multiplies the process's CPU load by a
TDP from its table, or by a default of 4 W per thread for a CPU it does not know. RAM
power always comes from its DIMM-count heuristic. The provenance says which happened.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from harness.measure.figures import combine

COUNTER_MODES = {"intel_rapl", "intel_power_gadget", "windows_emi", "apple_powermetrics"}
J_PER_KWH = 3.6e6

# codecarbon sets up its hardware once per process, and warns only then: keep what it said.
_setup_warnings: list[str] = []


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            _setup_warnings.append(record.getMessage())


@dataclass
class HostEnergy:
    cpu_j: float | None
    ram_j: float | None
    duration_s: float
    provenance: str  # for cpu_j + ram_j together
    intensity_g_per_kwh: float | None
    intensity_provenance: str
    cpu_provenance: str = ""  # each part on its own (default: the joint provenance)
    ram_provenance: str = ""
    ram_power_w: float | None = None  # the RAM model's power for the whole machine

    @property
    def joules(self) -> float | None:
        if self.cpu_j is None or self.ram_j is None:
            return None
        return self.cpu_j + self.ram_j


class HostEnergyMeter:
    """``start()``/``stop()`` around a window; ``stop()`` gives :class:`HostEnergy`.

    The first ``start()`` in a process also sets codecarbon up (a few seconds: it matches
    the CPU model against its TDP table) unless :func:`prepare` did; that happens before
    the window opens. Each window has a tracker of its own.
    """

    def __init__(self, country_iso_code: str):
        self.country = country_iso_code
        self._tracker: Any = None

    def start(self) -> None:
        import codecarbon.external.geography  # noqa: F401  (else imported, slowly, inside stop())

        self._tracker = new_tracker(self.country)
        _quietly(self._tracker.start)  # the first in a process sets the hardware up

    def stop(self) -> HostEnergy:
        tracker, self._tracker = self._tracker, None
        settle(tracker)
        tracker.stop()  # codecarbon swallows its own exceptions here ...
        data = getattr(tracker, "final_emissions_data", None)
        if data is None:  # ... and then has no data
            raise RuntimeError("the tracker stopped without data (see codecarbon's log)")
        cpu_j, ram_j = data.cpu_energy * J_PER_KWH, data.ram_energy * J_PER_KWH
        cpu_how, ram_how = describe(tracker)
        consumed = data.energy_consumed
        if consumed and consumed > 0:
            intensity = data.emissions * 1000 / consumed
            intensity_how = (f"estimated: codecarbon's yearly average grid carbon intensity for "
                             f"{data.country_iso_code or self.country} (offline data), {intensity:.0f} gCO2e/kWh")
        else:
            intensity, intensity_how = None, "absent: codecarbon recorded no energy to derive it from"
        ram_w = ram_j / float(data.duration) if data.duration else None
        return HostEnergy(cpu_j, ram_j, float(data.duration), combine([cpu_how, ram_how]), intensity, intensity_how,
                          cpu_how, ram_how, ram_w)


def new_tracker(country: str) -> Any:
    """An offline, process-mode tracker that writes nothing. Cheap once this process (or
    the fork server it was forked from, see :func:`prepare`) has set codecarbon up."""
    from codecarbon import OfflineEmissionsTracker

    log = logging.getLogger("codecarbon")
    log.disabled = True  # its constructor chats on stderr
    try:
        return OfflineEmissionsTracker(
            country_iso_code=country, tracking_mode="process", measure_power_secs=1,
            output_methods=[], output_dir=tempfile.gettempdir(), log_level="warning",
            project_name="harness", allow_multiple_runs=True)
    finally:
        log.disabled = False


def _quietly(setup: Any) -> None:
    """Run ``setup`` with codecarbon's set-up warnings (unknown CPU, no RAPL) going to the
    provenance (:func:`describe`), not to stderr."""
    log = logging.getLogger("codecarbon")
    log.propagate = False
    for handler in log.handlers:
        handler.setLevel(logging.CRITICAL)
    collect = _Collect()
    log.addHandler(collect)
    try:
        setup()
    finally:
        log.removeHandler(collect)


def prepare(country: str = "USA") -> None:
    """Let codecarbon detect this machine's hardware now (~2 s: CPU model, TDP table, RAM,
    GPUs), as the fork server does before forking any run.

    codecarbon 3.x keeps what it detected in a per-process plan cache keyed by the
    tracker's settings (``codecarbon.core.hardware_cache``), not in the tracker: every
    tracker built afterwards here, or in a child forked from here, rebuilds its hardware
    objects from that plan in milliseconds, for its own pid. A tracker object itself is
    not reused across processes or windows: its CPU and RAM meters are bound to the pid
    that built them, and ``stop()`` drops its schedulers (``_scheduler = None``), so a
    second ``start()`` on it would fail silently (codecarbon swallows the error).
    """
    tracker = new_tracker(country)
    _quietly(tracker._ensure_hardware_ready)


def settle(tracker: Any) -> None:
    """End the window on a boundary of our own before ``tracker.stop()``.

    codecarbon's ``stop()`` cancels its periodic measurement but does not wait for one
    already running, then measures once more: when the two overlap (a window that ends
    as a scheduled measurement starts, e.g. one that is a multiple of the interval),
    both count the same interval — RAM read ~20 W instead of ~10 W — and the late one's
    CPU load covers a millisecond (0% or over 1000%). So: stop both schedulers, wait for
    a measurement in flight, and take the final measurement here; ``stop()`` then finds
    it fresh and adds nothing.
    """
    for name in ("_scheduler", "_scheduler_monitor_power"):
        scheduler = getattr(tracker, name, None)
        if scheduler is None:
            continue
        scheduler.stop()
        for thread in threading.enumerate():
            if isinstance(thread, threading.Timer) and getattr(thread, "function", None) == scheduler._run:
                thread.join(timeout=10)
    tracker._measure_power_and_energy()


def describe(tracker: Any) -> tuple[str, str]:
    """Provenance of codecarbon's CPU energy and of its RAM energy, from how it set itself up."""
    cpu = next((h for h in tracker._hardware if type(h).__name__ == "CPU"), None)
    mode = getattr(cpu, "_mode", None)
    ram_how = "estimated: codecarbon's DIMM-count heuristic for RAM power (not measured on any machine)"
    if mode in COUNTER_MODES:
        return f"estimated: CPU from {mode} energy counters (process share by CPU time)", ram_how
    if cpu is None:
        return "estimated: codecarbon found no CPU to track", ram_how
    unknown = next((w for w in _setup_warnings if "don't know it" in w), None)
    tdp = getattr(cpu, "_tdp", None)
    if unknown:
        cpu_why = f"CPU '{getattr(cpu, '_model', '?')}' is unknown to codecarbon's TDP table, so TDP = 4 W per thread = {tdp} W"
    elif getattr(cpu, "_is_generic_tdp", False):
        cpu_why = f"no TDP found, codecarbon's generic constant {tdp} W"
    else:
        cpu_why = f"TDP {tdp} W from codecarbon's table"
    how = "this process's CPU time / cores × TDP" if mode == "cpu_load" else f"codecarbon {mode} mode"
    return f"estimated: no CPU energy counters readable (no RAPL); {how}; {cpu_why}", ram_how
