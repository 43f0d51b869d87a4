"""The paper's pre-training report: Table 2 and Fig. 5 together, written and logged.

Composes :mod:`ncae_exp.reports.table2` and :mod:`ncae_exp.reports.fig5` on runs read by
:mod:`ncae_exp.reports.runs` (from a sweep ``ncae-run +experiment=table2`` /
``+experiment=fig5``: the children of its parent run, or every finished NCAE run of an
experiment, optionally filtered)::

    client = open_store("sqlite:///mlflow.db")
    runs = collect_runs(client, parent_run_id="…")          # or experiment="ncae-explicit"
    log_report(client, runs, write_report(runs, "reports"))  # artifacts on the sweep's parent
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ncae_exp.reports.fig5 import FIG5_FILE, fig5_markdown, fig5_png
from ncae_exp.reports.runs import RunRecord, log_report_files
from ncae_exp.reports.table2 import table2_markdown

TABLE2_FILE = "table2.md"
REPORT_KIND = "pretrain"


def report_markdown(runs: Iterable[RunRecord], *, image: str | None = FIG5_FILE) -> str:
    """Table 2 followed by the Fig. 5 section."""
    runs = list(runs)
    return table2_markdown(runs) + "\n" + fig5_markdown(runs, image=image)


def write_report(runs: Iterable[RunRecord], out_dir: str | Path) -> list[Path]:
    """Write ``table2.md`` (Table 2 + the Fig. 5 notes) and ``fig5.png`` into ``out_dir``."""
    runs = list(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / TABLE2_FILE
    md.write_text(report_markdown(runs, image=FIG5_FILE), encoding="utf-8")
    png = fig5_png(runs, out / FIG5_FILE)
    return [md, png]


def log_report(client, runs: Sequence[RunRecord], paths: Iterable[str | Path], parent_run_id: str | None = None) -> str:
    """Log the report files to the sweep's parent run (``parent_run_id``, or the one parent
    all runs share), else to a new run ``report`` (tags ``ncae.report=true``,
    ``ncae.report_kind=pretrain``) in the runs' experiment. Returns that run's id."""
    return log_report_files(client, runs, paths, kind=REPORT_KIND, parent_run_id=parent_run_id)
