"""docs/examples/sqlalchemy_orders.py, run as the README shows it, on both backends: the
order and its charge job commit together, or neither does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.orm import Session

import app_db
import durq

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "sqlalchemy_orders.py"


@pytest.fixture
def shop_url(queue_url: str) -> str:
    """The example's database: PostgreSQL's test database, or an SQLite file the example
    creates with its own table before durq's (so it needs ``?shared=1``)."""
    return f"{queue_url}?shared=1" if app_db.is_sqlite(queue_url) else queue_url


@pytest.fixture
def example(shop_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("sqlalchemy_orders", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "sqlalchemy_orders", module)  # SQLAlchemy looks it up
    spec.loader.exec_module(module)
    module.app.url = shop_url
    yield module
    module.app.close()


def test_the_example_script_places_an_order_and_queues_its_charge(
    shop_url: str, python_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(python_env, DURQ_URL=shop_url)
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("order placed, charge job ") and run.stdout.endswith(" queued\n")
    job_id = run.stdout.split("charge job ")[1].split()[0]
    with durq.connect(shop_url) as queue:
        job = queue.get(job_id)
    assert (job.task, job.queue) == ("shop.charge_card", "billing")
    assert app_db.sql(shop_url.partition("?")[0], "SELECT id, item FROM orders") == [
        (job.payload["args"][0], "a book")  # type: ignore[index]
    ]


def test_a_session_that_rolls_back_leaves_neither_order_nor_job(
    shop_url: str, example: ModuleType
) -> None:
    engine = example.engine_for(shop_url)
    example.Base.metadata.create_all(engine)
    assert example.app.queue.list_jobs() == []
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        example.place_order(session, "a lamp")
        raise RuntimeError("payment details invalid")
    with Session(engine) as session, session.begin():
        kept = example.place_order(session, "a book")
    engine.dispose()

    with durq.connect(shop_url) as queue:
        assert [j.id for j in queue.list_jobs()] == [kept.id]
    assert app_db.sql(shop_url.partition("?")[0], "SELECT item FROM orders") == [("a book",)]
