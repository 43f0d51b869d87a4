"""The end-of-sweep table on the console: every job, best first by the validation objective.

Read from the sweep's folder, not from MLflow, so it also works with ``mlflow.enabled=false``
and counts jobs that never created a run: each job's folder (``<sweep dir>/<job number>/``)
has its overrides (``.hydra/overrides.yaml``) and its record (``results.json``: status and
final metrics); a job refused with a user error has ``failed_jobs/<number>.json``. The order
is by ``protocol.select`` in the direction ``protocol.mode`` (RMSE minimised, HR maximised);
jobs without that value (failed, killed, not run) come last, by job number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ncae_exp.tracking.run_summary import align, fmt_value, mean_std
from ncae_exp.tracking.sweep import child_run_name
from ncae_exp.tracking.sweep_failures import failed_jobs

_ERROR_WIDTH = 70  # a failed job's reason, cut to keep the table readable


@dataclass
class JobRow:
    num: int
    name: str  # the job's swept overrides ("model.l2=0.01")
    status: str  # finished, failed, killed, running, not run
    final: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    run_id: str | None = None


def _job_num(folder: Path) -> int | None:
    if folder.name.isdigit():
        return int(folder.name)
    try:
        import yaml

        return int(yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["num"])
    except Exception:  # noqa: BLE001 - not a job folder (report/, retrain_best/)
        return None


def collect_jobs(sweep_dir: str | Path, swept: list[str] | None = None) -> list[JobRow]:
    """One row per job of the sweep in ``sweep_dir`` (see the module's docstring)."""
    import yaml

    sweep_dir = Path(str(sweep_dir))
    failures = {int(r["num"]): r for r in failed_jobs(sweep_dir) if str(r.get("num", "")).isdigit()}
    rows: dict[int, JobRow] = {}
    folders = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml"))
    for folder in folders:
        num = _job_num(folder)
        if num is None:
            continue
        try:
            overrides = [str(o) for o in yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []]
        except (OSError, yaml.YAMLError):
            overrides = []
        name = child_run_name(overrides, swept) if swept else None
        record = _read(folder / "results.json")
        status = str(record.get("status", "not run"))
        rows[num] = JobRow(num, name or " ".join(overrides), status, dict(record.get("final") or {}),
                           record.get("error"), record.get("mlflow_run_id"))
    for num, failure in failures.items():
        row = rows.get(num)
        if row is None or row.status != "finished":
            label = str(failure.get("job", f"#{num}")).removeprefix(f"#{num}").strip()
            rows[num] = JobRow(num, row.name if row else label, "failed", {}, str(failure.get("error")))
    return [rows[n] for n in sorted(rows)]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {"status": "unreadable results.json"}


def sort_jobs(rows: list[JobRow], select: str, mode: str) -> list[JobRow]:
    """Best first by ``select`` (``mode`` min or max); jobs without it last, by number."""
    def value(row: JobRow) -> float | None:
        v = row.final.get(select)
        return None if row.status != "finished" or v is None or math.isnan(v) else float(v)

    scored = sorted((r for r in rows if value(r) is not None),
                    key=lambda r: (value(r) if mode == "min" else -value(r), r.num))
    return scored + sorted((r for r in rows if value(r) is None), key=lambda r: r.num)


def _tests(rows: list[JobRow]) -> list[str]:
    """The test columns: test_rmse, or test HR/NDCG@100 (whichever the jobs have)."""
    keys = {k for r in rows for k in r.final}
    return [k for k in ("test_rmse", "test_hr_at_100", "test_ndcg_at_100") if k in keys]


def sweep_table(rows: list[JobRow], select: str, mode: str, where: list[str] | None = None) -> str:
    """The sweep's summary: a count line, then the jobs best first, then ``where`` (lines
    saying where the parent run is)."""
    ordered = sort_jobs(rows, select, mode)
    tests = _tests(rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    jobs = "1 job" if len(rows) == 1 else f"{len(rows)} jobs"
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda c: (c[0] != "finished", c[0])))
    title = f"sweep summary: {jobs} ({states}), best first by {select} ({mode}imised)"
    table = [["job", "overrides", select, *tests, "best epoch", "status"]]
    for r in ordered:
        cells = [f"#{r.num}", r.name or "-", mean_std(r.final, select) or "-",
                 *[mean_std(r.final, k) or "-" for k in tests],
                 fmt_value("best_epoch", r.final["best_epoch"]) if "best_epoch" in r.final else "-"]
        status = r.status
        if r.error:
            error = " ".join(str(r.error).split())
            status += ": " + (error if len(error) <= _ERROR_WIDTH else error[: _ERROR_WIDTH - 1] + "…")
        table.append([*cells, status])
    return "\n".join([title, *align(table), *[f"  {w}" for w in where or []]])
