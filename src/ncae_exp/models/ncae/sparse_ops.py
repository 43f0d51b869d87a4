"""The hot loops of NCAE's sparse modules: x·W for a sparse batch (Eq. 4, sparse forward) and
the outputs read only at observed (row, column) pairs (Eq. 5, sparse backward).

Both are exact and work on the batch's *touched columns*: the U distinct columns its entries
fall in. Those U rows of the weight matrix are gathered once and multiplied as one dense
B × U block (a BLAS call on every core), so the cost is O(B·U·K) and the weight matrix's
gradient is an ``IndexedSlices`` over the U touched rows — never a dense D × K tensor.

Why not one gather per observed entry (O(nnz·K), fewer flops)? TensorFlow has no fused
sampled-matmul kernel: a per-entry gather materialises nnz × K arrays and runs at memory
latency on one core. At ML-10M shape (K = 500, item batches of 128, nnz ≈ 110 k entries over
U ≈ 33 k users: ≈ 40 block cells per entry) the per-entry path with ``sparse_dense_matmul``
and gathers took 1.5–2× the block path's time forward and backward; at the other shapes we
ran (ML-100K, Lastfm, Netflix's) a batch also has 30–90 block cells per entry.
"""

from __future__ import annotations

import tensorflow as tf

PRECISIONS = {"float32": tf.float32, "bfloat16": tf.bfloat16}


def check_precision(name: str) -> tf.DType:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"matmul precision must be one of {sorted(PRECISIONS)}, got {name!r}") from None


def matmul(a: tf.Tensor, b: tf.Tensor, precision: tf.DType = tf.float32, transpose_b: bool = False) -> tf.Tensor:
    """``a @ b`` in float32, or with bfloat16 operands (float32 result) when asked — an
    option that changes the numbers (AVX-512 BF16 / AMX on recent CPUs, tensor cores on GPUs)."""
    if precision == tf.float32:
        return tf.matmul(a, b, transpose_b=transpose_b)
    out = tf.matmul(tf.cast(a, precision), tf.cast(b, precision), transpose_b=transpose_b)
    return tf.cast(out, tf.float32)


def sparse_matmul(indices: tf.Tensor, values: tf.Tensor, n_rows: tf.Tensor, kernel: tf.Tensor,
                  precision: tf.DType = tf.float32) -> tf.Tensor:
    """x·W for the sparse (n_rows × D) x given by ``indices`` ((nnz, 2): row, column) and
    ``values``, and the dense W = ``kernel`` (D × K): an (n_rows × K) tensor."""
    rows = tf.cast(indices[:, 0], tf.int32)
    touched, local = tf.unique(tf.cast(indices[:, 1], tf.int32))
    w = tf.gather(kernel, touched)  # U × K: the only rows of W the batch reads (and updates)
    shape = tf.stack([tf.cast(n_rows, tf.int32), tf.shape(touched)[0]])
    x = tf.scatter_nd(tf.stack([rows, local], axis=1), values, shape)  # B × U, dense
    return matmul(x, w, precision)


def sampled_outputs(h: tf.Tensor, kernel: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor,
                    precision: tf.DType = tf.float32) -> tf.Tensor:
    """h_r · W_c for each (row, column) pair — ``kernel`` is output-major (D_out × K) — without
    the B × D_out product: a sampled dense-dense matmul."""
    touched, local = tf.unique(tf.cast(cols, tf.int32))
    w = tf.gather(kernel, touched)  # U × K
    block = matmul(h, w, precision, transpose_b=True)  # B × U
    return tf.gather_nd(block, tf.stack([tf.cast(rows, tf.int32), local], axis=1))


def output_columns(h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, cols: tf.Tensor,
                   precision: tf.DType = tf.float32) -> tf.Tensor:
    """Every row's pre-activation at the output columns ``cols`` only (B × len(cols)): how an
    item-based model scores a block of users without computing every user's output."""
    return matmul(h, tf.gather(kernel, cols), precision, transpose_b=True) + tf.gather(bias, cols)
