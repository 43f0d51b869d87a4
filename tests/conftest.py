"""Shared test helpers: the real archives, ``ncae-run`` as a child process (its environment,
a small synthetic dataset) and a real ``mlflow server``."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from ncae_exp.models.base import Recommender

from ncae_exp.tracking.sweep import PARENT_ENV, PARENT_URI_ENV, SWEPT_KEYS_ENV

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NCAE_RUN = str(BIN / "ncae-run")
# What a child process must not inherit from the shell that runs the tests: a tracking store,
# a sweep's parent run, Hydra's full tracebacks.
NOT_INHERITED = (PARENT_ENV, PARENT_URI_ENV, SWEPT_KEYS_ENV, "MLFLOW_TRACKING_URI", "HYDRA_FULL_ERROR")


def data_root() -> Path:
    """Where the real archives live: ``$NCAE_DATA_DIR`` or the repository's ``data/``."""
    return Path(os.environ.get("NCAE_DATA_DIR") or ROOT / "data")


def child_env(tmp_path: Path | None = None, extra: dict | None = None) -> dict:
    """This environment without :data:`NOT_INHERITED`, for a child process; with ``tmp_path``,
    ``NCAE_DATA_DIR`` is ``<tmp_path>/data`` (nothing touches the real data); ``extra`` last."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    if tmp_path is not None:
        env["NCAE_DATA_DIR"] = str(tmp_path / "data")
    env.update(extra or {})
    return env


def synthetic(n_users: int = 120, n_items: int = 90, n_ratings: int = 3000) -> list[str]:
    """``ncae-run`` overrides for a small synthetic dataset: nothing to download."""
    return ["dataset=synthetic", f"dataset.n_users={n_users}", f"dataset.n_items={n_items}",
            f"dataset.n_ratings={n_ratings}"]


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


class MlflowServer:
    """A real ``mlflow server`` on a free port of 127.0.0.1, started in ``folder``: the SQLite
    store ``store`` (default ``<folder>/server.db``), proxied artifacts in
    ``<folder>/server-artifacts``, its output in ``<folder>/server.log``. It runs in its own
    process group (it starts uvicorn and a job runner), which :meth:`stop` and :meth:`kill` end."""

    def __init__(self, folder: Path, store: str | None = None, timeout: float = 180):
        folder = Path(folder)
        self.store = store or f"sqlite:///{folder / 'server.db'}"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.uri = f"http://127.0.0.1:{port}"
        self.log = folder / "server.log"
        cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", self.store, "--artifacts-destination", str(folder / "server-artifacts")]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(cmd, cwd=folder, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail("mlflow server did not come up:\n" + self.log.read_text()[-3000:])
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self, grace: float = 5) -> None:
        """SIGTERM to the whole group, SIGKILL after ``grace`` seconds (a short grace: the
        store is thrown away with the test's folder anyway)."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:  # the group is gone
                return
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def kill(self) -> None:
        """SIGKILL to the whole group at once, as a crashed host would end it."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.proc.wait(timeout=30)


@pytest.fixture
def start_mlflow_server(tmp_path):
    """``start_mlflow_server(store=None)`` -> a running :class:`MlflowServer` in ``tmp_path``
    (one a test); stopped at teardown."""
    servers = []

    def start(store: str | None = None) -> MlflowServer:
        servers.append(MlflowServer(tmp_path, store))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


# A model whose epochs follow a script (the trainer's and the console's tests).
class Scripted(Recommender):
    """Its 'parameter' is the epoch count; the validation metric follows a script."""

    def __init__(self, losses=None):
        self.epoch = 0
        self.losses = losses

    def prepare(self, train, rating_scale):
        pass

    def train_epoch(self):
        self.epoch += 1
        return self.losses[self.epoch - 1] if self.losses else 10.0 / self.epoch

    def training_loss(self):
        return 99.0

    def predict(self, users, items):
        return np.zeros(len(users))

    def score_items(self, users):
        return np.zeros((len(users), 1))

    def get_state(self):
        return {"epoch": np.array(self.epoch)}

    def set_state(self, state):
        self.epoch = int(state["epoch"])
