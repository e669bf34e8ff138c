"""The list-hygiene audit: address quality, bounces, consent gaps and engagement, with suppression lists.

Everything is read from the snapshot's model and keyed by the e-mail address of the contact as the
model defines it (``contacts.email``: Bitrix's CODE lower-cased and trimmed; legacy layouts: EMAIL), so
the current and the legacy sender layouts are audited alike. "Sends" are the model's ``sends`` (recipient
rows of e-mail letters); the audit looks at the sends of existing e-mail contacts (`EMAIL_CONTACTS`).
Evidence (bounces, blacklist entries, unsubscribes, complaints) runs up to the period end
(``Period.end_exclusive``) and may be older than the period; what is counted against it -- sends after
a hard bounce or an unsubscribe, per-posting, per-provider and per-month rates -- are sends of the period.

Definitions (the contract's `hygiene` keys; "sent" = the model's ``delivered``, STATUS 'N'):

- ``hard_bounce``: distinct addresses with a delivery-log event classified ``hard`` (the model's
  ``delivery_events``, classified by :mod:`bounces`) or an automatic (CATEGORY_ID 0)
  b_main_mail_blacklist entry, dated before the period end. Without a delivery log: the blacklist
  part only (noted).
- ``soft_bounce_streak``: addresses with at least `soft_bounce_streak` consecutive soft bounces,
  no delivery in between, from at least 2 postings, the first and last at least 7 days apart.
  A soft bounce is a non-delivery classified ``soft`` that ended the attempt: ``bounced``,
  ``expired`` or ``failed``, or an msmtp ``deferred`` (msmtp never retries). Postfix and Exim
  retry deferrals, and CSV exports list the final outcome too, so their deferrals do not count.
  Sender blocks, auto-replies and unclassified replies neither count nor reset a streak.
- ``sender_block_events``: log events (any non-delivery status) classified ``sender_block`` or
  ``sender_config`` (a refusal of our mail or a fault of our own set-up: never the recipient's).
- ``sent_after_hard_bounce``: sends of the period (recipient rows with a DATE_SENT in it, whatever
  their STATUS: a send the remote server rejected is still a send) dated after the address's first
  hard-bounced send (the DATE_SENT of the send the log bounce belongs to, or the automatic blacklist
  entry's date), which may lie before the period.
- ``sent_after_unsubscribe``: sends of the period of a campaign (b_sender_mailing) dated more than
  `unsub_grace_hours` after the contact's first unsubscribe from that campaign, which may lie before
  the period (b_sender_posting_unsub; b_sender_mailing_subscription IS_UNSUB='Y' where no
  unsubscribe click is recorded).
- ``unsubscribed_not_excluded_in_crm``: e-mail contacts with IS_UNSUB or BLACKLISTED = 'Y', or an
  unsubscribe from a campaign (legacy layouts have no IS_UNSUB), whose address is a CRM contact's
  e-mail (the model's ``crm_emails``) and is in neither b_crm_exclusion (TYPE_ID 2) nor
  b_main_mail_blacklist.
- ``complaints``: distinct contacts with a b_sender_abuse row before the period end.
- ``inactive``: contacts with at least `inactive_min_sends` sent rows in the `inactive_months`
  calendar months before the period end and no open or click in that window. The evidence is the
  read and click rows, machine clicks left out (``analyses.machine_clicks``: an address whose only
  clicks are a security gateway's is not active, nor is the read row such a click wrote); a portal without one of those tables is judged by the next best evidence
  it has (`engagement_evidence`), and a portal that records no opens at all gets no verdict (null).

Suppression files hold whole addresses only: a contact whose address is blank is counted in a note,
never written as a suppression row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
from dateutil.relativedelta import relativedelta

from mailaudit.analyses import addresses as addr
from mailaudit.analyses import machine_clicks
from mailaudit.analyses.bounces import AUTO_REPLY, HARD, SENDER_SIDE, SOFT, UNKNOWN, reply_pattern
from mailaudit.analyses.stats import wilson_interval
from mailaudit.emails import provider_series
from mailaudit.model import Model
from mailaudit.narrative.language import N_, _, ngettext, number
from mailaudit.period import Period
from mailaudit.sources import delivery_logs as dl

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
    have_log: bool = False              # a delivery log with at least one usable line (an event)
    facts: dict = field(default_factory=dict)   # what the findings name beyond the figures (people, sends)
    machine_clicks: pd.DataFrame = field(default_factory=pd.DataFrame)   # removed_clicks of the inactivity window


# --------------------------------------------------------------------------------------------
# the audit's unit: sends of e-mail contacts, by address
# --------------------------------------------------------------------------------------------

EMAIL_CONTACTS = """email_contacts AS (
    SELECT contact_id, email FROM contacts WHERE is_email_contact AND email IS NOT NULL)"""
"""E-mail contacts with an address (a CTE for the queries below): the audit counts by address, and
reaches a contact's sends by its contact_id -- after narrowing the sends, so that the 10M-row
relation is never joined whole."""


def _is_blank(values: pd.Series) -> pd.Series:
    """Missing or whitespace-only addresses (the model trims spaces only; Python's strip takes tabs too)."""
    return values.astype("string").str.strip().fillna("").eq("").astype(bool)


# --------------------------------------------------------------------------------------------
# 1. address quality
# --------------------------------------------------------------------------------------------

ISSUE_COLUMNS = ["contact_id", "email", "issue", "detail"]
ADDRESS_ISSUES = ("invalid_syntax", "role_account", "disposable_domain", "typo_domain")
CHUNK = 200_000
"""Contacts checked at a time: the checks hold Python strings, so memory stays bounded at any size."""


def audit_addresses(model: Model, check_dns: bool = False) -> tuple[dict, pd.DataFrame, int]:
    """Counts of contacts, syntax, role, disposable, typo and duplicate problems; one row per flagged
    contact; and the number of e-mail contacts with a blank address (not checked, never flagged).

    Contacts are checked in chunks; what the duplicate and DNS checks need later (canonical address,
    domain) is kept as Arrow columns. Of addresses that reach the same mailbox the oldest contact
    (lowest ID) is kept and the others are duplicates. With `check_dns`, each distinct domain of an
    address without another address problem (`addresses.ADDRESS_PRECEDENCE`) is looked up once
    (cached) and contacts on domains that accept no mail are flagged too (`no_mail_domain`, else
    None: not checked).
    """
    counts = dict.fromkeys(("contacts", "blank", *ADDRESS_ISSUES), 0)
    flagged: list[pd.DataFrame] = []
    kept: list[pa.Table] = []
    details = {
        "invalid_syntax": lambda c: c["syntax_reason"],
        "role_account": lambda c: "role mailbox " + c["email"].str.split("@").str[0],
        "disposable_domain": lambda c: "disposable domain " + c["domain"].fillna(""),
        "typo_domain": lambda c: "did you mean " + c["suggested_domain"].fillna(""),
    }
    batches = model.con.sql("SELECT contact_id, email FROM contacts WHERE is_email_contact "
                            "ORDER BY contact_id").to_arrow_reader(CHUNK)
    for batch in batches:
        chunk = batch.to_pandas()
        blank = _is_blank(chunk["email"])
        counts["contacts"] += len(chunk)
        counts["blank"] += int(blank.sum())
        present = chunk[~blank].reset_index(drop=True)
        checked = addr.check_addresses(present["email"]).assign(contact_id=present["contact_id"].to_numpy())
        for issue, detail in details.items():
            counts[issue] += int(checked[issue].sum())
            rows = checked[checked[issue]]
            flagged.append(pd.DataFrame({"contact_id": rows["contact_id"], "email": rows["email"],
                                         "issue": issue, "detail": detail(rows)}))
        sound = ~checked[list(addr.ADDRESS_PRECEDENCE)].any(axis=1)
        kept.append(pa.table({"contact_id": checked["contact_id"].to_numpy(), "email": checked["email"],
                              "canonical": checked["canonical"],
                              "domain": checked["domain"].where(sound) if check_dns else pd.Series(dtype=object)
                              .reindex(checked.index)}, schema=KEPT_SCHEMA))
    figures = {key: counts[key] for key in ("contacts", *ADDRESS_ISSUES)}
    table = pa.concat_tables(kept) if kept else KEPT_SCHEMA.empty_table()
    duplicates = _duplicates(model, table)
    figures["duplicate_contacts"] = int(len(duplicates))
    flagged.append(duplicates)
    figures["no_mail_domain"] = None
    if check_dns:
        domains = table.column("domain").to_pandas()
        dead = addr.domains_without_mail(set(domains.dropna()))
        hit = domains.isin(dead.keys()).to_numpy()
        on_dead = table.filter(pa.array(hit)).to_pandas()
        figures["no_mail_domain"] = int(len(on_dead))
        flagged.append(pd.DataFrame({"contact_id": on_dead["contact_id"], "email": on_dead["email"],
                                     "issue": "no_mail_domain", "detail": on_dead["domain"].map(dead)}))
    flagged = [f for f in flagged if len(f)]
    issues = pd.concat(flagged, ignore_index=True) if flagged else pd.DataFrame(columns=ISSUE_COLUMNS)
    return figures, issues[ISSUE_COLUMNS].reset_index(drop=True), counts["blank"]


KEPT_SCHEMA = pa.schema([("contact_id", pa.int64()), ("email", pa.string()), ("canonical", pa.string()),
                         ("domain", pa.string())])


def _duplicates(model: Model, table: pa.Table) -> pd.DataFrame:
    """Issue rows of the contacts whose canonical address an older contact (lower ID) has, with another
    spelling (the same spelling twice is one mailbox in Bitrix's own eyes, not a duplicate to merge)."""
    model.con.register("_checked", table)
    try:
        return model.sql(
            "SELECT contact_id, email, 'duplicate' AS issue, 'same mailbox as ' || first AS detail FROM ("
            "  SELECT contact_id, email, first_value(email) OVER (PARTITION BY canonical ORDER BY contact_id) AS first"
            "  FROM _checked WHERE canonical IS NOT NULL) WHERE first <> email ORDER BY contact_id")
    finally:
        model.con.unregister("_checked")


# --------------------------------------------------------------------------------------------
# 2. the delivery log (parsed and classified once, in the snapshot)
# --------------------------------------------------------------------------------------------

@dataclass
class LogScan:
    """The delivery log's events up to the period end, as the audit needs them."""

    deliveries: pd.DataFrame    # email, time of `sent` events to addresses that ever soft-bounced
    bounces: pd.DataFrame       # every other event, with its bounce class and rule
    files: pd.DataFrame
    samples: list[str]
    after_period: int


LOG_FILE_COLUMNS = ["file", "format", "lines", "events", "unparseable", "truncated_lines", "undecodable_lines",
                    "read_error", "year_source"]


def delivery_log_notes(files: pd.DataFrame) -> list[str]:
    """Notes naming each delivery-log file without a usable line or damaged, and the lines no reader
    could use (the counts per file are tables/hygiene_log_files.csv)."""
    notes = []
    for row in files.itertuples(index=False):
        if not row.events and not row.lines:
            notes.append(_("Delivery log {file} is empty: it adds no event to the figures.").format(file=row.file))
        elif not row.events:
            notes.append(ngettext(
                "Delivery log {file} has no usable line ({lines} line, format {format}): it adds no event to the "
                "figures.",
                "Delivery log {file} has no usable line ({lines} lines, format {format}): it adds no event to the "
                "figures.", row.lines).format(file=row.file, lines=number(row.lines), format=row.format))
        if isinstance(row.read_error, str) and row.read_error:
            notes.append(_("Delivery log {error}.").format(error=row.read_error))
    unusable = int(files[["unparseable", "truncated_lines", "undecodable_lines"]].sum().sum()) if len(files) else 0
    if unusable:
        notes.append(ngettext(
            "{n} delivery-log line was unparseable, cut short or undecodable (counted per file in "
            "tables/hygiene_log_files.csv).",
            "{n} delivery-log lines were unparseable, cut short or undecodable (counted per file in "
            "tables/hygiene_log_files.csv).", unusable).format(n=number(unusable)))
    return notes


def delivery_log(model: Model, period: Period) -> LogScan:
    """The model's delivery events before the period end: non-deliveries with their class, and the
    deliveries a soft-bounce streak needs (those to addresses with a soft-classed non-delivery)."""
    end = {"end": period.end_exclusive, "sent": dl.SENT}
    bounces = model.sql(
        "SELECT time, email, status, dsn, smtp_code, text, queue_id, message_id, file, format, bounce_class, rule "
        "FROM delivery_events WHERE status <> $sent AND time < $end ORDER BY event_id", end)
    deliveries = model.sql(
        "SELECT email, time FROM delivery_events WHERE status = $sent AND time < $end AND email IN "
        f"(SELECT email FROM delivery_events WHERE status <> $sent AND bounce_class = '{SOFT}' AND time < $end) "
        "ORDER BY event_id", end)
    after = model.scalar("SELECT count(*) FROM delivery_events WHERE time >= $end", {"end": period.end_exclusive})
    files = model.sql("SELECT * REPLACE (coalesce(format, 'not recognised') AS format) FROM logs.delivery_files "
                      "ORDER BY rowid")
    samples = [line for stats in model.manifest.get("logs", {}).get("delivery", {}).get("stats", [])
               for line in stats.get("samples", [])]
    return LogScan(deliveries, bounces, files[LOG_FILE_COLUMNS], samples, int(after))


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
# 3. sends of flagged addresses, and matching log events to sends
# --------------------------------------------------------------------------------------------

SEND_COLUMNS = ["email", "recipient_id", "posting_id", "mailing_id", "status", "date_sent"]


def sends_of(model: Model, emails, end: datetime) -> pd.DataFrame:
    """Sends (email, recipient_id, posting_id, mailing_id, status, date_sent) to the given addresses with
    a DATE_SENT before `end` -- every one in the snapshot, so older sends can date older evidence."""
    wanted = sorted({e for e in emails if isinstance(e, str) and e})
    return model.sql(
        f"WITH {EMAIL_CONTACTS} SELECT c.email, s.recipient_id, s.posting_id, s.campaign_id AS mailing_id, s.status, "
        "s.sent_at AS date_sent FROM email_contacts c JOIN sends s ON s.contact_id = c.contact_id "
        "WHERE c.email IN (SELECT unnest($emails::VARCHAR[])) AND s.sent_at < $end ORDER BY s.recipient_id",
        {"emails": wanted, "end": end})[SEND_COLUMNS]


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
    # the same dtypes on both sides, also when there is no send (a period before the data)
    left["email"], right["email"] = left["email"].astype(object), right["email"].astype(object)
    right["date_sent"] = right["date_sent"].astype(left["_key"].dtype)
    merged = pd.merge_asof(left.sort_values("_key"), right, left_on="_key", right_on="date_sent", by="email",
                           direction="backward")
    merged = merged.sort_values("_order").set_index("_order")
    merged.index.name = None
    return merged.drop(columns=["_key"]).rename(columns={"date_sent": "send_time"})


# --------------------------------------------------------------------------------------------
# 4. consent and engagement
# --------------------------------------------------------------------------------------------

def blacklist_entries(model: Model, end: datetime) -> pd.DataFrame:
    """b_main_mail_blacklist entries before `end` (or undated): email, automatic, date_insert."""
    return model.sql("SELECT email, coalesce(automatic, false) AS automatic, created_at AS date_insert FROM blacklist "
                     "WHERE email IS NOT NULL AND (created_at IS NULL OR created_at < $end) ORDER BY entry_id",
                     {"end": end})


UNSUBSCRIBES = f"""{EMAIL_CONTACTS}, opted_out AS (
    SELECT s.campaign_id AS mailing_id, c.email, min(s.unsubscribed_at) AS unsub_time,
           'unsubscribe link' AS source, 0 AS rank
    FROM sends s JOIN email_contacts c ON c.contact_id = s.contact_id
    WHERE s.unsubscribed_at < $end GROUP BY s.campaign_id, c.email
    UNION ALL
    SELECT s.campaign_id, c.email, s.created_at, 'campaign subscription', 1
    FROM subscriptions s JOIN email_contacts c ON c.contact_id = s.contact_id
    WHERE s.unsubscribed AND s.created_at < $end
), unsubscribes AS (
    SELECT mailing_id, email, unsub_time, source FROM opted_out
    QUALIFY row_number() OVER (PARTITION BY mailing_id, email ORDER BY rank, unsub_time) = 1
)"""
"""First unsubscribe of each (campaign, address) before $end: the unsubscribe link's own time wins;
the subscription row (IS_UNSUB 'Y', dated by its DATE_INSERT) fills in where no click is recorded."""


def unsubscribes_by_campaign(model: Model, end: datetime) -> pd.DataFrame:
    """First unsubscribe of each (campaign, address) before `end`: mailing_id, email, unsub_time, source."""
    return model.sql(f"WITH {UNSUBSCRIBES} SELECT * FROM unsubscribes ORDER BY mailing_id, email", {"end": end})


def sends_after_unsubscribe(model: Model, period: Period, grace_hours: int) -> pd.DataFrame:
    """Sends of the period (any STATUS) of a campaign more than `grace_hours` after the address
    unsubscribed from it (the unsubscribe may be older than the period)."""
    return model.sql(
        f"WITH {UNSUBSCRIBES}, late AS ("
        "  SELECT u.email, s.campaign_id AS mailing_id, s.posting_id, s.recipient_id, s.status,"
        "         s.sent_at AS date_sent, u.unsub_time,"
        "         (epoch(s.sent_at) - epoch(u.unsub_time)) / 3600.0 AS hours_after"
        "  FROM unsubscribes u JOIN email_contacts c ON c.email = u.email"
        "  JOIN sends s ON s.contact_id = c.contact_id AND s.campaign_id = u.mailing_id"
        "  WHERE s.sent_at >= $start AND s.sent_at < $end)"
        "SELECT * FROM late WHERE hours_after > $grace ORDER BY email, date_sent",
        {"start": period.start_dt, "end": period.end_exclusive, "grace": grace_hours})


CONTACT_FLAGS = {"IS_UNSUB": "unsubscribed", "BLACKLISTED": "blacklisted"}
"""The opt-out flags of b_sender_contact and the model's column for each."""


def unsubscribed_contacts(model: Model, unsubs: pd.DataFrame) -> pd.DataFrame:
    """E-mail contacts that opted out in the sender module: the contact's IS_UNSUB or BLACKLISTED flag
    (where the layout has them), or an unsubscribe from a campaign (`unsubs`; legacy contacts carry no
    IS_UNSUB). One row per address: email, source, date (the flag's DATE_UPDATE or the unsubscribe time)."""
    columns = model.columns("b_sender_contact")
    flags = [name for name in CONTACT_FLAGS if name in columns]
    parts = []
    if flags:
        date = "updated_at" if "DATE_UPDATE" in columns else "created_at"
        flagged = model.sql(f"SELECT email, {date} AS date FROM contacts WHERE is_email_contact AND email IS NOT NULL "
                            f"AND ({' OR '.join(CONTACT_FLAGS[f] for f in flags)}) ORDER BY contact_id")
        parts.append(flagged.assign(source="contact " + "/".join(flags)))
    parts.append(pd.DataFrame({"email": unsubs["email"], "date": unsubs["unsub_time"],
                               "source": unsubs["source"] + " (campaign "
                               + unsubs["mailing_id"].astype("Int64").astype(str) + ")"}))
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=["email", "source", "date"])
    return rows.drop_duplicates("email")[["email", "source", "date"]].reset_index(drop=True)


