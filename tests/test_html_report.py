"""report.html: written by every gate run, self-contained, and checked in a real browser (headless Chromium) for what a
person sees: no console error (a network request would be one: the page's CSP refuses them), the pictures shown, the
filters changing the rows on screen, a screenshot that is not blank (tiny model)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.cli import main
from harness.pipeline import run
from harness.results import load
from reports.html import render_html, word_diff
from tests.helpers import TEXT_ROWS, write_config, write_jsonl

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on PATH: `apt-get install -y chromium` (Debian; `make test` and .ci/run install it)",
)


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory, tiny_base, tiny_damage_adapter):
    """One tiny-model gate run (perplexity fails, regression's answers and length_drift pass) and its report dir."""
    root = tmp_path_factory.mktemp("html")
    data = write_jsonl(root / "eval.jsonl", TEXT_ROWS)
    extra = "\n[gates.regression]\nitems = 20\nmax_items = 0\nmax_new_tokens = 8\n"
    extra += "\n[gates.length_drift]\nitems = 20\nmax_new_tokens = 8\n"
    cfg = write_config(
        root / "release.toml", base=str(tiny_base.dir), adapter=tiny_damage_adapter, data=data,
        cache_dir=root / "cache", extra=extra, min_relative_improvement=0.0,
    )  # fmt: skip
    return run(cfg, root / "out")


class Page(HTMLParser):
    """What a dumped DOM shows: the body's attributes, and per items table its rows on screen and its counter."""

    def __init__(self, dom: str):
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.visible: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.counter: dict[str, str] = {}
        self.images: list[str] = []
        self._gate: str | None = None
        self._in_counter = False
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "section" and "items" in cls:
            self._gate = a["data-gate"]
        elif tag == "tr" and "item" in cls and self._gate:
            self.rows[self._gate] = self.rows.get(self._gate, 0) + 1
            self.visible[self._gate] = self.visible.get(self._gate, 0) + ("hidden" not in a)
        elif tag == "strong" and "shown" in cls:
            self._in_counter = True

    def handle_data(self, data):
        if self._in_counter and self._gate:
            self.counter[self._gate] = data
            self._in_counter = False


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on `url` with its console on stderr (`INFO:CONSOLE` lines), a profile of its own."""
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-dev-shm-usage",
        "--enable-logging=stderr", "--v=0", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", *args, url,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def console_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if re.search(r":CONSOLE[(:]", line)]


def dom(tmp_path: Path, page: Path, query: str = "") -> tuple[Page, list[str]]:
    done = chromium(tmp_path, page.as_uri() + query, "--dump-dom")
    return Page(done.stdout), console_lines(done)


def test_every_gate_run_writes_a_self_contained_page(gate_run, tmp_path):
    out = gate_run.out_dir
    page = gate_run.files["html"]
    assert page == out / "report.html"
    text = page.read_text()
    assert not re.search(r"""(?:src|href)=["'](?!#|data:)""", text)  # nothing to fetch: anchors and data URIs
    assert 'http-equiv="Content-Security-Policy" content="default-src \'none\'' in text
    assert text.count('src="data:image/png;base64,') == 1  # the forest plot (no calibration gate, no training)
    ids = set(re.findall(r'id="([^"]+)"', text))
    links = set(re.findall(r'href="#([^"]+)"', text))
    assert links <= ids, links - ids  # every link lands
    assert 'href="#gate-perplexity-evidence"' in text  # the failed gate leads to its worst examples...
    assert re.search(r'<a href="#item-perplexity-\d+"><code>doc-\d+</code></a>', text)  # ...and they to their items
    items = load(out)
    for gate in items.gate.unique():  # every item of every gate, once per (measurement, item)
        n = items[items.gate == gate].drop_duplicates(["measurement", "item_id"]).shape[0]
        assert f'id="item-{gate}-{n - 1}"' in text and f'id="item-{gate}-{n}"' not in text
    t0 = time.perf_counter()
    again = render_html(gate_run.report, items, out, out=tmp_path / "again.html")
    took = time.perf_counter() - t0
    assert again.read_text() == text  # the table read back from items.parquet gives the page the run wrote
    print(f"report.html: {page.stat().st_size} bytes, {len(items)} item rows, rendered in {took:.3f} s")


def test_harness_report_html_renders_the_page_the_run_wrote(gate_run, tmp_path):
    out = gate_run.out_dir
    written = (out / "report.html").read_text()
    (out / "report.html").unlink()
    assert main(["report", str(out), "--html"]) == 0
    assert (out / "report.html").read_text() == written  # from report.json + items.parquet: the same page
    assert main(["report", str(out / "report.json"), "--html", "--out", str(tmp_path / "copy.html")]) == 0
    assert (tmp_path / "copy.html").read_text() == written


def test_a_report_without_items_says_why_it_has_no_item_tables(gate_run, tmp_path):
    shutil.copy2(gate_run.out_dir / "forest.png", tmp_path / "forest.png")
    page = render_html(gate_run.report, None, tmp_path)
    text = page.read_text()
    assert "No per-item tables: this report has no items.parquet" in text and 'class="item ' not in text
    assert "Worst examples" in text  # the evidence is in report.json: still shown


def test_answers_side_by_side_mark_the_words_that_differ_and_stay_escaped(gate_run, tmp_path):
    left, right = word_diff("The capital is Paris.", "The capital is Lyon, surely.")
    assert left == [("", "The capital is "), ("mark", "Paris"), ("", ".")]
    assert right == [("", "The capital is "), ("mark", "Lyon, surely"), ("", ".")]
    assert word_diff("a b c", "a c") == ([("", "a "), ("del", "b"), ("", " c")], [("", "a c")])
    assert word_diff("a c", "a b c")[1] == [("", "a "), ("ins", "b"), ("", " c")]
    assert word_diff(None, "new") == ([], [("ins", "new")])  # one side missing: all of the other is new
    items = load(gate_run.out_dir)
    row = (items.gate == "regression") & (items.kind == "probes")
    items.loc[row & (items.variant == "base"), "answer"] = "<script>alert(1)</script> & Paris"
    text = render_html(gate_run.report, items, tmp_path).read_text()
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&amp;" in text


@needs_chromium
def test_in_chromium_the_page_shows_everything_without_a_console_error(gate_run, tmp_path):
    page = gate_run.files["html"]
    t0 = time.perf_counter()
    shown, errors = dom(tmp_path, page)
    elapsed = time.perf_counter() - t0
    assert errors == [], errors
    assert shown.body.get("data-ready") == "yes"  # the script ran to its end
    assert shown.body.get("data-pictures") == "1/1"  # the forest plot decoded and shown
    assert set(shown.rows) == {"perplexity", "regression", "length_drift"}
    assert shown.visible == shown.rows  # unfiltered: every row on screen
    assert {g: int(c) for g, c in shown.counter.items()} == shown.rows  # and the counter says so
    print(f"Chromium loaded report.html and dumped its DOM in {elapsed:.1f} s")

    shot = tmp_path / "page.png"
    chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,1600")
    from matplotlib.image import imread

    pixels = imread(shot)
    colours = {tuple(p) for p in pixels[::7, ::7, :3].reshape(-1, 3).round(2).tolist()}
    assert pixels.shape[:2] == (1600, 1280) and len(colours) > 50  # text, tables, the plot: not a blank page
    r, g, b = pixels[20, 640, :3]  # the banner: red, the release is blocked
    assert r > 0.6 and g < 0.3 and b < 0.3


@needs_chromium
def test_in_chromium_the_filters_change_the_rows_on_screen(gate_run, tmp_path):
    """A table with lost, gained and same items in three categories (the tiny model answers nothing right, so its own
    statuses are all "same": some are set here); the URL's query sets the filters as a person's choice would."""
    items = load(gate_run.out_dir)
    probes = items[(items.gate == "regression") & (items.kind == "probes")]
    ids = list(dict.fromkeys(probes.item_id))
    status = {i: "lost" for i in ids[:3]} | {i: "gained" for i in ids[3:5]}
    row = (items.gate == "regression") & (items.kind == "probes")
    items.loc[row, "status"] = items.loc[row, "item_id"].map(lambda i: status.get(i, "same"))
    items.loc[row, "category"] = items.loc[row, "item_id"].map(lambda i: ("math", "facts", "format")[ids.index(i) % 3])
    shutil.copy2(gate_run.out_dir / "forest.png", tmp_path / "forest.png")
    page = render_html(gate_run.report, items, tmp_path)
    everything = items[items.gate == "regression"].drop_duplicates(["measurement", "item_id"]).shape[0]

    def regression(query: str) -> int:
        shown, errors = dom(tmp_path, page, query)
        assert errors == [], errors
        assert int(shown.counter["regression"]) == shown.visible["regression"]  # the counter tells the truth
        return shown.visible["regression"]

    assert regression("") == everything
    assert regression("?status=lost") == 3
    assert regression("?status=gained") == 2
    assert regression("?status=same") == len(ids) - 5
    math = sum(1 for i in ids if ids.index(i) % 3 == 0)
    assert regression("?category=math") == math
    assert regression("?status=lost&category=math") == 1  # ids[0] (ids[3] is math too, but gained)
    assert regression("?regression.measurement=nll%20builtin:general_text") == everything - len(ids)
    shown, _ = dom(tmp_path, page, "?status=lost")
    assert shown.visible["perplexity"] == shown.rows["perplexity"]  # no status there: the filter is not offered


def test_evidence_says_how_many_more_there_are_and_links_to_them(gate_run, tmp_path):
    from dataclasses import replace

    report = replace(
        gate_run.report,
        gates=tuple(replace(g, evidence_total=8) if g.name == "perplexity" else g for g in gate_run.report.gates),
    )
    shutil.copy2(gate_run.out_dir / "forest.png", tmp_path / "forest.png")
    text = render_html(report, load(gate_run.out_dir), tmp_path).read_text()
    assert "Worst examples (5 of 8)" in text
    assert '<a href="#gate-perplexity-items">3 more not shown (8 in all): every item of this gate is in the' in text
    text = render_html(report, None, tmp_path).read_text()  # no table: where they are instead
    assert "3 more not shown (8 in all): every item of this gate, for both models, is in items.parquet" in text
