"""Where the dashboard may listen: loopback freely, anywhere else only behind a token.

Kept free of web-framework imports so the check runs (and its error reads clearly) before
the dashboard's optional dependencies are loaded.
"""

from __future__ import annotations

import ipaddress

from durq.errors import InsecureBind

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def check_bind(host: str, token: str | None) -> None:
    """Raise ``InsecureBind`` when ``host`` is reachable from other machines and no token."""
    if not token and not is_loopback(host):
        raise InsecureBind(
            f"refusing to serve the dashboard on {host!r} without a token: "
            "pass --token or set $DURQ_DASHBOARD_TOKEN (or bind 127.0.0.1)"
        )
