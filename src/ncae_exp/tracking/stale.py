"""``ncae-runs stale``: MLflow runs left RUNNING by a process that is gone (``kill -9``, a
crashed node, a store that went away before the run could end), listed and, with
``--mark-killed``, marked KILLED.

A run is stale when its process (tags ``ncae.host``, ``ncae.pid``, ``ncae.attempt_start``,
see runs.py) ran on this host and is gone, or — with ``--older-than MIN`` — when nothing
happened in it for MIN minutes (its ``ncae.heartbeat`` tag, refreshed while it logs; a
sweep's parent counts its children's activity). Runs of other hosts are judged only by
``--older-than``. Rerunning a stale run's command resumes it either way.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from dataclasses import dataclass

from ncae_exp.tracking.runs import HEARTBEAT_TAG, HOST_TAG, PID_TAG, START_TAG, process_alive

MARK_TAG = "ncae.marked_killed"


@dataclass
class Stale:
    run: object  # mlflow.entities.Run
    reason: str
    last_activity: float  # seconds since the epoch


def _seconds(tags: dict, key: str) -> float:
    try:
        return float(tags.get(key, 0) or 0)
    except ValueError:
        return 0.0


def last_activity(client, run) -> float:
    """The latest sign of life: the run's start, (re)start of its process, heartbeat; for a
    sweep's parent also its children's."""
    tags = run.data.tags
    times = [run.info.start_time / 1000.0, _seconds(tags, START_TAG), _seconds(tags, HEARTBEAT_TAG)]
    if tags.get("ncae.sweep") == "true":
        children = client.search_runs([run.info.experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
        for child in children:
            times += [last_activity(client, child), (child.info.end_time or 0) / 1000.0]
    return max(times)


def find_stale(client, older_than_min: float | None = None) -> tuple[list[Stale], int]:
    """(the stale RUNNING runs, how many RUNNING runs could not be judged)."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return [], 0
    running = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=50000)
    host, now = socket.gethostname(), time.time()
    stale, undecided = [], 0
    for run in running:
        tags = run.data.tags
        seen = last_activity(client, run)
        pid = tags.get(PID_TAG)
        if tags.get(HOST_TAG) == host and pid:
            if not process_alive(int(pid), since=_seconds(tags, START_TAG) or None):
                stale.append(Stale(run, f"process {pid} on this host is gone", seen))
            continue
        idle_min = (now - seen) / 60.0
        if older_than_min is not None and idle_min > older_than_min:
            stale.append(Stale(run, f"no activity for {idle_min:.0f} min", seen))
        else:
            undecided += 1
    return stale, undecided


def _describe(item: Stale, names: dict[str, str]) -> str:
    run = item.run
    tags = run.data.tags
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item.last_activity))
    owner = f"{tags.get(HOST_TAG, '?')}:{tags.get(PID_TAG, '?')}"
    return (f"{run.info.run_id}  {names.get(run.info.experiment_id, run.info.experiment_id)}  "
            f"{run.info.run_name}  {owner}  last activity {when}  ({item.reason})")


def stale_command(args: argparse.Namespace) -> int:
    import mlflow

    from ncae_exp.tracking.mlflow_tracker import check_store, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    check_store(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    stale, undecided = find_stale(client, args.older_than)
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    for item in stale:
        print(_describe(item, names))
        if args.mark_killed:
            client.set_tag(item.run.info.run_id, MARK_TAG, f"by ncae-runs stale: {item.reason}")
            client.set_terminated(item.run.info.run_id, status="KILLED")
    verb = "marked KILLED" if args.mark_killed else "stale (--mark-killed marks them KILLED)"
    print(f"{len(stale)} RUNNING run(s) {verb}" if stale else "no stale RUNNING runs")
    if undecided:
        how = "alive here, or on other hosts / without a process record"
        hint = "" if args.older_than is not None else "; --older-than MIN judges those of other hosts by idle time"
        print(f"{undecided} other RUNNING run(s) not marked ({how}{hint})")
    return 0


def main(argv: list[str] | None = None) -> None:
    from ncae_exp.errors import NcaeError

    parser = argparse.ArgumentParser(prog="ncae-runs", description="Look after ncae-run's MLflow runs.")
    sub = parser.add_subparsers(dest="command", required=True)
    stale = sub.add_parser("stale", help="list RUNNING runs whose process is gone; --mark-killed marks them KILLED")
    stale.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db",
                       help="the MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)")
    stale.add_argument("--mark-killed", action="store_true", help="mark the stale runs KILLED")
    stale.add_argument("--older-than", type=float, default=None, metavar="MIN",
                       help="also count runs idle for more than MIN minutes as stale (any host)")
    args = parser.parse_args(argv)
    try:
        sys.exit(stale_command(args))
    except NcaeError as err:
        print(f"ncae-runs: error: {err}", file=sys.stderr)
        sys.exit(2)
