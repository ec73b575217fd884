"""The leaderboard page (benchmark/report/html.py): self-contained, rows for every method and
checkpoint, sortable, embedded plots, record links; loaded in a real headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchmark.report.build import build_report


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.images: list[str] = []
        self.links: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.rows += tag == "tr"
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag in ("script", "link") and (a.get("src") or a.get("href")):
            self.external.append(a.get("src") or a.get("href"))


@pytest.fixture(scope="module")
def page(smoke_results: Path) -> Path:
    return build_report(smoke_results, "fmnist", "smoke", formats=("html",))["html"]


def test_page_is_self_contained_with_rows_plots_and_record_links(page: Path) -> None:
    text = page.read_text()
    parsed = _Page()
    parsed.feed(text)
    assert parsed.external == []                      # no network, no other files
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert len(parsed.images) >= 3
    # 2 methods x 2 checkpoints + heatmap rows (2) + 3 header rows
    assert parsed.rows == 2 * 2 + 2 + 3
    for link in parsed.links:                          # each run's record, relative
        assert link.endswith("record.json") and (page.parent / link).resolve().is_file()
    assert len(parsed.links) == 2 * 2
    assert "PGD-AT" in text and "TRADES" in text and "AutoAttack" in text
    assert text.count('class="ci">[') >= 2 * 2 * 8   # every accuracy cell shows its interval
    # the smoke records carry per-point outcomes: the paired test against PGD-AT is on the page
    assert "Paired test against PGD-AT (exact McNemar" in text and "TRADES p = " in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browser() -> str:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium for the page test (.ci/run installs it)")
        pytest.skip("Chromium not installed (Debian: apt-get install chromium)")
    return browser


def test_page_loads_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    browser = _browser()
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-1000:]
    assert dom.stdout.count("<tr") == 2 * 2 + 2 + 3   # the rows as the browser built them
    assert "PGD-AT" in dom.stdout and "sortable" in dom.stdout
    shot = tmp_path / "page.png"
    run = subprocess.run([*base, "--window-size=1280,1600", f"--screenshot={shot}",
                          page.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-1000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_published_numbers_show_when_the_dataset_matches(tmp_path: Path) -> None:
    import pandas as pd

    from benchmark.report.html import _published
    from benchmark.report.published import published_beside

    summary = pd.DataFrame({"checkpoint": ["best"], "method": ["trades"],
                            "autoattack_avg": [0.5], "autoattack_worst": [0.2]})
    section = _published(published_beside(summary, "cifar10"))
    assert "quoted, not reproduced" in section and "<td>50.0</td><td>20.0</td>" in section
    assert _published(published_beside(summary, "fmnist")) == ""


def test_attack_titles_say_their_real_steps(page: Path) -> None:
    text = page.read_text()  # the smoke preset evaluates with 2-step PGD and CW
    assert "PGD-2 avg" in text and "CW-2 avg" in text and "PGD-20" not in text


# Run at the end of the page's body: the viewport, the page's own width, and where each header
# cell of the leaderboard tables (not the heatmap) lies, written into an attribute of <html>.
_MEASURE = """(function () {
  var doc = document.documentElement;
  var out = {inner: window.innerWidth, client: doc.clientWidth, scroll: doc.scrollWidth,
             tables: []};
  document.querySelectorAll('table.sortable:not(.heat)').forEach(function (t) {
    out.tables.push(Array.from(t.tHead.rows[0].cells).map(function (th) {
      var r = th.getBoundingClientRect();
      return [th.textContent.trim(), r.left, r.right];
    }));
  });
  doc.setAttribute('data-measure', JSON.stringify(out));
})();"""


def test_headline_columns_lead_and_fit_a_1400px_window(page: Path, tmp_path: Path) -> None:
    """AutoAttack avg / worst come right after the method name and, in a 1400x900 window, end
    inside the viewport: the headline is read without scrolling sideways."""
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", f"<script>{_MEASURE}</script></body>"))
    dom = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-1000:]
    found = re.search(r'data-measure="([^"]*)"', dom.stdout)
    assert found, dom.stdout[:500]
    measure = json.loads(html.unescape(found.group(1)))
    assert measure["inner"] == 1400
    assert len(measure["tables"]) == 2                    # best and last checkpoint
    for heads in measure["tables"]:
        assert [name for name, _, _ in heads[:3]] == ["Method", "AutoAttack avg",
                                                       "AutoAttack worst"]
        for name, left, right in heads[:3]:
            assert 0 <= left < right <= measure["client"], (name, left, right, measure)
    assert measure["scroll"] <= measure["client"]        # the page itself never scrolls sideways
