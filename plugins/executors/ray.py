"""The ``ray`` executor: runs on a Ray cluster (``$RAY_ADDRESS``, or a local Ray it starts).

Each of ``--jobs`` slots is a Ray actor that Ray places on some node with the run's
resources (``num_cpus``: an equal share of the cluster's CPUs; ``num_gpus``: the suite's
``gpus_per_run``, by default 1 on CUDA, and Ray sets the actor's ``CUDA_VISIBLE_DEVICES``
to the GPUs it reserved). A slot keeps a fork server of its own (:class:`Workers`: torch and
the plugins imported once per slot, not once per run), prepares the suite's models on its
node before its first run (so nothing needs a shared cache: each node trains or downloads
what it lacks, one slot at a time per node), measures its node's idle power (once per node
and (device, carbon country) in each bench, shared by the node's slots, after every slot
has prepared its models: each run subtracts its own node's idle power, and shares that
node's RAM energy with the slots Ray placed there), and runs one spec at a time in a worker
process exactly as the local executor does: forked (warm), isolated, timed out, ended
with its tree. A slot whose actor dies (its node lost, its process killed) makes that
run's row ``failed`` and is replaced.

Paths are the driver's: the suite's folder must be on a filesystem every node sees at the
same path (a run on a node without it fails saying so; nothing is shipped); where the
results folder is not there or not writable, the node runs without artifacts (each run
compresses and times itself, and its steps say why). Each row's ``env`` records the Ray
node (``ray_node_id``, ``ray_node_ip``) it ran on.

Imported only when a suite asks for the ``ray`` executor: ``import ray`` at the top is
deliberate (an ImportError here tells the user to install compression-harness[ray]).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import ray  # an ImportError here tells the user to install compression-harness[ray]

from harness.api import Executor
from harness.toolkit import RunResult, RunSpec, Workers, cache_dir, plural

PROGRESS = "prepare: "


class Slot:
    """One run at a time on the node Ray placed this actor on, from a fork server of its own."""

    def __init__(self, runs: list[RunSpec]):
        self.node = ray.get_runtime_context().get_node_id()
        self.ip = ray.util.get_node_ip_address()
        self.idle: dict[tuple[str, str], dict[str, Any] | None] = {}  # this node's, by (device, country)
        self.workers = Workers()
        self.workers.start(runs)  # preparation below is forked from it once its imports are done

    def prepare(self, models: list[tuple[dict[str, Any], str]]) -> list[str]:
        """Prepare the suite's models on this node (a no-op where they are cached); one slot
        of a node at a time (a lock in the model cache); return what failed."""
        import fcntl

        failures = []
        cache_dir().mkdir(parents=True, exist_ok=True)
        with open(cache_dir() / ".prepare.lock", "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for model, suite_dir in models:
                try:
                    code, tail = self.workers.prepare(model, suite_dir)
                except TimeoutError as exc:
                    failures.append(f"{exc} (on node {ray.util.get_node_ip_address()})")
                    continue
                if code != 0:
                    failures.append(f"preparing model {model['name']} failed on node {ray.util.get_node_ip_address()}"
                                    f" ({tail[-1] if tail else 'no output'})")
        return failures

    def measure_idle(self, keys: list[tuple[str, str]], bench: str) -> str:
        """This node's idle power for each (device, carbon country) of ``keys``: measured by
        the node's first slot of this ``bench`` (a lock and a file per node in the cache),
        read by the others; a failure is kept as None (the runs say energy above idle is
        absent). Return this node's id."""
        import fcntl

        folder = cache_dir() / "idle"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f".{self.node}.lock", "wb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for old in folder.glob("*.json"):  # earlier benches' figures
                with suppress(OSError):
                    if time.time() - old.stat().st_mtime > 86400:
                        old.unlink()
            for key in keys:
                name = hashlib.sha256(json.dumps([bench, self.node, *key]).encode()).hexdigest()[:16]
                path = folder / f"{name}.json"
                if path.exists():
                    self.idle[tuple(key)] = json.loads(path.read_text())
                    continue
                idle = self._measure_idle(key)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(idle))
                os.replace(tmp, path)
                self.idle[tuple(key)] = idle
        return self.node

    def _measure_idle(self, key: tuple[str, str]) -> dict[str, Any] | None:
        code, tail = self.workers.call("harness.measure.idle", list(key))
        for line in reversed(tail):  # stdout and stderr together: warnings may follow
            if line.startswith("{"):
                idle = json.loads(line)
                return dict(idle, provenance=f"{idle['provenance']}; on Ray node {self.node} ({self.ip})")
        print(f"measuring idle power on Ray node {self.ip} failed: {(tail or [f'exit status {code}'])[-1]}",
              file=sys.stderr)
        return None

    def run(self, spec: RunSpec, per_node: dict[str, int]) -> tuple[RunResult, str]:
        """Run ``spec`` in a worker process on this node, with this node's idle power and
        RAM share (``per_node``: the driver's count of slots on each node); its result and log."""
        if spec.measure.energy:
            spec.placement.idle = self.idle.get((spec.device, spec.measure.carbon_country))
        spec.placement.concurrent = max(1, per_node.get(self.node, 1))
        if not Path(spec.suite_dir).is_dir():
            error = (f"the suite's folder {spec.suite_dir} is not on Ray node {self.ip}: put it on a filesystem "
                     "that every node mounts at the same path")
            return self._on_node(RunResult.of(spec, "failed", error)), error + "\n"
        artifacts = spec.placement.artifacts_dir and _unwritable(Path(spec.placement.artifacts_dir))
        if artifacts:
            spec.placement.artifacts_dir = None
        with tempfile.TemporaryDirectory(prefix="harness-ray-") as tmp:
            log = Path(tmp) / f"{spec.run_id}.log"
            result = self._on_node(self.workers.run(spec, log))
            if artifacts:
                note = f"not stored for reuse: {artifacts} on Ray node {self.ip} (artifacts are off there)"
                result.steps = [step if "artifact" in step or step.get("use") == "baseline"
                                else step | {"artifact": note} for step in result.steps]
            return result, log.read_text(errors="replace") if log.exists() else ""

    def _on_node(self, result: RunResult) -> RunResult:
        result.env = dict(result.env, ray_node_id=self.node, ray_node_ip=self.ip)
        return result

    def close(self) -> None:
        self.workers.close()


