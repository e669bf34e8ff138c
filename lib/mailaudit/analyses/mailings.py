"""Per-mailing scoreboard: one row per posting of the period with what it delivered, how people reacted,
what it cost the list and what it earned, beside the period's median mailing.

Every figure counts the posting's sends whose DATE_SENT is in the period (`Period`):

* **delivered**: the model's delivered sends (STATUS 'N').
* **human_open_rate**: the open-inflation report's headline estimate of the delivered sends a person opened
  (Apple's proxy and security scanners removed: access log when the snapshot has one, else the database's
  prefetch signature), computed within the posting (``opens.human_open_rate_by_posting``), so that this
  table and the open-inflation report agree. A fraction of delivered.
* **human_click_rate**: delivered sends with a person's click (``sends.human_clicks`` > 0: the model's
  machine clicks left out) ÷ delivered; None for a campaign with click tracking off (TRACK_CLICK 'N').
* **unsubscribes**: delivered sends followed by an unsubscribe (the recipient's IS_UNSUB flag or an
  unsubscribe row).
* **bounces**: with a delivery log, sends whose address hard- or soft-bounced (a final non-delivery of that
  class, matched to the latest send of the address no later than ten minutes after the event, as list
  hygiene does); without one, Bitrix's error rows (STATUS 'E'). ``bounce_source`` says which.
* **complaints**: sends that drew a spam complaint (each complaint goes to its contact's latest delivered
  send at or before it, as in segments).
* **orders**, **revenue**: purchases credited to the posting's sends by the conversion report's last-touch
  rule (``conversion.attributed_sends``): each purchase once, so the column sums are the report's totals.
* **revenue_per_recipient**: revenue ÷ delivered.

The reference row is the median of each column over the period's postings (not a pooled rate).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mailaudit.analyses import conversion, opens, segments
from mailaudit.analyses.bounces import HARD, SOFT
from mailaudit.analyses.hygiene import SEND_MATCH_SLACK
from mailaudit.model import Model
from mailaudit.narrative.language import _, date, ngettext
from mailaudit.period import Period
from mailaudit.sources import delivery_logs as dl

COLUMNS = ["posting_id", "mailing", "letter", "first_send", "delivered", "human_open_rate", "human_click_rate",
           "unsubscribes", "bounces", "complaints", "orders", "revenue", "revenue_per_recipient"]

_SENDS = """
    SELECT s.posting_id, any_value(c.name) AS mailing, any_value(l.title) AS letter, min(s.sent_at) AS first_send,
           coalesce(bool_and(c.track_click), true) AS tracks_clicks,
           count_if(s.delivered) AS delivered,
           count_if(s.delivered AND s.human_clicks > 0) AS human_clickers,
           count_if(s.delivered AND (s.unsubscribed_at IS NOT NULL OR coalesce(s.unsub_flag, false))) AS unsubscribes,
           count_if(s.attempted AND NOT s.delivered) AS error_rows
    FROM sends s LEFT JOIN campaigns c USING (campaign_id) LEFT JOIN letters l USING (letter_id)
    WHERE s.sent_at >= $start AND s.sent_at < $end
    GROUP BY s.posting_id"""

_LOG_BOUNCES = f"""
    WITH events AS (
        SELECT email, time + INTERVAL {int(SEND_MATCH_SLACK.total_seconds())} SECOND AS reach FROM delivery_events
        WHERE bounce_class IN ('{HARD}', '{SOFT}') AND status IN ('{dl.BOUNCED}', '{dl.EXPIRED}', '{dl.FAILED}')
          AND time >= $start AND time < $end_with_slack
    ), matched AS (
        SELECT s.recipient_id, s.posting_id, s.sent_at
        FROM events e ASOF JOIN (SELECT recipient_id, posting_id, email, sent_at FROM sends WHERE sent_at IS NOT NULL) s
             ON s.email = e.email AND e.reach >= s.sent_at
    )
    SELECT posting_id, count(DISTINCT recipient_id) AS bounces FROM matched
    WHERE sent_at >= $start AND sent_at < $end GROUP BY posting_id"""


@dataclass
class MailingScoreboard:
    """The scoreboard (one row per posting, COLUMNS), its median row and the figures for summary.json."""

    table: pd.DataFrame
    median: pd.Series
    figures: dict
    notes: list[str] = field(default_factory=list)

    def with_median(self) -> pd.DataFrame:
        """The table with the median row last (its `mailing` says what it is)."""
        return pd.concat([self.table, self.median.to_frame().T], ignore_index=True)[COLUMNS]


def scoreboard(model: Model, period: Period, *, opens_params: dict, open_window_days: int = 5,
               click_window_days: int = 30, evidence: opens.ContactEvidence | None = None) -> MailingScoreboard:
    """The per-mailing scoreboard of `period` (see the module docstring). `evidence`: the opens
    classification of the same period, when the caller already has it (segments does); else made here."""
    notes: list[str] = []
    bounds = {"start": period.start_dt, "end": period.end_exclusive}
    table = model.sql(_SENDS, bounds)
    table = table[table["delivered"] > 0].astype({"posting_id": "int64"})
    evidence = evidence or opens.classify_contacts(model, period, opens_params)
    human = opens.human_open_rate_by_posting(evidence, model)[["posting", "human_open_rate"]]
    table = table.merge(human.rename(columns={"posting": "posting_id"}), on="posting_id", how="left")
    # a campaign with click tracking off records no click: its click rate is unknown, not 0
    table["human_click_rate"] = (table["human_clickers"] / table["delivered"]).where(table["tracks_clicks"])

    if model.has_delivery_log:
        bounced = model.sql(_LOG_BOUNCES, {**bounds, "end_with_slack": period.end_exclusive + SEND_MATCH_SLACK})
        table = table.merge(bounced.astype({"posting_id": "int64"}), on="posting_id", how="left")
        bounce_source = "delivery log"
    else:
        table["bounces"] = table["error_rows"]
        bounce_source = "Bitrix error status"
        notes.append(_("No delivery log: a mailing's bounces are its recipient rows in error (STATUS 'E')."))

    if segments.complaints_recorded(model):
        complained = model.sql(f"SELECT s.posting_id, count(*) AS complaints FROM sends s SEMI JOIN "
                               f"({segments.complained_sends_sql(period.end_exclusive)}) c USING (recipient_id) "
                               "WHERE s.sent_at >= $start AND s.sent_at < $end GROUP BY s.posting_id", bounds)
        table = table.merge(complained.astype({"posting_id": "int64"}), on="posting_id", how="left")
    else:
        table["complaints"] = np.nan
        notes.append(_("Complaints cannot be tied to mailings: b_sender_abuse is missing or has no CONTACT_ID."))

    credited = conversion.attributed_sends(model, period, open_window_days=open_window_days,
                                           click_window_days=click_window_days)
    currencies = sorted(credited["currency"].dropna().unique()) if len(credited) else []
    if len(credited):
        posting_of = model.sql("SELECT recipient_id, posting_id FROM sends WHERE recipient_id IN "
                               "(SELECT unnest($ids))", {"ids": credited["recipient_id"].astype("int64").tolist()})
        money = credited.merge(posting_of, on="recipient_id").groupby("posting_id").agg(
            orders=("purchase_id", "nunique"), revenue=("value", "sum")).reset_index()
        table = table.merge(money.astype({"posting_id": "int64"}), on="posting_id", how="left")
    else:
        table["orders"], table["revenue"] = 0, 0.0
    for column in ("bounces", "complaints", "orders"):
        if table[column].notna().any() or column != "complaints":
            table[column] = table[column].fillna(0).astype("int64")
    table["revenue"] = table["revenue"].fillna(0.0).astype(float)
    table["revenue_per_recipient"] = table["revenue"] / table["delivered"]
    table = table.sort_values(["first_send", "posting_id"]).reset_index(drop=True)[COLUMNS]

    median = table.drop(columns=["posting_id", "mailing", "letter", "first_send"]).median(numeric_only=True)
    median = pd.concat([pd.Series({"posting_id": None, "mailing": median_label(len(table)),
                                   "letter": None, "first_send": None}), median])
    figures = {
        "postings": int(len(table)),
        "bounce_source": bounce_source,
        "human_open_evidence": evidence.evidence,
        "currency": conversion.currency_label(currencies) or None,
        "median": {k: (None if pd.isna(v) else float(v)) for k, v in median.items()
                   if k not in ("posting_id", "mailing", "letter", "first_send")},
        "orders": int(table["orders"].sum()),
        "revenue": round(float(table["revenue"].sum()), 2),
    }
    return MailingScoreboard(table=table, median=median, figures=figures, notes=notes)


def median_label(postings: int) -> str:
    """The median row's name: "median mailing of 12" (the number of mailings it is the median of)."""
    return ngettext("median mailing of {n}", "median mailing of {n}", postings).format(n=postings)


def labelled(board: MailingScoreboard) -> pd.DataFrame:
    """The scoreboard with the median row, its columns named (dates in the report's language); the posting
    ID stays in the CSV, so that the page's table fits. The page shows the names through
    `narrative.segments.SCOREBOARD_LABELS`, in the report's language."""
    table = board.with_median().drop(columns="posting_id")
    table["first_send"] = pd.to_datetime(table["first_send"]).map(lambda d: None if pd.isna(d) else date(d))
    return table.rename(columns={
        "mailing": "mailing", "letter": "letter", "first_send": "first sent",
        "delivered": "delivered", "human_open_rate": "opened by people", "human_click_rate": "clicked by people",
        "unsubscribes": "unsubscribes", "bounces": "bounces", "complaints": "complaints", "orders": "orders",
        "revenue": "revenue", "revenue_per_recipient": "revenue per recipient"})


PERCENT_COLUMNS = ("opened by people", "clicked by people")
AMOUNT_COLUMNS = ("revenue", "revenue per recipient")
COUNT_COLUMNS = ("delivered", "unsubscribes", "bounces", "complaints", "orders")
