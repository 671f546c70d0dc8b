"""What a published report says besides the leaderboard, as plain data (no HTML):
the header (suites, dates, versions, gate), one line per machine, what each method did,
the runs that did not finish, and the footnotes behind the ``*``/``~`` markers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.leaderboard import latest
from harness.report.columns import BY_KEY, blank, number
from harness.result import RunResult


@dataclass
class Machine:
    cpu: str
    cores: str
    threads: str
    gpu: str
    driver: str
    torch: str
    harness: str
    python: str
    os: str
    runs: int = 0

    def line(self) -> str:
        gpu = f", GPU {self.gpu} (driver {self.driver})" if self.gpu else ", no GPU"
        return f"{self.cpu}, {self.cores} cores, {self.threads} torch threads{gpu}; torch {self.torch}, harness {self.harness}"


@dataclass
class Header:
    suites: list[str]
    first: str
    last: str
    harness: list[str]
    gates: list[float]
    machines: list[Machine]
    counts: dict[str, int] = field(default_factory=dict)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def machine_of(env: dict[str, Any]) -> Machine:
    state = env.get("gpu_state") if isinstance(env.get("gpu_state"), dict) else {}
    gpu = env.get("gpu") or ("" if "absent" in state else state.get("name", ""))
    cores = env.get("cpu_affinity") or env.get("cpu_count")
    if env.get("cpu_count") and cores != env.get("cpu_count"):
        cores = f"{cores} of {env['cpu_count']}"
    return Machine(cpu=_text(env.get("cpu")) or "unknown CPU", cores=_text(cores) or "?",
                   threads=_text(env.get("torch_threads")) or "?", gpu=_text(gpu),
                   driver=_text(state.get("driver")) if gpu else "", torch=_text(env.get("torch")),
                   harness=_text(env.get("harness")), python=_text(env.get("python")), os=_text(env.get("os")))


def machines(results: list[RunResult]) -> list[Machine]:
    """The distinct machines (CPU, GPU, versions) the latest runs ran on, with run counts."""
    seen: dict[tuple, Machine] = {}
    for result in latest(results):
        if not result.env:
            continue
        machine = machine_of(result.env)
        key = tuple(vars(machine).values())[:-1]
        seen.setdefault(key, machine).runs += 1
    return list(seen.values())


def header(results: list[RunResult]) -> Header:
    rows = latest(results)
    dates = sorted(r.started_at for r in rows if r.started_at)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    return Header(
        suites=list(dict.fromkeys(r.suite for r in rows)),
        first=dates[0][:16].replace("T", " ") if dates else "", last=dates[-1][:16].replace("T", " ") if dates else "",
        harness=sorted({str(r.env["harness"]) for r in rows if r.env.get("harness")}),
        gates=sorted({r.accuracy_gate for r in rows}), machines=machines(results), counts=counts)


@dataclass
class MethodRow:
    suite: str
    model: str
    method: str
    steps: list[str]  # "use(param=value, ...)" per step
    changed: list[str]  # per step: layers, bits, sparsity, params
    kernels: list[str]
    libraries: list[str]
    compress_s: float | None
    break_even: float | None


def _step_name(step: dict[str, Any]) -> str:
    params = step.get("params") or {}
    return str(step.get("use", "?")) + (f"({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")


def _changed(info: dict[str, Any]) -> str:
    parts = []
    layers = info.get("layers_touched", len(info["layers"]) if isinstance(info.get("layers"), list) else None)
    if layers is not None:
        parts.append(f"{layers} layers")
    if info.get("bits_per_weight") is not None:
        parts.append(f"{info['bits_per_weight']} bits/weight")
    if isinstance(info.get("sparsity_pruned_tensors"), (int, float)):
        parts.append(f"sparsity {info['sparsity_pruned_tensors'] * 100:.1f}%")
    before, after = info.get("params_before"), info.get("params_after")
    if isinstance(before, int) and isinstance(after, int) and before != after:
        parts.append(f"params {before:,} → {after:,}")
    if info.get("changed") and not parts:
        parts.append(str(info["changed"]))
    return ", ".join(parts)


def kernel_lines(result: RunResult, infos: list[dict[str, Any]]) -> list[str]:
    """Real or simulated, as the profiler saw it where it ran (the ``kernels`` figure wins
    over the steps' claims); else each step's own claim, labelled a claim."""
    verdict = result.metrics.get("kernels")
    if isinstance(verdict, str):
        return [f"{verdict} ({str(result.provenance.get('kernels', '')).removeprefix('measured: ')})"]
    lines = []
    for text in (_text(i.get("kernels")) for i in infos):
        head, _, rest = text.partition(" ")
        rest = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
        lines.append(f"{head} (claimed{': ' + rest if rest else ''})" if head else "")
    return lines


def method_rows(results: list[RunResult], frame: Any) -> list[MethodRow]:
    """One row per (suite, model, method) that ran (ok): what its steps did."""
    extra = {(r["suite"], r["model"], r["method"]): r for r in frame.to_dict("records")}
    rows: dict[tuple, MethodRow] = {}
    for result in latest(results):
        key = (result.suite, result.model, result.method)
        if result.status != "ok" or key in rows:
            continue
        figures = extra.get(key, {})
        infos = [s.get("info") or {} for s in result.steps]
        rows[key] = MethodRow(
            suite=result.suite, model=result.model, method=result.method,
            steps=[_step_name(s) for s in result.steps], changed=[_changed(i) for i in infos],
            kernels=kernel_lines(result, infos), libraries=[_text(i.get("library")) for i in infos],
            compress_s=result.metrics.get("compress_s"),
            break_even=None if blank(figures.get("break_even_inferences")) else figures["break_even_inferences"])
    return list(rows.values())


def failures(results: list[RunResult]) -> list[RunResult]:
    """The latest runs that did not finish ok (failed, timeout, skipped)."""
    return [r for r in latest(results) if r.status != "ok"]


def _common(texts: list[str]) -> tuple[str, bool]:
    """The '; '-separated parts every text shares (in order), and whether any differ."""
    parts = [t.split("; ") for t in texts]
    shared = [p for p in parts[0] if all(p in other for other in parts[1:])]
    return "; ".join(shared), any(len(p) != len(shared) for p in parts)


def footnotes(frame: Any, by_run: dict[str, RunResult]) -> list[tuple[str, str, str]]:
    """(marker, column label, why) for each column that has a marked cell."""
    notes = []
    for column in (c for c in BY_KEY.values() if c.estimable and c.key in frame.columns):
        texts = [str(by_run[r["run_id"]].provenance.get(column.key, "")) for r in frame.to_dict("records")
                 if column.key in str(r.get("estimated") or "").split(",") and r["run_id"] in by_run]
        if texts:
            text, varies = _common(texts)
            varies_note = "; details vary per run (hover a marked cell in report.html, or see results.jsonl)"
            notes.append(("*", column.label, text + (varies_note if varies else "")))
    caveats = set(frame["timing_caveat"].dropna()) if "timing_caveat" in frame.columns else set()
    if "noisy" in caveats:
        notes.append(("~", "timings", "noisy: the 95% CI of the median never narrowed to the suite's ci_target "
                                      "(or the warm-up never settled); compare these with care"))
    if "busy" in caveats:
        notes.append(("!", "timings", "timed while the machine's load exceeded its cores"))
    if "clocks" in caveats:
        notes.append(("^", "timings", "the GPU's SM clock moved (or it slowed down thermally) while timing"))
    return notes


def cell_title(column_key: str, mark: str, result: RunResult | None) -> str:
    """The hover text of a marked cell: the figure's provenance."""
    if result is None:
        return ""
    if mark == "*":
        return str(result.provenance.get(column_key, "estimated"))
    if mark == "~":
        return str(result.provenance.get("timing_noisy") or "noisy timing")
    if mark == "!":
        return str(result.provenance.get("latency_ms_p50") or "timed while the machine was busy")
    if mark == "^":
        return str(result.provenance.get("timing_clocks_moved") or "the GPU's clock moved while timing")
    return ""


def seconds(value: Any) -> str:
    return "" if blank(value) else number(float(value))
