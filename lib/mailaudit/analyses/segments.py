"""Segment comparisons: every rate with its interval, segments compared with the rest of their
dimension within the same postings, p-values adjusted across the whole table.

Definitions (period = sends whose recipient DATE_SENT is in [period start, period end]):

- ``delivered``: recipient rows with STATUS "sent" (``RecipientStatus.SENT``) in the period.
- ``open_rate``: delivered rows opened ÷ delivered rows. Opened = the recipient's IS_READ flag,
  which Bitrix sets with the first b_sender_posting_read row (sender 15.x has no flag: there, a
  read row); machine opens (Apple MPP) included.
- ``click_rate``: delivered rows clicked (IS_CLICK, else a b_sender_posting_click row) ÷ delivered rows.
- ``ctor`` (click-to-open): opened rows that also have a click ÷ opened rows.
- ``unsub_rate``: delivered rows unsubscribed (IS_UNSUB, else a b_sender_posting_unsub row) ÷ delivered rows.
- ``complaint_rate``: delivered rows that drew a spam complaint ÷ delivered rows. A b_sender_abuse
  row carries no posting: each complaint dated up to the period end is attributed to the complaining
  contact's latest delivered row sent at or before it.
- ``error_rate``: rows with STATUS "error" ÷ rows with STATUS "sent" or "error" (period as above).

All rates are fractions. Segments are properties of the contact (address book, mailbox provider,
CRM source, tenure at period end, mail client, custom column), so a comparison is always between
two disjoint sets of contacts, and the contact is the independent unit of every interval and test.

Counting happens in SQL: one query grouped by posting × month × segment (this period and the
previous one), one grouped by segment over per-contact sums (for cluster-robust variances), for all
dimensions whose segments do not overlap at once. No recipient-level row leaves the database.
Recipients whose contact row is gone, and contacts that are not e-mail contacts, are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Float, String, and_, case, cast, exists, func, literal, literal_column, null, or_, select, true
from sqlalchemy.engine import Connection

from mailaudit import emails
from mailaudit.analyses import opens, stats
from mailaudit.bitrix.codes import YES, MAIL_AGENT_CLIENT, CrmMultiField, RecipientStatus, SenderContactType
from mailaudit.bitrix.schema import BitrixSchema
from mailaudit.period import Period
from mailaudit.sources.sql import allow_memory_temp_tables, month_label, recipients_first

BUILTIN_DIMENSIONS = ("list", "provider", "crm_source", "tenure", "client")
RATE_METRICS = ("open_rate", "click_rate", "ctor", "unsub_rate", "complaint_rate", "error_rate")
"""Metrics with a per-posting numerator and denominator: shown with intervals and tested."""

TENURE_BANDS = ("<1y", "1-2y", "2-3y", "3y+")
"""Contact age at the period end (from b_sender_contact.DATE_INSERT) in 365-day years."""
NO_SOURCE = "(no source)"
EMPTY_VALUE = "(empty)"
UNKNOWN = "unknown"

# metric -> (per-contact event count, per-contact denominator, per-contact expected events)
_METRIC_COLUMNS = {
    "open_rate": ("opened", "delivered", "expected_opened"),
    "click_rate": ("clicked", "delivered", "expected_clicked"),
    "ctor": ("clicked_after_open", "opened", "expected_clicked_after_open"),
    "unsub_rate": ("unsubscribed", "delivered", "expected_unsubscribed"),
    "complaint_rate": ("complaints", "delivered", "expected_complaints"),
    "error_rate": ("errors", "attempted", "expected_errors"),
}
# metric -> (events column, trials column) of the posting × segment counts
_POSTING_COLUMNS = {
    "open_rate": ("opened", "delivered"),
    "click_rate": ("clicked", "delivered"),
    "ctor": ("clicked_after_open", "opened"),
    "unsub_rate": ("unsubscribed", "delivered"),
    "complaint_rate": ("complaints", "delivered"),
    "error_rate": ("errors", "attempted"),
}
_METRIC_VERBS = {"open_rate": "open", "click_rate": "click", "ctor": "click after opening",
                 "unsub_rate": "unsubscribe", "complaint_rate": "complain of spam",
                 "error_rate": "fail to be sent"}
_VERSUS = {
    "list": "rest of list",
    "provider": "other providers",
    "crm_source": "other CRM sources",
    "tenure": "other tenure bands",
    "client": "other mail clients",
}


class DimensionError(ValueError):
    """A dimension that cannot be built from this database (the message names no data values)."""


@dataclass
class SegmentSettings:
    """What to compare: ``params.segments`` of the parameter file."""

    dimensions: list[str] = field(default_factory=lambda: list(BUILTIN_DIMENSIONS))
    custom: list[dict] = field(default_factory=list)
    min_delivered: int = 500
    correction: str = "holm"
    alpha: float = 0.05
    human_opens: bool = True      # the report estimates each segment's human open rate

    @classmethod
    def from_params(cls, segments: dict) -> "SegmentSettings":
        return cls(dimensions=list(segments["dimensions"]), custom=list(segments.get("custom") or []),
                   min_delivered=int(segments["min_delivered"]), correction=segments["correction"],
                   human_opens=bool(segments["human_opens"]))


@dataclass
class SegmentResult:
    """Tidy tables and the figures for summary.json's ``segments`` section."""

    metrics: pd.DataFrame          # one row per dimension × segment
    differences: pd.DataFrame      # one row per dimension × segment × tested metric
    monthly: pd.DataFrame          # dimension × segment × month rates
    postings: pd.DataFrame         # dimension × posting × segment counts
    figures: dict
    notes: list[str]


# --- SQL building blocks ---------------------------------------------------------------------------

def _as_float(expr, dialect: str):
    """A float-valued expression: integer division truncates on SQLite, and MySQL's DECIMAL
    division keeps only 4 extra digits; a double keeps expected counts exact enough."""
    if dialect in ("mysql", "mariadb"):
        return expr * literal_column("1e0")
    return cast(expr, Float)


