"""``automl-service demo``: three sample requests through the whole local pipeline."""

from __future__ import annotations

import json
import math
import sys
import threading
from typing import Any

from .backends import build_worker
from .render import result_summary
from .request import parse_request
from .results import RequestState
from .settings import Settings
from .waiting import wait_for_results


def demo_requests(budget_seconds: int) -> list[dict[str, Any]]:
    """One request per task, on tables that ship inside installed packages."""
    limits = {"timeout_seconds": budget_seconds}
    return [
        {
            "request_id": "demo-classification",
            "task": "classification",
            "training_data": "sample:breast_cancer",
            "target_column_name": "target",
            "primary_metric": "AUC_weighted",
            "limits": limits,
            "experiment_name": "demo",
            "registration": {"model_name": "demo-breast-cancer"},
        },
        {
            "request_id": "demo-regression",
            "task": "regression",
            "training_data": "sample:diabetes",
            "target_column_name": "target",
            "primary_metric": "normalized_root_mean_squared_error",
            "selection": {"metric": "r2_score"},
            "limits": limits,
            "experiment_name": "demo",
            "registration": {"model_name": "demo-diabetes"},
        },
        {
            "request_id": "demo-forecasting",
            "task": "forecasting",
            "training_data": "sample:co2",
            "target_column_name": "co2",
            "primary_metric": "normalized_root_mean_squared_error",
            "forecasting": {"time_column_name": "date", "forecast_horizon": 12, "frequency": "MS"},
            "limits": limits,
            "experiment_name": "demo",
            "registration": {"model_name": "demo-co2"},
        },
    ]


def run_demo(settings: Settings, *, budget_seconds: int, as_json: bool) -> int:
    """Enqueue the sample requests, process them to the end, print each outcome.

    The worker re-checks faster than the configured one (a copy of ``settings.worker``;
    ``settings`` itself is left as it is)."""
    brisk = settings.worker.model_copy(
        update={
            "recheck_seconds": 2.0,
            "max_recheck_seconds": 5.0,
            "poll_interval_seconds": 0.5,
            "max_poll_interval_seconds": 2.0,
        }
    )
    worker = build_worker(settings, worker_settings=brisk)
    queue, results = worker.queue, worker.results
    ids = []
    for body in demo_requests(budget_seconds):
        text = json.dumps(body)
        ids.append(parse_request(text).id)
        queue.send(text)
    _say(f"queued {len(ids)} requests in {settings.local.data_dir.resolve()}", as_json)

    stop = threading.Event()

    def show(request_id: str, state: RequestState | None, elapsed: float) -> None:
        label = state.value if state is not None else "queued"
        _say(f"[{elapsed:5.0f}s] {request_id}: {label}", as_json)

    ended = wait_for_results(
        results,
        ids,
        timeout=math.inf,
        step=lambda: worker.run_once(stop),
        on_change=show,
        interval=0.5,
    )

    final = list(ended.values())
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in final], indent=2))
    else:
        for result in final:
            print()
            print(result_summary(result))
    return 0 if all(r.state is RequestState.SUCCEEDED for r in final) else 1


def _say(text: str, as_json: bool) -> None:
    print(text, file=sys.stderr if as_json else sys.stdout, flush=True)
