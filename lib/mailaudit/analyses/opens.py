"""Open Rate inflation: how much of the Open Rate is machine opens, and what people really opened.

Population: recipient rows of e-mail letters delivered (STATUS sent, ``codes.RecipientStatus.SENT``)
with DATE_SENT in the period. A row is *opened* when it has at least one b_sender_posting_read row (Bitrix writes a
read for every pixel load, and for a click without an earlier read).

Two routes to the mail client and the machine/human split:

* **access log** (best evidence): every pixel and click request, its User-Agent and IP, decoded to
  the recipient row. A row counts as a human open when it has a click or an open that is neither
  Apple's privacy proxy nor a security scanner (known signature, gateway network, or all hits of an
  ordinary client within ``opens.scanner_seconds`` of delivery).
* **database only**: the contact's mail client from b_sender_contact.AGENT and the address's
  provider (icloud.com, me.com, mac.com → Apple), and the delivery-to-read delays.

Estimators of the human open rate are computed side by side, each with a 95% interval from a
Poisson bootstrap that resamples contacts (a contact receives many postings, so rows are not
independent). Counting happens in SQL; the rows of the period are streamed in chunks ordered by
recipient id and reduced at once to per-contact, per-posting, per-month and per-client sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, and_, case, func, literal, or_, select
from sqlalchemy.engine import Connection

from mailaudit import emails
from mailaudit.analyses import mail_clients as mc
from mailaudit.bitrix import codes
from mailaudit.bitrix.queries import email_postings
from mailaudit.bitrix.schema import BitrixSchema
from mailaudit.period import Period
from mailaudit.sources.access_logs import CLICK, OPEN, ScanStats, iter_tracking_hits
from mailaudit.sources.db import read_chunks
from mailaudit.sources.sql import allow_memory_temp_tables, recipients_first

CLIENTS = ("apple", "gmail", "yahoo", "outlook", "thunderbird", "yandex", "rambler", "mail.ru",
           "android", "webmail", "scanner", "unknown")
"""Mail-client labels, in the order used for array codes."""
CLIENT_CODE = {name: i for i, name in enumerate(CLIENTS)}
APPLE = CLIENT_CODE["apple"]
UNKNOWN_CLIENT = CLIENT_CODE["unknown"]
SCANNER_CLIENT = CLIENT_CODE["scanner"]
HIT_CLASS_CODE = {name: i for i, name in enumerate(mc.HIT_CLASSES)}
KIND_CODE = {OPEN: 0, CLICK: 1}

PREFETCH_HORIZON_SECONDS = 86400
"""Timing mixture: machine fetches come within a day of sending (Apple's proxy within minutes, sometimes
hours, when the device wakes; gateways within seconds)."""
FASTEST_PERSON_SECONDS = 60
"""Timing mixture: a first read within a minute of sending is a machine's (a gateway scan), however
the scanner window is set."""
PREFETCH_SIGNATURE_SECONDS = 900
PREFETCH_SIGNATURE_SHARE = 0.25
"""Database route: a contact at least this share of whose delivered letters were first read within
PREFETCH_SIGNATURE_SECONDS of sending is behind a prefetching proxy (Apple) or gateway. People open
that fast a few times in a hundred; Apple's proxy does it for most letters."""
DELAY_BINS_SECONDS = np.array(
    [0, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
     4 * 86400, 7 * 86400, 14 * 86400, 30 * 86400], dtype=float)
"""Edges of the delivery-to-first-read delay histogram (seconds); the last bin is open-ended."""
N_BOOT = 200

# Per-row 0/1 features summed per contact, posting, month and client.
FEATURES = (
    "delivered",        # every row of the population
    "opened",           # at least one read row
    "clicked",          # at least one click row
    "human_click",      # a click that is not a scanner's (log) / not all clicks within scanner_seconds (db)
    "human_db",         # opened, and not every read within scanner_seconds of delivery
    "human_first",      # opened, first read after a minute and the scanner window (a person's, unless prefetched)
    "pixel_human",      # a person loaded the pixel (log: a human pixel hit; db: a human read before any click)
    "pixel_human_click",  # pixel_human and human_click: the click-to-open ratio of images-on readers
    "late_open",        # opened, first read later than PREFETCH_HORIZON_SECONDS after delivery
    "early_read",       # opened, first read within PREFETCH_SIGNATURE_SECONDS of delivery
    "logged",           # opened and seen in the access log (pixel or click hit)
    "human_log",        # logged, with a click or a non-proxy, non-scanner open
    "apple_proxy",      # seen in the access log loaded by Apple's privacy proxy
)


# --- access log -------------------------------------------------------------------------------

@dataclass
class LogEvidence:
    """Tracking hits aggregated per (recipient id, kind, hit class): the access-log route's input."""

    table: pd.DataFrame          # recipient_id, kind, hit_class, client, first, last, hits; sorted by recipient_id
    stats: ScanStats
    matched: np.ndarray | None = None   # per table row: joined to a delivered row of the period

    @property
    def recipient_ids(self) -> np.ndarray:
        return self.table["recipient_id"].to_numpy()


_KEY_SHIFT = 8   # key = recipient_id << 8 | kind << 7 | hit class << 4 | client


def aggregate_log_hits(paths: Iterable[str | Path], classifier: mc.MailClientClassifier,
                       chunk_hits: int = 500_000) -> LogEvidence:
    """Stream the logs' sender hits into per-recipient aggregates (first/last hit time in epoch
    seconds of server-local time, and the number of hits) per kind, hit class and client."""
    stats = ScanStats()
    parts: list[tuple[np.ndarray, ...]] = []
    keys: list[int] = []
    times: list[int] = []

    def flush() -> None:
        if keys:
            key, time = np.asarray(keys, dtype=np.int64), np.asarray(times, dtype=np.int64)
            parts.append(_reduce_hits(key, time, time, np.ones(len(key), np.int64)))
            keys.clear()
            times.clear()

    for hit in iter_tracking_hits(paths, stats):
        found = classifier.classify(hit.user_agent, hit.ip)
        keys.append((hit.recipient_id << _KEY_SHIFT) | (KIND_CODE[hit.kind] << 7)
                    | (HIT_CLASS_CODE[found.hit_class] << 4) | CLIENT_CODE.get(found.client, UNKNOWN_CLIENT))
        times.append(hit.timestamp)
        if len(keys) >= chunk_hits:
            flush()
            if len(parts) > 8:
                parts[:] = [_reduce_hits(*(np.concatenate(column) for column in zip(*parts)))]
    flush()
    if parts:
        key, first, last, hits = _reduce_hits(*(np.concatenate(column) for column in zip(*parts)))
    else:
        key = first = last = hits = np.zeros(0, np.int64)
    table = pd.DataFrame({
        "recipient_id": key >> _KEY_SHIFT,
        "kind": ((key >> 7) & 1).astype(np.int8),
        "hit_class": ((key >> 4) & 7).astype(np.int8),
        "client": (key & 15).astype(np.int8),
        "first": first, "last": last, "hits": hits.astype(np.int32),
    })
    return LogEvidence(table, stats, np.zeros(len(table), bool))


