"""scripts/bench.py on tiny shapes: the JSON's keys and values, --out, --only. Never speeds."""

import importlib.util
import json
import math
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench.py"

# The contract's keys (docs/contract.md, "Other entry points") and the others the benchmark
# promises, each a positive finite number.
CONTRACT = {
    "ml10m_shape": ["epoch_seconds", "epoch_seconds_dense_reference", "peak_rss_mb"],
    "lastfm_implicit": ["epoch_seconds", "eval_seconds"],
}
NUMBERS = {
    "ml10m_shape": CONTRACT["ml10m_shape"] + [
        "first_epoch_seconds", "sparse_step_seconds", "dense_step_seconds", "dense_over_sparse",
        "batch_build_seconds", "epoch_seconds_sparse_estimate", "predict_seconds", "n_batches", "nnz",
    ],
    "lastfm_implicit": CONTRACT["lastfm_implicit"] + [
        "first_epoch_seconds", "epoch_seconds_dense_path", "dense_path_over_gram", "n_batches", "nnz",
    ],
}
TINY = {
    "ml10m_shape": {"n_users": 300, "n_items": 200, "n_ratings": 5_000, "predict_pairs": 2_000},
    "lastfm_implicit": {"n_users": 300, "n_items": 400, "n_ratings": 5_000},
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("ncae_bench_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny(bench, monkeypatch, tmp_path):
    """The benchmark on tiny shapes, with a data directory without the Lastfm archive."""
    for section, shape in TINY.items():
        monkeypatch.setitem(bench.SHAPES, section, {**bench.SHAPES[section], **shape})
    monkeypatch.setenv("NCAE_DATA_DIR", str(tmp_path / "no-data"))
    return bench


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
    ml = result["ml10m_shape"]
    assert ml["hidden"] == [500, 500] and ml["based"] == "item" and ml["nnz"] == 5_000
    assert ml["dense_reference_method"].startswith("median step x n_batches")
    assert ml["predict_pairs"] == 2_000
    lastfm = result["lastfm_implicit"]
    assert lastfm["source"] == "synthetic" and lastfm["based"] == "user" and lastfm["loss_path"] == "gram"
    assert lastfm["hidden"] == [128]

    env = result["environment"]
    assert env["device"] in ("cpu", "gpu") and env["tensorflow"] and env["cpu_count"] >= 1 and env["date"]
    assert result["settings"] == {
        "quick": True, "repeats": 1, "dense_steps": 3, "sections": list(tiny.SECTIONS), "seed": 0,
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


def test_json_is_replaced_atomically(bench, tmp_path):
    path = tmp_path / "sub" / "bench.json"
    bench.write_json_atomic(path, {"a": 1.5})
    assert json.loads(path.read_text()) == {"a": 1.5}
    bench.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    # A failure half-way (NaN is refused) leaves the previous file whole and no temp file.
    with pytest.raises(ValueError):
        bench.write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["bench.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(), not mkstemp's 0600


def test_rounding_keeps_small_figures_positive(bench):
    assert bench.rounded({"x": [1.23456789e-5, 123456.789], "n": 3, "s": "a"}) == {
        "x": [1.235e-5, 123500.0], "n": 3, "s": "a",
    }


def test_arguments(bench, monkeypatch, tmp_path):
    monkeypatch.setenv("NCAE_DATA_DIR", str(tmp_path))
    args = bench.parse_args(["--quick"])
    assert (args.repeats, args.dense_steps, args.only, args.out, args.data_dir) == (1, 3, None, None, tmp_path)
    args = bench.parse_args(["--repeats", "4", "--only", "ml10m_shape"])
    assert (args.repeats, args.dense_steps, args.only) == (4, 5, "ml10m_shape")
    for bad in (["--only", "ml-10m"], ["--repeats", "0"], ["--dense-steps", "-1"]):
        with pytest.raises(SystemExit) as err:
            bench.parse_args(bad)
        assert err.value.code == 2


def test_lastfm_source_follows_the_archive(bench, real_archive):
    """With the real archive in place the benchmark uses it (and says so)."""
    archive = real_archive("lastfm")
    data, source = bench.load_lastfm(archive.parent.parent, bench.SHAPES["lastfm_implicit"])
    assert source == "real" and data.n_users == 1_892 and data.n_items == 17_632


def test_quick_never_shrinks_the_shapes(bench):
    assert bench.SHAPES["ml10m_shape"]["n_ratings"] == 10_000_054
    assert (bench.SHAPES["ml10m_shape"]["n_users"], bench.SHAPES["ml10m_shape"]["n_items"]) == (69_878, 10_677)
    assert bench.SHAPES["ml10m_shape"]["predict_pairs"] == 1_000_000
    assert bench.SHAPES["lastfm_implicit"] == {"n_users": 1_892, "n_items": 17_632, "n_ratings": 92_834}
