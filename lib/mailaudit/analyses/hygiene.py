"""The list-hygiene audit: address quality, bounces, consent gaps and engagement, with suppression lists.

Everything is keyed by the e-mail address as Bitrix stores it (b_sender_contact.CODE, lower-cased
and trimmed; legacy layouts: the contact's / recipient's EMAIL), so the current and the legacy
sender layouts are audited alike. Evidence runs up to the period end (``Period.end_exclusive``);
per-posting, per-provider and per-month rates cover sends in the period.

Definitions (the contract's `hygiene` keys; "sent" = recipient STATUS 'N', handed to the mail server):

- ``hard_bounce``: distinct addresses with a delivery-log event classified ``hard`` (see
  :mod:`bounces`) or an automatic (CATEGORY_ID 0) b_main_mail_blacklist entry, dated before the
  period end. Without a delivery log: the blacklist part only (noted).
- ``soft_bounce_streak``: addresses with at least `soft_bounce_streak` consecutive soft bounces,
  no delivery in between, from at least 2 postings, the first and last at least 7 days apart.
  A soft bounce is a non-delivery classified ``soft`` that ended the attempt: ``bounced``,
  ``expired`` or ``failed``, or an msmtp ``deferred`` (msmtp never retries). Postfix and Exim
  retry deferrals, and CSV exports list the final outcome too, so their deferrals do not count.
  Sender blocks, auto-replies and unclassified replies neither count nor reset a streak.
- ``sender_block_events``: log events (any non-delivery status) classified ``sender_block`` or
  ``sender_config`` (a refusal of our mail or a fault of our own set-up: never the recipient's).
- ``sent_after_hard_bounce``: attempted sends (recipient rows with a DATE_SENT, whatever their
  STATUS: a send the remote server rejected is still a send) dated after the address's first
  hard-bounced send (the DATE_SENT of the send the log bounce belongs to, or the automatic
  blacklist entry's date).
- ``sent_after_unsubscribe``: attempted sends of a campaign (b_sender_mailing) dated more
  than `unsub_grace_hours` after the contact's first unsubscribe from that campaign
  (b_sender_posting_unsub; b_sender_mailing_subscription IS_UNSUB='Y' where no unsubscribe
  click is recorded).
- ``unsubscribed_not_excluded_in_crm``: e-mail contacts with IS_UNSUB or BLACKLISTED = 'Y', or an
  unsubscribe from a campaign (legacy layouts have no IS_UNSUB), whose address is a CRM contact's e-mail (b_crm_field_multi, lower-cased and trimmed) and is in
  neither b_crm_exclusion (TYPE_ID 2) nor b_main_mail_blacklist.
- ``complaints``: distinct contacts with a b_sender_abuse row before the period end.
- ``inactive``: contacts with at least `inactive_min_sends` sent rows in the `inactive_months`
  calendar months before the period end and no open or click recorded in that window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from sqlalchemy import case, func, or_, select
from sqlalchemy.engine import Connection

from mailaudit.analyses import addresses as addr
from mailaudit.analyses.bounces import AUTO_REPLY, HARD, SENDER_SIDE, SOFT, UNKNOWN, classify, reply_pattern
from mailaudit.analyses.stats import wilson_interval
from mailaudit.bitrix import codes
from mailaudit.bitrix.schema import BitrixSchema
from mailaudit.emails import domain_series, normalise, provider_series
from mailaudit.period import Period
from mailaudit.sources import delivery_logs as dl
from mailaudit.sources.db import read_chunks, read_frame

CHUNK = 200_000
IN_LIST = 500
"""Addresses per IN (...) list when fetching the recipient rows of flagged addresses."""
SEND_MATCH_SLACK = timedelta(minutes=10)
"""A log event belongs to the latest send to that address up to this long after the event (clock skew)."""
STREAK_MIN_POSTINGS = 2
STREAK_MIN_DAYS = 7

BOUNCE_LINES = (0.02, 0.05, 0.10)
"""Bounce-rate lines: 2% common warning, 5% Amazon SES review, 10% account at risk."""
COMPLAINT_LINES = (0.001, 0.003)
"""Gmail/Yahoo 2024 bulk-sender rules: keep complaints below 0.1%, never reach 0.3%."""

ACTIONS = {
    "hard_bounce": "suppress: add to b_main_mail_blacklist and unsubscribe in Bitrix; remove only if the bounce is shown wrong",
    "soft_bounce_streak": "suppress for now; retry after 30-90 days or after the contact confirms the address",
    "complaint": "suppress permanently: the person marked your mail as spam",
    "unsubscribed": "exclude from every campaign and add to the CRM exclusion list (b_crm_exclusion TYPE_ID 2)",
    "invalid_syntax": "remove or correct the address in the CRM; Bitrix cannot deliver to it",
    "typo_domain": "correct the domain (suggestion given) after confirming with the contact; suppress until then",
    "disposable": "suppress: a throw-away mailbox that nobody reads",
    "role_account": "review: a shared mailbox (info@, sales@); keep only with documented consent",
    "duplicate": "merge with the kept contact; mail one address per mailbox",
    "inactive": "move to a re-engagement (sunset) campaign; suppress if it stays silent",
    "no_mail_domain": "suppress: the domain accepts no mail (no MX or A record, or a null MX); re-check before deleting",
}


@dataclass
class HygieneResult:
    """Figures for summary.json `hygiene` plus the tidy tables behind them."""

    figures: dict
    notes: list[str]
    address_issues: pd.DataFrame        # one row per flagged contact address
    bounce_events: pd.DataFrame         # classified non-delivery log events (empty without logs)
    unclassified: pd.DataFrame          # most frequent unclassified reply patterns
    log_files: pd.DataFrame             # per file: format, lines, events, unparseable
    log_samples: list[str]              # unparseable lines, addresses masked
    by_posting: pd.DataFrame
    by_provider: pd.DataFrame
    by_month: pd.DataFrame
    suppressions: dict[str, pd.DataFrame]
    crm_remediation: pd.DataFrame
    findings: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# where addresses live
# --------------------------------------------------------------------------------------------

def _contact_address(schema: BitrixSchema):
    """(address column, filter) of e-mail contacts."""
    contact = schema.table("b_sender_contact")
    if schema.layout == "current":
        return contact.c.CODE, contact.c.TYPE_ID == int(codes.SenderContactType.EMAIL)
    return contact.c.EMAIL, contact.c.EMAIL.isnot(None)


def _recipient_address(schema: BitrixSchema):
    """(from clause, address column, filter) of recipient rows of existing e-mail contacts (legacy
    recipients carry the EMAIL itself: joined to the contact by it, like the current CONTACT_ID)."""
    recipient = schema.table("b_sender_posting_recipient")
    contact = schema.table("b_sender_contact")
    if schema.layout == "current":
        return (recipient.join(contact, contact.c.ID == recipient.c.CONTACT_ID), contact.c.CODE,
                contact.c.TYPE_ID == int(codes.SenderContactType.EMAIL))
    return recipient.join(contact, contact.c.EMAIL == recipient.c.EMAIL), contact.c.EMAIL, contact.c.EMAIL.isnot(None)


def _normalised(values: pd.Series) -> pd.Series:
    return values.astype(object).map(lambda v: normalise(v) if isinstance(v, str) else None)


def _times(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values), errors="coerce")


# --------------------------------------------------------------------------------------------
# 1. address quality
# --------------------------------------------------------------------------------------------

ISSUE_COLUMNS = ["contact_id", "email", "issue", "detail"]


def audit_addresses(conn: Connection, schema: BitrixSchema, check_dns: bool = False) -> tuple[dict, pd.DataFrame]:
    """Counts of contacts, syntax, role, disposable, typo and duplicate problems; one row per flagged contact.

    Contacts are read in ID order; of addresses that reach the same mailbox the oldest contact
    is kept and the others are duplicates. With `check_dns`, each distinct domain of a valid address
    is looked up once (cached) and contacts on domains that accept no mail are flagged too
    (`no_mail_domain`, else None: not checked).
    """
    contact = schema.table("b_sender_contact")
    address, is_email = _contact_address(schema)
    stmt = select(contact.c.ID.label("contact_id"), address.label("email")).where(is_email).order_by(contact.c.ID)
    counts = Counter()
    first_of: dict[str, str] = {}
    flagged: list[pd.DataFrame] = []
    domains: set[str] = set()
    for chunk in read_chunks(conn, stmt, CHUNK):
        checked = addr.check_addresses(chunk["email"].astype(object).fillna(""))
        if check_dns:
            domains.update(checked.loc[~checked["invalid_syntax"], "domain"].dropna())
        counts["contacts"] += len(chunk)
        for key in ("invalid_syntax", "role_account", "disposable_domain", "typo_domain"):
            counts[key] += int(checked[key].sum())
        kept_as = []
        for canonical, email in zip(checked["canonical"], checked["email"]):
            first = first_of.setdefault(canonical, email) if canonical else email
            kept_as.append(first if first != email else None)
        checked["duplicate_of"] = kept_as
        counts["duplicate_contacts"] += int(checked["duplicate_of"].notna().sum())
        checked["contact_id"] = chunk["contact_id"].to_numpy()
        details = {
            "invalid_syntax": checked["syntax_reason"],
            "role_account": "role mailbox " + checked["email"].str.split("@").str[0],
            "disposable_domain": "disposable domain " + checked["domain"].fillna(""),
            "typo_domain": "did you mean " + checked["suggested_domain"].fillna(""),
        }
        for issue, detail in details.items():
            rows = checked[checked[issue]]
            flagged.append(pd.DataFrame({"contact_id": rows["contact_id"], "email": rows["email"],
                                         "issue": issue, "detail": detail[checked[issue]]}))
        dup = checked[checked["duplicate_of"].notna()]
        flagged.append(pd.DataFrame({"contact_id": dup["contact_id"], "email": dup["email"],
                                     "issue": "duplicate", "detail": "same mailbox as " + dup["duplicate_of"]}))
    figures = {k: int(counts[k]) for k in ("contacts", "invalid_syntax", "role_account", "disposable_domain",
                                             "typo_domain", "duplicate_contacts")}
    figures["no_mail_domain"] = None
    if check_dns:
        dead = addr.domains_without_mail(domains)
        on_dead = _contacts_on_domains(conn, stmt, dead)
        figures["no_mail_domain"] = int(len(on_dead))
        flagged.append(on_dead)
    issues = pd.concat(flagged, ignore_index=True) if flagged else pd.DataFrame(columns=ISSUE_COLUMNS)
    return figures, issues[ISSUE_COLUMNS].reset_index(drop=True)


def _contacts_on_domains(conn: Connection, stmt, dead: dict[str, str]) -> pd.DataFrame:
    """Issue rows for the contacts whose domain is a key of `dead` ({domain: DNS reason})."""
    rows = [pd.DataFrame(columns=ISSUE_COLUMNS)]
    if dead:
        for chunk in read_chunks(conn, stmt, CHUNK):
            domain = domain_series(chunk["email"].astype(object).fillna(""))
            hit = domain.isin(dead.keys())
            rows.append(pd.DataFrame({"contact_id": chunk.loc[hit, "contact_id"], "email": chunk.loc[hit, "email"],
                                      "issue": "no_mail_domain", "detail": domain[hit].map(dead)}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------------------------
# 2. the delivery log
# --------------------------------------------------------------------------------------------

@dataclass
class LogScan:
    """A delivery log reduced to what the audit needs."""

    deliveries: pd.DataFrame    # email, time of every `sent` event before the period end
    bounces: pd.DataFrame       # every other event before the period end, classified
    files: pd.DataFrame
    samples: list[str]
    after_period: int


BOUNCE_COLUMNS = ["time", "email", "status", "dsn", "smtp_code", "text", "queue_id", "message_id",
                  "source", "bounce_class", "rule"]
LOG_FILE_COLUMNS = ["file", "format", "lines", "events", "unparseable", "truncated_lines", "undecodable_lines",
                    "read_error", "year_source"]


def scan_delivery_log(paths: list[Path], period: Period) -> LogScan:
    """Read the delivery logs once: delivery times per address, and every non-delivery classified."""
    reader = dl.DeliveryLogReader(paths)   # years of year-less stamps come from the files, never the period
    end = period.end_exclusive
    delivered_email: list[str] = []
    delivered_time: list[datetime] = []
    bounces: list[tuple] = []
    after = 0
    for event in reader.events():
        if event.time >= end:
            after += 1
            continue
        if event.status == dl.SENT:
            delivered_email.append(event.email)
            delivered_time.append(event.time)
            continue
        verdict = classify(event.dsn, event.smtp_code, event.text, event.status)
        bounces.append((*event, verdict.bounce_class, verdict.rule))
    files = pd.DataFrame([s.as_row() for s in reader.stats], columns=LOG_FILE_COLUMNS)
    samples = [sample for s in reader.stats for sample in s.samples]
    deliveries = pd.DataFrame({"email": pd.Series(delivered_email, dtype=object),
                               "time": pd.Series(delivered_time, dtype="datetime64[ns]")})
    bounce_frame = pd.DataFrame.from_records(bounces, columns=BOUNCE_COLUMNS)
    bounce_frame["time"] = pd.to_datetime(bounce_frame["time"])
    bounce_frame["format"] = bounce_frame["source"].map(dict(zip(files["file"], files["format"])))
    return LogScan(deliveries, bounce_frame, files, samples, after)


def is_soft_bounce(bounces: pd.DataFrame) -> pd.Series:
    """Soft non-deliveries that ended the attempt (see the module docstring)."""
    final = bounces["status"].isin([dl.BOUNCED, dl.EXPIRED, dl.FAILED])
    not_retried = (bounces["status"] == dl.DEFERRED) & (bounces["format"] == dl.MSMTP)
    return (bounces["bounce_class"] == SOFT) & (final | not_retried)


def soft_bounce_streaks(bounces: pd.DataFrame, deliveries: pd.DataFrame, streak: int) -> pd.DataFrame:
    """Addresses that reached `streak` consecutive soft bounces (no delivery in between) from at least
    2 postings spanning at least 7 days: one row each with the streak's length, first/last bounce,
    postings, the last reply, and when (if ever) a delivery followed.

    `bounces` needs columns email, time, posting_id (NaN when unmatched), send_key, dsn, text.
    """
    soft = bounces[is_soft_bounce(bounces)]
    columns = ["email", "soft_bounces", "first_bounce", "last_bounce", "postings", "last_posting_id",
               "dsn", "text", "delivered_since"]
    if soft.empty:
        return pd.DataFrame(columns=columns)
    candidates = set(soft["email"])
    events = pd.concat([
        soft[["email", "time", "posting_id", "send_key", "dsn", "text"]].assign(kind=1),
        deliveries[deliveries["email"].isin(candidates)].assign(kind=0),
    ], ignore_index=True).sort_values(["email", "time", "kind"], kind="stable")
    rows = []
    for email, group in events.groupby("email", sort=False):
        run: list = []
        found = None
        for row in group.itertuples(index=False):
            if row.kind == 0:
                if found is not None and found["delivered_since"] is None:
                    found["delivered_since"] = row.time
                run = []
                continue
            run.append(row)
            if len(run) >= streak:
                sends = {r.send_key for r in run}
                span = run[-1].time - run[0].time
                if len(sends) >= STREAK_MIN_POSTINGS and span >= timedelta(days=STREAK_MIN_DAYS):
                    found = {"email": email, "soft_bounces": len(run), "first_bounce": run[0].time,
                             "last_bounce": run[-1].time,
                             "postings": ",".join(sorted({str(int(r.posting_id)) for r in run
                                                          if pd.notna(r.posting_id)})),
                             "last_posting_id": run[-1].posting_id, "dsn": run[-1].dsn, "text": run[-1].text,
                             "delivered_since": None}
        if found is not None:
            rows.append(found)
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------------------------
# 3. recipient rows of flagged addresses, and matching log events to sends
# --------------------------------------------------------------------------------------------

def recipient_rows(conn: Connection, schema: BitrixSchema, emails, end: datetime) -> pd.DataFrame:
    """Recipient rows (email, recipient_id, posting_id, mailing_id, status, date_sent) of the given
    addresses, sent before `end`; fetched with IN lists of at most IN_LIST addresses."""
    recipient = schema.table("b_sender_posting_recipient")
    posting = schema.table("b_sender_posting")
    source, address, is_email = _recipient_address(schema)
    wanted = sorted({e for e in emails if e})
    columns = ["email", "recipient_id", "posting_id", "mailing_id", "status", "date_sent"]
    parts = []
    for start in range(0, len(wanted), IN_LIST):
        batch = wanted[start:start + IN_LIST]
        stmt = (select(address.label("email"), recipient.c.ID.label("recipient_id"),
                       recipient.c.POSTING_ID.label("posting_id"), posting.c.MAILING_ID.label("mailing_id"),
                       recipient.c.STATUS.label("status"), recipient.c.DATE_SENT.label("date_sent"))
                .select_from(source.join(posting, posting.c.ID == recipient.c.POSTING_ID))
                .where(is_email, address.in_(batch), recipient.c.DATE_SENT.isnot(None),
                       recipient.c.DATE_SENT < end))
        parts.extend(read_chunks(conn, stmt, CHUNK))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    rows["email"] = _normalised(rows["email"])
    rows["date_sent"] = _times(rows["date_sent"]).to_numpy()
    return rows[columns]


def match_sends(events: pd.DataFrame, rows: pd.DataFrame, time_column: str = "time") -> pd.DataFrame:
    """Each event with the send it belongs to: the latest recipient row of the same address sent no
    later than SEND_MATCH_SLACK after the event (send_time, posting_id, mailing_id, recipient_id;
    NaN when none)."""
    if events.empty:
        return events.assign(send_time=pd.Series(dtype="datetime64[ns]"), posting_id=pd.Series(dtype=float),
                             mailing_id=pd.Series(dtype=float), recipient_id=pd.Series(dtype=float))
    left = events.reset_index().rename(columns={"index": "_order"})
    left["_key"] = pd.to_datetime(left[time_column]) + SEND_MATCH_SLACK
    right = rows[["email", "date_sent", "posting_id", "mailing_id", "recipient_id"]].dropna(subset=["date_sent"])
    right = right.sort_values("date_sent")
    merged = pd.merge_asof(left.sort_values("_key"), right, left_on="_key", right_on="date_sent", by="email",
                           direction="backward")
    merged = merged.sort_values("_order").set_index("_order")
    merged.index.name = None
    return merged.drop(columns=["_key"]).rename(columns={"date_sent": "send_time"})


# --------------------------------------------------------------------------------------------
# 4. consent and engagement (SQL)
# --------------------------------------------------------------------------------------------

def blacklist_entries(conn: Connection, schema: BitrixSchema, end: datetime) -> pd.DataFrame:
    """b_main_mail_blacklist rows before `end`: email, category (automatic/manual), date_insert."""
    if not schema.has("b_main_mail_blacklist"):
        return pd.DataFrame(columns=["email", "automatic", "date_insert"])
    blacklist = schema.table("b_main_mail_blacklist")
    stmt = select(blacklist.c.CODE.label("email"), blacklist.c.CATEGORY_ID.label("category"),
                  blacklist.c.DATE_INSERT.label("date_insert")).where(
        or_(blacklist.c.DATE_INSERT.is_(None), blacklist.c.DATE_INSERT < end))
    rows = read_frame(conn, stmt)
    rows["email"] = _normalised(rows["email"])
    rows["automatic"] = pd.to_numeric(rows["category"]) == int(codes.BlacklistCategory.AUTOMATIC)
    rows["date_insert"] = _times(rows["date_insert"]).to_numpy()
    return rows[["email", "automatic", "date_insert"]].dropna(subset=["email"])


def unsubscribes_by_campaign(conn: Connection, schema: BitrixSchema, end: datetime) -> pd.DataFrame:
    """First unsubscribe of each (campaign, address) before `end`: mailing_id, email, unsub_time, source."""
    columns = ["mailing_id", "email", "unsub_time", "source"]
    parts = []
    source, address, is_email = _recipient_address(schema)
    recipient = schema.table("b_sender_posting_recipient")
    posting = schema.table("b_sender_posting")
    if schema.has("b_sender_posting_unsub"):
        unsub = schema.table("b_sender_posting_unsub")
        stmt = (select(posting.c.MAILING_ID.label("mailing_id"), address.label("email"),
                       func.min(unsub.c.DATE_INSERT).label("unsub_time"))
                .select_from(source.join(unsub, unsub.c.RECIPIENT_ID == recipient.c.ID)
                             .join(posting, posting.c.ID == recipient.c.POSTING_ID))
                .where(is_email, unsub.c.DATE_INSERT < end)
                .group_by(posting.c.MAILING_ID, address))
        clicked = read_frame(conn, stmt).assign(source="unsubscribe link")
        parts.append(clicked)
    if schema.has("b_sender_mailing_subscription") and "IS_UNSUB" in schema.columns("b_sender_mailing_subscription"):
        subscription = schema.table("b_sender_mailing_subscription")
        contact = schema.table("b_sender_contact")
        contact_address, contact_is_email = _contact_address(schema)
        stmt = (select(subscription.c.MAILING_ID.label("mailing_id"), contact_address.label("email"),
                       subscription.c.DATE_INSERT.label("unsub_time"))
                .select_from(subscription.join(contact, contact.c.ID == subscription.c.CONTACT_ID))
                .where(subscription.c.IS_UNSUB == codes.YES, subscription.c.DATE_INSERT < end, contact_is_email))
        parts.append(read_frame(conn, stmt).assign(source="campaign subscription"))
    if not parts:
        return pd.DataFrame(columns=columns)
    rows = pd.concat(parts, ignore_index=True)
    rows["email"] = _normalised(rows["email"])
    rows["unsub_time"] = _times(rows["unsub_time"]).to_numpy()
    rows["mailing_id"] = pd.to_numeric(rows["mailing_id"])
    rows = rows.dropna(subset=["email", "unsub_time"])
    # the unsubscribe link's own time wins; the subscription row only fills in where no click is recorded
    rows["_rank"] = (rows["source"] != "unsubscribe link").astype(int)
    rows = rows.sort_values(["mailing_id", "email", "_rank", "unsub_time"])
    return rows.drop_duplicates(["mailing_id", "email"])[columns].reset_index(drop=True)


def sends_after_unsubscribe(conn: Connection, schema: BitrixSchema, unsubs: pd.DataFrame, end: datetime,
                            grace_hours: int) -> pd.DataFrame:
    """Attempted sends (any STATUS) of a campaign more than `grace_hours` after the address unsubscribed from it."""
    columns = ["email", "mailing_id", "posting_id", "recipient_id", "status", "date_sent", "unsub_time",
               "hours_after"]
    if unsubs.empty:
        return pd.DataFrame(columns=columns)
    rows = recipient_rows(conn, schema, unsubs["email"].unique(), end)
    joined = rows.merge(unsubs[["mailing_id", "email", "unsub_time"]], on=["mailing_id", "email"])
    joined["hours_after"] = (joined["date_sent"] - joined["unsub_time"]).dt.total_seconds() / 3600
    late = joined[joined["hours_after"] > grace_hours]
    return late[columns].sort_values(["email", "date_sent"]).reset_index(drop=True)


def unsubscribed_contacts(conn: Connection, schema: BitrixSchema, unsubs: pd.DataFrame) -> pd.DataFrame:
    """E-mail contacts that opted out in the sender module: the contact's IS_UNSUB or BLACKLISTED flag
    (where the layout has them), or an unsubscribe from a campaign (`unsubs`; legacy contacts carry no
    IS_UNSUB). One row per address: email, source, date (the flag's DATE_UPDATE or the unsubscribe time)."""
    contact = schema.table("b_sender_contact")
    address, is_email = _contact_address(schema)
    cols = schema.columns("b_sender_contact")
    flags = [contact.c[name] == codes.YES for name in ("IS_UNSUB", "BLACKLISTED") if name in cols]
    parts = []
    if flags:
        date = contact.c.DATE_UPDATE if "DATE_UPDATE" in cols else contact.c.DATE_INSERT
        stmt = select(address.label("email"), date.label("date")).where(is_email, or_(*flags))
        flagged = read_frame(conn, stmt)
        flagged["email"] = _normalised(flagged["email"])
        flagged["date"] = _times(flagged["date"]).to_numpy()
        parts.append(flagged.assign(source="contact " + "/".join(n for n in ("IS_UNSUB", "BLACKLISTED") if n in cols)))
    parts.append(pd.DataFrame({"email": unsubs["email"], "date": unsubs["unsub_time"],
                               "source": unsubs["source"] + " (campaign " + unsubs["mailing_id"].astype("Int64").astype(str) + ")"}))
    rows = pd.concat(parts, ignore_index=True).dropna(subset=["email"])
    return rows.drop_duplicates("email")[["email", "source", "date"]].reset_index(drop=True)


def crm_emails(conn: Connection, schema: BitrixSchema) -> pd.DataFrame:
    """CRM contacts' e-mails (b_crm_field_multi), lower-cased and trimmed: email, crm_contact_id."""
    if not schema.has("b_crm_field_multi"):
        return pd.DataFrame(columns=["email", "crm_contact_id"])
    multi = schema.table("b_crm_field_multi")
    stmt = select(multi.c.VALUE.label("email"), multi.c.ELEMENT_ID.label("crm_contact_id")).where(
        multi.c.ENTITY_ID == codes.CrmMultiField.ENTITY_CONTACT, multi.c.TYPE_ID == codes.CrmMultiField.TYPE_EMAIL)
    rows = read_frame(conn, stmt)
    rows["email"] = _normalised(rows["email"])
    return rows.dropna(subset=["email"]).drop_duplicates("email")


def crm_exclusions(conn: Connection, schema: BitrixSchema) -> set[str]:
    if not schema.has("b_crm_exclusion"):
        return set()
    exclusion = schema.table("b_crm_exclusion")
    stmt = select(exclusion.c.CODE.label("email")).where(exclusion.c.TYPE_ID == int(codes.CrmExclusionType.EMAIL))
    return set(_normalised(read_frame(conn, stmt)["email"]).dropna())


def complaints(conn: Connection, schema: BitrixSchema, end: datetime) -> pd.DataFrame:
    """b_sender_abuse rows before `end`: contact_id, email, date_insert, text."""
    abuse = schema.table("b_sender_abuse")
    cols = schema.columns("b_sender_abuse")
    picks = [abuse.c.CONTACT_ID.label("contact_id") if "CONTACT_ID" in cols else None,
             abuse.c.CONTACT_CODE.label("email") if "CONTACT_CODE" in cols else None,
             abuse.c.DATE_INSERT.label("date_insert"),
             abuse.c.TEXT.label("text") if "TEXT" in cols else None]
    stmt = select(*[p for p in picks if p is not None]).where(abuse.c.DATE_INSERT < end)
    if "CONTACT_TYPE_ID" in cols:
        stmt = stmt.where(or_(abuse.c.CONTACT_TYPE_ID.is_(None),
                              abuse.c.CONTACT_TYPE_ID == int(codes.SenderContactType.EMAIL)))
    rows = read_frame(conn, stmt)
    for column in ("contact_id", "email", "text"):
        if column not in rows:
            rows[column] = None
    if "CONTACT_ID" in cols and schema.layout == "current":
        # the abuse row's CONTACT_CODE may be empty: take the address from the contact
        contact = schema.table("b_sender_contact")
        ids = [int(i) for i in pd.to_numeric(rows["contact_id"], errors="coerce").dropna().unique()]
        known = []
        for start in range(0, len(ids), IN_LIST):
            stmt = select(contact.c.ID.label("contact_id"), contact.c.CODE.label("code")).where(
                contact.c.ID.in_(ids[start:start + IN_LIST]))
            known.append(read_frame(conn, stmt))
        if known:
            codes_by_id = pd.concat(known).set_index("contact_id")["code"]
            rows["email"] = rows["email"].where(rows["email"].notna() & (rows["email"] != ""),
                                                pd.to_numeric(rows["contact_id"], errors="coerce").map(codes_by_id))
    rows["email"] = _normalised(rows["email"])
    rows["date_insert"] = _times(rows["date_insert"]).to_numpy()
    return rows[["contact_id", "email", "date_insert", "text"]]


def inactive_contacts(conn: Connection, schema: BitrixSchema, period: Period, months: int,
                      min_sends: int) -> tuple[pd.DataFrame, datetime]:
    """Addresses with >= `min_sends` sent rows in the `months` before the period end and no open or
    click in that window: email, sends, last_send. Also returns the window start."""
    end = period.end_exclusive
    start = end - relativedelta(months=months)
    recipient = schema.table("b_sender_posting_recipient")
    source, address, is_email = _recipient_address(schema)
    sends = select(address.label("email"), func.count().label("sends"),
                   func.max(recipient.c.DATE_SENT).label("last_send")).select_from(source).where(
        is_email, recipient.c.STATUS == codes.RecipientStatus.SENT, recipient.c.DATE_SENT >= start,
        recipient.c.DATE_SENT < end).group_by(address).having(func.count() >= min_sends)
    mailed = read_frame(conn, sends)
    mailed["email"] = _normalised(mailed["email"])
    engaged: set[str] = set()
    for table in ("b_sender_posting_read", "b_sender_posting_click"):
        if not schema.has(table):
            continue
        touch = schema.table(table)
        stmt = (select(address.label("email")).distinct()
                .select_from(source.join(touch, touch.c.RECIPIENT_ID == recipient.c.ID))
                .where(is_email, touch.c.DATE_INSERT >= start, touch.c.DATE_INSERT < end))
        for chunk in read_chunks(conn, stmt, CHUNK):
            engaged.update(_normalised(chunk["email"]).dropna())
    inactive = mailed[~mailed["email"].isin(engaged)].copy()
    inactive["last_send"] = _times(inactive["last_send"]).to_numpy()
    return inactive.sort_values("email").reset_index(drop=True), start


# --------------------------------------------------------------------------------------------
# 5. rates over postings, providers and months (sends in the period)
# --------------------------------------------------------------------------------------------

def sends_by_posting(conn: Connection, schema: BitrixSchema, period: Period) -> pd.DataFrame:
    """Recipient rows in the period per posting: sent (STATUS N) and error (STATUS E) rows."""
    recipient = schema.table("b_sender_posting_recipient")
    posting = schema.table("b_sender_posting")
    mailing = schema.table("b_sender_mailing")
    source, _, is_email = _recipient_address(schema)
    status = recipient.c.STATUS
    stmt = (select(recipient.c.POSTING_ID.label("posting_id"), mailing.c.NAME.label("campaign"),
                   func.min(recipient.c.DATE_SENT).label("first_send"),
                   func.max(recipient.c.DATE_SENT).label("last_send"),
                   _count_if(status == codes.RecipientStatus.SENT).label("sent"),
                   _count_if(status == codes.RecipientStatus.ERROR).label("error_rows"))
            .select_from(source.join(posting, posting.c.ID == recipient.c.POSTING_ID)
                         .join(mailing, mailing.c.ID == posting.c.MAILING_ID))
            .where(is_email, recipient.c.DATE_SENT >= period.start_dt, recipient.c.DATE_SENT < period.end_exclusive)
            .group_by(recipient.c.POSTING_ID, mailing.c.NAME))
    rows = read_frame(conn, stmt)
    rows["first_send"] = _times(rows["first_send"]).to_numpy()
    rows["last_send"] = _times(rows["last_send"]).to_numpy()
    for column in ("sent", "error_rows"):
        rows[column] = pd.to_numeric(rows[column]).fillna(0).astype("int64")
    return rows


def sends_by_address(conn: Connection, schema: BitrixSchema, period: Period) -> pd.DataFrame:
    """Sent and error rows in the period per address (for the provider table), streamed."""
    recipient = schema.table("b_sender_posting_recipient")
    source, address, is_email = _recipient_address(schema)
    status = recipient.c.STATUS
    stmt = (select(address.label("email"),
                   _count_if(status == codes.RecipientStatus.SENT).label("sent"),
                   _count_if(status == codes.RecipientStatus.ERROR).label("error_rows"))
            .select_from(source)
            .where(is_email, recipient.c.DATE_SENT >= period.start_dt, recipient.c.DATE_SENT < period.end_exclusive)
            .group_by(address))
    parts = []
    for chunk in read_chunks(conn, stmt, CHUNK):
        chunk["provider"] = provider_series(chunk["email"].astype(object).fillna(""))
        parts.append(chunk.groupby("provider")[["sent", "error_rows"]].sum())
    if not parts:
        return pd.DataFrame(columns=["provider", "sent", "error_rows"])
    return pd.concat(parts).groupby(level=0).sum().reset_index()


def sends_by_month(conn: Connection, schema: BitrixSchema, period: Period, by_posting: pd.DataFrame) -> pd.DataFrame:
    """Sent and error rows per calendar month of the period, from the per-posting counts: a posting sent
    within one month counts there; only postings whose sends straddle a month boundary are recounted
    per month (month bounds computed in Python, no SQL date functions)."""
    months = []
    month = period.start_dt.replace(day=1)
    while month < period.end_exclusive:
        months.append(month)
        month = month + relativedelta(months=1)
    labels = [m.strftime("%Y-%m") for m in months]
    totals = pd.DataFrame(0, index=labels, columns=["sent", "error_rows"])
    first = by_posting["first_send"].dt.strftime("%Y-%m")
    last = by_posting["last_send"].dt.strftime("%Y-%m")
    single = by_posting[first == last]
    totals = totals.add(single.groupby(first[first == last])[["sent", "error_rows"]].sum(), fill_value=0)
    recipient = schema.table("b_sender_posting_recipient")
    source, _, is_email = _recipient_address(schema)
    status = recipient.c.STATUS
    for posting_id in by_posting.loc[first != last, "posting_id"]:
        for lo, label in zip(months, labels):
            hi = lo + relativedelta(months=1)
            stmt = (select(_count_if(status == codes.RecipientStatus.SENT), _count_if(status == codes.RecipientStatus.ERROR))
                    .select_from(source)
                    .where(is_email, recipient.c.POSTING_ID == int(posting_id),
                           recipient.c.DATE_SENT >= max(lo, period.start_dt),
                           recipient.c.DATE_SENT < min(hi, period.end_exclusive)))
            sent, errors = conn.execute(stmt).one()
            totals.loc[label] += [int(sent or 0), int(errors or 0)]
    return totals.astype("int64").rename_axis("month").reset_index()


def _count_if(condition):
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): portable conditional count."""
    return func.sum(case((condition, 1), else_=0))


def _with_rates(frame: pd.DataFrame, rates: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Adds `<name>_rate` = numerator / denominator (fractions) with Wilson 95% bounds `_low`, `_high`."""
    out = frame.copy()
    for name, (numerator, denominator) in rates.items():
        top, bottom = out[numerator].to_numpy(float), out[denominator].to_numpy(float)
        low, high = wilson_interval(top, bottom)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"{name}_rate"] = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)
        out[f"{name}_rate_low"], out[f"{name}_rate_high"] = low, high
    return out


