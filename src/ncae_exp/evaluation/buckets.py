"""Metrics by user activity (paper Table 4): how sparse users fare against heavy ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.ranking import metrics_from_ranks


def _edge(value) -> float:
    """A bucket edge; YAML's ``.inf`` arrives as a float, the command line's as a string."""
    if isinstance(value, str) and value.strip().lower() in (".inf", "+.inf", "inf", "+inf"):
        return float("inf")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"protocol.activity_buckets: {value!r} is not a number") from None


def bucket_table(
    ranks: np.ndarray, activity: np.ndarray, edges: Sequence[float], cutoff: int = 100
) -> list[dict[str, float]]:
    """One row per bucket [edges[i], edges[i+1]) of ``activity`` (training interactions per
    evaluated user): users, HR@cutoff and NDCG@cutoff (NaN for an empty bucket)."""
    edges = [_edge(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"protocol.activity_buckets must be >= 2 increasing edges, got {edges}")
    hit, ndcg = metrics_from_ranks(np.asarray(ranks), [cutoff])[cutoff]
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        sel = (activity >= lo) & (activity < hi)
        n = int(sel.sum())
        rows.append({
            "low": lo,
            "high": hi,
            "users": n,
            f"hr_at_{cutoff}": float(hit[sel].mean()) if n else float("nan"),
            f"ndcg_at_{cutoff}": float(ndcg[sel].mean()) if n else float("nan"),
        })
    return rows


def bucket_markdown(rows: list[dict[str, float]], cutoff: int = 100) -> str:
    lines = [f"| training interactions | users | HR@{cutoff} | NDCG@{cutoff} |", "|---|---|---|---|"]
    for r in rows:
        hi = "∞" if np.isinf(r["high"]) else f"{r['high']:g}"
        lines.append(f"| [{r['low']:g}, {hi}) | {r['users']} | {r[f'hr_at_{cutoff}']:.4f} | {r[f'ndcg_at_{cutoff}']:.4f} |")
    return "\n".join(lines) + "\n"
