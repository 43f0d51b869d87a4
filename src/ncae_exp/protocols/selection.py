"""The paper's protocol (Sec. 5.1) after selection: retrain on training ∪ validation, test,
repeat over seeds, and compare.

Selection (a run's best epoch, a sweep's best child) reads validation only. Then the chosen
setting is trained again on training ∪ validation for the chosen number of epochs, with no
validation left to look at, and scored on test; this is repeated for ``repeats`` seeds
(seed, seed+1, …; a seed fixes the split, the initialisation and the dropout masks). A
model named by ``compare_to`` goes through the same seeds — the same splits — so the two
models' results pair up for a paired t-test. Each repeat is a nested MLflow run (tag
``ncae.stage=retrain``); the summary (mean, std, t-test) goes on the run that asked for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import scipy.sparse as sp
from omegaconf import DictConfig

from ncae_exp.config_utils import resolved_params
from ncae_exp.data.interactions import Interactions
from ncae_exp.errors import ConfigError
from ncae_exp.evaluation.significance import format_mean_std, mean_std, paired_t_test
from ncae_exp.models.base import Recommender
from ncae_exp.tracking.base import Tracker
from ncae_exp.training.trainer import Trainer

log = logging.getLogger(__name__)

STAGE_TAG = "ncae.stage"


def check_settings(retrain: bool, repeats: int, compare_to: str | None, split: DictConfig | None = None) -> None:
    """``retrain``, ``repeats`` and ``compare_to`` (top-level keys), checked before any work."""
    if retrain and split is not None and float(split.get("val", split.get("val_fraction", 1.0)) or 0.0) == 0.0:
        raise ConfigError("retrain=true needs a validation set to select on and merge, but the split has "
                          "none: use e.g. split=ratio_80_10_10 (or retrain=false)")
    if int(repeats) < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    if not retrain and int(repeats) > 1:
        # One switch turns the protocol off, also for a paper experiment that sets repeats.
        log.warning("repeats=%s ignored: repeats are retrainings (retrain=true); to repeat without "
                    "retraining sweep the seed: -m seed=0,1,2,3,4", repeats)
    if not retrain and compare_to:
        raise ConfigError("compare_to compares retrained repeats: add retrain=true")


def repeat_seeds(seed: int, repeats: int) -> list[int]:
    return [int(seed) + r for r in range(int(repeats))]


@dataclass
class Candidate:
    """One model to retrain: its label, its resolved config for a given seed, and the number
    of epochs selection chose for it."""

    label: str
    config_for_seed: Callable[[int], DictConfig]
    epochs: int
    results: list[dict[str, float]] = field(default_factory=list)
    first_model: Recommender | None = None  # the repeat with the base seed (kept for serving)
    first_train: sp.csr_matrix | None = None  # what first_model was fit on (training ∪ validation)


def fit_selected(cfg: DictConfig, data: Interactions, data_dir: Path, tracker: Tracker,
                 output_dir: Path, epochs: int | None = None
                 ) -> tuple[dict[str, float], Recommender, sp.csr_matrix]:
    """One fit of ``cfg`` on ``cfg.seed``'s split. ``epochs=None``: selection — train on the
    training part, pick the epoch on validation, return the selected metrics (no test).
    Otherwise retraining: training ∪ validation for exactly ``epochs`` epochs, then test.
    Returns the metrics, the model and the matrix it was fit on."""
    from ncae_exp.models.registry import build_model
    from ncae_exp.protocols.registry import build_protocol

    protocol = build_protocol(cfg.protocol)
    model = build_model(cfg.model)
    retrain = epochs is not None
    prepared = protocol.split(data, cfg.split, int(cfg.seed), data_dir, merge_validation=retrain)
    tracker.log_params({f"split.{k}": v for k, v in prepared.stats.items()})
    model.prepare(prepared.train, prepared.rating_scale)
    if retrain:
        fit = Trainer.fixed(epochs).fit(model, protocol.evaluate, tracker)
        metrics = {**protocol.test(model, tracker, output_dir), "epochs_run": fit.epochs_run,
                   "epoch_seconds": fit.epoch_seconds, "fit_seconds": fit.fit_seconds}
    else:
        trainer = Trainer(epochs=int(cfg.trainer.epochs), select=protocol.select, mode=protocol.mode,
                          patience=None if cfg.trainer.patience is None else int(cfg.trainer.patience))
        metrics = protocol.selected(trainer.fit(model, protocol.evaluate, tracker))
    tracker.log_metrics(metrics, step=None)
    return metrics, model, prepared.train


def select_epochs(label: str, cfg: DictConfig, data: Interactions, data_dir: Path, tracker: Tracker,
                  output_dir: Path, tags: dict[str, str]) -> int:
    """Selection for a compared model that has not been selected yet (its best epoch on
    validation of ``cfg.seed``'s split), as a nested run."""
    with tracker.child(f"{label} selection", {**tags, STAGE_TAG: "selection", "model": label}) as child:
        child.log_params(resolved_params(cfg))
        metrics, _, _ = fit_selected(cfg, data, data_dir, child, output_dir)
    log.info("%s: selected epoch %d on validation", label, int(metrics["best_epoch"]))
    return int(metrics["best_epoch"])


def run_repeats(candidates: list[Candidate], seeds: list[int], data: Interactions, data_dir: Path,
                tracker: Tracker, output_dir: Path, tags: dict[str, str]) -> None:
    """Retrain and test every candidate on every seed, each repeat a nested run."""
    for cand in candidates:
        for seed in seeds:
            cfg = cand.config_for_seed(seed)
            name = f"{cand.label} seed={seed}"
            child_tags = {**tags, STAGE_TAG: "retrain", "model": cand.label, "seed": str(seed)}
            with tracker.child(name, child_tags) as child:
                child.log_params({**resolved_params(cfg), "retrain.epochs": cand.epochs})
                out = output_dir / "retrain" / f"{cand.label}_seed{seed}"
                out.mkdir(parents=True, exist_ok=True)
                metrics, model, train = fit_selected(cfg, data, data_dir, child, out, epochs=cand.epochs)
            cand.results.append({"seed": seed, **metrics})
            if cand.first_model is None:
                cand.first_model, cand.first_train = model, train
            log.info("%s: %s", name, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if _headline(k)))