# --------------------------------------------------------------------------------------------
# 6. the audit
# --------------------------------------------------------------------------------------------

SUPPRESSION_COLUMNS = ["email", "reason", "evidence_code", "evidence_text", "evidence_date", "evidence_posting",
                       "recommended_action"]
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


def _suppression(frame: pd.DataFrame, reason: str, code, text, date, posting, action=None) -> pd.DataFrame:
    """A suppression table: whole addresses, the evidence behind each, and what to do."""
    def column(value):
        return frame[value] if isinstance(value, str) and value in frame else value
    out = pd.DataFrame({
        "email": frame["email"].to_numpy(),
        "reason": reason,
        "evidence_code": column(code),
        "evidence_text": column(text),
        "evidence_date": column(date),
        "evidence_posting": column(posting),
        "recommended_action": ACTIONS[reason] if action is None else column(action),
    })
    out["evidence_posting"] = pd.to_numeric(out["evidence_posting"], errors="coerce").astype("Int64")
    return out[SUPPRESSION_COLUMNS].sort_values("email").reset_index(drop=True)


def _send_key(bounces: pd.DataFrame) -> pd.Series:
    """What tells sends apart in a streak: the posting, else the message's queue id, else the event day."""
    fallback = bounces["queue_id"].fillna(bounces["message_id"]).fillna(bounces["time"].dt.strftime("%Y-%m-%d"))
    posting = bounces["posting_id"].map(lambda v: f"posting {int(v)}" if pd.notna(v) else None)
    return posting.fillna(fallback)


