"""The comparison report's figures (style of :mod:`ncae_exp.tracking.plots`).

- implicit: ``comparison_at_m.png`` — test HR@M and NDCG@M against M, one line per group
  (mean over seeds, error bars = sample std);
- explicit: ``comparison_val_rmse.png`` — validation RMSE per epoch, one line per group
  (mean over seeds, band = sample std), epoch 0 = before fine-tuning.

The legend sits outside the axes, right of the frame. Runs on several datasets: one figure
per dataset, named after it (``comparison_at_m_lastfm.png``), its groups against its baseline.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ncae_exp.reports.compare_runs import Children, dataset_file  # noqa: E402
from ncae_exp.reports.runs import load_metric_series  # noqa: E402

AT_M_FILE = "comparison_at_m.png"
VAL_RMSE_FILE = "comparison_val_rmse.png"
_MARKERS = "osD^v<>px*h"
_TEST_AT = re.compile(r"^test_(hr|ndcg)_at_(\d+)$")


def _style(i: int, label: str, baseline: str | None) -> dict:
    return {
        "color": plt.get_cmap("tab10")(i % 10),
        "marker": _MARKERS[i % len(_MARKERS)],
        "linewidth": 2.2 if label == baseline else 1.4,
        "label": label + (" (baseline)" if label == baseline else ""),
    }


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")  # keeps the outside legend in the file
    plt.close(fig)
    return path


def _legend(ax) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0.0, frameon=False)


def _section(data: dict, dataset: str | None) -> tuple[list[dict], str | None, str]:
    """(the groups, the baseline, the datasets for the title) of one dataset (None: all)."""
    if dataset is None:
        return data["groups"], data["baseline"], ", ".join(data["datasets"])
    baseline = next(s["baseline"] for s in data["sections"] if s["dataset"] == dataset)
    return [g for g in data["groups"] if g.get("dataset") == dataset], baseline, dataset


def at_m_png(data: dict, path: Path, dataset: str | None = None) -> Path | None:
    """Test HR@M and NDCG@M against M per group (implicit), the groups of ``dataset`` if
    given; None without such metrics."""
    groups, baseline, title = _section(data, dataset)
    cutoffs = sorted({int(_TEST_AT.match(m)[2]) for m in data["headline"] + data["at_m"] if _TEST_AT.match(m)})
    if not cutoffs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, name in zip(axes, ("hr", "ndcg")):
        for i, g in enumerate(groups):
            points = [(m, g["metrics"].get(f"test_{name}_at_{m}")) for m in cutoffs]
            points = [(m, st) for m, st in points if st and st["n"]]
            if not points:
                continue
            ax.errorbar(
                [m for m, _ in points],
                [st["mean"] for _, st in points],
                yerr=[st["std"] if st["n"] > 1 else 0.0 for _, st in points],
                capsize=3,
                markersize=4,
                **_style(i, g["label"], baseline),
            )
        ax.set_xlabel("M (length of the ranked list)")
        ax.set_ylabel(f"test {name.upper()}@M")
        ax.set_xticks(cutoffs)
        ax.grid(alpha=0.3)
    axes[0].set_title("HR@M (mean ± std over seeds)")
    axes[1].set_title("NDCG@M (mean ± std over seeds)")
    _legend(axes[1])
    fig.suptitle(f"{data['parent_name']}: {title}")
    fig.tight_layout()
    return _save(fig, path)


def _mean_std_curve(series: Sequence[list[tuple[int, float]]]) -> list[tuple[int, float, float]]:
    by_step: dict[int, list[float]] = {}
    for s in series:
        for step, value in s:
            by_step.setdefault(step, []).append(value)
    return [(step, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0) for step, v in sorted(by_step.items())]


def val_rmse_png(client, children: Children, data: dict, path: Path, key: str = "val_rmse",
                 dataset: str | None = None) -> Path | None:
    """Validation RMSE per epoch per group (explicit), the groups of ``dataset`` if given;
    None when no run has the series."""
    groups = children.sections()[dataset]
    _, baseline, title = _section(data, dataset)
    curves = {}
    for label, runs in groups.items():
        series = []
        for r in runs:
            epochs = r.metrics.get("epochs_run")
            epochs = int(round(epochs)) if epochs is not None and epochs == epochs else None
            series.append(load_metric_series(client, r.run_id, epochs, [key]).get(key, []))
        curve = _mean_std_curve([s for s in series if s])
        if curve:
            curves[label] = (curve, sum(1 for s in series if s))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, label in enumerate(groups):
        if label not in curves:
            continue
        curve, n = curves[label]
        steps, means, stds = zip(*curve)
        style = _style(i, label, baseline)
        style["label"] += f" (n={n})"
        ax.plot(steps, means, markersize=4, markevery=max(1, len(steps) // 15), **style)
        if n > 1:
            ax.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=style["color"], alpha=0.15, linewidth=0)
    ax.set_xlabel("epoch (0 = before fine-tuning)")
    ax.set_ylabel("validation RMSE (mean ± std over seeds)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.set_title(f"{data['parent_name']}: {title}")
    _legend(ax)
    fig.tight_layout()
    return _save(fig, path)


def comparison_plots(client, children: Children, data: dict, out_dir: Path) -> list[Path]:
    """The protocol's figures written into ``out_dir`` (those with data), one per dataset
    when the report has a section per dataset."""
    out_dir = Path(out_dir)
    made = []
    for d in [s["dataset"] for s in data.get("sections", [])] or [None]:
        if data["protocol"] == "implicit":
            made.append(at_m_png(data, out_dir / dataset_file(AT_M_FILE, d), d))
        else:
            made.append(val_rmse_png(client, children, data, out_dir / dataset_file(VAL_RMSE_FILE, d), dataset=d))
    return [p for p in made if p is not None]
