"""Shared test helpers."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Where the real archives live: ``$NCAE_DATA_DIR`` or the repository's ``data/``."""
    return Path(os.environ.get("NCAE_DATA_DIR") or ROOT / "data")


@pytest.fixture(scope="session")
def real_archive():
    """``real_archive(name)`` -> path of the dataset's real archive in ``<data>/raw/``.

    GroupLens archives cannot be committed; CI stages them (a missing one fails there),
    elsewhere the tests that need one are skipped with the reason.
    """
    from ncae_exp.data.registry import get_spec

    def find(name: str) -> Path:
        path = data_root() / "raw" / get_spec(name).archive
        if not path.is_file():
            reason = f"real archive {path} is missing (see data/README.md to place it)"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        return path

    return find
