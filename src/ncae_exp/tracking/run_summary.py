"""The end-of-run summary on the console: a small table instead of one long line of floats.

It shows what selection chose (the epoch, as an integer, by which validation metric), the
validation and test metrics side by side (4 decimals; with ``retrain=true`` the test column
is mean ± std over the repeats), the timings, the output folder and where the run is in
MLflow: a link for a tracking server, else the run id and how to open the UI.
"""

from __future__ import annotations

import re
from pathlib import Path

from ncae_exp.tracking.mlflow_tracker import resolve_tracking_uri, shown_uri

DEFAULT_STORE = "sqlite:///mlflow.db"  # what `make ui` serves
LOCAL_UI = "http://127.0.0.1:5000"  # `make ui` / `mlflow ui` default address
# Final values that are counts, shown as integers (MLflow stores every metric as a float).
COUNTS = {"best_epoch", "epochs_run", "repeats", "retrain_epochs", "compare_retrain_epochs", "n_children",
          "n_failed_jobs"}
# val_rmse, test_hr_at_100, test_hr_at_100_std, compare_test_rmse — not buckets (…_users_1_5)
_METRIC = re.compile(r"(?P<split>val|test)_(?P<name>[a-z0-9]+(?:_at_\d+)?)")


def run_link(tracking_uri: str | None, experiment_id: str | None, run_id: str | None) -> str | None:
    """``<uri>/#/experiments/<id>/runs/<run id>`` for an http(s) tracking server, else None."""
    if not (tracking_uri and experiment_id and run_id) or not str(tracking_uri).startswith(("http://", "https://")):
        return None
    # never print a password of the URI (the link still names the server)
    return f"{shown_uri(str(tracking_uri)).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def where_in_mlflow(tracking_uri: str | None, experiment_id: str | None, run_id: str | None) -> list[tuple[str, str]]:
    """Rows saying where the run is: its link, or its id, store and how to open the UI."""
    if not run_id:
        return []
    link = run_link(tracking_uri, experiment_id, run_id)
    if link:
        return [("MLflow run", link)]
    rows = [("MLflow run", f"{run_id} in {shown_uri(str(tracking_uri))}")]
    if tracking_uri and str(tracking_uri).startswith(("sqlite:", "file:")):
        local = resolve_tracking_uri(DEFAULT_STORE)
        # `make ui` serves ./mlflow.db from the project's folder (where its Makefile is)
        here = tracking_uri == local and Path("Makefile").is_file()
        ui = "make ui" if here else f"mlflow ui --backend-store-uri {tracking_uri}"
        page = f"{LOCAL_UI}/#/experiments/{experiment_id}/runs/{run_id}" if experiment_id else LOCAL_UI
        rows.append(("open it", f"{ui}, then {page}"))
    return rows


def fmt_value(key: str, value: float) -> str:
    """A count as an integer, anything else with 4 decimals."""
    if key in COUNTS or key.startswith("n_"):
        return str(int(round(value)))
    return f"{value:.4f}"


def _metric_label(name: str) -> str:
    return name.replace("_at_", "@")  # hr_at_100 -> hr@100


def _order(name: str) -> tuple[int, str]:
    cutoff = re.search(r"_at_(\d+)$", name)
    return (int(cutoff.group(1)) if cutoff else 0, name)


def metrics_table(final: dict[str, float]) -> list[list[str]]:
    """Rows ``[metric, validation, test(, compared, p)]``, header first; one row per metric
    name (``rmse``); ranking metrics (``hr_at_<M>``) as a grid of M instead."""
    names = {m["name"] for k in final if (m := _METRIC.fullmatch(k))}
    if names and all("_at_" in n for n in names):
        return _cutoff_grid(final, names)
    compared = any(k.startswith("compare_test_") for k in final)
    header = ["metric", "validation", "test"] + (["compared", "p"] if compared else [])
    rows = [header]
    for name in sorted(names, key=_order):
        val, test = final.get(f"val_{name}"), final.get(f"test_{name}")
        row = [_metric_label(name),
               "" if val is None else f"{val:.4f}", mean_std(final, f"test_{name}")]
        if compared:
            p = final.get(f"ttest_p_test_{name}")
            row += [mean_std(final, f"compare_test_{name}"), "" if p is None else f"{p:.2g}"]
        rows.append(row)
    return rows if len(rows) > 1 else []


