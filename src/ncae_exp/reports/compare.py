"""Comparison report of a sweep (or a paper experiment): groups × headline metrics, with
paired t-tests against a baseline group, as markdown, CSV, JSON and plots.

Rows are the groups of :mod:`ncae_exp.reports.compare_runs` (what differs between the
children except the seed); a cell is ``mean ± sample std (n=runs)`` over seeds. The p-value
of a headline test metric is a two-sided paired t-test (``scipy.stats.ttest_rel``) of the
group against the baseline, runs paired by seed (seeds both have). The baseline is the
``baseline`` label given, else the best group by the mean of the validation metric the
protocol selects on (param ``protocol.select``, direction ``protocol.mode``) — never a test
metric. Children on several datasets (tag ``dataset``) give one section per dataset: the
baseline is chosen (or ``baseline`` matched) on each dataset and groups are tested only
against their own dataset's baseline. Used by ``ncae-report`` and callable at a sweep's end::

    paths = build_comparison_report(client, parent_run_id, "reports/x")  # logged under report/
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path

from ncae_exp.evaluation.buckets import bucket_label
from ncae_exp.evaluation.significance import format_mean_std, mean_std, paired_t_test
from ncae_exp.reports.compare_runs import OVERRIDES_TAG, ChildRun, Children, dataset_slug, finite, load_children
from ncae_exp.reports.markdown import markdown_table
from ncae_exp.reports.runs import ReportError

MD_FILE, CSV_FILE, JSON_FILE = "comparison.md", "comparison.csv", "comparison.json"
ARTIFACT_DIR = "report"
HEADLINE = {
    "explicit": ("test_rmse", "val_rmse"),
    "implicit": ("test_hr_at_100", "test_ndcg_at_100", "val_hr_at_100", "val_ndcg_at_100"),
}
_AT_M = re.compile(r"^test_(hr|ndcg)_at_(\d+)$")
_BUCKET = re.compile(r"^test_(hr|ndcg)_at_100_users_([^_]+)_([^_]+)$")
_BUCKET_PARAM = re.compile(r"^buckets\.n_(users_([^_]+)_([^_]+))$")
_CELLS_NOTE = ("Cells: mean ± sample standard deviation (n = runs) over seeds. p: two-sided paired t-test "
               "(scipy.stats.ttest_rel) of the group against the baseline, runs paired by seed (seeds in both); "
               "– with fewer than two pairs or identical differences.")
_BUCKETS_NOTE = "Buckets: right-closed (lo, hi], the first one closed at both ends; users: mean over runs."


def protocol_of(children: Children) -> str:
    """``explicit`` / ``implicit`` from the runs' tag (or param), else from their metrics."""
    name = children.param("protocol.name") or next((r.tags["protocol"] for r in children.runs if "protocol" in r.tags), None)
    if name in HEADLINE:
        return name
    return "implicit" if any("test_hr_at_100" in r.metrics for r in children.runs) else "explicit"


