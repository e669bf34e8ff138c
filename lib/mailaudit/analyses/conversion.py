"""E-mail -> order/deal conversion: linking, last-touch attribution, cohorts, time to order, baseline, follow-up.

Definitions (the contract's, made exact):

* **delivered**: recipient rows of e-mail letters (MESSAGE_CODE 'mail') with STATUS 'N' whose DATE_SENT
  is in the period (``Period``). SMS and other channels' rows are left out.
* **purchase**: a store order (b_sale_order, CANCELED != 'Y'; time DATE_INSERT, value PRICE) or,
  when the portal has no store orders, a won deal (b_crm_deal STAGE_SEMANTIC_ID 'S'; time
  CLOSEDATE, else DATE_CREATE; value OPPORTUNITY).
* **linking**: an order reaches a mailing contact through b_crm_order_contact_company
  (ENTITY_TYPE_ID 3) -> CRM contact -> its b_crm_field_multi EMAIL values (lower-cased, trimmed)
  = b_sender_contact.CODE, or through b_sale_order.USER_ID = b_sender_contact.USER_ID; a deal
  through b_crm_deal_contact and b_crm_deal.CONTACT_ID -> CRM contact -> its emails.
* **touch**: a read (b_sender_posting_read: an open, machine loads included) or click
  (b_sender_posting_click) row of a delivered send. Bitrix writes a read row with a click that had
  no earlier read, so clicks are not counted as opens a second time.
* **last touch** (contract): a purchase is attributed to the latest send (by DATE_SENT; on equal
  DATE_SENT the higher recipient ID) of any of its contacts that has a click at or before the
  purchase and at most ``click_window_days`` x 24 h before it; failing that, to the latest send
  with a read row at most ``open_window_days`` x 24 h before it. Both window edges are
  inclusive (a touch exactly N x 24 h earlier, or at the same second, counts). Every send of the
  contact competes, including sends outside the period; only sends in the period are reported.
  A send converts when at least one purchase is attributed to it; revenue is the purchases' value.
* **click-only**: the same rule without the open branch (robust to Apple MPP machine opens).

Scale: purchases and their contact links are held in memory (one row per purchase/link, a few
integers each); sends are streamed in ranges of contact IDs, with read and click rows fetched only for
the contacts that have a purchase or a CRM follow-up event; purchases are attributed per range (a
purchase whose contacts span ranges waits for its last range) and only converted sends are kept. Bootstrap intervals resample contacts (Poisson weights derived from the
contact ID, so they do not depend on how the ranges fall).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
from scipy.stats import poisson
from sqlalchemy import BigInteger, Integer, String, case, cast, exists, func, literal, literal_column, or_, select
from sqlalchemy.engine import Connection

from mailaudit.analyses.stats import Z95, wilson_interval
from mailaudit.bitrix import codes
from mailaudit.bitrix.queries import email_postings
from mailaudit.bitrix.schema import BitrixSchema
from mailaudit.period import Period
from mailaudit.sources.db import read_chunks, read_frame

DAY = 86_400
"""Seconds in a day: windows are N x 24 h."""

SENSITIVITY_DAYS = tuple(range(1, 31))
TENURE_BUCKETS = ((90, "under 3 months"), (365, "3-12 months"), (730, "1-2 years"), (None, "2+ years"))
EMAIL_UTM_MEDIUMS = frozenset({"email", "e-mail", "e_mail", "mail", "newsletter", "rassylka"})
"""utm_medium values (lower-case) that mark e-mail traffic."""
CUMULATIVE_DAYS = 30
IN_LIST_BATCH = 1000
"""Contact IDs per IN list (well under every engine's bound-parameter limit)."""
_POISSON1_CDF = poisson.cdf(np.arange(0, 30), 1.0)


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


def touch_pairs(purchases: pd.DataFrame, sends: pd.DataFrame, touches: pd.DataFrame,
                max_days: int) -> pd.DataFrame:
    """Each (purchase, send) with a touch at most `max_days` before the purchase.

    purchases: purchase_id, contact_id, purchased_at (s), value; sends: recipient_id, contact_id,
    sent_at (s); touches: recipient_id, at (s), is_click. Returns purchase_id, recipient_id,
    contact_id, sent_at, click_lag, open_lag: seconds from the send's latest click (read row) at or
    before the purchase to the purchase; NaN when there is none in reach.
    """
    cols = ["purchase_id", "recipient_id", "contact_id", "sent_at", "click_lag", "open_lag"]
    if purchases.empty or touches.empty:
        return pd.DataFrame(columns=cols)
    t = touches.merge(sends[["recipient_id", "contact_id", "sent_at"]], on="recipient_id")
    pairs = t.merge(purchases[["purchase_id", "contact_id", "purchased_at"]], on="contact_id")
    pairs["lag"] = pairs["purchased_at"] - pairs["at"]
    pairs = pairs[(pairs["lag"] >= 0) & (pairs["lag"] <= max_days * DAY)]
    if pairs.empty:
        return pd.DataFrame(columns=cols)
    pairs["click_lag"] = pairs["lag"].where(pairs["is_click"])
    pairs["open_lag"] = pairs["lag"].where(~pairs["is_click"])
    out = pairs.groupby(["purchase_id", "recipient_id"], sort=False).agg(
        contact_id=("contact_id", "first"), sent_at=("sent_at", "first"),
        click_lag=("click_lag", "min"), open_lag=("open_lag", "min")).reset_index()
    return out[cols]


def attribute(pairs: pd.DataFrame, click_days: int, open_days: int | None) -> pd.DataFrame:
    """Last-touch choice: the chosen pair row (purchase_id, recipient_id, contact_id, sent_at) per
    attributed purchase.

    The latest send (sent_at, then recipient_id) with click_lag <= click_days x 24 h; for purchases
    without one, the latest with open_lag <= open_days x 24 h (no open branch when None).
    """
    return _attribute_sorted(sort_pairs(pairs), click_days, open_days)


def sort_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs in (purchase, send time, recipient) order, as `_attribute_sorted` expects."""
    return pairs.sort_values(["purchase_id", "sent_at", "recipient_id"])


def _attribute_sorted(pairs: pd.DataFrame, click_days: int, open_days: int | None) -> pd.DataFrame:
    cols = ["purchase_id", "recipient_id", "contact_id", "sent_at"]
    by_click = pairs[pairs["click_lag"] <= click_days * DAY].drop_duplicates("purchase_id", keep="last")[cols]
    if open_days is None:
        return by_click
    rest = pairs[(pairs["open_lag"] <= open_days * DAY) & ~pairs["purchase_id"].isin(by_click["purchase_id"])]
    return pd.concat([by_click, rest.drop_duplicates("purchase_id", keep="last")[cols]], ignore_index=True)


def contact_weights(contact_ids, replicates: int, seed: int = 20260101) -> np.ndarray:
    """Poisson(1) bootstrap weights, shape (n contacts, replicates), a fixed function of the contact ID."""
    ids = np.asarray(contact_ids, dtype=np.uint64)[:, None]
    reps = np.arange(replicates, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        x = ids * np.uint64(0x9E3779B97F4A7C15) + (reps + np.uint64(seed)) * np.uint64(0xD1B54A32D192ED03)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    u = (x >> np.uint64(11)).astype(np.float64) / float(2 ** 53)
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float64)


def tenure_bucket(days: np.ndarray) -> np.ndarray:
    """Index into TENURE_BUCKETS for a contact's age in days."""
    out = np.full(len(days), len(TENURE_BUCKETS) - 1)
    for i, (limit, _label) in reversed(list(enumerate(TENURE_BUCKETS[:-1]))):
        out = np.where(days < limit, i, out)
    return out


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
# SQL sources
# --------------------------------------------------------------------------------------------

def _seconds(values) -> np.ndarray:
    """Naive datetimes -> int64 seconds since 1970 (NaT -> min int)."""
    return pd.to_datetime(pd.Series(values), errors="coerce").to_numpy("datetime64[s]").astype(np.int64)


def _epoch(column, dialect: str):
    """Seconds since 1970-01-01 of a naive DATETIME column, computed by the server (no time zone applied):
    fetching integers is several times cheaper than fetching datetimes for millions of rows."""
    if dialect in ("mysql", "mariadb"):
        return func.timestampdiff(literal_column("SECOND"), literal("1970-01-01 00:00:00"), column)
    if dialect == "postgresql":
        return cast(func.extract("epoch", column), BigInteger)
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    raise ValueError(f"dialect {dialect!r} is not supported")


def _contact_code(schema: BitrixSchema):
    sc = schema.table("b_sender_contact")
    if schema.layout == "current":
        return sc.c.CODE, sc.c.TYPE_ID == int(codes.SenderContactType.EMAIL)
    return sc.c.EMAIL, True


def _recipient_source(schema: BitrixSchema):
    """(from clause, contact-ID column) of recipient rows; legacy rows carry EMAIL, not CONTACT_ID."""
    r = schema.table("b_sender_posting_recipient")
    if schema.layout == "current":
        return r, r.c.CONTACT_ID
    sc = schema.table("b_sender_contact")
    return r.join(sc, sc.c.EMAIL == r.c.EMAIL), sc.c.ID


def crm_contact_map(conn: Connection, schema: BitrixSchema) -> pd.DataFrame:
    """CRM contact -> mailing contact pairs by e-mail (crm_contact_id, contact_id), de-duplicated."""
    if not schema.has("b_crm_field_multi"):
        return pd.DataFrame(columns=["crm_contact_id", "contact_id"])
    fm = schema.table("b_crm_field_multi")
    sc = schema.table("b_sender_contact")
    code, is_email = _contact_code(schema)
    stmt = (select(fm.c.ELEMENT_ID.label("crm_contact_id"), sc.c.ID.label("contact_id"))
            .select_from(fm.join(sc, code == func.lower(func.trim(fm.c.VALUE))))
            .where(fm.c.ENTITY_ID == codes.CrmMultiField.ENTITY_CONTACT,
                   fm.c.TYPE_ID == codes.CrmMultiField.TYPE_EMAIL, is_email))
    out = read_frame(conn, stmt)
    if out.empty:
        return pd.DataFrame(columns=["crm_contact_id", "contact_id"])
    return out.astype("int64").drop_duplicates()


def _not_cancelled(o):
    return or_(o.c.CANCELED.is_(None), o.c.CANCELED != codes.YES)


def order_purchases(conn: Connection, schema: BitrixSchema, crm_map: pd.DataFrame):
    """Not-cancelled orders, their links to mailing contacts, and the linking tally.

    Returns (purchases: purchase_id, purchased_at, value; links: purchase_id, contact_id, via;
    linking: DataFrame of what/orders/detail).
    """
    o = schema.table("b_sale_order")
    orders = read_frame(conn, select(o.c.ID.label("purchase_id"), o.c.DATE_INSERT.label("purchased_at"),
                                  o.c.PRICE.label("value"), o.c.USER_ID.label("user_id"),
                                  o.c.CANCELED.label("canceled"), o.c.CURRENCY.label("currency")))
    cancelled = orders["canceled"].eq(codes.YES)
    total = len(orders)
    orders = orders[~cancelled].copy()
    orders["purchased_at"] = _seconds(orders["purchased_at"])
    orders["value"] = pd.to_numeric(orders["value"], errors="coerce").fillna(0.0).astype(float)
    orders["purchase_id"] = orders["purchase_id"].astype("int64")
    orders["user_id"] = pd.to_numeric(orders["user_id"], errors="coerce").fillna(0).astype("int64")

    crm_links = pd.DataFrame(columns=["purchase_id", "crm_contact_id"])
    if schema.has("b_crm_order_contact_company"):
        occ = schema.table("b_crm_order_contact_company")
        crm_links = read_frame(conn, select(occ.c.ORDER_ID.label("purchase_id"), occ.c.ENTITY_ID.label("crm_contact_id"))
                            .where(occ.c.ENTITY_TYPE_ID == int(codes.CrmEntityType.CONTACT)))
        crm_links = crm_links.astype("int64") if not crm_links.empty else crm_links
    crm_links = crm_links[crm_links["purchase_id"].isin(orders["purchase_id"])]
    via_crm = crm_links.merge(crm_map, on="crm_contact_id")[["purchase_id", "contact_id"]].assign(via="crm_contact")

    sc = schema.table("b_sender_contact")
    via_user = pd.DataFrame(columns=["purchase_id", "contact_id", "via"])
    if "USER_ID" in schema.columns("b_sender_contact"):
        _code, is_email = _contact_code(schema)
        users = read_frame(conn, select(sc.c.USER_ID.label("user_id"), sc.c.ID.label("contact_id"))
                        .where(sc.c.USER_ID > 0, is_email))
        if not users.empty:
            via_user = (orders[orders["user_id"] > 0][["purchase_id", "user_id"]]
                        .merge(users.astype("int64"), on="user_id")[["purchase_id", "contact_id"]]
                        .assign(via="user_id"))
    links = via_crm[["purchase_id", "contact_id"]].drop_duplicates().merge(
        via_user[["purchase_id", "contact_id"]].drop_duplicates(), how="outer", indicator=True)
    links["via"] = links.pop("_merge").map({"left_only": "crm_contact", "right_only": "user_id",
                                            "both": "crm_contact+user_id"}).astype(str)

    linked = orders["purchase_id"].isin(links["purchase_id"])
    has_crm = orders["purchase_id"].isin(crm_links["purchase_id"])
    crm_with_email = orders["purchase_id"].isin(
        crm_links[crm_links["crm_contact_id"].isin(_crm_contacts_with_email(conn, schema))]["purchase_id"])
    has_user = orders["user_id"] > 0
    unlinked = ~linked
    rows = [
        ("orders", total, "all b_sale_order rows"),
        ("cancelled", int(cancelled.sum()), "CANCELED = 'Y': not counted"),
        ("qualifying", len(orders), "not cancelled"),
        ("linked", int(linked.sum()), "reach at least one mailing contact"),
        ("linked via CRM contact e-mail", int(orders["purchase_id"].isin(via_crm["purchase_id"]).sum()), ""),
        ("linked via USER_ID", int(orders["purchase_id"].isin(via_user["purchase_id"]).sum()), ""),
        ("unlinked: no CRM contact and no user", int((unlinked & ~has_crm & ~has_user).sum()),
         "the order names no CRM contact (ENTITY_TYPE_ID 3) and no site user"),
        ("unlinked: CRM contact without e-mail", int((unlinked & has_crm & ~crm_with_email).sum()),
         "the order's CRM contact has no EMAIL in b_crm_field_multi"),
        ("unlinked: e-mail / user not a mailing contact",
         int((unlinked & ((has_crm & crm_with_email) | (~has_crm & has_user))).sum()),
         "the buyer's e-mail or user is not in b_sender_contact"),
    ]
    linking = pd.DataFrame(rows, columns=["what", "count", "detail"])
    purchases = orders[["purchase_id", "purchased_at", "value", "currency"]].reset_index(drop=True)
    return purchases, links, linking


def _crm_contacts_with_email(conn: Connection, schema: BitrixSchema) -> np.ndarray:
    if not schema.has("b_crm_field_multi"):
        return np.array([], dtype=np.int64)
    fm = schema.table("b_crm_field_multi")
    out = read_frame(conn, select(fm.c.ELEMENT_ID).distinct().where(
        fm.c.ENTITY_ID == codes.CrmMultiField.ENTITY_CONTACT, fm.c.TYPE_ID == codes.CrmMultiField.TYPE_EMAIL))
    return out.iloc[:, 0].astype("int64").to_numpy() if not out.empty else np.array([], dtype=np.int64)


def deal_purchases(conn: Connection, schema: BitrixSchema, crm_map: pd.DataFrame):
    """Won deals, their links to mailing contacts and the linking tally (as `order_purchases`)."""
    d = schema.table("b_crm_deal")
    deals = read_frame(conn, select(d.c.ID.label("purchase_id"), d.c.CLOSEDATE.label("closed"),
                                 d.c.DATE_CREATE.label("created"), d.c.OPPORTUNITY.label("value"),
                                 d.c.CONTACT_ID.label("crm_contact_id"), d.c.CURRENCY_ID.label("currency"))
                    .where(d.c.STAGE_SEMANTIC_ID == codes.DealSemantic.WON))
    closed = pd.to_datetime(deals["closed"], errors="coerce")
    deals["purchased_at"] = _seconds(closed.fillna(pd.to_datetime(deals["created"], errors="coerce")))
    deals["value"] = pd.to_numeric(deals["value"], errors="coerce").fillna(0.0).astype(float)
    deals["purchase_id"] = deals["purchase_id"].astype("int64")
    crm_links = deals[["purchase_id", "crm_contact_id"]].dropna()
    if schema.has("b_crm_deal_contact"):
        dc = schema.table("b_crm_deal_contact")
        extra = read_frame(conn, select(dc.c.DEAL_ID.label("purchase_id"), dc.c.CONTACT_ID.label("crm_contact_id")))
        crm_links = pd.concat([crm_links, extra], ignore_index=True)
    crm_links = crm_links.astype("int64")
    crm_links = crm_links[(crm_links["crm_contact_id"] > 0) & crm_links["purchase_id"].isin(deals["purchase_id"])]
    links = crm_links.merge(crm_map, on="crm_contact_id")[["purchase_id", "contact_id"]].drop_duplicates()
    links = links.assign(via="crm_contact")
    linked = deals["purchase_id"].isin(links["purchase_id"])
    has_crm = deals["purchase_id"].isin(crm_links["purchase_id"])
    crm_with_email = deals["purchase_id"].isin(
        crm_links[crm_links["crm_contact_id"].isin(_crm_contacts_with_email(conn, schema))]["purchase_id"])
    rows = [
        ("won deals", len(deals), "STAGE_SEMANTIC_ID = 'S'"),
        ("linked", int(linked.sum()), "reach at least one mailing contact"),
        ("unlinked: no CRM contact", int((~linked & ~has_crm).sum()), "the deal names no contact"),
        ("unlinked: CRM contact without e-mail", int((~linked & has_crm & ~crm_with_email).sum()),
         "the deal's contacts have no EMAIL in b_crm_field_multi"),
        ("unlinked: e-mail not a mailing contact", int((~linked & has_crm & crm_with_email).sum()),
         "the contacts' e-mails are not in b_sender_contact"),
    ]
    purchases = deals[["purchase_id", "purchased_at", "value", "currency"]].reset_index(drop=True)
    return purchases, links, pd.DataFrame(rows, columns=["what", "count", "detail"])


def _has_rows(conn: Connection, schema: BitrixSchema, table: str) -> bool:
    if not schema.has(table):
        return False
    t = schema.table(table)
    return conn.execute(select(func.count()).select_from(select(t).limit(1).subquery())).scalar_one() > 0


def purchase_source(conn: Connection, schema: BitrixSchema) -> str | None:
    """"orders" when the store has orders, "deals" when there is no store but CRM deals, else None."""
    if _has_rows(conn, schema, "b_sale_order"):
        return "orders"
    if schema.has("b_crm_deal"):
        return "deals"
    return None


# --------------------------------------------------------------------------------------------
# the streamed pass over contact-ID ranges
# --------------------------------------------------------------------------------------------

def _contact_ranges(conn: Connection, schema: BitrixSchema, per_chunk: int):
    """Contact-ID ranges covering every contact and every recipient row (deleted contacts included)."""
    sc = schema.table("b_sender_contact")
    bounds = [conn.execute(select(func.min(sc.c.ID), func.max(sc.c.ID))).one()]
    if schema.layout == "current":
        r = schema.table("b_sender_posting_recipient")
        bounds.append(conn.execute(select(func.min(r.c.CONTACT_ID), func.max(r.c.CONTACT_ID))).one())
    lows = [int(b[0]) for b in bounds if b[0] is not None]
    highs = [int(b[1]) for b in bounds if b[1] is not None]
    if not lows:
        return []
    low, high = min(lows), max(highs)
    return [(lo, min(lo + per_chunk - 1, int(high))) for lo in range(int(low), int(high) + 1, per_chunk)]


def email_posting_ids(conn: Connection, schema: BitrixSchema) -> np.ndarray:
    """IDs of the postings of e-mail letters, as an array."""
    return read_frame(conn, email_postings(schema)).iloc[:, 0].astype("int64").to_numpy()


def _chunk_sends(conn, schema, lo, hi, postings: np.ndarray) -> pd.DataFrame:
    """Recipient rows of e-mail `postings` with a DATE_SENT, of the contacts in [lo, hi], any status."""
    r = schema.table("b_sender_posting_recipient")
    source, contact = _recipient_source(schema)
    touched = [exists().where(schema.table(t).c.RECIPIENT_ID == r.c.ID)
               for t in ("b_sender_posting_read", "b_sender_posting_click") if schema.has(t)]
    engaged = case((or_(*touched), 1), else_=0) if touched else literal(0)
    stmt = (select(r.c.ID.label("recipient_id"), contact.label("contact_id"), r.c.POSTING_ID.label("posting_id"),
                   _epoch(r.c.DATE_SENT, schema.dialect).label("sent_at"), r.c.STATUS.label("status"),
                   engaged.label("engaged"))
            .select_from(source).where(r.c.DATE_SENT.is_not(None), contact.between(lo, hi)))
    df = read_frame(conn, stmt)
    if df.empty:
        return pd.DataFrame({**{c: pd.Series(dtype="int64") for c in ("recipient_id", "contact_id", "posting_id",
                                                                      "sent_at")}, "status": pd.Series(dtype=object),
                             "engaged": pd.Series(dtype=bool)})
    df[["recipient_id", "contact_id", "posting_id"]] = df[["recipient_id", "contact_id", "posting_id"]].astype("int64")
    df = df[np.isin(df["posting_id"].to_numpy(), postings)].reset_index(drop=True)
    df["sent_at"] = df["sent_at"].astype("int64")
    df["engaged"] = df["engaged"].astype(int).astype(bool)
    return df


def _chunk_touches(conn, schema, contact_ids: np.ndarray) -> pd.DataFrame:
    """Every read and click row of the delivered sends of these contacts (IN lists of IN_LIST_BATCH)."""
    r = schema.table("b_sender_posting_recipient")
    source, contact = _recipient_source(schema)
    parts = []
    for table, is_click in (("b_sender_posting_read", False), ("b_sender_posting_click", True)):
        if not schema.has(table):
            continue
        t = schema.table(table)
        for i in range(0, len(contact_ids), IN_LIST_BATCH):
            batch = [int(x) for x in contact_ids[i:i + IN_LIST_BATCH]]
            stmt = (select(t.c.RECIPIENT_ID.label("recipient_id"), _epoch(t.c.DATE_INSERT, schema.dialect).label("at"))
                    .select_from(source.join(t, t.c.RECIPIENT_ID == r.c.ID))
                    .where(r.c.STATUS == codes.RecipientStatus.SENT, contact.in_(batch),
                           t.c.DATE_INSERT.is_not(None)))
            df = read_frame(conn, stmt)
            if not df.empty:
                parts.append(pd.DataFrame({"recipient_id": df["recipient_id"].astype("int64"),
                                           "at": df["at"].astype("int64"), "is_click": is_click}))
    if not parts:
        return pd.DataFrame({"recipient_id": pd.Series(dtype="int64"), "at": pd.Series(dtype="int64"),
                             "is_click": pd.Series(dtype=bool)})
    return pd.concat(parts, ignore_index=True)


def _chunk_contacts(conn, schema, lo, hi) -> pd.DataFrame:
    sc = schema.table("b_sender_contact")
    _code, is_email = _contact_code(schema)
    df = read_frame(conn, select(sc.c.ID.label("contact_id"), sc.c.DATE_INSERT.label("created"))
                 .where(sc.c.ID.between(lo, hi), is_email))
    if df.empty:
        return pd.DataFrame({"contact_id": pd.Series(dtype="int64"), "created": pd.Series(dtype="int64")})
    df["contact_id"] = df["contact_id"].astype("int64")
    df["created"] = _seconds(df["created"])
    return df


def _data_end(conn: Connection, schema: BitrixSchema, purchases: pd.DataFrame) -> int:
    """Latest timestamp in the data (purchases, sends, touches): where time to order is censored."""
    r = schema.table("b_sender_posting_recipient")
    candidates = [conn.execute(select(func.max(r.c.DATE_SENT))).scalar()]
    for table in ("b_sender_posting_read", "b_sender_posting_click"):
        if schema.has(table):
            candidates.append(conn.execute(select(func.max(schema.table(table).c.DATE_INSERT))).scalar())
    seconds = [int(_seconds([c])[0]) for c in candidates if c is not None]
    if not purchases.empty:
        seconds.append(int(purchases["purchased_at"].max()))
    return max(seconds)


def analyse_conversion(conn: Connection, schema: BitrixSchema, period: Period, *,
                       open_window_days: int = 5, click_window_days: int = 30, cohort: str = "month",
                       followup_days: int = 3, contacts_per_chunk: int = 20_000,
                       replicates: int = 200, seed: int = 20260101) -> ConversionResult:
    """The conversion report's tables and figures for sends delivered in `period`.

    Rates are fractions: conversion_rate = converted sends / delivered sends (period); revenue per
    recipient = attributed revenue / delivered sends; baseline = share of not-mailed contact-windows
    with a purchase, standardised to the mailed ones' prior-purchase x tenure x window mix.
    """
    notes: list[str] = []
    source = purchase_source(conn, schema)
    windows = {"open_days": open_window_days, "click_days": click_window_days}
    if source is None:
        return _empty_result(windows, "no store orders (b_sale_order) and no CRM deals (b_crm_deal)")
    crm_map = crm_contact_map(conn, schema)
    if source == "orders":
        purchases, links, linking = order_purchases(conn, schema, crm_map)
    else:
        purchases, links, linking = deal_purchases(conn, schema, crm_map)
        notes.append("The portal has no store orders: won deals (STAGE_SEMANTIC_ID 'S') stand in for orders, "
                     "dated by CLOSEDATE, valued by OPPORTUNITY.")
    currencies = sorted(purchases.pop("currency").dropna().astype(str).str.strip().unique())
    if len(currencies) > 1:
        notes.append(f"Purchases are in {len(currencies)} currencies ({', '.join(currencies)}): revenue adds them "
                     "up unconverted.")
    if schema.layout == "legacy":
        notes.append("Legacy sender layout: recipient rows reach contacts by their EMAIL; rows whose address "
                     "matches no contact are left out of every figure.")
    link_rows = (links.merge(purchases, on="purchase_id").sort_values("contact_id").reset_index(drop=True)
                 .astype({"purchase_id": "int64", "contact_id": "int64", "purchased_at": "int64", "value": float}))
    link_contacts = link_rows["contact_id"].to_numpy()
    values = purchases.set_index("purchase_id")

    cw = cohort_windows(period, cohort)
    labels = list(cw["cohort"])
    p_start, p_end = int(_seconds([period.start_dt])[0]), int(_seconds([period.end_exclusive])[0])
    w_start = _seconds(cw["start"])
    data_end = _data_end(conn, schema, purchases)
    max_days = max(open_window_days, click_window_days, max(SENSITIVITY_DAYS))

    ranges = _contact_ranges(conn, schema, contacts_per_chunk)
    step_low = ranges[0][0] if ranges else 0
    # a purchase is decided once the range holding its last linked contact has been read
    last_range = (link_rows.groupby("purchase_id")["contact_id"].max() - step_low) // contacts_per_chunk

    pending = pd.DataFrame(columns=["purchase_id", "recipient_id", "contact_id", "sent_at", "click_lag", "open_lag"])
    attributed_parts: list[pd.DataFrame] = []
    click_only_parts: list[pd.DataFrame] = []
    sens = np.zeros((len(SENSITIVITY_DAYS), 4))     # revenue, purchases for last touch / click only
    delivered_boot = np.zeros((replicates, len(labels)))
    delivered_counts = np.zeros(len(labels), dtype=np.int64)
    km_counts: dict[tuple[int, int], int] = {}
    mail_postings = email_posting_ids(conn, schema)
    postings = _period_postings(conn, schema, period, mail_postings)
    n_cells = max(len(postings.months), 1) * 2 * len(TENURE_BUCKETS)
    base = {"units": np.zeros((n_cells, 2)), "ordered": np.zeros((n_cells, 2)), "seed": seed,
            "units_boot": np.zeros((replicates, n_cells, 2)), "ordered_boot": np.zeros((replicates, n_cells, 2))}
    follow_parts: list[pd.DataFrame] = []
    crm_acts = _FollowupSource(conn, schema, crm_map, followup_days, period.start_dt)

    for index, (lo, hi) in enumerate(ranges):
        all_rows = _chunk_sends(conn, schema, lo, hi, mail_postings)
        sends = all_rows[all_rows["status"] == codes.RecipientStatus.SENT]
        a, b = np.searchsorted(link_contacts, [lo, hi + 1])
        chunk_links = link_rows.iloc[a:b]
        # reads and clicks matter only where a purchase or a CRM follow-up could meet them
        candidates = np.union1d(chunk_links["contact_id"].unique(), crm_acts.contacts_with_events(lo, hi))
        touches = _chunk_touches(conn, schema, candidates)
        in_period = sends[(sends["sent_at"] >= p_start) & (sends["sent_at"] < p_end)].copy()
        in_period["cohort_index"] = np.searchsorted(w_start, in_period["sent_at"].to_numpy(), side="right") - 1

        # --- delivered, with bootstrap weights per contact
        if not in_period.empty:
            ids, rows = np.unique(in_period["contact_id"].to_numpy(), return_inverse=True)
            per_contact = np.bincount(rows * len(labels) + in_period["cohort_index"].to_numpy(),
                                      minlength=len(ids) * len(labels)).reshape(len(ids), len(labels))
            delivered_boot += contact_weights(ids, replicates, seed).T @ per_contact.astype(float)
            delivered_counts += per_contact.sum(axis=0)

        # --- attribution
        pairs = touch_pairs(chunk_links, sends, touches, max_days)
        pairs = pd.concat([pending, pairs], ignore_index=True) if not pending.empty else pairs
        ready = last_range.reindex(pairs["purchase_id"]).to_numpy() <= index
        decided, pending = pairs[ready], pairs[~ready]
        if not decided.empty:
            decided = sort_pairs(decided)
            for parts, opens in ((attributed_parts, open_window_days), (click_only_parts, None)):
                parts.append(_with_purchase(_attribute_sorted(decided, click_window_days, opens), values))
            for i, days in enumerate(SENSITIVITY_DAYS):
                for j, opens in enumerate((days, None)):
                    chosen = _attribute_sorted(decided, days, opens)
                    chosen = chosen[(chosen["sent_at"] >= p_start) & (chosen["sent_at"] < p_end)]
                    sens[i, 2 * j] += values["value"].reindex(chosen["purchase_id"]).sum()
                    sens[i, 2 * j + 1] += len(chosen)

        # --- time to the first purchase after each send (any purchase, not only attributed ones)
        _count_time_to_purchase(in_period, chunk_links, data_end, km_counts)

        # --- baseline: contact x window cells
        contacts = _chunk_contacts(conn, schema, lo, hi)
        _count_baseline(contacts, _chunk_optouts(conn, schema, lo, hi), all_rows, chunk_links, postings,
                        click_window_days, base)

        # --- follow-up gap
        follow_parts.append(crm_acts.gaps(in_period, touches, chunk_links, candidates))

    attributed = _collect(attributed_parts)
    click_only = _collect(click_only_parts)
    in_p = lambda df: df[(df["sent_at"] >= p_start) & (df["sent_at"] < p_end)]
    attributed, click_only = in_p(attributed), in_p(click_only)

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
    time_to_order, km = _kaplan_meier(km_counts)
    baseline, base_figures = _baseline_table(postings.months, base, click_window_days)
    utm_letters, utm_figures = utm_attribution(conn, schema, period, click_window_days)
    followup = _followup_table(conn, schema, follow_parts)

    if delivered == 0:
        notes.append("No delivered sends (STATUS 'N') in the period: rates are null.")
    if utm_figures["deals"] is None:
        notes.append("utm is null: the database has no b_crm_utm table, so deals carry no UTM tags.")
    notes.append("The baseline is observational: contacts who were not mailed differ in ways the matching "
                 "(prior purchase, tenure, month) does not capture; it is not a holdout test.")

    figures = {
        "windows": windows,
        "source": source,
        "delivered": delivered,
        "converted": converted,
        "conversion_rate": conversion_rate,
        "conversion_rate_ci": _interval(*_percentile(total_conv_boot)) if delivered else None,
        "revenue": round(revenue, 2),
        "revenue_per_recipient": rpr,
        "revenue_per_recipient_ci": _interval(*_percentile(total_rpr_boot)) if delivered else None,
        "attributed_orders": int(len(attributed)),
        "baseline_conversion_rate": base_figures["baseline_rate"],
        "baseline": base_figures,
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


def _empty_result(windows: dict, reason: str) -> ConversionResult:
    figures = {"windows": windows, "source": None, "delivered": None, "converted": None, "conversion_rate": None,
               "revenue": None, "revenue_per_recipient": None, "baseline_conversion_rate": None, "cohorts": [],
               "utm": {"deals": None, "revenue": None}}
    empty = pd.DataFrame()
    return ConversionResult(figures, empty, empty, empty, empty, empty, empty, empty, empty, empty,
                            notes=[f"Conversion cannot be measured: {reason}."])


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
    return out[["purchase_id", "recipient_id", "contact_id", "sent_at", "purchased_at", "value"]]


def _collect(parts: list[pd.DataFrame]) -> pd.DataFrame:
    columns = ["purchase_id", "recipient_id", "contact_id", "sent_at", "purchased_at", "value"]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: pd.Series(dtype="int64") for c in columns})


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


