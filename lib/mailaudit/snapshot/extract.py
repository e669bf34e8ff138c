"""Source -> snapshot: read what the reports need with plain single-table SELECTs, parse the logs, build the model.

What the source sees, and nothing else (a test records every statement):
- catalog reads to reflect the tables, their columns and primary keys, and the server's version and
  character set;
- per table, ``SELECT MIN(key), MAX(key) FROM t`` and then ``SELECT <columns> FROM t WHERE key
  BETWEEN a AND b [AND <fixed filter>]`` over consecutive key ranges (``SELECT MIN(key) FROM t WHERE
  key > b`` jumps over an empty gap); tables without an integer key in one ``SELECT <columns> FROM t``.
Every session is read-only with a server-side time limit. A range that times out is split and read
again; a lost connection is retried with backoff from the range it stopped at. The range width adapts
so that a statement returns about `chunk_rows` rows and runs a few seconds at most.

The snapshot is written to a hidden file beside its target and renamed into place only when complete;
it is readable by its owner only, since it holds the client's addresses.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import inspect, text
from sqlalchemy import types as sqltypes

import mailaudit
from mailaudit.bitrix.schema import CORE_TABLES, _charset
from mailaudit.snapshot import logs as snapshot_logs
from mailaudit.snapshot.plan import TABLES, TableSpec, Window, snapshot_window, with_custom_columns
from mailaudit.snapshot.readers import ConnectorXReader, DbapiReader, SourceReadError, with_retries
from mailaudit.sources.db import create_readonly_engine, describe_source, mysql_flavour, resolve_database_url

SNAPSHOT_FORMAT = 2
"""Version of the raw tables' layout; a snapshot of another format is refused with a clear message."""

MIN_RANGE = 1_000
TARGET_STATEMENT_SECONDS = 3.0


class SnapshotError(RuntimeError):
    """The snapshot cannot be made or used; one line, no secret."""


@dataclass(frozen=True)
class SnapshotSettings:
    """The `snapshot` parameter section."""

    statement_timeout_seconds: float = 60
    chunk_rows: int = 250_000
    parallel_reads: int = 2
    retries: int = 5
    memory_mb: int = 1024

    @classmethod
    def from_params(cls, section: dict | None) -> "SnapshotSettings":
        section = {k: v for k, v in (section or {}).items() if k in cls.__dataclass_fields__}
        return cls(**section)


@dataclass
class SourceTable:
    """A planned table as the source has it."""

    spec: TableSpec
    actual: str
    columns: dict[str, tuple[str, str]]   # Bitrix (upper-case) name -> (name in the source, snapshot type)
    missing: list[str]
    key: str | None
    stats: dict = field(default_factory=dict)


def _snapshot_type(column_type) -> str:
    if isinstance(column_type, sqltypes.Integer):
        return "BIGINT"
    if isinstance(column_type, (sqltypes.Numeric, sqltypes.Float)):
        return "DOUBLE"
    if isinstance(column_type, sqltypes.DateTime):
        return "TIMESTAMP"
    if isinstance(column_type, sqltypes.Date):
        return "DATE"
    return "VARCHAR"


def declared_types() -> dict[str, dict[str, str]]:
    """Snapshot type of every column the kit's own Bitrix table definitions declare (both layouts). A
    planned column has this type whatever the source declares, so every engine gives the same snapshot."""
    from mailaudit.bitrix.tables import LAYOUTS, bitrix_metadata

    types: dict[str, dict[str, str]] = {}
    for layout in LAYOUTS:
        for name, table in bitrix_metadata(layout).tables.items():
            for column in table.columns:
                types.setdefault(name, {})[column.key] = _snapshot_type(column.type)
    return types


DECLARED_TYPES = declared_types()