def first_hard_bounces(bounces: pd.DataFrame, blacklist: pd.DataFrame) -> pd.DataFrame:
    """One row per hard-bounced address: first_hard (when the address was first known dead) and the
    evidence of the log bounce (or of the blacklist entry when the log has none).

    Only a permanent recipient failure dates a hard bounce: a ``hard`` event that ended the attempt
    (the classifier never calls a deferral hard; a deferred row is excluded here as well), dated by
    the DATE_SENT of its send (else the log time). An automatic b_main_mail_blacklist entry dates it
    only when it is from an earlier calendar day than the log's first hard bounce (an older bounce
    the log no longer holds): Bitrix may write DATE_INSERT as a bare date, midnight before the bounce,
    and a same-day entry is the log's bounce itself. A midnight-dated entry stands for the end of its
    day, so the send that bounced that day is not counted as a send after it.
    """
    columns = ["email", "first_hard", "posting_id", "code", "text", "rule", "source"]
    hard = bounces[(bounces["bounce_class"] == HARD) & (bounces["status"] != dl.DEFERRED)]
    log = hard.sort_values("time").drop_duplicates("email")
    log = pd.DataFrame({"email": log["email"],
                        "first_hard": pd.to_datetime(log["send_time"]).fillna(pd.to_datetime(log["time"])),
                        "posting_id": log["posting_id"],
                        "code": log["dsn"].fillna(log["smtp_code"].astype("string")), "text": log["text"],
                        "rule": log["rule"], "source": "delivery log"})
    auto = blacklist.loc[blacklist["automatic"].astype(bool)].sort_values("date_insert").drop_duplicates("email")
    inserted = pd.to_datetime(auto["date_insert"])
    day_only = inserted.notna() & (inserted == inserted.dt.normalize())
    auto = pd.DataFrame({"email": auto["email"],
                         "first_hard": inserted.where(~day_only, inserted + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)),
                         "posting_id": np.nan, "code": "blacklist",
                         "text": "automatic b_main_mail_blacklist entry (hard bounce)",
                         "rule": "bitrix_blacklist", "source": "b_main_mail_blacklist", "_day": inserted.dt.normalize()})
    log_day = pd.to_datetime(log.set_index("email")["first_hard"]).dt.normalize()
    in_log = auto["email"].isin(log_day.index).to_numpy()
    earlier_day = np.zeros(len(auto), dtype=bool)
    if in_log.any():
        earlier_day[in_log] = auto["_day"].to_numpy()[in_log] < log_day.reindex(auto["email"][in_log]).to_numpy()
    auto = auto[~in_log | earlier_day].drop(columns="_day")
    both = pd.concat([log, auto], ignore_index=True)
    if both.empty:
        return pd.DataFrame(columns=columns)
    first = both.groupby("email")["first_hard"].min()
    from_log_first = both.assign(_rank=(both["source"] != "delivery log").astype(int)).sort_values("_rank")
    evidence = from_log_first.drop_duplicates("email").set_index("email")
    evidence["first_hard"] = first
    return evidence.reset_index()[columns]


