#!/usr/bin/env python
"""The paper's pre-training results (Table 2, Fig. 5) from the runs in an MLflow store.

    ncae-run +experiment=table2                      # or +experiment=fig5
    python scripts/report_pretrain.py --parent-run-id <the sweep's parent run id>
    python scripts/report_pretrain.py --experiment ncae-explicit --dataset ml-10m

Writes <out>/table2.md (Table 2, the paper's values, the Fig. 5 notes) and <out>/fig5.png,
prints the table and the schedules' order, and logs both files to the sweep's parent run
(or to a new run "report" tagged ncae.report=true when the runs have no parent) unless
--no-log. Errors: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

PROG = "report_pretrain"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
        help="MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--parent-run-id", metavar="ID", help="a sweep's parent run: report on its children")
    which.add_argument("--experiment", metavar="NAME", help="every finished NCAE run of this experiment (default ncae-explicit)")
    parser.add_argument("--dataset", metavar="NAME", help="only runs on this dataset (their `dataset` tag)")
    parser.add_argument(
        "--param", metavar="KEY=VALUE", action="append", default=[],
        help="only runs whose param KEY is exactly VALUE, e.g. model.based=item (repeatable)",
    )
    parser.add_argument("--out", default="reports", metavar="DIR", help="where table2.md and fig5.png go (default reports/)")
    parser.add_argument("--no-log", action="store_true", help="only write the files; log nothing to MLflow")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"{PROG}: error: --param takes KEY=VALUE, not {item!r}", file=sys.stderr)
            return 2
        params[key] = value
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: warning: %(message)s")
    for noisy in ("mlflow", "alembic", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    from mlflow.exceptions import MlflowException

    from ncae_exp.errors import NcaeError
    from ncae_exp.reports.fig5 import fig5_warnings
    from ncae_exp.reports.pretrain import log_report, report_markdown, write_report
    from ncae_exp.reports.runs import collect_runs, open_store

    try:
        client = open_store(args.tracking_uri)
        runs = collect_runs(
            client,
            parent_run_id=args.parent_run_id,
            experiment=args.experiment,
            dataset=args.dataset,
            params=params,
        )
        paths = write_report(runs, args.out)
        print(report_markdown(runs, image=None))
        for note in fig5_warnings(runs):
            print(f"{PROG}: warning: {note}", file=sys.stderr)
        print("wrote " + ", ".join(str(p) for p in paths))
        if not args.no_log:
            run_id = log_report(client, runs, paths, parent_run_id=args.parent_run_id)
            print(f"logged {', '.join(p.name for p in paths)} to MLflow run {run_id}")
    except (NcaeError, MlflowException, OSError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        print(f"{PROG}: error: {text[:500]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
