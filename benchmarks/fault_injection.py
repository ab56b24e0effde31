"""Fault injection: workers killed with what they started, hostile bodies, and on the
azure backend 429 / 503 / reset connections from the queue and from Azure ML.

On a fresh data folder it starts ``--workers`` worker processes at the same moment (as
replicas of a Deployment, or a supervisor restarting them all, do), sharing ``--slots``
training slots (``local.max_concurrent_jobs``), and puts on the SQLite queue
``--requests`` small requests on bundled samples plus a batch of hostile bodies (nesting
5,000 deep, a 5,000-digit number, NaN, schema errors, a 70 KB body, a non-object, ...).
At random moments it kills a random worker together with every process it started, as a
container stop does (the whole group; trainers lead sessions of their own, so they are
found through /proc parent links; the job folders' pid files serve the clean-up at the
end), ``--kills`` times in all, and restarts that worker at once. At the end (every
request ended and the request queue is empty, or ``--deadline``) it prints:

- requests succeeded, failed, and lost (never ended);
- duplicated jobs (more than one MLflow parent run tagged with one request id) and
  duplicated model versions (more than one version tagged with one request id);
- hostile messages poisoned (with a reason) out of those sent;
- worker restarts, workers that exited on their own, and failed requests whose error
  says the trainer died or a call met an injected fault (failed because of a kill or a
  fault);
- on the azure backend, the faults injected and the outcomes on the reply queue;
- wall time.

Exit code 1 when a target is missed: 0 lost, 0 duplicated, 0 failed because of a kill
(or an injected fault), every hostile body poisoned with a reason, every request succeeded.

With ``--backend azure`` the workers run the azure backend against loopback stand-ins, and
``--fault-rate`` of the calls fail on purpose: see ``benchmarks.azure_faults``. The kills,
hostile bodies and measures are the same.

    python -m benchmarks.fault_injection --requests 20 --kills 20 --workers 2 --slots 2 --budget 8
    python -m benchmarks.fault_injection --backend azure --requests 20 --kills 20 --fault-rate 0.1
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from automl_service.engines.local.layout import JobDir
from automl_service.engines.local.store import prepare_store
from automl_service.logs import configure_logging
from automl_service.queues.sqlite import SqliteQueue
from automl_service.result_store import SqliteResultStore
from automl_service.results import RequestResult, RequestState
from automl_service.settings import LoggingSettings
from automl_service.tags import REQUEST_TAG

QUEUE_NAME = "automl-requests"
PARENT_TAG = "mlflow.parentRunId"
#: Words in a failed request's error that say its trainer was killed, or that a call met
#: an injected fault, rather than that the request itself failed.
KILL_WORDS = ("trainer process died", "without finishing", "died", "killed", "SIGKILL")
FAULT_WORDS = ("HTTP 429", "HTTP 503", "ServerBusy", "reset", "after retries", "injected")

#: (sample, task, primary metric) the good requests cycle through.
SAMPLES = (
    ("iris", "classification", "accuracy"),
    ("diabetes", "regression", "normalized_root_mean_squared_error"),
    ("breast_cancer", "classification", "accuracy"),
)


@dataclass(frozen=True)
class Config:
    backend: Literal["local", "azure"] = "local"
    requests: int = 20
    kills: int = 20
    workers: int = 2
    slots: int = 2
    budget: int = 8  # each request's limits.timeout_seconds
    max_trials: int = 8
    #: Mean seconds between kills (each gap is uniform in [0.2, 2 * mean]).
    kill_gap: float = 4.0
    deadline: float = 1200.0  # seconds from the start
    seed: int = 0
    data_dir: Path | None = None  # a fresh temporary folder when None
    json_out: Path | None = None  # where to write the report as JSON, if anywhere
    #: azure: the fraction of calls to the queue and to Azure ML that fail on purpose.
    fault_rate: float = 0.1
    #: azure: status reads a job answers Running before Completed.
    running_polls: int = 6
    #: azure: every n-th request also deploys to an endpoint of its own (0: none).
    deploy_every: int = 4


class Site(Protocol):
    """Where the workers run: how they are started, where requests go, what the backend
    holds afterwards."""

    command: list[str]
    env: dict[str, str]

    def send(self, text: str) -> str:
        """Put ``text`` on the request queue as it is; its message id."""
        ...

    def good_request(self, index: int) -> dict[str, Any]: ...

    def queue_empty(self) -> bool:
        """Whether no message is left on the request queue, hidden ones included (every
        body sent was deleted or moved to the poison queue)."""
        ...

    def poisoned(self) -> dict[str, str]:
        """Message id -> reason of every record on the poison queue."""
        ...

    def duplicates(self) -> tuple[dict[str, int], dict[str, int]]:
        """Request ids with more than one job, and with more than one model version."""
        ...

    def after_stop(self, report: Report) -> None:
        """Clean up after the workers stopped; add this backend's own measures."""
        ...


