"""The GPU check's judgements (docs/gpu.md), from the carried wheels' names and the rows
the benches wrote: pure functions of files, standard library only."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

# What gpu_wheels.sh downloads and gpu_check.sh installs (name as in the wheel's file name).
WHEELS = {
    "torchao": "0.18.0",  # the first torchao built against torch 2.11 (the GPU machine's)
    "torch_pruning": "1.6.1",
    "compression_harness": None,  # the project's own wheel (any version)
}

# Pass thresholds (docs/gpu.md)
REPRO_RUNS_TOL = 0.03  # each run's p50 within ±3% of the median of the three
REPRO_TIMER_TOL = 0.05  # each run's p50 within ±5% of Timer's median
COMPILED_TOL = 0.03  # compiled int8 counts as "not slower" up to 3% above eager (timing noise)
INT8_METHODS = ("int8-weight", "int8-dynamic")
REPRO_BATCHES = (1, 64, 512)


# --------------------------------------------------------------------------- wheels

def wheel_problems(folder: Path) -> tuple[list[str], list[str]]:
    """(problems, wheel file names) of the carried wheel folder: every wheel of WHEELS
    present once, at its version, for CPython 3.12 on manylinux x86_64 (by file name)."""
    if not folder.is_dir():
        return [f"no wheel folder {folder}: run bash benchmarks/gpu_wheels.sh (needs the package index)"], []
    names = sorted(p.name for p in folder.glob("*.whl"))
    problems = []
    for dist, version in WHEELS.items():
        found = [n for n in names if n.split("-")[0].lower() == dist]
        if not found:
            problems.append(f"missing wheel: {dist}{'==' + version if version else ''} "
                            "(run bash benchmarks/gpu_wheels.sh)")
            continue
        if len(found) > 1:
            problems.append(f"more than one wheel of {dist}: {', '.join(found)} (keep one)")
        for name in found:
            why = wheel_tag_problem(name)
            if why:
                problems.append(f"{name}: {why}")
            if version and name.split("-")[1] != version:
                problems.append(f"{name}: version {name.split('-')[1]}, the check expects {version}")
    extra = [n for n in names if n.split("-")[0].lower() not in WHEELS]
    if extra:
        problems.append(f"wheels the check does not expect (installed too; keep the folder small): {', '.join(extra)}")
    return problems, names


def wheel_tag_problem(name: str) -> str | None:
    """Why a wheel's file name says it does not install on CPython 3.12 manylinux x86_64."""
    parts = name[:-len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return "not a wheel file name (name-version[-build]-python-abi-platform.whl)"
    pythons, abis, platforms = (p.split(".") for p in parts[-3:])
    py_ok = any(p in ("py3", "cp312", "py312") or (p.startswith("cp3") and "abi3" in abis and int(p[3:] or 0) <= 12)
                for p in pythons)
    abi_ok = any(a in ("none", "abi3", "cp312") for a in abis)
    plat_ok = any(p == "any" or (p.startswith("manylinux") and p.endswith("x86_64")) for p in platforms)
    if not (py_ok and abi_ok):
        return f"built for {parts[-3]}/{parts[-2]}, not CPython 3.12"
    if not plat_ok:
        return f"built for {parts[-1]}, not manylinux x86_64"
    return None


# --------------------------------------------------------------------------- judgements

def load_rows(results: Path) -> list[dict[str, Any]]:
    """Every row of every results.jsonl under ``results`` (the last row per run_id)."""
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("**/results.jsonl")) if results.is_dir() else []:
        for line in path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows[str(row.get("run_id", len(rows)))] = row
    return list(rows.values())


def _first_line(text: Any) -> str:
    return str(text or "").strip().splitlines()[0][:300] if str(text or "").strip() else ""


def judge_rows(rows: list[dict[str, Any]], expected: int | None = None) -> dict[str, Any]:
    """Every row ok or skipped with a reason, none failed or timed out (and as many rows
    as the suite plans, where that is known)."""
    counts: dict[str, int] = {}
    bad, skipped, unexplained = [], [], []
    for row in rows:
        status = str(row.get("status"))
        counts[status] = counts.get(status, 0) + 1
        label = f"{row.get('model')} / {row.get('method')}"
        if status in ("failed", "timeout"):
            bad.append(f"{label}: {status}: {_first_line(row.get('error'))}")
        elif status == "skipped":
            reason = _first_line(row.get("error"))
            (skipped if reason else unexplained).append(f"{label}: {reason or 'no reason given'}")
        elif status != "ok":
            bad.append(f"{label}: status {status!r}")
    problems = bad + [f"skipped without a reason: {u}" for u in unexplained]
    if expected is not None and len(rows) < expected:
        problems.append(f"{expected - len(rows)} of {expected} planned runs have no row (not run: the step's "
                        "time limit, or the bench stopped)")
    return {"pass": bool(rows) and not problems, "counts": counts, "problems": problems, "skipped": skipped}


def _timed(row: dict[str, Any]) -> bool:
    return row.get("status") == "ok" and "latency_ms_p50" in (row.get("metrics") or {})


