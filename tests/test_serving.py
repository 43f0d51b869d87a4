"""Using what was trained: each run's MLflow model (pyfunc), ``ncae-recommend``, ``mlflow
models serve``, the Model Registry and fold-in of new users.

Two tiny runs (synthetic ratings, 2 epochs; a user-based NCAE, registered, and the default
item-based one) are trained once for the module. Every path to a top-k list is checked
against the trained model's own ``score_items``, recomputed here from the saved weights and
the training matrix of the run's seeded split — not through the serving code.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import BIN, NCAE_RUN, child_env, synthetic

RUN_ARGS = [*synthetic(), "trainer.epochs=2", "model.hidden=[16]"]
REGISTERED = "ncae-ncae-explicit-synthetic"


def _train(folder: Path, name: str, *overrides: str, uri: str | None = None) -> str:
    uri = uri or f"sqlite:///{folder / 'mlflow.db'}"
    proc = subprocess.run([NCAE_RUN, *RUN_ARGS, *overrides, f"mlflow.tracking_uri={uri}",
                           f"hydra.run.dir={folder / name}"], cwd=folder, env=child_env(folder),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((folder / name / "results.json").read_text())["mlflow_run_id"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serving")
    user_run = _train(folder, "user", "model.based=user", "model.register=true")
    item_run = _train(folder, "item")
    return {"folder": folder, "uri": f"sqlite:///{folder / 'mlflow.db'}", "user": user_run, "item": item_run}


@pytest.fixture
def runs(trained):
    """The two runs, with their store as MLflow's tracking URI for the test."""
    mlflow.set_tracking_uri(trained["uri"])
    yield trained
    mlflow.set_tracking_uri(None)


def own_top_k(folder: Path, run_dir: str, user: int, k: int) -> tuple[list[int], np.ndarray]:
    """Top-k of the trained model for ``user``, from its weights and its split's training
    matrix, excluding every item the user rated in the dataset; and its scores."""
    from omegaconf import OmegaConf

    from ncae_exp.data.loader import load_dataset
    from ncae_exp.models.io import load_state
    from ncae_exp.models.registry import build_model
    from ncae_exp.protocols.registry import build_protocol

    saved = folder / run_dir / "model" / "artifacts" / "recommender"
    cfg = OmegaConf.load(folder / run_dir / "config.yaml")
    data = load_dataset(cfg.dataset, folder / "data")
    prepared = build_protocol(cfg.protocol).split(data, cfg.split, int(cfg.seed), folder / "data")
    model = build_model(cfg.model)
    model.prepare(prepared.train, prepared.rating_scale)
    model.set_state(load_state(saved / "weights.npz"))
    pos = int(np.searchsorted(data.user_ids, user))
    scores = model.score_items(np.array([pos]))[0].astype(np.float64)
    scores[data.matrix[pos].indices] = -np.inf
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:k]
    return [int(data.item_ids[j]) for j in order], scores


def _recommend(runs, *args) -> subprocess.CompletedProcess:
    env = child_env(runs["folder"], {"MLFLOW_TRACKING_URI": runs["uri"]})
    return subprocess.run([str(BIN / "ncae-recommend"), *args], cwd=runs["folder"], env=env,
                          capture_output=True, text=True, timeout=300)


def test_pyfunc_ncae_recommend_and_the_trained_model_agree(runs):
    for kind in ("user", "item"):
        run_id = runs[kind]
        model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        example = model.input_example
        assert list(example.columns) == ["user", "k"]
        top = model.predict(example)
        assert list(top.columns) == ["user", "rank", "item", "score"] and len(top) == 10
        out = model.predict(pd.DataFrame({"user": [3], "k": [7]}))
        expected, scores = own_top_k(runs["folder"], kind, 3, 7)
        assert out["item"].tolist() == expected and out["rank"].tolist() == list(range(1, 8))
        assert np.allclose(out["score"], [scores[j - 1] for j in expected], atol=1e-5)  # synthetic ids are 1..N
    # ncae-recommend (a real process) prints the same list (the user-based run's: next test)
    proc = _recommend(runs, f"run_id={run_id}", "user=3", "k=7")
    assert proc.returncode == 0, proc.stderr[-2000:]
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["rank", "item", "score"]  # synthetic items have no names
    assert [int(r.split()[1]) for r in rows] == expected


