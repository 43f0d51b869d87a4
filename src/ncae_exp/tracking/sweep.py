"""MLflow parent run for a Hydra multirun (``ncae-run -m …``).

A Hydra callback opens one parent run (tag ``ncae.sweep=true``, the sweep's fixed
overrides as params) when the sweep starts. Its id reaches the jobs two ways: the
environment (``NCAE_MLFLOW_PARENT_RUN_ID``, inherited by jobs in this process or in a
launcher's subprocesses) and ``<hydra.sweep.dir>/mlflow_parent.json`` (run id, tracking
URI, swept keys) for jobs on other machines, which may not share the environment. A job
finds its parent with :func:`find_parent` (the environment first, else the file) and its
run is created as that run's child, in the parent's tracking store. When the sweep ends,
the parent gets a table of its children and the best child by the protocol's validation
metric (``protocol.select``, direction ``protocol.mode``), and is closed. A test metric
never picks the best child.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ncae_exp.atomic import write_json_atomically
from ncae_exp.tracking.runs import process_tags, reopen_run

PARENT_ENV = "NCAE_MLFLOW_PARENT_RUN_ID"
PARENT_URI_ENV = "NCAE_MLFLOW_PARENT_TRACKING_URI"  # the store the parent run lives in
SWEPT_KEYS_ENV = "NCAE_SWEPT_KEYS"  # the keys that vary between the jobs, comma-separated
PARENT_FILE = "mlflow_parent.json"  # in hydra.sweep.dir, for jobs that do not share our environment
SWEEP_TAG = "ncae.sweep"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepParent:
    """What a job needs to log as a child of its sweep's parent run."""

    run_id: str
    tracking_uri: str | None = None
    swept_keys: list[str] = field(default_factory=list)


def parent_run_id() -> str | None:
    return os.environ.get(PARENT_ENV) or None


def find_parent(sweep_dir: str | Path | None = None) -> SweepParent | None:
    """The sweep's parent run for a job: from the environment when this process inherited
    it, else from ``<sweep_dir>/mlflow_parent.json`` (a job on another machine); None when
    neither is there (not a sweep, or MLflow disabled)."""
    run_id = parent_run_id()
    if run_id:
        keys = [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]
        return SweepParent(run_id, os.environ.get(PARENT_URI_ENV) or None, keys)
    if sweep_dir is None:
        return None
    return find_parent_file(sweep_dir)


def find_parent_file(sweep_dir: str | Path) -> SweepParent | None:
    """The parent run recorded in ``<sweep_dir>/mlflow_parent.json``, if any."""
    path = Path(str(sweep_dir)) / PARENT_FILE
    if not path.is_file():
        return None
    from ncae_exp.errors import TrackingError

    try:
        data = json.loads(path.read_text())
        return SweepParent(str(data["run_id"]), data.get("tracking_uri") or None,
                           [str(k) for k in data.get("swept_keys") or []])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise TrackingError(f"cannot read the sweep's parent run from {path}: {err}") from err


def write_parent_file(sweep_dir: str | Path, parent: SweepParent) -> Path:
    """``<sweep_dir>/mlflow_parent.json``, written atomically (temp file + ``os.replace``) so
    a job never reads half of it. Readable by the owner only: a tracking URI may hold a
    password (``postgresql://user:pw@host/db``); jobs run as the same user."""
    return write_json_atomically(Path(str(sweep_dir)) / PARENT_FILE, asdict(parent), private=True, suffix=".part")


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


def swept_values(key: str, command_line: list[str], sweeper_params: dict) -> str | None:
    """The values a sweep gives ``key`` ("ncae,ease"), from the command line (which wins) or
    the sweeper's params; None when ``key`` is not swept."""
    for override in command_line:
        if _key(override) == key and "=" in override and key in swept_keys([override], {}):
            return override.split("=", 1)[1]
    value = (sweeper_params or {}).get(key)
    return None if value is None else str(value)


def fixed_overrides(command_line: list[str], swept: list[str]) -> dict[str, str]:
    """The sweep's command-line overrides that are the same in every job, as MLflow params
    (``dataset=lastfm`` → ``{"dataset": "lastfm"}``); deletions (``~key``) are left out."""
    fixed = {}
    for override in command_line:
        if "=" not in override or override.startswith("~") or _key(override) in swept:
            continue
        key = re.sub(r"[^\w./\- ]", "_", _key(override))  # characters MLflow accepts in a key
        fixed[key] = override.split("=", 1)[1][:6000]
    return fixed


def child_run_name(job_overrides: list[str], keys: list[str] | None = None) -> str | None:
    """A sweep job's MLflow run name: only its swept values (``model=ease,seed=2``), so the
    runs table shows what differs; None outside a sweep. ``keys``: the swept keys (default:
    from the environment the sweep set)."""
    if keys is None:
        keys = [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]
    if not keys:
        return None
    chosen = [o for o in job_overrides if _key(o) in keys]
    return ",".join(chosen) or None


def close_parent(status: str, error: str | None = None) -> None:
    """End the sweep's parent run (e.g. FAILED when a job aborted the sweep, tagged
    ``ncae.error`` with ``error``)."""
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(PARENT_URI_ENV, None)
    os.environ.pop(SWEPT_KEYS_ENV, None)
    if not run_id:
        return
    import mlflow

    try:
        client = mlflow.MlflowClient(tracking_uri=uri)
        if error:
            client.set_tag(run_id, "ncae.error", error[:5000])
        client.set_terminated(run_id, status=status)
    except Exception as err:  # noqa: BLE001 - closing is best effort on an error path
        log.warning("could not close the sweep's parent MLflow run %s: %s", run_id, err)


