"""MLflow implementation of the tracker, with a store check done before any training."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from ncae_exp.errors import TrackingError, connection_reason
from ncae_exp.tracking.base import Tracker
from ncae_exp.tracking.runs import ERROR_TAG, HEARTBEAT_S, HEARTBEAT_TAG, error_line, reopen_run, start_run

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


def shown_uri(uri: str) -> str:
    """``uri`` whole, but for a password (``postgresql://user:***@host/db``)."""
    parsed = urlparse(str(uri))
    if parsed.password:
        netloc = parsed.netloc.rsplit("@", 1)
        return parsed._replace(netloc=f"{parsed.username}:***@{netloc[-1]}").geturl()
    return str(uri)


def check_store(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast with a one-line error that says what to do when the store cannot be reached
    or created, instead of training for an hour and losing the results at the end."""
    import mlflow

    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db_dir = Path(parsed.path).parent if parsed.path else Path.cwd()
        if not db_dir.is_dir() or not os.access(db_dir, os.W_OK):
            raise TrackingError(f"MLflow store {shown_uri(uri)}: folder {db_dir} does not exist or is not writable;"
                                " fix mlflow.tracking_uri / MLFLOW_TRACKING_URI, or run without MLflow:"
                                " mlflow.enabled=false")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(timeout_s))
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure here means "cannot use the store"
        server = "start the server or " if parsed.scheme in ("http", "https") else ""
        raise TrackingError(
            f"cannot reach MLflow tracking store {shown_uri(uri)} ({connection_reason(err)}); {server}fix"
            " mlflow.tracking_uri / MLFLOW_TRACKING_URI, or run without MLflow: mlflow.enabled=false"
        ) from err
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# Retrying a store that stopped answering: a few tries, then the run goes on without it (one
# warning; the run's output folder keeps everything). Errors that are the caller's mistake,
# not the store's absence, are raised at once.
_ATTEMPTS, _PAUSES_S = 3, (1.0, 2.0)
_OWN_MISTAKES = {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST",
                 "INVALID_STATE"}


class _Link:
    """What a run's tracker shares with its children's: whether the store was given up."""

    def __init__(self, uri: str | None):
        self.uri = uri
        self.offline = False


def brief_http_retries() -> None:
    """MLflow's HTTP client retries a dead server for minutes by default; a run retries
    briefly instead (unless the user set these), then goes on locally."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # one warning of ours instead


class MlflowTracker(Tracker):
    """Logs to one MLflow run by its id (not to "the active run"), so a parent and its
    nested runs can be written in any order. A store that stops answering mid-run is
    retried briefly, then left: the tracker goes on as a no-op (``offline``) after one
    warning. ``logged_params``: a resumed run's params, not logged again."""

    def __init__(self, run_id: str | None, tracking_uri: str | None = None, link: _Link | None = None,
                 logged_params: Mapping[str, str] | None = None):
        import mlflow

        self._client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self._link = link or _Link(tracking_uri)
        self._logged = {k: str(v) for k, v in (logged_params or {}).items()}
        self._beat = time.monotonic()

    @property
    def offline(self) -> bool:
        return self._link.offline or self.run_id is None

    @property
    def client(self):
        return self._client

    @property
    def experiment_id(self) -> str | None:
        """The run's experiment (for links to the run), None when the store cannot say."""
        if getattr(self, "_experiment_id", None) is None:
            run = self._call(self._client.get_run, self.run_id)
            self._experiment_id = run.info.experiment_id if run is not None else None
        return self._experiment_id

    def _call(self, fn, *args, **kwargs):
        if self.offline:
            return None
        for attempt in range(_ATTEMPTS):
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - any store failure: retry, then go on without it
                if getattr(err, "error_code", None) in _OWN_MISTAKES:
                    raise
                if attempt + 1 < _ATTEMPTS:
                    time.sleep(_PAUSES_S[attempt])
                    continue
                self._link.offline = True
                reason = connection_reason(err)
                log.warning("MLflow tracking store %s stopped answering (%s): the run goes on without it; its "
                            "output folder keeps everything (results.json, checkpoint/, model/)", self.tracking_uri,
                            reason)
        return None

    def log_params(self, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param

        clean = []
        for k, v in params.items():
            s = str(v)
            s = s if len(s) <= _PARAM_MAX else s[: _PARAM_MAX - 12] + "…[truncated]"
            if k in self._logged:  # a resumed run keeps its params (MLflow refuses a change)
                if self._logged[k] != s:
                    log.warning("param %s is %r in the resumed run, %r now: kept %r", k, self._logged[k], s,
                                self._logged[k])
                continue
            self._logged[k] = s
            clean.append(Param(k, s))
        for start in range(0, len(clean), 100):  # MLflow's batch limit
            self._call(self._client.log_batch, self.run_id, params=clean[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, int(step or 0)) for k, v in metrics.items()]
        beat = []
        if time.monotonic() - self._beat > HEARTBEAT_S:  # ncae-runs stale reads it
            self._beat = time.monotonic()
            beat = [RunTag(HEARTBEAT_TAG, str(now // 1000))]
        for start in range(0, len(batch), 1000):
            self._call(self._client.log_batch, self.run_id, metrics=batch[start : start + 1000],
                       tags=beat if start == 0 else [])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self._call(self._client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self._call(self._client.log_artifact, self.run_id, str(path), artifact_path=artifact_path)

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        self._call(self._client.log_artifacts, self.run_id, str(folder), artifact_path=artifact_path)

    def register_model(self, artifact_path: str, name: str) -> str | None:
        """A new version of registered model ``name`` (created when new) from this run's
        ``artifact_path``; a failure is one warning (the run and its logged model stay)."""
        if self.offline:
            log.warning("model not registered as %r: the MLflow store is not reachable", name)
            return None
        try:
            try:
                self._client.create_registered_model(name)
            except Exception as err:  # noqa: BLE001
                if getattr(err, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
            source = f"{self._client.get_run(self.run_id).info.artifact_uri}/{artifact_path}"
            version = self._client.create_model_version(name, source, run_id=self.run_id).version
        except Exception as err:  # noqa: BLE001 - any registry failure: warn, keep the run
            log.warning("could not register the model of run %s as %r in %s (%s); register it later with "
                        "mlflow.register_model('runs:/%s/%s', %r)", self.run_id, name, shown_uri(self.tracking_uri),
                        connection_reason(err), self.run_id, artifact_path, name)
            return None
        self.set_tags({"ncae.registered_model": f"{name}/{version}"})
        log.info("registered the model of run %s as %r version %s (models:/%s/%s)", self.run_id, name, version,
                 name, version)
        return str(version)

    @contextmanager
    def ending(self) -> Iterator["MlflowTracker"]:
        """End the run with the block: FINISHED; KILLED on Ctrl-C or SIGTERM (a
        KeyboardInterrupt); FAILED, tagged ``ncae.error`` with the one-line reason, when it raises."""
        status, error = "FAILED", None
        try:
            yield self
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        except SystemExit as exit_:
            status, error = ("FINISHED", None) if exit_.code in (0, None) else ("FAILED", f"exit status {exit_.code}")
            raise
        except BaseException as err:
            error = error_line(err)
            raise
        finally:
            if error:
                self._call(self._client.set_tag, self.run_id, ERROR_TAG, error)
            self._call(self._client.set_terminated, self.run_id, status=status)

    @contextmanager
    def child(self, name: str, tags: Mapping[str, str]) -> Iterator["MlflowTracker"]:
        run_id = None
        parent = self._call(self._client.get_run, self.run_id)
        if parent is not None:
            run_id = self._call(start_run, self._client, parent.info.experiment_id, name, tags, self.run_id)
        with MlflowTracker(run_id, self.tracking_uri, self._link).ending() as tracker:
            yield tracker


@contextmanager
def mlflow_run(
    tracking_uri: str,
    experiment_name: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    run_id: str | None = None,
) -> Iterator[MlflowTracker]:
    """Start a run — or reopen ``run_id``, a resumed run whose metrics and steps go on — and
    yield its tracker; the run ends FINISHED, KILLED (Ctrl-C, SIGTERM) or FAILED (tagged
    ``ncae.error``). ``parent_run_id``: the sweep's parent run, when this job is part of one."""
    import mlflow

    brief_http_retries()
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    if run_id:
        logged = client.get_run(run_id).data.params
        reopen_run(client, run_id, tags)
        log.info("MLflow run %s reopened: resuming it (%s)", run_id, tracking_uri)
    else:
        try:
            experiment = mlflow.set_experiment(experiment_name)
        except Exception as err:  # noqa: BLE001
            raise TrackingError(f"cannot open MLflow experiment {experiment_name!r} in {tracking_uri}: {err}") from err
        run_id, logged = start_run(client, experiment.experiment_id, run_name, tags or {}, parent_run_id), {}
        log.info("MLflow run %s in experiment %r (%s)", run_id, experiment_name, tracking_uri)
    with MlflowTracker(run_id, tracking_uri, logged_params=logged).ending() as tracker:
        yield tracker
