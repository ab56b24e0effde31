"""Data references for Azure AutoML: everything it trains on must be an MLTable.

A registered data asset (``azureml:name:version``) or an MLTable folder (an
``azureml://`` path, an ``https`` URI, a local folder holding an ``MLTable`` file) is used
as it is. A CSV file (local path or URI) gets a generated ``MLTable`` file in a folder of its
own; the SDK uploads that folder when the job is submitted (content-addressed, so a
re-submission uploads nothing new).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

MLTABLE_TEMPLATE = """\
$schema: https://azuremlschemas.azureedge.net/latest/MLTable.schema.json
type: mltable
paths:
  - file: {file}
transformations:
  - read_delimited:
      delimiter: ','
      encoding: utf8
      header: all_files_same_headers
      empty_as_string: false
"""

_REMOTE = ("azureml://", "https://", "http://", "wasbs://", "abfss://", "adl://")


def is_csv(reference: str) -> bool:
    return reference.split("?", 1)[0].lower().endswith((".csv", ".csv.gz"))


def is_remote(reference: str) -> bool:
    return reference.startswith(_REMOTE)


def mltable_text(file_reference: str) -> str:
    """The MLTable YAML reading one delimited file with a header row."""
    return MLTABLE_TEMPLATE.format(file=file_reference)


class MLTableStager:
    """Resolves data references to MLTable inputs, writing MLTable folders under ``root``.

    Idempotent: the folder for a reference is named by its hash and rewritten with the
    same content.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, reference: str, role: str) -> str:
        if reference.startswith("azureml:") and not reference.startswith("azureml://"):
            return reference  # a registered data asset
        if not is_csv(reference):
            return reference  # already an MLTable folder
        digest = hashlib.sha256(reference.encode()).hexdigest()[:16]
        folder = self.root / f"{role}-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        if is_remote(reference):
            file_reference = reference
        else:
            source = Path(reference)
            if not source.is_file():
                from ...errors import PermanentError

                raise PermanentError(f"{role} data not found: {reference}")
            shutil.copyfile(source, folder / source.name)
            file_reference = f"./{source.name}"
        (folder / "MLTable").write_text(mltable_text(file_reference))
        return str(folder)
