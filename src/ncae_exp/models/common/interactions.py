"""The training matrix as implicit feedback: who interacted with what, each pair once."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def binarise(train: sp.csr_matrix, dtype=np.float32) -> sp.csr_matrix:
    """A copy of ``train`` with 1 at every (user, item) with a positive value (a play count,
    a rating), no stored zeros, one entry per pair and sorted indices."""
    matrix = sp.csr_matrix(train, dtype=dtype, copy=True)
    matrix.sum_duplicates()
    matrix.data = (matrix.data > 0).astype(dtype)
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix
