"""The ops dashboard: watch and manage a durq queue in the browser, plus a JSON API,
Prometheus ``/metrics`` and ``/healthz``. Needs the ``dashboard`` extra."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

from durq.dashboard.binding import LOOPBACK_NAMES, check_bind, checked_token, is_loopback
from durq.errors import DurqError, InsecureBind

__all__ = ["InsecureBind", "is_loopback", "serve"]


def serve(db_url: str, host: str = "127.0.0.1", port: int = 8000, token: str | None = None) -> None:
    """Serve the dashboard for the queue at ``db_url`` on ``host:port`` until interrupted.

    ``token`` (else ``$DURQ_DASHBOARD_TOKEN``) protects every page and API call; surrounding
    whitespace is not part of it. Raises ``InsecureBind`` when the token is shorter than 16
    characters, or when ``host`` is not a loopback address and there is no token,
    ``NoDatabase`` when there is no durq database at ``db_url`` (a dashboard only looks after
    a queue: it never makes one, so a mistyped URL is not shown as an empty queue), and
    ``DurqError`` when the dashboard's dependencies are missing or the queue cannot be opened.
    All of these before anything listens.
    """
    token = checked_token(token or os.environ.get("DURQ_DASHBOARD_TOKEN") or None)
    check_bind(host, token)
    try:
        import uvicorn

        from durq.dashboard.app import create_app
    except ImportError as exc:
        raise DurqError(
            f"the dashboard needs its extra dependencies ({exc.name} is missing): "
            "pip install 'durq[dashboard]'"
        ) from None
    import durq

    queue = durq.connect(db_url, create=False)
    try:
        # Without a token only loopback names are answered: a page on another site whose
        # name resolves to 127.0.0.1 (DNS rebinding) must not reach the dashboard.
        allowed = None if token else {*LOOPBACK_NAMES, host.strip("[]").lower()}
        app = create_app(queue, token, allowed_hosts=allowed)
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the
        # handlers it found. With the defaults that ends the process by the signal (SIGTERM)
        # or a KeyboardInterrupt traceback (SIGINT); these handlers absorb it, so a requested
        # stop returns here and the process exits 0, as durq's other programs do.
        in_main = threading.current_thread() is threading.main_thread()  # signals need it
        previous = {sig: signal.signal(sig, _stop_requested) for sig in _STOP_SIGNALS if in_main}
        try:
            uvicorn.run(app, host=host, port=port, log_level="info", ws="none", lifespan="off")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        queue.close()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stop_requested(signum: int, frame: FrameType | None) -> None:
    """The signal uvicorn re-raises after its graceful shutdown: already acted on."""
