"""Bulk loading of the demo tables: SQLite through the raw sqlite3 DBAPI, MariaDB/MySQL and PostgreSQL through SQLAlchemy.

Rows arrive as tuples in the table's column order; integer timestamps in DATETIME/DATE columns
are formatted here (vectorised) as naive local 'YYYY-MM-DD HH:MM:SS'.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from sqlalchemy import Date, DateTime, MetaData, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.schema import CreateIndex, CreateTable

CHUNK = 20_000
"""Rows per executemany batch on a server."""
PREPARE_ROWS = 100_000
"""Rows converted to Python tuples at a time: bounds memory for million-row tables."""
CHARSETS = ("utf8mb4", "cp1251")


def format_datetimes(values, date_only: bool = False) -> list:
    """Integer epoch seconds (or None) -> 'YYYY-MM-DD HH:MM:SS' strings (or 'YYYY-MM-DD')."""
    arr = np.asarray(values, dtype=object)
    missing = np.array([v is None for v in arr]) if arr.dtype == object else np.zeros(len(arr), bool)
    secs = np.where(missing, 0, arr).astype(np.int64)
    width = 10 if date_only else 19
    out = secs.astype("datetime64[s]").astype(f"datetime64[{'D' if date_only else 's'}]").astype(f"U{width}")
    if not date_only:
        codes = out.view(np.uint32).reshape(len(out), width)
        codes[:, 10] = ord(" ")
        out = codes.reshape(-1).view(f"U{width}")
    result = out.astype(object)
    result[missing] = None
    return result.tolist()


class Writer:
    """Creates the Bitrix tables (indexes only after loading, which is much faster) and inserts rows; ``close`` commits."""

    def __init__(self, metadata: MetaData):
        self.metadata = metadata
        self.row_counts: dict[str, int] = {}

    def _create_tables(self, conn) -> None:
        for table in self.metadata.sorted_tables:
            conn.execute(CreateTable(table))

    def _index_ddl(self, dialect) -> list[str]:
        return [str(CreateIndex(ix).compile(dialect=dialect))
                for table in self.metadata.sorted_tables for ix in sorted(table.indexes, key=lambda i: i.name)]

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        """Rows as tuples in ``columns`` order."""
        if rows:
            self.insert_columns(table, columns, list(zip(*rows)))

    def insert_columns(self, table: str, columns: list[str], cols: list) -> None:
        """Column-wise values (lists or numpy arrays), one per name in ``columns``."""
        n = len(cols[0]) if cols else 0
        for start in range(0, n, PREPARE_ROWS):
            part = [c[start:start + PREPARE_ROWS] for c in cols]
            part = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in part]
            self._load(table, columns, self._prepare(table, columns, part))

    def _prepare(self, table: str, columns: list[str], cols: list) -> list[tuple]:
        t = self.metadata.tables[table]
        for j, name in enumerate(columns):
            ctype = t.c[name].type
            if isinstance(ctype, (DateTime, Date)):
                cols[j] = format_datetimes(cols[j], date_only=not isinstance(ctype, DateTime))
        self.row_counts[table] = self.row_counts.get(table, 0) + len(cols[0])
        return list(zip(*cols))

    def _load(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        raise NotImplementedError


class SQLiteWriter(Writer):
    def __init__(self, path: Path, metadata: MetaData):
        super().__init__(metadata)
        path = Path(path)
        if path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            self._create_tables(conn)
        self.indexes = self._index_ddl(engine.dialect)
        engine.dispose()
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-65536")
        self.conn.execute("BEGIN")

    def _load(self, table, columns, rows):
        if rows:
            names = ", ".join(f'"{self.metadata.tables[table].c[c].name}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            self.conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)

    def close(self):
        for ddl in self.indexes:
            self.conn.execute(ddl)
        self.conn.execute("COMMIT")
        self.conn.execute("PRAGMA journal_mode=DELETE")
        self.conn.close()


def ensure_database(url: URL, charset: str) -> None:
    """Create the URL's database if missing (MariaDB/MySQL in the requested character set)."""
    backend = url.get_backend_name()
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    if backend in ("mysql", "mariadb"):
        # URL.set(database=None) keeps the database: the server-level URL is the tuple without it
        admin = create_engine(url._replace(database=None), hide_parameters=True, isolation_level="AUTOCOMMIT")
        collation = "cp1251_general_ci" if charset == "cp1251" else "utf8mb4_unicode_ci"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET {charset} COLLATE {collation}"))
            conn.execute(text(f"ALTER DATABASE `{name}` CHARACTER SET {charset} COLLATE {collation}"))
        admin.dispose()
    elif backend == "postgresql":
        admin = create_engine(url.set(database="postgres"), hide_parameters=True, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0'))
        admin.dispose()


class ServerWriter(Writer):
    """MariaDB/MySQL (executemany in chunks) or PostgreSQL (COPY)."""

    def __init__(self, url: str | URL, metadata: MetaData, charset: str = "utf8mb4"):
        super().__init__(metadata)
        url = make_url(url)
        self.backend = url.get_backend_name()
        if self.backend in ("mysql", "mariadb") and "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        ensure_database(url, charset)
        self.engine = create_engine(url, hide_parameters=True)
        metadata.drop_all(self.engine)
        with self.engine.begin() as conn:
            self._create_tables(conn)
        self.raw = self.engine.raw_connection()
        self.cursor = self.raw.cursor()

    def _load(self, table, columns, rows):
        names = [self.metadata.tables[table].c[c].name for c in columns]
        if self.backend == "postgresql":
            with self.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            sql = (f"INSERT INTO `{table}` ({', '.join(f'`{n}`' for n in names)}) "
                   f"VALUES ({', '.join(['%s'] * len(names))})")
            for start in range(0, len(rows), CHUNK):
                self.cursor.executemany(sql, rows[start:start + CHUNK])

    def close(self):
        for ddl in self._index_ddl(self.engine.dialect):
            self.cursor.execute(ddl)
        self.raw.commit()
        self.cursor.close()
        self.raw.close()
        self.engine.dispose()
