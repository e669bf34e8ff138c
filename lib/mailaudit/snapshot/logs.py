"""The mail server's and the web server's logs, parsed once into snapshot tables.

Every report reads the same rows: ``logs.delivery_events`` (one row per recipient per delivery
attempt the mail server logged) and ``logs.tracking_hits`` (one row per pixel or click request whose
tag decoded to a sender recipient), plus what each file held (``logs.delivery_files``, and the
access logs' counts in the manifest). Classification (bounce classes, mail clients) happens in the
model, so a newer kit re-reads the same events with its newer rules.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pyarrow as pa

from mailaudit.sources import access_logs, delivery_logs

BATCH_ROWS = 200_000

DELIVERY_COLUMNS = {
    "time": pa.timestamp("us"), "email": pa.string(), "status": pa.string(), "dsn": pa.string(),
    "smtp_code": pa.int32(), "text": pa.string(), "queue_id": pa.string(), "message_id": pa.string(),
    "file": pa.string(),
}
HIT_COLUMNS = {"time": pa.timestamp("s"), "recipient_id": pa.int64(), "kind": pa.string(), "ip": pa.string(),
               "user_agent": pa.string(), "status": pa.int32()}


def _create(con, table: str, columns: dict[str, pa.DataType]) -> None:
    empty = pa.table({name: pa.array([], type=kind) for name, kind in columns.items()})
    con.register("_empty", empty)
    con.execute(f"CREATE TABLE logs.{table} AS SELECT * FROM _empty")
    con.unregister("_empty")


def _append(con, table: str, columns: dict[str, pa.DataType], values: dict[str, list]) -> None:
    batch = pa.table({name: pa.array(values[name], type=kind) for name, kind in columns.items()})
    con.register("_batch", batch)
    con.execute(f"INSERT INTO logs.{table} SELECT * FROM _batch")
    con.unregister("_batch")
    for column in values.values():
        column.clear()


def load_delivery_logs(con, paths: list[Path]) -> list[dict]:
    """Parse the delivery logs into logs.delivery_events; returns what each file held. Years of
    year-less stamps come from the files themselves, never from the report period."""
    _create(con, "delivery_events", DELIVERY_COLUMNS)
    reader = delivery_logs.DeliveryLogReader(paths)
    values: dict[str, list] = {name: [] for name in DELIVERY_COLUMNS}
    names = list(DELIVERY_COLUMNS)
    fields = ("time", "email", "status", "dsn", "smtp_code", "text", "queue_id", "message_id", "source")
    for event in reader.events():
        for name, field in zip(names, fields):
            values[name].append(getattr(event, field))
        if len(values["time"]) >= BATCH_ROWS:
            _append(con, "delivery_events", DELIVERY_COLUMNS, values)
    _append(con, "delivery_events", DELIVERY_COLUMNS, values)
    files = [{key: value for key, value in asdict(stats).items()} for stats in reader.stats]
    con.execute("CREATE TABLE logs.delivery_files (file VARCHAR, format VARCHAR, lines BIGINT, events BIGINT, "
                "unparseable BIGINT, truncated_lines BIGINT, undecodable_lines BIGINT, read_error VARCHAR, "
                "year_source VARCHAR)")
    for stats in files:
        con.execute("INSERT INTO logs.delivery_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [stats["path"], stats["format"], stats["lines"], stats["events"], stats["unparseable"],
                     stats["truncated_lines"], stats["undecodable_lines"], stats["read_error"], stats["year_source"]])
    return files


def load_access_logs(con, paths: list[Path]) -> dict:
    """Parse the access logs' sender pixel and click hits into logs.tracking_hits; returns the counts."""
    _create(con, "tracking_hits", HIT_COLUMNS)
    stats = access_logs.ScanStats()
    values: dict[str, list] = {name: [] for name in HIT_COLUMNS}
    time, rid, kind, ip, ua, status = (values[n] for n in HIT_COLUMNS)
    for hit in access_logs.iter_tracking_hits(paths, stats):
        time.append(hit.timestamp)
        rid.append(hit.recipient_id)
        kind.append(hit.kind)
        ip.append(hit.ip)
        ua.append(hit.user_agent)
        status.append(hit.status)
        if len(time) >= BATCH_ROWS:
            _append(con, "tracking_hits", HIT_COLUMNS, values)
    _append(con, "tracking_hits", HIT_COLUMNS, values)
    return stats.as_dict()
