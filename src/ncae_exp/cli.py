"""``ncae-run``: the Hydra entry point. Thin on purpose — the work is in :mod:`ncae_exp.pipeline`.

User errors (bad config, bad data, unreachable store) end with one line on stderr,
``ncae-run: error: …``, and exit status 2; set HYDRA_FULL_ERROR=1 for the full traceback.
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
    from ncae_exp.errors import NcaeError
    from ncae_exp.pipeline import run

    try:
        from ncae_exp.tracking.sweep import check_direction, child_run_name

        hydra_cfg = HydraConfig.get()
        check_direction(hydra_cfg.sweeper, cfg.protocol)
        # In a sweep, name each child run after what differs between the jobs ("model=ease,seed=1").
        job_name = None
        if hydra_cfg.mode == RunMode.MULTIRUN:
            job_name = child_run_name(list(hydra_cfg.overrides.task)) or hydra_cfg.job.override_dirname
        final = run(cfg, hydra_cfg.runtime.output_dir, default_run_name=job_name or None)
    except NcaeError as err:
        if os.environ.get("NCAE_TRACEBACK") == "1":
            raise
        # Exit here rather than let Hydra report the job failure in several lines.
        print(f"ncae-run: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    objective = cfg.get("objective")  # what an Optuna sweep minimises/maximises
    return final.get(str(objective)) if objective else None


def one_line(err: BaseException) -> str:
    """A single line from a Hydra / OmegaConf / ncae error and its cause."""
    missing = getattr(err, "missing_cfg_file", None)
    options = getattr(err, "options", None)
    if missing and options is not None and "/" in str(missing):
        group, name = str(missing).rsplit("/", 1)
        return f"unknown {group} {name!r}; choose one of: {', '.join(sorted(options))}"
    parts = [" ".join(str(err).split())]
    cause = err.__cause__
    if cause is not None and str(cause).strip():
        parts.append(" ".join(str(cause).split()))
    return ": ".join(p for p in parts if p) or type(err).__name__


def main() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ncae_exp.errors import NcaeError
    from ncae_exp.tracking.sweep import close_parent

    show_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    if show_traceback:
        os.environ["NCAE_TRACEBACK"] = "1"
    # Let exceptions reach us instead of Hydra's multi-line report; we print one line.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        _app()
    except (NcaeError, HydraException, OmegaConfBaseException) as err:
        close_parent("FAILED")
        if show_traceback:
            raise
        print(f"ncae-run: error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            close_parent("FAILED")
        raise
    except KeyboardInterrupt:
        close_parent("KILLED")
        print("ncae-run: interrupted", file=sys.stderr)
        sys.exit(130)
    except BaseException:
        close_parent("FAILED")
        raise


if __name__ == "__main__":
    main()
