"""Trial bookkeeping: one MLflow child run per trial, and the models worth keeping.

A scored trial is a FINISHED run with its metrics; a trial whose learner raised is a FAILED
run without metrics, its error in the ``automl_service.error`` tag. Only scored trials can
lead.

The best trial by the primary metric and the best by the selection metric keep a model in
memory; so does the best trial of each algorithm (up to ``keep_top`` of them), with its
validation predictions, for the VotingEnsemble. The others are logged (metrics, params,
tags) and forgotten.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param

from ...errors import NoEligibleRun
from ...metrics import Goal, as_loss
from ...runs import RunRecord, RunStatus
from ...selection import select_best
from ...tags import BEST_CHILD_TAG as BEST_CHILD_TAG  # trainer.py reads it from here

PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "automl_service.trial"
ATTEMPT_TAG = "automl_service.attempt"
ERROR_TAG = "automl_service.error"

ModelFactory = Callable[[], Any]


@dataclass(frozen=True)
class Objective:
    metric: str
    goal: Goal


@dataclass(frozen=True)
class Candidate:
    """One of the best trials: its run, its model and its validation predictions."""

    loss: float  # the primary metric, lower is better
    record: RunRecord
    model: Any
    predictions: Any


class TrialLog:
    """Logs trials as child runs of ``parent_run_id`` and keeps the leaders' models."""

    def __init__(
        self,
        client: Any,
        experiment_id: str,
        parent_run_id: str,
        job_name: str,
        attempt: int,
        objectives: list[Objective],
        keep_top: int = 0,
        progress_file: Path | None = None,
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.job_name = job_name
        self.attempt = attempt
        self.objectives = objectives
        self.keep_top = keep_top
        #: Rewritten after every trial: how many ran and the best value so far, for the
        #: worker to show while the job runs.
        self.progress_file = progress_file
        #: What the attempt is doing, for the worker to time its next look: "starting"
        #: (reading the data), "searching" until ``search_ends_at`` (seconds since the
        #: epoch), then "finishing" (ensemble, refits, logging the models).
        self.stage = "starting"
        self.search_ends_at: float | None = None
        self.records: list[RunRecord] = []
        self.leaders: dict[str, tuple[RunRecord, Any]] = {}
        #: Each algorithm's best trial by the primary metric (at most ``keep_top``), best
        #: first.
        self.top: list[Candidate] = []
        #: The leaders' validation predictions (a ``Fold``, or a forecaster's
        #: ``Backtest``), by run id, when they were logged with them.
        self.validation: dict[str, Any] = {}
        #: The rows the search held out from the final models, or trained them on when
        #: none were (set by the search; tables only).
        self.held_out: Any = None
        self._write_progress()  # a restarted attempt's progress starts again

    def would_lead(self, metrics: Mapping[str, float]) -> bool:
        """Whether a trial with these metrics would beat a current leader (keep its model)."""
        probe = RunRecord("~probe", RunStatus.FINISHED, dict(metrics), end_time_ms=2**62)
        return any(self._beats(probe, objective) for objective in self.objectives)

    def log(
        self,
        algorithm: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        model: ModelFactory | None = None,
        extra_tags: Mapping[str, str] | None = None,
        predictions: Any = None,
        started_at: float | None = None,
    ) -> RunRecord:
        """One FINISHED child run; blocking; MLflow errors propagate. With
        ``predictions`` (its validation predictions) the trial may join ``top``, and
        they are kept while it leads (``validation``);
        ``started_at`` (seconds since the epoch) is when the trial began, so the run's
        duration is the trial's (default: now)."""
        number = len(self.records)
        tags = {
            PARENT_TAG: self.parent_run_id,
            "mlflow.runName": f"{self.job_name}_{number}",
            "algorithm": algorithm,
            TRIAL_TAG: str(number),
            ATTEMPT_TAG: str(self.attempt),
            **(extra_tags or {}),
        }
        now = int(time.time() * 1000)
        start = min(now, int(started_at * 1000)) if started_at is not None else now
        run = self.client.create_run(self.experiment_id, start_time=start, tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        str_params = {k: _param(v) for k, v in params.items()}
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in str_params.items()],
            tags=[],
        )
        self.client.set_terminated(run_id, RunStatus.FINISHED, end_time=now)
        record = RunRecord(run_id, RunStatus.FINISHED, dict(metrics), tags, str_params, start, now)
        built = None
        for objective in self.objectives:
            if self._beats(record, objective):
                built = built if built is not None else (model() if model else None)
                self.leaders[objective.metric] = (record, built)
                if predictions is not None:
                    self.validation[run_id] = predictions
        leading = {leader.run_id for leader, _ in self.leaders.values()}
        self.validation = {k: v for k, v in self.validation.items() if k in leading}
        if predictions is not None and model is not None:
            self._keep(record, predictions, lambda: built if built is not None else model())
        self.records.append(record)
        self._write_progress()
        return record

    def searching(self, until: float) -> None:
        """The search has started and ends at ``until`` (seconds since the epoch)."""
        self.stage, self.search_ends_at = "searching", until
        self._write_progress()

    def finishing(self) -> None:
        """The search is over; what follows it (ensemble, refits, logging) has begun."""
        if self.stage != "finishing":
            self.stage = "finishing"
            self._write_progress()

    def _write_progress(self) -> None:
        if self.progress_file is None:
            return
        metric = self.objectives[0].metric if self.objectives else None
        leader = self.leaders.get(metric) if metric else None
        progress = {
            "trials": len(self.records),
            "metric": metric,
            "best": leader[0].metrics.get(metric) if leader and metric else None,
            "stage": self.stage,
            "search_ends_at": self.search_ends_at,
        }
        tmp = self.progress_file.with_name(self.progress_file.name + ".tmp")
        tmp.write_text(json.dumps(progress))
        tmp.replace(self.progress_file)

    def log_failed(self, algorithm: str, params: Mapping[str, Any], error: str) -> RunRecord:
        """One FAILED child run carrying ``error`` (a tag, first 500 characters); blocking;
        MLflow errors propagate. It never leads."""
        number = len(self.records)
        text = " ".join(error.split())[:500] or "failed"
        tags = {
            PARENT_TAG: self.parent_run_id,
            "mlflow.runName": f"{self.job_name}_{number}",
            "algorithm": algorithm,
            TRIAL_TAG: str(number),
            ATTEMPT_TAG: str(self.attempt),
            ERROR_TAG: text,
        }
        start = int(time.time() * 1000)
        run = self.client.create_run(self.experiment_id, start_time=start, tags=tags)
        run_id = run.info.run_id
        str_params = {k: _param(v) for k, v in params.items()}
        if str_params:
            self.client.log_batch(
                run_id, params=[Param(k, v) for k, v in str_params.items()], metrics=[], tags=[]
            )
        now = int(time.time() * 1000)
        self.client.set_terminated(run_id, RunStatus.FAILED, end_time=now)
        record = RunRecord(run_id, RunStatus.FAILED, {}, tags, str_params, start, now)
        self.records.append(record)
        self._write_progress()
        return record

    def _keep(self, record: RunRecord, predictions: Any, model: ModelFactory) -> None:
        objective = self.objectives[0]
        value = record.metrics.get(objective.metric, math.nan)
        if not self.keep_top or not math.isfinite(value):
            return
        loss = as_loss(value, objective.goal)
        same = [c for c in self.top if _family(c.record) == _family(record)]
        if same and loss >= same[0].loss:
            return  # each algorithm's best only: near-copies of one model add nothing
        if not same and len(self.top) >= self.keep_top and loss >= self.top[-1].loss:
            return
        self.top = [c for c in self.top if _family(c.record) != _family(record)]
        self.top.append(Candidate(loss, record, model(), predictions))
        self.top.sort(key=lambda c: c.loss)  # stable: the earlier trial stays ahead on ties
        del self.top[self.keep_top :]

    def winners(self) -> list[tuple[RunRecord, Any]]:
        """The leader per objective (primary first), without repeats; may be empty."""
        seen: set[str] = set()
        out = []
        for objective in self.objectives:
            leader = self.leaders.get(objective.metric)
            if leader and leader[0].run_id not in seen:
                seen.add(leader[0].run_id)
                out.append(leader)
        return out

    def _beats(self, record: RunRecord, objective: Objective) -> bool:
        current = self.leaders.get(objective.metric)
        candidates = [record] if current is None else [current[0], record]
        try:
            return select_best(candidates, objective.metric, objective.goal).winner is record
        except NoEligibleRun:
            return False


def _family(record: RunRecord) -> tuple[str | None, str | None]:
    """Which trials are near-copies of one model: one algorithm, and one ``model`` param
    (LightGBM searched by FLAML and LightGBM on lags are two)."""
    return record.algorithm, record.params.get("model")


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]
