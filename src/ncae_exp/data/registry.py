"""The datasets the project knows: where each comes from, how to parse it, what it must contain.

The expected statistics are how a download or a hand-placed archive is verified (the files
are not redistributable, so there is no checksum we could ship that matches every mirror).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ncae_exp.data import parsers
from ncae_exp.data.interactions import Interactions, RatingScale
from ncae_exp.errors import DataError

GROUPLENS = "https://files.grouplens.org/datasets/"

Parser = Callable[[zipfile.ZipFile, str], Interactions]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``parser(zip_file, archive_label)`` builds its :class:`Interactions`."""

    name: str
    archive: str | None  # file name under <data_dir>/raw/; None for generated data
    url: str | None
    parser: Parser | None
    n_users: int | None
    n_items: int | None
    n_ratings: int | None
    rating_scale: RatingScale | None  # None: implicit feedback only
    has_timestamps: bool
    rating_step: float | None = None

    @property
    def implicit(self) -> bool:
        return self.rating_scale is None


_ONE_TO_FIVE = RatingScale(1.0, 5.0)
_HALF_STARS = RatingScale(0.5, 5.0)


def _movielens(name: str, n_users: int, n_items: int, n_ratings: int, parser: Callable,
               scale: RatingScale, step: float, **kw) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        archive=f"{name}.zip",
        url=f"{GROUPLENS}movielens/{name}.zip",
        parser=partial(parser, scale=scale, step=step, **kw),
        n_users=n_users,
        n_items=n_items,
        n_ratings=n_ratings,
        rating_scale=scale,
        has_timestamps=True,
        rating_step=step,
    )


_SPECS = (
    _movielens("ml-100k", 943, 1_682, 100_000, parsers.parse_ml100k, _ONE_TO_FIVE, 1.0),
    _movielens("ml-1m", 6_040, 3_706, 1_000_209, parsers.parse_movielens_dat, _ONE_TO_FIVE, 1.0,
               dataset="ml-1m", folder="ml-1m"),
    _movielens("ml-10m", 69_878, 10_677, 10_000_054, parsers.parse_movielens_dat, _HALF_STARS,
               0.5, dataset="ml-10m", folder="ml-10M100K"),
    _movielens("ml-latest-small", 610, 9_724, 100_836, parsers.parse_ml_latest_small,
               _HALF_STARS, 0.5),
    DatasetSpec(
        name="lastfm",
        archive="hetrec2011-lastfm-2k.zip",
        url=f"{GROUPLENS}hetrec2011/hetrec2011-lastfm-2k.zip",
        parser=parsers.parse_lastfm,
        n_users=1_892,
        n_items=17_632,
        n_ratings=92_834,
        rating_scale=None,
        has_timestamps=False,
    ),
    DatasetSpec(
        name="delicious",
        archive="hetrec2011-delicious-2k.zip",
        url=f"{GROUPLENS}hetrec2011/hetrec2011-delicious-2k.zip",
        parser=parsers.parse_delicious,
        n_users=1_867,
        n_items=69_226,
        n_ratings=104_799,
        rating_scale=None,
        has_timestamps=True,
    ),
    DatasetSpec(
        name="synthetic",
        archive=None,
        url=None,
        parser=None,
        n_users=None,
        n_items=None,
        n_ratings=None,
        rating_scale=_ONE_TO_FIVE,  # the generator's default; its config may change it
        has_timestamps=True,
        rating_step=1.0,
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}") from None
