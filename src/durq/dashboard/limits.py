"""Bounds on what a request may make the dashboard hold in memory, and on what an error may
echo back.

Every body the dashboard reads is a small form (a CSRF token, a ``next`` path, a state, a
queue name, the login token), so one small limit serves every route. It is enforced twice:
a declared ``Content-Length`` above it is refused before the app runs, and the bytes of a
chunked (or lying) body are counted as they arrive, so reading stops as soon as it passes.
"""

from __future__ import annotations

from starlette.datastructures import FormData, Headers
from starlette.requests import Request
from starlette.types import Message, Receive

MAX_BODY_BYTES = 16 * 1024
# The largest dashboard form has four fields; a few spare ones cost nothing.
MAX_FORM_FIELDS = 10
MAX_FIELD_BYTES = 4 * 1024
# How much of a bad value an error message shows: enough to recognise it, never a flood.
ECHO_CHARS = 40


class BodyTooLarge(Exception):
    """The request body passed ``MAX_BODY_BYTES``: answer 413 and read no more of it."""


class BadContentLength(Exception):
    """The ``Content-Length`` header is not one plain number."""


def declared_length(headers: Headers) -> int | None:
    """The body size the client announced, ``None`` without ``Content-Length``.

    Raises ``BadContentLength`` for several values or anything but ASCII digits (``int()``
    would take ``+5``, ``1_0`` or non-ASCII digits).
    """
    values = headers.getlist("content-length")
    if not values:
        return None
    if len(values) > 1 or not (values[0].isascii() and values[0].isdigit()):
        raise BadContentLength
    # Only the digits that matter: a thousand-digit length must not make a huge int.
    digits = values[0].lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else 10**18


def counting_receive(receive: Receive, limit: int = MAX_BODY_BYTES) -> Receive:
    """``receive``, raising ``BodyTooLarge`` as soon as the body's bytes pass ``limit``.

    Counts what arrives rather than trusting a header, so a chunked body (no length) or one
    longer than it said is stopped after ``limit`` bytes, whatever its real size.
    """
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return receive_counted


async def read_form(request: Request) -> FormData:
    """The request's form, with no file, few fields, each field small.

    Starlette's parser answers 400 (an ``HTTPException``) on passing a bound; the body as a
    whole is already bounded by the middleware.
    """
    return await request.form(
        max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES
    )


def shorten(value: str, chars: int = ECHO_CHARS) -> str:
    """``value`` cut to ``chars`` characters and an ellipsis, for echoing in a message."""
    return value if len(value) <= chars else value[:chars] + "…"