def _headline(key: str) -> bool:
    return key.startswith("test_") and (key.endswith("_rmse") or key.endswith("_at_100"))


def _test_keys(results: list[dict[str, float]]) -> list[str]:
    keys = set.intersection(*(set(r) for r in results)) if results else set()
    return sorted(k for k in keys if k.startswith("test_") and "_users_" not in k)


def summarise(main: Candidate, compare: Candidate | None) -> dict[str, float]:
    """Mean and std over the repeats of every test metric (``test_x``, ``test_x_std``), and
    for a compared model its means (``compare_test_x``) and the paired t-test of main − compare
    on the same seeds (``ttest_p_test_x``, ``ttest_t_test_x``, ``ttest_diff_test_x``)."""
    out: dict[str, float] = {"repeats": float(len(main.results)), "retrain_epochs": float(main.epochs)}
    for key in _test_keys(main.results):
        out[key], out[f"{key}_std"] = mean_std([r[key] for r in main.results])
    if compare is not None:
        out["compare_retrain_epochs"] = float(compare.epochs)
        for key in _test_keys(compare.results):
            out[f"compare_{key}"], out[f"compare_{key}_std"] = mean_std([r[key] for r in compare.results])
            if key in out:
                mine = {r["seed"]: r[key] for r in main.results}
                theirs = {r["seed"]: r[key] for r in compare.results}
                seeds = sorted(set(mine) & set(theirs))
                test = paired_t_test([mine[s] for s in seeds], [theirs[s] for s in seeds])
                out[f"ttest_p_{key}"], out[f"ttest_t_{key}"] = test["p"], test["t"]
                out[f"ttest_diff_{key}"] = test["mean_diff"]
    return out


def repeats_report(main: Candidate, compare: Candidate | None, summary: dict[str, float], path: Path) -> list[Path]:
    """``repeats.md`` (per-seed test metrics, mean ± std, p-values) and ``repeats.json``."""
    cands = [c for c in (main, compare) if c is not None]
    keys = [k for k in _test_keys(main.results) if _headline(k)]
    lines = [f"Retrained on training ∪ validation, {len(main.results)} seeds; epochs chosen on validation.", "",
             "| model | epochs | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for c in cands:
        cells = [format_mean_std([r[k] for r in c.results if k in r]) for k in keys]
        lines.append(f"| {c.label} | {c.epochs} | " + " | ".join(cells) + " |")
    if compare is not None:
        cells = [_p(summary.get(f"ttest_p_{k}")) for k in keys]
        lines.append(f"| p (paired t-test, {main.label} vs {compare.label}) | | " + " | ".join(cells) + " |")
    lines += ["", "| model | seed | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for c in cands:
        for r in c.results:
            lines.append(f"| {c.label} | {r['seed']} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |")
    path.mkdir(parents=True, exist_ok=True)
    md, js = path / "repeats.md", path / "repeats.json"
    md.write_text("\n".join(lines) + "\n")
    js.write_text(json.dumps({"summary": summary, **{c.label: {"epochs": c.epochs, "repeats": c.results}
                                                     for c in cands}}, indent=2))
    return [md, js]


def _p(value: float | None) -> str:
    if value is None or value != value:
        return "–"
    return f"{value:.3g}"