def reusable_parent(client, sweep_dir: str, uri: str, overrides: str) -> str | None:
    """The parent run recorded in ``sweep_dir`` when it is this sweep's (same store, same
    command-line overrides), so a rerun resumes the sweep rather than starting another."""
    try:
        recorded = find_parent_file(sweep_dir)
        if recorded is None or recorded.tracking_uri != uri:
            return None
        run = client.get_run(recorded.run_id)
    except Exception:  # noqa: BLE001 - unreadable file or unknown run: a new sweep
        return None
    tags = run.data.tags
    same = tags.get(SWEEP_TAG) == "true" and tags.get("ncae.sweep_overrides") == overrides
    return recorded.run_id if same and run.info.lifecycle_stage == "active" else None


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
        from mlflow.entities import Param

        from ncae_exp.errors import TrackingError
        from ncae_exp.tracking.mlflow_tracker import check_store, resolve_tracking_uri

        uri = resolve_tracking_uri(str(config.mlflow.tracking_uri))
        try:
            check_store(uri)
        except TrackingError as err:  # Hydra would only warn, then launch every job into the same wall
            print(f"ncae-run: error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        mlflow.set_tracking_uri(uri)
        os.environ["MLFLOW_TRACKING_URI"] = uri  # children in other processes use the same store
        experiment = mlflow.set_experiment(str(config.mlflow.experiment_name))
        sweep_dir = str(config.hydra.sweep.dir)
        client = mlflow.MlflowClient(tracking_uri=uri)
        from ncae_exp.tracking.dashboard import describe_experiment  # the description, a headline view

        protocol = config.protocol
        describe_experiment(client, experiment.experiment_id, str(protocol.name), str(protocol.select),
                            str(protocol.mode), list(protocol.get("cutoffs") or []) or None)
        command_line = list(config.hydra.overrides.task)
        sweeper_params = config.hydra.sweeper.get("params") or {}
        swept = swept_keys(command_line, sweeper_params)
        # A swept model or dataset is tagged with its values ("ncae_paper,pop,bpr"), not the base config's.
        model = swept_values("model", command_line, sweeper_params) or str(config.model.name)
        dataset = swept_values("dataset", command_line, sweeper_params) or str(config.dataset.name)
        run_id = reusable_parent(client, sweep_dir, uri, " ".join(command_line))
        if run_id:  # the same sweep command in the same sweep dir: resume it
            reopen_run(client, run_id)
            log.info("sweep parent MLflow run %s reopened: finished jobs are skipped, the others resumed", run_id)
        else:
            run_id = client.create_run(
                experiment.experiment_id,
                run_name=f"sweep {model} on {dataset} {Path(sweep_dir).name}",
                tags={
                    SWEEP_TAG: "true",
                    "protocol": str(config.protocol.name),
                    "dataset": dataset,
                    "model": model,
                    "ncae.sweep_dir": sweep_dir,
                    "ncae.sweep_overrides": " ".join(command_line),
                    **process_tags(),
                },
            ).info.run_id
            # what the sweep held fixed, on the parent: dataset=lastfm → param "dataset"
            params = [Param(k, v) for k, v in fixed_overrides(command_line, swept).items()]
            for start in range(0, len(params), 100):  # MLflow's batch limit
                client.log_batch(run_id, params=params[start : start + 100])
        os.environ[PARENT_ENV] = run_id
        os.environ[PARENT_URI_ENV] = uri
        os.environ[SWEPT_KEYS_ENV] = ",".join(swept)
        path = write_parent_file(sweep_dir, SweepParent(run_id, uri, swept))
        log.info("sweep parent MLflow run %s (recorded in %s)", run_id, path)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from ncae_exp.tracking.sweep_failures import FAILED_TAG, failed_jobs, report_failures, summary

        failures = failed_jobs(str(config.hydra.sweep.dir))  # jobs refused with a user error
        run_id = parent_run_id()
        if not run_id:
            report_failures(failures)  # the last line, and exit status 2 when a job failed
            return
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=os.environ.get(PARENT_URI_ENV) or None)
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
                    "stage": child.data.tags.get("ncae.stage", "job"),  # retrain: the best trial's repeats
                    **{f"metric.{k}": v for k, v in sorted(child.data.metrics.items())},
                }
            )
        best = best_child(client, run_id, select, mode)
        if best is not None:
            client.log_metric(run_id, f"best_{select}", best.data.metrics[select])
            client.set_tag(run_id, "ncae.best_child", best.info.run_id)
        client.log_metric(run_id, "n_children", sum(r["stage"] == "job" for r in rows))
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
        if failures:
            client.set_tag(run_id, FAILED_TAG, summary(failures))
            client.log_metric(run_id, "n_failed_jobs", len(failures))
        close_parent("FAILED" if failures else "FINISHED")
        report_failures(failures)


def best_child(client, parent_run_id: str, select: str, mode: str):
    """The parent's finished child run with the best ``select`` (a validation metric) in
    direction ``mode``; None when no finished child has it. Retraining repeats (nested runs
    tagged ``ncae.stage``) are not candidates."""
    if not select.startswith("val_"):
        raise ValueError(f"selection reads validation metrics only, got {select!r}")
    parent = client.get_run(parent_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'")
    scored = [c for c in children if c.info.status == "FINISHED" and select in c.data.metrics
              and "ncae.stage" not in c.data.tags]
    if not scored:
        return None
    # Ties (HR@M takes few values) go to the earliest run, as Optuna's best trial does, so the
    # retrained trial is the one whose settings the parent shows as best_params.*.
    scored.sort(key=lambda c: c.info.start_time)
    pick = max if mode == "max" else min
    return pick(scored, key=lambda c: c.data.metrics[select])
