"""The benchmark (ncae_exp.bench, `ncae-bench`, scripts/bench.py) on tiny shapes: the JSON's
keys and values, --out, --only, the arguments. Never speeds."""

import json
import math
import os
from pathlib import Path

import pytest

import ncae_exp.bench as bench
from ncae_exp.bench import cli, configs, lastfm, measure
from ncae_exp.data.registry import get_spec

ROOT = Path(__file__).resolve().parents[1]

# The contract's keys (the outside contract, "Other entry points") and the others the benchmark
# promises, each a positive finite number.
CONTRACT = {
    "ml10m_shape": ["epoch_seconds", "epoch_seconds_dense_reference", "peak_rss_mb"],
    "lastfm_implicit": ["epoch_seconds", "eval_seconds"],
}
NUMBERS = {
    "ml10m_shape": CONTRACT["ml10m_shape"] + [
        "first_epoch_seconds", "sparse_step_seconds", "dense_step_seconds", "dense_over_sparse",
        "batch_build_seconds", "epoch_seconds_sparse_estimate", "predict_seconds", "n_batches", "nnz",
        "dense_fused_adam_step_seconds", "epoch_seconds_dense_reference_fused_adam", "dense_fused_adam_over_sparse",
    ],
    "lastfm_implicit": CONTRACT["lastfm_implicit"] + [
        "first_epoch_seconds", "epoch_seconds_gram_path", "epoch_seconds_dense_path", "dense_path_over_gram",
        "n_batches", "nnz",
    ],
    "item_ranking": ["eval_seconds", "n_users", "n_items"],
}
PROFILE = ["feed_seconds", "forward_seconds", "penalty_seconds", "optimizer_seconds", "step_seconds"]
TINY = {
    "ml10m_shape": {"n_users": 300, "n_items": 200, "n_ratings": 5_000, "predict_pairs": 2_000},
    "lastfm_implicit": {"n_users": 300, "n_items": 400, "n_ratings": 5_000},
    "item_ranking": {"n_users": 120, "n_items": 90, "n_ratings": 2_000},
    "netflix_shape": {"n_users": 250, "n_items": 150, "n_ratings": 4_000},
}


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """The benchmark's CLI on tiny shapes, with a data directory without the Lastfm archive."""
    for section, shape in TINY.items():
        monkeypatch.setitem(bench.SHAPES, section, {**bench.SHAPES[section], **shape})
    monkeypatch.setenv("NCAE_DATA_DIR", str(tmp_path / "no-data"))
    return cli


def positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_full_run_writes_every_figure(tiny, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert tiny.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())

    for section, keys in NUMBERS.items():
        bad = {k: result[section].get(k) for k in keys if not positive_finite(result[section].get(k))}
        assert not bad, f"{section}: missing or not positive finite: {bad}"
    # ml10m_shape: model=ncae_paper (item-based DOUBLE K=500) on the registry's rating scale.
    ml = result["ml10m_shape"]
    assert ml["config_overrides"] == ["model=ncae_paper", "seed=0"]
    assert ml["hidden"] == [500, 500] and ml["based"] == "item" and ml["batch_size"] == 128 and ml["nnz"] == 5_000
    spec = get_spec("ml-10m")
    assert ml["rating_scale"] == [spec.rating_scale.low, spec.rating_scale.high] and ml["rating_step"] == spec.rating_step
    assert ml["dense_reference_method"].startswith("median step x n_batches")
    assert ml["predict_pairs"] == 2_000
    assert all(positive_finite(ml["step_profile"][k]) for k in PROFILE), ml["step_profile"]
    assert ml["step_profile"]["backward_seconds"] >= 0

    # table6_grid: every (K, share) cell, ratings subsampled from the ML-10M-shape matrix
    grid = result["table6_grid"]
    assert [(c["hidden"], c["share"]) for c in grid["cells"]] == [(k, s) for k in (100, 300, 500) for s in (0.1, 0.3, 0.5, 1.0)]
    assert all(positive_finite(c["epoch_seconds"]) for c in grid["cells"])
    full = [c["nnz"] for c in grid["cells"] if c["share"] == 1.0]
    assert full == [5_000] * 3 and all(0 < c["nnz"] < 5_000 for c in grid["cells"] if c["share"] < 1.0)
    assert set(grid["linear_in_nnz"]) == {"100", "300", "500"}
    assert result["item_ranking"]["based"] == "item" and result["item_ranking"]["source"] == "synthetic"
    assert "netflix_shape" not in result  # --quick skips it

    # lastfm_implicit: the contract's figures are protocol=implicit's defaults (the model and
    # feedback config say which output and loss path); the Gram/dense pair has a linear output.
    lastfm_ = result["lastfm_implicit"]
    default_cfg = configs.compose_config(lastfm.DEFAULT)
    assert lastfm_["source"] == "synthetic" and lastfm_["based"] == default_cfg.model.based == "user"
    assert lastfm_["hidden"] == list(default_cfg.model.hidden)
    output = default_cfg.model.feedback.output
    assert lastfm_["output"] == output
    assert lastfm_["loss_path"] == {"linear": "gram", "tanh": "dense"}[output]  # loss_path=auto
    assert lastfm_["eval_cutoffs"] == list(default_cfg.protocol.cutoffs)
    assert lastfm_["n_augmented_rows"] >= 0
    figures = lastfm_["configurations"]
    assert figures["epoch_seconds"] == figures["eval_seconds"]
    assert figures["epoch_seconds"]["overrides"] == ["protocol=implicit", "seed=0"]
    assert (figures["epoch_seconds"]["output"], figures["epoch_seconds"]["loss_path"]) == (output, lastfm_["loss_path"])
    assert figures["epoch_seconds"]["omega"] == default_cfg.model.feedback.omega
    for key, path in (("epoch_seconds_gram_path", "gram"), ("epoch_seconds_dense_path", "dense")):
        assert (figures[key]["output"], figures[key]["loss_path"]) == ("linear", path)
        assert figures[key]["overrides"][-2:] == ["model.feedback.output=linear", f"model.feedback.loss_path={path}"]
    assert lastfm_["dense_path_over_gram"] == pytest.approx(
        lastfm_["epoch_seconds_dense_path"] / lastfm_["epoch_seconds_gram_path"], rel=1e-2
    )

    env = result["environment"]
    assert env["device"] in ("cpu", "gpu") and env["tensorflow"] and env["cpu_count"] >= 1 and env["date"]
    assert result["settings"] == {
        "quick": True, "repeats": 1, "dense_steps": 3, "seed": 0,
        "sections": [s for s in bench.SECTIONS if s != "netflix_shape"],
    }
    assert positive_finite(result["total_seconds"])
    assert [p.name for p in tmp_path.iterdir() if p.name != "no-data"] == ["bench.json"]  # no temp left
    printed = capsys.readouterr().out
    assert "dense/sparse" in printed and "dense/gram" in printed and f"wrote {out}" in printed


