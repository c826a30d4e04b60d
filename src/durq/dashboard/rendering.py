"""Templates, their filters and flash messages: everything between a view and its HTML.

Autoescaping is on for every template, so payloads, results and tracebacks always show as
text, whatever they contain.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from durq.dashboard.security import CSRF_FIELD, is_authenticated
from durq.job import CANCELLABLE_STATES, FINISHED_STATES, Job, JobState

HERE = Path(__file__).resolve().parent
FLASH_COOKIE = "durq_flash"


def format_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``42 s``, ``3 m 20 s``, ``2 h 5 m``, ``4 d 1 h``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    seconds = int(value)
    for unit, size, smaller, smaller_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "m", 60),
        ("m", 60, "s", 1),
    ):
        if seconds >= size:
            rest = (seconds % size) // smaller_size
            return (
                f"{seconds // size} {unit} {rest} {smaller}"
                if rest
                else f"{seconds // size} {unit}"
            )
    return f"{value:.1f} s" if value < 10 else f"{seconds} s"


def ago(value: datetime | None) -> str:
    if value is None:
        return ""
    return format_seconds(max(0.0, (datetime.now(UTC) - value).total_seconds())) + " ago"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def first_line(value: str | None) -> str:
    """The last non-empty line of a traceback: the exception, which is what one scans for."""
    if not value:
        return ""
    lines = [line for line in value.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def current_error(job: Job) -> str | None:
    """The error to show as the job's own: none once it has succeeded. ``last_error`` keeps
    the text of an earlier failed attempt, which the attempt history still shows; in red
    beside a success it would read as something wrong now."""
    return None if job.state is JobState.SUCCEEDED else job.last_error


def allowed_actions(state: JobState) -> list[str]:
    """The actions ``JobQueue`` allows on a job in ``state``, in the order buttons show."""
    actions = []
    if state in FINISHED_STATES:
        actions.append("resubmit")
    if state in CANCELLABLE_STATES:
        actions.append("cancel")
    if state in FINISHED_STATES:
        actions.append("delete")
    return actions


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=format_time, seconds=format_seconds, ago=ago, json=pretty_json, first_line=first_line
    )
    env.globals.update(
        states=[s.value for s in JobState],
        allowed_actions=allowed_actions,
        current_error=current_error,
        csrf_field=CSRF_FIELD,
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> Response:
    """Render a page, with the CSRF token, the login state and any flash message."""
    flash = read_flash(request)
    token: str | None = request.app.state.token
    full = {
        "csrf_token": request.state.csrf_token,
        "login_required": token is not None,
        "signed_in": _signed_in(request, name, token),
        "database": request.app.state.database,
        "flash": flash,
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, full, status_code=status_code)
    response.headers["cache-control"] = "no-store"
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _signed_in(request: Request, name: str, token: str | None) -> bool:
    """Whether the page may show what only people let in see: the navigation, **Log out**
    and the database's name. Never on the login form, nor on a page someone without a
    session reaches (a refused login post)."""
    if name == "login.html":
        return False
    return token is None or is_authenticated(request, token, request.app.state.sessions)


def redirect_with_flash(request: Request, url: str, kind: str, text: str) -> Response:
    """303 back to ``url``; the message shows once, on the next page rendered."""
    response = RedirectResponse(url, status_code=303)
    data = json.dumps({"kind": kind, "text": text[:600]}).encode()
    response.set_cookie(
        FLASH_COOKIE,
        base64.urlsafe_b64encode(data).decode(),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") not in ("ok", "error"):
        return None
    return {"kind": str(data["kind"]), "text": str(data.get("text", ""))}
