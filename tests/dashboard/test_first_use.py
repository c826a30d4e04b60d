"""What someone new to the dashboard sees, through Starlette's TestClient, on every backend:
bulk buttons only when a job matches, nothing but the login form before login, no red error
on a job that succeeded, attempts numbered across a resubmit, the database named (never
its password), ids shortened the way ``durq`` takes them back, and a missing database
refused at start instead of created empty."""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import durq
from durq.cli import main
from durq.dashboard.app import create_app
from durq.history import numbered

from .forms import TOKEN, csrf_of
from .scenes import make_recovered, make_unprocessable

BULK_FORMS = ('action="/jobs/resubmit"', 'action="/jobs/cancel"')


def bulk_buttons(client: TestClient, **query: str) -> list[str]:
    """The bulk buttons on the jobs page for ``query``; the partial must offer the same."""
    page = client.get("/jobs", params=query)
    partial = client.get("/partials/jobs", params=query)
    assert page.status_code == partial.status_code == 200
    found = re.findall(
        r'<button class="button [a-z]*" type="submit">((?:Resubmit|Cancel) all [a-z]+)</button>',
        page.text,
    )
    assert re.findall(r"(?:Resubmit|Cancel) all [a-z]+", partial.text) == found
    forms = [form for form in BULK_FORMS if form in page.text]
    assert len(forms) == len(found), page.text  # no form without its button, nor the reverse
    return found


def row_of(html: str, job_id: str) -> str:
    found = re.search(rf'<tr data-job="{job_id}">(.*?)</tr>', html, re.S)
    assert found is not None, job_id
    return found.group(1)


# -- bulk buttons ----------------------------------------------------------------------------


def test_bulk_buttons_show_only_when_a_job_matches(
    client: TestClient, queue: durq.JobQueue
) -> None:
    assert bulk_buttons(client, state="unprocessable") == []
    assert bulk_buttons(client, state="queued") == []

    make_unprocessable(queue, {"n": 1}, name="mail")
    assert bulk_buttons(client, state="unprocessable") == [
        "Resubmit all unprocessable",
        "Cancel all unprocessable",
    ]
    assert bulk_buttons(client, state="unprocessable", queue="mail") == [
        "Resubmit all unprocessable",
        "Cancel all unprocessable",
    ]
    assert bulk_buttons(client, state="unprocessable", queue="default") == []  # none there

    first, second = queue.enqueue({"n": 2}), queue.enqueue({"n": 3})
    assert bulk_buttons(client, state="queued") == ["Cancel all queued"]
    # The page past the oldest queued job is empty, yet newer queued jobs match the filter.
    assert bulk_buttons(client, state="queued", before=first.id) == ["Cancel all queued"]
    assert (
        "No jobs match this filter."
        in client.get("/jobs", params={"state": "queued", "before": first.id}).text
    )
    assert bulk_buttons(client, state="cancelled", before=second.id) == []

    queue.cancel_all("queued")
    assert bulk_buttons(client, state="queued") == []
    assert bulk_buttons(client, state="cancelled") == ["Resubmit all cancelled"]


# -- before login ----------------------------------------------------------------------------


def chrome(html: str) -> dict[str, bool]:
    """Which of the signed-in page parts a page has."""
    return {
        "nav": "<nav>" in html,
        "log out": "Log out" in html or 'action="/logout"' in html,
        "database": 'id="database"' in html,
    }


NONE = {"nav": False, "log out": False, "database": False}
ALL = {"nav": True, "log out": True, "database": True}


