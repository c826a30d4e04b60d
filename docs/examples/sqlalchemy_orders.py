"""Enqueue a durq task in a SQLAlchemy session's transaction: the order and the job that
charges it commit together, or neither does.

The queue's database is the application's: PostgreSQL (SQLAlchemy's ``psycopg`` dialect),
or one SQLite file holding both durq's tables and the application's (``?shared=1``).
``tests/test_sqlalchemy_example.py`` runs this file on both.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import durq

app = durq.App(os.environ.get("DURQ_URL", "sqlite:///shop.db?shared=1"))


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str]


# Named: run as a script, this module is __main__, which a worker could not import.
@app.task(queue="billing", name="shop.charge_card")
def charge_card(order_id: int) -> None: ...  # talk to the payment provider


def engine_for(durq_url: str) -> Engine:
    """A SQLAlchemy engine on the queue's database."""
    if durq_url.startswith("sqlite:"):
        engine = create_engine(durq_url.partition("?")[0])  # same path; durq's options dropped

        # Take SQLite's write lock at BEGIN, as durq does, so the session waits its turn
        # instead of failing with "database is locked" when a worker writes at the same time.
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN, not the driver

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(durq_url.replace("postgresql://", "postgresql+psycopg://", 1))


def place_order(session: Session, item: str) -> durq.Job:
    """Add an order and enqueue its charge in the session's transaction."""
    order = Order(item=item)
    session.add(order)
    session.flush()  # the order's id, in the open transaction
    # The driver's own connection (psycopg's or sqlite3's) under the session's transaction.
    connection = session.connection().connection.driver_connection
    return charge_card.configure(connection=connection).enqueue(order.id)


def main() -> None:
    assert app.url is not None
    engine = engine_for(app.url)
    Base.metadata.create_all(engine)
    # Open the queue before the first transaction that enqueues: on SQLite, durq creates its
    # tables on first use, and that needs the write lock such a transaction holds.
    queue = app.queue
    with Session(engine) as session, session.begin():  # commits both, or neither
        job = place_order(session, "a book")
    print(f"order placed, charge job {job.id} {queue.get(job.id).state}")


if __name__ == "__main__":
    main()
