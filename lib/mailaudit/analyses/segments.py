"""Segment comparisons: every rate with its interval, segments compared with the rest of their
dimension within the same postings, p-values adjusted across the whole table.

Definitions (period = sends whose recipient DATE_SENT is in [period start, period end]):

- ``delivered``: recipient rows with STATUS "sent" (``RecipientStatus.SENT``) in the period.
- ``open_rate``: delivered rows with at least one b_sender_posting_read row ÷ delivered rows.
- ``click_rate``: delivered rows with at least one b_sender_posting_click row ÷ delivered rows.
- ``ctor`` (click-to-open): opened rows that also have a click ÷ opened rows.
- ``unsub_rate``: delivered rows with at least one b_sender_posting_unsub row ÷ delivered rows.
- ``error_rate``: rows with STATUS "error" ÷ rows with STATUS "sent" or "error" (period as above).
- ``complaint_rate``: contacts with a b_sender_abuse row dated in the period ÷ contacts with at
  least one delivered row in the period (complaints carry no posting, so this rate is per contact).

All rates are fractions. Segments are properties of the contact (address book, mailbox provider,
CRM source, tenure at period end, mail client, custom column), so a comparison is always between
two disjoint sets of contacts, and the contact is the independent unit of every interval and test.

Counting happens in SQL: one query grouped by posting × month × segment, one grouped by segment
over per-contact sums (for cluster-robust variances). No recipient-level row leaves the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Float, and_, case, cast, exists, func, literal, literal_column, or_, select
from sqlalchemy.engine import Connection

from mailaudit import emails
from mailaudit.analyses import stats
from mailaudit.bitrix.codes import MAIL_AGENT_CLIENT, CrmMultiField, RecipientStatus, SenderContactType
from mailaudit.bitrix.schema import BitrixSchema
from mailaudit.period import Period
from mailaudit.sources.sql import month_label

BUILTIN_DIMENSIONS = ("list", "provider", "crm_source", "tenure", "client")
RATE_METRICS = ("open_rate", "click_rate", "ctor", "unsub_rate")
"""Metrics with a per-posting numerator and denominator: shown with intervals and tested."""

TENURE_BANDS = ("<1y", "1–2y", "2–3y", "3y+")
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
}
# metric -> (events column, trials column) of the posting × segment counts
_POSTING_COLUMNS = {
    "open_rate": ("opened", "delivered"),
    "click_rate": ("clicked", "delivered"),
    "ctor": ("clicked_after_open", "opened"),
    "unsub_rate": ("unsubscribed", "delivered"),
}
_METRIC_VERBS = {"open_rate": "open", "click_rate": "click", "ctor": "click after opening",
                 "unsub_rate": "unsubscribe"}
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

    @classmethod
    def from_params(cls, segments: dict) -> "SegmentSettings":
        return cls(dimensions=list(segments["dimensions"]), custom=list(segments.get("custom") or []),
                   min_delivered=int(segments["min_delivered"]), correction=segments["correction"])


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


def _recipient_source(schema: BitrixSchema):
    """(from-clause, contact id column, recipient table) for recipient rows of both layouts.

    The legacy layout (sender 15/16) keeps EMAIL on the recipient instead of CONTACT_ID: the
    contact is found by its unique EMAIL.
    """
    recipient = schema.table("b_sender_posting_recipient")
    if schema.layout == "legacy":
        contact = schema.table("b_sender_contact")
        source = recipient.join(contact, contact.c.EMAIL == recipient.c.EMAIL)
        return source, contact.c.ID, recipient
    return recipient, recipient.c.CONTACT_ID, recipient


def _flag_exists(schema: BitrixSchema, table_name: str, recipient_id):
    table = schema.table(table_name)
    return case((exists().where(table.c.RECIPIENT_ID == recipient_id), 1), else_=0)


def _in_period(column, period: Period):
    return and_(column >= period.start_dt, column < period.end_exclusive)


def delivered_rows(schema: BitrixSchema, period: Period):
    """Delivered recipient rows in the period with their posting, contact and event flags (0/1)."""
    source, contact_id, recipient = _recipient_source(schema)
    opened = _flag_exists(schema, "b_sender_posting_read", recipient.c.ID)
    clicked = _flag_exists(schema, "b_sender_posting_click", recipient.c.ID)
    unsubscribed = (_flag_exists(schema, "b_sender_posting_unsub", recipient.c.ID)
                    if schema.has("b_sender_posting_unsub") else literal(0))
    return (
        select(
            recipient.c.POSTING_ID.label("posting_id"),
            contact_id.label("contact_id"),
            month_label(recipient.c.DATE_SENT, schema.dialect).label("month"),
            opened.label("opened"),
            clicked.label("clicked"),
            unsubscribed.label("unsubscribed"),
        )
        .select_from(source)
        .where(recipient.c.STATUS == RecipientStatus.SENT, _in_period(recipient.c.DATE_SENT, period))
    )


def _contact_table(schema: BitrixSchema):
    contact = schema.table("b_sender_contact")
    address = contact.c.EMAIL if schema.layout == "legacy" else contact.c.CODE
    email_only = True if schema.layout == "legacy" else contact.c.TYPE_ID == int(SenderContactType.EMAIL)
    return contact, address, email_only


def _provider_label(address):
    """CASE over the provider domains of emails.PROVIDER_DOMAINS (LIKE is portable; a domain
    function is not)."""
    lowered = func.lower(address)
    whens = [(or_(*(lowered.like(f"%@{domain}") for domain in domains)), provider)
             for provider, domains in emails.PROVIDER_DOMAINS.items()]
    return case(*whens, else_=emails.OTHER_PROVIDER)


def tenure_cutoffs(period: Period) -> list[datetime]:
    """Instants splitting contact DATE_INSERT into TENURE_BANDS: age measured at the period end
    (midnight after its last day) in 365-day years; a contact exactly 365 days old is in 1–2y."""
    return [period.end_exclusive - timedelta(days=365 * years) for years in (1, 2, 3)]


def segment_membership(schema: BitrixSchema, dimension: str, period: Period, custom: dict | None = None):
    """SELECT (contact_id, segment) for one dimension: which contacts belong to which segment.

    A contact may belong to several segments of a dimension (address books, custom columns with
    several rows per contact); the rest of a segment is every other delivered contact.
    """
    contact, address, email_only = _contact_table(schema)
    if custom is not None:
        return _custom_membership(schema, custom)
    if dimension == "list":
        _need(schema, "b_sender_list", "b_sender_contact_list")
        book, link = schema.table("b_sender_list"), schema.table("b_sender_contact_list")
        return (select(link.c.CONTACT_ID.label("contact_id"), book.c.NAME.label("segment"))
                .select_from(link.join(book, book.c.ID == link.c.LIST_ID)
                             .join(contact, contact.c.ID == link.c.CONTACT_ID))
                .where(email_only).distinct())
    if dimension == "provider":
        return select(contact.c.ID.label("contact_id"), _provider_label(address).label("segment")).where(email_only)
    if dimension == "tenure":
        if "DATE_INSERT" not in contact.c:
            raise DimensionError("b_sender_contact has no DATE_INSERT column")
        one, two, three = tenure_cutoffs(period)
        inserted = contact.c.DATE_INSERT
        band = case((inserted.is_(None), UNKNOWN), (inserted > one, TENURE_BANDS[0]),
                    (inserted > two, TENURE_BANDS[1]), (inserted > three, TENURE_BANDS[2]),
                    else_=TENURE_BANDS[3])
        return select(contact.c.ID.label("contact_id"), band.label("segment")).where(email_only)
    if dimension == "client":
        if "AGENT" not in contact.c:
            raise DimensionError("b_sender_contact has no AGENT column (legacy layout)")
        label = case(*((contact.c.AGENT == int(code), client) for code, client in MAIL_AGENT_CLIENT.items()),
                     else_=UNKNOWN)
        return select(contact.c.ID.label("contact_id"), label.label("segment")).where(email_only)
    if dimension == "crm_source":
        return _crm_source_membership(schema, contact, address, email_only)
    raise DimensionError(f"unknown dimension {dimension!r}; dimensions: {', '.join(BUILTIN_DIMENSIONS)}")


def _need(schema: BitrixSchema, *tables: str) -> None:
    missing = [t for t in tables if not schema.has(t)]
    if missing:
        raise DimensionError("missing table(s) " + ", ".join(missing))


def _crm_source_membership(schema, contact, address, email_only):
    """b_crm_contact.SOURCE_ID of the CRM contact whose e-mail (b_crm_field_multi, lower-cased and
    trimmed) equals the sender contact's address; several CRM contacts: the smallest SOURCE_ID.
    Contacts that are no CRM contact's address are outside this dimension."""
    _need(schema, "b_crm_contact", "b_crm_field_multi")
    crm, multi = schema.table("b_crm_contact"), schema.table("b_crm_field_multi")
    crm_email = func.lower(func.trim(multi.c.VALUE))
    source = func.nullif(func.trim(crm.c.SOURCE_ID), "")
    by_email = (
        select(crm_email.label("email"), func.min(source).label("source_id"))
        .select_from(multi.join(crm, crm.c.ID == multi.c.ELEMENT_ID))
        .where(multi.c.ENTITY_ID == CrmMultiField.ENTITY_CONTACT, multi.c.TYPE_ID == CrmMultiField.TYPE_EMAIL)
        .group_by(crm_email)
        .subquery("crm_email_source")
    )
    label = func.coalesce(by_email.c.source_id, NO_SOURCE)
    return (select(contact.c.ID.label("contact_id"), label.label("segment"))
            .select_from(contact.join(by_email, by_email.c.email == func.lower(func.trim(address))))
            .where(email_only))


