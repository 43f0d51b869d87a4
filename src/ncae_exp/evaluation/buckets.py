"""Metrics by user activity (paper Table 4): how sparse users fare against heavy ones.

Buckets follow the paper's intervals of training interactions, 0–1, 1–5, 5–10, 10–20,
20–30: right-closed, ``(lo, hi]``, and the first bucket closed at both ends, ``[lo, hi]``.
Edges ``[0, 1, 5, 10, 20, 30]`` give [0, 1], (1, 5], (5, 10], (10, 20], (20, 30]: a user
with exactly 1 training interaction is in [0, 1], one with 5 in (1, 5], one with 10 in
(5, 10]. Users outside [edges[0], edges[-1]] are in no bucket. Metric tags name the edges
only (``users_1_5`` = (1, 5]); the closure is this rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.ranking import metrics_from_ranks

CLOSURE_NOTE = (
    "Buckets of training interactions per user: right-closed (lo, hi], the first one also "
    "including its low edge ([lo, hi])."
)


def _edge(value) -> float:
    """A bucket edge; YAML's ``.inf`` arrives as a float, the command line's as a string."""
    if isinstance(value, str) and value.strip().lower() in (".inf", "+.inf", "inf", "+inf"):
        return float("inf")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"protocol.activity_buckets: {value!r} is not a number") from None


def check_edges(edges: Sequence) -> list[float]:
    """The edges as floats: at least two, strictly increasing (``ConfigError`` otherwise).
    The protocol checks them when built, before any data is read; the tables again."""
    if isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__"):
        raise ConfigError(f"protocol.activity_buckets must be a list of edges, got {edges!r}")
    out = [_edge(e) for e in edges]
    if len(out) < 2 or any(b <= a for a, b in zip(out, out[1:])) or any(math.isnan(e) for e in out):
        raise ConfigError(f"protocol.activity_buckets must be >= 2 increasing edges, got {out}")
    return out


def _num(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:g}"


def bucket_label(lo: float, hi: float, first: bool) -> str:
    """``[0, 1]`` for the first bucket, ``(1, 5]`` for the others, ``(30, ∞)`` at infinity."""
    right = ")" if math.isinf(hi) else "]"
    return f"{'[' if first else '('}{_num(lo)}, {_num(hi)}{right}"


def bucket_tag(lo: float, hi: float) -> str:
    """The metric/param suffix of a bucket: ``users_0_1``, ``users_1_5``, ``users_30_inf``."""
    return f"users_{lo:g}_{'inf' if math.isinf(hi) else format(hi, 'g')}"


def bucket_masks(activity: np.ndarray, edges: Sequence) -> list[np.ndarray]:
    """One boolean mask over ``activity`` per bucket: [e0, e1], (e1, e2], …"""
    edges = check_edges(edges)
    activity = np.asarray(activity)
    masks = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
        above = activity >= lo if i == 0 else activity > lo
        masks.append(above & (activity <= hi))
    return masks


def bucket_table(
    ranks: np.ndarray, activity: np.ndarray, edges: Sequence[float], cutoff: int = 100
) -> list[dict]:
    """One row per bucket of ``activity`` (training interactions per evaluated user):
    ``low``, ``high``, ``label`` (e.g. ``(1, 5]``), ``tag`` (``users_1_5``), ``users``,
    HR@cutoff and NDCG@cutoff (NaN for an empty bucket). Buckets: [edges[0], edges[1]],
    then (edges[i], edges[i+1]]."""
    edges = check_edges(edges)
    hit, ndcg = metrics_from_ranks(np.asarray(ranks), [cutoff])[cutoff]
    rows = []
    for i, ((lo, hi), sel) in enumerate(zip(zip(edges, edges[1:]), bucket_masks(activity, edges))):
        n = int(sel.sum())
        rows.append({
            "low": lo,
            "high": hi,
            "label": bucket_label(lo, hi, first=i == 0),
            "tag": bucket_tag(lo, hi),
            "users": n,
            f"hr_at_{cutoff}": float(hit[sel].mean()) if n else float("nan"),
            f"ndcg_at_{cutoff}": float(ndcg[sel].mean()) if n else float("nan"),
        })
    return rows


def bucket_markdown(rows: list[dict], cutoff: int = 100) -> str:
    """The buckets as a markdown table, with the closure rule and the metric tags."""
    lines = [f"| training interactions | users | HR@{cutoff} | NDCG@{cutoff} | metric tag |", "|---|---|---|---|---|"]
    for r in rows:
        hr, ndcg = (("–" if math.isnan(r[k]) else f"{r[k]:.4f}") for k in (f"hr_at_{cutoff}", f"ndcg_at_{cutoff}"))
        lines.append(f"| {r['label']} | {r['users']} | {hr} | {ndcg} | {r['tag']} |")
    lines += ["", CLOSURE_NOTE + f" Metrics: test_hr_at_{cutoff}_<tag>, test_ndcg_at_{cutoff}_<tag>."]
    return "\n".join(lines) + "\n"
