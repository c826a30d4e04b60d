"""The dashboard against hostile requests, through Starlette's TestClient: oversized bodies
and forms, bad tokens, stolen or stale session cookies, queue names that paths mangle, a
failing route, lenient number spellings and huge bad values echoed back."""

from __future__ import annotations

import html
import re
import time
import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

import durq
from durq.dashboard import InsecureBind, serve
from durq.dashboard.app import create_app
from durq.dashboard.limits import MAX_BODY_BYTES
from durq.dashboard.security import SECURITY_HEADERS
from durq.dashboard.sessions import SESSION_SECONDS, Sessions

from .forms import TOKEN, csrf_of, flash_after, post
from .scenes import Scene

BEARER = {"authorization": f"Bearer {TOKEN}"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def login(client: TestClient, token: str = TOKEN) -> Any:
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf is not None
    data = {"csrf_token": csrf.group(1), "token": token, "next": "/"}
    return client.post("/login", data=data, follow_redirects=False)


def logged_in(client: TestClient) -> bool:
    """True when the client's cookies open a page (rather than send it to /login)."""
    return bool(client.get("/workers", follow_redirects=False).status_code == 200)


def error_text(response: Any) -> str:
    """The error an answer shows: the API's ``error`` field, or a page's text."""
    if response.headers["content-type"] == "application/json":
        return str(response.json()["error"])
    return html.unescape(response.text)


def tampered(value: str) -> str:
    """``value`` with its last character changed."""
    return value[:-1] + ("1" if value.endswith("0") else "0")


def assert_security_headers(headers: Any) -> None:
    for name, value in SECURITY_HEADERS:
        assert headers[name.decode()] == value.decode(), name


# -- bounded bodies and forms --------------------------------------------------------------


def test_an_announced_oversized_body_is_refused_before_anything_is_read(
    guarded: TestClient,
) -> None:
    csrf_of(guarded)
    body = b"token=" + b"x" * (2 * MAX_BODY_BYTES)
    response = guarded.post("/login", content=body, headers=FORM)
    assert response.status_code == 413
    assert response.text == f"request body too large: at most {MAX_BODY_BYTES} bytes\n"
    assert response.headers["connection"] == "close"
    assert_security_headers(response.headers)
    assert "durq_session" not in guarded.cookies
    # The API refuses in its own shape, even a route that would not read the body.
    api = guarded.post("/api/queues/mail/pause", content=body, headers={**BEARER, **FORM})
    assert api.status_code == 413 and api.json()["error"].startswith("request body too large")


def test_a_chunked_body_is_cut_off_at_the_limit(guarded: TestClient) -> None:
    csrf_of(guarded)
    chunks = (b"x" * 1024 for _ in range(10 * MAX_BODY_BYTES // 1024))
    response = guarded.post("/login", content=chunks, headers=FORM)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "durq_session" not in guarded.cookies


def test_a_body_longer_than_its_content_length_is_cut_off_at_the_limit(
    guarded: TestClient,
) -> None:
    # The server frames the body by its Content-Length; this counts what actually arrives.
    headers = {**FORM, "content-length": "100"}
    body = b"csrf_token=" + csrf_of(guarded).encode() + b"&next=" + b"x" * MAX_BODY_BYTES
    response = guarded.post("/login", content=body, headers=headers)
    assert response.status_code == 413
    assert "durq_session" not in guarded.cookies


@pytest.mark.parametrize("length", ["+5", "1_0", "\u0665", "-1", "5, 5", " 5"])
def test_a_malformed_content_length_is_refused(guarded: TestClient, length: str) -> None:
    headers: dict[str, str | bytes] = {**FORM, "content-length": length.encode()}
    response = guarded.post("/login", content=b"token=x", headers=headers)
    assert response.status_code == 400 and response.text == "bad Content-Length header\n"


def test_forms_are_bounded_in_fields_files_and_field_size(
    client: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    csrf = csrf_of(client)
    url = f"/jobs/{scene.queued.id}/cancel"
    many = {"csrf_token": csrf, **{f"f{i}": "1" for i in range(20)}}
    assert client.post(url, data=many).status_code == 400
    big = {"csrf_token": csrf, "next": "/" + "x" * 5000}
    assert client.post(url, data=big).status_code == 400
    upload = client.post(url, data={"csrf_token": csrf}, files={"f": ("a.txt", b"data")})
    assert upload.status_code == 400 and "Too many files" in upload.text
    assert queue.get(scene.queued.id).state is durq.JobState.QUEUED


def test_a_form_without_its_csrf_cookie_is_refused_unread(guarded: TestClient) -> None:
    # No cookie: refused before the body is parsed, however it looks.
    response = guarded.post("/login", content=b"%%%" * 100, headers=FORM)
    assert response.status_code == 403


# -- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["   ", "\n", "\t \r\n", "short-token", " fifteen-chars!! \n"])
def test_create_app_and_serve_refuse_blank_and_short_tokens(
    queue: durq.JobQueue, queue_url: str, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    ran: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: ran.append(a))
    with pytest.raises(InsecureBind, match=r"^refusing a dashboard token of \d+ characters"):
        create_app(queue, token=token)
    for host in ("127.0.0.1", "0.0.0.0"):
        with pytest.raises(InsecureBind) as info:
            serve(queue_url, host, 8000, token)
        assert "\n" not in str(info.value) and "at least 16" in str(info.value)
    monkeypatch.setenv("DURQ_DASHBOARD_TOKEN", token)
    with pytest.raises(InsecureBind):
        serve(queue_url, "0.0.0.0", 8000, None)
    assert ran == []


def test_a_token_with_a_trailing_newline_works_in_the_form_and_as_bearer(
    queue: durq.JobQueue, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a Kubernetes secret mounted into $DURQ_DASHBOARD_TOKEN arrives.
    monkeypatch.setenv("DURQ_DASHBOARD_TOKEN", TOKEN + "\n")
    ran: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: ran.append(app))
    serve(queue_url, "0.0.0.0", 8000, None)
    assert ran[0].state.token == TOKEN

    with TestClient(create_app(queue, token=TOKEN + "\n")) as c:
        assert c.get("/api/stats", headers=BEARER).status_code == 200
        spaced = {"authorization": f"Bearer  {TOKEN} "}
        assert c.get("/api/stats", headers=spaced).status_code == 200
        wrong = c.get("/api/stats", headers={"authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        # Typed or pasted with its newline, the token logs in.
        assert login(c, TOKEN + "\n").status_code == 303
        assert logged_in(c)
    with TestClient(create_app(queue, token=TOKEN + "\n")) as c:
        assert login(c, TOKEN).status_code == 303 and logged_in(c)


# -- sessions ------------------------------------------------------------------------------


def test_logout_ends_the_session_even_for_a_kept_copy_of_the_cookie(
    guarded: TestClient,
) -> None:
    ok = login(guarded)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert f"Max-Age={SESSION_SECONDS}" in cookie and TOKEN not in cookie
    stolen = guarded.cookies["durq_session"]
    assert logged_in(guarded)

    out = guarded.post("/logout", data={"csrf_token": csrf_of(guarded)}, follow_redirects=False)
    assert out.status_code == 303
    # The browser forgot it; a copy kept elsewhere (a stolen cookie) is refused too.
    guarded.cookies.set("durq_session", stolen)
    assert not logged_in(guarded)
    api = guarded.get("/api/stats")
    assert api.status_code == 401
    # A new login is a new session.
    guarded.cookies.delete("durq_session")
    again = login(guarded)
    assert again.status_code == 303 and logged_in(guarded)
    assert stolen not in again.headers["set-cookie"]


def test_a_session_expires(queue: durq.JobQueue) -> None:
    app = create_app(queue, token=TOKEN)
    clock = Clock()
    app.state.sessions.clock = clock
    with TestClient(app) as c:
        assert login(c).status_code == 303 and logged_in(c)
        clock.now += SESSION_SECONDS - 60
        assert logged_in(c)
        clock.now += 61
        assert not logged_in(c)
        assert c.get("/api/stats").status_code == 401


def test_old_future_and_forged_session_cookies_are_refused(queue: durq.JobQueue) -> None:
    app = create_app(queue, token=TOKEN)
    sessions: Sessions = app.state.sessions
    now = int(time.time())
    with TestClient(app) as c:
        for value in (
            sessions.sign(now - SESSION_SECONDS - 1, "an-old-session-id-000001"),
            sessions.sign(now + 3600, "a-future-session-id-0001"),
            tampered(sessions.sign(now, "a-fresh-session-id-00001")),
            Sessions(TOKEN).sign(now, "another-apps-session-001"),  # another start's key
            "1.2.3",
            "",
        ):
            c.cookies.set("durq_session", value)
            assert not logged_in(c), value
        c.cookies.set("durq_session", sessions.sign(now - 60, "a-fresh-session-id-00001"))
        assert logged_in(c)


def test_a_restart_ends_every_session(queue: durq.JobQueue) -> None:
    with TestClient(create_app(queue, token=TOKEN)) as first:
        assert login(first).status_code == 303
        cookie = first.cookies["durq_session"]
    with TestClient(create_app(queue, token=TOKEN)) as second:
        second.cookies.set("durq_session", cookie)
        assert not logged_in(second)


# -- queue names . and .. ------------------------------------------------------------------


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_queues_can_be_paused_and_resumed_from_the_page(
    client: TestClient, queue: durq.JobQueue, name: str
) -> None:
    queue.enqueue({"n": 1}, queue=name)
    page = client.get("/").text
    row = re.search(rf'<tr data-queue="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert row is not None
    assert 'action="/queues/pause"' in row.group(1)
    assert f'name="name" value="{name}"' in row.group(1)

    paused = post(client, "/queues/pause", name=name, next="/")
    assert flash_after(client, paused) == f"ok: Queue {name} paused."
    assert queue.stats()["queues"][name]["paused"] is True
    assert 'action="/queues/resume"' in client.get("/").text
    resumed = post(client, "/queues/resume", name=name)
    assert flash_after(client, resumed) == f"ok: Queue {name} resumed."
    assert queue.stats()["queues"][name]["paused"] is False


def test_queue_action_form_refuses_a_missing_or_bad_name(
    client: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    missing = post(client, "/queues/pause")
    assert missing.status_code == 400 and "name the queue" in missing.text
    bad = post(client, "/queues/pause", name="../etc")
    assert bad.status_code == 400 and "bad queue name" in bad.text
    # The old route with the name in the path still works for scripts.
    assert flash_after(client, post(client, "/queues/mail/pause")) == "ok: Queue mail paused."
    assert [n for n, q in queue.stats()["queues"].items() if q["paused"]] == ["mail"]


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_queues_through_the_api(guarded: TestClient, queue: durq.JobQueue, name: str) -> None:
    queue.enqueue({"n": 1}, queue=name)
    dots = name.replace(".", "%2E")
    paused = guarded.post(f"/api/queues/{dots}/pause", headers=BEARER)
    assert paused.json() == {"queue": name, "paused": True}
    assert queue.stats()["queues"][name]["paused"] is True
    resumed = guarded.post("/api/queues/resume", params={"name": name}, headers=BEARER)
    assert resumed.json() == {"queue": name, "paused": False}
    assert queue.stats()["queues"][name]["paused"] is False
    again = guarded.post("/api/queues/pause", params={"name": name}, headers=BEARER)
    assert again.json() == {"queue": name, "paused": True}
    missing = guarded.post("/api/queues/pause", headers=BEARER)
    assert missing.status_code == 400 and "name the queue" in missing.json()["error"]


# -- security headers on failures ----------------------------------------------------------


class BrokenStats:
    """A queue whose ``stats()`` fails the way a bug would: not a ``DurqError``."""

    def __init__(self, queue: durq.JobQueue) -> None:
        self._queue = queue

    def stats(self) -> dict[str, Any]:
        raise RuntimeError("stats exploded")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def test_a_500_carries_the_security_headers(queue: durq.JobQueue) -> None:
    app = create_app(queue)
    app.state.queue = BrokenStats(queue)
    with TestClient(app, raise_server_exceptions=False) as c:
        page = c.get("/")
        api = c.get("/api/stats")
    assert page.status_code == api.status_code == 500
    assert_security_headers(page.headers)
    assert_security_headers(api.headers)
    assert "stats exploded" not in page.text + api.text
    assert api.json() == {"error": "internal server error: the dashboard's log has the details"}
    with TestClient(app) as strict, pytest.raises(RuntimeError, match="stats exploded"):
        strict.get("/")  # the error still reaches the server, which logs it


def test_refusals_and_errors_carry_the_security_headers(
    guarded: TestClient, queue: durq.JobQueue
) -> None:
    for response in (
        guarded.get("/api/stats"),  # 401
        guarded.get("/", follow_redirects=False),  # 303 to /login
        guarded.post("/api/queues/x/pause", headers={**BEARER, "origin": "https://evil.example"}),
        guarded.get("/api/jobs", params={"limit": "+5"}, headers=BEARER),  # 400
        guarded.get("/api/nothing", headers=BEARER),  # 404
    ):
        assert_security_headers(response.headers)


# -- strict numbers and ids ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "+5"}, "limit must be a whole number from 1 to 1000, not '+5'"),
        ({"limit": "1_000"}, "limit must be a whole number from 1 to 1000, not '1_000'"),
        ({"limit": "\u0665"}, "limit must be a whole number from 1 to 1000, not '\u0665'"),
        ({"limit": " 5"}, "limit must be a whole number from 1 to 1000, not ' 5'"),
        ({"limit": "-1"}, "limit must be a whole number from 1 to 1000, not '-1'"),
        ({"limit": "1001"}, "limit must be at most 1000, not 1001"),
        ({"limit": "0"}, "limit must be at least 1, not 0"),
        ({"limit": "9" * 5000}, "limit must be at most 1000, not 9999999999"),
        ({"before": "garbage"}, "before must be a job id (a UUID string), not 'garbage'"),
        ({"before": "0" * 36}, "before must be a job id"),
    ],
)
def test_strict_numbers_and_paging_bounds(
    client: TestClient, queue: durq.JobQueue, scene: Scene, params: dict[str, str], message: str
) -> None:
    before = client.get("/api/jobs").json()
    for path in ("/api/jobs", "/jobs", "/partials/jobs"):
        response = client.get(path, params=params)
        assert response.status_code == 400, (path, params)
        assert message in error_text(response)
    assert client.get("/api/jobs").json() == before


def test_plain_limits_and_job_ids_still_work(client: TestClient, scene: Scene) -> None:
    assert len(client.get("/api/jobs", params={"limit": "0002"}).json()["jobs"]) == 2
    assert len(client.get("/api/jobs", params={"limit": "1000"}).json()["jobs"]) == 5
    rest = client.get("/api/jobs", params={"before": scene.cancelled.id}).json()["jobs"]
    assert [j["id"] for j in rest] == [scene.unprocessable.id, scene.succeeded.id]
    # An id that cannot be a job's is a 404 without a database read; upper case is a UUID
    # (imports keep the case they came with), looked up as usual.
    assert client.get("/api/jobs/not-a-uuid").json()["error"] == "no job not-a-uuid"
    unknown = str(uuid.uuid4()).upper()
    assert client.get(f"/api/jobs/{unknown}").json()["error"] == f"no job {unknown}"


BIG = "A" * 60_000


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/jobs", {"limit": BIG}),
        ("/api/jobs", {"before": BIG}),
        ("/api/jobs", {"state": BIG}),
        ("/api/jobs", {"queue": BIG}),
        ("/api/jobs", {"task": BIG}),
        ("/api/jobs/" + BIG, {}),
        ("/jobs", {"queue": BIG}),
        ("/jobs/" + BIG, {}),
    ],
)
def test_a_huge_bad_value_is_echoed_cut_short(
    client: TestClient, scene: Scene, path: str, params: dict[str, str]
) -> None:
    response = client.get(path, params=params)
    assert response.status_code in (400, 404)
    assert "A" * 41 not in response.text
    assert "A" * 40 + "…" in error_text(response)
    assert len(response.content) < 5_000


def test_a_huge_bad_value_in_an_api_write_is_echoed_cut_short(
    client: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    for response in (
        client.post("/api/jobs/cancel", params={"state": BIG}),
        client.post("/api/jobs/cancel", params={"state": "queued", "queue": BIG}),
        client.post("/api/queues/pause", params={"name": BIG}),
    ):
        assert response.status_code == 400
        assert response.json()["error"].count("A") <= 41
    assert queue.get(scene.queued.id).state is durq.JobState.QUEUED
