"""What the service reports about a request: its state and outcome."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, Field


class RequestState(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"  # the AutoML job waits for capacity
    TRAINING = "training"  # the AutoML job runs
    REGISTERING = "registering"
    DEPLOYING = "deploying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    POISONED = "poisoned"  # the message itself was unusable

    @property
    def terminal(self) -> bool:
        return self in (RequestState.SUCCEEDED, RequestState.FAILED, RequestState.POISONED)


class LeaderboardRow(BaseModel):
    run_id: str
    algorithm: str | None = None
    value: float


class RequestResult(BaseModel):
    """The record of one request; also the body of outcome messages."""

    request_id: str
    state: RequestState
    task: str | None = None
    job_name: str | None = None
    parent_run_id: str | None = None
    metric: str | None = None
    best_run_id: str | None = None
    best_value: float | None = None
    engine_best_run_id: str | None = None
    selection_reason: str | None = None
    leaderboard: list[LeaderboardRow] = Field(default_factory=list)
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
    #: What the operator's policy changed in the request (e.g. a lowered time limit).
    policy_changes: list[str] = Field(default_factory=list)
    attempts: int = 0
    updated_at: float = Field(default_factory=time.time)

    def merged(self, **changes: Any) -> RequestResult:
        return self.model_copy(update={**changes, "updated_at": time.time()})


class ResultStore(Protocol):
    """Keeps the latest RequestResult per request id."""

    def put(self, result: RequestResult) -> None: ...

    def get(self, request_id: str) -> RequestResult | None: ...

    def recent(self, limit: int = 20) -> list[RequestResult]: ...

    def pin_fingerprint(self, message_id: str, fingerprint: str) -> str:
        """The data fingerprint first recorded for ``message_id`` (recording this one if
        none was)."""
        ...
