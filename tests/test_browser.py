"""The report in a real browser: headless Chromium (Debian's ``chromium``) driven by playwright.

The report is built the way a user builds it: two sweeps of the null adapter through the real
CLI (``--machine-id box-a`` and ``box-b``; variants as framework-like series, one of them
failing at build; threads 1 and 2), rows of a few more framework-like series derived from
those, a planted row whose strings hold markup and script, a prices file, then
``cnnbench report``. The page is then checked at 1366 px wide (a laptop):

* no console errors, no uncaught page errors, no request leaving the file;
* every section of ``cnnbench.report.sections.registry.section_ids()``, in order, as
  ``<section id=...>`` with an ``<h2>`` and some text (a section without data says so, it is never blank);
* every ``<img>`` decoded, with a non-zero natural size;
* no horizontal overflow, of the page or of any element not inside a scrolling container;
* ``<script>`` and HTML in result strings shown as literal text: no dialog, no planted element.

A full-page screenshot is kept in ``reports/screenshots/report-1366.png`` (git-ignored).
Without chromium or playwright the tests skip with the reason, except under CI (``CI`` set),
where they fail: CI installs both (``.ci/run`` and the ``test`` extras).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cnnbench.core.cells import Cell
from cnnbench.core.schema import append_row
from cnnbench.report.sections.registry import section_ids

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "reports" / "screenshots"
WIDTH, HEIGHT = 1366, 768
SCRIPT = "<script>alert(1)</script>"
BOLD = "<b>x</b>"
# One planted string per field, each with its own prefix so each field can be found alone.
HOSTILE = {field: f"{field}{SCRIPT}{BOLD}" for field in ("framework", "variant", "error",
                                                             "options")}

VARIANTS_TOML = """\
[[variant]]
name = "slow"
framework = "null"
description = "a 0.5 ms step: a framework-like series"
[variant.options]
step_s = 0.0005

[[variant]]
name = "broken"
framework = "null"
description = "fails at build: a cell that did not run"
[variant.options]
fault = "raise"
"""

PRICES_TOML = """\
[[machine]]
match = "box-a"
price_usd = 1500
hourly_usd = 0.20
label = "small box"

[[machine]]
match = "box-b"
price_usd = 3200
hourly_usd = 0.55
label = "big box"
"""


# ---------------------------------------------------------------- finding the browser

def _missing(reason: str) -> None:
    """Skip, except under CI, where the browser is part of the test setup and must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: .ci/run installs chromium, tox the test extras)",
                    pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    found = os.environ.get("CNNBENCH_CHROMIUM") or shutil.which("chromium")
    if found and os.access(found, os.X_OK):
        return found
    return None


# ---------------------------------------------------------------- building the report

def _cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _sweep(results: Path, machine: str, variants: str, cwd: Path) -> subprocess.Popen[str]:
    return _cli("run", "--frameworks", "null", "--variants", variants,
                "--variants-file", str(cwd / "variants.toml"), "--workloads", "lenet5,resnet20",
                "--modes", "train,infer", "--batch-sizes", "8", "--threads", "1,2",
                "--budget", "0.15", "--no-noise-check", "--no-progress",
                "--results-dir", str(results), "--machine-id", machine, "--run-id", "sweep",
                cwd=ROOT)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _cell_id(r: dict[str, Any]) -> str:
    return Cell(r["framework"], r["variant"], r["device"], r["workload"], r["mode"],
                int(r["batch_size"]), r["precision"], r["exec_mode"], r["threads"],
                dict(r["options"] or {}), int(r["repeat"])).cell_id


def _slower(r: dict[str, Any], factor: float, **changes: Any) -> dict[str, Any]:
    """A measured row as another series would have measured it: every step ``factor`` times
    as long (raw samples kept), so its statistics stay consistent with its samples."""
    out = json.loads(json.dumps(r))
    out.update(changes)
    out["samples_s"] = [s * factor for s in r["samples_s"]]
    out["median_step_s"] = r["median_step_s"] * factor
    for k in ("images_per_s", "ci95_low", "ci95_high", "achieved_flops_per_s"):
        if out.get(k) is not None:
            out[k] = r[k] / factor
    if out.get("mfu") is not None:
        out["mfu"] = r["mfu"] / factor
    out["cell_id"] = _cell_id(out)
    return out


