"""The workspace's MLflow tracking server, read with a bearer token from the credential.

Azure ML gives the tracking URI as ``azureml://<region>.api.azureml.ms/mlflow/v1.0/...``;
its REST surface is MLflow's own under ``https://`` on the same host and path. Rather than
installing the ``azureml-mlflow`` plugin (which registers a global tracking-URI scheme and
pulls in the v1 SDK), the service sends MLflow's REST calls itself with a token from the
same credential as MLClient, fetched per call (azure-identity caches it). Nothing is set
process-wide, so several workspaces can be read in one process.

MLflow's own urllib3 retries are switched off for these calls (``max_retries=0``, and no
status counted as retryable, without which urllib3 turns a 429 into a 500 "too many 429
error responses" and its Retry-After is lost): with them, a tracking-server outage would
hold a worker for minutes (7 retries with growing back-off, inside each of ours). The
service's retry policy is the one layer, and it waits as long as a 429's Retry-After
asks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import requests

from ...azure_retry import TRANSIENT_STATUS, RetryPolicy, call
from ...rest_tracking import SEARCH_RUNS, page_from_json, search_body
from ...scan import RunPage

#: Runs per ``runs/search`` page: the workspace's MLflow refuses 1000 or more ("MaxResults
#: = 25000 is invalid: MaxResults must be less than 1000.", mlflow/mlflow#10694).
PAGE_SIZE = 999

#: Token audience for the workspace's MLflow server (the resource manager's).
DEFAULT_SCOPE = "https://management.azure.com/.default"

GET_RUN = "/api/2.0/mlflow/runs/get"


def tracking_host(uri: str) -> str:
    """The HTTP(S) base URL of a tracking URI (``azureml://`` becomes ``https://``)."""
    if uri.startswith("azureml://"):
        return "https://" + uri.removeprefix("azureml://").rstrip("/")
    if uri.startswith(("https://", "http://")):
        return uri.rstrip("/")
    raise ValueError(f"not a remote tracking URI: {uri!r}")


class WorkspaceTracking:
    """``get_run`` and ``search_runs`` on a remote MLflow server, retried.

    Has the ``search_runs`` shape ``automl_service.scan.scan_child_runs`` expects.
    ``calls`` counts HTTP requests sent (retries included).
    """

    def __init__(
        self,
        uri: str,
        credential: Any | None = None,
        *,
        scope: str = DEFAULT_SCOPE,
        policy: RetryPolicy | None = None,
        timeout_seconds: int = 30,
    ) -> None:
        self.host = tracking_host(uri)
        self._credential = credential
        self._scope = scope
        self._policy = policy
        self._timeout = timeout_seconds
        self.calls = 0

    def get_run(self, run_id: str) -> Any | None:
        """The run (an ``mlflow.entities.Run``), or None when the server does not know it."""
        from mlflow.entities import Run
        from mlflow.exceptions import MlflowException
        from mlflow.protos.service_pb2 import GetRun
        from mlflow.utils import proto_json_utils

        def attempt() -> Any | None:
            try:
                answer = self._send(GET_RUN, "GET", {"run_id": run_id})
            except MlflowException as exc:
                if _untyped(exc).get_http_status_code() == 404:
                    return None
                raise
            message = GetRun.Response()
            _untyped(proto_json_utils).parse_dict(answer, message)
            return _untyped(Run).from_proto(message.run)

        return call("mlflow get_run", attempt, policy=self._policy)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str,
        max_results: int,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of runs, read straight from the JSON into RunRecords."""
        body = search_body(experiment_ids, filter_string, max_results, page_token)

        def attempt() -> RunPage:
            return page_from_json(self._send(SEARCH_RUNS, "POST", body))

        return call("mlflow search_runs", attempt, policy=self._policy)

    def _send(self, endpoint: str, method: str, body: dict[str, Any]) -> Any:
        """The JSON answer of one REST call."""
        from mlflow.utils import rest_utils

        self.calls += 1
        token = None
        if self._credential is not None:
            token = self._credential.get_token(self._scope).token
        utils: Any = rest_utils
        creds = utils.MlflowHostCreds(self.host, token=token)
        payload = {"params": body} if method == "GET" else {"json": body}
        reply = utils.http_request(
            creds,
            endpoint,
            method,
            max_retries=0,
            retry_codes=frozenset(),  # else urllib3 turns a 429 into "too many 429 responses"
            raise_on_status=False,
            timeout=self._timeout,
            **payload,
        )
        if reply.status_code in TRANSIENT_STATUS:
            # Raised with the response, so the retry policy reads its Retry-After (MLflow's
            # own error would drop the headers).
            raise requests.HTTPError(f"{endpoint}: HTTP {reply.status_code}", response=reply)
        return json.loads(utils.verify_rest_response(reply, endpoint).text)


def _untyped(value: Any) -> Any:
    """MLflow ships no type hints; its objects are used as ``Any``."""
    return value
