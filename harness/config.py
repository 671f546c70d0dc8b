"""The ``[suite]`` and ``[measure]`` tables of a suite file as typed configs (the format
is in the README): checked once when the suite is read, typed down to the timer."""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import ClassVar

from harness.params import nearest

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # use with fullmatch
NAME_MAX = 100  # characters: names become directory and file names
MAX_RUNS = 10_000  # the default of [suite] max_runs
MAX_BATCH = 65_536
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_IDLE_REUSE_S = 86400.0  # a day
MAX_WINDOW_S = 3600.0  # warmup_s, min_time_s, max_time_s, sustained_s
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")  # [measure] compile
TIMING_MODES = ("per-call", "back-to-back")  # [measure] timing


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a suite, model or task (None when it can)."""
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long; use at most {NAME_MAX}"
    if not NAME_RE.fullmatch(name):
        return "must be letters, digits, '.', '_' or '-'"
    return None


@functools.lru_cache(maxsize=1)
def country_codes() -> frozenset[str] | None:
    """The ISO 3166 alpha-3 codes codecarbon has carbon data for (it silently uses a world
    average for any other), read from its data file without importing it (slow); else
    pycountry's codes; None when neither is installed."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("codecarbon")
    except (ImportError, ValueError):
        spec = None
    for directory in (spec and spec.submodule_search_locations) or []:
        path = Path(directory, "data", "private_infra", "global_energy_mix.json")
        try:
            return frozenset(code for code in json.loads(path.read_text(encoding="utf-8")) if len(code) == 3)
        except (OSError, ValueError):
            continue
    try:
        import pycountry
    except ImportError:
        return None
    return frozenset(c.alpha_3 for c in pycountry.countries)


def country_problem(code: str) -> str | None:
    """Why ``code`` is no carbon_country (None when it is one)."""
    if not re.fullmatch(r"[A-Z]{3}", code):
        return f"carbon_country {code!r} must be an ISO 3166 alpha-3 code such as 'USA'"
    codes = country_codes()
    if codes is None or code in codes:
        return None
    hint = nearest(code, codes)
    if "did you mean" not in hint:  # no close match: the codes with the same first letter
        hint = nearest(code, [c for c in codes if c[0] == code[0]] or codes)
    return f"carbon_country {code!r} is not an ISO 3166 alpha-3 code with carbon data{hint}"


def _at_most(name: str, value: float, limit: float, unit: str = "") -> None:
    if value > limit:
        raise ValueError(f"{name} {value} is over {unit or limit}; use a smaller value")


