"""The pre-training report (Table 2, Fig. 5) on a temporary MLflow store with known runs."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Metric, Param

from ncae_exp.reports.fig5 import (
    NO_TEST_SERIES,
    NO_TRAIN_SERIES,
    epoch0_metric,
    fig5_groups,
    fig5_markdown,
    fig5_ordering,
    fig5_png,
    fig5_warnings,
    mean_curve,
)
from ncae_exp.reports.pretrain import log_report, write_report
from ncae_exp.reports.runs import ReportError, RunRecord, collect_runs
from ncae_exp.reports.table2 import table2_markdown

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "report_pretrain.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCHS = 3


def add_run(client, exp_id, *, hidden, pretrain, test, seed=0, dataset="synthetic", parent=None,
            curves=None, status="FINISHED", with_epochs_run=True):
    """One child run like ncae-run logs it. ``curves``: {series: [value at epoch 0..EPOCHS]}."""
    tags = {"protocol": "explicit", "dataset": dataset, "model": "ncae"}
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(exp_id, run_name=f"model.hidden={hidden},pretrain={pretrain},seed={seed}", tags=tags)
    rid = run.info.run_id
    params = {
        "model.hidden": str(list(hidden)),
        "model.based": "item",
        "model.l2": "0.0002",
        "model.dropout": "0.5",
        "pretrain.name": pretrain,
        "seed": str(seed),
        "dataset.name": dataset,
        "trainer.epochs": str(EPOCHS),
        "model.batch_size": "128",
        "split.train": "0.8",
        "split.val": "0.1",
        "split.test": "0.1",
    }
    if pretrain != "none":
        params["pretrain.epochs_per_stage"] = "10"
    now = int(time.time() * 1000)
    metrics = [Metric("train_loss", 1.0 - 0.1 * step, now, step) for step in range(EPOCHS + 1)]
    for key, values in (curves or {}).items():
        assert len(values) == EPOCHS + 1
        metrics += [Metric(key, v, now, step) for step, v in enumerate(values)]
    # as the pipeline does: the final values once more at step epochs_run + 1 (to be ignored
    # by the curves; `test` differs from every curve value, so a leak would show)
    final = {"test_rmse": test, "val_rmse": test + 0.01}
    if with_epochs_run:
        final["epochs_run"] = float(EPOCHS)
    metrics += [Metric(k, v, now + 1, EPOCHS + 1) for k, v in final.items()]
    client.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(rid, status=status)
    return rid


@pytest.fixture(scope="session")
def blank_db(tmp_path_factory):
    """An empty, migrated SQLite store, copied per test (creating one costs seconds)."""
    path = tmp_path_factory.mktemp("blank") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def new_store(blank_db, folder):
    """sqlite URI of a fresh store ``folder/mlflow.db``."""
    shutil.copy(blank_db, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


CURVES = {
    # final test RMSE order: S+U+S < S+U < BP(None); epoch-0 test order: S+U+S < BP(None) < S+U
    "sus": {"train_rmse": [1.00, 0.90, 0.85, 0.80], "test_rmse": [1.05, 0.95, 0.90, 0.88], "val_rmse": [1.04, 0.94, 0.91, 0.89]},
    "su": {"train_rmse": [1.20, 0.95, 0.90, 0.86], "test_rmse": [1.50, 1.00, 0.95, 0.92], "val_rmse": [1.45, 1.00, 0.96, 0.93]},
    "none": {"train_rmse": [1.30, 1.00, 0.93, 0.88], "test_rmse": [1.40, 1.10, 1.00, 0.97], "val_rmse": [1.38, 1.09, 1.01, 0.98]},
}


@pytest.fixture
def store(tmp_path, blank_db):
    """A sweep parent with its children, as ``ncae-run -m`` leaves them."""
    uri = new_store(blank_db, tmp_path)
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("ncae-explicit", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(exp_id, run_name="sweep", tags={"ncae.sweep": "true", "dataset": "synthetic"}).info.run_id
    ids = {}
    ids["single_a"] = add_run(client, exp_id, hidden=[200], pretrain="none", test=0.781, seed=0, parent=parent)
    ids["single_b"] = add_run(client, exp_id, hidden=[200], pretrain="none", test=0.789, seed=1, parent=parent)
    ids["single_star"] = add_run(client, exp_id, hidden=[200], pretrain="sus", test=0.7801, parent=parent)
    ids["single_1000"] = add_run(client, exp_id, hidden=[1000], pretrain="none", test=0.7702, parent=parent)
    ids["double"] = add_run(client, exp_id, hidden=[500, 500], pretrain="none", test=0.7754, parent=parent, curves=CURVES["none"])
    ids["double_star"] = add_run(client, exp_id, hidden=[500, 500], pretrain="sus", test=0.7671, parent=parent, curves=CURVES["sus"])
    ids["double_su"] = add_run(client, exp_id, hidden=[500, 500], pretrain="su", test=0.7722, parent=parent, curves=CURVES["su"])
    ids["deep"] = add_run(client, exp_id, hidden=[200, 200, 200], pretrain="none", test=0.7903, parent=parent)
    ids["failed"] = add_run(client, exp_id, hidden=[200], pretrain="none", test=0.1, parent=parent, status="FAILED")
    client.set_terminated(parent, status="FINISHED")
    return {"uri": uri, "client": client, "exp_id": exp_id, "parent": parent, "ids": ids, "tmp": tmp_path}


def table_rows(markdown: str, title: str = "## Table 2") -> dict[str, dict[str, str]]:
    """{row label: {column header: cell}} of the first table after ``title``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
        elif table:
            break
    header, _, *rows = table
    return {row[0]: dict(zip(header[1:], row[1:])) for row in rows}, header


