"""The command line: help, input errors, exit codes, submit and status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_worker import iris_body

from automl_service.cli import build_parser

COMMANDS = [
    "worker",
    "drain",
    "submit",
    "cancel",
    "retry",
    "rollback",
    "status",
    "demo",
    "health",
    "report",
    "serve",
    "predict",
]


def cli(
    tmp_path: Path, *args: str, stdin: str | None = None, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    environ["AUTOML_SERVICE_LOCAL__DATA_DIR"] = str(tmp_path / "data")
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "automl_service", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.process
def test_every_command_has_help(tmp_path: Path) -> None:
    """`--help` works for the program and every command, and names the command."""
    top = cli(tmp_path, "--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout
        sub = cli(tmp_path, command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert f"automl-service {command}" in sub.stdout


def test_parser_knows_exactly_the_documented_commands() -> None:
    """The parser's commands are the documented ones."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices is not None
    assert sorted(sub.choices) == sorted(COMMANDS)


@pytest.mark.process
def test_submit_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    """An invalid request is refused before it reaches the queue."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task": "classification", "training_data": "sample:iris"}))
    done = cli(tmp_path, "submit", str(bad))
    assert done.returncode == 2
    assert "target_column_name: Field required" in done.stderr
    missing = cli(tmp_path, "submit", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    listed = cli(tmp_path, "status", "--json")
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"a":' * 5000, "nests 5000 levels"),
        (b"1" * 5000, "5000-digit number"),
        (b'{"task": "\xff"}', "not UTF-8"),
    ],
    ids=["deep", "digits", "bad-utf8"],
)
@pytest.mark.process
def test_submit_refuses_hostile_bodies_with_a_reason(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    """Bodies that break the JSON decoder get a one-line error and exit 2, no traceback."""
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    done = cli(tmp_path, "submit", str(bad))
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr and "bad settings" not in done.stderr


@pytest.mark.process
def test_submit_from_stdin_then_status(tmp_path: Path) -> None:
    """`submit -` enqueues from standard input and prints the id; `status` finds it."""
    body = {
        "task": "regression",
        "training_data": "sample:diabetes",
        "target_column_name": "target",
    }
    done = cli(tmp_path, "submit", "-", stdin=json.dumps(body))
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    assert request_id.startswith("req-")

    shown = cli(tmp_path, "--json", "status", request_id)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["state"] == "received"
    listed = cli(tmp_path, "status")
    assert request_id in listed.stdout
    unknown = cli(tmp_path, "status", "req-unknown")
    assert unknown.returncode == 2


@pytest.mark.process
def test_bad_settings_exit_2(tmp_path: Path) -> None:
    """A malformed setting stops the service with exit code 2 and says which."""
    done = cli(tmp_path, "status", AUTOML_SERVICE_WORKER__MAX_FAILURES="many")
    assert done.returncode == 2
    assert "max_failures" in done.stderr
    missing = cli(tmp_path, "--settings", str(tmp_path / "none.toml"), "status")
    assert missing.returncode == 2


@pytest.mark.process
def test_drain_on_an_empty_queue_exits_0(tmp_path: Path) -> None:
    """A scheduled run with nothing to do ends at once with exit code 0."""
    done = cli(tmp_path, "drain")
    assert done.returncode == 0, done.stderr


@pytest.mark.process
def test_status_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    """`status | head -1` ends with exit 0 and no "Broken pipe" error."""
    from automl_service.result_store import SqliteResultStore
    from automl_service.results import RequestResult, RequestState

    store = SqliteResultStore(tmp_path / "data" / "results.db")
    for index in range(3000):
        store.put(RequestResult(request_id=f"r-{index}", state=RequestState.SUCCEEDED))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOML_SERVICE_")}
    environ["AUTOML_SERVICE_LOCAL__DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {sys.executable} -m automl_service status --limit 3000 | head -1",
        ],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Broken pipe" not in done.stderr and "unreachable" not in done.stderr


@pytest.mark.process
def test_status_and_health_say_where_they_looked(tmp_path: Path) -> None:
    """`status` names the data folder it read; `health` says what it found."""
    listed = cli(tmp_path, "status")
    assert listed.returncode == 0
    assert f"results in {tmp_path / 'data'}" in listed.stderr
    missing = cli(tmp_path, "status", "nope")
    assert missing.returncode == 2 and str(tmp_path / "data") in missing.stderr
    unhealthy = cli(tmp_path, "health", "--url", "http://127.0.0.1:9", "--timeout", "2")
    assert unhealthy.returncode == 1
    assert "unhealthy: no answer from http://127.0.0.1:9/healthz" in unhealthy.stdout


@pytest.mark.process
def test_submit_gives_new_data_a_new_id(tmp_path: Path) -> None:
    """`submit` of the same file names the same request while the data is unchanged, and
    a new one once the data changed; a fixed id re-sent with other settings is refused."""
    data = tmp_path / "monthly.csv"
    data.write_text("x,y\n1,0\n2,1\n")
    request = tmp_path / "r.json"
    body = {"task": "classification", "training_data": str(data), "target_column_name": "y"}
    request.write_text(json.dumps(body))
    first = cli(tmp_path, "submit", str(request)).stdout.strip()
    again = cli(tmp_path, "submit", str(request)).stdout.strip()
    data.write_text("x,y\n1,0\n2,1\n3,1\n")
    changed = cli(tmp_path, "submit", str(request)).stdout.strip()
    assert first == again and first.startswith("req-")
    assert changed != first and changed.startswith("req-")

    request.write_text(json.dumps({**body, "request_id": "fixed"}))
    assert cli(tmp_path, "submit", str(request)).returncode == 0
    request.write_text(json.dumps({**body, "request_id": "fixed", "limits": {"max_trials": 3}}))
    refused = cli(tmp_path, "submit", str(request))
    assert refused.returncode == 2
    assert "'fixed' was sent before with other settings or other data" in refused.stderr


@pytest.mark.process
def test_submit_wait_without_a_worker_says_so(tmp_path: Path) -> None:
    """`submit --wait` with no worker running says that no worker took the request,
    then times out with exit 3, instead of only 'unreachable'."""
    body = {
        "task": "classification",
        "training_data": "sample:iris",
        "target_column_name": "target",
    }
    request = tmp_path / "r.json"
    request.write_text(json.dumps(body))
    done = cli(tmp_path, "submit", "--wait", "--timeout", "4", str(request))
    assert done.returncode == 3
    assert "no worker has taken the request yet" in done.stderr
    assert done.stderr.count("no worker has taken") == 1


@pytest.mark.slow
@pytest.mark.process
def test_drain_wait_is_one_worker_run_until_the_request_ended(tmp_path: Path) -> None:
    """`drain --wait` keeps one worker until every request has ended: one start and one
    stop in its log, however many re-checks it took."""
    request = tmp_path / "request.json"
    request.write_text(iris_body("drain-wait", limits={"timeout_seconds": 10, "max_trials": 4}))
    assert cli(tmp_path, "submit", str(request)).returncode == 0
    done = cli(tmp_path, "--log-format", "json", "drain", "--wait", "--deadline", "100")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line[:1] == "{"]
    assert events.count("worker.started") == events.count("worker.stopped") == 1, events
    assert events.count("worker.not_ready") >= 1 and "worker.request_ended" in events
    status = cli(tmp_path, "--json", "status", "drain-wait")
    assert json.loads(status.stdout)["state"] == "succeeded"
