"""The snapshot: the same data from every engine, only the window the reports need, safe to keep and to reuse."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mailaudit.cli import main
from mailaudit.demo import build_demo
from mailaudit.model import Model
from mailaudit.model.build import model_tables
from mailaudit.report.params import load_params
from mailaudit.snapshot import readers
from mailaudit.snapshot.extract import SnapshotError, extract_snapshot
from mailaudit.snapshot.readers import SourceReadError
from mailaudit.snapshot.store import open_snapshot


def _dump(model: Model) -> dict[str, pd.DataFrame]:
    """Every model relation, rows in a canonical order."""
    out = {}
    for table in sorted(model_tables(model.con)):
        frame = model.sql(f'SELECT * FROM "{table}"')
        out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True) if len(frame) else frame
    return out


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("mariadb_cp1251", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def server_demo(request, tmp_path):
    """The shared demo's twin (same seed and size) in MariaDB (utf8mb4, cp1251) or PostgreSQL."""
    url = request.getfixturevalue({"mariadb": "mariadb_url", "mariadb_cp1251": "mariadb_cp1251_url",
                                   "postgres": "postgres_url"}[request.param])
    charset = "cp1251" if request.param == "mariadb_cp1251" else "utf8mb4"
    build_demo(url=url.render_as_string(hide_password=False), contacts=3000, seed=1, charset=charset,
               truth_path=tmp_path / "server.truth.json")
    return url


def test_every_engine_gives_the_same_model(demo_model, demo_params, server_demo, model_of, monkeypatch):
    monkeypatch.setenv("SERVER_URL", server_demo.render_as_string(hide_password=False))
    server = model_of(demo_params(database={"url_env": "SERVER_URL"}, name="server.yaml"))
    ours, theirs = _dump(demo_model), _dump(server)
    assert ours.keys() == theirs.keys()
    for table in ours:
        pd.testing.assert_frame_equal(ours[table], theirs[table], check_dtype=False, obj=table)
    assert server.manifest["source"]["dialect"] != "sqlite"


def test_manifest_says_what_was_read_and_never_the_password(demo_model):
    manifest = demo_model.manifest
    assert manifest["source"]["layout"] == "current" and manifest["source"]["dialect"] == "sqlite"
    assert manifest["window"] == {"start": "2024-10-01", "end": "2026-10-30", "postings": "all"}
    assert manifest["tables"]["b_sender_posting_recipient"]["rows"] == demo_model.scalar(
        "SELECT count(*) FROM raw.b_sender_posting_recipient")
    assert manifest["logs"]["delivery"]["stats"][0]["events"] == demo_model.scalar("SELECT count(*) FROM delivery_events")
    assert manifest["longest_statement_seconds"] > 0 and manifest["source_statements"] > 26


