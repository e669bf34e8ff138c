"""Benchmark of the snapshot and of every report run from it, against a MariaDB portal with the older index set.

    export BENCH_DB_URL=mysql://root@127.0.0.1:3306/mailaudit_bench
    python benchmarks/bench_snapshot.py --url-env BENCH_DB_URL --contacts 1000000 [--build] [--reports]
                                        [--delivery-log FILE --access-log FILE]

--build fills the database with the demo generator (same seed, same data as the SQLite demo) and drops
the secondary indexes newer Bitrix versions add (RECIPIENT_ID on clicks and unsubscribes, CONTACT_ID on
recipients), so the source is shaped like an older portal. Then:
- `mailaudit snapshot` is timed: wall and CPU time of this process, peak resident memory (of this process,
  and summed with the log-parsing workers), the longest
  single statement the source ran, and the MariaDB server's own CPU time over the extraction (from
  /proc of the mariadbd process);
- with --reports, `mailaudit run` of all five reports from that snapshot (database.snapshot), in a
  subprocess: wall time and the peak of the summed resident memory of the runner and its notebook
  kernels (sampled every 0.2 s; reports run side by side).
With --delivery-log and --access-log the snapshot also parses those logs (e.g. the first 10M lines of the
demo's maillog). One JSON line of figures is printed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

NEWER_INDEXES = {"b_sender_posting_click": ("RECIPIENT_ID",), "b_sender_posting_unsub": ("RECIPIENT_ID",),
                 "b_sender_posting_recipient": ("CONTACT_ID",)}


def drop_newer_indexes(url) -> list[str]:
    dropped = []
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table, columns in NEWER_INDEXES.items():
            for name, indexed in conn.execute(text(
                    "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND INDEX_NAME <> 'PRIMARY' GROUP BY 1"),
                    {"t": table}).all():
                if tuple(indexed.upper().split(",")) == columns:
                    conn.execute(text(f"DROP INDEX `{name}` ON `{table}`"))
                    dropped.append(f"{table}.{name}")
    engine.dispose()
    return dropped


def server_cpu_seconds() -> float | None:
    """utime + stime of the local mariadbd process (None when it is not visible here)."""
    try:
        pid = subprocess.run(["pidof", "mariadbd"], capture_output=True, text=True, check=True).stdout.split()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, subprocess.CalledProcessError):
        return None


class TreeMemory(threading.Thread):
    """Samples, every 0.2 s until `stop`, the resident memory of a process and its descendants: the peak of
    their sum (log parsers and report kernels are processes of their own, so the largest single process is
    not the machine's cost) and the largest single process's."""

    def __init__(self, pid: int):
        import psutil

        super().__init__(daemon=True)
        self.root, self.peak, self.largest, self.done = psutil.Process(pid), 0, 0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.done.is_set():
            total = 0
            try:
                for member in [self.root, *self.root.children(recursive=True)]:
                    rss = member.memory_info().rss
                    total += rss
                    self.largest = max(self.largest, rss)
            except psutil.Error:   # a process ended between listing and reading
                pass
            self.peak = max(self.peak, total)
            self.done.wait(0.2)

    def stop(self) -> tuple[int, int]:
        self.done.set()
        self.join()
        return self.peak, self.largest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url-env", required=True)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--delivery-log", type=Path, help="a Postfix/Exim/msmtp log to parse into the snapshot")
    parser.add_argument("--access-log", type=Path, help="a web-server access log to parse into the snapshot")
    parser.add_argument("--reports", action="store_true", help="also run every report from the snapshot")
    parser.add_argument("--parallel-reports", type=int, default=2, help="run.parallel_reports of the reports' run")
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/out/snapshot"))
    args = parser.parse_args(argv)

    url = make_url(os.environ[args.url_env]).set(drivername="mysql+pymysql")
    args.workdir.mkdir(parents=True, exist_ok=True)
    figures = {"contacts": args.contacts}
    if args.build:
        from mailaudit.demo import build_demo

        started = time.perf_counter()
        build_demo(url=url.render_as_string(hide_password=False), contacts=args.contacts, seed=args.seed,
                   truth_path=args.workdir / "truth.json")
        figures["build_seconds"] = round(time.perf_counter() - started, 1)
    figures["dropped_indexes"] = drop_newer_indexes(url)

    params = {"client": "Benchmark", "period": {"start": "2025-10-01", "end": "2026-09-30"},
              "database": {"url_env": args.url_env}}
    logs = {kind: [str(path.resolve())] for kind, path in (("delivery", args.delivery_log), ("access", args.access_log))
            if path is not None}
    if logs:
        params["logs"] = logs
    source_params = args.workdir / "source.yaml"
    source_params.write_text(yaml.safe_dump(params))
    snapshot = (args.workdir / "bench.duckdb").resolve()

    from mailaudit.report.params import load_params
    from mailaudit.snapshot.extract import extract_snapshot

    cpu_before, server_before = time.process_time(), server_cpu_seconds()
    started = time.perf_counter()
    memory = TreeMemory(os.getpid())
    memory.start()
    manifest = extract_snapshot(load_params(source_params), snapshot, progress=True)
    peak, largest = memory.stop()
    figures["snapshot_tree_peak_rss_mib"] = round(peak / 2**20)
    figures["snapshot_seconds"] = round(time.perf_counter() - started, 1)
    figures["snapshot_cpu_seconds"] = round(time.process_time() - cpu_before, 1)
    server_after = server_cpu_seconds()
    if server_before is not None and server_after is not None:
        figures["source_cpu_seconds"] = round(server_after - server_before, 1)
    figures["snapshot_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    figures["longest_source_statement_seconds"] = manifest["longest_statement_seconds"]
    figures["source_statements"] = manifest["source_statements"]
    figures["recipient_rows"] = manifest["tables"]["b_sender_posting_recipient"]["rows"]
    figures["snapshot_mib"] = round(snapshot.stat().st_size / 2**20)

    if args.reports:
        run_params = args.workdir / "from-snapshot.yaml"
        run_params.write_text(yaml.safe_dump({**params, "database": {"snapshot": str(snapshot)},
                                              "run": {"parallel_reports": args.parallel_reports}}))
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "mailaudit.cli", "run", "--params", str(run_params),
                                    "--out", str(args.workdir / "reports")])
        memory = TreeMemory(process.pid)
        memory.start()
        process.wait()
        peak, largest = memory.stop()
        figures["reports_seconds"] = round(time.perf_counter() - started, 1)
        figures["reports_exit"] = process.returncode
        figures["reports_peak_rss_mib"] = round(peak / 2**20)
        figures["reports_largest_process_rss_mib"] = round(largest / 2**20)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