def reflect_plan(conn, specs: tuple[TableSpec, ...]) -> tuple[list[SourceTable], list[str]]:
    """Which planned tables and columns the source has, and each table's integer key."""
    inspector = inspect(conn)
    declared = DECLARED_TYPES
    present = {name.lower(): name for name in inspector.get_table_names()}
    tables, absent = [], []
    for spec in specs:
        actual = present.get(spec.name)
        if actual is None:
            absent.append(spec.name)
            continue
        reflected = {c["name"].upper(): (c["name"], _snapshot_type(c["type"]))
                     for c in inspector.get_columns(actual)}
        known = declared.get(spec.name, {})
        columns = {name: (reflected[name][0], known.get(name, reflected[name][1]))
                   for name in spec.columns if name in reflected}
        missing = [name for name in spec.columns if name not in reflected]
        key = spec.key if spec.key in reflected and reflected[spec.key][1] == "BIGINT" else None
        pk = [c.upper() for c in inspector.get_pk_constraint(actual).get("constrained_columns") or []]
        if key is not None and pk and pk[0] != key:
            key = None   # ranges must walk the primary key's first column, or each one scans the table
        tables.append(SourceTable(spec, actual, columns, missing, key))
    return tables, absent


class Statements:
    """The only SQL the kit sends to a source (besides catalog reflection and session settings)."""

    def __init__(self, dialect):
        self._quote = dialect.identifier_preparer.quote_identifier

    @staticmethod
    def literal(value) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    def _from(self, table: SourceTable) -> str:
        return f"FROM {self._quote(table.actual)}"

    def _column(self, table: SourceTable, name: str) -> str:
        return self._quote(table.columns[name][0])

    def rows(self, table: SourceTable, conditions: list[str]) -> str:
        columns = ", ".join(f"{self._column(table, name)} AS {self._quote(name)}" for name in table.columns)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"SELECT {columns} {self._from(table)}{where}"

    def key_range(self, table: SourceTable, low: int, high: int) -> str:
        return f"{self._column(table, table.key)} BETWEEN {low} AND {high}"

    def key_bounds(self, table: SourceTable) -> str:
        key = self._column(table, table.key)
        return f"SELECT MIN({key}) AS lo, MAX({key}) AS hi {self._from(table)}"

    def next_key(self, table: SourceTable, after: int) -> str:
        key = self._column(table, table.key)
        return f"SELECT MIN({key}) AS lo {self._from(table)} WHERE {key} > {after}"

    def one_of(self, table: SourceTable, name: str, values) -> str:
        return f"{self._column(table, name)} IN ({', '.join(self.literal(v) for v in values)})"

    def at_or_after(self, table: SourceTable, name: str, when: dt.datetime) -> str:
        return f"{self._column(table, name)} >= {self.literal(when.strftime('%Y-%m-%d %H:%M:%S'))}"


@contextmanager
def _private_files():
    """Files created inside are readable by their owner only (the snapshot holds personal data)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


class _Progress:
    """Per table on stderr: rows, rows/s and the ETA from the share of the key range read -- a live bar on
    a terminal, one line per table otherwise (a log file or a scheduled run)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.name = None

    def start(self, name: str, total: int):
        self.name, self.rows, self.started = name, 0, time.monotonic()
        if self.enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=max(total, 1), desc=f"{name:<30}", unit="key", file=sys.stderr, leave=True,
                            bar_format="{desc} {percentage:3.0f}%|{bar:20}| {postfix} [{elapsed}<{remaining}]")

    def advance(self, keys: int, rows: int):
        self.rows += rows
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.rows:,} rows, {self._rate():,.0f} rows/s", refresh=False)
            self.bar.update(keys)

    def _rate(self) -> float:
        return self.rows / max(time.monotonic() - self.started, 1e-6)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.name is not None:
            print(f"{self.name:<30} {self.rows:>12,} rows  {time.monotonic() - self.started:6.1f} s  "
                  f"{self._rate():>10,.0f} rows/s", file=sys.stderr, flush=True)
        self.name = None


