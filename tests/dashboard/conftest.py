"""Fixtures for the dashboard tests: a queue with jobs in every state."""

from __future__ import annotations

import pytest

import durq

from .scenes import Scene, make_scene


@pytest.fixture
def scene(queue: durq.JobQueue) -> Scene:
    return make_scene(queue)