def test_collect_children_of_the_sweep(store):
    runs = collect_runs(store["client"], parent_run_id=store["parent"])
    ids = {r.run_id for r in runs}
    assert store["parent"] not in ids, "the sweep's parent is not a data point"
    assert store["ids"]["failed"] not in ids, "unfinished runs are left out"
    assert len(runs) == 8
    star = next(r for r in runs if r.run_id == store["ids"]["double_star"])
    assert star.hidden == (500, 500) and star.pretrain == "sus" and star.epochs_run == EPOCHS
    assert star.parent_run_id == store["parent"] and star.dataset == "synthetic"
    # the point at epochs_run + 1 (final value logged again) is not part of the curves
    for key in ("train_rmse", "test_rmse", "val_rmse"):
        assert [s for s, _ in star.series[key]] == [0, 1, 2, 3], key
    assert [v for _, v in star.series["test_rmse"]] == CURVES["sus"]["test_rmse"]


def test_table2_cells(store):
    runs = collect_runs(store["client"], parent_run_id=store["parent"])
    md = table2_markdown(runs)
    rows, header = table_rows(md)
    assert header == ["Configuration", "K = 200", "K = 500", "K = 1000"], "columns in numeric order of K"
    assert list(rows) == ["SINGLE", "SINGLE*", "DOUBLE", "DOUBLE*", "DOUBLE* (S+U)", "L=4"]
    # two seeds: mean 0.785, sample std 0.00566 (population std would print 0.004)
    assert rows["SINGLE"] == {"K = 200": "0.785 ± 0.006 (n=2)", "K = 500": "–", "K = 1000": "0.770"}
    assert rows["SINGLE*"] == {"K = 200": "0.780", "K = 500": "–", "K = 1000": "–"}
    assert rows["DOUBLE"]["K = 500"] == "0.775"
    assert rows["DOUBLE*"] == {"K = 200": "–", "K = 500": "0.767", "K = 1000": "–"}
    assert rows["DOUBLE* (S+U)"]["K = 500"] == "0.772"
    assert rows["L=4"]["K = 200"] == "0.790"
    assert md.splitlines()[2].startswith("8 runs · dataset synthetic · based item · λ 0.0002")
    assert " · batch 128 · " in md.splitlines()[2], "the mini-batch size is a model param (model.batch_size)"
    assert "0.100" not in md, "the failed run is left out"
    # the paper's values are always there, labelled; the difference only for ml-10m runs
    paper, _ = table_rows(md, "### Paper's values")
    assert paper["DOUBLE*"] == {"K = 200": "0.794", "K = 300": "0.779", "K = 400": "0.771", "K = 500": "0.767"}
    assert paper["SINGLE"]["K = 200"] == "0.791"
    assert "ML-10M" in md and "This report − paper" not in md


def test_table2_difference_to_paper_on_ml10m():
    runs = [
        RunRecord(run_id="a", hidden=(500, 500), pretrain="sus", test_rmse=0.770, dataset="ml-10m"),
        RunRecord(run_id="b", hidden=(500, 500), pretrain="sus", test_rmse=0.774, dataset="ml-10m", seed="1"),
        RunRecord(run_id="c", hidden=(200,), pretrain="none", test_rmse=0.7880, dataset="ml-10m"),
    ]
    md = table2_markdown(runs)
    rows, _ = table_rows(md)
    assert rows["DOUBLE*"]["K = 500"] == "0.772 ± 0.003 (n=2)"
    diff, _ = table_rows(md, "### This report − paper")
    assert diff["DOUBLE*"]["K = 500"] == "+0.005" and diff["DOUBLE*"]["K = 200"] == "–"
    assert diff["SINGLE"]["K = 200"] == "-0.003"
    assert "DOUBLE" not in diff, "rows without any of our cells are left out"