def audit_hygiene(conn: Connection, schema: BitrixSchema, period: Period, hygiene: dict,
                  delivery_logs: list[Path] | tuple = ()) -> HygieneResult:
    """The whole audit. `hygiene` is the validated `hygiene` parameter section; `delivery_logs` the
    files of `logs.delivery` (may be empty: the log-only figures are then None with a note)."""
    end = period.end_exclusive
    notes: list[str] = []
    figures, issues = audit_addresses(conn, schema, check_dns=bool(hygiene.get("check_dns")))
    if figures["no_mail_domain"] is None:
        notes.append("no_mail_domain is null: domains were not looked up in DNS (set hygiene.check_dns: true "
                     "where the machine can reach a DNS server).")

    blacklist = blacklist_entries(conn, schema, end)
    if not schema.has("b_main_mail_blacklist"):
        notes.append("b_main_mail_blacklist is missing: hard bounces come from the delivery log only.")

    scan = scan_delivery_log(list(delivery_logs), period) if delivery_logs else None
    bounces = scan.bounces if scan else pd.DataFrame(columns=[*BOUNCE_COLUMNS, "format"])
    if scan is None:
        notes.append("No delivery log (logs.delivery): soft_bounce_streak and sender_block_events need the mail "
                     "server's log and are null; hard_bounce counts the automatic b_main_mail_blacklist entries "
                     "only (Bitrix records no SMTP code per recipient); bounce rates below use recipient rows "
                     "with STATUS 'E' (error), which mix hand-off failures, blocked and unsubscribed contacts.")
    elif scan.after_period:
        notes.append(f"{scan.after_period:,} delivery-log events after the period end were left out.")
    if scan is not None and int(scan.files["unparseable"].sum()):
        notes.append(f"{int(scan.files['unparseable'].sum()):,} delivery-log lines could not be read "
                     "(counted per file in tables/hygiene_log_files.csv).")

    abuse = complaints(conn, schema, end) if schema.has("b_sender_abuse") else None
    flagged = set(bounces["email"]) | set(blacklist.loc[blacklist["automatic"], "email"])
    if abuse is not None:
        flagged |= set(abuse["email"].dropna())
    rows = recipient_rows(conn, schema, flagged, end)
    bounces = match_sends(bounces, rows)
    bounces["send_key"] = _send_key(bounces) if not bounces.empty else pd.Series(dtype=object)
    bounces["provider"] = provider_series(bounces["email"].astype(object).fillna("")) if not bounces.empty else []

    # hard bounces and sends after them
    hard = first_hard_bounces(bounces, blacklist)
    figures["hard_bounce"] = int(len(hard))
    after_hard = rows.merge(hard[["email", "first_hard"]], on="email")
    after_hard = after_hard[after_hard["date_sent"] > after_hard["first_hard"]]
    figures["sent_after_hard_bounce"] = int(len(after_hard))

    # soft-bounce streaks and sender blocks (log only)
    streak = int(hygiene["soft_bounce_streak"])
    if scan is not None:
        streaks = soft_bounce_streaks(bounces, scan.deliveries, streak)
        figures["soft_bounce_streak"] = int(len(streaks))
        figures["sender_block_events"] = int(bounces["bounce_class"].isin(SENDER_SIDE).sum())
    else:
        streaks = soft_bounce_streaks(bounces, pd.DataFrame(columns=["email", "time"]), streak)
        figures["soft_bounce_streak"] = None
        figures["sender_block_events"] = None

    # consent
    unsubs = unsubscribes_by_campaign(conn, schema, end)
    unsub_contacts = unsubscribed_contacts(conn, schema, unsubs)
    if schema.has("b_crm_field_multi"):
        crm = crm_emails(conn, schema)
        excluded = crm_exclusions(conn, schema) | set(blacklist["email"])
        if not schema.has("b_crm_exclusion"):
            notes.append("b_crm_exclusion is missing: only b_main_mail_blacklist counts as a CRM-side exclusion.")
        gap = unsub_contacts.merge(crm, on="email")
        gap = gap[~gap["email"].isin(excluded)]
        figures["unsubscribed_not_excluded_in_crm"] = int(gap["email"].nunique())
    else:
        gap = pd.DataFrame(columns=["email", "source", "date", "crm_contact_id"])
        figures["unsubscribed_not_excluded_in_crm"] = None
        notes.append("No CRM e-mails (b_crm_field_multi): unsubscribed_not_excluded_in_crm cannot be computed.")

    grace = int(hygiene["unsub_grace_hours"])
    late_sends = sends_after_unsubscribe(conn, schema, unsubs, end, grace)
    figures["sent_after_unsubscribe"] = int(len(late_sends))
    if not schema.has("b_sender_posting_unsub") and not schema.has("b_sender_mailing_subscription"):
        figures["sent_after_unsubscribe"] = None
        notes.append("No unsubscribe records (b_sender_posting_unsub, b_sender_mailing_subscription): "
                     "sent_after_unsubscribe cannot be computed.")

    if abuse is not None:
        abuse = match_sends(abuse.assign(time=abuse["date_insert"]), rows)
        who = abuse["contact_id"].astype(object).where(abuse["contact_id"].notna(), abuse["email"])
        figures["complaints"] = int(who.nunique())
    else:
        figures["complaints"] = None
        notes.append("b_sender_abuse is missing (sender versions before 17): complaints cannot be counted.")

    months, min_sends = int(hygiene["inactive_months"]), int(hygiene["inactive_min_sends"])
    inactive, window_start = inactive_contacts(conn, schema, period, months, min_sends)
    figures["inactive"] = int(len(inactive))
    if not schema.has("b_sender_posting_read"):
        notes.append("No read tracking (b_sender_posting_read): 'inactive' only knows clicks.")

    # rates in the period
    by_posting, by_provider, by_month = _rate_tables(conn, schema, period, bounces, abuse, scan is not None)
    totals = by_month[["sent", "attempted", "error_rows", "hard_bounces", "complaints"]].sum()
    figures["period_rates"] = {
        "hard_bounce_rate": float(totals["hard_bounces"] / totals["attempted"]) if scan and totals["attempted"] else None,
        "error_rate": float(totals["error_rows"] / totals["attempted"]) if totals["attempted"] else None,
        "complaint_rate": float(totals["complaints"] / totals["sent"]) if totals["sent"] else None,
    }

    suppressions = _suppressions(issues, hard, streaks, abuse, unsub_contacts, inactive, window_start)
    crm_remediation = pd.DataFrame({
        "email": gap["email"], "crm_contact_id": gap["crm_contact_id"], "opted_out_in_sender": gap["source"],
        "opted_out_on": gap["date"],
        "action": "add to the CRM exclusion list (b_crm_exclusion, TYPE_ID 2)"}).sort_values("email")

    unclassified = pd.DataFrame(columns=["reply", "events", "example_status"])
    if not bounces.empty:
        unknown = bounces[bounces["bounce_class"] == UNKNOWN]
        if not unknown.empty:
            patterns = unknown.assign(reply=unknown["text"].fillna("").map(reply_pattern))
            unclassified = (patterns.groupby("reply").agg(events=("email", "size"), example_status=("status", "first"))
                            .sort_values("events", ascending=False).head(20).reset_index())
    figures["bounce_classes"] = ({k: int(v) for k, v in bounces["bounce_class"].value_counts().items()}
                                 if scan is not None else None)
    figures["auto_replies"] = int((bounces["bounce_class"] == AUTO_REPLY).sum()) if scan is not None else None

    result = HygieneResult(
        figures=figures, notes=notes, address_issues=issues,
        bounce_events=bounces.drop(columns=["send_key"], errors="ignore"), unclassified=unclassified,
        log_files=scan.files if scan else pd.DataFrame(columns=LOG_FILE_COLUMNS),
        log_samples=scan.samples if scan else [], by_posting=by_posting, by_provider=by_provider,
        by_month=by_month, suppressions=suppressions, crm_remediation=crm_remediation.reset_index(drop=True),
    )
    result.findings = findings(result, hygiene, late_sends, after_hard, scan is not None)
    return result


