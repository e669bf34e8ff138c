"""Fixtures for the demo generator's own tests: one small build shared by a test session."""

from __future__ import annotations

import json
import sqlite3

import pytest

from mailaudit.demo import build_demo

SMALL = 3000


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A 3000-contact demo (seed 1) with every delivery-log format and the BitrixVM access log."""
    root = tmp_path_factory.mktemp("demo")
    result = build_demo(sqlite_path=root / "demo.sqlite", contacts=SMALL, seed=1, logs_dir=root / "logs",
                        delivery_formats=("postfix", "exim", "msmtp", "csv"))
    truth = json.loads(result.truth.read_text(encoding="utf-8"))
    return result, truth


@pytest.fixture
def small_db(small_demo):
    result, _truth = small_demo
    conn = sqlite3.connect(f"file:{result.database}?mode=ro", uri=True)
    yield conn
    conn.close()


def table_dump(conn, table: str) -> list[tuple]:
    """Every row of a table in a canonical order (all columns)."""
    cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
    order = ", ".join(f'"{c}"' for c in cols)
    return conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}').fetchall()