def test_fig5_ordering(store):
    runs = collect_runs(store["client"], parent_run_id=store["parent"])
    shape, groups = fig5_groups(runs)
    assert shape == (500, 500), "the deep shape with the most schedules"
    assert list(groups) == ["S+U+S", "S+U", "BP(None)"]
    assert fig5_ordering(runs) == [("S+U+S", 0.7671), ("S+U", 0.7722), ("BP(None)", 0.7754)]
    assert fig5_ordering(runs, at="epoch0") == [("S+U+S", 1.05), ("BP(None)", 1.40), ("S+U", 1.50)]
    assert fig5_ordering(runs, at="epoch0_train") == [("S+U+S", 1.00), ("S+U", 1.20), ("BP(None)", 1.30)]
    assert mean_curve(groups["BP(None)"], "test_rmse")[-1] == (3, 0.97)
    note = fig5_markdown(runs)
    assert "S+U+S 0.7671 < S+U 0.7722 < BP(None) 0.7754" in note
    assert "✓ S+U+S has a lower epoch-0 test_rmse than BP(None)" in note
    assert "✓ S+U+S ends with a lower test RMSE than BP(None)" in note
    assert "✗" not in note and "log_test_rmse" not in note


def test_fig5_png_is_a_valid_png(store, tmp_path):
    import matplotlib.image

    runs = collect_runs(store["client"], parent_run_id=store["parent"])
    path = fig5_png(runs, tmp_path / "sub" / "fig5.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 1000 and height > 300, "two panels side by side"
    assert fig5_warnings(runs) == []


def test_fig5_shape_is_the_deep_one_with_most_schedules():
    runs = [RunRecord(run_id=f"a{p}", hidden=(100, 100), pretrain=p, test_rmse=0.8) for p in ("none", "sus", "uu")]
    runs += [RunRecord(run_id="big", hidden=(900, 900), pretrain="none", test_rmse=0.8)]
    runs += [RunRecord(run_id=f"s{p}", hidden=(2000,), pretrain=p, test_rmse=0.8) for p in ("none", "sus")]
    shape, groups = fig5_groups(runs)
    assert shape == (100, 100) and list(groups) == ["S+U+S", "U+U", "BP(None)"]
    assert fig5_groups(runs, hidden=[900, 900])[0] == (900, 900)
    assert fig5_groups(runs[-2:])[0] == (2000,), "one hidden layer when there is nothing deeper"
    with pytest.raises(ReportError, match=r"model.hidden=\[7, 7\]"):
        fig5_groups(runs, hidden=[7, 7])


def test_fig5_without_test_series_says_so(tmp_path):
    curves = {"train_rmse": [(0, 1.3), (1, 1.1)], "val_rmse": [(0, 1.35), (1, 1.2)]}
    runs = [
        RunRecord(run_id="a", hidden=(8, 8), pretrain="none", test_rmse=1.2, epochs_run=1, series=curves),
        RunRecord(run_id="b", hidden=(8, 8), pretrain="sus", test_rmse=1.1, epochs_run=1,
                     series={"train_rmse": [(0, 1.2), (1, 1.0)], "val_rmse": [(0, 1.25), (1, 1.15)]}),
    ]
    assert fig5_warnings(runs) == [NO_TEST_SERIES]
    assert "protocol.log_test_rmse=true" in NO_TEST_SERIES and "protocol.log_train_rmse=true" in NO_TRAIN_SERIES
    assert fig5_png(runs, tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC
    assert epoch0_metric(runs) == "val_rmse"
    assert fig5_ordering(runs, at="epoch0") == [("S+U+S", 1.25), ("BP(None)", 1.35)]
    note = fig5_markdown(runs)
    assert "protocol.log_test_rmse=true" in note and "epoch 0 (right after pre-training), val_rmse" in note


def test_epochs_run_missing_bounds_series_by_training_steps(store):
    client, exp_id = store["client"], store["exp_id"]
    rid = add_run(client, exp_id, hidden=[64, 64], pretrain="uu", test=0.9, curves=CURVES["none"], with_epochs_run=False)
    (rec,) = [r for r in collect_runs(client, experiment="ncae-explicit") if r.run_id == rid]
    assert rec.epochs_run is None
    assert [s for s, _ in rec.series["test_rmse"]] == [0, 1, 2, 3]


def test_artifacts_land_on_the_sweep_parent(store, tmp_path):
    client = store["client"]
    runs = collect_runs(client, parent_run_id=store["parent"])
    paths = write_report(runs, tmp_path / "out")
    assert [p.name for p in paths] == ["table2.md", "fig5.png"]
    run_id = log_report(client, runs, paths)
    assert run_id == store["parent"]
    assert {a.path for a in client.list_artifacts(run_id)} >= {"table2.md", "fig5.png"}
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="table2.md", dst_path=str(tmp_path / "dl"),
                                                tracking_uri=store["uri"])
    text = Path(local).read_text(encoding="utf-8")
    assert "0.785 ± 0.006 (n=2)" in text and "![Fig. 5" in text and "(fig5.png)" in text
    assert not [r for r in client.search_runs([store["exp_id"]]) if r.info.run_name == "report"]


def test_artifacts_go_to_a_report_run_when_runs_have_no_parent(tmp_path, blank_db):
    uri = new_store(blank_db, tmp_path)
    client = mlflow.MlflowClient(uri)
    exp_id = client.create_experiment("solo", artifact_location=(tmp_path / "artifacts").as_uri())
    for pretrain, test in (("none", 0.7754), ("sus", 0.7671)):
        add_run(client, exp_id, hidden=[500, 500], pretrain=pretrain, test=test, curves=CURVES[pretrain])
    add_run(client, exp_id, hidden=[500, 500], pretrain="sus", test=0.5, dataset="ml-1m", curves=CURVES["sus"])
    runs = collect_runs(client, experiment="solo", dataset="synthetic")
    assert len(runs) == 2 and {r.parent_run_id for r in runs} == {None}
    run_id = log_report(client, runs, write_report(runs, tmp_path / "out"))
    report = client.get_run(run_id)
    assert report.info.run_name == "report" and report.data.tags["ncae.report"] == "true"
    assert report.info.status == "FINISHED" and report.info.experiment_id == exp_id
    assert {a.path for a in client.list_artifacts(run_id)} == {"table2.md", "fig5.png"}
    # the report run is not a data point next time
    assert {r.run_id for r in collect_runs(client, experiment="solo")} == {r.run_id for r in runs} | {
        r.info.run_id for r in client.search_runs([exp_id]) if r.data.tags.get("dataset") == "ml-1m"
    }


def test_collect_filters_and_errors(store):
    client = store["client"]
    assert len(collect_runs(client, experiment="ncae-explicit", params={"model.hidden": "[500, 500]"})) == 3
    with pytest.raises(ReportError, match="no finished NCAE runs with a test_rmse matching dataset=ml-10m"):
        collect_runs(client, experiment="ncae-explicit", dataset="ml-10m")
    with pytest.raises(ReportError, match="no experiment 'nosuch'"):
        collect_runs(client, experiment="nosuch")
    with pytest.raises(ReportError, match="unknown run id 'deadbeef'"):
        collect_runs(client, parent_run_id="deadbeef")
    with pytest.raises(ReportError, match="children of run"):
        collect_runs(client, parent_run_id=store["ids"]["double"])  # a child, not a sweep parent


def run_script(*args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("report_pretrain: error: ")
    return lines[0]


def test_script_on_the_store(store, tmp_path):
    out = tmp_path / "rep"
    proc = run_script("--tracking-uri", store["uri"], "--parent-run-id", store["parent"], "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "| SINGLE | 0.785 ± 0.006 (n=2) | – | 0.770 |" in proc.stdout
    assert "S+U+S 0.7671 < S+U 0.7722 < BP(None) 0.7754" in proc.stdout
    assert (out / "table2.md").is_file() and (out / "fig5.png").read_bytes()[:8] == PNG_MAGIC
    assert {a.path for a in store["client"].list_artifacts(store["parent"])} >= {"table2.md", "fig5.png"}
    # the default store is ./mlflow.db, and --no-log logs nothing
    proc = run_script("--experiment", "ncae-explicit", "--dataset", "synthetic", "--no-log", "--out", "r", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "table2.md").is_file()
    assert not [r for r in store["client"].search_runs([store["exp_id"]]) if r.info.run_name == "report"]


def test_script_on_an_empty_store(tmp_path, blank_db):
    uri = new_store(blank_db, tmp_path)
    mlflow.MlflowClient(uri).create_experiment("ncae-explicit", artifact_location=(tmp_path / "a").as_uri())
    line = one_error_line(run_script("--tracking-uri", uri, "--out", str(tmp_path / "r"), cwd=tmp_path))
    assert "no finished NCAE runs" in line and "ncae-explicit" in line
    assert not (tmp_path / "r" / "table2.md").exists()


def test_script_errors_are_one_line(tmp_path, blank_db):
    line = one_error_line(run_script("--out", "r", cwd=tmp_path))  # no mlflow.db here
    assert "no MLflow store at" in line
    assert not (tmp_path / "mlflow.db").exists(), "a report never creates a store"
    uri = new_store(blank_db, tmp_path)
    line = one_error_line(run_script("--tracking-uri", uri, "--parent-run-id", "0123abcd", cwd=tmp_path))
    assert "unknown run id '0123abcd'" in line
    line = one_error_line(run_script("--tracking-uri", uri, "--experiment", "nosuch", cwd=tmp_path))
    assert "no experiment 'nosuch'" in line
