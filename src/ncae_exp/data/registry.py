"""The datasets the project knows, and every fact about them, in one place.

For each dataset: its archive name and official URL, how to parse it, the published user,
item and rating counts, the rating scale and whether it has timestamps. Nothing else in the
project repeats these facts (the configs in ``conf/dataset/`` only name a dataset and may
set a mirror URL); ``python -m ncae_exp.data`` prints them as a table.

The expected counts are how a download or a hand-placed archive is verified (the files are
not redistributable, so there is no checksum we could ship that matches every mirror).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ncae_exp.data import formats
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
    title: str = ""  # what the dataset is, for people
    implicit_value: str | None = None  # what an implicit dataset's matrix entry counts

    @property
    def implicit(self) -> bool:
        return self.rating_scale is None

    @property
    def values(self) -> str:
        """What a matrix entry is, e.g. ``1–5, whole stars`` or ``implicit: listening count``."""
        if self.rating_scale is None:
            return f"implicit: {self.implicit_value}"
        steps = {1.0: "whole stars", 0.5: "half stars"}.get(
            self.rating_step, f"steps of {self.rating_step:g}"
        )
        return f"{self.rating_scale.low:g}–{self.rating_scale.high:g}, {steps}"


_ONE_TO_FIVE = RatingScale(1.0, 5.0)
_HALF_STARS = RatingScale(0.5, 5.0)


def _movielens(name: str, title: str, n_users: int, n_items: int, n_ratings: int,
               parser: Callable, scale: RatingScale, step: float, **kw) -> DatasetSpec:
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
        title=title,
    )


_SPECS = (
    _movielens("ml-100k", "MovieLens 100K", 943, 1_682, 100_000, formats.parse_ml100k,
               _ONE_TO_FIVE, 1.0),
    _movielens("ml-1m", "MovieLens 1M", 6_040, 3_706, 1_000_209, formats.parse_movielens_dat,
               _ONE_TO_FIVE, 1.0, dataset="ml-1m", folder="ml-1m"),
    _movielens("ml-10m", "MovieLens 10M", 69_878, 10_677, 10_000_054,
               formats.parse_movielens_dat, _HALF_STARS, 0.5, dataset="ml-10m",
               folder="ml-10M100K"),
    _movielens("ml-latest-small", "MovieLens latest-small", 610, 9_724, 100_836,
               formats.parse_ml_latest_small, _HALF_STARS, 0.5),
    DatasetSpec(
        name="lastfm",
        archive="hetrec2011-lastfm-2k.zip",
        url=f"{GROUPLENS}hetrec2011/hetrec2011-lastfm-2k.zip",
        parser=formats.parse_lastfm,
        n_users=1_892,
        n_items=17_632,
        n_ratings=92_834,
        rating_scale=None,
        has_timestamps=False,
        title="HetRec 2011 Last.fm (users x artists)",
        implicit_value="listening count",
    ),
    DatasetSpec(
        name="delicious",
        archive="hetrec2011-delicious-2k.zip",
        url=f"{GROUPLENS}hetrec2011/hetrec2011-delicious-2k.zip",
        parser=formats.parse_delicious,
        n_users=1_867,
        n_items=69_226,
        n_ratings=104_799,
        rating_scale=None,
        has_timestamps=True,
        title="HetRec 2011 Delicious (users x bookmarks)",
        implicit_value="1 per bookmarked pair",
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
        title="generated (data/synthetic.py)",
    ),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(DATASETS)}") from None


def facts_table() -> str:
    """Every registered dataset's facts as a markdown table (``python -m ncae_exp.data``)."""

    def count(n: int | None) -> str:
        return "configurable" if n is None else f"{n:,}"

    header = ("name", "dataset", "archive (`raw/…`)", "official URL", "users", "items",
              "ratings", "values", "timestamps")
    rows = []
    for spec in DATASETS.values():
        values = spec.values if spec.archive else f"{spec.values} (default; configurable)"
        rows.append((
            f"`{spec.name}`",
            spec.title,
            f"`{spec.archive}`" if spec.archive else "— (generated)",
            spec.url or "—",
            count(spec.n_users),
            count(spec.n_items),
            count(spec.n_ratings),
            values,
            "yes" if spec.has_timestamps else "no",
        ))
    lines = [header, ("---",) * len(header), *rows]
    return "\n".join("| " + " | ".join(row) + " |" for row in lines)
