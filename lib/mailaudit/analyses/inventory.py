"""Data and tracking readiness: what the database holds, its quality, and whether links and clicks are tracked.

Every check returns a count with its denominator and a one-line finding with a severity.
Counting happens in SQL; only small aggregates come back to Python.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import pandas as pd
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.engine import Connection

from mailaudit.bitrix.codes import EMAIL_MESSAGE_CODE, NO, REQUIRED_UTM, RecipientStatus
from mailaudit.bitrix.schema import OPTIONAL_TABLES, BitrixSchema
from mailaudit.period import Period
from mailaudit.sources.db import read_chunks
from mailaudit.sources.sql import month_label

# The date column that tells how far back each table reaches.
DATE_COLUMNS = {
    "b_sender_mailing": "DATE_INSERT",
    "b_sender_mailing_chain": "DATE_INSERT",
    "b_sender_posting": "DATE_SEND",
    "b_sender_posting_recipient": "DATE_SENT",
    "b_sender_posting_read": "DATE_INSERT",
    "b_sender_posting_click": "DATE_INSERT",
    "b_sender_posting_unsub": "DATE_INSERT",
    "b_sender_contact": "DATE_INSERT",
    "b_sender_abuse": "DATE_INSERT",
    "b_main_mail_blacklist": "DATE_INSERT",
    "b_crm_contact": "DATE_CREATE",
    "b_crm_deal": "DATE_CREATE",
    "b_crm_exclusion": "DATE_INSERT",
    "b_crm_act": "CREATED",
    "b_sale_order": "DATE_INSERT",
    "b_user": "DATE_REGISTER",
}

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


@dataclass
class Check:
    """One data-quality or tracking check: ``count`` out of ``denominator`` ``unit``."""

    key: str
    title: str
    count: int | None
    denominator: int | None
    unit: str
    severity: str
    finding: str

    @property
    def share(self) -> float | None:
        if self.count is None or not self.denominator:
            return None
        return self.count / self.denominator


def inventory(conn: Connection, schema: BitrixSchema) -> pd.DataFrame:
    """One row per Bitrix table present: module, rows, first and last date."""
    rows = []
    counts = schema.row_counts(conn)
    module_of = {t: group for group, tables in OPTIONAL_TABLES.items() for t in tables}
    for name in sorted(schema.tables):
        first = last = None
        column_name = DATE_COLUMNS.get(name)
        table = schema.table(name)
        if column_name and column_name in table.c:
            column = table.c[column_name]
            first, last = conn.execute(select(func.min(column), func.max(column))).one()
        rows.append({
            "table": name,
            "group": module_of.get(name, "sender core" if name.startswith("b_sender") else "other"),
            "rows": counts[name],
            "date_column": column_name,
            "first": _as_datetime(first),
            "last": _as_datetime(last),
        })
    return pd.DataFrame(rows)


def _as_datetime(value):
    if value is None or isinstance(value, datetime):
        return value
    return pd.to_datetime(value).to_pydatetime()


def recipient_status_by_month(conn: Connection, schema: BitrixSchema, period: Period) -> pd.DataFrame:
    """Recipient rows per send month and STATUS label, in the period (for the volume chart)."""
    recipients = schema.table("b_sender_posting_recipient")
    month = month_label(recipients.c.DATE_SENT, schema.dialect)
    result = conn.execute(
        select(month.label("month"), recipients.c.STATUS, func.count().label("rows"))
        .where(_sent_in(recipients, period))
        .group_by(month, recipients.c.STATUS)
    )
    frame = pd.DataFrame(result.all(), columns=["month", "status", "rows"])
    frame["status"] = frame["status"].map(lambda s: RecipientStatus.LABELS.get(s, f"other ({s})"))
    return frame.groupby(["month", "status"], as_index=False)["rows"].sum()


def _sent_in(recipients, period: Period):
    return and_(recipients.c.DATE_SENT >= period.start_dt, recipients.c.DATE_SENT < period.end_exclusive)


def data_quality_checks(conn: Connection, schema: BitrixSchema, now: datetime | None = None) -> list[Check]:
    """Integrity of the sender tables over the whole database (not only the period)."""
    now = now or datetime.now()
    recipients = schema.table("b_sender_posting_recipient")
    total_recipients = _scalar(conn, select(func.count()).select_from(recipients))
    checks = []
    for name, label in (("b_sender_posting_read", "reads"), ("b_sender_posting_click", "clicks")):
        if not schema.has(name):
            checks.append(_missing(f"{label}_without_recipient", f"{label.capitalize()} whose recipient is missing", name))
            continue
        events = schema.table(name)
        total = _scalar(conn, select(func.count()).select_from(events))
        orphans = _scalar(conn, select(func.count()).select_from(events).where(
            ~exists().where(recipients.c.ID == events.c.RECIPIENT_ID)))
        checks.append(Check(
            f"{label}_without_recipient", f"{label.capitalize()} whose recipient row is missing",
            orphans, total, f"{label} rows", "medium" if orphans else "info",
            f"{orphans:,} of {total:,} {label} rows point to no recipient: they count in no rate "
            "(recipients deleted by a clean-up?)" if orphans else f"every {label[:-1]} row has its recipient",
        ))
    if schema.has("b_sender_posting_read", "b_sender_posting_click"):
        reads, clicks = schema.table("b_sender_posting_read"), schema.table("b_sender_posting_click")
        # Clicks whose recipient row is gone are counted by the check above, not here.
        clicks_of_recipients = clicks.join(recipients, recipients.c.ID == clicks.c.RECIPIENT_ID)
        clickers = _scalar(conn, select(func.count(func.distinct(clicks.c.RECIPIENT_ID)))
                           .select_from(clicks_of_recipients))
        unread = _scalar(conn, select(func.count(func.distinct(clicks.c.RECIPIENT_ID)))
                         .select_from(clicks_of_recipients)
                         .where(~exists().where(reads.c.RECIPIENT_ID == clicks.c.RECIPIENT_ID)))
        checks.append(Check(
            "clicks_without_read", "Recipients with a click but no read row", unread, clickers,
            "clicking recipients", "medium" if unread else "info",
            f"{unread:,} of {clickers:,} clicking recipients have no read row, although Bitrix writes one "
            "with every click: reads were deleted or imported partially" if unread
            else "every clicking recipient also has a read row, as Bitrix writes them",
        ))
    checks.append(_recipients_without_contact(conn, schema, recipients, total_recipients))
    future = _scalar(conn, select(func.count()).select_from(recipients).where(recipients.c.DATE_SENT > now))
    checks.append(Check(
        "sends_in_future", "Recipient rows sent after today", future, total_recipients, "recipient rows",
        "medium" if future else "info",
        f"{future:,} recipient rows carry a send date after {now:%Y-%m-%d}: the server clock or an import is wrong"
        if future else "no send date lies in the future",
    ))
    postings = schema.table("b_sender_posting")
    early = _scalar(conn, select(func.count()).select_from(
        recipients.join(postings, postings.c.ID == recipients.c.POSTING_ID)
    ).where(recipients.c.DATE_SENT < postings.c.DATE_CREATE))
    checks.append(Check(
        "sends_before_posting", "Recipient rows sent before their posting was created", early,
        total_recipients, "recipient rows", "low" if early else "info",
        f"{early:,} recipient rows were sent before their posting existed: dates were rewritten or imported"
        if early else "no recipient was sent before its posting was created",
    ))
    return checks


def _recipients_without_contact(conn, schema, recipients, total) -> Check:
    if schema.layout == "legacy":
        missing = _scalar(conn, select(func.count()).select_from(recipients).where(
            or_(recipients.c.EMAIL.is_(None), recipients.c.EMAIL == "")))
        what = "have no e-mail address"
    else:
        contacts = schema.table("b_sender_contact")
        missing = _scalar(conn, select(func.count()).select_from(recipients).where(
            ~exists().where(contacts.c.ID == recipients.c.CONTACT_ID)))
        what = "point to no contact"
    return Check(
        "recipients_without_contact", "Recipient rows without a contact", missing, total, "recipient rows",
        "medium" if missing else "info",
        f"{missing:,} of {total:,} recipient rows {what}: they cannot be segmented or linked to orders"
        if missing else "every recipient row has its contact",
    )


def reads_per_recipient(conn: Connection, schema: BitrixSchema) -> pd.DataFrame:
    """How many read rows (pixel loads) each opening recipient has: opens are not de-duplicated by Bitrix."""
    if not schema.has("b_sender_posting_read"):
        return pd.DataFrame(columns=["reads", "recipients"])
    reads = schema.table("b_sender_posting_read")
    per_recipient = (select(func.count().label("reads")).select_from(reads)
                     .group_by(reads.c.RECIPIENT_ID).subquery())
    result = conn.execute(
        select(per_recipient.c.reads, func.count().label("recipients")).group_by(per_recipient.c.reads)
    )
    frame = pd.DataFrame(result.all(), columns=["reads", "recipients"]).sort_values("reads")
    bands = pd.cut(frame["reads"], [0, 1, 2, 3, 5, 10, float("inf")],
                   labels=["1", "2", "3", "4–5", "6–10", "11+"])
    return frame.groupby(bands, observed=False)["recipients"].sum().rename_axis("reads").reset_index()


def tracking_checks(conn: Connection, schema: BitrixSchema, period: Period) -> tuple[list[Check], pd.DataFrame]:
    """UTM sets of the letters sent in the period, campaigns without click tracking, links without UTM.

    Returns the checks and one row per letter (its UTM codes, links, links lacking UTM).
    """
    letters = letters_sent_in(conn, schema, period)
    checks = []
    n_letters = len(letters)
    incomplete = letters[letters["missing_utm"] != ""]
    checks.append(Check(
        "letters_missing_utm", "Letters whose UTM set lacks utm_source, utm_medium or utm_campaign",
        len(incomplete), n_letters, "letters sent in the period", "high" if len(incomplete) else "info",
        f"{len(incomplete):,} of {n_letters:,} letters sent in the period lack "
        + ", ".join(sorted({c for m in incomplete["missing_utm"] for c in m.split(", ")}))
        + ": visits and orders from them are not credited to e-mail in web analytics or b_crm_utm; "
        "fill the letter's UTM fields in the sender module" if len(incomplete)
        else "every letter sent in the period has utm_source, utm_medium and utm_campaign",
    ))
    checks.append(_click_tracking(conn, schema, period))
    links = int(letters["links"].sum())
    untagged = int(letters["links_without_utm"].sum())
    effective = int(letters["links_reaching_site_untagged"].sum())
    checks.append(Check(
        "links_without_utm", "Links in letter HTML without UTM parameters", untagged, links,
        "links in letters sent in the period", "info",
        f"{untagged:,} of {links:,} links carry no UTM parameters in the letter HTML; Bitrix appends the "
        "letter's UTM set when it sends, so this matters only where that set is incomplete",
    ))
    checks.append(Check(
        "links_reaching_site_untagged", "Links that reach the site without a complete UTM set", effective,
        links, "links in letters sent in the period", "medium" if effective else "info",
        f"{effective:,} of {links:,} links will reach the site without utm_source, utm_medium and "
        "utm_campaign (neither in the link nor in the letter's UTM set)" if effective
        else "every link reaches the site with a complete UTM set",
    ))
    return checks, letters


def letters_sent_in(conn: Connection, schema: BitrixSchema, period: Period) -> pd.DataFrame:
    """E-mail letters with a posting that started in the period, with their UTM set and link counts."""
    chains = schema.table("b_sender_mailing_chain")
    postings = schema.table("b_sender_posting")
    started = func.coalesce(postings.c.DATE_SEND, postings.c.DATE_CREATE)
    sent = select(postings.c.MAILING_CHAIN_ID).where(
        started >= period.start_dt, started < period.end_exclusive).distinct()
    columns = [chains.c.ID, chains.c.MAILING_ID]
    for optional in ("TITLE", "SUBJECT", "MESSAGE_ID", "LINK_PARAMS", "MESSAGE"):
        if optional in chains.c:
            columns.append(chains.c[optional])
    query = select(*columns).where(chains.c.ID.in_(sent))
    if "MESSAGE_CODE" in chains.c:
        query = query.where(chains.c.MESSAGE_CODE == EMAIL_MESSAGE_CODE)
    rows = []
    utm_sets = _message_utm_sets(conn, schema)
    bodies = _message_field_bodies(conn, schema)
    for chunk in read_chunks(conn, query.order_by(chains.c.ID), chunksize=500):
        for letter in chunk.to_dict("records"):
            message_id = _as_int(letter.get("MESSAGE_ID"))
            utm = dict(utm_sets.get(message_id, {}))
            for code, value in parse_qsl(letter.get("LINK_PARAMS") or ""):
                utm.setdefault(code.lower(), value)
            html = letter.get("MESSAGE") or bodies.get(message_id, "")
            links = extract_links(html)
            untagged = [link for link in links if not _has_complete_utm(link)]
            letter_complete = all(utm.get(code) for code in REQUIRED_UTM)
            rows.append({
                "letter_id": letter["ID"],
                "campaign_id": letter["MAILING_ID"],
                "title": letter.get("TITLE") or letter.get("SUBJECT") or "",
                "utm_codes": ", ".join(sorted(code for code, value in utm.items() if value)),
                "missing_utm": ", ".join(code for code in REQUIRED_UTM if not utm.get(code)),
                "links": len(links),
                "links_without_utm": len(untagged),
                "links_reaching_site_untagged": 0 if letter_complete else len(untagged),
            })
    return pd.DataFrame(rows, columns=[
        "letter_id", "campaign_id", "title", "utm_codes", "missing_utm", "links",
        "links_without_utm", "links_reaching_site_untagged"])


def _message_utm_sets(conn: Connection, schema: BitrixSchema) -> dict[int, dict[str, str]]:
    if not schema.has("b_sender_message_utm"):
        return {}
    utm = schema.table("b_sender_message_utm")
    sets: dict[int, dict[str, str]] = {}
    for message_id, code, value in conn.execute(select(utm.c.MESSAGE_ID, utm.c.CODE, utm.c.VALUE)):
        if code:
            sets.setdefault(int(message_id), {})[code.lower()] = (value or "").strip()
    return sets


def _message_field_bodies(conn: Connection, schema: BitrixSchema) -> dict[int, str]:
    """Letter HTML kept in b_sender_message_field (CODE 'MESSAGE') where the chain's column is empty."""
    if not schema.has("b_sender_message_field"):
        return {}
    fields = schema.table("b_sender_message_field")
    query = select(fields.c.MESSAGE_ID, fields.c.VALUE).where(fields.c.CODE == "MESSAGE")
    return {int(message_id): value or "" for message_id, value in conn.execute(query)}


