"""Where a local job keeps its files: one directory per job name under ``data_dir/jobs``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class TrainerConfig:
    """What the trainer process needs besides the request (written to job.json)."""

    tracking_uri: str
    parent_run_id: str
    experiment_id: str
    slots_dir: str
    max_concurrent_jobs: int
    #: Starts allowed in all before a job whose trainers keep dying ends FAILED.
    max_trainer_starts: int = 10
    #: The request's time budget, so re-checks can be aimed at its end.
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class JobDir:
    path: Path

    @property
    def request_file(self) -> Path:
        return self.path / "request.json"

    @property
    def config_file(self) -> Path:
        return self.path / "job.json"

    @property
    def trainer_lock(self) -> Path:
        return self.path / "trainer.lock"

    @property
    def create_lock(self) -> Path:
        return self.path / "create.lock"

    @property
    def log_file(self) -> Path:
        return self.path / "trainer.log"

    @property
    def pid_file(self) -> Path:
        return self.path / "trainer.pid"

    @property
    def phase_file(self) -> Path:
        """What the last trainer started did: running, queued, duplicate or failed."""
        return self.path / "phase"

    @property
    def progress_file(self) -> Path:
        """Trials so far and the best value, rewritten by the trainer after each trial."""
        return self.path / "progress.json"

    def read_progress(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.progress_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @property
    def waiting_file(self) -> Path:
        """Touched at every check while the job waits for a slot: its place in line."""
        return self.path / "waiting"

    @property
    def canceled_file(self) -> Path:
        """Written by ``cancel_job`` (with the reason): the job is never started again."""
        return self.path / "canceled"

    @property
    def attempts_file(self) -> Path:
        return self.path / "attempts"

    def attempts(self) -> int:
        try:
            return int(self.attempts_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def write_attempts(self, value: int) -> None:
        write_atomic(self.attempts_file, str(value))

    def read_config(self) -> TrainerConfig | None:
        try:
            return TrainerConfig(**json.loads(self.config_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write_config(self, config: TrainerConfig) -> None:
        write_atomic(self.config_file, json.dumps(asdict(config), indent=2))

    def spawned_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers never see half a file. The file is
    readable by its owner only: job files hold requests and store addresses."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)  # an older file of the same name may have had wider modes
    tmp.replace(path)


def open_private(path: Path) -> IO[bytes]:
    """``path`` opened for appending, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")
