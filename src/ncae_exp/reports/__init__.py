"""Paper-reproduction reports built from the runs in an MLflow store.

Reports sit on top of the package: nothing below ``ncae_exp.reports`` imports it.

- :mod:`ncae_exp.reports.runs` — reading finished runs from a store (a sweep's children or
  an experiment, filtered) into ``RunRecord`` s, and logging a report's files back.
- :mod:`ncae_exp.reports.markdown` — shared markdown pieces (mean ± std cells, tables).
- :mod:`ncae_exp.reports.table2` — Table 2 (SINGLE/DOUBLE with and without pre-training).
- :mod:`ncae_exp.reports.fig5` — Fig. 5 (the six pre-training schedules): png and notes.
- :mod:`ncae_exp.reports.pretrain` — Table 2 + Fig. 5 written and logged together, used by
  ``scripts/report_pretrain.py``.
- :mod:`ncae_exp.reports.compare` — ``ncae-report`` (:mod:`~ncae_exp.reports.compare_cli`):
  any sweep's groups (:mod:`~ncae_exp.reports.compare_runs`) × headline metrics, mean ± std
  over seeds, paired t-tests against a baseline chosen on validation; markdown, CSV, JSON
  and figures (:mod:`~ncae_exp.reports.compare_plots`), logged to the parent under report/.

Submodules are imported on demand (they pull in matplotlib and MLflow).
"""
