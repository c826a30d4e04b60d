"""The application's own connection to a test's durq database, on either backend: what an
application holding its data beside the queue would open (``sqlite3`` or psycopg)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from durq.backends.sqlite_connection import parse_url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def connect(url: str) -> Any:
    """An autocommit connection (transactions are explicit): ``sqlite3`` or psycopg."""
    if is_sqlite(url):
        return sqlite3.connect(parse_url(url)[0], timeout=30.0, isolation_level=None)
    import psycopg

    return psycopg.connect(url, autocommit=True)


def marks(conn: Any, statement: str) -> str:
    """``statement`` with ``?`` parameter marks as ``conn``'s driver wants them."""
    return statement if isinstance(conn, sqlite3.Connection) else statement.replace("?", "%s")


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement in its own transaction; its rows (``?`` marks on both backends)."""
    if not is_sqlite(url):
        statement = statement.replace("?", "%s")
    with closing(connect(url)) as conn:
        cursor = conn.execute(statement, params)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


class Transaction:
    """``with Transaction(conn):`` BEGIN IMMEDIATE on sqlite3 (the write lock up front, as
    durq's own writes take it), a psycopg transaction otherwise; rolled back on an error."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._psycopg: Any = None

    def __enter__(self) -> Any:
        if isinstance(self.conn, sqlite3.Connection):
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self._psycopg = self.conn.transaction()
            self._psycopg.__enter__()
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._psycopg is not None:
            self._psycopg.__exit__(exc_type, exc, tb)
        else:
            self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
