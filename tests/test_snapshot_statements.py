"""Every statement the kit sends to a source while it makes a snapshot is a plain single-table read.

Recorded three ways: SQLAlchemy's cursor events (SQLite, reflection, the DB-API reader), the statements
handed to ConnectorX (PostgreSQL), and MariaDB's own general log, which sees everything any client
library sends -- so nothing can slip past by going around SQLAlchemy. The MariaDB portal has the older
Bitrix index set (no RECIPIENT_ID index on clicks or unsubscribes, no CONTACT_ID index on recipients),
in the current and the legacy layout.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, create_engine, event, text

from mailaudit.demo import build_demo
from mailaudit.report.params import load_params
from mailaudit.snapshot import readers
from mailaudit.snapshot.extract import extract_snapshot

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
VALUE = r"(?:'[^']*'|-?\d+)"
CONDITION = (rf"(?:{IDENT} BETWEEN \d+ AND \d+|{IDENT} IN \({VALUE}(?:, {VALUE})*\)|{IDENT} >= '[0-9: -]+'"
             rf"|{IDENT} > \d+)")
SHAPES = {
    "range or whole read": re.compile(
        rf"^SELECT {IDENT} AS {IDENT}(?:, {IDENT} AS {IDENT})* FROM {IDENT}(?: WHERE {CONDITION}(?: AND {CONDITION})*)?$"),
    "key bounds": re.compile(rf"^SELECT MIN\({IDENT}\) AS lo, MAX\({IDENT}\) AS hi FROM {IDENT}$"),
    "next key": re.compile(rf"^SELECT MIN\({IDENT}\) AS lo FROM {IDENT} WHERE {IDENT} > \d+$"),
}
CATALOG = re.compile(r"information_schema|pg_catalog|pg_class|pg_namespace|pg_attribute|pg_index|pg_constraint|"
                     r"sqlite_master|sqlite_schema|^PRAGMA|^SHOW |^DESCRIBE ", re.I)
SESSION = re.compile(r"^(SET |BEGIN|COMMIT|ROLLBACK|SELECT (VERSION|DATABASE\(\)|sqlite_version|@@|1\b|pg_catalog\.version|"
                     r"current_schema|CAST\('test)|select pg_catalog|show )", re.I)
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|TRUNCATE|LOCK|GRANT|CALL|LOAD)\b", re.I)
BITRIX_TABLE = re.compile(r"\bb_[a-z_]+\b", re.I)


def shape_of(statement: str) -> str:
    """What kind of statement this is; "forbidden" for anything the snapshot must never send."""
    sql = " ".join(statement.replace("`", "").replace('"', "").split())
    if WRITES.search(sql):
        return "forbidden"
    for name, pattern in SHAPES.items():
        if pattern.match(sql):
            return name
    if CATALOG.search(sql):
        return "catalog"
    if SESSION.search(sql) and not BITRIX_TABLE.search(sql):
        return "session"
    return "forbidden"


def test_the_shape_rules_refuse_what_hurt_real_portals():
    assert shape_of("SELECT `ID` AS `ID` FROM `b_sender_posting_read` WHERE `ID` BETWEEN 1 AND 9") == "range or whole read"
    assert shape_of('SELECT MIN("id") AS lo, MAX("id") AS hi FROM "b_sender_contact"') == "key bounds"
    for bad in (
        "SELECT r.ID FROM b_sender_posting_recipient r WHERE EXISTS (SELECT 1 FROM b_sender_posting_click c "
        "WHERE c.RECIPIENT_ID = r.ID)",
        "SELECT c.ID FROM b_sender_contact c JOIN b_sender_posting_recipient r ON lower(c.EMAIL) = lower(r.EMAIL)",
        "SELECT POSTING_ID, count(*) FROM b_sender_posting_read GROUP BY POSTING_ID",
        "CREATE TEMPORARY TABLE t AS SELECT ID FROM b_sender_posting_read",
        "SELECT ID AS ID FROM (SELECT ID FROM b_sender_contact) AS x",
        "SELECT ID AS ID FROM b_sender_contact UNION SELECT ID AS ID FROM b_sender_list",
        "SELECT count(*) FROM b_sender_posting_recipient",
        "UPDATE b_sender_contact SET CODE = 'x'",
    ):
        assert shape_of(bad) == "forbidden", bad


def _assert_plain(statements: list[str]) -> dict[str, int]:
    shapes: dict[str, int] = {}
    forbidden = [s for s in statements if shape_of(s) == "forbidden"]
    assert not forbidden, forbidden[:3]
    for statement in statements:
        shapes[shape_of(statement)] = shapes.get(shape_of(statement), 0) + 1
    return shapes


@pytest.fixture
def recorded_sqlalchemy():
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield statements
    event.remove(Engine, "before_cursor_execute", record)


def test_sqlite_snapshot_sends_only_plain_reads(demo, demo_params, recorded_sqlalchemy, tmp_path):
    extract_snapshot(load_params(demo_params()), tmp_path / "s.duckdb", progress=False)
    shapes = _assert_plain(recorded_sqlalchemy)
    assert shapes["range or whole read"] >= 26 and shapes["key bounds"] >= 20


OLDER_INDEX_SET = {
    # what a portal installed by an older sender version has (bitrix-schema: indexes differ by version)
    "b_sender_posting_click": ("RECIPIENT_ID",),
    "b_sender_posting_unsub": ("RECIPIENT_ID",),
    "b_sender_posting_recipient": ("CONTACT_ID",),
}


def _with_older_indexes(url) -> None:
    """Drop every secondary index a newer Bitrix version adds (a test database: the test owns it)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table, columns in OLDER_INDEX_SET.items():
            rows = conn.execute(text(
                "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME"),
                {"t": table}).all()
            for name, indexed in rows:
                if tuple(indexed.upper().split(",")) == columns:
                    conn.execute(text(f"DROP INDEX `{name}` ON `{table}`"))
    engine.dispose()


