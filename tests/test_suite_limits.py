"""Issue 12: every bad input is one clear problem (file, key path, fix), never a traceback,
a hang or a failure at run time: non-finite and oversized numbers, reserved and malformed
names, unknown countries, huge sweeps, undecodable or deeply nested files, bad outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import MeasureConfig, SuiteConfig
from harness.params import build
from harness.plugins import load_plugins
from harness.suite import SuiteError, load_suite
from harness.suite.checker import Checker

from conftest import ROOT, cli, digits_suite, write_suite


def problems_of(path: Path) -> str:
    with pytest.raises(SuiteError) as caught:
        load_suite(path, load_plugins())
    return "\n".join(caught.value.problems)


# --- item 13: finite numbers in range ------------------------------------------------

@pytest.mark.parametrize("suite, measure, fragment", [
    ("timeout_s = nan", "", "suite.timeout_s: expected a finite number, got nan"),
    ("timeout_s = inf", "", "suite.timeout_s: expected a finite number, got inf"),
    ("accuracy_gate = nan", "", "suite.accuracy_gate: expected a finite number, got nan"),
    ("", "warmup_s = inf", "measure.warmup_s: expected a finite number, got inf"),
    ("", "min_time_s = nan", "measure.min_time_s: expected a finite number, got nan"),
    ("", "max_time_s = nan", "measure.max_time_s: expected a finite number, got nan"),
    ("", "sustained_s = -inf", "measure.sustained_s: expected a finite number, got -inf"),
    ("", "price_per_hour = inf", "measure.price_per_hour: expected a finite number, got inf"),
])
def test_non_finite_numbers_are_refused(tmp_path: Path, suite: str, measure: str, fragment: str) -> None:
    path = digits_suite(tmp_path, "finite", suite=suite, measure=f"[measure]\n{measure}\n")
    assert fragment in problems_of(path)


@pytest.mark.parametrize("suite, measure, fragment", [
    ("", "batch_sizes = [1, 9223372036854775807]", "batch_sizes: 9223372036854775807 is over 65536"),
    ("timeout_s = 1e9", "", "timeout_s 1000000000.0 is over 7 days (604800 s)"),
    ("", "max_time_s = 1e9", "max_time_s 1000000000.0 is over 3600 s"),
    ("", "warmup_s = 1e9", "warmup_s 1000000000.0 is over 3600 s"),
    ("", "sustained_s = 1e9", "sustained_s 1000000000.0 is over 3600 s"),
    ("", "min_iterations = 9223372036854775807", "min_iterations 9223372036854775807 is over 1000000"),
    ("", "threads = 100000", "threads 100000 is over 4096"),
    ("seed = -1", "", "seed -1 must be in 0..4294967295"),
])
def test_sizes_are_bounded(tmp_path: Path, suite: str, measure: str, fragment: str) -> None:
    path = digits_suite(tmp_path, "bounded", suite=suite, measure=f"[measure]\n{measure}\n")
    assert fragment in problems_of(path)


def test_method_params_and_task_configs_refuse_non_finite_numbers(tmp_path: Path) -> None:
    path = digits_suite(tmp_path, "params", methods="""
        [[methods]]
        name = "m-{amount}"
        use = "prune.magnitude"
        sweep = { amount = [0.5, nan] }

        [[methods]]
        use = "prune.magnitude"
        params = { amount = inf }

        [[tasks]]
        name = "lm"
        kind = "lm-eval"
        task = "x"
        limit = nan
        """)
    problems = problems_of(path)
    assert "methods[0].params.amount: expected a finite number, got nan" in problems
    assert "methods[1].params.amount: expected a finite number, got inf" in problems
    assert "tasks[1].limit: expected a finite number, got nan" in problems


def test_build_refuses_non_finite_floats_in_every_float_shape() -> None:
    @dataclass
    class P:
        x: float = 0.0
        y: float | None = None
        z: list[float] | None = None

    problems: list[str] = []
    assert build(P, {"x": float("nan"), "y": float("inf"), "z": [1.0, float("-inf")]}, "p", problems) is None
    assert problems == ["p.x: expected a finite number, got nan",
                        "p.y: expected a finite number, got inf",
                        "p.z: expected a finite number, got [1.0, -inf]"]
    assert build(P, {"x": 1, "y": 2.5, "z": [3]}, "p", []) == P(1.0, 2.5, [3.0])


def test_configs_made_in_code_check_finiteness_too() -> None:
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        SuiteConfig("x", timeout_s=float("nan"))
    with pytest.raises(ValueError, match="max_time_s"):
        MeasureConfig(max_time_s=float("inf"))


# --- item 14: names and countries ------------------------------------------------------

@pytest.mark.parametrize("method", ['name = "baseline"\nuse = "prune.magnitude"', 'use = "baseline"'])
def test_a_method_named_baseline_is_refused(tmp_path: Path, method: str) -> None:
    path = digits_suite(tmp_path, "reserved", methods=f"[[methods]]\nuse = \"quant.int8-dynamic\"\n"
                                                       f"[[methods]]\n{method}\n")
    assert ("methods[1].name: 'baseline' is reserved: the baseline runs for every (model, task) "
            "without being listed") in problems_of(path)


@pytest.mark.parametrize("body, fragment", [
    ('[suite]\nname = "nl\\n"\n', "suite: name 'nl\\n' must be letters"),
    ('[suite]\nname = "ok"\n[[models]]\nname = "m\\n"\nsource = "builtin"\nref = "digits-mlp"\n',
     "models[0].name: 'm\\n' must be letters"),
    ('[suite]\nname = "ok"\n[[models]]\nname = "m"\nsource = "builtin"\nref = "digits-mlp"\n'
     '[[tasks]]\nname = "t\\n"\nkind = "classification"\ndataset = "digits"\n',
     "tasks[0].name: 't\\n' must be letters"),
    (f'[suite]\nname = "{"a" * 300}"\n', "is 300 characters long; use at most 100"),
    (f'[suite]\nname = "ok"\n[[models]]\nname = "{"m" * 101}"\nsource = "builtin"\nref = "digits-mlp"\n',
     "models[0].name: 'mmm"),
])
def test_names_are_whole_matches_and_short(tmp_path: Path, body: str, fragment: str) -> None:
    assert fragment in problems_of(write_suite(tmp_path, body))


def test_a_long_model_name_says_how_long(tmp_path: Path) -> None:
    body = f'[suite]\nname = "ok"\n[[models]]\nname = "{"m" * 101}"\nsource = "builtin"\nref = "digits-mlp"\n'
    assert "is 101 characters long; use at most 100" in problems_of(write_suite(tmp_path, body))


@pytest.mark.parametrize("code, fragment", [
    ("ZZZ", "carbon_country 'ZZZ' is not an ISO 3166 alpha-3 code with carbon data; valid choices: ZAF, ZMB, ZWE"),
    ("UAS", "carbon_country 'UAS' is not an ISO 3166 alpha-3 code with carbon data; did you mean 'USA'?"),
    ("usa", "carbon_country 'usa' must be an ISO 3166 alpha-3 code such as 'USA'"),
])
def test_unknown_countries_are_refused_with_the_nearest(tmp_path: Path, code: str, fragment: str) -> None:
    path = digits_suite(tmp_path, "country", measure=f'[measure]\ncarbon_country = "{code}"\n')
    assert fragment in problems_of(path)


def test_known_countries_pass_without_importing_codecarbon() -> None:
    code = ("import sys\nfrom harness.config import MeasureConfig\n"
            "for c in ('USA', 'DEU', 'FRA', 'IND'): MeasureConfig(carbon_country=c)\n"
            "assert 'codecarbon' not in sys.modules, 'codecarbon imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# --- item 15: big sweeps ---------------------------------------------------------------

_VALUES = "[" + ", ".join(f"0.{i:02d}" for i in range(100)) + "]"
HUGE_SWEEP = f"""
[[methods]]
name = "m-{{0.amount}}-{{1.amount}}-{{2.amount}}-{{3.amount}}"
steps = [{{ use = "prune.magnitude" }}, {{ use = "prune.magnitude" }},
         {{ use = "prune.magnitude" }}, {{ use = "prune.magnitude" }}]