@dataclass
class Worker:
    """One worker slot: the process running now and how many times it was started."""

    index: int
    log_dir: Path
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"worker-{self.index}-{self.starts}.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as a container would be
            )

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"worker-{self.index}-{self.starts}.log"


@dataclass
class Report:
    """What the run measured; ``missed`` lists the targets it did not meet."""

    requests: int
    succeeded: int
    failed: int
    lost: int
    duplicated_jobs: int
    duplicated_versions: int
    hostile_sent: int
    hostile_poisoned: int
    failed_by_kill: int
    data_dir: Path
    problems: list[str] = field(default_factory=list)
    kills: int = 0
    kills_asked: int = 0
    trainers_killed: int = 0
    retrained: int = 0  # trainer starts beyond each job's first
    restarts: int = 0
    own_exits: int = 0
    wall_seconds: float = 0.0
    backend: str = "local"
    #: Faults injected, by injector and kind (azure).
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Requests whose outcome reached the reply queue, and how many outcome messages
    #: they got there (an outcome whose send lost its answer is sent again) (azure).
    replied: int | None = None
    reply_messages: int = 0

    @property
    def missed(self) -> list[str]:
        checks = {
            "lost requests": self.lost == 0,
            "duplicated jobs": self.duplicated_jobs == 0,
            "duplicated model versions": self.duplicated_versions == 0,
            "failed because of a kill": self.failed_by_kill == 0,
            "hostile bodies not all poisoned": self.hostile_poisoned == self.hostile_sent,
            "requests not all succeeded": self.succeeded == self.requests,
            "fewer kills than asked (the work ended first)": self.kills >= self.kills_asked,
        }
        return [name for name, ok in checks.items() if not ok]

    def to_json(self) -> str:
        fields = {k: v for k, v in vars(self).items() if k != "data_dir"}
        return json.dumps({**fields, "data_dir": str(self.data_dir), "missed": self.missed})

    def table(self) -> str:
        rows = [
            ("requests succeeded", f"{self.succeeded} / {self.requests}"),
            ("requests failed", str(self.failed)),
            ("requests lost (never ended)", str(self.lost)),
            ("duplicated jobs", str(self.duplicated_jobs)),
            ("duplicated model versions", str(self.duplicated_versions)),
            ("hostile messages poisoned", f"{self.hostile_poisoned} / {self.hostile_sent}"),
            ("kills (a worker and what it started)", f"{self.kills} / {self.kills_asked}"),
        ]
        if self.backend == "local":
            rows += [
                ("processes killed with their worker (trainers)", str(self.trainers_killed)),
                ("trainer starts beyond each job's first", str(self.retrained)),
            ]
        rows += [
            ("worker restarts", str(self.restarts)),
            ("workers that exited on their own", str(self.own_exits)),
            ("failed because of a kill or an injected fault", str(self.failed_by_kill)),
        ]
        for injector, kinds in self.faults.items():
            detail = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
            rows.append((f"faults injected by {injector}", f"{sum(kinds.values())} ({detail})"))
        if self.replied is not None:
            rows.append(
                (
                    "requests with an outcome on the reply queue (messages)",
                    f"{self.replied} / {self.requests} ({self.reply_messages})",
                )
            )
        rows.append(("wall time", f"{self.wall_seconds:.0f} s"))
        lines = ["| measure | value |", "|---|---:|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        return "\n".join(lines)


# Bodies ------------------------------------------------------------------------------------


def good_request(index: int, config: Config) -> dict[str, Any]:
    sample, task, metric = SAMPLES[index % len(SAMPLES)]
    request_id = f"fi-{index:03d}-{sample.replace('_', '-')}"
    return {
        "request_id": request_id,
        "task": task,
        "training_data": f"sample:{sample}",
        "target_column_name": "target",
        "primary_metric": metric,
        "limits": {"timeout_seconds": config.budget, "max_trials": config.max_trials},
        "registration": {"model_name": f"model-{request_id}"},
    }


def hostile_bodies(big_kb: int = 70) -> dict[str, str]:
    """Bodies that can never become a request, each of which must be poisoned with a reason;
    the big one is ``big_kb`` KB (an Azure Storage queue takes at most 64 KiB)."""
    valid = good_request(0, Config())
    padded = {**valid, "request_id": "fi-hostile-big", "experiment_name": "x" * big_kb * 1000}
    return {
        "nested 5,000 deep": '{"a":' * 5000,
        "5,000-digit number": '{"request_id": ' + "9" * 5000 + "}",
        "NaN task": '{"task": NaN}',
        "schema: wrong type": json.dumps({**valid, "request_id": "fi-hostile-type", "task": 7}),
        "schema: unknown field": json.dumps({**valid, "request_id": "fi-hostile-x", "x": 1}),
        "schema: metric of another task": json.dumps(
            {**valid, "request_id": "fi-hostile-metric", "primary_metric": "r2_score"}
        ),
        f"{big_kb} KB body": json.dumps(padded),
        "non-object": "[1, 2, 3]",
        "JSON string": '"classification"',
        "empty": "",
        "not JSON": "train me a model please",
        "lone surrogate escape": '{"request_id": "\\ud800"}',
    }


# Processes -----------------------------------------------------------------------------------


def worker_env(data_dir: Path, slots: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    env.update(
        AUTOML_SERVICE_LOCAL__DATA_DIR=str(data_dir),
        AUTOML_SERVICE_LOCAL__MAX_CONCURRENT_JOBS=str(slots),
        AUTOML_SERVICE_WORKER__POLL_INTERVAL_SECONDS="0.2",
        AUTOML_SERVICE_WORKER__MAX_POLL_INTERVAL_SECONDS="1",
        AUTOML_SERVICE_WORKER__RECHECK_SECONDS="0.5",
        AUTOML_SERVICE_WORKER__MAX_RECHECK_SECONDS="2",
        AUTOML_SERVICE_WORKER__RETRY_SECONDS="1",
        AUTOML_SERVICE_WORKER__MAX_RETRY_SECONDS="5",
        AUTOML_SERVICE_WORKER__VISIBILITY_TIMEOUT_SECONDS="10",
        AUTOML_SERVICE_WORKER__SHUTDOWN_GRACE_SECONDS="10",
        AUTOML_SERVICE_LOGGING__FORMAT="json",
    )
    return env


def parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(root: int) -> set[int]:
    """Every process below ``root`` (any session), by /proc parent links."""
    table = parents()
    below: set[int] = set()
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in table.items() if parent == pid]
        below.update(children)
        frontier.extend(children)
    return below


def signal_quietly(pid: int, signum: int, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def kill_with_trainers(process: subprocess.Popen[bytes]) -> int:
    """SIGKILL ``process``, its process group and everything it started (trainers lead
    sessions of their own). Everything is stopped first so nothing new starts in between.
    Returns how many processes below the worker were killed."""
    pid = process.pid
    signal_quietly(pid, signal.SIGSTOP, group=True)
    below = descendants(pid)
    for child in below:
        signal_quietly(child, signal.SIGSTOP)
    below |= descendants(pid)  # anything forked before the stop took hold
    for child in below:
        signal_quietly(child, signal.SIGKILL, group=True)
        signal_quietly(child, signal.SIGKILL)
    signal_quietly(pid, signal.SIGKILL, group=True)
    process.wait(timeout=30)
    return len(below)


def kill_trainers_of_jobs(data_dir: Path) -> None:
    """Clean-up: every trainer a job folder names (each leads its own group)."""
    jobs = data_dir / "jobs"
    for path in jobs.iterdir() if jobs.exists() else []:
        pid = JobDir(path).spawned_pid()
        if pid is not None:
            signal_quietly(pid, signal.SIGKILL, group=True)


def retrained(data_dir: Path) -> int:
    """Trainer starts beyond each job's first, from the job folders' attempt counts."""
    jobs = data_dir / "jobs"
    counts = [JobDir(path).attempts() for path in jobs.iterdir()] if jobs.exists() else []
    return sum(max(0, count - 1) for count in counts)


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.process is not None and worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        if worker.process is None:
            continue
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_with_trainers(worker.process)


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# The run ---------------------------------------------------------------------------------


def results_of(store: SqliteResultStore, request_ids: list[str]) -> dict[str, RequestResult]:
    found: dict[str, RequestResult] = {}
    for request_id in request_ids:
        with contextlib.suppress(Exception):  # a store busy with the workers: next time
            result = store.get(request_id)
            if result is not None:
                found[request_id] = result
    return found


def all_ended(store: SqliteResultStore, request_ids: list[str]) -> bool:
    results = results_of(store, request_ids)
    return len(results) == len(request_ids) and all(r.state.terminal for r in results.values())


def in_flight(store: SqliteResultStore, request_ids: list[str]) -> bool:
    """Whether some request has started and not yet ended (a kill now hits real work)."""
    return any(not r.state.terminal for r in results_of(store, request_ids).values())


@dataclass
class Chaos:
    """The kills: when the next one is due, and what they did."""

    config: Config
    rng: random.Random
    started: float
    kills: int = 0
    trainers_killed: int = 0
    due: float = 0.0

    def __post_init__(self) -> None:
        # The first kill lands during start-up (stores being created); the others at random
        # moments while some request is under way.
        self.due = self.started + self.rng.uniform(0.5, 5.0)

    def maybe_kill(self, workers: list[Worker], busy: bool) -> None:
        now = time.monotonic()
        if self.kills >= self.config.kills or now < self.due or (self.kills and not busy):
            return
        victim = self.rng.choice(workers)
        assert victim.process is not None
        killed = kill_with_trainers(victim.process)
        self.kills += 1
        self.trainers_killed += killed
        print(
            f"kill {self.kills}: worker {victim.index} and {killed} processes it started, "
            f"at {now - self.started:.0f} s",
            file=sys.stderr,
        )
        victim.start()
        self.due = time.monotonic() + self.rng.uniform(0.2, 2 * self.config.kill_gap)


def restart_exited(workers: list[Worker], problems: list[str]) -> int:
    """Restart every worker that ended by itself; how many did."""
    exited = 0
    for worker in workers:
        assert worker.process is not None
        code = worker.process.poll()
        if code is None:
            continue
        exited += 1
        problems.append(
            f"worker {worker.index} (start {worker.starts}) exited {code} on its own; "
            f"its log ends:\n{log_tail(worker.log_file)}"
        )
        worker.start()
    return exited


def fresh_folder(config: Config) -> Path:
    data_dir = config.data_dir or Path(tempfile.mkdtemp(prefix="automl-faults-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    if any(data_dir.iterdir()):
        raise SystemExit(f"not a fresh data folder: {data_dir}")
    return data_dir


@dataclass
class LocalSite:
    """The local backend on one data folder: the SQLite queue and the MLflow store in it."""

    data_dir: Path
    slots: int
    budget: int
    max_trials: int
    command: list[str] = field(
        default_factory=lambda: [sys.executable, "-m", "automl_service", "worker"]
    )
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = worker_env(self.data_dir, self.slots)

    @functools.cached_property
    def queue(self) -> SqliteQueue:
        # Made at the first send, after the workers started: they race to create stores.
        return SqliteQueue(self.data_dir / "queue.db", QUEUE_NAME)

    def send(self, text: str) -> str:
        return self.queue.send(text)

    def good_request(self, index: int) -> dict[str, Any]:
        return good_request(index, Config(budget=self.budget, max_trials=self.max_trials))

    def queue_empty(self) -> bool:
        uri = f"{(self.data_dir / 'queue.db').resolve().as_uri()}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
                row = db.execute(
                    "SELECT count(*) FROM queue_messages WHERE queue = ?", (QUEUE_NAME,)
                ).fetchone()
        except sqlite3.Error:  # busy with the workers: next time
            return False
        return int(row[0]) == 0

    def poisoned(self) -> dict[str, str]:
        return {entry.message_id: entry.reason for entry in self.queue.poisoned(limit=10_000)}

    def duplicates(self) -> tuple[dict[str, int], dict[str, int]]:
        return duplicates(self.data_dir)

    def after_stop(self, report: Report) -> None:
        kill_trainers_of_jobs(self.data_dir)
        report.retrained = retrained(self.data_dir)


def run(config: Config) -> Report:
    """Run the whole scenario on ``config.backend`` and measure it."""
    data_dir = fresh_folder(config)
    log_dir = data_dir.parent / f"{data_dir.name}-logs"
    log_dir.mkdir(exist_ok=True)
    if config.backend == "azure":
        from .azure_faults import azure_site

        with azure_site(config, data_dir, log_dir) as site:
            return run_on(site, config, data_dir, log_dir, hostile_bodies(big_kb=60))
    local = LocalSite(data_dir, config.slots, config.budget, config.max_trials)
    return run_on(local, config, data_dir, log_dir, hostile_bodies())


def run_on(
    site: Site, config: Config, data_dir: Path, log_dir: Path, bodies: dict[str, str]
) -> Report:
    """Start the workers, send the requests and ``bodies``, kill and restart workers until
    every request ended (or the deadline), then measure."""
    workers = [Worker(i, log_dir, site.command, site.env) for i in range(config.workers)]
    problems: list[str] = []

    started = time.monotonic()
    for worker in workers:  # together, on the fresh folder
        worker.start()
    hostile = {site.send(text): label for label, text in bodies.items()}
    requests = [site.good_request(i) for i in range(config.requests)]
    for body in requests:
        site.send(json.dumps(body))
    request_ids = [str(body["request_id"]) for body in requests]
    store = SqliteResultStore(data_dir / "results.db")

    chaos = Chaos(config, random.Random(config.seed), started)
    own_exits = 0
    try:
        while time.monotonic() < started + config.deadline:
            own_exits += restart_exited(workers, problems)
            busy = in_flight(store, request_ids)
            chaos.maybe_kill(workers, busy)
            if all_ended(store, request_ids) and site.queue_empty():
                break
            time.sleep(0.2)
        else:
            problems.append(f"deadline of {config.deadline:.0f} s passed")
    finally:
        stop_workers(workers)
    wall = time.monotonic() - started
    report = measure(site, data_dir, store, request_ids, hostile, problems)
    report.backend = config.backend
    report.kills, report.trainers_killed = chaos.kills, chaos.trainers_killed
    report.restarts, report.own_exits = chaos.kills + own_exits, own_exits
    report.kills_asked, report.wall_seconds = config.kills, wall
    site.after_stop(report)
    return report


def measure(
    site: Site,
    data_dir: Path,
    store: SqliteResultStore,
    request_ids: list[str],
    hostile: dict[str, str],
    problems: list[str],
) -> Report:
    """The outcome as the stores hold it: results, poison queue, jobs and model versions."""
    results = results_of(store, request_ids)
    states = Counter(r.state for r in results.values())
    failed = [
        r for r in results.values() if r.state.terminal and r.state is not RequestState.SUCCEEDED
    ]
    for result in failed:
        problems.append(f"{result.request_id} {result.state.value}: {result.error}")
    lost = [i for i in request_ids if i not in results or not results[i].state.terminal]
    for request_id in lost:
        state = results[request_id].state.value if request_id in results else "no result"
        problems.append(f"{request_id} lost ({state})")
    words = KILL_WORDS + FAULT_WORDS
    by_kill = [r for r in failed if any(w in (r.error or "") for w in words)]

    poisoned = site.poisoned()
    hostile_poisoned = sum(1 for m in hostile if poisoned.get(m, "").strip())
    for message_id, label in hostile.items():
        if not poisoned.get(message_id, "").strip():
            problems.append(f"hostile body '{label}' was not poisoned with a reason")
    jobs, versions = site.duplicates()
    for request_id, count in jobs.items():
        problems.append(f"{request_id}: {count} jobs")
    for request_id, count in versions.items():
        problems.append(f"{request_id}: {count} model versions")
    return Report(
        requests=len(request_ids),
        succeeded=states[RequestState.SUCCEEDED],
        failed=len(failed),
        lost=len(lost),
        duplicated_jobs=len(jobs),
        duplicated_versions=len(versions),
        hostile_sent=len(hostile),
        hostile_poisoned=hostile_poisoned,
        failed_by_kill=len(by_kill),
        data_dir=data_dir,
        problems=problems,
    )


def duplicates(data_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Request ids with more than one parent run, and with more than one model version."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"
    # A worker may be creating the store right now: open it the way the service does, under
    # the store's lock, not with a bare client that would migrate it alongside the worker.
    prepare_store(uri, (data_dir / "artifacts").resolve())
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    parent_runs: Counter[str] = Counter()
    token: str | None = None
    while experiments:
        page = client.search_runs(experiments, max_results=1000, page_token=token)
        for run in page:
            tags = run.data.tags
            if REQUEST_TAG in tags and PARENT_TAG not in tags:
                parent_runs[tags[REQUEST_TAG]] += 1
        token = page.token
        if not token:
            break
    versions: Counter[str] = Counter()
    token = None
    while True:
        found = client.search_model_versions(max_results=1000, page_token=token)
        for version in found:
            if REQUEST_TAG in version.tags:
                versions[version.tags[REQUEST_TAG]] += 1
        token = found.token
        if not token:
            break
    return (
        {k: n for k, n in parent_runs.items() if n > 1},
        {k: n for k, n in versions.items() if n > 1},
    )


# Command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("local", "azure"), default="local")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--slots", type=int, default=2, help="local.max_concurrent_jobs (one pool per folder)"
    )
    parser.add_argument("--budget", type=int, default=8, help="seconds of AutoML per request")
    parser.add_argument("--max-trials", type=int, default=8)
    parser.add_argument("--kill-gap", type=float, default=4.0, help="mean seconds between kills")
    parser.add_argument("--deadline", type=float, default=1200.0, help="seconds in all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="a fresh folder (default: a new temp one)")
    parser.add_argument("--json", type=Path, help="also write the report to this JSON file")
    parser.add_argument(
        "--fault-rate", type=float, default=0.1, help="azure: fraction of calls that fail"
    )
    parser.add_argument(
        "--running-polls", type=int, default=6, help="azure: status reads a job runs for"
    )
    parser.add_argument(
        "--deploy-every", type=int, default=4, help="azure: every n-th request deploys (0: none)"
    )
    args = parser.parse_args(argv)
    return Config(
        backend=args.backend,
        fault_rate=args.fault_rate,
        running_polls=args.running_polls,
        deploy_every=args.deploy_every,
        requests=args.requests,
        kills=args.kills,
        workers=args.workers,
        slots=args.slots,
        budget=args.budget,
        max_trials=args.max_trials,
        kill_gap=args.kill_gap,
        deadline=args.deadline,
        seed=args.seed,
        data_dir=args.data_dir,
        json_out=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table (and every problem seen); 1 when a target is missed."""
    config = parse_args(argv)
    configure_logging(LoggingSettings(format="console", level="warning"))
    report = run(config)
    if config.json_out is not None:
        config.json_out.write_text(report.to_json())
    print(report.table())
    print(f"\ndata folder: {report.data_dir} (worker logs beside it, in *-logs)")
    for problem in report.problems:
        print(f"- {problem}")
    if report.missed:
        print("targets missed: " + ", ".join(report.missed))
        return 1
    print("every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