class Extractor:
    """Copies the planned tables of one source into a DuckDB connection (see the module docstring)."""

    def __init__(self, reader, statements: Statements, con: duckdb.DuckDBPyConnection, settings: SnapshotSettings,
                 progress: _Progress):
        self.reader, self.sql, self.con, self.settings, self.progress = reader, statements, con, settings, progress
        self.longest_statement = 0.0
        self.statements = 0
        self.retries = 0     # reads tried again after a lost connection

    def _retried(self, attempt: int, exc: SourceReadError) -> None:
        self.retries += 1

    def _read(self, statements: list[str]) -> pa.Table:
        started = time.monotonic()
        table = with_retries(self.reader.read, statements, self.settings.retries, on_retry=self._retried)
        self.longest_statement = max(self.longest_statement, time.monotonic() - started)
        self.statements += len(statements)
        return table

    def _scalar_row(self, statement: str) -> list:
        table = self._read([statement])
        return [table.column(i)[0].as_py() if table.num_rows else None for i in range(table.num_columns)]

    @staticmethod
    def snapshot_type(table: SourceTable, name: str) -> str:
        if name in table.columns:
            return table.columns[name][1]
        return DECLARED_TYPES.get(table.spec.name, {}).get(name, "VARCHAR")

    def create(self, table: SourceTable) -> None:
        columns = ", ".join(f'"{name}" {self.snapshot_type(table, name)}' for name in table.spec.columns)
        self.con.execute(f'CREATE TABLE raw."{table.spec.name}" ({columns})')

    def _insert(self, table: SourceTable, chunk: pa.Table) -> int:
        if chunk.num_rows == 0:
            return 0
        chunk = chunk.rename_columns([name.upper() for name in chunk.column_names])
        selected, unreadable = [], []
        for name in table.spec.columns:
            kind = self.snapshot_type(table, name)
            if name not in table.columns:
                selected.append(f'NULL::{kind} AS "{name}"')
                continue
            selected.append(f'TRY_CAST("{name}" AS {kind}) AS "{name}"')
            if kind != "VARCHAR" and (pa.types.is_string(chunk.schema.field(name).type)
                                      or pa.types.is_large_string(chunk.schema.field(name).type)):
                unreadable.append(name)
        self.con.register("_chunk", chunk)
        try:
            if unreadable:   # text the snapshot type cannot hold (a MySQL zero date, say): counted, kept NULL
                counts = self.con.execute("SELECT " + ", ".join(
                    f'count("{n}") - count(TRY_CAST("{n}" AS {table.columns[n][1]}))' for n in unreadable)
                    + " FROM _chunk").fetchall()[0]
                for name, count in zip(unreadable, counts):
                    if count:
                        table.stats.setdefault("unreadable_values", {}).setdefault(name, 0)
                        table.stats["unreadable_values"][name] += int(count)
            self.con.execute(f'INSERT INTO raw."{table.spec.name}" SELECT {", ".join(selected)} FROM _chunk')
        finally:
            self.con.unregister("_chunk")
        return chunk.num_rows

    def copy(self, table: SourceTable, conditions: list[str]) -> None:
        """Read the whole table (within `conditions`) into raw.<name>."""
        started, retries = time.monotonic(), self.retries
        self.create(table)
        rows = 0
        if table.key is None:
            self.progress.start(table.spec.name, 1)
            rows = self._insert(table, self._read([self.sql.rows(table, conditions)]))
            self.progress.advance(1, rows)
        else:
            rows = self._copy_ranges(table, conditions)
        self.progress.close()
        table.stats.update(rows=rows, seconds=round(time.monotonic() - started, 2), retries=self.retries - retries)

    def _copy_ranges(self, table: SourceTable, conditions: list[str]) -> int:
        low, high = self._scalar_row(self.sql.key_bounds(table))
        self.progress.start(table.spec.name, 0 if low is None else int(high) - int(low) + 1)
        if low is None:
            return 0
        low, high = int(low), int(high)
        width, parallel = self.settings.chunk_rows, max(1, self.settings.parallel_reads)
        rows, start = 0, low
        while start <= high:
            ranges = []
            for _ in range(parallel):
                if start > high:
                    break
                end = min(start + width - 1, high)
                ranges.append((start, end))
                start = end + 1
            began = time.monotonic()
            try:
                chunk = self._read([self.sql.rows(table, [self.sql.key_range(table, a, b), *conditions])
                                    for a, b in ranges])
            except SourceReadError as exc:
                if not exc.timed_out or width <= MIN_RANGE:
                    raise
                width, start = max(MIN_RANGE, width // 4), ranges[0][0]   # too slow for the time limit: split
                continue
            elapsed = time.monotonic() - began
            got = self._insert(table, chunk)
            rows += got
            scanned = ranges[-1][1] - ranges[0][0] + 1
            self.progress.advance(scanned, got)
            # aim at chunk_rows rows per statement, and a few seconds at most
            per_statement = got / len(ranges)
            scale = min(self.settings.chunk_rows / per_statement if per_statement else 4.0,
                        TARGET_STATEMENT_SECONDS / elapsed if elapsed > 0 else 4.0, 4.0)
            width = int(min(max(MIN_RANGE, width * scale), self.settings.chunk_rows * 8))
            if got == 0 and start <= high:   # an empty stretch of keys: jump to the next one that exists
                (following,) = self._scalar_row(self.sql.next_key(table, ranges[-1][1]))
                if following is None:
                    self.progress.advance(high - start + 1, 0)
                    break
                self.progress.advance(int(following) - start, 0)
                start = int(following)
        return rows


def window_postings(con: duckdb.DuckDBPyConnection, window: Window) -> list[int] | None:
    """IDs of the postings that may hold sends in `window` (None: every posting does). A posting is out
    only when it is known to have finished before the window or started after it (a day of slack each
    side, for sends dated a little off their posting)."""
    start = dt.datetime.combine(window.start, dt.time.min) - dt.timedelta(days=1)
    end = dt.datetime.combine(window.end, dt.time.min) + dt.timedelta(days=2)
    total, inside = con.execute(
        """SELECT count(*), count(*) FILTER (WHERE NOT (
               (DATE_SENT IS NOT NULL AND DATE_SENT < $start)
               OR (coalesce(DATE_SEND, DATE_CREATE) IS NOT NULL AND coalesce(DATE_SEND, DATE_CREATE) >= $end)))
           FROM raw.b_sender_posting""", {"start": start, "end": end}).fetchall()[0]
    if inside == total:
        return None
    return [row[0] for row in con.execute(
        """SELECT ID FROM raw.b_sender_posting WHERE NOT (
               (DATE_SENT IS NOT NULL AND DATE_SENT < $start)
               OR (coalesce(DATE_SEND, DATE_CREATE) IS NOT NULL AND coalesce(DATE_SEND, DATE_CREATE) >= $end))
           ORDER BY ID""", {"start": start, "end": end}).fetchall()]


def _server_version(conn) -> str | None:
    dialect = conn.dialect.name
    query = {"sqlite": "SELECT sqlite_version()", "postgresql": "SHOW server_version"}.get(dialect, "SELECT VERSION()")
    return str(conn.execute(text(query)).scalar())


def _layout(tables: list[SourceTable]) -> str:
    contact = next(t for t in tables if t.spec.name == "b_sender_contact")
    return "current" if {"TYPE_ID", "CODE"} <= set(contact.columns) else "legacy"


def extract_snapshot(params, out: Path, *, progress: bool = True, parquet_dir: Path | None = None,
                     workdir: Path | None = None) -> dict:
    """Write the snapshot of the portal `params` names to `out`; returns its manifest."""
    from mailaudit.model.build import build_model
    from mailaudit.snapshot.store import quiet
    from mailaudit.report.context import database_config

    settings = SnapshotSettings.from_params(getattr(params, "snapshot", None))
    url = resolve_database_url(database_config(params, workdir or Path.cwd()))
    window = snapshot_window(params.period, params.hygiene, params.conversion)
    specs = with_custom_columns(TABLES, params.segments.get("custom") or [])
    engine = create_readonly_engine(url, statement_timeout_seconds=settings.statement_timeout_seconds)
    started = time.monotonic()
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with engine.connect() as conn:
            tables, absent = reflect_plan(conn, specs)
            missing = [name for name in CORE_TABLES if name in absent]
            if missing:
                raise SnapshotError("not a Bitrix sender database: missing table(s) " + ", ".join(missing)
                                    + " (check that the parameters point at the portal's database)")
            dialect = conn.dialect.name
            version = _server_version(conn)
            source = {**describe_source(url), "layout": _layout(tables), "charset": _charset(conn),
                      "server_version": version}
        flavour = mysql_flavour(version) if dialect in ("mysql", "mariadb") else dialect
        reader = (ConnectorXReader(url, dialect, flavour, settings.statement_timeout_seconds)
                  if dialect in ("mysql", "mariadb", "postgresql") else DbapiReader(engine))
        with _private_files():
            parsed_logs = Path(tempfile.mkdtemp(prefix=f".{out.name}.logs-", dir=out.parent))
            parsing = con = None
            try:
                parsing = snapshot_logs.LogParsing(params.logs.get("delivery") or [], params.logs.get("access") or [],
                                                   parsed_logs)
                con = duckdb.connect(str(partial))
                con.execute(f"SET memory_limit = '{int(settings.memory_mb)}MB'")
                quiet(con)
                con.execute("SET preserve_insertion_order = false")
                for schema in ("raw", "logs"):
                    con.execute(f"CREATE SCHEMA {schema}")
                extractor = Extractor(reader, Statements(engine.dialect), con, settings, _Progress(progress))
                fallback = DbapiReader(engine, settings.parallel_reads)
                postings = None
                for table in tables:
                    conditions = [extractor.sql.one_of(table, column, values) for column, values in table.spec.filters]
                    if table.spec.rows == "window" and postings is not None:
                        conditions.append(extractor.sql.one_of(table, "POSTING_ID", postings or [0]))
                    if table.spec.rows == "since" and table.spec.date_column in table.columns:
                        conditions.append(extractor.sql.at_or_after(table, table.spec.date_column,
                                                                     dt.datetime.combine(window.start, dt.time.min)))
                    _copy_with_fallback(extractor, fallback, table, conditions)
                    if table.spec.name == "b_sender_posting":
                        postings = window_postings(con, window)
                for name in absent:   # empty, so that every model relation exists (the manifest says why)
                    extractor.create(SourceTable(next(s for s in specs if s.name == name), name, {}, [], None))
                log_files = parsing.load(con)
                manifest = {
                    "format": SNAPSHOT_FORMAT,
                    "kit_version": mailaudit.__version__,
                    "created_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "source": source,
                    "period": {"start": params.period.start.isoformat(), "end": params.period.end.isoformat()},
                    "window": {**window.as_dict(), "postings": "all" if postings is None else len(postings)},
                    "tables": {t.spec.name: {"rows": t.stats.get("rows", 0), "seconds": t.stats.get("seconds"),
                                             "columns": list(t.columns), "missing_columns": t.missing,
                                             "reader": t.stats.get("reader"), "retries": t.stats.get("retries", 0),
                                             "unreadable_values": t.stats.get("unreadable_values", {})}
                               for t in tables},
                    "absent_tables": absent,
                    "custom_columns": params.segments.get("custom") or [],
                    "logs": log_files,
                    "source_statements": extractor.statements,
                    "longest_statement_seconds": round(extractor.longest_statement, 3),
                }
                build_model(con, manifest)
                manifest["seconds"] = round(time.monotonic() - started, 2)
                con.execute("CREATE TABLE _manifest (manifest VARCHAR)")
                con.execute("INSERT INTO _manifest VALUES (?)", [json.dumps(manifest, ensure_ascii=False)])
                if parquet_dir is not None:
                    write_parquet(con, Path(parquet_dir))
                con.execute("CHECKPOINT")
            finally:
                if con is not None:
                    con.close()
                if parsing is not None:
                    parsing.close()
                shutil.rmtree(parsed_logs, ignore_errors=True)
        os.chmod(partial, 0o600)
        os.replace(partial, out)
        return manifest
    finally:
        engine.dispose()
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)


