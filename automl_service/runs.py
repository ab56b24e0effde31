"""Plain records of runs and models, shared by engines, selection and results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class RunStatus(StrEnum):
    """MLflow's run statuses (Azure AutoML runs are mapped onto these)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


@dataclass(frozen=True)
class RunRecord:
    """One child run as the selection sees it: no client objects, no I/O."""

    run_id: str
    status: RunStatus
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    start_time_ms: int | None = None
    end_time_ms: int | None = None

    @property
    def algorithm(self) -> str | None:
        return self.tags.get("algorithm") or self.tags.get("run_algorithm")


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version."""

    name: str
    version: str
    source: str = ""
    run_id: str = ""
    created: bool = True  # False when an existing version for the request was found


@dataclass(frozen=True)
class Endpoint:
    """Where a deployed model answers scoring requests."""

    name: str
    deployment: str
    scoring_uri: str
    promoted: bool = True
    reason: str = ""
