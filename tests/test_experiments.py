"""Every paper experiment (``conf/experiment/*.yaml``) runs end to end, on a tiny dataset.

Each one runs as a user runs it, ``ncae-run +experiment=<name>``, with its own sweep grid
untouched: only the data shrink (a small synthetic matrix) and the training is one epoch.
A sweep must leave one MLflow parent run with one finished child per point of the
experiment's grid (read from its file), named by its swept values; ``paper_ml10m`` is a
single run. An experiment with ``retrain: true`` (the paper's protocol) retrains each child
as nested runs tagged ``ncae.stage=retrain``; here twice instead of its ``repeats`` (the
smallest number that still gives the ``test_*_std`` beside the means).

What is overridden, and why:

- ``dataset=synthetic`` with a 60 x 40 matrix of 600 ratings: nothing to download. Under
  ``protocol=implicit`` (table4, fig6, fig7, fig9, table5) the generated ratings count as
  interactions, as MovieLens ratings do; the synthetic dataset needs no switch for that.
- fig7 and fig9 sweep ``dataset: lastfm,delicious``. A command-line value replaces a sweeper
  param of the same key (Hydra's BasicSweeper merges them by key, the command line last), so
  ``dataset=synthetic`` turns that dimension into one value: those two run the rest of their
  grid once instead of once per dataset. Every other dimension of every grid runs in full.
- ``model.hidden`` is made small only where the experiment neither sweeps it (table2, fig7,
  table6 do) nor sweeps ``model`` (table3, fig9, table5: the baselines have no such key, and
  NCAE keeps the paper's K = 500 there, cheap on 60 x 40 data). fig5 and paper_ml10m keep
  two hidden layers ([8,8]) so that every pre-training stage (SR, DR/SH, V) still runs.
- ``trainer.epochs=1``; where the experiment sweeps the top-level ``pretrain`` group (table2,
  fig5), one epoch per pre-training stage (``++``: ``pretrain=none`` has no such key).
"""

from __future__ import annotations

import itertools
import subprocess

import mlflow
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from conftest import NCAE_RUN, ROOT, child_env, synthetic

EXPERIMENTS = ROOT / "src" / "ncae_exp" / "conf" / "experiment"
TINY = [*synthetic(60, 40, 600), "trainer.epochs=1"]
REPEATS = 2
# per experiment, what makes it tiny beyond TINY (see the module docstring)
EXTRA = {
    # 16 jobs: retraining them too would double the file's time; the retrain path runs in
    # the other paper experiments (and tests/test_selection.py)
    "table2": ["++pretrain.epochs_per_stage=1", "retrain=false"],
    "fig5": ["model.hidden=[8,8]", "++pretrain.epochs_per_stage=1"],
    "table3": [],
    "table4": ["model.hidden=[8]"],
    "fig6": ["model.hidden=[8]"],
    "fig7": [],
    "fig9": [],
    "table5": [],
    "table6": [],
    "paper_ml10m": ["model.hidden=[8,8]"],
}


def experiment(name: str):
    return OmegaConf.load(EXPERIMENTS / f"{name}.yaml")


def test_every_experiment_file_is_covered():
    assert set(EXTRA) == {p.stem for p in EXPERIMENTS.glob("*.yaml")}


def expected_child_names(name: str, command_line: list[str]) -> list[str]:
    """The experiment's grid as Hydra's basic sweeper builds it (its params, then the
    command line, merged by key), each job named by its swept values (tracking/sweep.py)."""
    params = OmegaConf.select(experiment(name), "hydra.sweeper.params") or {}
    if not params:
        return []
    parser = OverridesParser.create()
    grid: dict[str, list[str]] = {}
    for override in parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + command_line):
        key = override.get_key_element()
        if override.is_sweep_override():
            grid[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
        elif key in grid:  # a command-line value replaces a swept one
            grid[key] = [f"{key}={override.get_value_element_as_str()}"]
    swept = [grid[str(k)] for k in params]
    return [",".join(point) for point in itertools.product(*swept)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXTRA))
def test_experiment_runs_end_to_end_on_tiny_data(tmp_path, name):
    retrain = bool(experiment(name).get("retrain", False)) and "retrain=false" not in EXTRA[name]
    command_line = [f"+experiment={name}", *TINY, *EXTRA[name], *([f"repeats={REPEATS}"] if retrain else [])]
    proc = subprocess.run(
        [NCAE_RUN, *command_line, f"hydra.run.dir={tmp_path / 'out'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, env=child_env(tmp_path), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert not (tmp_path / "data" / "raw").exists(), "nothing may be downloaded"

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert all(r.info.status == "FINISHED" for r in runs), [(r.info.run_name, r.info.status) for r in runs]
    parents = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    names = expected_child_names(name, command_line)
    if names:
        # one parent, and a child for every grid point of the experiment, each once
        assert len(parents) == 1, [r.info.run_name for r in parents]
        parent = parents[0]
        jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(r.info.run_name for r in jobs) == sorted(names)
        assert parent.data.metrics["n_children"] == len(names)
        select = jobs[0].data.params["protocol.select"]
        if any(select in r.data.metrics for r in jobs):  # table3's 90/10 split has no validation
            assert f"best_{select}" in parent.data.metrics
    else:
        assert not parents
        jobs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert len(jobs) == 1
    repeats = [r for r in runs if r.data.tags.get("ncae.stage") == "retrain"]
    assert len(runs) == len(parents) + len(jobs) + len(repeats), "no run outside parent / jobs / repeats"
    for run in jobs:
        assert run.data.tags["dataset"] == "synthetic" and run.data.params["trainer.epochs"] == "1"
        final = "test_rmse" if run.data.tags["protocol"] == "explicit" else "test_hr_at_100"
        assert final in run.data.metrics, (run.info.run_name, sorted(run.data.metrics))
        mine = [r for r in repeats if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]
        if retrain:  # retrained REPEATS times, nested under the job; the job has mean and std
            assert len(mine) == REPEATS, run.info.run_name
            assert f"{final}_std" in run.data.metrics, (run.info.run_name, sorted(run.data.metrics))
    if not retrain:
        assert not repeats
    else:
        assert len(repeats) == REPEATS * len(jobs)