def test_the_snapshot_is_private_and_written_whole(demo_params, tmp_path):
    out = tmp_path / "snap" / "s.duckdb"
    extract_snapshot(load_params(demo_params(with_logs=False)), out, progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.duckdb"]


def test_a_failed_extraction_leaves_nothing_behind(demo_params, tmp_path, monkeypatch):
    calls = {"n": 0}
    original = readers.DbapiReader.read

    def fail_later(self, statements):
        calls["n"] += 1
        if calls["n"] > 12:
            raise SourceReadError("ProgrammingError: permission denied for table b_sender_posting_read")
        return original(self, statements)

    monkeypatch.setattr(readers.DbapiReader, "read", fail_later)
    out = tmp_path / "s.duckdb"
    with pytest.raises(SnapshotError, match="permission denied"):
        extract_snapshot(load_params(demo_params(with_logs=False)), out, progress=False)
    assert list(tmp_path.glob("*.duckdb*")) == [] and list(tmp_path.glob(".s.duckdb*")) == []


def test_a_lost_connection_is_retried_where_it_stopped(demo_params, tmp_path, monkeypatch):
    monkeypatch.setattr(readers.time, "sleep", lambda _s: None)
    failures = {"left": 3}
    original = readers.DbapiReader.read

    def flaky(self, statements):
        if "b_sender_posting_recipient" in statements[0] and failures["left"]:
            failures["left"] -= 1
            raise SourceReadError("OperationalError: (2013, 'Lost connection to MySQL server during query')",
                                  retryable=True)
        return original(self, statements)

    monkeypatch.setattr(readers.DbapiReader, "read", flaky)
    manifest = extract_snapshot(load_params(demo_params(with_logs=False)), tmp_path / "s.duckdb", progress=False)
    assert failures["left"] == 0
    model = open_snapshot(tmp_path / "s.duckdb")
    assert model.scalar("SELECT count(DISTINCT ID) FROM raw.b_sender_posting_recipient") == \
        manifest["tables"]["b_sender_posting_recipient"]["rows"] == 27_200
    model.close()


def test_a_range_that_hits_the_time_limit_is_read_again_in_smaller_ranges(demo_params, tmp_path, monkeypatch):
    original = readers.DbapiReader.read
    widths = []

    def slow_on_wide_ranges(self, statements):
        for statement in statements:
            if "BETWEEN" in statement and "b_sender_posting_recipient" in statement:
                low, high = (int(x) for x in statement.split("BETWEEN ")[1].split(" AND ")[:2])
                widths.append(high - low + 1)
                if high - low + 1 > 5_000:
                    raise SourceReadError("OperationalError: (1969, 'Query execution was interrupted "
                                          "(max_statement_time exceeded)')", timed_out=True)
        return original(self, statements)

    monkeypatch.setattr(readers.DbapiReader, "read", slow_on_wide_ranges)
    manifest = extract_snapshot(load_params(demo_params(with_logs=False)), tmp_path / "s.duckdb", progress=False)
    assert manifest["tables"]["b_sender_posting_recipient"]["rows"] == 27_200
    assert max(widths) > 5_000 and min(widths) <= 5_000


def test_a_table_the_arrow_reader_cannot_decode_is_read_through_the_driver(demo_params, tmp_path, monkeypatch):
    from mailaudit.snapshot import extract

    class PickyReader(readers.DbapiReader):
        name = "picky"

        def read(self, statements):
            if "b_sender_mailing_chain" in statements[0]:
                raise SourceReadError("RuntimeError: unsupported column type MEDIUMBLOB")
            return super().read(statements)

    monkeypatch.setattr(extract, "DbapiReader", lambda engine, *a: PickyReader(engine, *a)
                        if not a else readers.DbapiReader(engine, *a))
    manifest = extract_snapshot(load_params(demo_params(with_logs=False)), tmp_path / "s.duckdb", progress=False)
    chain = manifest["tables"]["b_sender_mailing_chain"]
    assert chain["reader"] == "dbapi" and chain["rows"] == 52
    assert manifest["tables"]["b_sender_posting"]["reader"] == "picky"


def test_a_short_period_reads_only_its_postings(demo, demo_params, tmp_path):
    params = load_params(demo_params(with_logs=False, period={"start": "2026-03-01", "end": "2026-03-31"},
                                     hygiene={"inactive_months": 1}, conversion={"click_window_days": 7}))
    manifest = extract_snapshot(params, tmp_path / "s.duckdb", progress=False)
    model = open_snapshot(tmp_path / "s.duckdb")
    window = manifest["window"]
    assert window["start"] == "2026-01-29" and window["end"] == "2026-04-07"
    assert 0 < window["postings"] < 52
    assert model.scalar("SELECT count(DISTINCT POSTING_ID) FROM raw.b_sender_posting_recipient") == window["postings"]
    # every send of the period is there, and the reads of the extracted postings are complete
    with sqlite3.connect(demo.database) as source:
        in_period = source.execute("SELECT count(*) FROM b_sender_posting_recipient WHERE DATE_SENT >= '2026-03-01' "
                                   "AND DATE_SENT < '2026-04-01'").fetchone()[0]
    assert model.scalar("SELECT count(*) FROM raw.b_sender_posting_recipient WHERE DATE_SENT >= '2026-03-01' "
                        "AND DATE_SENT < '2026-04-01'") == in_period
    assert model.scalar("SELECT count(*) FROM raw.b_sender_posting_read e WHERE NOT EXISTS (SELECT 1 FROM "
                        "raw.b_sender_posting_recipient r WHERE r.ID = e.RECIPIENT_ID)") <= 3   # the planted orphans
    model.close()


def test_run_from_a_snapshot_needs_no_source(demo, demo_params, tmp_path, capsys):
    copy = tmp_path / "source.sqlite"
    shutil.copy(demo.database, copy)
    assert main(["snapshot", "--params", demo_params(database={"sqlite": str(copy)}, with_logs=False),
                 "--out", str(tmp_path / "s.duckdb"), "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "s.duckdb")
    copy.unlink()   # the source is gone: the reports must not need it
    params = demo_params(database={"snapshot": str(tmp_path / "s.duckdb")}, with_logs=False, name="from-snapshot.yaml")
    assert main(["run", "--params", params, "--out", str(tmp_path / "bundle"), "--only", "data_and_tracking",
                 "--no-progress"]) == 0
    summary = json.loads((tmp_path / "bundle" / "summary.json").read_text())
    assert summary["source"]["row_counts"]["b_sender_posting_read"] == demo.truth_figures["data_quality"]["read_rows"]


def test_a_snapshot_too_narrow_for_the_period_is_refused(demo_params, tmp_path, capsys):
    short = demo_params(with_logs=False, period={"start": "2026-03-01", "end": "2026-03-31"}, name="short.yaml")
    assert main(["snapshot", "--params", short, "--out", str(tmp_path / "s.duckdb"), "--no-progress"]) == 0
    capsys.readouterr()
    whole = demo_params(database={"snapshot": str(tmp_path / "s.duckdb")}, with_logs=False, name="whole.yaml")
    assert main(["run", "--params", whole, "--out", str(tmp_path / "bundle"), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "the snapshot covers 2025-10-01 to 2026-04-30" in error
    assert "needs 2024-10-01 to 2026-10-30" in error and "mailaudit snapshot" in error
    assert not (tmp_path / "bundle").exists()


def test_unreadable_values_are_counted_not_guessed(demo, demo_params, tmp_path):
    copy = tmp_path / "zero-dates.sqlite"
    shutil.copy(demo.database, copy)
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE b_sender_posting_recipient SET DATE_SENT = '0000-00-00 00:00:00' WHERE ID <= 5")
    manifest = extract_snapshot(load_params(demo_params(database={"sqlite": str(copy)}, with_logs=False)),
                                tmp_path / "s.duckdb", progress=False)
    assert manifest["tables"]["b_sender_posting_recipient"]["unreadable_values"] == {"DATE_SENT": 5}
    model = open_snapshot(tmp_path / "s.duckdb")
    assert model.scalar("SELECT count(*) FROM sends WHERE recipient_id <= 5 AND sent_at IS NULL") == 5
    model.close()


def test_a_source_without_optional_tables_still_has_every_relation(demo, demo_params, tmp_path):
    copy = tmp_path / "bare.sqlite"
    shutil.copy(demo.database, copy)
    with sqlite3.connect(copy) as db:
        for table in ("b_sender_posting_click", "b_sender_abuse", "b_sale_order", "b_crm_deal", "b_crm_field_multi"):
            db.execute(f"DROP TABLE {table}")
    manifest = extract_snapshot(load_params(demo_params(database={"sqlite": str(copy)}, with_logs=False)),
                                tmp_path / "s.duckdb", progress=False)
    model = open_snapshot(tmp_path / "s.duckdb")
    assert {"b_sender_posting_click", "b_sale_order"} <= set(manifest["absent_tables"])
    assert not model.has("b_sender_posting_click") and model.has("b_sender_posting_read")
    assert model.scalar("SELECT count(*) FROM clicks") == 0 and model.scalar("SELECT sum(clicks) FROM sends") == 0
    assert not model.capabilities["segments"].ok and model.capabilities["open_inflation"].ok
    model.close()


def test_a_stale_model_is_rebuilt_on_open(demo_params, tmp_path):
    import duckdb

    extract_snapshot(load_params(demo_params(with_logs=False)), tmp_path / "s.duckdb", progress=False)
    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    con.execute("DROP TABLE sends")
    con.execute("UPDATE _model SET version = 0")
    con.close()
    model = open_snapshot(tmp_path / "s.duckdb")
    assert model.scalar("SELECT count(*) FROM sends") == 27_140
    model.close()


def test_parquet_copy_of_every_table(demo_params, tmp_path, capsys):
    assert main(["snapshot", "--params", demo_params(with_logs=True), "--out", str(tmp_path / "s.duckdb"),
                 "--parquet", str(tmp_path / "pq"), "--no-progress"]) == 0
    sends = pq.read_table(tmp_path / "pq" / "main" / "sends")   # a directory per table, as Spark and Trino read
    assert sends.num_rows == 27_140 and "provider" in sends.column_names
    assert pq.read_table(tmp_path / "pq" / "raw" / "b_sender_posting_recipient").num_rows == 27_200
    assert pq.read_table(tmp_path / "pq" / "logs" / "tracking_hits").num_rows > 10_000


def test_legacy_layout_sends_reach_contacts_by_address(tmp_path, demo_params):
    built = build_demo(sqlite_path=tmp_path / "legacy.sqlite", contacts=1000, seed=2, layout="legacy")
    params = load_params(demo_params(database={"sqlite": str(built.database)}, with_logs=False))
    extract_snapshot(params, tmp_path / "s.duckdb", progress=False)
    model = open_snapshot(tmp_path / "s.duckdb")
    assert model.layout == "legacy"
    unmatched = model.scalar("SELECT count(*) FROM sends WHERE contact_id IS NULL")
    with sqlite3.connect(built.database) as db:
        orphan_rows = db.execute("SELECT count(*) FROM b_sender_posting_recipient r WHERE NOT EXISTS "
                                 "(SELECT 1 FROM b_sender_contact c WHERE lower(c.EMAIL) = lower(r.EMAIL))").fetchone()[0]
    email_rows = model.scalar("SELECT count(*) FROM sends")
    assert unmatched <= orphan_rows and email_rows > 5000
    assert model.scalar("SELECT count(*) FROM sends s JOIN contacts c USING (contact_id) WHERE s.email <> c.email") == 0
    model.close()


def test_large_logs_are_parsed_in_worker_processes_with_the_same_rows(demo, demo_model, tmp_path, monkeypatch):
    """Above IN_PROCESS_BYTES the logs are parsed in spawned workers while the database is read; the
    snapshot's log tables and counts are the same as when they are parsed in the extracting process."""
    from mailaudit.snapshot import logs as snapshot_logs

    monkeypatch.setattr(snapshot_logs, "IN_PROCESS_BYTES", 0)
    started = []
    real = snapshot_logs.LogParsing.__init__

    def watch(self, *args):
        real(self, *args)
        started.append(self.pool is not None)

    monkeypatch.setattr(snapshot_logs.LogParsing, "__init__", watch)
    folder = tmp_path / "worker"
    folder.mkdir()
    from conftest import _write_demo_params, snapshot_model

    model = snapshot_model(_write_demo_params(demo, folder), folder / "demo.duckdb")
    try:
        assert started == [True]
        for table in ("logs.delivery_events", "logs.tracking_hits", "logs.delivery_files"):
            query = f"SELECT * FROM {table} ORDER BY ALL"
            assert model.sql(query).equals(demo_model.sql(query)), table
        assert len(model.sql("SELECT * FROM logs.tracking_hits")) > 1000
        assert model.manifest["logs"] == demo_model.manifest["logs"]
    finally:
        model.close()
    assert not list(folder.glob(".demo.duckdb.logs-*")), "the parsed files are removed"
