"""Portable SQL expressions for what the three dialects spell differently (date labels)."""

from __future__ import annotations

from sqlalchemy import func


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
