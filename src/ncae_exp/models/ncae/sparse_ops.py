"""The hot loops of NCAE's sparse modules: x·W for a sparse batch (Eq. 4, sparse forward) and
the outputs read only at observed (row, column) pairs (Eq. 5, sparse backward).

Each is exact, two ways, and a model picks the cheaper for its batches' shape
(:func:`choose_path`, on the host, once per batch size — no ``tf.cond`` in the step):

* ``blocks`` — the batch touches U distinct columns: gather those U rows of the weight
  matrix once and multiply a dense B × U block (one BLAS call on every core): O(B·U·K).
* ``entries`` — gather one weight row per observed entry and segment-sum: O(nnz·K), but
  TensorFlow has no fused sampled-matmul kernel, so it materialises nnz × K arrays at
  memory speed on one core.

Measured here (2 cores) the crossover lies near 150 block cells per entry. Blocks won at
ML-10M shape (K = 500) in training steps at 36 cells per entry (all ratings: 0.26 s a
step) and on 30 % and 10 % of the ratings (0.20 s against 0.25 s, 0.17 s against 0.17 s),
and for 1 M predictions at 70 (5.9 s against 8.1 s); entries won for Lastfm's full ranking
at 244 (0.24 s against 0.31 s); Lastfm's training batches (62) tie. Either way the weight
matrix's gradient is an ``IndexedSlices`` over the rows the batch touched, never a dense
D × K tensor. (Splitting a batch's rows into smaller blocks cuts the block cells but was
slower here.)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

PATHS = ("blocks", "entries")
# What one per-entry gather costs in dense block cells (see above).
CELLS_PER_ENTRY = 150


def choose_path(x: sp.csr_matrix, rows_per_batch: int, cells_per_entry: float = CELLS_PER_ENTRY,
                seed: int = 0, samples: int = 5) -> str:
    """The cheaper exact path for batches of ``rows_per_batch`` random rows of ``x``: the
    median of a few sampled batches' block cells per entry against ``cells_per_entry``."""
    nonempty = np.flatnonzero(np.diff(x.indptr) > 0)
    if len(nonempty) == 0:
        return "blocks"
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(samples):
        rows = rng.choice(nonempty, min(int(rows_per_batch), len(nonempty)), replace=False)
        sub = x[rows]
        ratios.append(len(rows) * len(np.unique(sub.indices)) / max(sub.nnz, 1))
    return "blocks" if float(np.median(ratios)) <= cells_per_entry else "entries"


def sparse_matmul(indices: tf.Tensor, values: tf.Tensor, n_rows: tf.Tensor, kernel: tf.Tensor,
                  path: str = "blocks") -> tf.Tensor:
    """x·W for the sparse (n_rows × D) x given by ``indices`` ((nnz, 2): row, column) and
    ``values``, and the dense W = ``kernel`` (D × K): an (n_rows × K) tensor."""
    rows = tf.cast(indices[:, 0], tf.int32)
    cols = tf.cast(indices[:, 1], tf.int32)
    n_rows = tf.cast(n_rows, tf.int32)
    if _check(path) == "entries":
        return tf.math.unsorted_segment_sum(tf.gather(kernel, cols) * values[:, None], rows, n_rows)
    touched, local = tf.unique(cols)
    w = tf.gather(kernel, touched)  # U × K: the only rows of W the batch reads (and updates)
    x = tf.scatter_nd(tf.stack([rows, local], axis=1), values, tf.stack([n_rows, tf.shape(touched)[0]]))
    return tf.matmul(x, w)  # x: the B × U block, dense


def sampled_outputs(h: tf.Tensor, kernel: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor,
                    path: str = "blocks") -> tf.Tensor:
    """h_r · W_c for each (row, column) pair — ``kernel`` is output-major (D_out × K) — without
    the B × D_out product: a sampled dense-dense matmul."""
    rows, cols = tf.cast(rows, tf.int32), tf.cast(cols, tf.int32)
    if _check(path) == "entries":
        return tf.reduce_sum(tf.gather(h, rows) * tf.gather(kernel, cols), axis=1)
    touched, local = tf.unique(cols)
    block = tf.matmul(h, tf.gather(kernel, touched), transpose_b=True)  # B × U
    return tf.gather_nd(block, tf.stack([rows, local], axis=1))


def output_columns(h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """Every row's pre-activation at the output columns ``cols`` only (B × len(cols)): how an
    item-based model scores a block of users without computing every user's output."""
    return tf.matmul(h, tf.gather(kernel, cols), transpose_b=True) + tf.gather(bias, cols)


def _check(path: str) -> str:
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {path!r}")
    return path