# Framework-like series derived from the measured null rows: (framework, exec_mode, factor).
SERIES = (("pytorch", "eager", 1.6), ("pytorch", "compiled", 1.1), ("jax", "jit", 0.8))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of two machines' sweeps, with derived series, hostile rows and prices."""
    tmp = tmp_path_factory.mktemp("browser")
    results = tmp / "results"
    variants = tmp / "variants.toml"
    variants.write_text(VARIANTS_TOML)
    prices = tmp / "prices.toml"
    prices.write_text(PRICES_TOML)
    # The two machines' sweeps run side by side (most of this module's time); the failing
    # variant runs on box-a only.
    procs = [_sweep(results, "box-a", "default,slow,broken", tmp),
             _sweep(results, "box-b", "default,slow", tmp)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        # --strict is not given, so the broken variant's cells do not fail the sweep
        assert p.returncode == 0, out
    for machine in ("box-a", "box-b"):
        rows = _rows(results / machine / "sweep.jsonl")
        assert {r["status"] for r in rows} == ({"ok", "error"} if machine == "box-a"
                                               else {"ok"}), rows
        measured = [r for r in rows if r["status"] == "ok" and r["mode"] != "peak"
                    and r["variant"] == "default"]
        for fw, exec_mode, factor in SERIES:
            for r in measured:
                append_row(results / machine / "series.jsonl",
                           _slower(r, factor, framework=fw, exec_mode=exec_mode,
                                   framework_version="1.0", run_id="series"))
    # The planted rows: one ok, one failed, on box-a, with markup in every string field
    # a user could have typed (a variant's name, its options, a framework's error message).
    rows = _rows(results / "box-a" / "sweep.jsonl")
    ok = next(r for r in rows if r["status"] == "ok" and r["mode"] == "infer")
    bad = next(r for r in rows if r["status"] == "error")
    for r, error in ((ok, None), (bad, HOSTILE["error"])):
        planted = dict(r, framework=HOSTILE["framework"], variant=HOSTILE["variant"],
                       options={"note": HOSTILE["options"]}, error=error, run_id="planted")
        planted["cell_id"] = _cell_id(planted)
        append_row(results / "box-a" / "planted.jsonl", planted)
    html = tmp / "out" / "index.html"
    p = _cli("report", str(results), "-o", str(html), "--prices", str(prices), cwd=ROOT)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    return html


# ---------------------------------------------------------------- the browser

class Opened:
    """A page with the report loaded, and what the browser said while loading it."""

    def __init__(self, browser: Any, html: Path) -> None:
        self.console: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}")
                     if m.type in ("error", "assert") else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(html.as_uri(), wait_until="load")
        # Lazily loaded images load once near the viewport: scroll through the page.
        self.page.evaluate("""async () => {
            for (let y = 0; y < document.body.scrollHeight; y += window.innerHeight) {
                window.scrollTo(0, y);
                await new Promise(r => requestAnimationFrame(r));
            }
            window.scrollTo(0, 0);
            await Promise.all(Array.from(document.images, i => i.decode().catch(() => null)));
        }""")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; it is in the test extras)")
    exe = chromium_path()
    if exe is None:
        _missing("no chromium on PATH (Debian: apt-get install chromium) "
                 "and CNNBENCH_CHROMIUM not set")
    with sync_playwright() as p:
        try:
            # The system's chromium; playwright never downloads a browser of its own here.
            b = p.chromium.launch(executable_path=exe, headless=True)
        except Error as exc:
            _missing(f"chromium at {exe} would not start: {str(exc).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def opened(browser: Any, report: Path) -> Iterator[Opened]:
    o = Opened(browser, report)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    o.page.screenshot(path=str(SCREENSHOTS / f"report-{WIDTH}.png"), full_page=True)
    yield o
    o.page.close()


# ---------------------------------------------------------------- the checks

def test_no_console_errors_page_errors_or_requests_leaving_the_file(opened: Opened,
                                                                    report: Path) -> None:
    assert opened.console == []
    assert opened.errors == []
    assert opened.dialogs == []
    # Self-contained: only the file itself (and data: URIs, which make no request).
    leaving = [u for u in opened.requests if u != report.as_uri() and not u.startswith("data:")]
    assert leaving == []


def test_every_section_present_in_order_with_a_heading(opened: Opened) -> None:
    found = opened.page.evaluate("""(ids) => ids.map(id => {
        const s = document.getElementById(id);
        if (!s || s.tagName !== 'SECTION') return {id, section: false};
        const h2 = Array.from(s.querySelectorAll('h2')).find(h => h.closest('section') === s);
        const text = s.innerText.replace(h2 ? h2.innerText : '', '').trim();
        return {id, section: true, heading: h2 ? h2.innerText.trim() : '', text: text.length,
                top: s.getBoundingClientRect().top + window.scrollY};
    })""", list(section_ids()))
    missing = [f["id"] for f in found if not f["section"]]
    assert missing == [], f"no <section id=...> for {missing}"
    assert [f["id"] for f in found if not f["heading"]] == [], "sections without an <h2>"
    assert [f["id"] for f in found if f["text"] == 0] == [], "blank sections (say 'no data')"
    tops = [f["top"] for f in found]
    assert tops == sorted(tops), "sections out of the registry's order"


def test_every_image_decoded_with_a_size(opened: Opened) -> None:
    images = opened.page.evaluate("""() => Array.from(document.images, i => ({
        src: i.currentSrc.slice(0, 40), complete: i.complete,
        width: i.naturalWidth, height: i.naturalHeight}))""")
    assert len(images) >= 2, "expected a chart per machine at least"  # box-a and box-b
    bad = [i for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert bad == []


def test_no_horizontal_overflow_at_laptop_width(opened: Opened) -> None:
    got = opened.page.evaluate("""() => {
        const se = document.scrollingElement, vw = se.clientWidth;
        const clips = el => {  // inside a container that scrolls or clips sideways
            for (let a = el.parentElement; a && a !== document.body && a !== se;
                 a = a.parentElement) {
                if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)
                    && a.getBoundingClientRect().right <= vw + 1) return true;
            }
            return false;
        };
        const wide = new Set(), out = [];
        for (const el of document.body.querySelectorAll('*')) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0 || (r.right <= vw + 1 && r.left >= -1)) continue;
            if (clips(el)) continue;
            wide.add(el);
            if (wide.has(el.parentElement)) continue;  // name the outermost only
            out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}`
                     + `${el.className ? '.' + String(el.className).split(' ')[0] : ''}`
                     + ` [${Math.round(r.left)}, ${Math.round(r.right)}]`);
        }
        return {scroll: se.scrollWidth, client: vw, outermost: out.slice(0, 8)};
    }""")
    assert got["outermost"] == [], f"wider than the {got['client']} px viewport"
    assert got["scroll"] <= got["client"], got


@pytest.fixture(scope="module")
def hostile(browser: Any, report: Path) -> Iterator[Opened]:
    # Its own page: <details> are opened here to read folded text, which changes the layout.
    o = Opened(browser, report)
    o.page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    yield o
    o.page.close()


def test_markup_in_results_runs_nothing_and_makes_no_element(hostile: Opened) -> None:
    assert hostile.dialogs == []
    planted = hostile.page.evaluate("""() => ({
        scripts: Array.from(document.scripts).filter(s => s.text.includes('alert(1)')).length,
        bold: Array.from(document.querySelectorAll('b')).filter(b => b.textContent === 'x')
              .length})""")
    assert planted == {"scripts": 0, "bold": 0}


@pytest.mark.parametrize("field", ["framework", "variant", "error", "options"])
def test_markup_in_results_is_shown_as_literal_text(hostile: Opened, field: str) -> None:
    text = hostile.page.evaluate("() => document.body.innerText")
    assert HOSTILE[field] in text, f"the planted {field} is not shown as text"
