"""Fixtures for the demo generator's own tests: one small build shared by a test session."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
from datetime import datetime
from urllib.parse import unquote, urlsplit

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


BITRIXVM = re.compile(r'^(\S+) - \S+ \[([^\]]+?) - [^\]]*\] (\d{3}) "([^"]*)" (\d+) "([^"]*)" "([^"]*)" "([^"]*)"$')


def decode_tag(tag: str):
    """RECIPIENT_ID of a sender tracking tag, None for any other or broken tag."""
    module, _, payload = unquote(tag).partition(".")
    if module != "sender":
        return None
    try:
        return int(json.loads(base64.b64decode(payload, validate=True))["RECIPIENT_ID"])
    except (ValueError, KeyError):
        return None


def access_hits(path):
    """Pixel and click lines of a BitrixVM access log: ([(kind, recipient, 'Y-m-d H:M:S', UA, query, ip)], malformed)."""
    hits, malformed = [], 0
    for line in open(path, encoding="utf-8"):
        m = BITRIXVM.match(line.rstrip("\n"))
        if not m:
            malformed += 1
            continue
        request = m.group(4).split(" ")
        if len(request) != 3:
            continue
        url = urlsplit(request[1])
        kind = ("read" if url.path.endswith(("track_mail_read.php", "/pub/mail/read.php")) else
                "click" if url.path.endswith("track_mail_click.php") else None)
        if kind is None:
            continue
        raw_tag = re.search(r"tag=([^&]*)", url.query).group(1)
        when = datetime.strptime(m.group(2).split(" ")[0], "%d/%b/%Y:%H:%M:%S")
        hits.append((kind, decode_tag(raw_tag), when.strftime("%Y-%m-%d %H:%M:%S"), m.group(7), url.query, m.group(1)))
    return hits, malformed


def column_type_violations(conn) -> list[str]:
    """Values strict MySQL would refuse: non-integers in INTEGER columns, text longer than its VARCHAR."""
    from sqlalchemy import Integer, String

    from mailaudit.bitrix.tables import bitrix_metadata

    bad = []
    for table in bitrix_metadata().tables.values():
        for column in table.columns:
            name = f'"{column.name}"'
            if isinstance(column.type, Integer):
                n = conn.execute(f'SELECT COUNT(*) FROM "{table.name}" WHERE {name} IS NOT NULL '
                                 f"AND typeof({name}) != 'integer'").fetchone()[0]
                if n:
                    bad.append(f"{table.name}.{column.name}: {n} non-integer values")
            elif isinstance(column.type, String) and column.type.length:
                longest = conn.execute(f'SELECT MAX(length({name})) FROM "{table.name}"').fetchone()[0] or 0
                if longest > column.type.length:
                    bad.append(f"{table.name}.{column.name}: {longest} characters")
    return bad