@dataclass
class Dimension:
    """A segment dimension as SQL: the label of a contact's segment (NULL: outside the dimension),
    computed from b_sender_contact and the tables outer-joined to it by `joins`."""

    name: str
    label: object
    joins: list = field(default_factory=list)     # (table, onclause) outer-joined to b_sender_contact
    one_per_contact: bool = False                 # by construction at most one segment per contact


def _contact_table(schema: BitrixSchema):
    contact = schema.table("b_sender_contact")
    address = contact.c.EMAIL if schema.layout == "legacy" else contact.c.CODE
    email_only = true() if schema.layout == "legacy" else contact.c.TYPE_ID == int(SenderContactType.EMAIL)
    return contact, address, email_only


def _domain(address, dialect: str):
    """The text after the first "@" (each dialect spells it differently)."""
    if dialect == "sqlite":
        return func.substr(address, func.instr(address, "@") + 1)
    if dialect == "postgresql":
        return func.split_part(address, "@", 2)
    return func.substring_index(address, "@", -1)


def _provider_label(address, dialect: str):
    """emails.provider_of_domain in SQL: the domain looked up in each provider's domain list.

    Addresses with more than one "@" (invalid, rare) go through LIKE patterns, so the label is the
    one of the domain after the last "@", as emails.domain_of has it.
    """
    lowered = func.lower(address)
    domain = _domain(lowered, dialect)
    by_domain = case(*((domain.in_(domains), provider) for provider, domains in emails.PROVIDER_DOMAINS.items()),
                     else_=emails.OTHER_PROVIDER)
    by_pattern = case(*((or_(*(lowered.like(f"%@{d}") for d in domains)), provider)
                        for provider, domains in emails.PROVIDER_DOMAINS.items()),
                      else_=emails.OTHER_PROVIDER)
    return case((lowered.like("%@%@%"), by_pattern), else_=by_domain)


def tenure_cutoffs(period: Period) -> list[datetime]:
    """Instants splitting contact DATE_INSERT into TENURE_BANDS: age measured at the period end
    (midnight after its last day) in 365-day years; a contact exactly 365 days old is in 1-2y."""
    return [period.end_exclusive - timedelta(days=365 * years) for years in (1, 2, 3)]


def segment_dimension(schema: BitrixSchema, dimension: str, period: Period, custom: dict | None = None) -> Dimension:
    """The Dimension for a built-in name (list, provider, crm_source, tenure, client) or a custom
    {table, column, name}. Raises DimensionError when this database cannot provide it."""
    contact, address, _email_only = _contact_table(schema)
    if custom is not None:
        return _custom_dimension(schema, custom)
    if dimension == "list":
        _need(schema, "b_sender_list", "b_sender_contact_list")
        link = schema.table("b_sender_contact_list").alias("list_link")
        book = schema.table("b_sender_list").alias("list_book")
        label = case((book.c.ID.is_(None), null()), else_=func.coalesce(book.c.NAME, EMPTY_VALUE))
        return Dimension(dimension, label, [(link, link.c.CONTACT_ID == contact.c.ID),
                                            (book, book.c.ID == link.c.LIST_ID)])
    if dimension == "provider":
        return Dimension(dimension, _provider_label(address, schema.dialect), one_per_contact=True)
    if dimension == "tenure":
        if "DATE_INSERT" not in contact.c:
            raise DimensionError("b_sender_contact has no DATE_INSERT column")
        one, two, three = tenure_cutoffs(period)
        inserted = contact.c.DATE_INSERT
        return Dimension(dimension, case((inserted.is_(None), UNKNOWN), (inserted > one, TENURE_BANDS[0]),
                                         (inserted > two, TENURE_BANDS[1]), (inserted > three, TENURE_BANDS[2]),
                                         else_=TENURE_BANDS[3]), one_per_contact=True)
    if dimension == "client":
        if "AGENT" not in contact.c:
            raise DimensionError("b_sender_contact has no AGENT column (legacy layout)")
        return Dimension(dimension, case(*((contact.c.AGENT == int(code), client)
                                           for code, client in MAIL_AGENT_CLIENT.items()), else_=UNKNOWN),
                         one_per_contact=True)
    if dimension == "crm_source":
        return _crm_source_dimension(schema, contact)
    raise DimensionError(f"unknown dimension {dimension!r}; dimensions: {', '.join(BUILTIN_DIMENSIONS)}")


def _need(schema: BitrixSchema, *tables: str) -> None:
    missing = [t for t in tables if not schema.has(t)]
    if missing:
        raise DimensionError("missing table(s) " + ", ".join(missing))


def _crm_source_dimension(schema, contact) -> Dimension:
    """b_crm_contact.SOURCE_ID of the CRM contact whose e-mail (b_crm_field_multi, lower-cased and
    trimmed) equals the sender contact's address; several CRM contacts: the smallest SOURCE_ID.
    Contacts that are no CRM contact's address are outside this dimension.

    Bitrix stores CODE lower-cased and trimmed, so each CRM e-mail finds its sender contact through
    the unique (TYPE_ID, CODE) index; the legacy EMAIL column is normalised on both sides.
    """
    _need(schema, "b_crm_contact", "b_crm_field_multi")
    crm, multi = schema.table("b_crm_contact"), schema.table("b_crm_field_multi")
    sender = contact.alias("crm_sender_contact")
    crm_email = func.lower(func.trim(multi.c.VALUE))
    if schema.layout == "legacy":
        same_address = func.lower(func.trim(sender.c.EMAIL)) == crm_email
    else:
        same_address = and_(sender.c.TYPE_ID == int(SenderContactType.EMAIL), sender.c.CODE == crm_email)
    source = func.nullif(func.trim(crm.c.SOURCE_ID), "")
    by_contact = (
        select(sender.c.ID.label("contact_id"), func.min(source).label("source_id"))
        .select_from(multi.join(crm, crm.c.ID == multi.c.ELEMENT_ID).join(sender, same_address))
        .where(multi.c.ENTITY_ID == CrmMultiField.ENTITY_CONTACT, multi.c.TYPE_ID == CrmMultiField.TYPE_EMAIL)
        .group_by(sender.c.ID)
        .subquery("crm_source_of_contact")
    )
    label = case((by_contact.c.contact_id.is_(None), null()), else_=func.coalesce(by_contact.c.source_id, NO_SOURCE))
    return Dimension("crm_source", label, [(by_contact, by_contact.c.contact_id == contact.c.ID)],
                     one_per_contact=True)


