"""The HTML pages and the actions their buttons post. Every read and write is a ``JobQueue``
call, run in a worker thread so a slow database never stalls the event loop."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from durq.dashboard import params
from durq.dashboard.charts import throughput_chart
from durq.dashboard.params import PAGE_SIZE
from durq.dashboard.rendering import redirect_with_flash, render
from durq.dashboard.security import SESSION_COOKIE, checked_form, form_value, safe_next, same_value
from durq.dashboard.sessions import Sessions
from durq.errors import InvalidJob, InvalidState
from durq.history import numbered
from durq.queue import JobInsights, JobQueue


def queue_of(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


def short_ids(queue: JobQueue, ids: list[str]) -> dict[str, str]:
    """Each id as a list shows it: its shortest unique start (``JobQueue.short_ids``, which
    ``durq jobs show`` takes back). Links always use the whole id."""
    return queue.short_ids(ids) if ids else {}


def csrf_refused(request: Request) -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "Refused",
            "message": "The form's CSRF token is missing or wrong. Reload the page and try again.",
        },
        status_code=403,
    )


# -- overview ------------------------------------------------------------------------------


def _overview_context(queue: JobQueue) -> dict[str, Any]:
    stats = queue.stats()
    context: dict[str, Any] = {"stats": stats, "chart": None, "now": datetime.now(UTC)}
    if isinstance(queue, JobInsights):  # optional: a backend without it has no chart
        steps = queue.throughput()
        context["chart"] = throughput_chart(steps)
        context["finished_last_hour"] = sum(sum(counts.values()) for _, counts in steps)
    return context


async def overview(request: Request) -> Response:
    context = await run_in_threadpool(_overview_context, queue_of(request))
    return render(request, "overview.html", context)


async def overview_partial(request: Request) -> Response:
    context = await run_in_threadpool(_overview_context, queue_of(request))
    return render(request, "_overview.html", context)


# -- jobs ----------------------------------------------------------------------------------


def job_filter(request: Request) -> dict[str, Any]:
    """The jobs list's query parameters, each checked: ``list_jobs`` keyword arguments."""
    query = request.query_params
    return {
        "state": params.state(query.get("state")),
        "queue": params.queue_name(query.get("queue")),
        "task": params.task(query.get("task")),
        "limit": params.limit(query.get("limit")),
        "before": params.before(query.get("before")),
    }


def _jobs_context(request: Request) -> dict[str, Any]:
    chosen = job_filter(request)
    state, queue_name, task = chosen["state"], chosen["queue"], chosen["task"]
    limit, before = chosen["limit"], chosen["before"]
    queue = queue_of(request)
    jobs = queue.list_jobs(**chosen)
    filters = {k: v for k, v in (("state", state), ("queue", queue_name), ("task", task)) if v}
    if limit != PAGE_SIZE:
        filters["limit"] = str(limit)
    next_url = None
    if len(jobs) == limit:
        next_url = "/jobs?" + urlencode({**filters, "before": jobs[-1].id})
    return {
        "jobs": jobs,
        "state": state or "",
        "queue": queue_name or "",
        "task": task or "",
        "before": before,
        "filters": filters,
        "query": urlencode({**filters, **({"before": before} if before else {})}),
        "next_url": next_url,
        "first_url": "/jobs?" + urlencode(filters) if before else None,
        "short": short_ids(queue, [j.id for j in jobs]),
        **_bulk_offers(queue, state, queue_name, task, bool(jobs), before),
    }


def _bulk_offers(
    queue: JobQueue,
    state: str | None,
    queue_name: str | None,
    task: str | None,
    on_page: bool,
    before: str | None,
) -> dict[str, bool]:
    """Which bulk buttons the jobs page shows. The bulk actions take a state and a queue,
    not a task: none under a task filter, where they would act on more jobs than the page
    shows. None either when no job matches: a "Cancel all" that can only answer "0 jobs
    cancelled" is noise. A job on this page settles it; an empty later page asks the queue
    for one job of the filter (newer than this page, or gone since)."""
    resubmit = task is None and state in ("succeeded", "unprocessable", "cancelled")
    cancel = task is None and state in ("queued", "unprocessable")
    if (resubmit or cancel) and not on_page:
        matches = before is not None and bool(queue.list_jobs(state, queue_name, limit=1))
        resubmit, cancel = resubmit and matches, cancel and matches
    return {"can_resubmit_all": resubmit, "can_cancel_all": cancel}


async def jobs(request: Request) -> Response:
    context = await run_in_threadpool(_jobs_context, request)
    return render(request, "jobs.html", context)


async def jobs_partial(request: Request) -> Response:
    context = await run_in_threadpool(_jobs_context, request)
    return render(request, "_jobs.html", context)


def _job_context(queue: JobQueue, job_id: str) -> dict[str, Any]:
    job = queue.get(job_id)
    # Numbered straight through: a resubmit starts the job's attempt count again, so two
    # attempts can both be "attempt 1" in the records.
    return {"job": job, "history": numbered(queue.attempts(job_id))}


