"""The data layer: URL hygiene, read-only connections and reflection on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from mailaudit.bitrix.schema import MissingTableError, reflect_schema
from mailaudit.sources.db import (
    DatabaseConfigError,
    create_readonly_engine,
    describe_source,
    resolve_database_url,
    safe_url_text,
    scrub,
)

CORE_DDL = [
    "CREATE TABLE b_sender_mailing (ID INT PRIMARY KEY, NAME VARCHAR(100))",
    "CREATE TABLE b_sender_mailing_chain (ID INT PRIMARY KEY, MAILING_ID INT)",
    "CREATE TABLE b_sender_posting (ID INT PRIMARY KEY, MAILING_ID INT)",
    "CREATE TABLE b_sender_posting_recipient (ID INT PRIMARY KEY, POSTING_ID INT, CONTACT_ID INT, STATUS CHAR(1))",
    "CREATE TABLE b_sender_contact (ID INT PRIMARY KEY, TYPE_ID INT, CODE VARCHAR(255), NAME VARCHAR(100))",
]
LEGACY_CONTACT_DDL = "CREATE TABLE b_sender_contact (ID INT PRIMARY KEY, EMAIL VARCHAR(255), NAME VARCHAR(100))"
ROWS = [
    "INSERT INTO b_sender_contact (ID, TYPE_ID, CODE, NAME) VALUES (1, 1, 'ivan@mail.ru', 'Иван Петров')",
    "INSERT INTO b_sender_posting_recipient (ID, POSTING_ID, CONTACT_ID, STATUS) VALUES (1, 1, 1, 'N'), (2, 1, 1, 'E'), (3, 1, 1, 'N')",
]


def _load(url, statements):
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


@pytest.fixture
def sqlite_source(tmp_path):
    path = tmp_path / "bitrix.sqlite"
    connection = sqlite3.connect(path)
    for statement in CORE_DDL + ROWS:
        connection.execute(statement)
    connection.commit()
    connection.close()
    return resolve_database_url({"sqlite": str(path)})


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def source_url(request, tmp_path):
    """The same small Bitrix database on each engine (PostgreSQL with lower-case identifiers)."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_source")
    server = request.getfixturevalue("mariadb_url" if request.param == "mariadb" else "postgres_url")
    # Unquoted identifiers: upper-case on MariaDB as Bitrix writes them, folded to lower-case on PostgreSQL.
    _load(server, CORE_DDL + ROWS)
    return server


def test_every_engine_refuses_writes_through_the_kit(source_url):
    engine = create_readonly_engine(source_url)
    with engine.connect() as conn:
        with pytest.raises(DBAPIError):
            conn.execute(text("UPDATE b_sender_posting_recipient SET STATUS = 'Y'"))
    with engine.connect() as conn:
        with pytest.raises(DBAPIError):
            conn.execute(text("CREATE TABLE mailaudit_probe (a INT)"))
    engine.dispose()


def test_reflection_finds_tables_and_layout_on_every_engine(source_url):
    engine = create_readonly_engine(source_url)
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        contact_name = conn.execute(text("SELECT NAME FROM b_sender_contact")).scalar_one()
    engine.dispose()
    assert contact_name == "Иван Петров"
    assert schema.layout == "current"
    assert schema.has("b_sender_posting_recipient") and not schema.has("b_sender_posting_read")
    assert schema.capabilities["list_hygiene"].ok
    assert not schema.capabilities["open_inflation"].ok
    assert "b_sender_posting_read" in schema.capabilities["open_inflation"].reason


@pytest.mark.mariadb
def test_cp1251_database_reads_cyrillic(mariadb_cp1251_url):
    engine = create_engine(mariadb_cp1251_url.update_query_dict({"charset": "cp1251"}))
    with engine.begin() as conn:
        for statement in CORE_DDL + ROWS:
            conn.execute(text(statement))
    engine.dispose()
    readonly = create_readonly_engine(resolve_database_url(
        {"url_env": "X"}, {"X": mariadb_cp1251_url.render_as_string(hide_password=False)}))
    with readonly.connect() as conn:
        schema = reflect_schema(conn)
        name = conn.execute(text("SELECT NAME FROM b_sender_contact")).scalar_one()
    readonly.dispose()
    assert schema.charset == "cp1251"
    assert name == "Иван Петров"


