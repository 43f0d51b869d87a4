"""Real GroupLens archives parse to exactly their published statistics; cache and folds."""

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from ncae_exp.data import cache, loader
from ncae_exp.data.loader import canonical_fold, load_dataset
from ncae_exp.data.registry import DATASETS, get_spec
from ncae_exp.errors import ConfigError, DataError

CONF = Path(__file__).resolve().parents[1] / "src" / "ncae_exp" / "conf" / "dataset"


def _data_dir(tmp: Path, archive: Path) -> Path:
    """A scratch data_dir whose raw/ holds a copy of the real archive: caches stay in tmp."""
    (tmp / "raw").mkdir(parents=True, exist_ok=True)
    shutil.copy2(archive, tmp / "raw" / archive.name)
    return tmp


@pytest.fixture(scope="module")
def ml100k(real_archive, tmp_path_factory):
    data_dir = _data_dir(tmp_path_factory.mktemp("ml100k"), real_archive("ml-100k"))
    return load_dataset({"name": "ml-100k"}, data_dir), data_dir


def _value(inter, user, item):
    u = np.searchsorted(inter.user_ids, user)
    i = np.searchsorted(inter.item_ids, item)
    assert inter.user_ids[u] == user and inter.item_ids[i] == item
    row = slice(inter.matrix.indptr[u], inter.matrix.indptr[u + 1])
    pos = np.flatnonzero(inter.matrix.indices[row] == i)
    assert pos.size == 1
    k = row.start + int(pos[0])
    stamp = None if inter.timestamps is None else int(inter.timestamps[k])
    return float(inter.matrix.data[k]), stamp


def test_ml100k_archive_is_the_published_one(real_archive):
    with zipfile.ZipFile(real_archive("ml-100k")) as zf:
        digest = hashlib.md5(zf.read("ml-100k/u.data")).hexdigest()
    assert digest == "6e47046882bad158b0efbb84cd5cb987"


def test_ml100k_statistics(ml100k):
    inter, _ = ml100k
    assert (inter.n_users, inter.n_items, inter.n_ratings) == (943, 1682, 100_000)
    m = inter.matrix
    assert m.dtype == np.float32 and m.has_canonical_format
    values, counts = np.unique(m.data, return_counts=True)
    assert values.tolist() == [1, 2, 3, 4, 5]
    assert counts.tolist() == [6110, 11370, 27145, 34174, 21201] and counts.sum() == 100_000
    assert inter.user_ids[0] == 1 and np.diff(m.indptr)[0] == 272  # user 1 rated 272 movies
    assert inter.user_ids.tolist() == list(range(1, 944))
    assert inter.item_ids.tolist() == list(range(1, 1683))
    assert (inter.rating_scale.low, inter.rating_scale.high) == (1.0, 5.0)
    assert inter.timestamps.dtype == np.int64 and inter.timestamps.shape == m.data.shape
    # u.data's first line: 196 242 3 881250949 (rating and time land on the same entry)
    assert _value(inter, 196, 242) == (3.0, 881250949)
    assert inter.item_names[1] == "Toy Story (1995)" and len(inter.item_names) == 1682


def test_lastfm_statistics(real_archive, tmp_path):
    inter = load_dataset({"name": "lastfm"}, _data_dir(tmp_path, real_archive("lastfm")))
    assert (inter.n_users, inter.n_items, inter.n_ratings) == (1892, 17632, 92_834)
    assert inter.matrix.has_canonical_format and inter.matrix.dtype == np.float32
    assert inter.rating_scale is None and inter.timestamps is None
    assert _value(inter, 2, 51) == (13883.0, None)  # first data line: 2 51 13883
    assert _value(inter, 61, 65) == (170.0, None)  # a line with padded fields: "61\t65  \t170"
    assert inter.item_names[1] == "MALICE MIZER"