def _custom_membership(schema: BitrixSchema, custom: dict):
    """A custom dimension: a column of a reflected table joined to the contact by its ID
    (b_sender_contact.ID, or CONTACT_ID of any other table). No free SQL: names are checked
    against the reflected schema."""
    table_name, column = custom["table"], custom["column"].upper()
    if not schema.has(table_name):
        raise DimensionError(f"custom dimension {custom['name']!r}: table {table_name} is not a known "
                             "Bitrix table in this database")
    table = schema.table(table_name)
    if column not in table.c:
        raise DimensionError(f"custom dimension {custom['name']!r}: table {table_name} has no column {column}")
    key = "ID" if table_name == "b_sender_contact" else "CONTACT_ID"
    if key not in table.c:
        raise DimensionError(f"custom dimension {custom['name']!r}: table {table_name} has no CONTACT_ID "
                             "column to join contacts by")
    contact, _address, email_only = _contact_table(schema)
    stmt = select(table.c[key].label("contact_id"), table.c[column].label("segment"))
    if table_name != "b_sender_contact":
        stmt = stmt.join(contact, contact.c.ID == table.c.CONTACT_ID)
    return stmt.where(email_only).distinct()


# --- queries -----------------------------------------------------------------------------------------

_COUNT_COLUMNS = ("delivered", "opened", "clicked", "clicked_after_open", "unsubscribed")


