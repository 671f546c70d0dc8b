"""Identity beyond the files a spec names: a hub model by the commit of its cached
snapshot (known after its download), and the suite's models a method's params name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.api import UNRESOLVED
from harness.plan import build_plan, unresolved
from harness.plugins import load_plugins
from harness.suite import load_suite

from conftest import FAST_MEASURE, write_suite

pytest.importorskip("huggingface_hub")


def _snapshot(cache: Path, commit: str) -> None:
    repo = cache / "models--org--tiny"
    (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


def test_a_hub_model_is_identified_by_its_cached_commit(tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    suite = write_suite(tmp_path, f"""
        [suite]
        name = "hub"
        {FAST_MEASURE}
        [[models]]
        name = "tiny"
        source = "hf"
        ref = "org/tiny"

        [[tasks]]
        name = "agree"
        kind = "fidelity"
        dataset = "digits"
        """)
    plugins = load_plugins()

    def plan() -> list:
        return build_plan(load_suite(suite, plugins), plugins)

    before = plan()  # not downloaded yet: the bench plans again after preparing it
    assert before[0].versions["files"]["model"] == {"source": UNRESOLVED} and unresolved(before)
    _snapshot(tmp_path / "hub", "abc123")
    first = plan()
    assert first[0].versions["files"]["model"] == {"source": "hub commit abc123"} and not unresolved(first)
    assert plan()[0].run_id == first[0].run_id
    _snapshot(tmp_path / "hub", "def456")  # the hub's main moved, and the new snapshot was fetched
    assert plan()[0].run_id != first[0].run_id


def test_a_model_named_by_a_methods_params_is_part_of_its_identity(tmp_path: Path) -> None:
    def save(path: Path, seed: int) -> None:
        torch.manual_seed(seed)
        torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)), path)

    save(tmp_path / "teacher.pt", 0)
    save(tmp_path / "student.pt", 1)
    suite = write_suite(tmp_path, f"""
        [suite]
        name = "kd"
        {FAST_MEASURE}
        [[models]]
        name = "teacher"
        source = "file"
        ref = "teacher.pt"
        options = {{ unsafe_pickle = true }}

        [[models]]
        name = "student"
        source = "file"
        ref = "student.pt"
        options = {{ unsafe_pickle = true }}

        [[tasks]]
        name = "digits"
        kind = "classification"
        dataset = "digits"
        models = ["teacher"]

        [[methods]]
        name = "kd"
        use = "distill.kd"
        params = {{ student = "student", epochs = 1 }}

        [[methods]]
        name = "magnitude"
        use = "prune.magnitude"
        """)
    plugins = load_plugins()

    def ids() -> dict[str, str]:
        return {r.method: r.run_id for r in build_plan(load_suite(suite, plugins), plugins)}

    old = ids()
    assert "models" in build_plan(load_suite(suite, plugins), plugins)[1].versions["files"]
    save(tmp_path / "student.pt", 2)  # the student, retrained to the same file
    new = ids()
    assert {m for m in old if old[m] != new[m]} == {"kd"}
