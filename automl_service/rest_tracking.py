"""MLflow's REST ``runs/search`` read straight into RunRecords, and the scan the local
engine uses.

``MlflowClient.search_runs`` turns each answer into protobuf messages and those into
``Run`` entities; for a page of 1000 runs that is most of the client's time. The answer
is plain JSON (MLflow's REST API), so it is read into RunRecords directly here, the same
fields ``scan.to_record`` takes from a ``Run``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .runs import RunRecord, RunStatus
from .scan import RunPage, scan_child_runs, split_point

SEARCH_RUNS = "/api/2.0/mlflow/runs/search"


def is_remote(tracking_uri: str) -> bool:
    """Whether the tracking URI names a tracking server (rather than a local store)."""
    return tracking_uri.startswith(("http://", "https://"))


def search_body(
    experiment_ids: Sequence[str], filter_string: str, max_results: int, page_token: str | None
) -> dict[str, Any]:
    """The JSON body of one ``runs/search`` call (active runs only, as MlflowClient)."""
    body: dict[str, Any] = {
        "experiment_ids": list(experiment_ids),
        "filter": filter_string,
        "max_results": max_results,
        "run_view_type": "ACTIVE_ONLY",
    }
    if page_token:
        body["page_token"] = page_token
    return body


def page_from_json(answer: Mapping[str, Any]) -> RunPage:
    """A ``runs/search`` answer as a RunPage."""
    runs = answer.get("runs") or []
    return RunPage([record_from_json(run) for run in runs], answer.get("next_page_token") or None)


def record_from_json(run: Mapping[str, Any]) -> RunRecord:
    """One run of MLflow's REST JSON as a RunRecord.

    Numbers may come as JSON numbers or, from servers that follow proto3's JSON mapping,
    as strings (int64) and ``"NaN"``/``"Infinity"`` (doubles); absent values are proto
    defaults.
    """
    info = run.get("info") or {}
    data = run.get("data") or {}
    return RunRecord(
        run_id=str(info.get("run_id") or info.get("run_uuid") or ""),
        status=RunStatus(str(info.get("status") or "RUNNING")),
        metrics={m["key"]: float(m.get("value", 0.0)) for m in data.get("metrics") or []},
        tags={t["key"]: str(t.get("value", "")) for t in data.get("tags") or []},
        params={p["key"]: str(p.get("value", "")) for p in data.get("params") or []},
        start_time_ms=_millis(info.get("start_time")),
        end_time_ms=_millis(info.get("end_time")),
    )


class RestRunSearch:
    """``search_runs`` of a plain MLflow tracking server, pages read as RunPages.

    Credentials are taken the way MlflowClient takes them (``MLFLOW_TRACKING_TOKEN``,
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, ...), and so are MLflow's HTTP retries.
    """

    def __init__(self, tracking_uri: str, *, timeout_seconds: int = 120) -> None:
        from mlflow.utils import credentials

        if not is_remote(tracking_uri):
            raise ValueError(f"not a tracking server URI: {tracking_uri!r}")
        mlflow_credentials: Any = credentials  # MLflow ships no type hints
        self._creds = mlflow_credentials.get_default_host_creds(tracking_uri)
        self._timeout = timeout_seconds

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str,
        max_results: int,
        page_token: str | None = None,
    ) -> RunPage:
        from mlflow.utils import rest_utils

        utils: Any = rest_utils  # MLflow ships no type hints
        body = search_body(experiment_ids, filter_string, max_results, page_token)
        reply = utils.http_request(
            self._creds, SEARCH_RUNS, "POST", json=body, timeout=self._timeout
        )
        return page_from_json(utils.verify_rest_response(reply, SEARCH_RUNS).json())


def scan_tracking_store(
    client: Any, tracking_uri: str, experiment_id: str, parent_run_id: str
) -> list[RunRecord]:
    """Every child of a parent run, read the fastest way the store allows.

    A local store (a folder, a database) is read through ``client`` (an MlflowClient) in
    one paginated scan. A tracking server is read over REST, the parent's life split in
    two halves scanned at once: one ``get_run`` for the parent plus the halves' pages,
    at most ceil(N / 1000) + 2 calls.
    """
    if not is_remote(tracking_uri):
        return scan_child_runs(client, [experiment_id], parent_run_id)
    info = client.get_run(parent_run_id).info
    split = None if info.start_time is None else split_point(info.start_time, info.end_time)
    return scan_child_runs(
        RestRunSearch(tracking_uri), [experiment_id], parent_run_id, split_at_ms=split
    )


def _millis(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)
