"""``ncae-recommend``: top-k recommendations from a logged model — for a known user, or for a
new user folded in from their ratings — printed as a table.

The model is the run's MLflow model (``models/mlflow_model.py``, loaded as pyfunc: no dataset
needed), by run id or by registered name. Runs logged before that are rebuilt from their
dataset (known users only).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

from ncae_exp.errors import ConfigError
from ncae_exp.serving.rebuild import LoadedModel

USAGE = """ncae-recommend run_id=<run id> user=<user id> [k=10] [tracking_uri=<uri>]
       ncae-recommend model=<registered model> [version=<n>|latest] user=<user id> [k=10]
       ncae-recommend run_id=<run id> items=<id,id,...> [ratings=<r,r,...>] [k=10]
       ncae-recommend run_id=<run id> ratings=<file.csv> [k=10]"""

DESCRIPTION = """Prints the top-k items (original ids, names where the dataset has them, scores) for a
user from a model logged by ncae-run: its MLflow model (the run's model/ artifact), by run id
or by name in the MLflow Model Registry (ncae-run model.register=true).

A known user (user=<id>) gets the items they have not rated anywhere in the dataset. A new
user is folded in without retraining (the model scores their ratings; models that cannot
fold in say so): items=<ids> (with ratings=<values>, one per item, for a model trained on
ratings), or ratings=<file> with one "item,rating" line per item (a header line is allowed;
a line with only an item id counts as an interaction)."""

EPILOG = """options are key=value (or --key value):
  run_id        an MLflow run id (a sweep's parent names its best child)
  model         a registered model's name; version=<n> or latest (default)
  user          a user id of the model's dataset
  items         a new user's item ids, e.g. items=1,2,3 (or items=[1,2,3])
  ratings       their ratings, e.g. ratings=5,3,4; or a file of item,rating lines
  k             how many items (default 10)
  tracking_uri  the MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)
  data_dir      the dataset folder, for runs logged before models were MLflow models

examples:
  ncae-recommend run_id=3f2c... user=196 k=5
  ncae-recommend model=ncae-ncae-explicit-ml-100k user=196
  ncae-recommend model=ncae-ncae-explicit-ml-100k version=2 items=50,172,181 ratings=5,5,4"""

KEYS = ("run_id", "model", "version", "user", "items", "ratings", "k", "tracking_uri", "data_dir")


def recommend(loaded: LoadedModel, user_id: int, k: int) -> list[tuple[int, float, str]]:
    """Top-``k`` (original item id, score, name) among items the user has not rated."""
    data = loaded.data
    pos = int(np.searchsorted(data.user_ids, user_id))
    from ncae_exp.serving.pyfunc import id_range, top_k

    if pos >= len(data.user_ids) or data.user_ids[pos] != user_id:
        raise ConfigError(f"user {user_id} is not in {data.name} ({id_range(data.user_ids, 'user')})")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    rated = data.matrix.indices[data.matrix.indptr[pos] : data.matrix.indptr[pos + 1]]
    top, scores = top_k(loaded.model.score_items(np.array([pos]))[0], rated, k)
    return [(int(data.item_ids[j]), float(scores[j]), data.item_names.get(int(data.item_ids[j]), "")) for j in top]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as every other error
        raise ConfigError(f"{message}; usage: {USAGE.splitlines()[0]} (ncae-recommend --help)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ncae-recommend", usage=USAGE, description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    for key in KEYS:
        p.add_argument(f"--{key}", f"--{key.replace('_', '-')}", dest=key, metavar="", help=argparse.SUPPRESS)
    return p


def parse(args: list[str]) -> argparse.Namespace:
    """``key=value`` words (the documented form) or ``--key value``."""
    words = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and not arg.startswith("-"):
            if key not in KEYS:
                raise ConfigError(f"unknown argument {arg!r}; usage: {USAGE.splitlines()[0]} (ncae-recommend --help)")
            arg = f"--{key}={value}"
        words.append(arg)
    opts = parser().parse_args(words)
    if bool(opts.run_id) == bool(opts.model):
        raise ConfigError(f"give run_id=<run id> or model=<registered model>; usage: {USAGE.splitlines()[0]}")
    if (opts.user is not None) == (opts.items is not None or opts.ratings is not None):
        raise ConfigError("give user=<user id> for a known user, or items=/ratings= for a new one (not both)")
    return opts


def _ints(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{what} must be an integer, got {text!r}") from None


def _numbers(text: str, what: str, kind=float) -> list:
    words = [w for w in text.strip().strip("[]").replace(" ", ",").split(",") if w]
    try:
        return [kind(w) for w in words]
    except ValueError:
        raise ConfigError(f"{what} must be a comma-separated list of numbers, got {text!r}") from None


def read_ratings(path: Path) -> tuple[list[int], list[float] | None]:
    """``item,rating`` lines (or ``item`` alone: interactions); a header line is skipped."""
    items, ratings = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    for number, line in enumerate(lines, start=1):
        fields = [f.strip() for f in line.replace("\t", ",").split(",") if f.strip()]
        if not fields or (number == 1 and not fields[0].lstrip("-").isdigit()):
            continue
        try:
            items.append(int(fields[0]))
            if len(fields) > 1:
                ratings.append(float(fields[1]))
        except ValueError:
            raise ConfigError(f"{path} line {number}: expected item,rating, got {line!r}") from None
    if ratings and len(ratings) != len(items):
        raise ConfigError(f"{path}: some lines have a rating and some do not")
    if not items:
        raise ConfigError(f"{path} has no item,rating lines")
    return items, ratings or None


def request(opts: argparse.Namespace):
    """The pyfunc input: a known user, or a new user's items and ratings."""
    import pandas as pd

    k = _ints(opts.k, "k") if opts.k is not None else 10
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if opts.user is not None:
        return pd.DataFrame({"user": [_ints(opts.user, "user")], "k": [k]})
    if opts.items is None:
        path = Path(opts.ratings)
        if not path.is_file():
            raise ConfigError(f"ratings={opts.ratings}: no such file; give items=<ids> with ratings=<values>,"
                              " or ratings=<file of item,rating lines>")
        items, ratings = read_ratings(path)
    else:
        items = _numbers(opts.items, "items", int)
        ratings = _numbers(opts.ratings, "ratings") if opts.ratings is not None else None
    frame = {"items": [items], "k": [k]}
    if ratings is not None:
        frame["ratings"] = [ratings]
    return pd.DataFrame(frame)


def table(rows: list[tuple[int, int, str, float]]) -> str:
    """An aligned table with a header: rank, item, name, score."""
    names = [name if len(name) <= 48 else name[:47] + "…" for _, _, name, _ in rows]
    cells = [("rank", "item", "name", "score")] + [
        (str(rank), str(item), name, f"{score:.4f}") for (rank, item, _, score), name in zip(rows, names)]
    if not any(names):  # a dataset without names (synthetic, implicit ones): no empty column
        cells = [(c[0], c[1], c[3]) for c in cells]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    align = [">", ">", "<", ">"] if len(widths) == 4 else [">", ">", ">"]
    return "\n".join("  ".join(f"{v:{a}{w}}" for v, a, w in zip(c, align, widths)).rstrip() for c in cells)


def main(argv: list[str] | None = None) -> None:
    """``ncae-recommend`` (see ``--help``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # stdout is the table only
    from ncae_exp.errors import NcaeError

    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        parser().print_help()
        return
    try:
        rows = _run(args)
    except NcaeError as err:
        print(f"ncae-recommend: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(table(rows))


def _run(args: list[str]) -> list[tuple[int, int, str, float]]:
    import warnings

    from ncae_exp.serving.load import Source, check_version, is_legacy, load, refuse_legacy_fold_in
    from ncae_exp.tracking.mlflow_tracker import resolve_tracking_uri

    opts = parse(args)
    req = request(opts)
    uri = resolve_tracking_uri(opts.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
    source = Source(uri, opts.run_id, opts.model, check_version(opts.version or "latest"))
    # MLflow's and TensorFlow's chatter would interleave with the table or the one error line.
    logging.basicConfig(level=logging.ERROR)
    for name in ("mlflow", "tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    retry = " ".join(["ncae-recommend", *("run_id={run_id}" if a.startswith("run_id=") else a for a in args)])
    loaded = load(source, retry, opts.data_dir)
    if is_legacy(loaded):
        if "user" not in req.columns:
            refuse_legacy_fold_in(source)
        return [(rank, item, name, score) for rank, (item, score, name) in
                enumerate(recommend(loaded, int(req["user"][0]), int(req["k"][0])), start=1)]
    wrapper = loaded.unwrap_python_model()
    out = predict(loaded, req)
    if out.empty:
        raise ConfigError(f"no item is left to recommend: the user has rated all {len(wrapper.data.item_ids)} items")
    return [(int(r.rank), int(r.item), wrapper.item_name(int(r.item)), float(r.score)) for r in out.itertuples()]


def predict(loaded, req):
    """``loaded.predict(req)``, with our one-line error out of MLflow's wrapping."""
    from ncae_exp.serving.load import _ncae_cause

    try:
        return loaded.predict(req)
    except Exception as err:  # noqa: BLE001
        cause = _ncae_cause(err)
        if cause is not err or isinstance(err, ConfigError):
            raise cause from None
        from mlflow.exceptions import MlflowException

        if isinstance(err, MlflowException):  # a schema mismatch: the input is the user's
            raise ConfigError(" ".join(str(err.message).split())[:300]) from None
        raise
