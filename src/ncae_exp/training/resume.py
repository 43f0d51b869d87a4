"""What a run's output folder says about it, so that rerunning the same job resumes it.

``results.json`` is the run's record, rewritten atomically after every epoch (a dead
tracking server or a ``kill -9`` costs no result): ``status`` (``running``, ``killed``,
``failed``, ``finished``), ``mlflow_run_id``, ``final`` (so far: the best epoch's validation
metrics; at the end the test metrics too), ``history`` and, for a failed run, ``error``.
Beside it, ``config.yaml`` (the resolved config) and ``checkpoint/`` (training/checkpoint.py).

A rerun in the same folder (``hydra.run.dir``; a sweep's job folder) or with
``resume=<run id>`` (the folder is found from the run's ``ncae.output_dir`` tag):
a finished run is not run again; otherwise training goes on from the last checkpoint in the
same MLflow run. Settings that change the numbers must be the same as the run's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ncae_exp.atomic import write_json_atomically
from ncae_exp.errors import ConfigError

log = logging.getLogger(__name__)

RESULTS, CONFIG = "results.json", "config.yaml"
# Keys a rerun may change: where things are stored and how to reach them, the device and
# GPU op determinism (same numbers on CPU), the resume switch itself, and whether the model is
# registered (model.register, model.register_name).
_FREE = ("resume", "mlflow.", "paths.", "trainer.device", "trainer.deterministic", "model.register")


class RunRecord:
    """``<output_dir>/results.json``, updated field by field (each update a whole, atomic file)."""

    def __init__(self, output_dir: Path):
        self.path = Path(output_dir) / RESULTS
        self.data: dict[str, Any] = read_record(output_dir) or {}

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        # follows the umask, as open() would: the record holds no secret
        write_json_atomically(self.path, self.data, private=False)


def read_record(output_dir: Path) -> dict[str, Any] | None:
    path = Path(output_dir) / RESULTS
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ConfigError(f"{path} is not readable JSON ({err}); move it away to start this run over") from err


@dataclass
class ResumePlan:
    run_id: str | None  # the MLflow run to go on with (None: a new run)
    finished: bool  # nothing to do: the run ended FINISHED
    final: dict[str, float]  # a finished run's final metrics
    resuming: bool  # the folder holds an earlier attempt


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def config_differences(saved: DictConfig, current: DictConfig) -> list[str]:
    """``key: saved → current`` for every setting that differs (and is not free to differ)."""
    old = _flat(OmegaConf.to_container(saved, resolve=True))
    new = _flat(OmegaConf.to_container(current, resolve=True))
    keys = sorted(k for k in set(old) | set(new) if not k.startswith(_FREE))
    return [f"{k}: {old.get(k, '(none)')} → {new.get(k, '(none)')}" for k in keys if old.get(k) != new.get(k)]


def plan_resume(cfg: DictConfig, output_dir: Path, run_id: str | None = None) -> ResumePlan:
    """What this job does with its output folder: start, resume or nothing (finished).
    ``run_id``: the run named by ``resume=``."""
    output_dir = Path(output_dir)
    record = read_record(output_dir)
    saved_cfg = output_dir / CONFIG
    if record is None and not saved_cfg.is_file() and not (output_dir / "checkpoint").is_dir():
        return ResumePlan(run_id, False, {}, resuming=run_id is not None)
    if saved_cfg.is_file():
        diff = config_differences(OmegaConf.load(saved_cfg), cfg)
        if diff:
            more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
            raise ConfigError(
                f"{output_dir} holds a run with other settings: {'; '.join(diff[:3])}{more}. To resume it, rerun "
                f"it with its settings ({saved_cfg}); for a new run, use another output folder (hydra.run.dir=…)")
    record = record or {}
    recorded = record.get("mlflow_run_id")
    if run_id and recorded and recorded != run_id:
        raise ConfigError(f"resume={run_id}, but {output_dir} holds MLflow run {recorded}")
    if record.get("status") == "finished":
        return ResumePlan(recorded or run_id, True, dict(record.get("final") or {}), resuming=True)
    return ResumePlan(recorded or run_id, False, {}, resuming=True)
