"""Benchmark of the conversion analysis on a snapshot: wall time and peak memory.

    # a snapshot of a big demo (e.g. `mailaudit demo-db --contacts 1000000`, then `mailaudit snapshot`)
    python benchmarks/bench_conversion.py /work/bench/demo1m.duckdb

    # the same with four more date-shifted copies of every order (a 1M-contact demo has ~0.2M orders)
    python benchmarks/bench_conversion.py /work/bench/demo1m.duckdb --order-copies 4

The period defaults to the snapshot's own. Prints the row counts that matter (recipient rows, reads,
clicks, orders, contacts), the wall and CPU time of `analyse_conversion` and the process's peak resident
memory (resource.getrusage, Linux: KiB) before and after the run. The snapshot's engine is capped at its
memory limit (`open_snapshot`) and spills to disk beyond it. With --order-copies the snapshot is copied to a
scratch file first and its model rebuilt there; the given snapshot is not changed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from mailaudit.analyses.conversion import analyse_conversion
from mailaudit.model.build import build_model
from mailaudit.period import Period
from mailaudit.snapshot.store import open_snapshot, read_manifest

TABLES = ("b_sender_posting_recipient", "b_sender_posting_read", "b_sender_posting_click", "b_sale_order",
          "b_sender_contact")


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


ORDER_COPY_OFFSET = 100_000_000


def with_order_copies(snapshot: Path, copies: int, folder: Path) -> Path:
    """A scratch copy of `snapshot` with `copies` more copies of every store order and its CRM-contact link,
    each moved by -30..+30 days (benchmark scale only), and its model rebuilt."""
    target = folder / snapshot.name
    shutil.copyfile(snapshot, target)
    con = duckdb.connect(str(target))
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET memory_limit = '1GB'")
        for k in range(1, copies + 1):
            offset, shift = k * ORDER_COPY_OFFSET, f"INTERVAL (((ID * 7 + {k * 13}) % 61) - 30) DAY"
            con.execute(f"""INSERT INTO raw.b_sale_order BY NAME
                SELECT * REPLACE (ID + {offset} AS ID, DATE_INSERT + {shift} AS DATE_INSERT)
                FROM raw.b_sale_order WHERE ID < {ORDER_COPY_OFFSET}""")
            con.execute(f"""INSERT INTO raw.b_crm_order_contact_company BY NAME
                SELECT * REPLACE (ID + {offset} AS ID, ORDER_ID + {offset} AS ORDER_ID)
                FROM raw.b_crm_order_contact_company WHERE ORDER_ID < {ORDER_COPY_OFFSET}""")
        build_model(con, read_manifest(con))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot", type=Path, help="a snapshot file (mailaudit snapshot --out PATH)")
    parser.add_argument("--start", type=date.fromisoformat, help="period start (default: the snapshot's)")
    parser.add_argument("--end", type=date.fromisoformat, help="period end (default: the snapshot's)")
    parser.add_argument("--contacts-per-chunk", type=int, default=50_000)
    parser.add_argument("--order-copies", type=int, default=0,
                        help="add this many date-shifted copies of every order, in a scratch copy of the snapshot")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_conversion_") as scratch:
        path = args.snapshot
        if args.order_copies:   # in a child process, so that its memory is not counted
            path = Path(scratch) / args.snapshot.name
            child = multiprocessing.get_context("spawn").Process(
                target=with_order_copies, args=(args.snapshot, args.order_copies, Path(scratch)))
            child.start()
            child.join()
            if child.exitcode:
                raise SystemExit(f"adding order copies failed (exit code {child.exitcode})")
        return run(path, args)


def run(path: Path, args) -> int:
    model = open_snapshot(path)
    period = Period(args.start or date.fromisoformat(model.manifest["period"]["start"]),
                    args.end or date.fromisoformat(model.manifest["period"]["end"]))
    print("rows:", json.dumps({t: model.scalar(f'SELECT count(*) FROM raw."{t}"') for t in TABLES}))
    before = peak_rss_mib()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    result = analyse_conversion(model, period, contacts_per_chunk=args.contacts_per_chunk)
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    after = peak_rss_mib()
    model.close()
    f = result.figures
    print(f"analyse_conversion: {elapsed:,.1f} s wall, {cpu:,.1f} s CPU; peak RSS {after:,.0f} MiB "
          f"(after opening the snapshot {before:,.0f} MiB)")
    print(f"delivered {f['delivered']:,}, converted {f['converted']:,}, revenue {f['revenue']:,.2f}, "
          f"baseline lift {f['baseline']['lift']}, period {period.label}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
