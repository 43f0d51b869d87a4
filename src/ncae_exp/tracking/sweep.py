"""MLflow parent run for a Hydra multirun (``ncae-run -m …``).

A Hydra callback opens one parent run (tag ``ncae.sweep=true``) when the sweep starts and
puts its id in the environment; every job's run is created as its child (the pipeline
passes :func:`parent_run_id` to :func:`ncae_exp.tracking.mlflow_tracker.mlflow_run`),
in-process or in a launcher's subprocess. When the sweep ends, the parent gets a table of
its children and the best child by the protocol's validation metric (``protocol.select``,
direction ``protocol.mode``), and is closed. A test metric never picks the best child.
"""

from __future__ import annotations

import csv
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

PARENT_ENV = "NCAE_MLFLOW_PARENT_RUN_ID"
SWEPT_KEYS_ENV = "NCAE_SWEPT_KEYS"  # the keys that vary between the jobs, comma-separated
SWEEP_TAG = "ncae.sweep"
log = logging.getLogger(__name__)


def parent_run_id() -> str | None:
    return os.environ.get(PARENT_ENV) or None


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def swept_keys(command_line: list[str], sweeper_params: dict) -> list[str]:
    """The keys whose value differs between a sweep's jobs: the sweeper's ``params`` (an
    experiment's grid) and every command-line override with a list of values."""
    keys = [str(k) for k in sweeper_params or {}]
    for override in command_line:
        value = override.split("=", 1)[1] if "=" in override else ""
        if ("," in value and not value.lstrip().startswith("[")) or value.startswith(("range(", "choice(", "glob(")):
            keys.append(_key(override))
    return list(dict.fromkeys(keys))


def child_run_name(job_overrides: list[str]) -> str | None:
    """A sweep job's MLflow run name: only its swept values (``model=ease,seed=2``), so the
    runs table shows what differs; None outside a sweep."""
    keys = [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]
    if not keys:
        return None
    chosen = [o for o in job_overrides if _key(o) in keys]
    return ",".join(chosen) or None


def close_parent(status: str) -> None:
    """End the sweep's parent run (e.g. FAILED when a job aborted the sweep)."""
    run_id = os.environ.pop(PARENT_ENV, None)
    os.environ.pop(SWEPT_KEYS_ENV, None)
    if not run_id:
        return
    import mlflow

    try:
        mlflow.MlflowClient().set_terminated(run_id, status=status)
    except Exception as err:  # noqa: BLE001 - closing is best effort on an error path
        log.warning("could not close the sweep's parent MLflow run %s: %s", run_id, err)


def check_direction(sweeper: DictConfig, protocol: DictConfig) -> None:
    """An optimising sweeper (Optuna) must go the way the protocol's selection metric does
    (checked by each job: Hydra only warns about a callback's exception)."""
    from ncae_exp.errors import ConfigError

    direction = sweeper.get("direction")
    if direction is None:
        return
    expected = {"min": "minimize", "max": "maximize"}.get(str(protocol.mode))
    if str(direction) != expected:
        raise ConfigError(
            f"hydra.sweeper.direction={direction}, but protocol.select={protocol.select} is to be "
            f"{protocol.mode}imised (protocol={protocol.name}): use the hparams_search file of this protocol"
        )


def _log_study(client, run_id: str, sweep_dir: Path) -> None:
    """The Optuna sweeper's optimization_results.yaml (best params and value) on the parent."""
    results = sweep_dir / "optimization_results.yaml"
    if not results.is_file():
        return
    from omegaconf import OmegaConf

    best = OmegaConf.load(results)
    for key, value in (best.get("best_params") or {}).items():
        client.log_param(run_id, f"best_params.{key}", value)
    client.log_artifact(run_id, str(results))


class MlflowSweepCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not bool(config.mlflow.enabled):
            return
        import mlflow

        from ncae_exp.tracking.mlflow_tracker import check_store, resolve_tracking_uri

        uri = resolve_tracking_uri(str(config.mlflow.tracking_uri))
        check_store(uri)
        mlflow.set_tracking_uri(uri)
        os.environ["MLFLOW_TRACKING_URI"] = uri  # children in other processes use the same store
        experiment = mlflow.set_experiment(str(config.mlflow.experiment_name))
        sweep_dir = str(config.hydra.sweep.dir)
        run = mlflow.MlflowClient().create_run(
            experiment.experiment_id,
            run_name=f"sweep {Path(sweep_dir).name}",
            tags={
                SWEEP_TAG: "true",
                "protocol": str(config.protocol.name),
                "dataset": str(config.dataset.name),
                "model": str(config.model.name),
                "ncae.sweep_dir": sweep_dir,
                "ncae.sweep_overrides": " ".join(config.hydra.overrides.task),
            },
        )
        os.environ[PARENT_ENV] = run.info.run_id
        os.environ[SWEPT_KEYS_ENV] = ",".join(
            swept_keys(list(config.hydra.overrides.task), config.hydra.sweeper.get("params") or {})
        )
        log.info("sweep parent MLflow run %s", run.info.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        run_id = parent_run_id()
        if not run_id:
            return
        import mlflow

        client = mlflow.MlflowClient()
        parent = client.get_run(run_id)
        children = client.search_runs(
            [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
        )
        select, mode = str(config.protocol.select), str(config.protocol.mode)
        rows = []
        for child in children:
            rows.append(
                {
                    "run_id": child.info.run_id,
                    "run_name": child.info.run_name,
                    "status": child.info.status,
                    **{f"metric.{k}": v for k, v in sorted(child.data.metrics.items())},
                }
            )
        scored = [r for r in rows if f"metric.{select}" in r]
        if scored:
            pick = max if mode == "max" else min
            best = pick(scored, key=lambda r: r[f"metric.{select}"])
            client.log_metric(run_id, f"best_{select}", best[f"metric.{select}"])
            client.set_tag(run_id, "ncae.best_child", best["run_id"])
        client.log_metric(run_id, "n_children", len(rows))
        _log_study(client, run_id, Path(str(config.hydra.sweep.dir)))
        if rows:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "sweep_children.csv"
                keys = sorted({k for r in rows for k in r}, key=lambda k: (k.startswith("metric."), k))
                with path.open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, fieldnames=keys)
                    writer.writeheader()
                    writer.writerows(rows)
                client.log_artifact(run_id, str(path))
        close_parent("FINISHED")
