"""``ncae-report``: compare the groups of a sweep's child runs (mean ± std over seeds, paired
t-tests against a baseline), from an MLflow store.

    ncae-run -m protocol=implicit dataset=synthetic model=pop,ease seed=0,1,2
    ncae-report --parent-run-id <the sweep's parent run id>

Writes comparison.md, comparison.csv, comparison.json and a figure into --out, prints the
tables, and logs the files to the parent run under report/ unless --no-log. Errors: one
line on stderr (``ncae-report: error: …``), exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

PROG = "ncae-report"

EPILOG = """\
groups: a sweep's children are grouped by their swept overrides (their run names, e.g.
model=ease,seed=1) without the seed; children without such names by the params that differ
between them. Children tagged ncae.stage=retrain are grouped by model. Only FINISHED
children count; the others are listed in the report.

baseline: the best group by the validation metric the runs select on (protocol.select,
protocol.mode: val_rmse min, val_hr_at_100 max), or --baseline LABEL (a group's label, or
a value naming one group, e.g. ease for model=ease). Test metrics never choose it.

datasets: children on several datasets (tag dataset, e.g. +experiment=fig9) give one section
per dataset: a baseline chosen (or --baseline matched) on each dataset, t-tests only between
groups of one dataset, a dataset column in the CSV and one figure per dataset.

examples:
  ncae-report --parent-run-id 6322172ecbb0401e8b90ac835bc875e3
  ncae-report --parent-run-id <id> --baseline model=pop --out reports/pop --no-log
  MLFLOW_TRACKING_URI=http://127.0.0.1:5000 ncae-report --parent-run-id <id>
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0].replace("``", ""),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--parent-run-id", required=True, metavar="ID",
                        help="the sweep's parent run (or any run with child runs)")
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db, as ncae-run)",
    )
    parser.add_argument("--out", metavar="DIR",
                        help="where the report files go (default: reports/comparison-<first 8 characters of the id>)")
    parser.add_argument("--baseline", metavar="LABEL", help="the group the others are tested against")
    parser.add_argument("--no-log", action="store_true", help="only write the files; log nothing to MLflow")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: warning: %(message)s")
    for noisy in ("mlflow", "alembic", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from mlflow.exceptions import MlflowException

    from ncae_exp.errors import NcaeError
    from ncae_exp.reports.compare import ARTIFACT_DIR, _report, comparison_markdown
    from ncae_exp.reports.runs import open_store

    out = args.out or os.path.join("reports", f"comparison-{args.parent_run_id[:8]}")
    try:
        client = open_store(args.tracking_uri)
        data, paths = _report(client, args.parent_run_id, out, baseline=args.baseline, log=not args.no_log)
    except (NcaeError, MlflowException, OSError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"{PROG}: error: {text[:500]}", file=sys.stderr)
        return 2
    print(comparison_markdown(data))
    print("wrote " + ", ".join(str(p) for p in paths))
    if not args.no_log:
        print(f"logged {', '.join(p.name for p in paths)} to MLflow run {data['parent_run_id']} under {ARTIFACT_DIR}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
