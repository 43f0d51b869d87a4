"""A sweep's failed jobs. One bad job does not stop a sweep: a job that ends with a user
error (an :class:`~ncae_exp.errors.NcaeError`, e.g. ``model.dropout=1.5``, refused before
any run exists) writes ``<hydra.sweep.dir>/failed_jobs/<job number>.json`` and returns, and
the next job runs. When the sweep ends, the parent run lists them (tag ``ncae.failed_jobs``,
metric ``n_failed_jobs``, status FAILED), the last line of output names them, and the
command exits with status 2. A file, not the environment, so that jobs in other processes
and on other machines (joblib, Slurm) are counted too.
"""

from __future__ import annotations

import json
from pathlib import Path

from ncae_exp.atomic import write_json_atomically

FAILED_DIR = "failed_jobs"  # in hydra.sweep.dir
FAILED_TAG = "ncae.failed_jobs"


def _path(sweep_dir: str | Path, num: int) -> Path:
    return Path(str(sweep_dir)) / FAILED_DIR / f"{int(num)}.json"


def clear_failure(hydra_cfg) -> None:
    """Forget an earlier failure of this job (the same sweep folder run again)."""
    _path(hydra_cfg.sweep.dir, hydra_cfg.job.num).unlink(missing_ok=True)


def record_failure(hydra_cfg, error: BaseException, name: str | None = None) -> str:
    """Write this job's failure (atomically) for the sweep's end; returns the job's label,
    ``#3 model.dropout=1.5`` (its number and ``name``, what differs between the jobs, else
    all of its overrides)."""
    label = f"#{hydra_cfg.job.num} {name or hydra_cfg.job.override_dirname}".strip()
    path = _path(hydra_cfg.sweep.dir, hydra_cfg.job.num)
    record = {"num": int(hydra_cfg.job.num), "job": label, "error": str(error),
              "overrides": [str(o) for o in hydra_cfg.overrides.task]}
    write_json_atomically(path, record, private=True, suffix=".part")  # owner-only, as it always was
    return label


def failed_jobs(sweep_dir: str | Path) -> list[dict]:
    """The sweep's failure records, by job number."""
    folder = Path(str(sweep_dir)) / FAILED_DIR
    records = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            records.append({"num": path.stem, "job": f"#{path.stem}", "error": f"unreadable record {path}"})
    return sorted(records, key=lambda r: int(r["num"]) if str(r["num"]).isdigit() else -1)


def summary(failures: list[dict], limit: int = 5000) -> str:
    """``#0 model.dropout=1.5: model.dropout must be in [0, 1), got 1.5; #2 …`` (cut to
    ``limit`` characters, MLflow's limit for a tag)."""
    text = "; ".join(f"{r['job']}: {r['error']}" for r in failures)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_failures(failures: list[dict]) -> None:
    """The sweep's last line when jobs failed, then exit status 2 (nothing when none did)."""
    if not failures:
        return
    import sys

    jobs = "1 job" if len(failures) == 1 else f"{len(failures)} jobs"
    print(f"ncae-run: error: {jobs} of the sweep failed: {summary(failures, 2000)}", file=sys.stderr)
    raise SystemExit(2)
