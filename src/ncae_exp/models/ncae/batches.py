"""Mini-batches of sparse input vectors, with NCAE's input dropout (Eq. 3).

Built in numpy from the CSR matrix of input vectors (rows = users for a user-based model,
items for an item-based one) and handed to the TensorFlow step as one :class:`SparseBatch`
of flat index/value arrays, so no dense B × D array ever exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar

import numpy as np
import scipy.sparse as sp
import tensorflow as tf


class SparseBatch(NamedTuple):
    """One mini-batch: corrupted inputs and the observed targets.

    ``in_*`` are the kept (and 1/(1−q)-scaled) entries fed to the network; ``t_*`` are all
    observed entries of the batch's rows, with ``t_dropped`` marking the ones dropout removed.
    Row indices are positions within the batch (0..n_rows−1). A NamedTuple, so that one
    ``tf.function`` signature (:data:`BATCH_SPEC`) covers it and fields are read by name.
    """

    in_indices: np.ndarray  # (n_in, 2) int64: (row in batch, column)
    in_values: np.ndarray  # (n_in,) float32
    n_rows: np.int64
    t_rows: np.ndarray  # (n_obs,) int32
    t_cols: np.ndarray  # (n_obs,) int32
    t_values: np.ndarray  # (n_obs,) float32
    t_dropped: np.ndarray  # (n_obs,) bool


# The tf.function input signature of a batch (fixed dtypes, free sizes: no retracing).
BATCH_SPEC = SparseBatch(
    in_indices=tf.TensorSpec([None, 2], tf.int64),
    in_values=tf.TensorSpec([None], tf.float32),
    n_rows=tf.TensorSpec([], tf.int64),
    t_rows=tf.TensorSpec([None], tf.int32),
    t_cols=tf.TensorSpec([None], tf.int32),
    t_values=tf.TensorSpec([None], tf.float32),
    t_dropped=tf.TensorSpec([None], tf.bool),
)


def sparse_input(batch: SparseBatch, dim: int) -> tf.SparseTensor:
    """The (n_rows × dim) sparse input matrix the network reads."""
    shape = tf.stack([tf.cast(batch.n_rows, tf.int64), tf.constant(int(dim), tf.int64)])
    return tf.SparseTensor(batch.in_indices, batch.in_values, shape)


def row_entry_positions(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``data``/``indices`` of every entry of ``rows`` (in row order), and the
    batch-local row of each — a vectorised concatenation of ``range(indptr[r], indptr[r+1])``."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    total = int(lengths.sum())
    batch_row = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets, batch_row


def dropout_mask(nnz: int, q: float, rng: np.random.Generator) -> np.ndarray:
    """True where input dropout removes an observed entry (probability q); drawn anew each epoch."""
    if q <= 0.0:
        return np.zeros(nnz, dtype=bool)
    return rng.random(nnz) < q


def make_batch(x: sp.csr_matrix, rows: np.ndarray, dropped: np.ndarray | None, q: float) -> SparseBatch:
    """The batch of input vectors ``x[rows]``; ``dropped`` is aligned with ``x.data``
    (None = no corruption, the inference input)."""
    pos, batch_row = row_entry_positions(x.indptr, rows)
    cols = x.indices[pos].astype(np.int32)
    values = x.data[pos].astype(np.float32)
    dropped_here = np.zeros(len(pos), dtype=bool) if dropped is None else dropped[pos]
    keep = ~dropped_here
    scale = 1.0 / (1.0 - q) if dropped is not None and q > 0.0 else 1.0
    in_indices = np.stack([batch_row[keep], cols[keep]], axis=1).astype(np.int64)
    return SparseBatch(
        in_indices=in_indices.reshape(-1, 2),
        in_values=(values[keep] * scale).astype(np.float32),
        n_rows=np.int64(len(rows)),
        t_rows=batch_row,
        t_cols=cols,
        t_values=values,
        t_dropped=dropped_here,
    )


def epoch_batches(x: sp.csr_matrix, batch_size: int, q: float, rng: np.random.Generator) -> Iterator[SparseBatch]:
    """Shuffled training batches for one epoch with a fresh dropout mask.

    Rows without any observed entry are skipped: Eq. 5 is undefined for them (1/|K(u)|).
    """
    mask = dropout_mask(x.nnz, q, rng)
    nonempty = np.flatnonzero(np.diff(x.indptr) > 0)
    order = rng.permutation(nonempty)
    for start in range(0, len(order), batch_size):
        yield make_batch(x, order[start : start + batch_size], mask, q)


def n_epoch_batches(x: sp.csr_matrix, batch_size: int) -> int:
    """Mini-batches in one epoch of :func:`epoch_batches` (empty rows are skipped)."""
    rows = int(np.count_nonzero(np.diff(x.indptr)))
    return -(-rows // batch_size)


T = TypeVar("T")
_END = object()


def prefetched(items: Iterable[T]) -> Iterator[T]:
    """``items`` in order, the next one built on a background thread while the caller works
    on the current one: numpy's batch building overlaps the TensorFlow step (both release
    the GIL). One item ahead, one thread, the same order — so the same random draws."""
    it = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ncae-batches") as pool:
        ahead = pool.submit(next, it, _END)
        while True:
            item = ahead.result()
            if item is _END:
                return
            ahead = pool.submit(next, it, _END)
            yield item


def epoch_mean(step: Callable[[SparseBatch], object], batches: Iterable[SparseBatch]) -> float:
    """Run ``step(batch)`` over one epoch of batches; the mean of its returned loss,
    weighted by rows per batch. Losses are read once the epoch is done: no host round trip
    per step (a GPU keeps its queue full), and the next batch is built during the step."""
    losses, sizes = [], []
    for batch in prefetched(batches):
        losses.append(step(batch))
        sizes.append(int(batch.n_rows))
    return sum(float(loss) * n for loss, n in zip(losses, sizes)) / max(sum(sizes), 1)
