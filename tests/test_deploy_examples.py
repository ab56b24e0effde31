"""The Dockerfile and deploy/ examples stay in step with the CLI, settings and health server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from pydantic import BaseModel, SecretStr

from automl_service.health import HEALTHZ_PATH, READYZ_PATH, HealthServer
from automl_service.health_probe import check_health
from automl_service.results import RequestResult, RequestState
from automl_service.settings import HealthSettings, Settings, load_settings
from automl_service.stats import WorkerStats

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SCHEDULED = DEPLOY / "containerapps" / "drain-job.scheduled.yaml"
QUEUE_TRIGGERED = DEPLOY / "containerapps" / "drain-job.queue-triggered.yaml"
KUBERNETES = DEPLOY / "kubernetes" / "worker.yaml"
ALL_MANIFESTS = [SCHEDULED, QUEUE_TRIGGERED, KUBERNETES]
PREFIX = "AUTOML_SERVICE_"


# Reading the files ---------------------------------------------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def containers(path: Path) -> list[dict[str, Any]]:
    """Every container spec in a Container Apps job or a Kubernetes manifest."""
    found: list[dict[str, Any]] = []
    for doc in documents(path):
        if doc.get("type") == "Microsoft.App/jobs":
            found += doc["properties"]["template"]["containers"]
        elif doc.get("kind") == "Deployment":
            found += doc["spec"]["template"]["spec"]["containers"]
    assert found, f"no containers in {path}"
    return found


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions (continuations joined, comments dropped), by stage."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    stage = -1
    out: list[Instruction] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword.upper(), args.strip()))
    return out


def final_stage() -> list[Instruction]:
    instructions = dockerfile()
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def docker_env() -> dict[str, str]:
    """ENV of the final stage (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for instruction in final_stage():
        if instruction.keyword == "ENV":
            for pair in instruction.args.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def exec_form(instruction: Instruction) -> list[str]:
    args = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        args = args[args.index("CMD") + 3 :].strip()
    parsed = json.loads(args)
    assert isinstance(parsed, list), f"{instruction.keyword} should use the exec form"
    return [str(part) for part in parsed]


def only(keyword: str) -> Instruction:
    found = [i for i in final_stage() if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def settings_field(env_name: str) -> Any:
    """The settings field an AUTOML_SERVICE_ variable sets (its FieldInfo), or None."""
    assert env_name.startswith(PREFIX)
    model: type[BaseModel] = Settings
    parts = env_name[len(PREFIX) :].lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        if i == len(parts) - 1:
            return field
        annotation = field.annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return None


def cli_parser() -> Any:
    try:
        from automl_service import cli
    except ImportError as exc:
        pytest.skip(f"automl_service.cli cannot be imported yet ({exc}): command check waits")
    return cli.build_parser()


def parse_command(argv: list[str]) -> Any:
    """argv (starting with automl-service) as the CLI parses it; fails on unknown commands."""
    assert argv[0] == "automl-service", argv
    parser = cli_parser()
    try:
        return parser.parse_args(argv[1:])
    except SystemExit as exc:  # argparse reports the error on stderr and exits 2
        pytest.fail(f"`{' '.join(argv)}` is not a valid automl-service command line ({exc})")


# Commands ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "command"),
    [(SCHEDULED, "drain"), (QUEUE_TRIGGERED, "drain"), (KUBERNETES, "worker")],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_manifest_commands_exist_in_the_cli(path: Path, command: str) -> None:
    """Each manifest runs an automl-service command line the CLI accepts."""
    for container in containers(path):
        argv = [*container["command"], *container.get("args", [])]
        assert parse_command(argv).command == command


def test_drain_deadline_ends_before_the_replica_timeout() -> None:
    """Container Apps drain jobs stop taking work before the platform kills the replica."""
    for path in (SCHEDULED, QUEUE_TRIGGERED):
        (doc,) = documents(path)
        timeout = doc["properties"]["configuration"]["replicaTimeout"]
        for container in containers(path):
            args = parse_command([*container["command"], *container["args"]])
            assert args.deadline is not None and args.deadline < timeout


def test_dockerfile_runs_the_worker_and_checks_health() -> None:
    """The image's default command is `automl-service worker`; its HEALTHCHECK is `health`."""
    entry = exec_form(only("ENTRYPOINT"))
    command = exec_form(only("CMD"))
    assert parse_command(entry + command).command == "worker"
    check = exec_form(only("HEALTHCHECK"))
    assert parse_command(check).command == "health"


# Triggers ------------------------------------------------------------------------------


def test_scheduled_job_has_a_schedule_trigger() -> None:
    """The scheduled example is a Schedule-triggered Container Apps job with a cron."""
    (doc,) = documents(SCHEDULED)
    configuration = doc["properties"]["configuration"]
    assert configuration["triggerType"] == "Schedule"
    cron = configuration["scheduleTriggerConfig"]["cronExpression"]
    assert len(cron.split()) == 5


def test_queue_triggered_job_scales_on_the_request_queue() -> None:
    """The event-driven job scales on the queue the worker reads, counting visible messages."""
    (doc,) = documents(QUEUE_TRIGGERED)
    configuration = doc["properties"]["configuration"]
    assert configuration["triggerType"] == "Event"
    (rule,) = configuration["eventTriggerConfig"]["scale"]["rules"]
    assert rule["type"] == "azure-queue"
    metadata = rule["metadata"]
    assert metadata["queueLengthStrategy"] == "visibleonly"
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata are strings"
    (container,) = containers(QUEUE_TRIGGERED)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert metadata["queueName"] == env[f"{PREFIX}QUEUE__NAME"]
    assert metadata["accountName"] in env[f"{PREFIX}QUEUE__ACCOUNT_URL"]
    secrets = {s["name"]: s for s in configuration.get("secrets", [])}
    for auth in rule.get("auth", []):
        secret = secrets[auth["secretRef"]]
        assert "value" not in secret, "the scaler's secret must be a reference, not a literal"
    assert rule.get("auth") or rule.get("identity")


# Settings ------------------------------------------------------------------------------


def manifest_env() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in ALL_MANIFESTS:
        for container in containers(path):
            for entry in container.get("env", []):
                yield path.name, entry


def test_every_settings_variable_names_a_real_field() -> None:
    """Each AUTOML_SERVICE_ variable in the manifests and the image maps to a settings field."""
    names = [entry["name"] for _, entry in manifest_env()] + list(docker_env())
    unknown = [n for n in names if n.startswith(PREFIX) and settings_field(n) is None]
    assert unknown == []
    assert any(n.startswith(PREFIX) for n in names)


@pytest.mark.parametrize("path", ALL_MANIFESTS, ids=lambda p: p.name)
def test_manifest_values_are_valid_settings(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The image's and a manifest's settings variables together load as valid Settings."""
    for container in containers(path):
        for name, value in {**docker_env(), **_literal_env(container)}.items():
            if name.startswith(PREFIX):
                monkeypatch.setenv(name, value)
        settings = load_settings()
        assert settings.health.port == HealthSettings().port or settings.health.port > 0


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def test_secret_settings_never_have_literal_values() -> None:
    """Settings that hold secrets come from a secret reference, never a value in the file."""
    for source, entry in manifest_env():
        name = entry["name"]
        if not name.startswith(PREFIX):
            continue
        field = settings_field(name)
        if field is not None and _is_secret(field.annotation):
            assert "value" not in entry, f"{source}: {name} has a literal value"
            reference = entry.get("secretRef") or entry.get("valueFrom", {}).get("secretKeyRef")
            assert reference, f"{source}: {name} should come from a secret"
    for name in docker_env():
        if name.startswith(PREFIX):
            field = settings_field(name)
            assert not _is_secret(field.annotation), f"the image bakes in the secret {name}"


def _is_secret(annotation: Any) -> bool:
    return SecretStr in (annotation, *getattr(annotation, "__args__", ()))


# Health: probes, ports, the image ----------------------------------------------------


def test_kubernetes_probes_match_the_health_server() -> None:
    """Liveness probes /healthz and readiness /readyz on the health server's port."""
    (container,) = containers(KUBERNETES)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = _literal_env(container)
    port = int(env.get(f"{PREFIX}HEALTH__PORT", docker_env()[f"{PREFIX}HEALTH__PORT"]))
    assert container["livenessProbe"]["httpGet"]["path"] == HEALTHZ_PATH
    assert container["readinessProbe"]["httpGet"]["path"] == READYZ_PATH
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        target = container[probe]["httpGet"]["port"]
        assert ports.get(target, target) == port, probe
    expose = only("EXPOSE").args.split()
    assert str(port) in [e.split("/")[0] for e in expose]
    assert env.get(f"{PREFIX}HEALTH__HOST", docker_env()[f"{PREFIX}HEALTH__HOST"]) == "0.0.0.0"


def test_kubernetes_runs_as_the_image_user_with_time_to_stop() -> None:
    """The pod runs as the image's non-root user and waits longer than the worker's grace."""
    (doc,) = [d for d in documents(KUBERNETES) if d.get("kind") == "Deployment"]
    pod = doc["spec"]["template"]["spec"]
    user = only("USER").args.split(":")[0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user
    (container,) = containers(KUBERNETES)
    grace = float(_literal_env(container)[f"{PREFIX}WORKER__SHUTDOWN_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > grace
    accounts = [d for d in documents(KUBERNETES) if d.get("kind") == "ServiceAccount"]
    assert [a["metadata"]["name"] for a in accounts] == [pod["serviceAccountName"]]


def test_probe_paths_answer_on_a_real_health_server() -> None:
    """The manifest's probe paths are served: 200 from a live worker's health server."""
    (container,) = containers(KUBERNETES)

    class NoResults:
        def put(self, result: RequestResult) -> None: ...

        def get(self, request_id: str) -> RequestResult | None:
            return None

        def recent(self, limit: int = 20) -> list[RequestResult]:
            return []

        def counts(self) -> dict[RequestState, int]:
            return {}

    with HealthServer(WorkerStats(), lambda: {"queue": None}, NoResults(), "127.0.0.1", 0) as s:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            url = s.url + container[probe]["httpGet"]["path"]
            assert check_health(url, timeout=5) == 0, url


def test_dockerfile_image_shape() -> None:
    """Slim Python 3.11 base, non-root numeric user, health on 0.0.0.0, deps from pyproject."""
    instructions = dockerfile()
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.args
    }
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], i.args.split()[0])
        for i in instructions
        if i.keyword == "FROM"
    ]
    assert bases and all(b.startswith("python:3.11-slim") for b in bases)
    user = only("USER").args.split(":")[0]
    assert user.isdigit() and int(user) != 0
    env = docker_env()
    assert env[f"{PREFIX}HEALTH__ENABLED"] == "true"
    assert env[f"{PREFIX}HEALTH__HOST"] == "0.0.0.0"
    runs = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "pyproject.toml" in runs and "tomllib" in runs
    assert not any(k.startswith("AZURE_") or "SECRET" in k or "KEY" in k for k in env)


# The build context -----------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(.dockerignore) as (negated, regex) in order; `**` spans directories."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def in_context(path: str) -> bool:
    """Whether Docker sends ``path`` (relative, '/'-separated): the last matching rule wins,
    and a rule matching a parent directory covers the files under it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negated, regex in dockerignore_patterns():
        if any(regex.match(c) for c in candidates):
            excluded = not negated
    return not excluded


def context_files() -> list[str]:
    """The files the build context holds from what the Dockerfile copies."""
    files: list[str] = []
    for top in ("pyproject.toml", "README.md", "automl_service"):
        path = ROOT / top
        paths = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files += [p.relative_to(ROOT).as_posix() for p in paths]
    return [f for f in files if in_context(f)]


def test_build_context_holds_the_sources_and_nothing_else() -> None:
    """.dockerignore lets in what COPY needs and keeps out environments, stores and tests."""
    for instruction in dockerfile():
        if instruction.keyword == "COPY" and "--from" not in instruction.args:
            *sources, _ = instruction.args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert in_context(source) or any(
                    f.startswith(source + "/") for f in context_files()
                ), source
    wanted_files = (
        "pyproject.toml",
        "README.md",
        "automl_service/health.py",
        "automl_service/py.typed",
    )
    for wanted in wanted_files:
        assert in_context(wanted), wanted
    for unwanted in (
        ".venv/bin/python",
        ".git/config",
        ".env",
        "tests/test_health.py",
        ".automl-service/mlflow.db",
        "automl_service/__pycache__/health.cpython-311.pyc",
        "deploy/kubernetes/worker.yaml",
    ):
        assert not in_context(unwanted), unwanted
    assert all(f.endswith((".py", ".typed", ".toml", ".md", ".json")) for f in context_files())


@pytest.mark.process
def test_package_builds_from_the_build_context(tmp_path: Path) -> None:
    """A wheel builds from exactly the files the image copies, with the CLI entry point."""
    context = tmp_path / "context"
    for relative in context_files():
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    out = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(context)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if done.returncode != 0 and "No matching distribution" in done.stderr:
        if os.environ.get("CI") == "true":
            pytest.fail("no package index for the build backend: " + done.stderr[-500:])
        pytest.skip("the build backend cannot be fetched here (no package index)")
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = out.glob("automl_service-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "automl_service/health.py" in names
        assert "automl_service/report.py" in names
        (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
        assert "automl-service = automl_service.cli:main" in archive.read(entry_points).decode()
