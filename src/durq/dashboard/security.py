"""Who may use the dashboard, and proof that a POST came from its own pages.

- Binding: a non-loopback address needs a token (``check_bind``), so the dashboard is never
  left open on a network by accident.
- Token: pages need a session cookie set by the login form (``sessions.py``: signed, expires,
  ended by logout); the API and ``/metrics`` take ``Authorization: Bearer <token>`` (or the
  cookie). ``/healthz``, ``/login`` and ``/static`` stay open: they show nothing about the
  queue.
- Size: a request body may not pass ``limits.MAX_BODY_BYTES``, checked on its
  ``Content-Length`` before anything else and counted as it streams in (``limits.py``).
- CSRF: every unsafe request must come from the dashboard's own origin (``Sec-Fetch-Site``,
  else ``Origin`` against ``Host``, as Go's ``http.CrossOriginProtection`` does; clients that
  send neither, like curl, are not browsers and carry no ambient credentials). Form posts
  also carry a per-browser token from the ``durq_csrf`` cookie in a hidden field
  (double-submit cookie), checked by ``checked_form``.
- DNS rebinding: when serving on loopback without a token, only loopback ``Host`` names are
  answered, so a web page whose name resolves to 127.0.0.1 cannot read the dashboard.
- Every answer carries ``SECURITY_HEADERS``: the app's pages, the refusals here, and the 500
  this middleware sends when the app fails (Starlette's own error page would lack them).
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from durq.dashboard.limits import (
    MAX_BODY_BYTES,
    BadContentLength,
    BodyTooLarge,
    counting_receive,
    declared_length,
    read_form,
)
from durq.dashboard.sessions import Sessions

SESSION_COOKIE = "durq_session"
CSRF_COOKIE = "durq_csrf"
CSRF_FIELD = "csrf_token"

# Paths anyone may fetch, token or not: nothing on them tells about the queue.
OPEN_PATHS = ("/healthz", "/login")
OPEN_PREFIXES = ("/static/",)
# Paths that answer machines: refused with 401 JSON rather than sent to the login form.
MACHINE_PREFIXES = ("/api/", "/metrics")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def same_value(given: str | None, expected: str) -> bool:
    """``given == expected`` in constant time; ``None`` matches nothing."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def is_authenticated(conn: HTTPConnection, token: str, sessions: Sessions | None) -> bool:
    """True for the right Bearer token (whitespace around it ignored) or a live session."""
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and same_value(credentials.strip(), token):
        return True
    cookie = conn.cookies.get(SESSION_COOKIE)
    return sessions is not None and sessions.session_id(cookie) is not None


def is_cross_origin(conn: HTTPConnection) -> bool:
    """True when a browser says the request was started by another site's page."""
    fetch_site = conn.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = conn.headers.get("origin")
    if origin is None:
        return False  # not a browser, or an old one on a same-origin GET-like request
    return urlsplit(origin).netloc.lower() != conn.headers.get("host", "").lower()


def safe_next(value: object, default: str) -> str:
    """A local path to go back to after an action or login; anything else -> ``default``."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 32 for c in value):
        return default
    return value


async def checked_form(request: Request) -> FormData | None:
    """The posted form if its CSRF field matches the ``durq_csrf`` cookie, else ``None``.

    Without the cookie the form is refused unread; otherwise it is read within the bounds of
    ``limits.read_form``.
    """
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie:
        return None
    form = await read_form(request)
    field = form.get(CSRF_FIELD)
    if isinstance(field, str) and same_value(field, cookie):
        return form
    return None


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


class SecurityMiddleware:
    """Checks every HTTP request against the rules above before the app sees it, bounds its
    body while the app reads it, and puts the security headers on every answer."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        sessions: Sessions | None = None,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        self.app = app
        self.token = token or None
        self.sessions = sessions  # the app's, which its login and logout use; None: Bearer only
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        path: str = scope["path"]
        refusal = self._refusal(conn, path, scope["method"])
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        answer = _HeaderedSend(send, _csrf_cookie(scope, conn, path))
        try:
            await self.app(scope, counting_receive(receive), answer)
        except BodyTooLarge:
            if answer.started:
                raise
            await _too_large(path)(scope, receive, send)
        except Exception:
            # Answer here, with the headers, then let the server log the error as usual
            # (Starlette's error middleware sees a started answer and sends nothing).
            if not answer.started:
                await _internal_error(path)(scope, receive, send)
            raise

    def _refusal(self, conn: HTTPConnection, path: str, method: str) -> ASGIApp | None:
        too_big = _size_refusal(conn, path)
        if too_big is not None:
            return too_big
        if self.allowed_hosts is not None:
            host = _host_name(conn.headers.get("host", "")).lower()
            if host not in self.allowed_hosts:
                return _plain(400, "this dashboard answers only to localhost / 127.0.0.1\n")
        if method not in ("GET", "HEAD", "OPTIONS") and is_cross_origin(conn):
            return _error(403, "cross-origin request refused")
        if self.token is None or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
        if is_authenticated(conn, self.token, self.sessions):
            return None
        if path.startswith(MACHINE_PREFIXES):
            return _error(401, "authentication required: send Authorization: Bearer <token>")
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        return _redirect(f"/login?next={quote(target, safe='')}")


