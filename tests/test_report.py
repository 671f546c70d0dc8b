"""The published report: report.html (self-contained, escaped, plots per model and task,
curated tables, what to ship first) and report.md with its SVG plots. Rows are made here, no
bench runs; tests/test_report_browser.py renders the page in Chromium."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import cli

ESTIMATED = ("estimated: no CPU energy counters readable (no RAPL); this process's CPU load × TDP; "
             "over a 3.0 s sustained window of {n} inferences at batch 8")
ENV = {"harness": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7", "cpu": "Test CPU 9000", "cpu_count": 2,
       "cpu_affinity": 2, "torch_threads": 1, "os": "Linux", "device": "cpu", "gpu_state": {"absent": "no GPU"}}


def make_row(method: str, *, model: str = "mlp", task: str = "digits", suite: str = "demo", status: str = "ok",
             accuracy: float = 0.95, latency_ms: float = 0.10, size_mb: float = 1.0, energy: float = 0.5,
             noisy: bool = False, info: dict | None = None, error: str | None = None, env: dict | None = None,
             ci: float = 0.01, started: str = "2026-01-02T10:00:00+00:00") -> dict:
    """A result row shaped like the worker's: metrics with per-batch latency and CIs,
    provenance, steps with info, env and spec."""
    run_id = f"{suite}-{model}-{method}-{task}"[:60]
    row = {"run_id": run_id, "suite": suite, "model": model, "method": method, "task": task, "status": status,
           "device": "cpu", "started_at": started, "duration_s": 3.0, "env": copy.deepcopy(env or ENV),
           "spec": {"accuracy_gate": 0.99, "model": {"name": model, "source": "builtin", "ref": model}},
           "steps": [{"use": "quant.int8-dynamic" if method != "baseline" else "baseline", "params": {"bits": 8},
                      "apply_s": 0.01, "info": info if info is not None else
                      {"layers_touched": 3, "bits_per_weight": 8, "kernels": "real (fbgemm int8 GEMM)",
                       "library": "torch 2.13.0"}}]}
    if error:
        row["error"] = error
    if status != "ok":
        return row
    lo, hi = latency_ms * (1 - ci), latency_ms * (1 + ci)
    batch8 = latency_ms * 4
    row["metrics"] = {
        "accuracy": accuracy, "accuracy_stderr": 0.005, "latency_ms_p50": latency_ms, "latency_ms_p99": latency_ms * 2,
        "throughput_sps": 8 * 1000 / batch8, "size_mb": size_mb, "params": 85002, "sparsity": 0.0,
        "peak_mem_mb": 300.0, "energy_j_per_1k": energy, "co2_g_per_1k": energy / 1e4, "compress_s": 0.01,
        "compress_energy_j": 0.2, "timing_noisy": noisy,
        "latency": {"1": {"p50_ms": latency_ms, "median_ms": latency_ms, "ci95_ms": [lo, hi], "noisy": noisy},
                    "8": {"p50_ms": batch8, "median_ms": batch8, "ci95_ms": [batch8 * (1 - ci), batch8 * (1 + ci)],
                          "noisy": False}},
    }
    row["provenance"] = {
        "accuracy": "measured: the classification task's evaluation",
        "latency_ms_p50": "measured: perf_counter_ns; median at batch 1",
        "energy_j_per_1k": ESTIMATED.format(n=1000 + len(method)),
        "co2_g_per_1k": "estimated: grid average for DEU",
        "timing_noisy": "measured: a batch size's timing missed ci_target or never settled: " + ("1" if noisy else "none"),
        "cost_usd_per_1m": "absent: measure.price_per_hour is 0",
    }
    return row


def demo_rows(suite: str = "demo") -> list[dict]:
    rows = []
    for model, scale in (("mlp", 1.0), ("cnn", 3.0)):
        rows += [
            make_row("baseline", model=model, suite=suite, accuracy=0.95, latency_ms=0.10 * scale, size_mb=1.0 * scale,
                     info={"changed": "nothing", "kernels": "real"}),
            make_row("int8", model=model, suite=suite, accuracy=0.948, latency_ms=0.08 * scale, size_mb=0.27 * scale,
                     energy=0.4),
            make_row("prune-a-very-long-method-name-0.9", model=model, suite=suite, accuracy=0.60,
                     latency_ms=0.09 * scale, noisy=True,
                     info={"layers": ["a", "b"], "sparsity_pruned_tensors": 0.9,
                           "kernels": "simulated (zeros in dense tensors)", "library": "torch.nn.utils.prune"}),
        ]
    rows.append(make_row("gptq", suite=suite, status="skipped", error="quant.gptq: needs CUDA\ndetails here"))
    rows.append(make_row("<b>bold</b>&x", suite=suite, status="failed",
                         error="RuntimeError: <script>alert(1)</script>\nTraceback (most recent call last): ..."))
    return rows


def write_results(root: Path, rows: list[dict]) -> Path:
    for suite in {r["suite"] for r in rows}:
        directory = root / suite
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "results.jsonl", "a") as fh:
            for r in rows:
                if r["suite"] == suite:
                    fh.write(json.dumps(r) + "\n")
    return root


class Tables(HTMLParser):
    """Each <table> of a page as rows of cell texts (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.depth = 0
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self.cell = []
        elif tag == "details" and self.cell is not None:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "details" and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.cell is not None and not self.depth:
            self.cell.append(data)


def tables_of(html: str) -> list[list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = write_results(tmp_path_factory.mktemp("results"), demo_rows())
    out = tmp_path_factory.mktemp("report")
    proc = cli("report", str(root), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_report_directory_has_html_markdown_plots_and_tables(report: Path) -> None:
    names = sorted(p.name for p in report.iterdir())
    assert names == ["leaderboard.csv", "leaderboard.md", "plot-cnn-digits.svg", "plot-mlp-digits.svg",
                     "report.html", "report.md"]
    html = (report / "report.html").read_text()
    assert html.count("<svg") == 2 and "<script" not in html.lower() and "<link" not in html
    assert not re.search(r"(src|href)=\"?(https?:)?//", html)  # nothing fetched
    assert "Compression benchmark: demo" in html and "2026-01-02 10:00" in html and "harness 0.1.0" in html
    assert "0.99 × its primary metric" in html and "Test CPU 9000, 2 cores, 1 torch threads, no GPU" in html


def test_the_leaderboard_tables_are_curated(report: Path) -> None:
    html = (report / "report.html").read_text()
    boards = [t for t in tables_of(html) if t[0][:3] == ["#", "Method", "Holds"]]
    full = [t for t in tables_of(html) if t[0][:2] == ["#", "Method"] and t not in boards]
    assert len(boards) == 2 and len(full) == 2  # every column: folded under the curated table
    assert html.count("<details><summary>All ") == 2
    for table in boards:
        header, body = table[0], table[1:]
        assert [row[1] for row in body] == ["int8", "baseline", "prune-a-very-long-method-name-0.9"]
        assert header == ["#", "Method", "Holds", "Accuracy %", "Kept ×", "Speed-up ×", "p50 ms", "Samples/s",
                          "Size MB", "Smaller ×", "J / 1k inf."]
        for i, name in enumerate(header):
            assert any(row[i] for row in body), f"empty column {name}"
        assert [row[header.index("Holds")] for row in body] == ["yes", "yes", "no"]
        assert body[1][header.index("Accuracy %")] == "95.00 ± 0.50"
    for table in full:
        assert "Cost ($ / 1M inf.)" not in table[0] and "Peak memory (MB)" in table[0]  # no data, no column
    # estimated and noisy cells: marked, the provenance on hover and in a footnote
    assert re.search(r'<abbr title="estimated: no CPU energy counters[^"]*">0\.4<sup>\*</sup></abbr>', html)
    assert re.search(r'<abbr title="measured: a batch size&#x27;s timing missed ci_target[^"]*: 1">[^<]+<sup>~</sup>', html)
    notes = html[html.index('id="notes"'):]
    assert "Energy (J / 1k inf.): estimated: no CPU energy counters readable (no RAPL)" in notes
    assert "details vary per run" in notes and "noisy" in notes


def test_methods_machines_and_unfinished_runs(report: Path) -> None:
    html = (report / "report.html").read_text()
    methods = next(t for t in tables_of(html) if t[0][:3] == ["Model", "Method", "Steps"])
    int8 = next(row for row in methods if row[1] == "int8")
    assert int8[2] == "quant.int8-dynamic(bits=8)" and "3 layers, 8 bits/weight" in int8[3]
    assert int8[4].startswith("real") and int8[5] == "torch 2.13.0" and int8[6] == "0.01"
    pruned = next(row for row in methods if row[1].startswith("prune"))
    assert "2 layers, sparsity 90.0%" in pruned[3] and pruned[4].startswith("simulated")
    machines = next(t for t in tables_of(html) if t[0][0] == "CPU")
    assert machines[1][:3] == ["Test CPU 9000", "2", "1"] and machines[1][3] == "none"
    unfinished = html[html.index('id="unfinished"'):html.index('id="notes"')]
    assert unfinished.count("<details>") == 2 and "quant.gptq: needs CUDA" in unfinished
    assert "status-skipped" in unfinished and "status-failed" in unfinished


def test_everything_a_user_wrote_is_escaped(report: Path) -> None:
    html = (report / "report.html").read_text()
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;&amp;x" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = (report / "report.md").read_text()
    assert "<b>bold" not in markdown and "<script>alert" not in markdown


def test_markdown_report_links_its_plots(report: Path) -> None:
    markdown = (report / "report.md").read_text()
    assert markdown.startswith("# Compression benchmark: demo")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(links) == ["plot-cnn-digits.svg", "plot-mlp-digits.svg"]
    for link in links:
        svg = (report / link).read_text()
        assert "<svg" in svg and "int8" in svg and "baseline" in svg
    table = [line for line in markdown.splitlines() if line.startswith("| 1 | int8 |")]
    assert len(table) == 2 and "0.4\\*" in table[0]  # the estimated marker, escaped
    header = markdown.splitlines()[markdown.splitlines().index("### mlp · digits") + 2]
    assert header.startswith("| # | Method | Holds | Accuracy % |")
    lengths = {line.count(" | ") for line in markdown.splitlines() if line.startswith("| ") and "int8" in line}
    assert len(lengths) <= 2  # leaderboard rows and methods rows, each consistent


def test_numbers_read_as_people_write_them() -> None:
    from harness.report.columns import number, numbers

    assert [number(v) for v in (0.0913, 0.385, 1.04, 12.34, 301.07, 14440.2, 2.6e-6, 0.0)] == \
        ["0.0913", "0.385", "1.04", "12.3", "301", "14,440", "2.60e-06", "0"]
    # one notation per column: no 2.70e-04 beside 0.00278, no 4.63e-05 s of compression time
    assert numbers([0.00278, 2.7e-4, 1.0, None, 4.63e-05]) == ["0.00278", "< 0.001", "1.00", "", "< 0.001"]
    assert numbers([2.7e-4, 3.1e-5]) == ["2.70e-04", "3.10e-05"]  # all tiny: scientific, all alike


def test_what_to_ship_comes_first_and_answers_per_model_and_task(report: Path) -> None:
    html = (report / "report.html").read_text()
    ship = html[html.index('id="ship"'):html.index('id="leaderboard"')]
    assert html.index('id="ship"') < html.index("<table")
    cards = ship.split('<section class="card">')[1:]
    assert [re.search(r"<h3>([^<]+)</h3>", c).group(1) for c in cards] == ["cnn · digits", "mlp · digits"]
    for card in cards:
        assert "baseline 95.00 %" in card
        assert re.search(r"ship</span> <b>int8</b>: 3\.70× smaller, 1\.[23]× faster, quality holds: 94\.80 % vs "
                         r"95\.00 % \(point estimate only", card)
        assert "loses quality</span> <b>prune-a-very-long-method-name-0.9</b>: 60.00 % vs 95.00 %" in card
        anchor = re.search(r'href="#([^"]+)">details', card).group(1)
        assert f'id="{anchor}"' in html
    assert "did not run</span> <b>gptq</b>: skipped: quant.gptq: needs CUDA" in cards[1]
    markdown = (report / "report.md").read_text()
    assert markdown.index("## What to ship") < markdown.index("## Leaderboard")
    assert "- ship **int8**: 3.70× smaller" in markdown


def test_a_model_whose_methods_all_skipped_gets_no_plot_and_keeps_the_baseline(tmp_path: Path) -> None:
    rows = [make_row("baseline", model="lonely"),
            make_row("gptq", model="lonely", status="skipped", error="quant.gptq: needs CUDA"),
            make_row("baseline", model="pair"), make_row("fp16", model="pair", accuracy=0.5, size_mb=0.5)]
    root = write_results(tmp_path / "results", rows)
    assert cli("report", str(root), "-o", str(tmp_path / "out")).returncode == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.svg")) == ["plot-pair-digits.svg"]
    lonely = html[html.index("<h3>lonely · digits</h3>"):].split("</section>")[0]
    assert "keep the baseline" in lonely and "did not run</span> <b>gptq</b>" in lonely
    svg = (tmp_path / "out" / "plot-pair-digits.svg").read_text()
    assert "<title>fp16: Accuracy (%) 50 %" in svg  # every point names its method on hover
    assert svg.index("<title>pair · digits: Accuracy (%) against latency p50") < svg.index("<g")  # text alternative


def test_frontier_and_plot_helpers() -> None:
    from harness.report.plots import focus, frontier

    points = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 60.0)]
    assert frontier(points, x_lower=True, y_higher=True) == [(0.5, 60.0), (1.0, 90.0), (2.0, 95.0)]
    assert frontier(points, x_lower=False, y_higher=True) == [(3.0, 94.0), (2.0, 95.0)]
    assert focus([95.0, 94.0, 60.0], 95.0, True, True)[0] > 60  # the far-off point is left out
    assert focus([95.0, 94.0], 95.0, True, True) is None


def test_a_log_axis_never_carries_a_single_tick_label() -> None:
    from matplotlib.figure import Figure

    from harness.report.plots import _log_axis

    for lo, hi in ((0.3, 4.0), (90.0, 1100.0), (9.0, 80.0)):
        ax = Figure().subplots()
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        _log_axis(ax.xaxis)
        ax.figure.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
        assert len(labels) >= 2, (lo, hi, labels)


def test_without_matplotlib_the_report_has_no_plots_but_says_why(tmp_path: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    root = write_results(tmp_path / "results", demo_rows())
    proc = cli("report", str(root / "demo"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0 and "pip install 'compression-harness[report]'" in proc.stderr
    assert "<svg" not in (tmp_path / "out" / "report.html").read_text()


def test_methods_named_scheme_and_toolkit_get_a_table_by_scheme(tmp_path: Path) -> None:
    """suites/toolkits.toml's naming (<scheme>:<toolkit>): a row per scheme, a column per
    toolkit, each cell what that run kept, weighed and ran; skipped runs say so; a suite
    without such names gets no such table (the demo report above)."""
    rows = [make_row("baseline", info={"kernels": "real"}),
            make_row("int8-weights:nncf", accuracy=0.95, size_mb=0.25, latency_ms=0.2,
                     info={"bits_per_weight": 8, "kernels": "simulated (decompressed)"}),
            make_row("int8-weights:quanto", accuracy=0.94, size_mb=0.26, latency_ms=0.05),
            make_row("int4-weights:quanto", accuracy=0.93, size_mb=0.14),
            make_row("int4-weights:llmcompressor", status="skipped", error="llmcompressor.oneshot: not a transformers model")]
    rows[1]["metrics"]["kernels"], rows[2]["metrics"]["kernels"] = "simulated", "real"  # as the profiler found
    root = write_results(tmp_path / "results", rows)
    assert cli("report", str(root), "-o", str(tmp_path / "out")).returncode == 0
    html = (tmp_path / "out" / "report.html").read_text()
    table = next(t for t in tables_of(html) if t[0][0] == "scheme")
    assert table[0] == ["scheme", "nncf", "quanto", "llmcompressor"]
    by_scheme = {row[0]: row[1:] for row in table[1:]}
    assert set(by_scheme) == {"int8-weights", "int4-weights"}
    assert by_scheme["int8-weights"][0].startswith("kept ×1.000 (yes)0.25 MB") and "simulated" in by_scheme["int8-weights"][0]
    assert by_scheme["int8-weights"][1].startswith("kept ×0.989") and by_scheme["int8-weights"][1].endswith("real")
    assert by_scheme["int4-weights"] == ["", by_scheme["int4-weights"][1], "skipped"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| int4-weights |  | kept ×0.979" in markdown and "| skipped |" in markdown


def test_a_report_without_scheme_names_has_no_scheme_table(report: Path) -> None:
    assert "By scheme" not in (report / "report.html").read_text()