async def job_detail(request: Request) -> Response:
    job_id = params.job_id(request.path_params["id"])
    context = await run_in_threadpool(_job_context, queue_of(request), job_id)
    return render(request, "job.html", context)


# -- workers -------------------------------------------------------------------------------


def _workers_context(queue: JobQueue) -> dict[str, Any]:
    found = queue.workers()
    running = [w.current_job_id for w in found if w.current_job_id]
    return {"workers": found, "short": short_ids(queue, running)}


async def workers(request: Request) -> Response:
    context = await run_in_threadpool(_workers_context, queue_of(request))
    return render(request, "workers.html", context)


# -- actions -------------------------------------------------------------------------------

PAST_TENSE = {"resubmit": "resubmitted", "cancel": "cancelled", "delete": "deleted"}


async def job_action(request: Request) -> Response:
    """POST /jobs/{id}/resubmit|cancel|delete: one job. Unknown id -> 404 page."""
    form = await checked_form(request)
    if form is None:
        return csrf_refused(request)
    job_id = params.job_id(request.path_params["id"])
    action: str = request.path_params["action"]
    default = "/jobs" if action == "delete" else f"/jobs/{job_id}"
    back = safe_next(form.get("next"), default)
    queue = queue_of(request)
    try:
        await run_in_threadpool(getattr(queue, action), job_id)
    except InvalidState as exc:
        return redirect_with_flash(request, back, "error", str(exc))
    return redirect_with_flash(request, back, "ok", f"Job {job_id} {PAST_TENSE[action]}.")


def _bulk_filter(form: FormData) -> tuple[str, str | None]:
    state = params.state(form_value(form, "state"))
    if state is None:
        raise InvalidJob("choose a state for a bulk action")
    return state, params.queue_name(form_value(form, "queue"))


async def bulk_action(request: Request) -> Response:
    """POST /jobs/resubmit|cancel with state (and queue): every job of that filter."""
    form = await checked_form(request)
    if form is None:
        return csrf_refused(request)
    action: str = request.path_params["action"]
    back = safe_next(form.get("next"), "/jobs")
    state, queue_name = _bulk_filter(form)
    queue = queue_of(request)
    method = queue.resubmit_all if action == "resubmit" else queue.cancel_all
    try:
        n = await run_in_threadpool(method, state, queue_name)
    except InvalidState as exc:
        return redirect_with_flash(request, back, "error", str(exc))
    where = f" in queue {queue_name}" if queue_name else ""
    noun = "job" if n == 1 else "jobs"
    text = f"{n} {state} {noun}{where} {PAST_TENSE[action]}."
    return redirect_with_flash(request, back, "ok", text)


def _queue_named(name: str | None) -> str:
    checked = params.queue_name(name)
    if checked is None:
        raise InvalidJob("name the queue: a name field (or /queues/NAME/ACTION)")
    return checked


async def queue_action(request: Request) -> Response:
    """POST /queues/pause|resume with the queue's name in the ``name`` field (the pages'
    forms: a name in the path would not survive ``.`` and ``..``), or POST
    /queues/{name}/pause|resume."""
    form = await checked_form(request)
    if form is None:
        return csrf_refused(request)
    name = _queue_named(request.path_params.get("name") or form_value(form, "name"))
    action: str = request.path_params["action"]
    back = safe_next(form.get("next"), "/")
    queue = queue_of(request)
    await run_in_threadpool(queue.pause if action == "pause" else queue.resume, name)
    done = "paused" if action == "pause" else "resumed"
    return redirect_with_flash(request, back, "ok", f"Queue {name} {done}.")


# -- login ---------------------------------------------------------------------------------


async def login_form(request: Request) -> Response:
    if request.app.state.token is None:
        return RedirectResponse("/", status_code=303)
    back = safe_next(request.query_params.get("next"), "/")
    return render(request, "login.html", {"next": back, "error": None})


async def login(request: Request) -> Response:
    """POST /login: the right token (surrounding whitespace ignored) starts a session."""
    token: str | None = request.app.state.token
    if token is None:
        return RedirectResponse("/", status_code=303)
    form = await checked_form(request)
    if form is None:
        return csrf_refused(request)
    back = safe_next(form.get("next"), "/")
    given = (form_value(form, "token") or "").strip()
    if not same_value(given, token):
        context = {"next": back, "error": "Wrong token."}
        return render(request, "login.html", context, status_code=401)
    sessions: Sessions = request.app.state.sessions
    response = RedirectResponse(back, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(),
        max_age=sessions.lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    """POST /logout: ends the session here, not only in this browser."""
    if await checked_form(request) is None:
        return csrf_refused(request)
    sessions: Sessions | None = request.app.state.sessions
    if sessions is not None:
        sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
