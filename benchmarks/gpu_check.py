"""The GPU check's driver (run through ``benchmarks/gpu_check.sh``; docs/gpu.md).

On a GPU machine without network, after the shell installed the carried wheels, this
runs, each step under its own time limit and in the order of what matters most:

1. what is installed: the carried packages import, torchao's extensions, onnxruntime's
   execution providers (CUDA / TensorRT present or not);
2. ``pytest -m cuda`` (the tests marked ``cuda``);
3. ``harness bench`` of the trimmed ``suites/gpu.toml`` (every GPU method, eager and
   compiled), and from its rows: compiled torchao int8 against its eager figure, NVML
   memory and energy;
4. latency reproducibility: three benches of the digits MLP (back-to-back timing) at batch
   1, 64 and 512 against ``torch.utils.benchmark.Timer``, then the same with per-call
   timing (reported, not judged) where time is left;
5. ``harness bench`` of ``suites/methods.toml`` on CUDA and of the torchvision/timm
   sources, side by side (functional: every row ok or skipped with its reason).

The builtin models train on the CPU in the background from the start. After every step
``summary.json`` and ``summary.md`` are written again into ``--out`` (with the pass/fail
judgements computed from the rows), and the results directories and logs are tarred
into ``results.tar.gz``: a step that hangs is stopped at its limit, and a kill of the
whole command still leaves the summary of the steps before it.

``--dry-run`` (no GPU needed, a few seconds): checks the carried wheels by file name,
writes the suites and their data into a temporary work directory and validates them with
``harness validate``, checks that this driver's pieces import, and writes the summary.

Only the standard library is imported here: everything that needs torch runs in a child
process (``--python``) with a time limit.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))  # the check's sibling modules, however it is loaded

from gpu_check_benches import Benches  # noqa: E402
from gpu_check_children import (  # noqa: E402
    DRIVER_IMPORTS,
    ENV,
    IMPORTS,
    VALIDATE,
    VISION_DATA,
    timer_code,
    train_code,
)
from gpu_check_judge import _first_line, wheel_problems  # noqa: E402
from gpu_check_runner import RESERVE  # noqa: E402
from gpu_check_summary import junit_counts  # noqa: E402

SUITES = ROOT / "benchmarks" / "gpu_check_suites"


# --------------------------------------------------------------------------- the check

class Check(Benches):
    # ---- steps
    def prepare_suites(self) -> Path:
        """The check's suites, copied into the work directory with vision.npz beside them."""
        suites = self.work / "suites"
        suites.mkdir(exist_ok=True)
        for path in SUITES.glob("*.toml"):
            text = path.read_text()
            if self.args.device != "cuda":  # a rehearsal of the driver on another device
                text = text.replace('device = "cuda"', f'device = "{self.args.device}"')
            (suites / path.name).write_text(text)
        code_rc, tail, _ = self.run("vision-data", [self.python, "-c", VISION_DATA, str(suites / "vision.npz")], 60)
        if code_rc != 0:
            self.record("validate", status="fail", problems=[f"could not write vision.npz: {tail[-500:]}"])
        return suites

    def step_wheels(self) -> None:
        if self.args.skip_wheels:
            self.record("wheels", status="skip", detail="--skip-wheels")
            return
        folder = Path(self.args.wheels).resolve()
        problems, names = wheel_problems(folder)
        size = sum((folder / n).stat().st_size for n in names)
        self.record("wheels", status="fail" if problems else "pass", wheels=names,
                    size_mib=round(size / 2**20, 2), problems=problems)
        for problem in problems:
            self.log(f"wheels: {problem}")

    def step_validate(self, suites: Path) -> None:
        """``harness validate`` of every suite the check runs (one interpreter for all)."""
        paths = sorted(str(p) for p in suites.glob("*.toml"))
        rc, tail, seconds = self.run("validate", [self.python, "-c", VALIDATE, *paths], 120)
        results = self.marked("validate")
        if rc != 0 or results is None:
            self.record("validate", status="fail", seconds=round(seconds, 1),
                        problems=[f"the validation child failed: {tail[-1500:]}"])
            return
        problems, notes, planned = [], [], {}
        for path, (code_rc, text) in results.items():
            name = Path(path).stem
            m = re.search(r"→ (\d+) runs", text)
            if code_rc == 0:
                planned[name] = int(m.group(1)) if m else None
            elif self.args.dry_run and name == "vision" and all(
                    "is not installed" in line for line in text.splitlines()[1:] if line.strip()):
                notes.append(f"{name}: not validated here, torchvision/timm are not installed on this machine "
                             "(the GPU machine has them)")
            else:
                problems.append(f"{name}: {text.strip()[-800:]}")
        self.summary["planned_runs"] = planned
        self.record("validate", status="fail" if problems else "pass", seconds=round(seconds, 1),
                    planned_runs=planned, problems=problems, notes=notes)

    def step_env(self) -> None:
        rc, tail, seconds = self.run("env", self.py(ENV), 90)
        info = self.marked("env") or {"error": tail[-1500:]}
        problems = [f"{name}: {info.get(name)}" for name in IMPORTS if str(info.get(name, "FAILED")).startswith("FAILED")]
        if not self.args.dry_run and self.args.device.startswith("cuda") and not info.get("cuda_available"):
            problems.append("torch sees no CUDA GPU")
        providers = info.get("onnxruntime_providers") or []
        info["onnxruntime_cuda"] = "CUDAExecutionProvider" in providers
        info["onnxruntime_tensorrt"] = "TensorrtExecutionProvider" in providers
        self.summary["env"] = info
        self.record("env", status="fail" if problems else "pass", seconds=round(seconds, 1), problems=problems,
                    onnxruntime=(f"{info.get('onnxruntime')}: providers {', '.join(providers) or 'none'}; the "
                                 "onnxruntime runtime skips CUDA runs without CUDAExecutionProvider (recorded only)"))

    def start_training(self) -> None:
        """Train the builtin models on the CPU now, while the tests run on the GPU."""
        for ref in ("digits-mlp-4096", "digits-mlp"):
            self.start_background(f"train-{ref}", self.py(train_code(ref)))

    def wait_training(self, timeout: float) -> None:
        end = time.time() + timeout
        for proc in self.background:
            try:
                proc.wait(timeout=max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                self.log("training a builtin model is still running: the bench will wait for it")

    def step_pytest(self) -> None:
        files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                       if "mark.cuda" in p.read_text(errors="replace"))
        limit = self.limit("pytest", ("gpu", "repro", "functional"))
        xml = self.work / "pytest.xml"
        rc, tail, seconds = self.run("pytest", [self.python, "-m", "pytest", "-m", "cuda", "-q", "-rfEs",
                                                "-p", "no:cacheprovider", f"--junitxml={xml}", *files],
                                     limit, cwd=ROOT)
        entry: dict[str, Any] = {"seconds": round(seconds, 1), "files": files}
        entry.update(junit_counts(xml))
        last = [line for line in tail.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
        entry["last_line"] = last[-1].strip() if last else _first_line(tail[-300:])
        if rc is None:
            entry.update(status="timeout", problems=[f"pytest ran past {limit:.0f}s"] + entry.get("failures", []))
        else:
            ok = rc == 0 and entry.get("tests", 0) > 0 and entry.get("skipped", 0) < entry.get("tests", 0)
            entry.update(status="pass" if ok else "fail",
                         problems=entry.get("failures", []) + ([] if ok or entry.get("failures") else
                                                               [f"pytest exit {rc}: {entry['last_line']}"]))
        self.record("pytest", **entry)

    def step_driver(self) -> None:
        """Dry run: the children's code that only the GPU run executes compiles, and the
        names it imports from the harness exist."""
        problems = []
        for name, code in (("timer", timer_code("cuda")), ("train", train_code("digits-mlp"))):
            try:
                compile(code, name, "exec")
            except SyntaxError as exc:
                problems.append(f"{name} child: {exc}")
        rc, tail, seconds = self.run("driver-imports", self.py(DRIVER_IMPORTS), 60)
        if rc != 0:
            problems.append(f"the children's imports fail: {tail[-800:]}")
        self.record("driver", status="fail" if problems else "pass", seconds=round(seconds, 1), problems=problems)

    def dry(self, suites: Path) -> None:
        for step in ("pytest", "gpu", "repro", "methods", "vision"):
            self.record(step, status="not run", detail="dry run (no GPU)")

    def main(self) -> int:
        def on_signal(signum: int, _frame: Any) -> None:
            self.log(f"signal {signum}: stopping the running step, writing the summary")
            self.stop_all()
            self.summary["stopped_by_signal"] = signum
            for step, (suite_name, t0) in list(self.running.items()):  # judge what rows there are
                self.judge_suite(step, suite_name, None, time.time() - t0, "stopped by a signal",
                                 judge_extra=step == "gpu")
            self.write()
            self.tar()
            sys.exit(124)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.log(f"work directory {self.work}, summary in {self.out}, {self.left():.0f}s budget")
        if self.args.install_log:
            self.record("install", status="pass" if self.args.install_rc == 0 else "fail",
                        exit=self.args.install_rc,
                        detail=Path(self.args.install_log).read_text(errors="replace")[-1500:]
                        if Path(self.args.install_log).exists() else "")
        self.step_wheels()
        suites = self.prepare_suites()
        if self.args.dry_run:
            self.step_validate(suites)
            self.step_env()
            self.step_driver()
            self.dry(suites)
        else:
            self.start_training()
            self.step_env()
            self.step_validate(suites)
            # no timing beside the CPU training: launch-bound GPU timings follow the CPU
            # (the first H200 run's cuda tests ran beside it and spread by 40 %)
            self.wait_training(max(5.0, self.left() - sum(RESERVE[s] for s in ("pytest", "gpu", "repro", "functional"))))
            self.step_pytest()
            self.tar()
            for step in (self.step_gpu, self.step_repro, self.step_functional,
                         lambda suites: self.step_repro(suites, "per-call")):
                step(suites)
                self.tar()
            self.stop_all()
        self.write(final=True)
        self.tar()
        v = self.summary["verdict"]
        self.log(f"verdict: {v['overall']} — summary in {self.out / 'summary.md'}")
        print((self.out / "summary.md").read_text(), flush=True)
        return 0 if v["overall"] in ("PASS", "DRY RUN OK") else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="no GPU: check wheels, suites, summary")
    parser.add_argument("--wheels", default=str(ROOT / ".whl"), help="the carried wheel folder")
    parser.add_argument("--skip-wheels", action="store_true", help="do not check the carried wheels")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out", help="where the summary goes")
    parser.add_argument("--work", default=None, help="work directory (default: a new temp dir)")
    parser.add_argument("--python", default=None, help="the interpreter with torch and the harness")
    parser.add_argument("--budget-s", type=float, default=450.0, help="seconds for all steps")
    parser.add_argument("--deadline", type=float, default=None, help="epoch seconds to finish by")
    parser.add_argument("--device", default="cuda",
                        help="rehearse the driver on another device (cpu): the suites' device is replaced")
    parser.add_argument("--install-rc", type=int, default=None)
    parser.add_argument("--install-log", default=None)
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(Check(parse_args()).main())
