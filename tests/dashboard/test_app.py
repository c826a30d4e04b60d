"""The dashboard through Starlette's TestClient: every route, action, error and security rule."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from starlette.testclient import TestClient

import durq
from durq.dashboard import InsecureBind, serve
from durq.dashboard.app import create_app
from durq.dashboard.binding import is_loopback

from .forms import TOKEN, csrf_of, flash_after, post
from .scenes import Scene, make_unprocessable


class FormNesting(HTMLParser):
    """Counts forms opened inside forms: browsers drop the inner tag, so its button would
    submit the outer form (a GET that leaks the CSRF token into the URL)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = self.nested = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "form":
            self.nested += self.depth > 0
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.depth -= 1


def nested_forms(html: str) -> int:
    parser = FormNesting()
    parser.feed(html)
    return parser.nested


def without_ages(stats: dict[str, Any]) -> dict[str, Any]:
    """``stats()`` less the oldest-queued ages, which grow between two reads."""
    queues = {
        name: {k: v for k, v in entry.items() if k != "oldest_queued_age"}
        for name, entry in stats["queues"].items()
    }
    return {**stats, "queues": queues}


# -- pages ---------------------------------------------------------------------------------


def test_overview_shows_queues_counts_pause_state_and_chart(
    client: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    queue.pause("mail")
    page = client.get("/")
    assert page.status_code == 200
    row = re.search(r'<tr data-queue="mail">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "paused" in row.group(1) and "Resume" in row.group(1)
    assert 'href="/jobs?state=unprocessable&amp;queue=mail">1</a>' in row.group(1)
    default = re.search(r'<tr data-queue="default">(.*?)</tr>', page.text, re.S)
    assert default is not None and "active" in default.group(1) and "Pause" in default.group(1)
    assert '<svg class="chart-plot"' in page.text
    assert "attempts finished per minute, last hour: 2" in page.text
    assert 'data-live="/partials/overview"' in page.text
    assert '<script src="/static/dashboard.js"' in page.text

    partial = client.get("/partials/overview")
    assert partial.status_code == 200
    assert "<html" not in partial.text and 'data-queue="mail"' in partial.text


def test_overview_without_jobs(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "No queues yet" in page.text


def test_jobs_page_lists_newest_first_and_filters(client: TestClient, scene: Scene) -> None:
    page = client.get("/jobs")
    ids = re.findall(r'<tr data-job="([^"]+)">', page.text)
    expected = [scene.queued, scene.xss, scene.cancelled, scene.unprocessable, scene.succeeded]
    assert ids == [j.id for j in expected]

    only = client.get("/jobs", params={"state": "unprocessable"})
    assert re.findall(r'<tr data-job="([^"]+)">', only.text) == [scene.unprocessable.id]
    assert "Resubmit all unprocessable" in only.text and "Cancel all unprocessable" in only.text
    assert nested_forms(only.text) == 0

    by_queue = client.get("/jobs", params={"queue": "mail"})
    assert re.findall(r'<tr data-job="([^"]+)">', by_queue.text) == [scene.unprocessable.id]

    none = client.get("/jobs", params={"state": "running"})
    assert "No jobs match this filter." in none.text
    assert "Resubmit all" not in none.text and "Cancel all" not in none.text

    partial = client.get("/partials/jobs", params={"state": "cancelled"})
    assert re.findall(r'<tr data-job="([^"]+)">', partial.text) == [scene.cancelled.id]
    assert "<html" not in partial.text


def test_jobs_page_keyset_paging(client: TestClient, queue: durq.JobQueue) -> None:
    made = [j.id for j in queue.enqueue_many([{"n": i} for i in range(5)])][::-1]
    first = client.get("/jobs", params={"limit": "2"})
    assert re.findall(r'<tr data-job="([^"]+)">', first.text) == made[:2]
    link = re.search(r'id="next-page" href="([^"]+)"', first.text)
    assert link is not None
    next_url = link.group(1).replace("&amp;", "&")
    assert f"before={made[1]}" in next_url
    second = client.get(next_url)
    assert re.findall(r'<tr data-job="([^"]+)">', second.text) == made[2:4]
    assert "Newest" in second.text
    third = client.get(
        re.search(r'id="next-page" href="([^"]+)"', second.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    )
    assert re.findall(r'<tr data-job="([^"]+)">', third.text) == made[4:]
    assert 'id="next-page"' not in third.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "bogus"}, "unknown state &#39;bogus&#39;"),
        ({"queue": "bad queue!"}, "bad queue name"),
        ({"limit": "many"}, "limit must be a whole number"),
        ({"limit": "5000"}, "limit must be at most 1000"),
    ],
)
def test_jobs_page_bad_filter_is_a_400_message(
    client: TestClient, scene: Scene, params: dict[str, str], message: str
) -> None:
    page = client.get("/jobs", params=params)
    assert page.status_code == 400
    assert message in page.text and "<h1>Bad request</h1>" in page.text


