"""Rolling an Azure ML endpoint back to the model version it served before its last switch.

Each deployment the service creates records the version it replaced in its
``PREVIOUS_MODEL_TAG`` (``name:version``). ``rollback_plan`` reads that off the live
deployment (pure); ``AzureDeployer.rollback`` carries the plan out one step per call, the
same blue/green steps as a deploy; ``roll_back`` calls it until traffic is back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import NotReady, PermanentError, TransientError
from ...runs import Endpoint, ModelVersion
from .promotion import model_reference

if TYPE_CHECKING:
    from .deployer import AzureDeployer


@dataclass(frozen=True)
class RollbackPlan:
    """Where a rollback goes: from the live deployment and the version it serves back to
    the version recorded as replaced, on the same instances."""

    endpoint: str
    rolled_back_from: str
    current: ModelVersion
    target: ModelVersion
    instance_type: str
    instance_count: int


def model_label(model: ModelVersion) -> str:
    """How a model version is named in a deployment tag: ``name:version``."""
    return f"{model.name}:{model.version}"


def parse_model_label(value: str | None) -> ModelVersion | None:
    """The model version a ``name:version`` tag names (None when absent or malformed)."""
    name, sep, version = (value or "").rpartition(":")
    return ModelVersion(name, version) if sep and name and version else None


def traffic_shares(traffic: Mapping[str, int] | None) -> dict[str, int]:
    """An endpoint's traffic without the deployments that take none."""
    return {name: share for name, share in (traffic or {}).items() if share}


def live_deployment(traffic: Mapping[str, int] | None) -> str | None:
    """The deployment taking the most traffic (None when none takes any)."""
    shares = traffic_shares(traffic)
    return max(shares, key=lambda name: shares[name]) if shares else None


def rollback_plan(
    endpoint: str,
    live: str,
    model_id: str | None,
    tags: Mapping[str, str],
    previous_tag: str,
    *,
    instance_type: str,
    instance_count: int,
) -> RollbackPlan:
    """The plan to roll ``endpoint`` back from its ``live`` deployment (serving
    ``model_id``, tagged ``tags``). PermanentError when it records no previous version or
    serves no registered one."""
    target = parse_model_label(tags.get(previous_tag))
    if target is None:
        raise PermanentError(
            f"endpoint {endpoint}: its live deployment {live} records no previous model "
            "version to go back to"
        )
    reference = model_reference(model_id)
    if reference is None:
        raise PermanentError(
            f"endpoint {endpoint}: its live deployment {live} serves no registered model version"
        )
    return RollbackPlan(
        endpoint=endpoint,
        rolled_back_from=live,
        current=ModelVersion(*reference),
        target=target,
        instance_type=instance_type,
        instance_count=instance_count,
    )


def roll_back(
    deployer: AzureDeployer,
    endpoint: str,
    *,
    timeout: float,
    interval: float,
    on_wait: Callable[[str], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> Endpoint:
    """Roll ``endpoint`` back and wait until traffic is on the previous version and the
    deployment rolled back from is gone. ``on_wait`` is told each new reason to wait.
    TransientError after ``timeout`` seconds, saying where traffic was left."""
    plan = deployer.plan_rollback(endpoint)
    started, told = clock(), ""
    while True:
        try:
            return deployer.rollback(plan)
        except NotReady as exc:
            if on_wait is not None and str(exc) != told:
                on_wait(str(exc))
            told = str(exc)
        if clock() - started > timeout:
            raise TransientError(
                f"rollback of {endpoint} not finished after {timeout:.0f} s ({told})"
            )
        sleep(interval)
