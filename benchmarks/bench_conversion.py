"""Benchmark of the conversion analysis: wall time and peak memory on a large database.

    # build a big demo database in MariaDB (in a child process, so its memory is not counted), then run
    export BENCH_DB_URL=mysql+pymysql://root@127.0.0.1:3306/mailaudit_bench
    python benchmarks/bench_conversion.py --url-env BENCH_DB_URL --build --contacts 400000

    # or copy a demo SQLite file (build_demo's output) into MariaDB with LOAD DATA, then run
    python benchmarks/bench_conversion.py --url-env BENCH_DB_URL --from-sqlite /tmp/bench_1000000.sqlite

    # or run against an existing database (a copy of a portal, or one built earlier)
    python benchmarks/bench_conversion.py --url-env BENCH_DB_URL

Prints the row counts that matter (recipient rows, orders), the wall time of `analyse_conversion` and
the process's peak resident memory (resource.getrusage, Linux: KiB) before and after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sqlalchemy import URL, create_engine, func, select, text
from sqlalchemy.engine import make_url

from mailaudit.analyses.conversion import analyse_conversion
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine, resolve_database_url


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(url_env: str, contacts: int, seed: int) -> None:
    url = make_url(os.environ[url_env])
    server_url = URL.create(url.drivername, username=url.username, password=url.password, host=url.host,
                            port=url.port, query=url.query)
    server = create_engine(server_url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    with server.connect() as conn:
        if url.get_backend_name() in ("mysql", "mariadb"):
            conn.execute(text(f"DROP DATABASE IF EXISTS {url.database}"))
            conn.execute(text(f"CREATE DATABASE {url.database} CHARACTER SET utf8mb4"))
    server.dispose()
    started = time.perf_counter()
    truth = Path(tempfile.gettempdir()) / f"bench_conversion_{contacts}.truth.json"
    subprocess.run([sys.executable, "-m", "mailaudit.cli", "demo-db", "--url-env", url_env,
                    "--contacts", str(contacts), "--seed", str(seed), "--truth", str(truth)], check=True)
    print(f"built the demo database with {contacts:,} contacts in {time.perf_counter() - started:,.0f} s")


def load_sqlite(url_env: str, sqlite_path: Path) -> None:
    """Copy a demo SQLite file (e.g. one `build_demo` wrote) into the MySQL/MariaDB database named by
    `url_env`, table by table through LOAD DATA LOCAL INFILE: far faster than row inserts at 10M rows."""
    import sqlite3

    from mailaudit.bitrix.tables import bitrix_metadata

    url = make_url(os.environ[url_env])
    server_url = URL.create(url.drivername, username=url.username, password=url.password, host=url.host,
                            port=url.port, query=url.query)
    server = create_engine(server_url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {url.database}"))
        conn.execute(text(f"CREATE DATABASE {url.database} CHARACTER SET utf8mb4"))
    server.dispose()
    engine = create_engine(url, connect_args={"local_infile": True}, hide_parameters=True)
    metadata = bitrix_metadata("current")
    metadata.create_all(engine)
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    started = time.perf_counter()
    for name, table in metadata.tables.items():
        columns = [c.name for c in table.columns]
        present = {r[1] for r in source.execute(f'PRAGMA table_info("{name}")')}
        columns = [c for c in columns if c in present]
        if not columns:
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8") as out:
            cursor = source.execute(f'SELECT {", ".join(columns)} FROM "{name}"')
            while rows := cursor.fetchmany(100_000):
                out.writelines(",".join(_csv_value(v) for v in row) + "\n" for row in rows)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"LOAD DATA LOCAL INFILE '{out.name}' INTO TABLE {name} CHARACTER SET utf8mb4 "
                "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' "
                f"({', '.join(columns)})")
            warnings = conn.exec_driver_sql("SHOW COUNT(*) WARNINGS").scalar()
        os.unlink(out.name)
        if warnings:
            print(f"  {name}: {warnings} warnings while loading")
    engine.dispose()
    print(f"loaded {sqlite_path.name} into {url.database} in {time.perf_counter() - started:,.0f} s")


def add_order_copies(url_env: str, copies: int) -> None:
    """Benchmark scale only: add `copies` shifted copies of every store order and its CRM-contact link
    (MySQL/MariaDB SQL), so that a demo with ~0.2M orders reaches ~1M. Dates move by -30..+30 days."""
    engine = create_engine(make_url(os.environ[url_env]), hide_parameters=True)
    order_cols = "LID, PERSON_TYPE_ID, PAYED, DATE_PAYED, CANCELED, DATE_CANCELED, STATUS_ID, DATE_STATUS, PRICE, " \
                 "CURRENCY, USER_ID, DATE_UPDATE, ACCOUNT_NUMBER, XML_ID"
    with engine.begin() as conn:
        for k in range(1, copies + 1):
            offset = k * ORDER_COPY_OFFSET
            shift = f"INTERVAL ((ID * 7 + {k * 13}) MOD 61) - 30 DAY"
            conn.exec_driver_sql(
                f"INSERT INTO b_sale_order (ID, DATE_INSERT, {order_cols}) SELECT ID + {offset}, "
                f"DATE_INSERT + {shift}, {order_cols} FROM b_sale_order WHERE ID < {ORDER_COPY_OFFSET}")
            conn.exec_driver_sql(
                f"INSERT INTO b_crm_order_contact_company (ID, ORDER_ID, ENTITY_ID, ENTITY_TYPE_ID, SORT, ROLE_ID, "
                f"IS_PRIMARY) SELECT ID + {offset}, ORDER_ID + {offset}, ENTITY_ID, ENTITY_TYPE_ID, SORT, ROLE_ID, "
                f"IS_PRIMARY FROM b_crm_order_contact_company WHERE ORDER_ID < {ORDER_COPY_OFFSET}")
    engine.dispose()


ORDER_COPY_OFFSET = 10_000_000


def _csv_value(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace('"', '""') + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url-env", required=True, help="environment variable holding the SQLAlchemy URL")
    parser.add_argument("--build", action="store_true", help="(re)build the demo database first")
    parser.add_argument("--from-sqlite", type=Path, help="load this demo SQLite file into the database first")
    parser.add_argument("--order-copies", type=int, default=0,
                        help="add this many date-shifted copies of every order (MariaDB; to reach ~1M orders)")
    parser.add_argument("--contacts", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 10, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 9, 30))
    parser.add_argument("--contacts-per-chunk", type=int, default=20_000)
    args = parser.parse_args(argv)

    if args.build:
        build(args.url_env, args.contacts, args.seed)
    if args.from_sqlite:
        load_sqlite(args.url_env, args.from_sqlite)
    if args.order_copies:
        add_order_copies(args.url_env, args.order_copies)
    engine = create_readonly_engine(resolve_database_url({"url_env": args.url_env}))
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        counts = {name: conn.execute(select(func.count()).select_from(schema.table(name))).scalar_one()
                  for name in ("b_sender_posting_recipient", "b_sender_posting_read", "b_sender_posting_click",
                               "b_sale_order", "b_sender_contact") if schema.has(name)}
        print("rows:", json.dumps(counts))
        before = peak_rss_mib()
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = analyse_conversion(conn, schema, Period(args.start, args.end),
                                    contacts_per_chunk=args.contacts_per_chunk)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
    after = peak_rss_mib()
    f = result.figures
    print(f"analyse_conversion: {elapsed:,.1f} s wall, {cpu:,.1f} s CPU in this process; peak RSS {after:,.0f} MiB "
          f"(before the run {before:,.0f} MiB)")
    print(f"delivered {f['delivered']:,}, converted {f['converted']:,}, revenue {f['revenue']:,.2f}, "
          f"dialect {schema.dialect}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
