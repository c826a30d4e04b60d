"""Fixtures for the dashboard tests: a queue with jobs in every state, and a browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import durq

from .scenes import Scene, make_scene


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
