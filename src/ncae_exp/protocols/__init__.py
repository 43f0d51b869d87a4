"""Evaluation protocols (``conf/protocol/``): how data is split, what is measured each epoch,
which validation metric picks the best epoch (and its direction), and the final test.
``explicit`` = rating prediction (RMSE), ``implicit`` = leave-one-out ranking (HR/NDCG@M)."""