def _count_time_to_purchase(in_period: pd.DataFrame, chunk_links: pd.DataFrame, data_end: int,
                            counts: dict) -> None:
    """Hours from each send to the contact's next purchase (event) or to the data's end (censored)."""
    if in_period.empty:
        return
    sends = in_period[["recipient_id", "contact_id", "sent_at"]].sort_values("sent_at")
    nxt = chunk_links[["contact_id", "purchased_at"]].drop_duplicates().sort_values("purchased_at")
    merged = pd.merge_asof(sends, nxt, left_on="sent_at", right_on="purchased_at", by="contact_id",
                           direction="forward", allow_exact_matches=True)
    event = merged["purchased_at"].notna().to_numpy()
    end = np.where(event, merged["purchased_at"].fillna(0).to_numpy(), data_end)
    hours = np.ceil((end - merged["sent_at"].to_numpy()) / 3600).astype(np.int64)
    table = pd.DataFrame({"hours": hours, "event": event.astype(int)}).value_counts()
    for (h, e), n in table.items():
        counts[(int(h), int(e))] = counts.get((int(h), int(e)), 0) + int(n)


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


@dataclass
class _Postings:
    """The e-mail postings with delivered sends in the period: their start and month index."""

    ids: np.ndarray
    start: np.ndarray         # seconds: b_sender_posting.DATE_SEND, else its first DATE_SENT
    month: np.ndarray         # index into `months`
    months: list[str]