def _custom_dimension(schema: BitrixSchema, custom: dict) -> Dimension:
    """A custom dimension: a column of a reflected table joined to the contact by its ID
    (b_sender_contact.ID, or CONTACT_ID of any other table). No free SQL: names are checked
    against the reflected schema."""
    name, table_name, column = custom["name"], custom["table"], custom["column"].upper()
    if not schema.has(table_name):
        raise DimensionError(f"custom dimension {name!r}: table {table_name} is not a known Bitrix table "
                             "in this database")
    table = schema.table(table_name)
    if column not in table.c:
        raise DimensionError(f"custom dimension {name!r}: table {table_name} has no column {column}")
    value = func.coalesce(cast(table.c[column], String), EMPTY_VALUE)
    if table_name == "b_sender_contact":
        return Dimension(name, value)
    if "CONTACT_ID" not in table.c:
        raise DimensionError(f"custom dimension {name!r}: table {table_name} has no CONTACT_ID column to "
                             "join contacts by")
    values = select(table.c.CONTACT_ID.label("contact_id"), value.label("segment")).distinct().subquery()
    contact = schema.table("b_sender_contact")
    return Dimension(name, values.c.segment, [(values, values.c.contact_id == contact.c.ID)])


def _with_joins(source, contact, dimensions: list[Dimension]):
    for dimension in dimensions:
        for table, onclause in dimension.joins:
            source = source.outerjoin(table, onclause)
    return source


def membership(schema: BitrixSchema, dimension: Dimension):
    """SELECT (contact_id, segment) of the e-mail contacts inside the dimension."""
    contact, _address, email_only = _contact_table(schema)
    return (select(contact.c.ID.label("contact_id"), dimension.label.label("segment"))
            .select_from(_with_joins(contact, contact, [dimension]))
            .where(email_only, dimension.label.is_not(None)))


def _everyone_in(schema: BitrixSchema, dimension: Dimension) -> Dimension:
    """A one-segment dimension ("all") holding each member of `dimension` once."""
    contact = schema.table("b_sender_contact")
    members = membership(schema, dimension).subquery("dimension_members")
    everyone = select(members.c.contact_id).distinct().subquery("dimension_everyone")
    label = case((everyone.c.contact_id.is_not(None), literal("all")), else_=null())
    return Dimension(dimension.name, label, [(everyone, everyone.c.contact_id == contact.c.ID)])


# --- queries -----------------------------------------------------------------------------------------

_COUNT_COLUMNS = ("delivered", "attempted", "errors", "opened", "clicked", "clicked_after_open", "unsubscribed",
                  "complaints")


def complaints_recorded(schema: BitrixSchema) -> bool:
    """Whether complaints can be tied to contacts: b_sender_abuse with its CONTACT_ID column."""
    return schema.has("b_sender_abuse") and "CONTACT_ID" in schema.columns("b_sender_abuse")


def complained_sends(schema: BitrixSchema, until: datetime):
    """Subquery (recipient_id) of the sends that drew a complaint, or None without b_sender_abuse.

    b_sender_abuse has no posting: each e-mail complaint dated before `until` goes to its contact's
    latest delivered row sent at or before the complaint (the largest row ID among same-second
    sends). Complaints are few, so this reaches recipient rows through the contact's index.
    """
    if not complaints_recorded(schema):
        return None
    abuse = schema.table("b_sender_abuse")
    recipient = schema.table("b_sender_posting_recipient").alias("complained_send")
    if schema.layout == "legacy":
        contact = schema.table("b_sender_contact").alias("complainer")
        source = abuse.join(contact, contact.c.ID == abuse.c.CONTACT_ID).join(
            recipient, recipient.c.EMAIL == contact.c.EMAIL)
    else:
        source = abuse.join(recipient, recipient.c.CONTACT_ID == abuse.c.CONTACT_ID)
    conditions = [abuse.c.DATE_INSERT < until, recipient.c.STATUS == RecipientStatus.SENT,
                  recipient.c.DATE_SENT <= abuse.c.DATE_INSERT]
    if "CONTACT_TYPE_ID" in abuse.c:
        conditions.append(or_(abuse.c.CONTACT_TYPE_ID.is_(None),
                              abuse.c.CONTACT_TYPE_ID == int(SenderContactType.EMAIL)))
    latest = (select(abuse.c.ID.label("abuse_id"), func.max(recipient.c.DATE_SENT).label("sent_at"))
              .select_from(source).where(*conditions).group_by(abuse.c.ID).subquery("latest_send"))
    by_complaint = (select(func.max(recipient.c.ID).label("recipient_id"))
                    .select_from(source.join(latest, and_(latest.c.abuse_id == abuse.c.ID,
                                                          latest.c.sent_at == recipient.c.DATE_SENT)))
                    .where(*conditions).group_by(abuse.c.ID).subquery("send_of_complaint"))
    return select(by_complaint.c.recipient_id).distinct().subquery("complained_sends")