def _posting_counts(rows, group_columns):
    return select(
        *group_columns,
        func.count().label("delivered"),
        func.sum(rows.c.opened).label("opened"),
        func.sum(rows.c.clicked).label("clicked"),
        func.sum(rows.c.opened * rows.c.clicked).label("clicked_after_open"),
        func.sum(rows.c.unsubscribed).label("unsubscribed"),
    )


def posting_segment_counts(conn: Connection, schema: BitrixSchema, period: Period, membership) -> pd.DataFrame:
    """Delivered rows and events grouped by posting × month × segment (one SQL GROUP BY).

    With ``membership=None`` the counts are for all delivered rows (segment "all").
    """
    rows = delivered_rows(schema, period).subquery("delivered_rows")
    if membership is None:
        stmt = _posting_counts(rows, [rows.c.posting_id, rows.c.month]).group_by(rows.c.posting_id, rows.c.month)
    else:
        members = membership.subquery("members")
        stmt = (_posting_counts(rows, [rows.c.posting_id, rows.c.month, members.c.segment])
                .select_from(rows.join(members, members.c.contact_id == rows.c.contact_id))
                .group_by(rows.c.posting_id, rows.c.month, members.c.segment))
    frame = pd.DataFrame(conn.execute(stmt).mappings().all())
    columns = ["posting_id", "month"] + ([] if membership is None else ["segment"]) + list(_COUNT_COLUMNS)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame[list(_COUNT_COLUMNS)] = frame[list(_COUNT_COLUMNS)].astype("int64")
    if membership is None:
        frame["segment"] = "all"
    else:
        frame["segment"] = frame["segment"].map(_label)
    return frame[["posting_id", "month", "segment", *_COUNT_COLUMNS]]


