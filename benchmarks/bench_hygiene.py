"""Benchmark of the list-hygiene audit on a snapshot: wall time, CPU time and peak memory.

    .venv/bin/python benchmarks/bench_hygiene.py --snapshot PATH [--params FILE] [--check-dns]

The audit (:func:`mailaudit.analyses.hygiene.audit_hygiene`) runs in a fresh process on the model of the
snapshot at PATH, opened with :func:`mailaudit.snapshot.store.open_snapshot` (DuckDB's memory cap
applies), for the period of the snapshot's parameters; the process reports its own peak resident memory
(``ru_maxrss``), which includes DuckDB's. With ``--params`` the snapshot is made first when PATH does not
exist (``mailaudit snapshot``: the database, and the delivery log when the parameters name one); that
extraction is reported apart and is not part of the audit's time. One JSON line per step.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

EXTRACT = """
import sys
from pathlib import Path
from mailaudit.report.params import load_params
from mailaudit.snapshot.extract import extract_snapshot
extract_snapshot(load_params(sys.argv[1]), Path(sys.argv[2]), progress=False)
"""

AUDIT = """
import json, sys, time
from datetime import date
from pathlib import Path
from mailaudit.analyses.hygiene import audit_hygiene
from mailaudit.period import Period
from mailaudit.snapshot.store import open_snapshot
model = open_snapshot(Path(sys.argv[1]))
model.con.execute("SET enable_progress_bar = false")   # DuckDB draws it on stdout, where the figures go
window = model.manifest["period"]
period = Period(date.fromisoformat(window["start"]), date.fromisoformat(window["end"]))
hygiene = {"soft_bounce_streak": 3, "unsub_grace_hours": 48, "inactive_months": 6, "inactive_min_sends": 5,
           "check_dns": sys.argv[2] == "dns"}
started = time.perf_counter()
result = audit_hygiene(model, period, hygiene)
keys = ("contacts", "invalid_syntax", "duplicate_contacts", "hard_bounce", "sent_after_hard_bounce",
        "soft_bounce_streak", "sent_after_unsubscribe", "inactive")
print(json.dumps({"audit_s": round(time.perf_counter() - started, 1), "period": window,
                  "delivery_log": model.has_delivery_log,
                  "recipient_rows": model.manifest["tables"]["b_sender_posting_recipient"]["rows"],
                  **{k: result.figures[k] for k in keys}}))
"""

PEAK = """
import json as _json, resource as _resource
print(_json.dumps({"peak_rss_mb": round(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def child(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; its JSON stdout lines plus wall/CPU time and its own peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + PEAK, *args], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {}
    for line in done.stdout.strip().splitlines():
        if line.startswith("{"):
            out.update(json.loads(line))
    return {**out, "wall_s": round(wall, 1),   # peak_rss_mb: Linux reports ru_maxrss in KiB
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", type=Path, required=True, help="the snapshot to audit (made with --params if missing)")
    parser.add_argument("--params", type=Path, help="parameter file to make the snapshot from when it is missing")
    parser.add_argument("--check-dns", action="store_true", help="include the DNS check of every domain")
    args = parser.parse_args()
    if not args.snapshot.exists():
        if not args.params:
            parser.error(f"{args.snapshot} does not exist: give --params to make it")
        print(json.dumps({"step": "snapshot (not part of the audit)", **child(EXTRACT, str(args.params),
                                                                           str(args.snapshot))}), flush=True)
    print(json.dumps({"step": "audit", "snapshot": str(args.snapshot),
                      **child(AUDIT, str(args.snapshot), "dns" if args.check_dns else "-")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
