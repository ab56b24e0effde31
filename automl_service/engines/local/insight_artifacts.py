"""A run's ``insight/`` artifact folder read back from the local MLflow store."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ...insight_files import INSIGHT_FOLDER, ModelInsight, read_insight
from ...logs import get_logger

log = get_logger(__name__)


def download_insight(tracking_uri: str, run_id: str) -> ModelInsight | None:
    """The insight logged on ``run_id``, or None when it has none (or the store cannot
    give it: the report is then drawn without, and the reason logged)."""
    from mlflow import MlflowClient
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
    from mlflow.exceptions import MlflowException

    # A few small files: MLflow's progress bars would only clutter `report`'s output.
    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")
    client = MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as folder:
        try:
            if not client.list_artifacts(run_id, INSIGHT_FOLDER):
                return None
            local = client.download_artifacts(run_id, INSIGHT_FOLDER, folder)
        except (MlflowException, OSError) as exc:
            log.warning("report.insight_unreadable", run_id=run_id, reason=str(exc)[:300])
            return None
        return read_insight(Path(local))