sweep = {{ "0.amount" = {_VALUES}, "1.amount" = {_VALUES}, "2.amount" = {_VALUES}, "3.amount" = {_VALUES} }}
"""


def test_a_huge_sweep_is_counted_and_refused_before_it_is_expanded(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from harness.suite import methods

    expanded = []
    monkeypatch.setattr(methods, "itertools", SimpleNamespace(product=lambda *a: expanded.append(a) or iter(())))
    path = digits_suite(tmp_path, "huge", methods=HUGE_SWEEP)
    problems = problems_of(path)
    assert expanded == []  # counted, not expanded
    assert "methods[0].sweep: 100000000 points is over the limit of 10000; narrow the sweep" in problems


def test_max_runs_bounds_sweeps_and_the_whole_plan(tmp_path: Path) -> None:
    methods = """
        [[methods]]
        use = "quant.int8-dynamic"

        [[methods]]
        name = "m-{amount}"
        use = "prune.magnitude"
        sweep = { amount = [0.1, 0.2, 0.3, 0.4] }
        """
    path = digits_suite(tmp_path, "limited", suite="max_runs = 4", methods=methods)
    assert ("methods[1].sweep: 4 points is over the limit of 4 (1 method(s) before it); "
            "narrow the sweep") in problems_of(path)
    path = digits_suite(tmp_path, "limited", suite="max_runs = 5", methods=methods)
    assert "the plan has 6 runs" in problems_of(path)
    path = digits_suite(tmp_path, "limited", suite="max_runs = 6", methods=methods)
    assert len(load_suite(path, load_plugins()).methods) == 5
    path = digits_suite(tmp_path, "limited", suite="max_runs = 0")
    assert "suite: max_runs 0 must be in 1..1000000" in problems_of(path)


def test_uniqueness_is_linear() -> None:
    checker = Checker(Path("s.toml"), None)
    names = [f"n{i}" for i in range(200_000)] + ["n7", "n7", "n9"]
    start = time.perf_counter()
    checker.unique(names, "methods")
    assert time.perf_counter() - start < 30  # a hang guard: quadratic would take hours here, linear ~0.1 s
    assert sorted(checker.problems) == ["methods: name 'n7' is used more than once",
                                        "methods: name 'n9' is used more than once"]


# --- item 16: unreadable files and outputs ---------------------------------------------

def test_a_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[suite]\nname = "caf\xe9"\n')
    assert "not valid UTF-8 at byte 19 (line 2); save the file as UTF-8" in problems_of(path)
    proc = cli("validate", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not valid UTF-8 at byte 19" in proc.stderr


def test_a_deeply_nested_file_is_one_problem(tmp_path: Path) -> None:
    path = write_suite(tmp_path, '[suite]\nname = "deep"\nx = ' + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in problems_of(path)
    proc = cli("validate", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nested too deeply" in proc.stderr


def test_moderately_nested_values_are_refused_too(tmp_path: Path) -> None:
    path = write_suite(tmp_path, '[suite]\nname = "deep"\nx = ' + "[" * 200 + "]" * 200 + "\n")
    assert "suite.x: nested too deeply (over 32 levels)" in problems_of(path)


def _results(directory: Path) -> Path:
    directory.mkdir()
    row = {"run_id": "a", "suite": "s", "model": "m", "method": "baseline", "task": "t", "status": "ok",
           "metrics": {"accuracy": 0.9}, "provenance": {"accuracy": "measured"}, "spec": {"accuracy_gate": 0.99}}
    (directory / "results.jsonl").write_text(json.dumps(row) + "\n")
    return directory


def test_report_output_that_cannot_be_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    results = _results(tmp_path / "results")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for output, fragment in [(a_file, "is a file"), (a_file / "sub", "is a file"),
                             (Path("/proc/harness-report"), "cannot")]:
        proc = cli("report", str(results), "-o", str(output))
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), proc.stderr
        assert fragment in proc.stderr and "-o" in proc.stderr


def test_table_outputs_that_are_directories_are_usage_errors(tmp_path: Path) -> None:
    results = _results(tmp_path / "results")
    for args in (["leaderboard", str(results), "--csv", str(tmp_path)],
                 ["leaderboard", str(results), "--markdown", str(tmp_path)],
                 ["leaderboard", str(results), "--csv", str(tmp_path / "no" / "such" / "t.csv")],
                 ["compare", str(results), str(results), "--csv", str(tmp_path)]):
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), proc.stderr
        assert args[-2] in proc.stderr


def test_report_still_writes_into_a_new_directory(tmp_path: Path) -> None:
    results = _results(tmp_path / "results")
    proc = cli("report", str(results), "-o", str(tmp_path / "out" / "deeper"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "deeper" / "report.html").exists()


def test_baseline_with_an_unknown_method_is_still_reserved(tmp_path: Path) -> None:
    path = digits_suite(tmp_path, "reserved", methods='[[methods]]\nname = "baseline"\nuse = "nope"\n')
    problems = problems_of(path)
    assert "methods[0].name: 'baseline' is reserved" in problems
    assert "methods[0].use: unknown method 'nope'" in problems