def judge_nvml(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """NVML memory and energy present in every ok CUDA row that has timings."""
    missing, seen = [], 0
    for row in rows:
        if not _timed(row) or not str(row.get("device", "cuda")).startswith("cuda"):
            continue
        seen += 1
        metrics, prov = row.get("metrics") or {}, row.get("provenance") or {}
        label = f"{row.get('model')} / {row.get('method')}"
        if "gpu_peak_mem_mb" not in metrics and "gpu_device_peak_mem_mb" not in metrics:
            missing.append(f"{label}: no NVML memory ({prov.get('gpu_peak_mem_mb') or prov.get('gpu_device_peak_mem_mb') or '?'})")
        if "gpu_energy_j_per_1k" not in metrics:
            missing.append(f"{label}: no NVML energy ({prov.get('gpu_energy_j_per_1k') or '?'})")
    return {"pass": seen > 0 and not missing, "rows_checked": seen, "problems": missing or
            ([] if seen else ["no ok CUDA row with timings to check"])}


def judge_compiled_int8(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Compiled torchao int8 not slower than its eager run: p50 at the smallest batch and
    throughput at the largest, for each int8 method of the GPU suite."""
    by_method = {str(r.get("method")): r for r in rows}
    pairs, problems = [], []
    for method in INT8_METHODS:
        eager, compiled = by_method.get(method), by_method.get(f"{method}+compile")
        if eager is None or compiled is None:
            problems.append(f"{method}: no {'eager' if eager is None else 'compiled'} row")
            continue
        if not (_timed(eager) and _timed(compiled)):
            why = [f"{r.get('method')}: {r.get('status')} {_first_line(r.get('error')) or (r.get('provenance') or {}).get('latency_ms_p50', '')}"
                   for r in (eager, compiled) if not _timed(r)]
            problems.append(f"{method}: no timing to compare ({'; '.join(why)})")
            continue
        e, c = eager["metrics"], compiled["metrics"]
        p50 = c["latency_ms_p50"] / e["latency_ms_p50"]
        tput = (e.get("throughput_sps") or 0) and (c.get("throughput_sps") or 0) / e["throughput_sps"]
        pair = {"method": method, "eager_p50_ms": e["latency_ms_p50"], "compiled_p50_ms": c["latency_ms_p50"],
                "p50_compiled_over_eager": round(p50, 4), "eager_throughput_sps": e.get("throughput_sps"),
                "compiled_throughput_sps": c.get("throughput_sps"),
                "throughput_compiled_over_eager": round(tput, 4) if tput else None, "compile_s": c.get("compile_s")}
        pair["pass"] = p50 <= 1 + COMPILED_TOL and (not tput or tput >= 1 / (1 + COMPILED_TOL))
        if not pair["pass"]:
            problems.append(f"{method}: compiled is slower than eager (p50 ×{p50:.3f}, throughput ×{tput or 0:.3f})")
        pairs.append(pair)
    return {"pass": bool(pairs) and not problems, "pairs": pairs, "problems": problems}


def p50s_of(rows: list[dict[str, Any]]) -> dict[str, float]:
    """{batch: p50 ms} of one repro bench's baseline row (empty if it has none)."""
    for row in rows:
        if row.get("status") == "ok" and row.get("method") == "baseline":
            latency = (row.get("metrics") or {}).get("latency") or {}
            return {str(b): float(v.get("p50_ms", v.get("median_ms"))) for b, v in latency.items()
                    if isinstance(v, dict) and (v.get("p50_ms") or v.get("median_ms"))}
    return {}


def judge_repro(runs: list[dict[str, float]], timer: dict[str, float], judged: bool = True) -> dict[str, Any]:
    """Three runs' p50 per batch: each within ±3% of their median, and of Timer within ±5%."""
    table, problems = [], []
    for batch in (str(b) for b in REPRO_BATCHES):
        values = [r[batch] for r in runs if batch in r]
        entry: dict[str, Any] = {"batch": int(batch), "p50_ms": values, "timer_ms": timer.get(batch)}
        if len(values) < 3:
            problems.append(f"batch {batch}: {len(values)} of 3 runs measured")
        else:
            mid = statistics.median(values)
            entry["vs_median"] = [round(v / mid, 4) for v in values]
            entry["spread"] = round(max(values) / min(values) - 1, 4)
            if any(abs(v / mid - 1) > REPRO_RUNS_TOL for v in values):
                problems.append(f"batch {batch}: runs differ by more than ±{REPRO_RUNS_TOL:.0%} "
                                f"(ratios to their median {entry['vs_median']})")
        if timer.get(batch):
            entry["vs_timer"] = [round(v / timer[batch], 4) for v in values]
            if values and any(abs(v / timer[batch] - 1) > REPRO_TIMER_TOL for v in values):
                problems.append(f"batch {batch}: not within ±{REPRO_TIMER_TOL:.0%} of Timer "
                                f"(ratios {entry['vs_timer']})")
        else:
            problems.append(f"batch {batch}: no Timer figure")
        table.append(entry)
    return {"pass": not problems if judged else None, "batches": table, "problems": problems}