def metric_columns(children: Children, protocol: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(headline metrics present, the tested ones among them = headline test metrics,
    the other test_*_at_M present in M order, per-bucket metrics present in bucket order)."""
    present = {k for r in children.runs for k, v in r.metrics.items() if finite(v) is not None}
    headline = [m for m in HEADLINE[protocol] if m in present]
    at_m = sorted((m for m in present if _AT_M.match(m) and m not in headline),
                  key=lambda m: (int(_AT_M.match(m)[2]), _AT_M.match(m)[1]))
    buckets = sorted((m for m in present if _BUCKET.match(m)),
                     key=lambda m: (float(_BUCKET.match(m)[2]), _BUCKET.match(m)[1]))
    return headline, [m for m in headline if m.startswith("test_")], at_m, buckets


def bucket_tags(children: Children, buckets: Sequence[str]) -> list[str]:
    """The Table 4 buckets of the runs (``users_0_1``, …) in edge order, empty ones included
    (their user counts are params even when no metric was logged)."""
    found = {f"users_{m[2]}_{m[3]}": float(m[2]) for m in map(_BUCKET.match, buckets)}
    for r in children.runs:
        for key in r.params:
            m = _BUCKET_PARAM.match(key)
            if m:
                found[m[1]] = float(m[2])
    return sorted(found, key=lambda t: (found[t], t)) if buckets else []


def _by_seed(values: Sequence[tuple[str | None, float]]) -> dict[str, float]:
    """{seed: value}, runs with the same seed averaged, runs without a seed left out."""
    acc: dict[str, list[float]] = {}
    for seed, v in values:
        if seed is not None:
            acc.setdefault(seed, []).append(v)
    return {s: sum(v) / len(v) for s, v in acc.items()}


def _seed_key(seed) -> tuple:
    return (0, float(seed), "") if re.fullmatch(r"-?\d+(\.\d*)?", str(seed)) else (1, 0.0, str(seed))


def choose_baseline(groups: dict[str, dict], select: str | None, mode: str, requested: str | None = None,
                    missing_ok: bool = False) -> tuple[str | None, str]:
    """(baseline label or None, why). ``requested``: a group label, or a value naming one
    group (``ease`` for ``model=ease``); else the best group by mean ``select`` (a ``val_``
    metric) in direction ``mode``. :class:`ReportError` for an unknown ``requested`` (with
    ``missing_ok``: no baseline) or one naming several groups."""
    if requested:
        if requested in groups:
            return requested, "chosen with --baseline"
        hits = [g for g in groups if requested in [p.partition("=")[2] for p in g.split(",")] + g.split(",")]
        if len(hits) == 1:
            return hits[0], "chosen with --baseline"
        if hits:
            raise ReportError(f"--baseline {requested!r} names several groups: {', '.join(hits)}; give a whole label")
        if missing_ok:
            return None, f"--baseline {requested!r} is not one of the groups here"
        raise ReportError(f"--baseline {requested!r} is not one of the groups: {', '.join(groups)}")
    if not select or not select.startswith("val_"):
        return None, f"no validation metric to choose it (protocol.select={select}); pass --baseline"
    scored = {g: d["metrics"][select]["mean"] for g, d in groups.items() if d["metrics"].get(select, {}).get("n")}
    if not scored:
        return None, f"no group has {select}; pass --baseline"
    pick = max if mode == "max" else min
    best = pick(scored, key=scored.get)
    return best, f"the best group by mean {select} (protocol.select, {mode}); never chosen by a test metric"


def _group(label: str, runs: Sequence[ChildRun], metrics_of: Sequence[str], tags: Sequence[str]) -> dict:
    """A group's stats: per metric mean, std, n and the (seed, value) pairs; bucket users."""
    metrics = {}
    for m in metrics_of:
        values = [(r.seed, finite(r.metrics.get(m))) for r in runs]
        values = [(s, v) for s, v in values if v is not None]
        mean, std = mean_std([v for _, v in values])
        metrics[m] = {"mean": finite(mean), "std": finite(std), "n": len(values), "values": values}
    users = {}
    for tag in tags:
        counts = [c for c in (finite(r.params.get(f"buckets.n_{tag}")) for r in runs) if c is not None]
        users[tag] = sum(counts) / len(counts) if counts else None
    seeds = sorted({r.seed for r in runs if r.seed is not None}, key=_seed_key)
    return {"label": label, "run_ids": [r.run_id for r in runs], "seeds": seeds,
            "metrics": metrics, "bucket_users": users, "tests": {}}


def _test_against(groups: dict[str, dict], chosen: str, tested: Sequence[str]) -> None:
    """Paired t-tests of every group against ``chosen`` (of the same dict), runs paired by seed."""
    for label, g in groups.items():
        if label == chosen:
            continue
        for m in tested:
            a, b = _by_seed(g["metrics"][m]["values"]), _by_seed(groups[chosen]["metrics"][m]["values"])
            common = sorted(set(a) & set(b), key=_seed_key)
            test = paired_t_test([a[s] for s in common], [b[s] for s in common])
            g["tests"][m] = {k: finite(v) for k, v in test.items()} | {"seeds": common}


def comparison(children: Children, baseline: str | None = None) -> dict:
    """The report's content as plain data (what comparison.json holds). On several datasets
    the groups carry their ``dataset`` and ``sections`` lists each dataset's baseline."""
    protocol = protocol_of(children)
    headline, tested, at_m, buckets = metric_columns(children, protocol)
    select = children.param("protocol.select") or children.parent_tags.get("protocol.select") or \
        ("val_rmse" if protocol == "explicit" else "val_hr_at_100")
    mode = children.param("protocol.mode") or ("min" if select.endswith("rmse") else "max")
    tags = bucket_tags(children, buckets)
    metrics_of = headline + at_m + buckets + ([select] if select not in headline else [])
    all_groups, sections = [], []
    for dataset, section in children.sections().items():
        groups = {label: _group(label, runs, metrics_of, tags) for label, runs in section.items()}
        chosen, reason = choose_baseline(groups, select, mode, baseline, missing_ok=children.by_dataset)
        if chosen:
            _test_against(groups, chosen, tested)
        if children.by_dataset:
            groups = {label: {"dataset": dataset, **g} for label, g in groups.items()}
        all_groups += groups.values()
        sections.append({"dataset": dataset, "baseline": chosen, "baseline_reason": reason, "groups": list(groups)})
    if children.by_dataset and baseline and not any(s["baseline"] for s in sections):
        found = "; ".join(f"{s['dataset']}: {', '.join(s['groups'])}" for s in sections)
        raise ReportError(f"--baseline {baseline!r} is not one of the groups on any dataset ({found})")
    chosen, reason = sections[0]["baseline"], sections[0]["baseline_reason"]
    if children.by_dataset:
        chosen, reason = None, "chosen on each dataset (sections)"
    extra = {"sections": sections} if children.by_dataset else {}
    return {
        "parent_run_id": children.parent_run_id,
        "parent_name": children.parent_name,
        "sweep_overrides": children.parent_tags.get(OVERRIDES_TAG),
        "protocol": protocol,
        "datasets": sorted({r.tags.get("dataset") or r.params.get("dataset.name") or "?" for r in children.runs}),
        "select": select,
        "mode": mode,
        "grouping": children.grouping,
        "baseline": chosen,
        "baseline_reason": reason,
        **extra,
        "headline": headline,
        "tested": tested,
        "at_m": at_m,
        "buckets": buckets,
        "bucket_tags": tags,
        "groups": all_groups,
        "n_runs": len(children.runs),
        "not_finished": [{"run_id": r.run_id, "name": r.name, "status": r.status} for r in children.not_finished],
        "left_out": children.left_out,
    }


def _cell(stats: dict | None) -> str:
    if not stats or not stats["n"]:
        return "–"
    return f"{format_mean_std([v for _, v in stats['values']])} (n={stats['n']})"


def format_p(test: dict | None) -> str:
    """``0.0123``, ``3.2e-05`` for tiny values, ``–`` without a test (n < 2, no variance)."""
    p = (test or {}).get("p")
    if p is None or (test or {}).get("n", 0) < 2:
        return "–"
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def _images_by_dataset(images: Sequence[str], datasets: Sequence[str]) -> dict[str | None, list[str]]:
    """{dataset: its figures (file stem ending ``_<dataset>``)}; the others under None."""
    out: dict[str | None, list[str]] = {None: [], **{d: [] for d in datasets}}
    for image in images:
        hits = [d for d in datasets if Path(image).stem.endswith("_" + dataset_slug(d))]
        out[max(hits, key=lambda d: len(dataset_slug(d))) if hits else None].append(image)
    return out


def _section_lines(data: dict, groups: Sequence[dict], base: str | None, reason: str, sub: str, notes: bool) -> list[str]:
    """The baseline, the headline table, the other cutoffs and the buckets of ``groups``."""
    lines = ["", (f"Baseline of the p-values: **{base}** — {reason}." if base else f"No baseline: {reason}."), ""]
    header = ["group", *data["headline"], *(f"p {m}" for m in data["tested"])]
    rows = []
    for g in groups:
        pcells = ["baseline" if g["label"] == base else format_p(g["tests"].get(m)) for m in data["tested"]]
        rows.append([g["label"], *(_cell(g["metrics"].get(m)) for m in data["headline"]), *pcells])
    lines += markdown_table(header, rows)
    lines += ["", _CELLS_NOTE] if notes else []
    if data["at_m"]:
        cols = sorted((m for m in data["headline"] + data["at_m"] if _AT_M.match(m)),
                      key=lambda m: (int(_AT_M.match(m)[2]), _AT_M.match(m)[1]))
        lines += ["", f"{sub} Test HR@M / NDCG@M", ""]
        lines += markdown_table(["group", *cols], [[g["label"], *(_cell(g["metrics"].get(m)) for m in cols)] for g in groups])
    if data["bucket_tags"]:
        lines += ["", f"{sub} Test metrics @100 by user activity (Table 4)", ""]
        header = ["training interactions", "users"] + [f"{n.upper()}@100 {g['label']}" for n in ("hr", "ndcg") for g in groups]
        rows = []
        for i, tag in enumerate(data["bucket_tags"]):
            _, lo, hi = tag.split("_")
            users = [u for u in (g["bucket_users"].get(tag) for g in groups) if u is not None]
            row = [bucket_label(float(lo), float(hi), first=i == 0), f"{sum(users) / len(users):g}" if users else "–"]
            row += [_cell(g["metrics"].get(f"test_{n}_at_100_{tag}")) for n in ("hr", "ndcg") for g in groups]
            rows.append(row)
        lines += markdown_table(header, rows)
        lines += ["", _BUCKETS_NOTE] if notes else []
    return lines


def comparison_markdown(data: dict, images: Sequence[str] = ()) -> str:
    """The report as markdown: the headline table with p-values, the other cutoffs, the
    Table 4 buckets when the runs have them (one section of these per dataset when the
    runs span several), the runs that did not finish."""
    groups, sections = data["groups"], data.get("sections")
    seeds = sorted({s for g in groups for s in g["seeds"]}, key=_seed_key)
    lines = [f"## Comparison — {data['parent_name']} (run {data['parent_run_id']})", ""]
    where = f" on {len(sections)} datasets" if sections else ""
    summary = [f"{data['n_runs']} finished runs in {len(groups)} groups{where}, grouped by {data['grouping']}",
               f"protocol {data['protocol']}", "dataset " + ", ".join(data["datasets"])]
    if seeds:
        summary.append("seeds " + ", ".join(seeds))
    lines.append(" · ".join(summary))
    if data["sweep_overrides"]:
        lines += ["", f"Sweep: `ncae-run -m {data['sweep_overrides']}`"]
    if not sections:
        lines += _section_lines(data, groups, data["baseline"], data["baseline_reason"], "###", notes=True)
        lines += [line for image in images for line in ("", f"![{Path(image).stem}]({image})")]
    else:
        lines += ["", "One section per dataset: each has its own baseline, and groups are tested only against it."]
        figures = _images_by_dataset(images, [s["dataset"] for s in sections])
        for s in sections:
            lines += ["", f"### Dataset {s['dataset']}"]
            lines += _section_lines(data, [g for g in groups if g["dataset"] == s["dataset"]], s["baseline"],
                                    s["baseline_reason"], "####", notes=False)
            lines += [line for image in figures[s["dataset"]] for line in ("", f"![{Path(image).stem}]({image})")]
        lines += ["", _CELLS_NOTE] + (["", _BUCKETS_NOTE] if data["bucket_tags"] else [])
        lines += [line for image in figures[None] for line in ("", f"![{Path(image).stem}]({image})")]
    if data["not_finished"]:
        lines += ["", f"### Runs that did not finish (left out): {len(data['not_finished'])}", ""]
        lines += [f"- `{r['name']}` {r['status']} (run {r['run_id']})" for r in data["not_finished"]]
    if data["left_out"]:
        lines += ["", f"{data['left_out']} finished child run(s) without tag ncae.stage=retrain left out "
                  "(the report is on the retrain repeats)."]
    return "\n".join(lines) + "\n"


def write_csv(data: dict, path: Path) -> Path:
    """One row per group: mean, std, n of every metric; p, t, pairs of the tested ones (and
    first its dataset when the runs span several)."""
    metrics = data["headline"] + data["at_m"] + data["buckets"]
    bases = {s["dataset"]: s["baseline"] for s in data.get("sections", [])}
    fields = ["dataset"] if bases else []
    fields += ["group", "baseline", "runs", "seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
    fields += [f"{k}_{m}" for m in data["tested"] for k in ("p", "t", "pairs")]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for g in data["groups"]:
            base = bases[g["dataset"]] if bases else data["baseline"]
            row = {"dataset": g["dataset"]} if bases else {}
            row |= {"group": g["label"], "baseline": g["label"] == base, "runs": len(g["run_ids"]), "seeds": " ".join(g["seeds"])}
            for m in metrics:
                st = g["metrics"].get(m) or {}
                row.update({f"{m}_mean": st.get("mean"), f"{m}_std": st.get("std"), f"{m}_n": st.get("n", 0)})
            for m in data["tested"]:
                t = g["tests"].get(m) or {}
                row.update({f"p_{m}": t.get("p"), f"t_{m}": t.get("t"), f"pairs_{m}": t.get("n")})
            writer.writerow(row)
    return path


def _report(client, parent_run_id: str, out_dir: str | Path, baseline: str | None = None,
            log: bool = True) -> tuple[dict, list[Path]]:
    """(the report's data, the files written: markdown, CSV, JSON, plots)."""
    from ncae_exp.reports.compare_plots import comparison_plots

    children = load_children(client, parent_run_id)
    data = comparison(children, baseline)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = comparison_plots(client, children, data, out)
    md = out / MD_FILE
    md.write_text(comparison_markdown(data, images=[p.name for p in plots]), encoding="utf-8")
    js = out / JSON_FILE
    js.write_text(json.dumps(data, indent=2, allow_nan=False, default=str), encoding="utf-8")
    paths = [md, write_csv(data, out / CSV_FILE), js, *plots]
    if log:
        for p in paths:
            client.log_artifact(children.parent_run_id, str(p), artifact_path=ARTIFACT_DIR)
    return data, paths


def build_comparison_report(client, parent_run_id: str, out_dir: str | Path, baseline: str | None = None,
                            log: bool = True) -> list[Path]:
    """Write the comparison of ``parent_run_id``'s children into ``out_dir`` (comparison.md,
    .csv, .json and the plots) and, with ``log``, log them to the parent run under
    ``report/``. :class:`ReportError` when there is nothing to compare."""
    return _report(client, parent_run_id, out_dir, baseline, log)[1]
