"""Benchmark of the open_inflation analysis: wall time and peak memory on a large synthetic portal.

Builds (once, cached in --work) a Bitrix-shaped SQLite database with ``--rows`` delivered recipient
rows, their read and click rows, and an nginx access log of ``--lines`` lines (pixel hits of those
rows: Apple proxy prefetches, people, gateways; plus ordinary site traffic), then runs
``analyse_opens`` in a fresh process on the access-log route and on the database-only route and
reports each run's wall time, CPU time and peak RSS (``resource.getrusage``).

    .venv/bin/python benchmarks/bench_opens.py --rows 10000000 --lines 10000000
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np

PERIOD = (date(2025, 10, 1), date(2026, 9, 30))
UAS = ("Mozilla/5.0",
       "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
       "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
       "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
       "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148")
EPOCH = datetime(1970, 1, 1)


def build(work: Path, rows: int, lines: int, seed: int = 1) -> tuple[Path, Path]:
    """The synthetic database and access log (skipped when both exist)."""
    from sqlalchemy import create_engine

    from mailaudit.bitrix.tables import bitrix_metadata

    db, log = work / f"bench_{rows}.sqlite", work / f"bench_{rows}_{lines}.access.log"
    if db.exists() and log.exists():
        return db, log
    work.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    contacts = max(rows // 10, 1)
    postings = max(rows // contacts, 1)
    engine = create_engine(f"sqlite:///{db}")
    bitrix_metadata("current").create_all(engine)
    engine.dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    client = rng.choice(5, contacts, p=[0.25, 0.3, 0.1, 0.3, 0.05])   # apple, gmail, outlook, webmail, iphone
    agent = np.array([0, 1, 5, 0, 2])[client]
    domains = np.array(["icloud.com", "gmail.com", "corp.ru", "mail.ru", "mail.ru"])[client]
    con.executemany("INSERT INTO b_sender_contact (ID, TYPE_ID, CODE, AGENT) VALUES (?, 1, ?, ?)",
                    ((i + 1, f"c{i}@{domains[i]}", int(agent[i])) for i in range(contacts)))
    start = int((datetime(2025, 10, 1) - EPOCH).total_seconds())
    step = (365 * 86400) // postings
    con.executemany("INSERT INTO b_sender_mailing_chain (ID, MAILING_ID, TITLE, MESSAGE_CODE) VALUES (?, 1, ?, 'mail')",
                    ((p + 1, f"Letter {p + 1}") for p in range(postings)))
    con.executemany("INSERT INTO b_sender_posting (ID, MAILING_ID, MAILING_CHAIN_ID, DATE_SENT) VALUES (?, 1, ?, ?)",
                    ((p + 1, p + 1, _stamp(start + p * step)) for p in range(postings)))
    open_p = rng.beta(0.35, 1.24, contacts)
    hits_budget, written = lines, 0
    with open(log, "w") as fh:
        for p in range(postings):
            first = p * contacts
            rid = np.arange(first + 1, first + contacts + 1)
            sent = start + p * step + rng.integers(0, 3600, contacts)
            con.executemany(
                "INSERT INTO b_sender_posting_recipient (ID, POSTING_ID, CONTACT_ID, STATUS, DATE_SENT) VALUES (?, ?, ?, 'N', ?)",
                zip(rid.tolist(), [p + 1] * contacts, range(1, contacts + 1), map(_stamp, sent.tolist())))
            human = rng.random(contacts) < open_p
            machine = (client == 0) & (rng.random(contacts) < 0.97)
            clicked = human & (rng.random(contacts) < 0.15)
            human_t = sent + np.exp(rng.normal(np.log(9000), 1.2, contacts)).astype(np.int64)
            machine_t = sent + 20 + rng.exponential(240, contacts).astype(np.int64)
            reads = [(rid[machine], machine_t[machine], 0), (rid[human], human_t[human], None)]
            rows_out = []
            for ids, ts, ua in reads:
                con.executemany("INSERT INTO b_sender_posting_read (POSTING_ID, RECIPIENT_ID, DATE_INSERT) VALUES (?, ?, ?)",
                                zip([p + 1] * len(ids), ids.tolist(), map(_stamp, ts.tolist())))
                uas = np.zeros(len(ids), int) if ua == 0 else client[ids - first - 1]
                rows_out.append((ids, ts, uas, "/bitrix/tools/track_mail_read.php"))
            con.executemany("INSERT INTO b_sender_posting_click (POSTING_ID, RECIPIENT_ID, DATE_INSERT, URL) VALUES (?, ?, ?, 'https://shop.example/')",
                            zip([p + 1] * int(clicked.sum()), rid[clicked].tolist(), map(_stamp, (human_t[clicked] + 60).tolist())))
            rows_out.append((rid[clicked], human_t[clicked] + 60, np.full(int(clicked.sum()), 3), "/bitrix/tools/track_mail_click.php"))
            budget = (hits_budget - written) // max(postings - p, 1)
            for ids, ts, uas, path in rows_out:
                for r, t, u in zip(ids[:budget].tolist(), ts[:budget].tolist(), uas[:budget].tolist()):
                    fh.write(_log_line(r, t, UAS[u], path))
                    written += 1
        # fill up with ordinary site traffic (the reader must skip it fast)
        filler = '95.24.1.1 - - [01/Oct/2025:10:00:00 +0300] "GET /catalog/instrument/ HTTP/1.1" 200 5120 "-" "{ua}"\n'.format(ua=UAS[3])
        fh.writelines(filler for _ in range(max(lines - written, 0)))
    con.commit()
    for sql in ("CREATE INDEX IX_READ_RECIPIENT ON b_sender_posting_read (RECIPIENT_ID)",
                "CREATE INDEX IX_CLICK_RECIPIENT ON b_sender_posting_click (RECIPIENT_ID)"):
        con.execute(sql)
    con.close()
    return db, log


def _stamp(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime(seconds))


def _log_line(rid: int, ts: int, ua: str, path: str) -> str:
    payload = base64.b64encode(json.dumps({"RECIPIENT_ID": rid}).encode()).decode()
    when = time.strftime("%d/%b/%Y:%H:%M:%S", time.gmtime(ts))
    return (f'17.58.1.1 - - [{when} +0300] "GET {path}?tag={quote("sender." + payload, safe="")} '
            f'HTTP/1.1" 200 43 "-" "{ua}"\n')


def analyse(db: str, log: str | None) -> None:
    """Child process: run the analysis once and print wall time and peak RSS as JSON."""
    from sqlalchemy import URL

    from mailaudit.analyses.opens import analyse_opens
    from mailaudit.bitrix.schema import reflect_schema
    from mailaudit.period import Period
    from mailaudit.sources.db import create_readonly_engine

    started = time.perf_counter()
    engine = create_readonly_engine(URL.create("sqlite", database=db))
    with engine.connect() as conn:
        result = analyse_opens(conn, reflect_schema(conn), Period(*PERIOD), {"scanner_seconds": 10},
                               [log] if log else [])
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = usage.ru_maxrss / 1024
    f = result.figures
    print(json.dumps({"route": f["evidence"], "wall_s": round(wall, 1),
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 1), "peak_rss_mb": round(peak_mb),
                      "delivered": f["delivered"], "raw_open_rate": round(f["raw_open_rate"], 4),
                      "human_open_rate": round(f["human_open_rate"], 4)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="delivered recipient rows")
    parser.add_argument("--lines", type=int, default=1_000_000, help="access-log lines")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.work"))
    parser.add_argument("--child", nargs=2, metavar=("DB", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        analyse(args.child[0], None if args.child[1] == "-" else args.child[1])
        return
    started = time.perf_counter()
    db, log = build(args.work, args.rows, args.lines)
    print(f"data: {args.rows:,} recipient rows, {args.lines:,} log lines ({time.perf_counter() - started:.0f} s to build)")
    for log_arg in (str(log), "-"):
        out = subprocess.run([sys.executable, __file__, "--child", str(db), log_arg],
                             check=True, capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
