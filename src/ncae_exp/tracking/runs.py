"""Run bookkeeping shared by a run, a sweep's parent and ``ncae-runs``: which process owns a
RUNNING run (so a run left RUNNING by ``kill -9`` can be told from a live one), starting or
reopening a run, and the one-line reason a FAILED run is tagged with.

Every run (and reopened run) is tagged with the process that works on it: ``ncae.host``,
``ncae.pid`` and ``ncae.attempt_start`` (seconds since the epoch); ``ncae.heartbeat`` is
refreshed while it logs (at most every ``HEARTBEAT_S`` seconds).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

HOST_TAG, PID_TAG, START_TAG, HEARTBEAT_TAG = "ncae.host", "ncae.pid", "ncae.attempt_start", "ncae.heartbeat"
ERROR_TAG = "ncae.error"  # the one-line reason of a FAILED run
HEARTBEAT_S = 30.0
_TAG_MAX = 5000


def process_tags() -> dict[str, str]:
    """This process, as the owner of a run."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid()), START_TAG: str(int(time.time())),
            HEARTBEAT_TAG: str(int(time.time()))}


def error_line(err: BaseException) -> str:
    """The reason a run failed, in one line: our errors' message, else ``Type: first line``."""
    from ncae_exp.errors import NcaeError

    text = " ".join(str(err).split())
    if not isinstance(err, NcaeError):
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text[:_TAG_MAX]


def start_run(client, experiment_id: str, run_name: str | None, tags: Mapping[str, str],
              parent_run_id: str | None = None) -> str:
    """A new RUNNING run with MLflow's context tags (user, source, git commit), as
    ``mlflow.start_run`` would create it; returns its id."""
    from mlflow.tracking.context import registry

    user_tags = {**{k: str(v) for k, v in tags.items()}, **process_tags()}
    if parent_run_id:
        user_tags["mlflow.parentRunId"] = parent_run_id
    return client.create_run(experiment_id, run_name=run_name, tags=registry.resolve_tags(user_tags)).info.run_id


def reopen_run(client, run_id: str, tags: Mapping[str, str] | None = None) -> None:
    """Set a run RUNNING again (a resumed run: its metrics and steps go on) under this process."""
    from mlflow.entities import RunTag

    client.update_run(run_id, status="RUNNING")
    merged = {**{k: str(v) for k, v in (tags or {}).items()}, **process_tags()}
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in merged.items()])


def process_alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs on this host and was started by ``since`` (seconds since
    the epoch; a later start means the pid was reused by another process)."""
    import psutil

    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return since is None or proc.create_time() <= since + 2.0
    except (psutil.Error, ValueError):
        return False


def run_exists(uri: str, run_id: str) -> bool:
    """Whether the store has the run (not deleted): a resumed job goes on with it, else with
    a new run."""
    import mlflow

    try:
        return mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).info.lifecycle_stage == "active"
    except Exception:  # noqa: BLE001 - unknown id, other store
        return False


def run_folder(uri: str, run_id: str):
    """The output folder of run ``run_id`` (its ``ncae.output_dir`` tag), for ``resume=``."""
    from pathlib import Path

    import mlflow

    from ncae_exp.errors import ConfigError

    try:
        run = mlflow.MlflowClient(tracking_uri=uri).get_run(run_id)
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"resume={run_id}: no such run in the MLflow store {uri}") from err
    folder = run.data.tags.get("ncae.output_dir")
    if not folder:
        raise ConfigError(f"resume={run_id}: the run has no ncae.output_dir tag (not an ncae-run run, or a sweep's "
                          "parent: rerun the sweep with its hydra.sweep.dir)")
    if not Path(folder).is_dir():
        raise ConfigError(f"resume={run_id}: its output folder {folder} is not on this machine; resume it where it "
                          "ran, or copy the folder there")
    return Path(folder)