def _recipients_with_contacts(schema: BitrixSchema):
    """(recipients joined to their e-mail contact, recipient table, contact table, email filter).

    The legacy layout (sender 15/16) keeps EMAIL on the recipient instead of CONTACT_ID: the contact
    is found by its unique EMAIL. Recipients whose contact row is gone are left out.
    """
    recipient = schema.table("b_sender_posting_recipient")
    contact, _address, email_only = _contact_table(schema)
    on = (contact.c.EMAIL == recipient.c.EMAIL) if schema.layout == "legacy" else (contact.c.ID == recipient.c.CONTACT_ID)
    return recipient.join(contact, on), recipient, contact, email_only


def _event_flag(schema: BitrixSchema, recipient, flag_column: str, table_name: str):
    """1 when the recipient row has the event, else 0.

    Bitrix sets the recipient's own flag (IS_READ, IS_CLICK, IS_UNSUB) with the first read, click or
    unsubscribe row, so where the layout has the flag it is read directly: no join, one pass over
    recipient rows. Sender 15.x has no such flags: there, the tracking table's rows are looked up.
    """
    if flag_column in recipient.c:
        return case((recipient.c[flag_column] == YES, 1), else_=0)
    if schema.has(table_name):
        table = schema.table(table_name)
        return case((exists().where(table.c.RECIPIENT_ID == recipient.c.ID), 1), else_=0)
    return literal(0)


def _events(schema: BitrixSchema, recipient):
    return (_event_flag(schema, recipient, "IS_READ", "b_sender_posting_read"),
            _event_flag(schema, recipient, "IS_CLICK", "b_sender_posting_click"),
            _event_flag(schema, recipient, "IS_UNSUB", "b_sender_posting_unsub"))


def _in_period(column, period: Period):
    return and_(column >= period.start_dt, column < period.end_exclusive)


def _frame(conn: Connection, stmt, dimensions: list[Dimension]) -> pd.DataFrame:
    result = conn.execute(stmt)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    return frame.rename(columns={f"segment_{i}": d.name for i, d in enumerate(dimensions)})


def _with_complaints(schema: BitrixSchema, source, recipient, until: datetime):
    """(source outer-joined to the complained sends, 1/0 complaint flag of the row)."""
    complained = complained_sends(schema, until)
    if complained is None:
        return source, literal(0)
    return (source.outerjoin(complained, complained.c.recipient_id == recipient.c.ID),
            case((complained.c.recipient_id.is_not(None), 1), else_=0))


def posting_segment_counts(conn: Connection, schema: BitrixSchema, period: Period,
                           dimensions: list[Dimension], previous: Period | None = None) -> pd.DataFrame:
    """Recipient rows grouped by posting × send month × the segment of each dimension, in one SQL
    GROUP BY: delivered (sent OK), attempted (sent OK or in error), errors, and delivered rows opened,
    clicked, clicked after an open, unsubscribed, complained of. A contact in several segments of a
    dimension counts in each: give such a dimension alone. One column per dimension holds the segment
    (None: outside the dimension).

    With `previous` (a period ending before `period` starts) its rows are counted in the same
    scan; column ``period`` says "current" or "previous".
    """
    source, recipient, contact, email_only = _recipients_with_contacts(schema)
    source, complained = _with_complaints(schema, _with_joins(source, contact, dimensions), recipient,
                                          period.end_exclusive)
    sent = case((recipient.c.STATUS == RecipientStatus.SENT, 1), else_=0)
    opened, clicked, unsubscribed = (sent * flag for flag in _events(schema, recipient))
    month = month_label(recipient.c.DATE_SENT, schema.dialect)
    which = case((recipient.c.DATE_SENT >= period.start_dt, "current"), else_="previous")
    scanned = period if previous is None else Period(previous.start, period.end)
    labels = [d.label.label(f"segment_{i}") for i, d in enumerate(dimensions)]
    stmt = (
        select(recipient.c.POSTING_ID.label("posting_id"), month.label("month"), which.label("period"), *labels,
               func.sum(sent).label("delivered"),
               func.count().label("attempted"),
               func.sum(case((recipient.c.STATUS == RecipientStatus.ERROR, 1), else_=0)).label("errors"),
               func.sum(opened).label("opened"),
               func.sum(clicked).label("clicked"),
               func.sum(opened * clicked).label("clicked_after_open"),
               func.sum(unsubscribed).label("unsubscribed"),
               func.sum(sent * complained).label("complaints"))
        .select_from(source)
        .where(recipient.c.STATUS.in_([RecipientStatus.SENT, RecipientStatus.ERROR]),
               _in_period(recipient.c.DATE_SENT, scanned), email_only)
        .group_by(recipient.c.POSTING_ID, month, which, *(d.label for d in dimensions))
    )
    stmt = recipients_first(stmt)
    frame = _frame(conn, stmt, dimensions)
    frame[list(_COUNT_COLUMNS)] = frame[list(_COUNT_COLUMNS)].fillna(0).astype("int64")
    return frame


