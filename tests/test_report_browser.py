"""report.html in a real browser: headless Chromium (Debian's ``chromium``) renders the
page at 1400 and 800 px; no page-level horizontal scroll, the curated tables fit without
scrolling their own box, every in-page link has its target, no two texts of a plot
overlap. A screenshot of the first screen is kept (its path is printed). Without
Chromium the test is skipped, saying how to get it."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import demo_rows, make_row, write_results

from conftest import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
         "--run-all-compositor-stages-before-draw", "--virtual-time-budget=3000"]
# Written into the DOM of a copy of the page (the report itself has no script).
PROBE = """<script>
const root = document.documentElement, out = {view: window.innerWidth, width: root.scrollWidth};
out.boxes = [...document.querySelectorAll('.scroll')].filter(e => e.offsetParent && !e.closest('details'))
  .map(e => e.scrollWidth - e.clientWidth);
out.dangling = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1))
  .filter(id => !document.getElementById(id));
out.links = document.querySelectorAll('a[href^="#"]').length;
out.overlaps = [];
for (const svg of document.querySelectorAll('svg')) {
  const boxes = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()])
    .filter(([, b]) => b.width > 0);
  boxes.forEach(([ta, a], i) => boxes.slice(i + 1).forEach(([tb, b]) => {
    if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
        Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1) out.overlaps.push([ta, tb]);
  }));
}
out.svgs = document.querySelectorAll('svg').length;
document.body.setAttribute('data-probe', JSON.stringify(out));
</script></body>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed, so report.html was not checked in a browser: "
                    "apt-get install chromium (Debian's package; `make test` does it)")
    rows = demo_rows() + [make_row("baseline", model="lonely"),
                          make_row("awq", model="lonely", status="skipped", error="quant.awq: needs CUDA")]
    root = write_results(tmp_path_factory.mktemp("results"), rows)
    out = tmp_path_factory.mktemp("report")
    proc = cli("report", str(root), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out / "report.html"


@pytest.mark.parametrize("width", [1400, 800])
def test_the_report_fits_the_page_and_its_links_resolve(page: Path, width: int) -> None:
    probe = page.with_name(f"probe-{width}.html")
    probe.write_text(page.read_text().replace("</body>", PROBE))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--window-size={width},900", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, "the probe did not run: " + dom[-300:]
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["view"] == width
    assert seen["width"] <= width, f"the page scrolls sideways at {width} px: {seen['width']} px wide"
    assert max(seen["boxes"]) <= 0, f"a table scrolls inside its box at {width} px: {seen['boxes']}"
    assert seen["links"] >= 8 and seen["dangling"] == []
    assert seen["svgs"] == 2  # mlp and cnn; "lonely" (every method skipped) has nothing to compare
    assert seen["overlaps"] == [], f"overlapping plot texts: {seen['overlaps'][:5]}"
    shot = page.with_name(f"report-{width}.png")
    subprocess.run([CHROMIUM, *FLAGS, f"--window-size={width},900", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 20_000
    print(f"\nscreenshot of report.html's first screen at {width} px: {shot}")
