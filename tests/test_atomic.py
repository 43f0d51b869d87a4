"""The one atomic file write every module uses (src/ncae_exp/atomic.py)."""

import json
import os

import pytest

from ncae_exp.atomic import replace_atomically, write_json_atomically


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@pytest.mark.parametrize("private", [True, False])
def test_the_file_is_private_or_follows_the_umask(tmp_path, private):
    path = write_json_atomically(tmp_path / "a" / "b.json", {"x": 1}, private=private)
    assert json.loads(path.read_text()) == {"x": 1} and path.read_text().endswith("}\n")
    assert path.stat().st_mode & 0o777 == (0o600 if private else 0o666 & ~_umask())
    assert [p.name for p in path.parent.iterdir()] == ["b.json"], "no temp file left behind"


def test_a_failure_in_the_block_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="check failed"):
        with replace_atomically(path, "w+b", private=True, suffix=".part") as fh:
            fh.write(b"new")
            fh.seek(0)
            assert fh.read() == b"new"  # "w+b" reads back what it wrote, for a check
            raise ValueError("check failed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_strict_json_refuses_nan_before_replacing(tmp_path):
    path = write_json_atomically(tmp_path / "r.json", {"a": 1}, private=False, fsync=True)
    with pytest.raises(ValueError):
        write_json_atomically(path, {"a": float("nan")}, private=False, allow_nan=False)
    assert json.loads(path.read_text()) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["r.json"]