def _period_postings(conn: Connection, schema: BitrixSchema, period: Period, mail_postings: np.ndarray) -> _Postings:
    r, p = schema.table("b_sender_posting_recipient"), schema.table("b_sender_posting")
    first = (select(r.c.POSTING_ID.label("posting_id"), func.min(r.c.DATE_SENT).label("first_sent"))
             .where(r.c.STATUS == codes.RecipientStatus.SENT, r.c.DATE_SENT >= period.start_dt,
                    r.c.DATE_SENT < period.end_exclusive)
             .group_by(r.c.POSTING_ID).subquery())
    df = read_frame(conn, select(first.c.posting_id, first.c.first_sent, p.c.DATE_SEND.label("date_send"))
                 .select_from(first.outerjoin(p, p.c.ID == first.c.posting_id)))
    df = df[np.isin(df["posting_id"].astype("int64").to_numpy(), mail_postings)]
    if df.empty:
        return _Postings(np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([], dtype=np.int64), [])
    start = pd.to_datetime(df["date_send"], errors="coerce").fillna(pd.to_datetime(df["first_sent"], errors="coerce"))
    df = df.assign(start=_seconds(start)).sort_values("start")
    months = pd.to_datetime(df["start"], unit="s").dt.strftime("%Y-%m")
    labels = sorted(months.unique())
    return _Postings(df["posting_id"].astype("int64").to_numpy(), df["start"].to_numpy(),
                     months.map({m: i for i, m in enumerate(labels)}).to_numpy(), labels)


