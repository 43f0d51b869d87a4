"""Reading finished runs from an MLflow store for a report, and logging the report back.

Generic for any report (it knows nothing about particular tables or figures)::

    client = open_store("sqlite:///mlflow.db")
    runs = collect_runs(client, parent_run_id="…")          # or experiment="ncae-explicit"
    log_report_files(client, runs, paths, kind="pretrain")   # artifacts next to the runs

Runs come from a sweep (the children of its parent run, paged through) or from every
finished NCAE run of an experiment, optionally filtered by dataset and exact param values.
Each becomes a :class:`RunRecord`: its hidden shape, pre-training schedule, final
``test_rmse``, params and (optionally) its per-epoch metric series.
"""

from __future__ import annotations

import ast
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ncae_exp.errors import NcaeError
from ncae_exp.tracking.sweep import SWEEP_TAG

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "ncae-explicit"
PARENT_TAG = "mlflow.parentRunId"
REPORT_TAG = "ncae.report"

# Pre-training schedule (param pretrain.name) -> the paper's name, in the paper's order.
SCHEDULE_LABELS = {"sus": "S+U+S", "su": "S+U", "ss": "S+S", "us": "U+S", "uu": "U+U", "none": "BP(None)"}
_SCHEDULE_RANK = {name: i for i, name in enumerate(SCHEDULE_LABELS)}


class ReportError(NcaeError):
    """Nothing to report on, or the store / run cannot be used (a one-line message)."""


def schedule_rank(pretrain: str) -> int:
    """Position of a schedule (``pretrain.name``) in the paper's order; unknown ones last."""
    return _SCHEDULE_RANK.get(pretrain, 99)


@dataclass
class RunRecord:
    """What a report needs from one finished NCAE run."""

    run_id: str
    hidden: tuple[int, ...]
    pretrain: str
    test_rmse: float
    experiment_id: str = "0"
    seed: str | None = None
    dataset: str | None = None
    parent_run_id: str | None = None
    epochs_run: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    # metric key -> [(step, value)], steps 0..epochs_run only, ascending
    series: Mapping[str, list[tuple[int, float]]] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.hidden)

    @property
    def schedule(self) -> str:
        """The paper's name of the pre-training schedule (``S+U+S``, …, ``BP(None)``)."""
        return SCHEDULE_LABELS.get(self.pretrain, self.pretrain)


def parse_hidden(value: object) -> tuple[int, ...]:
    """``"[500, 500]"`` (the logged param) -> ``(500, 500)``; ``"500"`` -> ``(500,)``."""
    parsed = ast.literal_eval(str(value)) if not isinstance(value, (list, tuple)) else value
    if isinstance(parsed, int):
        parsed = [parsed]
    sizes = tuple(int(v) for v in parsed)
    if not sizes or any(v <= 0 for v in sizes):
        raise ValueError(f"not a list of hidden sizes: {value!r}")
    return sizes


def distinct_params(runs: Iterable[RunRecord], key: str) -> list[str]:
    """The values param ``key`` takes over ``runs`` (runs without it ignored), in numeric
    order when they are all numbers, else in string order."""
    values = {r.params.get(key) for r in runs if r.params.get(key) is not None}
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


# --------------------------------------------------------------------------- reading


def open_store(tracking_uri: str):
    """An ``MlflowClient`` on an existing, reachable store; :class:`ReportError` otherwise.

    A local store that does not exist is an error here (a report never creates one)."""
    import mlflow

    from ncae_exp.tracking.mlflow_tracker import check_store, resolve_tracking_uri

    uri = resolve_tracking_uri(str(tracking_uri))
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :].split("?", 1)[0])
        if not path.is_file():
            raise ReportError(f"no MLflow store at {path} (pass --tracking-uri or run where mlflow.db is)")
    elif uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(uri).path))
        if not path.is_dir():
            raise ReportError(f"no MLflow store at {path} (pass --tracking-uri)")
    check_store(uri)  # TrackingError (an NcaeError) when unreachable
    return mlflow.MlflowClient(tracking_uri=uri)


def search_all_runs(client, experiment_ids: list[str], filter_string: str = "") -> list:
    """Every run matching ``filter_string`` in the experiments (all result pages)."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_metric_series(
    client, run_id: str, epochs_run: int | None, keys: Iterable[str]
) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch series restricted to steps 0..epochs_run (the point at epochs_run + 1 is the
    final value logged again). Without ``epochs_run``, the last training step bounds them."""
    limit = epochs_run
    if limit is None:
        steps = [m.step for key in ("train_loss", "train_rmse") for m in client.get_metric_history(run_id, key)]
        limit = max(steps) if steps else None
    out: dict[str, list[tuple[int, float]]] = {}
    for key in keys:
        by_step: dict[int, tuple[int, float]] = {}
        for m in client.get_metric_history(run_id, key):
            if m.step < 0 or (limit is not None and m.step > limit):
                continue
            if m.step not in by_step or m.timestamp >= by_step[m.step][0]:
                by_step[m.step] = (m.timestamp, float(m.value))
        if by_step:
            out[key] = [(step, by_step[step][1]) for step in sorted(by_step)]
    return out


