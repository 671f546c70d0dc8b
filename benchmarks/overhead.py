"""What does the harness itself cost per run, cold (a fresh interpreter per run) and warm
(runs forked from the bench's fork server)?

Runs ``harness bench`` on a suite of trivial runs (the builtin digits MLP: the baseline
and five methods that do little; ``min_time_s = 0.2``, ``max_time_s = 0.5`` and one
intra-op thread, so that a shared machine's load does not stretch the work), with energy
off and with energy on, cold (``HARNESS_WORKERS=cold``) and warm (the default), and reports:

- wall: the whole ``harness bench`` process, start to exit;
- work: the sum of the rows' ``duration_s`` (load, compress, evaluate, measure, as the
  worker times them) and, inside it, the timing floor (each batch size's calls × mean
  latency, plus the sustained window). A cold worker loads what the fork server loads
  (torch, torchao, the plugins) before its run starts, so its imports are fixed cost;
- fixed cost per run = (wall − work) / runs, with each bench's own work, and with the
  warm bench's work for both ("common work": a cold run's imports count as cost);
- that cost split in two: per run (from one run's start, as its worker records it, to
  the next one's, less the first run's ``duration_s``: ending a worker, storing its row,
  starting the next; the median over the suite, ``--jobs 1`` only) and per suite (the
  rest: driver start-up, starting the fork server (model preparation and idle power are
  forked from it once it is ready), the 2 s idle window, the leaderboard), which a longer
  suite spreads thinner. The goal is on the warm bench's cost per run (what every run
  pays; a suite's one-time start-up of a few seconds is fine): ≤ 0.3 s with energy off,
  ≤ 0.6 s with energy on (with ``--jobs`` above 1, on its whole fixed cost per run).

    .venv/bin/python benchmarks/overhead.py [--energy off|on|both] [--repeat 1] [--jobs 1]

``--fidelity ROUNDS`` instead checks that a forked worker times inference as a fresh
interpreter does: it alternates cold and warm benches of the baseline alone (batch 1 and
64, ``min_time_s = 1``, ``--threads`` intra-op threads) and prints, per batch size, the
ratio warm/cold of the medians of the runs' latency medians.

The builtin model is trained once first (not timed). On a shared machine repeat it: the
load of other jobs moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import median

METHODS = ["quant.int8-weight", "prune.magnitude", "quant.fp16", "quant.bf16", "quant.int8-dynamic"]
GOAL_S = {"off": 0.3, "on": 0.6}


def suite(directory: Path, energy: bool, fidelity_threads: int | None = None) -> Path:
    methods = "\n".join(f'[[methods]]\nuse = "{m}"' + ('\nparams = { amount = 0.1 }' if m == "prune.magnitude" else "")
                        for m in METHODS)
    body = f"""[suite]
name = "overhead"

[measure]
batch_sizes = [1, 64]
{'min_time_s = 1.0' if fidelity_threads is not None else 'min_time_s = 0.2'}
{'' if fidelity_threads is not None else 'max_time_s = 0.5'}
{'threads = 1' if fidelity_threads is None else f'threads = {fidelity_threads}' if fidelity_threads else ''}
energy = {'true' if energy else 'false'}
{'sustained_s = 1.0' if energy else ''}

