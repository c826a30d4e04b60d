"""``durq dashboard``: serve the web dashboard and its HTTP API.

The dashboard is an optional extra, imported only when the command runs; a missing
dependency of it becomes one error line naming the extra.
"""

from __future__ import annotations

import click

from durq.cli.common import CommandError, Env, pass_env

DASHBOARD_EXTRA = "the dashboard needs the 'dashboard' extra: pip install 'durq[dashboard]'"
# Modules the dashboard extra installs; a missing one means the extra is missing.
_DASHBOARD_DEPENDENCIES = {
    "starlette",
    "jinja2",
    "uvicorn",
    "multipart",
    "python_multipart",
    "prometheus_client",
    "anyio",
    "httpx",
}


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback needs --token.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to listen on.",
)
@click.option(
    "--token",
    envvar="DURQ_DASHBOARD_TOKEN",
    show_envvar=True,
    default=None,
    help=(
        "Require this token (Authorization: Bearer, or the login page) for pages and the API: "
        "at least 16 characters; surrounding whitespace is ignored."
    ),
)
@pass_env
def dashboard(env: Env, host: str, port: int, token: str | None) -> None:
    """Serve the web dashboard and its HTTP API.

    Pages, plus /api/jobs, /api/jobs/ID, /api/stats, /metrics (Prometheus) and /healthz.
    The database must exist already: a dashboard never creates one. Needs the 'dashboard'
    extra: pip install 'durq[dashboard]'.
    """
    try:
        from durq.dashboard import serve

        # serve() opens the queue with create=False before it listens, so a mistyped --db
        # ends here with NoDatabase, which the top group turns into one error line.
        serve(env.db_url, host, port, token)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _DASHBOARD_DEPENDENCIES:
            raise
        raise CommandError(DASHBOARD_EXTRA) from exc