def test_registered_model_loads_by_name(runs):
    by_run = mlflow.pyfunc.load_model(f"runs:/{runs['user']}/model")
    by_name = mlflow.pyfunc.load_model(f"models:/{REGISTERED}/1")
    req = pd.DataFrame({"user": [2, 4], "k": [4, 4]})
    pd.testing.assert_frame_equal(by_run.predict(req), by_name.predict(req))
    proc = _recommend(runs, f"model={REGISTERED}", "user=2", "k=4")
    assert proc.returncode == 0, proc.stderr
    assert [int(r.split()[1]) for r in proc.stdout.splitlines()[1:]] == own_top_k(runs["folder"], "user", 2, 4)[0]
    assert mlflow.MlflowClient().get_run(runs["user"]).data.tags["ncae.registered_model"] == f"{REGISTERED}/1"


def test_fold_in_of_a_training_user_through_user_based_ncae_gives_their_scores(runs):
    wrapper = mlflow.pyfunc.load_model(f"runs:/{runs['user']}/model").unwrap_python_model()
    train = wrapper.data.train
    users = np.array([0, 4, 9])
    assert np.allclose(wrapper.model.score_vectors(train[users]), wrapper.model.score_items(users), atol=1e-5)
    # through predict: the user's training items and ratings, by original ids
    row = train[4]
    items, ratings = wrapper.data.item_ids[row.indices].tolist(), row.data.tolist()
    out = mlflow.pyfunc.load_model(f"runs:/{runs['user']}/model").predict(
        pd.DataFrame({"items": [items], "ratings": [ratings], "k": [5]}))
    own = wrapper.model.score_items(np.array([4]))[0]
    assert not set(out["item"]) & set(items)
    assert np.allclose(out["score"], own[np.searchsorted(wrapper.data.item_ids, out["item"])], atol=1e-5)


def test_item_based_projection_fits_the_given_ratings(runs):
    """The projection fits K + 1 = 17 numbers (a new output unit) to a user's ratings by ridge
    regression on pre-activations with the model's λ = 0.01. With fewer ratings than that it
    is in the interpolation regime: the fitted ratings miss the given ones only by the clip
    (a 5 maps to 4.99) and λ's shrinkage — measured ≤ 0.085 on users with 4–14 ratings, so
    0.1 is the bound; their order is the ratings' order, and every score stays on the scale.
    (Two epochs on random data leave no signal to rank unrated items by, so only the fit is
    checked here; the user-based fold-in is checked exactly above.)"""
    from scipy.stats import spearmanr

    wrapper = mlflow.pyfunc.load_model(f"runs:/{runs['item']}/model").unwrap_python_model()
    train = wrapper.data.train
    counts = np.diff(train.indptr)
    user = int(np.argmin(np.abs(counts - 8) + 100 * (np.ptp(train[np.arange(len(counts))].toarray(), axis=1) == 0)))
    row = train[user]
    folded = wrapper.model.score_vectors(row)[0]
    assert np.max(np.abs(folded[row.indices] - row.data)) <= 0.1
    assert spearmanr(folded[row.indices], row.data).statistic > 0.9
    assert np.all((folded >= 1.0) & (folded <= 5.0))
    # ncae-recommend folds in from a file of item,rating lines
    lines = ["item,rating"] + [f"{i},{r:g}" for i, r in zip(wrapper.data.item_ids[row.indices], row.data)]
    (runs["folder"] / "new_user.csv").write_text("\n".join(lines) + "\n")
    proc = _recommend(runs, f"run_id={runs['item']}", "ratings=new_user.csv", "k=3")
    assert proc.returncode == 0, proc.stderr
    top = [int(r.split()[1]) for r in proc.stdout.splitlines()[1:]]
    scores = folded.astype(np.float64)
    scores[row.indices] = -np.inf
    assert top == [int(wrapper.data.item_ids[j]) for j in sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:3]]