def _unwritable(artifacts: Path) -> str:
    """Why this node cannot keep artifacts in the driver's ``artifacts`` folder ('' if it can)."""
    if not artifacts.parent.is_dir():
        return f"the results folder {artifacts.parent} is not there"
    if not os.access(artifacts if artifacts.is_dir() else artifacts.parent, os.W_OK):
        return f"{artifacts} is not writable"
    return ""


def gpus_of(spec: RunSpec) -> float:
    """The GPUs each run reserves: the suite's ``gpus_per_run`` (1 on CUDA unless set)."""
    return float(spec.gpus_per_run)


def plan_slots(runs: list[RunSpec], jobs: int, resources: dict[str, float]) -> tuple[int, float, int]:
    """(CPUs, GPUs each slot reserves; how many slots) on a cluster with ``resources``:
    ``jobs`` slots, or fewer where its GPUs hold fewer (actors keep what they reserve, so a
    slot that cannot be placed would wait forever)."""
    cpus = int(resources.get("CPU", 1))
    per_run = max(1, cpus // jobs)  # CPUs reserved = threads used
    gpus = gpus_of(runs[0])
    slots = min(jobs, len(runs), max(1, cpus // per_run), *([int(resources.get("GPU", 0) // gpus)] if gpus else []))
    if slots < 1:
        raise RuntimeError(f"the Ray cluster has {resources.get('GPU', 0):g} GPUs; each run needs {gpus:g} "
                           "(gpus_per_run): add GPU nodes, or lower gpus_per_run")
    if slots < min(jobs, len(runs)):
        print(f"note: the Ray cluster holds {plural(slots, 'run')} at once ({plural(cpus, 'CPU')}, "
              f"{plural(resources.get('GPU', 0), 'GPU')}; each run reserves {plural(per_run, 'CPU')} and "
              f"{plural(gpus, 'GPU')})", file=sys.stderr)
    return per_run, gpus, slots


def representatives(runs: list[RunSpec]) -> list[RunSpec]:
    """One run per combination of plugins and energy setting: what a slot's fork server
    must preload for any run of the suite."""
    seen: dict[tuple, RunSpec] = {}
    for run in runs:
        seen.setdefault((run.model.source, run.task.kind, tuple(s.use for s in run.steps), run.measure.energy), run)
    return list(seen.values())


class RayExecutor(Executor):
    name = "ray"
    description = "each of --jobs slots a Ray actor on whichever node Ray picks ($RAY_ADDRESS, or a local Ray)"
    prepares_models = True  # each slot, on its node: the driver's machine need not hold the models
    measures_idle = True  # each node's first slot, for the runs on that node

    def run(self, runs: list[RunSpec], log_dir: Path, on_start: Callable[[RunSpec], None],
            on_result: Callable[[RunSpec, RunResult], None]) -> None:
        if not runs:
            return
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, ignore_reinit_error=True,
                 log_to_driver=False)
        per_run, gpus, slots = plan_slots(runs, self.jobs, ray.cluster_resources())
        actor = ray.remote(num_cpus=per_run, num_gpus=gpus, max_restarts=0)(Slot)
        models = list({json.dumps(r.model.to_dict(), sort_keys=True): (r.model.to_dict(), r.suite_dir)
                       for r in runs}.values())
        kinds = representatives(runs)  # its server preloads what any run needs (codecarbon, torchao, ...)
        keys = sorted({(r.device, r.measure.carbon_country) for r in runs if r.measure.energy})
        bench = uuid.uuid4().hex  # idle power is measured once per node in each bench

        def new_slot() -> tuple[Any, Any]:  # (the actor, its preparation: [failures, its node's id])
            slot = actor.remote(kinds)
            return slot, [slot.prepare.remote(models), slot.measure_idle.remote(keys, bench)]

        log_dir.mkdir(parents=True, exist_ok=True)
        free = [(slot, [slot.prepare.remote(models)]) for slot in (actor.remote(kinds) for _ in range(slots))]
        pending: dict[Any, tuple[RunSpec, tuple[Any, Any]]] = {}
        queue = list(runs)
        try:
            ray.wait([p[0] for _, p in free], num_returns=len(free))  # every node's models ready, so that
            free = [(slot, p + [slot.measure_idle.remote(keys, bench)]) for slot, p in free]  # idle is idle
            ray.wait([p[1] for _, p in free], num_returns=len(free))
            node_of = {slot: node for slot, node in ((s, _node(p[1])) for s, p in free) if node}
            while queue or pending:
                while queue and free:
                    slot, prepared = free.pop()
                    spec = queue.pop(0)
                    spec.placement.threads = per_run
                    on_start(spec)
                    per_node = dict(Counter(node_of.values()))  # the slots on each node: their runs share its RAM
                    pending[slot.run.remote(spec, per_node)] = (spec, (slot, prepared))
                done, _ = ray.wait(list(pending), num_returns=1)
                spec, (slot, prepared) = pending.pop(done[0])
                result, log, died = _outcome(done[0], spec, prepared)
                (log_dir / f"{spec.run_id}.log").write_text(log)
                if died:
                    ray.kill(slot)
                    node_of.pop(slot, None)
                elif prepared is not None:
                    node_of[slot] = result.env.get("ray_node_id", "")
                free.append(new_slot() if died else (slot, None))
                on_result(spec, result)
        finally:
            _end(free, pending)


def _node(ref: Any) -> str:
    """The node id a slot's idle measurement returned ('' if the slot died)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError:
        return ""


def _outcome(ref: Any, spec: RunSpec, prepared: Any) -> tuple[RunResult, str, bool]:
    """The task's (result, log, whether its slot died); a dead actor, a lost node or
    object becomes this run's failed result, and the suite goes on."""
    notes = []
    try:
        if prepared is not None:  # the slot's first run: what its node could not prepare
            notes = ray.get(prepared[0])
        result, log = ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        error = f"the Ray task of this run died ({type(exc).__name__}: {first})"
        return RunResult.of(spec, "failed", error), error + "\n", True
    if notes and result.status == "failed":
        result.error = "\n".join(notes + [result.error or ""])
    return result, "".join(f"{PROGRESS}{n}\n" for n in notes) + log, False


def _end(free: list[tuple[Any, Any]], pending: dict[Any, tuple[RunSpec, tuple[Any, Any]]]) -> None:
    """Close the idle slots (their fork servers end their workers), kill the busy ones
    (interrupted, or the driver failed: their workers die with them)."""
    for _, (_, (slot, _)) in pending.items():
        ray.kill(slot)
    closing = [slot.close.remote() for slot, _ in free]
    try:
        ray.get(closing, timeout=30)
    except ray.exceptions.RayError:
        pass
    for slot, _ in free:
        ray.kill(slot)
