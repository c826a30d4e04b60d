"""Where the dashboard may listen, and which tokens it accepts: loopback freely, anywhere
else only behind a token, and a token only when it is long enough to resist guessing.

Kept free of web-framework imports so the checks run (and their errors read clearly) before
the dashboard's optional dependencies are loaded.
"""

from __future__ import annotations

import ipaddress

from durq.errors import InsecureBind

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# A token is the only thing between the network and the queue's write actions; 16
# characters of `openssl rand -hex 24` output is already far beyond online guessing.
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def checked_token(token: str | None) -> str | None:
    """The token as the dashboard compares it: surrounding whitespace stripped (a secret
    file's trailing newline is not part of it). ``None`` or ``""`` means no token; anything
    else shorter than ``MIN_TOKEN_LENGTH`` once stripped raises ``InsecureBind``."""
    if token is None or token == "":
        return None
    stripped = token.strip()
    if len(stripped) < MIN_TOKEN_LENGTH:
        raise InsecureBind(
            f"refusing a dashboard token of {len(stripped)} characters (surrounding whitespace "
            f"not counted): use at least {MIN_TOKEN_LENGTH}, e.g. $(openssl rand -hex 24)"
        )
    return stripped


def check_bind(host: str, token: str | None) -> None:
    """Raise ``InsecureBind`` when ``host`` is reachable from other machines and no token."""
    if not (token and token.strip()) and not is_loopback(host):
        raise InsecureBind(
            f"refusing to serve the dashboard on {host!r} without a token: "
            "pass --token or set $DURQ_DASHBOARD_TOKEN (or bind 127.0.0.1)"
        )
