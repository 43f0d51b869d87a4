"""The paper's Table 2 (test RMSE of SINGLE/DOUBLE with and without pre-training) as markdown.

One row per depth and schedule (``SINGLE``, ``SINGLE*``, ``DOUBLE``, ``DOUBLE*``,
``L=<n>`` / ``L=<n>*`` deeper; ``*`` = pre-trained, the paper's S+U+S; other schedules get
their own row, e.g. ``DOUBLE* (S+U)``), one column per hidden size K; a cell is the mean
final ``test_rmse`` (the epoch selected on validation) of its runs, ``± sample std (n=…)``
when there are several (seeds). The paper's ML-10M values follow, and the difference to
them when every run is on ml-10m.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from ncae_exp.reports.markdown import format_cell, markdown_table
from ncae_exp.reports.runs import SCHEDULE_LABELS, ReportError, RunRecord, distinct_params

_ROW_ORDER = ("none", "sus", "su", "ss", "us", "uu")  # rows per depth: plain, then "*"

# Table 2 of the paper: ML-10M, random 80/10/10, item-based, test RMSE (the spec restates it: ncae-spec.md, "Results to reproduce").
PAPER_K = (200, 300, 400, 500)
PAPER_TABLE2 = {
    "SINGLE": (0.791, 0.784, 0.781, 0.779),
    "SINGLE*": (0.790, 0.783, 0.780, 0.778),
    "DOUBLE": (0.803, 0.788, 0.781, 0.775),
    "DOUBLE*": (0.794, 0.779, 0.771, 0.767),
}

# (param, label) of the settings the summary line names.
_SETTINGS = (
    ("model.based", "based"),
    ("model.l2", "λ"),
    ("model.dropout", "q"),
    ("trainer.epochs", "epochs"),
    ("model.batch_size", "batch"),
)


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


def settings_summary(runs: Sequence[RunRecord]) -> str:
    """One line with the settings the runs share; a setting with several values is flagged
    (its cells average over them)."""
    runs = list(runs)
    parts = [f"{len(runs)} run{'s' if len(runs) != 1 else ''}"]
    datasets = sorted({r.dataset or "?" for r in runs})
    parts.append("dataset " + ", ".join(datasets))
    split = sorted({"/".join(r.params.get(f"split.{k}", "?") for k in ("train", "val", "test")) for r in runs})
    mixed = []
    if len(datasets) > 1:
        mixed.append("dataset")
    for key, label in _SETTINGS:
        values = distinct_params(runs, key)
        if values:
            parts.append(f"{label} {', '.join(values)}")
            if len(values) > 1:
                mixed.append(key)
    if split != ["?/?/?"]:
        parts.append("split " + ", ".join(split))
        if len(split) > 1:
            mixed.append("split")
    stage = distinct_params([r for r in runs if r.pretrain != "none"], "pretrain.epochs_per_stage")
    if stage:
        parts.append(f"{', '.join(stage)} epochs per pre-training stage")
        if len(stage) > 1:
            mixed.append("pretrain.epochs_per_stage")
    seeds = distinct_params(runs, "seed")
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
    lines += markdown_table(["Configuration", *headers], rows)
    lines += [
        "",
        "SINGLE = one hidden layer (L=2), DOUBLE = two hidden layers of size K (L=3), L=<n> = n weight "
        "layers; `*` = with pre-training: S+U+S (SR, DR for each further hidden layer, V; on one hidden "
        "layer SR then V), other schedules named in brackets. Cell: mean final test RMSE (the epoch "
        "chosen on validation) over the runs, ± sample standard deviation and n when several (seeds).",
    ]
    if paper:
        lines += _paper_sections(runs, cells)
    return "\n".join(lines) + "\n"


def _paper_sections(runs: Sequence[RunRecord], cells: dict[tuple[str, str], list[float]]) -> list[str]:
    """The paper's values and, when every run is on ml-10m, this report minus them."""
    paper_header = ["Configuration", *(f"K = {k}" for k in PAPER_K)]
    lines = ["", "### Paper's values (Li et al., Table 2: ML-10M, 80/10/10, test RMSE)", ""]
    lines += markdown_table(
        paper_header, [[label, *(f"{v:.3f}" for v in values)] for label, values in PAPER_TABLE2.items()]
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
            lines += markdown_table(paper_header, diff_rows)
    return lines
