"""One run end to end: dataset → split → model → trainer → evaluator, reported to MLflow.

Order matters for the user: every setting is checked before this module runs
(config/validate.py, called first by ``ncae-run``), then the tracking store, then the data is
loaded, so a typo fails in seconds, before a run is created or a model trained. Results are
also written to the job's output folder, so nothing is lost if the store goes away.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import ncae_exp
from ncae_exp.config_utils import resolved_params
from ncae_exp.errors import ConfigError
from ncae_exp.models.base import Recommender
from ncae_exp.protocols.selection import Candidate
from ncae_exp.tracking.base import MemoryTracker, Tracker
from ncae_exp.tracking.runs import error_line, run_exists
from ncae_exp.training.checkpoint import Checkpoint
from ncae_exp.training.resume import RunRecord, plan_resume
from ncae_exp.training.trainer import FitResult, Trainer

log = logging.getLogger(__name__)


def resolve(cfg: DictConfig) -> DictConfig:
    """The config with every interpolation resolved, and ``trainer.batch_size`` (when set)
    written into the model's own ``batch_size``."""
    from ncae_exp.models.registry import with_batch_size

    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with_batch_size(resolved.model, OmegaConf.select(resolved, "trainer.batch_size"))
    return resolved


def with_seed(cfg: DictConfig, seed: int) -> DictConfig:
    """The resolved config of ``cfg`` (unresolved, as composed) with another seed: every
    ``${seed}`` (the split's, the model's) follows."""
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    copy.seed = int(seed)
    return resolve(copy)


