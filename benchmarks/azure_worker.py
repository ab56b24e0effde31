"""``automl-service worker`` on the azure backend, aimed at the loopback Azure ML fake.

The real worker cannot reach the fake on its own: its credential is Entra ID
(``DefaultAzureCredential``), which needs a token endpoint, and MLClient finds the Azure
ML endpoints through cloud discovery, which needs the public cloud. Neither can run
offline. So this replaces one function of the composition root,
``automl_service.backends.build_backend``, with one that builds the same azure backend
(``build_azure_backend``) with a fixed-token credential and a custom cloud whose every
endpoint is the fake, then runs ``automl_service.cli.main(["worker"])``. Everything else
(settings from ``AUTOML_SERVICE_*``, signal handling, queue, result store, reply sink,
policy, the settle logic) is the real worker's, unchanged.

``FAKE_AML_CLOUD_METADATA`` holds the fake's six cloud endpoints as JSON
(``FakeAzureML.cloud_metadata()``); ``REQUESTS_CA_BUNDLE`` must name its certificate.

    python -m benchmarks.azure_worker
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from azureml_fake.fixtures import StaticCredential  # noqa: E402

from automl_service import backends, cli  # noqa: E402
from automl_service.engines.azure import build_azure_backend  # noqa: E402
from automl_service.engines.base import Backend  # noqa: E402
from automl_service.settings import Settings  # noqa: E402

CLOUD_METADATA_ENV = "FAKE_AML_CLOUD_METADATA"


def fake_backend(settings: Settings) -> Backend:
    """The azure backend of ``settings``, signed in with a fixed token, on the fake."""
    metadata = json.loads(os.environ[CLOUD_METADATA_ENV])
    return build_azure_backend(
        settings.azure,
        staging_dir=settings.local.data_dir / "azure-mltable",
        credential=StaticCredential(),
        cloud=f"fakeaml-{uuid.uuid4().hex[:12]}",
        cloud_metadata=metadata,
    )


def main() -> int:
    backends.build_backend = fake_backend
    return cli.main(["worker"])


if __name__ == "__main__":
    sys.exit(main())
