"""The dashboard's Starlette application: routes, error pages, ``/metrics`` and ``/healthz``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from durq.dashboard import api, pages
from durq.dashboard.binding import checked_token
from durq.dashboard.limits import shorten
from durq.dashboard.metrics import exposition, registry_for
from durq.dashboard.rendering import HERE, render
from durq.dashboard.security import SecurityMiddleware
from durq.dashboard.sessions import Sessions
from durq.dashboard.where import database_label
from durq.errors import BackendError, DurqError, InvalidJob, InvalidState, JobNotFound
from durq.queue import JobQueue

CONTENT_TYPE_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"

# DurqError -> HTTP status; the first class that matches wins.
STATUS = [(JobNotFound, 404), (InvalidState, 409), (InvalidJob, 400), (BackendError, 503)]
TITLES = {400: "Bad request", 404: "Not found", 409: "Not allowed", 503: "Unavailable"}
# The longest error message shown: the checks in params.py echo bad values in short, and this
# keeps any other message that quotes a value (a backend's, say) from echoing it whole.
MAX_MESSAGE = 300


def _status_of(exc: Exception) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def _error_response(request: Request, status: int, message: str) -> Response:
    message = shorten(message, MAX_MESSAGE)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    context = {"title": TITLES.get(status, "Error"), "message": message}
    return render(request, "error.html", context, status_code=status)


async def durq_error(request: Request, exc: Exception) -> Response:
    return _error_response(request, _status_of(exc), str(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such page" if exc.status_code == 404 else str(exc.detail)
    return _error_response(request, exc.status_code, message)


async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(exposition, request.app.state.registry)
    return Response(body, media_type=CONTENT_TYPE_PROMETHEUS)


async def healthz(request: Request) -> Response:
    """200 ``ok`` when the queue answers ``stats()``; open without a token (it shows nothing)."""
    try:
        await run_in_threadpool(request.app.state.queue.stats)
    except DurqError as exc:
        return PlainTextResponse(f"unavailable: {exc}\n", status_code=503)
    return PlainTextResponse("ok\n")


Endpoint = Callable[[Request], Awaitable[Response]]


def _routes() -> list[Route | Mount]:
    one = {"resubmit", "cancel", "delete"}
    switch = {"pause", "resume"}
    return [
        Route("/", pages.overview),
        Route("/partials/overview", pages.overview_partial),
        Route("/jobs", pages.jobs),
        Route("/partials/jobs", pages.jobs_partial),
        Route(
            "/jobs/{action:str}", _only({"resubmit", "cancel"}, pages.bulk_action), methods=["POST"]
        ),
        Route("/jobs/{id:str}", pages.job_detail),
        Route("/jobs/{id:str}/{action:str}", _only(one, pages.job_action), methods=["POST"]),
        Route("/workers", pages.workers),
        # The pages post the queue's name in a field; the name in the path stays for scripts.
        Route("/queues/{action:str}", _only(switch, pages.queue_action), methods=["POST"]),
        Route(
            "/queues/{name:str}/{action:str}", _only(switch, pages.queue_action), methods=["POST"]
        ),
        Route("/login", pages.login_form, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/api/jobs", api.list_jobs),
        Route(
            "/api/jobs/{action:str}",
            _only({"resubmit", "cancel"}, api.bulk_action),
            methods=["POST"],
        ),
        Route("/api/jobs/{id:str}", api.get_job, methods=["GET"]),
        Route("/api/jobs/{id:str}", api.delete_job, methods=["DELETE"]),
        Route(
            "/api/jobs/{id:str}/{action:str}",
            _only({"resubmit", "cancel"}, api.job_action),
            methods=["POST"],
        ),
        Route("/api/stats", api.stats),
        Route("/api/workers", api.workers),
        Route("/api/queues/{action:str}", _only(switch, api.queue_action), methods=["POST"]),
        Route(
            "/api/queues/{name:str}/{action:str}", _only(switch, api.queue_action), methods=["POST"]
        ),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def _only(actions: set[str], endpoint: Endpoint) -> Endpoint:
    """The endpoint for the named actions only; any other action name is a 404."""

    async def guarded(request: Request) -> Response:
        if request.path_params["action"] not in actions:
            raise HTTPException(404)
        return await endpoint(request)

    guarded.__name__ = endpoint.__name__
    return guarded


def create_app(
    queue: JobQueue, token: str | None = None, *, allowed_hosts: Iterable[str] | None = None
) -> Starlette:
    """The dashboard for ``queue``. With a ``token`` every page and API call needs it.

    The token is stripped of surrounding whitespace; one shorter than 16 characters raises
    ``InsecureBind``. ``allowed_hosts``: answer only requests whose ``Host`` is one of these
    names (``serve`` sets the loopback names when it runs without a token, against DNS
    rebinding).
    """
    token = checked_token(token)
    sessions = None if token is None else Sessions(token)
    middleware = Middleware(
        SecurityMiddleware, token=token, sessions=sessions, allowed_hosts=allowed_hosts
    )
    app = Starlette(
        routes=_routes(),
        middleware=[middleware],
        exception_handlers={DurqError: durq_error, HTTPException: http_error},
    )
    app.state.queue = queue
    app.state.token = token
    app.state.database = database_label(queue.url)  # shown in the pages' footer
    app.state.sessions = sessions
    app.state.registry = registry_for(queue)
    return app