def _as_int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def extract_links(html: str | None) -> list[str]:
    """http(s) link targets of a letter's HTML (not mailto:, anchors or Bitrix #PLACEHOLDERS#)."""
    return [href.strip() for href in _HREF.findall(html or "")
            if urlsplit(href.strip()).scheme in ("http", "https")]


def _has_complete_utm(link: str) -> bool:
    query = {code.lower(): value for code, value in parse_qsl(urlsplit(link).query)}
    return all(query.get(code) for code in REQUIRED_UTM)


def _click_tracking(conn: Connection, schema: BitrixSchema, period: Period) -> Check:
    mailings = schema.table("b_sender_mailing")
    if "TRACK_CLICK" not in mailings.c:
        return _missing("campaigns_click_tracking_off", "Campaigns with click tracking off",
                        "b_sender_mailing.TRACK_CLICK")
    postings = schema.table("b_sender_posting")
    started = func.coalesce(postings.c.DATE_SEND, postings.c.DATE_CREATE)
    active = select(postings.c.MAILING_ID).where(started >= period.start_dt, started < period.end_exclusive)
    rows = conn.execute(select(mailings.c.ID, mailings.c.NAME, mailings.c.TRACK_CLICK)
                        .where(mailings.c.ID.in_(active))).all()
    off = [name for _id, name, track in rows if track == NO]
    return Check(
        "campaigns_click_tracking_off", "Campaigns with click tracking off (TRACK_CLICK = 'N')", len(off),
        len(rows), "campaigns that sent in the period", "high" if off else "info",
        f"{len(off):,} of {len(rows):,} campaigns send without click tracking ({'; '.join(off[:3])}): "
        "their clicks, click-anchored open estimates and click attribution are blind; switch on "
        "'Track clicks' in the campaign settings" if off
        else "every campaign that sent in the period tracks clicks",
    )


