"""E-mail -> order/deal conversion: linking, last-touch attribution, cohorts, time to order, baseline, follow-up.

Everything is read from the snapshot's model (sends, reads, clicks, contacts, orders, deals, crm_emails…).

Definitions (the contract's, made exact):

* **delivered**: the model's delivered sends (recipient rows of e-mail letters with STATUS 'N') whose `sent_at`
  is in the period (``Period``), whether or not they still reach a contact. SMS and other channels' rows are
  left out.
* **purchase**: a store order (``orders``, not cancelled; time `ordered_at`, value) or, when the portal has no
  store orders, a won deal (``deals.won``; time `closed_at`, else `created_at`; value).
* **linking**: a purchase reaches a mailing contact through its CRM contacts (``order_crm_contacts``,
  ``deal_crm_contacts``) and their e-mail addresses (``crm_emails``: the sender contact with that address), or,
  for an order, through its site user (``orders.user_id`` = ``contacts.user_id`` of an e-mail contact).
* **touch**: a read (``reads``: an open, machine loads included) or click (``clicks``) row of a delivered send.
  Bitrix writes a read row with a click that had no earlier read, so clicks are not counted as opens a second time.
  A machine click (``machine_clicks``: a security gateway or link scanner, ``analyses.machine_clicks``) and the
  read row it wrote (``machine_click_reads``) are no one's touch: they attribute no purchase.
* **last touch** (contract): a purchase is attributed to the latest send (by `sent_at`; on equal times the higher
  recipient ID) of any of its contacts that has a click at or before the purchase and at most
  ``click_window_days`` x 24 h before it; failing that, to the latest send with a read row at most
  ``open_window_days`` x 24 h before it. Both window edges are inclusive (a touch exactly N x 24 h earlier, or at
  the same second, counts). Every send of the contact in the snapshot competes, including sends outside the
  period; only sends in the period are reported. A send converts when at least one purchase is attributed to
  it; revenue is the purchases' value.
* **click-only**: the same rule without the open branch (robust to Apple MPP machine opens).

The snapshot holds the postings of its window (the period, and `click_window_days` after it), so a send made
later than that cannot take a purchase from a period send; the rule above can differ from the whole database's
only for a period letter clicked after the period and a purchase that a letter sent after the window would take.

Scale: the joins run in the snapshot's engine (temporary tables on a private cursor); pandas receives the
(purchase, touched send) pairs within the longest window, and, one range of contact IDs at a time, the rows
the bootstrap and the baseline's contact x posting cells need. Bootstrap intervals resample contacts
(Poisson weights derived from the contact ID, so they do not depend on how the ranges fall); a send that
reaches no contact is resampled with the other sends to its address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
from scipy.stats import poisson

from mailaudit.analyses.stats import Z95, wilson_interval
from mailaudit.bitrix import codes
from mailaudit.model import Model
from mailaudit.narrative.language import _
from mailaudit.period import Period

DAY = 86_400
"""Seconds in a day: windows are N x 24 h."""

SENSITIVITY_DAYS = tuple(range(1, 31))
TENURE_BUCKETS = ((90, "under 3 months"), (365, "3-12 months"), (730, "1-2 years"), (None, "2+ years"))
EMAIL_UTM_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "mail", "newsletter", "rassylka"})
"""utm_medium values (lower-case) that mark e-mail traffic."""
CUMULATIVE_DAYS = 30
_POISSON1_THRESHOLDS = np.ceil(poisson.cdf(np.arange(0, 30), 1.0) * 2.0 ** 53).astype(np.uint64)
"""A uniform 53-bit draw v gives the Poisson(1) weight #{k: CDF(k) <= v / 2^53} = #{k: threshold k <= v}."""
_BUCKET_SHIFT = np.uint64(37)
_BUCKET_LOW = np.arange(2 ** 16, dtype=np.uint64) << _BUCKET_SHIFT
_BUCKET_WEIGHT = np.searchsorted(_POISSON1_THRESHOLDS, _BUCKET_LOW, side="right").astype(np.uint8)
_BUCKET_MIXED = _BUCKET_WEIGHT != np.searchsorted(_POISSON1_THRESHOLDS, _BUCKET_LOW + np.uint64(2 ** 37 - 1),
                                                  side="right")
"""The weight of a draw is that of its top 16 bits' bucket, except in the few buckets a threshold splits."""


@dataclass
class ConversionResult:
    """Tidy tables and the summary.json figures of the conversion report."""

    figures: dict
    cohorts: pd.DataFrame
    linking: pd.DataFrame
    sensitivity: pd.DataFrame
    cumulative: pd.DataFrame
    time_to_order: pd.DataFrame
    baseline: pd.DataFrame
    utm_letters: pd.DataFrame
    followup: pd.DataFrame
    converted_sends: pd.DataFrame
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# pure parts
# --------------------------------------------------------------------------------------------

def cohort_labels(times: pd.Series, cohort: str) -> pd.Series:
    """"YYYY-MM" (month of the send) or "YYYY-Www" (ISO week) for each timestamp."""
    times = pd.to_datetime(times)
    if cohort == "month":
        return times.dt.strftime("%Y-%m")
    if cohort == "week":
        iso = times.dt.isocalendar()
        return iso["year"].astype(int).astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
    raise ValueError(f"cohort must be 'month' or 'week', got {cohort!r}")


def cohort_windows(period: Period, cohort: str) -> pd.DataFrame:
    """The cohorts overlapping the period: label, start, end (exclusive), clipped to the period."""
    rows = []
    day = period.start
    while day <= period.end:
        if cohort == "month":
            nxt = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        else:
            nxt = day - timedelta(days=day.weekday()) + timedelta(days=7)
        end = min(nxt, period.end + timedelta(days=1))
        rows.append({"cohort": cohort_labels(pd.Series([pd.Timestamp(day)]), cohort).iloc[0],
                     "start": pd.Timestamp(day), "end": pd.Timestamp(end)})
        day = end
    return pd.DataFrame(rows)


def attribute(pairs: pd.DataFrame, click_days: int, open_days: int | None) -> pd.DataFrame:
    """Last-touch choice: the chosen pair row (purchase_id, recipient_id, contact_id, sent_at) per
    attributed purchase.

    pairs: purchase_id, recipient_id, contact_id, sent_at (s), click_lag, open_lag (seconds from the send's
    latest click / read row at or before the purchase to the purchase; NaN when none is in reach). The latest
    send (sent_at, then recipient_id) with click_lag <= click_days x 24 h; for purchases without one, the
    latest with open_lag <= open_days x 24 h (no open branch when None).
    """
    cols = ["purchase_id", "recipient_id", "contact_id", "sent_at"]
    pairs = sort_pairs(pairs)
    by_click = pairs[pairs["click_lag"] <= click_days * DAY].drop_duplicates("purchase_id", keep="last")[cols]
    if open_days is None:
        return by_click
    rest = pairs[(pairs["open_lag"] <= open_days * DAY) & ~pairs["purchase_id"].isin(by_click["purchase_id"])]
    return pd.concat([by_click, rest.drop_duplicates("purchase_id", keep="last")[cols]], ignore_index=True)


def sort_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs in (purchase, send time, recipient) order: each purchase's latest send last."""
    return pairs.sort_values(["purchase_id", "sent_at", "recipient_id"], kind="stable").reset_index(drop=True)