def contact_cluster_sums(conn: Connection, schema: BitrixSchema, period: Period,
                         dimensions: list[Dimension]) -> pd.DataFrame:
    """Sums over contacts of per-contact counts, their squares and cross-products, grouped by the
    segment of each dimension (one column per dimension; None: outside it).

    Per contact (rows sent OK or in error in the period): delivered, attempted, errors, opened,
    clicked, clicked_after_open, unsubscribed, complaints, and the events expected under the
    posting-only model (each send weighted by its posting's overall rate). ``contacts`` counts the
    contacts with a delivered row, ``attempted_contacts`` those with any row. These sums are
    everything the contact-clustered variances need.
    """
    dialect = schema.dialect
    source, recipient, contact, email_only = _recipients_with_contacts(schema)
    source, complained = _with_complaints(schema, source, recipient, period.end_exclusive)
    sent = case((recipient.c.STATUS == RecipientStatus.SENT, 1), else_=0)
    opened, clicked, unsubscribed = (sent * flag for flag in _events(schema, recipient))
    rows = recipients_first(
        select(recipient.c.POSTING_ID.label("posting_id"), contact.c.ID.label("contact_id"),
               sent.label("sent"), (1 - sent).label("error"), opened.label("opened"), clicked.label("clicked"),
               unsubscribed.label("unsubscribed"), (sent * complained).label("complained"))
        .select_from(source)
        .where(recipient.c.STATUS.in_([RecipientStatus.SENT, RecipientStatus.ERROR]),
               _in_period(recipient.c.DATE_SENT, period), email_only)
    ).cte("attempted_rows")

    def per_delivered(events):
        return func.coalesce(_as_float(func.sum(events), dialect) / func.nullif(func.sum(rows.c.sent), 0), 0)

    posting_rate = recipients_first(select(
        rows.c.posting_id,
        per_delivered(rows.c.opened).label("open_rate"),
        per_delivered(rows.c.clicked).label("click_rate"),
        per_delivered(rows.c.unsubscribed).label("unsub_rate"),
        per_delivered(rows.c.complained).label("complaint_rate"),
        (_as_float(func.sum(rows.c.error), dialect) / func.count()).label("error_rate"),
        func.coalesce(_as_float(func.sum(rows.c.opened * rows.c.clicked), dialect)
                      / func.nullif(func.sum(rows.c.opened), 0), 0).label("ctor"),
    ).group_by(rows.c.posting_id)).subquery("posting_rate")
    per_contact = (
        select(
            rows.c.contact_id,
            func.sum(rows.c.sent).label("delivered"),
            func.count().label("attempted"),
            func.sum(rows.c.error).label("errors"),
            func.sum(rows.c.opened).label("opened"),
            func.sum(rows.c.clicked).label("clicked"),
            func.sum(rows.c.opened * rows.c.clicked).label("clicked_after_open"),
            func.sum(rows.c.unsubscribed).label("unsubscribed"),
            func.sum(rows.c.complained).label("complaints"),
            func.sum(rows.c.sent * posting_rate.c.open_rate).label("expected_opened"),
            func.sum(rows.c.sent * posting_rate.c.click_rate).label("expected_clicked"),
            func.sum(rows.c.opened * posting_rate.c.ctor).label("expected_clicked_after_open"),
            func.sum(rows.c.sent * posting_rate.c.unsub_rate).label("expected_unsubscribed"),
            func.sum(rows.c.sent * posting_rate.c.complaint_rate).label("expected_complaints"),
            func.sum(posting_rate.c.error_rate).label("expected_errors"),
        )
        .select_from(rows.join(posting_rate, posting_rate.c.posting_id == rows.c.posting_id))
        .group_by(rows.c.contact_id)
    )
    per_contact = recipients_first(per_contact).subquery("per_contact")
    source = per_contact.join(contact, contact.c.ID == per_contact.c.contact_id)
    sums = [func.sum(case((per_contact.c.delivered > 0, 1), else_=0)).label("contacts"),
            func.count().label("attempted_contacts")]
    for name, (events, trials, expected) in _METRIC_COLUMNS.items():
        y, d, e = per_contact.c[events], per_contact.c[trials], per_contact.c[expected]
        sums += [
            func.sum(y).label(f"{name}__y"), func.sum(d).label(f"{name}__d"), func.sum(e).label(f"{name}__e"),
            func.sum(y * y).label(f"{name}__yy"), func.sum(d * d).label(f"{name}__dd"),
            func.sum(e * e).label(f"{name}__ee"), func.sum(y * d).label(f"{name}__yd"),
            func.sum(y * e).label(f"{name}__ye"),
        ]
    labels = [d.label.label(f"segment_{i}") for i, d in enumerate(dimensions)]
    stmt = (select(*labels, *sums).select_from(_with_joins(source, contact, dimensions))
            .group_by(*(d.label for d in dimensions)))
    frame = _frame(conn, stmt, dimensions)
    numeric = [c for c in frame.columns if c not in {d.name for d in dimensions}]
    # MySQL returns DECIMAL sums: floats from here on
    frame[numeric] = frame[numeric].astype(float).fillna(0.0)
    return frame


def _label(value) -> str:
    text = "" if value is None else str(value).strip()
    return text or EMPTY_VALUE


def _dimension_frame(frame: pd.DataFrame, dimension: str, dimensions: list[Dimension],
                     keys: tuple[str, ...] = ()) -> pd.DataFrame:
    """One dimension's rows of a frame grouped by several dimensions: summed by `keys` + segment,
    contacts outside the dimension dropped."""
    names = {d.name for d in dimensions}
    values = [c for c in frame.columns if c not in names and c not in keys]
    inside = frame[frame[dimension].notna()]
    inside = inside.assign(segment=inside[dimension].map(_label))
    return inside.groupby([*keys, "segment"], as_index=False)[values].sum()


def cluster_totals(row: pd.Series, metric: str, reference: str) -> stats.ClusterTotals:
    """ClusterTotals of `metric` from a contact_cluster_sums row; reference "d" (denominator: the
    pooled rate) or "e" (expected events: the posting-standardised ratio)."""
    r = reference
    clusters = row["attempted_contacts"] if metric == "error_rate" else row["contacts"]
    return stats.ClusterTotals(
        clusters=float(clusters), y=row[f"{metric}__y"], x=row[f"{metric}__{r}"],
        yy=row[f"{metric}__yy"], xx=row[f"{metric}__{r}{r}"], xy=row[f"{metric}__y{r}"])


# --- the analysis -----------------------------------------------------------------------------------

def _dimensions(settings: SegmentSettings) -> list[tuple[str, dict | None]]:
    builtin = [(name, None) for name in settings.dimensions]
    return builtin + [(c["name"], c) for c in settings.custom]


