"""``ncae-report``: the comparison of a sweep's groups, on a hand-built MLflow store."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.entities import Metric, Param
from scipy import stats

from ncae_exp.reports.compare import build_comparison_report, choose_baseline, comparison, comparison_markdown
from ncae_exp.reports.compare_runs import ChildRun, group_by_params, load_children, split_overrides
from ncae_exp.reports.runs import ReportError

NCAE_REPORT = str(Path(sys.executable).parent / "ncae-report")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCHS = 3

# Explicit sweep `model.l2=0.01,0.1,1.0 seed=…`: A is best on validation, B on test.
A = {"val_rmse": [0.900, 0.905, 0.910], "test_rmse": [0.930, 0.934, 0.929]}  # seeds 0, 1, 2 (seed 3 FAILED)
B = {"val_rmse": [0.920, 0.915, 0.925, 0.940], "test_rmse": [0.920, 0.926, 0.921, 0.950]}  # seeds 0..3
C = {"val_rmse": [0.990], "test_rmse": [0.990]}  # seed 0 only: one pair, no test
LABELS = {"A": "model.l2=0.01", "B": "model.l2=0.1", "C": "model.l2=1.0"}


@pytest.fixture(scope="session")
def blank_db(tmp_path_factory):
    """An empty, migrated SQLite store, copied per test (creating one costs seconds)."""
    path = tmp_path_factory.mktemp("blank") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


class Store:
    def __init__(self, blank_db, folder, experiment="ncae-explicit"):
        shutil.copy(blank_db, folder / "mlflow.db")
        self.uri = f"sqlite:///{folder / 'mlflow.db'}"
        self.client = mlflow.MlflowClient(self.uri)
        self.exp = self.client.create_experiment(experiment, artifact_location=(folder / "artifacts").as_uri())
        self.clock = int(time.time() * 1000)

    def parent(self, overrides="", sweep=True):
        tags = {"ncae.sweep": "true", "ncae.sweep_overrides": overrides} if sweep else {}
        return self.client.create_run(self.exp, run_name="sweep 12-00-00", tags=tags, start_time=self.tick()).info.run_id

    def tick(self):
        self.clock += 10
        return self.clock

    def child(self, parent, name, seed, final, *, protocol="explicit", model="ncae", params=None, tags=None,
              curve=None, status="FINISHED"):
        """A child run as ncae-run logs it: final values at step epochs + 1, a val series 0..epochs."""
        t = {"protocol": protocol, "dataset": "synthetic", "model": model, **(tags or {})}
        if parent:
            t["mlflow.parentRunId"] = parent
        rid = self.client.create_run(self.exp, run_name=name, tags=t, start_time=self.tick()).info.run_id
        select, mode = ("val_rmse", "min") if protocol == "explicit" else ("val_hr_at_100", "max")
        p = {"seed": str(seed), "protocol.name": protocol, "protocol.select": select, "protocol.mode": mode,
             "model.name": model, "split.n_test": str(100 + int(seed)), **(params or {})}
        now = self.tick()
        metrics = [Metric(k, v, now + 1, EPOCHS + 1) for k, v in {**final, "epochs_run": float(EPOCHS)}.items()]
        metrics += [Metric("val_rmse", v, now, step) for step, v in enumerate(curve or [])]
        self.client.log_batch(rid, metrics=metrics, params=[Param(k, str(v)) for k, v in p.items()])
        self.client.set_terminated(rid, status=status)
        return rid


def explicit_sweep(store):
    parent = store.parent("dataset=synthetic model.l2=0.01,0.1,1.0 seed=0,1,2,3")
    ids = {}
    for key, values in (("A", A), ("B", B), ("C", C)):
        for seed in range(len(values["val_rmse"])):
            final = {m: v[seed] for m, v in values.items()}
            curve = [1.2 - 0.1 * step + final["val_rmse"] - 0.9 for step in range(EPOCHS + 1)]
            ids[key, seed] = store.child(parent, f"{LABELS[key]},seed={seed}", seed, final,
                                         params={"model.l2": LABELS[key].split("=")[1]}, curve=curve)
    ids["A", 3] = store.child(parent, f"{LABELS['A']},seed=3", 3, {}, status="FAILED")
    store.client.set_terminated(parent, status="FINISHED")
    return parent, ids


def cells(markdown, title="| group |"):
    """{group: {column: cell}} of the first table whose header starts with ``title``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        row = [c.strip() for c in line.strip("|").split("|")]
        rows[row[0]] = dict(zip(header[1:], row[1:]))
    return rows