def test_nothing_but_the_login_form_before_login(guarded: TestClient, queue: durq.JobQueue) -> None:
    where = str(queue.url.removeprefix("sqlite:///")) if queue.url.startswith("sqlite") else ""
    form = guarded.get("/login", params={"next": "/jobs"})
    assert form.status_code == 200 and 'id="token"' in form.text
    assert chrome(form.text) == NONE
    assert not where or where not in form.text

    csrf = csrf_of(guarded)
    wrong = guarded.post("/login", data={"csrf_token": csrf, "token": "nope", "next": "/"})
    assert wrong.status_code == 401 and chrome(wrong.text) == NONE
    forged = guarded.post("/login", data={"csrf_token": "forged", "token": TOKEN})
    assert forged.status_code == 403 and chrome(forged.text) == NONE

    ok = guarded.post("/login", data={"csrf_token": csrf, "token": TOKEN}, follow_redirects=False)
    assert ok.status_code == 303
    for path in ("/", "/jobs", "/workers", "/jobs/" + str(uuid.uuid4())):
        assert chrome(guarded.get(path).text) == ALL, path
    assert chrome(guarded.get("/login").text) == NONE  # the form never has them

    out = guarded.post("/logout", data={"csrf_token": csrf_of(guarded)})
    assert out.url.path == "/login" and chrome(out.text) == NONE


def test_without_a_token_every_page_has_the_navigation_but_no_log_out(client: TestClient) -> None:
    for path in ("/", "/jobs", "/workers"):
        page = client.get(path).text
        assert chrome(page) == {"nav": True, "log out": False, "database": True}, path


# -- a succeeded job -------------------------------------------------------------------------


def test_a_succeeded_job_shows_no_red_last_error(client: TestClient, queue: durq.JobQueue) -> None:
    failed = make_unprocessable(queue, {"n": 1})
    retrying, done = make_recovered(queue, {"n": 2})
    assert queue.get(done.id).last_error == retrying.last_error  # still set: the premise

    listed = client.get("/jobs").text
    assert 'class="error-line"' in row_of(listed, failed.id)  # a current error shows
    assert "ValueError: bad input" in row_of(listed, failed.id)
    assert 'class="error-line"' not in row_of(listed, done.id)
    assert "OSError" not in row_of(listed, done.id)

    detail = client.get(f"/jobs/{done.id}").text
    assert 'id="last-error"' not in detail and 'class="traceback"' not in detail
    assert "Last error" not in detail
    # The earlier failure is still there, as the history of its attempt.
    history = re.search(r'<pre class="attempt-traceback">(.*?)</pre>', detail, re.S)
    assert history is not None and "OSError: ledger busy" in history.group(1)
    assert 'id="last-error"' in client.get(f"/jobs/{failed.id}").text


# -- attempts across a resubmit --------------------------------------------------------------


def test_attempts_are_numbered_straight_through_a_resubmit(
    client: TestClient, queue: durq.JobQueue
) -> None:
    job = queue.enqueue({"n": 1}, retry=durq.RetryPolicy(base=0))
    first = queue.claim("worker-a")
    assert first is not None
    queue.fail(first, "x", retry=False)
    queue.resubmit(job.id)
    second = queue.claim("worker-b")
    assert second is not None
    queue.fail(second, "y")  # retried: the count goes on
    third = queue.claim("worker-c")
    assert third is not None
    queue.complete(third)
    # The records count 1, 1, 2: the resubmit started the job's count again.
    assert [a.attempt for a in queue.attempts(job.id)] == [1, 1, 2]

    page = client.get(f"/jobs/{job.id}").text
    rows = re.findall(r'<tr class="(resubmitted|attempt)"(?: data-number="(\d+)")?>', page)
    shown = ["resubmitted" if kind == "resubmitted" else int(n) for kind, n in rows]
    assert shown == [1, "resubmitted", 2, 3]
    expected: list[str | int] = []
    for entry in numbered(queue.attempts(job.id)):
        expected += ["resubmitted"] * entry.resubmitted + [entry.number]
    assert shown == expected
    numbers = re.findall(r'<td class="num title" data-label="Attempt">(\d+)</td>', page)
    assert numbers == ["1", "2", "3"]
    workers = re.findall(r'<td class="mono" data-label="Worker">([^<]+)</td>', page)
    assert workers == ["worker-a", "worker-b", "worker-c"]


# -- the database ----------------------------------------------------------------------------