def _rate(events, trials) -> float:
    return float(events) / float(trials) if trials else float("nan")


def _segment_metrics(dimension: str, sums: pd.DataFrame, counts: pd.DataFrame, previous: pd.DataFrame,
                     settings: SegmentSettings, total_delivered: int, complaints_known: bool) -> pd.DataFrame:
    """One row per segment: sizes, every rate with its 95% interval, the previous period's rates."""
    before = previous.groupby("segment")[list(_COUNT_COLUMNS)].sum()
    out = []
    for _, row in sums.iterrows():
        segment = row["segment"]
        delivered = int(round(row["open_rate__d"]))
        record = {"dimension": dimension, "segment": segment, "contacts": int(row["contacts"]),
                  "delivered": delivered,
                  "tested": bool(delivered >= settings.min_delivered
                                 and total_delivered - delivered >= settings.min_delivered)}
        for metric in RATE_METRICS:
            if metric == "complaint_rate" and not complaints_known:
                record.update({metric: None, f"{metric}_ci": None, f"previous_{metric}": None,
                               f"{metric}_change_pp": None})
                continue
            totals = cluster_totals(row, metric, "d")
            record[metric] = totals.ratio
            record[f"{metric}_ci"] = list(stats.clustered_wilson_interval(totals))
            record[f"{metric}_design_effect"] = totals.design_effect()
            events, trials = _POSTING_COLUMNS[metric]
            earlier = (_rate(before.at[segment, events], before.at[segment, trials])
                       if segment in before.index else float("nan"))
            record[f"previous_{metric}"] = earlier
            record[f"{metric}_change_pp"] = (totals.ratio - earlier) * 100
        out.append(record)
    return pd.DataFrame(out).sort_values("delivered", ascending=False, ignore_index=True)


def _segment_tests(dimension: str, sums: pd.DataFrame, total: pd.Series, counts: pd.DataFrame,
                   dimension_counts: pd.DataFrame, metrics: pd.DataFrame, alpha: float) -> list[dict]:
    """Each tested segment against the rest of its dimension, for every metric with events."""
    per_posting = counts.groupby(["segment", "posting_id"])[list(_COUNT_COLUMNS)].sum()
    posting_total = dimension_counts.groupby("posting_id")[list(_COUNT_COLUMNS)].sum()
    tested = set(metrics.loc[metrics["tested"], "segment"])
    versus = _VERSUS.get(dimension, f"rest of {dimension}")
    tests = []
    for _, row in sums[sums["segment"].isin(tested)].iterrows():
        segment = row["segment"]
        seg_postings = per_posting.loc[segment].reindex(posting_total.index, fill_value=0)
        rest_postings = posting_total - seg_postings
        for metric in RATE_METRICS:
            events, trials = _POSTING_COLUMNS[metric]
            if seg_postings[events].sum() + rest_postings[events].sum() == 0:
                continue                      # nothing happened on either side: nothing to compare
            ratio = stats.within_posting_rate_ratio(seg_postings[events], seg_postings[trials],
                                                    rest_postings[events], rest_postings[trials])
            seg_std = cluster_totals(row, metric, "e")
            rest_std = cluster_totals(total, metric, "e") - seg_std
            se = np.sqrt(seg_std.log_ratio_variance() + rest_std.log_ratio_variance())
            within = stats.ratio_test(np.log(ratio) if ratio > 0 else float("nan"), se, alpha)
            seg_raw = cluster_totals(row, metric, "d")
            rest_raw = cluster_totals(total, metric, "d") - seg_raw
            raw = stats.pooled_ratio_test(seg_raw, rest_raw, alpha)
            tests.append({
                "dimension": dimension, "metric": metric, "segment": segment, "versus": versus,
                "ratio": within.ratio, "ci": list(within.ci), "p_value": within.p_value,
                "segment_rate": seg_raw.ratio, "versus_rate": rest_raw.ratio,
                "segment_delivered": int(round(row["open_rate__d"])),
                "versus_delivered": int(round(total["open_rate__d"] - row["open_rate__d"])),
                "raw_ratio": raw.ratio, "raw_ci": list(raw.ci), "raw_p_value": raw.p_value,
            })
    return tests


def _is_partition(conn: Connection, schema: BitrixSchema, dimension: Dimension) -> bool:
    """True when every contact is in at most one segment of the dimension (a contact-level query,
    run only for address books and custom columns: the other dimensions are so by construction)."""
    if dimension.one_per_contact:
        return True
    members = membership(schema, dimension).subquery("members")
    rows, contacts = conn.execute(select(func.count(), func.count(func.distinct(members.c.contact_id)))).one()
    return rows == contacts


def _query_groups(conn: Connection, schema: BitrixSchema, dimensions: list[Dimension]) -> list[tuple[list, bool]]:
    """(dimensions, overlapping): dimensions whose segments do not overlap are counted together, in
    one query per table; a dimension with overlapping segments (a contact in two address books)
    gets its own queries."""
    partitions = [d for d in dimensions if _is_partition(conn, schema, d)]
    overlapping = [([d], True) for d in dimensions if d not in partitions]
    return ([(partitions, False)] if partitions else []) + overlapping


def _dimension_totals(conn, schema, period, dimension: Dimension, overlapping: bool,
                      counts: pd.DataFrame, sums: pd.DataFrame):
    """Counts per posting and contact sums of everyone in the dimension (in any of its segments).

    A segment is compared with the rest of its dimension: contacts outside every segment (not in
    the CRM, in no address book) are not part of it. When segments do not overlap these are the
    segments' sums; otherwise each member is counted once by queries over distinct members.
    """
    if not overlapping:
        return counts, sums.drop(columns="segment").sum().to_frame().T
    everyone = [_everyone_in(schema, dimension)]
    return (_dimension_frame(posting_segment_counts(conn, schema, period, everyone), dimension.name, everyone,
                             ("posting_id", "month", "period")),
            _dimension_frame(contact_cluster_sums(conn, schema, period, everyone), dimension.name, everyone))