@pytest.mark.slow
def test_only_restricts_the_sections(tiny, tmp_path):
    out = tmp_path / "only.json"
    assert tiny.main(["--only", "lastfm_implicit", "--repeats", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert "lastfm_implicit" in result and "ml10m_shape" not in result
    assert result["settings"]["sections"] == ["lastfm_implicit"] and result["settings"]["repeats"] == 2
    assert len(result["lastfm_implicit"]["epoch_seconds_all"]) == 2
    assert all(positive_finite(result["lastfm_implicit"][k]) for k in CONTRACT["lastfm_implicit"])


@pytest.mark.slow
def test_netflix_section_trains_one_epoch(tiny, tmp_path):
    out = tmp_path / "netflix.json"
    assert tiny.main(["--only", "netflix_shape", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["netflix_shape"]
    assert r["nnz"] == 4_000 and r["based"] == "item" and r["hidden"] == [500, 500]
    assert all(positive_finite(r[k]) for k in ("epoch_seconds", "peak_rss_mb", "data_seconds", "n_parameters"))


def test_linear_fit_and_subsample():
    from ncae_exp.bench.table6 import linear_fit, subsample

    fit = linear_fit([1_000_000, 3_000_000, 5_000_000], [2.5, 6.5, 10.5])  # 0.5 s + 2 s per million
    assert fit["seconds_per_million_ratings"] == pytest.approx(2.0)
    assert fit["intercept_seconds"] == pytest.approx(0.5) and fit["r2"] == pytest.approx(1.0)
    assert linear_fit([1, 2, 3], [1.0, 3.0, 2.0])["r2"] == pytest.approx(0.25)
    import scipy.sparse as sp

    m = sp.random(200, 100, density=0.2, format="csr", random_state=0)
    half = subsample(m, 0.5, seed=0)
    assert half.shape == m.shape and abs(half.nnz - m.nnz / 2) < 4 * (m.nnz / 4) ** 0.5
    assert (m.multiply(half != 0) != half).nnz == 0  # kept entries keep their values
    assert subsample(m, 1.0, seed=0) is m


def test_json_is_replaced_atomically(tmp_path):
    path = tmp_path / "sub" / "bench.json"
    measure.write_json_atomic(path, {"a": 1.5})
    assert json.loads(path.read_text()) == {"a": 1.5}
    measure.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    # A failure half-way (NaN is refused) leaves the previous file whole and no temp file.
    with pytest.raises(ValueError):
        measure.write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600


def test_rounding_keeps_small_figures_positive():
    assert measure.rounded({"x": [1.23456789e-5, 123456.789], "n": 3, "s": "a"}) == {
        "x": [1.235e-5, 123500.0], "n": 3, "s": "a",
    }


def test_arguments(monkeypatch, tmp_path):
    monkeypatch.setenv("NCAE_DATA_DIR", str(tmp_path))
    args = cli.parse_args(["--quick"])
    assert (args.repeats, args.dense_steps, args.only, args.out, args.data_dir) == (1, 3, None, None, tmp_path)
    args = cli.parse_args(["--repeats", "4", "--only", "ml10m_shape"])
    assert (args.repeats, args.dense_steps, args.only) == (4, 5, "ml10m_shape")
    for bad in (["--only", "ml-10m"], ["--repeats", "0"], ["--dense-steps", "-1"]):
        with pytest.raises(SystemExit) as err:
            cli.parse_args(bad)
        assert err.value.code == 2


def test_lastfm_source_follows_the_archive(real_archive):
    """With the real archive in place the benchmark uses it (and says so)."""
    archive = real_archive("lastfm")
    data, source = lastfm.load_lastfm(archive.parent.parent, bench.SHAPES["lastfm_implicit"])
    assert source == "real" and data.n_users == 1_892 and data.n_items == 17_632


def test_quick_never_shrinks_the_shapes():
    """The shapes are the dataset registry's (no copies), at full size."""
    ml, fm = get_spec("ml-10m"), get_spec("lastfm")
    assert bench.SHAPES["ml10m_shape"] == {
        "n_users": ml.n_users, "n_items": ml.n_items, "n_ratings": ml.n_ratings,
        "rating_scale": (ml.rating_scale.low, ml.rating_scale.high), "rating_step": ml.rating_step,
        "predict_pairs": 1_000_000,
    }
    assert bench.SHAPES["ml10m_shape"]["n_ratings"] == 10_000_054
    assert (bench.SHAPES["ml10m_shape"]["n_users"], bench.SHAPES["ml10m_shape"]["n_items"]) == (69_878, 10_677)
    assert bench.SHAPES["ml10m_shape"]["rating_scale"] == (0.5, 5.0)
    assert bench.SHAPES["lastfm_implicit"] == {"n_users": fm.n_users, "n_items": fm.n_items, "n_ratings": fm.n_ratings}
    assert bench.SHAPES["lastfm_implicit"] == {"n_users": 1_892, "n_items": 17_632, "n_ratings": 92_834}


def test_models_come_from_the_configs():
    """Each section's model is the one `ncae-run` builds from the same overrides."""
    from ncae_exp.bench import ml10m

    paper, _ = configs.build(ml10m.OVERRIDES)
    assert (paper.based, paper.hidden, paper.l2, paper.batch_size) == ("item", [500, 500], 0.0002, 128)
    assert paper.feedback.name == "explicit"
    default, cfg = configs.build(lastfm.DEFAULT)
    assert cfg.protocol.name == "implicit" and default.feedback.name == "implicit"
    assert (default.based, default.hidden, default.feedback.output) == (
        cfg.model.based, list(cfg.model.hidden), cfg.model.feedback.output,
    )
    gram, _ = configs.build(lastfm.GRAM)
    dense, _ = configs.build(lastfm.DENSE)
    assert (gram.feedback.output, gram.feedback.loss_path) == ("linear", "gram")
    assert (dense.feedback.output, dense.feedback.loss_path) == ("linear", "dense")
    assert (gram.hidden, gram.l2, gram.feedback.omega) == (default.hidden, default.l2, default.feedback.omega)


def test_entry_points():
    """`make bench` runs the console script; scripts/bench.py stays a shim over the same main."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'ncae-bench = "ncae_exp.bench.cli:main"' in pyproject
    assert "$(BIN)/ncae-bench --out bench.json $(ARGS)" in (ROOT / "Makefile").read_text()
    shim = (ROOT / "scripts" / "bench.py").read_text()
    assert "from ncae_exp.bench.cli import main" in shim and len(shim.splitlines()) <= 3
