"""The GPU check's summary: pytest's counts, a compact table of rows, the overall verdict
and the Markdown page (summary.md); standard library only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpu_check_judge import _first_line


def junit_counts(xml: Path) -> dict[str, Any]:
    """tests, failures, errors, skipped and the failing tests' first lines from pytest's XML."""
    if not xml.exists():
        return {}
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError:
        return {}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failures, skips = [], []
    for case in suite.iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        for child in case:
            if child.tag in ("failure", "error"):
                failures.append(f"{name}: {_first_line(child.get('message'))}")
            elif child.tag == "skipped":
                skips.append(f"{name}: {_first_line(child.get('message'))}")
    return {**counts, "failures": failures, "skips": skips}


def row_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A compact line per row for the summary."""
    out = []
    for row in rows:
        m = row.get("metrics") or {}
        out.append({"model": row.get("model"), "method": row.get("method"), "status": row.get("status"),
                    "accuracy": m.get("accuracy"), "p50_ms": m.get("latency_ms_p50"),
                    "throughput_sps": m.get("throughput_sps"), "compile_s": m.get("compile_s"),
                    "gpu_mem_mb": m.get("gpu_peak_mem_mb", m.get("gpu_device_peak_mem_mb")),
                    "gpu_j_per_1k": m.get("gpu_energy_j_per_1k"), "clocks_moved": m.get("timing_clocks_moved"),
                    "noisy": m.get("timing_noisy"), "why": _first_line(row.get("error")) or
                    ((row.get("provenance") or {}).get("latency_ms_p50", "") if "latency_ms_p50" not in m else "")})
    return out


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """The pass/fail judgements docs/gpu.md names, from the steps' figures."""
    steps = summary.get("steps", {})
    if summary.get("dry_run"):
        failed = [s for s in ("wheels", "validate", "env", "driver") if steps.get(s, {}).get("status") == "fail"]
        return {"overall": "DRY RUN FAILED" if failed else "DRY RUN OK", "failed_steps": failed}

    def status(name: str) -> str:
        return steps.get(name, {}).get("status", "not run")

    rows_ok = all(steps.get(s, {}).get("rows", {}).get("pass") for s in ("gpu", "methods", "vision"))
    nvml_ok = all(steps.get(s, {}).get("nvml", {}).get("pass") for s in ("gpu", "methods", "vision"))
    b2b = steps.get("repro", {}).get("back-to-back", {})
    judgements = {
        "installed": status("env") == "pass" and status("install") in ("pass", "not run"),
        "cuda_tests": status("pytest") == "pass",
        "every_row_ok_or_skipped_with_reason": rows_ok,
        "p50_reproducible_and_matches_timer": bool(b2b.get("pass")),
        "compiled_int8_not_slower_than_eager": bool(steps.get("gpu", {}).get("compiled_int8", {}).get("pass")),
        "nvml_memory_and_energy_present": nvml_ok,
    }
    return {"overall": "PASS" if all(judgements.values()) else "FAIL", **judgements}


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(summary: dict[str, Any]) -> str:
    v, steps, env = summary.get("verdict", {}), summary.get("steps", {}), summary.get("env", {})
    lines = [f"# GPU check: {v.get('overall')}{'' if summary.get('complete') else ' (incomplete: still running or stopped)'}",
             "", f"{summary.get('check')}, started {summary.get('started')}, {summary.get('elapsed_s')} s. "
             "Thresholds: docs/gpu.md.", ""]
    if env:
        lines += [f"- machine: {env.get('gpu', 'no GPU')}; python {env.get('python')}, torch {env.get('torch')}, "
                  f"torchao {env.get('torchao')}, torch_pruning {env.get('torch_pruning')}",
                  f"- torchao status: {_fmt(json.dumps(env.get('torchao_status'), default=str))[:400]}",
                  f"- onnxruntime {env.get('onnxruntime')}: CUDA provider {'yes' if env.get('onnxruntime_cuda') else 'no'}, "
                  f"TensorRT provider {'yes' if env.get('onnxruntime_tensorrt') else 'no'} "
                  f"({', '.join(env.get('onnxruntime_providers') or [])}); the onnxruntime runtime needs the CUDA provider on cuda", ""]
    lines += ["## Judgements", "", "| judgement | result |", "| --- | --- |"]
    lines += [f"| {k} | {'PASS' if val is True else 'FAIL' if val is False else val} |" for k, val in v.items()]
    lines += ["", "## Steps", "", "| step | status | s | problems |", "| --- | --- | --- | --- |"]
    for name, step in steps.items():
        problems = list(step.get("problems", [])) + list(step.get("rows", {}).get("problems", []))
        problems += list(step.get("nvml", {}).get("problems", []))[:5] + list(step.get("compiled_int8", {}).get("problems", []))
        cell = "; ".join(problems)[:600].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {name} | {step.get('status')} | {_fmt(step.get('seconds'))} | {cell} |")
    for note in steps.get("validate", {}).get("notes", []):
        lines.append(f"\nnote: {note}")
    pytest = steps.get("pytest", {})
    if pytest.get("tests"):
        lines += ["", f"pytest -m cuda: {pytest.get('last_line')}"]
        lines += [f"- skipped {s}" for s in pytest.get("skips", [])]
    gpu = steps.get("gpu", {})
    for pair in gpu.get("compiled_int8", {}).get("pairs", []):
        lines.append(f"- {pair['method']}: p50 eager {_fmt(pair['eager_p50_ms'])} ms → compiled "
                     f"{_fmt(pair['compiled_p50_ms'])} ms (×{pair['p50_compiled_over_eager']}); throughput "
                     f"×{pair['throughput_compiled_over_eager']}; compile {_fmt(pair['compile_s'])} s")
    repro = steps.get("repro", {})
    if repro.get("timer"):
        lines += ["", "## Latency reproducibility (digits MLP, three benches vs torch.utils.benchmark.Timer)", "",
                  "| timing | batch | p50 ms per run | ratio to their median | ratio to Timer | Timer ms |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for mode in ("back-to-back", "per-call"):
            for b in repro.get(mode, {}).get("batches", []):
                lines.append(f"| {mode}{'' if mode == 'back-to-back' else ' (not judged)'} | {b['batch']} | "
                             f"{', '.join(_fmt(x) for x in b['p50_ms'])} | {b.get('vs_median', '')} | "
                             f"{b.get('vs_timer', '')} | {_fmt(b.get('timer_ms'))} |")
    for name in ("gpu", "methods", "vision"):
        step = steps.get(name, {})
        if not step.get("table"):
            continue
        lines += ["", f"## Rows of {name} ({step.get('rows', {}).get('counts')})", "",
                  "| model | method | status | acc | p50 ms | samples/s | compile s | GPU MB | GPU J/1k | why / note |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in step["table"]:
            flags = ("^" if r.get("clocks_moved") else "") + ("~" if r.get("noisy") else "")
            lines.append(f"| {r['model']} | {r['method']} | {r['status']} | {_fmt(r['accuracy'])} | "
                         f"{_fmt(r['p50_ms'])}{flags} | {_fmt(r['throughput_sps'])} | {_fmt(r['compile_s'], 3)} | "
                         f"{_fmt(r['gpu_mem_mb'])} | {_fmt(r['gpu_j_per_1k'])} | "
                         f"{str(r.get('why') or '')[:160].replace('|', '/')} |")
    lines += ["", "(^ the SM clock moved while timing, ~ noisy timing; results.tar.gz holds the rows and logs)", ""]
    return "\n".join(lines)
