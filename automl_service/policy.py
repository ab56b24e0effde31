"""The operator's policy: what a request may touch and spend. Pure, no I/O but path
resolution.

A queue is an open door: whoever can write to it can ask for anything. ``enforce`` is
applied by ``submit`` and again by the worker when it receives a message, before anything
is submitted. A request over a cap is refused naming the cap (InvalidRequest), or, where
``policy.clamp_limits`` says so, its limits are lowered to the caps and the change is
recorded. Local data references are resolved (symlinks included) and must lie under one of
``policy.data_roots``; remote ones must start with one of ``policy.allowed_data_prefixes``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import InvalidRequest
from .request import AutoMLRequest
from .settings import PolicySettings

SAMPLE_PREFIX = "sample:"


@dataclass(frozen=True)
class Applied:
    """The request as it will run, and what the policy changed in it (empty: nothing)."""

    request: AutoMLRequest
    changes: tuple[str, ...] = ()


def enforce(
    request: AutoMLRequest,
    policy: PolicySettings,
    *,
    instance_types: Sequence[str] = (),
    max_instance_count: int | None = None,
    cwd: Path | None = None,
    azure: bool = False,
) -> Applied:
    """``request`` checked against ``policy``; raises InvalidRequest naming the first
    rule it breaks. Relative local paths come back absolute (against ``cwd``), so the
    trainer, whatever its working directory, reads the file that was meant. A request
    without ``request_id`` takes its id from the content as it will run, which applying
    the same policy again does not change."""
    changes: list[str] = []
    limits = _limits(request, policy, changes)
    data = _data(request, policy, cwd or Path.cwd())
    _compute(request, policy)
    _deployment(request, policy, instance_types, max_instance_count)
    _reply_to(request, policy)
    if azure:
        _azure_model_name(request)
    update: dict[str, Any] = {}
    if limits is not None:
        update["limits"] = limits
    if data.get("training_data") is not None:
        update["training_data"] = data["training_data"]
    validation = {k: v for k, v in data.items() if k != "training_data" and v is not None}
    if validation:
        update["validation"] = request.validation.model_copy(update=validation)
    return Applied(request.model_copy(update=update), tuple(changes))


#: Azure ML's pattern for a model name (the models REST specification's ``name``
#: parameter); MLflow's registry also takes dots, Azure does not.
AZURE_MODEL_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$")


def _azure_model_name(request: AutoMLRequest) -> None:
    name = request.model_name
    if not AZURE_MODEL_NAME.match(name):
        raise InvalidRequest(
            f"registration.model_name {name!r} is not a valid Azure ML model name: "
            "letters, digits, '-' and '_' only, starting with a letter or digit, at most "
            "255 characters"
        )


def _limits(request: AutoMLRequest, policy: PolicySettings, changes: list[str]) -> Any:
    limits = request.limits
    caps = {
        "timeout_seconds": policy.max_timeout_seconds,
        "trial_timeout_seconds": policy.max_trial_timeout_seconds,
        "max_trials": policy.max_trials,
        "max_concurrent_trials": policy.max_concurrent_trials,
    }
    lowered: dict[str, int] = {}
    for name, cap in caps.items():
        value = getattr(limits, name)
        if cap is None or value is None or value <= cap:
            continue
        if not policy.clamp_limits:
            raise InvalidRequest(
                f"limits.{name} is {value}; this service allows at most {cap} "
                f"(policy.max_{name.removeprefix('max_')})"
            )
        lowered[name] = cap
        changes.append(f"limits.{name} lowered from {value} to {cap} (policy)")
    return limits.model_copy(update=lowered) if lowered else None


def _data(request: AutoMLRequest, policy: PolicySettings, cwd: Path) -> dict[str, str | None]:
    refs = {
        "training_data": request.training_data,
        "validation_data": request.validation.validation_data,
        "test_data": request.validation.test_data,
    }
    return {
        field: None if ref is None else _data_ref(field, ref, policy, cwd)
        for field, ref in refs.items()
    }


def local_path(ref: str) -> Path | None:
    """The local file a data reference names (a plain path or ``file://``), or None for a
    bundled sample or a remote URI."""
    if ref.startswith(SAMPLE_PREFIX):
        return None
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) > 1:
        return None
    return Path(os.path.expanduser(ref))


def _data_ref(field: str, ref: str, policy: PolicySettings, cwd: Path) -> str | None:
    """The reference as it will be read (an absolute path for local files), or None when
    it stays as it is."""
    if ref.startswith(SAMPLE_PREFIX):
        return None
    path = local_path(ref)
    if path is None:  # a remote URI: the backend reads it
        prefixes = policy.allowed_data_prefixes
        if prefixes and not any(ref.startswith(prefix) for prefix in prefixes):
            raise InvalidRequest(
                f"{field} {ref!r} is not under an allowed data location "
                f"(policy.allowed_data_prefixes: {', '.join(prefixes)})"
            )
        return None
    resolved = (cwd / path).resolve()  # symlinks followed: a link out of a root is out
    roots = [Path(os.path.expanduser(root)).resolve() for root in policy.data_roots]
    if roots and not any(resolved.is_relative_to(root) for root in roots):
        raise InvalidRequest(
            f"{field} {ref!r} is outside the data folders this service may read "
            f"(policy.data_roots: {', '.join(str(root) for root in roots)})"
        )
    return str(resolved) if str(resolved) != ref else None


def _compute(request: AutoMLRequest, policy: PolicySettings) -> None:
    allowed = policy.allowed_computes
    if request.compute is not None and allowed:
        name = request.compute.removeprefix("azureml:")
        if name not in allowed:
            raise InvalidRequest(
                f"compute {request.compute!r} is not allowed "
                f"(policy.allowed_computes: {', '.join(allowed)})"
            )
    resources = request.resources
    if resources is None:
        return
    if request.compute is None and allowed and "serverless" not in allowed:
        raise InvalidRequest(
            "serverless compute (resources without compute) is not allowed "
            f"(policy.allowed_computes: {', '.join(allowed)})"
        )
    types = policy.allowed_training_instance_types
    if resources.instance_type is not None and types and resources.instance_type not in types:
        raise InvalidRequest(
            f"resources.instance_type {resources.instance_type!r} is not allowed "
            f"(policy.allowed_training_instance_types: {', '.join(types)})"
        )
    most = policy.max_training_instance_count
    if (
        resources.instance_count is not None
        and most is not None
        and resources.instance_count > most
    ):
        raise InvalidRequest(
            f"resources.instance_count is {resources.instance_count}; this service allows at "
            f"most {most} (policy.max_training_instance_count)"
        )


def _deployment(
    request: AutoMLRequest,
    policy: PolicySettings,
    instance_types: Sequence[str],
    max_instance_count: int | None,
) -> None:
    deployment = request.deployment
    if deployment is None:
        return
    prefix = policy.endpoint_name_prefix
    if prefix and not deployment.endpoint_name.startswith(prefix):
        raise InvalidRequest(
            f"deployment.endpoint_name {deployment.endpoint_name!r} must start with "
            f"{prefix!r} (policy.endpoint_name_prefix)"
        )
    if instance_types and deployment.instance_type not in instance_types:
        raise InvalidRequest(
            f"deployment.instance_type {deployment.instance_type!r} is not allowed "
            f"(azure.allowed_instance_types: {', '.join(instance_types)})"
        )
    if max_instance_count is not None and deployment.instance_count > max_instance_count:
        raise InvalidRequest(
            f"deployment.instance_count is {deployment.instance_count}; this service allows "
            f"at most {max_instance_count} (azure.max_instance_count)"
        )


def _reply_to(request: AutoMLRequest, policy: PolicySettings) -> None:
    allowed = policy.allowed_reply_queues
    if request.reply_to is not None and allowed and request.reply_to not in allowed:
        raise InvalidRequest(
            f"reply_to {request.reply_to!r} is not allowed "
            f"(policy.allowed_reply_queues: {', '.join(allowed)})"
        )
