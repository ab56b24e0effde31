"""The child-run scan: every child of a parent run in one paginated ``search_runs``.

Never one call per child (the notebook pattern ``for run in runs: get_metrics(run)``
makes N+1 calls): a page of ``search_runs`` already carries each run's metrics, params
and tags. Azure's tracking server cannot order by metric and caps a page at 1000 runs,
so ordering is left to the pure selection.

A tracking server spends most of a scan building its pages, so a scan can also be split
in two by start time (``split_at_ms``) and both halves read at once: a server with more
than one worker builds them side by side. That costs at most one call more than a single
pass, and never loses or repeats a run: every run starts either before the split or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from .runs import RunRecord, RunStatus

PAGE_SIZE = 1000

#: Picks which runs count as candidates (e.g. Azure's ``<parent>_<n>`` iterations).
RunFilter = Callable[[RunRecord], bool]


class RunSearch(Protocol):
    """What the scan needs of a tracking client: MLflow's ``search_runs`` shape.

    ``mlflow.MlflowClient`` has it, and so do ``rest_tracking.RestRunSearch`` and the
    Azure workspace's ``WorkspaceTracking``. A page is an iterable of ``mlflow.entities.Run``
    or of RunRecord; its ``token`` attribute, when present and not empty, names the next
    page.
    """

    def search_runs(
        self,
        *,
        experiment_ids: list[str],
        filter_string: str,
        max_results: int,
        page_token: str | None = None,
    ) -> Iterable[Any]:
        """One page of the runs ``filter_string`` selects, at most ``max_results``."""
        ...


class RunPage(list[RunRecord]):
    """One page of runs already turned into RunRecords, with the next page's token."""

    def __init__(self, records: Sequence[RunRecord], token: str | None) -> None:
        super().__init__(records)
        self.token = token


def child_filter(parent_run_id: str, status: str | None = None) -> str:
    """The MLflow filter string selecting the children of ``parent_run_id``."""
    clause = f"tags.mlflow.parentRunId = '{_quote(parent_run_id)}'"
    if status:
        clause += f" and attributes.status = '{_quote(status)}'"
    return clause


def halves(filter_string: str, split_at_ms: int) -> tuple[str, str]:
    """``filter_string`` cut in two by run start time: before ``split_at_ms``, and from it."""
    return (
        f"{filter_string} and attributes.start_time < {int(split_at_ms)}",
        f"{filter_string} and attributes.start_time >= {int(split_at_ms)}",
    )


def split_point(start_ms: int, end_ms: int | None, now_ms: int | None = None) -> int:
    """The middle of a parent run's life (up to now while it still runs): AutoML trials
    are spread over the job's time budget, so this halves them roughly evenly."""
    end = end_ms if end_ms is not None else (now_ms or int(time.time() * 1000))
    return start_ms + max(end - start_ms, 0) // 2


def scan_child_runs(
    client: RunSearch,
    experiment_ids: Sequence[str],
    parent_run_id: str,
    *,
    status: str | None = None,
    page_size: int = PAGE_SIZE,
    keep: RunFilter | None = None,
    split_at_ms: int | None = None,
) -> list[RunRecord]:
    """All children of ``parent_run_id`` as RunRecords, following page tokens.

    ``client`` is an ``mlflow.MlflowClient`` or anything else with its ``search_runs``
    shape (``RunSearch``). Makes ceil(N / page_size)
    calls, at least one; with ``split_at_ms``, two concurrent scans of the halves, at
    most one call more.
    """
    everything = child_filter(parent_run_id, status)
    if split_at_ms is None:
        return _scan(client, experiment_ids, everything, page_size, keep)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="scan") as pool:
        parts = [
            pool.submit(_scan, client, experiment_ids, half, page_size, keep)
            for half in halves(everything, split_at_ms)
        ]
        return [record for part in parts for record in part.result()]


def _scan(
    client: RunSearch,
    experiment_ids: Sequence[str],
    filter_string: str,
    page_size: int,
    keep: RunFilter | None,
) -> list[RunRecord]:
    records: list[RunRecord] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids=list(experiment_ids),
            filter_string=filter_string,
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
    """An ``mlflow.entities.Run`` as a plain RunRecord (a RunRecord is kept as it is)."""
    if isinstance(run, RunRecord):
        return run
    info, data = run.info, run.data
    return RunRecord(
        run_id=info.run_id,
        status=RunStatus(info.status),
        metrics=dict(data.metrics),
        tags=dict(data.tags),
        params=dict(data.params),
        start_time_ms=info.start_time,
        end_time_ms=info.end_time,
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
