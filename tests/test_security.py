"""Hardening (issue 12): model files that would run code are refused unless the suite opts
in, and published tables cannot carry spreadsheet formulas or break Markdown."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from harness.api import RunContext
from harness.table_writers import CsvWriter, MarkdownWriter
from harness_plugins.sources.file import FileOptions, FileSource

from conftest import cli, write_suite


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class Payload:
    """Unpickling this creates ``marker``: proof that the pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def ctx(directory: Path) -> RunContext:
    return RunContext(device="cpu", seed=0, work_dir=directory, suite_dir=directory)


def torch_saved(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def rewrite_zip(path: Path, replace: dict[str, bytes], add: dict[str, bytes] | None = None) -> None:
    """Rewrite the archive at ``path`` with members replaced (by suffix) or added."""
    with zipfile.ZipFile(path) as src:
        members = [(info, src.read(info.filename)) for info in src.infolist()]
    root = members[0][0].filename.split("/")[0]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info, data in members:
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            dst.writestr(info, data)
        for name, data in (add or {}).items():
            dst.writestr(f"{root}/{name}", data)


def exported(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(Tiny(), (torch.rand(2, 3),)), path)
    return path


def inject_in_sample_inputs(path: Path, marker: Path) -> None:
    # torch.export.load tries weights_only=True on the sample inputs, then falls back
    # to an unrestricted torch.load
    rewrite_zip(path, {"data/sample_inputs/model.pt": torch_saved(Payload(marker))})


def inject_in_a_pickled_weight(path: Path, marker: Path) -> None:
    # a weight marked use_pickle is read with torch.load(weights_only=False)
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("model_weights_config.json"))
        config = json.loads(archive.read(name))
    entry = config["config"]["lin.weight"]
    entry["use_pickle"] = True
    rewrite_zip(path, {"data/weights/model_weights_config.json": json.dumps(config).encode(),
                       f"data/weights/{entry['path_name']}": torch_saved(Payload(marker))})


def inject_an_opaque_constant(path: Path, marker: Path) -> None:
    # an opaque_obj_ constant is read with pickle.loads
    config = {"config": {"evil": {"path_name": "opaque_obj_0", "is_param": False,
                                  "use_pickle": True, "tensor_meta": None}}}
    rewrite_zip(path, {"data/constants/model_constants_config.json": json.dumps(config).encode()},
                add={"data/constants/opaque_obj_0": pickle.dumps(Payload(marker))})


INJECTIONS = [inject_in_sample_inputs, inject_in_a_pickled_weight, inject_an_opaque_constant]


def one_sentence(message: str) -> bool:
    return "\n" not in message and len(re.findall(r"[.;!?]\s", message)) <= 1


@pytest.mark.parametrize("inject", INJECTIONS, ids=lambda f: f.__name__)
def test_a_pt2_with_a_pickle_payload_runs_nothing_without_unsafe_pickle(inject, tmp_path: Path) -> None:
    path, marker = exported(tmp_path), tmp_path / "pwned"
    inject(path, marker)

    with pytest.raises(Exception) as caught:
        FileSource().load("tiny.pt2", FileOptions(), ctx(tmp_path))
    assert not marker.exists(), "the pickle in the .pt2 ran code"
    message = str(caught.value)
    assert caught.type is ValueError and "tiny.pt2" in message and "unsafe_pickle = true" in message
    assert "run any code" in message and one_sentence(message), message
    assert FileSource().check_ref("tiny.pt2", FileOptions(), tmp_path) == message  # harness validate
    assert not marker.exists()

    # the payload is live: opting in runs it (the proof the refusal above is what saved us)
    with contextlib.suppress(Exception):
        FileSource().load("tiny.pt2", FileOptions(unsafe_pickle=True), ctx(tmp_path))
    assert marker.exists()


def test_a_clean_pt2_passes_check_ref_and_loads(tmp_path: Path) -> None:
    exported(tmp_path)
    assert FileSource().check_ref("tiny.pt2", FileOptions(), tmp_path) is None
    model = FileSource().load("tiny.pt2", FileOptions(), ctx(tmp_path))
    assert model(torch.rand(2, 3)).shape == (2, 2)