def _cutoff_grid(final: dict[str, float], names: set[str]) -> list[list[str]]:
    """HR@M / NDCG@M: a row per split and metric (``test hr``), a column per M."""
    cutoffs = sorted({int(n.rsplit("_at_", 1)[1]) for n in names})
    metrics = sorted({n.rsplit("_at_", 1)[0] for n in names}, key=lambda m: (m != "hr", m))
    rows = [["metric", *[f"@{m}" for m in cutoffs]]]
    for prefix, label in (("val_", "val "), ("test_", "test "), ("compare_test_", "compared "),
                          ("ttest_p_test_", "p ")):
        for metric in metrics:
            keys = [f"{prefix}{metric}_at_{m}" for m in cutoffs]
            if any(k in final for k in keys):
                cells = [(f"{final[k]:.2g}" if prefix.startswith("ttest") else mean_std(final, k)) if k in final
                         else "" for k in keys]
                rows.append([label + metric, *cells])
    return rows


def mean_std(final: dict[str, float], key: str) -> str:
    if key not in final:
        return ""
    std = final.get(f"{key}_std")
    return f"{final[key]:.4f}" + ("" if std is None else f" ± {std:.4f}")


def align(rows: list[list[str]], indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell."""
    if not rows:
        return []
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(max(len(r) for r in rows))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def summary_table(title: str, final: dict[str, float], output_dir: Path | str, select: str | None = None,
                  mode: str | None = None, mlflow_rows: list[tuple[str, str]] | None = None) -> str:
    """The whole summary, a title line then aligned rows (see the module's docstring)."""
    rows: list[list[str]] = []
    if "best_epoch" in final:
        by = f", by {select} ({mode}imised)" if select and mode else ""
        of = f" of {fmt_value('epochs_run', final['epochs_run'])}" if "epochs_run" in final else ""
        rows.append(["selected epoch", f"{fmt_value('best_epoch', final['best_epoch'])}{of}{by}"])
    if "repeats" in final:
        epochs = fmt_value("retrain_epochs", final.get("retrain_epochs", final.get("best_epoch", 0)))
        rows.append(["retrained", f"{fmt_value('repeats', final['repeats'])} seeds × {epochs} epochs on training +"
                                  " validation; test = mean ± std over the seeds"])
    table = metrics_table(final)
    timing = []
    if "epoch_seconds" in final:
        timing.append(["mean epoch", f"{final['epoch_seconds']:.2f} s"])
    if "fit_seconds" in final:
        extra = [f"pre-training {final['pretrain_seconds']:.1f} s"] if final.get("pretrain_seconds") else []
        extra += [f"checkpoints {final['checkpoint_seconds']:.3f} s/epoch"] if "checkpoint_seconds" in final else []
        timing.append(["fit", f"{final['fit_seconds']:.1f} s" + (f" ({', '.join(extra)})" if extra else "")])
    tail = [*timing, ["output folder", str(output_dir)], *[list(r) for r in mlflow_rows or []]]
    # One label column for the rows above and below the metric table, so they line up.
    width = max(len(r[0]) for r in rows + tail + table[:1] or [["", ""]])
    pad = lambda block: [[r[0].ljust(width), *r[1:]] for r in block]  # noqa: E731
    lines = [title, *align(pad(rows)), *align(pad(table)), *align(pad(tail))]
    if any(k.startswith("test_") and "_users_" in k for k in final):
        lines.append(f"  (test metrics by user activity: activity_buckets.md in {output_dir})")
    return "\n".join(lines)


def job_line(label: str, final: dict[str, float], select: str | None, where: str | None = None) -> str:
    """A sweep job's one-line summary (the sweep's table comes at its end)."""
    parts = []
    if "best_epoch" in final:
        parts.append(f"best epoch {fmt_value('best_epoch', final['best_epoch'])}")
    for key in [select, *_headline_tests(final)]:
        if key and key in final:
            parts.append(f"{key} {mean_std(final, key)}")
    if "fit_seconds" in final:
        parts.append(f"{final['fit_seconds']:.1f} s")
    return f"{label} finished: " + ", ".join(parts) + (f" ({where})" if where else "")


def _headline_tests(final: dict[str, float]) -> list[str]:
    """test_rmse, or test HR/NDCG@100 — the test numbers a comparison reads first."""
    return [k for k in ("test_rmse", "test_hr_at_100", "test_ndcg_at_100") if k in final]