def _csrf_cookie(scope: Scope, conn: HTTPConnection, path: str) -> bytes | None:
    """Put the browser's CSRF token in ``request.state``; a ``Set-Cookie`` value when it
    needs a new one."""
    csrf = conn.cookies.get(CSRF_COOKIE) or ""
    # Static files never get one: racing the page for it could replace the page's token.
    fresh = len(csrf) < 32 and not path.startswith(OPEN_PREFIXES)
    new_csrf = secrets.token_urlsafe(32) if fresh else None
    scope.setdefault("state", {})["csrf_token"] = new_csrf or csrf
    if new_csrf is None:
        return None
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return f"{CSRF_COOKIE}={new_csrf}; Path=/; HttpOnly; SameSite=Strict{secure}".encode()


class _HeaderedSend:
    """The app's ``send``: adds the security headers (and a new CSRF cookie) to the answer,
    and remembers whether the answer has started."""

    def __init__(self, send: Send, csrf_cookie: bytes | None) -> None:
        self.send = send
        self.csrf_cookie = csrf_cookie
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = [*message.get("headers", []), *SECURITY_HEADERS]
            if self.csrf_cookie is not None:
                headers.append((b"set-cookie", self.csrf_cookie))
            message = {**message, "headers": headers}
        await self.send(message)


def _size_refusal(conn: HTTPConnection, path: str) -> ASGIApp | None:
    """A refusal for a body announced as too large (or announced in a broken way)."""
    try:
        length = declared_length(conn.headers)
    except BadContentLength:
        return _refuse(path, 400, "bad Content-Length header", close=True)
    if length is not None and length > MAX_BODY_BYTES:
        return _too_large(path)
    return None


def _respond(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        all_headers = [*headers, (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
        await send({"type": "http.response.start", "status": status, "headers": all_headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _error(status: int, message: str, *, close: bool = False) -> ASGIApp:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="durq"'))
    if close:
        headers.append((b"connection", b"close"))
    return _respond(status, headers, body)


def _plain(status: int, text: str, *, close: bool = False) -> ASGIApp:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if close:
        headers.append((b"connection", b"close"))
    return _respond(status, headers, text.encode())


def _refuse(path: str, status: int, message: str, *, close: bool = False) -> ASGIApp:
    """JSON for the API (its documented error shape), one line of text for pages."""
    if path.startswith(MACHINE_PREFIXES):
        return _error(status, message, close=close)
    return _plain(status, message + "\n", close=close)


def _too_large(path: str) -> ASGIApp:
    # Connection: close makes the server drop the connection after the answer instead of
    # reading (and discarding) the rest of a body that may be endless.
    message = f"request body too large: at most {MAX_BODY_BYTES} bytes"
    return _refuse(path, 413, message, close=True)


def _internal_error(path: str) -> ASGIApp:
    return _refuse(path, 500, "internal server error: the dashboard's log has the details")


def _redirect(location: str) -> ASGIApp:
    return _respond(303, [(b"location", location.encode())], b"")


def form_value(form: FormData, name: str) -> str | None:
    """A text field of a form, ``None`` when absent or empty."""
    value: Any = form.get(name)
    return value if isinstance(value, str) and value else None
