"""Bad input, one line each. In-process: malformed archives (small zips in GroupLens's layout)
fail with messages naming the member and line and leave no cache; the odd-but-valid corners of
each format parse. Through the console scripts: the table of bad inputs to ``ncae-run`` (one
line, exit 2, no traceback, no MLflow run, data and store untouched), a damaged cache rebuilt
with one warning, and ``ncae-recommend``'s errors that say what to run instead."""

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import mlflow
import numpy as np
import pytest

from ncae_exp.data import cache
from ncae_exp.data.loader import canonical_fold, load_dataset
from ncae_exp.data.registry import get_spec
from ncae_exp.errors import DataError

from test_cli import SMALL, error_line, run_cli

U_ITEM = "1|Toy Story (1995)|01-Jan-1995||x\n2|GoldenEye (1995)|01-Jan-1995||x\n"
GOOD = ["1\t1\t5\t881250949", "1\t2\t3\t881250950", "2\t1\t4\t881250951", "3\t2\t1\t881250952"]


def _zip(path, members):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text.encode("latin-1") if isinstance(text, str) else text)
    return path


def _ml100k_zip(path, u_data, **extra):
    return _zip(path, {"ml-100k/u.data": u_data, "ml-100k/u.item": U_ITEM, **extra})


def _ml100k_dir(tmp_path, u_data, **extra):
    _ml100k_zip(tmp_path / "raw" / "ml-100k.zip", u_data, **extra)
    return tmp_path


def _load_error(data_dir, name="ml-100k"):
    with pytest.raises(DataError) as err:
        load_dataset({"name": name, "url": "http://127.0.0.1:9/never-used"}, data_dir)
    message = str(err.value)
    assert "\n" not in message
    assert not (data_dir / "processed").exists() or not any((data_dir / "processed").iterdir())
    return message


def _with_line(lines, index, replacement):
    lines = list(lines)
    lines[index] = replacement
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "u_data,expected",
    [
        (_with_line(GOOD, 2, "2\t1\tfour\t881250951"),
         "line 3: field 3 (rating) is not a number: 'four'"),
        (_with_line(GOOD, 1, "1\t2\t3"), "line 2: expected 4 tab-separated fields, got 3"),
        (_with_line(GOOD, 1, "1\t2\t3\t881250950\t7"),
         "line 2: expected 4 tab-separated fields, got 5"),
        (_with_line(GOOD, 3, "3\t2\t6\t881250952"), "line 4: rating 6 is outside the 1-5 scale"),
        (_with_line(GOOD, 3, "3\t2\t0\t881250952"), "line 4: rating 0 is outside the 1-5 scale"),
        (_with_line(GOOD, 0, "1\t1\t3.5\t881250949"),
         "line 1: rating 3.5 is not on the 1-5 scale (steps of 1)"),
        (_with_line(GOOD, 2, "2\t1.5\t4\t881250951"),
         "line 3: item id 1.5 is not a non-negative integer"),
        (_with_line(GOOD, 2, "-2\t1\t4\t881250951"),
         "line 3: user id -2 is not a non-negative integer"),
        (_with_line(GOOD, 3, "1\t2\t4\t881250999"),
         "line 4: duplicate rating for user 1 item 2 (first at line 2)"),
        ("\n".join([GOOD[0], "", GOOD[1], "3\t2\t9\t881250952"]) + "\n",
         "line 4: rating 9 is outside the 1-5 scale"),
        # a blank field and a field holding two numbers: counts that cancel out overall
        ("\n".join([GOOD[0], "1\t \t3\t881250950", "2\t1 1\t4\t881250951", GOOD[3]]) + "\n",
         "line 2: field 2 (item id) is not a number: ''"),
        ("", "line 1: no data lines (the file is empty)"),
        ("\n\n", "line 1: no data lines (the file is empty)"),
        # the error is found on the fast path's fallback also deep into a larger file
        ("\n".join(f"{u}\t{i}\t3\t88125{u:04d}" for u in range(1, 401) for i in range(1, 6))
         + "\n400\t6\t3\n", "line 2001: expected 4 tab-separated fields, got 3"),
    ],
    ids=["non-numeric", "too-few-fields", "too-many-fields", "rating-above", "rating-below",
         "half-star-on-integer-scale", "fractional-id", "negative-id", "duplicate",
         "after-blank-line", "blank-and-split-fields", "empty",
         "blank-only", "deep-line"],
)
def test_malformed_u_data(tmp_path, u_data, expected):
    data_dir = _ml100k_dir(tmp_path, u_data)
    message = _load_error(data_dir)
    assert message == f"ml-100k.zip:ml-100k/u.data {expected}"
    assert (data_dir / "raw" / "ml-100k.zip").is_file()  # a hand-placed archive is kept


