"""The report of a whole run: opened in headless Chromium, checked against results.json, rerun.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``) with the
standard library only: the test sees console errors, uncaught exceptions, failed loads and every
network request, and reads the rendered DOM. It is skipped only when no Chromium binary exists.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from careval.report.sections import SECTION_ORDER
from careval.report.sections.findings import lookup
from careval.report.workbook import sheet_columns
from careval.run import run as run_

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
RUN_TIME = re.compile(r"(<span id=['\"]run-time(?:-top)?['\"]>)[^<]*(</span>)")


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary, or None."""
    for name in BROWSERS:
        if exe := shutil.which(name):
            return exe
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class DevTools:
    """Headless Chromium over the DevTools protocol on fds 3 and 4 (NUL-separated JSON)."""

    def __init__(self, exe: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="careval-chromium-")
        child_in, self._w = os.pipe()
        self._r, child_out = os.pipe()

        def fds() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=fds,
        )
        os.close(child_in)
        os.close(child_out)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _recv(self, timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)  # type: ignore[no-any-return]

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=60.0
    ) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            r = self._recv(timeout)
            if r.get("id") == self._id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})  # type: ignore[no-any-return]
            self.events.append(r)

    def wait_for(self, method: str, timeout: float = 60.0) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        while (e := self._recv(timeout)).get("method") != method:
            self.events.append(e)
        self.events.append(e)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._r)
        os.close(self._w)
        shutil.rmtree(self.profile, ignore_errors=True)


def open_in_chromium(exe: str, page: Path, script: str) -> tuple[Any, list[str], list[str]]:
    """Load ``page``, evaluate ``script``; returns its value, the errors and requested URLs."""
    b = DevTools(exe)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page", "Network"):
            b.send(f"{domain}.enable", session=s)
        b.send("Page.navigate", {"url": page.resolve().as_uri()}, session=s)
        b.wait_for("Page.loadEventFired")
        value = b.send(
            "Runtime.evaluate", {"expression": script, "returnByValue": True}, session=s
        )["result"].get("value")
    finally:
        b.close()
    return (value, *page_errors(b.events))


