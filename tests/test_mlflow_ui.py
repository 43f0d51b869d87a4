"""The MLflow UI shows a sweep the way the README says: a parent run, its children nested
under it, and each child's metrics (issue 9); and each run's logged model (issue 12): the
run's Artifacts tab lists ``model/`` with its ``MLmodel`` file and names the registered
version made from it, and the Models page (registered models) lists its name.

A tiny real sweep (``ncae-run -m``, two jobs) is logged to a scratch SQLite store, ``mlflow
server`` serves that store on 127.0.0.1, and headless Chromium (Debian's ``chromium``, driven
by Playwright through ``executable_path``: no browser download) opens the experiment's runs
page. Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it):
elsewhere the test is skipped without it, in CI (``CI`` set) it fails. Screenshots of each
page are saved in the test's ``tmp_path`` (kept by pytest for the last runs), and the
page at the moment of a failure as ``failure.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import mlflow
import pytest

from conftest import NCAE_RUN, child_env, synthetic

CHROMIUM = os.environ.get("NCAE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# the flags this closed network needs (without the background-networking ones Chromium's own
# connections are refused); a fresh --user-data-dir is given by launch_persistent_context
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPERIMENT = "ui-test-sweep"
REGISTERED = "ui-test-model"  # both children register a version of it
SWEEP = [
    "protocol=explicit",
    *synthetic(60, 40, 600),
    "model.hidden=[8]",
    "trainer.epochs=1",
    "model.l2=0.01,0.02",
    f"mlflow.experiment_name={EXPERIMENT}",
    "model.register=true",
    f"model.register_name={REGISTERED}",
]
TIMEOUT_MS = 30_000  # the runs grid can take several seconds on a loaded 2-core machine


def _missing(reason: str):
    """A missing browser fails in CI (it is installed there by .ci/run) and skips elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser_ok():
    if not Path(CHROMIUM).is_file():
        _missing(f"{CHROMIUM} is missing: `apt-get install chromium` (Debian's package; .ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright is not installed: `.venv/bin/pip install -e '.[dev]'`")
    return CHROMIUM


@pytest.mark.slow
def test_ui_shows_the_sweep_parent_its_children_and_a_childs_metric(tmp_path, browser_ok, start_mlflow_server):
    from playwright.sync_api import expect, sync_playwright

    # a real two-job sweep into a scratch store
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(
        [NCAE_RUN, "-m", *SWEEP, f"hydra.sweep.dir={tmp_path / 'ui-sweep'}"],
        cwd=tmp_path, env=child_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(store)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("ncae.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["model.l2=0.01", "model.l2=0.02"]
    child = children[0]
    value = child.data.metrics["test_rmse"]
    # model.register=true: the child's model/ is version <n> of REGISTERED
    name, version = child.data.tags["ncae.registered_model"].split("/")
    assert name == REGISTERED

    base = start_mlflow_server(store).uri  # serves the sweep's store
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a new, empty profile
            executable_path=browser_ok, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # expect() has its own timeout (5 s), too short here
        page = context.new_page()
        try:
            # the runs page: the parent row, collapsed, with an expander in its name cell
            page.goto(f"{base}/#/experiments/{exp.experiment_id}/runs")
            parent_row = page.get_by_role("row").filter(has=page.get_by_text(parent.info.run_name, exact=True))
            expect(parent_row).to_have_count(1)
            expect(parent_row.get_by_text(parent.info.run_name, exact=True)).to_be_visible()
            parent_row.locator("button[data-component-id*=runnamecellrenderer]").click()
            for run in children:
                expect(page.get_by_text(run.info.run_name, exact=True)).to_be_visible()
            page.screenshot(path=str(shots / "runs-page.png"))

            # a child's own page: its parent named, and its final test RMSE in the metrics table
            page.get_by_text(child.info.run_name, exact=True).click()
            page.wait_for_url(re.compile(f"/runs/{child.info.run_id}"))
            expect(page.get_by_text(child.info.run_name, exact=True).first).to_be_visible()
            expect(page.locator(f"a[href*='/runs/{parent.info.run_id}']", has_text=parent.info.run_name)).to_be_visible()
            page.get_by_placeholder("Search metrics").fill("test_rmse")
            metric_row = page.get_by_role("row").filter(has=page.get_by_text("test_rmse", exact=True))
            expect(metric_row).to_have_count(1)
            metric_row.scroll_into_view_if_needed()
            cells = metric_row.get_by_role("cell")
            expect(cells).to_have_count(2)
            shown = cells.nth(1).inner_text().strip()
            page.screenshot(path=str(shots / "child-run.png"))
            # the UI prints the stored double in full (JavaScript's shortest round-trip form)
            assert float(shown) == pytest.approx(value, rel=1e-9), (shown, value)

            # the child's logged model: its Artifacts tab lists model/ (an MLflow model: its
            # MLmodel file, the pyfunc flavour inside) and names the version registered from it
            page.get_by_role("tab", name="Artifacts").click()
            page.get_by_text("model", exact=True).first.click()  # the folder in the tree
            expect(page.get_by_text("MLmodel", exact=True)).to_be_visible()
            expect(page.get_by_text(f"{REGISTERED}, v{version}")).to_be_visible()
            page.get_by_text("MLmodel", exact=True).click()
            expect(page.get_by_text("python_function").first).to_be_visible()
            page.screenshot(path=str(shots / "child-model.png"))

            # the registered models page lists the name the runs registered
            page.goto(f"{base}/#/models")
            expect(page.get_by_role("link", name=REGISTERED, exact=True)).to_be_visible()
            page.screenshot(path=str(shots / "registered-models.png"))
        except BaseException:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            print(f"screenshots (failure.png at the failure) in {shots}")
            raise
        finally:
            context.close()
    assert (shots / "runs-page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
