"""Which database the dashboard is looking at, in one line for its footer.

Someone with a staging and a production queue (or a mistyped ``--db``) needs to see which
one the pages show. A URL may carry a password, so PostgreSQL is shown as
``user@host:port/db`` and never as the URL given.
"""

from __future__ import annotations


def database_label(url: str) -> str:
    """The SQLite file as an absolute path (a relative URL is relative to wherever the
    dashboard was started, which the browser cannot see), or ``user@host:port/db``."""
    if url.lower().startswith("sqlite:"):
        from durq.backends.sqlite_connection import parse_url

        return str(parse_url(url)[0].absolute())
    from durq.backends.postgres_connection import describe_url

    return describe_url(url)
