"""Benchmark of the list-hygiene audit: wall time, CPU time and peak memory.

Two measurements, each in a fresh process that reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at its end):

- ``audit``: :func:`mailaudit.analyses.hygiene.audit_hygiene` on a demo database of ``--contacts``
  contacts (built first if missing; its build time is reported apart), without a delivery log.
- ``log``: reading and classifying a Postfix log of ``--log-lines`` lines plus the soft-bounce
  streaks (:func:`scan_delivery_log` + :func:`soft_bounce_streaks`). The log is made from a small
  demo's maillog repeated with fresh queue ids and addresses made distinct per copy, the copies
  interleaved so the file stays in time order; it has the demo's mix of deliveries, deferrals and bounces.

    .venv/bin/python benchmarks/bench_hygiene.py --contacts 1000000 --log-lines 10000000 [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD = """
import sys
from mailaudit.demo import build_demo
path, contacts, logs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
build_demo(sqlite_path=path, contacts=contacts, seed=1, logs_dir=logs if logs != "-" else None,
           delivery_formats=("postfix",))
"""

AUDIT = """
import json, sys
from datetime import date
from mailaudit.analyses.hygiene import audit_hygiene
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine, sqlite_url
from pathlib import Path
conn = create_readonly_engine(sqlite_url(Path(sys.argv[1]))).connect()
params = {"soft_bounce_streak": 3, "unsub_grace_hours": 48, "inactive_months": 6, "inactive_min_sends": 5}
result = audit_hygiene(conn, reflect_schema(conn), Period(date(2025, 10, 1), date(2026, 9, 30)), params, [])
keys = ("contacts", "invalid_syntax", "duplicate_contacts", "hard_bounce", "inactive")
print(json.dumps({k: result.figures[k] for k in keys}))
"""

LOG = """
import json, sys
from datetime import date
from mailaudit.analyses.hygiene import scan_delivery_log, soft_bounce_streaks, _send_key
from mailaudit.period import Period
from pathlib import Path
scan = scan_delivery_log([Path(sys.argv[1])], Period(date(2025, 10, 1), date(2026, 9, 30)))
bounces = scan.bounces.assign(posting_id=float("nan"))
bounces["send_key"] = _send_key(bounces)
streaks = soft_bounce_streaks(bounces, scan.deliveries, 3)
print(json.dumps({"lines": int(scan.files["lines"].sum()), "events": int(scan.files["events"].sum()),
                  "deliveries": len(scan.deliveries), "non_deliveries": len(scan.bounces),
                  "unparseable": int(scan.files["unparseable"].sum()), "streak_addresses": len(streaks)}))
"""

_QUEUE_ID = re.compile(r"\b[0-9A-F]{10}\b")
_ADDRESS = re.compile(r"([\w.+-]+)@")


PEAK = """
import json as _json, resource as _resource
print(_json.dumps({"peak_rss_mb": round(_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def child(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; its last stdout lines (JSON) plus wall/CPU time and its own peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code + PEAK, *args], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {}
    for line in done.stdout.strip().splitlines()[-2:]:
        if line.startswith("{"):
            out.update(json.loads(line))
    return {**out, "wall_s": round(wall, 1),   # peak_rss_mb: Linux reports ru_maxrss in KiB
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)}


def build(path: Path, contacts: int, logs: Path | None) -> dict | None:
    if path.exists():
        return None
    return child(BUILD, str(path), str(contacts), str(logs) if logs else "-")


def make_log(source: Path, target: Path, lines: int) -> int:
    """Write `lines` lines to `target`: each line of `source` repeated for as many copies as needed, each
    copy with its own queue ids and addresses, so the result stays in time order (a bigger list)."""
    template = source.read_text(encoding="utf-8").splitlines(keepends=True)
    copies = -(-lines // len(template))
    tags = [f"{copy:03X}"[-3:] for copy in range(copies)]
    written = 0
    with open(target, "w", encoding="utf-8") as out:
        for line in template:
            for copy, tag in enumerate(tags):
                if written >= lines:
                    return written
                copied = _QUEUE_ID.sub(lambda m: tag + m.group(0)[3:], line)
                out.write(_ADDRESS.sub(lambda m: f"{m.group(1)}.c{copy}@", copied))
                written += 1
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--log-lines", type=int, nargs="*", default=[10_000_000])
    parser.add_argument("--work", type=Path, default=None, help="folder for the demo databases and logs (kept)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_hygiene_"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for contacts in args.contacts:
        db = work / f"hygiene_{contacts}.sqlite"
        built = build(db, contacts, None)
        if built:
            results.append({"step": "build demo (not timed as audit)", "contacts": contacts, **built})
        results.append({"step": "audit", "contacts": contacts, **child(AUDIT, str(db))})
        print(json.dumps(results[-1]), flush=True)
    if args.log_lines:
        small = work / "hygiene_log_source.sqlite"
        build(small, 3000, work / "log_source")
        for lines in args.log_lines:
            log = work / f"maillog_{lines}"
            if not log.exists():
                started = time.perf_counter()
                make_log(work / "log_source" / "maillog", log, lines)
                print(json.dumps({"step": "make log", "lines": lines,
                                  "wall_s": round(time.perf_counter() - started, 1),
                                  "mb": round(log.stat().st_size / 2**20)}), flush=True)
            results.append({"step": "read log", "file_mb": round(log.stat().st_size / 2**20), **child(LOG, str(log))})
            print(json.dumps(results[-1]), flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