def _rate_tables(conn, schema, period, bounces, abuse, have_log):
    """Per posting, provider and month (sends in the period): sent (STATUS 'N') and error ('E') rows,
    attempted = sent + error; log bounces by class (one per address and send); complaints.
    Rates (fractions, Wilson 95% bounds): hard_bounce_rate, soft_bounce_rate = bounces / attempted;
    error_rate = error rows / attempted; complaint_rate = complaints / sent."""
    in_period = bounces[(bounces["time"] >= period.start_dt) & (bounces["time"] < period.end_exclusive)] \
        if not bounces.empty else bounces
    kinds = {"hard_bounces": (HARD,), "soft_bounces": (SOFT,), "sender_blocks": tuple(SENDER_SIDE)}

    def count_bounces(key: str) -> pd.DataFrame:
        if in_period.empty:
            return pd.DataFrame(columns=[key, *kinds])
        parts = {}
        for name, kind in kinds.items():
            subset = in_period[in_period["bounce_class"].isin(kind)]
            if name == "soft_bounces":
                subset = subset[is_soft_bounce(subset)]
            # one per address and send: retries of one message are one bounce
            subset = subset.drop_duplicates(["email", "send_key"])
            parts[name] = subset.groupby(key).size()
        return pd.DataFrame(parts).fillna(0).astype("int64").rename_axis(key).reset_index()

    complaints_in_period = pd.DataFrame(columns=["posting_id", "provider", "month"])
    if abuse is not None and not abuse.empty:
        mask = (abuse["date_insert"] >= period.start_dt) & (abuse["date_insert"] < period.end_exclusive)
        complaints_in_period = abuse[mask].assign(
            provider=provider_series(abuse.loc[mask, "email"].astype(object).fillna("")),
            month=abuse.loc[mask, "date_insert"].dt.strftime("%Y-%m"))
    if not in_period.empty:
        in_period = in_period.assign(month=in_period["time"].dt.strftime("%Y-%m"))

    def assemble(base: pd.DataFrame, key: str) -> pd.DataFrame:
        out = base.merge(count_bounces(key), on=key, how="left") if not base.empty else base
        for name in kinds:
            if name not in out:
                out[name] = 0
            out[name] = out[name].fillna(0).astype("int64")
        counted = complaints_in_period.groupby(key).size().rename("complaints") if key in complaints_in_period \
            else pd.Series(dtype="int64", name="complaints")
        out = out.merge(counted.rename_axis(key).reset_index(), on=key, how="left")
        out["complaints"] = out["complaints"].fillna(0).astype("int64")
        out["attempted"] = out["sent"] + out["error_rows"]
        out = _with_rates(out, {"hard_bounce": ("hard_bounces", "attempted"),
                                "soft_bounce": ("soft_bounces", "attempted"),
                                "error": ("error_rows", "attempted"), "complaint": ("complaints", "sent")})
        if not have_log:
            for name in ("hard_bounce", "soft_bounce"):
                out[[f"{name}_rate", f"{name}_rate_low", f"{name}_rate_high"]] = np.nan
        return out

    posting_sends = sends_by_posting(conn, schema, period)
    by_posting = assemble(posting_sends, "posting_id")
    by_provider = assemble(sends_by_address(conn, schema, period), "provider")
    by_month = assemble(sends_by_month(conn, schema, period, posting_sends), "month")
    return (by_posting.sort_values("first_send").reset_index(drop=True),
            by_provider.sort_values("sent", ascending=False).reset_index(drop=True), by_month)


