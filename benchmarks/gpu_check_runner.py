"""The GPU check's runner: each step a child process with a time limit inside one budget,
its output in logs/, and the summary (summary.json, summary.md) and results.tar.gz
rewritten after every step, so that a hang or a kill still returns what came before."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from gpu_check_summary import markdown, verdict

FINISH_S = 15.0
# Step time caps (s) and the least time each later step is left (s)
CAPS = {"pytest": 110, "gpu": 190, "repro": 50, "functional": 130, "repro-per-call": 45}
RESERVE = {"pytest": 40, "gpu": 90, "repro": 30, "functional": 45, "repro-per-call": 0}


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="gpu-check-"))
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "logs").mkdir(exist_ok=True)
        self.start = time.time()
        # steps are planned to end FINISH_S before the deadline: a stopped bench's grace
        # period, the judgements and the tar fit in before the shell's timeout
        self.deadline = (args.deadline or (self.start + args.budget_s)) - FINISH_S
        self.running: dict[str, tuple[str, float]] = {}  # bench step -> (suite name, start)
        python = args.python or sys.executable
        self.python = str(Path(python).absolute()) if os.sep in python else python  # children run elsewhere
        self.summary: dict[str, Any] = {
            "check": "benchmarks/gpu_check.sh" + (" --dry-run" if args.dry_run else ""),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "dry_run": args.dry_run,
            "python": self.python, "work": str(self.work), "steps": {}, "verdict": {},
        }
        self.children: list[subprocess.Popen] = []
        self.background: list[subprocess.Popen] = []
        env = dict(os.environ)
        env.setdefault("HARNESS_CACHE", str(self.work / "cache"))
        env.setdefault("HARNESS_TEST_CACHE", env["HARNESS_CACHE"])
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("HF_DATASETS_OFFLINE", "1")
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        self.env = env

    # ---- bookkeeping
    def left(self) -> float:
        return self.deadline - time.time()

    def limit(self, step: str, later: tuple[str, ...]) -> float:
        return max(5.0, min(CAPS[step], self.left() - sum(RESERVE[s] for s in later)))

    def log(self, message: str) -> None:
        print(f"[gpu-check {time.time() - self.start:6.1f}s] {message}", flush=True)

    def record(self, name: str, **entry: Any) -> None:
        self.summary["steps"].setdefault(name, {}).update(entry)
        self.write()

    def write(self, final: bool = False) -> None:
        self.summary["elapsed_s"] = round(time.time() - self.start, 1)
        self.summary["complete"] = final
        self.summary["verdict"] = verdict(self.summary)
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(self.summary, indent=1, default=str))
        os.replace(tmp, self.out / "summary.json")
        tmp = self.out / "summary.md.tmp"
        tmp.write_text(markdown(self.summary))
        os.replace(tmp, self.out / "summary.md")

    def tar(self) -> None:
        """The results directories and logs (compressed models left out) → results.tar.gz."""
        target, tmp = self.out / "results.tar.gz", self.out / "results.tar.gz.tmp"
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                for name in ("results", "logs", "pytest.xml"):
                    path = self.work / name
                    if path.exists():
                        tar.add(path, arcname=f"gpu-check/{name}",
                                filter=lambda info: None if "/artifacts" in info.name or "/cache" in info.name
                                or info.size > 4 << 20 else info)
            if tmp.stat().st_size > 15 << 20:  # the machine returns files up to 16 MiB
                with tarfile.open(tmp, "w:gz") as tar:
                    for path in sorted(self.work.glob("results/**/results.jsonl")):
                        tar.add(path, arcname=f"gpu-check/{path.relative_to(self.work)}")
            os.replace(tmp, target)
        except OSError as exc:
            self.log(f"could not write results.tar.gz: {exc}")

    # ---- processes
    def run(self, name: str, argv: list[str], timeout: float, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> tuple[int | None, str, float]:
        """(exit code or None on timeout, output tail, seconds) of ``argv``; its output goes
        to logs/<name>.log. A child that runs past ``timeout`` gets SIGINT (harness bench
        then keeps its finished rows), then SIGKILL, its whole process group."""
        log_path = self.work / "logs" / f"{name}.log"
        t0 = time.time()
        shown = [a if "\n" not in a else "<code>" for a in argv]
        self.log(f"{name}: {' '.join(shown)} (limit {timeout:.0f}s)")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(argv, cwd=cwd or self.work, env=env or self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            self.children.append(proc)
            try:
                code: int | None = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                code = None
                self.stop(proc)
            finally:
                self.children.remove(proc)
        seconds = time.time() - t0
        tail = log_path.read_text(errors="replace")[-3000:]
        self.log(f"{name}: {'timed out' if code is None else f'exit {code}'} after {seconds:.1f}s")
        return code, tail, seconds

    def marked(self, name: str) -> Any:
        """The JSON a child printed on its line starting with @@ (None if it printed none)."""
        text = (self.work / "logs" / f"{name}.log").read_text(errors="replace")
        found = [line for line in text.splitlines() if line.startswith("@@")]
        return json.loads(found[-1][2:]) if found else None

    def start_background(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.work / "logs" / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=self.work, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.background.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        for proc in list(self.children) + self.background:
            if proc.poll() is None:
                self.stop(proc, grace=3.0)

    def harness(self, *args: str) -> list[str]:
        return [self.python, "-m", "harness.cli", *args]

    def py(self, code: str) -> list[str]:
        return [self.python, "-c", code]
