"""POP ranks items by their number of (binarised) training interactions, the same for every user."""

import numpy as np
import scipy.sparse as sp

from ncae_exp.evaluation.ranking import target_ranks
from ncae_exp.models.pop import Pop

# 4 users × 5 items; values are play counts (POP counts each user once per item).
DENSE = np.array(
    [
        [7, 0, 1, 0, 2],
        [1, 0, 3, 0, 0],
        [0, 5, 1, 0, 1],
        [2, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)
COUNTS = np.array([3, 1, 3, 0, 2], dtype=np.float64)  # users per item


def _fitted() -> Pop:
    m = Pop()
    m.prepare(sp.csr_matrix(DENSE), None)
    m.train_epoch()
    return m


def test_scores_are_the_binarised_training_counts_for_every_user():
    m = _fitted()
    scores = m.score_items(np.array([0, 1, 2, 3, 1]))
    np.testing.assert_array_equal(scores, np.tile(COUNTS, (5, 1)))
    users, items = np.array([0, 3, 2, 1]), np.array([0, 1, 3, 4])
    pred = m.predict(users, items)
    assert pred.dtype == np.float64
    np.testing.assert_array_equal(pred, COUNTS[items])


def test_ranking_order_by_count_ties_stable_by_item_index():
    row = _fitted().score_items(np.array([0]))[0]
    # counts 3, 1, 3, 0, 2: items 0 and 2 tie at 3 -> lower index first
    np.testing.assert_array_equal(np.argsort(-row, kind="stable"), [0, 2, 4, 1, 3])


def test_ties_count_against_the_held_out_item_in_evaluation():
    row = _fitted().score_items(np.array([0, 0]))
    # item 2 ties with item 0 (both 3): pessimistic rank 1 for either; item 4 is below both.
    np.testing.assert_array_equal(target_ranks(row, np.array([2, 4])), [1, 2])


def test_unfitted_model_scores_zero_and_state_round_trips():
    m = Pop()
    m.prepare(sp.csr_matrix(DENSE), None)
    assert m.training_loss() == 0.0
    np.testing.assert_array_equal(m.score_items(np.array([0, 1])), np.zeros((2, 5)))
    fitted = _fitted()
    m.set_state(fitted.get_state())
    np.testing.assert_array_equal(m.score_items(np.array([2])), fitted.score_items(np.array([2])))
