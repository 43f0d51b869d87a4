"""The paper's Fig. 5: training and test RMSE per epoch of each pre-training schedule.

The curves are the ``train_rmse`` / ``test_rmse`` series of the runs (steps 0..epochs_run;
step 0 = right after pre-training), averaged over seeds, on one hidden shape (the DOUBLE
shape with the most schedules, largest K on ties). The pipeline logs the final values once
more at step ``epochs_run + 1``; that point is not part of the series (see
:func:`ncae_exp.reports.runs.load_metric_series`). Besides the png: the schedules' order
after fine-tuning and at epoch 0, and the paper's findings (Sec. 5.2) checked on the runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ncae_exp.reports.runs import ReportError, RunRecord, schedule_rank  # noqa: E402

FIG5_FILE = "fig5.png"

_STYLES = {
    "S+U+S": ("tab:red", "o"),
    "S+U": ("tab:blue", "s"),
    "S+S": ("tab:green", "^"),
    "U+S": ("tab:purple", "v"),
    "U+U": ("tab:orange", "D"),
    "BP(None)": ("black", "x"),
}

NO_TEST_SERIES = (
    "these runs have no per-epoch test_rmse series, so Fig. 5's test panel is empty: "
    "re-run the sweep with protocol.log_test_rmse=true (ncae-run +experiment=fig5 sets it)"
)
NO_TRAIN_SERIES = (
    "these runs have no per-epoch train_rmse series, so Fig. 5's training panel is empty: "
    "re-run the sweep with protocol.log_train_rmse=true"
)


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
    for r in sorted((r for r in runs if r.hidden == shape), key=lambda r: schedule_rank(r.pretrain)):
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