def crm_emails(model: Model, emails) -> pd.DataFrame:
    """Which of `emails` a CRM contact has (the model's crm_emails): email, crm_contact_id (the lowest)."""
    return model.sql("SELECT email, min(crm_contact_id) AS crm_contact_id FROM crm_emails "
                     "WHERE email IN (SELECT unnest($emails::VARCHAR[])) GROUP BY email ORDER BY email",
                     {"emails": sorted({e for e in emails if isinstance(e, str)})})


def crm_exclusions(model: Model) -> set[str]:
    return set(model.sql("SELECT DISTINCT email FROM crm_exclusions WHERE email IS NOT NULL")["email"])


def complaints(model: Model, end: datetime) -> pd.DataFrame:
    """E-mail complaints (b_sender_abuse) before `end`: contact_id, email (the complaint's address, else
    its contact's), date_insert, text. A complaint whose own row does not say whether it is about
    e-mail (no CONTACT_TYPE_ID, no address) counts when its contact is an e-mail contact."""
    return model.sql(
        "SELECT a.contact_id, coalesce(a.email, c.email) AS email, a.complained_at AS date_insert, a.text "
        "FROM complaints a LEFT JOIN contacts c ON c.contact_id = a.contact_id "
        "WHERE a.complained_at < $end AND coalesce(a.is_email, c.is_email_contact, false) ORDER BY a.complaint_id",
        {"end": end})


