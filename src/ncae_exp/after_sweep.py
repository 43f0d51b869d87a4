"""What runs once a sweep's jobs are done, on the sweep's parent run (a Hydra callback,
registered in conf/config.yaml after ``mlflow_sweep``, so it runs while the parent is open):

* an optimising search (Optuna) with ``retrain=true``: its best trial — chosen on validation
  by the parent's best child — is retrained on training + validation and tested over
  ``repeats`` seeds (protocols/selection.py), against ``compare_to`` if given; the summary
  (test_* means, stds, t-tests) and the retrained model go on the parent run. This is the
  "tune on validation, then retrain and test" command in one:
  ``ncae-run -m hparams_search=ncae_explicit retrain=true repeats=5 compare_to=biasedmf``;
* the comparison report (reports/compare.py) of the sweep's children, logged on the parent.

It sits on top of the pipeline and the reports (nothing imports it). Hydra only warns when a
callback raises, so a failure here is printed as one line and ends the command with status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def _optimising(config: DictConfig) -> bool:
    return OmegaConf.select(config, "hydra.sweeper.direction") is not None


class AfterSweepCallback(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from ncae_exp.errors import NcaeError
        from ncae_exp.tracking.sweep import find_parent

        parent = find_parent(str(config.hydra.sweep.dir)) if bool(config.mlflow.enabled) else None
        retrain = bool(config.get("retrain")) and _optimising(config)
        if parent is None:
            if retrain:
                log.warning("retraining the best trial needs MLflow to find it (mlflow.enabled=true): skipped")
            print_sweep_summary(config, None)
            return
        try:
            if retrain:
                retrain_best_trial(config, parent.run_id, parent.tracking_uri)
            comparison_report(parent.run_id, parent.tracking_uri, Path(str(config.hydra.sweep.dir)))
        except NcaeError as err:
            import mlflow

            mlflow.MlflowClient(parent.tracking_uri).set_tag(parent.run_id, "ncae.error", str(err)[:5000])
            print_sweep_summary(config, parent)
            print(f"ncae-run: error: after the sweep: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        print_sweep_summary(config, parent)


def print_sweep_summary(config: DictConfig, parent) -> None:
    """The table of the sweep's jobs, best first by validation (tracking/sweep_summary.py), and
    where its parent run is; on stdout, before the failed jobs' error line."""
    from ncae_exp.tracking.sweep import swept_keys
    from ncae_exp.tracking.sweep_summary import collect_jobs, sweep_table

    try:
        swept = swept_keys(list(config.hydra.overrides.task), config.hydra.sweeper.get("params") or {})
        rows = collect_jobs(str(config.hydra.sweep.dir), swept)
        if not rows:
            return
        where = [f"sweep folder: {config.hydra.sweep.dir}"] + (_parent_where(parent) if parent else [])
        print(sweep_table(rows, str(config.protocol.select), str(config.protocol.mode), where), flush=True)
    except Exception as err:  # noqa: BLE001 - a console table must never cost the sweep its results
        log.warning("could not print the sweep's summary: %s", err)


def _parent_where(parent) -> list[str]:
    import mlflow

    from ncae_exp.tracking.run_summary import where_in_mlflow

    try:
        experiment_id = mlflow.MlflowClient(parent.tracking_uri).get_run(parent.run_id).info.experiment_id
    except Exception:  # noqa: BLE001 - the store went away: the id is still worth printing
        experiment_id = None
    return [f"parent {label[len('MLflow '):]}: {text}" if label.startswith("MLflow ") else f"{label}: {text}"
            for label, text in where_in_mlflow(parent.tracking_uri, experiment_id, parent.run_id)]


def retrain_best_trial(config: DictConfig, parent_run_id: str, tracking_uri: str | None) -> dict[str, float]:
    """Retrain the sweep's best child (by ``protocol.select``) with the paper's protocol and log
    the summary, the per-seed runs and the retrained model on the parent."""
    import mlflow

    from ncae_exp.config_utils import compare_overrides, compose_config
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.errors import TrackingError
    from ncae_exp.pipeline import resolve, retrain_stage, save_and_log_model
    from ncae_exp.tracking.mlflow_tracker import MlflowTracker
    from ncae_exp.tracking.sweep import best_child
    from ncae_exp.training.device import configure_device

    client = mlflow.MlflowClient(tracking_uri)
    select, mode = str(config.protocol.select), str(config.protocol.mode)
    best = best_child(client, parent_run_id, select, mode)
    if best is None:
        raise TrackingError(f"no finished trial has {select}: nothing to retrain")
    folder = Path(best.data.tags.get("ncae.output_dir", ""))
    overrides_file = folder / ".hydra" / "overrides.yaml"
    if not overrides_file.is_file():
        raise TrackingError(f"the best trial's overrides are not at {overrides_file} (run {best.info.run_id})")
    overrides = [str(o) for o in OmegaConf.load(overrides_file)]
    config_name = str(config.hydra.job.config_name)
    cfg = compose_config(config_name, overrides, f"the best trial {best.info.run_name}")
    epochs = int(best.data.metrics["best_epoch"])
    compare_cfg = None
    if cfg.get("compare_to"):
        extra = compare_overrides(overrides, str(cfg.compare_to), cfg.get("compare_overrides"))
        compare_cfg = compose_config(config_name, extra, f"compare_to={cfg.compare_to}")
    resolved = resolve(cfg)
    log.info("retraining the best trial %s (%s=%.4f, %d epochs) on training + validation, %d seeds",
             best.info.run_name, select, best.data.metrics[select], epochs, int(resolved.repeats))
    configure_device(str(resolved.trainer.device))
    data_dir = Path(str(resolved.paths.data_dir))
    data = load_dataset(resolved.dataset, data_dir)
    tracker = MlflowTracker(parent_run_id, tracking_uri)
    tracker.set_tags({"ncae.retrained_child": best.info.run_id})
    out = Path(str(config.hydra.sweep.dir)) / "retrain_best"
    stage = retrain_stage(cfg, epochs, data, data_dir, tracker, out, compare_cfg)
    tracker.log_metrics(stage.summary)
    # The base seed's retrained model, as an MLflow model (registered with model.register=true),
    # with what it was fit on: that seed's split, training ∪ validation.
    save_and_log_model(out / "model", stage.main.first_model, resolved, data, stage.main.first_train, tracker)
    log.info("retrained best trial: %s", ", ".join(f"{k}={v:.4f}" for k, v in stage.summary.items() if k.startswith("test_")))
    return stage.summary


def comparison_report(parent_run_id: str, tracking_uri: str | None, sweep_dir: Path) -> None:
    """The sweep's comparison table and plots (ncae-report), logged on the parent."""
    import mlflow

    from ncae_exp.reports.compare import build_comparison_report

    try:
        build_comparison_report(mlflow.MlflowClient(tracking_uri), parent_run_id, sweep_dir / "report")
    except Exception as err:  # noqa: BLE001 - a report must never cost the sweep its results
        log.warning("comparison report for sweep %s failed: %s (run ncae-report --parent-run-id %s)",
                    parent_run_id, err, parent_run_id)
