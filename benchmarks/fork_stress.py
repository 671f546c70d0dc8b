"""Fork safety under load: many runs forked from one fork server while every core is busy.

Starts a fork server as a bench does (``harness.warm.client.ForkServer``; by default with
energy on and every plugin's preload: codecarbon's set-up, torchao, transformers,
datasets), one busy-loop process per usable core, and then forks ``-n`` (default 300)
children through it, ``--jobs`` at a time, exactly as runs are started and supervised
(``harness.supervise.start_child`` / ``supervise``: own session, log pipe, tree ended).
Each child runs :func:`main` of this module: what a run's first moments touch that
threads could have left broken in a careless fork — the allocator, an OpenMP pool
(a torch matmul on two threads), OpenBLAS (a numpy matmul), and, with energy on, a
codecarbon meter window. A child that is not forked (the server refused), exits non-zero
or dies of a signal counts as a crash; its output's last lines are printed.

    .venv/bin/python benchmarks/fork_stress.py [-n 300] [--jobs 2] [--energy on|off] [--uses all|none]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(args: list[str]) -> int:
    """One forked child's work (a few tens of milliseconds)."""
    import numpy as np
    import torch

    torch.set_num_threads(2)  # an OpenMP pool created here, in the child
    a = torch.randn(256, 256)
    assert torch.isfinite(a @ a).all()
    b = np.random.rand(128, 128)
    assert np.isfinite(b @ b).all()
    junk = [bytearray(4096) for _ in range(2000)]  # the allocator, after the fork
    del junk
    if args and args[0] == "energy":
        from harness.measure.carbon import HostEnergyMeter

        meter = HostEnergyMeter("FRA")
        meter.start()
        sum(range(20000))
        meter.stop()
    return 0


class _Tail:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data = (self.data + data)[-4000:]


def _busy(cores: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]


def stress(n: int, jobs: int, energy: bool, uses: list[str]) -> int:
    from harness.process import run_dir, runs_root
    from harness.supervise import start_child, supervise
    from harness.warm.client import ForkedWorker, ForkServer

    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="harness-fork-stress-") as tmp:
        t0 = time.monotonic()
        server = ForkServer(Path(tmp) / "forkserver.log", energy=energy, uses=uses)
        failure = server.wait_ready()
        ready_s = time.monotonic() - t0
        if failure:
            print(f"the fork server cannot fork: {failure}")
            print((Path(tmp) / "forkserver.log").read_text()[-3000:])
            server.close()
            return 2
        print(f"fork server ready in {ready_s:.1f} s (energy {'on' if energy else 'off'}, {len(uses)} plugin uses); "
              f"{cores} busy loop(s), one per usable core; {n} forked runs, {jobs} at a time", flush=True)
        busy = _busy(cores)
        crashes: list[tuple[int, str]] = []
        codes: Counter[int] = Counter()
        lock, next_i = threading.Lock(), [0]

        def worker() -> None:
            while True:
                with lock:
                    if next_i[0] >= n:
                        return
                    next_i[0] += 1
                tail = _Tail()
                with run_dir(runs_root()) as rtmp:
                    child = start_child("fork_stress", ["energy" if energy else "plain"], rtmp, dict(os.environ),
                                        server, "")
                    forked = isinstance(child, ForkedWorker)
                    code, why = supervise(child, tail, time.monotonic() + 120, None)
                with lock:
                    codes[code] += 1
                    if code != 0 or not forked:
                        what = "not forked (cold); " if not forked else ""
                        crashes.append((code, what + (why or "") + "\n" + tail.data.decode(errors="replace")))

        started = time.monotonic()
        try:
            threads = [threading.Thread(target=worker) for _ in range(jobs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            elapsed = time.monotonic() - started
            for proc in busy:
                proc.kill()
                proc.wait()
            server.close()
    for code, out in crashes[:5]:
        print(f"--- crash: exit status {code}\n{out.strip()[-1500:]}")
    print(f"{n} forked runs in {elapsed:.1f} s ({elapsed / n * 1000:.0f} ms each, {jobs} at a time) with {cores} "
          f"core(s) busy: {len(crashes)} crash(es); exit statuses {dict(sorted(codes.items()))}")
    return 1 if crashes else 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="forked runs (default 300)")
    parser.add_argument("--jobs", type=int, default=2, help="children at once (default 2)")
    parser.add_argument("--energy", choices=["on", "off"], default="on", help="codecarbon set up in the server, "
                        "a meter window in each child (default on)")
    parser.add_argument("--uses", choices=["all", "none"], default="all",
                        help="preload every plugin's heavy modules (default) or none")
    args = parser.parse_args(argv)
    uses: list[str] = []
    if args.uses == "all":
        from harness.plugins import load_plugins

        plugins = load_plugins()
        uses = [f"{kind}:{name}" for kind in ("source", "task", "method") for name in plugins.names(kind)]
    return stress(args.n, args.jobs, args.energy == "on", uses)


if __name__ == "__main__":
    sys.exit(cli())
