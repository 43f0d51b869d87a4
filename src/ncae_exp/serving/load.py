"""Finding and loading a logged model for ``ncae-recommend``: by run id or by registered
name, as its MLflow model (pyfunc), with one-line errors that say what to do.

Runs logged before models were MLflow models (their ``model/`` holds only ``weights.npz`` and
``config.yaml``) are rebuilt the old way, from the same dataset (``serving/rebuild.py``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ncae_exp.errors import ConfigError, TrackingError, connection_reason
from ncae_exp.serving.rebuild import LoadedModel, check_model_run, download_model, rebuild


@dataclass
class Source:
    """Where the model is: ``run_id``, or ``model`` (a registered name) and ``version``."""

    tracking_uri: str
    run_id: str | None = None
    model: str | None = None
    version: str = "latest"

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/model" if self.run_id else f"models:/{self.model}/{self.version}"


def load(source: Source, retry: str, data_dir: str | None = None):
    """The pyfunc model (``mlflow.pyfunc.PyFuncModel``) of ``source``, or for a run logged
    before models were MLflow models, the rebuilt :class:`LoadedModel`."""
    import mlflow

    from ncae_exp.tracking.mlflow_tracker import check_store, shown_uri

    if source.run_id:
        check_model_run(source.run_id, source.tracking_uri, retry)
        client = mlflow.MlflowClient(tracking_uri=source.tracking_uri)
        if "model/MLmodel" not in {a.path for a in client.list_artifacts(source.run_id, "model")}:
            with tempfile.TemporaryDirectory() as tmp:
                return rebuild(download_model(source.run_id, source.tracking_uri, Path(tmp)), data_dir)
    else:
        check_store(source.tracking_uri)
        _check_registered(source)
    mlflow.set_tracking_uri(source.tracking_uri)
    try:
        return mlflow.pyfunc.load_model(source.uri)
    except Exception as err:  # noqa: BLE001 - any failure to fetch or build the model
        from ncae_exp.errors import NcaeError

        cause = _ncae_cause(err)
        if isinstance(cause, NcaeError):
            raise cause from None
        raise TrackingError(f"cannot load {source.uri} from {shown_uri(source.tracking_uri)}"
                            f" ({connection_reason(err)})") from err


def _check_registered(source: Source) -> None:
    """Refuse an unknown registered model or version, naming the ones there are."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from ncae_exp.tracking.mlflow_tracker import shown_uri

    client = mlflow.MlflowClient(tracking_uri=source.tracking_uri)
    store = shown_uri(source.tracking_uri)  # a password in the URI is never printed
    try:
        versions = client.search_model_versions(f"name = '{source.model}'")
    except MlflowException as err:
        raise TrackingError(f"cannot read the model registry of {store} ({connection_reason(err)})") from None
    if not versions:
        names = sorted(m.name for m in client.search_registered_models(max_results=50))
        known = f"registered models: {', '.join(names)}" if names else "no model is registered there"
        raise ConfigError(f"no registered model {source.model!r} in {store} ({known}); register a"
                          " run's model with ncae-run model.register=true, or use run_id=<run id>")
    numbers = sorted(int(v.version) for v in versions)
    if source.version != "latest" and int(source.version) not in numbers:
        raise ConfigError(f"model {source.model!r} has no version {source.version}; its versions:"
                          f" {', '.join(map(str, numbers))}")


def _ncae_cause(err: BaseException) -> BaseException:
    """The innermost NcaeError behind ``err`` (MLflow wraps errors raised while loading)."""
    from ncae_exp.errors import NcaeError

    cur, seen = err, set()
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, NcaeError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return err


def is_legacy(loaded) -> bool:
    return isinstance(loaded, LoadedModel)


def refuse_legacy_fold_in(source: Source) -> None:
    raise ConfigError(f"run {source.run_id} was logged before models were MLflow models (its model/ has no"
                      " MLmodel): it recommends for known users only; rerun it to fold in new users")


def check_version(value: str) -> str:
    if value != "latest" and not value.isdigit():
        raise ConfigError(f"version must be a number or latest, got {value!r}")
    return value
