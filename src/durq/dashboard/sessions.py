"""Login sessions: signed cookies that expire, and that logout ends.

A session cookie is ``<issued-at>.<session id>.<signature>``: the Unix second it was issued,
a random id, and an HMAC-SHA256 of both under a key derived from the token and a random
secret made when the app starts. So the cookie never holds the token, cannot be forged or
have its issue time moved without the key, stops working ``SESSION_SECONDS`` after login,
and stops working at once when its id is in the set of ended sessions (logout).

The key's random part lives only in this process: a restart ends every session (people log
in again), so a logged-out cookie can never come back to life with a restart that forgot the
ended ids. For the same reason, several dashboard processes behind one address do not share
sessions; API clients use ``Authorization: Bearer`` and are not affected.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

SESSION_SECONDS = 12 * 3600
# A cookie issued this far in the future is refused: clocks do not jump, forgers might.
CLOCK_SKEW_SECONDS = 60
_COOKIE = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{22,64})\.([0-9a-f]{64})")


class Sessions:
    """Issues, checks and ends the session cookies of one dashboard app."""

    def __init__(
        self,
        token: str,
        *,
        lifetime: int = SESSION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        salt = b"durq-dashboard-session:" + secrets.token_bytes(32)
        self._key = hmac.new(token.encode(), salt, hashlib.sha256).digest()
        self._ended: dict[str, float] = {}  # session id -> when its cookie expires anyway

    def sign(self, issued_at: int, session_id: str) -> str:
        """The cookie value for a session issued at ``issued_at`` (Unix seconds)."""
        mac = hmac.new(self._key, f"{issued_at}.{session_id}".encode(), hashlib.sha256)
        return f"{issued_at}.{session_id}.{mac.hexdigest()}"

    def issue(self) -> str:
        """A new session's cookie value, issued now."""
        return self.sign(int(self.clock()), secrets.token_urlsafe(24))

    def session_id(self, value: str | None) -> str | None:
        """The id of the live session ``value`` proves, else ``None``: a bad signature, an
        expired or future issue time, or a session ended by logout."""
        parsed = self._verified(value)
        if parsed is None:
            return None
        issued_at, session_id = parsed
        now = self.clock()
        if not now - self.lifetime < issued_at <= now + CLOCK_SKEW_SECONDS:
            return None
        return None if session_id in self._ended else session_id

    def end(self, value: str | None) -> None:
        """End the session of cookie ``value`` (if it is a live one) for good."""
        parsed = self._verified(value)
        if parsed is None:
            return
        issued_at, session_id = parsed
        self._forget_expired()
        self._ended[session_id] = issued_at + self.lifetime

    def _verified(self, value: str | None) -> tuple[int, str] | None:
        match = _COOKIE.fullmatch(value or "")
        if match is None:
            return None
        issued, session_id, _ = match.groups()
        if not hmac.compare_digest(self.sign(int(issued), session_id), match.group(0)):
            return None
        return int(issued), session_id

    def _forget_expired(self) -> None:
        # An ended session whose cookie has expired is refused by its age already; dropping
        # it keeps the set as small as the number of logouts within one lifetime.
        now = self.clock()
        for session_id in [s for s, expires in self._ended.items() if expires <= now]:
            del self._ended[session_id]
