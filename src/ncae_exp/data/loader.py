"""``load_dataset``: the one call the rest of the project makes to get a dataset.

Order of preference: the parsed cache (``processed/<name>.npz``), the archive in ``raw/``,
and only then a download from the configured URL. A freshly parsed archive is checked
against the dataset's published statistics before it is cached, so a wrong or damaged file
is reported once, clearly, rather than silently training on the wrong data.
"""

from __future__ import annotations

import inspect
import logging
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ncae_exp.data import cache
from ncae_exp.data.download import download
from ncae_exp.data.formats import read_ml100k_fold
from ncae_exp.data.interactions import Interactions
from ncae_exp.data.registry import DatasetSpec, get_spec
from ncae_exp.data.synthetic import generate_synthetic
from ncae_exp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_SYNTHETIC_ARGS = set(inspect.signature(generate_synthetic).parameters)
_DATASET_KEYS = {"name", "url"}  # read here, not passed to the generator


def load_dataset(cfg: Mapping, data_dir: str | Path) -> Interactions:
    """Load the dataset described by ``cfg`` (``name``, optional ``url``; generator
    arguments for ``synthetic``) using ``data_dir/raw`` and ``data_dir/processed``."""
    name = cfg.get("name")
    spec = get_spec(name)
    if spec.parser is None:
        return _synthetic(cfg)
    data_dir = Path(data_dir)
    archive = data_dir / "raw" / spec.archive
    cached_at = cache.cache_path(data_dir, spec.name)
    if archive.is_file():
        key = cache.archive_key(archive)
        inter = cache.load(cached_at, key)
        if inter is not None:
            log.info("loaded %s from cache %s", name, cached_at)
            return inter
        downloaded = False
    else:
        inter = cache.load(cached_at, None)
        if inter is not None:
            log.info("loaded %s from cache %s (no archive at %s)", name, cached_at, archive)
            return inter
        url = cfg.get("url") or spec.url
        log.info("%s not found; downloading %s", archive, url)
        try:
            download(url, archive)
        except DataError as err:
            raise DataError(f"{err}: place the archive at {archive.resolve()}"
                            " (or set NCAE_DATA_DIR / paths.data_dir)") from err
        downloaded = True
        key = cache.archive_key(archive)
    try:
        inter = parse_archive(spec, archive)
        check_statistics(spec, inter)
    except DataError:
        if downloaded:
            archive.unlink(missing_ok=True)  # ours to remove; a hand-placed file is the user's
        raise
    cache.save(cached_at, inter, key)
    return inter


def parse_archive(spec: DatasetSpec, archive: Path) -> Interactions:
    log.info("parsing %s", archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            return spec.parser(zf, archive.name)
    except (zipfile.BadZipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"{archive} is not a readable zip archive ({err}); delete it to download it again"
        ) from err


def check_statistics(spec: DatasetSpec, inter: Interactions) -> None:
    expected = (spec.n_users, spec.n_items, spec.n_ratings)
    got = (inter.n_users, inter.n_items, inter.n_ratings)
    if expected != got:
        raise DataError(
            f"{spec.archive}: expected {expected[0]} users, {expected[1]} items,"
            f" {expected[2]} ratings for {spec.name}; got {got[0]}, {got[1]}, {got[2]}"
        )


def _synthetic(cfg: Mapping) -> Interactions:
    kwargs = {k: cfg[k] for k in cfg if k not in _DATASET_KEYS}
    unknown = sorted(set(kwargs) - _SYNTHETIC_ARGS)
    if unknown:
        raise ConfigError(
            f"dataset synthetic: unknown option(s) {', '.join(unknown)};"
            f" known: {', '.join(sorted(_SYNTHETIC_ARGS))}"
        )
    if "rating_scale" in kwargs and kwargs["rating_scale"] is not None:
        kwargs["rating_scale"] = tuple(kwargs["rating_scale"])
    inter = generate_synthetic(**kwargs)
    log.info("generated synthetic dataset: %s", inter.stats())
    return inter


def check_canonical_fold(dataset: str, fold) -> None:
    if dataset != "ml-100k":
        raise ConfigError(f"canonical folds exist only for ml-100k, not {dataset}")
    if isinstance(fold, bool) or fold not in (1, 2, 3, 4, 5):
        raise ConfigError(f"ml-100k canonical fold must be 1..5, got {fold!r}")


def canonical_fold(interactions: Interactions, data_dir: str | Path, fold: int) -> np.ndarray:
    """Mask over ``interactions.matrix.data``: True for the ratings of ML-100K's ``u{fold}.test``.

    The canonical splits come with the archive; checking that ``u{fold}.base`` and
    ``u{fold}.test`` partition ``u.data`` exactly guards against a mismatched archive.
    """
    check_canonical_fold(interactions.name, fold)
    spec = get_spec("ml-100k")
    archive = Path(data_dir) / "raw" / spec.archive
    if not archive.is_file():
        raise DataError(f"canonical folds are read from {archive}, which is missing")
    with zipfile.ZipFile(archive) as zf:
        parts = [_fold_keys(zf, archive.name, fold, part, interactions, spec)
                 for part in ("base", "test")]
    (base_keys, base_r), (test_keys, test_r) = parts
    m = interactions.matrix
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    all_keys = rows * m.shape[1] + m.indices
    union = np.concatenate([base_keys, test_keys])
    order = np.argsort(union, kind="stable")
    union_sorted = union[order]
    if union.size != all_keys.size or not np.array_equal(union_sorted, all_keys):
        raise DataError(
            f"{archive.name}: u{fold}.base + u{fold}.test ({base_keys.size} + {test_keys.size})"
            f" do not partition u.data ({all_keys.size} ratings)"
        )
    if not np.array_equal(np.concatenate([base_r, test_r])[order], m.data):
        raise DataError(f"{archive.name}: u{fold}.base/.test ratings differ from u.data")
    return np.isin(all_keys, test_keys, assume_unique=True)


def _fold_keys(zf, label, fold, part, inter, spec) -> tuple[np.ndarray, np.ndarray]:
    """Keys (``row * n_items + column`` in ``inter.matrix``) and ratings of one fold file."""
    users, items, ratings, table = read_ml100k_fold(
        zf, label, fold, part, scale=spec.rating_scale, step=spec.rating_step
    )
    u = np.searchsorted(inter.user_ids, users)
    i = np.searchsorted(inter.item_ids, items)
    unknown = (u >= inter.user_ids.size) | (i >= inter.item_ids.size)
    unknown |= (inter.user_ids[np.minimum(u, inter.user_ids.size - 1)] != users)
    unknown |= (inter.item_ids[np.minimum(i, inter.item_ids.size - 1)] != items)
    if unknown.any():
        row = int(np.argmax(unknown))
        raise table.error(row, f"user {users[row]} / item {items[row]} does not occur in u.data")
    return u * inter.n_items + i, ratings.astype(np.float32)
