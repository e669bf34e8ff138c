"""Benchmark of the segments analysis: wall time and peak memory of the Python process.

Run against a database already filled (e.g. `mailaudit demo-db --url-env BENCH_DB_URL --contacts N`),
or let the script fill it first with --build-contacts:

    export BENCH_DB_URL=mysql://root@127.0.0.1:3306/mailaudit_bench
    python benchmarks/bench_segments.py --url-env BENCH_DB_URL [--build-contacts 400000]

As the report does, the period's sends are first classified for the human open rate per segment
(opens.classify_contacts, database route; --no-human-opens skips it). Peak memory is this process's
maximum resident set size (resource.getrusage); the database server's own memory and CPU are not
included. The numbers are printed as one JSON line.
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

from sqlalchemy import func, select

from mailaudit.analyses.opens import classify_contacts
from mailaudit.analyses.segments import SegmentSettings, analyse_segments
from mailaudit.bitrix.codes import RecipientStatus
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine, resolve_database_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url-env", required=True, help="environment variable holding the SQLAlchemy URL")
    parser.add_argument("--build-contacts", type=int, help="first fill the database with the demo generator")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 10, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 9, 30))
    parser.add_argument("--min-delivered", type=int, default=500)
    parser.add_argument("--no-human-opens", action="store_true", help="skip the human open rate per segment")
    args = parser.parse_args(argv)

    build_seconds = None
    if args.build_contacts:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mailaudit.cli", "demo-db", "--url-env", args.url_env,
                        "--contacts", str(args.build_contacts)], check=True)
        build_seconds = time.perf_counter() - started

    engine = create_readonly_engine(resolve_database_url({"url_env": args.url_env}, os.environ))
    period = Period(args.start, args.end)
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        recipient = schema.table("b_sender_posting_recipient")
        rows = conn.execute(select(func.count()).select_from(recipient)).scalar_one()
        delivered = conn.execute(select(func.count()).where(
            recipient.c.STATUS == RecipientStatus.SENT, recipient.c.DATE_SENT >= period.start_dt,
            recipient.c.DATE_SENT < period.end_exclusive)).scalar_one()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        evidence = None if args.no_human_opens else classify_contacts(conn, schema, period, {"scanner_seconds": 10})
        classified = time.perf_counter()
        result = analyse_segments(conn, schema, period, SegmentSettings(min_delivered=args.min_delivered), evidence)
        finished = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "dialect": schema.dialect,
        "recipient_rows": int(rows),
        "delivered_rows_in_period": int(delivered),
        "dimensions": int(result.metrics["dimension"].nunique()) if len(result.metrics) else 0,
        "comparisons": int(len(result.differences)),
        "build_seconds": None if build_seconds is None else round(build_seconds, 1),
        "classify_seconds": None if evidence is None else round(classified - started, 1),
        "segments_seconds": round(finished - classified, 1),
        "analysis_seconds": round(finished - started, 1),
        "analysis_cpu_seconds": round(_cpu_seconds() - cpu_before, 1),
        "peak_rss_mib_before_analysis": round(rss_before / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }))
    engine.dispose()
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
