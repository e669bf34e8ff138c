"""Fixtures for the demo generator's own tests: one small build shared by a test session."""

from __future__ import annotations

import hashlib
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


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def truth_leaves(value, path: str = "") -> dict[str, str]:
    """Every leaf of a truth document: JSON path -> short hash of its value."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in truth_leaves(item, f"{path}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in truth_leaves(item, f"{path}/{i}").items()}
    return {path: _sha(json.dumps(value, sort_keys=True).encode())[:16]}


def demo_fingerprint(result) -> dict:
    """Hashes of a build: each table's canonical dump, each log file, the machine-opens file, each truth leaf."""
    conn = sqlite3.connect(f"file:{result.database}?mode=ro", uri=True)
    tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    fingerprint = {"tables": {t: _sha(repr(table_dump(conn, t)).encode()) for t in tables}}
    conn.close()
    fingerprint["logs"] = {name: _sha(open(path, "rb").read()) for name, path in sorted(result.logs.items())}
    fingerprint["machine_opens"] = _sha(result.machine_opens.read_bytes())
    fingerprint["truth"] = truth_leaves(json.loads(result.truth.read_text(encoding="utf-8")))
    return fingerprint
