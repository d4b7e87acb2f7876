"""The report page in a real browser: headless Chromium (Debian's ``chromium``).

A probe page loads the report into an iframe of a chosen width, measures its DOM after
layout (ladder sizes and arrow counts, section order, page width, the click-to-show
panel) and writes the figures into its own DOM, which ``--dump-dom`` prints: no
DevTools protocol needed.
Chromium runs with every name mapped to NOTFOUND, so a fetch could not leave the
machine even if the page tried; the page's own Content-Security-Policy forbids it and
the static scan in test_render checks there is nothing to fetch.

Screenshots (at 500 px, headless Chromium's narrowest window) are kept as artefacts
in ``$TMPDIR/sip-harness-artefacts/report/`` (the path is printed).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.report import render_all
from harness.results import VERDICT_ORDER, RunResults, Verdict
from tests.report.builders import results_from_capture, sample_results
from tests.report.test_render import external_references

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = Path(tempfile.gettempdir()) / "sip-harness-artefacts" / "report"
DEADLINE_S = 90

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("chromium is not installed (bootstrap.sh installs Debian's chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

# The page is loaded into an iframe of the probe's width (headless Chromium will not
# make a window narrower than 500 px, a phone is 360-390 px); srcdoc keeps it in
# the probe's origin, so the probe can measure it after layout.
PROBE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body style="margin:0">
<script>
function probe(frame) {
  var doc = frame.contentDocument, win = frame.contentWindow;
  function box(el) { var r = el.getBoundingClientRect(); return {w: r.width, h: r.height}; }
  var out = {};
  out.sections = [].map.call(doc.querySelectorAll("section.record"),
                             function (s) { return s.getAttribute("data-verdict"); });
  out.ladders = [].map.call(doc.querySelectorAll("section.record"), function (s) {
    var svg = s.querySelector("svg.ladder");
    if (!svg) { return null; }
    var st = win.getComputedStyle(svg), wrap = svg.parentElement;
    return {svg: box(svg), box: box(wrap), scroll: wrap.scrollWidth, display: st.display,
            visibility: st.visibility, overflowX: win.getComputedStyle(wrap).overflowX,
            arrows: svg.querySelectorAll(".arrow").length,
            drawn: [].filter.call(svg.querySelectorAll(".arrow path"),
                                  function (p) { return p.getBBox().width > 0; }).length};
  });
  out.page = {scroll: doc.documentElement.scrollWidth, inner: win.innerWidth};
  var arrow = doc.querySelector("svg.ladder a.arrow");
  arrow.dispatchEvent(new win.MouseEvent("click", {bubbles: true, cancelable: true}));
  var panel = arrow.closest("section.record").querySelector(".msg-panel");
  var target = doc.getElementById(arrow.getAttribute("data-msg"));
  out.click = {hidden: panel.hidden, text: panel.querySelector("pre").textContent,
               opened: target.open, title: arrow.querySelector("title").textContent};
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
</script>
<iframe style="width:WIDTHpx;height:900px;border:0" onload="probe(this)" srcdoc="SRCDOC"></iframe>
</body></html>
"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, check=False)


def _probe(page: Path, tmp_path: Path, *, width: int) -> dict[str, Any]:
    probed = page.with_name(f"probe-{width}.html")
    probed.write_text(
        PROBE.replace("WIDTH", str(width)).replace("SRCDOC", html.escape(page.read_text()))
    )
    done = _chromium(
        ["--window-size=1280,1000", "--dump-dom", probed.as_uri()], tmp_path / "profile"
    )
    match = re.search(r'<pre id="probe-result">(.*?)</pre>', done.stdout, re.DOTALL)
    assert match, f"probe produced nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    assert result["page"]["inner"] == width
    return result


def _screenshot(page: Path, tmp_path: Path, name: str, *, width: int, height: int) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTEFACTS / name
    shot.unlink(missing_ok=True)
    done = _chromium(
        [f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri()],
        tmp_path / f"profile-shot-{width}",
    )
    assert shot.is_file(), f"no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    print(f"screenshot: {shot}")
    return shot


def _check(result: dict[str, Any], results: RunResults) -> None:
    order = [VERDICT_ORDER[Verdict(v)] for v in result["sections"]]
    assert order == sorted(order), result["sections"]
    assert result["sections"][0] == "fail"
    ordered = sorted(results.records, key=lambda r: VERDICT_ORDER[r.verdict])
    for record, ladder in zip(ordered, result["ladders"], strict=True):
        assert ladder is not None
        assert ladder["display"] != "none"
        assert ladder["visibility"] == "visible"
        assert ladder["svg"]["w"] > 100
        assert ladder["svg"]["h"] > 50
        assert ladder["box"]["h"] > 50
        assert ladder["arrows"] == len(record.ladder.arrows)
        assert ladder["drawn"] == len(record.ladder.arrows)
    click = result["click"]
    assert click["hidden"] is False
    assert click["opened"] is True
    assert click["text"].startswith("INVITE sip:")
    assert "→" in click["title"]


def test_real_capture_report_in_chromium(tmp_path: Path) -> None:
    results = results_from_capture()
    page = render_all(results, tmp_path / "out").index_html
    assert external_references(page.read_text()) == []
    _check(_probe(page, tmp_path, width=1200), results)
    shot = _screenshot(page, tmp_path, "capture-desktop.png", width=1200, height=1600)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


def test_phone_width_scrolls_the_ladder_not_the_page(tmp_path: Path) -> None:
    # Five participants: the ladder is far wider than a phone.
    results = sample_results(scenarios=["call", "register"], profiles=["a", "b", "c"], messages=8)
    for record in results.records:
        record.ladder.participants += ["127.0.0.3:5060", "127.0.0.4:5060", "127.0.0.5:5060"]
        record.ladder.arrows[1].dst = 4
    page = render_all(results, tmp_path / "out").index_html
    result = _probe(page, tmp_path, width=390)
    _check(result, results)
    assert result["page"]["scroll"] <= result["page"]["inner"], result["page"]
    wide = result["ladders"][0]
    assert wide["overflowX"] == "auto"
    assert wide["scroll"] > wide["box"]["w"]  # scrolls inside its box
    assert wide["box"]["w"] <= 390
    _screenshot(page, tmp_path, "narrow.png", width=500, height=1600)
