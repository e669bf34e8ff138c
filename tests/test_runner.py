"""The runner: papermill in the kit's kernel, failing reports isolated, bundles published atomically."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import nbformat
import papermill
import pytest

import mailaudit

from mailaudit.report.runner import InputError, run_reports
from report_helpers import empty_bitrix_sqlite, write_params, write_report_notebook

OK_BODY = """
import sys
import time
ctx.record("data_and_tracking", {"kernel_python": sys.executable, "tables": len(ctx.model.tables)})
ctx.note("a note")
ctx.headline("Tracking is fine")
"""
FAILING_BODY = """
ctx.record("hygiene", {"contacts": 7})
raise RuntimeError("deliberate failure in the test notebook")
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A folder with an empty Bitrix SQLite, a parameter file and a notebooks/ folder."""
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "shop.yaml", db.relative_to(tmp_path),
                          "reports: [data_and_tracking, list_hygiene]\n")
    notebooks = tmp_path / "notebooks"
    write_report_notebook(notebooks, "data_and_tracking", OK_BODY)
    write_report_notebook(notebooks, "list_hygiene", FAILING_BODY)
    return tmp_path, params, notebooks


def run(workspace, **kwargs):
    root, params, notebooks = workspace
    return run_reports(params, root / "out", notebooks_dir=notebooks, progress=False, **kwargs)


def test_notebooks_run_in_the_kits_own_kernel(workspace):
    result = run(workspace, only="data_and_tracking")
    assert result.exit_code == 0, result.outcomes
    summary = json.loads((result.out_dir / "summary.json").read_text())
    # the notebook's metadata names a kernel that does not exist: the kit's kernel ran it
    assert summary["data_and_tracking"]["kernel_python"] == sys.executable
    assert summary["reports"]["data_and_tracking"] == {
        "status": "ok", "html": "data_and_tracking.html", "notes": ["a note"],
        "headline": "Tracking is fine", "findings": [], "tables": []}


def test_a_failing_notebook_leaves_the_others_built(workspace):
    result = run(workspace)
    assert result.exit_code == 1
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses == {"data_and_tracking": "ok", "list_hygiene": "failed"}
    failed = result.outcomes[1]
    assert failed.error.startswith("RuntimeError: deliberate failure in the test notebook")
    out = result.out_dir
    for name in ("index.html", "summary.json", "data_and_tracking.html", "data_and_tracking.ipynb",
                 "list_hygiene.html", "list_hygiene.ipynb"):
        assert (out / name).is_file(), name
    index = (out / "index.html").read_text()
    assert "status-failed" in index and "deliberate failure in the test notebook" in index
    assert "Tracking is fine" in index
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reports"]["list_hygiene"]["status"] == "failed"
    assert summary["reports"]["list_hygiene"]["notes"][0].startswith("failed: RuntimeError")
    # figures recorded before the failure are kept
    assert summary["hygiene"] == {"contacts": 7}
    # the failed report's page shows the error
    assert "deliberate failure in the test notebook" in (out / "list_hygiene.html").read_text()
    assert not (out / ".parts").exists()


def test_summary_has_the_contract_frame(workspace):
    summary = json.loads((run(workspace).out_dir / "summary.json").read_text())
    assert summary["schema_version"] == 1
    assert summary["period"] == {"start": "2026-01-01", "end": "2026-03-31"}
    source = summary["source"]
    assert source["dialect"] == "sqlite" and source["layout"] == "current" and source["charset"]
    assert source["row_counts"]["b_sender_contact"] == 0
    assert set(summary["reports"]) == {"data_and_tracking", "list_hygiene"}


def test_a_report_the_schema_cannot_support_is_skipped_not_failed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite", without=("b_sender_posting_read",))
    params = write_params(tmp_path / "p.yaml", db, "reports: [data_and_tracking, open_inflation]\n")
    notebooks = tmp_path / "notebooks"
    write_report_notebook(notebooks, "data_and_tracking", OK_BODY)
    write_report_notebook(notebooks, "open_inflation", "raise AssertionError('must not run')")
    result = run_reports(params, tmp_path / "out", notebooks_dir=notebooks, progress=False)
    assert result.exit_code == 0
    skipped = result.outcomes[1]
    assert (skipped.status, skipped.html) == ("skipped", None)
    assert "b_sender_posting_read" in skipped.reason
    assert not (result.out_dir / "open_inflation.ipynb").exists()
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["reports"]["open_inflation"]["notes"] == [f"skipped: {skipped.reason}"]
    assert "Skipped: missing table(s) b_sender_posting_read" in (result.out_dir / "index.html").read_text()


def test_no_parameter_values_are_left_in_the_executed_notebook(workspace):
    result = run(workspace, only="data_and_tracking")
    nb = nbformat.read(result.out_dir / "data_and_tracking.ipynb", as_version=4)
    assert "parameters" not in nb.metadata["papermill"]
    assert "default_parameters" not in nb.metadata["papermill"]
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    lines = [line for line in injected[0].source.splitlines() if line and not line.startswith("#")]
    assert [line.split(" = ")[0] for line in lines] == ["params_path", "out_dir"]
    # it points at the published bundle, not the temporary folder
    assert f"out_dir = {str(result.out_dir)!r}" in injected[0].source


def test_an_interrupted_run_leaves_no_bundle(workspace, monkeypatch):
    root = workspace[0]
    real = papermill.execute_notebook
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(workspace)
    assert len(calls) == 2
    assert not (root / "out").exists()
    assert not list(root.glob(".out.*")), "the temporary folder is removed"


def test_an_interrupted_run_keeps_the_previous_bundle_whole(workspace, monkeypatch):
    root = workspace[0]
    first = run(workspace, only="data_and_tracking")
    before = sorted(p.name for p in first.out_dir.iterdir())

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", crash)
    with pytest.raises(KeyboardInterrupt):
        run(workspace)
    assert sorted(p.name for p in (root / "out").iterdir()) == before
    assert not list(root.glob(".out.*"))


def test_a_new_bundle_replaces_the_old_one(workspace):
    root = workspace[0]
    run(workspace)
    assert (root / "out" / "list_hygiene.html").exists()
    result = run(workspace, only="data_and_tracking")
    assert result.exit_code == 0
    assert not (root / "out" / "list_hygiene.html").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".out")] == []


def test_a_folder_that_is_not_a_bundle_is_not_replaced(workspace):
    root = workspace[0]
    (root / "out").mkdir()
    (root / "out" / "thesis.docx").write_text("precious")
    with pytest.raises(InputError, match="not a mailaudit bundle"):
        run(workspace)
    assert (root / "out" / "thesis.docx").read_text() == "precious"


def test_bad_input_stops_before_any_notebook(workspace, monkeypatch):
    root, params, _ = workspace
    started = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: started.append(a))
    params.write_text(params.read_text() + "hygiene: {soft_bounce_streak: -1}\n")
    with pytest.raises(InputError, match="soft_bounce_streak"):
        run(workspace)
    with pytest.raises(InputError, match="unknown report nope"):
        run(workspace, only="nope")
    assert started == []
    assert not (root / "out").exists()


def test_a_missing_notebook_is_a_failed_report(workspace):
    root, _, notebooks = workspace
    (notebooks / "list_hygiene.ipynb").unlink()
    result = run(workspace)
    assert result.exit_code == 1
    assert result.outcomes[1].error.startswith("notebook not found")
    assert result.outcomes[0].status == "ok"


def test_folders_left_by_a_killed_run_are_removed(workspace):
    root = workspace[0]
    dead = root / ".out.partial-999999999-abcd"        # no such process
    live = root / f".out.partial-{os.getpid()}-abcd"  # a run still going (this process)
    for folder in (dead, live):
        folder.mkdir()
        (folder / "index.html").write_text("half")
    run(workspace, only="data_and_tracking")
    assert not dead.exists() and live.exists()


def test_summary_says_how_the_bundle_was_made(workspace):
    summary = json.loads((run(workspace, only="data_and_tracking").out_dir / "summary.json").read_text())
    made = summary["run"]
    assert made["kit_version"] == mailaudit.__version__ and made["generated_at"]
    assert made["parameters"]["hygiene"]["soft_bounce_streak"] == 3
    assert made["parameters"]["database"]["sqlite"].endswith("shop.sqlite")


def test_the_kernelspec_points_at_this_python():
    from jupyter_client.kernelspec import KernelSpecManager

    from mailaudit.report.kernel import KERNEL_NAME, ensure_kernel

    assert ensure_kernel() == KERNEL_NAME
    assert KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable


def test_a_shadowing_kernelspec_from_elsewhere_is_not_used(tmp_path, monkeypatch):
    """A `mailaudit` kernelspec of another Python earlier on Jupyter's path must not run the reports."""
    import shutil as sh

    from jupyter_client.kernelspec import KernelSpecManager

    from mailaudit.report.kernel import KERNEL_NAME, ensure_kernel

    foreign = tmp_path / "kernels" / KERNEL_NAME
    foreign.mkdir(parents=True)
    (foreign / "kernel.json").write_text(json.dumps(
        {"argv": ["/opt/other/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "other", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    name = ensure_kernel()
    try:
        assert name != KERNEL_NAME and name.startswith(f"{KERNEL_NAME}-")
        assert KernelSpecManager().get_kernel_spec(name).argv[0] == sys.executable
    finally:
        sh.rmtree(KernelSpecManager().get_kernel_spec(name).resource_dir, ignore_errors=True)


def test_a_publish_killed_half_way_beside_user_files_is_finished_by_the_next_run(workspace, monkeypatch):
    """With the user's files in --out the bundle moves file by file; the marker lists both bundles'
    files meanwhile, so the next run still knows every file the kit wrote there."""
    from mailaudit.report import output_folder

    root = workspace[0]
    run(workspace)
    (root / "out" / "notes.txt").write_text("mine")
    real, moves = os.replace, []

    def dies_on_the_third_file(src, dst):
        moves.append(dst)
        if len(moves) == 3:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(output_folder.os, "replace", dies_on_the_third_file)
    with pytest.raises(KeyboardInterrupt):
        run(workspace, only="data_and_tracking")
    monkeypatch.setattr(output_folder.os, "replace", real)
    assert not (root / "out" / "index.html").exists()   # never looks complete
    marker = json.loads((root / "out" / output_folder.MARKER).read_text())
    assert marker["complete"] is False and "list_hygiene.html" in marker["files"]

    result = run(workspace, only="data_and_tracking")
    assert result.published and result.kept == ["notes.txt"]
    names = sorted(p.relative_to(root / "out").as_posix() for p in (root / "out").rglob("*") if p.is_file())
    assert names == sorted([output_folder.MARKER, "notes.txt", "index.html", "summary.json",
                            "data_and_tracking.html", "data_and_tracking.ipynb", "logs/data_and_tracking.log"])
    assert (root / "out" / "notes.txt").read_text() == "mine"
    assert not [p for p in root.iterdir() if p.name.startswith(".out")]


def _rendezvous(me: str, other: str, folder) -> str:
    """A notebook body that finishes only if the other report's kernel runs at the same time."""
    return f"""
import pathlib, time
folder = pathlib.Path({str(folder)!r})
(folder / "{me}").touch()
deadline = time.monotonic() + 60
while not (folder / "{other}").exists():
    if time.monotonic() > deadline:
        raise RuntimeError("{other} never ran beside {me}")
    time.sleep(0.1)
ctx.record("data_and_tracking" if "{me}" == "a" else "hygiene", {{"met": True}})
"""


def test_reports_run_side_by_side_with_the_engine_memory_shared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "shop.yaml", db.relative_to(tmp_path),
                          "reports: [data_and_tracking, list_hygiene]\n"
                          "snapshot: {memory_mb: 1000}\nrun: {parallel_reports: 2}\n")
    notebooks = tmp_path / "notebooks"
    (tmp_path / "meet").mkdir()
    write_report_notebook(notebooks, "data_and_tracking", _rendezvous("a", "b", tmp_path / "meet")
                          + "\nimport os\nctx.note('memory ' + os.environ['MAILAUDIT_ENGINE_MEMORY_MB'])")
    write_report_notebook(notebooks, "list_hygiene", _rendezvous("b", "a", tmp_path / "meet"))
    result = run_reports(params, tmp_path / "out", notebooks_dir=notebooks, progress=False)
    assert [o.status for o in result.outcomes] == ["ok", "ok"], result.outcomes
    summary = json.loads((result.out_dir / "summary.json").read_text())
    assert summary["reports"]["data_and_tracking"]["notes"] == ["memory 500"]
    assert [name for name in summary["reports"]] == ["data_and_tracking", "list_hygiene"]
    assert "MAILAUDIT_ENGINE_MEMORY_MB" not in os.environ
    assert os.getcwd() == str(tmp_path), "papermill's process-wide chdir is not used"


def test_an_interrupt_while_reports_run_side_by_side_kills_their_kernels(tmp_path, monkeypatch):
    import threading

    from mailaudit.report import kernel as kernel_module

    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "shop.yaml", db.relative_to(tmp_path),
                          "reports: [data_and_tracking, list_hygiene]\nrun: {parallel_reports: 2}\n")
    notebooks = tmp_path / "notebooks"
    for name in ("data_and_tracking", "list_hygiene"):
        write_report_notebook(notebooks, name, f"import pathlib, time\npathlib.Path({str(tmp_path)!r}, '{name}').touch()\n"
                                               "time.sleep(600)")
    killed = []
    real_kill = kernel_module.kill_kernels

    def watch(managers):
        killed.extend(m.provisioner.process for m in managers if m.provisioner)
        real_kill(managers)

    monkeypatch.setattr("mailaudit.report.runner.kill_kernels", watch)

    def interrupt_when_both_sleep():
        while not all((tmp_path / n).exists() for n in ("data_and_tracking", "list_hygiene")):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)   # as Ctrl-C reaches the runner (the kernels ignore it here)

    started = time.monotonic()
    threading.Thread(target=interrupt_when_both_sleep, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_reports(params, tmp_path / "out", notebooks_dir=notebooks, progress=False)
    assert time.monotonic() - started < 120, "the sleeping kernels were not left to finish"
    assert len(killed) == 2 and all(process.poll() is not None for process in killed)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
