"""One run's measurement session: the one owner of the energy meter, the GPU's start
state, and the :class:`Figures` every phase adds to.

    with MeasurementSession(device, config) as session:
        with session.compression(n_steps):
            ...  # apply the methods
        session.add_quality(task.evaluate(model), task_kind)
        session.measure(model, task, claimed=claimed_kernels(steps))
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.config import MeasureConfig
from harness.measure.energy import EnergyContext
from harness.measure.figures import Figures

# What the compression itself cost: kept with an artifact, restored when it is reused.
COMPRESSION_FIGURES = ("compress_s", "compress_energy_j", "compress_co2_g")


class MeasurementSession:
    def __init__(self, device: str, config: MeasureConfig, energy: EnergyContext | None = None):
        self.device, self.config = device, config
        self.energy = energy or EnergyContext()
        self.figures = Figures()
        self.meter: Any = None

    def __enter__(self) -> MeasurementSession:
        from harness.measure.energy import open_meter
        from harness.measure.hardware import record_start_state

        record_start_state(self.device)  # GPU clocks, temperature, other processes: before loading
        if self.config.energy:
            self.meter = open_meter(self.device, self.config.carbon_country)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.meter = None

    @contextmanager
    def compression(self, n_steps: int, changes_nothing: bool = False) -> Iterator[None]:
        """Meter the method steps together (their checks and params are negligible).
        Steps that change nothing (the baseline) cost 0 by definition, not the meter's noise."""
        from harness.measure.energy import compression_figures

        if self.meter is None:
            yield
            self.figures.update(compression_figures(None, "measure.energy = false"))
            return
        if n_steps == 0 or changes_nothing:
            yield
            why = "no compression steps" if n_steps == 0 else "the baseline changes nothing: 0 by definition"
            for key in COMPRESSION_FIGURES[1:]:  # the energy and CO2e; compress_s is measured anyway
                self.figures.measured(key, 0.0, why)
            return
        self.meter.start()
        yield
        self.figures.update(compression_figures(self.meter.stop(), context=self.energy))

    def compression_record(self) -> dict[str, list[Any]]:
        """The compression's own figures, as an artifact keeps them: key -> [value, provenance]."""
        return {k: [self.figures.metrics.get(k), self.figures.provenance[k]]
                for k in COMPRESSION_FIGURES if k in self.figures.provenance}

    def reuse_compression(self, record: dict[str, list[Any]], note: str) -> None:
        """The figures of a compression done once by another run, saying so."""
        for key, (value, how) in record.items():
            if value is None:
                self.figures.absent(key, how.removeprefix("absent: "))
            else:
                self.figures.put(key, value, f"{how}; {note}")

    def add_compress_time(self, seconds: float) -> None:
        self.figures.measured("compress_s", seconds,
                              "wall time of the method steps' apply() (device synchronized)")

    def add_quality(self, quality: dict[str, Any], task_kind: str) -> None:
        for key, value in quality.items():
            self.figures.measured(key, value, f"the {task_kind} task's evaluation")

    def measure(self, model: Any, task: Any, shared: Any = None, claimed: str | None = None) -> None:
        """Size, latency, throughput, energy, cost and memory (those of another task's run
        on the same compressed model and inputs with ``shared``), then the task's own figures,
        then the kernels that ran (profiled once, after every timing) against what the steps
        ``claimed`` (:func:`harness.measure.kernels.claimed_kernels`)."""
        from harness.measure.kernels import measure_kernels
        from harness.measure.perf import measure_model

        self.figures.update(measure_model(model, task, self.config, self.device, self.meter, self.energy, shared))
        metrics, provenance = task.extra_measurements(model, self.config)
        self.figures.update(Figures(dict(metrics), dict(provenance)))
        batch = min(self.config.batch_sizes)
        self.figures.update(measure_kernels(model, lambda: task.example_input(batch), batch, self.device, claimed,
                                            self.config.compile_modes[0]))
