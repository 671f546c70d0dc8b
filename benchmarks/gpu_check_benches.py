"""The GPU check's steps that run ``harness bench`` and judge its rows: the trimmed GPU
suite, latency reproducibility against ``torch.utils.benchmark.Timer``, and the methods
and vision suites side by side (the driver, ``benchmarks/gpu_check.py``, orders them)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from gpu_check_children import timer_code
from gpu_check_judge import (
    judge_compiled_int8,
    judge_nvml,
    judge_repro,
    judge_rows,
    load_rows,
    p50s_of,
)
from gpu_check_runner import Runner
from gpu_check_summary import row_table


class Benches(Runner):
    def bench(self, name: str, suite: Path, results: Path, timeout: float,
              extra: tuple[str, ...] = ()) -> subprocess.Popen | tuple[int | None, str, float]:
        return self.run(name, self.harness("bench", str(suite), "--results", str(results), *extra), timeout)

    def judge_suite(self, step: str, suite_name: str, rc: int | None, seconds: float, tail: str,
                    judge_extra: bool = False) -> None:
        rows = load_rows(self.work / "results" / suite_name)
        planned = (self.summary.get("planned_runs") or {}).get(step)
        rows_verdict = judge_rows(rows, planned)
        entry: dict[str, Any] = {"seconds": round(seconds, 1), "exit": rc, "rows": rows_verdict,
                                 "table": row_table(rows), "nvml": judge_nvml(rows)}
        if rc is None:
            rows_verdict["problems"].append(f"the bench ran past its limit ({seconds:.0f}s) and was stopped")
            rows_verdict["pass"] = False
        if not rows:
            rows_verdict["problems"].append(f"no rows (bench exit {rc}): {tail[-800:]}")
        if judge_extra:
            entry["compiled_int8"] = judge_compiled_int8(rows)
        passed = rows_verdict["pass"] and entry["nvml"]["pass"] and (not judge_extra or entry["compiled_int8"]["pass"])
        entry["status"] = "pass" if passed else ("timeout" if rc is None else "fail")
        self.record(step, **entry)

    def step_gpu(self, suites: Path) -> None:
        limit = self.limit("gpu", ("repro", "functional"))
        self.running["gpu"] = ("check-gpu", time.time())
        rc, tail, seconds = self.bench("bench-gpu", suites / "gpu.toml", self.work / "results", limit)
        self.running.pop("gpu", None)
        self.judge_suite("gpu", "check-gpu", rc, seconds, tail, judge_extra=True)

    def step_repro(self, suites: Path, mode: str = "back-to-back") -> None:
        """Three benches of the repro suite in ``mode`` against Timer. Back-to-back is
        judged; per-call (what a synchronous caller waits: not Timer's question) is
        reported, and runs last, in the time that is left."""
        judged = mode == "back-to-back"
        step = "repro" if judged else "repro-per-call"
        limit = self.limit(step, ("functional",) if judged else ())
        end = time.time() + limit
        repro = self.summary["steps"].setdefault("repro", {})
        runs: list[dict[str, float]] = []
        for i in range(3):
            left = end - time.time() - (0 if "timer" in repro else 12)  # keep time for Timer
            if left < 8:
                break
            self.bench(f"bench-repro-{mode}-{i + 1}", suites / f"repro-{mode}.toml",
                       self.work / "results" / f"repro-{mode}-{i + 1}", left, ("--force",))
            runs.append(p50s_of(load_rows(self.work / "results" / f"repro-{mode}-{i + 1}")))
        if runs and "timer" not in repro:
            self.record("repro", timer=self.timer(max(10.0, min(40.0, end - time.time()))))
        result = judge_repro(runs, repro.get("timer", {}).get("p50_ms", {}), judged) if runs else \
            {"pass": False if judged else None, "batches": [], "problems": ["no time left for the runs"]}
        self.record("repro", **{mode: result})
        if judged:
            self.record("repro", status="pass" if result.get("pass") else "fail", problems=result["problems"])

    def timer(self, timeout: float) -> dict[str, Any]:
        """torch.utils.benchmark.Timer's median per batch size on the repro model and inputs."""
        code = timer_code(self.args.device)
        rc, tail, seconds = self.run("timer", self.py(code), timeout)
        found = self.marked("timer")
        return {"p50_ms": found or {}, "seconds": round(seconds, 1), **({} if found else {"error": tail[-800:]})}

    def step_functional(self, suites: Path) -> None:
        """methods on CUDA and the vision sources, side by side (rows judged, not timings)."""
        limit = self.limit("functional", ())
        procs = {}
        for step, suite in (("methods", "methods.toml"), ("vision", "vision.toml")):
            log = open(self.work / "logs" / f"bench-{step}.log", "wb")
            argv = self.harness("bench", str(suites / suite), "--results", str(self.work / "results"))
            self.log(f"bench-{step}: {' '.join(argv)} (limit {limit:.0f}s)")
            procs[step] = (subprocess.Popen(argv, cwd=self.work, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True), time.time())
            self.children.append(procs[step][0])
            self.running[step] = (f"check-{step}", time.time())
        end = time.time() + limit
        for step, (proc, t0) in procs.items():
            try:
                rc: int | None = proc.wait(timeout=max(1.0, end - time.time()))
            except subprocess.TimeoutExpired:
                rc = None
                self.stop(proc)
            self.children.remove(proc)
            self.running.pop(step, None)
            tail = (self.work / "logs" / f"bench-{step}.log").read_text(errors="replace")[-3000:]
            self.judge_suite(step, f"check-{step}", rc, time.time() - t0, tail)
