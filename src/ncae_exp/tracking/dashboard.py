"""How runs look in the MLflow UI: the experiment's description, a headline view, run names.

* **Description.** Each experiment gets a note (the ``mlflow.note.content`` tag the UI shows
  as the experiment's description): what its protocol measures, the metric names, that
  selection reads validation only, and how to compare runs. A note someone edited in the UI
  is left alone (``ncae.note_sha`` remembers the text written here).
* **Headline view.** MLflow 3 keeps the runs table's visible columns per browser (local
  storage); a client cannot set an experiment's default columns. What it can write is a
  saved view, the experiment tag ``mlflow.sharedViewState.<key>`` that the UI's "Save &
  share view" writes (3.17: listed under the runs table's saved views, opened with
  ``#/experiments/<id>/runs?viewStateShareKey=<key>``): here, the headline metrics as the
  visible metric columns, the runs sorted by the selection metric. The note links to it.
  The experiment is also tagged as model training (``mlflow.experimentKind``, so the UI opens
  on its runs, not on GenAI traces) with its primary metric (the selection metric, the first
  chart).
* **Run names.** ``ncae ml-100k hidden=[500] l2=0.01``: model, dataset and the command
  line's overrides (a sweep's children are named by their swept overrides, tracking/sweep.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

log = logging.getLogger(__name__)

NOTE_TAG = "mlflow.note.content"
NOTE_SHA_TAG = "ncae.note_sha"
VIEW_KEY = "ncae-headline"
VIEW_NAME = "ncae: headline metrics"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"
PRIMARY_METRIC_TAG = "mlflow.experiment.primaryMetric.name"
_MEASURES = {
    "explicit": "rating prediction: RMSE of held-out ratings (lower is better)",
    "implicit": "top-M recommendation: full-ranking HR@M and NDCG@M of each user's held-out item "
                "(higher is better)",
}
# Overrides that say where or how a run ran, not what it is: left out of run names.
_NOT_IN_NAME = {"model", "dataset", "protocol", "trainer.device", "trainer.deterministic", "resume"}
_NOT_IN_NAME_PREFIXES = ("hydra.", "hydra/", "mlflow.", "paths.")


def headline_metrics(protocol: str, select: str) -> list[str]:
    """The selection metric and the test metrics read first (the runs table's first columns)."""
    if protocol == "implicit":
        rest = ["val_ndcg_at_100", "test_hr_at_100", "test_ndcg_at_100"]
    else:
        rest = ["test_rmse"]
    return [select, *[m for m in rest if m != select]]


def experiment_note(protocol: str, select: str, mode: str, cutoffs: list[int] | None = None,
                    experiment_id: str | None = None) -> str:
    """The experiment's description (Markdown)."""
    measures = _MEASURES.get(protocol, f"the {protocol} protocol")
    if protocol == "implicit":
        ms = ", ".join(str(m) for m in cutoffs or [50, 100, 150, 200, 250])
        names = f"`val_hr_at_<M>`, `val_ndcg_at_<M>`, `test_hr_at_<M>`, `test_ndcg_at_<M>` for M in {ms}"
    else:
        names = "`val_rmse`, `test_rmse` (and the per-epoch `train_rmse`)"
    view = (f"[the headline columns](#/experiments/{experiment_id}/runs?viewStateShareKey={VIEW_KEY})"
            if experiment_id else f"the saved view \"{VIEW_NAME}\"")
    return "\n".join([
        f"**ncae-exp, protocol `{protocol}`** — {measures}.",
        "",
        f"- Metrics: {names}; `train_loss` per epoch; `best_epoch`, `epoch_seconds`, `fit_seconds`.",
        f"- Selection reads validation only: the best epoch of a run, and the best child of a sweep "
        f"(`best_{select}` on its parent), by `{select}` ({mode}imised). Test metrics are reported, never "
        "used to choose.",
        "- Per-epoch series use step = epoch (step 0: before training); the selected epoch's validation "
        "values come last, so the table shows them.",
        "- A sweep is a parent run (tag `ncae.sweep=true`) with a child run per job, named by its swept "
        "overrides; its comparison report is under the parent's `report/` artifacts.",
        f"- To compare runs: open {view} (the headline metrics, sorted by `{select}`), or select runs and "
        "press Compare; `ncae-report --parent-run-id <id>` gives mean ± std and paired t-tests over seeds.",
        "- With `retrain=true`, `test_*` are means over the retraining seeds, `test_*_std` their spread.",
    ])


def headline_view(protocol: str, select: str, mode: str) -> dict:
    """The shared view's state: the headline metrics, model and dataset tags as the visible
    columns, runs sorted by the selection metric, best first."""
    columns = [f"metrics.`{m}`" for m in headline_metrics(protocol, select)]
    columns += ["tags.`model`", "tags.`dataset`", "attributes.`Duration`"]
    return {"selectedColumns": columns, "orderByKey": f"metrics.`{select}`", "orderByAsc": mode == "min",
            "runsExpanded": {}, "runsPinned": [], "runsHidden": []}


def describe_experiment(client, experiment_id: str, protocol: str, select: str, mode: str,
                        cutoffs: list[int] | None = None) -> None:
    """Write the experiment's note (unless edited by hand) and its headline view (best effort:
    a dashboard nicety must never cost a run)."""
    try:
        tags = client.get_experiment(experiment_id).tags
        note = experiment_note(protocol, select, mode, cutoffs, experiment_id)
        sha = hashlib.sha256(note.encode()).hexdigest()[:16]
        current = tags.get(NOTE_TAG)
        ours = current is None or hashlib.sha256(current.encode()).hexdigest()[:16] == tags.get(NOTE_SHA_TAG)
        if ours and current != note:
            client.set_experiment_tag(experiment_id, NOTE_TAG, note)
            client.set_experiment_tag(experiment_id, NOTE_SHA_TAG, sha)
        state = json.dumps(headline_view(protocol, select, mode))
        if _view_state(tags.get(VIEW_TAG_PREFIX + VIEW_KEY)) != state:
            # the UI's saved-view envelope: a name and time readable as is, the state as JSON
            envelope = {"name": VIEW_NAME, "createdAt": int(time.time() * 1000), "state": state}
            client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + VIEW_KEY, json.dumps(envelope))
        if KIND_TAG not in tags:
            client.set_experiment_tag(experiment_id, KIND_TAG, KIND)
        if tags.get(PRIMARY_METRIC_TAG) != select:
            client.set_experiment_tag(experiment_id, PRIMARY_METRIC_TAG, select)
    except Exception as err:  # noqa: BLE001
        log.debug("could not describe MLflow experiment %s: %s", experiment_id, err)


def _view_state(value: str | None) -> str | None:
    try:
        return json.loads(value)["state"] if value else None
    except (ValueError, KeyError, TypeError):
        return None


def readable_run_name(model: str, dataset: str, overrides: list[str], limit: int = 120) -> str:
    """``ncae ml-100k hidden=[500] l2=0.01``: model, dataset, then the command line's overrides
    with their group prefix dropped (``model.l2`` → ``l2``) unless that hides another key."""
    def key(override: str) -> str:
        return override.lstrip("+").split("=", 1)[0]

    kept = [o for o in overrides if "=" in o and not o.startswith("~") and key(o) not in _NOT_IN_NAME
            and not key(o).startswith(_NOT_IN_NAME_PREFIXES)]
    keys = [key(o) for o in kept]
    short = [k.rsplit(".", 1)[-1] for k in keys]
    parts = []
    for override, key, leaf in zip(kept, keys, short):
        value = override.split("=", 1)[1]
        parts.append(f"{leaf if short.count(leaf) == 1 else key}={value}")
    name = " ".join([model, dataset, *parts])
    return name if len(name) <= limit else name[: limit - 1] + "…"
