"""Benchmark of NCAE's training, prediction and ranking speed at the paper's shapes.

    make bench                                   # = ncae-bench --out bench.json
    ncae-bench --quick --out bench.json          # (python scripts/bench.py ... is the same)
    ncae-bench --only lastfm_implicit --repeats 5 --out bench.json

Every model is built from the project's configs (``conf/``, Hydra compose + ``build_model``),
so the benchmark times the settings ``ncae-run`` trains, never a copy of them. Sections
(JSON keys of the same names; modules of this package):

``ml10m_shape`` (``ml10m.py``)
    A synthetic matrix of ML-10M's shape (users, items, ratings, rating scale and step from
    the dataset registry: 69,878 × 10,677, 10,000,054 ratings, 0.5–5 in half stars) and the
    paper's explicit setting, ``model=ncae_paper`` (item-based DOUBLE NCAE, K = 500,
    q = 0.5, λ = 0.0002, batch 128). Wall time of full ``train_epoch()`` calls (median,
    after one warm-up epoch that traces the ``tf.function``), the same mini-batch steps
    through the dense masked reference (``dense_reference.dense_train_step``: B × N
    arrays, O(K·N) per vector), the process's peak RSS, and predicting 1,000,000 random
    (user, item) pairs. A full dense epoch is too slow for a CPU, so both paths are timed
    step by step on the same real batches and the dense epoch is estimated as median step ×
    number of batches.
``lastfm_implicit`` (``lastfm.py``)
    The real Lastfm archive when ``<data_dir>/raw/hetrec2011-lastfm-2k.zip`` exists, else a
    synthetic matrix of its registered shape (1,892 × 17,632, 92,834 interactions), split
    leave-one-out. ``epoch_seconds`` and ``eval_seconds`` (full ranking of every test user
    at the protocol's cutoffs) are those of the default implicit configuration,
    ``protocol=implicit`` (``output``/``loss_path`` in the JSON say which: a tanh output
    goes through the dense Eq. 11 path). The Gram-vs-dense comparison times the same model
    with a linear output, ``model.feedback.output=linear`` and
    ``model.feedback.loss_path=gram|dense`` (``epoch_seconds_gram_path``,
    ``epoch_seconds_dense_path``, ``dense_path_over_gram``); ``configurations`` records
    the overrides behind each figure.

``table6_grid`` (``table6.py``)
    The paper's Table 6 on this machine: one epoch of ``model=ncae_paper`` with
    ``model.hidden=[K,K]`` for K ∈ {100, 300, 500} on 10/30/50/100 % of the ML-10M-shape
    ratings, and a least-squares line of epoch seconds against the number of ratings per K
    (``linear_in_nnz``: seconds per million ratings, R²).
``item_ranking`` (``ranking.py``)
    Full-ranking evaluation of every ML-100K user (the real archive if present) through the
    default explicit NCAE, which is item-based: each user's scores are a column of every
    item's output.
``netflix_shape`` (``netflix.py``; not run by ``--quick``)
    One epoch of ``model=ncae_paper`` on a synthetic matrix of the Netflix Prize's shape
    (480,189 × 17,770, 100,480,507 ratings, 1–5 stars): that it trains within the
    machine's memory, its seconds and peak RSS.

Every ML-10M-shape section also profiles one training step (``step_profile``: feeding,
forward, backward, penalty, optimizer). ``--quick`` lowers the repetitions and skips
``netflix_shape``, never shrinks a shape. Figures and ratios are printed as a
table on stdout, progress on stderr; the JSON is rewritten (atomically) after each section.
Modules: ``measure`` (timers, memory, JSON, environment), ``configs`` (models from the
configs), ``profile`` (one step's parts), ``ml10m``, ``lastfm``, ``table6``, ``ranking`` and
``netflix`` (the sections), ``cli`` (arguments, the run, the table).
"""

from __future__ import annotations

from ncae_exp.data.registry import get_spec

SECTIONS = ("ml10m_shape", "lastfm_implicit", "table6_grid", "item_ranking", "netflix_shape")
NOT_QUICK = ("netflix_shape",)  # --quick skips these
SEED = 0
# Paper Table 6: seconds per epoch on one K40C GPU (ML-10M: 3-layer item-based, K = 500).
PAPER_GPU_EPOCH_SECONDS = {"ml10m_shape": 6.31, "lastfm_implicit": 0.4}


def _shapes() -> dict[str, dict]:
    ml10m, lastfm, ml100k = get_spec("ml-10m"), get_spec("lastfm"), get_spec("ml-100k")
    return {
        "ml10m_shape": {
            "n_users": ml10m.n_users,
            "n_items": ml10m.n_items,
            "n_ratings": ml10m.n_ratings,
            "rating_scale": (ml10m.rating_scale.low, ml10m.rating_scale.high),
            "rating_step": ml10m.rating_step,
            "predict_pairs": 1_000_000,
        },
        "lastfm_implicit": {"n_users": lastfm.n_users, "n_items": lastfm.n_items, "n_ratings": lastfm.n_ratings},
        "item_ranking": {"n_users": ml100k.n_users, "n_items": ml100k.n_items, "n_ratings": ml100k.n_ratings},
        # The Netflix Prize training set (not a registered dataset: its licence ended with the prize).
        "netflix_shape": {"n_users": 480_189, "n_items": 17_770, "n_ratings": 100_480_507,
                          "rating_scale": (1.0, 5.0), "rating_step": 1.0},
    }


# Shapes of the data, from the dataset registry; tests shrink these, the command line never does.
SHAPES: dict[str, dict] = _shapes()
