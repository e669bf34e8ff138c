"""Benchmark of the demo generator: wall time, CPU time and peak memory of ``build_demo`` into SQLite.

Each size runs in a fresh process so that ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that
build's own peak resident memory.

    .venv/bin/python benchmarks/bench_demo.py --contacts 100000 1000000 [--logs] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
from mailaudit.demo import build_demo
contacts, work, logs = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
build_demo(sqlite_path=f"{work}/bench_{contacts}.sqlite", contacts=contacts, seed=1,
           logs_dir=f"{work}/bench_{contacts}_logs" if logs else None)
"""


def run(contacts: int, work: Path, logs: bool) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", CHILD, str(contacts), str(work), "1" if logs else "0"], check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    db = work / f"bench_{contacts}.sqlite"
    conn = sqlite3.connect(db)
    recipients = conn.execute("SELECT COUNT(*) FROM b_sender_posting_recipient").fetchone()[0]
    reads = conn.execute("SELECT COUNT(*) FROM b_sender_posting_read").fetchone()[0]
    conn.close()
    return {
        "contacts": contacts, "logs": logs, "wall_s": round(wall, 1),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 0),   # Linux reports KiB
        "recipient_rows": recipients, "read_rows": reads, "db_mb": round(db.stat().st_size / 2**20, 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--logs", action="store_true", help="also write the Postfix and access logs")
    parser.add_argument("--work", type=Path, help="where the databases go (default: a temporary folder)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_demo_"))
    work.mkdir(parents=True, exist_ok=True)
    for n in sorted(args.contacts):
        # ru_maxrss of children is the maximum over all of them: run the sizes smallest first
        print(json.dumps(run(n, work, args.logs)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