def _copy_with_fallback(extractor: Extractor, fallback: DbapiReader, table: SourceTable, conditions: list[str]) -> None:
    """Copy with the Arrow-native reader; a table it cannot decode is read again through the DB-API driver."""
    table.stats["reader"] = extractor.reader.name
    try:
        extractor.copy(table, conditions)
    except SourceReadError as exc:
        if exc.retryable or exc.timed_out or extractor.reader.name == fallback.name:
            raise SnapshotError(f"reading {table.spec.name} failed: {exc}") from None
        extractor.progress.close()
        extractor.con.execute(f'DROP TABLE raw."{table.spec.name}"')
        native, extractor.reader = extractor.reader, fallback
        try:
            table.stats = {"reader": fallback.name, "fallback_reason": str(exc)}
            extractor.copy(table, conditions)
        except SourceReadError as again:
            raise SnapshotError(f"reading {table.spec.name} failed: {again}") from None
        finally:
            extractor.reader = native


def write_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Every raw, log and model table as Parquet under `folder`: one directory per table
    (<schema>/<table>/part-0.parquet), the layout Spark, Trino's Hive connector and DuckDB read as a table."""
    written = []
    for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT starts_with(table_name, '_') "
            "ORDER BY 1, 2").fetchall():
        target = folder / schema / name / "part-0.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY {schema}.\"{name}\" TO '{target.as_posix()}' (FORMAT parquet)")
        written.append(target)
    return written