def _reduce_hits(key, first, last, hits):
    """Sorted unique keys with the minimum first, maximum last and summed hits of each."""
    order = np.argsort(key, kind="stable")
    key, first, last, hits = key[order], first[order], last[order], hits[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    if not len(key):
        return key, first, last, hits
    return (key[starts], np.minimum.reduceat(first, starts), np.maximum.reduceat(last, starts),
            np.add.reduceat(hits, starts))


def unmatched_hits(conn: Connection, schema: BitrixSchema, log: LogEvidence) -> dict:
    """Hits the period's delivered rows did not claim: tags of recipient ids that exist in no
    recipient row (orphans: deleted postings, another portal, forged), and hits of recipient rows
    outside the period or not delivered (counts of hits and of recipient ids)."""
    table = log.table[~log.matched]
    ids = np.unique(table["recipient_id"].to_numpy())
    rec = schema.table("b_sender_posting_recipient")
    existing: set[int] = set()
    for start in range(0, len(ids), 1000):
        chunk = [int(i) for i in ids[start:start + 1000]]
        for frame in read_chunks(conn, select(rec.c.ID).where(rec.c.ID.in_(chunk))):
            existing.update(int(i) for i in frame["ID"])
    orphan = ~table["recipient_id"].isin(existing)
    return {
        "orphan_recipient_hits": int(table.loc[orphan, "hits"].sum()),
        "orphan_recipients": int(table.loc[orphan, "recipient_id"].nunique()),
        "outside_period_hits": int(table.loc[~orphan, "hits"].sum()),
    }


def _log_features(rows: pd.DataFrame, sent: np.ndarray, log: LogEvidence,
                  scanner_seconds: float) -> dict[str, np.ndarray]:
    """Per-row access-log evidence for a chunk of recipient rows sorted by id."""
    n = len(rows)
    out = {
        "has_hit": np.zeros(n, bool), "human_open": np.zeros(n, bool), "human_click": np.zeros(n, bool),
        "apple_proxy": np.zeros(n, bool), "client": np.full(n, -1, np.int16),
    }
    ids = rows["ID"].to_numpy(np.int64)
    if n == 0 or log.table.empty:
        return out
    all_ids = log.recipient_ids
    lo, hi = np.searchsorted(all_ids, ids[0], "left"), np.searchsorted(all_ids, ids[-1], "right")
    hits = log.table.iloc[lo:hi]
    pos = np.searchsorted(ids, hits["recipient_id"].to_numpy())
    pos_ok = (pos < n)
    pos_ok[pos_ok] &= ids[pos[pos_ok]] == hits["recipient_id"].to_numpy()[pos_ok]
    hits, pos = hits[pos_ok], pos[pos_ok]
    if hits.empty:
        return out
    log.matched[lo:hi][pos_ok] = True
    row_sent = sent[pos]
    cls = hits["hit_class"].to_numpy()
    kind = hits["kind"].to_numpy()
    machine_class = np.isin(cls, [HIT_CLASS_CODE[c] for c in mc.MACHINE_CLASSES])
    timing_checked = np.isin(cls, [HIT_CLASS_CODE[c] for c in mc.TIMING_CHECKED_CLASSES])
    # an ordinary client whose every hit came within scanner_seconds of delivery is a gateway scanner
    within = (hits["last"].to_numpy() - row_sent) <= scanner_seconds
    human = ~machine_class & ~(timing_checked & within)
    np.logical_or.at(out["has_hit"], pos, True)
    np.logical_or.at(out["human_open"], pos, human & (kind == KIND_CODE[OPEN]))
    np.logical_or.at(out["human_click"], pos, human & (kind == KIND_CODE[CLICK]))
    np.logical_or.at(out["apple_proxy"], pos, cls == HIT_CLASS_CODE[mc.APPLE_PROXY])
    # the row's client: the client with most hits, machine proxies included (Apple proxy -> apple)
    client = hits["client"].to_numpy()
    weight = np.where(client == SCANNER_CLIENT, 0, hits["hits"].to_numpy())
    order = np.lexsort((-weight, pos))
    first_of_row = np.ones(len(order), bool)
    first_of_row[1:] = pos[order][1:] != pos[order][:-1]
    sel = order[first_of_row & (weight[order] > 0)]
    out["client"][pos[sel]] = client[sel]
    return out


# --- database ---------------------------------------------------------------------------------

PROVIDER_CLIENT = {"apple": "apple", "gmail": "gmail", "yandex": "yandex", "mail.ru": "mail.ru",
                   "yahoo": "yahoo", "rambler": "rambler", "microsoft": "outlook"}
"""Mailbox provider -> the client its users most likely read in (only a label of last resort)."""


def _provider_label(address_column):
    """SQL CASE: the mailbox provider of the address (emails.PROVIDER_DOMAINS), else NULL."""
    lowered = func.lower(address_column)
    return case(*[(or_(*[lowered.like(f"%@{d}") for d in domains]), literal(label))
                  for label, domains in emails.PROVIDER_DOMAINS.items() if label in PROVIDER_CLIENT],
                else_=None)


def _first_and_last(events, event: str, period: Period):
    """Subquery per recipient (``rid``) of its first and last ``event`` (read or click) since the period start."""
    return (select(events.c.RECIPIENT_ID.label("rid"),
                   func.min(events.c.DATE_INSERT, type_=DateTime()).label(f"first_{event}"),
                   func.max(events.c.DATE_INSERT, type_=DateTime()).label(f"last_{event}"))
            .where(events.c.DATE_INSERT >= period.start_dt)
            .group_by(events.c.RECIPIENT_ID).subquery(f"{event}s"))


def delivered_rows_statement(schema: BitrixSchema, period: Period):
    """Every delivered recipient row of the period with its contact's client evidence and its
    read/click first and last times; ordered by recipient id (for the log lookup)."""
    rec = schema.table("b_sender_posting_recipient")
    contact = schema.table("b_sender_contact")
    read = schema.table("b_sender_posting_read")
    reads = _first_and_last(read, "read", period)
    columns = [rec.c.ID, rec.c.POSTING_ID, rec.c.DATE_SENT, reads.c.first_read, reads.c.last_read]
    joined = rec.outerjoin(reads, reads.c.rid == rec.c.ID)
    if schema.has("b_sender_posting_click"):
        click = schema.table("b_sender_posting_click")
        clicks = _first_and_last(click, "click", period)
        joined = joined.outerjoin(clicks, clicks.c.rid == rec.c.ID)
        columns += [clicks.c.first_click, clicks.c.last_click]
    contact_columns = schema.columns("b_sender_contact")
    if schema.layout == "legacy":
        joined = joined.outerjoin(contact, func.lower(contact.c.EMAIL) == func.lower(rec.c.EMAIL))
        columns += [contact.c.ID.label("CONTACT_ID"), _provider_label(rec.c.EMAIL).label("provider")]
    else:
        joined = joined.outerjoin(contact, contact.c.ID == rec.c.CONTACT_ID)
        columns += [rec.c.CONTACT_ID, _provider_label(contact.c.CODE).label("provider")]
    columns.append(contact.c.AGENT if "AGENT" in contact_columns else literal(None).label("AGENT"))
    return recipients_first(
        select(*columns).select_from(joined)
        .where(and_(rec.c.STATUS == codes.RecipientStatus.SENT,
                    rec.c.DATE_SENT >= period.start_dt,
                    rec.c.DATE_SENT < period.end_exclusive,
                    rec.c.POSTING_ID.in_(email_postings(schema))))
        .order_by(rec.c.ID))


def _epoch_seconds(values: pd.Series) -> np.ndarray:
    """Naive datetimes (or their text, as SQLite returns them) -> float epoch seconds, NaN when absent."""
    stamps = pd.to_datetime(values, errors="coerce")
    seconds = stamps.astype("datetime64[s]").astype("int64").astype(float)
    seconds[stamps.isna().to_numpy()] = np.nan
    return seconds.to_numpy() if isinstance(seconds, pd.Series) else seconds


def _database_client(agent: pd.Series, provider: pd.Series) -> np.ndarray:
    """Contact's client from the database: an Apple address -> apple; else the client of AGENT (the
    User-Agent of its latest read as Bitrix recognised it; iPhone/iPad -> apple). Apple's privacy
    proxy is not recognised by Bitrix (AGENT stays 0), so the provider only decides for Apple domains."""
    agent_codes = pd.to_numeric(agent, errors="coerce").fillna(int(codes.MailAgent.UNKNOWN)).astype(int)
    by_agent = agent_codes.map({int(k): CLIENT_CODE[v] for k, v in codes.MAIL_AGENT_CLIENT.items()})
    by_agent = by_agent.fillna(UNKNOWN_CLIENT).astype(np.int16).to_numpy()
    apple_address = (provider == "apple").to_numpy()
    return np.where(apple_address, APPLE, by_agent).astype(np.int16)


# --- streaming reduction ----------------------------------------------------------------------

GROUPS = ("prefetch", "reference", "unknown")
"""Contact groups. prefetch: opens may be Apple's proxy, so a person's open cannot be seen (access log:
the proxy loaded their pixel; database: Apple address or AGENT iPhone/iPad). reference: an identified
mail client without prefetch (access log: its User-Agent; database: AGENT). unknown: no client
evidence (access log: never seen or an unrecognised User-Agent, opens still classified hit by hit;
database: AGENT 0, which is also what Bitrix records for Apple's proxy)."""
PREFETCH, REFERENCE, UNKNOWN_GROUP = 0, 1, 2
PREDICTED = 3
"""Not a group of contacts: sums of a random draw of comparison contacts as many as the prefetch
group, used to impute the prefetch group's opens (exclusion) with their sampling variation."""


def _database_group(client: np.ndarray) -> np.ndarray:
    return np.where(client == APPLE, PREFETCH,
                    np.where((client == UNKNOWN_CLIENT) | (client == SCANNER_CLIENT), UNKNOWN_GROUP, REFERENCE))


@dataclass
class _Sums:
    """Running sums while the rows stream: per contact (features, database client), per contact and
    access-log client (rows), per (posting, group) and (month, group), and delay histograms."""

    contact_parts: list = field(default_factory=list)
    contact_client_parts: list = field(default_factory=list)
    posting_parts: list = field(default_factory=list)
    month_parts: list = field(default_factory=list)
    delay_counts: np.ndarray = field(
        default_factory=lambda: np.zeros((len(CLIENTS), len(DELAY_BINS_SECONDS)), np.int64))

    def add(self, frame: pd.DataFrame, log_client: np.ndarray) -> None:
        by_contact = frame.groupby("contact", sort=False).agg(
            {**{c: "sum" for c in FEATURES}, "db_client": "max", "provider_client": "max"})
        self.contact_parts.append(by_contact.astype(np.int32))
        seen = log_client >= 0
        if seen.any():
            pairs = pd.DataFrame({"contact": frame["contact"].to_numpy()[seen], "client": log_client[seen]})
            self.contact_client_parts.append(pairs.groupby(["contact", "client"], sort=False).size())
        self.posting_parts.append(frame.groupby(["posting", "group"], sort=False)[list(FEATURES)].sum())
        self.month_parts.append(frame.groupby(["month", "group"], sort=False)[list(FEATURES)].sum())
        if len(self.contact_parts) >= 8:
            self.contact_parts = [self.contacts()]
        if len(self.contact_client_parts) >= 8:
            self.contact_client_parts = [self.contact_clients()]

    def contacts(self) -> pd.DataFrame:
        frame = pd.concat(self.contact_parts)
        agg = {c: "sum" for c in FEATURES}
        agg.update(db_client="max", provider_client="max")
        return frame.groupby(level=0, sort=False).agg(agg).astype(np.int32)

    def contact_clients(self) -> pd.Series:
        """Rows per (contact, access-log client)."""
        if not self.contact_client_parts:
            return pd.Series(dtype=np.int64, index=pd.MultiIndex.from_arrays([[], []], names=["contact", "client"]))
        return pd.concat(self.contact_client_parts).groupby(level=[0, 1], sort=False).sum()


def _row_features(rows: pd.DataFrame, log: LogEvidence | None, scanner_seconds: float,
                  sums: _Sums) -> None:
    """Turn a chunk of recipient rows into 0/1 features and add them to the running sums."""
    n = len(rows)
    sent = _epoch_seconds(rows["DATE_SENT"])
    first_read = _epoch_seconds(rows["first_read"]) - sent
    last_read = _epoch_seconds(rows["last_read"]) - sent
    opened = ~np.isnan(first_read)
    if "last_click" in rows:
        last_click = _epoch_seconds(rows["last_click"]) - sent
        first_click = _epoch_seconds(rows["first_click"]) - sent
        clicked = ~np.isnan(last_click)
        click_after_window = clicked & (last_click > scanner_seconds)
        # Bitrix writes a read row at the click when no pixel was loaded before (images off)
        read_before_click = ~clicked | (first_read < first_click)
    else:
        clicked = click_after_window = np.zeros(n, bool)
        read_before_click = np.ones(n, bool)
    db_client = _database_client(rows["AGENT"], rows["provider"])
    f = {
        "delivered": np.ones(n, bool),
        "opened": opened,
        "clicked": clicked,
        "human_db": opened & (last_read > scanner_seconds),
        "human_first": opened & (first_read > max(scanner_seconds, FASTEST_PERSON_SECONDS)),
        "late_open": opened & (first_read > PREFETCH_HORIZON_SECONDS),
        "early_read": opened & (first_read <= PREFETCH_SIGNATURE_SECONDS),
    }
    if log is not None:
        ev = _log_features(rows, sent, log, scanner_seconds)
        f["logged"] = opened & ev["has_hit"]
        f["human_log"] = f["logged"] & (ev["human_open"] | ev["human_click"])
        f["apple_proxy"] = ev["apple_proxy"]
        # a click the log did not see is judged by its timing, as in the database route
        f["human_click"] = clicked & np.where(ev["has_hit"], ev["human_click"], click_after_window)
        f["pixel_human"] = f["logged"] & ev["human_open"]
        log_client = ev["client"]
    else:
        f["logged"] = f["human_log"] = f["apple_proxy"] = np.zeros(n, bool)
        f["human_click"] = click_after_window
        f["pixel_human"] = f["human_db"] & read_before_click
        log_client = np.full(n, -1, np.int16)
    f["pixel_human_click"] = f["pixel_human"] & f["human_click"]
    row_client = np.where(log_client >= 0, log_client, db_client).astype(np.int16)
    frame = pd.DataFrame({name: f[name].astype(np.int32) for name in FEATURES})
    frame["contact"] = pd.to_numeric(rows["CONTACT_ID"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
    frame["posting"] = pd.to_numeric(rows["POSTING_ID"]).astype(np.int64).to_numpy()
    frame["month"] = pd.to_datetime(rows["DATE_SENT"], errors="coerce").dt.strftime("%Y-%m").to_numpy()
    frame["group"] = (np.where(f["apple_proxy"], PREFETCH, _database_group(row_client)) if log is not None
                      else np.where(f["early_read"], PREFETCH, REFERENCE))
    frame["db_client"] = db_client
    frame["provider_client"] = (rows["provider"].map(PROVIDER_CLIENT).map(CLIENT_CODE)
                                .fillna(UNKNOWN_CLIENT).astype(np.int16).to_numpy())
    bins = np.searchsorted(DELAY_BINS_SECONDS, np.maximum(first_read[opened], 0), "right") - 1
    np.add.at(sums.delay_counts, (row_client[opened], bins), 1)
    sums.add(frame, log_client)


def _contact_cells(contacts: pd.DataFrame, contact_clients: pd.Series,
                   evidence: str) -> tuple[np.ndarray, np.ndarray]:
    """Each contact's client (code) and group. Client: the access-log client most of its rows were
    seen with (scanners aside), else its database client (AGENT, Apple address), else its address's
    provider. Group: prefetch when Apple's proxy loaded its pixel (access log) or when most of its
    letters were first read within minutes of sending (database: the prefetch signature; AGENT and
    the provider cannot tell, Bitrix records Apple's proxy as AGENT 0); else reference (access log:
    identified client; unknown otherwise)."""
    db_client = contacts["db_client"].to_numpy().astype(np.int16)
    client = np.where(db_client != UNKNOWN_CLIENT, db_client, contacts["provider_client"].to_numpy()).astype(np.int16)
    seen = np.zeros(len(contacts), bool)
    if len(contact_clients):
        best = (contact_clients.rename("rows").reset_index()
                .sort_values(["contact", "rows"], ascending=[True, False])
                .drop_duplicates("contact"))
        pos = contacts.index.get_indexer(best["contact"])
        ok = pos >= 0
        client[pos[ok]] = best["client"].to_numpy()[ok]
        seen[pos[ok]] = True
    if evidence == "access_log":
        group = np.where(contacts["apple_proxy"].to_numpy() > 0, PREFETCH,
                         np.where(seen, _database_group(client), UNKNOWN_GROUP))
    else:
        prefetched = contacts["early_read"].to_numpy() >= PREFETCH_SIGNATURE_SHARE * contacts["delivered"].to_numpy()
        group = np.where(prefetched, PREFETCH, REFERENCE)
        # Bitrix records Apple's proxy as AGENT 0: a prefetching contact with no other client is Apple's
        client = np.where(prefetched & (db_client == UNKNOWN_CLIENT), APPLE, client).astype(np.int16)
    return client, group


# --- estimators -------------------------------------------------------------------------------

class CellSums:
    """Feature sums by (client, group) cell. Each sum is an array (one value per bootstrap replicate,
    per posting, per month…) so an estimator is computed for all of them at once."""

    def __init__(self, sums: np.ndarray, clients: Iterable[int] | None = None):
        self.sums = sums                    # shape (..., n_clients, n_groups, n_features)
        self.clients = None if clients is None else list(clients)

    def restrict(self, clients: Iterable[int]) -> "CellSums":
        return CellSums(self.sums, clients)

    def __call__(self, feature: str, groups: Iterable[int] = (PREFETCH, REFERENCE, UNKNOWN_GROUP),
                 whole: bool = False) -> np.ndarray:
        """Sum of `feature` over the given groups; over this view's clients unless `whole`."""
        cells = self.sums[..., list(groups), FEATURES.index(feature)]
        if self.clients is not None and not whole:
            cells = cells[..., self.clients, :]
        return cells.sum(axis=(-2, -1))


def _ratio(num, den):
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


ALL_GROUPS = (PREFETCH, REFERENCE, UNKNOWN_GROUP)
OBSERVED = (REFERENCE, UNKNOWN_GROUP)


def seen_human_openers(s: CellSums, evidence: str, groups=ALL_GROUPS, whole: bool = False) -> np.ndarray:
    """People's opens that the evidence shows directly (a count of rows). Access log: rows with a click
    or a non-proxy, non-scanner open, scaled by opened/logged for openers the log missed; database:
    opened rows with a read after the scanner window."""
    if evidence == "access_log":
        logged = s("logged", groups, whole)
        coverage = _ratio(s("opened", groups, whole), logged)
        return np.where(logged > 0, s("human_log", groups, whole) * coverage, 0.0)
    return s("human_db", groups, whole).astype(float)


def _ctor(s: CellSums, evidence: str, groups) -> np.ndarray:
    """Click-to-open ratio (fraction) of people whose opens are seen: human clickers / human openers."""
    return _ratio(s("human_click", groups, whole=True), seen_human_openers(s, evidence, groups, whole=True))


def pixel_ctor(s: CellSums, groups) -> np.ndarray:
    """Click-to-open ratio of readers who loaded the pixel (fraction): their human clickers / them.
    Apple's proxy loads every image, so this (not the ratio with images-off clickers counted as
    openers) is the one that carries over to Apple Mail users."""
    return _ratio(s("pixel_human_click", groups, whole=True), s("pixel_human", groups, whole=True))


def classified_rate(s: CellSums, evidence: str, reference_ctor: np.ndarray | None = None) -> np.ndarray:
    """Human open rate from classified opens (fraction of delivered rows): people's opens as seen for
    contacts outside the prefetch group, plus, for the prefetch group, their human clicks ÷ the
    click-to-open ratio of the others' pixel-loading readers (their own opens hide behind the proxy),
    or ÷ `reference_ctor` when given. Access log: opens classified hit by hit; database: reads after
    the scanner window."""
    others = _comparison_groups(evidence)
    seen = seen_human_openers(s, evidence, others)
    ctor = pixel_ctor(s, others) if reference_ctor is None else reference_ctor
    hidden = _ratio(s("human_click", (PREFETCH,)), ctor)
    hidden = np.where(s("delivered", (PREFETCH,)) > 0, hidden, 0.0)
    return _ratio(seen + hidden, s("delivered"))


def _comparison_groups(evidence: str) -> tuple[int, ...]:
    """Contacts whose opens are people's: on the access-log route every contact the proxy did not
    fetch for (each hit is classified); on the database route only identified non-Apple clients."""
    return OBSERVED if evidence == "access_log" else (REFERENCE,)


def exclusion_rate(s: CellSums, evidence: str) -> np.ndarray:
    """Exclusion (fraction of delivered rows): people's opens as seen outside the prefetch group, plus
    the prefetch group's rows times the others' open rate. Apple's proxy loads every image, so that
    rate counts the others' images-off readers too: pixel-loading openers ÷ (1 − the share of their
    clickers who loaded no pixel)."""
    others = _comparison_groups(evidence)
    images_on = _ratio(s("pixel_human_click", others, whole=True), s("human_click", others, whole=True))
    images_on = np.where(np.isfinite(images_on) & (images_on > 0), images_on, 1.0)
    rate = _ratio(s("pixel_human", (PREDICTED,), whole=True) / images_on, s("delivered", (PREDICTED,), whole=True))
    return _ratio(seen_human_openers(s, evidence, others) + rate * s("delivered", (PREFETCH,)),
                  s("delivered"))


def click_anchored_rate(s: CellSums, evidence: str) -> np.ndarray:
    """Human clicks ÷ the click-to-open ratio of the identified clients without prefetch (fraction of
    delivered rows). The prefetch group's clicks are divided by the ratio of pixel-loading readers:
    Apple's proxy loads every image, so none of those people reads with images off, and the ratio that
    counts images-off clickers as openers would understate their opens."""
    others = (REFERENCE, UNKNOWN_GROUP)
    seen = np.where(s("delivered", others) > 0,
                    _ratio(s("human_click", others), _ctor(s, evidence, (REFERENCE,))), 0.0)
    hidden = np.where(s("delivered", (PREFETCH,)) > 0,
                      _ratio(s("human_click", (PREFETCH,)), pixel_ctor(s, (REFERENCE,))), 0.0)
    return _ratio(seen + hidden, s("delivered"))


def timing_rate(s: CellSums, evidence: str) -> np.ndarray:
    """Timing mixture on the delivery-to-first-read delay (fraction of delivered rows).

    First reads after the horizon (a day) are people's; ``late_share`` (the share of people's first
    opens that come that late, measured outside the prefetch group) scales them up to all people among
    the letters no machine fetched first. The early first reads beyond those people's are machine
    fetches; the letters they mask are assumed to be opened at the rate of the others.
    """
    groups = _comparison_groups(evidence)
    late_share = _ratio(s("late_open", groups, whole=True), s("human_first", groups, whole=True))
    people = _ratio(s("late_open"), late_share)
    machine_first = s("opened") - s("late_open") - people * (1 - late_share)
    return _ratio(people, s("delivered") - np.maximum(machine_first, 0))


def headline_rate(s: CellSums, evidence: str) -> np.ndarray:
    return classified_rate(s, evidence)


ASSUMPTIONS = {
    "access_log": (
        "Each pixel and click request in the web-server log is classified: Apple's privacy proxy (bare "
        "Mozilla/5.0) and security scanners (known signatures, gateway networks, or every hit within the "
        "scanner window of delivery) are machines; a click or any other open is a person. For contacts "
        "whose pixel Apple's proxy loads, a person's open is hidden: their clicks ÷ the click-to-open "
        "ratio of the other contacts estimate it."),
    "database": (
        "Contacts most of whose letters are first read within "
        f"{PREFETCH_SIGNATURE_SECONDS // 60} minutes of sending are behind Apple's prefetching proxy (or a "
        "gateway); the other contacts' reads after the scanner window are people's. For the prefetch "
        "group, a person's open is hidden: their clicks ÷ the click-to-open ratio of the others' "
        "pixel-loading readers estimate it."),
    "exclusion": (
        "The open rate of the contacts outside the prefetch group (access log: Apple's proxy never "
        "fetched for them; database: no prefetch signature), counting their images-off readers (Apple's "
        "proxy loads every image), applied to the prefetch group. Assumes Apple Mail users open as often "
        "as the others."),
    "click_anchored": (
        "Human click rate of all delivered rows (clicks within the scanner window removed) ÷ the "
        "click-to-open ratio of the contacts without prefetch (access log: identified clients); for the "
        "prefetch group, the ratio of readers who loaded images, since Apple's proxy loads every image. "
        "Assumes the chance that an opener clicks does not depend on the mail client."),
    "timing_mixture": (
        "Delivery-to-first-read delays are a mixture of machine fetches, all within a day of sending, and "
        "people, whose delays are shaped like those of the contacts outside the prefetch group (first reads "
        "within a minute are gateway scans). First reads later than a day, scaled by the share of people's "
        "first opens that come that late, count the people among the letters a machine did not fetch "
        "first. Assumes no machine fetches later than a day, people open with the same delays whatever "
        "their client, and letters a machine fetched first are opened at the others' rate."),
}


# --- bootstrap --------------------------------------------------------------------------------

def contact_bootstrap_sums(features: np.ndarray, cell: np.ndarray, n_cells: int, n_boot: int = N_BOOT,
                           seed: int = 0, predicted_cell: np.ndarray | None = None,
                           predicted_rate: float = 0.0, batch: int = 50_000) -> np.ndarray:
    """Poisson bootstrap over contacts: in each replicate every contact is drawn w ~ Poisson(1) times
    and its feature sums are added to its cell. A contact with a ``predicted_cell`` (>= 0) is also
    drawn Poisson(predicted_rate * w) times into that cell: a new group of such contacts, drawn from
    the resampled ones. Returns shape (n_boot, n_cells, n_features)."""
    rng = np.random.default_rng(seed)
    if predicted_cell is None:
        predicted_cell = np.full(len(cell), -1)
    order = np.argsort(cell, kind="stable")
    features, cell, predicted_cell = features[order].astype(np.float32), cell[order], predicted_cell[order]
    bounds = np.searchsorted(cell, np.arange(n_cells + 1))
    out = np.zeros((n_boot, n_cells, features.shape[1]))
    for code in range(n_cells):
        for start in range(bounds[code], bounds[code + 1], batch):
            stop = min(start + batch, bounds[code + 1])
            weights = rng.poisson(1.0, size=(n_boot, stop - start)).astype(np.float32)
            out[:, code, :] += weights @ features[start:stop]
            target = predicted_cell[start:stop]
            for other in np.unique(target[target >= 0]):
                mask = target == other
                drawn = rng.poisson(predicted_rate * weights[:, mask]).astype(np.float32)
                out[:, other, :] += drawn @ features[start:stop][mask]
    return out


def _interval(values: np.ndarray) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if len(finite) < 0.9 * len(values) or len(finite) == 0:
        return None
    return [float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975))]


def _value(x) -> float | None:
    x = float(np.asarray(x))
    return x if np.isfinite(x) else None


# --- the analysis -----------------------------------------------------------------------------

@dataclass
class OpensResult:
    """The opens figures for summary.json and the tidy tables behind the views."""

    figures: dict
    estimators: pd.DataFrame     # estimator, human_open_rate, ci_low, ci_high, assumption
    by_client: pd.DataFrame      # client, contacts, delivered, opened, raw/human open rate, inflation_pp
    by_posting: pd.DataFrame     # posting, title, date, delivered, raw/human open rate, inflation_pp, ranks
    by_month: pd.DataFrame       # month, delivered, raw/human open rate, inflation_pp, prefetch share
    delays: pd.DataFrame         # client, delay bin, first reads
    log_stats: dict | None
    notes: list[str]


@dataclass
class ContactEvidence:
    """Every contact delivered to in the period, reduced to what the estimators need: its feature
    sums, its mail client and its group (prefetch, reference, unknown). Segment reports reuse it to
    estimate human opens per segment."""

    evidence: str                # "access_log" or "database"
    contacts: pd.DataFrame       # index: contact id (-1: recipients without a contact); FEATURES columns
    client: np.ndarray           # per contact, a CLIENTS code
    group: np.ndarray            # per contact, PREFETCH, REFERENCE or UNKNOWN_GROUP
    sums: _Sums
    log: LogEvidence | None
    log_stats: dict | None
    scanner_seconds: float
    notes: list[str]
    _overall_ctor: dict = field(default_factory=dict, repr=False)

    @property
    def features(self) -> np.ndarray:
        return self.contacts[list(FEATURES)].to_numpy()

    def overall_pixel_ctor(self, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Click-to-open ratio of all contacts' pixel-loading readers outside the prefetch group:
        (point estimate, one value per contact-bootstrap replicate), computed once per (n_boot, seed)."""
        if (n_boot, seed) not in self._overall_ctor:
            slots, others = len(GROUPS), _comparison_groups(self.evidence)
            point = np.zeros((slots, len(FEATURES)))
            np.add.at(point, self.group, self.features)
            boot = contact_bootstrap_sums(self.features, self.group, slots, n_boot, seed)
            self._overall_ctor[(n_boot, seed)] = (pixel_ctor(CellSums(point[None]), others),
                                                  pixel_ctor(CellSums(boot[:, None]), others))
        return self._overall_ctor[(n_boot, seed)]


def classify_contacts(conn: Connection, schema: BitrixSchema, period: Period, opens_params: dict,
                      access_logs: Iterable[str | Path] = (), chunksize: int = 200_000) -> ContactEvidence:
    """Stream the period's delivered rows (and the access logs, when given) into per-contact
    features, mail clients and groups: the access-log route when logs are given, else the database.

    ``opens_params``: ``scanner_seconds`` (hits of an ordinary client all within this many seconds of
    delivery are a security scanner) and ``apple_ranges`` (optional Apple egress CSV).
    """
    notes: list[str] = []
    scanner_seconds = float(opens_params.get("scanner_seconds", 10))
    access_logs = list(access_logs or ())
    log = None
    if access_logs:
        ranges = opens_params.get("apple_ranges")
        classifier = mc.MailClientClassifier(mc.IpRanges.from_apple_csv(ranges) if ranges else None)
        log = aggregate_log_hits(access_logs, classifier)
        if log.table.empty:
            notes.append("The access logs hold no decodable sender pixel or click hit: the database route is used.")
            log_stats, log = log.stats.as_dict(), None
        else:
            log_stats = log.stats.as_dict()
    else:
        log_stats = None
    evidence = "access_log" if log is not None else "database"

    sums = _Sums()
    allow_memory_temp_tables(conn, schema.dialect)
    for rows in read_chunks(conn, delivered_rows_statement(schema, period), chunksize):
        _row_features(rows, log, scanner_seconds, sums)
    if not sums.contact_parts:
        empty = pd.DataFrame(columns=list(FEATURES))
        return ContactEvidence(evidence, empty, np.zeros(0, np.int16), np.zeros(0, np.int64), sums, log,
                               log_stats, scanner_seconds, notes)
    contacts = sums.contacts()
    client, group = _contact_cells(contacts, sums.contact_clients(), evidence)
    return ContactEvidence(evidence, contacts, client, group, sums, log, log_stats, scanner_seconds, notes)


def analyse_opens(conn: Connection, schema: BitrixSchema, period: Period, opens_params: dict,
                  access_logs: Iterable[str | Path] = (), n_boot: int = N_BOOT, seed: int = 0,
                  chunksize: int = 200_000) -> OpensResult:
    """Open Rate inflation for the period (see classify_contacts for the parameters)."""
    ev = classify_contacts(conn, schema, period, opens_params, access_logs, chunksize)
    evidence, log, log_stats, notes, sums = ev.evidence, ev.log, ev.log_stats, ev.notes, ev.sums
    scanner_seconds = ev.scanner_seconds
    if ev.contacts.empty:
        notes.append("No delivered recipient rows in the period: every opens figure is null.")
        return _empty_result(evidence, log_stats, notes)

    client, group = ev.client, ev.group
    slots = len(GROUPS) + 1          # + PREDICTED: a draw of comparison contacts the prefetch group's size
    cell = client.astype(np.int64) * slots + group
    feature_matrix = ev.features
    point = np.zeros((len(CLIENTS) * slots, len(FEATURES)))
    np.add.at(point, cell, feature_matrix)
    point = point.reshape(len(CLIENTS), slots, len(FEATURES))
    comparison = np.isin(group, _comparison_groups(evidence))
    size_ratio = float((group == PREFETCH).sum()) / max(int(comparison.sum()), 1)
    point[:, PREDICTED] = size_ratio * point[:, list(_comparison_groups(evidence))].sum(axis=1)
    # the prefetch group's own people are a sample too: its imputed opens vary like a group of that
    # many comparison contacts (a predictive draw, so the interval covers the realised rate)
    predicted_cell = np.where(comparison, client.astype(np.int64) * slots + PREDICTED, -1)
    boot = contact_bootstrap_sums(feature_matrix, cell, len(CLIENTS) * slots, n_boot, seed,
                                  predicted_cell, size_ratio).reshape(n_boot, len(CLIENTS), slots, len(FEATURES))
    s_point, s_boot = CellSums(point), CellSums(boot)

    delivered = int(s_point("delivered"))
    opened = int(s_point("opened"))
    raw = opened / delivered
    human = _value(headline_rate(s_point, evidence))
    human_ci = _interval(headline_rate(s_boot, evidence))

    headline = evidence
    estimator_functions = {evidence: classified_rate, "exclusion": exclusion_rate,
                           "click_anchored": click_anchored_rate, "timing_mixture": timing_rate}
    estimators, estimator_rows = {}, []
    for name, fn in estimator_functions.items():
        value, ci = _value(fn(s_point, evidence)), _interval(fn(s_boot, evidence))
        estimators[name] = {"human_open_rate": value, "ci": ci, "assumption": ASSUMPTIONS[name]}
        estimator_rows.append({"estimator": name, "human_open_rate": value,
                               "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                               "headline": name == headline, "assumption": ASSUMPTIONS[name]})
        if value is None:
            notes.append(f"Estimator {name} cannot be computed: its comparison group has no human "
                         "opens or clicks in the period.")

    by_client = _by_client(point, boot, client, evidence)
    figures = {
        "evidence": evidence,
        "delivered": delivered,
        "unique_opens": opened,
        "raw_open_rate": raw,
        "human_open_rate": human,
        "human_open_rate_ci": human_ci,
        "machine_open_share": None if human is None or opened == 0 else max(0.0, 1 - human / raw),
        "by_client": {
            row.client: {"delivered": int(row.delivered), "raw_open_rate": row.raw_open_rate,
                         "human_open_rate": row.human_open_rate, "inflation_pp": row.inflation_pp}
            for row in by_client.itertuples()
        },
        "estimators": estimators,
        "headline_estimator": headline,
        "apple_share": float(s_point.restrict([APPLE])("delivered") / delivered),
        "scanner_seconds": scanner_seconds,
    }
    if log is not None:
        log_stats.update(unmatched_hits(conn, schema, log))
        if log_stats["orphan_recipients"]:
            notes.append(f"{log_stats['orphan_recipient_hits']:,} access-log hits carry a tag of a recipient id "
                         "that exists in no recipient row (deleted postings, another portal, or forged): "
                         "counted, not used.")
    if log_stats is not None:
        figures["access_log"] = log_stats
        logged = int(s_point("logged"))
        figures["access_log"]["opened_rows_in_log_share"] = logged / opened if opened else None
        if opened and logged / opened < 0.9:
            notes.append(f"The access log covers only {logged / opened:.0%} of the opened rows of the "
                         "period: the human share is measured on those and applied to the rest.")
    values = [e["human_open_rate"] for e in estimators.values() if e["human_open_rate"] is not None]
    if values:
        figures["estimator_spread_pp"] = (max(values) - min(values)) * 100
    return OpensResult(
        figures=figures,
        estimators=pd.DataFrame(estimator_rows),
        by_client=by_client,
        by_posting=_by_period_unit(sums.posting_parts, "posting", evidence, conn, schema),
        by_month=_by_period_unit(sums.month_parts, "month", evidence, conn, schema),
        delays=_delay_table(sums.delay_counts),
        log_stats=log_stats,
        notes=notes,
    )


def _by_client(point: np.ndarray, boot: np.ndarray, client: np.ndarray, evidence: str) -> pd.DataFrame:
    """Per mail client (contact-level): delivered, raw and human open rate, inflation in points."""
    rows = []
    contacts_per_client = np.bincount(client, minlength=len(CLIENTS))
    for code, name in enumerate(CLIENTS):
        s_point, s_boot = CellSums(point, [code]), CellSums(boot, [code])
        delivered = int(s_point("delivered"))
        if delivered == 0 and name not in ("apple", "gmail"):
            continue
        raw = _value(_ratio(s_point("opened"), delivered))
        human = _value(headline_rate(s_point, evidence))
        ci = _interval(headline_rate(s_boot, evidence))
        rows.append({"client": name, "contacts": int(contacts_per_client[code]), "delivered": delivered,
                     "opened": int(s_point("opened")), "raw_open_rate": raw, "human_open_rate": human,
                     "human_open_rate_ci_low": ci[0] if ci else None,
                     "human_open_rate_ci_high": ci[1] if ci else None,
                     "inflation_pp": None if raw is None or human is None else (raw - human) * 100})
    return pd.DataFrame(rows)


MIN_SEGMENT_REFERENCE_CLICKS = 50
"""Per segment, the prefetch group's hidden opens are its clicks ÷ the click-to-open ratio of the
segment's own pixel-loading readers when those made at least this many clicks (a segment that clicks
more also opens more), else ÷ the ratio of all contacts (a segment of Apple addresses has too few
readers outside the prefetch group to measure its own)."""


def human_open_rates_by_segment(ev: ContactEvidence, members: pd.DataFrame, n_boot: int = N_BOOT,
                                seed: int = 0) -> pd.DataFrame:
    """The headline estimator per segment. `members`: (contact_id, segment) pairs, a contact in several
    segments counting in each. Returns segment, delivered, raw_open_rate, human_open_rate and its 95%
    interval (contact bootstrap), inflation_pp, prefetch_share and own_reference (whether the
    segment's own click-to-open ratio was used)."""
    columns = ["segment", "delivered", "raw_open_rate", "human_open_rate", "human_open_rate_ci",
               "inflation_pp", "prefetch_share", "own_reference"]
    members = members.assign(contact_id=pd.to_numeric(members["contact_id"], errors="coerce"))
    members = members.sort_values(["segment", "contact_id"], kind="stable")   # engines return rows in any order
    pos = ev.contacts.index.get_indexer(members["contact_id"])
    keep = pos >= 0
    if not keep.any():
        return pd.DataFrame(columns=columns)
    pos = pos[keep]
    labels, code = np.unique(members["segment"].to_numpy()[keep].astype(str), return_inverse=True)
    slots, n_features = len(GROUPS), len(FEATURES)
    features, cell = ev.features[pos], code * slots + ev.group[pos]
    point = np.zeros((len(labels) * slots, n_features))
    np.add.at(point, cell, features)
    s_point = CellSums(point.reshape(len(labels), 1, slots, n_features))
    s_boot = CellSums(contact_bootstrap_sums(features, cell, len(labels) * slots, n_boot, seed)
                      .reshape(n_boot, len(labels), 1, slots, n_features))
    others = _comparison_groups(ev.evidence)
    own = s_point("pixel_human_click", others, whole=True) >= MIN_SEGMENT_REFERENCE_CLICKS
    own_point, own_boot = pixel_ctor(s_point, others), pixel_ctor(s_boot, others)
    if own.all():
        reference_point, reference_boot = own_point, own_boot
    else:
        overall_point, overall_boot = ev.overall_pixel_ctor(n_boot, seed + 1)
        reference_point = np.where(own, own_point, overall_point)
        reference_boot = np.where(own, own_boot, overall_boot[:, None])
    human = classified_rate(s_point, ev.evidence, reference_point)
    human_boot = classified_rate(s_boot, ev.evidence, reference_boot)
    delivered = s_point("delivered")
    raw = _ratio(s_point("opened"), delivered)
    return pd.DataFrame({
        "segment": labels,
        "delivered": delivered.astype(np.int64),
        "raw_open_rate": raw,
        "human_open_rate": human,
        "human_open_rate_ci": [_interval(human_boot[:, j]) for j in range(len(labels))],
        "inflation_pp": (raw - human) * 100,
        "prefetch_share": _ratio(s_point("delivered", (PREFETCH,)), delivered),
        "own_reference": own,
    }, columns=columns)


def _by_period_unit(parts: list[pd.DataFrame], key: str, evidence: str, conn: Connection,
                    schema: BitrixSchema) -> pd.DataFrame:
    """Per posting or per month: delivered, raw and human open rate (same estimator as the headline,
    its click-to-open reference taken within the unit), inflation in points, prefetch share."""
    table = pd.concat(parts).groupby(level=[0, 1]).sum()
    units = table.index.get_level_values(0).unique()
    arr = np.zeros((len(units), 1, len(GROUPS), len(FEATURES)))
    unit_pos = {u: i for i, u in enumerate(units)}
    for (unit, grp), values in zip(table.index, table[list(FEATURES)].to_numpy()):
        arr[unit_pos[unit], 0, grp] = values
    s = CellSums(arr)
    delivered = s("delivered")
    frame = pd.DataFrame({
        key: units,
        "delivered": delivered.astype(int),
        "opened": s("opened").astype(int),
        "raw_open_rate": _ratio(s("opened"), delivered),
        "human_open_rate": headline_rate(s, evidence),
        "prefetch_share": _ratio(s("delivered", (PREFETCH,)), delivered),
    })
    frame["inflation_pp"] = (frame["raw_open_rate"] - frame["human_open_rate"]) * 100
    if key == "posting":
        frame = frame.merge(_posting_labels(conn, schema, list(units)), on="posting", how="left")
        frame = frame.sort_values("sent", ascending=False, na_position="last").reset_index(drop=True)
        frame["rank_raw"] = frame["raw_open_rate"].rank(ascending=False, method="min")
        frame["rank_human"] = frame["human_open_rate"].rank(ascending=False, method="min")
    else:
        frame = frame.sort_values(key).reset_index(drop=True)
    return frame


def _posting_labels(conn: Connection, schema: BitrixSchema, postings: list[int]) -> pd.DataFrame:
    """Posting id -> letter title and send date (one small query per 1000 postings)."""
    posting = schema.table("b_sender_posting")
    chain = schema.table("b_sender_mailing_chain")
    title = chain.c.TITLE if "TITLE" in chain.c else chain.c.SUBJECT
    frames = []
    for start in range(0, len(postings), 1000):
        ids = [int(p) for p in postings[start:start + 1000]]
        stmt = (select(posting.c.ID.label("posting"), title.label("title"),
                       chain.c.SUBJECT.label("subject"), posting.c.DATE_SENT.label("sent"))
                .select_from(posting.outerjoin(chain, chain.c.ID == posting.c.MAILING_CHAIN_ID))
                .where(posting.c.ID.in_(ids)))
        frames.extend(read_chunks(conn, stmt))
    labels = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["posting", "title", "subject", "sent"])
    labels["posting"] = labels["posting"].astype(np.int64)
    labels["sent"] = pd.to_datetime(labels["sent"], errors="coerce")
    labels["title"] = labels["title"].where(labels["title"].notna() & (labels["title"] != ""), labels["subject"])
    return labels.drop(columns="subject")


def _delay_table(counts: np.ndarray) -> pd.DataFrame:
    rows = []
    edges = list(DELAY_BINS_SECONDS) + [np.inf]
    for code, name in enumerate(CLIENTS):
        if counts[code].sum() == 0:
            continue
        for b in range(len(DELAY_BINS_SECONDS)):
            rows.append({"client": name, "delay_from_s": edges[b], "delay_to_s": edges[b + 1],
                         "first_reads": int(counts[code, b])})
    return pd.DataFrame(rows)


def _empty_result(evidence: str, log_stats: dict | None, notes: list[str]) -> OpensResult:
    figures = {"evidence": evidence, "delivered": 0, "unique_opens": 0, "raw_open_rate": None,
               "human_open_rate": None, "human_open_rate_ci": None, "machine_open_share": None,
               "by_client": {name: {"delivered": 0, "raw_open_rate": None, "human_open_rate": None,
                                    "inflation_pp": None} for name in ("apple", "gmail")},
               "estimators": {name: {"human_open_rate": None, "ci": None, "assumption": ASSUMPTIONS[name]}
                              for name in ASSUMPTIONS if name != "access_log" or evidence == name}}
    empty = pd.DataFrame()
    return OpensResult(figures, empty, empty, empty, empty, empty, log_stats, notes)


# --- words for the report ---------------------------------------------------------------------

def headline(result: OpensResult) -> str:
    f = result.figures
    if f.get("human_open_rate") is None:
        return "Open Rate inflation could not be estimated (see notes)."
    ci = f.get("human_open_rate_ci") or [None, None]
    interval = f" (95% interval {ci[0]:.1%}–{ci[1]:.1%})" if ci[0] is not None else ""
    source = "the web server's access log" if f["evidence"] == "access_log" else "the database alone"
    return (f"Open Rate {f['raw_open_rate']:.1%}, of which people about {f['human_open_rate']:.1%}{interval}: "
            f"{f['machine_open_share']:.0%} of opens are machine opens (estimated from {source}).")


def findings(result: OpensResult) -> list[tuple[str, str, str]]:
    """(severity, title, detail) for the report, from the figures."""
    f, out = result.figures, []
    if f.get("human_open_rate") is None:
        return out
    inflation = (f["raw_open_rate"] - f["human_open_rate"]) * 100
    severity = "high" if inflation >= 10 else "medium" if inflation >= 4 else "low"
    out.append((severity, f"Open Rate overstates people's opens by {inflation:.1f} percentage points",
                f"{f['unique_opens']:,} of {f['delivered']:,} delivered rows have a read; an estimated "
                f"{f['machine_open_share']:.0%} of those opens are machine opens (Apple's privacy proxy, "
                "security scanners). Compare mailings and segments on the human open rate or on clicks."))
    apple = f["by_client"].get("apple") or {}
    if apple.get("inflation_pp") is not None and apple.get("delivered"):
        out.append(("medium" if apple["inflation_pp"] >= 20 else "low",
                    f"Apple Mail contacts: Open Rate {apple['raw_open_rate']:.0%}, people about "
                    f"{apple['human_open_rate']:.0%}",
                    f"{f['apple_share']:.0%} of delivered rows go to Apple Mail contacts; their pixel is "
                    "loaded by Apple's proxy whether or not they read."))
    spread = f.get("estimator_spread_pp")
    if spread is not None and spread >= 5:
        out.append(("info", f"The estimators disagree by {spread:.1f} points",
                    "Each rests on a different assumption (see the table); the headline uses "
                    f"{f['headline_estimator'].replace('_', ' ')}."))
    if not result.by_posting.empty and {"rank_raw", "rank_human"} <= set(result.by_posting.columns):
        last = result.by_posting.head(15)
        moved = int((last["raw_open_rate"].rank(ascending=False, method="first")
                     != last["human_open_rate"].rank(ascending=False, method="first")).sum())
        if moved:
            out.append(("info", f"{moved} of the last {len(last)} mailings change rank once machine opens are removed",
                        "A letter that looked best by Open Rate may only have gone to more Apple Mail users."))
    return out


def summary_table(result: OpensResult) -> pd.DataFrame:
    """The headline figures as a two-column table of formatted text."""
    f = result.figures
    ci = f.get("human_open_rate_ci") or [None, None]
    def pct(x):
        return "—" if x is None else f"{x:.1%}"

    rows = [
        ("delivered letters (recipient rows sent OK)", f"{f['delivered']:,}"),
        ("opened letters (≥ 1 read row)", f"{f['unique_opens']:,}"),
        ("Open Rate as Bitrix counts it", pct(f["raw_open_rate"])),
        (f"human open rate ({f.get('headline_estimator', '').replace('_', ' ')})", pct(f["human_open_rate"])),
        ("human open rate, 95% interval", f"{pct(ci[0])} – {pct(ci[1])}"),
        ("machine opens among opens", pct(f["machine_open_share"])),
        ("letters to Apple Mail contacts", pct(f.get("apple_share"))),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"]).set_index("figure")


def log_quality_table(result: OpensResult) -> pd.DataFrame:
    labels = {
        "files": "log files read", "lines": "lines", "unparsed_lines": "tracking lines in an unknown format",
        "tracking_lines": "requests to the pixel or click endpoints", "sender_opens": "campaign pixel hits",
        "sender_clicks": "campaign click hits", "crm_hits": "CRM one-to-one mail hits (not campaigns)",
        "other_module_hits": "hits of other modules", "garbage_tags": "tags that decode to no recipient",
        "failed_requests": "failed requests (HTTP ≥ 400)",
        "orphan_recipient_hits": "hits whose tag names a recipient that does not exist",
        "orphan_recipients": "recipient ids named by such tags",
        "outside_period_hits": "hits of letters sent outside the period (or not delivered)",
        "opened_rows_in_log_share": "opened letters of the period seen in the log (fraction)",
    }
    stats = result.log_stats or {}
    return pd.DataFrame([(labels.get(k, k), v) for k, v in stats.items()], columns=["what", "count"]).set_index("what")