def test_torchscript_archives_resolve_no_python_globals(tmp_path: Path) -> None:
    """TorchScript's own unpickler only knows TorchScript types: a Python global in
    data.pkl is an unknown type, not a call (see docs/security.md)."""
    path, marker = tmp_path / "tiny.pt", tmp_path / "pwned"
    torch.jit.save(torch.jit.trace(Tiny(), torch.rand(1, 3)), path)
    rewrite_zip(path, {"/data.pkl": pickle.dumps(Payload(marker), protocol=2)})
    with pytest.raises(Exception, match="Unknown type name"):
        FileSource().load("tiny.pt", FileOptions(), ctx(tmp_path))
    assert not marker.exists()


def test_check_ref_reports_a_pickled_model_before_anything_runs(tmp_path: Path) -> None:
    torch.save(Tiny(), tmp_path / "full.pt")
    problem = FileSource().check_ref("full.pt", FileOptions(), tmp_path)
    assert problem is not None
    assert "holds a pickled model class" in problem and "test_security.Tiny" in problem
    assert "set options = { unsafe_pickle = true } if you trust it" in problem
    assert one_sentence(problem), problem
    assert FileSource().check_ref("full.pt", FileOptions(unsafe_pickle=True), tmp_path) is None
    torch.save(Tiny().state_dict(), tmp_path / "weights.pt")  # safe to read; load says what it is
    assert FileSource().check_ref("weights.pt", FileOptions(), tmp_path) is None


def test_validate_reports_the_pickled_model(tmp_path: Path) -> None:
    torch.save(Tiny(), tmp_path / "full.pt")
    suite = write_suite(tmp_path, """
        [suite]
        name = "pickled"

        [[models]]
        name = "tiny"
        source = "file"
        ref = "full.pt"

        [[tasks]]
        name = "digits"
        kind = "classification"
        dataset = "digits"
    """)
    proc = cli("validate", str(suite))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "models[0].ref" in proc.stderr and "holds a pickled model class" in proc.stderr


HOSTILE = ["=cmd|' /C calc'!A0", "@SUM(1)", "+1+1", "-2+3", "\tx", "\rx", "a|b", "<script>alert(1)</script>",
           "fish & chips", "plain"]


def hostile_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["m"] * len(HOSTILE),
        "method": HOSTILE,
        "accuracy": [0.5 - i / 10 for i in range(len(HOSTILE))],  # negative ones too
        "size_ratio": [-1.5] * len(HOSTILE),
    })


def test_csv_cells_cannot_start_a_formula(tmp_path: Path) -> None:
    frame = hostile_frame()
    CsvWriter().write(frame, tmp_path / "leaderboard.csv")
    with open(tmp_path / "leaderboard.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(frame.columns) and len(rows) == len(frame) + 1
    for row in rows:
        for cell in row[:2]:
            assert not cell.startswith(("=", "@", "+", "-", "\t", "\r")), row
    expected = ["'" + h if h[0] in "=@+-\t\r" else h for h in HOSTILE]
    assert [row[1] for row in rows[1:]] == [e.replace("\r", "\n") for e in expected]  # a bare CR ends a row
    numbers = [float(row[2]) for row in rows[1:]]  # negative numbers stay numbers
    assert numbers == list(frame["accuracy"]) and min(numbers) < 0
    assert {row[3] for row in rows[1:]} == {"-1.5"}


def test_markdown_cells_cannot_break_the_table_or_carry_html(tmp_path: Path) -> None:
    MarkdownWriter().write(hostile_frame(), tmp_path / "leaderboard.md")
    lines = (tmp_path / "leaderboard.md").read_text().splitlines()
    assert len(lines) == len(HOSTILE) + 2
    separators = [len(re.findall(r"(?<!\\)\|", line)) for line in lines]
    assert set(separators) == {separators[0]}, lines
    text = "\n".join(lines)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert r"a\|b" in text and "fish &amp; chips" in text


def test_compare_csv_cells_cannot_start_a_formula(tmp_path: Path) -> None:
    """`harness compare --csv` goes through the same CSV writer as the leaderboard."""
    import csv as csvmod
    import json

    from harness.result import RunResult

    from conftest import cli

    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        rows = [RunResult(run_id=m, suite="s", model="m", method=m, task="t", status="ok",
                          metrics={"accuracy": 0.9, "size_mb": 1.0}) for m in ("baseline", "=cmd|' /C calc'!A0")]
        (tmp_path / side / "results.jsonl").write_text("".join(json.dumps(r.to_row()) + "\n" for r in rows))
    out = tmp_path / "cmp.csv"
    proc = cli("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--csv", str(out))
    assert proc.returncode == 0, proc.stderr
    with out.open() as fh:
        cells = [cell for row in csvmod.reader(fh) for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells and not any(c.startswith(("=", "@", "+")) for c in cells)
