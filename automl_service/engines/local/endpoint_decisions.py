"""Pure decisions of the local endpoints: the names and URIs a model version gets, and
whether a new model replaces the live deployment."""

from __future__ import annotations

import math

from ...http_thread import local_url
from ...metrics import Goal
from ...promotion import Verdict, compare_values
from .endpoint_store import DeploymentRecord


def deployment_name(model_name: str, version: str) -> str:
    """The deployment serving ``model_name`` version ``version``: fixed by the version, so
    re-applying a deployment finds it."""
    return f"{model_name}-v{version}"


def model_uri(model_name: str, version: str) -> str:
    return f"models:/{model_name}/{version}"


def scoring_uri(host: str, port: int, endpoint: str) -> str:
    """Where a client on this host scores ``endpoint`` served on ``host:port``."""
    return local_url(host, port, f"/endpoints/{endpoint}/score")


def compare_with_live(
    new_value: float,
    metric: str,
    goal: Goal,
    live: DeploymentRecord | None,
    *,
    margin: float = 0.0,
) -> Verdict:
    """Whether a model with ``metric = new_value`` should replace the live deployment.

    Only a strictly better value replaces a comparable live one. No live deployment, or a
    live one without a finite value of the same metric, is replaced, and the reason says so.
    """
    if live is None:
        return Verdict(True, "no live deployment; promoted")
    value = live.metric_value
    if live.metric != metric or value is None or not math.isfinite(value):
        return Verdict(True, f"live deployment {live.name} has no {metric} to compare; replaced")
    return compare_values(new_value, value, metric, goal, live.name, margin=margin)
