"""Benchmark of the open_inflation analysis on a snapshot: wall time, CPU time and peak memory.

Runs ``analyse_opens`` in a fresh process on the model of a snapshot, once per route: the access
log's hits (when the snapshot holds an access log) and the database alone, and prints one JSON line
per run (wall and CPU time of the analysis, this process's peak RSS, the headline figures). The
engine's memory is capped as in a report run (``open_snapshot``).

A snapshot of the 1M-contact demo (~9M recipient rows; its access log ~6M lines):

    .venv/bin/mailaudit demo-db --sqlite demo1m.sqlite --contacts 1000000 --logs logs1m
    .venv/bin/mailaudit snapshot --params p1m.yaml --out demo1m.duckdb   # logs.access: [logs1m/access.log]
    .venv/bin/python benchmarks/bench_opens.py demo1m.duckdb
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def analyse(snapshot: str, route: str) -> None:
    """Child process: run the analysis once and print its time and peak memory as JSON."""
    from mailaudit.analyses.opens import analyse_opens
    from mailaudit.period import Period
    from mailaudit.snapshot.store import open_snapshot

    model = open_snapshot(Path(snapshot))
    period = Period(*(date.fromisoformat(model.manifest["period"][k]) for k in ("start", "end")))
    started, cpu = time.perf_counter(), time.process_time()
    result = analyse_opens(model, period, {"scanner_seconds": 10}, use_access_log=route == "access_log")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f = result.figures
    print(json.dumps({"route": f["evidence"], "delivered": f["delivered"], "wall_s": round(wall, 1),
                      "cpu_s": round(cpu, 1), "peak_rss_mb": round(peak_mb),
                      "raw_open_rate": round(f["raw_open_rate"], 4), "human_open_rate": round(f["human_open_rate"], 4),
                      "access_log_hits": (f.get("access_log") or {}).get("sender_opens")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot", type=Path, help="a snapshot made by `mailaudit snapshot`")
    parser.add_argument("--child", choices=("access_log", "database"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        analyse(str(args.snapshot), args.child)
        return
    from mailaudit.snapshot.store import open_snapshot

    model = open_snapshot(args.snapshot)
    routes = ["access_log", "database"] if model.has_access_log else ["database"]
    print(f"snapshot {args.snapshot}: {model.manifest['tables']['b_sender_posting_recipient']['rows']:,} recipient rows, "
          f"access log: {'yes' if model.has_access_log else 'no'}")
    model.close()
    for route in routes:
        out = subprocess.run([sys.executable, __file__, str(args.snapshot), "--child", route],
                             check=True, capture_output=True, text=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
