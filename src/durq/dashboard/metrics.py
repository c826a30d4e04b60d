"""``/metrics``: the queue as Prometheus sees it, read from ``JobQueue`` at scrape time.

The numbers live in the database, not in this process, so a custom collector asks the queue
on every scrape (several dashboards, or a restart, never disagree), registered on its own
registry so nothing else in the process leaks into the output.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from durq.job import JobState
from durq.queue import JobInsights, JobQueue

# Attempt durations in seconds: from a quick no-op job up to the default 300 s timeout.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class QueueCollector(Collector):
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def describe(self) -> list[Metric]:
        # Nothing up front: describing would mean reading the queue at registration.
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self.queue.stats()
        jobs = GaugeMetricFamily("durq_jobs", "Jobs by queue and state.", labels=["queue", "state"])
        oldest = GaugeMetricFamily(
            "durq_oldest_queued_age_seconds",
            "How long the oldest ready queued job has waited (0 when none waits).",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "durq_queue_paused", "1 when the queue is paused, else 0.", labels=["queue"]
        )
        for name, entry in stats["queues"].items():
            for state in JobState:
                jobs.add_metric([name, state.value], entry[state.value])
            oldest.add_metric([name], entry["oldest_queued_age"] or 0.0)
            paused.add_metric([name], 1.0 if entry["paused"] else 0.0)
        yield jobs
        yield oldest
        yield paused
        yield GaugeMetricFamily("durq_workers", "Live workers.", value=stats["workers"])
        if isinstance(self.queue, JobInsights):  # optional: a backend may not keep history
            yield from self._attempts(self.queue)

    def _attempts(self, insights: JobInsights) -> Iterator[Metric]:
        by_task = GaugeMetricFamily(
            "durq_task_jobs", "Queued and running jobs by task.", labels=["task", "state"]
        )
        for (task, state), n in sorted(insights.live_jobs_by_task().items()):
            by_task.add_metric([task, state], n)
        yield by_task

        durations = insights.attempt_durations(DURATION_BUCKETS)
        attempts = CounterMetricFamily(
            "durq_attempts",
            "Finished attempts still in the history, by outcome.",
            labels=["outcome"],
        )
        histogram = HistogramMetricFamily(
            "durq_attempt_duration_seconds",
            "Duration of finished attempts still in the history, by outcome.",
            labels=["outcome"],
        )
        for outcome, (counts, total_seconds) in sorted(durations.items()):
            attempts.add_metric([outcome], counts[-1])
            pairs = zip(DURATION_BUCKETS, counts[:-1], strict=True)
            buckets = [(_bound(b), float(n)) for b, n in pairs]
            buckets.append(("+Inf", float(counts[-1])))
            histogram.add_metric([outcome], buckets, total_seconds)
        yield attempts
        yield histogram


def _bound(value: float) -> str:
    """A bucket's ``le`` label as Prometheus writes it: ``0.5``, ``1.0``, ``300.0``."""
    return repr(float(value))


def registry_for(queue: JobQueue) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(queue))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text format (reads the queue: call it off the event loop)."""
    return generate_latest(registry)
