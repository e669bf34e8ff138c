"""Every notebook runs as an analyst opens it in JupyterLab: its default parameters, no snapshot named, the
demo's snapshot made on first use and re-used by the next notebooks."""
from __future__ import annotations

import shutil
from pathlib import Path

import papermill
import pytest

from mailaudit.demo import build_demo
from mailaudit.report.kernel import ensure_kernel

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ("data_and_tracking", "list_hygiene", "open_inflation", "segments", "conversion")


@pytest.mark.slow
def test_notebooks_run_on_their_defaults(tmp_path, monkeypatch):
    kit = tmp_path / "kit"
    shutil.copytree(ROOT / "notebooks", kit / "notebooks")
    shutil.copytree(ROOT / "params", kit / "params")
    build_demo(sqlite_path=kit / "data" / "demo.sqlite", contacts=2000, seed=5, logs_dir=kit / "data" / "demo-logs")
    monkeypatch.delenv("MAILAUDIT_WORKDIR", raising=False)
    monkeypatch.delenv("MAILAUDIT_DB_URL", raising=False)
    kernel = ensure_kernel()
    snapshot = kit / "data" / "demo.snapshot.duckdb"
    made = None
    for report in REPORTS:
        papermill.execute_notebook(str(kit / "notebooks" / f"{report}.ipynb"), str(tmp_path / f"{report}.out.ipynb"),
                                   kernel_name=kernel, cwd=str(kit / "notebooks"), progress_bar=False)
        assert snapshot.is_file()
        made = made or snapshot.stat().st_mtime_ns
        assert snapshot.stat().st_mtime_ns == made, f"{report} made the snapshot again instead of re-using it"
    assert (kit / "reports" / "interactive" / ".parts" / "conversion.json").is_file()
