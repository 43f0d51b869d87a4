"""The paper's pre-training results (Table 2, Fig. 5) from the runs in an MLflow store.

Runs come from a sweep (``ncae-run +experiment=table2`` / ``+experiment=fig5``: the children
of its parent run) or from every finished NCAE run of an experiment, optionally filtered::

    client = open_store("sqlite:///mlflow.db")
    runs = collect_runs(client, parent_run_id="…")          # or experiment="ncae-explicit"
    print(table2_markdown(runs))
    fig5_png(runs, "fig5.png")
    fig5_ordering(runs)                                      # [("S+U+S", 0.767), …]
    log_report(client, runs, write_report(runs, "reports"))  # artifacts on the sweep's parent

Table 2: one row per depth and schedule (``SINGLE``, ``SINGLE*``, ``DOUBLE``, ``DOUBLE*``,
``L=<n>`` / ``L=<n>*`` deeper; ``*`` = pre-trained, the paper's S+U+S; other schedules get
their own row, e.g. ``DOUBLE* (S+U)``), one column per hidden size K; a cell is the mean
final ``test_rmse`` (the epoch selected on validation) of its runs, ``± sample std (n=…)``
when there are several (seeds).

Fig. 5: training and test RMSE per epoch (``train_rmse`` / ``test_rmse`` series, steps
0..epochs_run; step 0 = right after pre-training) of each schedule on one hidden shape
(the DOUBLE shape with the most schedules, largest K on ties). The pipeline logs the final
values once more at step ``epochs_run + 1``; that point is dropped.
"""

from __future__ import annotations

import ast
import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ncae_exp.errors import NcaeError  # noqa: E402
from ncae_exp.tracking.sweep import SWEEP_TAG

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "ncae-explicit"
PARENT_TAG = "mlflow.parentRunId"
REPORT_TAG = "ncae.report"
TABLE2_FILE = "table2.md"
FIG5_FILE = "fig5.png"

# Schedule (pretrain.name) -> the paper's name, in the order of Fig. 5's legend.
SCHEDULE_LABELS = {"sus": "S+U+S", "su": "S+U", "ss": "S+S", "us": "U+S", "uu": "U+U", "none": "BP(None)"}
_SCHEDULE_ORDER = {name: i for i, name in enumerate(SCHEDULE_LABELS)}
_ROW_ORDER = ("none", "sus", "su", "ss", "us", "uu")  # Table 2 rows: plain, then "*"
_STYLES = {
    "S+U+S": ("tab:red", "o"),
    "S+U": ("tab:blue", "s"),
    "S+S": ("tab:green", "^"),
    "U+S": ("tab:purple", "v"),
    "U+U": ("tab:orange", "D"),
    "BP(None)": ("black", "x"),
}

# Table 2 of the paper: ML-10M, random 80/10/10, item-based, test RMSE (also in docs/ncae-spec.md).
PAPER_K = (200, 300, 400, 500)
PAPER_TABLE2 = {
    "SINGLE": (0.791, 0.784, 0.781, 0.779),
    "SINGLE*": (0.790, 0.783, 0.780, 0.778),
    "DOUBLE": (0.803, 0.788, 0.781, 0.775),
    "DOUBLE*": (0.794, 0.779, 0.771, 0.767),
}

NO_TEST_SERIES = (
    "these runs have no per-epoch test_rmse series, so Fig. 5's test panel is empty: "
    "re-run the sweep with trainer.log_test_rmse=true (ncae-run +experiment=fig5 sets it)"
)
NO_TRAIN_SERIES = (
    "these runs have no per-epoch train_rmse series, so Fig. 5's training panel is empty: "
    "re-run the sweep with trainer.log_train_rmse=true"
)


class ReportError(NcaeError):
    """Nothing to report on, or the store / run cannot be used (a one-line message)."""


@dataclass
class RunRecord:
    """What the report needs from one finished NCAE run."""

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
        return len(self.hidden)

    @property
    def schedule(self) -> str:
        """The paper's name of the pre-training schedule (``S+U+S``, …, ``BP(None)``)."""
        return SCHEDULE_LABELS.get(self.pretrain, self.pretrain)


# --------------------------------------------------------------------------- collecting


