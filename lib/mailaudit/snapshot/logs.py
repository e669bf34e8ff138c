"""The mail server's and the web server's logs, parsed once into snapshot tables.

The logs are parsed in worker processes while the database is read (`LogParsing`). Every report
reads the same rows: ``logs.delivery_events`` (one row per recipient per delivery
attempt the mail server logged) and ``logs.tracking_hits`` (one row per pixel or click request whose
tag decoded to a sender recipient), plus what each file held (``logs.delivery_files``, and the
access logs' counts in the manifest). Classification (bounce classes, mail clients) happens in the
model, so a newer kit re-reads the same events with its newer rules.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mailaudit.sources import access_logs, delivery_logs

BATCH_ROWS = 200_000
IN_PROCESS_BYTES = 64 * 2**20   # logs smaller than this in all are parsed in the extracting process


def _total_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += Path(path).stat().st_size
        except OSError:   # the reader reports an unreadable file in its own counts
            pass
    return total

DELIVERY_COLUMNS = {
    "time": pa.timestamp("us"), "email": pa.string(), "status": pa.string(), "dsn": pa.string(),
    "smtp_code": pa.int32(), "text": pa.string(), "queue_id": pa.string(), "message_id": pa.string(),
    "file": pa.string(),
}
HIT_COLUMNS = {"time": pa.timestamp("s"), "recipient_id": pa.int64(), "kind": pa.string(), "ip": pa.string(),
               "user_agent": pa.string(), "status": pa.int32()}


class _ParquetSink:
    """Rows appended column by column, written as Parquet row groups of BATCH_ROWS rows."""

    def __init__(self, path: Path, columns: dict[str, pa.DataType]):
        self.path, self.columns = path, columns
        self.values: dict[str, list] = {name: [] for name in columns}
        self.writer = pq.ParquetWriter(path, pa.schema(list(columns.items())))

    def flush(self) -> None:
        self.writer.write_table(pa.table({name: pa.array(self.values[name], type=kind)
                                          for name, kind in self.columns.items()}))
        for column in self.values.values():
            column.clear()

    def close(self) -> Path:
        self.flush()
        self.writer.close()
        return self.path


def parse_delivery_logs(paths: list[Path], folder: Path) -> tuple[Path, list[dict]]:
    """Parse the delivery logs into a Parquet file in `folder`; returns it and what each file held. Years
    of year-less stamps come from the files themselves, never from the report period."""
    reader = delivery_logs.DeliveryLogReader(paths)
    sink = _ParquetSink(Path(folder) / "delivery_events.parquet", DELIVERY_COLUMNS)
    columns = [sink.values[name] for name in DELIVERY_COLUMNS]
    fields = ("time", "email", "status", "dsn", "smtp_code", "text", "queue_id", "message_id", "source")
    for event in reader.events():
        for column, name in zip(columns, fields):
            column.append(getattr(event, name))
        if len(columns[0]) >= BATCH_ROWS:
            sink.flush()
    return sink.close(), [asdict(stats) for stats in reader.stats]


def parse_access_logs(paths: list[Path], folder: Path) -> tuple[Path, dict]:
    """Parse the access logs' sender pixel and click hits into a Parquet file in `folder`; returns it and
    the counts."""
    stats = access_logs.ScanStats()
    sink = _ParquetSink(Path(folder) / "tracking_hits.parquet", HIT_COLUMNS)
    time, rid, kind, ip, ua, status = (sink.values[n] for n in HIT_COLUMNS)
    for hit in access_logs.iter_tracking_hits(paths, stats):
        time.append(hit.timestamp)
        rid.append(hit.recipient_id)
        kind.append(hit.kind)
        ip.append(hit.ip)
        ua.append(hit.user_agent)
        status.append(hit.status)
        if len(time) >= BATCH_ROWS:
            sink.flush()
    return sink.close(), stats.as_dict()


class LogParsing:
    """The delivery and access logs parsed in two worker processes while the source database is read
    (parsing is pure Python, bound to one core each; the database extraction waits mostly on the
    server and on the Arrow reader), then loaded into the snapshot's ``logs`` schema.

    Workers are spawned, not forked: the parent holds database and engine threads by then. The parsed
    rows pass through Parquet files in `folder`, which the caller keeps private and removes."""

    def __init__(self, delivery: list[Path], access: list[Path], folder: Path):
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing

        self.delivery, self.access, self.folder = list(delivery), list(access), folder
        self.pool = None
        self.futures = {}
        jobs = {"delivery": (parse_delivery_logs, self.delivery), "access": (parse_access_logs, self.access)}
        self.jobs = {kind: job for kind, job in jobs.items() if job[1]}
        if self.jobs and _total_bytes(self.delivery + self.access) >= IN_PROCESS_BYTES:
            self.pool = ProcessPoolExecutor(max_workers=len(self.jobs), mp_context=multiprocessing.get_context("spawn"))
            self.futures = {kind: self.pool.submit(parse, paths, folder) for kind, (parse, paths) in self.jobs.items()}

    def _result(self, kind: str, empty):
        if kind in self.futures:
            return self.futures[kind].result()
        if kind in self.jobs:   # small logs: parsed here, a worker would cost more than it saves
            parse, paths = self.jobs[kind]
            return parse(paths, self.folder)
        return None, empty

    def load(self, con) -> dict:
        """Wait for the workers and create logs.delivery_events, logs.delivery_files and logs.tracking_hits;
        returns the manifest's ``logs`` entry."""
        try:
            delivery, files = self._result("delivery", [])
            access, hits = self._result("access", access_logs.ScanStats().as_dict())
        finally:
            self.close()
        _create(con, "delivery_events", DELIVERY_COLUMNS, delivery)
        _create(con, "tracking_hits", HIT_COLUMNS, access)
        con.execute("CREATE TABLE logs.delivery_files (file VARCHAR, format VARCHAR, lines BIGINT, events BIGINT, "
                    "unparseable BIGINT, truncated_lines BIGINT, undecodable_lines BIGINT, read_error VARCHAR, "
                    "year_source VARCHAR)")
        for stats in files:
            con.execute("INSERT INTO logs.delivery_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [stats["path"], stats["format"], stats["lines"], stats["events"], stats["unparseable"],
                         stats["truncated_lines"], stats["undecodable_lines"], stats["read_error"],
                         stats["year_source"]])
        return {"delivery": {"files": [str(p) for p in self.delivery], "stats": files},
                "access": {"files": [str(p) for p in self.access], "stats": hits}}

    def close(self) -> None:
        """Stop the workers (at once when the extraction failed or was interrupted)."""
        if self.pool is not None:
            for future in self.futures.values():
                future.cancel()
            for process in list(getattr(self.pool, "_processes", {}).values()):
                if process.is_alive() and not all(f.done() for f in self.futures.values()):
                    process.terminate()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _create(con, table: str, columns: dict[str, pa.DataType], parquet: Path | None) -> None:
    """logs.<table> from a parsed Parquet file, or empty with the same columns."""
    if parquet is None:
        con.register("_empty", pa.table({name: pa.array([], type=kind) for name, kind in columns.items()}))
        con.execute(f"CREATE TABLE logs.{table} AS SELECT * FROM _empty")
        con.unregister("_empty")
    else:
        con.execute(f"CREATE TABLE logs.{table} AS SELECT * FROM read_parquet(?)", [str(parquet)])
