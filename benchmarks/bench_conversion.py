"""Benchmark of the conversion analysis: wall time and peak memory on a large database.

    # build a big demo database in MariaDB (in a child process, so its memory is not counted), then run
    export BENCH_DB_URL=mysql+pymysql://root@127.0.0.1:3306/mailaudit_bench
    python benchmarks/bench_conversion.py --url-env BENCH_DB_URL --build --contacts 400000

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
import time
from datetime import date

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from mailaudit.analyses.conversion import analyse_conversion
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine, resolve_database_url


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build(url_env: str, contacts: int, seed: int) -> None:
    url = make_url(os.environ[url_env])
    server = create_engine(url.set(database=None), isolation_level="AUTOCOMMIT", hide_parameters=True)
    with server.connect() as conn:
        if url.get_backend_name() in ("mysql", "mariadb"):
            conn.execute(text(f"DROP DATABASE IF EXISTS {url.database}"))
            conn.execute(text(f"CREATE DATABASE {url.database} CHARACTER SET utf8mb4"))
    server.dispose()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mailaudit.cli", "demo-db", "--url-env", url_env,
                    "--contacts", str(contacts), "--seed", str(seed)], check=True)
    print(f"built the demo database with {contacts:,} contacts in {time.perf_counter() - started:,.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url-env", required=True, help="environment variable holding the SQLAlchemy URL")
    parser.add_argument("--build", action="store_true", help="(re)build the demo database first")
    parser.add_argument("--contacts", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 10, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 9, 30))
    parser.add_argument("--contacts-per-chunk", type=int, default=20_000)
    args = parser.parse_args(argv)

    if args.build:
        build(args.url_env, args.contacts, args.seed)
    engine = create_readonly_engine(resolve_database_url({"url_env": args.url_env}))
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        counts = {name: conn.execute(select(func.count()).select_from(schema.table(name))).scalar_one()
                  for name in ("b_sender_posting_recipient", "b_sender_posting_read", "b_sender_posting_click",
                               "b_sale_order", "b_sender_contact") if schema.has(name)}
        print("rows:", json.dumps(counts))
        before = peak_rss_mib()
        started = time.perf_counter()
        result = analyse_conversion(conn, schema, Period(args.start, args.end),
                                    contacts_per_chunk=args.contacts_per_chunk)
        elapsed = time.perf_counter() - started
    after = peak_rss_mib()
    f = result.figures
    print(f"analyse_conversion: {elapsed:,.1f} s wall; peak RSS {after:,.0f} MiB (before the run {before:,.0f} MiB)")
    print(f"delivered {f['delivered']:,}, converted {f['converted']:,}, revenue {f['revenue']:,.2f}, "
          f"dialect {schema.dialect}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