[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"

{methods}
"""
    path = directory / "suite.toml"
    path.write_text(body)
    return path


def bench(suite_path: Path, results: Path, workers: str, jobs: int, only: str | None = None,
          force: bool = False) -> tuple[float, str]:
    env = dict(os.environ, HARNESS_WORKERS=workers)
    cmd = [sys.executable, "-m", "harness.cli", "bench", str(suite_path), "--results", str(results), "--jobs", str(jobs)]
    if only:
        cmd += ["--only", only]
    if force:
        cmd += ["--force"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=suite_path.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"harness bench failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def timing_floor(row: dict) -> float:
    metrics = row.get("metrics") or {}
    floor = sum(f["n"] * f["mean_ms"] / 1e3 for f in (metrics.get("latency") or {}).values() if "n" in f)
    return floor + float((metrics.get("timing") or {}).get("sustained_s") or 0.0)


def measure(energy: bool, workers: str, jobs: int) -> dict:
    """One timed bench."""
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        path = suite(Path(tmp), energy)
        wall, out = bench(path, Path(tmp) / "results", workers, jobs)
        rows = [json.loads(line) for line in (Path(tmp) / "results" / "overhead" / "results.jsonl").open()]
    bad = [r["method"] for r in rows if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"runs not ok: {bad}")
    modes = {r["env"].get("worker_mode", "?") for r in rows}
    work = sum(r["duration_s"] for r in rows)
    floor = sum(timing_floor(r) for r in rows)
    prepared = next((float(line.split(" ready in ")[1].rstrip("s")) for line in out.splitlines()
                     if " model(s) ready in " in line), float("nan"))
    starts = [datetime.fromisoformat(r["started_at"]).timestamp() for r in rows]
    gaps = [b - a - r["duration_s"] for a, b, r in zip(starts, starts[1:], rows)]
    per_run = median(gaps) if gaps and jobs == 1 else float("nan")
    return {"wall": wall, "work": work, "floor": floor, "runs": len(rows), "modes": modes,
            "fixed": (wall - work) / len(rows), "prepare": prepared, "per_run": per_run,
            "per_suite": wall - work - per_run * len(rows)}


def fidelity(rounds: int, threads: int) -> None:
    """Alternate cold and warm benches of the baseline; print warm/cold latency ratios."""
    medians: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="harness-fidelity-") as tmp:
        path = suite(Path(tmp), False, fidelity_threads=threads)
        for _ in range(rounds):
            for workers in ("cold", "warm"):
                results = Path(tmp) / workers
                bench(path, results, workers, 1, only="baseline", force=True)
                row = json.loads((results / "overhead" / "results.jsonl").read_text().splitlines()[-1])
                assert row["env"]["worker_mode"].startswith(workers), row["env"]["worker_mode"]
                for batch, figures in row["metrics"]["latency"].items():
                    medians.setdefault((workers, batch), []).append(figures["median_ms"])
    for batch in ("1", "64"):
        cold, warm = median(medians["cold", batch]), median(medians["warm", batch])
        each = " ".join(f"{w / c:.2f}" for c, w in zip(medians["cold", batch], medians["warm", batch]))
        print(f"batch {batch:>2}: median latency cold {cold:.4f} ms, warm {warm:.4f} ms, ratio warm/cold "
              f"{warm / cold:.3f} over {rounds} alternating rounds (round by round: {each}); "
              f"{threads or 'all'} thread(s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--energy", choices=["off", "on", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1, help="benches per mode (the best wall counts)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--fidelity", type=int, metavar="ROUNDS", default=0,
                        help="check timing fidelity warm vs cold instead, over ROUNDS alternations")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for --fidelity (0 = all)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:  # train the model once, untimed
        bench(suite(Path(tmp), False), Path(tmp) / "r", "cold", 1, only="baseline")
    if args.fidelity:
        fidelity(args.fidelity, args.threads)
        return 0
    ok = True
    for energy in (["off", "on"] if args.energy == "both" else [args.energy]):
        tries: dict[str, list[dict]] = {"cold": [], "warm": []}
        for _ in range(args.repeat):  # alternating, so that a change in the machine's load hits both
            for workers in tries:
                tries[workers].append(measure(energy == "on", workers, args.jobs))
        cold, warm = (min(tries[w], key=lambda m: m["wall"]) for w in ("cold", "warm"))
        for workers, m in (("cold", cold), ("warm", warm)):
            common = (m["wall"] - warm["work"]) / m["runs"]
            print(f"energy {energy:>3}, {workers:>6}: wall {m['wall']:6.2f} s for {m['runs']} runs; "
                  f"work {m['work']:6.2f} s (timing floor {m['floor']:5.2f} s); fixed cost {m['fixed']:5.2f} s/run "
                  f"({common:.2f} s/run with the warm bench's work) = {m['per_run']:.2f} s per run + "
                  f"{m['per_suite']:.2f} s per suite (model preparation {m['prepare']:.1f} s of it); "
                  f"{'; '.join(sorted(m['modes']))}")
        goal = GOAL_S[energy]
        cost = warm["fixed"] if warm["per_run"] != warm["per_run"] else warm["per_run"]  # nan with --jobs > 1
        ok &= cost <= goal
        common_cold = (cold["wall"] - warm["work"]) / cold["runs"]
        print(f"energy {energy:>3}: wall warm/cold {warm['wall'] / cold['wall']:.2f}; fixed cost per run "
              f"cold {cold['fixed']:.2f} s (common work {common_cold:.2f} s) → warm {warm['fixed']:.2f} s; "
              f"per run {cold['per_run']:.2f} → {warm['per_run']:.2f} s (goal ≤ {goal} s: "
              f"{'met' if cost <= goal else 'NOT met'}); per suite {cold['per_suite']:.2f} → {warm['per_suite']:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
