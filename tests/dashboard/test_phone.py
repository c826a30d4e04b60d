"""The dashboard on a phone: Chromium at 400x800 against a real uvicorn.

Each page is measured, not only looked at: the document must not be wider than the
viewport, every table cell, card, link and button must lie inside it (so nothing needs
sideways scrolling, and no cell hides what overflows it), and the chart's labels must render
at least 10 px tall. The screenshots go to tmp_path, the overview's to docs/ for the docs.
A desktop check keeps the tables as tables above the breakpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durq

from .browsing import WAIT_MS, Server, fill_an_hour, screenshot_path, show_a_tidy_database_path
from .scenes import Scene, make_scene, make_unprocessable

pytestmark = pytest.mark.browser

PHONE = {"width": 400, "height": 800}
DESKTOP = {"width": 1280, "height": 900}
TOKEN = "phone-token-0123456789abcdef"
LONG_QUEUE = "billing-reminders-eu-west-1"
LONG_TASK = "billing.reminders.send_overdue_invoice_reminder_to_customer"
RED = "rgb(208, 52, 44)"  # --unprocessable: the colour of a current error

# Every box that must fit across the viewport, and every box whose content overflows it.
# Zero-sized boxes are not displayed (a table head on a phone, a closed <details>).
MEASURE = """() => {
  const width = window.innerWidth;
  const name = (el) => el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
    + " " + JSON.stringify((el.textContent || "").trim().slice(0, 40));
  const outside = [], overflowing = [];
  const boxes = "td, th, .card, section, form, button, .button, a, input, select, h1, h2, "
    + "pre, footer, header, nav, figure, svg, .label, .badge";
  for (const el of document.querySelectorAll(boxes)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -0.5 || r.right > width + 0.5) {
      outside.push(`${name(el)} spans ${r.left.toFixed(1)}..${r.right.toFixed(1)}`);
    }
  }
  for (const el of document.querySelectorAll("td, th")) {
    if (el.getBoundingClientRect().width === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      overflowing.push(`${name(el)}: ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: width,
    outside,
    overflowing,
  };
}"""

# The chart's labels as drawn: computed font size and the height of the rendered text, plus
# any text inside the SVG (which would shrink with it).
CHART_LABELS = """() => {
  const html = [...document.querySelectorAll("figure.chart .label")].map((el) => ({
    text: el.textContent,
    size: parseFloat(getComputedStyle(el).fontSize),
    height: el.getBoundingClientRect().height,
  }));
  const svg = [...document.querySelectorAll("svg text")].map((el) => ({
    text: el.textContent,
    size: parseFloat(getComputedStyle(el).fontSize),
    height: el.getBoundingClientRect().height,
  }));
  return { html, svg };
}"""

# On a phone each stacked cell shows its label before its value (CSS ::before).
CELL_LABELS = """(selector) => [...document.querySelectorAll(selector)].map((td) => [
  td.dataset.label, getComputedStyle(td, "::before").content,
])"""


def assert_fits(page: Any, where: str) -> None:
    found = page.evaluate(MEASURE)
    assert found["scrollWidth"] <= found["innerWidth"], (where, found)
    assert found["outside"] == [], where
    assert found["overflowing"] == [], where


def assert_inside(page: Any, selector: str, at_least: int) -> None:
    """At least ``at_least`` elements match, each displayed and within the viewport width."""
    boxes = [
        page.locator(selector).nth(i).bounding_box() for i in range(page.locator(selector).count())
    ]
    assert len(boxes) >= at_least, selector
    width = page.viewport_size["width"]
    for box in boxes:
        assert box is not None and box["width"] > 0, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


def assert_readable_chart(page: Any) -> None:
    labels = page.evaluate(CHART_LABELS)
    assert [label["text"] for label in labels["html"]][:2] == ["20", "0"]
    assert len(labels["html"]) == 4 and labels["html"][3]["text"].endswith(" UTC")
    for label in labels["html"] + labels["svg"]:
        assert label["size"] >= 10 and label["height"] >= 10, label


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    yield tab
    context.close()


class Busy:
    """A queue as someone would find it: an hour of work on the chart, jobs in every state,
    a long queue name and task name, a worker, and a job resubmitted after it failed."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        with durq.connect(url) as queue:
            fill_an_hour(queue, monkeypatch)
            self.scene: Scene = make_scene(queue)
            queue.enqueue_many([{"n": i} for i in range(3)], queue=LONG_QUEUE, task=LONG_TASK)
            self.failing = make_unprocessable(queue, {"to": "b@example.org"}, name=LONG_QUEUE)
            self.resubmitted = self._resubmitted(queue)
            queue.worker_heartbeat("worker-ops-1-4100", host="ops-1", pid=4100, queues=None)
            assert queue.claim("worker-ops-1-4100", [LONG_QUEUE]) is not None
            queue.pause("mail")

    @staticmethod
    def _resubmitted(queue: durq.JobQueue) -> durq.Job:
        """Failed for good, resubmitted, then succeeded: its last_error is still set."""
        job = queue.enqueue({"invoice": 7}, queue="resubmits", task=LONG_TASK)
        first = queue.claim("worker-ops-1-4100", ["resubmits"])
        assert first is not None
        queue.fail(first, "Traceback (most recent call last):\nKeyError: 'customer'", retry=False)
        queue.resubmit(job.id)
        second = queue.claim("worker-ops-1-4100", ["resubmits"])
        assert second is not None
        return queue.complete(second, {"sent": True})


@pytest.fixture
def busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Busy:
    return Busy(f"sqlite:///{tmp_path}/durq.db", monkeypatch)


def log_in(page: Any, server: Server) -> None:
    """Log in on the phone: the form itself must fit too, with nothing else in its header."""
    page.goto(server.base + "/")
    page.wait_for_url("**/login?next=%2F")
    assert_fits(page, "login")
    assert page.locator("header nav, header .logout").count() == 0
    page.fill("#token", TOKEN)
    page.click("button:has-text('Log in')")
    page.wait_for_url(server.base + "/")


def test_overview_on_a_phone(phone: Any, busy: Busy, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with Server(busy.url, token=TOKEN) as server:
        log_in(phone, server)
        phone.locator("svg.chart-plot rect.bar-succeeded").first.wait_for()
        show_a_tidy_database_path(phone)
        screenshot = screenshot_path("dashboard-phone.png", tmp_path)
        phone.screenshot(path=str(screenshot), full_page=True)
        assert_fits(phone, "overview")
        assert_readable_chart(phone)
        # Every queue's button and the header's Log out are on screen, not beside it.
        assert_inside(phone, "tr[data-queue] button", at_least=4)
        assert_inside(phone, "header .logout button", at_least=1)
        assert_inside(phone, "#database", at_least=1)
        # The counts are labelled cells: a row is a card, not a strip of bare numbers.
        assert phone.locator("table.queues thead").bounding_box() is None
        labels = phone.evaluate(CELL_LABELS, f'tr[data-queue="{LONG_QUEUE}"] td[data-label]')
        assert [label for label, _ in labels] == [
            "Status", "queued", "running", "succeeded", "unprocessable", "cancelled",
            "Oldest queued",
        ]  # fmt: skip
        assert all(shown == f'"{label}"' for label, shown in labels), labels

        row = phone.locator(f'tr[data-queue="{LONG_QUEUE}"]')
        row.locator("button:has-text('Pause')").click()
        expect(phone.locator(".flash")).to_have_text(f"Queue {LONG_QUEUE} paused.")
        assert server.queue.stats()["queues"][LONG_QUEUE]["paused"] is True
        assert_fits(phone, "overview after pausing")


def test_jobs_list_on_a_phone(phone: Any, busy: Busy, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with Server(busy.url) as server:
        phone.goto(server.base + "/jobs")
        expect(phone.locator("tr[data-job]")).to_have_count(50)
        phone.screenshot(path=str(tmp_path / "jobs-phone.png"), full_page=True)
        assert_fits(phone, "jobs")
        assert_inside(phone, "form.filters button, form.filters select, form.filters input", 4)
        assert_inside(phone, "#next-page", at_least=1)

        phone.goto(server.base + "/jobs?state=unprocessable")
        expect(phone.locator("tr[data-job]")).to_have_count(2)
        phone.screenshot(path=str(tmp_path / "jobs-unprocessable-phone.png"), full_page=True)
        assert_fits(phone, "unprocessable jobs")
        assert_inside(phone, ".bulk button", at_least=2)
        assert_inside(phone, "td.error-line", at_least=2)
        labels = phone.evaluate(CELL_LABELS, f'tr[data-job="{busy.failing.id}"] td[data-label]')
        assert ["Queue", '"Queue"'] in labels and ["Last error", '"Last error"'] in labels

        phone.once("dialog", lambda dialog: dialog.accept())
        phone.click("button:has-text('Resubmit all unprocessable')")
        expect(phone.locator(".flash")).to_have_text("2 unprocessable jobs resubmitted.")
        expect(phone.locator(".bulk")).to_have_count(0)  # nothing left to resubmit
        assert_fits(phone, "no unprocessable jobs left")


def test_job_detail_on_a_phone(phone: Any, busy: Busy, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with Server(busy.url) as server:
        phone.goto(server.base + f"/jobs/{busy.failing.id}")
        phone.screenshot(path=str(tmp_path / "job-phone.png"), full_page=True)
        assert_fits(phone, "unprocessable job")
        assert_inside(phone, ".job-actions button", at_least=3)  # Resubmit, Cancel, Delete
        expect(phone.locator("#last-error")).to_contain_text("ValueError: bad input")

        phone.goto(server.base + f"/jobs/{busy.resubmitted.id}")
        phone.locator("tr.attempt-error summary").click()  # open the earlier traceback
        phone.screenshot(path=str(tmp_path / "resubmitted-phone.png"), full_page=True)
        assert_fits(phone, "resubmitted job")
        assert_inside(phone, ".job-actions button", at_least=2)  # Resubmit, Delete
        assert_inside(phone, "tr.resubmitted td", at_least=1)
        assert_inside(phone, "pre.attempt-traceback", at_least=1)
        # Succeeded: its earlier failure is history, shown but not in red.
        assert phone.locator("#last-error").count() == 0
        summary = phone.locator("tr.attempt-error summary")
        expect(summary).to_have_text("KeyError: 'customer'")
        assert summary.evaluate("el => getComputedStyle(el).color") != RED

        phone.click("button:has-text('Resubmit')")
        expect(phone.locator(".flash")).to_have_text(f"Job {busy.resubmitted.id} resubmitted.")


def test_workers_on_a_phone(phone: Any, busy: Busy) -> None:
    with Server(busy.url) as server:
        phone.goto(server.base + "/workers")
        phone.locator("td.title:has-text('worker-ops-1-4100')").wait_for()
        assert_fits(phone, "workers")


def test_a_desktop_keeps_its_tables(browser: Any, busy: Busy) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        with Server(busy.url) as server:
            for path in ("/", "/jobs", f"/jobs/{busy.resubmitted.id}", "/workers"):
                page.goto(server.base + path)
                shown = page.evaluate(
                    """() => [...document.querySelectorAll("table.stack")].map((t) => [
                        getComputedStyle(t).display,
                        getComputedStyle(t.querySelector("thead")).display,
                        getComputedStyle(t.querySelector("tbody td")).display,
                        getComputedStyle(t.querySelector("tbody td[data-label]"), "::before")
                          .content,
                    ])"""
                )
                assert shown, path
                assert all(
                    s == ["table", "table-header-group", "table-cell", "none"] for s in shown
                )
                # A wide table may scroll inside its card here, as it always did; the
                # page itself does not.
                width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
                assert width[0] <= width[1], path
            page.goto(server.base + "/")
            assert_readable_chart(page)
    finally:
        context.close()