@dataclass(frozen=True)
class Evidence:
    """One kind of engagement evidence: the Bitrix table (and flag columns, the open flag first) it
    needs, the SQL selecting the contacts it shows engaged between $start and $end, and whether it
    records opens (clicks alone cannot tell an opener)."""

    name: str
    table: str
    flags: tuple[str, ...]
    sql: str
    opens: bool

    def available(self, model: Model) -> bool:
        return model.has(self.table) and (not self.flags or bool(set(self.flags) & model.columns(self.table)))

    def records_opens(self, model: Model) -> bool:
        return self.opens and (not self.flags or self.flags[0] in model.columns(self.table))


ENGAGEMENT_EVIDENCE = (
    # a read row that a machine click wrote (model: machine_click_reads) is no one's open, and
    # a machine click no one's click (analyses.machine_clicks): an address only machines click is inactive
    Evidence(N_("read rows"), "b_sender_posting_read", (),
             "SELECT s.contact_id FROM reads r JOIN sends s ON s.recipient_id = r.recipient_id "
             "WHERE r.read_at >= $start AND r.read_at < $end "
             "AND NOT EXISTS (SELECT 1 FROM machine_click_reads m WHERE m.read_id = r.read_id)", opens=True),
    Evidence(N_("click rows"), "b_sender_posting_click", (),
             "SELECT s.contact_id FROM clicks k JOIN sends s ON s.recipient_id = k.recipient_id "
             "WHERE k.clicked_at >= $start AND k.clicked_at < $end "
             "AND NOT EXISTS (SELECT 1 FROM machine_clicks m WHERE m.click_id = k.click_id)", opens=False),
    Evidence(N_("the recipient rows' IS_READ/IS_CLICK flags of the letters sent in the window"),
             "b_sender_posting_recipient", ("IS_READ", "IS_CLICK"),
             "SELECT contact_id FROM sends WHERE (read_flag OR click_flag) AND sent_at >= $start AND sent_at < $end",
             opens=True),
    Evidence(N_("the contacts' IS_READ/IS_CLICK flags (an open or click at any time)"),
             "b_sender_contact", ("IS_READ", "IS_CLICK"),
             "SELECT contact_id FROM contacts WHERE read_flag OR click_flag", opens=True),
)
"""Engagement evidence, best first: the read and click rows date every open and click; where the
portal lacks one of those tables, the first fallback it has is added."""


