"""What a source database holds: Bitrix tables found by reflection, the sender layout, and which reports can run.

Columns are keyed by Bitrix's UPPER-CASE names on every dialect, so analyses write
``table.c.STATUS`` whether the server is MySQL (``STATUS``) or PostgreSQL (``status``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import DateTime, MetaData, Table, event, func, inspect, select, text
from sqlalchemy.dialects.sqlite import base as sqlite_types
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
    dialect: str
    layout: str                      # "current" (sender 20+) or "legacy" (sender 15/16)
    charset: str | None
    tables: frozenset[str]           # the known Bitrix tables present, lower-case names
    _reflected: dict[str, Table] = field(default_factory=dict, repr=False)
    _conn: Connection | None = field(default=None, repr=False)

    def has(self, *names: str) -> bool:
        return all(name in self.tables for name in names)

    def table(self, name: str) -> Table:
        """The reflected table, columns keyed by upper-case Bitrix names."""
        if name not in self.tables:
            raise MissingTableError(f"table {name} is not in the source database")
        if name not in self._reflected:
            self._reflected[name] = _reflect_table(self._conn, name)
        return self._reflected[name]

    def columns(self, name: str) -> set[str]:
        return set(self.table(name).c.keys()) if self.has(name) else set()

    def row_counts(self, conn: Connection) -> dict[str, int]:
        return {
            name: int(conn.execute(select(func.count()).select_from(self.table(name))).scalar_one())
            for name in sorted(self.tables)
        }

    @property
    def capabilities(self) -> dict[str, Capability]:
        return {report: capability(self.has, report) for report in REPORTS}

    def optional_groups(self) -> dict[str, bool]:
        """Which optional table groups (CRM, store, blacklist, exclusion, abuse…) are present."""
        return {group: self.has(*names) for group, names in OPTIONAL_TABLES.items()}


def reflect_schema(conn: Connection) -> BitrixSchema:
    """Find the Bitrix tables and the sender layout. Reflects lazily: only tables an analysis touches."""
    present = {name.lower(): name for name in inspect(conn).get_table_names()}
    missing = [t for t in CORE_TABLES if t not in present]
    if missing:
        raise MissingTableError(
            "not a Bitrix sender database: missing table(s) " + ", ".join(missing)
            + " (check database.url_env / database.sqlite points at the portal's database)"
        )
    schema = BitrixSchema(
        dialect=conn.dialect.name,
        layout="current",
        charset=_charset(conn),
        tables=frozenset(t for t in KNOWN_TABLES if t in present),
        _conn=conn,
    )
    contact_columns = schema.columns("b_sender_contact")
    schema.layout = "current" if {"TYPE_ID", "CODE"} <= contact_columns else "legacy"
    return schema


# Bitrix stores seconds; SQLAlchemy's SQLite DATETIME binds '… 00:00:00.000000', which sorts after a
# stored '… 00:00:00' and would drop rows at exactly a period's first second.
_SQLITE_SECONDS = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d"


def _reflect_table(conn: Connection, name: str) -> Table:
    metadata = MetaData()
    sqlite = conn.dialect.name == "sqlite"

    @event.listens_for(metadata, "column_reflect")
    def _bitrix_column(_inspector, _table, column_info):
        column_info["key"] = column_info["name"].upper()
        if sqlite and isinstance(column_info["type"], DateTime):
            column_info["type"] = sqlite_types.DATETIME(storage_format=_SQLITE_SECONDS)

    return Table(name, metadata, autoload_with=conn)


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