def _missing(key: str, title: str, what: str) -> Check:
    return Check(key, title, None, None, "", "info", f"cannot check: {what} is not in this database")


def _scalar(conn: Connection, query) -> int:
    return int(conn.execute(query).scalar_one() or 0)


def checks_frame(checks: list[Check]) -> pd.DataFrame:
    """Checks ranked by severity, for the report table and tables/*.csv."""
    frame = pd.DataFrame([asdict(c) | {"share": c.share} for c in checks])
    frame["rank"] = frame["severity"].map(SEVERITY_ORDER)
    return frame.sort_values(["rank", "key"]).drop(columns="rank").reset_index(drop=True)


def figures(checks: list[Check], letters: pd.DataFrame) -> dict:
    """The section recorded in summary.json: every check's count and denominator, and the
    letters sent in the period lacking each required UTM code."""
    return ({c.key: c.count for c in checks}
            | {"denominators": {c.key: c.denominator for c in checks},
               "letters_sent": len(letters), "letters_missing_utm_by_code": missing_utm_by_code(letters)})


def missing_utm_by_code(letters: pd.DataFrame) -> dict[str, int]:
    """Letters (rows of ``letters_sent_in``) lacking each required UTM code."""
    return {code: int(letters["missing_utm"].str.contains(code).sum()) for code in REQUIRED_UTM}
