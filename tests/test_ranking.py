"""Full-ranking HR@M / NDCG@M: hand-computed ranks, ties, exclusion of training items, names."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.ranking import (
    RankingEvaluator,
    metrics_from_ranks,
    target_ranks,
)


def test_ranks_and_ndcg_hand_computed():
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.3],  # target 2: only 0.9 above -> rank 1
            [0.2, 0.8, 0.1, 0.4],  # target 1: top -> rank 0
            [0.9, 0.7, 0.1, 0.5],  # target 3: 0.9, 0.7 above -> rank 2
        ]
    )
    target = np.array([2, 1, 3])
    assert target_ranks(scores, target).tolist() == [1, 0, 2]
    out = metrics_from_ranks(target_ranks(scores, target, None), [1, 2, 3])
    assert sorted(out) == [1, 2, 3]
    assert out[1][0].tolist() == [0.0, 1.0, 0.0]
    assert out[2][0].tolist() == [1.0, 1.0, 0.0]
    assert out[3][0].tolist() == [1.0, 1.0, 1.0]
    ndcg3 = out[3][1]
    assert ndcg3[1] == 1.0  # top of the list
    assert ndcg3[0] == pytest.approx(1.0 / math.log2(3))
    assert ndcg3[2] == pytest.approx(0.5)  # rank 2 -> 1/log2(4)
    assert out[2][1][2] == 0.0  # a miss earns no gain


def test_ties_count_against_the_target():
    scores = np.array([[0.5, 0.5, 0.9, 0.5]])
    # one higher (0.9) + two tied others -> rank 3, not 1 or 2
    assert target_ranks(scores, [0]).tolist() == [3]


def test_constant_model_gets_worst_rank_and_no_hits():
    n_items = 300
    scores = np.ones((4, n_items), dtype=np.float32)
    target = np.array([0, 7, 150, 299])
    assert target_ranks(scores, target).tolist() == [n_items - 1] * 4
    out = metrics_from_ranks(target_ranks(scores, target, None), [50, 100, 250])
    for hit, ndcg in out.values():
        assert hit.sum() == 0 and ndcg.sum() == 0
    # Only a cutoff past the whole catalogue makes it a hit.
    assert metrics_from_ranks(target_ranks(scores, target, None), [300])[300][0].tolist() == [1.0] * 4


def test_training_items_are_removed_from_the_ranking():
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.9, 0.8, 0.1, 0.5]])
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    ranks = target_ranks(scores, [3, 3], exclude)
    assert ranks.tolist() == [0, 2]  # same scores; row 0's two better items are training items
    assert metrics_from_ranks(target_ranks(scores, [3, 3], exclude), [1])[1][1].tolist() == [1.0, 0.0]


def test_excluded_items_never_count_as_ties_and_target_is_never_excluded():
    scores = np.array([[0.5, 0.5, 0.5, 0.2]])
    # item 1 tied with the target but excluded -> only item 2 ties -> rank 1
    assert target_ranks(scores, [0], sp.csr_matrix(np.array([[0, 1, 0, 0]]))).tolist() == [1]
    # the target stored in exclude still gets ranked (items 0 and 2 tie with it -> rank 2)
    assert target_ranks(scores, [1], sp.csr_matrix(np.array([[0, 1, 0, 0]]))).tolist() == [2]
    # a target scored -inf stays below the finite candidates, not tied with excluded entries
    s = np.array([[-np.inf, 0.3, 0.1, -np.inf]])
    assert target_ranks(s, [0], sp.csr_matrix(np.array([[0, 0, 0, 1]]))).tolist() == [2]


def test_nan_target_score_is_not_rewarded():
    scores = np.array([[np.nan, 0.1, 0.2], [0.3, np.nan, 0.2]])
    assert target_ranks(scores, [0, 0]).tolist() == [2, 0]


def test_inputs_are_not_modified_and_shapes_checked():
    scores = np.array([[0.1, 0.2, np.nan]])
    before = scores.copy()
    target_ranks(scores, [0], sp.csr_matrix(np.array([[0, 1, 0]])))
    np.testing.assert_array_equal(scores, before)
    with pytest.raises(ValueError):
        target_ranks(scores, [0, 1])
    with pytest.raises(ValueError):
        target_ranks(scores, [3])


@pytest.mark.parametrize("bad", [[], [0], [50, -1], [50.5], "abc", 7])
def test_bad_cutoffs_are_config_errors(bad):
    with pytest.raises(ConfigError):
        metrics_from_ranks(np.array([0]), bad)


class _FixedScores:
    """A stand-in model: only ``score_items``, recording what it was asked."""

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float32)
        self.calls = []

    def score_items(self, users):
        self.calls.append(np.asarray(users).tolist())
        return self.table[users]


def _evaluator_case():
    n_items = 120
    base = -np.arange(n_items, dtype=np.float32)  # item j ranks j-th before exclusion
    table = np.tile(base, (4, 1))
    dense = np.zeros((4, n_items), dtype=np.float32)
    dense[0, :5] = 1  # user 0: target 5, items 0-4 in training -> rank 0
    dense[1, :10] = 1  # user 1: target 70, items 0-9 in training -> rank 60
    #                    user 2: target 110, nothing in training -> rank 110
    dense[3, 3] = 1  # user 3: not evaluated
    users, items = np.array([0, 1, 2]), np.array([5, 70, 110])
    return sp.csr_matrix(dense), table, users, items


def test_evaluator_names_values_and_batching():
    train, table, users, items = _evaluator_case()
    model = _FixedScores(table)
    ev = RankingEvaluator(train, cutoffs=(100, 50), batch_users=2)
    out = ev.evaluate(model, users, items, prefix="val")
    assert set(out) == {"val_hr_at_50", "val_ndcg_at_50", "val_hr_at_100", "val_ndcg_at_100"}
    assert model.calls == [[0, 1], [2]]
    assert out["val_hr_at_50"] == pytest.approx(1 / 3)
    assert out["val_hr_at_100"] == pytest.approx(2 / 3)
    assert out["val_ndcg_at_50"] == pytest.approx(1 / 3)
    assert out["val_ndcg_at_100"] == pytest.approx((1 + 1 / math.log2(62)) / 3)
    assert ev.ranks(model, users, items).tolist() == [0, 60, 110]


def test_evaluator_per_user_follows_input_order():
    train, table, users, items = _evaluator_case()
    ev = RankingEvaluator(train, cutoffs=(50, 100))
    per = metrics_from_ranks(ev.ranks(_FixedScores(table), users[::-1], items[::-1]), ev.cutoffs)
    assert per[100][0].tolist() == [0.0, 1.0, 1.0]
    assert per[50][1].tolist() == [0.0, 0.0, 1.0]


def test_evaluator_default_cutoffs_and_constant_model():
    train, _, users, items = _evaluator_case()
    ev = RankingEvaluator(sp.csr_matrix((4, 400)))
    out = ev.evaluate(_FixedScores(np.zeros((4, 400))), users, items, prefix="test")
    assert sorted(out) == sorted(
        f"test_{m}_at_{k}" for m in ("hr", "ndcg") for k in (50, 100, 150, 200, 250)
    )
    assert all(v == 0.0 for v in out.values())


def test_evaluator_rejects_wrong_score_shape_and_empty_set():
    train, table, users, items = _evaluator_case()
    ev = RankingEvaluator(train, cutoffs=(50,))
    with pytest.raises(ValueError):
        ev.evaluate(_FixedScores(table[:, :-1]), users, items, "val")
    assert ev.evaluate(_FixedScores(table), users[:0], items[:0], "val") == {}
    with pytest.raises(ConfigError):
        RankingEvaluator(train, batch_users=0)


def test_activity_buckets_on_constructed_ranks():
    from ncae_exp.evaluation.buckets import bucket_markdown, bucket_table

    ranks = np.array([0, 150, 3, 99, 100, 2])  # HR@100: 1, 0, 1, 1, 0, 1
    activity = np.array([1, 2, 7, 8, 9, 40])
    rows = bucket_table(ranks, activity, [0, 5, 10, np.inf])
    assert [r["users"] for r in rows] == [2, 3, 1]
    assert rows[0]["hr_at_100"] == 0.5 and rows[1]["hr_at_100"] == pytest.approx(2 / 3) and rows[2]["hr_at_100"] == 1.0
    assert rows[0]["ndcg_at_100"] == pytest.approx(0.5)  # (1/log2(2) + 0) / 2
    assert rows[2]["ndcg_at_100"] == pytest.approx(1 / np.log2(4))
    # right-closed buckets, the first closed at both ends: [0, 5], (5, 10], (10, ∞)
    assert "| (10, ∞) | 1 |" in bucket_markdown(rows) and "| [0, 5] | 2 |" in bucket_markdown(rows)
    assert [r["users"] for r in bucket_table(ranks, activity, [0, "5", 10, ".inf"])] == [2, 3, 1]
    with pytest.raises(ConfigError):
        bucket_table(ranks, activity, [0, "many"])
    with pytest.raises(ConfigError):
        bucket_table(ranks, activity, [5, 1])
    empty = bucket_table(ranks, activity, [100, 200])
    assert empty[0]["users"] == 0 and np.isnan(empty[0]["hr_at_100"])