def test_missing_member(tmp_path):
    _zip(tmp_path / "raw" / "ml-100k.zip", {"ml-100k/u.item": U_ITEM})
    assert _load_error(tmp_path) == (
        "ml-100k.zip: archive has no member 'ml-100k/u.data' (is it the GroupLens archive?)"
    )


def test_not_a_zip(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "ml-100k.zip").write_bytes(b"<html>not found</html>")
    assert "is not a readable zip archive" in _load_error(tmp_path)


def _parse(name, path):
    spec = get_spec(name)
    with zipfile.ZipFile(path) as zf:
        return spec.parser(zf, path.name)


def test_blank_lines_and_crlf_are_tolerated(tmp_path):
    """Irregular but valid files take the line-by-line path and give the same result."""
    regular = _ml100k_zip(tmp_path / "a" / "ml-100k.zip", "\n".join(GOOD) + "\n")
    odd = "\r\n".join(GOOD[:2]) + "\r\n\r\n" + " \t".join(GOOD[2].split("\t")) + "\n" + GOOD[3]
    irregular = _ml100k_zip(tmp_path / "b" / "ml-100k.zip", odd)
    a, b = _parse("ml-100k", regular), _parse("ml-100k", irregular)
    assert (a.matrix != b.matrix).nnz == 0 and np.array_equal(a.timestamps, b.timestamps)
    assert a.matrix.toarray().tolist() == [[5, 3], [4, 0], [0, 1]]
    assert a.item_names == {1: "Toy Story (1995)", 2: "GoldenEye (1995)"}


def _ml10m_zip(path, ratings):
    movies = "1::Toy Story (1995)::Comedy\n2::Jumanji (1995)::Adventure\n"
    return _zip(path, {"ml-10M100K/ratings.dat": ratings, "ml-10M100K/movies.dat": movies})


def _parse_error(name, path):
    with pytest.raises(DataError) as err:
        _parse(name, path)
    return str(err.value)


def test_ml10m_half_stars(tmp_path):
    good = "1::1::3.5::838985046\n1::2::0.5::838983525\n2::1::5::838983392\n"
    inter = _parse("ml-10m", _ml10m_zip(tmp_path / "ml-10m.zip", good))
    assert inter.matrix.toarray().tolist() == [[3.5, 0.5], [5, 0]]
    assert inter.item_names[2] == "Jumanji (1995)"
    assert (inter.rating_scale.low, inter.rating_scale.high) == (0.5, 5.0)

    path = _ml10m_zip(tmp_path / "b" / "ml-10m.zip", good.replace("3.5", "3.25"))
    assert _parse_error("ml-10m", path) == (
        "ml-10m.zip:ml-10M100K/ratings.dat line 1:"
        " rating 3.25 is not on the 0.5-5 scale (steps of 0.5)"
    )
    path = _ml10m_zip(tmp_path / "c" / "ml-10m.zip", good.replace("2::1::5::", "2::1::5:"))
    assert _parse_error("ml-10m", path) == (
        "ml-10m.zip:ml-10M100K/ratings.dat line 3: expected 4 '::'-separated fields, got 3"
    )


def test_ml1m_latin1_names(tmp_path):
    movies = "1::Toy Story (1995)::Comedy\n2::Misérables, Les (1995)::Drama\n".encode("latin-1")
    path = _zip(tmp_path / "ml-1m.zip", {
        "ml-1m/ratings.dat": "1::1::5::978300760\n1::2::3::978302109\n", "ml-1m/movies.dat": movies,
    })
    inter = _parse("ml-1m", path)
    assert inter.item_names[2] == "Misérables, Les (1995)"
    assert inter.matrix.toarray().tolist() == [[5, 3]]


def test_ml_latest_small_csv(tmp_path):
    movies = (
        "movieId,title,genres\n1,Toy Story (1995),Comedy\n"
        '11,"American President, The (1995)",Drama\n'
    )
    ratings = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,11,2.5,964981247\n"
    path = _zip(tmp_path / "ml-latest-small.zip", {
        "ml-latest-small/ratings.csv": ratings, "ml-latest-small/movies.csv": movies,
    })
    inter = _parse("ml-latest-small", path)
    assert inter.matrix.toarray().tolist() == [[4.0, 2.5]]
    assert inter.item_names[11] == "American President, The (1995)"
    assert inter.timestamps.tolist() == [964982703, 964981247]

    path = _zip(tmp_path / "b" / "ml-latest-small.zip", {
        "ml-latest-small/ratings.csv": ratings + "2,1,4.0\n", "ml-latest-small/movies.csv": movies,
    })
    assert _parse_error("ml-latest-small", path) == (
        "ml-latest-small.zip:ml-latest-small/ratings.csv line 4:"
        " expected 4 comma-separated fields, got 3"
    )


