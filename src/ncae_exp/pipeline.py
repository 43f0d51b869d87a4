"""One run end to end: dataset → split → model → trainer → evaluator, reported to MLflow.

Order matters for the user: the tracking store is checked first and the data loaded second,
so a typo in either fails in seconds, before a run is created or a model trained. Results
are also written to the job's output folder, so nothing is lost if the store goes away.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import ncae_exp
from ncae_exp.config_utils import resolved_params
from ncae_exp.errors import ConfigError
from ncae_exp.tracking.base import MemoryTracker, Tracker

log = logging.getLogger(__name__)

PROTOCOLS = ("explicit", "implicit")


def _protocol_runner(name: str):
    if name == "explicit":
        from ncae_exp.protocols.explicit import run_explicit

        return run_explicit
    if name == "implicit":
        from ncae_exp.protocols.implicit import run_implicit

        return run_implicit
    raise ConfigError(f"protocol {name!r} is not available; choose one of: {', '.join(PROTOCOLS)}")


def run(cfg: DictConfig, output_dir: Path, default_run_name: str | None = None) -> dict[str, float]:
    """Run the experiment described by ``cfg``; return its final metrics."""
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.data.registry import get_spec
    from ncae_exp.training.device import configure_device

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    protocol = str(cfg.protocol.name)
    runner = _protocol_runner(protocol)
    spec = get_spec(str(cfg.dataset.name))
    if protocol == "explicit" and spec.implicit:
        raise ConfigError(
            f"dataset {spec.name!r} has interactions, not ratings: use protocol=implicit "
            "(or an explicit dataset such as ml-100k)"
        )
    device = configure_device(str(cfg.trainer.device))

    tracking = bool(cfg.mlflow.enabled)
    if tracking:
        from ncae_exp.tracking.mlflow_tracker import check_store, resolve_tracking_uri

        uri = resolve_tracking_uri(str(cfg.mlflow.tracking_uri))
        check_store(uri)

    data_dir = Path(str(cfg.paths.data_dir))
    data = load_dataset(cfg.dataset, data_dir)
    log.info("dataset %s: %s", data.name, ", ".join(f"{k}={v:g}" for k, v in data.stats().items()))

    tags = {"protocol": protocol, "dataset": data.name, "model": str(cfg.model.name), "device": device}
    config_path = output_dir / "config.yaml"
    config_path.write_text(OmegaConf.to_yaml(cfg, resolve=True))

    def body(tracker: Tracker) -> dict[str, float]:
        tracker.set_tags(tags)
        tracker.log_params(resolved_params(cfg))
        tracker.log_params({f"data.{k}": v for k, v in data.stats().items()})
        result = runner(cfg, data, tracker, data_dir, output_dir)
        final = result.final_metrics
        # The selected model's value comes last in the val series (step = epochs_run + 1),
        # so the runs table shows the best epoch's val_rmse, not the last epoch's.
        tracker.log_metrics(final, step=result.fit.epochs_run + 1)
        _write_outputs(output_dir, cfg, tags, final, result, tracker)
        log.info("final: %s", ", ".join(f"{k}={v:.4f}" for k, v in final.items()))
        return final

    if not tracking:
        return body(MemoryTracker())
    from ncae_exp.tracking.mlflow_tracker import mlflow_run

    run_name = cfg.mlflow.run_name or default_run_name
    with mlflow_run(uri, str(cfg.mlflow.experiment_name), run_name, tags) as tracker:
        final = body(tracker)
        log.info("logged to MLflow run %s (open it with `make ui`)", tracker.run_id)
        return final


def _write_outputs(output_dir, cfg, tags, final, result, tracker: Tracker) -> None:
    from ncae_exp.serving import save_model
    from ncae_exp.tracking.plots import learning_curves, metrics_vs_cutoff

    history, best_epoch = result.fit.history, result.fit.best_epoch

    results = {
        "final": final,
        "tags": tags,
        "history": history,
        "versions": {"ncae_exp": ncae_exp.__version__, "python": platform.python_version()},
    }
    results_path = output_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2))
    title = f"{cfg.model.name} on {tags['dataset']} ({tags['protocol']})"
    plot = learning_curves(history, output_dir / "learning_curves.png", best_epoch=best_epoch, title=title)
    at_m = metrics_vs_cutoff(final, output_dir / "metrics_vs_m.png", title=title)
    for path in (output_dir / "config.yaml", results_path, plot, at_m):
        if path is not None:
            tracker.log_artifact(path)
    # The selected model's parameters with the config that rebuilds it (ncae-recommend).
    model_dir = save_model(result.model, cfg, output_dir / "model")
    for path in sorted(model_dir.iterdir()):
        tracker.log_artifact(path, artifact_path="model")
