"""The main journey in a real browser: Debian's Chromium driven by Playwright, against the app
served by uvicorn on localhost.

A GP signs in, opens the case list and a person, writes a care plan, plans an MDG meeting,
brings the person to it and records the review; then a GP of another practice (in another MDG)
signs in and cannot see that person. Every step is checked on the page the browser shows.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.app_support import site
from tests.test_report_run import find_chromium

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.slow  # a browser and a server: the whole suite's, not the fast tier's


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(app_template, synth_dir: Path, tmp_path_factory):
    """The app on http://localhost:PORT (browsers send Secure cookies to localhost)."""
    import uvicorn

    s = site(app_template, synth_dir, tmp_path_factory.mktemp("browser"))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(s.app, host="127.0.0.1", port=port, access_log=False, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield s, f"http://localhost:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium binary found (scripts/setup.sh installs Debian's chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


def _sign_in(browser, base: str, username: str, password: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/")
    assert page.url == f"{base}/login"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return context, page


def test_a_gp_plans_and_reviews_a_patient_another_practice_cannot_see(served, browser) -> None:
    s, base = served
    context, page = _sign_in(browser, base, "gp1", s.users["gp1"].password)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # The case list: the practice's people, highest risk first.
    assert page.url == f"{base}/cases"
    rows = page.locator("#case-list tbody tr")
    assert rows.count() >= 3
    risks = [float(t.rstrip("%")) for t in page.locator("#case-list td.num").all_inner_texts()]
    assert risks == sorted(risks, reverse=True) and len(risks) == rows.count()
    # A person: their record and timeline.
    first = page.locator("#case-list tbody tr").first.locator("a").first
    pid = first.inner_text()
    first.click()
    assert page.url == f"{base}/people/{pid}"
    assert page.locator("h1").inner_text() == f"Person {pid}"
    assert page.locator("#timeline tbody tr").count() >= 1
    # A care plan, with an action, the person's involvement and two checklist items.
    page.click("text=Write a care plan")
    page.fill("textarea[name=goals]", "Stay at home safely; <b>not</b> bold")
    page.check("input[name=patient_involved]")
    page.check("input[name=q_goals_agreed]")
    page.check("input[name=q_falls_assessment]")
    page.fill("input[name=action_0_description]", "Falls clinic referral")
    page.fill("input[name=action_0_owner]", "Community team")
    page.fill("input[name=review_date]", "2014-06-30")
    page.click("button[type=submit]:has-text('Save')")
    assert "/plans/" in page.url
    assert page.locator("#goals").inner_text() == "Stay at home safely; <b>not</b> bold"
    ticks = page.locator("#quality li").all_inner_texts()
    assert sum(t.startswith("✓") for t in ticks) == 2
    # An MDG meeting on the data's last day; the person brought from their record.
    page.click("text=MDG")
    page.click("#new-meeting button[type=submit]")
    assert "/mdg/meetings/" in page.url
    page.goto(f"{base}/people/{pid}")
    page.click("#bring button")
    assert page.url == f"{base}/people/{pid}"
    assert "on the agenda" in page.locator("#reviews").inner_text()
    # The review at the meeting.
    page.click("text=MDG")
    page.locator("#meetings a").first.click()
    case = page.locator("section.case").first
    assert pid in case.locator("h3").inner_text()
    case.locator("textarea[name=notes]").fill("Discussed falls and carer support")
    case.locator("input[name=outcome]").fill("Refer to falls clinic")
    case.locator("input[name=system_issue]").check()
    case.locator("button[type=submit]").click()
    assert page.locator("section.case .done").first.inner_text() == "reviewed"
    page.goto(f"{base}/people/{pid}")
    assert "Refer to falls clinic (system issue raised)" in page.locator("#reviews").inner_text()
    assert errors == []
    context.close()
    # A GP of another practice, in another MDG: the person is not there to be seen.
    other, page = _sign_in(browser, base, "gp3", s.users["gp3"].password)
    assert page.url == f"{base}/cases"
    assert pid not in page.locator("#case-list").inner_text()
    response = page.goto(f"{base}/people/{pid}")
    assert response is not None and response.status == 404
    assert "Not found, or not yours to see." in page.inner_text("main")
    other.close()