def test_job_detail_shows_payload_result_attempts_and_traceback(
    client: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    page = client.get(f"/jobs/{scene.unprocessable.id}")
    assert page.status_code == 200
    assert "a@example.org" in page.text
    assert "worker-a" in page.text
    assert "ValueError: bad input" in page.text and 'class="traceback"' in page.text
    assert "/resubmit" in page.text and "/cancel" in page.text and "/delete" in page.text

    done = client.get(f"/jobs/{scene.succeeded.id}")
    assert "&lt;i&gt;result&lt;/i&gt;" in done.text
    assert "/resubmit" in done.text and "/delete" in done.text and "/cancel" not in done.text

    waiting = client.get(f"/jobs/{scene.queued.id}")
    assert "Not attempted yet." in waiting.text
    assert "/cancel" in waiting.text
    assert "/resubmit" not in waiting.text and "/delete" not in waiting.text


def test_a_running_job_can_only_be_cancelled(client: TestClient, queue: durq.JobQueue) -> None:
    job = queue.enqueue({"n": 1})
    assert queue.claim("worker-b") is not None
    page = client.get(f"/jobs/{job.id}")
    assert 'badge-running">running' in page.text
    assert "/resubmit" not in page.text and "/delete" not in page.text
    assert f"/jobs/{job.id}/cancel" in page.text
    done = post(client, f"/jobs/{job.id}/cancel")
    assert done.status_code == 303
    assert queue.get(job.id).state is durq.JobState.CANCELLED
    assert [a.outcome for a in queue.attempts(job.id)] == [durq.Outcome.CANCELLED]


def test_unknown_job_is_a_404_page(client: TestClient, scene: Scene) -> None:
    page = client.get("/jobs/no-such-job")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text and "no job no-such-job" in page.text
    for action in ("resubmit", "cancel", "delete"):
        assert post(client, f"/jobs/no-such-job/{action}").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert post(client, f"/jobs/{scene.queued.id}/explode").status_code == 404


def test_workers_page(client: TestClient, queue: durq.JobQueue) -> None:
    assert "No live workers" in client.get("/workers").text
    queue.worker_heartbeat("worker-b", host="box-1", pid=4242, queues=["mail", "default"])
    job = queue.enqueue({"n": 1}, queue="mail")
    assert queue.claim("worker-b", ["mail"]) is not None
    page = client.get("/workers")
    assert "worker-b" in page.text and "box-1" in page.text and "4242" in page.text
    assert "mail, default" in page.text
    assert f'href="/jobs/{job.id}"' in page.text
    assert re.search(r"\d+ ms ago|\d+(\.\d)? s ago", page.text)


# -- actions -------------------------------------------------------------------------------


def test_resubmit_one_job(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    job_id = scene.unprocessable.id
    response = post(client, f"/jobs/{job_id}/resubmit", next=f"/jobs/{job_id}")
    assert response.headers["location"] == f"/jobs/{job_id}"
    assert flash_after(client, response) == f"ok: Job {job_id} resubmitted."
    assert queue.get(job_id).state == durq.JobState.QUEUED
    # The flash shows once.
    assert 'role="status"' not in client.get(f"/jobs/{job_id}").text


def test_cancel_one_job(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    response = post(client, f"/jobs/{scene.queued.id}/cancel")
    assert flash_after(client, response) == f"ok: Job {scene.queued.id} cancelled."
    assert queue.get(scene.queued.id).state == durq.JobState.CANCELLED


def test_delete_one_job(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    response = post(client, f"/jobs/{scene.cancelled.id}/delete")
    assert response.headers["location"] == "/jobs"
    assert flash_after(client, response) == f"ok: Job {scene.cancelled.id} deleted."
    with pytest.raises(durq.JobNotFound):
        queue.get(scene.cancelled.id)


@pytest.mark.parametrize(
    ("job_name", "action"),
    [("succeeded", "cancel"), ("queued", "resubmit"), ("queued", "delete")],
)
def test_action_in_wrong_state_is_a_message_not_a_500(
    client: TestClient, queue: durq.JobQueue, scene: Scene, job_name: str, action: str
) -> None:
    job = getattr(scene, job_name)
    response = post(client, f"/jobs/{job.id}/{action}")
    message = flash_after(client, response)
    assert message == f"error: cannot {action} job {job.id}: it is {job.state.value}"
    assert queue.get(job.id) == job


def test_bulk_resubmit_and_cancel(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    other = make_unprocessable(queue, {"n": 9}, name="billing")
    response = post(client, "/jobs/resubmit", state="unprocessable", queue="mail")
    assert flash_after(client, response) == "ok: 1 unprocessable job in queue mail resubmitted."
    assert queue.get(scene.unprocessable.id).state == durq.JobState.QUEUED
    assert queue.get(other.id).state == durq.JobState.UNPROCESSABLE

    response = post(client, "/jobs/cancel", state="queued", next="/jobs?state=queued")
    assert response.headers["location"] == "/jobs?state=queued"
    assert flash_after(client, response) == "ok: 3 queued jobs cancelled."
    for job in (scene.queued, scene.xss, scene.unprocessable):
        assert queue.get(job.id).state == durq.JobState.CANCELLED


def test_bulk_action_refusals(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    before = client.get("/api/jobs").json()
    response = post(client, "/jobs/resubmit", state="queued")
    assert flash_after(client, response).startswith("error: only jobs that are")
    bad = post(client, "/jobs/cancel", state="bogus")
    assert bad.status_code == 400 and "unknown state" in bad.text
    missing = post(client, "/jobs/cancel")
    assert missing.status_code == 400 and "choose a state" in missing.text
    assert client.get("/api/jobs").json() == before


def test_pause_and_resume_a_queue(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    response = post(client, "/queues/mail/pause", next="/")
    assert flash_after(client, response) == "ok: Queue mail paused."
    assert queue.stats()["queues"]["mail"]["paused"] is True
    response = post(client, "/queues/mail/resume")
    assert flash_after(client, response) == "ok: Queue mail resumed."
    assert queue.stats()["queues"]["mail"]["paused"] is False
    bad = post(client, "/queues/bad%20name/pause")
    assert bad.status_code == 400 and "bad queue name" in bad.text
    assert "bad name" not in queue.stats()["queues"]


def test_next_must_be_a_local_path(client: TestClient, scene: Scene) -> None:
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = post(client, "/queues/mail/pause", next=evil)
        assert response.headers["location"] == "/"


# -- JSON API ------------------------------------------------------------------------------


def test_api_reads(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    listed = client.get("/api/jobs", params={"state": "unprocessable"}).json()
    assert listed == {"jobs": [queue.get(scene.unprocessable.id).to_dict()], "next_before": None}
    page = client.get("/api/jobs", params={"limit": "2"}).json()
    assert [j["id"] for j in page["jobs"]] == [scene.queued.id, scene.xss.id]
    assert page["next_before"] == scene.xss.id
    rest = client.get("/api/jobs", params={"limit": "2", "before": page["next_before"]}).json()
    assert [j["id"] for j in rest["jobs"]] == [scene.cancelled.id, scene.unprocessable.id]

    detail = client.get(f"/api/jobs/{scene.unprocessable.id}").json()
    assert detail["job"] == queue.get(scene.unprocessable.id).to_dict()
    assert [a["outcome"] for a in detail["attempts"]] == ["unprocessable"]
    assert detail["attempts"][0]["worker_id"] == "worker-a"

    assert without_ages(client.get("/api/stats").json()) == without_ages(queue.stats())
    queue.worker_heartbeat("worker-c", host="h", pid=7, queues=None)
    workers = client.get("/api/workers").json()["workers"]
    assert [(w["id"], w["host"], w["pid"], w["queues"]) for w in workers] == [
        ("worker-c", "h", 7, [])
    ]


def test_api_writes(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    resubmitted = client.post(f"/api/jobs/{scene.unprocessable.id}/resubmit")
    assert resubmitted.status_code == 200
    assert resubmitted.json() == queue.get(scene.unprocessable.id).to_dict()
    assert resubmitted.json()["state"] == "queued"

    cancelled = client.post(f"/api/jobs/{scene.queued.id}/cancel").json()
    assert cancelled["state"] == "cancelled"

    assert client.delete(f"/api/jobs/{scene.succeeded.id}").json() == {
        "deleted": scene.succeeded.id
    }
    with pytest.raises(durq.JobNotFound):
        queue.get(scene.succeeded.id)

    bulk = client.post("/api/jobs/cancel", params={"state": "queued", "queue": "default"})
    assert bulk.json() == {"cancelled": 1}  # the xss job; the resubmitted one is in "mail"
    again = client.post("/api/jobs/resubmit", params={"state": "cancelled"})
    assert again.json() == {"resubmitted": 3}

    assert client.post("/api/queues/mail/pause").json() == {"queue": "mail", "paused": True}
    assert queue.stats()["queues"]["mail"]["paused"] is True
    assert client.post("/api/queues/mail/resume").json() == {"queue": "mail", "paused": False}
    assert queue.stats()["queues"]["mail"]["paused"] is False


def test_api_errors(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    before = client.get("/api/jobs").json()
    cases = [
        (client.get("/api/jobs", params={"state": "bogus"}), 400, "unknown state"),
        (client.get("/api/jobs", params={"limit": "0"}), 400, "limit must be at least 1"),
        (client.get("/api/jobs/nope"), 404, "no job nope"),
        (client.post("/api/jobs/nope/cancel"), 404, "no job nope"),
        (client.delete("/api/jobs/nope"), 404, "no job nope"),
        (client.post(f"/api/jobs/{scene.succeeded.id}/cancel"), 409, "cannot cancel"),
        (client.delete(f"/api/jobs/{scene.queued.id}"), 409, "cannot delete"),
        (client.post("/api/jobs/resubmit"), 400, "state query parameter is required"),
        (client.post("/api/jobs/resubmit", params={"state": "queued"}), 409, "only jobs"),
        (client.post("/api/queues/bad!/pause"), 400, "bad queue name"),
        (client.get("/api/nothing"), 404, "no such page"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/json"
        assert message in response.json()["error"]
    assert client.get("/api/jobs").json() == before


# -- /metrics and /healthz -----------------------------------------------------------------


def test_metrics(client: TestClient, queue: durq.JobQueue, scene: Scene) -> None:
    queue.pause("mail")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'durq_jobs{queue="mail",state="unprocessable"} 1.0' in text
    assert 'durq_jobs{queue="default",state="queued"} 2.0' in text
    assert 'durq_jobs{queue="default",state="running"} 0.0' in text
    assert re.search(r'durq_oldest_queued_age_seconds\{queue="default"\} [0-9.e-]+', text)
    assert 'durq_queue_paused{queue="mail"} 1.0' in text
    assert "# TYPE durq_attempts_total counter" in text
    assert 'durq_attempts_total{outcome="succeeded"} 1.0' in text
    assert 'durq_attempts_total{outcome="unprocessable"} 1.0' in text
    assert "# TYPE durq_attempt_duration_seconds histogram" in text
    assert 'durq_attempt_duration_seconds_bucket{le="+Inf",outcome="succeeded"} 1.0' in text
    assert 'durq_attempt_duration_seconds_count{outcome="unprocessable"} 1.0' in text
    # Read at scrape time: a new job shows on the next scrape.
    queue.enqueue({"n": 4})
    assert 'durq_jobs{queue="default",state="queued"} 3.0' in client.get("/metrics").text


def test_healthz(client: TestClient, queue: durq.JobQueue) -> None:
    ok = client.get("/healthz")
    assert (ok.status_code, ok.text) == (200, "ok\n")
    queue.close()
    down = client.get("/healthz")
    assert down.status_code == 503 and "unavailable" in down.text


# -- security ------------------------------------------------------------------------------


def test_payload_result_and_error_text_are_escaped(client: TestClient, scene: Scene) -> None:
    for job in (scene.xss, scene.unprocessable):
        page = client.get(f"/jobs/{job.id}").text
        assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/jobs/{scene.xss.id}").text
    failed = client.get(f"/jobs/{scene.unprocessable.id}").text
    assert "ValueError: bad input &lt;script&gt;" in failed
    assert "<script>alert" not in client.get("/jobs?state=unprocessable").text


def test_pages_send_security_headers(client: TestClient) -> None:
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    cookie = headers["set-cookie"]
    assert cookie.startswith("durq_csrf=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie


@pytest.mark.parametrize("token", [None, "", "forged-token-value-forged-token-value"])
def test_post_without_a_good_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, queue: durq.JobQueue, scene: Scene, token: str | None
) -> None:
    csrf_of(client)  # the browser has its cookie; the form lacks or forges the field
    data = {} if token is None else {"csrf_token": token}
    before = [queue.get(j.id) for j in (scene.unprocessable, scene.queued, scene.cancelled)]
    for url in (
        f"/jobs/{scene.unprocessable.id}/resubmit",
        f"/jobs/{scene.queued.id}/cancel",
        f"/jobs/{scene.cancelled.id}/delete",
        "/jobs/resubmit",
        "/queues/mail/pause",
    ):
        fields = {**data, "state": "unprocessable"} if url == "/jobs/resubmit" else data
        response = client.post(url, data=fields, follow_redirects=False)
        assert response.status_code == 403, url
        assert "CSRF token is missing or wrong" in response.text
    after = [queue.get(j.id) for j in (scene.unprocessable, scene.queued, scene.cancelled)]
    assert after == before
    assert queue.stats()["queues"]["mail"]["paused"] is False


def test_csrf_field_without_its_cookie_is_refused(client: TestClient, scene: Scene) -> None:
    token = csrf_of(client)
    client.cookies.clear()
    response = client.post(
        f"/jobs/{scene.queued.id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
    ],
)
def test_cross_origin_writes_are_refused(
    client: TestClient, queue: durq.JobQueue, scene: Scene, headers: dict[str, str]
) -> None:
    token = csrf_of(client)
    form = client.post(
        f"/jobs/{scene.queued.id}/cancel",
        data={"csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )
    api = client.post(f"/api/jobs/{scene.queued.id}/cancel", headers=headers)
    assert form.status_code == api.status_code == 403
    assert api.json() == {"error": "cross-origin request refused"}
    assert queue.get(scene.queued.id).state == durq.JobState.QUEUED
    # Reads stay allowed (links from elsewhere work), and a same-origin write passes.
    assert client.get("/jobs", headers=headers).status_code == 200
    same = client.post(
        f"/api/jobs/{scene.queued.id}/cancel", headers={"origin": "http://testserver"}
    )
    assert same.status_code == 200


def test_token_pages_redirect_to_login(guarded: TestClient, scene: Scene) -> None:
    for path in ("/", "/jobs?state=queued", f"/jobs/{scene.queued.id}", "/workers"):
        response = guarded.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=%2F")
    assert "Log in" in guarded.get("/jobs?state=queued").text  # followed to the form
    assert guarded.get("/healthz").status_code == 200  # open on purpose
    assert guarded.get("/static/dashboard.css").status_code == 200


def test_token_api_needs_bearer_or_cookie(
    guarded: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    for method, path in (
        ("GET", "/api/jobs"),
        ("GET", "/api/stats"),
        ("GET", "/metrics"),
        ("POST", f"/api/jobs/{scene.queued.id}/cancel"),
        ("DELETE", f"/api/jobs/{scene.cancelled.id}"),
        ("POST", "/api/queues/mail/pause"),
    ):
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
            response = guarded.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"].startswith("authentication required")
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert queue.get(scene.queued.id).state == durq.JobState.QUEUED
    assert queue.get(scene.cancelled.id).state == durq.JobState.CANCELLED
    assert queue.stats()["queues"]["mail"]["paused"] is False

    bearer = {"authorization": f"Bearer {TOKEN}"}
    stats = guarded.get("/api/stats", headers=bearer).json()
    assert without_ages(stats) == without_ages(queue.stats())
    assert guarded.get("/metrics", headers=bearer).status_code == 200
    cancelled = guarded.post(f"/api/jobs/{scene.queued.id}/cancel", headers=bearer)
    assert cancelled.json()["state"] == "cancelled"


def test_login_sets_a_strict_httponly_cookie(
    guarded: TestClient, queue: durq.JobQueue, scene: Scene
) -> None:
    form = guarded.get("/login?next=/workers")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    wrong = guarded.post("/login", data={"csrf_token": csrf, "token": "nope", "next": "/workers"})
    assert wrong.status_code == 401 and "Wrong token." in wrong.text
    assert "durq_session" not in guarded.cookies

    no_csrf = guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert no_csrf.status_code == 403 and "durq_session" not in guarded.cookies

    ok = guarded.post(
        "/login",
        data={"csrf_token": csrf, "token": TOKEN, "next": "/workers"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/workers"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith("durq_session=") and TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")

    assert guarded.get("/", follow_redirects=False).status_code == 200
    # The cookie works for the API too.
    assert without_ages(guarded.get("/api/stats").json()) == without_ages(queue.stats())
    response = post(guarded, f"/jobs/{scene.queued.id}/cancel")
    assert flash_after(guarded, response).startswith("ok:")

    out = guarded.post("/logout", data={"csrf_token": csrf_of(guarded)}, follow_redirects=False)
    assert out.headers["location"] == "/login"
    assert guarded.get("/", follow_redirects=False).status_code == 303


def test_login_page_without_a_token_goes_home(client: TestClient) -> None:
    response = client.get("/login", follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/")


def test_host_check_against_dns_rebinding(queue: durq.JobQueue) -> None:
    app = create_app(queue, allowed_hosts={"127.0.0.1", "localhost"})
    with TestClient(app, base_url="http://evil.example") as evil:
        assert evil.get("/api/stats").status_code == 400
    with TestClient(app, base_url="http://localhost:8000") as local:
        assert local.get("/api/stats").status_code == 200


# -- serve() -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org", ""])
def test_serve_refuses_a_public_address_without_a_token(
    host: str, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURQ_DASHBOARD_TOKEN", raising=False)
    ran: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: ran.append(a))
    with pytest.raises(InsecureBind) as info:
        serve(queue_url, host, 8000, None)
    assert isinstance(info.value, durq.DurqError)
    assert "without a token" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InsecureBind):
        serve(queue_url, host, 8000, "")
    assert ran == []


@pytest.mark.parametrize(
    ("host", "token", "env"),
    [
        ("127.0.0.1", None, None),
        ("localhost", None, None),
        ("::1", None, None),
        ("0.0.0.0", "t0ken-of-16-chars", None),
        ("0.0.0.0", None, "from-env-0123456789"),
    ],
)
def test_serve_runs_uvicorn_when_allowed(
    host: str,
    token: str | None,
    env: str | None,
    queue_url: str,
    queue: durq.JobQueue,  # the database must exist: serve() never creates one
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if env is None:
        monkeypatch.delenv("DURQ_DASHBOARD_TOKEN", raising=False)
    else:
        monkeypatch.setenv("DURQ_DASHBOARD_TOKEN", env)
    ran: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: ran.append((app, kw)))
    serve(queue_url, host, 8123, token)
    [(app, kw)] = ran
    assert (kw["host"], kw["port"]) == (host, 8123)
    assert app.state.token == (token or env)


def test_is_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "example.org", ""))