def page_errors(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The errors (console errors, uncaught exceptions, failed loads) and the requested URLs
    among DevTools ``events``."""
    errors, urls = [], []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(f"console.{p['type']}: {p.get('args')}")
        elif method == "Runtime.exceptionThrown":
            errors.append(f"exception: {p.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.requestWillBeSent":
            urls.append(p.get("request", {}).get("url", ""))
    return errors, urls


DOM_SCRIPT = """JSON.stringify({
  sections: [...document.querySelectorAll('main > section')].map(s => s.id),
  headings: [...document.querySelectorAll('main > section > h2')].map(h => h.textContent),
  nav: [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href')),
  keyfigs: [...document.querySelectorAll('.keyfig[data-path]')].map(k => ({
    path: k.dataset.path, scale: parseFloat(k.dataset.scale),
    text: k.querySelector('b').textContent})),
  figs: [...document.querySelectorAll('#summary .fig[data-kind="count"]')].map(k => ({
    path: k.dataset.path, scale: 1, text: k.textContent})),
  ids: Object.fromEntries(['impact-rr', 'impact-naive-rr', 'risk-auc', 'design-mde-3']
    .map(i => [i, document.getElementById(i) ? document.getElementById(i).textContent : null])),
  table3: [...document.querySelectorAll('#table3 tbody tr')].map(r =>
    [...r.querySelectorAll('td')].map(td => td.textContent)),
  notRun: [...document.querySelectorAll('[data-not-run]')].map(p => p.dataset.notRun),
  svgs: document.querySelectorAll('figure svg').length,
  width: document.documentElement.scrollWidth, viewport: window.innerWidth
})"""


@pytest.fixture(scope="module")
def report_run(synth_run: Path) -> Path:
    """The session's run on the shared synthetic dataset (conftest's ``synth_run``)."""
    return synth_run


def _close(text: str, value: float, scale: float) -> bool:
    """Whether a number shown as ``text`` is ``value * scale`` to the digits shown."""
    shown = text.replace(",", "").strip()
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown) - value * scale) <= 0.5 * 10**-decimals + 1e-9


def test_report_in_chromium_has_every_section_no_errors_and_the_json_numbers(
    report_run: Path,
) -> None:
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium binary found (looked for chromium, chromium-browser, chrome)")
    value, errors, urls = open_in_chromium(exe, report_run / "report.html", DOM_SCRIPT)
    dom = json.loads(value)
    results = json.loads((report_run / "results.json").read_text())
    assert errors == []
    assert all(u.startswith(("file:", "data:", "about:")) for u in urls), urls  # no network
    expected = [sid for sid, _ in SECTION_ORDER]
    assert dom["sections"] == expected
    assert dom["nav"] == [f"#{sid}" for sid in expected]
    assert dom["headings"] == [title for _, title in SECTION_ORDER]
    # The synthetic dataset carries surveys and transcripts; the run takes no follow state
    # (tests/test_follow_run.py opens that section).
    assert dom["notRun"] == ["follow"]
    assert dom["svgs"] >= 8
    # Every key figure (the background strip) and every count of the board summary shows the
    # number at its place in results.json.
    assert len(dom["keyfigs"]) >= 3 and len(dom["figs"]) >= 1
    for k in dom["keyfigs"] + dom["figs"]:
        v = lookup(results, k["path"])
        assert isinstance(v, int | float), k
        assert _close(k["text"], v, k["scale"]), (k, v)
    e = results["impact"]["outcomes"]["emergency_admissions"]
    assert dom["ids"]["impact-rr"] == f"{e['rate_ratio']:.3f}"
    assert dom["ids"]["impact-naive-rr"] == f"{results['impact']['naive']['rate_ratio']:.3f}"
    assert dom["ids"]["risk-auc"] == f"{results['risk']['auc']:.3f}"
    mde = results["design"]["mde"][0]["mde_rate_ratio"]  # shown as the fall it is, in %
    assert dom["ids"]["design-mde-3"] == f"{100 * (1 - mde):.0f}%"
    # Table 3: the eight objectives with the judgements written to results.json.
    assert [r[0] for r in dom["table3"]] == [o["objective"] for o in results["objectives"]]
    assert [r[2] for r in dom["table3"]] == [o["progress"] for o in results["objectives"]]
    assert len(dom["table3"]) == 8


def test_run_writes_workbook_and_figures_beside_the_report(report_run: Path) -> None:
    results = json.loads((report_run / "results.json").read_text())
    wb = load_workbook(report_run / "tables.xlsx", read_only=True)
    columns = sheet_columns(wb)  # sheet -> (its place in results.json, its columns' code names)
    sheets = {where: name for name, (where, _) in columns.items()}
    for block in ("data.people_by_area", "monitoring.table2", "risk.targeting", "objectives"):
        assert block in sheets, block
    people = list(wb[sheets["data.people_by_area"]].iter_rows(values_only=True))
    head = columns[sheets["data.people_by_area"]][1]
    as_json = [[r.get(h) for h in head] for r in results["data"]["people_by_area"]]
    assert [list(r) for r in people[1:]] == as_json
    figures = sorted(p.name for p in (report_run / "figures").iterdir())
    page = (report_run / "report.html").read_text()
    assert len(figures) == page.count("<svg") and "impact-1.svg" in figures
    assert (report_run / "figures" / "impact-1.svg").read_text().startswith("<?xml")


def test_two_runs_give_the_same_results_and_report(
    synth_dir: Path, report_run: Path, tmp_path: Path
) -> None:
    run_(synth_dir, tmp_path)
    a = (report_run / "results.json").read_text()
    b = (tmp_path / "results.json").read_text()
    assert a == b
    page_a = RUN_TIME.sub(r"\1\2", (report_run / "report.html").read_text())
    page_b = RUN_TIME.sub(r"\1\2", (tmp_path / "report.html").read_text())
    assert page_a == page_b
    for name in os.listdir(report_run / "figures"):
        assert (report_run / "figures" / name).read_bytes() == (
            tmp_path / "figures" / name
        ).read_bytes()
    assert _cells(report_run / "tables.xlsx") == _cells(tmp_path / "tables.xlsx")


def _cells(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every sheet of a workbook as its rows of cell values."""
    wb = load_workbook(path, read_only=True)
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def test_the_disclosure_scan_finds_small_counts_when_control_is_off(report_run: Path) -> None:
    """The scan of test_report_disclosure.py is not vacuous: synthetic outputs show 1-7."""
    from test_report_disclosure import scan

    found = scan(report_run)
    assert found["json"] and found["xlsx"] and found["html"]
    assert "synthetic-banner" in (report_run / "report.html").read_text()


def test_the_typed_copy_reads_the_whole_results_and_gives_them_back(report_run: Path) -> None:
    """Every key of results.json is declared in the typed model (an undeclared one would fail
    the run), and the copy gives back the document byte for byte."""
    from careval.report.publish.model import Published

    text = (report_run / "results.json").read_text()
    pub = Published.read(json.loads(text))
    assert json.dumps(pub.to_json(), indent=2) + "\n" == text
    assert (
        pub.impact.outcomes["emergency_admissions"].rate_ratio
        == json.loads(text)["impact"]["outcomes"]["emergency_admissions"]["rate_ratio"]
    )


def test_the_synthetic_data_as_hes_extracts_come_back_to_the_same_results(
    synth_dir: Path, report_run: Path, tmp_path: Path
) -> None:
    """The round trip of issue 15: the shared dataset written as HES-shaped extracts (multi-episode
    spells, transfers, duplicates, unfinished episodes, regular attenders, rows shuffled),
    imported back onto its own GP side (``--base``, continuous inpatient spells), gives the same
    hospital tables and the same results.json as the canonical path. Tolerance: none. Only the
    input files' hashes (the hospital tables' files were rewritten) may differ."""
    import pyarrow.parquet as pq

    from careval.data.adapters.hes import HesFiles, import_hes
    from careval.synthetic.hes import write_hes

    hes = tmp_path / "hes"
    written = write_hes(synth_dir, hes, seed=7)
    assert min(written[k] for k in ("transfers", "duplicate_rows", "unfinished_episodes")) > 0
    assert written["provider_spells_by_episodes"]["2"] > 0
    data = tmp_path / "data"
    report = import_hes(
        data,
        HesFiles(hes / "apc.csv", hes / "ae.csv", hes / "op.csv"),
        base=synth_dir,
        cips=True,
        synthetic=True,
    )
    steps = dict(report.steps)
    assert (
        steps["APC episodes read"]
        > pq.read_metadata(synth_dir / "inpatient_spells.parquet").num_rows
    )
    for name in ("inpatient_spells", "ae_attendances", "outpatient_appointments"):
        # row for row, in the canonical order too (the writer shuffled the rows)
        canonical = pq.read_table(synth_dir / f"{name}.parquet").to_pylist()
        assert pq.read_table(data / f"{name}.parquet").to_pylist() == canonical, name
    out = tmp_path / "out"
    run_(data, out)
    a = json.loads((report_run / "results.json").read_text())
    b = json.loads((out / "results.json").read_text())
    files_a = a["provenance"].pop("input_files")
    files_b = b["provenance"].pop("input_files")
    assert sorted(files_a) == sorted(files_b)
    changed = {k for k in files_a if files_a[k] != files_b[k]}
    assert changed <= {
        f"{n}.parquet" for n in ("inpatient_spells", "ae_attendances", "outpatient_appointments")
    }
    assert a == b
