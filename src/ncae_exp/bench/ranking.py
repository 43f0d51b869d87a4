"""Section ``item_ranking``: full-ranking evaluation (HR/NDCG at the implicit protocol's
cutoffs) of every ML-100K user through the default explicit NCAE, which is item-based — the
case where a user's scores are one column of every item's output. The real archive when
``<data_dir>/raw/ml-100k.zip`` exists, else a synthetic matrix of its registered shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ncae_exp.bench import SEED
from ncae_exp.bench.configs import build
from ncae_exp.bench.measure import median, progress, timed

LABEL = "item_ranking"
OVERRIDES = ("protocol=explicit", f"seed={SEED}")


def bench_item_ranking(data_dir: Path, shape: dict, repeats: int) -> dict:
    from ncae_exp.data.loader import load_dataset
    from ncae_exp.data.registry import get_spec
    from ncae_exp.data.synthetic import generate_synthetic
    from ncae_exp.evaluation.ranking import RankingEvaluator

    if (Path(data_dir) / "raw" / get_spec("ml-100k").archive).is_file():
        data, source = load_dataset({"name": "ml-100k"}, data_dir), "real"
    else:
        data, source = generate_synthetic(shape["n_users"], shape["n_items"], shape["n_ratings"], seed=SEED), "synthetic"
    model, cfg = build(OVERRIDES)
    model.prepare(data.matrix, data.rating_scale)
    model.train_epoch()
    users = np.arange(data.n_users)
    held_out = np.random.default_rng(SEED).integers(0, data.n_items, data.n_users)  # any item: speed only
    evaluator = RankingEvaluator(data.matrix, (50, 100))
    run = lambda: evaluator.evaluate(model, users, held_out, "test")  # noqa: E731
    run()
    times = [timed(run)[1] for _ in range(repeats)]
    progress(f"{LABEL}: {data.n_users:,} users x {data.n_items:,} items, {model.based}-based, median {median(times):.3f} s")
    return {"source": source, "based": model.based, "hidden": list(model.hidden), "n_users": data.n_users,
            "n_items": data.n_items, "eval_seconds": median(times), "eval_seconds_all": times,
            "batch_users": evaluator.batch_users, "config_overrides": list(OVERRIDES)}
