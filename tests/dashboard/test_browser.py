"""The dashboard in a real browser: Playwright drives Debian's Chromium against a real uvicorn.

Skipped (with the reason) only when /usr/bin/chromium is missing outside CI; in CI ($CI set)
a missing browser fails the tests, so they can never pass by not running.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durq

from .browsing import WAIT_MS, Server, fill_an_hour, screenshot_path, show_a_tidy_database_path
from .scenes import XSS, Scene, make_scene

pytestmark = pytest.mark.browser


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # The browser tests drive the dashboard itself; the backends' parity is the contract
    # suite's job, so one backend is enough here.
    return f"sqlite:///{tmp_path}/durq.db"


@pytest.fixture
def seeded(sqlite_url: str) -> Iterator[tuple[durq.JobQueue, Scene]]:
    with durq.connect(sqlite_url) as queue:
        yield queue, make_scene(queue)


@pytest.fixture
def server(sqlite_url: str, seeded: tuple[durq.JobQueue, Scene]) -> Iterator[Server]:
    with Server(sqlite_url) as running:
        yield running


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    yield tab
    context.close()


def test_filter_to_unprocessable_and_resubmit_with_a_click(
    page: Any, server: Server, seeded: tuple[durq.JobQueue, Scene]
) -> None:
    from playwright.sync_api import expect

    queue, scene = seeded
    page.goto(server.base + "/")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator('tr[data-queue="mail"]')).to_contain_text("active")

    page.click("nav >> text=Jobs")
    page.select_option("#filter-state", "unprocessable")
    page.click("form.filters >> text=Filter")
    page.wait_for_url("**/jobs?state=unprocessable**")
    rows = page.locator("tr[data-job]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("unprocessable")

    page.click(f"a[href='/jobs/{scene.unprocessable.id}']")
    expect(page.locator("#last-error")).to_contain_text("ValueError: bad input")
    page.click("button:has-text('Resubmit')")
    expect(page.locator(".flash")).to_have_text(f"Job {scene.unprocessable.id} resubmitted.")
    expect(page.locator("h1 .badge")).to_have_text("queued")
    assert queue.get(scene.unprocessable.id).state == durq.JobState.QUEUED


def test_pause_a_queue(page: Any, server: Server, seeded: tuple[durq.JobQueue, Scene]) -> None:
    from playwright.sync_api import expect

    queue, _ = seeded
    page.goto(server.base + "/")
    page.locator('tr[data-queue="mail"] button:has-text("Pause")').click()
    expect(page.locator(".flash")).to_have_text("Queue mail paused.")
    row = page.locator('tr[data-queue="mail"]')
    expect(row.locator(".badge-paused")).to_have_text("paused")
    expect(row.locator("button")).to_have_text("Resume")
    assert queue.stats()["queues"]["mail"]["paused"] is True


@pytest.mark.parametrize("name", [".", ".."])
def test_pause_and_resume_the_queues_dot_and_dot_dot(
    page: Any, server: Server, seeded: tuple[durq.JobQueue, Scene], name: str
) -> None:
    # In a form's path, Chromium would rewrite /queues/./pause and /queues/../pause.
    from playwright.sync_api import expect

    queue, _ = seeded
    queue.enqueue({"n": 1}, queue=name)
    page.goto(server.base + "/")
    row = page.locator(f'tr[data-queue="{name}"]')
    row.locator('button:has-text("Pause")').click()
    expect(page.locator(".flash")).to_have_text(f"Queue {name} paused.")
    expect(row.locator(".badge-paused")).to_have_text("paused")
    assert queue.stats()["queues"][name]["paused"] is True
    row.locator('button:has-text("Resume")').click()
    expect(page.locator(".flash")).to_have_text(f"Queue {name} resumed.")
    expect(row.locator(".badge-active")).to_have_text("active")
    assert queue.stats()["queues"][name]["paused"] is False
    assert queue.stats()["queues"]["mail"]["paused"] is False  # no other queue touched


def test_script_payload_renders_as_text(
    page: Any, server: Server, seeded: tuple[durq.JobQueue, Scene]
) -> None:
    from playwright.sync_api import expect

    _, scene = seeded
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server.base + f"/jobs/{scene.xss.id}")
    expect(page.locator("#payload")).to_contain_text(XSS)
    assert page.locator("#payload script").count() == 0
    page.goto(server.base + f"/jobs/{scene.unprocessable.id}")
    expect(page.locator("#last-error")).to_contain_text(XSS)
    page.wait_for_timeout(300)  # give any injected script its chance to run
    assert dialogs == []


def test_bulk_cancel_asks_first(
    page: Any, server: Server, seeded: tuple[durq.JobQueue, Scene]
) -> None:
    from playwright.sync_api import expect

    queue, scene = seeded
    page.goto(server.base + "/jobs?state=queued")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button:has-text('Cancel all queued')")
    page.wait_for_timeout(200)
    assert queue.get(scene.queued.id).state == durq.JobState.QUEUED  # said no

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Cancel all queued')")
    expect(page.locator(".flash")).to_have_text("2 queued jobs cancelled.")
    assert queue.get(scene.queued.id).state == durq.JobState.CANCELLED


def test_jobs_page_refreshes_without_reloading(
    page: Any, server: Server, seeded: tuple[durq.JobQueue, Scene]
) -> None:
    from playwright.sync_api import expect

    queue, _ = seeded
    page.goto(server.base + "/jobs")
    page.evaluate("window.durqMarker = 'same page'")
    job = queue.enqueue({"arrived": "later"})
    expect(page.locator(f'tr[data-job="{job.id}"]')).to_be_visible()
    assert page.evaluate("window.durqMarker") == "same page"


def test_login_with_a_token(page: Any, sqlite_url: str, seeded: Any) -> None:
    from playwright.sync_api import expect

    with Server(sqlite_url, token="browser-token-0123456789") as guarded:
        page.goto(guarded.base + "/workers")
        page.wait_for_url("**/login?next=%2Fworkers")
        page.fill("#token", "wrong")
        page.click("button:has-text('Log in')")
        expect(page.locator(".flash")).to_have_text("Wrong token.")
        page.fill("#token", "browser-token-0123456789")
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/workers")
        expect(page.locator("h1")).to_have_text("Workers")
        cookie = next(c for c in page.context.cookies() if c["name"] == "durq_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # The session ends under a live page: its next refresh goes to the login form,
        # and never swaps the refused answer into the page on the way.
        page.goto(guarded.base + "/jobs")
        page.evaluate(
            """() => {
                const region = document.getElementById("live");
                new MutationObserver(() => {
                    sessionStorage.setItem("durqLiveText", region.textContent);
                }).observe(region, { childList: true, subtree: true, characterData: true });
            }"""
        )
        page.context.clear_cookies()
        page.wait_for_url("**/login?next=%2Fjobs", timeout=15_000)
        assert page.evaluate("sessionStorage.getItem('durqLiveText')") is None


def test_screenshot_of_the_overview(
    page: Any, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    screenshot = screenshot_path("dashboard.png", tmp_path)
    with durq.connect(sqlite_url) as queue:
        fill_an_hour(queue, monkeypatch)
        for i in range(3):
            queue.worker_heartbeat(f"worker-{i}", host="ops-1", pid=4100 + i, queues=None)
        queue.enqueue_many([{"to": f"user{i}@example.org"} for i in range(12)], queue="emails")
        queue.enqueue_many([{"report": i} for i in range(4)], queue="reports", delay=0.0)
        make_scene(queue)
        assert queue.claim("worker-1", ["emails"]) is not None
        queue.pause("reports")
        with Server(sqlite_url) as server:
            page.goto(server.base + "/")
            page.locator("svg.chart-plot rect.bar-succeeded").first.wait_for()
            assert page.text_content("#database") == sqlite_url.removeprefix("sqlite:///")
            show_a_tidy_database_path(page)
            page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