def window_sensitivity(pairs: pd.DataFrame, value: np.ndarray, counted: np.ndarray,
                       days: tuple[int, ...] = SENSITIVITY_DAYS) -> np.ndarray:
    """For every window d in `days`: revenue and purchases attributed to counted sends by the rule with both
    windows d (last touch) and without the open branch (click only). Columns: last-touch revenue, last-touch
    purchases, click-only revenue, click-only purchases.

    pairs: sorted as `sort_pairs` leaves them; value: each pair's purchase value; counted: whether each pair's
    send is reported (in the period). One pass instead of one attribution per window: a pair is its purchase's
    latest eligible send from the first window that reaches its touch until the first window that reaches a
    later send's touch, so each pair credits one range of windows.
    """
    d = np.asarray(days, dtype=np.int64)
    if pairs.empty:
        return np.zeros((len(d), 4))
    purchase = pairs["purchase_id"].to_numpy()
    last_of_purchase = np.append(purchase[1:] != purchase[:-1], True)
    never = np.iinfo(np.int64).max

    def reach(lag: pd.Series) -> np.ndarray:
        """The smallest window (days) that reaches the touch."""
        return np.where(lag.isna(), never, np.ceil(lag.fillna(0).to_numpy() / DAY).astype(np.int64))

    def until(first: np.ndarray) -> np.ndarray:
        """The smallest window that reaches a later send of the same purchase."""
        at_or_after = pd.Series(first[::-1]).groupby(purchase[::-1], sort=False).cummin().to_numpy()[::-1]
        return np.where(last_of_purchase, never, np.append(at_or_after[1:], never))

    def credited(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """(revenue, purchases) per window of the pairs chosen for windows in [start, stop)."""
        lo, hi = np.searchsorted(d, start), np.searchsorted(d, stop)
        keep = counted & (lo < hi)
        out = np.zeros((len(d) + 1, 2))
        for column, weight in ((0, value[keep]), (1, np.ones(keep.sum()))):
            out[:, column] += np.bincount(lo[keep], weight, minlength=len(d) + 1)
            out[:, column] -= np.bincount(hi[keep], weight, minlength=len(d) + 1)
        return out.cumsum(axis=0)[:-1]

    click, opened = reach(pairs["click_lag"]), reach(pairs["open_lag"])
    by_click = credited(click, until(click))
    # the open branch decides only the windows that reach no click of the purchase
    first_click = pd.Series(click).groupby(purchase).transform("min").to_numpy()
    by_open = credited(opened, np.minimum(until(opened), first_click))
    return np.column_stack([by_click + by_open, by_click])


WEIGHT_BLOCK = 1024
"""Contacts per block of `contact_weights`: a block's arrays stay in the processor's cache (3-4 times faster)."""


def contact_weights(contact_ids, replicates: int, seed: int = 20260101) -> np.ndarray:
    """Poisson(1) bootstrap weights, shape (n contacts, replicates), a fixed function of the contact ID."""
    ids = np.asarray(contact_ids, dtype=np.uint64)
    out = np.empty((len(ids), replicates))
    reps = (np.arange(replicates, dtype=np.uint64) + np.uint64(seed)) * np.uint64(0xD1B54A32D192ED03)
    for start in range(0, len(ids), WEIGHT_BLOCK):
        out[start:start + WEIGHT_BLOCK] = _poisson1(_mix(ids[start:start + WEIGHT_BLOCK, None], reps[None, :]))
    return out


def _mix(ids: np.ndarray, reps: np.ndarray) -> np.ndarray:
    """A 64-bit hash of (contact, replicate) (splitmix64's finaliser)."""
    with np.errstate(over="ignore"):
        x = ids * np.uint64(0x9E3779B97F4A7C15) + reps
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _poisson1(x: np.ndarray) -> np.ndarray:
    """Poisson(1) draws from 64-bit hashes: the top 53 bits as a uniform number, through the inverse CDF."""
    x >>= np.uint64(11)
    bucket = x >> _BUCKET_SHIFT
    weights = _BUCKET_WEIGHT[bucket]
    mixed = _BUCKET_MIXED[bucket]
    weights[mixed] = np.searchsorted(_POISSON1_THRESHOLDS, x[mixed], side="right")
    return weights


def tenure_bucket(age: np.ndarray) -> np.ndarray:
    """Index into TENURE_BUCKETS for a contact's age in seconds."""
    return np.searchsorted(_TENURE_LIMITS, age, side="right")


_TENURE_LIMITS = np.array([days * DAY for days, _label in TENURE_BUCKETS[:-1]], dtype=np.int64)


def standardised_baseline(units: np.ndarray, ordered: np.ndarray):
    """Mailed rate, baseline rate and lift from cell counts.

    units/ordered: arrays (..., cells, 2) with [..., 0] not mailed, [..., 1] mailed. The baseline
    weights each cell's not-mailed order rate by the cell's mailed units (direct standardisation
    to the mailed population); cells without not-mailed units are left out of both rates.
    """
    usable = units[..., 0] > 0
    mailed_units = np.where(usable, units[..., 1], 0.0)
    mailed_ordered = np.where(usable, ordered[..., 1], 0.0)
    rate_nm = np.divide(ordered[..., 0], units[..., 0], out=np.zeros_like(units[..., 0], dtype=float),
                        where=usable)
    total = mailed_units.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        baseline = (mailed_units * rate_nm).sum(axis=-1) / total
        mailed = mailed_ordered.sum(axis=-1) / total
    return mailed, baseline


# --------------------------------------------------------------------------------------------
# purchases and their contacts (temporary tables on the analysis' own cursor)
# --------------------------------------------------------------------------------------------

def purchase_source(model: Model) -> str | None:
    """"orders" when the store has orders, "deals" when there is no store but CRM deals, else None."""
    if model.has("b_sale_order") and model.scalar("SELECT count(*) FROM orders") > 0:
        return "orders"
    if model.has("b_crm_deal"):
        return "deals"
    return None


_PURCHASES = {
    "orders": """
        CREATE TEMP TABLE conv_purchases AS
        SELECT order_id AS purchase_id, secs(ordered_at) AS purchased_at, value, currency, user_id
        FROM orders WHERE NOT cancelled;
        CREATE TEMP TABLE conv_purchase_crm AS
        SELECT DISTINCT order_id AS purchase_id, crm_contact_id FROM order_crm_contacts
        WHERE order_id IN (SELECT purchase_id FROM conv_purchases);""",
    "deals": """
        CREATE TEMP TABLE conv_purchases AS
        SELECT deal_id AS purchase_id, secs(coalesce(closed_at, created_at)) AS purchased_at, value, currency,
               NULL::BIGINT AS user_id
        FROM deals WHERE won;
        CREATE TEMP TABLE conv_purchase_crm AS
        SELECT DISTINCT deal_id AS purchase_id, crm_contact_id FROM deal_crm_contacts
        WHERE deal_id IN (SELECT purchase_id FROM conv_purchases);""",
}

_LINKS = """
    CREATE TEMP TABLE conv_links AS
    WITH via_crm AS (
        SELECT DISTINCT pc.purchase_id, e.contact_id
        FROM conv_purchase_crm pc JOIN crm_emails e USING (crm_contact_id)
        WHERE e.contact_id IS NOT NULL
    ), via_user AS (
        SELECT DISTINCT p.purchase_id, c.contact_id
        FROM conv_purchases p JOIN contacts c ON c.user_id = p.user_id AND c.is_email_contact
    )
    SELECT coalesce(c.purchase_id, u.purchase_id) AS purchase_id, coalesce(c.contact_id, u.contact_id) AS contact_id,
           CASE WHEN u.purchase_id IS NULL THEN 'crm_contact' WHEN c.purchase_id IS NULL THEN 'user_id'
                ELSE 'crm_contact+user_id' END AS via
    FROM via_crm c FULL JOIN via_user u ON u.purchase_id = c.purchase_id AND u.contact_id = c.contact_id;
    CREATE TEMP TABLE conv_buys AS
    SELECT DISTINCT l.contact_id, p.purchased_at
    FROM conv_links l JOIN conv_purchases p USING (purchase_id)
    WHERE p.purchased_at IS NOT NULL;"""

_LINK_FLAGS = """
    SELECT (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM orders WHERE cancelled) AS cancelled,
           count(*) AS qualifying,
           count(*) FILTER (WHERE linked) AS linked,
           count(*) FILTER (WHERE via_crm) AS via_crm,
           count(*) FILTER (WHERE via_user) AS via_user,
           count(*) FILTER (WHERE NOT linked AND NOT has_crm AND NOT has_user) AS no_buyer,
           count(*) FILTER (WHERE NOT linked AND has_crm AND NOT crm_with_email) AS crm_without_email,
           count(*) FILTER (WHERE NOT linked AND ((has_crm AND crm_with_email) OR (NOT has_crm AND has_user)))
               AS not_contact
    FROM (SELECT p.purchase_id IN (SELECT purchase_id FROM conv_links) AS linked,
                 p.purchase_id IN (SELECT purchase_id FROM conv_links WHERE via <> 'user_id') AS via_crm,
                 p.purchase_id IN (SELECT purchase_id FROM conv_links WHERE via <> 'crm_contact') AS via_user,
                 p.purchase_id IN (SELECT purchase_id FROM conv_purchase_crm) AS has_crm,
                 p.purchase_id IN (SELECT purchase_id FROM conv_purchase_crm
                                   WHERE crm_contact_id IN (SELECT crm_contact_id FROM crm_emails)) AS crm_with_email,
                 p.user_id IS NOT NULL AS has_user
          FROM conv_purchases p)"""

LINKING_ROWS = {
    "orders": (
        ("orders", "orders", "all b_sale_order rows"),
        ("cancelled", "cancelled", "CANCELED = 'Y': not counted"),
        ("qualifying", "qualifying", "not cancelled"),
        ("linked", "linked", "reach at least one mailing contact"),
        ("linked via CRM contact e-mail", "via_crm", ""),
        ("linked via USER_ID", "via_user", ""),
        ("unlinked: no CRM contact and no user", "no_buyer",
         "the order names no CRM contact (ENTITY_TYPE_ID 3) and no site user"),
        ("unlinked: CRM contact without e-mail", "crm_without_email",
         "the order's CRM contact has no EMAIL in b_crm_field_multi"),
        ("unlinked: e-mail / user not a mailing contact", "not_contact",
         "the buyer's e-mail or user is not in b_sender_contact"),
    ),
    "deals": (
        ("won deals", "qualifying", "STAGE_SEMANTIC_ID = 'S'"),
        ("linked", "linked", "reach at least one mailing contact"),
        ("unlinked: no CRM contact", "no_buyer", "the deal names no contact"),
        ("unlinked: CRM contact without e-mail", "crm_without_email",
         "the deal's contacts have no EMAIL in b_crm_field_multi"),
        ("unlinked: e-mail not a mailing contact", "not_contact", "the contacts' e-mails are not in b_sender_contact"),
    ),
}
"""The linking table of each purchase source: its rows (what, which count of _LINK_FLAGS, detail)."""


def _prepare_purchases(cur, source: str) -> None:
    """conv_purchases (purchase_id, purchased_at s, value, currency, user_id), conv_purchase_crm (the CRM
    contacts each names), conv_links (purchase_id, contact_id, via) and conv_buys (contact_id, purchased_at)."""
    cur.execute(_PURCHASES[source])
    cur.execute(_LINKS)


def linking_table(cur, source: str) -> pd.DataFrame:
    """What became of the purchases: linked, and why the others reach no mailing contact."""
    counts = cur.execute(_LINK_FLAGS).df().iloc[0]
    return pd.DataFrame([(what, int(counts[name]), detail) for what, name, detail in LINKING_ROWS[source]],
                        columns=["what", "count", "detail"])


# --------------------------------------------------------------------------------------------
# attribution
# --------------------------------------------------------------------------------------------

_TOUCH_PAIRS = """
    WITH touched AS (
        SELECT s.recipient_id, s.contact_id, secs(s.sent_at) AS sent_at, secs(t.touched_at) AS touched_at, t.is_click
        FROM sends s
        JOIN (SELECT r.recipient_id, r.read_at AS touched_at, false AS is_click FROM reads r
              WHERE NOT EXISTS (SELECT 1 FROM machine_click_reads m WHERE m.read_id = r.read_id)
              UNION ALL SELECT k.recipient_id, k.clicked_at, true FROM clicks k
              WHERE NOT EXISTS (SELECT 1 FROM machine_clicks m WHERE m.click_id = k.click_id)) t USING (recipient_id)
        WHERE s.delivered AND s.sent_at IS NOT NULL AND t.touched_at IS NOT NULL
          AND s.contact_id IN (SELECT contact_id FROM conv_links)
    ), reached AS (
        SELECT l.purchase_id, t.recipient_id, t.contact_id, t.sent_at, t.is_click, p.purchased_at - t.touched_at AS lag
        FROM conv_links l
        JOIN conv_purchases p USING (purchase_id)
        JOIN touched t USING (contact_id)
        WHERE p.purchased_at - t.touched_at BETWEEN 0 AND $reach
    )
    SELECT purchase_id, recipient_id, any_value(contact_id) AS contact_id, any_value(sent_at) AS sent_at,
           min(lag) FILTER (WHERE is_click)::DOUBLE AS click_lag, min(lag) FILTER (WHERE NOT is_click)::DOUBLE AS open_lag
    FROM reached GROUP BY purchase_id, recipient_id"""


def touch_pairs(cur, max_days: int) -> pd.DataFrame:
    """Each (purchase, delivered send of one of its contacts) with a touch at most `max_days` before the purchase:
    purchase_id, recipient_id, contact_id, sent_at, click_lag, open_lag (seconds from the send's latest click /
    read row at or before the purchase to the purchase; NaN when none is in reach)."""
    return cur.execute(_TOUCH_PAIRS, {"reach": max_days * DAY}).df()


# --------------------------------------------------------------------------------------------
# the pass over contact-ID ranges: delivered sends per contact (bootstrap) and the baseline
# --------------------------------------------------------------------------------------------

@dataclass
class _Postings:
    """The e-mail postings with delivered sends in the period, in order of start: start and month index."""

    start: np.ndarray         # seconds: the posting's start (postings.started_at), else its first send
    month: np.ndarray         # index into `months`
    months: list[str]


_PERIOD_POSTINGS = (
    """CREATE TEMP TABLE conv_postings AS
    WITH firsts AS (
        SELECT posting_id, min(sent_at) AS first_sent FROM sends
        WHERE delivered AND sent_at >= $start AND sent_at < $end GROUP BY posting_id
    ), started AS (
        SELECT f.posting_id, coalesce(p.started_at, f.first_sent) AS started
        FROM firsts f LEFT JOIN postings p USING (posting_id)
    )
    SELECT posting_id, secs(started) AS start, strftime(started, '%Y-%m') AS month,
           (row_number() OVER (ORDER BY started, posting_id) - 1)::INTEGER AS idx
    FROM started""",
    """CREATE TEMP TABLE conv_rows AS
    SELECT s.contact_id, pp.idx AS posting, s.delivered, secs(s.sent_at) AS sent_at
    FROM sends s JOIN conv_postings pp USING (posting_id)
    WHERE s.sent_at IS NOT NULL AND s.contact_id IS NOT NULL
    ORDER BY s.contact_id""")


def _period_postings(cur, period: Period) -> _Postings:
    """conv_postings, and conv_rows: every sent row (any status) of those postings, by contact."""
    postings, rows = _PERIOD_POSTINGS
    cur.execute(postings, {"start": period.start_dt, "end": period.end_exclusive})
    cur.execute(rows)
    df = cur.execute("SELECT start, month FROM conv_postings ORDER BY idx").df()
    months = sorted(df["month"].unique())
    return _Postings(df["start"].to_numpy(np.int64), df["month"].map({m: i for i, m in enumerate(months)})
                     .to_numpy(np.int64), months)


_WITHOUT_CONTACT = """
    SELECT md5_number_lower(coalesce(email, '')) AS cluster, secs(sent_at) AS sent_at FROM sends
    WHERE delivered AND contact_id IS NULL AND sent_at >= $start AND sent_at < $end"""


class _Delivered:
    """Delivered sends of the period per cohort, and their bootstrap replicates (resampling clusters: contacts)."""

    def __init__(self, w_start: np.ndarray, replicates: int, seed: int):
        self.w_start, self.replicates, self.seed = w_start, replicates, seed
        self.counts = np.zeros(len(w_start), dtype=np.int64)
        self.boot = np.zeros((replicates, len(w_start)))

    def add(self, clusters: np.ndarray, sent_at: np.ndarray, weights: "_Weights | None" = None) -> None:
        if len(clusters) == 0:
            return
        weights = weights or _Weights(np.unique(clusters), self.replicates, self.seed)
        n_labels = len(self.w_start)
        cohort_index = np.searchsorted(self.w_start, sent_at, side="right") - 1
        per_cluster = np.bincount(weights.rows(clusters) * n_labels + cohort_index,
                                  minlength=weights.size * n_labels).reshape(weights.size, n_labels)
        self.boot += weights.sums(per_cluster)
        self.counts += per_cluster.sum(axis=0)


class _Weights:
    """The bootstrap weights of one range's contacts (rows: the sorted `ids`), computed once for every figure
    that resamples them; each figure builds its per-contact counts on these rows, so nothing is copied."""

    def __init__(self, ids: np.ndarray, replicates: int, seed: int):
        self.ids = np.asarray(ids)
        self.size = len(self.ids)
        self.matrix = contact_weights(self.ids, replicates, seed).astype(np.float32)   # small integers: exact
        self.largest = float(self.matrix.max(initial=0))

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The rows of `ids` (each one of the range's contacts)."""
        return np.searchsorted(self.ids, ids)

    def sums(self, counts: np.ndarray, rows: np.ndarray | None = None, totals: np.ndarray | None = None) -> np.ndarray:
        """Weighted sums (replicates x columns) of per-contact counts (the contacts' rows, or those `rows`;
        `totals`: the counts' column sums, when known): in single precision when no sum can reach 2^24, where
        single precision holds every integer exactly."""
        w = self.matrix if rows is None else self.matrix[rows]
        totals = counts.sum(axis=0) if totals is None else totals
        if self.largest * totals.max(initial=0) < 2 ** 24:
            return (w.T @ counts.astype(np.float32)).astype(np.float64)
        return w.T.astype(np.float64) @ counts.astype(np.float64)


def _by_contact(cur, query: str) -> pd.DataFrame:
    return cur.execute(query).df().sort_values("contact_id", kind="stable").reset_index(drop=True)


def _contact_chunks(cur, per_chunk: int) -> list[tuple[int, int]]:
    """Contact-ID ranges of `per_chunk` contacts each, covering every e-mail contact and every sent row."""
    ids = cur.execute("SELECT contact_id FROM contacts WHERE is_email_contact UNION "
                      "SELECT DISTINCT contact_id FROM conv_rows ORDER BY 1").fetchnumpy()["contact_id"]
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return []
    lows = ids[::per_chunk]
    highs = np.append(lows[1:] - 1, ids[-1])
    return list(zip(lows.tolist(), highs.tolist()))


def _slice(frame: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    a, b = np.searchsorted(frame["contact_id"].to_numpy(), [lo, hi + 1])
    return frame.iloc[a:b]


_OPTOUTS = """
    SELECT contact_id, min(opted_at) AS opted_at FROM (
        SELECT s.contact_id, secs(u.unsubscribed_at) AS opted_at
        FROM unsubscribes u JOIN sends s USING (recipient_id)
        WHERE s.contact_id IS NOT NULL AND u.unsubscribed_at IS NOT NULL
        UNION ALL
        SELECT c.contact_id, secs(b.created_at)
        FROM blacklist b JOIN contacts c USING (email)
        WHERE c.is_email_contact AND b.created_at IS NOT NULL
    ) GROUP BY contact_id"""


def _count_baseline(contacts, optouts, rows, buys, postings: _Postings, window_days, acc,
                    weights: _Weights) -> None:
    """Add this range's contact x posting units: mailed (a delivered row in the posting) or comparable
    not mailed (created before the posting started, not opted out, no row in it); outcome: a purchase in
    (start, start + window]; cells: posting month x prior purchase x tenure at the start."""
    n_p = len(postings.start)
    if contacts.empty or n_p == 0:
        return
    ids = contacts["contact_id"].to_numpy()
    created = contacts["created"].to_numpy()
    n = len(ids)
    row_of = pd.Series(np.arange(n), index=ids)
    t0 = postings.start

    def matrix(frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((n, n_p), dtype=bool)
        r = row_of.reindex(frame["contact_id"].to_numpy()).to_numpy()
        ok = ~np.isnan(r)
        out[r[ok].astype(int), frame["posting"].to_numpy()[ok]] = True
        return out

    mailed = matrix(rows[rows["delivered"]])
    targeted = matrix(rows)
    optout = np.full(n, np.iinfo(np.int64).max)
    if not optouts.empty:
        r = row_of.reindex(optouts["contact_id"].to_numpy()).to_numpy()
        ok = ~np.isnan(r)
        optout[r[ok].astype(int)] = optouts["opted_at"].to_numpy()[ok]
    bought = np.zeros((n, n_p), dtype=bool)
    first_buy = np.full(n, np.iinfo(np.int64).max)
    if not buys.empty:
        r = row_of.reindex(buys["contact_id"].to_numpy()).to_numpy()
        ok = ~np.isnan(r)
        r_idx, t = r[ok].astype(int), buys["purchased_at"].to_numpy()[ok]
        np.minimum.at(first_buy, r_idx, t)
        hit = (t[:, None] > t0[None, :]) & (t[:, None] <= t0[None, :] + window_days * DAY)
        rr, cc = np.nonzero(hit)
        bought[r_idx[rr], cc] = True
    prior = first_buy[:, None] <= t0[None, :]
    not_mailed = (created[:, None] < t0[None, :]) & (optout[:, None] >= t0[None, :]) & ~targeted
    tenure = tenure_bucket(t0[None, :] - created[:, None])
    cell = (postings.month[None, :] * 2 + prior) * len(TENURE_BUCKETS) + tenure
    n_cells = acc["units"].shape[0]
    w_row = weights.rows(ids)
    flat = w_row[:, None] * n_cells + cell          # each unit's place in the (weight row, cell) counts
    for m, sel in ((0, not_mailed), (1, mailed)):
        u = np.bincount(flat[sel], minlength=weights.size * n_cells).reshape(weights.size, n_cells)
        totals = u.sum(axis=0)
        acc["units"][:, m] += totals
        acc["units_boot"][:, :, m] += weights.sums(u, totals=totals)
        rr, cc = np.nonzero(sel & bought)         # few units bought: count them on the buyers' rows only
        buyers, buyer = np.unique(w_row[rr], return_inverse=True)
        o = np.zeros((len(buyers), n_cells))
        np.add.at(o, (buyer, cell[rr, cc]), 1.0)
        acc["ordered"][:, m] += o.sum(axis=0)
        acc["ordered_boot"][:, :, m] += weights.sums(o, buyers)


def _baseline_table(months, acc, window_days):
    units, ordered = acc["units"], acc["ordered"]
    mailed_rate, baseline_rate = standardised_baseline(units, ordered)
    mailed_b, baseline_b = standardised_baseline(acc["units_boot"], acc["ordered_boot"])
    with np.errstate(invalid="ignore", divide="ignore"):
        lift_b = mailed_b / baseline_b
        diff_b = mailed_b - baseline_b
    rows = []
    n_t = len(TENURE_BUCKETS)
    for c in range(units.shape[0]):
        month, rest = divmod(c, 2 * n_t)
        prior, tenure = divmod(rest, n_t)
        if units[c].sum() == 0:
            continue
        rows.append({"month": months[month], "prior_purchase": bool(prior), "tenure": TENURE_BUCKETS[tenure][1],
                     "mailed_sends": int(units[c, 1]), "mailed_buying": int(ordered[c, 1]),
                     "not_mailed": int(units[c, 0]), "not_mailed_buying": int(ordered[c, 0])})
    table = pd.DataFrame(rows)
    ok = bool(np.isfinite(mailed_rate) and np.isfinite(baseline_rate))
    lift = mailed_rate / baseline_rate if ok and baseline_rate > 0 else None
    figures = {
        "unit": "contact x posting",
        "window_days": window_days,
        "mailed": int(units[:, 1].sum()),
        "not_mailed": int(units[:, 0].sum()),
        "mailed_rate": float(mailed_rate) if ok else None,
        "baseline_rate": float(baseline_rate) if ok else None,
        "lift": float(lift) if lift is not None else None,
        "lift_ci": _interval(*_percentile(lift_b)) if lift is not None else None,
        "difference_pp": float(100 * (mailed_rate - baseline_rate)) if ok else None,
        "difference_pp_ci": _interval(*[100 * x for x in _percentile(diff_b)]) if ok else None,
        "incremental_share": float(1 - baseline_rate / mailed_rate) if ok and mailed_rate > 0 else None,
        "matched_on": ["posting month", "prior purchase", "tenure"],
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        share_b = 1 - baseline_b / mailed_b
    return table, figures, share_b


def _incremental_revenue(revenue: float, base: dict, revenue_boot: np.ndarray, share_boot: np.ndarray):
    """(incremental revenue, its 95% interval): the attributed revenue times the share of the mailed
    contacts' buying that the not-mailed baseline does not explain, 1 - baseline rate / mailed rate.
    The interval resamples contacts for both factors at once (the same contact weights in each replicate).
    Assumes credited purchases would have happened anyway in the baseline's proportion; None without a baseline."""
    share = base.get("incremental_share")
    if share is None:
        return None, None
    with np.errstate(invalid="ignore"):
        replicates = revenue_boot * share_boot   # a replicate without mailed buyers has no share: NaN, left out
    return round(revenue * share, 2), _interval(*_percentile(replicates))


# --------------------------------------------------------------------------------------------
# time to the next purchase
# --------------------------------------------------------------------------------------------

_DATA_END = """
    SELECT greatest((SELECT secs(max(sent_at)) FROM sends), (SELECT secs(max(read_at)) FROM reads),
                    (SELECT secs(max(clicked_at)) FROM clicks), (SELECT max(purchased_at) FROM conv_purchases))"""

_TIME_TO_PURCHASE = """
    WITH delivered AS NOT MATERIALIZED (
        SELECT contact_id, secs(sent_at) AS sent_at FROM sends
        WHERE delivered AND sent_at >= $start AND sent_at < $end
    ), marked AS (
        SELECT d.contact_id, d.sent_at, b.contact_id IS NOT NULL AS buys
        FROM delivered d LEFT JOIN (SELECT DISTINCT contact_id FROM conv_buys) b USING (contact_id)
    ), timed AS (
        SELECT coalesce(b.purchased_at, $data_end) - m.sent_at AS seconds, b.purchased_at IS NOT NULL AS event
        FROM (SELECT * FROM marked WHERE buys) m
        ASOF LEFT JOIN conv_buys b ON b.contact_id = m.contact_id AND b.purchased_at >= m.sent_at
        UNION ALL   -- the sends of contacts who never buy wait until the data's end
        SELECT $data_end - sent_at, false FROM marked WHERE NOT buys
    )
    SELECT ceil(seconds / 3600)::BIGINT AS hours, event::INTEGER AS event, count(*) AS n FROM timed GROUP BY ALL"""


def time_to_purchase_counts(cur, period: Period) -> tuple[dict, int]:
    """{(hours, event): sends}: hours from each delivered send of the period to its contact's next purchase
    (event 1) or to the data's end (event 0, censored); and the data's end (latest send, touch or purchase)."""
    data_end = cur.execute(_DATA_END).fetchall()[0][0]
    if data_end is None:
        return {}, 0
    rows = cur.execute(_TIME_TO_PURCHASE, {"start": period.start_dt, "end": period.end_exclusive,
                                           "data_end": int(data_end)}).fetchall()
    return {(int(h), int(e)): int(n) for h, e, n in rows}, int(data_end)


def _kaplan_meier(counts: dict):
    """Kaplan-Meier of days from send to first purchase, censored at the data's end."""
    from statsmodels.duration.survfunc import SurvfuncRight

    if not counts or not any(e for (_h, e) in counts):
        return pd.DataFrame(columns=["days", "share_ordered", "ci_low", "ci_high", "at_risk"]), {
            "median_days": None, "ordered_within_7_days": None, "ordered_within_30_days": None}
    keys = sorted(counts)
    hours = np.array([k[0] for k in keys], dtype=float)
    status = np.array([k[1] for k in keys], dtype=float)
    weights = np.array([counts[k] for k in keys], dtype=float)
    sf = SurvfuncRight(np.maximum(hours, 0) / 24.0, status, freq_weights=weights)
    # Greenwood's variance from the weighted risk sets (statsmodels' own SE ignores freq_weights)
    n, d = sf.n_risk, sf.n_events
    with np.errstate(invalid="ignore", divide="ignore"):
        se = sf.surv_prob * np.sqrt(np.cumsum(np.where(n > d, d / (n * (n - d)), 0.0)))
    table = pd.DataFrame({"days": sf.surv_times, "share_ordered": 1 - sf.surv_prob,
                          "ci_low": 1 - (sf.surv_prob + Z95 * se), "ci_high": 1 - (sf.surv_prob - Z95 * se),
                          "at_risk": n})
    table[["ci_low", "ci_high"]] = table[["ci_low", "ci_high"]].clip(0, 1)

    def share_by(day):
        before = table[table["days"] <= day]
        return float(before["share_ordered"].iloc[-1]) if not before.empty else 0.0

    median = sf.quantile(0.5)
    figures = {"median_days": float(median) if np.isfinite(median) else None,
               "ordered_within_7_days": share_by(7), "ordered_within_30_days": share_by(30)}
    return table, figures


# --------------------------------------------------------------------------------------------
# follow-up gap
# --------------------------------------------------------------------------------------------

_FOLLOWUP = """
    WITH engaged AS (
        SELECT recipient_id, campaign_id, contact_id, secs(least(first_read_at, first_human_click_at)) AS first_touch
        FROM sends
        WHERE delivered AND sent_at >= $start AND sent_at < $end AND (reads > 0 OR human_clicks > 0)
    ), crm_links AS (
        SELECT DISTINCT crm_contact_id, contact_id FROM crm_emails WHERE contact_id IS NOT NULL
    ), events AS (
        SELECT contact_id, purchased_at AS event_at FROM conv_buys
        UNION ALL
        SELECT m.contact_id, secs(a.created_at) FROM crm_activities a JOIN crm_links m ON m.crm_contact_id = a.owner_id
        WHERE a.owner_type_id = $contact_type AND a.created_at >= $start
        UNION ALL
        SELECT m.contact_id, secs(d.created_at) FROM deal_crm_contacts dc JOIN deals d USING (deal_id)
        JOIN crm_links m ON m.crm_contact_id = dc.crm_contact_id WHERE d.created_at >= $start
    ), followed AS (
        SELECT DISTINCT e.recipient_id FROM engaged e JOIN events v USING (contact_id)
        WHERE v.event_at BETWEEN e.first_touch AND e.first_touch + $reach
    ), marked AS (
        SELECT campaign_id, contact_id IN (SELECT contact_id FROM crm_links) AS in_crm,
               recipient_id IN (SELECT recipient_id FROM followed) AS followed
        FROM engaged
    )
    SELECT m.campaign_id AS mailing_id, c.name AS mailing, count(*) AS engaged,
           count(*) FILTER (WHERE in_crm) AS in_crm, count(*) FILTER (WHERE NOT followed) AS without_followup
    FROM marked m LEFT JOIN campaigns c USING (campaign_id)
    GROUP BY ALL ORDER BY without_followup DESC, mailing_id"""


def followup_table(cur, period: Period, days: int) -> pd.DataFrame:
    """Per mailing (campaign): sends of the period that were opened or clicked, those whose contact is in the
    CRM, and those with no CRM activity, new deal or purchase within `days` x 24 h of the first open or click."""
    out = cur.execute(_FOLLOWUP, {"start": period.start_dt, "end": period.end_exclusive, "reach": days * DAY,
                                  "contact_type": int(codes.CrmEntityType.CONTACT)}).df()
    out["without_followup_share"] = out["without_followup"] / out["engaged"]
    return out


# --------------------------------------------------------------------------------------------
# UTM attribution
# --------------------------------------------------------------------------------------------

_UTM = """
    WITH tags AS (
        SELECT entity_type_id, entity_id, code, lower(first(value)) AS value
        FROM crm_utm WHERE entity_type_id IN ($deal, $order) GROUP BY ALL
    ), by_email AS (
        SELECT entity_type_id, entity_id FROM tags WHERE code = 'utm_medium' AND list_contains($mediums, value)
    ), counted AS (
        SELECT 'deal' AS entity, $deal AS entity_type_id, deal_id AS entity_id, value AS revenue, currency FROM deals
        WHERE won AND coalesce(closed_at, created_at) >= $start AND coalesce(closed_at, created_at) < $end
        UNION ALL
        SELECT 'order', $order, order_id, value, currency FROM orders
        WHERE NOT cancelled AND ordered_at >= $start AND ordered_at < $end
    )
    SELECT c.* FROM counted c SEMI JOIN by_email b USING (entity_type_id, entity_id)"""

_UTM_LETTERS = """
    WITH letter_tags AS (
        SELECT DISTINCT u.letter_id, coalesce(l.title, u.letter_id::VARCHAR) AS letter, u.code, lower(u.value) AS value
        FROM letter_utm u JOIN letters l USING (letter_id)
        WHERE l.is_email AND list_contains($codes, u.code)
    ), letter_sets AS (          -- each letter's UTM set, as text
        SELECT letter_id, any_value(letter) AS letter, count(*) AS n,
               string_agg(code || '=' || coalesce(value, ''), '&' ORDER BY code, value) AS utm_set
        FROM letter_tags GROUP BY letter_id
    ), sets AS (                 -- the letters sharing one UTM set: one group
        SELECT utm_set, any_value(n) AS n, min(letter_id) AS first_letter, count(*) AS letter_count,
               string_agg(letter, '; ' ORDER BY letter_id) AS letters
        FROM letter_sets GROUP BY utm_set
    ), set_tags AS (
        SELECT DISTINCT s.utm_set, t.code, t.value FROM letter_sets s JOIN letter_tags t USING (letter_id)
    ), tags AS (
        SELECT entity_type_id, entity_id, code, lower(first(value)) AS value
        FROM crm_utm WHERE entity_type_id IN ($deal, $order) GROUP BY ALL
    ), matched AS (              -- every tag of the set is on the deal or order
        SELECT t.utm_set, e.entity, e.entity_id, any_value(e.revenue) AS revenue, any_value(e.currency) AS currency
        FROM set_tags t
        JOIN tags g ON g.code = t.code AND g.value = t.value
        JOIN conv_utm e USING (entity_type_id, entity_id)
        GROUP BY t.utm_set, e.entity, e.entity_id
        HAVING count(*) = (SELECT n FROM sets s WHERE s.utm_set = t.utm_set)
    ), credited AS (             -- once: to the most specific set it matches (most tags, then the oldest letter)
        SELECT m.*, row_number() OVER (PARTITION BY m.entity, m.entity_id ORDER BY s.n DESC, s.first_letter) AS nth
        FROM matched m JOIN sets s USING (utm_set)
    )
    SELECT s.letters, s.letter_count, s.utm_set, c.entity, c.currency, count(*) AS count, sum(c.revenue) AS revenue
    FROM credited c JOIN sets s USING (utm_set)
    WHERE c.nth = 1
    GROUP BY ALL ORDER BY c.entity, revenue DESC, s.letters"""


def utm_attribution(cur, model: Model, period: Period):
    """Won deals (and orders) of the period whose utm_medium marks e-mail, matched to letters by their UTM set.

    Counted: won deals dated (closed_at, else created_at) in the period, and orders (not cancelled) placed in
    it. A UTM set matches when every code it sets has the same value on the deal (case-insensitive). Letters
    sharing one UTM set cannot be told apart by it: they form one row (`letters`, `letter_count`), and each
    deal or order is credited once, to the most specific set it matches (the most tags; ties: the set of the
    oldest letter), so the rows' counts and revenue add up without counting any deal twice.
    """
    columns = ["letters", "letter_count", "utm_set", "entity", "count", "revenue", "currency"]
    if not model.has("b_crm_utm"):
        return pd.DataFrame(columns=columns), {"deals": None, "revenue": None}
    kinds = {"deal": int(codes.CrmEntityType.DEAL), "order": int(codes.CrmEntityType.ORDER)}
    cur.execute("CREATE TEMP TABLE conv_utm AS " + _UTM,
                {**kinds, "mediums": sorted(EMAIL_UTM_MEDIUMS), "start": period.start_dt, "end": period.end_exclusive})
    per_entity = dict(cur.execute("SELECT entity, count(*) FROM conv_utm GROUP BY 1").fetchall())
    revenue = dict(cur.execute("SELECT entity, sum(revenue) FROM conv_utm GROUP BY 1").fetchall())
    table = cur.execute(_UTM_LETTERS, {**kinds, "codes": list(codes.UTM_CODES)}).df()
    table["revenue"] = table["revenue"].astype(float)
    figures = {"deals": int(per_entity.get("deal", 0)), "revenue": round(float(revenue.get("deal") or 0.0), 2),
               "orders": int(per_entity.get("order", 0)), "order_revenue": round(float(revenue.get("order") or 0.0), 2),
               "email_mediums": sorted(EMAIL_UTM_MEDIUMS)}
    return table[columns], figures


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------

def analyse_conversion(model: Model, period: Period, *, open_window_days: int = 5, click_window_days: int = 30,
                       cohort: str = "month", followup_days: int = 3, contacts_per_chunk: int = 50_000,
                       replicates: int = 200, seed: int = 20260101) -> ConversionResult:
    """The conversion report's tables and figures for sends delivered in `period`.

    Rates are fractions: conversion_rate = converted sends / delivered sends (period); revenue per
    recipient = attributed revenue / delivered sends; baseline = share of not-mailed contact-windows
    with a purchase, standardised to the mailed ones' prior-purchase x tenure x window mix.
    """
    windows = {"open_days": open_window_days, "click_days": click_window_days}
    source = purchase_source(model)
    if source is None:
        return _empty_result(windows, _("Conversion cannot be measured: no store orders (b_sale_order) and no CRM "
                                        "deals (b_crm_deal)."))
    cur = model.con.cursor()     # its temporary tables vanish with it
    try:
        cur.execute("CREATE TEMP MACRO secs(t) AS epoch_ms(t) // 1000")
        return _analyse(cur, model, period, source, windows, cohort, followup_days, contacts_per_chunk,
                        replicates, seed)
    finally:
        cur.close()


def attributed_sends(model: Model, period: Period, *, open_window_days: int = 5,
                     click_window_days: int = 30) -> pd.DataFrame:
    """Every purchase credited by last touch to a delivered send of `period`, one row per purchase:
    purchase_id, recipient_id, contact_id, sent_at and purchased_at (seconds), value, currency. The same rule
    and windows as `analyse_conversion`, without its intervals, baseline and tables."""
    empty = pd.DataFrame(columns=["purchase_id", "recipient_id", "contact_id", "sent_at", "purchased_at", "value",
                                  "currency"])
    source = purchase_source(model)
    if source is None:
        return empty
    cur = model.con.cursor()
    try:
        cur.execute("CREATE TEMP MACRO secs(t) AS epoch_ms(t) // 1000")
        _prepare_purchases(cur, source)
        pairs = sort_pairs(touch_pairs(cur, max(open_window_days, click_window_days)))
        return _credited_in_period(attribute(pairs, click_window_days, open_window_days), _purchase_values(cur),
                                   period)
    finally:
        cur.close()


def _purchase_values(cur) -> pd.DataFrame:
    """purchased_at, value and currency of each purchase, by purchase_id."""
    return cur.execute("SELECT purchase_id, purchased_at, value, currency FROM conv_purchases").df() \
        .set_index("purchase_id")


def _credited_in_period(chosen: pd.DataFrame, values: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The chosen (purchase, send) rows with the purchase's time, value and currency, for sends in `period`."""
    start, end = (int(x) for x in _seconds([period.start_dt, period.end_exclusive]))
    credited = _with_purchase(chosen, values)
    return credited[(credited["sent_at"] >= start) & (credited["sent_at"] < end)].reset_index(drop=True)


def currency_label(currencies: list[str]) -> str:
    """What to write beside an amount: the purchases' one currency code, "mixed currencies (RUB, USD)" when
    they hold several (amounts then add them up unconverted), or "" when the data names none."""
    if len(currencies) == 1:
        return currencies[0]
    return f"mixed currencies ({', '.join(currencies)})" if currencies else ""


def money(amount: float | None, currency: str) -> str:
    """An amount with its currency: "1,867,685.00 RUB"; a dash when unknown."""
    if amount is None or not np.isfinite(amount):
        return "—"
    return f"{amount:,.2f} {currency}".rstrip()


def _analyse(cur, model, period, source, windows, cohort, followup_days, contacts_per_chunk, replicates, seed):
    notes: list[str] = []
    open_window_days, click_window_days = windows["open_days"], windows["click_days"]
    _prepare_purchases(cur, source)
    linking = linking_table(cur, source)
    if source == "deals":
        notes.append(_("The portal has no store orders: won deals (STAGE_SEMANTIC_ID 'S') stand in for orders, "
                       "dated by CLOSEDATE, valued by OPPORTUNITY."))
    currencies = [row[0] for row in cur.execute(
        "SELECT DISTINCT trim(currency) FROM conv_purchases WHERE currency IS NOT NULL ORDER BY 1").fetchall()]
    if len(currencies) > 1:
        notes.append(_("Purchases are in {n} currencies ({codes}): revenue adds them up unconverted.").format(
            n=len(currencies), codes=", ".join(currencies)))
    elif not currencies:
        notes.append(_("No order or deal names its currency (CURRENCY / CURRENCY_ID empty): amounts are shown "
                       "without one."))
    if model.layout == "legacy":
        notes.append(_("Legacy sender layout: recipient rows reach contacts by their EMAIL; sends to an address "
                       "no contact has count as delivered, but no purchase can be linked to them."))

    cw = cohort_windows(period, cohort)
    labels = list(cw["cohort"])
    w_start = _seconds(cw["start"])
    p_start, p_end = int(_seconds([period.start_dt])[0]), int(_seconds([period.end_exclusive])[0])

    # --- attribution: every (purchase, touched send) pair within the longest window
    max_days = max(open_window_days, click_window_days, max(SENSITIVITY_DAYS))
    pairs = sort_pairs(touch_pairs(cur, max_days))
    values = _purchase_values(cur)
    attributed = _credited_in_period(attribute(pairs, click_window_days, open_window_days), values, period)
    click_only = _credited_in_period(attribute(pairs, click_window_days, None), values, period)
    sens = window_sensitivity(pairs, values["value"].reindex(pairs["purchase_id"]).to_numpy(float),
                              ((pairs["sent_at"] >= p_start) & (pairs["sent_at"] < p_end)).to_numpy())

    # --- delivered sends per contact and cohort, and the baseline, one range of contacts at a time
    postings = _period_postings(cur, period)
    n_cells = max(len(postings.months), 1) * 2 * len(TENURE_BUCKETS)
    base = {"units": np.zeros((n_cells, 2)), "ordered": np.zeros((n_cells, 2)), "seed": seed,
            "units_boot": np.zeros((replicates, n_cells, 2)), "ordered_boot": np.zeros((replicates, n_cells, 2))}
    per_cohort = _Delivered(w_start, replicates, seed)
    # a contact without a creation date counts as created long ago (1970)
    contacts = _by_contact(cur, "SELECT contact_id, coalesce(secs(created_at), 0) AS created "
                                "FROM contacts WHERE is_email_contact")
    optouts = _by_contact(cur, _OPTOUTS)
    buys = _by_contact(cur, "SELECT contact_id, purchased_at FROM conv_buys")
    for lo, hi in _contact_chunks(cur, contacts_per_chunk):
        rows = cur.execute("SELECT contact_id, posting, delivered, sent_at FROM conv_rows "
                           "WHERE contact_id BETWEEN $lo AND $hi", {"lo": lo, "hi": hi}).df()
        sent = rows[rows["delivered"] & (rows["sent_at"] >= p_start) & (rows["sent_at"] < p_end)]
        in_range = _slice(contacts, lo, hi)
        weights = _Weights(np.union1d(in_range["contact_id"], pd.unique(sent["contact_id"])), replicates, seed)
        per_cohort.add(sent["contact_id"].to_numpy(), sent["sent_at"].to_numpy(), weights)
        _count_baseline(in_range, _slice(optouts, lo, hi), rows, _slice(buys, lo, hi), postings, click_window_days,
                        base, weights)
    # delivered sends that reach no contact (legacy layout: an address no contact has) resample by address
    alone = cur.execute(_WITHOUT_CONTACT, {"start": period.start_dt, "end": period.end_exclusive}).fetchnumpy()
    per_cohort.add(np.asarray(alone["cluster"], dtype=np.uint64), np.asarray(alone["sent_at"], dtype=np.int64))
    cur.execute("DROP TABLE conv_rows")
    delivered_counts, delivered_boot = per_cohort.counts, per_cohort.boot

    delivered = int(delivered_counts.sum())
    per_send = _per_send(attributed, w_start)
    converted = int(len(per_send))
    revenue = float(per_send["value"].sum())
    conv_boot, rev_boot = _attributed_boot(per_send, len(labels), replicates, seed)

    cohorts = cw[["cohort"]].copy()
    cohorts["delivered"] = delivered_counts
    cohorts["converted"] = np.bincount(per_send["cohort_index"], minlength=len(labels)) if converted else 0
    cohorts["revenue"] = (np.bincount(per_send["cohort_index"], weights=per_send["value"], minlength=len(labels))
                          if converted else 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cohorts["conversion_rate"] = cohorts["converted"] / cohorts["delivered"]
        cohorts["revenue_per_recipient"] = cohorts["revenue"] / cohorts["delivered"]
        rpr_boot = rev_boot / delivered_boot
    low, high = wilson_interval(cohorts["converted"], cohorts["delivered"])
    cohorts["conversion_rate_ci"] = [_interval(lo_, hi_) for lo_, hi_ in zip(low, high)]
    cohorts["revenue_per_recipient_ci"] = [_interval(*_percentile(rpr_boot[:, k])) for k in range(len(labels))]
    cohorts = cohorts[cohorts["delivered"] > 0].reset_index(drop=True)

    with np.errstate(invalid="ignore", divide="ignore"):
        total_rpr_boot = rev_boot.sum(axis=1) / delivered_boot.sum(axis=1)
        total_conv_boot = conv_boot.sum(axis=1) / delivered_boot.sum(axis=1)
    conversion_rate = converted / delivered if delivered else None
    rpr = revenue / delivered if delivered else None

    click_sends = _per_send(click_only, w_start)
    sensitivity = pd.DataFrame({
        "window_days": SENSITIVITY_DAYS,
        "last_touch_revenue": sens[:, 0], "last_touch_orders": sens[:, 1].astype(int),
        "click_only_revenue": sens[:, 2], "click_only_orders": sens[:, 3].astype(int),
    })
    cumulative = _cumulative(per_send, delivered)
    km_counts, data_end = time_to_purchase_counts(cur, period)
    time_to_order, km = _kaplan_meier(km_counts)
    km["censored_at"] = pd.Timestamp(data_end, unit="s").isoformat() if km_counts else None
    baseline, base_figures, incremental_share_boot = _baseline_table(postings.months, base, click_window_days)
    incremental = _incremental_revenue(revenue, base_figures, rev_boot.sum(axis=1), incremental_share_boot)
    utm_letters, utm_figures = utm_attribution(cur, model, period)
    followup = followup_table(cur, period, followup_days)

    if delivered == 0:
        notes.append(_("No delivered sends (STATUS 'N') in the period: rates are null."))
    if utm_figures["deals"] is None:
        notes.append(_("utm is null: the database has no b_crm_utm table, so deals carry no UTM tags."))
    notes.append(_("The baseline is observational: contacts who were not mailed differ in ways the matching "
                   "(prior purchase, tenure, month) does not capture; it is not a holdout test."))

    figures = {
        "windows": windows,
        "source": source,
        "delivered": delivered,
        "converted": converted,
        "conversion_rate": conversion_rate,
        "conversion_rate_ci": _interval(*_percentile(total_conv_boot)) if delivered else None,
        "revenue": round(revenue, 2),
        "currency": currency_label(currencies) or None,
        "currencies": currencies,
        "revenue_per_recipient": rpr,
        "revenue_per_recipient_ci": _interval(*_percentile(total_rpr_boot)) if delivered else None,
        "attributed_orders": int(len(attributed)),
        "baseline_conversion_rate": base_figures["baseline_rate"],
        "baseline": base_figures,
        "incremental_revenue": incremental[0],
        "incremental_revenue_ci": incremental[1],
        "click_only": {
            "converted": int(len(click_sends)),
            "conversion_rate": len(click_sends) / delivered if delivered else None,
            "revenue": round(float(click_sends["value"].sum()), 2),
        },
        "cohort_unit": cohort,
        "cohorts": [
            {k: row[k] for k in ("cohort", "delivered", "converted", "conversion_rate", "revenue_per_recipient",
                                 "revenue", "conversion_rate_ci", "revenue_per_recipient_ci")}
            for row in cohorts.to_dict(orient="records")
        ],
        "utm": utm_figures,
        "time_to_order": km,
        "linking": {row.what: int(row.count) for row in linking.itertuples()},
        "followup": {
            "days": followup_days,
            "engaged": int(followup["engaged"].sum()) if not followup.empty else 0,
            "without_followup": int(followup["without_followup"].sum()) if not followup.empty else 0,
        },
    }
    return ConversionResult(figures=figures, cohorts=cohorts, linking=linking, sensitivity=sensitivity,
                            cumulative=cumulative, time_to_order=time_to_order, baseline=baseline,
                            utm_letters=utm_letters, followup=followup,
                            converted_sends=per_send.rename(columns={"value": "revenue"}), notes=notes)


def _empty_result(windows: dict, note: str) -> ConversionResult:
    figures = {"windows": windows, "source": None, "delivered": None, "converted": None, "conversion_rate": None,
               "revenue": None, "currency": None, "currencies": [], "revenue_per_recipient": None,
               "baseline_conversion_rate": None, "incremental_revenue": None, "incremental_revenue_ci": None, "cohorts": [],
               "utm": {"deals": None, "revenue": None}}
    empty = pd.DataFrame()
    return ConversionResult(figures, empty, empty, empty, empty, empty, empty, empty, empty, empty,
                            notes=[note])


def _seconds(values) -> np.ndarray:
    """Naive datetimes -> int64 seconds since 1970."""
    return pd.to_datetime(pd.Series(values)).to_numpy("datetime64[s]").astype(np.int64)


def _interval(low, high):
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return None
    return [float(low), float(high)]


def _percentile(values: np.ndarray):
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None, None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _with_purchase(chosen: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    out = chosen.astype("int64").join(values, on="purchase_id")
    return out[["purchase_id", "recipient_id", "contact_id", "sent_at", "purchased_at", "value", "currency"]]


def _per_send(attributed: pd.DataFrame, w_start: np.ndarray) -> pd.DataFrame:
    """One row per converted send: contact, cohort, revenue, first attributed purchase."""
    if attributed.empty:
        return pd.DataFrame({"recipient_id": pd.Series(dtype="int64"), "contact_id": pd.Series(dtype="int64"),
                             "sent_at": pd.Series(dtype="int64"), "first_purchase": pd.Series(dtype="int64"),
                             "value": pd.Series(dtype=float), "cohort_index": pd.Series(dtype="int64")})
    out = attributed.groupby("recipient_id", as_index=False).agg(
        contact_id=("contact_id", "first"), sent_at=("sent_at", "first"), purchases=("purchase_id", "size"),
        first_purchase=("purchased_at", "min"), value=("value", "sum"))
    out["cohort_index"] = np.searchsorted(w_start, out["sent_at"].to_numpy(), side="right") - 1
    return out


def _attributed_boot(per_send: pd.DataFrame, n_labels: int, replicates: int, seed: int):
    conv = np.zeros((replicates, n_labels))
    rev = np.zeros((replicates, n_labels))
    if per_send.empty:
        return conv, rev
    grouped = per_send.groupby(["contact_id", "cohort_index"]).agg(n=("recipient_id", "size"), value=("value", "sum"))
    n = grouped["n"].unstack(fill_value=0).reindex(columns=range(n_labels), fill_value=0)
    v = grouped["value"].unstack(fill_value=0.0).reindex(columns=range(n_labels), fill_value=0.0)
    weights = contact_weights(n.index.to_numpy(), replicates, seed)
    return weights.T @ n.to_numpy(dtype=float), weights.T @ v.to_numpy(dtype=float)


def _cumulative(per_send: pd.DataFrame, delivered: int) -> pd.DataFrame:
    """Share of delivered sends converted within d days of sending (first attributed purchase)."""
    days = np.arange(0, CUMULATIVE_DAYS + 1)
    if per_send.empty or not delivered:
        return pd.DataFrame({"days_since_send": days, "converted": 0, "cumulative_conversion_rate": np.nan})
    lag_days = (per_send["first_purchase"] - per_send["sent_at"]).to_numpy() // DAY
    counts = np.array([(lag_days <= d).sum() for d in days])
    return pd.DataFrame({"days_since_send": days, "converted": counts,
                         "cumulative_conversion_rate": counts / delivered})
