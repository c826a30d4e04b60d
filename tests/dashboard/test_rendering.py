"""The pieces that turn queue data into HTML: the chart, the human-readable times, which
error is current, and how the database is named."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import durq
from durq.dashboard.charts import throughput_chart
from durq.dashboard.rendering import allowed_actions, current_error, first_line, format_seconds
from durq.dashboard.security import safe_next
from durq.dashboard.where import database_label
from durq.job import JobState

from .scenes import make_recovered


def test_throughput_chart_stacks_outcomes_per_step() -> None:
    start = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    empty = {"succeeded": 0, "failed": 0, "unprocessable": 0, "lost": 0, "released": 0}
    steps = [
        (start, {**empty, "succeeded": 3, "failed": 1}),
        (start + timedelta(minutes=1), empty),
        (start + timedelta(minutes=2), {**empty, "lost": 2}),
    ]
    chart = str(throughput_chart(steps))
    svg = chart[chart.index("<svg") : chart.index("</svg>") + 6]
    assert svg.count('class="bar-succeeded"') == 1 and svg.count('class="bar-lost"') == 1
    assert "<title>03:04 UTC: 3 succeeded, 1 failed</title>" in svg
    assert "<title>03:05 UTC: nothing finished</title>" in svg
    heights = {
        cls: float(h)
        for cls, h in re.findall(
            r'class="bar-(\w+)" x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg
        )
    }
    assert heights["succeeded"] == pytest.approx(3 * heights["failed"], rel=0.01)
    # The labels are HTML, outside the stretched SVG, so they keep their size on a phone:
    # the axis top (4 rounded up to a round number), 0, and the first and last minute.
    assert "<text" not in svg and 'preserveAspectRatio="none"' in svg
    labels = re.findall(r'<span class="label">([^<]*)</span>', chart)
    assert labels == ["5", "0", "03:04", "03:06 UTC"]


def test_throughput_chart_without_steps() -> None:
    chart = str(throughput_chart([]))
    assert "<rect" not in chart
    assert re.findall(r'<span class="label">([^<]*)</span>', chart) == ["1", "0"]


def test_a_succeeded_job_has_no_current_error(queue: durq.JobQueue) -> None:
    retrying, done = make_recovered(queue, {"n": 1})
    assert retrying.last_error is not None and current_error(retrying) == retrying.last_error
    assert done.last_error == retrying.last_error  # kept from the failed attempt
    assert current_error(done) is None


def test_database_label_names_the_file_or_the_server_never_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_label("sqlite:///var/durq.db") == str(tmp_path / "var" / "durq.db")
    assert database_label("sqlite:////srv/q.db?synchronous=normal") == "/srv/q.db"
    label = database_label("postgresql://ops:hunter2-secret@db.example:6543/jobs?sslmode=require")
    assert label == "ops@db.example:6543/jobs"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.25, "250 ms"),
        (1.5, "1.5 s"),
        (42.9, "42 s"),
        (60, "1 m"),
        (200, "3 m 20 s"),
        (7500, "2 h 5 m"),
        (3 * 86400 + 3600, "3 d 1 h"),
    ],
)
def test_format_seconds(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


def test_first_line_is_the_exception_of_a_traceback() -> None:
    error = "Traceback (most recent call last):\n  File 'x.py'\nValueError: nope\n\n"
    assert first_line(error) == "ValueError: nope"
    assert first_line(None) == first_line("") == ""


def test_allowed_actions_follow_the_state_machine() -> None:
    assert allowed_actions(JobState.QUEUED) == ["cancel"]
    assert allowed_actions(JobState.RUNNING) == ["cancel"]
    assert allowed_actions(JobState.SUCCEEDED) == ["resubmit", "delete"]
    assert allowed_actions(JobState.UNPROCESSABLE) == ["resubmit", "cancel", "delete"]
    assert allowed_actions(JobState.CANCELLED) == ["resubmit", "delete"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/jobs?state=queued", "/jobs?state=queued"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        (None, "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value, "/") == expected
