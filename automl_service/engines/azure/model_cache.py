"""``ModelCache``: registered models' MLflow folders kept on disk, one per name and version.

A version's files never change on Azure ML (a version's path cannot be updated), so a
folder once complete is used for good. A download goes into a fresh ``.partial-*``
folder beside the cache's entries and only the MLflow model folder it holds (the one with
an ``MLmodel`` file) is renamed into place, in one step: a crash or a failed download
leaves no entry, only a partial folder that the next fill of the cache removes once it is
older than ``STALE_PARTIAL_SECONDS``. When two processes fill the same entry at once, the
first rename wins and the other's copy is dropped.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import InvalidRequest, PermanentError
from ...logs import get_logger

log = get_logger(__name__)

#: The file that makes a folder an MLflow model.
MLMODEL = "MLmodel"
#: A partial download older than this is a crash's leftover.
STALE_PARTIAL_SECONDS = 3600.0
PARTIAL_PREFIX = ".partial-"

#: Azure ML's rule for asset names and versions (letters, digits, ``-``, ``_``, ``.``,
#: starting with a letter or digit): safe as a folder name.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def find_model_folder(root: Path) -> Path | None:
    """The shallowest folder under ``root`` (``root`` included) holding an ``MLmodel``."""
    found = sorted(root.rglob(MLMODEL), key=lambda p: (len(p.parts), str(p)))
    return found[0].parent if found else None


class ModelCache:
    """MLflow model folders under ``root``, at ``<name>/<version>``."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self._clock = clock

    def folder(self, name: str, version: str) -> Path:
        """Where the entry of ``name`` version ``version`` lives (complete or not)."""
        for part in (name, version):
            if not _SAFE.match(part):
                raise InvalidRequest(f"{part!r} is not a model name or version")
        return self.root / name / version

    def get(self, name: str, version: str) -> Path | None:
        """The complete entry, or None."""
        folder = self.folder(name, version)
        return folder if (folder / MLMODEL).is_file() else None

    def fill(self, name: str, version: str, download: Callable[[Path], None]) -> Path:
        """The entry, made by ``download`` (which writes the model's files somewhere
        under the folder it is given) unless it is complete already. Raises
        PermanentError when the download holds no MLflow model; what ``download``
        raises passes through, leaving no entry."""
        final = self.folder(name, version)
        if self.get(name, version) is not None:
            return final
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_partials()
        staging = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=self.root))
        try:
            download(staging)
            model = find_model_folder(staging)
            if model is None:
                raise PermanentError(
                    f"model {name} version {version}: its files hold no MLflow model "
                    f"(no {MLMODEL} file)"
                )
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # not complete (get said so): never used, replace it
                shutil.rmtree(final)
            try:
                os.rename(model, final)
            except OSError:
                if self.get(name, version) is None:
                    raise
                log.info("model_cache.filled_meanwhile", model=name, version=version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def _remove_stale_partials(self) -> None:
        now = self._clock()
        for partial in self.root.glob(PARTIAL_PREFIX + "*"):
            try:
                old = now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS
            except OSError:
                continue
            if old:
                shutil.rmtree(partial, ignore_errors=True)