def _chunk_optouts(conn, schema, lo, hi) -> pd.DataFrame:
    """First opt-out time per contact: an unsubscribe row of any of its sends, or a b_main_mail_blacklist entry."""
    r = schema.table("b_sender_posting_recipient")
    source, contact = _recipient_source(schema)
    parts = []
    if schema.has("b_sender_posting_unsub"):
        u = schema.table("b_sender_posting_unsub")
        parts.append(read_frame(conn, select(contact.label("contact_id"), func.min(u.c.DATE_INSERT).label("at"))
                             .select_from(source.join(u, u.c.RECIPIENT_ID == r.c.ID))
                             .where(contact.between(lo, hi)).group_by(contact)))
    if schema.has("b_main_mail_blacklist"):
        b, sc = schema.table("b_main_mail_blacklist"), schema.table("b_sender_contact")
        code, is_email = _contact_code(schema)
        parts.append(read_frame(conn, select(sc.c.ID.label("contact_id"), b.c.DATE_INSERT.label("at"))
                             .select_from(sc.join(b, b.c.CODE == code)).where(sc.c.ID.between(lo, hi), is_email)))
    parts = [p_ for p_ in parts if not p_.empty]
    if not parts:
        return pd.DataFrame({"contact_id": pd.Series(dtype="int64"), "at": pd.Series(dtype="int64")})
    df = pd.concat(parts, ignore_index=True)
    df = pd.DataFrame({"contact_id": df["contact_id"].astype("int64"), "at": _seconds(df["at"])})
    return df.groupby("contact_id", as_index=False)["at"].min()