def by_hand(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def test_explicit_table_pvalues_and_baseline_by_validation(tmp_path, blank_db):
    store = Store(blank_db, tmp_path)
    parent, ids = explicit_sweep(store)
    paths = build_comparison_report(store.client, parent, tmp_path / "out")
    assert [p.name for p in paths] == ["comparison.md", "comparison.csv", "comparison.json", "comparison_val_rmse.png"]
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    groups = {g["label"]: g for g in data["groups"]}
    assert list(groups) == [LABELS["A"], LABELS["B"], LABELS["C"]], "groups: swept overrides minus seed, sweep order"
    # B has the best mean test RMSE, A the best validation RMSE: the baseline is A
    assert by_hand(B["test_rmse"])[0] < by_hand(A["test_rmse"])[0] and by_hand(A["val_rmse"])[0] < by_hand(B["val_rmse"])[0]
    assert data["baseline"] == LABELS["A"] and data["select"] == "val_rmse" and data["mode"] == "min"
    for key, values in (("A", A), ("B", B), ("C", C)):
        for metric in ("test_rmse", "val_rmse"):
            st = groups[LABELS[key]]["metrics"][metric]
            mean, std = by_hand(values[metric])
            assert st["n"] == len(values[metric]) and st["mean"] == pytest.approx(mean) and st["std"] == pytest.approx(std)
    # B against A: paired by seed, only the seeds both have (0, 1, 2; A's seed 3 failed)
    test = groups[LABELS["B"]]["tests"]["test_rmse"]
    ref = stats.ttest_rel(B["test_rmse"][:3], A["test_rmse"])
    assert test["seeds"] == ["0", "1", "2"] and test["n"] == 3
    assert test["p"] == pytest.approx(ref.pvalue) and test["t"] == pytest.approx(ref.statistic)
    assert groups[LABELS["C"]]["tests"]["test_rmse"]["n"] == 1
    md = (tmp_path / "out" / "comparison.md").read_text()
    rows = cells(md)
    mean, std = by_hand(A["test_rmse"])
    assert rows[LABELS["A"]]["test_rmse"] == f"{mean:.4f} ± {std:.4f} (n=3)" == "0.9310 ± 0.0026 (n=3)"
    assert rows[LABELS["B"]]["val_rmse"] == "{:.4f} ± {:.4f} (n=4)".format(*by_hand(B["val_rmse"]))
    assert rows[LABELS["C"]]["test_rmse"] == "0.9900 (n=1)"
    assert rows[LABELS["A"]]["p test_rmse"] == "baseline"
    assert rows[LABELS["B"]]["p test_rmse"] == f"{ref.pvalue:.4f}"
    assert rows[LABELS["C"]]["p test_rmse"] == "–", "one pair: no test"
    assert f"`{LABELS['A']},seed=3` FAILED (run {ids['A', 3]})" in md, "failed children are listed"
    assert "![comparison_val_rmse](comparison_val_rmse.png)" in md
    csv_text = (tmp_path / "out" / "comparison.csv").read_text().splitlines()
    assert csv_text[0].startswith("group,baseline,runs,seeds,test_rmse_mean,test_rmse_std,test_rmse_n")
    assert csv_text[2].startswith(f"{LABELS['B']},False,4,0 1 2 3,")
    assert (tmp_path / "out" / "comparison_val_rmse.png").read_bytes()[:8] == PNG_MAGIC
    # logged on the parent under report/
    logged = {a.path for a in store.client.list_artifacts(parent, "report")}
    assert logged == {f"report/{p.name}" for p in paths}


def test_baseline_given_and_no_log(tmp_path, blank_db):
    store = Store(blank_db, tmp_path)
    parent, _ = explicit_sweep(store)
    children = load_children(store.client, parent)
    assert comparison(children, baseline="model.l2=0.1")["baseline"] == "model.l2=0.1"
    assert comparison(children, baseline="0.1")["baseline"] == "model.l2=0.1", "a value naming one group"
    with pytest.raises(ReportError, match="not one of the groups: model.l2=0.01, model.l2=0.1, model.l2=1.0"):
        comparison(children, baseline="ease")
    build_comparison_report(store.client, parent, tmp_path / "quiet", log=False)
    assert not store.client.list_artifacts(parent)
    groups = {"x": {"metrics": {"test_rmse": {"mean": 0.1, "n": 3}}}}
    assert choose_baseline(groups, "test_rmse", "min")[0] is None, "never chosen by a test metric"


def test_implicit_sweep_buckets_and_plot(tmp_path, blank_db):
    store = Store(blank_db, tmp_path, "ncae-implicit")
    parent = store.parent("protocol=implicit model=pop,ease seed=0,1")
    hr = {"pop": [0.30, 0.32], "ease": [0.50, 0.56]}
    val = {"pop": [0.31, 0.33], "ease": [0.52, 0.50]}
    for model in ("pop", "ease"):
        for seed in (0, 1):
            h = hr[model][seed]
            final = {"test_hr_at_50": h - 0.1, "test_hr_at_100": h, "test_ndcg_at_50": h / 4, "test_ndcg_at_100": h / 3,
                     "val_hr_at_100": val[model][seed], "val_ndcg_at_100": val[model][seed] / 3,
                     "test_hr_at_100_users_1_5": h / 2, "test_hr_at_100_users_5_inf": h + 0.01,
                     "test_ndcg_at_100_users_1_5": h / 5, "test_ndcg_at_100_users_5_inf": h / 2}
            # as the protocol logs them: user counts of every bucket, metrics of non-empty ones
            store.child(parent, f"model={model},seed={seed}", seed, final, protocol="implicit", model=model,
                        params={"buckets.n_users_0_1": 0, "buckets.n_users_1_5": 10 + seed, "buckets.n_users_5_inf": 90})
    paths = build_comparison_report(store.client, parent, tmp_path / "out", log=False)
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert data["protocol"] == "implicit" and data["baseline"] == "model=ease"
    assert data["headline"] == ["test_hr_at_100", "test_ndcg_at_100", "val_hr_at_100", "val_ndcg_at_100"]
    assert data["tested"] == ["test_hr_at_100", "test_ndcg_at_100"] and data["at_m"] == ["test_hr_at_50", "test_ndcg_at_50"]
    ref = stats.ttest_rel(hr["pop"], hr["ease"])
    assert data["groups"][0]["tests"]["test_hr_at_100"]["p"] == pytest.approx(ref.pvalue)
    assert cells(md)["model=pop"]["p test_hr_at_100"] == f"{ref.pvalue:.4f}"
    assert cells(md, "| group | test_hr_at_50 |")["model=ease"]["test_hr_at_100"] == "0.5300 ± 0.0424 (n=2)"
    buckets = cells(md, "| training interactions |")
    assert list(buckets) == ["[0, 1]", "(1, 5]", "(5, ∞)"], "the paper's closure: the first bucket closed, then (lo, hi]"
    assert buckets["[0, 1]"] == {"users": "0", **{f"{n}@100 model={m}": "–" for n in ("HR", "NDCG") for m in ("pop", "ease")}}
    assert buckets["(1, 5]"]["users"] == "10.5" and buckets["(5, ∞)"]["HR@100 model=pop"] == "0.3200 ± 0.0141 (n=2)"
    assert [p.name for p in paths][-1] == "comparison_at_m.png"
    assert (tmp_path / "out" / "comparison_at_m.png").read_bytes()[:8] == PNG_MAGIC


def test_retrain_children_are_grouped_by_model(tmp_path, blank_db):
    store = Store(blank_db, tmp_path)
    parent = store.parent(sweep=False)
    store.child(parent, "trial 0", 0, {"val_rmse": 0.8, "test_rmse": 0.8})  # a search trial: left out
    for model, base in (("ncae", 0.90), ("biasedmf", 0.92)):
        for seed in (0, 1, 2):
            store.child(parent, f"retrain {model} {seed}", seed, {"val_rmse": base + seed / 100, "test_rmse": base + seed / 90},
                        model=model, tags={"ncae.stage": "retrain", "seed": str(seed)})
    data = comparison(load_children(store.client, parent))
    assert [g["label"] for g in data["groups"]] == ["ncae", "biasedmf"] and data["baseline"] == "ncae"
    assert data["left_out"] == 1 and all(g["seeds"] == ["0", "1", "2"] for g in data["groups"])
    assert "ncae.stage=retrain" in comparison_markdown(data)


def test_names_and_params_grouping():
    assert split_overrides("model.hidden=[500,500],pretrain=sus,seed=1") == [
        ("model.hidden", "[500,500]"), ("pretrain", "sus"), ("seed", "1")]
    assert split_overrides("bouncy-cat-123") is None
    # no usable names: the params that differ, without seed and what follows from it
    runs = [ChildRun(run_id=f"r{m}{s}", name=f"run-{m}{s}", status="FINISHED", seed=str(s), metrics={},
                     params={"seed": str(s), "model.name": m, "model._target_": f"x.{m}", "split.n_test": str(100 + s),
                             "trainer.epochs": "3", "dataset.seed": "0"})
            for m in ("pop", "ease") for s in (0, 1, 2)]
    assert group_by_params(runs) == ["model.name"]
    assert [r.group for r in runs[:4]] == ["model.name=pop"] * 3 + ["model.name=ease"]
    one_model = [ChildRun(run_id=str(s), name="x", status="FINISHED", seed=str(s), metrics={}, tags={"model": "ncae"},
                          params={"seed": str(s), "split.n_test": str(100 + s)}) for s in range(3)]
    assert group_by_params(one_model) == [] and {r.group for r in one_model} == {"ncae"}


def run_report(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(env_extra or {})
    return subprocess.run([NCAE_REPORT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(proc):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ncae-report: error: "), proc.stderr
    return lines[0]


def test_cli(tmp_path, blank_db):
    proc = run_report("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--parent-run-id" in proc.stdout and "--baseline" in proc.stdout
    store = Store(blank_db, tmp_path)
    parent, ids = explicit_sweep(store)
    # the default store is ./mlflow.db, as for ncae-run
    proc = run_report("--parent-run-id", parent, "--out", "rep", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"| {LABELS['A']} | 0.9310 ± 0.0026 (n=3) |" in proc.stdout and "under report/" in proc.stdout
    assert (tmp_path / "rep" / "comparison.md").is_file()
    assert "report/comparison.md" in {a.path for a in store.client.list_artifacts(parent, "report")}
    assert "unknown run id 'deadbeef'" in one_error_line(run_report("--parent-run-id", "deadbeef", cwd=tmp_path))
    line = one_error_line(run_report("--parent-run-id", ids["A", 0], "--no-log", cwd=tmp_path))
    assert "is not a sweep parent" in line and "no child runs" in line
    line = one_error_line(run_report("--parent-run-id", parent, "--baseline", "nosuch", "--no-log", cwd=tmp_path))
    assert "--baseline 'nosuch' is not one of the groups" in line
    (tmp_path / "empty").mkdir()
    line = one_error_line(run_report("--parent-run-id", parent, cwd=tmp_path / "empty"))
    assert "no MLflow store at" in line and not (tmp_path / "empty" / "mlflow.db").exists()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(run_report("--parent-run-id", parent, cwd=tmp_path / "empty",
                                     env_extra={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}))
    assert "cannot reach MLflow tracking store" in line


# Two datasets × two models × 3 seeds (names as `+experiment=fig9`'s jobs): EASE is best by
# validation on lastfm, POP on delicious. Seed s of lastfm and seed s of delicious are different
# splits: pairing them (or choosing one baseline for both) would be meaningless.
TWO = {  # dataset: model: (val_hr_at_100, test_hr_at_100) per seed 0, 1, 2
    "lastfm": {"pop": ([0.30, 0.31, 0.29], [0.28, 0.33, 0.30]), "ease": ([0.50, 0.52, 0.49], [0.52, 0.50, 0.55])},
    "delicious": {"pop": ([0.40, 0.42, 0.41], [0.45, 0.41, 0.44]), "ease": ([0.20, 0.22, 0.21], [0.18, 0.25, 0.20])},
}


def two_dataset_sweep(store, extra=True):
    parent = store.parent("+experiment=fig9 model=pop,ease dataset=lastfm,delicious seed=0,1,2")
    for dataset, models in TWO.items():
        for model, (val, test) in models.items():
            for seed in range(3):
                h = test[seed]
                final = {"test_hr_at_100": h, "test_ndcg_at_100": h / 3, "test_hr_at_50": h - 0.1, "test_ndcg_at_50": h / 4,
                         "val_hr_at_100": val[seed], "val_ndcg_at_100": val[seed] / 3}
                store.child(parent, f"model={model},dataset={dataset},seed={seed}", seed, final, protocol="implicit",
                            model=model, tags={"dataset": dataset}, params={"dataset.name": dataset})
    if extra:  # a model run on lastfm only, one seed, poor on validation
        store.child(parent, "model=wmf,dataset=lastfm,seed=0", 0, {"test_hr_at_100": 0.1, "val_hr_at_100": 0.1},
                    protocol="implicit", model="wmf", tags={"dataset": "lastfm"}, params={"dataset.name": "lastfm"})
    store.client.set_terminated(parent, status="FINISHED")
    return parent


def section(markdown, dataset):
    """The markdown of one dataset's section."""
    text = markdown.split(f"### Dataset {dataset}\n", 1)[1]
    return text.split("\n### ", 1)[0]


def test_several_datasets_one_section_each_with_its_own_baseline(tmp_path, blank_db):
    store = Store(blank_db, tmp_path, "ncae-implicit")
    parent = two_dataset_sweep(store)
    paths = build_comparison_report(store.client, parent, tmp_path / "out", log=False)
    assert [p.name for p in paths] == ["comparison.md", "comparison.csv", "comparison.json",
                                       "comparison_at_m_lastfm.png", "comparison_at_m_delicious.png"]
    assert all((tmp_path / "out" / p.name).read_bytes()[:8] == PNG_MAGIC for p in paths[3:])
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert data["datasets"] == ["delicious", "lastfm"] and data["baseline"] is None
    # the baseline of each dataset: its best group by mean validation HR@100
    assert [(s["dataset"], s["baseline"], s["groups"]) for s in data["sections"]] == [
        ("lastfm", "model=ease", ["model=pop", "model=ease", "model=wmf"]),
        ("delicious", "model=pop", ["model=pop", "model=ease"])]
    groups = {(g["dataset"], g["label"]): g for g in data["groups"]}
    assert len(groups) == 5 and all(g["seeds"] == ["0", "1", "2"] for k, g in groups.items() if k[1] != "model=wmf")
    # p-values: paired by seed on the same dataset only
    same = {"lastfm": stats.ttest_rel(TWO["lastfm"]["pop"][1], TWO["lastfm"]["ease"][1]),
            "delicious": stats.ttest_rel(TWO["delicious"]["ease"][1], TWO["delicious"]["pop"][1])}
    test_l, test_d = groups["lastfm", "model=pop"]["tests"], groups["delicious", "model=ease"]["tests"]
    assert test_l["test_hr_at_100"]["p"] == pytest.approx(same["lastfm"].pvalue)
    assert test_l["test_hr_at_100"]["t"] == pytest.approx(same["lastfm"].statistic)
    assert test_d["test_hr_at_100"]["p"] == pytest.approx(same["delicious"].pvalue)
    assert test_d["test_hr_at_100"]["seeds"] == ["0", "1", "2"]
    assert not groups["lastfm", "model=ease"]["tests"] and not groups["delicious", "model=pop"]["tests"]
    # what one baseline across datasets (lastfm's EASE, the best overall) would have given differs
    across = stats.ttest_rel(TWO["delicious"]["ease"][1], TWO["lastfm"]["ease"][1])
    assert abs(across.pvalue - test_d["test_hr_at_100"]["p"]) > 1e-3
    md = (tmp_path / "out" / "comparison.md").read_text()
    assert md.index("### Dataset lastfm") < md.index("### Dataset delicious")
    lastfm, delicious = section(md, "lastfm"), section(md, "delicious")
    assert "Baseline of the p-values: **model=ease**" in lastfm and "Baseline of the p-values: **model=pop**" in delicious
    assert cells(lastfm)["model=pop"]["p test_hr_at_100"] == f"{same['lastfm'].pvalue:.4f}"
    assert cells(lastfm)["model=ease"]["p test_hr_at_100"] == "baseline"
    assert cells(lastfm)["model=wmf"]["p test_hr_at_100"] == "–", "one pair: no test"
    assert cells(delicious)["model=ease"]["p test_hr_at_100"] == f"{same['delicious'].pvalue:.4f}"
    assert cells(delicious)["model=pop"]["test_hr_at_100"] == "{:.4f} ± {:.4f} (n=3)".format(*by_hand(TWO["delicious"]["pop"][1]))
    assert list(cells(delicious, "| group | test_hr_at_50 |")) == ["model=pop", "model=ease"]
    assert "dataset=" not in lastfm + delicious, "labels inside a section drop the dataset"
    assert "![comparison_at_m_lastfm](comparison_at_m_lastfm.png)" in lastfm
    assert "![comparison_at_m_delicious](comparison_at_m_delicious.png)" in delicious
    csv_text = (tmp_path / "out" / "comparison.csv").read_text().splitlines()
    assert csv_text[0].startswith("dataset,group,baseline,runs,seeds,")
    assert [row.split(",")[:3] for row in csv_text[1:]] == [
        ["lastfm", "model=pop", "False"], ["lastfm", "model=ease", "True"], ["lastfm", "model=wmf", "False"],
        ["delicious", "model=pop", "True"], ["delicious", "model=ease", "False"]]


def test_several_datasets_baseline_given_and_retrain_repeats(tmp_path, blank_db):
    store = Store(blank_db, tmp_path, "ncae-implicit")
    children = load_children(store.client, two_dataset_sweep(store))
    data = comparison(children, baseline="pop")  # matched on each dataset
    assert [s["baseline"] for s in data["sections"]] == ["model=pop", "model=pop"]
    data = comparison(children, baseline="wmf")  # on lastfm only
    assert [s["baseline"] for s in data["sections"]] == ["model=wmf", None]
    assert "No baseline: --baseline 'wmf' is not one of the groups here." in section(comparison_markdown(data), "delicious")
    with pytest.raises(ReportError, match="not one of the groups on any dataset"):
        comparison(children, baseline="nosuch")
    # retrain repeats are grouped by model: one group per model and dataset, not one per model
    parent = store.parent(sweep=False)
    for dataset, models in TWO.items():
        for model, (val, test) in models.items():
            for seed in range(3):
                store.child(parent, f"retrain {model} {seed}", seed, {"val_hr_at_100": val[seed], "test_hr_at_100": test[seed]},
                            protocol="implicit", model=model, tags={"dataset": dataset, "ncae.stage": "retrain"})
    data = comparison(load_children(store.client, parent))
    assert [(g["dataset"], g["label"], len(g["run_ids"])) for g in data["groups"]] == [
        ("lastfm", "pop", 3), ("lastfm", "ease", 3), ("delicious", "pop", 3), ("delicious", "ease", 3)]
    assert [s["baseline"] for s in data["sections"]] == ["ease", "pop"]
    assert data["groups"][0]["tests"]["test_hr_at_100"]["p"] == pytest.approx(
        stats.ttest_rel(TWO["lastfm"]["pop"][1], TWO["lastfm"]["ease"][1]).pvalue)
