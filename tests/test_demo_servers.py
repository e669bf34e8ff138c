"""The demo loads into MariaDB and PostgreSQL (``--url-env``) with Bitrix's column names and the SQLite build's contents."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from mailaudit.bitrix.tables import bitrix_metadata, table_columns
from mailaudit.demo import build_demo, vocab
from mailaudit.demo.cli import add_demo_db_arguments, run_demo_db
from mailaudit.demo.writer import ensure_database

CONTACTS = 1200
SEED = 5
COMPARED = ("b_sender_mailing", "b_sender_mailing_chain", "b_sender_posting", "b_sender_posting_recipient",
            "b_sender_posting_read", "b_sender_posting_click", "b_sender_posting_unsub", "b_sender_contact",
            "b_sender_list", "b_sender_contact_list", "b_sender_mailing_subscription", "b_sender_abuse",
            "b_main_mail_blacklist", "b_crm_contact", "b_crm_field_multi", "b_crm_deal", "b_crm_utm",
            "b_crm_exclusion", "b_sale_order", "b_crm_order_contact_company", "b_user")


def _canon(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, float)):
        return round(float(value), 4)
    if isinstance(value, str):   # PostgreSQL pads CHAR(n) values (STATUS_ID CHAR(2) 'F' -> 'F ')
        return value.rstrip(" ")
    return value


def _contents(url, layout="current") -> dict:
    metadata = bitrix_metadata(layout)
    engine = create_engine(url, hide_parameters=True)
    out = {}
    with engine.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        for table in COMPARED:
            cols = table_columns(metadata, table)
            names = ", ".join(c.lower() if pg else f'"{c}"' if conn.dialect.name == "sqlite" else f"`{c}`"
                              for c in cols)
            rows = conn.execute(text(f"SELECT {names} FROM {table}")).fetchall()
            out[table] = sorted((tuple(_canon(v) for v in row) for row in rows), key=repr)
    engine.dispose()
    return out


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    result = build_demo(sqlite_path=root / "ref.sqlite", contacts=CONTACTS, seed=SEED)
    return f"sqlite:///{result.database}", json.loads(result.truth.read_text(encoding="utf-8"))


def _build_via_cli(url, tmp_path, monkeypatch, *extra) -> int:
    import argparse

    monkeypatch.setenv("MAILAUDIT_TEST_DEMO_URL", url.render_as_string(hide_password=False))
    parser = argparse.ArgumentParser()
    add_demo_db_arguments(parser)
    args = parser.parse_args(["--url-env", "MAILAUDIT_TEST_DEMO_URL", "--contacts", str(CONTACTS), "--seed",
                              str(SEED), "--truth", str(tmp_path / "demo.truth.json"), *extra])
    return run_demo_db(args)


@pytest.mark.mariadb
def test_mariadb_holds_the_same_contents_as_sqlite(mariadb_url, sqlite_reference, tmp_path, monkeypatch, capsys):
    assert _build_via_cli(mariadb_url, tmp_path, monkeypatch) == 0
    out = capsys.readouterr().out
    if mariadb_url.password:
        assert mariadb_url.password not in out
    ref_url, ref_truth = sqlite_reference
    assert _contents(mariadb_url) == _contents(ref_url)
    truth = json.loads((tmp_path / "demo.truth.json").read_text(encoding="utf-8"))
    assert truth["hygiene"] == ref_truth["hygiene"] and truth["conversion"] == ref_truth["conversion"]
    engine = create_engine(mariadb_url)
    cols = {c["name"] for c in inspect(engine).get_columns("b_sender_posting_recipient")}
    engine.dispose()
    assert {"ID", "POSTING_ID", "STATUS", "DATE_SENT", "CONTACT_ID", "IS_READ"} <= cols


@pytest.mark.postgres
def test_postgres_holds_the_same_contents_with_lower_case_columns(postgres_url, sqlite_reference, tmp_path,
                                                                   monkeypatch):
    assert _build_via_cli(postgres_url, tmp_path, monkeypatch) == 0
    ref_url, _ref_truth = sqlite_reference
    assert _contents(postgres_url) == _contents(ref_url)
    engine = create_engine(postgres_url)
    insp = inspect(engine)
    for table in ("b_sender_posting_recipient", "b_sender_contact", "b_crm_exclusion", "b_sale_order"):
        names = [c["name"] for c in insp.get_columns(table)]
        assert names == [n.lower() for n in table_columns(bitrix_metadata(), table)]
    types = {c["name"]: str(c["type"]) for c in insp.get_columns("b_sale_order")}
    engine.dispose()
    assert types["price"] == "NUMERIC(18, 4)" and types["canceled"] in ("CHAR(1)", "BPCHAR(1)")


@pytest.mark.mariadb
def test_mariadb_cp1251_reads_back_cyrillic_with_either_connection_charset(mariadb_cp1251_url, tmp_path,
                                                                          monkeypatch):
    assert _build_via_cli(mariadb_cp1251_url, tmp_path, monkeypatch, "--charset", "cp1251") == 0
    expected = sorted(name for _code, name, *_x in vocab.LISTS)
    for charset in ("cp1251", "utf8mb4"):
        engine = create_engine(mariadb_cp1251_url.update_query_dict({"charset": charset}))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT @@character_set_database")).scalar() == "cp1251"
            names = sorted(r[0] for r in conn.execute(text("SELECT NAME FROM b_sender_list")))
            subjects = [r[0] for r in conn.execute(text("SELECT SUBJECT FROM b_sender_mailing_chain "
                                                        "WHERE MESSAGE_CODE = 'mail' AND SUBJECT <> ''"))]
            people = [r[0] for r in conn.execute(text("SELECT NAME FROM b_sender_contact WHERE NAME IS NOT NULL"))]
        engine.dispose()
        assert names == expected
        assert any("Чёрная пятница" in s for s in subjects)
        assert all(p.encode("cp1251") for p in people) and any("ё" in p or "Ё" in p for p in people)


def test_url_env_without_variable_is_refused_without_echo(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_demo_db_arguments(parser)
    os.environ.pop("MAILAUDIT_NO_SUCH_VAR", None)
    args = parser.parse_args(["--url-env", "MAILAUDIT_NO_SUCH_VAR", "--logs", str(tmp_path)])
    assert run_demo_db(args) == 2
    assert "MAILAUDIT_NO_SUCH_VAR" in capsys.readouterr().err


def test_unreachable_url_fails_without_printing_its_password(tmp_path, monkeypatch, capsys):
    url = make_url("mysql+pymysql://root:s3cret-pw@127.0.0.1:1/mailaudit_nowhere")
    assert _build_via_cli(url, tmp_path, monkeypatch) == 2
    captured = capsys.readouterr()
    assert "s3cret-pw" not in captured.out + captured.err
    assert "127.0.0.1:1" in captured.err


@pytest.mark.parametrize("server", ["mariadb", "postgres"])
def test_a_missing_database_is_created(server, request):
    """`demo-db --url-env` on a server where the database does not exist yet creates it."""
    scratch = make_url(request.getfixturevalue(f"{server}_url"))
    missing = scratch.set(database=f"{scratch.database}_new")
    admin_url = scratch.set(database="postgres") if server == "postgres" else scratch._replace(database=None)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        ensure_database(missing, "utf8mb4")
        engine = create_engine(missing, hide_parameters=True)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {missing.database}"))
        admin.dispose()
