"""What a snapshot reads from the source: per Bitrix table, the columns the model needs and which rows.

This is data, not code: the extractor turns each entry into plain single-table SELECTs over bounded
primary-key ranges. Nothing here joins, groups or sub-selects, so the statements cost the source the
same on every Bitrix version, whatever secondary indexes it has.

Which rows:
- ``all``: every row (small or evidence tables: contacts, blacklist, unsubscribes, orders…);
- ``window``: rows of the postings that overlap the snapshot window (recipients, reads, clicks) --
  the period plus the look-backs the analyses use (see `snapshot_window`). Selecting by posting
  keeps each posting whole, so a read and its recipient row are always both in or both out;
- ``since``: rows whose `date_column` is at or after the window start (CRM activities).

Columns a source lacks (older versions, the legacy layout) are skipped and become NULL in the
snapshot; the manifest lists them. Personal data the reports do not need (names, phones) is not read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from mailaudit.period import Period


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: str | None = "ID"
    """Integer primary-key column the ranges walk (the first column of a composite key); None: one
    streamed statement (small tables, or a key that is not an integer)."""
    rows: str = "all"
    date_column: str | None = None
    filters: tuple[tuple[str, tuple], ...] = field(default=())
    """Fixed filters (column, allowed values): only e-mail values of b_crm_field_multi, for example."""


TABLES: tuple[TableSpec, ...] = (
    # sender module
    TableSpec("b_sender_mailing", ("ID", "NAME", "ACTIVE", "DATE_INSERT", "TRACK_CLICK", "IS_TRIGGER")),
    TableSpec("b_sender_mailing_chain", ("ID", "MAILING_ID", "STATUS", "MESSAGE_CODE", "MESSAGE_ID", "TITLE",
                                         "SUBJECT", "MESSAGE", "LINK_PARAMS", "DATE_INSERT", "ERROR_MESSAGE",
                                         "IS_TRIGGER")),
    TableSpec("b_sender_message_utm", ("ID", "MESSAGE_ID", "CODE", "VALUE")),
    TableSpec("b_sender_message_field", ("MESSAGE_ID", "CODE", "TYPE", "VALUE"), key="MESSAGE_ID",
              filters=(("CODE", ("SUBJECT", "MESSAGE", "LINK_PARAMS")),)),
    TableSpec("b_sender_posting", ("ID", "MAILING_ID", "MAILING_CHAIN_ID", "STATUS", "DATE_CREATE", "DATE_SEND",
                                   "DATE_SENT", "COUNT_SEND_ALL", "COUNT_SEND_ERROR", "COUNT_READ", "COUNT_CLICK",
                                   "COUNT_UNSUB")),
    TableSpec("b_sender_posting_recipient", ("ID", "POSTING_ID", "CONTACT_ID", "EMAIL", "STATUS", "DATE_SENT",
                                             "IS_READ", "IS_CLICK", "IS_UNSUB"), rows="window"),
    TableSpec("b_sender_posting_read", ("ID", "POSTING_ID", "RECIPIENT_ID", "DATE_INSERT"), rows="window"),
    TableSpec("b_sender_posting_click", ("ID", "POSTING_ID", "RECIPIENT_ID", "DATE_INSERT", "URL"), rows="window"),
    TableSpec("b_sender_posting_unsub", ("ID", "POSTING_ID", "RECIPIENT_ID", "DATE_INSERT")),
    TableSpec("b_sender_contact", ("ID", "TYPE_ID", "CODE", "EMAIL", "USER_ID", "DATE_INSERT", "DATE_UPDATE",
                                   "BLACKLISTED", "IS_READ", "IS_CLICK", "IS_UNSUB", "IS_SEND_SUCCESS",
                                   "CONSENT_STATUS", "AGENT")),
    TableSpec("b_sender_list", ("ID", "NAME", "CODE")),
    TableSpec("b_sender_contact_list", ("CONTACT_ID", "LIST_ID"), key="CONTACT_ID"),
    TableSpec("b_sender_mailing_subscription", ("MAILING_ID", "CONTACT_ID", "DATE_INSERT", "IS_UNSUB"),
              key="MAILING_ID"),
    TableSpec("b_sender_abuse", ("ID", "CONTACT_ID", "CONTACT_TYPE_ID", "CONTACT_CODE", "TEXT", "DATE_INSERT")),
    TableSpec("b_sender_counter_daily", ("DATE_STAT", "SENT_CNT", "ERROR_CNT", "ABUSE_CNT"), key=None),
    TableSpec("b_main_mail_blacklist", ("ID", "DATE_INSERT", "CATEGORY_ID", "CODE")),
    # CRM
    TableSpec("b_crm_contact", ("ID", "DATE_CREATE", "SOURCE_ID", "COMPANY_ID", "LEAD_ID", "HAS_EMAIL")),
    TableSpec("b_crm_field_multi", ("ID", "ENTITY_ID", "ELEMENT_ID", "TYPE_ID", "VALUE_TYPE", "VALUE"),
              filters=(("TYPE_ID", ("EMAIL",)),)),
    TableSpec("b_crm_deal", ("ID", "DATE_CREATE", "CLOSEDATE", "CLOSED", "CATEGORY_ID", "STAGE_ID",
                             "STAGE_SEMANTIC_ID", "OPPORTUNITY", "CURRENCY_ID", "CONTACT_ID", "COMPANY_ID",
                             "SOURCE_ID")),
    TableSpec("b_crm_deal_contact", ("DEAL_ID", "CONTACT_ID", "IS_PRIMARY"), key="DEAL_ID"),
    TableSpec("b_crm_utm", ("ENTITY_TYPE_ID", "ENTITY_ID", "CODE", "VALUE"), key=None,
              filters=(("ENTITY_TYPE_ID", (2, 14)),)),
    TableSpec("b_crm_exclusion", ("ID", "DATE_INSERT", "TYPE_ID", "CODE")),
    TableSpec("b_crm_act", ("ID", "TYPE_ID", "OWNER_ID", "OWNER_TYPE_ID", "DIRECTION", "CREATED", "COMPLETED"),
              rows="since", date_column="CREATED"),
    TableSpec("b_crm_order_contact_company", ("ID", "ORDER_ID", "ENTITY_ID", "ENTITY_TYPE_ID", "IS_PRIMARY")),
    TableSpec("b_crm_order_entity", ("ID", "OWNER_ID", "OWNER_TYPE_ID", "ORDER_ID")),
    # online store
    TableSpec("b_sale_order", ("ID", "USER_ID", "DATE_INSERT", "PRICE", "CURRENCY", "PAYED", "DATE_PAYED",
                               "CANCELED", "STATUS_ID")),
)
"""Every table the model is built from. A table the source lacks is recorded as absent."""

TABLE_NAMES = tuple(spec.name for spec in TABLES)


def with_custom_columns(specs: tuple[TableSpec, ...], custom: list[dict]) -> tuple[TableSpec, ...]:
    """The plan with the columns of `segments.custom` dimensions added (a column of b_sender_contact, or
    of a known table joined by its CONTACT_ID)."""
    extra: dict[str, set[str]] = {}
    for item in custom:
        wanted = {item["column"].upper()}
        if item["table"] != "b_sender_contact":
            wanted.add("CONTACT_ID")
        extra.setdefault(item["table"], set()).update(wanted)
    out = []
    for spec in specs:
        added = tuple(sorted(extra.pop(spec.name, set()) - set(spec.columns)))
        out.append(TableSpec(spec.name, spec.columns + added, spec.key, spec.rows, spec.date_column, spec.filters)
                   if added else spec)
    for name, columns in sorted(extra.items()):   # a table the plan does not read otherwise
        out.append(TableSpec(name, ("ID", *sorted(columns - {"ID"}))))
    return tuple(out)


@dataclass(frozen=True)
class Window:
    """The days a snapshot covers: sends, reads and clicks of postings that overlap [start, end]."""

    start: date
    end: date

    def covers(self, period: Period, needed: "Window") -> bool:
        return self.start <= needed.start and self.end >= needed.end

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def snapshot_window(period: Period, hygiene: dict, conversion: dict) -> Window:
    """The period widened by every look-back and look-ahead an analysis uses:
    segments compare with the previous period of the same length; inactivity looks back
    `inactive_months` from the period end; conversion lets sends before the period compete for its
    orders and follows orders up to the longest attribution window after it."""
    look_back = min(period.previous().start,
                    period.end + timedelta(days=1) - relativedelta(months=int(hygiene["inactive_months"])),
                    period.start - timedelta(days=int(conversion["click_window_days"])))
    look_ahead = period.end + timedelta(days=max(int(conversion["click_window_days"]),
                                                 int(conversion["open_window_days"])))
    return Window(look_back, look_ahead)
