"""Payloads and results as stored: compact JSON text, bounded in size and in nesting.

Nesting is bounded both ways. On the way in, ``encode`` refuses a value nested deeper than
the queue's ``max_payload_depth`` (default 64). On the way out, ``decode`` never hands back a
value nested deeper than ``READ_DEPTH`` (the largest ``max_payload_depth`` allowed), whatever
the row holds (a row written by hand, or by an older durq): such text comes back as an
``Unreadable`` string. Python code walks JSON values recursively (``json.dumps``, templates,
handlers), so a value a few hundred levels deep would raise ``RecursionError`` far from here,
in a web page or a worker; bounded, every reader is safe.
"""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from durq.errors import InvalidJob
from durq.job import JSON

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_MAX_PAYLOAD_DEPTH = 64
READ_DEPTH = 256  # the deepest value decode returns, and the largest max_payload_depth

_decode = json.JSONDecoder().decode  # json.loads less its per-call argument checks
# decode's core (in C), without its checks; typeshed's stub wants another scanner as the
# context, where the C code reads a decoder's settings.
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class Unreadable(str):
    """Stored JSON that durq does not decode (nested deeper than ``READ_DEPTH``, or not
    JSON at all): the raw text, so the admin tools can still show the job. A worker fails a
    job whose payload is ``Unreadable`` without running it."""

    __slots__ = ()

    @property
    def reason(self) -> str:
        return f"its stored JSON is nested deeper than {READ_DEPTH} levels, or is not JSON"


def _not_json(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_encoder() -> Callable[[Any], str]:
    """Compact JSON text of a value, refusing NaN and Infinity.

    ``JSONEncoder.encode`` makes a new C encoder on every call, which is most of its cost for
    a small payload (2.5 µs against 0.35 µs); this one is made once. Without the circular
    reference check: a value that contains itself recurses until ``RecursionError``, which
    ``encode`` reports as too deep. Falls back to ``JSONEncoder`` where json has no C encoder.
    """
    slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return slow
    try:
        chunks = make(
            None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
        if "".join(chunks({"a": [1, 2.5, "é", None]}, 0)) != '{"a":[1,2.5,"é",null]}':
            return slow
    except TypeError:  # another signature than this Python's json was written for
        return slow

    def fast(value: Any) -> str:
        return "".join(chunks(value, 0))

    return fast


_encode_text = _make_encoder()


def depth(text: str, at_most: int) -> int:
    """How deeply ``text`` (JSON) nests lists and objects, when more than ``at_most``; else
    any number up to ``at_most``. Cheap for the usual small value: it counts brackets first
    (in C), and walks the text only when there are more of them than ``at_most``."""
    if len(text) <= 2 * at_most or text.count("[") + text.count("{") <= at_most:
        return 0  # each level takes two characters, an opening and a closing one
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def encode(value: JSON, what: str, max_bytes: int, max_depth: int) -> str:
    """``value`` as compact JSON text; ``InvalidJob`` (naming ``what``) for NaN/Infinity, a
    type JSON lacks, a lone surrogate, more than ``max_bytes`` or ``max_depth`` levels."""
    try:
        text = _encode_text(value)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"{what} is not JSON: {exc}") from None
    except RecursionError:
        raise InvalidJob(f"{what} nests deeper than {max_depth} levels") from None
    if text.isascii():
        size = len(text)  # one byte a character, and str.isascii() costs nothing
    else:
        try:
            size = len(text.encode())
        except UnicodeEncodeError:
            # A lone surrogate: a Python string can hold one, UTF-8 (so stored JSON) cannot.
            raise InvalidJob(f"{what} is not JSON: it holds a lone surrogate") from None
    if size > max_bytes:
        raise InvalidJob(f"{what} is {size} bytes encoded; the limit is {max_bytes}")
    # depth's own first test, here: most payloads are short, and this saves them the call
    if len(text) > 2 * max_depth and depth(text, max_depth) > max_depth:
        raise InvalidJob(f"{what} nests deeper than {max_depth} levels")
    return text


def decode(text: str | bytes | memoryview) -> JSON:
    """A stored payload or result; never raises: text that is too deep or not JSON comes
    back as ``Unreadable``."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace")
    if depth(text, READ_DEPTH) > READ_DEPTH:
        return Unreadable(text)
    try:
        return _decode(text)
    except (ValueError, RecursionError):
        return Unreadable(text)


def decode_own(text: str) -> JSON:
    """Text that ``encode`` made, decoded: it is JSON within the depth limit, and has no
    white space around it, so ``decode``'s checks and wrapping are left out (the payloads
    an enqueue returns as stored: a third of ``json.loads``'s time)."""
    return _scan(text, 0)[0]


def parse(text: str, what: str) -> JSON:
    """JSON text from a person (a command line, a file): ``InvalidJob`` saying where it is
    wrong, or that it nests too deeply to read."""
    if depth(text, READ_DEPTH) > READ_DEPTH:
        raise InvalidJob(f"{what} nests deeper than {READ_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise InvalidJob(f"{what} is not JSON: {exc.msg} at {at}") from None