def record_from_run(run, client=None, series_keys: Sequence[str] = ("train_rmse", "test_rmse", "val_rmse")) -> RunRecord:
    """A :class:`RunRecord` from an MLflow ``Run`` (per-epoch series loaded when ``client``
    is given). ``ValueError`` / ``KeyError`` when it is not an explicit NCAE run."""
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    hidden = parse_hidden(params["model.hidden"])
    epochs_run = metrics.get("epochs_run")
    epochs_run = int(round(epochs_run)) if epochs_run is not None and math.isfinite(epochs_run) else None
    return RunRecord(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        hidden=hidden,
        pretrain=str(params["pretrain.name"]),
        test_rmse=float(metrics["test_rmse"]),
        seed=params.get("seed"),
        dataset=tags.get("dataset") or params.get("dataset.name"),
        parent_run_id=tags.get(PARENT_TAG),
        epochs_run=epochs_run,
        params=dict(params),
        series=load_metric_series(client, run.info.run_id, epochs_run, series_keys) if client is not None else {},
    )


def collect_runs(
    client,
    *,
    parent_run_id: str | None = None,
    experiment: str | None = None,
    dataset: str | None = None,
    params: Mapping[str, str] | None = None,
    load_series: bool = True,
) -> list[RunRecord]:
    """The finished NCAE runs with a final ``test_rmse``: the children of ``parent_run_id``
    (a sweep's parent run), or else every such run of ``experiment`` (default
    ``ncae-explicit``; sweep parents and report runs left out). ``dataset`` (the run's
    ``dataset`` tag) and ``params`` (exact string values, e.g. ``{"model.based": "item"}``)
    narrow the selection. :class:`ReportError` when nothing is left."""
    from mlflow.exceptions import MlflowException

    try:
        if parent_run_id:
            try:
                parent = client.get_run(parent_run_id)
            except MlflowException as err:
                raise ReportError(f"unknown run id {parent_run_id!r} in {client.tracking_uri}") from err
            where = f"among the children of run {parent_run_id}"
            found = search_all_runs(client, [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
        else:
            name = experiment or DEFAULT_EXPERIMENT
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise ReportError(f"no experiment {name!r} in {client.tracking_uri}")
            where = f"in experiment {name!r}"
            found = search_all_runs(client, [exp.experiment_id], "")
    except MlflowException as err:
        raise ReportError(f"cannot read runs from {client.tracking_uri}: {_first_line(err)}") from err

    records: list[RunRecord] = []
    unfinished = others = 0
    for run in found:
        tags = run.data.tags
        if tags.get(SWEEP_TAG) == "true" or tags.get(REPORT_TAG) == "true":
            continue
        if run.info.status != "FINISHED":
            unfinished += 1
            continue
        if dataset and (tags.get("dataset") or run.data.params.get("dataset.name")) != dataset:
            continue
        if params and any(run.data.params.get(k) != str(v) for k, v in params.items()):
            continue
        try:
            records.append(record_from_run(run, client if load_series else None))
        except (KeyError, ValueError, SyntaxError):
            others += 1  # not an explicit NCAE run (a baseline, the implicit protocol, ...)
    if unfinished:
        log.warning("left out %d run(s) %s that did not finish", unfinished, where)
    if others:
        log.warning("left out %d finished run(s) %s without model.hidden, pretrain.name or test_rmse", others, where)
    if not records:
        wanted = [f"dataset={dataset}"] if dataset else []
        wanted += [f"{k}={v}" for k, v in (params or {}).items()]
        extra = f" matching {' '.join(wanted)}" if wanted else ""
        raise ReportError(f"no finished NCAE runs with a test_rmse{extra} {where}")
    records.sort(key=lambda r: (r.depth, r.hidden, schedule_rank(r.pretrain), str(r.seed), r.run_id))
    return records


# --------------------------------------------------------------------------- writing back


def log_report_files(
    client, runs: Sequence[RunRecord], paths: Iterable[str | Path], *, kind: str, parent_run_id: str | None = None
) -> str:
    """Log report files as artifacts to the sweep's parent run (``parent_run_id``, or the
    one parent all runs share), else to a new run ``report`` (tags ``ncae.report=true``,
    ``ncae.report_kind=<kind>``) in the runs' experiment. Returns the id of the run that
    got them."""
    paths = [Path(p) for p in paths]
    if parent_run_id is None:
        parents = {r.parent_run_id for r in runs}
        if len(parents) == 1:
            parent_run_id = parents.pop()
    if parent_run_id:
        for p in paths:
            client.log_artifact(parent_run_id, str(p))
        return parent_run_id
    experiments = sorted({r.experiment_id for r in runs})
    if not experiments:
        raise ReportError("no runs: nowhere to log the report")
    run = client.create_run(
        experiments[0],
        run_name="report",
        tags={REPORT_TAG: "true", "ncae.report_kind": kind, "ncae.report_n_runs": str(len(runs))},
    )
    try:
        for p in paths:
            client.log_artifact(run.info.run_id, str(p))
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id