def _suppressions(issues, hard, streaks, abuse, unsub_contacts, inactive, window_start) -> dict:
    out = {}
    if not hard.empty:
        out["hard_bounce"] = _suppression(hard, "hard_bounce", "code", hard["text"] + " [rule " + hard["rule"] + "]",
                                          "first_hard", "posting_id")
    if not streaks.empty:
        action = np.where(streaks["delivered_since"].notna(),
                          "keep: delivered again on " + streaks["delivered_since"].astype(str),
                          ACTIONS["soft_bounce_streak"])
        text = (streaks["soft_bounces"].astype(str) + " soft bounces in a row from postings " + streaks["postings"]
                + ", " + streaks["first_bounce"].astype(str) + " to " + streaks["last_bounce"].astype(str)
                + "; last reply: " + streaks["text"].fillna(""))
        out["soft_bounce_streak"] = _suppression(streaks, "soft_bounce_streak", "dsn", text, "last_bounce",
                                                 "last_posting_id", action)
    if abuse is not None and not abuse.empty:
        first = abuse.sort_values("date_insert").drop_duplicates("email").dropna(subset=["email"])
        out["complaint"] = _suppression(first, "complaint", "b_sender_abuse",
                                        first["text"].fillna("spam complaint").astype(str), "date_insert", "posting_id")
    if not unsub_contacts.empty:
        out["unsubscribed"] = _suppression(unsub_contacts, "unsubscribed", "source",
                                           "opted out in the sender module: " + unsub_contacts["source"], "date", None)
    for issue, reason in (("invalid_syntax", "invalid_syntax"), ("typo_domain", "typo_domain"),
                          ("disposable_domain", "disposable"), ("role_account", "role_account"),
                          ("duplicate", "duplicate"), ("no_mail_domain", "no_mail_domain")):
        rows = issues[issues["issue"] == issue]
        if not rows.empty:
            out[reason] = _suppression(rows, reason, issue, "detail", None, None)
    if not inactive.empty:
        text = (inactive["sends"].astype(str) + " sends since " + window_start.strftime("%Y-%m-%d")
                + " without an open or click")
        out["inactive"] = _suppression(inactive, "inactive", "no engagement", text, "last_send", None)
    return out


