"""The worker's ``/metrics`` answer: WorkerStats and request counts as Prometheus text.

Built on ``prometheus_client``: each scrape turns one ``WorkerStats.snapshot()`` into
metric families and renders them with ``generate_latest`` in the text exposition format
0.0.4 (``CONTENT_TYPE``). Nothing is registered globally, so several workers (or tests)
in one process never share a metric.

Families: ``automl_service_requests_{received,succeeded,failed,canceled,poisoned,rechecked}_total``
and ``automl_service_worker_events_total{event}`` (counters);
``automl_service_requests_in_progress``, ``automl_service_automl_jobs_running``,
``automl_service_requests{state}``, ``automl_service_heartbeat_age_seconds`` and
``automl_service_start_time_seconds`` (gauges); ``automl_service_step_duration_seconds``
(histogram by ``step``, buckets ``stats.STEP_BUCKETS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .results import RequestState
from .stats import STEP_BUCKETS

#: Prometheus text exposition format, version 0.0.4: what ``generate_latest`` writes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Counters of WorkerStats exposed under their own metric names.
REQUEST_COUNTERS: Mapping[str, str] = {
    "received": "Requests received from the queue (every receive, re-checks included).",
    "succeeded": "Requests that ended succeeded.",
    "failed": "Requests that ended failed for good.",
    "canceled": "Requests that ended canceled.",
    "poisoned": "Messages moved to the poison queue.",
    "rechecked": "Receives of a request whose next step was not ready yet.",
}


def metric_families(
    snapshot: Mapping[str, Any],
    heartbeat_age: float,
    states: Mapping[RequestState, int] | None = None,
) -> list[Metric]:
    """The metric families of one WorkerStats.snapshot() (and of request counts by state,
    when known). Pure."""
    families: list[Metric] = []
    counters: Mapping[str, int] = snapshot.get("counters", {})
    for key, help_text in REQUEST_COUNTERS.items():
        families.append(
            CounterMetricFamily(
                f"automl_service_requests_{key}_total", help_text, value=counters.get(key, 0)
            )
        )
    others = sorted(k for k in counters if k not in REQUEST_COUNTERS)
    if others:
        events = CounterMetricFamily(
            "automl_service_worker_events_total", "Other worker events, by name.", labels=["event"]
        )
        for key in others:
            events.add_metric([key], counters[key])
        families.append(events)

    families.append(
        GaugeMetricFamily(
            "automl_service_requests_in_progress",
            "Requests this worker is advancing right now.",
            value=len(snapshot.get("in_progress", ())),
        )
    )
    if states is not None:
        families.append(
            GaugeMetricFamily(
                "automl_service_automl_jobs_running",
                "Requests whose AutoML job is running.",
                value=states.get(RequestState.TRAINING, 0),
            )
        )
        families.append(
            GaugeMetricFamily(
                "automl_service_automl_jobs_queued",
                "Requests whose AutoML job waits for capacity.",
                value=states.get(RequestState.QUEUED, 0),
            )
        )
        by_state = GaugeMetricFamily(
            "automl_service_requests", "Requests in the result store, by state.", labels=["state"]
        )
        for state in RequestState:
            by_state.add_metric([state.value], states.get(state, 0))
        families.append(by_state)

    families.append(_step_histogram(snapshot.get("steps", {}), snapshot.get("step_buckets", {})))
    families.append(
        GaugeMetricFamily(
            "automl_service_heartbeat_age_seconds",
            "Seconds since the worker loop last showed signs of life.",
            value=heartbeat_age,
        )
    )
    families.append(
        GaugeMetricFamily(
            "automl_service_start_time_seconds",
            "When the worker started, in seconds since the epoch.",
            value=snapshot.get("started_at", 0.0),
        )
    )
    return families


def _step_histogram(
    steps: Mapping[str, tuple[int, float]], buckets: Mapping[str, Sequence[int]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "automl_service_step_duration_seconds",
        "Time spent in each step of advancing a request.",
        labels=["step"],
    )
    for step in sorted(steps):
        count, total = steps[step]
        cumulative = list(buckets.get(step, ())) or [0] * len(STEP_BUCKETS)
        family.add_metric(
            [step],
            [(repr(float(b)), n) for b, n in zip(STEP_BUCKETS, cumulative, strict=True)]
            + [("+Inf", count)],
            sum_value=total,
        )
    return family


class _Families(Collector):
    """A collector that answers with families already built."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def render_metrics(
    snapshot: Mapping[str, Any],
    heartbeat_age: float,
    states: Mapping[RequestState, int] | None = None,
) -> str:
    """``metric_families`` as Prometheus text (exposition format 0.0.4, ``CONTENT_TYPE``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(metric_families(snapshot, heartbeat_age, states)))
    return generate_latest(registry).decode()