@dataclass
class SuiteConfig:
    name: str
    description: str = ""
    seed: int = 0
    device: str = "cpu"
    accuracy_gate: float = 0.99
    timeout_s: float = 900.0
    max_runs: int = MAX_RUNS  # the plan's size limit: models × (baseline + methods) × tasks
    # GPUs each run reserves under the ray executor (fractions share one); unset: 1 on CUDA, else 0.
    # The local executor always gives each run one GPU of its own.
    gpus_per_run: float | None = None

    def __post_init__(self) -> None:
        problem = name_problem(self.name)
        if problem:
            shown = self.name if len(self.name) <= 40 else self.name[:40] + "..."
            raise ValueError(f"name {shown!r} {problem} (it names a directory)")
        if not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device {self.device!r} must be 'cpu', 'cuda' or 'cuda:N'")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed {self.seed} must be in 0..{2**32 - 1}")
        if not 0 < self.accuracy_gate <= 1:  # nan fails too
            raise ValueError(f"accuracy_gate {self.accuracy_gate} must be in (0, 1]")
        if not self.timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        _at_most("timeout_s", self.timeout_s, MAX_TIMEOUT_S, f"7 days ({MAX_TIMEOUT_S:.0f} s)")
        if not 1 <= self.max_runs <= 1_000_000:
            raise ValueError(f"max_runs {self.max_runs} must be in 1..1000000")
        if self.gpus_per_run is None:
            self.gpus_per_run = 1.0 if self.device.startswith("cuda") else 0.0
        elif not 0 <= self.gpus_per_run <= 64:  # nan fails too
            raise ValueError(f"gpus_per_run {self.gpus_per_run} must be in 0..64 (a fraction shares a GPU)")
        elif self.gpus_per_run > 0 and not self.device.startswith("cuda"):
            raise ValueError(f"gpus_per_run {self.gpus_per_run} needs device = 'cuda'; "
                             "remove it, or set device = 'cuda'")


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
    # torch.compile mode applied to every run's model before timing ("none": eager); a
    # list runs each mode side by side. Left out of run ids when "none" (see plan.py).
    compile: str | list[str] = "none"
    # Where the compressed model runs for its evaluation and timing: "torch" (with the
    # compile modes above), or a runtime plugin ("onnxruntime", "openvino", ...); a list
    # runs each side by side, each with its own baseline. Left out of run ids when "torch".
    runtime: str | list[str] = "torch"
    # "per-call": each sample is one synchronous call; "back-to-back": each sample is a
    # block of calls synchronized at its ends (launch-bound models on a GPU).
    timing: str = "per-call"
    # Energy on: reuse the machine's idle power measured by an earlier bench on this host
    # (same device and carbon_country) up to this many seconds ago, instead of a fresh 2 s
    # window; 0 measures it for every bench. Not part of run ids (see plan.py).
    idle_reuse_s: float = 0.0
    # Warm-up ends when two successive windows' medians agree within this share (not a
    # suite key: a ClassVar is not a field, so run ids do not change).
    settle_tolerance: ClassVar[float] = 0.05
    # CUDA: the SM clock counts as moved when it changed by more than this share between
    # the start and end of a timing window; warm-up waits (up to clock_ramp_max_s) until
    # two readings >= 0.1 s apart agree within it.
    clock_tolerance: ClassVar[float] = 0.03
    clock_ramp_max_s: ClassVar[float] = 5.0
    block_s: ClassVar[float] = 0.01  # back-to-back: seconds of calls per sample, about

    @property
    def compile_modes(self) -> list[str]:
        """The compile modes to run, in suite order (one for a plain string)."""
        return [self.compile] if isinstance(self.compile, str) else list(self.compile)

    @property
    def runtimes(self) -> list[str]:
        """The runtimes to run, in suite order (one for a plain string)."""
        return [self.runtime] if isinstance(self.runtime, str) else list(self.runtime)

    def __post_init__(self) -> None:
        numbers = [self.warmup_s, self.min_time_s, self.max_time_s, self.ci_target, self.price_per_hour]
        if not all(math.isfinite(x) for x in numbers + [self.sustained_s or 0.0]):
            raise ValueError("warmup_s, min_time_s, max_time_s, ci_target, price_per_hour and "
                             "sustained_s must be finite numbers")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ValueError("batch_sizes must be a non-empty list of positive integers")
        for size in self.batch_sizes:
            _at_most("batch_sizes:", size, MAX_BATCH)
        if self.min_time_s < 0 or self.warmup_s < 0 or self.min_iterations < 1:
            raise ValueError("warmup_s and min_time_s must be >= 0 and min_iterations >= 1")
        if self.max_time_s < self.min_time_s:
            raise ValueError("max_time_s must be >= min_time_s")
        for name in ("warmup_s", "max_time_s", "sustained_s"):
            _at_most(name, getattr(self, name) or 0.0, MAX_WINDOW_S, f"{MAX_WINDOW_S:.0f} s")
        _at_most("min_iterations", self.min_iterations, 1_000_000)
        if not 0 < self.ci_target < 1:
            raise ValueError("ci_target must be in (0, 1), e.g. 0.02 for 2%")
        problem = country_problem(self.carbon_country)
        if problem:
            raise ValueError(problem)
        if self.threads < 0 or self.price_per_hour < 0:
            raise ValueError("threads and price_per_hour must be >= 0")
        _at_most("threads", self.threads, 4096)
        if self.sustained_s is not None and self.energy and self.sustained_s < 1:
            raise ValueError(f"sustained_s {self.sustained_s} is too short to measure energy over: "
                             "use >= 1 (seconds), or energy = false")
        if self.sustained_s is not None and self.sustained_s < 0:
            raise ValueError("sustained_s must be >= 0 (0 skips the sustained window)")
        modes = self.compile_modes
        unknown = [m for m in modes if m not in COMPILE_MODES]
        if unknown or not modes or len(set(modes)) < len(modes):
            raise ValueError(f"compile {self.compile!r} must be one of {', '.join(map(repr, COMPILE_MODES))}, "
                             "or a list of distinct ones such as [\"none\", \"default\"]")
        if not self.runtimes or len(set(self.runtimes)) < len(self.runtimes) or \
                not all(isinstance(r, str) and r for r in self.runtimes):
            raise ValueError(f"runtime {self.runtime!r} must be a runtime's name (see `harness plugins`), or a list "
                             "of distinct ones such as [\"torch\", \"onnxruntime\"]")
        if not 0 <= self.idle_reuse_s <= MAX_IDLE_REUSE_S:  # nan fails too
            raise ValueError(f"idle_reuse_s {self.idle_reuse_s} must be in 0..{MAX_IDLE_REUSE_S:.0f} (seconds; 0 measures "
                             "idle power for every bench)")
        if self.timing not in TIMING_MODES:
            raise ValueError(f"timing {self.timing!r} must be one of {', '.join(map(repr, TIMING_MODES))}")