def analyse_segments(conn: Connection, schema: BitrixSchema, period: Period, settings: SegmentSettings,
                     human_opens: opens.ContactEvidence | None = None) -> SegmentResult:
    """Every dimension's segments with their rates and intervals, and the adjusted comparisons.

    Comparisons: each segment (delivered >= settings.min_delivered, and so is the rest of its
    dimension) against the rest of its dimension, for each of RATE_METRICS. ``ratio`` is the
    within-posting rate ratio segment ÷ rest (Poisson model with one effect per posting: a segment
    that merely got better letters is not higher); its interval and p-value use a sandwich variance
    with the contact as cluster. ``raw_ratio`` is the plain pooled ratio (also contact-clustered).
    p-values are adjusted across the whole table (Holm, or Benjamini–Hochberg with correction
    "fdr_bh"); a comparison whose raw ratio is significant while the within-posting one is not is a
    ``mix_effect``.

    With `human_opens` (opens.classify_contacts of the same period) each segment also gets the
    open-inflation report's headline estimate of its human open rate (Apple MPP and scanner opens
    removed), with a contact-bootstrap interval; it is shown, not tested.
    """
    notes: list[str] = []
    previous_period = period.previous()
    allow_memory_temp_tables(conn, schema.dialect)
    complaints_known = complaints_recorded(schema)
    if not complaints_known:
        notes.append("complaint_rate is null: the database has no b_sender_abuse table with CONTACT_ID")
    dimensions = []
    for name, custom in _dimensions(settings):
        try:
            dimensions.append(segment_dimension(schema, name, period, custom))
        except DimensionError as exc:
            notes.append(f"dimension {name} skipped: {exc}")

    metric_frames, test_rows, monthly_frames, posting_frames = [], [], [], []
    for group, overlapping in _query_groups(conn, schema, dimensions):
        both = posting_segment_counts(conn, schema, period, group, previous_period)
        sums_all = contact_cluster_sums(conn, schema, period, group)
        for dimension in group:
            keys = ("posting_id", "month", "period")
            counts_both = _dimension_frame(both, dimension.name, group, keys)
            counts = counts_both[counts_both["period"] == "current"]
            previous = counts_both[counts_both["period"] == "previous"]
            sums = _dimension_frame(sums_all, dimension.name, group)
            if sums.empty:
                notes.append(f"dimension {dimension.name}: no contact delivered in the period belongs to any "
                             "of its segments")
                continue
            dimension_counts, dimension_sums = _dimension_totals(conn, schema, period, dimension, overlapping,
                                                                 counts, sums)
            total = dimension_sums.iloc[0]
            metrics = _segment_metrics(dimension.name, sums, counts, previous, settings,
                                       int(round(total["open_rate__d"])), complaints_known)
            if human_opens is not None:
                metrics = _with_human_opens(conn, schema, dimension, metrics, human_opens)
            metric_frames.append(metrics)
            test_rows += _segment_tests(dimension.name, sums, total, counts, dimension_counts, metrics,
                                        settings.alpha)
            monthly_frames.append(_monthly(dimension.name, counts))
            posting_frames.append(counts.groupby(["posting_id", "segment"], as_index=False)[list(_COUNT_COLUMNS)]
                                  .sum().assign(dimension=dimension.name))
    if human_opens is None:
        notes.append("open_rate is the raw open rate (any read, machine opens included); human_open_rate (MPP "
                     "corrected) was not computed for this run")
    else:
        notes.append(f"human_open_rate: the open-inflation estimate per segment ({human_opens.evidence} "
                     "evidence), shown with a contact-bootstrap interval and not tested; differences test the raw "
                     "open_rate, within postings")

    metrics = pd.concat(metric_frames, ignore_index=True) if metric_frames else pd.DataFrame()
    differences = _adjust(pd.DataFrame(test_rows), settings)
    monthly = pd.concat(monthly_frames, ignore_index=True) if monthly_frames else pd.DataFrame()
    postings = pd.concat(posting_frames, ignore_index=True) if posting_frames else pd.DataFrame()
    figures = _figures(metrics, differences, settings, period, previous_period)
    return SegmentResult(metrics, differences, monthly, postings, figures, notes)


def _with_human_opens(conn: Connection, schema: BitrixSchema, dimension: Dimension, metrics: pd.DataFrame,
                      human_opens: opens.ContactEvidence) -> pd.DataFrame:
    """`metrics` with human_open_rate, its interval and open_inflation_pp (raw − human, points) per
    segment, from the contacts of each segment (one contact-level query)."""
    result = conn.execute(membership(schema, dimension))
    members = pd.DataFrame(result.all(), columns=list(result.keys()))
    members["segment"] = members["segment"].map(_label)
    human = opens.human_open_rates_by_segment(human_opens, members)
    human = human.rename(columns={"inflation_pp": "open_inflation_pp"})
    return metrics.merge(human[["segment", "human_open_rate", "human_open_rate_ci", "open_inflation_pp"]],
                         on="segment", how="left")


def _monthly(dimension: str, counts: pd.DataFrame) -> pd.DataFrame:

    """Segment × month rates (fractions) from the posting × month × segment counts."""
    grouped = counts.groupby(["segment", "month"], as_index=False)[list(_COUNT_COLUMNS)].sum()
    for metric, (events, trials) in _POSTING_COLUMNS.items():
        grouped[metric] = grouped[events] / grouped[trials].where(grouped[trials] > 0)
    return grouped.assign(dimension=dimension)


