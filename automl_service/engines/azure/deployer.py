"""``AzureDeployer``: blue/green promotion of a registered model on a managed online endpoint.

Each call advances the rollout by the steps that are ready and raises NotReady while Azure
provisions; the worker calls again later. Steps, each idempotent:

1. the endpoint exists (created with the request's auth mode if missing) and is ready;
2. with "only if better", the new model and the live one are scored on the same test rows
   (the request's ``validation.test_data``, read here, or the fifth of a local training
   file held out before the job was submitted: ``held_out``) with the selection metric, and a
   new model not better by more than ``min_improvement`` leaves the endpoint as it is. The
   scoring runs in a background thread (``BackgroundVerdicts``; NotReady until it is
   done), once per request: a promoting verdict is recorded in the new deployment's tags
   when it is made, so later re-checks read it back, and the result's reason carries it
   to the end. Without test rows to read (only ``test_data_size``: Azure ML holds those
   rows out inside the job), the new model's metric is compared with the value recorded
   on the live model at its training, and the reason says so;
3. a deployment named after the model version exists and is ready (one that fails, or is
   still provisioning after ``timeout_seconds``, fails the request);
4. all traffic moves to it;
5. the deployments it replaced are deleted, and the model version it serves gets the
   ``champion`` alias: Azure ML models have no aliases, so it is the tag
   ``automl_service.alias.champion`` (its value the time it was given), taken off the
   versions that held it (``predict --model NAME@champion`` reads it).

A new deployment records in its tag ``automl_service.previous_model`` the version it
replaced (``name:version``), in the PUT that creates it. ``rollback`` goes back to that
version by steps 3 to 5 (the endpoint's instances kept), the new deployment recording the
version rolled back from, so rolling back twice returns to where it was.

Long-running operations are started and not waited on: their state is read back with a GET
on the next call, so a worker never blocks on a provisioning endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ...azure_retry import RetryPolicy, call, get_or_none
from ...errors import NotReady, PermanentError
from ...logs import get_logger
from ...promotion import Verdict
from ...request import AutoMLRequest, Deployment
from ...runs import Endpoint, ModelVersion
from ...tags import CHAMPION_ALIAS, PREVIOUS_MODEL_TAG, REQUEST_TAG, alias_tag
from .background_verdicts import BackgroundVerdicts
from .model_versions import alias_holder, holders_to_clear
from .promotion import (
    check_instances,
    compare_with_live,
    deployment_name,
    model_reference,
)
from .rollback import RollbackPlan, live_deployment, model_label, rollback_plan, traffic_shares
from .same_rows import Comparison, Outcome, why_no_rows

log = get_logger(__name__)

CREATED_TAG = "automl_service.created_at"
#: On a deployment made with "only if better": why it replaces the live one, and which
#: live deployment it was compared with (so a re-check does not compare again).
VERDICT_TAG = "automl_service.verdict"
COMPARED_WITH_TAG = "automl_service.compared_with"
#: On a deployment made by a rollback: the deployment it rolled back from.
ROLLED_BACK_FROM_TAG = "automl_service.rolled_back_from"
#: Azure's limit on a tag's value.
MAX_TAG_CHARS = 256
#: How a verdict made without scoring both models on the same rows begins.
RECORDED_VALUES = "compared by the values recorded at training, not on the same rows"
READY = "Succeeded"
FAILED = ("Failed", "Canceled")

_AUTH_MODES = {"key": "key", "aml_token": "aml_token", "aad_token": "aad_token"}


class AzureDeployer:
    """Puts registered models behind managed online endpoints. See the module docstring."""

    def __init__(
        self,
        ml_client: Any,
        *,
        allowed_instance_types: Sequence[str] = (),
        max_instance_count: int = 4,
        timeout_seconds: float = 3600.0,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        compare: Comparison | None = None,
        verdicts: BackgroundVerdicts[Outcome] | None = None,
        held_out: Callable[[AutoMLRequest], AutoMLRequest] | None = None,
    ) -> None:
        """``compare`` scores a new model and the live one on the request's test rows
        ("only if better"; without it the values recorded at training are compared), in
        the background through ``verdicts``. ``held_out`` gives the request as it was
        submitted, with the rows the service held out for the comparison (``held_out``
        module)."""
        self._client = ml_client
        self._compare = compare
        self._held_out = held_out
        self._verdicts: BackgroundVerdicts[Outcome] = verdicts or BackgroundVerdicts()
        self._allowed = tuple(allowed_instance_types)
        self._max_count = max_instance_count
        self._timeout = timeout_seconds
        self._policy = policy
        self._clock = clock

    def deploy(self, request: AutoMLRequest, model: ModelVersion, metric_value: float) -> Endpoint:
        """Advance the rollout of ``model``; returns the endpoint once traffic is on it (or
        once "only if better" decided to leave it). Raises NotReady while provisioning or
        comparing, PermanentError for a refused or failed rollout, TransientError after
        retries."""
        spec = request.deployment
        if spec is None:
            raise PermanentError("the request asks for no deployment")
        check_instances(spec.instance_type, spec.instance_count, self._allowed, self._max_count)
        target = deployment_name(model.name, model.version)

        endpoint = self._ready_endpoint(spec, request)
        traffic = traffic_shares(endpoint.traffic)
        if traffic == {target: 100}:
            served = self._finish(spec.endpoint_name, target, model)
            self._verdicts.forget_all((request.id, target))
            decided = served.get(VERDICT_TAG)
            reason = "all traffic on the new deployment" + (f"; {decided}" if decided else "")
            return self._result(endpoint, target, reason)

        existing = self._find_deployment(spec.endpoint_name, target)
        note = ""
        recorded: dict[str, str] = {REQUEST_TAG: request.id}
        live = live_deployment(traffic)
        if spec.only_if_better and live is not None and live != target:
            verdict = self._decide(request, model, metric_value, live, existing)
            log.info("azure.promotion_verdict", promote=verdict.promote, reason=verdict.reason)
            if not verdict.promote:
                self._verdicts.forget_all((request.id, target))
                return self._result(endpoint, live, verdict.reason, promoted=False)
            note = verdict.reason
            recorded.update({VERDICT_TAG: note[:MAX_TAG_CHARS], COMPARED_WITH_TAG: live})
        if existing is None and live is not None and live != target:
            replaced = self._live_reference(spec.endpoint_name, live)
            if replaced is not None:
                recorded[PREVIOUS_MODEL_TAG] = model_label(ModelVersion(*replaced))

        self._ready_deployment(
            spec.endpoint_name,
            model,
            target,
            existing,
            recorded,
            instance_type=spec.instance_type,
            instance_count=spec.instance_count,
        )
        self._move_traffic(endpoint, target, note)

    def plan_rollback(self, endpoint_name: str) -> RollbackPlan:
        """Where ``rollback`` goes: the version the live deployment of ``endpoint_name``
        replaced (its ``PREVIOUS_MODEL_TAG``). PermanentError for an unknown endpoint, one
        with no traffic, or a live deployment that records no previous version still
        registered."""
        endpoint = get_or_none(
            "online_endpoints.get",
            self._client.online_endpoints.get,
            endpoint_name,
            policy=self._policy,
        )
        if endpoint is None:
            raise PermanentError(f"no endpoint {endpoint_name!r} in the workspace")
        live = live_deployment(endpoint.traffic)
        if live is None:
            raise PermanentError(f"endpoint {endpoint_name} sends traffic to no deployment")
        deployment = call(
            "online_deployments.get",
            self._client.online_deployments.get,
            live,
            endpoint_name,
            policy=self._policy,
        )
        plan = rollback_plan(
            endpoint_name,
            live,
            getattr(deployment, "model", None),
            dict(deployment.tags or {}),
            PREVIOUS_MODEL_TAG,
            instance_type=str(deployment.instance_type),
            instance_count=int(deployment.instance_count or 1),
        )
        target = plan.target
        if (
            get_or_none(
                "models.get",
                self._client.models.get,
                target.name,
                target.version,
                policy=self._policy,
            )
            is None
        ):
            raise PermanentError(
                f"endpoint {endpoint_name}: the previous model version "
                f"{model_label(target)} is no longer registered"
            )
        return plan

    def rollback(self, plan: RollbackPlan) -> Endpoint:
        """Advance ``plan`` by the steps that are ready, as a deploy does: a deployment of
        the previous version made ready (recording the version rolled back from), all
        traffic moved to it, the others deleted, the ``champion`` tag moved back. Returns
        the endpoint once done; NotReady while provisioning, PermanentError when the
        deployment fails (traffic left as it is)."""
        target = deployment_name(plan.target.name, plan.target.version)
        reason = f"rolled back from {plan.rolled_back_from} ({model_label(plan.current)})"
        endpoint = self._existing_endpoint(plan.endpoint)
        traffic = traffic_shares(endpoint.traffic)
        if traffic == {target: 100}:
            self._finish(plan.endpoint, target, plan.target)
            log.info("azure.rolled_back", endpoint=plan.endpoint, deployment=target)
            return self._result(endpoint, target, reason)
        existing = self._find_deployment(plan.endpoint, target)
        recorded = {
            PREVIOUS_MODEL_TAG: model_label(plan.current),
            ROLLED_BACK_FROM_TAG: plan.rolled_back_from,
        }
        self._ready_deployment(
            plan.endpoint,
            plan.target,
            target,
            existing,
            recorded,
            instance_type=plan.instance_type,
            instance_count=plan.instance_count,
        )
        self._move_traffic(endpoint, target, reason)

    def _decide(
        self,
        request: AutoMLRequest,
        model: ModelVersion,
        metric_value: float,
        live: str,
        existing: Any,
    ) -> Verdict:
        """Whether ``model`` replaces the ``live`` deployment: the verdict recorded on the
        new deployment when it was made (against the same live one), else the two models
        scored on the same test rows (in the background: NotReady until done), else the
        values recorded at training, the reason saying why."""
        spec = request.deployment
        assert spec is not None
        if self._held_out is not None:
            request = self._held_out(request)
        target = deployment_name(model.name, model.version)
        tags = dict(getattr(existing, "tags", None) or {})
        if tags.get(COMPARED_WITH_TAG) == live and tags.get(VERDICT_TAG):
            return Verdict(True, tags[VERDICT_TAG])
        reference = self._live_reference(spec.endpoint_name, live)
        label = live if reference is None else f"{reference[0]}:{reference[1]}"
        outcome: Verdict | str
        why = why_no_rows(request)
        if why is not None:
            outcome = why
        elif reference is None:
            outcome = f"the live deployment {live} serves no registered model version"
        elif self._compare is None:
            outcome = "this deployer scores no models here"
        else:
            compare, live_model = self._compare, ModelVersion(*reference)
            outcome = self._verdicts.get(
                (request.id, target, live, label),
                lambda: compare(request, model, live_model),
                f"scoring {model.name}:{model.version} and the live {label} on the same test rows",
            )
        if isinstance(outcome, Verdict):
            return outcome
        live_tags = self._model_tags(reference) if reference is not None else {}
        verdict = compare_with_live(
            metric_value,
            request.selection_metric,
            request.selection_goal,
            label,
            live_tags,
            margin=spec.min_improvement,
        )
        return Verdict(verdict.promote, f"{RECORDED_VALUES} ({outcome}): {verdict.reason}")

    # Steps ----------------------------------------------------------------------------

    def _ready_endpoint(self, spec: Deployment, request: AutoMLRequest) -> Any:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        ops = self._client.online_endpoints
        endpoint = get_or_none(
            "online_endpoints.get", ops.get, spec.endpoint_name, policy=self._policy
        )
        if endpoint is not None:
            return _ready(endpoint, spec.endpoint_name)
        fresh = ManagedOnlineEndpoint(
            name=spec.endpoint_name,
            auth_mode=_AUTH_MODES[spec.auth_mode],
            tags={REQUEST_TAG: request.id},
        )
        call(
            "online_endpoints.begin_create_or_update",
            ops.begin_create_or_update,
            fresh,
            policy=self._policy,
        )
        log.info("azure.endpoint_creating", endpoint=spec.endpoint_name)
        raise NotReady(f"endpoint {spec.endpoint_name} is being created")

    def _existing_endpoint(self, name: str) -> Any:
        """The endpoint ``name``, ready; PermanentError when it does not exist."""
        endpoint = get_or_none(
            "online_endpoints.get", self._client.online_endpoints.get, name, policy=self._policy
        )
        if endpoint is None:
            raise PermanentError(f"no endpoint {name!r} in the workspace")
        return _ready(endpoint, name)

    def _ready_deployment(
        self,
        endpoint_name: str,
        model: ModelVersion,
        name: str,
        deployment: Any,
        tags: dict[str, str],
        *,
        instance_type: str,
        instance_count: int,
    ) -> None:
        """Create the deployment ``name`` of ``model`` (read just before: ``deployment``,
        or None) with ``tags`` besides its own, or see that it is ready."""
        from azure.ai.ml.entities import ManagedOnlineDeployment

        ops = self._client.online_deployments
        if deployment is None:
            fresh = ManagedOnlineDeployment(
                name=name,
                endpoint_name=endpoint_name,
                model=f"azureml:{model.name}:{model.version}",
                instance_type=instance_type,
                instance_count=instance_count,
                tags={**tags, CREATED_TAG: repr(self._clock())},
            )
            call(
                "online_deployments.begin_create_or_update",
                ops.begin_create_or_update,
                fresh,
                policy=self._policy,
            )
            log.info("azure.deployment_creating", endpoint=endpoint_name, deployment=name)
            raise NotReady(f"deployment {name} is being created")
        state = _state(deployment.provisioning_state)
        if state in FAILED:
            raise PermanentError(f"deployment {name} on {endpoint_name} is {state}")
        if state != READY:
            started = _float((deployment.tags or {}).get(CREATED_TAG))
            if started is not None and self._clock() - started > self._timeout:
                raise PermanentError(
                    f"deployment {name} on {endpoint_name} is still {state} after "
                    f"{self._timeout:.0f} s; traffic left as it is"
                )
            raise NotReady(f"deployment {name} is {state}")

    def _move_traffic(self, endpoint: Any, target: str, note: str) -> NoReturn:
        """Send all of ``endpoint``'s traffic to ``target``; NotReady until it is seen."""
        endpoint.traffic = {target: 100}
        call(
            "online_endpoints.begin_create_or_update",
            self._client.online_endpoints.begin_create_or_update,
            endpoint,
            policy=self._policy,
        )
        log.info("azure.traffic_switched", endpoint=endpoint.name, deployment=target)
        raise NotReady(
            f"traffic of {endpoint.name} moving to {target}" + (f" ({note})" if note else "")
        )

    def _finish(self, endpoint_name: str, target: str, model: ModelVersion) -> dict[str, str]:
        """With all traffic on ``target``: the other deployments deleted, ``model`` given
        the ``champion`` tag. Returns ``target``'s tags."""
        served = self._remove_others(endpoint_name, target)
        self._crown(model)
        return served

    def _find_deployment(self, endpoint_name: str, deployment: str) -> Any:
        """Deployment ``deployment`` of ``endpoint_name``, or None when there is none."""
        return get_or_none(
            "online_deployments.get",
            self._client.online_deployments.get,
            deployment,
            endpoint_name,
            policy=self._policy,
        )

    def _live_reference(self, endpoint_name: str, deployment: str) -> tuple[str, str] | None:
        """(name, version) of the registered model a live deployment serves, if any."""
        live = call(
            "online_deployments.get",
            self._client.online_deployments.get,
            deployment,
            endpoint_name,
            policy=self._policy,
        )
        return model_reference(getattr(live, "model", None))

    def _model_tags(self, reference: tuple[str, str]) -> dict[str, str]:
        """The tags of a registered model version (none when it is gone)."""
        name, version = reference
        registered = get_or_none(
            "models.get", self._client.models.get, name, version, policy=self._policy
        )
        return dict(getattr(registered, "tags", None) or {})

    def _crown(self, model: ModelVersion) -> None:
        """Give ``model`` the ``champion`` alias tag, and take it off the versions that
        held it. One model listing; writes only what changes (none when re-applied)."""
        from azure.core.exceptions import ResourceNotFoundError

        tag = alias_tag(CHAMPION_ALIAS)
        ops = self._client.models

        def versions() -> list[Any]:
            try:
                return list(ops.list(name=model.name))
            except ResourceNotFoundError:
                return []

        listed = call("models.list", versions, policy=self._policy)
        by_version = {str(m.version): m for m in listed}
        pairs = [(v, dict(m.tags or {})) for v, m in by_version.items()]
        if alias_holder(pairs, tag) != model.version and model.version in by_version:
            crowned = by_version[model.version]
            crowned.tags = {**(crowned.tags or {}), tag: repr(self._clock())}
            call("models.create_or_update", ops.create_or_update, crowned, policy=self._policy)
            log.info("azure.model_crowned", model=model.name, version=model.version)
        for version in holders_to_clear(pairs, tag, keep=model.version):
            former = by_version[version]
            former.tags = {k: v for k, v in (former.tags or {}).items() if k != tag}
            call("models.create_or_update", ops.create_or_update, former, policy=self._policy)
            log.info("azure.model_uncrowned", model=model.name, version=version)

    def _remove_others(self, endpoint_name: str, keep: str) -> dict[str, str]:
        """Delete the endpoint's deployments other than ``keep``; returns ``keep``'s tags."""
        ops = self._client.online_deployments
        existing = call(
            "online_deployments.list", lambda: list(ops.list(endpoint_name)), policy=self._policy
        )
        kept: dict[str, str] = {}
        for deployment in existing:
            if deployment.name == keep:
                kept = dict(deployment.tags or {})
            elif _state(deployment.provisioning_state) != "Deleting":
                call(
                    "online_deployments.begin_delete",
                    ops.begin_delete,
                    name=deployment.name,
                    endpoint_name=endpoint_name,
                    policy=self._policy,
                )
                log.info(
                    "azure.deployment_removed", endpoint=endpoint_name, deployment=deployment.name
                )
        return kept

    def _result(
        self, endpoint: Any, deployment: str, reason: str, *, promoted: bool = True
    ) -> Endpoint:
        return Endpoint(
            name=endpoint.name,
            deployment=deployment,
            scoring_uri=endpoint.scoring_uri or "",
            promoted=promoted,
            reason=reason,
        )


def _ready(endpoint: Any, name: str) -> Any:
    """``endpoint`` once provisioned; NotReady while it is, PermanentError if it failed."""
    state = _state(endpoint.provisioning_state)
    if state in FAILED:
        raise PermanentError(f"endpoint {name} is {state}")
    if state != READY:
        raise NotReady(f"endpoint {name} is {state}")
    return endpoint


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _state(value: Any) -> str:
    """A provisioning state as its plain name (the SDK may hand back an enum)."""
    return str(getattr(value, "value", value) or "")