def test_cache_is_used_then_invalidated_by_a_replaced_archive(ml100k, monkeypatch, caplog):
    first, data_dir = ml100k
    assert (data_dir / "processed" / "ml-100k.npz").is_file()
    calls = []
    real_parse = loader.parse_archive
    monkeypatch.setattr(loader, "parse_archive", lambda *a: calls.append(a) or real_parse(*a))

    again = load_dataset({"name": "ml-100k"}, data_dir)
    assert calls == []
    assert (again.matrix != first.matrix).nnz == 0
    assert np.array_equal(again.matrix.indices, first.matrix.indices)
    assert np.array_equal(again.timestamps, first.timestamps)
    assert np.array_equal(again.user_ids, first.user_ids) and again.item_names == first.item_names
    assert again.rating_scale == first.rating_scale and again.name == "ml-100k"

    archive = data_dir / "raw" / "ml-100k.zip"
    st = archive.stat()
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    load_dataset({"name": "ml-100k"}, data_dir)
    assert len(calls) == 1

    cached = data_dir / "processed" / "ml-100k.npz"
    cached.write_bytes(cached.read_bytes()[:5000])  # damaged cache: ignored, rebuilt
    with caplog.at_level(logging.WARNING):
        rebuilt = load_dataset({"name": "ml-100k"}, data_dir)
    assert len(calls) == 2 and "ignoring unreadable cache" in caplog.text
    assert rebuilt.n_ratings == 100_000
    assert cache.load(cached, cache.archive_key(archive)) is not None
    assert not [p for p in cached.parent.iterdir() if p.name != "ml-100k.npz"]


def test_canonical_fold_partitions_u_data(ml100k, real_archive):
    inter, data_dir = ml100k
    mask = canonical_fold(inter, data_dir, 1)
    assert mask.dtype == bool and mask.shape == inter.matrix.data.shape
    assert mask.sum() == 20_000
    # the masked entries are exactly the lines of u1.test
    with zipfile.ZipFile(real_archive("ml-100k")) as zf:
        lines = np.loadtxt(zf.open("ml-100k/u1.test"), dtype=np.int64)
    m = inter.matrix
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    got = set(zip(inter.user_ids[rows[mask]].tolist(), inter.item_ids[m.indices[mask]].tolist()))
    assert got == set(zip(lines[:, 0].tolist(), lines[:, 1].tolist()))
    assert np.array_equal(np.sort(m.data[mask]), np.sort(lines[:, 2].astype(np.float32)))
    for fold in (2, 5):
        assert canonical_fold(inter, data_dir, fold).sum() == 20_000


@pytest.mark.parametrize("fold", [0, 6, True, "1"])
def test_canonical_fold_rejects_bad_fold(ml100k, fold):
    inter, data_dir = ml100k
    with pytest.raises(ConfigError, match="fold must be 1..5"):
        canonical_fold(inter, data_dir, fold)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset({"name": "ml-20m"}, tmp_path)
    assert str(err.value) == (
        "unknown dataset 'ml-20m'; choose one of: "
        "ml-100k, ml-1m, ml-10m, ml-latest-small, lastfm, delicious, synthetic"
    )
    with pytest.raises(DataError, match="unknown dataset"):
        get_spec(None)


def test_every_dataset_has_a_config_and_every_config_a_dataset():
    """A dataset is added in two places, the registry and conf/dataset/: neither half alone.
    The configs repeat no facts: a real dataset's ``url`` is null (the registry's URL)."""
    assert set(DATASETS) == {p.stem for p in CONF.glob("*.yaml")}
    for name, spec in DATASETS.items():
        cfg = OmegaConf.load(CONF / f"{name}.yaml")
        assert cfg.name == name
        if spec.archive is not None:
            assert set(cfg) == {"name", "url"} and cfg.url is None, name
            assert spec.url.endswith("/" + spec.archive) and spec.parser is not None


def test_null_url_downloads_from_the_registry_url(tmp_path, monkeypatch):
    cfg = OmegaConf.load(CONF / "ml-100k.yaml")
    urls = []

    def fake_download(url, dest):
        urls.append(url)
        raise DataError("stop")

    monkeypatch.setattr(loader, "download", fake_download)
    with pytest.raises(DataError, match="stop"):
        load_dataset(cfg, tmp_path)
    assert urls == [get_spec("ml-100k").url]


def test_facts_table_lists_every_dataset():
    out = subprocess.run(
        [sys.executable, "-m", "ncae_exp.data"], capture_output=True, text=True, check=True
    ).stdout
    lines = out.strip().split("\n")
    assert len(lines) == 2 + len(DATASETS) and all(line.startswith("| ") for line in lines)
    for name in DATASETS:
        assert sum(line.startswith(f"| `{name}` |") for line in lines) == 1
    ml100k = next(line for line in lines if line.startswith("| `ml-100k` |"))
    assert "| https://files.grouplens.org/datasets/movielens/ml-100k.zip |" in ml100k
    assert "| 943 | 1,682 | 100,000 | 1–5, whole stars | yes |" in ml100k
    lastfm = next(line for line in lines if line.startswith("| `lastfm` |"))
    assert "| 1,892 | 17,632 | 92,834 | implicit: listening count | no |" in lastfm
