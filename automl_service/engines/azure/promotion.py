"""Pure decisions for online deployments: names, instance policy, "only if better"."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

from ...errors import PermanentError
from ...metrics import Goal
from ...promotion import Verdict, compare_values
from ...tags import GOAL_TAG, METRIC_TAG, METRIC_VALUE_TAG

_ARM_MODEL = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")
_SHORT_MODEL = re.compile(r"^azureml:(?P<name>[^:@/]+):(?P<version>[^:@/]+)$")


def deployment_name(model_name: str, version: str) -> str:
    """A deployment name fixed by the model version (so re-applying finds it):
    ``v<version>-<hash of the model name>``, within Azure's 32 characters."""
    digest = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^A-Za-z0-9]", "-", version)[:20]
    return f"v{cleaned}-{digest}"


def model_reference(model_id: str | None) -> tuple[str, str] | None:
    """(name, version) from a deployment's model id, ARM or ``azureml:name:version``."""
    if not model_id:
        return None
    match = _ARM_MODEL.search(model_id) or _SHORT_MODEL.match(model_id)
    return (match["name"], match["version"]) if match else None


def check_instances(
    instance_type: str, instance_count: int, allowed: Sequence[str], max_count: int
) -> None:
    """Raise PermanentError when the request asks for more than the policy allows."""
    if allowed and instance_type.lower() not in {t.lower() for t in allowed}:
        raise PermanentError(
            f"instance type {instance_type} is not allowed; use one of {', '.join(allowed)}"
        )
    if instance_count > max_count:
        raise PermanentError(f"instance count {instance_count} is over the limit of {max_count}")


def compare_with_live(
    new_value: float,
    metric: str,
    goal: Goal,
    live_label: str,
    live_tags: Mapping[str, str],
    *,
    margin: float = 0.0,
) -> Verdict:
    """Whether a new model with ``metric = new_value`` should replace the live one.

    Only a value better by more than ``margin`` replaces it. A live model without a comparable value
    (no tags, another metric) is replaced, and the reason says so.
    """
    if live_tags.get(METRIC_TAG) != metric or METRIC_VALUE_TAG not in live_tags:
        return Verdict(True, f"live model {live_label} has no {metric} to compare; replaced")
    try:
        live_value = float(live_tags[METRIC_VALUE_TAG])
    except ValueError:
        return Verdict(True, f"live model {live_label} has an unreadable {metric}; replaced")
    if live_tags.get(GOAL_TAG, goal.value) != goal.value or not math.isfinite(live_value):
        return Verdict(True, f"live model {live_label} is not comparable; replaced")
    return compare_values(new_value, live_value, metric, goal, live_label, margin=margin)