def _count_baseline(contacts, optouts, sends, chunk_links, postings: _Postings, window_days, acc) -> None:
    """Add this range's contact x posting units: mailed (a delivered row in the posting) or comparable
    not mailed (created before the posting started, not opted out, no row in it); outcome: a purchase in
    (start, start + window]; cells: posting month x prior purchase x tenure at the start."""
    n_p = len(postings.ids)
    if contacts.empty or n_p == 0:
        return
    ids = contacts["contact_id"].to_numpy()
    created = contacts["created"].to_numpy()
    n = len(ids)
    row_of = pd.Series(np.arange(n), index=ids)
    col_of = pd.Series(np.arange(n_p), index=postings.ids)
    t0 = postings.start

    def matrix(frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((n, n_p), dtype=bool)
        rows = row_of.reindex(frame["contact_id"].to_numpy()).to_numpy()
        cols = col_of.reindex(frame["posting_id"].to_numpy()).to_numpy()
        ok = ~np.isnan(rows) & ~np.isnan(cols)
        out[rows[ok].astype(int), cols[ok].astype(int)] = True
        return out

    mailed = matrix(sends[sends["status"] == codes.RecipientStatus.SENT])
    targeted = matrix(sends)
    optout = np.full(n, np.iinfo(np.int64).max)
    if not optouts.empty:
        rows = row_of.reindex(optouts["contact_id"].to_numpy()).to_numpy()
        ok = ~np.isnan(rows)
        optout[rows[ok].astype(int)] = optouts["at"].to_numpy()[ok]
    bought = np.zeros((n, n_p), dtype=bool)
    first_buy = np.full(n, np.iinfo(np.int64).max)
    if not chunk_links.empty:
        buys = chunk_links[["contact_id", "purchased_at"]].drop_duplicates()
        rows = row_of.reindex(buys["contact_id"].to_numpy()).to_numpy()
        ok = ~np.isnan(rows)
        r_idx, t = rows[ok].astype(int), buys["purchased_at"].to_numpy()[ok]
        np.minimum.at(first_buy, r_idx, t)
        hit = (t[:, None] > t0[None, :]) & (t[:, None] <= t0[None, :] + window_days * DAY)
        rr, cc = np.nonzero(hit)
        bought[r_idx[rr], cc] = True
    prior = first_buy[:, None] <= t0[None, :]
    not_mailed = (created[:, None] < t0[None, :]) & (optout[:, None] >= t0[None, :]) & ~targeted
    tenure = tenure_bucket(((t0[None, :] - created[:, None]) / DAY).ravel()).reshape(n, n_p)
    cell = (postings.month[None, :] * 2 + prior.astype(int)) * len(TENURE_BUCKETS) + tenure
    n_cells = acc["units"].shape[0]
    weights = contact_weights(ids, acc["units_boot"].shape[0], acc["seed"])
    for m, sel in ((0, not_mailed), (1, mailed)):
        rr, cc = np.nonzero(sel)
        flat = rr * n_cells + cell[rr, cc]
        u = np.bincount(flat, minlength=n * n_cells).reshape(n, n_cells).astype(float)
        o = np.bincount(flat, weights=bought[rr, cc].astype(float), minlength=n * n_cells).reshape(n, n_cells)
        acc["units"][:, m] += u.sum(axis=0)
        acc["ordered"][:, m] += o.sum(axis=0)
        acc["units_boot"][:, :, m] += weights.T @ u
        acc["ordered_boot"][:, :, m] += weights.T @ o


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
        "matched_on": ["posting month", "prior purchase", "tenure"],
    }
    return table, figures


