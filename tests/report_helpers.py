"""Helpers for the report-runner tests: a Bitrix-shaped SQLite file and tiny report notebooks."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import nbformat
from sqlalchemy import create_engine

from mailaudit.bitrix.tables import bitrix_metadata

PERIOD = "{start: 2026-01-01, end: 2026-03-31}"


def empty_bitrix_sqlite(path: Path, without: tuple[str, ...] = ()) -> Path:
    """An SQLite file with the Bitrix tables (no rows), minus the tables in `without`."""
    metadata = bitrix_metadata("current")
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine, tables=[t for name, t in metadata.tables.items() if name not in without])
    engine.dispose()
    return path


def add_posting(db: Path, started: str = "2026-02-02 10:00:00") -> Path:
    """One posting started in PERIOD (no recipient rows): `check` sees a period that may hold sends."""
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO b_sender_posting (ID, DATE_CREATE, DATE_SEND) VALUES (1, ?, ?)", (started, started))
    return db


def write_params(path: Path, db: Path, extra: str = "") -> Path:
    path.write_text(f"client: Test shop\nperiod: {PERIOD}\ndatabase: {{sqlite: {db}}}\n{extra}", encoding="utf-8")
    return path


def write_report_notebook(folder: Path, report: str, body: str, markdown: str = "") -> Path:
    """A notebook shaped like the kit's: parameters cell, ReportContext.open, then `body`."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(
        'params_path = "../params/demo.yaml"\nout_dir = "../reports/interactive"\nsnapshot_path = None')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(markdown or f"# {report}\n\n## First section\n\nSome text."),
        parameters,
        nbformat.v4.new_code_cell(
            "from mailaudit.report.context import ReportContext\n"
            f'ctx = ReportContext.open("{report}", params_path, out_dir, snapshot_path)'),
        nbformat.v4.new_code_cell(body),
        nbformat.v4.new_markdown_cell("## Second section\n\n### A subsection"),
    ]
    # a kernel name that exists nowhere: the runner must use the kit's own kernel regardless
    nb.metadata["kernelspec"] = {"name": "someone-elses-kernel", "display_name": "other", "language": "python"}
    path = folder / f"{report}.ipynb"
    nbformat.write(nb, path)
    return path