def _label(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return EMPTY_VALUE
    return str(value).strip()


def contact_cluster_sums(conn: Connection, schema: BitrixSchema, period: Period, membership) -> pd.DataFrame:
    """Per segment, sums over its contacts of per-contact counts, squares and cross-products.

    Per contact: delivered, opened, clicked, clicked_after_open, unsubscribed, and the events
    expected under the posting-only model (each send weighted by its posting's overall rate).
    These sums are everything the contact-clustered variances need. ``membership=None`` gives the
    single row "all" (every delivered contact once).
    """
    dialect = schema.dialect
    rows = delivered_rows(schema, period).cte("delivered_rows")
    posting_rate = select(
        rows.c.posting_id,
        (_as_float(func.sum(rows.c.opened), dialect) / func.count()).label("open_rate"),
        (_as_float(func.sum(rows.c.clicked), dialect) / func.count()).label("click_rate"),
        (_as_float(func.sum(rows.c.unsubscribed), dialect) / func.count()).label("unsub_rate"),
        func.coalesce(_as_float(func.sum(rows.c.opened * rows.c.clicked), dialect)
                      / func.nullif(func.sum(rows.c.opened), 0), 0).label("ctor"),
    ).group_by(rows.c.posting_id).subquery("posting_rate")
    per_contact = (
        select(
            rows.c.contact_id,
            func.count().label("delivered"),
            func.sum(rows.c.opened).label("opened"),
            func.sum(rows.c.clicked).label("clicked"),
            func.sum(rows.c.opened * rows.c.clicked).label("clicked_after_open"),
            func.sum(rows.c.unsubscribed).label("unsubscribed"),
            func.sum(posting_rate.c.open_rate).label("expected_opened"),
            func.sum(posting_rate.c.click_rate).label("expected_clicked"),
            func.sum(rows.c.opened * posting_rate.c.ctor).label("expected_clicked_after_open"),
            func.sum(posting_rate.c.unsub_rate).label("expected_unsubscribed"),
        )
        .select_from(rows.join(posting_rate, posting_rate.c.posting_id == rows.c.posting_id))
        .group_by(rows.c.contact_id)
        .subquery("per_contact")
    )
    sums = [func.count().label("contacts")]
    for name, (events, trials, expected) in _METRIC_COLUMNS.items():
        y, d, e = per_contact.c[events], per_contact.c[trials], per_contact.c[expected]
        sums += [
            func.sum(y).label(f"{name}__y"), func.sum(d).label(f"{name}__d"), func.sum(e).label(f"{name}__e"),
            func.sum(y * y).label(f"{name}__yy"), func.sum(d * d).label(f"{name}__dd"),
            func.sum(e * e).label(f"{name}__ee"), func.sum(y * d).label(f"{name}__yd"),
            func.sum(y * e).label(f"{name}__ye"),
        ]
    if membership is None:
        stmt = select(*sums).select_from(per_contact)
    else:
        members = membership.subquery("members")
        stmt = (select(members.c.segment, *sums)
                .select_from(per_contact.join(members, members.c.contact_id == per_contact.c.contact_id))
                .group_by(members.c.segment))
    frame = pd.DataFrame(conn.execute(stmt).mappings().all())
    if frame.empty:
        return frame
    if membership is None:
        frame.insert(0, "segment", "all")
    numeric = frame.columns.drop("segment")
    # MySQL returns DECIMAL sums: floats from here on
    frame[numeric] = frame[numeric].astype(float).fillna(0.0)
    if membership is not None:
        frame["segment"] = frame["segment"].map(_label)
        # distinct raw values can share a label ("" and NULL are both "(empty)")
        frame = frame.groupby("segment", as_index=False, sort=False)[list(numeric)].sum()
    return frame


def cluster_totals(row: pd.Series, metric: str, reference: str) -> stats.ClusterTotals:
    """ClusterTotals of `metric` from a contact_cluster_sums row; reference "d" (denominator: the
    pooled rate) or "e" (expected events: the posting-standardised ratio)."""
    r = reference
    return stats.ClusterTotals(
        clusters=float(row["contacts"]),
        y=row[f"{metric}__y"], x=row[f"{metric}__{r}"], yy=row[f"{metric}__yy"],
        xx=row[f"{metric}__{r}{r}"], xy=row[f"{metric}__y{r}"])


def _error_counts(conn, schema, period, membership) -> pd.DataFrame:
    """Rows sent OK and rows in error per segment (STATUS "sent" / "error", DATE_SENT in period)."""
    source, contact_id, recipient = _recipient_source(schema)
    status = recipient.c.STATUS
    attempted = [RecipientStatus.SENT, RecipientStatus.ERROR]
    members = membership.subquery("members")
    stmt = (
        select(members.c.segment,
               func.sum(case((status.in_(attempted), 1), else_=0)).label("attempted"),
               func.sum(case((status == RecipientStatus.ERROR, 1), else_=0)).label("errors"))
        .select_from(source.join(members, members.c.contact_id == contact_id))
        .where(status.in_(attempted), _in_period(recipient.c.DATE_SENT, period))
        .group_by(members.c.segment)
    )
    return _by_label(pd.DataFrame(conn.execute(stmt).mappings().all(), columns=["segment", "attempted", "errors"]))


def _complaint_counts(conn, schema, period, membership) -> pd.DataFrame:
    """Delivered contacts with a spam complaint (b_sender_abuse dated in the period), per segment."""
    abuse = schema.table("b_sender_abuse")
    rows = delivered_rows(schema, period).subquery("delivered_rows")
    members = membership.subquery("members")
    delivered_contacts = select(rows.c.contact_id).distinct().subquery("delivered_contacts")
    complainers = (select(abuse.c.CONTACT_ID.label("contact_id"))
                   .where(_in_period(abuse.c.DATE_INSERT, period)).distinct().subquery("complainers"))
    stmt = (
        select(members.c.segment, func.count().label("complaints"))
        .select_from(complainers
                     .join(delivered_contacts, delivered_contacts.c.contact_id == complainers.c.contact_id)
                     .join(members, members.c.contact_id == complainers.c.contact_id))
        .group_by(members.c.segment)
    )
    return _by_label(pd.DataFrame(conn.execute(stmt).mappings().all(), columns=["segment", "complaints"]))


def _by_label(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer counts summed by segment label (NULL and "" share the label "(empty)")."""
    counts = frame.columns.drop("segment")
    frame[counts] = frame[counts].fillna(0).astype("int64")
    frame["segment"] = frame["segment"].map(_label)
    return frame.groupby("segment", as_index=False)[list(counts)].sum()


# --- the analysis -----------------------------------------------------------------------------------

def _dimensions(settings: SegmentSettings) -> list[tuple[str, dict | None]]:
    builtin = [(name, None) for name in settings.dimensions]
    return builtin + [(c["name"], c) for c in settings.custom]


def _rate(events, trials) -> float:
    return float(events) / float(trials) if trials else float("nan")


def _segment_metrics(dimension: str, sums: pd.DataFrame, counts: pd.DataFrame, previous: pd.DataFrame,
                     errors: pd.DataFrame | None, complaints: pd.DataFrame | None,
                     settings: SegmentSettings, total_delivered: int) -> pd.DataFrame:
    prev = previous.groupby("segment")[list(_COUNT_COLUMNS)].sum() if not previous.empty else None
    out = []
    for _, row in sums.iterrows():
        segment = row["segment"]
        delivered = int(round(row["open_rate__d"]))
        record = {"dimension": dimension, "segment": segment, "contacts": int(row["contacts"]),
                  "delivered": delivered,
                  "tested": bool(delivered >= settings.min_delivered
                                 and total_delivered - delivered >= settings.min_delivered)}
        for metric in RATE_METRICS:
            totals = cluster_totals(row, metric, "d")
            record[metric] = totals.ratio
            record[f"{metric}_ci"] = list(stats.clustered_wilson_interval(totals))
            record[f"{metric}_design_effect"] = totals.design_effect()
            if prev is not None and segment in prev.index:
                events, trials = _POSTING_COLUMNS[metric]
                before = _rate(prev.at[segment, events], prev.at[segment, trials])
                record[f"previous_{metric}"] = before
                record[f"{metric}_change_pp"] = (totals.ratio - before) * 100
            else:
                record[f"previous_{metric}"] = float("nan")
                record[f"{metric}_change_pp"] = float("nan")
        if errors is not None:
            match = errors[errors["segment"] == segment]
            attempted = int(match["attempted"].sum())
            errored = int(match["errors"].sum())
            record["error_rate"] = _rate(errored, attempted)
            low, high = stats.wilson_interval(errored, attempted)
            record["error_rate_ci"] = [float(low), float(high)]
        if complaints is not None:
            complained = int(complaints.loc[complaints["segment"] == segment, "complaints"].sum())
            record["complaint_rate"] = _rate(complained, record["contacts"])
            low, high = stats.wilson_interval(complained, record["contacts"])
            record["complaint_rate_ci"] = [float(low), float(high)]
        out.append(record)
    frame = pd.DataFrame(out)
    return frame.sort_values("delivered", ascending=False, ignore_index=True)


def _segment_tests(dimension: str, sums: pd.DataFrame, total: pd.Series, counts: pd.DataFrame,
                   dimension_counts: pd.DataFrame, metrics: pd.DataFrame, alpha: float) -> list[dict]:
    per_posting = counts.groupby(["segment", "posting_id"])[list(_COUNT_COLUMNS)].sum()
    posting_total = dimension_counts.groupby("posting_id")[list(_COUNT_COLUMNS)].sum()
    versus = _VERSUS.get(dimension, f"rest of {dimension}")
    tests = []
    for _, row in sums.iterrows():
        segment = row["segment"]
        shown = metrics[metrics["segment"] == segment].iloc[0]
        if not shown["tested"]:
            continue
        seg_postings = per_posting.loc[segment].reindex(posting_total.index, fill_value=0)
        rest_postings = posting_total - seg_postings
        for metric in RATE_METRICS:
            events, trials = _POSTING_COLUMNS[metric]
            if seg_postings[events].sum() + rest_postings[events].sum() == 0:
                continue                      # nothing happened on either side: nothing to compare
            ratio = stats.within_posting_rate_ratio(seg_postings[events], seg_postings[trials],
                                                    rest_postings[events], rest_postings[trials])
            seg_std, rest_std = cluster_totals(row, metric, "e"), cluster_totals(total, metric, "e") - cluster_totals(row, metric, "e")
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


def analyse_segments(conn: Connection, schema: BitrixSchema, period: Period,
                     settings: SegmentSettings) -> SegmentResult:
    """Every dimension's segments with their rates and intervals, and the adjusted comparisons.

    Comparisons: each segment (delivered >= settings.min_delivered, and so is its rest) against
    the rest of its dimension, for each of RATE_METRICS. ``ratio`` is the within-posting rate
    ratio segment ÷ rest (Poisson model with one effect per posting: a segment that merely got
    better letters is not higher); its interval and p-value use a sandwich variance with the
    contact as cluster. ``raw_ratio`` is the plain pooled ratio (also contact-clustered). p-values
    are adjusted across the whole table (Holm, or Benjamini–Hochberg with correction "fdr_bh");
    a comparison whose raw ratio is significant while the within-posting one is not is a
    ``mix_effect``.
    """
    notes: list[str] = []
    previous_period = period.previous()
    has_abuse = schema.has("b_sender_abuse")
    if not has_abuse:
        notes.append("complaint_rate is null: the database has no b_sender_abuse table")
    if not schema.has("b_sender_posting_unsub"):
        notes.append("unsub_rate counts no unsubscribes: the database has no b_sender_posting_unsub table")

    metric_frames, test_rows, monthly_frames, posting_frames = [], [], [], []
    for dimension, custom in _dimensions(settings):
        try:
            membership = segment_membership(schema, dimension, period, custom)
        except DimensionError as exc:
            notes.append(f"dimension {dimension} skipped: {exc}")
            continue
        counts = posting_segment_counts(conn, schema, period, membership)
        sums = contact_cluster_sums(conn, schema, period, membership)
        if sums.empty:
            notes.append(f"dimension {dimension}: no contact delivered in the period belongs to any of its segments")
            continue
        dimension_counts, dimension_sums = _dimension_totals(conn, schema, period, membership, counts, sums)
        total = dimension_sums.iloc[0]
        total_delivered = int(round(total["open_rate__d"]))
        previous = posting_segment_counts(conn, schema, previous_period, membership)
        errors = _error_counts(conn, schema, period, membership)
        complaints = _complaint_counts(conn, schema, period, membership) if has_abuse else None
        metrics = _segment_metrics(dimension, sums, counts, previous, errors, complaints, settings, total_delivered)
        metric_frames.append(metrics)
        test_rows += _segment_tests(dimension, sums, total, counts, dimension_counts, metrics, settings.alpha)
        monthly_frames.append(_monthly(dimension, counts))
        posting_frames.append(counts.groupby(["posting_id", "segment"], as_index=False)[list(_COUNT_COLUMNS)]
                              .sum().assign(dimension=dimension))
    notes.append("open_rate is the raw open rate (any read row); an MPP-corrected rate per segment is not "
                 "computed: the open-inflation analysis estimates human opens per mail client, not per segment")

    metrics = pd.concat(metric_frames, ignore_index=True) if metric_frames else pd.DataFrame()
    differences = _adjust(pd.DataFrame(test_rows), settings)
    monthly = pd.concat(monthly_frames, ignore_index=True) if monthly_frames else pd.DataFrame()
    postings = pd.concat(posting_frames, ignore_index=True) if posting_frames else pd.DataFrame()
    figures = _figures(metrics, differences, settings, period, previous_period)
    return SegmentResult(metrics, differences, monthly, postings, figures, notes)


def _is_partition(conn: Connection, membership) -> bool:
    """True when every contact is in at most one segment of the dimension (a contact-level query)."""
    members = membership.subquery("members")
    rows, contacts = conn.execute(select(func.count(), func.count(func.distinct(members.c.contact_id)))).one()
    return rows == contacts


def _dimension_totals(conn, schema, period, membership, counts: pd.DataFrame, sums: pd.DataFrame):
    """Counts per posting and contact sums of everyone in the dimension (any of its segments).

    A segment is compared with the rest of its dimension: contacts outside every segment (not in
    the CRM, in no address book) are not part of it. When segments do not overlap the totals are
    the segments' sums; otherwise each contact is counted once by a query over distinct members.
    """
    if _is_partition(conn, membership):
        dimension_counts = counts.assign(segment="all")
        dimension_sums = sums.drop(columns="segment").sum().to_frame().T.assign(segment="all")
        return dimension_counts, dimension_sums
    members = membership.subquery("dimension_members")
    everyone = select(members.c.contact_id, literal("all").label("segment")).distinct()
    return (posting_segment_counts(conn, schema, period, everyone),
            contact_cluster_sums(conn, schema, period, everyone))


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
            "error_rate", "error_rate_ci", "complaint_rate", "complaint_rate_ci"]
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


def marketer_sentence(difference: dict) -> str:
    """One finding in a marketer's words, e.g. "Subscribers in address book X click 1.8× as often
    as the rest of list, in the same mailings (95% CI 1.5–2.1×)"."""
    who = {"list": f"Subscribers in address book {difference['segment']}",
           "provider": f"Subscribers on {difference['segment']}",
           "crm_source": f"Contacts from CRM source {difference['segment']}",
           "tenure": f"Contacts with tenure {difference['segment']}",
           "client": f"Readers on {difference['segment']}"}.get(
        difference["dimension"], f"Segment {difference['segment']} of {difference['dimension']}")
    ratio = difference["ratio"]
    low, high = difference["ci"]
    how = f"{ratio:.2f}× as often as" if ratio >= 1 else f"{1 / ratio:.2f}× less often than"
    action = _METRIC_VERBS[difference["metric"]]
    return (f"{who} {action} {how} the {difference['versus']}, in the same mailings "
            f"(ratio 95% CI {low:.2f}–{high:.2f}, adjusted p = {difference['p_adjusted']:.2g})")


TABLE_COLUMNS = ["segment", "contacts", "delivered", "open_rate", "open_rate_ci", "click_rate", "click_rate_ci",
                 "ctor", "ctor_ci", "unsub_rate", "unsub_rate_ci", "error_rate", "complaint_rate",
                 "previous_open_rate", "open_rate_change_pp", "tested"]


def dimension_table(metrics: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """The table shown for one dimension: one row per segment, largest first."""
    rows = metrics[metrics["dimension"] == dimension]
    return rows[[c for c in TABLE_COLUMNS if c in rows.columns]].reset_index(drop=True)


def findings(differences: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(severity, title, detail) per significant difference and per mix effect, largest effect first."""
    if differences.empty:
        return []
    out = []
    significant = differences[differences["significant"]].copy()
    significant["size"] = np.abs(np.log(significant["ratio"]))
    for record in significant.sort_values("size", ascending=False).to_dict(orient="records"):
        severity = "medium" if record["size"] >= np.log(1.5) else "low"
        out.append((severity, marketer_sentence(record),
                    f"{record['segment_delivered']:,} delivered sends vs {record['versus_delivered']:,}; "
                    f"raw ratio {record['raw_ratio']:.2f}"))
    for record in differences[differences["mix_effect"]].to_dict(orient="records"):
        out.append(("info", f"Mix effect: {record['dimension']} {record['segment']} looks "
                            f"{record['raw_ratio']:.2f}× the {record['versus']} on {record['metric']}, "
                            "but not within the same mailings",
                    f"within-posting ratio {record['ratio']:.2f} (95% CI {record['ci'][0]:.2f}–{record['ci'][1]:.2f}):"
                    " the segment received different letters, it does not behave differently"))
    return out
