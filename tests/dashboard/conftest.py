"""Fixtures for the dashboard tests: a queue with jobs in every state, and a browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

import durq
from durq.dashboard.app import create_app

from .forms import TOKEN
from .scenes import Scene, make_scene


@pytest.fixture
def client(queue: durq.JobQueue) -> Iterator[TestClient]:
    """The dashboard without a token, as on loopback."""
    with TestClient(create_app(queue)) as c:
        yield c


@pytest.fixture
def guarded(queue: durq.JobQueue) -> Iterator[TestClient]:
    """The dashboard behind the token ``forms.TOKEN``."""
    with TestClient(create_app(queue, token=TOKEN)) as c:
        yield c


@pytest.fixture
def scene(queue: durq.JobQueue) -> Scene:
    return make_scene(queue)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's), one per test module; Playwright only when asked for."""
    from .browsing import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, require_chromium

    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
