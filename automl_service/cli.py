"""The ``automl-service`` command line.

Exit codes: 0 success (or nothing to do); 1 a request ended failed (``submit --wait``) or
the health check failed; 2 bad input or bad settings; 3 the queue or backend could not be
reached.

``worker`` and ``drain`` stop on SIGTERM or SIGINT after the step under way, and exit 0; a
step still running ``worker.shutdown_grace_seconds`` later (or at a second signal) is
abandoned, its message coming back after the visibility timeout (see ``Shutdown``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from . import __version__
from .errors import AutoMLServiceError, ConfigurationError, InvalidRequest, TransientError
from .exit_codes import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from .http_thread import local_url
from .logs import configure_logging, get_logger
from .redact import scrub
from .render import result_summary, result_table
from .request import parse_request, request_from
from .results import RequestResult, RequestState
from .settings import Settings, load_settings
from .yaml_files import load_yaml

if TYPE_CHECKING:
    from .health import HealthServer
    from .queues.base import Queue
    from .results import ResultStore
    from .runs import Endpoint
    from .worker import Worker

log = get_logger(__name__)

#: A file ``submit`` reads as an Azure ML AutoML job (CLI v2 YAML).
JOB_FILE_SUFFIXES = (".yml", ".yaml")
#: How often ``--wait`` reads the result store.
WAIT_INTERVAL_SECONDS = 0.25


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="automl-service",
        description=(
            "Queue-driven AutoML: train, pick the best run by a metric, register the model "
            "and optionally deploy it. Runs offline on the local backend by default."
        ),
        epilog=(
            "Settings come from AUTOML_SERVICE_* environment variables (nested with '__', e.g. "
            "AUTOML_SERVICE_LOCAL__DATA_DIR) and an optional TOML file (--settings). "
            "Exit codes: 0 ok, 1 request failed / unhealthy, 2 bad input or settings, "
            "3 queue or backend unreachable."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--settings", metavar="FILE", help="TOML settings file (see settings/)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], help="log rendering (default auto)"
    )
    # --json is accepted before or after the command name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    # --wait and its --timeout, for the commands that send a request.
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--wait", action="store_true", help="show progress until it ends")
    waiting.add_argument("--timeout", type=float, default=3600.0, help="with --wait (seconds)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="process requests until stopped (SIGTERM/SIGINT)",
        description="Poll the queue and advance requests until stopped by SIGTERM or SIGINT.",
    )
    worker.add_argument("--health-port", type=int, help="serve the health endpoints on this port")
    worker.set_defaults(handler=cmd_worker)

    drain = commands.add_parser(
        "drain",
        parents=[common],
        help="process what is queued, then exit (scheduled jobs)",
        description=(
            "Advance every visible request once, then exit 0 when nothing is visible. "
            "Requests still training come back on the next run."
        ),
    )
    drain.add_argument("--deadline", type=float, metavar="SECONDS", help="stop after this long")
    drain.add_argument(
        "--wait",
        action="store_true",
        help="keep going until no recent request is still under way (not only until idle)",
    )
    drain.set_defaults(handler=cmd_drain)

    submit = commands.add_parser(
        "submit",
        parents=[common, waiting],
        help="validate and enqueue a request; prints its id",
        description=(
            "Validate a request and put it on the queue. Prints the request id. The file is "
            "a JSON request, or an Azure ML AutoML job in the CLI v2 YAML (.yml, .yaml; "
            "its data paths are read from its folder)."
        ),
    )
    submit.add_argument("file", help="request JSON or job YAML file, or - for JSON on stdin")
    submit.set_defaults(handler=cmd_submit)

    cancel = commands.add_parser(
        "cancel",
        parents=[common],
        help="stop a request wherever it is; it ends canceled",
        description=(
            "Put a cancel order for the request on the queue. The worker that takes it "
            "records the request canceled (with who asked and why), stops its job (a local "
            "trainer is killed and never restarted; an Azure ML job is canceled) and the "
            "request's message is settled. A request that has already ended is left as it is."
        ),
    )
    cancel.add_argument("request_id", help="the request to cancel")
    cancel.add_argument("--reason", help="why (kept in the request's result)")
    cancel.set_defaults(handler=cmd_cancel)

    retry = commands.add_parser(
        "retry",
        parents=[common, waiting],
        help="run a failed or canceled request again, as a new attempt",
        description=(
            "Send a failed or canceled request again under the same id as its next attempt: "
            "a job of its own, the training data read afresh, the earlier attempts kept in "
            "its result. Prints the request id."
        ),
    )
    retry.add_argument("request_id", help="the request to run again")
    retry.set_defaults(handler=cmd_retry)

    rollback = commands.add_parser(
        "rollback",
        parents=[common],
        help="put an endpoint's previous deployment back",
        description=(
            "Blue/green back to the deployment an endpoint served before its last switch: "
            "its model is checked again, all traffic moves to it, the other is retired and "
            "the registry alias 'champion' moves back (on Azure ML, the model tag "
            "automl_service.alias.champion). Twice returns to where it was. On Azure ML it "
            "waits until traffic is back and the other deployment is deleted."
        ),
    )
    rollback.add_argument("endpoint", help="the endpoint's name")
    rollback.set_defaults(handler=cmd_rollback)

    status = commands.add_parser(
        "status",
        parents=[common],
        help="show one request, or list recent ones",
        description="Show a request's state, job, best run, model version and error.",
    )
    status.add_argument("request_id", nargs="?", help="request id (omit to list recent)")
    status.add_argument("--limit", type=int, default=20, help="how many recent requests")
    status.set_defaults(handler=cmd_status)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run sample requests end to end on the local backend",
        description=(
            "Enqueue one classification, one regression and one forecasting request on "
            "sample data shipped with installed packages, process them with the local "
            "backend, and print each leaderboard, the chosen run and the registered model."
        ),
    )
    demo.add_argument("--budget", type=int, default=20, help="AutoML seconds per request")
    demo.add_argument("--data-dir", type=Path, help="where the demo keeps its stores")
    demo.set_defaults(handler=cmd_demo)

    health = commands.add_parser(
        "health",
        parents=[common],
        help="check a running worker's health endpoint; exit 0 or 1",
        description="For container HEALTHCHECKs: exit 0 if /healthz answers 200, else 1.",
    )
    health.add_argument("--url", help="base URL (default from health settings)")
    health.add_argument("--timeout", type=float, default=5.0)
    health.set_defaults(handler=cmd_health)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="write an HTML report for a request",
        description="Write a self-contained HTML report: leaderboard, trial plot, choice.",
    )
    report.add_argument("request_id")
    report.add_argument("--out", type=Path, help="file to write (default <request_id>.html)")
    report.set_defaults(handler=cmd_report)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="serve the local online endpoints over HTTP until stopped",
        description=(
            "Answer POST /endpoints/NAME/score with the live deployment of every local "
            "endpoint (GET /endpoints lists them, GET /healthz). Prints the base URL, then "
            "serves until SIGTERM or SIGINT. Host and port from local.endpoint_host and "
            "local.endpoint_port."
        ),
    )
    serve.add_argument("--port", type=int, help="port to listen on (0 picks a free one)")
    serve.set_defaults(handler=cmd_serve)

    predict = commands.add_parser(
        "predict",
        parents=[common],
        help="score a CSV or Parquet file with a registered model",
        description=(
            "Score every row of a CSV or Parquet file with a registered model (of the local "
            "registry, or with backend=azure of the workspace, downloaded once into the "
            "data folder's cache/models) and write the input's columns followed by "
            "'prediction' (the label or value) and, for a classifier, one "
            "'proba_<class>' column per class. The file is read and "
            "written in chunks, so its size is not bounded by memory; the output appears "
            "only once complete. Formats follow the suffixes (.csv, .parquet, .pq)."
        ),
        epilog=(
            "Example: automl-service predict --model churn-classifier:3 --input "
            "customers.parquet --output scored.csv. Exit 2 when the model, a file or an "
            "input column the model needs is missing (each missing column is named), or "
            "when a column the model reads as numbers holds text (the column, row and "
            "value named)."
        ),
    )
    predict.add_argument(
        "--model",
        required=True,
        metavar="NAME[:VERSION|@ALIAS]",
        help="registered model; without a version, its latest (@champion: the version "
        "an endpoint serves)",
    )
    predict.add_argument("--input", required=True, type=Path, metavar="FILE", help="rows to score")
    predict.add_argument(
        "--output", required=True, type=Path, metavar="FILE", help="file to write (replaced)"
    )
    predict.add_argument(
        "--chunk-rows",
        type=_positive,
        default=None,
        metavar="N",
        help="rows read, scored and written at a time (default 50000)",
    )
    predict.set_defaults(handler=cmd_predict)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.settings)
        if args.log_format:
            settings.logging.format = args.log_format
    except (ValueError, ConfigurationError) as exc:  # pydantic's ValidationError is a ValueError
        print(f"error: bad settings: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    secrets = _secrets(settings)
    try:
        configure_logging(settings.logging, secrets=secrets)
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        return handler(args, settings)
    except InvalidRequest as exc:
        print(f"error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigurationError as exc:
        print(f"error: bad settings: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_USAGE
    except TransientError as exc:
        print(f"error: unreachable: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except AutoMLServiceError as exc:
        print(f"error: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # the reader went away (`status | head`): nothing to report
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # e.g. the data folder or queue file cannot be created
        print(f"error: unreachable: {scrub(str(exc), secrets)}", file=sys.stderr)
        return EXIT_UNREACHABLE


# Commands ---------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.health_port is not None:
        settings.health.enabled = True
        settings.health.port = args.health_port
    stop = _stop_on_signals(settings.worker.shutdown_grace_seconds)
    try:
        return _run_worker(settings, stop)
    finally:
        stop.cancel()


def cmd_drain(args: argparse.Namespace, settings: Settings) -> int:
    deadline = time.time() + args.deadline if args.deadline else None
    stop = _stop_on_signals(settings.worker.shutdown_grace_seconds)
    try:
        if args.wait:
            return _run_worker(settings, stop, drain=True, deadline=deadline, until_ended=True)
        return _run_worker(settings, stop, drain=True, deadline=deadline)
    finally:
        stop.cancel()


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_policy, build_queue, build_results
    from .fingerprint import data_fingerprint, stamped

    raw = sys.stdin.buffer.read() if args.file == "-" else _read_file(args.file)
    path = None if args.file == "-" else Path(args.file)
    if path is not None and path.suffix.lower() in JOB_FILE_SUFFIXES:
        # An Azure ML AutoML job file: its paths are read from its folder, as the Azure
        # ML CLI reads them.
        job = request_from(load_yaml(raw, path.name))
        applied = build_policy(settings, cwd=path.resolve().parent)(job)
    else:
        applied = build_policy(settings)(parse_request(raw))
    if settings.backend == "local":
        from .engines.local.series_checks import check_series

        check_series(applied.request)
    for change in applied.changes:
        print(f"note: {change}", file=sys.stderr)
    # As it will run: local paths made absolute from here, the data's fingerprint, and
    # so the id the worker will know it by.
    request = stamped(applied.request, data_fingerprint(applied.request))
    text = request.model_dump_json(exclude_defaults=True)
    results = build_results(settings)
    existing = results.get(request.id)
    request.refuse_reused_id(existing.digest if existing is not None else None)
    queue = build_queue(settings)
    queue.send(text)
    if existing is None:
        results.keep_request(request.id, request.model_dump_json())
        results.put(
            RequestResult(
                request_id=request.id,
                state=RequestState.RECEIVED,
                task=request.task,
                job_name=request.job_name,
                digest=request.digest,
                data_fingerprint=request.data_fingerprint,
            )
        )
    if args.json:
        print(json.dumps({"request_id": request.id, "job_name": request.job_name}))
    else:
        print(request.id)
    return _follow(args, results, queue, request.id) if args.wait else EXIT_OK


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_queue, build_results
    from .control import cancel_order

    current = build_results(settings).get(args.request_id)
    if current is None:
        return _no_such_request(args.request_id, settings)
    if current.state.terminal:
        print(f"error: request {args.request_id!r} has already ended {current.state.value}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    order = cancel_order(args.request_id, args.reason)
    build_queue(settings).send(order.to_message())
    if args.json:
        print(json.dumps({"request_id": args.request_id, "cancel": "sent"}))
    else:
        print(f"cancel of {args.request_id} sent; a worker carries it out")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_policy, build_queue, build_results
    from .fingerprint import data_fingerprint, stamped

    results = build_results(settings)
    current = results.get(args.request_id)
    kept = results.kept_request(args.request_id)
    if current is None or kept is None:
        return _no_such_request(args.request_id, settings)
    if not current.state.retryable:
        print(
            f"error: request {args.request_id!r} is {current.state.value}: only a failed or "
            "canceled request can be retried",
            file=sys.stderr,
        )
        return EXIT_USAGE
    # The same settings under the same id, the data read afresh: a fixed file counts.
    earlier = parse_request(kept)
    again = earlier.model_copy(
        update={
            "request_id": args.request_id,
            "attempt": current.attempt + 1,
            "data_fingerprint": None,
        }
    )
    request = build_policy(settings)(again).request
    request = stamped(request, data_fingerprint(request))
    results.put(current.next_attempt(request.attempt).merged(job_name=request.job_name))
    results.keep_request(request.id, request.model_dump_json())
    queue = build_queue(settings)
    queue.send(request.model_dump_json(exclude_defaults=True))
    if args.json:
        print(json.dumps({"request_id": request.id, "attempt": request.attempt,
                          "job_name": request.job_name}))  # fmt: skip
    else:
        print(f"{request.id} (attempt {request.attempt})")
    return _follow(args, results, queue, request.id) if args.wait else EXIT_OK


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    endpoint = _rollback_azure(args, settings) if settings.backend == "azure" else None
    if endpoint is None:
        from .engines.local.deployer import LocalDeployer

        endpoint = LocalDeployer(settings.local).rollback(args.endpoint)
    if args.json:
        print(json.dumps({"endpoint": endpoint.name, "deployment": endpoint.deployment,
                          "reason": endpoint.reason}))  # fmt: skip
    else:
        print(f"{endpoint.name} now serves {endpoint.deployment} ({endpoint.reason})")
    return EXIT_OK


def _rollback_azure(args: argparse.Namespace, settings: Settings) -> Endpoint:
    """Roll an Azure ML endpoint back, waiting until traffic is back and the deployment
    rolled back from is gone (progress on stderr)."""
    from .backends import build_backend
    from .engines.azure.deployer import AzureDeployer
    from .engines.azure.rollback import roll_back

    deployer = build_backend(settings).deployer
    if not isinstance(deployer, AzureDeployer):
        raise ConfigurationError("the azure backend has no deployer")
    azure = settings.azure
    # The SDK's pollers print a dot to stdout on every poll: stdout is kept for the answer.
    with contextlib.redirect_stdout(sys.stderr):
        return roll_back(
            deployer,
            args.endpoint,
            # The new deployment fails the rollback once provisioning takes longer than this.
            timeout=azure.deployment_timeout_seconds + 300.0,
            interval=max(azure.poll_min_seconds, 0.1),
            on_wait=lambda why: print(why, file=sys.stderr, flush=True),
        )


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_results

    results = build_results(settings)
    if args.request_id is None:
        recent = results.recent(args.limit)
        if args.json:
            print(json.dumps([r.model_dump(mode="json") for r in recent], indent=2))
        else:
            print(result_table(recent))
            # A user in another folder would otherwise read an empty new store silently.
            print(f"(results in {settings.local.data_dir.resolve()})", file=sys.stderr)
        return EXIT_OK
    result = results.get(args.request_id)
    if result is None:
        return _no_such_request(args.request_id, settings)
    _print_result(result, as_json=args.json)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from .demo import run_demo

    if args.data_dir is not None:
        settings.local.data_dir = args.data_dir
    if "AUTOML_SERVICE_LOGGING__LEVEL" not in os.environ:
        # The demo prints its own progress; the worker's routine lines would bury it.
        settings.logging.level = "warning"
        configure_logging(settings.logging, secrets=_secrets(settings))
    return run_demo(settings, budget_seconds=args.budget, as_json=args.json)


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    from .health_probe import check_health

    url = args.url or local_url(settings.health.host, settings.health.port)
    return check_health(url, args.timeout)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_backend, build_results
    from .report import render_report

    result = build_results(settings).get(args.request_id)
    if result is None:
        print(f"error: no request {args.request_id!r}", file=sys.stderr)
        return EXIT_USAGE
    runs = build_backend(settings).engine.child_runs(result.job_name) if result.job_name else []
    insight = None
    if settings.backend == "local" and result.best_run_id:
        from .engines.local.insight_artifacts import download_insight

        insight = download_insight(settings.local.mlflow_uri, result.best_run_id)
    out: Path = args.out or Path(f"{args.request_id}.html")
    out.write_text(render_report(result, runs, insight), encoding="utf-8")
    print(out)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_scoring_server

    if settings.backend != "local":
        raise ConfigurationError("serve runs the local backend's endpoints; set backend=local")
    server = build_scoring_server(settings.local, port=args.port, secrets=_secrets(settings))
    try:
        server.start()
    except OSError as exc:
        where = f"{settings.local.endpoint_host}:{server.port}"
        raise ConfigurationError(f"cannot serve endpoints on {where}: {exc.strerror}") from None
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("serve.stopping", reason=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(json.dumps({"url": server.url}) if args.json else server.url, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, old_handler in previous.items():
            signal.signal(sig, old_handler)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from .backends import build_model_files
    from .engines.local.batch import CHUNK_ROWS, predict_with

    shown = sys.stderr.isatty() and not args.json

    def progress(rows: int) -> None:
        if shown:
            print(f"\rscored {rows:,} rows", end="", file=sys.stderr, flush=True)

    scored = predict_with(
        build_model_files(settings),
        args.model,
        args.input,
        args.output,
        chunk_rows=args.chunk_rows or CHUNK_ROWS,
        progress=progress,
    )
    if shown:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(scored.as_json()))
    else:
        print(
            f"{scored.rows} rows scored by {scored.model} version {scored.version}: {scored.output}"
        )
    return EXIT_OK


# Helpers ----------------------------------------------------------------------------


def _run_worker(
    settings: Settings,
    stop: Shutdown,
    *,
    drain: bool = False,
    deadline: float | None = None,
    until_ended: bool = False,
) -> int:
    """Run the worker loop until ``stop`` (or, with ``drain``, until idle or ``deadline``;
    with ``until_ended`` too, until none of the result store's latest 1000 requests is
    still under way, whoever submitted them).

    Raises TransientError (exit 3) when the queue cannot be reached at start, and
    ConfigurationError (exit 2) when the worker's health port cannot be bound.
    """
    from .backends import build_queue, build_worker

    queue = build_queue(settings)
    queue.check()
    worker = build_worker(settings, queue=queue)
    server = _start_health(settings, worker, drain=drain)
    if server is not None:
        stop.on_abandon(server.stop)
    log.info("worker.started", backend=settings.backend, queue=queue.name, drain=drain)
    try:
        while True:
            code = worker.run(stop.event, drain=drain, deadline=deadline)
            if not until_ended or code != EXIT_OK or stop.event.is_set():
                return code
            pending = [r for r in worker.results.recent(1000) if not r.state.terminal]
            if not pending or (deadline is not None and time.time() >= deadline):
                return EXIT_OK
            # Until the first re-check this worker scheduled, or a new message.
            idle = min(settings.worker.recheck_seconds, 5.0)
            queue.wait_for_messages(worker.next_wait(idle), stop.event)
    finally:
        if server is not None:
            server.stop()
        log.info("worker.stopped")


def _start_health(settings: Settings, worker: Worker, *, drain: bool) -> HealthServer | None:
    """The started HealthServer, or None when disabled (or, in drain mode, unbindable)."""
    from .backends import build_health_server

    server = build_health_server(settings, worker)
    if server is None:
        return None
    try:
        server.start()
    except OSError as exc:
        where = f"{settings.health.host}:{settings.health.port}"
        if drain:  # a scheduled run still drains without its health endpoint
            log.warning("health.unavailable", address=where, error=str(exc))
            return None
        raise ConfigurationError(f"cannot serve health on {where}: {exc.strerror}") from None
    log.info("health.listening", url=server.url)
    return server


class Shutdown:
    """SIGTERM or SIGINT asks the worker loop to stop after the step under way (``event``).

    If the loop has not returned ``grace`` seconds later, or a second signal comes, the
    process abandons that step and exits 0 at once: every step is idempotent and the
    message it held comes back after its visibility timeout, so nothing is lost.
    """

    def __init__(self, grace: float, exit: Callable[[int], object] = os._exit) -> None:
        self.event = threading.Event()
        self.grace = grace
        self._exit = exit
        self._cleanups: list[Callable[[], object]] = []
        self._timer: threading.Timer | None = None

    def on_abandon(self, cleanup: Callable[[], object]) -> None:
        """Run ``cleanup`` (best effort) before abandoning."""
        self._cleanups.append(cleanup)

    def request(self, reason: str) -> None:
        """Ask the loop to stop; the second request abandons at once."""
        if self.event.is_set():
            self.abandon(f"{reason} again")
            return
        log.info("worker.stopping", reason=reason, grace_seconds=self.grace)
        self.event.set()
        self._timer = threading.Timer(self.grace, self.abandon, args=("grace period over",))
        self._timer.daemon = True
        self._timer.name = "shutdown-grace"
        self._timer.start()

    def abandon(self, reason: str) -> None:
        log.warning("worker.abandoning_step", reason=reason)
        for cleanup in self._cleanups:
            try:
                cleanup()
            except Exception as exc:  # exiting anyway
                log.warning("worker.cleanup_failed", error=str(exc))
        # Best effort: a stream that is gone must not keep the process from exiting.
        for flush in [h.flush for h in logging.getLogger().handlers]:
            with contextlib.suppress(Exception):
                flush()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._exit(EXIT_OK)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _stop_on_signals(grace: float) -> Shutdown:
    shutdown = Shutdown(grace)

    def handle(signum: int, frame: FrameType | None) -> None:
        shutdown.request(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
    return shutdown


def _secrets(settings: Settings) -> list[str]:
    from .redact import secret_values

    return secret_values(settings)


def _no_such_request(request_id: str, settings: Settings) -> int:
    where = settings.local.data_dir.resolve()
    print(f"error: no request {request_id!r} in {where}", file=sys.stderr)
    return EXIT_USAGE


def _follow(args: argparse.Namespace, results: ResultStore, queue: Queue, request_id: str) -> int:
    """``--wait``: progress until the request ends, then its result; exit 0 only when it
    succeeded."""
    hint = _no_worker_hint(results, queue, request_id, after=min(30.0, args.timeout / 2))
    ended = _wait_for(results, [request_id], args.timeout, as_json=args.json, step=hint)
    final = ended[request_id]
    _print_result(final, as_json=args.json)
    return EXIT_OK if final.state is RequestState.SUCCEEDED else EXIT_FAILED


def _no_worker_hint(
    results: ResultStore, queue: Queue, request_id: str, *, after: float
) -> Callable[[], None]:
    """A wait step that says once, ``after`` seconds, when the request is still waiting
    on the queue untouched: the likeliest cause is that no worker is running."""
    started = time.monotonic()
    said = False

    def step() -> None:
        nonlocal said
        if said or time.monotonic() - started < after:
            return
        current = results.get(request_id)
        untouched = current is not None and current.state is RequestState.RECEIVED
        if untouched and queue.visible_count() > 0:
            print(
                "note: no worker has taken the request yet; is `automl-service worker` "
                "(or `drain`) running on this queue and data folder?",
                file=sys.stderr,
                flush=True,
            )
        said = True

    return step


def _wait_for(
    results: ResultStore,
    request_ids: list[str],
    timeout: float,
    *,
    as_json: bool,
    step: Callable[[], object] | None = None,
) -> dict[str, RequestResult]:
    """Each request's terminal result (``waiting.wait_for_results``). Each state change
    and each news of progress is shown on standard error: a line each (a progress line
    rewritten in place on a terminal), or a JSON object per line with ``as_json``."""
    from .render import progress_text
    from .waiting import wait_for_results

    err = sys.stderr
    in_place = not as_json and err.isatty()
    pending_line = False

    def emit(text: str, *, rewrite: bool = False) -> None:
        nonlocal pending_line
        if in_place and rewrite:
            err.write(f"\r\x1b[K{text}")
            pending_line = True
        else:
            err.write(("\n" if pending_line else "") + text + "\n")
            pending_line = False
        err.flush()

    def show(request_id: str, state: RequestState | None, elapsed: float) -> None:
        label = state.value if state is not None else "unknown"
        if as_json:
            emit(json.dumps({"request_id": request_id, "state": label, "elapsed": round(elapsed)}))
        else:
            emit(f"{request_id}: {label} ({elapsed:.0f}s)")

    def progressed(result: RequestResult, elapsed: float) -> None:
        if as_json:
            line = {"request_id": result.request_id, "state": result.state.value}
            emit(json.dumps({**line, "elapsed": round(elapsed), "progress": result.progress}))
            return
        text = progress_text(result.progress)
        emit(f"{result.request_id}: {result.state.value}, {text} ({elapsed:.0f}s)", rewrite=True)

    ended = wait_for_results(
        results,
        request_ids,
        timeout=timeout,
        step=step,
        on_change=show,
        on_progress=progressed,
        interval=WAIT_INTERVAL_SECONDS,
    )
    if pending_line:
        emit("")
    return ended


def _print_result(result: RequestResult, *, as_json: bool) -> None:
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print(result_summary(result))


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from None