# --------------------------------------------------------------------------------------------
# follow-up gap
# --------------------------------------------------------------------------------------------

class _FollowupSource:
    """CRM activities and deals (crm_contact_id, time) since the period start, sorted by CRM contact.

    Read once (two integers per row) rather than per range: b_crm_act and b_crm_deal_contact often
    have no index on the contact.
    """

    def __init__(self, conn, schema, crm_map, days, since):
        self.days = days
        self.crm_map = crm_map.sort_values("contact_id").reset_index(drop=True)
        self.crm_contacts = self.crm_map["contact_id"].to_numpy()
        statements = []
        if schema.has("b_crm_act"):
            t = schema.table("b_crm_act")
            statements.append(select(t.c.OWNER_ID, t.c.CREATED).where(
                t.c.OWNER_TYPE_ID == int(codes.CrmEntityType.CONTACT), t.c.CREATED >= since))
        if schema.has("b_crm_deal"):
            d = schema.table("b_crm_deal")
            statements.append(select(d.c.CONTACT_ID, d.c.DATE_CREATE).where(d.c.DATE_CREATE >= since))
            if schema.has("b_crm_deal_contact"):
                dc = schema.table("b_crm_deal_contact")
                statements.append(select(dc.c.CONTACT_ID, d.c.DATE_CREATE)
                                  .select_from(dc.join(d, d.c.ID == dc.c.DEAL_ID)).where(d.c.DATE_CREATE >= since))
        ids, times = [np.array([], dtype=np.int64)], [np.array([], dtype=np.int64)]
        for stmt in statements:
            for chunk in read_chunks(conn, stmt):
                chunk = chunk.dropna()
                ids.append(chunk.iloc[:, 0].astype("int64").to_numpy())
                times.append(_seconds(chunk.iloc[:, 1]))
        ids, times = np.concatenate(ids), np.concatenate(times)
        order = np.argsort(ids, kind="stable")
        self.event_crm, self.event_at = ids[order], times[order]

    def _events_of(self, crm: pd.DataFrame) -> pd.DataFrame:
        """(contact_id, event_at) of the CRM events of these (crm_contact_id, contact_id) pairs."""
        lo = np.searchsorted(self.event_crm, crm["crm_contact_id"].to_numpy(), side="left")
        hi = np.searchsorted(self.event_crm, crm["crm_contact_id"].to_numpy(), side="right")
        counts = hi - lo
        positions = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
        return pd.DataFrame({"contact_id": np.repeat(crm["contact_id"].to_numpy(), counts),
                             "event_at": self.event_at[positions]})

    def contacts_with_events(self, lo: int, hi: int) -> np.ndarray:
        """Mailing contacts in [lo, hi] whose CRM contacts have an activity or a deal."""
        a, b = np.searchsorted(self.crm_contacts, [lo, hi + 1])
        crm = self.crm_map.iloc[a:b]
        return crm.loc[np.isin(crm["crm_contact_id"].to_numpy(), self.event_crm), "contact_id"].unique()

    def gaps(self, in_period: pd.DataFrame, touches: pd.DataFrame, chunk_links: pd.DataFrame,
             candidates: np.ndarray) -> pd.DataFrame:
        """Per posting: engaged sends (opened or clicked), those in CRM, and those with no follow-up.

        Only the `candidates` (contacts with a purchase or a CRM event) can have been followed up; their
        touches give the first open or click the window starts from.
        """
        cols = ["posting_id", "engaged", "in_crm", "without_followup"]
        engaged = in_period[in_period["engaged"]]
        if engaged.empty:
            return pd.DataFrame(columns=cols)
        a, b = np.searchsorted(self.crm_contacts, [engaged["contact_id"].min(), engaged["contact_id"].max() + 1])
        crm = self.crm_map.iloc[a:b]
        crm = crm[crm["contact_id"].isin(engaged["contact_id"])]
        watched = engaged[engaged["contact_id"].isin(candidates)]
        first = touches.groupby("recipient_id", as_index=False)["at"].min()
        watched = watched.merge(first, on="recipient_id")
        events = pd.concat([chunk_links[["contact_id", "purchased_at"]].rename(columns={"purchased_at": "event_at"}),
                            self._events_of(crm)], ignore_index=True)
        pairs = watched[["recipient_id", "contact_id", "at"]].merge(events, on="contact_id")
        hit = pairs[(pairs["event_at"] >= pairs["at"]) & (pairs["event_at"] <= pairs["at"] + self.days * DAY)]
        followed = engaged["recipient_id"].isin(hit["recipient_id"]).to_numpy()
        in_crm = engaged["contact_id"].isin(crm["contact_id"]).to_numpy()
        out = pd.DataFrame({"posting_id": engaged["posting_id"].to_numpy(), "engaged": 1,
                            "in_crm": in_crm.astype(int), "without_followup": (~followed).astype(int)})
        return out.groupby("posting_id", as_index=False).sum()