def run(cfg: DictConfig, output_dir: Path, default_run_name: str | None = None,
        compare_cfg: DictConfig | None = None, select_only: bool = False,
        parent_run_id: str | None = None, parent_tracking_uri: str | None = None,
        job_label: str | None = None) -> dict[str, float]:
    """Run the experiment described by ``cfg``; return its final metrics.

    It ends with a summary on the console (tracking/run_summary.py): a table for a run, one
    line for a sweep's job (``job_label``, e.g. ``job 3/12 model.l2=0.01``).

    In a sweep, ``parent_run_id`` is the sweep's parent run and ``parent_tracking_uri`` its
    store: the job's run goes there as its child, whatever its own ``mlflow.tracking_uri``.

    With ``retrain=true``: after selection, the paper's protocol (protocols/selection.py),
    against ``compare_cfg`` (the composed config of ``compare_to``) if given. ``select_only``:
    a trial of an optimising sweep, which retrains only its best trial at the end.

    Resumable (training/resume.py): rerun in the same output folder, or with
    ``resume=<run id>``, a finished run is not run again (its final metrics are returned)
    and an unfinished one goes on from its last checkpoint in the same MLflow run."""
    from ncae_exp.tracking.interrupts import install_sigterm_handler

    install_sigterm_handler()  # SIGTERM ends the run KILLED, with its results saved, as Ctrl-C does

    unresolved = cfg
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.models.registry import build_model
    from ncae_exp.protocols.registry import build_protocol
    from ncae_exp.training.device import configure_device

    cfg = resolve(cfg)
    retrain = bool(cfg.get("retrain", False)) and not select_only
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # first: it imports TensorFlow quietly
    device = configure_device(str(cfg.trainer.device), bool(cfg.trainer.get("deterministic", False)))
    # Every setting (this config's and compare_to's) was checked by config/validate.py before
    # this call (cli._app), so building cannot fail on a user's value here.
    protocol = build_protocol(cfg.protocol)
    model = build_model(cfg.model)
    trainer = Trainer(
        epochs=int(cfg.trainer.epochs),
        select=protocol.select,
        mode=protocol.mode,
        patience=None if cfg.trainer.patience is None else int(cfg.trainer.patience),
    )

    tracking = bool(cfg.mlflow.enabled)
    if tracking:
        from ncae_exp.tracking.mlflow_tracker import check_store, resolve_tracking_uri

        uri = resolve_tracking_uri(str(cfg.mlflow.tracking_uri))
        if parent_run_id and parent_tracking_uri and parent_tracking_uri != uri:
            # e.g. a worker whose MLFLOW_TRACKING_URI (or working directory) differs
            log.info("logging to the sweep parent's store %s (this job's mlflow.tracking_uri gives %s)",
                     parent_tracking_uri, uri)
            uri = parent_tracking_uri
            cfg.mlflow.tracking_uri = uri  # so the logged params and config.yaml say where the run is
        check_store(uri)
    resume_id = str(cfg.resume) if cfg.get("resume") else None
    if resume_id:
        output_dir = _resume_folder(resume_id, uri if tracking else None, parent_run_id)
    plan = plan_resume(cfg, output_dir, resume_id)
    if plan.finished:
        log.info("run %s in %s has finished already: nothing to do (results.json has its results)",
                 plan.run_id or "", output_dir)
        return plan.final
    run_id = plan.run_id if tracking and plan.run_id and run_exists(uri, plan.run_id) else None
    if plan.resuming:
        log.info("resuming the run in %s%s", output_dir, f" (MLflow run {run_id})" if run_id else "")

    data_dir = Path(str(cfg.paths.data_dir))
    data = load_dataset(cfg.dataset, data_dir)
    log.info("dataset %s: %s", data.name, ", ".join(f"{k}={v:g}" for k, v in data.stats().items()))

    tags = {"protocol": protocol.name, "dataset": data.name, "model": str(cfg.model.name), "device": device,
            "ncae.output_dir": str(output_dir.resolve())}  # the job's folder (.hydra/overrides.yaml, results)
    (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))

    record = RunRecord(output_dir)

    def body(tracker: Tracker) -> dict[str, float]:
        record.update(status="running", mlflow_run_id=run_id_of(tracker), error=None, tags=tags)
        fit = None
        try:
            if plan.resuming and not run_id:  # a resumed run in a new MLflow run: its epochs so far
                for h in record.data.get("history", []):
                    tracker.log_metrics({k: v for k, v in h.items() if k != "step"}, step=int(h["step"]))
            tracker.set_tags(tags)
            tracker.log_params(resolved_params(cfg))
            tracker.log_params({f"data.{k}": v for k, v in data.stats().items()})
            prepared = protocol.split(data, cfg.split, int(cfg.seed), data_dir)
            tracker.log_params({f"split.{k}": v for k, v in prepared.stats.items()})
            log.info("split: %s", ", ".join(f"{k}={v}" for k, v in prepared.stats.items()))
            model.prepare(prepared.train, prepared.rating_scale)
            tracker.log_params({f"model_info.{k}": v for k, v in model.describe().items()})
            fit = trainer.fit(model, protocol.evaluate, tracker, checkpoint=Checkpoint(output_dir / "checkpoint"),
                              on_epoch=lambda f: record.update(final=protocol.selected(f), history=f.history))
            fitted, fitted_on = model, prepared.train
            if retrain:
                stage = retrain_stage(unresolved, fit.best_epoch, data, data_dir, tracker, output_dir, compare_cfg)
                final = {**protocol.selected(fit), **stage.summary}
                fitted, fitted_on = stage.main.first_model, stage.main.first_train  # the base seed's repeat
            else:
                final = protocol.final(model, fit, tracker, output_dir)
            # The selected model's value comes last in the val series (step = epochs_run + 1),
            # so the runs table shows the best epoch's val_rmse, not the last epoch's.
            tracker.log_metrics(final, step=fit.epochs_run + 1)
            _write_outputs(output_dir, cfg, tags, final, fit, fitted, tracker, record, "finished", data, fitted_on)
        except KeyboardInterrupt:
            partial = fit or trainer.interrupted  # the model holds the best epoch's parameters
            if partial is None:
                record.update(status="killed")
                raise
            where = f"{output_dir}" + (f" (MLflow run {run_id_of(tracker)})" if run_id_of(tracker) else "")
            log.warning("interrupted: saving the best model so far (epoch %d) and the results in %s",
                        partial.best_epoch, where)
            _write_outputs(output_dir, cfg, tags, protocol.selected(partial), partial, model, tracker, record, "killed",
                           data, prepared.train)
            raise
        except BaseException as err:
            record.update(status="failed", error=error_line(err))
            raise
        return final

    title = f"{cfg.model.name} on {data.name} ({protocol.name})"
    if not tracking:
        final = body(MemoryTracker())
        _summarise(title, final, output_dir, protocol, job_label)
        return final
    from ncae_exp.tracking.dashboard import describe_experiment
    from ncae_exp.tracking.mlflow_tracker import mlflow_run

    run_name = cfg.mlflow.run_name or default_run_name
    with mlflow_run(uri, str(cfg.mlflow.experiment_name), run_name, tags, parent_run_id, run_id) as tracker:
        experiment_id = tracker.experiment_id
        describe_experiment(tracker.client, experiment_id, protocol.name, protocol.select, protocol.mode,
                            getattr(protocol, "cutoffs", None))
        final = body(tracker)
    _summarise(title, final, output_dir, protocol, job_label, uri, experiment_id, tracker.run_id)
    return final


def _summarise(title: str, final: dict[str, float], output_dir: Path, protocol, job_label: str | None,
               uri: str | None = None, experiment_id: str | None = None, run_id: str | None = None) -> None:
    """The run's summary on the console (and in its log file): a table, or a sweep job's line."""
    from ncae_exp.tracking.run_summary import job_line, run_link, summary_table, where_in_mlflow

    if job_label:
        where = run_link(uri, experiment_id, run_id) or (f"MLflow run {run_id}" if run_id else None)
        log.info(job_line(job_label, final, protocol.select, where))
        return
    logged = f", logged to MLflow run {run_id}" if run_id else ""
    log.info("%s", summary_table(f"{title} finished{logged}:", final, output_dir, protocol.select, protocol.mode,
                                 where_in_mlflow(uri, experiment_id, run_id)))