def findings(result: HygieneResult, hygiene: dict, late_sends: pd.DataFrame, after_hard: pd.DataFrame,
             have_log: bool) -> list[dict]:
    """What to fix, ranked by severity then count: {severity, title, detail, count, risk, fix}."""
    f = result.figures
    out: list[dict] = []

    def add(severity, count, title, risk, fix):
        if count:
            out.append({"severity": severity, "count": int(count), "title": title, "risk": risk, "fix": fix,
                        "detail": f"Risk: {risk} Fix: {fix}"})

    add("high", f["sent_after_unsubscribe"],
        f"{f['sent_after_unsubscribe'] or 0:,} sends to people more than {hygiene['unsub_grace_hours']} h after they "
        f"unsubscribed from that campaign ({late_sends['email'].nunique() if not late_sends.empty else 0:,} people)",
        "mail against an explicit opt-out: spam complaints, Gmail/Yahoo bulk-sender violations (48 h rule), legal exposure.",
        "stop re-importing these contacts into the campaign's address book; exclude suppress_unsubscribed.csv from "
        "every segment; check that the campaign's subscription (b_sender_mailing_subscription) is not reset.")
    add("high", f["sent_after_hard_bounce"],
        f"{f['sent_after_hard_bounce'] or 0:,} sends to addresses that had already hard-bounced "
        f"({after_hard['email'].nunique() if not after_hard.empty else 0:,} addresses)",
        "every send to a dead address raises the bounce rate that mailbox providers judge the domain by.",
        "import suppress_hard_bounce.csv into the blacklist (Settings > Blacklist, b_main_mail_blacklist) and "
        "unsubscribe those contacts; keep Bitrix's automatic blacklist on.")
    worst_complaint = result.by_posting["complaint_rate"].max() if not result.by_posting.empty else np.nan
    if pd.notna(worst_complaint) and worst_complaint >= COMPLAINT_LINES[0]:
        over = int((result.by_posting["complaint_rate"] >= COMPLAINT_LINES[0]).sum())
        add("high" if worst_complaint >= COMPLAINT_LINES[1] else "medium", over,
            f"{over:,} postings with a complaint rate at or above 0.1% (worst {worst_complaint:.2%})",
            "Gmail and Yahoo reject bulk mail from senders above 0.3% complaints.",
            "blacklist the addresses in suppress_complaint.csv; mail only recently engaged contacts; make the "
            "unsubscribe link prominent and RFC 8058 one-click.")
    if have_log and not result.by_posting.empty:
        worst = result.by_posting["hard_bounce_rate"].max()
        if pd.notna(worst) and worst >= BOUNCE_LINES[0]:
            over = int((result.by_posting["hard_bounce_rate"] >= BOUNCE_LINES[0]).sum())
            add("high" if worst >= BOUNCE_LINES[1] else "medium", over,
                f"{over:,} postings with a hard-bounce rate at or above 2% (worst {worst:.1%})",
                "bounce rates above 2% draw provider filtering; Amazon SES reviews accounts at 5%.",
                "suppress suppress_hard_bounce.csv before the next send and verify old address books before mailing them.")
    add("medium", f["unsubscribed_not_excluded_in_crm"],
        f"{f['unsubscribed_not_excluded_in_crm'] or 0:,} unsubscribed or blacklisted contacts are not excluded in the CRM",
        "salespeople and CRM automation (robots, one-to-one mail) keep writing to people who opted out.",
        "import suppress_crm_exclusion.csv into the CRM exclusion list (b_crm_exclusion, TYPE_ID 2), then add an "
        "event handler on the sender module's OnAfterRecipientUnsub that adds the unsubscribed address to the CRM "
        "exclusion list (\\Bitrix\\Crm\\Exclusion\\Store::add) so the gap stays closed.")
    add("medium", f["complaints"], f"{f['complaints'] or 0:,} contacts reported your mail as spam",
        "each complaint counts against the Gmail/Yahoo 0.1% line.",
        "never mail them again (suppress_complaint.csv); Bitrix already blacklists them: check no import re-adds them.")
    add("medium", f["soft_bounce_streak"],
        f"{f['soft_bounce_streak'] or 0:,} addresses soft-bounced {hygiene['soft_bounce_streak']}+ times in a row",
        "full or abandoned mailboxes become dead addresses; repeated sends add bounces.",
        "pause them (suppress_soft_bounce_streak.csv) and retry after 30-90 days.")
    add("medium", f["sender_block_events"],
        f"{f['sender_block_events'] or 0:,} bounces were blocks of the sender, not bad addresses",
        "providers are refusing your mail for reputation or policy reasons; every recipient there is affected.",
        "check SPF, DKIM and DMARC for the sending domain, Google Postmaster Tools and the provider's block list "
        "(Microsoft S3150: delist at sender.office.com); slow down sending to that provider.")
    add("medium", f["typo_domain"], f"{f['typo_domain']:,} addresses with a mistyped domain (gmial.com, mail.ri…)",
        "they bounce or, worse, reach typo-squatting domains that act as spam traps.",
        "correct them with the suggestion in suppress_typo_domain.csv after confirming with the contact; add "
        "double opt-in to the sign-up forms.")
    add("medium", f["invalid_syntax"], f"{f['invalid_syntax']:,} addresses that are not valid e-mail syntax",
        "they can never be delivered and count as errors on every send.",
        "fix or delete them in the CRM (suppress_invalid_syntax.csv); validate the address in web forms.")
    add("medium", f["inactive"],
        f"{f['inactive']:,} contacts got {hygiene['inactive_min_sends']}+ sends in {hygiene['inactive_months']} months "
        "without opening or clicking",
        "silent recipients lower engagement, which Gmail and Mail.ru use for inbox placement; old inactive "
        "addresses become spam traps.",
        "send them a re-engagement (sunset) campaign, then suppress those who stay silent (suppress_inactive.csv).")
    add("low", f["disposable_domain"], f"{f['disposable_domain']:,} throw-away (disposable) mailboxes",
        "nobody reads them after sign-up.", "suppress them (suppress_disposable.csv); block disposable domains in forms.")
    add("low", f["role_account"], f"{f['role_account']:,} role mailboxes (info@, sales@…)",
        "shared mailboxes complain more and rarely gave personal consent.",
        "review suppress_role_account.csv; keep only those with documented consent.")
    add("low", f["duplicate_contacts"],
        f"{f['duplicate_contacts']:,} contacts are another spelling of an existing mailbox",
        "the same person gets the same letter twice.", "merge the duplicates listed in suppress_duplicate.csv.")
    return sorted(out, key=lambda item: (SEVERITY_ORDER[item["severity"]], -item["count"]))


