"""``ncae-run``: the Hydra entry point. Thin on purpose — the work is in :mod:`ncae_exp.pipeline`.

User errors (bad config, bad data, unreachable store) end with one line on stderr,
``ncae-run: error: …``, and exit status 2; set HYDRA_FULL_ERROR=1 for the full traceback.
The config is checked first (:mod:`ncae_exp.config`), before any data or MLflow run. In a
sweep, a job's mistake is reported and the other jobs still run; the sweep's end lists the
failed jobs (tracking/sweep_failures.py) and exits 2.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from ncae_exp.config import validate_config
    from ncae_exp.errors import ConfigError, NcaeError
    from ncae_exp.tracking.sweep import check_direction, child_run_name, find_parent

    hydra_cfg = HydraConfig.get()
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    whole_sweep = True  # a mistake in the sweep's own settings ends it; one in a job's, only the job
    try:
        # An optimising sweeper's trials only select; the best one is retrained at the end.
        check_direction(hydra_cfg.sweeper, cfg.protocol)
        select_only = sweep and hydra_cfg.sweeper.get("direction") is not None
        if select_only and cfg.get("retrain") and not cfg.mlflow.enabled:
            raise ConfigError("retraining a search's best trial finds it in MLflow: use mlflow.enabled=true "
                              "(or retrain=false)")
        whole_sweep = False
        if sweep:
            from ncae_exp.tracking.sweep_failures import clear_failure

            clear_failure(hydra_cfg)
        # Every key and value checked before any work: no data read, no MLflow run created.
        validate_config(cfg)
        compare_cfg = compose_compare(cfg, hydra_cfg) if cfg.get("compare_to") and cfg.get("retrain") else None
        from ncae_exp.pipeline import run

        job_name = job_label = None
        if sweep:
            from ncae_exp.tracking.sweep_progress import job_label as sweep_job_label

            # The sweep's parent run: inherited in the environment, or (a job on another
            # machine) read from <hydra.sweep.dir>/mlflow_parent.json.
            parent = find_parent(hydra_cfg.sweep.dir)
            # Name each child run after what differs between the jobs ("model=ease,seed=1").
            keys = parent.swept_keys if parent else None
            job_name = child_run_name(list(hydra_cfg.overrides.task), keys) or hydra_cfg.job.override_dirname
            job_label = sweep_job_label(int(hydra_cfg.job.num), job_name)
        else:
            from ncae_exp.tracking.dashboard import readable_run_name

            parent = find_parent()
            # "ncae ml-100k hidden=[500] l2=0.01": what the run is, readable in the runs table
            job_name = readable_run_name(str(cfg.model.name), str(cfg.dataset.name),
                                         [str(o) for o in hydra_cfg.overrides.task])
        final = run(cfg, hydra_cfg.runtime.output_dir, default_run_name=job_name or None,
                    compare_cfg=compare_cfg, select_only=select_only,
                    parent_run_id=parent.run_id if parent else None,
                    parent_tracking_uri=parent.tracking_uri if parent else None, job_label=job_label)
    except NcaeError as err:
        if os.environ.get("NCAE_TRACEBACK") == "1":
            raise
        if sweep and not whole_sweep:
            # One bad job does not stop the sweep: it is recorded, the next job runs, and the
            # sweep's end lists the failures on the parent run and exits non-zero.
            from ncae_exp.tracking.sweep_failures import record_failure

            label = record_failure(hydra_cfg, err, child_run_name([str(o) for o in hydra_cfg.overrides.task]))
            print(f"ncae-run: error: job {label}: {err}", file=sys.stderr)
            return None
        # Exit here rather than let Hydra report the job failure in several lines.
        print(f"ncae-run: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    objective = cfg.get("objective")  # what an Optuna sweep minimises/maximises
    return final.get(str(objective)) if objective else None


def compose_compare(cfg: DictConfig, hydra_cfg) -> DictConfig:
    """The composed config of ``compare_to`` (this command's overrides for everything else)."""
    from ncae_exp.config import validate_config
    from ncae_exp.config_utils import compare_overrides, compose_config

    overrides = compare_overrides(list(hydra_cfg.overrides.task), str(cfg.compare_to), cfg.get("compare_overrides"))
    compare_cfg = compose_config(hydra_cfg.job.config_name, overrides, f"compare_to={cfg.compare_to}")
    validate_config(compare_cfg, f"compare_to={cfg.compare_to}")
    return compare_cfg


def one_line(err: BaseException) -> str:
    """A single line from a Hydra / OmegaConf / ncae error and its cause."""
    from ncae_exp.config_utils import unknown_option

    unknown = unknown_option(err)
    if unknown:
        return unknown
    parts = [" ".join(str(err).split())]
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        parts.append(" ".join(str(cause).split()))
    return ": ".join(p for p in parts if p) or type(err).__name__


def main() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ncae_exp.errors import NcaeError
    from ncae_exp.tracking.interrupts import Terminated, exit_status, install_sigterm_handler
    from ncae_exp.tracking.runs import error_line
    from ncae_exp.tracking.sweep import close_parent

    install_sigterm_handler()  # SIGTERM: the run (a sweep's parent too) ends KILLED, as on Ctrl-C
    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    if show_traceback:
        os.environ["NCAE_TRACEBACK"] = "1"
    # Let exceptions reach us instead of Hydra's multi-line report; we print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _app()
    except (NcaeError, HydraException, OmegaConfBaseException) as err:
        close_parent("FAILED", one_line(err))
        if show_traceback:
            raise
        print(f"ncae-run: error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            close_parent("FAILED")
        raise
    except KeyboardInterrupt as err:
        close_parent("KILLED")
        print(f"ncae-run: interrupted ({'SIGTERM' if isinstance(err, Terminated) else 'Ctrl-C'}): the run ended "
              "KILLED; to resume it, rerun the command with the same output folder (hydra.run.dir / "
              "hydra.sweep.dir) or add resume=<run id>", file=sys.stderr)
        sys.exit(exit_status(err))
    except Exception as err:  # a launcher's or a library's failure, e.g. no `srun` for hydra/launcher=slurm
        close_parent("FAILED", error_line(err))
        if show_traceback:
            raise
        print(f"ncae-run: error: {type(err).__name__}: {one_line(err)} (HYDRA_FULL_ERROR=1 shows the traceback)",
              file=sys.stderr)
        sys.exit(1)
    except BaseException:
        close_parent("FAILED")
        raise


if __name__ == "__main__":
    main()
