"""A sweep's child runs read from MLflow and put into groups that differ by more than the seed.

The children of a parent run (tag ``mlflow.parentRunId``) come in two kinds:

- sweep jobs (``ncae-run -m …``, ``+experiment=…``): each is named after its swept overrides
  (``model=ease,seed=1``, see :func:`ncae_exp.tracking.sweep.child_run_name`). A group is a
  child's ``key=value`` pairs without ``seed=…`` and without pairs every child shares
  (``model=ease``). When a child has no such name, the groups come from the params instead:
  the params that differ between the children, leaving out ``seed`` and the params that
  follow from it (equal for equal seeds: split and data statistics), reduced to the fewest
  that tell the same groups apart;
- retrain repeats (tag ``ncae.stage=retrain``): grouped by their ``model`` tag. When a parent
  has any, the report is on them (the other children, a search's trials, are counted only).

Children on several datasets (tag ``dataset``) form one section per dataset: a group is
then a label on one dataset, its label without the ``dataset=…`` part (the report chooses a
baseline and pairs runs within a dataset only).

Only FINISHED children are data points; the others are listed in the report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ncae_exp.reports.runs import PARENT_TAG, ReportError, _first_line, search_all_runs
from ncae_exp.tracking.sweep import SWEEP_TAG

STAGE_TAG = "ncae.stage"
RETRAIN = "retrain"
OVERRIDES_TAG = "ncae.sweep_overrides"
# params that describe the data or the model built from it, not the configuration
_DERIVED_PREFIXES = ("data.", "model_info.", "buckets.", "split.n_", "split.test_", "split.val_")
# keys of a label's pairs that name the dataset (left out of labels inside a dataset's section)
DATASET_KEYS = ("dataset", "dataset.name")


@dataclass
class ChildRun:
    """One child run, as the comparison needs it."""

    run_id: str
    name: str
    status: str
    seed: str | None
    metrics: dict[str, float]
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_time: int = 0
    group: str = ""
    dataset: str = "?"


@dataclass
class Children:
    """The children of one parent run: finished ones in groups, the others listed."""

    parent_run_id: str
    parent_name: str
    experiment_id: str
    parent_tags: dict[str, str]
    runs: list[ChildRun]  # FINISHED, in the order the sweep started them
    not_finished: list[ChildRun]
    grouping: str  # how the groups were formed (for the report's header)
    left_out: int = 0  # finished children of the other kind (search runs beside retrains)
    by_dataset: bool = False  # the runs span several datasets: one section each

    def groups(self) -> dict[str, list[ChildRun]]:
        """{group label: its runs}, groups in the order of their first run (labels of
        different datasets' sections may coincide: see :meth:`sections`)."""
        out: dict[str, list[ChildRun]] = {}
        for r in self.runs:
            out.setdefault(r.group, []).append(r)
        return out

    def sections(self) -> dict[str | None, dict[str, list[ChildRun]]]:
        """{dataset: {group label: its runs}}, datasets in the order of their first run;
        ``{None: groups()}`` unless :attr:`by_dataset`."""
        if not self.by_dataset:
            return {None: self.groups()}
        out: dict[str | None, dict[str, list[ChildRun]]] = {}
        for r in self.runs:
            out.setdefault(r.dataset, {}).setdefault(r.group, []).append(r)
        return out

    def param(self, key: str) -> str | None:
        """A param the children share (their most common value), else None."""
        values = [r.params[key] for r in self.runs if key in r.params]
        return max(set(values), key=values.count) if values else None


def split_overrides(name: str) -> list[tuple[str, str]] | None:
    """``"model.hidden=[500,500],seed=1"`` -> ``[("model.hidden", "[500,500]"), ("seed", "1")]``:
    commas inside brackets or quotes do not split. None when a piece is not ``key=value``."""
    pieces, depth, quote, cur = [], 0, "", ""
    for ch in name or "":
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(cur)
            cur = ""
            continue
        cur += ch
    pieces.append(cur)
    pairs = []
    for piece in pieces:
        key, sep, value = piece.strip().partition("=")
        if not sep or not key or any(c.isspace() for c in key):
            return None
        pairs.append((key.lstrip("+~"), value))
    return pairs


def _seed(run) -> str | None:
    seed = run.data.params.get("seed") or run.data.tags.get("seed")
    if seed is None:
        seed = dict(split_overrides(run.info.run_name or "") or []).get("seed")
    return None if seed is None else str(seed)


def _child(run) -> ChildRun:
    return ChildRun(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        status=run.info.status,
        seed=_seed(run),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        start_time=run.info.start_time or 0,
        dataset=run.data.tags.get("dataset") or run.data.params.get("dataset.name") or "?",
    )


def dataset_slug(dataset: str) -> str:
    """A dataset's name as a piece of a file name (``ml-1m``, ``my-data``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", dataset).strip("-") or "dataset"


def dataset_file(name: str, dataset: str | None) -> str:
    """``comparison_at_m.png`` -> ``comparison_at_m_lastfm.png`` (unchanged for None)."""
    if dataset is None:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}_{dataset_slug(dataset)}{dot}{ext}" if dot else f"{name}_{dataset_slug(dataset)}"


def group_by_names(runs: Sequence[ChildRun], drop: Sequence[str] = ()) -> bool:
    """Label each run with its name's pairs minus ``seed``, minus pairs all runs share and
    minus keys in ``drop``; False (nothing changed) when some run's name is not ``key=value,…``."""
    parsed = [split_overrides(r.name) for r in runs]
    if not runs or any(p is None for p in parsed):
        return False
    shared = set.intersection(*(set(p) for p in parsed))
    for r, pairs in zip(runs, parsed):
        kept = [f"{k}={v}" for k, v in pairs if k != "seed" and k not in drop and (k, v) not in shared]
        r.group = ",".join(kept) or r.tags.get("model") or "all runs"
    return True


def _follows_from_seed(runs: Sequence[ChildRun], key: str) -> bool:
    """True when runs with the same seed always agree on ``key``."""
    by_seed: dict[str | None, set[str | None]] = {}
    for r in runs:
        by_seed.setdefault(r.seed, set()).add(r.params.get(key))
    return all(len(v) == 1 for v in by_seed.values())


def _partition(runs: Sequence[ChildRun], keys: Sequence[str]) -> int:
    return len({tuple(r.params.get(k) for k in keys) for r in runs})


def differing_params(runs: Sequence[ChildRun]) -> list[str]:
    """The fewest params that split the runs as all their differing params do (leaving out
    ``seed`` and params that follow from it), preferring model, then dataset, then the
    configuration's keys over data and split statistics."""
    keys = sorted({k for r in runs for k in r.params})
    differ = [k for k in keys if k != "seed" and len({r.params.get(k) for r in runs}) > 1]
    if len({r.seed for r in runs}) > 1:
        if len({r.seed for r in runs}) < len(runs):
            differ = [k for k in differ if not _follows_from_seed(runs, k)]
        else:  # one run per seed: whatever the data gave differs with the seed
            differ = [k for k in differ if not k.startswith(_DERIVED_PREFIXES)]
    target = _partition(runs, differ)
    order = sorted(differ, key=lambda k: ({"model.name": 0, "dataset.name": 1}.get(k, 2),
                                          k.startswith(_DERIVED_PREFIXES), k.count("."), k))
    chosen: list[str] = []
    for key in order:
        if _partition(runs, chosen) == target:
            break
        if _partition(runs, chosen + [key]) > _partition(runs, chosen):
            chosen.append(key)
    return chosen


def group_by_params(runs: Sequence[ChildRun], drop: Sequence[str] = ()) -> list[str]:
    """Label each run with the params that tell the groups apart (but those in ``drop``);
    returns those params."""
    keys = differing_params(runs)
    for r in runs:
        r.group = ",".join(f"{k}={r.params.get(k, '–')}" for k in keys if k not in drop) or r.tags.get("model") or "all runs"
    return keys


def load_children(client, parent_run_id: str) -> Children:
    """The children of ``parent_run_id``, finished ones grouped; :class:`ReportError` for an
    unknown run, a run without children, or children none of which finished."""
    from mlflow.exceptions import MlflowException

    try:
        try:
            parent = client.get_run(parent_run_id)
        except MlflowException as err:
            raise ReportError(f"unknown run id {parent_run_id!r} in {client.tracking_uri}") from err
        found = search_all_runs(client, [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    except MlflowException as err:
        raise ReportError(f"cannot read runs from {client.tracking_uri}: {_first_line(err)}") from err
    tags = dict(parent.data.tags)
    if not found:
        if tags.get(SWEEP_TAG) == "true":
            raise ReportError(f"sweep parent run {parent_run_id} has no child runs")
        raise ReportError(f"run {parent_run_id} is not a sweep parent (tag {SWEEP_TAG}) and has no child runs")
    children = sorted((_child(r) for r in found), key=lambda c: (c.start_time, c.name))
    retrain = [c for c in children if c.tags.get(STAGE_TAG) == RETRAIN]
    pool = retrain or children
    finished = [c for c in pool if c.status == "FINISHED"]
    result = Children(
        parent_run_id=parent.info.run_id,
        parent_name=parent.info.run_name or parent.info.run_id,
        experiment_id=parent.info.experiment_id,
        parent_tags=tags,
        runs=finished,
        not_finished=[c for c in pool if c.status != "FINISHED"],
        grouping="",
        left_out=sum(c.status == "FINISHED" for c in children) - len(finished) if retrain else 0,
    )
    if not finished:
        states = ", ".join(f"{c.name} {c.status}" for c in result.not_finished[:5])
        raise ReportError(f"no finished child runs of run {parent_run_id} ({len(pool)} did not finish: {states})")
    result.by_dataset = len({c.dataset for c in finished}) > 1
    drop = DATASET_KEYS if result.by_dataset else ()
    if retrain:
        for c in finished:
            c.group = c.tags.get("model") or c.params.get("model.name") or "?"
        result.grouping = f"retrain repeats (tag {STAGE_TAG}={RETRAIN}) by model"
    elif group_by_names(finished, drop):
        result.grouping = "the swept overrides (run names) without seed"
    else:
        keys = group_by_params(finished, drop)
        result.grouping = "the params that differ between runs, without seed: " + (", ".join(keys) or "none")
    if not retrain and _use_repeats(client, result):
        result.grouping += f"; each job's samples are its own retrain repeats (tag {STAGE_TAG}={RETRAIN})"
    if result.by_dataset:
        result.grouping += "; one section per dataset (tag dataset)"
    return result


def _use_repeats(client, result: Children) -> bool:
    """Jobs run with ``retrain=true`` have their repeats as nested runs (one per seed, the
    same seeds in every job): those become the job's group's samples, so a grid of models
    gets mean ± std and paired t-tests. A compared model's repeats inside a job are not the
    job's (their ``model`` tag differs). False when no job has repeats."""
    jobs = {r.run_id: r for r in result.runs}
    found = search_all_runs(client, [result.experiment_id], f"tags.`{STAGE_TAG}` = '{RETRAIN}'")
    repeats: dict[str, list[ChildRun]] = {}
    for run in found:
        job = jobs.get(run.data.tags.get(PARENT_TAG, ""))
        if job is not None and run.info.status == "FINISHED" and run.data.tags.get("model") == job.tags.get("model"):
            child = _child(run)
            child.group, child.dataset = job.group, job.dataset
            # a repeat has no validation; the job's selection values choose the baseline
            child.metrics.update({k: v for k, v in job.metrics.items() if k.startswith("val_")})
            repeats.setdefault(job.run_id, []).append(child)
    if not repeats:
        return False
    expanded = []
    for job in result.runs:
        expanded.extend(sorted(repeats.get(job.run_id, [job]), key=lambda c: (c.seed or "", c.start_time)))
    result.runs = expanded
    return True


def finite(value) -> float | None:
    """``value`` as a float, None for missing / NaN / infinite values."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
