"""What the service reports about a request: its state and outcome."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field

from .metrics import Goal, Task


class RequestState(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"  # the AutoML job waits for capacity
    TRAINING = "training"  # the AutoML job runs
    REGISTERING = "registering"
    DEPLOYING = "deploying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    POISONED = "poisoned"  # the message itself was unusable
    CANCELED = "canceled"  # stopped by ``automl-service cancel``

    @property
    def terminal(self) -> bool:
        return self in (
            RequestState.SUCCEEDED,
            RequestState.FAILED,
            RequestState.POISONED,
            RequestState.CANCELED,
        )

    @property
    def retryable(self) -> bool:
        """Whether ``automl-service retry`` may run the request again."""
        return self in (RequestState.FAILED, RequestState.CANCELED)


class LeaderboardRow(BaseModel):
    run_id: str
    algorithm: str | None = None
    value: float


class EarlierAttempt(BaseModel):
    """How one earlier attempt of a retried request ended."""

    attempt: int
    state: RequestState
    job_name: str | None = None
    error: str | None = None
    ended_at: float


class RequestResult(BaseModel):
    """The record of one request; also the body of outcome messages."""

    request_id: str
    state: RequestState
    task: Task | None = None
    job_name: str | None = None
    parent_run_id: str | None = None
    metric: str | None = None
    #: Whether ``metric`` is maximized or minimized; None in results recorded before the
    #: goal was kept, and until a run is selected.
    goal: Goal | None = None
    best_run_id: str | None = None
    best_value: float | None = None
    engine_best_run_id: str | None = None
    selection_reason: str | None = None
    leaderboard: list[LeaderboardRow] = Field(default_factory=list)
    #: The winner's canonical metrics on the request's test rows (``test_data`` or
    #: ``test_data_size``), never seen in training or selection; empty without test rows.
    test_metrics: dict[str, float] = Field(default_factory=dict)
    #: The winner's decision threshold (two classes) and, when it was chosen for a metric
    #: on the validation rows, how; None when its label is the likeliest class.
    decision_threshold: float | None = None
    decision_threshold_reason: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    endpoint: str | None = None
    scoring_uri: str | None = None
    deployment_note: str | None = None
    error: str | None = None
    #: The training data's fingerprint and a digest of the request's whole content: a
    #: request id sent again with another digest is refused.
    data_fingerprint: str | None = None
    digest: str | None = None
    #: While the job runs: trials so far, the metric and best value so far, seconds left.
    progress: dict[str, Any] | None = None
    #: What the operator's policy changed in the request (e.g. a lowered time limit).
    policy_changes: list[str] = Field(default_factory=list)
    #: Failed deliveries of the current attempt's message (retried by the worker).
    attempts: int = 0
    #: Which attempt this is: 1, then one more for each ``automl-service retry``.
    attempt: int = 1
    #: How the earlier attempts ended, oldest first.
    earlier_attempts: list[EarlierAttempt] = Field(default_factory=list)
    #: A digest of the request's settings alone (not its data): a retry may read new
    #: data, not other settings.
    settings_digest: str | None = None
    updated_at: float = Field(default_factory=time.time)

    def merged(self, **changes: Any) -> RequestResult:
        return self.model_copy(update={**changes, "updated_at": time.time()})

    def next_attempt(self, attempt: int) -> RequestResult:
        """The record of the request's ``attempt`` (a retry): received, with how this
        attempt ended kept in ``earlier_attempts``."""
        ended = EarlierAttempt(
            attempt=self.attempt,
            state=self.state,
            job_name=self.job_name,
            error=self.error,
            ended_at=self.updated_at,
        )
        return RequestResult(
            request_id=self.request_id,
            state=RequestState.RECEIVED,
            task=self.task,
            attempt=attempt,
            earlier_attempts=[*self.earlier_attempts, ended],
            settings_digest=self.settings_digest,  # the data may change, the settings not
        )


class ResultReader(Protocol):
    """Reads the latest RequestResult per request id (what waiting and health need).

    Safe to share between processes; every method may raise TransientError when the store
    cannot be reached or stays busy.
    """

    def get(self, request_id: str) -> RequestResult | None:
        """The latest result for ``request_id``, or None."""
        ...

    def recent(self, limit: int = 20) -> list[RequestResult]:
        """Up to ``limit`` results, most recently updated first."""
        ...

    def counts(self) -> dict[RequestState, int]:
        """How many requests are in each state (states with none may be left out)."""
        ...


class ResultStore(ResultReader, Protocol):
    """Keeps the latest RequestResult per request id, and each request's message."""

    def put(self, result: RequestResult) -> None:
        """Store ``result`` as the latest for its request. Idempotent; a result older (by
        ``updated_at``) than the one stored is ignored, and so is any but a later
        attempt's once the request is canceled."""
        ...

    def keep_request(self, request_id: str, body: str) -> None:
        """Keep the request's message as it runs, for ``automl-service retry``."""
        ...

    def kept_request(self, request_id: str) -> str | None:
        """The message kept for ``request_id``, or None."""
        ...
