"""Portable SQL expressions for what the three dialects spell differently (date labels), and the
MySQL/MariaDB planner settings that big scans of recipient rows need."""

from __future__ import annotations

from sqlalchemy import func, text
from sqlalchemy.engine import Connection


def month_label(column, dialect: str):
    """'YYYY-MM' of a DATETIME column."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column)
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.date_format(column, "%Y-%m")


def day_label(column, dialect: str):
    """'YYYY-MM-DD' of a DATETIME column."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d", column)
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM-DD")
    return func.date_format(column, "%Y-%m-%d")


def recipients_first(stmt):
    """MySQL/MariaDB: join in FROM order (STRAIGHT_JOIN), the recipient table first. Left to itself
    the optimiser reaches recipient rows through a secondary index (CONTACT_ID, or POSTING_ID and
    STATUS), one random read each, and then sorts them; a sequential scan of the recipients in
    primary-key order with a key lookup of each joined row is many times faster on a big table."""
    return stmt.prefix_with("STRAIGHT_JOIN", dialect="mysql").prefix_with("STRAIGHT_JOIN", dialect="mariadb")


MYSQL_TEMP_TABLE_BYTES = 256 * 1024 * 1024


def allow_memory_temp_tables(conn: Connection, dialect: str) -> None:
    """MySQL/MariaDB: let this session keep derived tables (first and last read per recipient, the
    CRM source of each contact) in memory. Past the default 16 MB they go to disk, and each recipient
    row's lookup in them becomes a disk read. A session setting: nothing is written."""
    if dialect in ("mysql", "mariadb"):
        conn.execute(text(f"SET SESSION tmp_table_size = {MYSQL_TEMP_TABLE_BYTES}, "
                          f"max_heap_table_size = {MYSQL_TEMP_TABLE_BYTES}"))