class GeneralLog:
    """Every statement MariaDB receives on connections to one database after `start()`, from its general log."""

    def __init__(self, url):
        self.database = url.database
        self.admin = create_engine(url.set(database="mysql"), isolation_level="AUTOCOMMIT")
        self.since = None

    def start(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text("SET GLOBAL log_output = 'TABLE'"))
            conn.execute(text("SET GLOBAL general_log = 1"))
            self.since = conn.execute(text("SELECT NOW(6)")).scalar()

    def statements(self) -> list[str]:
        with self.admin.connect() as conn:
            threads = [row[0] for row in conn.execute(text(
                "SELECT DISTINCT thread_id FROM mysql.general_log WHERE event_time >= :since "
                "AND command_type = 'Connect' AND argument LIKE :db"),
                {"since": self.since, "db": f"% on {self.database} %"})]
            rows = conn.execute(text(
                "SELECT thread_id, argument FROM mysql.general_log WHERE event_time >= :since "
                "AND command_type IN ('Query', 'Prepare', 'Execute')"), {"since": self.since}).all()
        return [arg.decode() if isinstance(arg, bytes) else arg for thread, arg in rows if thread in threads]

    def stop(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text("SET GLOBAL general_log = 0"))
        self.admin.dispose()


@pytest.fixture
def general_log(mariadb_url):
    log = GeneralLog(mariadb_url)
    yield log
    log.stop()


@pytest.mark.mariadb
@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_mariadb_portal_with_the_older_index_set(layout, mariadb_url, general_log, demo_params, tmp_path, monkeypatch):
    build_demo(url=mariadb_url.render_as_string(hide_password=False), contacts=1500, seed=3, layout=layout,
               truth_path=tmp_path / "truth.json")
    _with_older_indexes(mariadb_url)
    monkeypatch.setenv("PORTAL_URL", mariadb_url.render_as_string(hide_password=False))
    params = load_params(demo_params(database={"url_env": "PORTAL_URL"}, with_logs=False, name="portal.yaml"))
    general_log.start()
    manifest = extract_snapshot(params, tmp_path / "portal.duckdb", progress=False)
    seen = general_log.statements()
    shapes = _assert_plain(seen)
    assert manifest["source"]["layout"] == layout
    assert manifest["tables"]["b_sender_posting_recipient"]["rows"] > 10_000
    assert manifest["tables"]["b_sender_posting_click"]["reader"] == "connectorx"
    assert shapes["range or whole read"] >= 26
    # the session is read-only and time-limited before any data is read
    assert any(s.startswith("SET SESSION TRANSACTION READ ONLY") for s in seen)
    assert any("max_statement_time" in s for s in seen)


@pytest.mark.postgres
def test_postgresql_snapshot_sends_only_plain_reads(postgres_url, demo_params, recorded_sqlalchemy, tmp_path,
                                                   monkeypatch):
    build_demo(url=postgres_url.render_as_string(hide_password=False), contacts=1500, seed=3,
               truth_path=tmp_path / "truth.json")
    handed: list[str] = []
    original = readers.ConnectorXReader.read

    def record(self, statements):
        handed.extend(statements)
        return original(self, statements)

    monkeypatch.setattr(readers.ConnectorXReader, "read", record)
    monkeypatch.setenv("PORTAL_URL", postgres_url.render_as_string(hide_password=False))
    params = load_params(demo_params(database={"url_env": "PORTAL_URL"}, with_logs=False, name="portal.yaml"))
    recorded_sqlalchemy.clear()   # the demo's own CREATE and INSERT statements
    extract_snapshot(params, tmp_path / "portal.duckdb", progress=False)
    _assert_plain(recorded_sqlalchemy + handed)
    assert len(handed) >= 40
