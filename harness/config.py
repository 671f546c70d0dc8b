"""The ``[suite]`` and ``[measure]`` tables of a suite file as typed configs (the format
is in the README): checked once when the suite is read, typed down to the timer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class SuiteConfig:
    name: str
    description: str = ""
    seed: int = 0
    device: str = "cpu"
    accuracy_gate: float = 0.99
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ValueError(f"name {self.name!r} must be letters, digits, '.', '_' or '-' (it names a directory)")
        if not re.match(r"^(cpu|cuda(:\d+)?)$", self.device):
            raise ValueError(f"device {self.device!r} must be 'cpu', 'cuda' or 'cuda:N'")
        if not 0 < self.accuracy_gate <= 1:
            raise ValueError(f"accuracy_gate {self.accuracy_gate} must be in (0, 1]")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


@dataclass
class MeasureConfig:
    batch_sizes: list[int] = field(default_factory=lambda: [1, 64])
    warmup_s: float = 0.5
    min_time_s: float = 2.0
    min_iterations: int = 20
    max_time_s: float = 20.0
    ci_target: float = 0.02
    energy: bool = True
    carbon_country: str = "USA"
    price_per_hour: float = 0.0
    threads: int = 0
    # Seconds of back-to-back calls at the largest batch size: sustained throughput, and
    # energy/CO2e per inference, are measured over this window. Unset: 3 s with energy
    # on, min_time_s with it off; 0 skips the window.
    sustained_s: float | None = None
    # Warm-up ends when two successive windows' medians agree within this share (not a
    # suite key: a ClassVar is not a field, so run ids do not change).
    settle_tolerance: ClassVar[float] = 0.05

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ValueError("batch_sizes must be a non-empty list of positive integers")
        if self.min_time_s < 0 or self.warmup_s < 0 or self.min_iterations < 1:
            raise ValueError("warmup_s and min_time_s must be >= 0 and min_iterations >= 1")
        if self.max_time_s < self.min_time_s:
            raise ValueError("max_time_s must be >= min_time_s")
        if not 0 < self.ci_target < 1:
            raise ValueError("ci_target must be in (0, 1), e.g. 0.02 for 2%")
        if not re.match(r"^[A-Z]{3}$", self.carbon_country):
            raise ValueError(f"carbon_country {self.carbon_country!r} must be an ISO 3166 alpha-3 code such as 'USA'")
        if self.threads < 0 or self.price_per_hour < 0:
            raise ValueError("threads and price_per_hour must be >= 0")
        if self.sustained_s is not None and self.energy and self.sustained_s < 1:
            raise ValueError(f"sustained_s {self.sustained_s} is too short to measure energy over: "
                             "use >= 1 (seconds), or energy = false")
        if self.sustained_s is not None and self.sustained_s < 0:
            raise ValueError("sustained_s must be >= 0 (0 skips the sustained window)")
