"""MLflow implementation of the tracker, with a store check done before any training."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from ncae_exp.errors import TrackingError
from ncae_exp.tracking.base import Tracker

log = logging.getLogger(__name__)

# MLflow's limit on one param value (characters); longer values are cut with a marker.
_PARAM_MAX = 6000


def resolve_tracking_uri(uri: str) -> str:
    """Make a relative SQLite / file store absolute against the current directory, so the
    run lands in the same store whatever directory a launcher runs the job in."""
    uri = str(uri)
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    if "://" not in uri:
        return Path(uri).resolve().as_uri()
    return uri


def check_store(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast with a one-line error when the store cannot be reached or created,
    instead of training for an hour and losing the results at the end."""
    import mlflow

    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db_dir = Path(parsed.path).parent if parsed.path else Path.cwd()
        if not db_dir.is_dir() or not os.access(db_dir, os.W_OK):
            raise TrackingError(f"MLflow store {uri}: folder {db_dir} does not exist or is not writable")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(timeout_s))
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure here means "cannot use the store"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrackingError(f"cannot reach MLflow tracking store {uri}: {first[:300]}") from err
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class MlflowTracker(Tracker):
    """Logs to one MLflow run by its id (not to "the active run"), so a parent and its
    nested runs can be written in any order."""

    def __init__(self, run_id: str, tracking_uri: str | None = None):
        import mlflow

        self._client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.run_id = run_id

    def log_params(self, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param

        clean = []
        for k, v in params.items():
            s = str(v)
            clean.append(Param(k, s if len(s) <= _PARAM_MAX else s[: _PARAM_MAX - 12] + "…[truncated]"))
        for start in range(0, len(clean), 100):  # MLflow's batch limit
            self._client.log_batch(self.run_id, params=clean[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step or 0)) for k, v in metrics.items()]
        for start in range(0, len(batch), 1000):
            self._client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    @contextmanager
    def child(self, name: str, tags: Mapping[str, str]) -> Iterator["MlflowTracker"]:
        parent = self._client.get_run(self.run_id)
        run = self._client.create_run(
            parent.info.experiment_id, run_name=name,
            tags={**{k: str(v) for k, v in tags.items()}, "mlflow.parentRunId": self.run_id},
        )
        status = "FAILED"
        try:
            yield MlflowTracker(run.info.run_id, self.tracking_uri)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            self._client.set_terminated(run.info.run_id, status=status)


@contextmanager
def mlflow_run(
    tracking_uri: str,
    experiment_name: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
) -> Iterator[MlflowTracker]:
    """Start a run (marked FAILED if the body raises, KILLED on Ctrl-C) and yield its tracker;
    ``parent_run_id``: the sweep's parent run, when this job is part of one."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        mlflow.set_experiment(experiment_name)
    except Exception as err:  # noqa: BLE001
        raise TrackingError(f"cannot open MLflow experiment {experiment_name!r} in {tracking_uri}: {err}") from err
    with mlflow.start_run(run_name=run_name, tags=dict(tags or {}), parent_run_id=parent_run_id) as run:
        log.info("MLflow run %s in experiment %r (%s)", run.info.run_id, experiment_name, tracking_uri)
        yield MlflowTracker(run.info.run_id)
