"""The child-run scan: every child of a parent run in one paginated ``search_runs``.

Never one call per child (the notebook pattern ``for run in runs: get_metrics(run)``
makes N+1 calls): a page of ``search_runs`` already carries each run's metrics, params
and tags. Azure's tracking server cannot order by metric and caps a page at 1000 runs,
so ordering is left to the pure selection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .runs import RunRecord

PAGE_SIZE = 1000

#: Picks which runs count as candidates (e.g. Azure's ``<parent>_<n>`` iterations).
RunFilter = Callable[[RunRecord], bool]


def child_filter(parent_run_id: str, status: str | None = None) -> str:
    """The MLflow filter string selecting the children of ``parent_run_id``."""
    clause = f"tags.mlflow.parentRunId = '{_quote(parent_run_id)}'"
    if status:
        clause += f" and attributes.status = '{_quote(status)}'"
    return clause


def scan_child_runs(
    client: Any,
    experiment_ids: Sequence[str],
    parent_run_id: str,
    *,
    status: str | None = None,
    page_size: int = PAGE_SIZE,
    keep: RunFilter | None = None,
) -> list[RunRecord]:
    """All children of ``parent_run_id`` as RunRecords, following page tokens.

    ``client`` is an ``mlflow.MlflowClient`` (or anything with its ``search_runs``).
    Makes ceil(N / page_size) calls, at least one.
    """
    records: list[RunRecord] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids=list(experiment_ids),
            filter_string=child_filter(parent_run_id, status),
            max_results=page_size,
            page_token=token,
        )
        for run in page:
            record = to_record(run)
            if keep is None or keep(record):
                records.append(record)
        token = getattr(page, "token", None)
        if not token:
            return records


def to_record(run: Any) -> RunRecord:
    """An ``mlflow.entities.Run`` as a plain RunRecord."""
    info, data = run.info, run.data
    return RunRecord(
        run_id=info.run_id,
        status=info.status,
        metrics=dict(data.metrics),
        tags=dict(data.tags),
        params=dict(data.params),
        start_time_ms=info.start_time,
        end_time_ms=info.end_time,
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
