"""Paper Table 4's user-activity buckets: [0, 1], (1, 5], (5, 10], (10, 20], (20, 30] (+ (30, ∞)).

Constructed ranks and activity with users exactly on the edges (1, 5, 10, 20, 30), HR@100
and NDCG@100 worked by hand (NDCG of a hit at 0-based rank r is 1 / log2(r + 2)).
"""

import math

import numpy as np
import pytest

from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.buckets import bucket_label, bucket_markdown, bucket_masks, bucket_table, bucket_tag
from ncae_exp.tracking.base import MemoryTracker

PAPER_EDGES = [0, 1, 5, 10, 20, 30, ".inf"]  # as conf/experiment/table4.yaml (a string .inf as on a command line)

#                    user:  0  1  2    3  4   5    6   7   8   9    10
ACTIVITY = np.array([0, 1, 2, 5, 6, 10, 11, 20, 30, 31, 100])
RANKS = np.array([0, 2, 150, 6, 99, 100, 14, 0, 1, 500, 0])
# per user HR@100:  1  1  0    1  1   0    1   1   1   0    1   (rank 100 is the 101st: a miss)
# per user NDCG@100: 1, 1/2, 0, 1/3, 1/log2(101), 0, 1/4, 1, 1/log2(3), 0, 1

EXPECTED = [
    # label, tag, users, HR@100, NDCG@100
    ("[0, 1]", "users_0_1", 2, 1.0, (1 + 1 / 2) / 2),  # users with 0 and exactly 1 interaction
    ("(1, 5]", "users_1_5", 2, 0.5, (0 + 1 / 3) / 2),  # 2 and exactly 5
    ("(5, 10]", "users_5_10", 2, 0.5, (1 / math.log2(101) + 0) / 2),  # 6 and exactly 10
    ("(10, 20]", "users_10_20", 2, 1.0, (1 / 4 + 1) / 2),  # 11 and exactly 20
    ("(20, 30]", "users_20_30", 1, 1.0, 1 / math.log2(3)),  # exactly 30
    ("(30, ∞)", "users_30_inf", 2, 0.5, (0 + 1) / 2),  # 31 and 100: beyond the paper's table
]


def test_paper_buckets_are_right_closed_and_the_first_includes_its_low_edge():
    rows = bucket_table(RANKS, ACTIVITY, PAPER_EDGES, cutoff=100)
    assert [(r["label"], r["tag"], r["users"]) for r in rows] == [e[:3] for e in EXPECTED]
    for row, (label, _, _, hr, ndcg) in zip(rows, EXPECTED):
        assert row["hr_at_100"] == pytest.approx(hr), label
        assert row["ndcg_at_100"] == pytest.approx(ndcg), label
    assert sum(r["users"] for r in rows) == len(ACTIVITY), "every user in exactly one bucket"
    assert rows[0]["low"] == 0 and math.isinf(rows[-1]["high"])


def test_boundary_users_land_in_the_bucket_that_ends_at_them():
    masks = bucket_masks(ACTIVITY, PAPER_EDGES)
    where = {int(a): [i for i, m in enumerate(masks) if m[u]] for u, a in enumerate(ACTIVITY)}
    assert where[0] == [0] and where[1] == [0], "0 and 1 interaction: [0, 1]"
    assert where[5] == [1], "exactly 5: (1, 5], not (5, 10]"
    assert where[10] == [2], "exactly 10: (5, 10], not (10, 20]"
    assert where[20] == [3] and where[30] == [4]
    assert where[2] == [1] and where[6] == [2] and where[31] == [5]


def test_users_outside_the_edges_are_in_no_bucket():
    # first edge 1: a user with 0 interactions is left out; [1, 5] takes 1 and 5, (5, 10] takes 10
    rows = bucket_table(RANKS, ACTIVITY, [1, 5, 10], cutoff=100)
    assert [(r["label"], r["users"]) for r in rows] == [("[1, 5]", 3), ("(5, 10]", 2)]
    assert rows[0]["hr_at_100"] == pytest.approx(2 / 3)  # users 1, 2, 3: hit, miss, hit
    assert rows[0]["ndcg_at_100"] == pytest.approx((1 / 2 + 0 + 1 / 3) / 3)
    empty = bucket_table(RANKS, ACTIVITY, [200, 300])
    assert empty[0]["users"] == 0 and np.isnan(empty[0]["hr_at_100"]) and np.isnan(empty[0]["ndcg_at_100"])
    assert "| [200, 300] | 0 | – | – | users_200_300 |" in bucket_markdown(empty)


def test_labels_tags_and_markdown():
    assert bucket_label(0, 1, first=True) == "[0, 1]"
    assert bucket_label(1, 5, first=False) == "(1, 5]"
    assert bucket_label(30, float("inf"), first=False) == "(30, ∞)"
    assert bucket_tag(1, 5) == "users_1_5" and bucket_tag(30, float("inf")) == "users_30_inf"
    md = bucket_markdown(bucket_table(RANKS, ACTIVITY, PAPER_EDGES))
    assert "| [0, 1] | 2 | 1.0000 | 0.7500 | users_0_1 |" in md
    assert "| (1, 5] | 2 | 0.5000 | 0.1667 | users_1_5 |" in md
    assert "| (30, ∞) | 2 |" in md
    assert "right-closed (lo, hi]" in md and "[lo, hi]" in md


def test_bad_edges_are_config_errors():
    with pytest.raises(ConfigError):
        bucket_table(RANKS, ACTIVITY, [0, "many"])
    with pytest.raises(ConfigError):
        bucket_table(RANKS, ACTIVITY, [5, 1])
    with pytest.raises(ConfigError):
        bucket_table(RANKS, ACTIVITY, [5])


def test_the_protocol_logs_the_paper_buckets(tmp_path):
    from ncae_exp.protocols.implicit import ImplicitProtocol

    protocol = ImplicitProtocol(activity_buckets=[0, 1, 5, 10, 20, 30, float("inf")])
    tracker = MemoryTracker()
    protocol._log_buckets(tracker, RANKS, ACTIVITY, tmp_path)
    metrics = {k: v for k, v, _ in tracker.metrics}
    for label, tag, users, hr, ndcg in EXPECTED:
        assert tracker.params[f"buckets.n_{tag}"] == users, label
        assert metrics[f"test_hr_at_100_{tag}"] == pytest.approx(hr), label
        assert metrics[f"test_ndcg_at_100_{tag}"] == pytest.approx(ndcg), label
    assert (tmp_path / "activity_buckets.md").read_text().startswith("| training interactions |")
    assert [p.name for p, _ in tracker.artifacts] == ["activity_buckets.md"]


@pytest.mark.parametrize("edges", [[5, 1], [5], [0, "many"], 5])
def test_the_protocol_checks_its_edges_when_built(edges):
    """Refused in the constructor (before any data is read), not after training at test time."""
    from ncae_exp.protocols.implicit import ImplicitProtocol

    with pytest.raises(ConfigError, match="protocol.activity_buckets"):
        ImplicitProtocol(activity_buckets=edges)
    assert ImplicitProtocol(activity_buckets=PAPER_EDGES).activity_buckets == [0, 1, 5, 10, 20, 30, float("inf")]
    assert ImplicitProtocol(activity_buckets=None).activity_buckets is None