def engagement_evidence(model: Model) -> tuple[list[Evidence], str | None]:
    """The evidence inactivity is judged by, and a note when that is not the read and click rows.
    Without any record of opens: an empty list (no verdict: absence of data is not inactivity)."""
    rows, fallbacks = ENGAGEMENT_EVIDENCE[:2], ENGAGEMENT_EVIDENCE[2:]
    used = [item for item in rows if item.available(model)]
    if len(used) == len(rows):
        return used, None
    missing = _and([item.table for item in rows if not item.available(model)])
    used += [item for item in fallbacks if item.available(model)][:1]
    if not any(item.records_opens(model) for item in used):
        return [], _("inactive is null: the portal records no opens ({missing} missing, no IS_READ flag on "
                     "recipients or contacts); a contact is never called inactive for lack of data.").format(
            missing=missing)
    return used, _("inactive: {missing} missing, so engagement is judged by {evidence}.").format(
        missing=missing, evidence=_and([_(item.name) for item in used]))


def _and(items: list[str]) -> str:
    """"a", "a and b", "a and b and c" in the bundle's language."""
    text = items[0] if items else ""
    for item in items[1:]:
        text = _("{first} and {second}").format(first=text, second=item)
    return text


def inactive_contacts(model: Model, period: Period, months: int, min_sends: int,
                      evidence: list[Evidence]) -> tuple[pd.DataFrame, datetime]:
    """Addresses with >= `min_sends` sent rows in the `months` before the period end and no open or
    click in that window by `evidence`: email, sends, last_send. Also returns the window start."""
    end = period.end_exclusive
    start = end - relativedelta(months=months)
    engaged = " UNION ".join(item.sql for item in evidence)
    inactive = model.sql(
        f"WITH {EMAIL_CONTACTS}, per_contact AS ("
        "  SELECT contact_id, count(*) AS sends, max(sent_at) AS last_send FROM sends"
        "  WHERE delivered AND sent_at >= $start AND sent_at < $end GROUP BY contact_id"
        "), mailed AS ("
        "  SELECT c.email, sum(p.sends)::BIGINT AS sends, max(p.last_send) AS last_send"
        "  FROM per_contact p JOIN email_contacts c ON c.contact_id = p.contact_id"
        "  GROUP BY c.email HAVING sum(p.sends) >= $min_sends"
        f"), engaged AS (SELECT c.email FROM ({engaged}) e JOIN email_contacts c ON c.contact_id = e.contact_id) "
        "SELECT * FROM mailed WHERE email NOT IN (SELECT email FROM engaged) ORDER BY email",
        {"start": start, "end": end, "min_sends": min_sends})
    return inactive, start