def _adjust(tests: pd.DataFrame, settings: SegmentSettings) -> pd.DataFrame:
    if tests.empty:
        return tests
    tests["p_adjusted"], tests["significant"] = stats.adjust_p_values(
        tests["p_value"], settings.correction, settings.alpha)
    tests["raw_p_adjusted"], raw_significant = stats.adjust_p_values(
        tests["raw_p_value"], settings.correction, settings.alpha)
    tests["mix_effect"] = raw_significant & ~tests["significant"]
    tests["correction"] = settings.correction
    return tests


def _figures(metrics: pd.DataFrame, differences: pd.DataFrame, settings: SegmentSettings,
             period: Period, previous_period: Period) -> dict:
    dimensions: dict = {}
    keep = ["delivered", "contacts", "tested", *[k for m in RATE_METRICS for k in
            (m, f"{m}_ci", f"previous_{m}", f"{m}_change_pp")],
            "human_open_rate", "human_open_rate_ci", "open_inflation_pp"]
    for record in metrics.to_dict(orient="records"):
        dimensions.setdefault(record["dimension"], {})[record["segment"]] = {
            k: record[k] for k in keep if k in record}
    diff_keys = ["dimension", "metric", "segment", "versus", "ratio", "ci", "p_value", "p_adjusted",
                 "significant", "segment_rate", "versus_rate", "segment_delivered", "versus_delivered",
                 "raw_ratio", "raw_ci", "raw_p_adjusted", "mix_effect"]
    differences_list = [] if differences.empty else differences[diff_keys].to_dict(orient="records")
    return {
        "dimensions": dimensions,
        "differences": differences_list,
        "correction": settings.correction,
        "min_delivered": settings.min_delivered,
        "alpha": settings.alpha,
        "previous_period": {"start": previous_period.start, "end": previous_period.end},
        "method": ("within-posting rate ratio (Poisson model with posting effects), contact-clustered "
                   "sandwich variance; intervals on rates: Wilson on the contact-clustered effective size"),
    }


def _how_often(ratio: float) -> str:
    return f"{ratio:.1f}× as often as" if ratio >= 1 else f"{1 - ratio:.0%} less often than"


def marketer_sentence(difference: dict) -> str:
    """One finding in a marketer's words, e.g. "Subscribers in address book X click 1.8× as often
    as the rest of list, in the same mailings (95% interval 1.5–2.1×)"."""
    who = {"list": f"Subscribers in address book «{difference['segment']}»",
           "provider": f"Subscribers on {difference['segment']}",
           "crm_source": f"Contacts from CRM source {difference['segment']}",
           "tenure": f"Contacts subscribed {difference['segment']} ago",
           "client": (f"Readers on {difference['segment']}" if difference["segment"] != UNKNOWN
                      else "Contacts whose mail client is unknown")}.get(
        difference["dimension"], f"Contacts with {difference['dimension']} = {difference['segment']}")
    low, high = difference["ci"]
    return (f"{who} {_METRIC_VERBS[difference['metric']]} {_how_often(difference['ratio'])} the "
            f"{difference['versus']}, in the same mailings (95% interval {low:.2f}–{high:.2f}×, "
            f"adjusted p = {difference['p_adjusted']:.2g})")


TABLE_COLUMNS = ["segment", "contacts", "delivered", "open_rate", "open_rate_ci", "human_open_rate",
                 "human_open_rate_ci", "click_rate", "click_rate_ci", "ctor", "ctor_ci", "unsub_rate", "unsub_rate_ci",
                 "complaint_rate", "complaint_rate_ci", "error_rate", "error_rate_ci", "previous_open_rate",
                 "open_rate_change_pp", "tested"]


def dimension_table(metrics: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """The table shown for one dimension: one row per segment, largest first."""
    rows = metrics[metrics["dimension"] == dimension]
    return rows[[c for c in TABLE_COLUMNS if c in rows.columns]].reset_index(drop=True)


def findings(differences: pd.DataFrame, limit: int = 10) -> list[tuple[str, str, str]]:
    """(severity, title, detail): the `limit` largest significant differences, then every mix effect
    on open or click rate. The full list is the differences table."""
    if differences.empty:
        return []
    out = []
    significant = differences[differences["significant"]].copy()
    significant["size"] = np.abs(np.log(significant["ratio"]))
    for record in significant.sort_values("size", ascending=False).head(limit).to_dict(orient="records"):
        severity = "medium" if record["size"] >= np.log(1.5) else "low"
        out.append((severity, marketer_sentence(record),
                    f"{record['segment_delivered']:,} delivered sends against {record['versus_delivered']:,}; "
                    f"pooled over all mailings the ratio is {record['raw_ratio']:.2f}"))
    mixed = differences[differences["mix_effect"] & differences["metric"].isin(["open_rate", "click_rate"])]
    for record in mixed.to_dict(orient="records"):
        verb = _METRIC_VERBS[record["metric"]]
        out.append(("info", f"Mix effect: {record['segment']} ({record['dimension']}) seem to {verb} "
                            f"{_how_often(record['raw_ratio'])} the {record['versus']}, but not in the same mailings",
                    f"within postings the ratio is {record['ratio']:.2f} (95% interval {record['ci'][0]:.2f}–"
                    f"{record['ci'][1]:.2f}): they received different letters, they do not behave differently"))
    return out


def headline(differences: pd.DataFrame, correction: str) -> str:
    """The report's one line: how many differences hold within mailings, and the largest click-rate
    one (open rates by provider and client are dominated by machine opens)."""
    significant = differences[differences["significant"]] if len(differences) else differences
    if significant.empty:
        return f"no segment differs significantly from the rest within the same mailings ({correction} correction)"
    clicks = significant[significant["metric"] == "click_rate"]
    pool = clicks if len(clicks) else significant
    top = pool.assign(size=np.abs(np.log(pool["ratio"]))).sort_values("size", ascending=False).iloc[0]
    return f"{len(significant)} significant segment differences; e.g. {marketer_sentence(top.to_dict())}"