def test_legacy_layout_is_detected(tmp_path):
    path = tmp_path / "legacy.sqlite"
    connection = sqlite3.connect(path)
    for statement in CORE_DDL[:-1] + [LEGACY_CONTACT_DDL]:
        connection.execute(statement)
    connection.close()
    with create_readonly_engine(resolve_database_url({"sqlite": str(path)})).connect() as conn:
        assert reflect_schema(conn).layout == "legacy"


def test_a_database_without_sender_tables_is_refused_with_the_missing_names(tmp_path):
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE b_user (ID INT)").connection.close()
    with create_readonly_engine(resolve_database_url({"sqlite": str(path)})).connect() as conn:
        with pytest.raises(MissingTableError, match="b_sender_posting_recipient"):
            reflect_schema(conn)


def test_url_comes_from_the_named_environment_variable_with_driver_and_charset():
    url = resolve_database_url({"url_env": "BITRIX"}, {"BITRIX": "mysql://reader:s3cret@db.example/bitrix"})
    assert url.drivername == "mysql+pymysql"
    assert url.query["charset"] == "utf8mb4"
    assert "s3cret" not in safe_url_text(url)
    assert describe_source(url) == {"dialect": "mysql", "driver": "pymysql", "database": "bitrix"}
    pg = resolve_database_url({"url_env": "PG"}, {"PG": "postgres://u:p@h/b"})
    assert pg.drivername == "postgresql+psycopg"


def test_default_source_is_mailaudit_db_url_then_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: no data/demo.sqlite
    url = resolve_database_url(None, {"MAILAUDIT_DB_URL": "postgresql://u:p@h/bitrix"})
    assert url.database == "bitrix"
    with pytest.raises(DatabaseConfigError, match="demo-db"):
        resolve_database_url(None, {})


@pytest.mark.parametrize("environ, message", [
    ({}, "BITRIX is not set"),
    ({"BITRIX": "not a url at all"}, "does not hold a SQLAlchemy URL"),
    ({"BITRIX": "oracle://u:secret@h/db"}, "not supported"),
])
def test_bad_urls_give_one_line_errors_without_secrets(environ, message):
    with pytest.raises(DatabaseConfigError, match=message) as error:
        resolve_database_url({"url_env": "BITRIX"}, environ)
    assert "secret" not in str(error.value)
    assert "\n" not in str(error.value)


def test_scrub_removes_password_in_plain_and_encoded_form():
    url = resolve_database_url({"url_env": "X"}, {"X": "mysql://u:p%40ss@h/db"})
    message = f"could not connect to {url.render_as_string(hide_password=False)} with p@ss or p%40ss"
    cleaned = scrub(message, url)
    assert "p@ss" not in cleaned and "p%40ss" not in cleaned


def test_a_send_at_the_periods_first_second_is_in_the_period(tmp_path):
    """Bitrix stores '2026-01-01 00:00:00' as text in SQLite; the snapshot keeps it to the second."""
    from datetime import datetime

    from mailaudit.report.params import load_params
    from mailaudit.snapshot.extract import extract_snapshot
    from mailaudit.snapshot.store import open_snapshot
    from report_helpers import empty_bitrix_sqlite, write_params

    db = empty_bitrix_sqlite(tmp_path / "seconds.sqlite")
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO b_sender_mailing_chain (ID, MAILING_ID, MESSAGE_CODE) VALUES (1, 1, 'mail')")
        connection.execute("INSERT INTO b_sender_posting (ID, MAILING_ID, MAILING_CHAIN_ID) VALUES (1, 1, 1)")
        connection.execute("INSERT INTO b_sender_posting_recipient (ID, POSTING_ID, CONTACT_ID, STATUS, DATE_SENT) "
                           "VALUES (1, 1, 1, 'N', '2026-01-01 00:00:00'), (2, 1, 2, 'N', '2025-12-31 23:59:59')")
    params = load_params(write_params(tmp_path / "p.yaml", db))
    extract_snapshot(params, tmp_path / "s.duckdb", progress=False)
    model = open_snapshot(tmp_path / "s.duckdb")
    in_period = model.sql("SELECT recipient_id, sent_at FROM sends WHERE sent_at >= $start AND sent_at < $end",
                          {"start": params.period.start_dt, "end": params.period.end_exclusive})
    model.close()
    assert in_period["recipient_id"].tolist() == [1]
    assert in_period["sent_at"].iloc[0] == datetime(2026, 1, 1)

