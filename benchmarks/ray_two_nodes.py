"""Ray across two nodes on this one machine: a head (2 CPUs) and a second ``ray start``
node (1 CPU) joined to it, each with its own temp folder, model cache and ports; a small
digits suite (energy on) with ``--executor ray --jobs 3`` against that cluster.

Prints the runs per Ray node, and for each row the node it ran on, where its idle power
was measured (the idle figure's provenance names the node), and its RAM share
(``concurrent``: the slots Ray placed on its node). Exits non-zero when runs did not land
on both nodes, or a row's idle figure is not its own node's. Ends the Ray processes it
started (and no other cluster's), however it ends. Takes about a minute.

    .venv/bin/python benchmarks/ray_two_nodes.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")

SUITE = """
[suite]
name = "ray2"
timeout_s = 300

[measure]
batch_sizes = [1, 8]
warmup_s = 0.0
min_time_s = 0.05
min_iterations = 5
max_time_s = 0.5
energy = true
carbon_country = "DEU"

[[models]]
name = "mlp"
source = "builtin"
ref = "digits-mlp"

[[tasks]]
name = "digits"
kind = "classification"
dataset = "digits"

[[methods]]
name = "magnitude-{amount}"
use = "prune.magnitude"
sweep = { amount = [0.3, 0.5, 0.7] }

[[methods]]
use = "quant.int8-dynamic"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_start(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run([RAY, "start", "--disable-usage-stats", *args],
                          env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise SystemExit(f"ray start {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ray2-") as tmp:
        base = Path(tmp)
        port = free_port()
        address = f"127.0.0.1:{port}"
        common = dict(os.environ, RAY_AUTH_MODE="disabled", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
        started = []
        try:
            for i, args in enumerate([["--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"],
                                      [f"--address={address}", "--num-cpus=1"]]):
                node_env = dict(common, HARNESS_CACHE=str(base / f"cache{i}"))  # each node its own cache
                ray_start(args + ["--node-ip-address=127.0.0.1", f"--temp-dir={base / f'ray{i}'}",
                                  f"--dashboard-agent-listen-port={free_port()}"], node_env)
                started.append(i)
            (base / "suite").mkdir()
            suite = base / "suite" / "suite.toml"
            suite.write_text(textwrap.dedent(SUITE))
            bench = subprocess.run([sys.executable, "-m", "harness.cli", "bench", str(suite), "--executor", "ray",
                                    "--jobs", "3", "--results", str(base / "results")],
                                   env=dict(common, RAY_ADDRESS=address, HARNESS_CACHE=str(base / "driver-cache")),
                                   capture_output=True, text=True, timeout=900)
            print(bench.stdout[-3000:], bench.stderr[-3000:], sep="\n")
            return report(base / "results" / "ray2" / "results.jsonl")
        finally:
            if started:
                stop(base)


def stop(base: Path) -> None:
    """End the Ray processes this script started (those naming its temp folder, and their
    children) and no other: ``ray stop`` would end every Ray cluster of this user here."""
    import psutil

    ours = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(base) in arg for arg in proc.info["cmdline"] or []):
            with suppress(psutil.Error):
                ours += [proc, *proc.children(recursive=True)]
    for proc in ours:
        with suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(ours, timeout=15)
    for proc in alive:
        with suppress(psutil.Error):
            proc.kill()


def report(results: Path) -> int:
    if not results.exists():
        print("no results file")
        return 1
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    nodes = Counter(r["env"].get("ray_node_id", "?") for r in rows)
    print("runs per Ray node:")
    for node, count in nodes.items():
        print(f"  {node[:16]}  {count}")
    problems = []
    print("rows (method · status · node · concurrent · idle W cpu/ram · idle provenance):")
    for r in rows:
        node = r["env"].get("ray_node_id", "?")
        idle = r["spec"].get("idle") or {}
        prov = idle.get("provenance", "none")
        print(f"  {r['method']:<18} {r['status']:<6} {node[:16]}  {r['spec'].get('concurrent')}  "
              f"{idle.get('cpu_w')}/{idle.get('ram_w')}  {prov}")
        if r["status"] != "ok":
            problems.append(f"{r['method']}: {r['status']} {(r.get('error') or '').splitlines()[:1]}")
        if f"on Ray node {node}" not in prov:
            problems.append(f"{r['method']}: idle figure not measured on its own node {node[:16]}")
        dyn = r.get("provenance", {}).get("dynamic_energy_j_per_1k", "")
        if dyn and f"on Ray node {node}" not in dyn:
            problems.append(f"{r['method']}: energy above idle does not use its node's idle power ({dyn[:120]})")
    if len(nodes) < 2:
        problems.append(f"the runs landed on {len(nodes)} node(s), not 2")
    print("\n".join(["problems:", *problems]) if problems else "ok: runs on both nodes, each with its own node's idle")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
