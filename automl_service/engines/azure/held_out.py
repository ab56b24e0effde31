"""A held-out slice for "only if better" when a request names no test rows of its own.

Locally the trainer holds out ``COMPARISON_SIZE`` of the table so that the new model and
the live one are scored on rows neither trained on. On Azure the same is done before the
job is submitted, when the training data is a local CSV file (which the service uploads
anyway): the table is split by the local trainer's own rule (``split_off_test``: seeded,
stratified for classification), both parts are written to a folder named by a digest of
the file's bytes and the split's settings, and the request goes on with ``training_data``
the training part and ``validation.test_data`` the held-out part. Azure ML's test run and
the deployer's same-rows comparison then both use that part. Writing the same parts
again gives the same bytes at the same paths, so a resubmission uploads nothing new
(the SDK's uploads are content-addressed).

Remote training data (a data asset, a datastore path) is not split here: the deployer
compares the values recorded at training and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ...metrics import Task
from ...request import AutoMLRequest
from .data import is_csv, is_remote

#: On the job: the held-out part's share and size, when the service set it apart.
HELD_OUT_TAG = "automl_service.held_out"


def wants_held_out(request: AutoMLRequest) -> bool:
    """Whether the service holds rows out for this request (pure): it deploys "only if
    better", names no test rows or share, is a classification or regression, and trains
    on a local CSV file."""
    spec, validation = request.deployment, request.validation
    return (
        spec is not None
        and spec.only_if_better
        and validation.test_data is None
        and validation.test_data_size is None
        and request.task in (Task.CLASSIFICATION, Task.REGRESSION)
        and is_local_csv(request.training_data)
    )


def is_local_csv(reference: str) -> bool:
    """A CSV file on this machine (not a data asset, not a URI)."""
    return is_csv(reference) and not is_remote(reference) and not reference.startswith("azureml:")


class HeldOutSlice:
    """Turns a request into the one submitted: with a held-out part written under
    ``root`` when ``wants_held_out``, else as it is. Idempotent."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, request: AutoMLRequest) -> AutoMLRequest:
        if not wants_held_out(request):
            return request
        import pandas as pd

        from ..local.testset import COMPARISON_SIZE, SEED, split_off_test

        source = Path(request.training_data)
        content = source.read_bytes()  # a missing file raises; the job would not run either
        key = json.dumps(
            [hashlib.sha256(content).hexdigest(), request.task.value,
             request.target_column_name, COMPARISON_SIZE, SEED]
        )  # fmt: skip
        folder = self.root / f"held-out-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        train_path, test_path = folder / "train" / source.name, folder / "test" / source.name
        frame = pd.read_csv(source)
        train, test = split_off_test(request, frame)
        assert test is not None  # wants_held_out: the share is COMPARISON_SIZE
        for part, path in ((train, train_path), (test, test_path)):
            _write_once(path, part.to_csv(index=False).encode())
        share = f"{len(test)} of {len(frame)} rows ({COMPARISON_SIZE:.0%}, seed {SEED})"
        return request.model_copy(
            update={
                "training_data": str(train_path),
                "validation": request.validation.model_copy(update={"test_data": str(test_path)}),
                "tags": {**request.tags, HELD_OUT_TAG: share},
            }
        )


def _write_once(path: Path, content: bytes) -> None:
    """``content`` at ``path``, written atomically unless already there."""
    if path.is_file() and path.read_bytes() == content:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)