LASTFM_HEAD = "userID\tartistID\tweight\r\n"
ARTISTS = "id\tname\turl\tpictureURL\n1\tMALICE MIZER\thttp://x\thttp://y\n"


@pytest.mark.parametrize(
    "body,expected",
    [
        ("2\t1\t13883\r\n2\t2\tlots\r\n", "line 3: field 3 (weight) is not a number: 'lots'"),
        ("2\t1\t13883\r\n2\t2\t0\r\n", "line 3: weight 0 is not a positive integer"),
        ("2\t1\t13883\r\n2\t1\t10\r\n",
         "line 3: duplicate rating for user 2 item 1 (first at line 2)"),
        ("", "line 2: no data lines after the header"),
    ],
    ids=["non-numeric", "zero-weight", "duplicate", "header-only"],
)
def test_malformed_lastfm(tmp_path, body, expected):
    _zip(tmp_path / "raw" / "hetrec2011-lastfm-2k.zip", {
        "user_artists.dat": LASTFM_HEAD + body, "artists.dat": ARTISTS,
    })
    message = _load_error(tmp_path, "lastfm")
    assert message == f"hetrec2011-lastfm-2k.zip:user_artists.dat {expected}"


def test_lastfm_without_header(tmp_path):
    _zip(tmp_path / "raw" / "hetrec2011-lastfm-2k.zip", {
        "user_artists.dat": "2\t1\t13883\r\n", "artists.dat": ARTISTS,
    })
    assert _load_error(tmp_path, "lastfm") == (
        "hetrec2011-lastfm-2k.zip:user_artists.dat line 1: expected a header line, found data"
    )


@pytest.mark.parametrize("folder", ["", "hetrec2011-delicious-2k/"])
def test_delicious_distinct_pairs_earliest_time(tmp_path, folder):
    tagged = (
        "userID\tbookmarkID\ttagID\ttimestamp\n"
        "8\t1\t1\t1289255362000\n"
        "8\t1\t2\t1289255300000\n"  # same pair, earlier: this time is kept
        "8\t2\t1\t1289255400999\n"
        "9\t2\t5\t1289000000000\n"
    )
    bookmarks = (
        "id\tmd5\ttitle\turl\tmd5Principal\turlPrincipal\n"
        "1\tab\tIMDb\thttp://imdb.com\tcd\timdb.com\n"
    )
    path = _zip(tmp_path / "hetrec2011-delicious-2k.zip", {
        folder + "user_taggedbookmarks-timestamps.dat": tagged, folder + "bookmarks.dat": bookmarks,
    })
    inter = _parse("delicious", path)
    assert inter.matrix.toarray().tolist() == [[1, 1], [0, 1]]
    assert inter.timestamps.tolist() == [1289255300, 1289255400, 1289000000]
    assert inter.item_names == {1: "IMDb"} and inter.rating_scale is None


def test_canonical_fold_that_does_not_partition_u_data(tmp_path):
    data_dir = _ml100k_dir(
        tmp_path, "\n".join(GOOD) + "\n",
        **{"ml-100k/u1.base": "\n".join(GOOD[:2]) + "\n", "ml-100k/u1.test": GOOD[3] + "\n"},
    )
    inter = _parse("ml-100k", data_dir / "raw" / "ml-100k.zip")
    with pytest.raises(DataError) as err:
        canonical_fold(inter, data_dir, 1)
    assert str(err.value) == (
        "ml-100k.zip: u1.base + u1.test (2 + 1) do not partition u.data (4 ratings)"
    )


# --------------------------------------------------------------------------- the table, via ncae-run
#
# Every bad input through the installed console script, as a user meets it: one line
# `ncae-run: error: …`, exit status 2, no traceback, no MLflow run (the SQLite store's file is
# byte for byte what it was), and the data folder as it was — the hand-placed archive, a stale
# cache of it, and nothing new (no partial download, no cache of the bad data).


def _closed_port():
    with socket.socket() as s:  # free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deflate_damaged():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", "\n".join(GOOD * 50) + "\n")
        zf.writestr("ml-100k/u.item", U_ITEM)
    body = bytearray(buf.getvalue())
    body[30 + len("ml-100k/u.data")] = 0b111  # the first deflate block: final, reserved type 3
    return bytes(body)