@dataclass
class RetrainStage:
    main: Candidate
    compare: Candidate | None
    summary: dict[str, float]


def retrain_stage(cfg: DictConfig, epochs: int, data, data_dir: Path, tracker: Tracker, output_dir: Path,
                  compare_cfg: DictConfig | None = None) -> RetrainStage:
    """Retrain ``cfg`` (unresolved) for ``epochs`` on training ∪ validation over ``repeats``
    seeds, and ``compare_cfg`` (selected first, on the base seed) on the same seeds; log the
    per-seed runs as children of ``tracker``'s run and the summary on it."""
    from ncae_exp.protocols.selection import Candidate, repeat_seeds, repeats_report, run_repeats, select_epochs, summarise

    base = resolve(cfg)
    seeds = repeat_seeds(int(base.seed), int(base.repeats))
    tags = {"protocol": str(base.protocol.name), "dataset": str(base.dataset.name)}
    main = Candidate(str(base.model.name), lambda s: with_seed(cfg, s), int(epochs))
    compare = None
    if compare_cfg is not None:
        other = resolve(compare_cfg)
        label = str(other.model.name) + (" (compared)" if other.model.name == base.model.name else "")
        compare_epochs = select_epochs(label, other, data, data_dir, tracker, output_dir, tags)
        compare = Candidate(label, lambda s: with_seed(compare_cfg, s), compare_epochs)
    log.info("retraining on training + validation: %d epochs, seeds %s", epochs, seeds)
    run_repeats([c for c in (main, compare) if c is not None], seeds, data, data_dir, tracker, output_dir, tags)
    summary = summarise(main, compare)
    tracker.log_params({"retrain.seeds": seeds, "retrain.compare_to": compare.label if compare else None})
    for path in repeats_report(main, compare, summary, output_dir):
        tracker.log_artifact(path)
    return RetrainStage(main, compare, summary)


def run_id_of(tracker: Tracker) -> str | None:
    return getattr(tracker, "run_id", None)


def _resume_folder(run_id: str, uri: str | None, parent_run_id: str | None) -> Path:
    """The output folder of the run ``resume=`` names (its ``ncae.output_dir`` tag)."""
    from ncae_exp.tracking.runs import run_folder

    if parent_run_id:
        raise ConfigError("resume=<run id> resumes one run; a sweep resumes when rerun with its hydra.sweep.dir")
    if uri is None:
        raise ConfigError("resume=<run id> finds the run in MLflow: use mlflow.enabled=true, or rerun the "
                          "run's command with its output folder (hydra.run.dir=…)")
    return run_folder(uri, run_id)


def save_and_log_model(folder: Path, model: Recommender, cfg: DictConfig, data, train, tracker: Tracker,
                       register: bool = True) -> None:
    """The selected model as an MLflow model (``models/mlflow_model.py``: weights, config, ids,
    the training matrix; pyfunc for ncae-recommend, ``mlflow models serve``, the registry) in
    ``folder``, logged as the run's ``model/``; registered when ``model.register`` is set."""
    from ncae_exp.models.mlflow_model import default_register_name, write_mlflow_model

    seconds = write_mlflow_model(folder, model, cfg, data, train)
    start = time.perf_counter()
    tracker.log_artifacts(folder, "model")
    tracker.log_metrics({"model_save_seconds": seconds, "model_log_seconds": time.perf_counter() - start})
    if register and cfg.model.get("register"):
        tracker.register_model("model", str(cfg.model.get("register_name") or default_register_name(cfg, data.name)))


def _write_outputs(output_dir: Path, cfg: DictConfig, tags: dict, final: dict, fit: FitResult,
                   model: Recommender, tracker: Tracker, record: RunRecord, status: str, data=None,
                   train=None) -> None:
    from ncae_exp.tracking.plots import learning_curves, metrics_vs_cutoff

    record.update(final=final, tags=tags, history=fit.history, best_epoch=fit.best_epoch,
                  versions={"ncae_exp": ncae_exp.__version__, "python": platform.python_version()})
    title = f"{cfg.model.name} on {tags['dataset']} ({tags['protocol']})"
    plot = learning_curves(fit.history, output_dir / "learning_curves.png", best_epoch=fit.best_epoch, title=title)
    at_m = metrics_vs_cutoff(final, output_dir / "metrics_vs_m.png", title=title)
    for path in (output_dir / "config.yaml", plot, at_m):
        if path is not None:
            tracker.log_artifact(path)
    save_and_log_model(output_dir / "model", model, cfg, data, train, tracker, register=status == "finished")
    # The status last: a run killed while saving is not taken for finished by a rerun.
    record.update(status=status)
    tracker.log_artifact(record.path)