def test_models_that_cannot_fold_in_refuse_in_one_line():
    from ncae_exp.errors import ConfigError
    from ncae_exp.models.bpr import BPR
    from ncae_exp.models.ncf import NCF

    for model in (BPR(), NCF()):
        with pytest.raises(ConfigError) as err:
            model.score_vectors(sp.csr_matrix((1, 5)))
        text = str(err.value)
        assert "\n" not in text and "cannot fold in" in text and "retrain" in text and "ease" in text


def test_factor_fold_in_is_the_models_own_user_step():
    """ALS-WR's and eALS's fold-in solve exactly what their training solves for a user."""
    from ncae_exp.data.interactions import RatingScale
    from ncae_exp.models.alswr import ALSWR
    from ncae_exp.models.eals import EALS

    rng = np.random.default_rng(0)
    x = sp.random(30, 20, density=0.3, random_state=1, format="csr", data_rvs=lambda n: rng.integers(1, 6, n))
    als = ALSWR(factors=4)
    als.prepare(x, RatingScale(1, 5))
    als.train_epoch()
    als._update_users()  # user factors optimal for the current item factors
    assert np.allclose(als.score_vectors(x[:5]), als.score_items(np.arange(5)), atol=1e-8)
    eals = EALS(factors=4)
    eals.prepare(x, None)
    eals.train_epoch()
    y = eals._predicted_observed()
    for _ in range(300):  # coordinate sweeps converge to the exact minimiser
        eals._sweep_users(y)
    assert np.allclose(eals.score_vectors(x[:5]), eals.score_items(np.arange(5)), atol=1e-6)


@pytest.fixture
def served(runs):
    """``mlflow models serve`` of the item-based run's model on a free port (stopped at teardown)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # it starts `uvicorn` by name: the venv's bin must be on PATH (as with an activated venv)
    env = child_env(runs["folder"], {"MLFLOW_TRACKING_URI": runs["uri"],
                                     "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    log = (runs["folder"] / "serve.log").open("w")
    proc = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", f"runs:/{runs['item']}/model",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=runs["folder"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (runs["folder"] / "serve.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # its whole group (mlflow, uvicorn)
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _post(url: str, payload: dict) -> list[dict]:
    req = urllib.request.Request(f"{url}/invocations", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())["predictions"]


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_same_top_k(runs, served):
    expected, _ = own_top_k(runs["folder"], "item", 3, 7)
    out = _post(served, {"dataframe_records": [{"user": 3, "k": 7}]})
    assert [r["item"] for r in out] == expected and [r["rank"] for r in out] == list(range(1, 8))
    split = _post(served, {"dataframe_split": {"columns": ["user", "k"], "data": [[3, 7]]}})
    assert split == out
    folded = _post(served, {"dataframe_records": [{"items": [1, 2, 3], "ratings": [5.0, 1.0, 4.0], "k": 3}]})
    local = mlflow.pyfunc.load_model(f"runs:/{runs['item']}/model").predict(
        pd.DataFrame({"items": [[1, 2, 3]], "ratings": [[5.0, 1.0, 4.0]], "k": [3]}))
    assert [r["item"] for r in folded] == local["item"].tolist()


@pytest.mark.slow
def test_register_on_a_tracking_server(tmp_path, start_mlflow_server):
    server = start_mlflow_server()
    run_id = _train(tmp_path, "run", "model.register=true", "model.register_name=served-ncae", uri=server.uri)
    mlflow.set_tracking_uri(server.uri)
    try:
        by_name = mlflow.pyfunc.load_model("models:/served-ncae/1")
        by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
        pd.testing.assert_frame_equal(by_name.predict(by_name.input_example), by_run.predict(by_run.input_example))
    finally:
        mlflow.set_tracking_uri(None)
