"""Benchmark of the segments analysis on a snapshot: wall time, CPU time and peak memory of this process.

Make the snapshot first (`mailaudit snapshot --params FILE --out PATH`, e.g. of the 1M-contact demo), then

    python benchmarks/bench_segments.py --snapshot PATH [--start 2025-10-01 --end 2026-09-30] [--human-opens]

The period defaults to the one the snapshot was made for. All five dimensions are counted and tested,
database route (no access log needed). With --human-opens the period's contacts are first classified
for the human open rate per segment (opens.classify_contacts on the model), as the report does by default.
Peak memory is this process's maximum resident set size (resource.getrusage), DuckDB included: it runs
in-process, capped by the snapshot's memory limit. The numbers are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date

from mailaudit.analyses import opens
from mailaudit.analyses.segments import SegmentSettings, analyse_segments
from mailaudit.period import Period
from mailaudit.snapshot.store import open_snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", required=True, help="path of a snapshot made by `mailaudit snapshot`")
    parser.add_argument("--start", type=date.fromisoformat)
    parser.add_argument("--end", type=date.fromisoformat)
    parser.add_argument("--min-delivered", type=int, default=500)
    parser.add_argument("--human-opens", action="store_true", help="also estimate the human open rate per segment")
    args = parser.parse_args(argv)

    opened = time.perf_counter()
    model = open_snapshot(args.snapshot)
    made_for = model.manifest["period"]
    period = Period(args.start or date.fromisoformat(made_for["start"]), args.end or date.fromisoformat(made_for["end"]))
    sends, delivered = model.con.execute(
        "SELECT count(*), count(*) FILTER (WHERE delivered AND sent_at >= $start AND sent_at < $end) FROM sends",
        {"start": period.start_dt, "end": period.end_exclusive}).fetchone()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    evidence = opens.classify_contacts(model, period, {"scanner_seconds": 10}) if args.human_opens else None
    classified = time.perf_counter()
    result = analyse_segments(model, period, SegmentSettings(min_delivered=args.min_delivered,
                                                             human_opens=evidence is not None), evidence)
    finished = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "snapshot": str(args.snapshot),
        "period": period.label,
        "sends": int(sends),
        "delivered_in_period": int(delivered),
        "dimensions": int(result.metrics["dimension"].nunique()) if len(result.metrics) else 0,
        "comparisons": int(len(result.differences)),
        "open_seconds": round(started - opened, 1),
        "classify_seconds": None if evidence is None else round(classified - started, 1),
        "segments_seconds": round(finished - classified, 1),
        "analysis_seconds": round(finished - started, 1),
        "analysis_cpu_seconds": round(_cpu_seconds() - cpu_before, 1),
        "peak_rss_mib_before_analysis": round(rss_before / 1024, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }))
    model.close()
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