# --------------------------------------------------------------------------------------------
# 5. rates over postings, providers and months (sends in the period)
# --------------------------------------------------------------------------------------------

SEND_COUNTS = "count(*) FILTER (WHERE delivered) AS sent, count(*) FILTER (WHERE attempted AND NOT delivered) AS error_rows"
"""Sent (STATUS 'N') and error (STATUS 'E') rows, by the model's delivered and attempted."""


def sends_by_posting(model: Model, period: Period) -> pd.DataFrame:
    """Sends of the period per posting: campaign, first and last send, sent and error rows."""
    return model.sql(
        f"SELECT s.posting_id, c.name AS campaign, min(s.sent_at) AS first_send, max(s.sent_at) AS last_send, "
        f"{SEND_COUNTS} FROM sends s LEFT JOIN campaigns c ON c.campaign_id = s.campaign_id "
        "WHERE s.sent_at >= $start AND s.sent_at < $end GROUP BY s.posting_id, c.name ORDER BY s.posting_id",
        {"start": period.start_dt, "end": period.end_exclusive})


def sends_by_provider(model: Model, period: Period) -> pd.DataFrame:
    """Sends of the period per mailbox provider (the model's provider): sent and error rows."""
    return model.sql(f"SELECT provider, {SEND_COUNTS} FROM sends WHERE sent_at >= $start AND sent_at < $end "
                     "GROUP BY provider ORDER BY provider", {"start": period.start_dt, "end": period.end_exclusive})


