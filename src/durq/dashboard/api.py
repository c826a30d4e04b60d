"""The JSON API under ``/api/``: the CLI's operations over HTTP. A job is ``Job.to_dict()``.

Errors are ``{"error": "..."}``: 400 bad input, 404 unknown id, 409 state does not allow it
(mapped in ``app.py`` from the ``DurqError`` the queue raised).
"""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from durq.dashboard import params
from durq.dashboard.pages import job_filter, queue_of
from durq.errors import InvalidJob


async def list_jobs(request: Request) -> Response:
    """GET /api/jobs?state=&queue=&task=&limit=&before= -> {"jobs": [...], "next_before":
    id|null}."""
    chosen = job_filter(request)
    found = await run_in_threadpool(functools.partial(queue_of(request).list_jobs, **chosen))
    next_before = found[-1].id if len(found) == chosen["limit"] else None
    return JSONResponse({"jobs": [j.to_dict() for j in found], "next_before": next_before})


async def get_job(request: Request) -> Response:
    """GET /api/jobs/{id} -> {"job": {...}, "attempts": [...]}."""
    queue = queue_of(request)
    job_id = params.job_id(request.path_params["id"])
    job = await run_in_threadpool(queue.get, job_id)
    history = await run_in_threadpool(queue.attempts, job_id)
    return JSONResponse({"job": job.to_dict(), "attempts": [a.to_dict() for a in history]})


async def job_action(request: Request) -> Response:
    """POST /api/jobs/{id}/resubmit|cancel -> the job."""
    queue = queue_of(request)
    method = queue.resubmit if request.path_params["action"] == "resubmit" else queue.cancel
    job = await run_in_threadpool(method, params.job_id(request.path_params["id"]))
    return JSONResponse(job.to_dict())


async def delete_job(request: Request) -> Response:
    """DELETE /api/jobs/{id} -> {"deleted": id}."""
    job_id = params.job_id(request.path_params["id"])
    await run_in_threadpool(queue_of(request).delete, job_id)
    return JSONResponse({"deleted": job_id})


async def bulk_action(request: Request) -> Response:
    """POST /api/jobs/resubmit|cancel?state=&queue= -> {"resubmitted"|"cancelled": n}."""
    state = params.state(request.query_params.get("state"))
    if state is None:
        raise InvalidJob("the state query parameter is required")
    queue_name = params.queue_name(request.query_params.get("queue"))
    queue = queue_of(request)
    action = request.path_params["action"]
    method = queue.resubmit_all if action == "resubmit" else queue.cancel_all
    n = await run_in_threadpool(method, state, queue_name)
    return JSONResponse({"resubmitted" if action == "resubmit" else "cancelled": n})


async def stats(request: Request) -> Response:
    """GET /api/stats -> ``JobQueue.stats()``."""
    return JSONResponse(await run_in_threadpool(queue_of(request).stats))


async def workers(request: Request) -> Response:
    """GET /api/workers -> {"workers": [...]}."""
    found = await run_in_threadpool(queue_of(request).workers)
    return JSONResponse({"workers": [w.to_dict() for w in found]})


def _queue_named(request: Request) -> str:
    # The name in the path, else in ?name=: clients rewrite the paths /api/queues/./pause
    # and /api/queues/../pause (some even when the dots are sent as %2E).
    name = params.queue_name(request.path_params.get("name") or request.query_params.get("name"))
    if name is None:
        raise InvalidJob("name the queue: /api/queues/NAME/ACTION or ?name=NAME")
    return name


async def queue_action(request: Request) -> Response:
    """POST /api/queues/{name}/pause|resume, or /api/queues/pause|resume?name= -> {"queue":
    name, "paused": bool}."""
    queue = queue_of(request)
    name = _queue_named(request)
    pause = request.path_params["action"] == "pause"
    await run_in_threadpool(queue.pause if pause else queue.resume, name)
    return JSONResponse({"queue": name, "paused": pause})