def test_the_footer_names_the_database_without_its_password(queue_url: str) -> None:
    if queue_url.startswith("sqlite:"):
        url, shown, secret = queue_url, queue_url.removeprefix("sqlite:///"), None
    else:
        # The test server trusts local connections, so a password in the URL is ignored
        # by it, and must not be shown by the dashboard either.
        parts = urlsplit(queue_url)
        secret = "hunter2-secret"
        netloc = f"{parts.username}:{secret}@{parts.hostname}:{parts.port or 5432}"
        url = urlunsplit(parts._replace(netloc=netloc))
        shown = f"{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"
    with durq.connect(url) as queue, TestClient(create_app(queue)) as client:
        for path in ("/", "/jobs", "/workers"):
            page = client.get(path).text
            assert f'<span class="mono" id="database">{shown}</span>' in page, path
            assert secret is None or secret not in page


def test_a_relative_sqlite_url_is_shown_as_the_file_it_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with durq.connect("sqlite:///here.db") as queue, TestClient(create_app(queue)) as client:
        assert f'id="database">{tmp_path / "here.db"}<' in client.get("/").text


# -- short ids -------------------------------------------------------------------------------


def test_lists_show_short_ids_and_link_the_whole_id(
    client: TestClient, queue: durq.JobQueue
) -> None:
    made = [queue.enqueue({"n": i}) for i in range(3)]
    short = queue.short_ids([j.id for j in made])
    page = client.get("/jobs").text
    for job in made:
        link = re.search(
            rf'<a href="/jobs/{job.id}" title="{job.id}">([^<]+)</a>', row_of(page, job.id)
        )
        assert link is not None and link.group(1) == short[job.id], job.id
        assert len(link.group(1)) < len(job.id)
        assert queue.resolve_id(link.group(1)) == job.id  # what `durq jobs show` takes back

    queue.worker_heartbeat("worker-b", host="box", pid=1, queues=None)
    running = queue.claim("worker-b")
    assert running is not None
    workers = client.get("/workers").text
    link = re.search(rf'<a href="/jobs/{running.id}" title="{running.id}">([^<]+)</a>', workers)
    assert link is not None and link.group(1) == queue.short_ids([running.id])[running.id]


def test_an_id_imported_in_capitals_is_stored_and_shown_in_lowercase(
    client: TestClient, queue: durq.JobQueue
) -> None:
    template = queue.enqueue({"n": 1}, queue="elsewhere")
    capitals = str(uuid.uuid4()).upper()
    assert queue.import_jobs([dataclasses.replace(template, id=capitals, queue="imported")]) == 1
    stored = capitals.lower()
    assert queue.get(stored).queue == "imported"
    short = queue.short_ids([stored])[stored]
    page = client.get("/jobs", params={"queue": "imported"}).text
    assert f'<a href="/jobs/{stored}" title="{stored}">{short}</a>' in page


# -- a missing database ----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def missing(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A URL where there is no durq database, and how the error names it."""
    if request.param == "sqlite":
        path = tmp_path / "mistyped.db"
        return f"sqlite:///{path}", str(path)
    import pg_support
    from durq.backends.postgres_connection import describe_url

    url = pg_support.empty_database(request)
    return url, describe_url(url)


def run_dashboard(url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[Any]]:
    """``durq --db URL dashboard``, with uvicorn.run recorded instead of serving."""
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.append(app))
    monkeypatch.delenv("DURQ_DASHBOARD_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["--db", url, "dashboard", "--port", "0"])
    return result, served


def test_the_dashboard_refuses_a_missing_database_at_start(
    missing: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, where = missing
    result, served = run_dashboard(url, monkeypatch)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: no durq database at {where}; set DURQ_URL or --db\n"
    assert served == []  # refused before anything listened
    if url.startswith("sqlite:"):
        assert list(tmp_path.iterdir()) == []  # no empty database made
    else:
        import pg_support

        assert pg_support.execute(url, "SELECT to_regclass('durq_jobs')") == [(None,)]


def test_the_dashboard_serves_a_database_that_exists(
    queue_url: str, queue: durq.JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, served = run_dashboard(queue_url, monkeypatch)
    assert result.exit_code == 0, result.output
    assert len(served) == 1