def _ml100k(u_data):
    return lambda raw: _ml100k_zip(raw / "ml-100k.zip", u_data)


def _stale_cache(data_dir, name):
    """A cache of this dataset made from another copy of the archive (its key does not match)."""
    good = _ml100k_zip(data_dir / "good.zip", "\n".join(GOOD) + "\n")
    cache.save(cache.cache_path(data_dir, name), _parse("ml-100k", good), key="1:1")
    good.unlink()


U_DATA = "ml-100k.zip:ml-100k/u.data"
TABLE = {
    # id: (overrides, what goes in <data>/raw/, the whole message or [pieces of it])
    "non-numeric-rating": ([], _ml100k(_with_line(GOOD, 2, "2\t1\tfour\t881250951")),
                           f"{U_DATA} line 3: field 3 (rating) is not a number: 'four'"),
    "wrong-separator": ([], _ml100k("\n".join(line.replace("\t", ",") for line in GOOD) + "\n"),
                        f"{U_DATA} line 1: expected 4 tab-separated fields, got 1 (the line is comma-separated)"),
    "missing-column": ([], _ml100k("\n".join(line.rsplit("\t", 1)[0] for line in GOOD) + "\n"),
                       f"{U_DATA} line 1: expected 4 tab-separated fields, got 3"),
    "duplicate-user-item": ([], _ml100k(_with_line(GOOD, 3, "1\t2\t4\t881250999")),
                            f"{U_DATA} line 4: duplicate rating for user 1 item 2 (first at line 2)"),
    "empty-archive": ([], lambda raw: _zip(raw / "ml-100k.zip", {}),
                      "ml-100k.zip: the archive is empty (is it the GroupLens archive?)"),
    "corrupt-zip": ([], lambda raw: (raw / "ml-100k.zip").write_bytes(b"<html>moved</html>"),
                    "{data}/raw/ml-100k.zip is not a readable zip archive (File is not a zip file);"
                    " delete it to download it again"),
    "corrupt-compressed-data": ([], lambda raw: (raw / "ml-100k.zip").write_bytes(_deflate_damaged()),
                                "{data}/raw/ml-100k.zip is not a readable zip archive (Error -3 while"
                                " decompressing data: invalid block type); delete it to download it again"),
    "not-the-published-archive": ([], _ml100k("\n".join(GOOD) + "\n"),
                                  "ml-100k.zip: expected 943 users, 1682 items, 100000 ratings for ml-100k;"
                                  " got 3, 2, 4"),
    "implicit-non-numeric-weight": (
        ["protocol=implicit", "dataset=lastfm"],
        lambda raw: _zip(raw / "hetrec2011-lastfm-2k.zip",
                         {"user_artists.dat": LASTFM_HEAD + "2\t1\t13883\r\n2\t2\tlots\r\n", "artists.dat": ARTISTS}),
        "hetrec2011-lastfm-2k.zip:user_artists.dat line 3: field 3 (weight) is not a number: 'lots'"),
    "missing-archive-offline": (["dataset.url=http://127.0.0.1:{port}/ml-100k.zip"], None,
                                "cannot download ml-100k.zip from http://127.0.0.1:{port}/ml-100k.zip (could not"
                                " connect: connection refused): place the archive at {data}/raw/ml-100k.zip"
                                " (or set NCAE_DATA_DIR / paths.data_dir)"),
    "unreachable-tracking-server": (["mlflow.tracking_uri=http://127.0.0.1:{port}"], None,
                                    "cannot reach MLflow tracking store http://127.0.0.1:{port} (connection refused);"
                                    " start the server or fix mlflow.tracking_uri / MLFLOW_TRACKING_URI, or run"
                                    " without MLflow: mlflow.enabled=false"),
    "unreachable-tracking-server-sweep": (["-m", "seed=1,2", "mlflow.tracking_uri=http://127.0.0.1:{port}"], None,
                                          ["cannot reach MLflow tracking store http://127.0.0.1:{port} (connection"
                                           " refused);"]),
    "unknown-dataset": (["dataset=nosuch"], None, ["unknown dataset 'nosuch'", "ml-100k"]),
    "unknown-model": (["model=nosuch"], None, ["unknown model 'nosuch'", "biasedmf"]),
    "negative-batch-size": (["trainer.batch_size=-1"], None, ["batch_size", "-1"]),
    "negative-epochs": (["trainer.epochs=-1"], None, ["trainer.epochs", "-1"]),
    "dropout-out-of-range": (["model.dropout=1.5"], None, ["model.dropout", "1.5"]),
    "misspelt-key": (["model.hiden=[10]"], None, ["model.hiden"]),
}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An MLflow SQLite store with its tables and no run, to copy into each case."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def _snapshot(root):
    return {str(p.relative_to(root)) + ("/" if p.is_dir() else ""):
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", list(TABLE))
def test_bad_input_through_ncae_run(case, tmp_path, empty_store):
    overrides, place, expected = TABLE[case]
    port, data = _closed_port(), tmp_path / "data"
    data.mkdir()
    if place is not None:
        (data / "raw").mkdir()
        place(data / "raw")
        if case != "implicit-non-numeric-weight":
            _stale_cache(data, "ml-100k")
    store = tmp_path / "mlflow.db"
    shutil.copy(empty_store, store)
    before, store_bytes = _snapshot(data), store.read_bytes()
    # a dataset small enough that a wrongly accepted input would train in seconds
    small = list(SMALL[:4]) if place is None and case != "missing-archive-offline" else []
    flags = [o for o in overrides if o.startswith("-")]  # -m goes first
    values = [o.format(port=port) for o in overrides if o not in flags]
    proc = run_cli(tmp_path, *flags, *small, "trainer.epochs=1", *values, timeout=180)
    line = error_line(proc).removeprefix("ncae-run: error: ")
    fill = {"port": port, "data": data.resolve()}
    if isinstance(expected, str):
        assert line == expected.format(**fill)
    else:
        assert all(piece.format(**fill) in line for piece in expected), line
    assert _snapshot(data) == before, "the data folder changed"
    assert store.read_bytes() == store_bytes, "the MLflow store changed"
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_corrupt_cache_is_rebuilt_with_one_warning(tmp_path, real_archive):
    """A damaged parsed cache (<data>/processed/) costs one warning line and a re-parse."""
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    archive = raw / "ml-100k.zip"
    shutil.copy2(real_archive("ml-100k"), archive)
    cached = cache.cache_path(tmp_path / "data", "ml-100k")
    cached.parent.mkdir()
    cached.write_bytes(b"PK\x03\x04 half of a cache")
    proc = run_cli(tmp_path, "protocol=implicit", "dataset=ml-100k", "model=pop", "mlflow.enabled=false")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "ncae-run: error" not in proc.stderr
    output = proc.stdout + proc.stderr
    warnings = [line for line in output.splitlines() if "][WARNING]" in line]  # the project's log lines
    assert len(warnings) == 1 and warnings[0].endswith(
        f"ignoring unreadable cache {cached} (not an npz file); rebuilding it"), output
    assert cache.load(cached, cache.archive_key(archive)).n_ratings == 100_000
    assert sorted(p.name for p in cached.parent.iterdir()) == ["ml-100k.npz"]


# --------------------------------------------------------------------------- ncae-recommend

def _recommend(cwd, *args):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["NCAE_DATA_DIR"] = str(cwd / "data")
    return subprocess.run([str(Path(sys.executable).parent / "ncae-recommend"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _recommend_error(proc):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("ncae-recommend: error: "), proc.stderr
    return lines[0].removeprefix("ncae-recommend: error: ")


@pytest.mark.slow
def test_recommend_errors_say_what_to_do(tmp_path):
    assert run_cli(tmp_path, *SMALL[:5], "trainer.epochs=1").returncode == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    child = run.info.run_id
    # a sweep's parent has no model: the error names its best child and the command to run
    parent = client.create_run(run.info.experiment_id, tags={"ncae.sweep": "true", "ncae.best_child": child})
    pid = parent.info.run_id
    client.set_terminated(pid)
    assert _recommend_error(_recommend(tmp_path, f"run_id={pid}", "user=99999", "k=3")) == (
        f"run {pid} is a sweep parent (it has no model); its best child is {child}:"
        f" ncae-recommend run_id={child} user=99999 k=3"
    )
    # ... which gets past the model, to the user: not in the data, and the valid range
    proc = _recommend(tmp_path, f"run_id={child}", "user=99999", "k=3")
    assert _recommend_error(proc) == "user 99999 is not in synthetic (user ids 1..120)"
    assert proc.stdout == ""  # no artifact download progress bars either
    assert _recommend_error(_recommend(tmp_path, "run_id=nope", "user=1")) == (
        f"no run 'nope' in MLflow store {uri}; run ids are in the MLflow UI (make ui) and in ncae-run's log"
        " ('logged to MLflow run <id>')"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _recommend_error(_recommend(elsewhere, f"run_id={child}", "user=1")) == (
        f"no MLflow store at {elsewhere / 'mlflow.db'}: run ncae-recommend in the folder where ncae-run ran,"
        " or pass tracking_uri=<uri>"
    )
    assert list(elsewhere.iterdir()) == []
