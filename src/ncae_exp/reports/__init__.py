"""Paper-reproduction reports built from the runs in an MLflow store.

- :mod:`ncae_exp.reports.pretrain` — Table 2 (SINGLE/DOUBLE with and without pre-training)
  and Fig. 5 (the six pre-training schedules), used by ``scripts/report_pretrain.py``.

Submodules are imported on demand (they pull in matplotlib and MLflow).
"""
