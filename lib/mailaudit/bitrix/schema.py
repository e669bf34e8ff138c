"""What a source database holds: Bitrix tables found by reflection, the sender layout, and which reports can run."""

from __future__ import annotations

from dataclasses import dataclass

import datetime as dt

from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.engine import Connection

CORE_TABLES = (
    "b_sender_mailing",
    "b_sender_mailing_chain",
    "b_sender_posting",
    "b_sender_posting_recipient",
    "b_sender_contact",
)
"""Without these there is no e-mail marketing data to audit."""

OPTIONAL_TABLES = {
    "tracking": ("b_sender_posting_read", "b_sender_posting_click", "b_sender_posting_unsub"),
    "letters": ("b_sender_message", "b_sender_message_utm", "b_sender_message_field"),
    "lists": ("b_sender_list", "b_sender_contact_list", "b_sender_mailing_subscription"),
    "abuse": ("b_sender_abuse",),
    "blacklist": ("b_main_mail_blacklist",),
    "crm": ("b_crm_contact", "b_crm_field_multi"),
    "crm_deals": ("b_crm_deal", "b_crm_deal_contact", "b_crm_utm"),
    "crm_activity": ("b_crm_act",),
    "exclusion": ("b_crm_exclusion",),
    "store": ("b_sale_order", "b_crm_order_contact_company"),
    "users": ("b_user",),
}

REPORTS = ("data_and_tracking", "list_hygiene", "open_inflation", "segments", "conversion")

KNOWN_TABLES = CORE_TABLES + tuple(t for group in OPTIONAL_TABLES.values() for t in group) + (
    "b_sender_counter_daily",
    "b_crm_order_entity",
    "b_sale_order_props_value",
    "b_crm_lead",
)


class MissingTableError(RuntimeError):
    """The database lacks the core sender tables: it is not a Bitrix sender database."""


@dataclass(frozen=True)
class Capability:
    ok: bool
    reason: str = ""


@dataclass
class BitrixSchema:
    """What reflection found: the dialect, the sender layout, the character set and the known tables."""

    dialect: str
    layout: str                      # "current" (sender 20+) or "legacy" (sender 15/16)
    charset: str | None
    tables: frozenset[str]           # the known Bitrix tables present, lower-case names

    def has(self, *names: str) -> bool:
        return all(name in self.tables for name in names)

    @property
    def capabilities(self) -> dict[str, Capability]:
        return {report: capability(self.has, report) for report in REPORTS}

    def optional_groups(self) -> dict[str, bool]:
        """Which optional table groups (CRM, store, blacklist, exclusion, abuse…) are present."""
        return {group: self.has(*names) for group, names in OPTIONAL_TABLES.items()}


def reflect_schema(conn: Connection) -> BitrixSchema:
    """Find the Bitrix tables and the sender layout from the database's catalog (no data is read)."""
    inspector = inspect(conn)
    present = {name.lower(): name for name in inspector.get_table_names()}
    missing = [t for t in CORE_TABLES if t not in present]
    if missing:
        raise MissingTableError(
            "not a Bitrix sender database: missing table(s) " + ", ".join(missing)
            + " (check database.url_env / database.sqlite points at the portal's database)"
        )
    contact_columns = {c["name"].upper() for c in inspector.get_columns(present["b_sender_contact"])}
    return BitrixSchema(
        dialect=conn.dialect.name,
        layout="current" if {"TYPE_ID", "CODE"} <= contact_columns else "legacy",
        charset=_charset(conn),
        tables=frozenset(t for t in KNOWN_TABLES if t in present),
    )


def postings_may_send_in(conn: Connection, start: dt.datetime, end: dt.datetime) -> int:
    """Postings whose sending may fall in [start, end): started before `end` (DATE_SEND, else DATE_CREATE)
    and not finished before `start` (DATE_SENT), a day of slack each side; a date that is missing or
    unreadable counts as "may". One plain read of b_sender_posting's dates (a small table)."""
    present = {name.lower(): name for name in inspect(conn).get_table_names()}
    name = present["b_sender_posting"]
    names = {c["name"].upper(): c["name"] for c in inspect(conn).get_columns(name)}
    wanted = [c for c in ("DATE_SEND", "DATE_CREATE", "DATE_SENT") if c in names]
    if not wanted:
        return int(conn.execute(select(text("count(*)")).select_from(table(name))).scalar())
    rows = conn.execute(select(*[column(names[c]) for c in wanted]).select_from(table(name))).fetchall()
    begin, finish = start - dt.timedelta(days=1), end + dt.timedelta(days=1)

    def when(row, *candidates):
        for c in candidates:
            value = row[wanted.index(c)] if c in wanted else None
            if isinstance(value, str):   # SQLite keeps dates as text
                try:
                    value = dt.datetime.fromisoformat(value.strip()[:19])
                except ValueError:
                    value = None
            if isinstance(value, dt.datetime):
                return value
            if isinstance(value, dt.date):
                return dt.datetime.combine(value, dt.time.min)
        return None

    may = 0
    for row in rows:
        started, finished = when(row, "DATE_SEND", "DATE_CREATE"), when(row, "DATE_SENT")
        may += not ((finished is not None and finished < begin) or (started is not None and started >= finish))
    return may


def _charset(conn: Connection) -> str | None:
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        return conn.execute(text("SELECT @@character_set_database")).scalar()
    if dialect == "postgresql":
        return conn.execute(text("SHOW server_encoding")).scalar()
    if dialect == "sqlite":
        return conn.execute(text("PRAGMA encoding")).scalar()
    return None


def capability(has, report: str) -> Capability:
    """Whether `report` can run on a source whose tables `has(*names)` tells."""
    def need(*tables: str) -> Capability:
        missing = [t for t in tables if not has(t)]
        if missing:
            return Capability(False, "missing table(s) " + ", ".join(missing))
        return Capability(True)

    if report in ("data_and_tracking", "list_hygiene"):
        return need(*CORE_TABLES)
    if report == "open_inflation":
        return need(*CORE_TABLES, "b_sender_posting_read")
    if report == "segments":
        return need(*CORE_TABLES, "b_sender_posting_read", "b_sender_posting_click")
    if report == "conversion":
        if not has("b_sender_posting_read", "b_sender_posting_click"):
            return need("b_sender_posting_read", "b_sender_posting_click")
        if has("b_sale_order"):
            return Capability(True, "orders from b_sale_order")
        if has("b_crm_deal"):
            return Capability(True, "no store: won deals from b_crm_deal")
        return Capability(False, "no store orders (b_sale_order) and no CRM deals (b_crm_deal)")
    raise KeyError(report)
