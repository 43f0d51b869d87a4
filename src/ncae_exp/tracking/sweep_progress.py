"""A sweep's progress on the console: ``job 3/12`` (a Hydra callback, conf/config.yaml).

When the sweep starts its number of jobs is counted (a grid's product, or an Optuna search's
``n_trials``) and put in the environment, so each job — in this process or a launcher's —
can call itself ``job 3/12`` in its summary line. On a terminal, with the default launcher
(jobs run one after another in this process), a bar over the jobs shows the best validation
value so far; each job's epoch bar sits under it. Elsewhere, the jobs' lines are the output.
Jobs in other processes (joblib) never draw bars: several processes would garble them.
"""

from __future__ import annotations

import math
import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ncae_exp.tracking.console import SWEEP_PID_ENV, bars_enabled, logs_above_bars, progress_bar

JOBS_ENV = "NCAE_SWEEP_JOBS"  # the sweep's number of jobs ("" when unknown)


def count_jobs(config: DictConfig) -> int | None:
    """The sweep's number of jobs: ``hydra.sweeper.n_trials`` for a search, else the size of
    the grid of its command line and ``hydra.sweeper.params`` (as Hydra's basic sweeper
    expands it); None when it cannot be told."""
    sweeper = config.hydra.sweeper
    if sweeper.get("n_trials") is not None:
        return int(sweeper.n_trials)
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
        overrides = OverridesParser.create().parse_overrides(params + [str(o) for o in config.hydra.overrides.task])
        return sum(len(batch) for batch in BasicSweeper.split_arguments(overrides, None))
    except Exception:  # noqa: BLE001 - a glob() sweep, another sweeper: the count is only cosmetic
        return None


def job_label(num: int, name: str | None = None) -> str:
    """``job 3/12 (#2 model.l2=0.01)``: the job's place in the sweep (1-based) and Hydra's job
    number with its swept overrides (the number of its folder and of failure messages)."""
    total = os.environ.get(JOBS_ENV) or "?"
    inner = f"#{num} {name}".strip() if name else f"#{num}"
    return f"job {int(num) + 1}/{total} ({inner})"


class _Sweep:
    """This process's sweep bar and what it shows."""

    def __init__(self) -> None:
        self.bar = None
        self.logs = None
        self.best: float | None = None
        self.mode = "min"


_SWEEP = _Sweep()


class SweepProgressCallback(Callback):
    """Registered last under hydra.callbacks, so its end (the bar closing) comes before the
    other callbacks' ends print the sweep's summary."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        total = count_jobs(config)
        os.environ[JOBS_ENV] = "" if total is None else str(total)
        os.environ[SWEEP_PID_ENV] = str(os.getpid())  # jobs in other processes draw no bars
        _SWEEP.best, _SWEEP.mode = None, str(config.protocol.mode)
        if bars_enabled():
            _SWEEP.bar = progress_bar(total, desc="sweep", unit="job")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _SWEEP.bar is None:
            return
        # Hydra set up this job's log handlers just before: write them above the bars
        _SWEEP.logs = logs_above_bars(True)
        _SWEEP.logs.__enter__()
        _SWEEP.bar.set_description(f"sweep, job {int(config.hydra.job.num) + 1}", refresh=True)

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if _SWEEP.bar is None:
            return
        value = getattr(job_return, "_return_value", None)  # the job's validation objective (cli.py)
        if isinstance(value, (int, float)) and not math.isnan(value):
            better = _SWEEP.best is None or (value < _SWEEP.best if _SWEEP.mode == "min" else value > _SWEEP.best)
            _SWEEP.best = value if better else _SWEEP.best
        postfix = "" if _SWEEP.best is None else f"best {config.protocol.select} {_SWEEP.best:.4f}"
        _SWEEP.bar.update(1)
        _SWEEP.bar.set_postfix_str(postfix, refresh=True)
        if _SWEEP.logs is not None:
            _SWEEP.logs.__exit__(None, None, None)
            _SWEEP.logs = None
        _SWEEP.bar.clear()  # the launcher's next line ("#3 : …") is printed without our handler

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if _SWEEP.bar is not None:
            _SWEEP.bar.refresh()
            _SWEEP.bar.close()
            _SWEEP.bar = None
        os.environ.pop(SWEEP_PID_ENV, None)
        os.environ.pop(JOBS_ENV, None)