# --------------------------------------------------------------------------------------------
# 7. views for the report
# --------------------------------------------------------------------------------------------

FIGURE_DEFINITIONS = {
    "contacts": "e-mail contacts (b_sender_contact TYPE_ID 1; legacy: rows with an EMAIL)",
    "invalid_syntax": "contacts whose address is not valid e-mail syntax (email-validator, no DNS)",
    "role_account": "contacts whose local part is a role mailbox (info, sales, support, noreply…)",
    "disposable_domain": "contacts on a disposable-domain blocklist domain (disposable-email-domains)",
    "typo_domain": "contacts whose domain is one or two keystrokes from a popular provider's (gmial.com)",
    "duplicate_contacts": "contacts reaching the same mailbox as an older contact (Gmail dots and +tags, "
                          "googlemail.com, Yandex domains…), all but the oldest",
    "hard_bounce": "addresses with a hard bounce in the delivery log or an automatic b_main_mail_blacklist entry",
    "soft_bounce_streak": "addresses with N+ soft bounces in a row (no delivery between) from 2+ postings over 7+ days",
    "sender_block_events": "delivery-log events that were blocks of the sender (reputation, policy), not bad addresses",
    "sent_after_hard_bounce": "recipient rows sent (any STATUS) after the address's first hard-bounced send",
    "unsubscribed_not_excluded_in_crm": "unsubscribed or blacklisted contacts whose CRM e-mail is in neither "
                                        "b_crm_exclusion (TYPE_ID 2) nor b_main_mail_blacklist",
    "sent_after_unsubscribe": "recipient rows of a campaign sent (any STATUS) more than the grace period after "
                              "the contact unsubscribed from that campaign",
    "complaints": "distinct contacts with a spam complaint (b_sender_abuse)",
    "inactive": "contacts with the minimum sends in the look-back window and no open or click in it",
}


def figures_table(figures: dict) -> pd.DataFrame:
    """The contract's figures as a table: figure, value (None = needs data the source lacks), definition."""
    return pd.DataFrame([{"figure": key, "value": figures.get(key), "definition": text}
                         for key, text in FIGURE_DEFINITIONS.items()])


def headline(result: HygieneResult) -> str:
    f = result.figures
    parts = [f"{f['contacts']:,} contacts"]
    if f.get("hard_bounce") is not None:
        parts.append(f"{f['hard_bounce']:,} hard-bounced")
    if f.get("sent_after_unsubscribe"):
        parts.append(f"{f['sent_after_unsubscribe']:,} sends after unsubscribe")
    if f.get("sent_after_hard_bounce"):
        parts.append(f"{f['sent_after_hard_bounce']:,} sends after a hard bounce")
    high = sum(1 for item in result.findings if item["severity"] == "high")
    parts.append(f"{high} high-severity finding{'s' if high != 1 else ''}")
    return "; ".join(parts)


def rule_counts(bounce_events: pd.DataFrame) -> pd.DataFrame:
    """Non-delivery events per classifier rule: class, rule, events, addresses, an example reply."""
    if bounce_events.empty:
        return pd.DataFrame(columns=["bounce_class", "rule", "events", "addresses", "example"])
    grouped = bounce_events.groupby(["bounce_class", "rule"])
    out = grouped.agg(events=("email", "size"), addresses=("email", "nunique"),
                      example=("text", lambda s: reply_pattern(str(s.iloc[0]))))
    return out.reset_index().sort_values("events", ascending=False).reset_index(drop=True)


def suppression_overview(files: dict[str, str], suppressions: dict[str, pd.DataFrame],
                         crm_remediation: pd.DataFrame) -> pd.DataFrame:
    """One row per written file: reason, file, addresses, recommended action."""
    rows = [{"reason": reason, "file": files.get(reason), "addresses": len(frame),
             "recommended action": ACTIONS[reason]} for reason, frame in suppressions.items()]
    if "crm_exclusion" in files:
        rows.append({"reason": "crm_exclusion", "file": files["crm_exclusion"], "addresses": len(crm_remediation),
                     "recommended action": "add to the CRM exclusion list (b_crm_exclusion, TYPE_ID 2)"})
    return pd.DataFrame(rows)


def rate_view(table: pd.DataFrame, have_log: bool, key: list[str], top: int | None = None) -> pd.DataFrame:
    """The columns of a rate table worth showing: log bounces when there is a log, else Bitrix error rows;
    sorted by the bounce (or error) rate, highest first, at most `top` rows."""
    bounce = ["hard_bounces", "hard_bounce_rate", "soft_bounces", "sender_blocks"] if have_log else \
        ["error_rows", "error_rate"]
    columns = [*key, "attempted", "sent", *bounce, "complaints", "complaint_rate"]
    order = "hard_bounce_rate" if have_log else "error_rate"
    view = table[columns].sort_values(order, ascending=False)
    return view.head(top) if top else view