def _followup_table(conn: Connection, schema: BitrixSchema, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Per mailing (campaign): engaged recipients and those without CRM activity, deal or order."""
    parts = [p for p in parts if not p.empty]
    cols = ["mailing_id", "mailing", "engaged", "in_crm", "without_followup", "without_followup_share"]
    if not parts:
        return pd.DataFrame(columns=cols)
    per_posting = pd.concat(parts).groupby("posting_id", as_index=False).sum()
    p, m = schema.table("b_sender_posting"), schema.table("b_sender_mailing")
    names = read_frame(conn, select(p.c.ID.label("posting_id"), p.c.MAILING_ID.label("mailing_id"),
                                 m.c.NAME.label("mailing")).select_from(p.join(m, m.c.ID == p.c.MAILING_ID)))
    names["posting_id"] = names["posting_id"].astype("int64")
    out = per_posting.merge(names, on="posting_id", how="left")
    out = out.groupby(["mailing_id", "mailing"], as_index=False, dropna=False)[
        ["engaged", "in_crm", "without_followup"]].sum()
    out["without_followup_share"] = out["without_followup"] / out["engaged"]
    return out[cols].sort_values("without_followup", ascending=False).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# UTM attribution
# --------------------------------------------------------------------------------------------

def utm_attribution(conn: Connection, schema: BitrixSchema, period: Period, click_window_days: int):
    """Won deals (and orders) whose utm_medium marks e-mail, matched to letters by their UTM set.

    Counted: won deals dated (CLOSEDATE, else DATE_CREATE) in the period. A letter matches when every
    UTM code the letter sets has the same value on the deal (case-insensitive).
    """
    empty = pd.DataFrame(columns=["letter_id", "letter", "entity", "count", "revenue"])
    if not schema.has("b_crm_utm"):
        return empty, {"deals": None, "revenue": None}
    u = schema.table("b_crm_utm")
    rows = read_frame(conn, select(u.c.ENTITY_TYPE_ID.label("entity_type"), u.c.ENTITY_ID.label("entity_id"),
                                u.c.CODE.label("code"), u.c.VALUE.label("value"))
                   .where(u.c.ENTITY_TYPE_ID.in_([int(codes.CrmEntityType.DEAL), int(codes.CrmEntityType.ORDER)])))
    if rows.empty:
        return empty, {"deals": 0, "revenue": 0.0}
    rows["code"] = rows["code"].astype(str).str.strip().str.lower()
    rows["value"] = rows["value"].astype(str).str.strip().str.lower()
    sets = rows.pivot_table(index=["entity_type", "entity_id"], columns="code", values="value", aggfunc="first")
    if "utm_medium" not in sets.columns:
        return empty, {"deals": 0, "revenue": 0.0}
    sets = sets[sets["utm_medium"].isin(EMAIL_UTM_MEDIUMS)].reset_index()
    start, end = pd.Timestamp(period.start_dt), pd.Timestamp(period.end_exclusive)

    deals = sets[sets["entity_type"] == int(codes.CrmEntityType.DEAL)]
    deal_values = pd.DataFrame(columns=["entity_id", "revenue"])
    if schema.has("b_crm_deal") and not deals.empty:
        d = schema.table("b_crm_deal")
        won = read_frame(conn, select(d.c.ID.label("entity_id"), d.c.CLOSEDATE.label("closed"),
                                   d.c.DATE_CREATE.label("created"), d.c.OPPORTUNITY.label("revenue"))
                      .where(d.c.STAGE_SEMANTIC_ID == codes.DealSemantic.WON))
        if not won.empty:
            when = pd.to_datetime(won["closed"], errors="coerce").fillna(pd.to_datetime(won["created"], errors="coerce"))
            won = won[(when >= start) & (when < end)]
            deal_values = won[["entity_id", "revenue"]]
    deals = deals.merge(deal_values.astype({"entity_id": "int64"}), on="entity_id")
    deals["revenue"] = pd.to_numeric(deals["revenue"], errors="coerce").fillna(0.0)

    orders = sets[sets["entity_type"] == int(codes.CrmEntityType.ORDER)]
    if schema.has("b_sale_order") and not orders.empty:
        o = schema.table("b_sale_order")
        vals = read_frame(conn, select(o.c.ID.label("entity_id"), o.c.PRICE.label("revenue"))
                       .where(_not_cancelled(o), o.c.DATE_INSERT >= period.start_dt, o.c.DATE_INSERT < period.end_exclusive))
        orders = (orders.merge(vals.astype({"entity_id": "int64"}), on="entity_id") if not vals.empty
                  else orders.iloc[0:0].assign(revenue=0.0))
        orders["revenue"] = pd.to_numeric(orders["revenue"], errors="coerce").fillna(0.0)
    else:
        orders = orders.iloc[0:0].assign(revenue=0.0)

    letters = _letter_utm(conn, schema)
    matched = []
    for entity, frame in (("deal", deals), ("order", orders)):
        if frame.empty or letters.empty:
            continue
        for letter_id, utm in letters.groupby("letter_id"):
            mask = np.ones(len(frame), dtype=bool)
            for code, value in zip(utm["code"], utm["value"]):
                mask &= frame[code].eq(value).to_numpy() if code in frame.columns else False
            if mask.any():
                matched.append({"letter_id": letter_id, "letter": utm["letter"].iloc[0], "entity": entity,
                                "count": int(mask.sum()), "revenue": float(frame.loc[mask, "revenue"].sum())})
    table = pd.DataFrame(matched, columns=empty.columns)
    figures = {"deals": int(len(deals)), "revenue": round(float(deals["revenue"].sum()), 2),
               "orders": int(len(orders)),
               "order_revenue": round(float(orders["revenue"].sum()), 2),
               "email_mediums": sorted(EMAIL_UTM_MEDIUMS)}
    return table, figures


def _letter_utm(conn: Connection, schema: BitrixSchema) -> pd.DataFrame:
    """(letter_id, letter, code, value) of every letter's UTM set, codes and values lower-case."""
    if not schema.has("b_sender_message_utm"):
        return pd.DataFrame(columns=["letter_id", "letter", "code", "value"])
    ch, mu = schema.table("b_sender_mailing_chain"), schema.table("b_sender_message_utm")
    message_id = cast(ch.c.MESSAGE_ID, Integer) if schema.dialect == "postgresql" else ch.c.MESSAGE_ID
    df = read_frame(conn, select(ch.c.ID.label("letter_id"), func.coalesce(ch.c.TITLE, cast(ch.c.ID, String)).label("letter"),
                              mu.c.CODE.label("code"), mu.c.VALUE.label("value"))
                 .select_from(ch.join(mu, mu.c.MESSAGE_ID == message_id))
                 .where(ch.c.MESSAGE_CODE == codes.EMAIL_MESSAGE_CODE))
    if df.empty:
        return pd.DataFrame(columns=["letter_id", "letter", "code", "value"])
    df["code"] = df["code"].astype(str).str.strip().str.lower()
    df["value"] = df["value"].astype(str).str.strip().str.lower()
    return df[df["code"].isin(codes.UTM_CODES)]