def sends_by_month(model: Model, period: Period) -> pd.DataFrame:
    """Sends of the period per calendar month ("YYYY-MM", every month of the period): sent and error rows."""
    counted = model.sql(f"SELECT strftime(date_trunc('month', sent_at), '%Y-%m') AS month, {SEND_COUNTS} "
                        "FROM sends WHERE sent_at >= $start AND sent_at < $end GROUP BY date_trunc('month', sent_at)",
                        {"start": period.start_dt, "end": period.end_exclusive}).set_index("month")
    months = []
    month = period.start_dt.replace(day=1)
    while month < period.end_exclusive:
        months.append(month.strftime("%Y-%m"))
        month += relativedelta(months=1)
    return counted.reindex(months, fill_value=0).astype("int64").rename_axis("month").reset_index()


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


def audit_hygiene(model: Model, period: Period, hygiene: dict) -> HygieneResult:
    """The whole audit. `hygiene` is the validated `hygiene` parameter section. Without a delivery log
    in the snapshot the log-only figures are None with a note."""
    end = period.end_exclusive
    notes: list[str] = []
    figures, issues, blank = audit_addresses(model, check_dns=bool(hygiene.get("check_dns")))
    if figures["no_mail_domain"] is None:
        notes.append(_("no_mail_domain is null: domains were not looked up in DNS (set hygiene.check_dns: true "
                       "where the machine can reach a DNS server)."))

    blacklist = blacklist_entries(model, end)
    if not model.has("b_main_mail_blacklist"):
        notes.append(_("b_main_mail_blacklist is missing: hard bounces come from the delivery log only."))

    scan = delivery_log(model, period)   # empty without a log
    notes += delivery_log_notes(scan.files)
    have_log = model.has_delivery_log and bool(scan.files["events"].sum())   # a log with a usable line
    bounces = scan.bounces
    if model.has_delivery_log and not have_log:
        notes.append(_("No delivery-log file has a usable line: soft_bounce_streak and sender_block_events are "
                       "null, hard_bounce counts the automatic b_main_mail_blacklist entries only, and bounce rates "
                       "use recipient rows with STATUS 'E' (error)."))
    elif not have_log:
        notes.append(_("No delivery log (logs.delivery): soft_bounce_streak and sender_block_events need the mail "
                       "server's log and are null; hard_bounce counts the automatic b_main_mail_blacklist entries "
                       "only (Bitrix records no SMTP code per recipient); bounce rates below use recipient rows "
                       "with STATUS 'E' (error), which mix hand-off failures, blocked and unsubscribed contacts."))
    elif scan.after_period:
        notes.append(ngettext("{n} delivery-log event after the period end was left out.",
                              "{n} delivery-log events after the period end were left out.",
                              scan.after_period).format(n=number(scan.after_period)))

    abuse = complaints(model, end) if model.has("b_sender_abuse") else None
    flagged = set(bounces["email"]) | set(blacklist.loc[blacklist["automatic"], "email"])
    if abuse is not None:
        flagged |= set(abuse["email"].dropna())
    rows = sends_of(model, flagged, end)
    bounces = match_sends(bounces, rows)
    bounces["send_key"] = _send_key(bounces) if not bounces.empty else pd.Series(dtype=object)
    bounces["provider"] = provider_series(bounces["email"].astype(object).fillna("")) if not bounces.empty else []

    # hard bounces (evidence up to the period end) and the period's sends after them
    hard = first_hard_bounces(bounces, blacklist)
    figures["hard_bounce"] = int(len(hard))
    after_hard = rows[rows["date_sent"] >= period.start_dt].merge(hard[["email", "first_hard"]], on="email")
    after_hard = after_hard[after_hard["date_sent"] > after_hard["first_hard"]]
    figures["sent_after_hard_bounce"] = int(len(after_hard))

    # soft-bounce streaks and sender blocks (log only)
    streak = int(hygiene["soft_bounce_streak"])
    streaks = soft_bounce_streaks(bounces, scan.deliveries, streak)
    figures["soft_bounce_streak"] = int(len(streaks)) if have_log else None
    figures["sender_block_events"] = int(bounces["bounce_class"].isin(SENDER_SIDE).sum()) if have_log else None

    # consent
    unsubs = unsubscribes_by_campaign(model, end)
    unsub_contacts = unsubscribed_contacts(model, unsubs)
    if model.has("b_crm_field_multi"):
        excluded = crm_exclusions(model) | set(blacklist["email"])
        if not model.has("b_crm_exclusion"):
            notes.append(_("b_crm_exclusion is missing: only b_main_mail_blacklist counts as a CRM-side "
                           "exclusion."))
        gap = unsub_contacts.merge(crm_emails(model, unsub_contacts["email"]), on="email")
        gap = gap[~gap["email"].isin(excluded)]
        figures["unsubscribed_not_excluded_in_crm"] = int(gap["email"].nunique())
    else:
        gap = pd.DataFrame(columns=["email", "source", "date", "crm_contact_id"])
        figures["unsubscribed_not_excluded_in_crm"] = None
        notes.append(_("No CRM e-mails (b_crm_field_multi): unsubscribed_not_excluded_in_crm cannot be computed."))

    late_sends = sends_after_unsubscribe(model, period, int(hygiene["unsub_grace_hours"]))
    figures["sent_after_unsubscribe"] = int(len(late_sends))
    if not model.has("b_sender_posting_unsub") and not model.has("b_sender_mailing_subscription"):
        figures["sent_after_unsubscribe"] = None
        notes.append(_("No unsubscribe records (b_sender_posting_unsub, b_sender_mailing_subscription): "
                       "sent_after_unsubscribe cannot be computed."))

    if abuse is not None:
        abuse = match_sends(abuse.assign(time=abuse["date_insert"]), rows)
        who = abuse["contact_id"].astype(object).where(abuse["contact_id"].notna(), abuse["email"])
        figures["complaints"] = int(who.nunique())
    else:
        figures["complaints"] = None
        notes.append(_("b_sender_abuse is missing (sender versions before 17): complaints cannot be counted."))

    months, min_sends = int(hygiene["inactive_months"]), int(hygiene["inactive_min_sends"])
    evidence, evidence_note = engagement_evidence(model)
    if evidence_note:
        notes.append(evidence_note)
    inactive, window_start = inactive_contacts(model, period, months, min_sends, evidence) if evidence \
        else (pd.DataFrame(columns=["email", "sends", "last_send"]), None)
    figures["inactive"] = int(len(inactive)) if evidence else None
    removed = machine_clicks.removed_clicks(model, window_start or period.start_dt, period.end_exclusive)
    figures["machine_clicks_removed"] = machine_clicks.removed_by_reason(removed)

    # rates in the period
    by_posting, by_provider, by_month = _rate_tables(model, period, bounces, abuse, have_log)
    totals = by_month[["sent", "attempted", "error_rows", "hard_bounces", "complaints"]].sum()
    figures["period_rates"] = {
        "hard_bounce_rate": float(totals["hard_bounces"] / totals["attempted"]) if have_log and totals["attempted"] else None,
        "error_rate": float(totals["error_rows"] / totals["attempted"]) if totals["attempted"] else None,
        "complaint_rate": float(totals["complaints"] / totals["sent"]) if totals["sent"] else None,
    }

    suppressions, left_out = _whole_addresses(
        _suppressions(issues, hard, streaks, abuse, unsub_contacts, inactive, window_start))
    if blank:
        notes.append(ngettext("{n} e-mail contact has a blank address: nothing to check or suppress, so it is "
                              "in no suppression file (fix or delete it in the CRM).",
                              "{n} e-mail contacts have a blank address: nothing to check or suppress, so they are "
                              "in no suppression file (fix or delete them in the CRM).", blank).format(n=number(blank)))
    if left_out:
        notes.append(ngettext("{n} suppression row named no address (only whitespace) and was left out of the files.",
                              "{n} suppression rows named no address (only whitespace) and were left out of the "
                              "files.", left_out).format(n=number(left_out)))
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
                                 if have_log else None)
    figures["auto_replies"] = int((bounces["bounce_class"] == AUTO_REPLY).sum()) if have_log else None

    result = HygieneResult(
        figures=figures, notes=notes, address_issues=issues,
        bounce_events=bounces.drop(columns=["send_key"], errors="ignore"), unclassified=unclassified,
        log_files=scan.files, log_samples=scan.samples, by_posting=by_posting, by_provider=by_provider,
        by_month=by_month, suppressions=suppressions, crm_remediation=crm_remediation.reset_index(drop=True),
        have_log=have_log, machine_clicks=removed,
    )
    result.facts = {
        "people_sent_after_unsubscribe": int(late_sends["email"].nunique()) if not late_sends.empty else 0,
        "addresses_sent_after_hard_bounce": int(after_hard["email"].nunique()) if not after_hard.empty else 0,
        "attempted_sends": int(totals["attempted"]),
    }
    return result


def _rate_tables(model, period, bounces, abuse, have_log):
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

    by_posting = assemble(sends_by_posting(model, period), "posting_id")
    by_provider = assemble(sends_by_provider(model, period), "provider")
    by_month = assemble(sends_by_month(model, period), "month")
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


def _whole_addresses(suppressions: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], int]:
    """The suppression tables without rows whose address is blank, and how many rows that left out."""
    kept, left_out = {}, 0
    for reason, rows in suppressions.items():
        blank = _is_blank(rows["email"])
        left_out += int(blank.sum())
        if not blank.all():
            kept[reason] = rows[~blank].reset_index(drop=True)
    return kept, left_out


# --------------------------------------------------------------------------------------------
# 7. views for the report
# --------------------------------------------------------------------------------------------

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