def parse_hidden(value: object) -> tuple[int, ...]:
    """``"[500, 500]"`` (the logged param) -> ``(500, 500)``; ``"500"`` -> ``(500,)``."""
    parsed = ast.literal_eval(str(value)) if not isinstance(value, (list, tuple)) else value
    if isinstance(parsed, int):
        parsed = [parsed]
    sizes = tuple(int(v) for v in parsed)
    if not sizes or any(v <= 0 for v in sizes):
        raise ValueError(f"not a list of hidden sizes: {value!r}")
    return sizes


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


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


def _search_all(client, experiment_ids: list[str], filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _load_series(client, run_id: str, epochs_run: int | None, keys: Iterable[str]) -> dict[str, list[tuple[int, float]]]:
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
        series=_load_series(client, run.info.run_id, epochs_run, series_keys) if client is not None else {},
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
            found = _search_all(client, [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
        else:
            name = experiment or DEFAULT_EXPERIMENT
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise ReportError(f"no experiment {name!r} in {client.tracking_uri}")
            where = f"in experiment {name!r}"
            found = _search_all(client, [exp.experiment_id], "")
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
    records.sort(key=lambda r: (r.depth, r.hidden, _SCHEDULE_ORDER.get(r.pretrain, 99), str(r.seed), r.run_id))
    return records


# --------------------------------------------------------------------------- Table 2


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def format_cell(values: Sequence[float]) -> str:
    """``0.785`` for one run, ``0.785 ± 0.006 (n=2)`` (sample std) for several, ``–`` for none."""
    if not values:
        return "–"
    mean, std = _mean_std(values)
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f} (n={len(values)})"


def row_label(depth: int, pretrain: str) -> str:
    """``SINGLE``, ``DOUBLE*``, ``L=4``, ``DOUBLE* (S+U)``, … (L = weight layers = depth + 1)."""
    base = {1: "SINGLE", 2: "DOUBLE"}.get(depth, f"L={depth + 1}")
    if pretrain == "none":
        return base
    if pretrain == "sus":
        return base + "*"
    return f"{base}* ({SCHEDULE_LABELS.get(pretrain, pretrain)})"


def _column(hidden: tuple[int, ...]) -> tuple[tuple, str]:
    """(sort key, header) of a hidden shape: K for equal sizes, ``500-250`` otherwise (last)."""
    if len(set(hidden)) == 1:
        return (0, hidden[0], ()), f"K = {hidden[0]}"
    return (1, hidden[0], hidden), "K = " + "-".join(str(k) for k in hidden)


def table2_cells(runs: Iterable[RunRecord]) -> dict[tuple[str, str], list[float]]:
    """{(row label, column header): [test_rmse of each run]}."""
    cells: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        cells.setdefault((row_label(r.depth, r.pretrain), _column(r.hidden)[1]), []).append(r.test_rmse)
    return cells


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _distinct(runs: Sequence[RunRecord], key: str) -> list[str]:
    values = {r.params.get(key) for r in runs if r.params.get(key) is not None}
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def settings_summary(runs: Sequence[RunRecord]) -> str:
    """One line with the settings the runs share; a setting with several values is flagged
    (its cells average over them)."""
    runs = list(runs)
    parts = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"]
    datasets = sorted({r.dataset or "?" for r in runs})
    parts.append("dataset " + ", ".join(datasets))
    split = sorted({"/".join(r.params.get(f"split.{k}", "?") for k in ("train", "val", "test")) for r in runs})
    named = [
        ("model.based", "based", lambda v: v),
        ("model.l2", "λ", lambda v: v),
        ("model.dropout", "q", lambda v: v),
        ("trainer.epochs", "epochs", lambda v: v),
        ("trainer.batch_size", "batch", lambda v: v),
    ]
    mixed = []
    if len(datasets) > 1:
        mixed.append("dataset")
    for key, label, _ in named:
        values = _distinct(runs, key)
        if values:
            parts.append(f"{label} {', '.join(values)}")
            if len(values) > 1:
                mixed.append(key)
    if split != ["?/?/?"]:
        parts.append("split " + ", ".join(split))
        if len(split) > 1:
            mixed.append("split")
    stage = _distinct([r for r in runs if r.pretrain != "none"], "pretrain.epochs_per_stage")
    if stage:
        parts.append(f"{', '.join(stage)} epochs per pre-training stage")
        if len(stage) > 1:
            mixed.append("pretrain.epochs_per_stage")
    seeds = _distinct(runs, "seed")
    if seeds:
        parts.append(f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}")
    line = " · ".join(parts)
    if mixed:
        line += f" — **mixed {', '.join(mixed)}: a cell may combine runs with different values** (narrow the selection with --dataset / --param)"
    return line


def table2_markdown(runs: Iterable[RunRecord], *, paper: bool = True) -> str:
    """Table 2 as markdown: rows SINGLE/SINGLE*/DOUBLE/DOUBLE* (and deeper / other schedules
    when present), columns K in numeric order, cells = mean test RMSE (± std, n); then the
    paper's ML-10M values and, when every run is on ml-10m, the difference to them."""
    runs = list(runs)
    if not runs:
        raise ReportError("no runs to tabulate")
    cells = table2_cells(runs)
    columns = sorted({_column(r.hidden) for r in runs})
    headers = [h for _, h in columns]
    row_keys = sorted(
        {(r.depth, _ROW_ORDER.index(r.pretrain) if r.pretrain in _ROW_ORDER else 99, r.pretrain) for r in runs}
    )
    row_labels = [row_label(depth, pretrain) for depth, _, pretrain in row_keys]
    rows = [[label] + [format_cell(cells.get((label, h), [])) for h in headers] for label in row_labels]

    lines = ["## Table 2 — test RMSE by configuration", "", settings_summary(runs), ""]
    lines += _markdown_table(["Configuration", *headers], rows)
    lines += [
        "",
        "SINGLE = one hidden layer (L=2), DOUBLE = two hidden layers of size K (L=3), L=<n> = n weight "
        "layers; `*` = with pre-training: S+U+S (SR, DR for each further hidden layer, V; on one hidden "
        "layer SR then V), other schedules named in brackets. Cell: mean final test RMSE (the epoch "
        "chosen on validation) over the runs, ± sample standard deviation and n when several (seeds).",
    ]
    if paper:
        lines += ["", "### Paper's values (Li et al., Table 2: ML-10M, 80/10/10, test RMSE)", ""]
        lines += _markdown_table(
            ["Configuration", *(f"K = {k}" for k in PAPER_K)],
            [[label, *(f"{v:.3f}" for v in values)] for label, values in PAPER_TABLE2.items()],
        )
        if all(r.dataset == "ml-10m" for r in runs):
            diff_rows = []
            for label, values in PAPER_TABLE2.items():
                row = [label]
                for k, ref in zip(PAPER_K, values):
                    got = cells.get((label, f"K = {k}"))
                    row.append(f"{statistics.fmean(got) - ref:+.3f}" if got else "–")
                if any(c != "–" for c in row[1:]):
                    diff_rows.append(row)
            if diff_rows:
                lines += ["", "### This report − paper (ML-10M)", ""]
                lines += _markdown_table(["Configuration", *(f"K = {k}" for k in PAPER_K)], diff_rows)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Fig. 5


def fig5_groups(runs: Iterable[RunRecord], hidden: Sequence[int] | None = None) -> tuple[tuple[int, ...], dict[str, list[RunRecord]]]:
    """(hidden shape, {schedule label: runs}) for Fig. 5, in the legend's order. Without
    ``hidden``: the shape with two or more hidden layers that has the most schedules (the
    largest one on ties); one-hidden-layer shapes only when there is no deeper one."""
    runs = list(runs)
    if not runs:
        raise ReportError("no runs for Fig. 5")
    schedules: dict[tuple[int, ...], set[str]] = {}
    for r in runs:
        schedules.setdefault(r.hidden, set()).add(r.pretrain)
    if hidden is None:
        candidates = [s for s in schedules if len(s) >= 2] or list(schedules)
        shape = max(candidates, key=lambda s: (len(schedules[s]), sum(s), s))
    else:
        shape = tuple(int(k) for k in hidden)
        if shape not in schedules:
            raise ReportError(f"no runs with model.hidden={list(shape)} for Fig. 5")
    groups: dict[str, list[RunRecord]] = {}
    for r in sorted((r for r in runs if r.hidden == shape), key=lambda r: _SCHEDULE_ORDER.get(r.pretrain, 99)):
        groups.setdefault(r.schedule, []).append(r)
    return shape, groups


def mean_curve(runs: Iterable[RunRecord], key: str) -> list[tuple[int, float]]:
    """Per-step mean of a series over runs (seeds); steps where any run has a value."""
    by_step: dict[int, list[float]] = {}
    for r in runs:
        for step, value in r.series.get(key, []):
            by_step.setdefault(step, []).append(value)
    return [(step, statistics.fmean(vals)) for step, vals in sorted(by_step.items())]


def fig5_warnings(runs: Iterable[RunRecord], hidden: Sequence[int] | None = None) -> list[str]:
    """Why a Fig. 5 panel would be empty (missing per-epoch series), as one-line messages."""
    _, groups = fig5_groups(runs, hidden)
    selected = [r for rs in groups.values() for r in rs]
    notes = []
    if not any(r.series.get("train_rmse") for r in selected):
        notes.append(NO_TRAIN_SERIES)
    if not any(r.series.get("test_rmse") for r in selected):
        notes.append(NO_TEST_SERIES)
    return notes


def fig5_png(runs: Iterable[RunRecord], path: str | Path, *, hidden: Sequence[int] | None = None) -> Path:
    """Fig. 5 (a, b): training and test RMSE per epoch, one line per schedule (mean over
    seeds), epoch 0 = right after pre-training. A panel without data says why."""
    runs = list(runs)
    shape, groups = fig5_groups(runs, hidden)
    fig, (ax_train, ax_test) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title, missing in (
        (ax_train, "train_rmse", "(a) training RMSE", NO_TRAIN_SERIES),
        (ax_test, "test_rmse", "(b) test RMSE", NO_TEST_SERIES),
    ):
        drawn = 0
        for label, group in groups.items():
            curve = mean_curve(group, key)
            if not curve:
                continue
            color, marker = _STYLES.get(label, (None, "."))
            steps, values = zip(*curve)
            seeds = len({r.seed for r in group})
            ax.plot(
                steps,
                values,
                label=label + (f" (n={seeds})" if seeds > 1 else ""),
                color=color,
                marker=marker,
                markersize=4,
                markevery=max(1, len(steps) // 15),
                linewidth=1.4,
            )
            drawn += 1
        ax.set_title(title)
        ax.set_xlabel("epoch (0 = after pre-training)")
        ax.set_ylabel("RMSE")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, missing.replace(": ", ":\n", 1).replace(" (", "\n("), ha="center", va="center",
                    transform=ax.transAxes, fontsize=8, wrap=True, color="firebrick")
    selected = [r for rs in groups.values() for r in rs]
    based = sorted({r.params["model.based"] for r in selected if r.params.get("model.based")})
    datasets = sorted({r.dataset for r in selected if r.dataset})
    where = "".join(f", {', '.join(v)}{suffix}" for v, suffix in ((based, "-based"), (datasets, "")) if v)
    fig.suptitle(f"Pre-training schedules (Fig. 5): NCAE {list(shape)}{where}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _at_step0(group: Sequence[RunRecord], key: str) -> float | None:
    values = [v for r in group for step, v in r.series.get(key, []) if step == 0]
    return statistics.fmean(values) if values else None


def epoch0_metric(runs: Iterable[RunRecord], hidden: Sequence[int] | None = None) -> str | None:
    """The series Fig. 5's epoch-0 ordering uses: ``test_rmse``, else ``val_rmse``, else None."""
    _, groups = fig5_groups(runs, hidden)
    for key in ("test_rmse", "val_rmse"):
        if any(_at_step0(g, key) is not None for g in groups.values()):
            return key
    return None


def fig5_ordering(runs: Iterable[RunRecord], *, at: str = "final", hidden: Sequence[int] | None = None) -> list[tuple[str, float]]:
    """Schedules of Fig. 5's shape sorted by RMSE, best first: ``at="final"`` the final test
    RMSE (mean over seeds); ``"epoch0"`` epoch 0 (right after pre-training) of the test
    series, or the validation one when the runs have no test series; ``"epoch0_train"``
    epoch 0 of the training series."""
    runs = list(runs)
    _, groups = fig5_groups(runs, hidden)
    if at == "final":
        pairs = [(label, statistics.fmean(r.test_rmse for r in g)) for label, g in groups.items()]
    elif at in ("epoch0", "epoch0_train"):
        key = "train_rmse" if at == "epoch0_train" else epoch0_metric(runs, hidden)
        pairs = [(label, _at_step0(g, key)) for label, g in groups.items()] if key else []
        pairs = [(label, v) for label, v in pairs if v is not None]
    else:
        raise ValueError(f"at must be 'final', 'epoch0' or 'epoch0_train', not {at!r}")
    return sorted(pairs, key=lambda p: p[1])


def _ordering_text(pairs: Sequence[tuple[str, float]]) -> str:
    return " < ".join(f"{label} {value:.4f}" for label, value in pairs)


def _claims(runs: list[RunRecord], hidden) -> list[str]:
    """The paper's Fig. 5 findings (Sec. 5.2) that these runs can check, with ✓ / ✗."""
    final = dict(fig5_ordering(runs, at="final", hidden=hidden))
    e0_key = epoch0_metric(runs, hidden)
    e0 = dict(fig5_ordering(runs, at="epoch0", hidden=hidden))
    e0_train = dict(fig5_ordering(runs, at="epoch0_train", hidden=hidden))
    out = []

    def check(ok: bool, text: str) -> None:
        out.append(f"- {'✓' if ok else '✗'} {text}")

    a, b = "S+U+S", "BP(None)"
    if a in e0 and b in e0:
        check(e0[a] < e0[b], f"S+U+S has a lower epoch-0 {e0_key} than BP(None) ({e0[a]:.4f} vs {e0[b]:.4f})")
    if a in e0_train and b in e0_train:
        check(e0_train[a] < e0_train[b], f"S+U+S has a lower epoch-0 train_rmse than BP(None) ({e0_train[a]:.4f} vs {e0_train[b]:.4f})")
    if a in final and b in final:
        check(final[a] < final[b], f"S+U+S ends with a lower test RMSE than BP(None) ({final[a]:.4f} vs {final[b]:.4f})")
    if a in e0 and "S+U" in e0:
        check(e0[a] < e0["S+U"], f"S+U+S (with V) starts better than S+U: epoch-0 {e0_key} {e0[a]:.4f} vs {e0['S+U']:.4f}")
    pretrained = {k: v for k, v in final.items() if k != b}
    if "U+U" in pretrained and len(pretrained) > 1:
        worst = max(pretrained, key=pretrained.get)
        check(worst == "U+U", f"U+U ends worst of the pre-training schedules (worst here: {worst} {pretrained[worst]:.4f})")
    return out


def fig5_markdown(runs: Iterable[RunRecord], *, image: str | None = FIG5_FILE, hidden: Sequence[int] | None = None) -> str:
    """The Fig. 5 section: the figure, the schedules' order after fine-tuning and at epoch 0,
    and the paper's findings checked against these runs."""
    runs = list(runs)
    shape, groups = fig5_groups(runs, hidden)
    lines = [f"## Fig. 5 — pre-training schedules on NCAE {list(shape)}", ""]
    if image:
        lines += [f"![Fig. 5: training and test RMSE per epoch]({image})", ""]
    counts = ", ".join(f"{label} n={len(g)}" for label, g in groups.items())
    lines.append(f"Runs: {counts}.")
    lines.append("")
    lines.append(f"- after fine-tuning, test RMSE: {_ordering_text(fig5_ordering(runs, hidden=hidden))}")
    key = epoch0_metric(runs, hidden)
    if key:
        lines.append(f"- epoch 0 (right after pre-training), {key}: {_ordering_text(fig5_ordering(runs, at='epoch0', hidden=hidden))}")
    train0 = fig5_ordering(runs, at="epoch0_train", hidden=hidden)
    if train0:
        lines.append(f"- epoch 0, train_rmse: {_ordering_text(train0)}")
    for note in fig5_warnings(runs, hidden):
        lines.append(f"- note: {note}")
    claims = _claims(runs, hidden)
    if claims:
        lines += ["", "The paper's findings (Sec. 5.2) on these runs:", "", *claims]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- output


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
    """Log the report files as artifacts to the sweep's parent run (``parent_run_id``, or the
    one parent all runs share), else to a new run ``report`` (tag ``ncae.report=true``) in
    the runs' experiment. Returns the id of the run that got them."""
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
        tags={REPORT_TAG: "true", "ncae.report_kind": "pretrain", "ncae.report_n_runs": str(len(runs))},
    )
    try:
        for p in paths:
            client.log_artifact(run.info.run_id, str(p))
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id
