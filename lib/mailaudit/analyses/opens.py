"""Open Rate inflation: how much of the Open Rate is machine opens, and what people really opened.

Population: the model's delivered sends (``sends.delivered``: STATUS sent, e-mail letters) with
``sent_at`` in the period. A send is *opened* when it has at least one read (Bitrix writes a read for
every pixel load, and for a click without an earlier read).

Two routes to the mail client and the machine/human split:

* **access log** (best evidence): the snapshot's tracking hits, every pixel and click request with its
  User-Agent and IP, decoded to the send. A send counts as a human open when it has a click or an
  open that is neither Apple's privacy proxy nor a security scanner (known signature, gateway
  network, or all hits of an ordinary client within ``opens.scanner_seconds`` of delivery).
* **database only**: the send's mail client as the model defines it (AGENT, Apple addresses), the
  address's provider, and the delivery-to-read delays.

Estimators of the human open rate are computed side by side, each with a 95% interval from a
Poisson bootstrap that resamples contacts (a contact receives many postings, so sends are not
independent). Every send's 0/1 features are computed and summed in the snapshot's engine, per
contact, per posting, per month and per client; only those sums come to Python.
"""

from __future__ import annotations

import csv
import ipaddress
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from mailaudit.analyses import mail_clients as mc
from mailaudit.model import Model
from mailaudit.narrative.language import N_, _, ngettext, number, percent
from mailaudit.period import Period
from mailaudit.sources import access_logs
from mailaudit.sources.access_logs import CLICK

CLIENTS = ("apple", "gmail", "yahoo", "outlook", "thunderbird", "yandex", "rambler", "mail.ru",
           "android", "webmail", "scanner", "unknown")
"""Mail-client labels, in the order used for array codes."""
CLIENT_CODE = {name: i for i, name in enumerate(CLIENTS)}
APPLE = CLIENT_CODE["apple"]
UNKNOWN_CLIENT = CLIENT_CODE["unknown"]
SCANNER_CLIENT = CLIENT_CODE["scanner"]
HIT_CLASS_CODE = {name: i for i, name in enumerate(mc.HIT_CLASSES)}

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
PREFETCH_OPENED_SHARE = 0.75
PREFETCH_MIN_LETTERS = 2
"""Database route, the other prefetch signature: a contact whose AGENT names no other client, with at
least PREFETCH_MIN_LETTERS delivered letters, PREFETCH_OPENED_SHARE of them read before any click (a
pixel load, not the read row a click writes). Apple's proxy fetches nearly
every letter -- within minutes, or hours later when the device wakes -- so its delay cannot tell it;
that it reads (almost) everything can. A person who does the same is counted through their clicks, like
the proxy's users: less precise, and a little high when such readers also click more per open than the
others (benchmarks/worlds_accuracy.py measures it)."""
DELAY_BINS_SECONDS = np.array(
    [0, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
     4 * 86400, 7 * 86400, 14 * 86400, 30 * 86400], dtype=float)
"""Edges of the delivery-to-first-read delay histogram (seconds); the last bin is open-ended."""
N_BOOT = 200

PROVIDER_CLIENT = {"apple": "apple", "gmail": "gmail", "yandex": "yandex", "mail.ru": "mail.ru",
                   "yahoo": "yahoo", "rambler": "rambler", "microsoft": "outlook"}
"""Mailbox provider -> the client its users most likely read in (only a label of last resort)."""

GROUPS = ("prefetch", "reference", "unknown")
"""Contact groups. prefetch: opens may be Apple's proxy, so a person's open cannot be seen (access log:
the proxy loaded their pixel; database: the prefetch signature). reference: an identified mail client
without prefetch (access log: its User-Agent; database: every other contact). unknown: no client
evidence (access log: never seen or an unrecognised User-Agent, opens still classified hit by hit)."""
PREFETCH, REFERENCE, UNKNOWN_GROUP = 0, 1, 2
PREDICTED = 3
"""Not a group of contacts: sums of a random draw of comparison contacts as many as the prefetch
group, used to impute the prefetch group's opens (exclusion) with their sampling variation."""

# Per-send 0/1 features summed per contact, posting, month and client: name -> SQL over the send's
# delays in seconds after sending (first_read, last_read, first_click; NULL when none), its clicks and
# human_clicks, and on the access-log route its hits' verdicts (has_hit, hit_human_open, hit_human_click,
# hit_apple_proxy).
# A feature may use the ones before it.
FEATURES_SQL = {
    "delivered": "true",
    "opened": "first_read IS NOT NULL",
    "clicked": "clicks > 0",
    # opened, and not every read within scanner_seconds of delivery
    "human_db": "coalesce(last_read > $scanner_seconds, false)",
    # opened, first read after a minute and the scanner window (a person's, unless prefetched)
    "human_first": f"coalesce(first_read > greatest($scanner_seconds, {FASTEST_PERSON_SECONDS}), false)",
    # opened, first read later than PREFETCH_HORIZON_SECONDS after delivery
    "late_open": f"coalesce(first_read > {PREFETCH_HORIZON_SECONDS}, false)",
    # opened, first read within PREFETCH_SIGNATURE_SECONDS of delivery
    "early_read": f"coalesce(first_read <= {PREFETCH_SIGNATURE_SECONDS}, false)",
    # a person's click: the model's machine clicks (scanners in the access log, link bursts, clicks
    # faster than delivery, gateway-like contacts) left out
    "human_click": "human_clicks > 0",
    # read before any click: a pixel load, not the read row Bitrix writes at a click (the prefetch
    # signature counts these, so clicking does not make a contact look prefetched)
    "pixel_read": "opened AND (NOT clicked OR coalesce(first_read < first_click, false))",
    # a person's click and no read row: an images-off reader the data shows beyond the Open Rate
    "clicked_unread": "human_click AND NOT opened",
}
ROUTE_FEATURES_SQL = {
    "access_log": {
        "logged": "opened AND has_hit",                 # opened and seen in the access log
        "human_log": "logged AND (hit_human_open OR hit_human_click)",   # ... with a click or a person's open
        "apple_proxy": "hit_apple_proxy",               # Apple's privacy proxy loaded the pixel
        "pixel_human": "logged AND hit_human_open",     # a person loaded the pixel
    },
    "database": {
        "logged": "false",
        "human_log": "false",
        "apple_proxy": "false",
        # a person's read before any click (Bitrix writes a read at a click when no pixel was loaded)
        "pixel_human": "human_db AND (NOT clicked OR coalesce(first_read < first_click, false))",
    },
}
FEATURES_SQL_LAST = {"pixel_human_click": "pixel_human AND human_click"}   # images-on readers' click-to-open
FEATURES = tuple(FEATURES_SQL) + tuple(ROUTE_FEATURES_SQL["database"]) + tuple(FEATURES_SQL_LAST)

ROW_GROUP_SQL = {
    # the send's group for the per-posting and per-month views (contacts get theirs in _contact_cells)
    "access_log": (f"CASE WHEN apple_proxy OR row_client = {APPLE} THEN {PREFETCH} "
                   f"WHEN row_client IN ({UNKNOWN_CLIENT}, {SCANNER_CLIENT}) THEN {UNKNOWN_GROUP} ELSE {REFERENCE} END"),
    "database": "NULL::INTEGER",   # the contact's group, joined in _sums (the signature is a contact's)
}


def _code_sql(column: str, codes: dict[str, int], default: int) -> str:
    """SQL CASE turning a label column into its array code."""
    cases = " ".join(f"WHEN '{label}' THEN {code}" for label, code in codes.items())
    return f"CASE {column} {cases} ELSE {default} END"


def _delay_bin_sql(seconds: str) -> str:
    """SQL: the DELAY_BINS_SECONDS bin of a (non-negative) delay."""
    cases = " ".join(f"WHEN {seconds} >= {edge:g} THEN {i}" for i, edge in reversed(list(enumerate(DELAY_BINS_SECONDS))))
    return f"CASE {cases} END"


def _period_sends_sql() -> str:
    """The period's delivered sends with their delays (whole seconds after sending) and client codes."""
    def delay(column: str) -> str:
        return f"epoch(date_trunc('second', {column}))::BIGINT - sent"

    provider_client = {p: CLIENT_CODE[c] for p, c in PROVIDER_CLIENT.items()}
    return f"""
        SELECT recipient_id, posting_id, contact, month, db_client, provider_client, sent, clicks, human_clicks,
               {delay('first_read_at')} AS first_read, {delay('last_read_at')} AS last_read,
               {delay('first_click_at')} AS first_click
        FROM (SELECT *, coalesce(contact_id, -1) AS contact, strftime(sent_at, '%Y-%m') AS month,
                     {_code_sql('client', CLIENT_CODE, UNKNOWN_CLIENT)} AS db_client,
                     {_code_sql('provider', provider_client, UNKNOWN_CLIENT)} AS provider_client,
                     epoch(date_trunc('second', sent_at))::BIGINT AS sent
              FROM sends WHERE delivered AND sent_at >= $start AND sent_at < $end)"""


def _sends_sql(evidence: str) -> str:
    """Every delivered send of the period with its features, group, client and delay bin."""
    features = {**FEATURES_SQL, **ROUTE_FEATURES_SQL[evidence], **FEATURES_SQL_LAST}
    if evidence == "access_log":
        hits = ("coalesce(e.recipient_id IS NOT NULL, false) AS has_hit, coalesce(e.human_open, false) AS hit_human_open, "
                "coalesce(e.human_click, false) AS hit_human_click, coalesce(e.apple_proxy, false) AS hit_apple_proxy, "
                "e.client AS hit_client")
        joined = f"({_period_sends_sql()}) s LEFT JOIN _opens_hit_verdicts e USING (recipient_id)"
    else:
        hits, joined = "NULL::INTEGER AS hit_client", f"({_period_sends_sql()}) s"
    return f"""
        SELECT *, coalesce(hit_client, db_client) AS row_client, {ROW_GROUP_SQL[evidence]} AS grp,
               CASE WHEN opened THEN {_delay_bin_sql('greatest(first_read, 0)')} END AS delay_bin
        FROM (SELECT s.*, {hits}, {', '.join(f'{sql} AS {name}' for name, sql in features.items())}
              FROM {joined})"""


# --- access log: what loaded each pixel ------------------------------------------------------

IPV4_SQL_PATTERN = r"((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
"""A dotted IPv4 address as Python's ``ipaddress`` reads it; any other text is looked up one by one."""


@dataclass(frozen=True)
class IpEvidence:
    """The networks a hit's IP is checked against: Apple's relay egress ranges (``opens.apple_ranges``;
    None: not given) and the security gateways' (``mail_clients.GATEWAY_RANGES``). The classifier gets
    exactly these, so a hit's class depends on its IP only through membership in them."""

    apple: tuple[str, ...] | None
    gateway: tuple[str, ...] = tuple(mc.GATEWAY_RANGES)

    @classmethod
    def from_params(cls, opens_params: dict) -> "IpEvidence":
        path = opens_params.get("apple_ranges")
        if not path:
            return cls(None)
        with open(path, newline="", encoding="utf-8") as fh:   # Apple's egress-ip-ranges.csv: CIDR first
            return cls(tuple(row[0] for row in csv.reader(fh) if row and "/" in row[0]))

    def classifier(self) -> mc.MailClientClassifier:
        return mc.MailClientClassifier(None if self.apple is None else mc.IpRanges(self.apple),
                                       mc.IpRanges(self.gateway))


def _ipv4_spans(cidrs: Iterable[str]) -> pd.DataFrame:
    """Merged integer spans [lo, hi] of the IPv4 networks among `cidrs`."""
    spans = sorted((int(n.network_address), int(n.broadcast_address))
                   for n in (ipaddress.ip_network(c.strip(), strict=False) for c in cidrs) if n.version == 4)
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return pd.DataFrame(merged, columns=["lo", "hi"], dtype=np.int64)


PERIOD_SENT_SQL = """
    SELECT recipient_id, epoch(date_trunc('second', sent_at))::BIGINT AS sent
    FROM sends WHERE delivered AND sent_at >= $start AND sent_at < $end"""
"""The period's delivered sends and their send time (whole seconds)."""


def _network_flags(con, ip_evidence: IpEvidence, classifier: mc.MailClientClassifier) -> None:
    """Create the temporary table _opens_ips: each distinct address of the access log's hits, whether
    it lies in Apple's networks and in a gateway's (IPv4 by integer span; any other text in Python)."""
    con.register("_opens_apple_v4", _ipv4_spans(ip_evidence.apple or ()))
    con.register("_opens_gateway_v4", _ipv4_spans(ip_evidence.gateway))
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _opens_ips AS
            WITH ips AS (
                SELECT DISTINCT coalesce(ip, '') AS ip FROM tracking_hits
            ), numbered AS (
                SELECT ip, CASE WHEN regexp_full_match(ip, '{IPV4_SQL_PATTERN}') THEN
                           p[1]::BIGINT * 16777216 + p[2]::BIGINT * 65536 + p[3]::BIGINT * 256 + p[4]::BIGINT END AS v4
                FROM (SELECT ip, string_split(ip, '.') AS p FROM ips))
            SELECT n.ip, n.v4, coalesce(n.v4 <= a.hi, false) AS in_apple, coalesce(n.v4 <= g.hi, false) AS in_gateway
            FROM numbered n
            ASOF LEFT JOIN _opens_apple_v4 a ON n.v4 >= a.lo
            ASOF LEFT JOIN _opens_gateway_v4 g ON n.v4 >= g.lo""")
    finally:
        con.unregister("_opens_apple_v4")
        con.unregister("_opens_gateway_v4")
    others = con.execute("SELECT ip FROM _opens_ips WHERE v4 IS NULL").df()
    if len(others):
        apple_ranges, gateway_ranges = classifier.apple_ranges, classifier.gateway_ranges
        others["in_apple"] = np.array([apple_ranges is not None and ip in apple_ranges for ip in others["ip"]], bool)
        others["in_gateway"] = np.array([ip in gateway_ranges for ip in others["ip"]], bool)
        con.register("_opens_other_ips", others)
        try:
            con.execute("UPDATE _opens_ips i SET in_apple = o.in_apple, in_gateway = o.in_gateway "
                        "FROM _opens_other_ips o WHERE i.ip = o.ip")
        finally:
            con.unregister("_opens_other_ips")


TEMPORARY_TABLES = ("_opens_agents", "_opens_ips", "_opens_machine_ips", "_opens_hits", "_opens_hit_verdicts")
"""The analysis's working tables, on the model's connection only while classify_contacts runs."""


def _classify_hits(model: Model, period: Period, ip_evidence: IpEvidence, scanner_seconds: float) -> None:
    """Create the temporary table _opens_hit_verdicts: per send of the period seen in the access log,
    whether a person loaded its pixel (human_open) or clicked (human_click) by the hits' classes,
    whether Apple's proxy fetched it, and its client (the kind, class and client with most hits,
    scanners aside).

    The classifier runs once per distinct (User-Agent, in Apple's networks, in a gateway's network):
    a hit's class depends on its IP only through those networks, so one address stands for the rest."""
    con = model.con
    classifier = ip_evidence.classifier()
    _network_flags(con, ip_evidence, classifier)
    con.execute("CREATE OR REPLACE TEMP TABLE _opens_agents AS SELECT coalesce(user_agent, '') AS user_agent, "
                "(row_number() OVER (ORDER BY user_agent))::INTEGER AS agent FROM user_agents")
    # the addresses that made a send's machine clicks (the model's rules): a gateway that loads the pixel
    # and then clicks every link does both from one address, whatever its User-Agent or network
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _opens_machine_ips AS
        SELECT DISTINCT h.recipient_id, coalesce(h.ip, '') AS ip
        FROM machine_clicks m JOIN clicks k USING (click_id)
        JOIN tracking_hits h ON h.recipient_id = k.recipient_id AND h.kind = '{CLICK}'
             AND h.time BETWEEN k.clicked_at - INTERVAL 2 SECOND AND k.clicked_at + INTERVAL 2 SECOND""")
    # the period's hits per send, kind, User-Agent and network, with the last one's delay after sending
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _opens_hits AS
        SELECT h.recipient_id, h.kind = '{CLICK}' AS is_click, a.agent, i.in_apple, i.in_gateway,
               m.recipient_id IS NOT NULL AS machine_ip,
               max(epoch(h.time)::BIGINT - s.sent) AS last, count(*) AS hits
        FROM tracking_hits h
        JOIN ({PERIOD_SENT_SQL}) s USING (recipient_id)
        JOIN _opens_agents a ON a.user_agent = coalesce(h.user_agent, '')
        JOIN _opens_ips i ON i.ip = coalesce(h.ip, '')
        LEFT JOIN _opens_machine_ips m ON m.recipient_id = h.recipient_id AND m.ip = coalesce(h.ip, '')
        GROUP BY ALL""", {"start": period.start_dt, "end": period.end_exclusive})
    kinds = con.execute("""
        SELECT k.agent, k.in_apple, k.in_gateway, a.user_agent, n.ip
        FROM (SELECT DISTINCT agent, in_apple, in_gateway FROM _opens_hits) k
        JOIN _opens_agents a USING (agent)
        JOIN (SELECT in_apple, in_gateway, min(ip) AS ip FROM _opens_ips GROUP BY ALL) n USING (in_apple, in_gateway)
        """).df()
    found = [classifier.classify(ua, ip) for ua, ip in zip(kinds["user_agent"], kinds["ip"])]
    kinds["hit_class"] = np.array([HIT_CLASS_CODE[f.hit_class] for f in found], dtype=np.int16)
    kinds["client"] = np.array([CLIENT_CODE.get(f.client, UNKNOWN_CLIENT) for f in found], dtype=np.int16)
    machine = [HIT_CLASS_CODE[c] for c in mc.MACHINE_CLASSES]
    timing_checked = [HIT_CLASS_CODE[c] for c in mc.TIMING_CHECKED_CLASSES]
    # the send's client is that of its (kind, class, client) with most hits, ties to the lowest codes
    n_clients, n_keys = len(CLIENTS), 2 * len(mc.HIT_CLASSES) * len(CLIENTS)
    con.register("_opens_hit_kinds", kinds.drop(columns=["user_agent", "ip"]))
    try:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _opens_hit_verdicts AS
            WITH grouped AS (
                SELECT h.recipient_id, h.is_click, h.machine_ip, k.hit_class, k.client, max(h.last) AS last,
                       sum(h.hits) AS hits
                FROM _opens_hits h JOIN _opens_hit_kinds k USING (agent, in_apple, in_gateway)
                GROUP BY ALL
            ), judged AS (
                -- an ordinary client whose every hit came within scanner_seconds of delivery is a gateway
                -- scanner; so is any hit from the address that made one of the send's machine clicks
                SELECT *, NOT list_contains({machine}, hit_class) AND NOT machine_ip
                          AND NOT (list_contains({timing_checked}, hit_class) AND last <= $scanner_seconds) AS human
                FROM grouped
            )
            SELECT recipient_id,
                   bool_or(human AND NOT is_click) AS human_open,
                   bool_or(human AND is_click) AS human_click,
                   bool_or(hit_class = {HIT_CLASS_CODE[mc.APPLE_PROXY]}) AS apple_proxy,
                   arg_max(client, hits * {n_keys} - ((is_click::INTEGER * {len(mc.HIT_CLASSES)} + hit_class)
                                                      * {n_clients} + client))
                       FILTER (WHERE client <> {SCANNER_CLIENT}) AS client
            FROM judged GROUP BY recipient_id""", {"scanner_seconds": scanner_seconds})
    finally:
        con.unregister("_opens_hit_kinds")


def unmatched_hits(model: Model, period: Period) -> dict:
    """Hits the period's delivered sends did not claim: tags of recipient ids that exist in no recipient
    row of the snapshot (orphans: deleted postings, another portal, forged -- or, when the snapshot
    holds only the postings of its window, a letter outside it), and hits of recipient rows outside the
    period or not delivered (counts of hits and of recipient ids)."""
    (orphan_hits, orphans, outside), = model.con.execute("""
        WITH unclaimed AS (
            SELECT recipient_id, count(*) AS hits FROM tracking_hits
            WHERE recipient_id NOT IN (SELECT recipient_id FROM sends
                                       WHERE delivered AND sent_at >= $start AND sent_at < $end)
            GROUP BY recipient_id)
        SELECT coalesce(sum(hits) FILTER (WHERE r.ID IS NULL), 0), count(*) FILTER (WHERE r.ID IS NULL),
               coalesce(sum(hits) FILTER (WHERE r.ID IS NOT NULL), 0)
        FROM unclaimed u LEFT JOIN (SELECT DISTINCT ID FROM raw.b_sender_posting_recipient) r ON r.ID = u.recipient_id
        """, {"start": period.start_dt, "end": period.end_exclusive}).fetchall()
    return {"orphan_recipient_hits": int(orphan_hits), "orphan_recipients": int(orphans),
            "outside_period_hits": int(outside)}


# --- sums per contact, posting, month and client ----------------------------------------------

@dataclass
class _Sums:
    """Feature sums of the period's sends per (posting, group) and (month, group), and the first-read
    delay histogram per client."""

    posting: pd.DataFrame
    month: pd.DataFrame
    delay_counts: np.ndarray


def _database_group(client: np.ndarray) -> np.ndarray:
    return np.where(client == APPLE, PREFETCH,
                    np.where((client == UNKNOWN_CLIENT) | (client == SCANNER_CLIENT), UNKNOWN_GROUP, REFERENCE))


def _feature_sums() -> str:
    return ", ".join(f"coalesce(count_if({name}), 0)::INTEGER AS {name}" for name in FEATURES)


def _sums(model: Model, evidence: str, params: dict) -> tuple[pd.DataFrame, pd.Series, _Sums]:
    """Per contact (features, database and provider client), each contact's access-log client (the one most of its sends were seen with, ties to
    the first seen), and the per-unit sums."""
    query = lambda sql: model.con.execute(f"WITH s AS ({_sends_sql(evidence)}) {sql}", params).df()  # noqa: E731
    contacts = query(f"""SELECT contact, {_feature_sums()}, max(db_client)::SMALLINT AS db_client,
                                max(provider_client)::SMALLINT AS provider_client
                         FROM s GROUP BY contact ORDER BY contact""").set_index("contact")
    log_client = pd.Series(dtype=np.int16)
    if evidence == "access_log":
        log_client = query("""SELECT contact, hit_client AS client FROM s WHERE hit_client IS NOT NULL
                              GROUP BY contact, hit_client QUALIFY row_number() OVER (
                                  PARTITION BY contact ORDER BY count(*) DESC, min(recipient_id)) = 1
                              """).set_index("contact")["client"]
    if evidence == "database":   # a send's group is its contact's (the prefetch signature is a contact's)
        model.con.register("_opens_contact_groups", pd.DataFrame(
            {"contact": contacts.index.to_numpy(), "contact_grp": np.where(_database_prefetched(contacts), PREFETCH, REFERENCE)}))
        source = "(SELECT s.* REPLACE (g.contact_grp AS grp) FROM s JOIN _opens_contact_groups g USING (contact))"
    else:
        source = "s"
    try:
        units = query(f"""SELECT posting_id, month, grp, row_client, delay_bin, {_feature_sums()} FROM {source}
                          GROUP BY GROUPING SETS ((posting_id, grp), (month, grp), (row_client, delay_bin))""")
    finally:
        if evidence == "database":
            model.con.unregister("_opens_contact_groups")
    posting, month, delays = (units[units[key].notna()] for key in ("posting_id", "month", "delay_bin"))
    counts = np.zeros((len(CLIENTS), len(DELAY_BINS_SECONDS)), np.int64)
    counts[delays["row_client"].to_numpy(int), delays["delay_bin"].to_numpy(int)] = delays["delivered"].to_numpy()
    by_unit = {key: frame.astype({"grp": int}).rename(columns={column: key}).set_index([key, "grp"])
                    .sort_index()[list(FEATURES)]
               for key, column, frame in (("posting", "posting_id", posting), ("month", "month", month))}
    by_unit["posting"].index = by_unit["posting"].index.set_levels(
        by_unit["posting"].index.levels[0].astype(np.int64), level=0)
    return contacts, log_client, _Sums(by_unit["posting"], by_unit["month"], counts)


def _database_prefetched(contacts: pd.DataFrame) -> np.ndarray:
    """Database route: per contact, whether a machine fetches its letters -- an Apple address (read in
    Apple Mail, whose proxy fetches for nearly all its users), most letters first read within minutes
    of sending, or nearly all of them read before any click (see PREFETCH_SIGNATURE_SHARE,
    PREFETCH_OPENED_SHARE)."""
    delivered, db_client = contacts["delivered"].to_numpy(), contacts["db_client"].to_numpy()
    apple = db_client == APPLE
    early = contacts["early_read"].to_numpy() >= PREFETCH_SIGNATURE_SHARE * delivered
    # Bitrix records Apple's proxy as AGENT 0: a contact whose AGENT names another client reads there
    reads_all = ((delivered >= PREFETCH_MIN_LETTERS) & np.isin(db_client, (APPLE, UNKNOWN_CLIENT))
                 & (contacts["pixel_read"].to_numpy() >= PREFETCH_OPENED_SHARE * delivered))
    return apple | early | reads_all


def _contact_cells(contacts: pd.DataFrame, log_client: pd.Series,
                   evidence: str) -> tuple[np.ndarray, np.ndarray]:
    """Each contact's client (code) and group. Client: the access-log client most of its sends were
    seen with (scanners aside), else its database client (AGENT, Apple address), else its address's
    provider. Group: prefetch when Apple's proxy loaded its pixel (access log) or when most of its
    letters were first read within minutes of sending (database: the prefetch signature; AGENT and
    the provider cannot tell, Bitrix records Apple's proxy as AGENT 0); else reference (access log:
    identified client; unknown otherwise)."""
    db_client = contacts["db_client"].to_numpy().astype(np.int16)
    client = np.where(db_client != UNKNOWN_CLIENT, db_client, contacts["provider_client"].to_numpy()).astype(np.int16)
    pos = contacts.index.get_indexer(log_client.index)
    ok = pos >= 0
    client[pos[ok]] = log_client.to_numpy()[ok]
    seen = np.zeros(len(contacts), bool)
    seen[pos[ok]] = True
    if evidence == "access_log":
        group = np.where(contacts["apple_proxy"].to_numpy() > 0, PREFETCH,
                         np.where(seen, _database_group(client), UNKNOWN_GROUP))
    else:
        prefetched = _database_prefetched(contacts)
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


def ceiling_rate(s: CellSums) -> np.ndarray:
    """The most people can have opened (fraction of delivered rows): every opened row, plus the rows a
    person clicked with no read row at all (an images-off reader the data shows). No estimate may exceed
    what was recorded."""
    return _ratio(s("opened") + s("clicked_unread"), s("delivered"))


ESTIMATOR_FUNCTIONS = {"classified": classified_rate, "exclusion": exclusion_rate,
                       "click_anchored": click_anchored_rate, "timing_mixture": timing_rate}
"""Estimator name -> its function; "classified" is named after its evidence (access_log or database)."""


def estimator_rate(name: str, s: CellSums, evidence: str) -> np.ndarray:
    """The human open rate by estimator `name` (the evidence's name for the classified one), never above
    `ceiling_rate`."""
    value = ESTIMATOR_FUNCTIONS["classified" if name in ("access_log", "database") else name](s, evidence)
    return np.where(np.isnan(value), np.nan, np.minimum(value, ceiling_rate(s)))


def headline_rate(s: CellSums, evidence: str, estimator: str | None = None) -> np.ndarray:
    """The human open rate by the headline's estimator (default: the evidence's classified one)."""
    return estimator_rate(estimator or evidence, s, evidence)


ASSUMPTIONS = {
    "access_log": N_(
        "Each pixel and click request in the web-server log is classified: Apple's privacy proxy (bare "
        "Mozilla/5.0) and security scanners (known signatures, gateway networks, or every hit within the "
        "scanner window of delivery) are machines; a click or any other open is a person. For contacts "
        "whose pixel Apple's proxy loads, a person's open is hidden: their clicks ÷ the click-to-open "
        "ratio of the other contacts estimate it."),
    "database": N_(
        "Contacts most of whose letters are first read within {minutes} minutes of sending, Apple addresses, "
        "and contacts of no other known client {share} of whose letters (at least {letters}) are read before "
        "any click are behind Apple's prefetching proxy (or a gateway), however late it fetches; the other "
        "contacts' reads after the scanner window are people's. For the prefetch group, a person's open is "
        "hidden: their clicks ÷ the click-to-open ratio of the others' pixel-loading readers estimate it."),
    "exclusion": N_(
        "The open rate of the contacts outside the prefetch group (access log: Apple's proxy never "
        "fetched for them; database: no prefetch signature), counting their images-off readers (Apple's "
        "proxy loads every image), applied to the prefetch group. Assumes Apple Mail users open as often "
        "as the others."),
    "click_anchored": N_(
        "Human click rate of all delivered rows (machine clicks removed: scanners, link bursts, clicks "
        "within a minute of sending) ÷ the "
        "click-to-open ratio of the contacts without prefetch (access log: identified clients); for the "
        "prefetch group, the ratio of readers who loaded images, since Apple's proxy loads every image. "
        "Assumes the chance that an opener clicks does not depend on the mail client."),
    "timing_mixture": N_(
        "Delivery-to-first-read delays are a mixture of machine fetches, all within a day of sending, and "
        "people, whose delays are shaped like those of the contacts outside the prefetch group (first reads "
        "within a minute are gateway scans). First reads later than a day, scaled by the share of people's "
        "first opens that come that late, count the people among the letters a machine did not fetch "
        "first. Assumes no machine fetches later than a day, people open with the same delays whatever "
        "their client, and letters a machine fetched first are opened at the others' rate."),
}
"""Each estimator's assumption in words (a message: `assumption` translates it and fills in the numbers)."""


def assumption(name: str) -> str:
    """Estimator `name`'s assumption in the bundle's language."""
    return _(ASSUMPTIONS[name]).format(minutes=number(PREFETCH_SIGNATURE_SECONDS // 60),
                                       share=percent(PREFETCH_OPENED_SHARE, 0), letters=number(PREFETCH_MIN_LETTERS))


ESTIMATOR_SHORT_NAMES = {"access_log": N_("access log"), "database": N_("database"), "exclusion": N_("exclusion"),
                         "click_anchored": N_("click anchored"), "timing_mixture": N_("timing mixture")}
"""The estimators as the headline and the choice's reason name them."""


def short_name(name: str) -> str:
    return _(ESTIMATOR_SHORT_NAMES[name]) if name in ESTIMATOR_SHORT_NAMES else name.replace("_", " ")


# --- diagnostics and the headline's choice ----------------------------------------------------

EQUAL_CLICK_BAND = (0.8, 1.25)
"""Exclusion: the prefetch group's human click rate ÷ the others' must lie in this band (or its interval
include 1): people who click alike open alike; if they click differently, they open differently."""
CTOR_BAND = (0.6, 1 / 0.6)
"""Every estimator: the click-to-open ratio it implies (human clicks ÷ its human opens) ÷ that of the
people seen loading images must lie in this band: an estimate that makes people click far more or far
less often per open than the people whose opens are seen is not about those people."""
SPREAD_POINTS = 5.0
"""Estimators further apart than this (percentage points) make the headline give their range."""

SHORT_ASSUMPTIONS = {
    "access_log": N_("every pixel and click hit is classified as a machine's or a person's by the access log"),
    "database": N_("the contacts behind a prefetching proxy are known by their reads (within minutes, or of "
                   "nearly every letter), the others' reads are people's"),
    "exclusion": N_("contacts behind a prefetching proxy open as often as the others"),
    "click_anchored": N_("people click as often per open whatever their mail client"),
    "timing_mixture": N_("no machine fetches a letter later than a day after sending"),
}
"""Messages: translate with `_` where shown."""


@dataclass
class Check:
    """One diagnostic of an estimator's assumption: its measured value, whether it passed, and what it
    says in words."""

    name: str
    value: float | None
    passed: bool
    says: str

    def as_dict(self) -> dict:
        return {"check": self.name, "value": self.value, "passed": self.passed, "says": self.says}


def _band_check(name: str, point: float, boot: np.ndarray, band: tuple[float, float], says: str) -> Check:
    """A ratio that should be 1: passes when the point lies in `band` or its bootstrap interval holds 1
    (too few data to tell it from 1); unmeasurable: passes."""
    if not np.isfinite(point):
        return Check(name, None, True, _("{says}: not measurable here").format(says=says))
    ci = _interval(boot)
    inside = band[0] <= point <= band[1] or (ci is not None and ci[0] <= 1 <= ci[1])
    values = {"says": says, "value": number(point, 2), "band_low": number(band[0], 2), "band_high": number(band[1], 2)}
    if ci:
        values.update(low=number(ci[0], 2), high=number(ci[1], 2))
        text = (_("{says}: {value} (95% interval {low}–{high}), within {band_low}–{band_high}") if inside else
                _("{says}: {value} (95% interval {low}–{high}), outside {band_low}–{band_high}"))
    else:
        text = (_("{says}: {value}, within {band_low}–{band_high}") if inside else
                _("{says}: {value}, outside {band_low}–{band_high}"))
    return Check(name, float(point), bool(inside), text.format(**values))


def diagnose(name: str, s_point: CellSums, s_boot: CellSums, evidence: str, log_coverage: float | None) -> list[Check]:
    """The checks of estimator `name`'s assumptions, on the data."""
    fn = ESTIMATOR_FUNCTIONS["classified" if name in ("access_log", "database") else name]
    value, ceiling = float(fn(s_point, evidence)), float(ceiling_rate(s_point))
    others = _comparison_groups(evidence)
    checks = []
    if np.isfinite(value):
        within = value <= ceiling + 1e-12
        says = (_("its unbounded value {value} is within what was recorded ({ceiling}: rows with a read, plus rows "
                  "clicked without one)") if within else
                _("its unbounded value {value} exceeds what was recorded ({ceiling}: rows with a read, plus rows "
                  "clicked without one)"))
        checks.append(Check("ceiling", value, within, says.format(value=percent(value, 1), ceiling=percent(ceiling, 1))))
    implied = lambda s, v: _ratio(s("human_click"), v * s("delivered"))   # noqa: E731
    seen = lambda s: pixel_ctor(s, others)                                # noqa: E731
    checks.append(_band_check(
        "implied_click_to_open", float(_ratio(implied(s_point, value), seen(s_point))),
        _ratio(implied(s_boot, fn(s_boot, evidence)), seen(s_boot)), CTOR_BAND,
        _("the click-to-open ratio it implies ÷ that of the people seen loading images")))
    if name == "exclusion":
        rate = lambda s, g: _ratio(s("human_click", g), s("delivered", g))   # noqa: E731
        checks.append(_band_check(
            "prefetch_click_rate_ratio", float(_ratio(rate(s_point, (PREFETCH,)), rate(s_point, others))),
            _ratio(rate(s_boot, (PREFETCH,)), rate(s_boot, others)), EQUAL_CLICK_BAND,
            _("human click rate of the prefetch group ÷ the others'")))
    if name == "click_anchored" and evidence == "access_log":
        ratio = lambda s: _ratio(_ctor(s, evidence, (UNKNOWN_GROUP,)), _ctor(s, evidence, (REFERENCE,)))  # noqa: E731
        checks.append(_band_check("unknown_client_click_to_open_ratio", float(ratio(s_point)), ratio(s_boot),
                                  CTOR_BAND, _("click-to-open ratio of unidentified clients ÷ identified ones")))
    if name == "access_log" and log_coverage is not None:
        checks.append(Check("log_coverage", log_coverage, log_coverage >= 0.9,
                            _("the access log holds {share} of the opened rows (needs {needed})").format(
                                share=percent(log_coverage, 0), needed=percent(0.9, 0))))
    return checks


def choose_headline(estimators: dict) -> tuple[str, str]:
    """(estimator, reason): among the estimators with the fewest failed checks (none, when any passes
    them all), the one nearest the median of their estimates (distinct values: two estimators that
    reduce to the same formula count once), then the narrowest interval. An estimator whose checks
    fail never heads the report while one whose checks pass exists, and one outlier among passing
    estimators does not either. Ties go to the estimate whose implied click-to-open ratio is nearest that
    of the people seen loading images, then to the narrowest interval."""
    def width(e):
        return (e["ci"][1] - e["ci"][0]) if e["ci"] else np.inf

    def ctor_distance(e):
        ratio = next((c["value"] for c in e["diagnostics"] if c["check"] == "implied_click_to_open"), None)
        return abs(np.log(ratio)) if ratio else np.inf

    usable = {n: e for n, e in estimators.items() if e["human_open_rate"] is not None}
    if not usable:
        return next(iter(estimators)), _("no estimator could be computed")
    failed = {n: sum(not c["passed"] for c in e["diagnostics"]) for n, e in usable.items()}
    fewest = min(failed.values())
    candidates = [n for n in usable if failed[n] == fewest]
    middle = float(np.median(sorted({round(usable[n]["human_open_rate"], 12) for n in candidates})))
    best = min(candidates, key=lambda n: (round(abs(usable[n]["human_open_rate"] - middle), 12),
                                          ctor_distance(usable[n]), width(usable[n])))
    if fewest:
        reason = _("no estimator passes every check; it fails the fewest ({fewest}) and is nearest their "
                   "median").format(fewest=number(fewest))
    elif len(candidates) == 1:
        reason = _("it is the only estimator whose checks all pass")
    else:
        reason = _("its checks pass, as do those of {others}, and it is nearest the median of those "
                   "estimates").format(others=", ".join(short_name(n) for n in candidates if n != best))
    return best, reason


# --- bootstrap --------------------------------------------------------------------------------

def contact_bootstrap_sums(features: np.ndarray, cell: np.ndarray, n_cells: int, n_boot: int = N_BOOT,
                           seed: int = 0, predicted_cell: np.ndarray | None = None,
                           predicted_rate: float = 0.0) -> np.ndarray:
    """Poisson bootstrap over contacts: in each replicate every contact is drawn w ~ Poisson(1) times
    and its feature sums are added to its cell. A contact with a ``predicted_cell`` (>= 0) is also
    drawn Poisson(predicted_rate * w) times into that cell: a new group of such contacts, drawn from
    the resampled ones. Returns shape (n_boot, n_cells, n_features).

    Contacts alike in cell, predicted cell and feature sums are drawn together: n of them are drawn
    Poisson(n) times in all, and Poisson(predicted_rate × that) times into the predicted cell -- the
    distribution of the sums of their single draws, with one draw per kind of contact (a million
    contacts are a few tens of thousands of kinds)."""
    rng = np.random.default_rng(seed)
    if predicted_cell is None:
        predicted_cell = np.full(len(cell), -1)
    keys = pd.DataFrame(np.column_stack([cell, predicted_cell, features]).astype(np.int64)).add_prefix("k")
    kinds = keys.groupby(list(keys.columns), sort=True).size().reset_index(name="n").to_numpy()
    kind_cell, kind_predicted, counts = kinds[:, 0], kinds[:, 1], kinds[:, -1]
    kind_features = kinds[:, 2:-1].astype(np.float64)
    weights = rng.poisson(counts, size=(n_boot, len(kinds))).astype(np.float64)
    out = np.zeros((n_boot, n_cells, features.shape[1]))
    for code in np.unique(kind_cell):
        mask = kind_cell == code
        out[:, code, :] += weights[:, mask] @ kind_features[mask]
    for code in np.unique(kind_predicted[kind_predicted >= 0]):
        mask = kind_predicted == code
        out[:, code, :] += rng.poisson(predicted_rate * weights[:, mask]) @ kind_features[mask]
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
    contacts: pd.DataFrame       # index: contact id (-1: sends without a contact); FEATURES columns
    client: np.ndarray           # per contact, a CLIENTS code
    group: np.ndarray            # per contact, PREFETCH, REFERENCE or UNKNOWN_GROUP
    sums: _Sums
    log_stats: dict | None
    scanner_seconds: float
    notes: list[str]
    _cache: dict = field(default_factory=dict, repr=False)   # cached sums and estimates

    @property
    def features(self) -> np.ndarray:
        return self.contacts[list(FEATURES)].to_numpy()

    def estimates(self, n_boot: int = N_BOOT, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
        """Feature sums by (client, group) cell -- point (n_clients, slots, n_features) and per bootstrap
        replicate -- and every estimator's human open rate, interval, assumption and checks; computed
        once per (n_boot, seed)."""
        key = ("estimates", n_boot, seed)
        if key not in self._cache:
            evidence, client, group = self.evidence, self.client, self.group
            slots = len(GROUPS) + 1      # + PREDICTED: a draw of comparison contacts the prefetch group's size
            cell = client.astype(np.int64) * slots + group
            point = np.zeros((len(CLIENTS) * slots, len(FEATURES)))
            np.add.at(point, cell, self.features)
            point = point.reshape(len(CLIENTS), slots, len(FEATURES))
            comparison = np.isin(group, _comparison_groups(evidence))
            size_ratio = float((group == PREFETCH).sum()) / max(int(comparison.sum()), 1)
            point[:, PREDICTED] = size_ratio * point[:, list(_comparison_groups(evidence))].sum(axis=1)
            # the prefetch group's own people are a sample too: its imputed opens vary like a group of that
            # many comparison contacts (a predictive draw, so the interval covers the realised rate)
            predicted_cell = np.where(comparison, client.astype(np.int64) * slots + PREDICTED, -1)
            boot = contact_bootstrap_sums(self.features, cell, len(CLIENTS) * slots, n_boot, seed, predicted_cell,
                                          size_ratio).reshape(n_boot, len(CLIENTS), slots, len(FEATURES))
            s_point, s_boot = CellSums(point), CellSums(boot)
            opened = s_point("opened")
            log_coverage = float(s_point("logged") / opened) if evidence == "access_log" and opened else None
            estimators = {}
            ceiling = float(ceiling_rate(s_point))
            for name in (evidence, "exclusion", "click_anchored", "timing_mixture"):
                checks = diagnose(name, s_point, s_boot, evidence, log_coverage)
                ci = _interval(estimator_rate(name, s_boot, evidence))
                estimators[name] = {"human_open_rate": _value(estimator_rate(name, s_point, evidence)),
                                    "ci": None if ci is None else [min(ci[0], ceiling), min(ci[1], ceiling)],
                                    "assumption": assumption(name), "passes": all(c.passed for c in checks),
                                    "diagnostics": [c.as_dict() for c in checks]}
            self._cache[key] = (point, boot, estimators)
        return self._cache[key]

    def headline_estimator(self, n_boot: int = N_BOOT, seed: int = 0) -> str:
        """The estimator the open_inflation headline uses on this evidence (see choose_headline)."""
        return choose_headline(self.estimates(n_boot, seed)[2])[0]

    def overall_pixel_ctor(self, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Click-to-open ratio of all contacts' pixel-loading readers outside the prefetch group:
        (point estimate, one value per contact-bootstrap replicate), computed once per (n_boot, seed)."""
        if (n_boot, seed) not in self._cache:
            slots, others = len(GROUPS), _comparison_groups(self.evidence)
            point = np.zeros((slots, len(FEATURES)))
            np.add.at(point, self.group, self.features)
            boot = contact_bootstrap_sums(self.features, self.group, slots, n_boot, seed)
            self._cache[(n_boot, seed)] = (pixel_ctor(CellSums(point[None]), others),
                                                  pixel_ctor(CellSums(boot[:, None]), others))
        return self._cache[(n_boot, seed)]


def classify_contacts(model: Model, period: Period, opens_params: dict, *,
                      use_access_log: bool = True) -> ContactEvidence:
    """The period's delivered sends reduced to per-contact features, mail clients and groups: the
    access-log route when the snapshot holds access-log hits (and `use_access_log`), else the database.

    ``opens_params``: ``scanner_seconds`` (hits of an ordinary client all within this many seconds of
    delivery are a security scanner) and ``apple_ranges`` (optional Apple egress CSV).
    """
    notes: list[str] = []
    scanner_seconds = float(opens_params.get("scanner_seconds", 10))
    log_stats = dict(model.manifest["logs"]["access"]["stats"]) if use_access_log and model.has_access_log else None
    evidence = "database"
    if log_stats is not None:
        notes += access_log_notes(log_stats)
        if model.con.execute("SELECT count(*) FROM tracking_hits").fetchall()[0][0]:
            evidence = "access_log"
        else:
            notes.append(_("The access logs hold no decodable sender pixel or click hit: the database route is used "
                           "(evidence: database) and the log's share of opened letters is null."))
    params = {"start": period.start_dt, "end": period.end_exclusive, "scanner_seconds": scanner_seconds}
    try:
        if evidence == "access_log":
            _classify_hits(model, period, IpEvidence.from_params(opens_params), scanner_seconds)
            log_stats.update(unmatched_hits(model, period))
        contacts, log_client, sums = _sums(model, evidence, params)
    finally:
        for table in TEMPORARY_TABLES:
            model.con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    client, group = _contact_cells(contacts, log_client, evidence)
    return ContactEvidence(evidence, contacts, client, group, sums, log_stats, scanner_seconds, notes)


def analyse_opens(model: Model, period: Period, opens_params: dict, n_boot: int = N_BOOT, seed: int = 0, *,
                  use_access_log: bool = True, evidence: ContactEvidence | None = None) -> OpensResult:
    """Open Rate inflation for the period (see classify_contacts for the parameters; `evidence`: its result
    when it is already known)."""
    ev = evidence or classify_contacts(model, period, opens_params, use_access_log=use_access_log)
    evidence, log_stats, notes, sums = ev.evidence, ev.log_stats, ev.notes, ev.sums
    if ev.contacts.empty:
        notes.append(_("No delivered recipient rows in the period: every opens figure is null."))
        return _empty_result(evidence, log_stats, notes)

    client = ev.client
    point, boot, estimators = ev.estimates(n_boot, seed)
    s_point = CellSums(point)
    delivered = int(s_point("delivered"))
    opened = int(s_point("opened"))
    raw = opened / delivered
    ceiling = float(ceiling_rate(s_point))
    for name, e in estimators.items():
        if e["human_open_rate"] is None:
            notes.append(_("Estimator {name} cannot be computed: its comparison group has no human opens or clicks "
                           "in the period.").format(name=name))
    headline, reason = choose_headline(estimators)
    human, human_ci = estimators[headline]["human_open_rate"], estimators[headline]["ci"]
    values = [e["human_open_rate"] for e in estimators.values() if e["human_open_rate"] is not None]
    failing = {name: [c["says"] for c in e["diagnostics"] if not c["passed"]]
               for name, e in estimators.items() if not e["passes"]}
    choice = {"estimator": headline, "reason": reason,
              "range": [min(values), max(values)] if values else None,
              "spread_pp": (max(values) - min(values)) * 100 if values else None,
              "failing": failing}
    estimator_rows = [{"estimator": name, "human_open_rate": e["human_open_rate"],
                       "ci_low": e["ci"][0] if e["ci"] else None, "ci_high": e["ci"][1] if e["ci"] else None,
                       "headline": name == headline, "checks_pass": e["passes"],
                       "failed_checks": "; ".join(failing.get(name, [])), "assumption": e["assumption"]}
                      for name, e in estimators.items()]

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
        "headline_choice": choice,
        "human_open_ceiling": ceiling,
        "apple_share": float(s_point.restrict([APPLE])("delivered") / delivered),
        "scanner_seconds": ev.scanner_seconds,
    }
    if log_stats is not None:
        if log_stats.get("orphan_recipients"):
            window = model.manifest.get("window", {})
            n = int(log_stats["orphan_recipient_hits"])
            if window.get("postings", "all") == "all":
                note = ngettext("{hits} access-log hit carries a tag of a recipient id that exists in no recipient row "
                                "of the snapshot (deleted postings, another portal, or forged): counted, not used.",
                                "{hits} access-log hits carry a tag of a recipient id that exists in no recipient row "
                                "of the snapshot (deleted postings, another portal, or forged): counted, not used.",
                                n).format(hits=number(n))
            else:
                note = ngettext("{hits} access-log hit carries a tag of a recipient id that exists in no recipient row "
                                "of the snapshot (deleted postings, another portal, or forged, or a letter outside the "
                                "snapshot's window {start} to {end}): counted, not used.",
                                "{hits} access-log hits carry a tag of a recipient id that exists in no recipient row "
                                "of the snapshot (deleted postings, another portal, or forged, or a letter outside the "
                                "snapshot's window {start} to {end}): counted, not used.",
                                n).format(hits=number(n), start=window["start"], end=window["end"])
            notes.append(note)
        figures["access_log"] = log_stats
        logged = int(s_point("logged"))
        figures["access_log"]["opened_rows_in_log_share"] = (logged / opened if opened and evidence == "access_log"
                                                             else None)
        if opened and evidence == "access_log" and logged / opened < 0.9:
            notes.append(_("The access log covers only {share} of the opened rows of the period: the human share is "
                           "measured on those and applied to the rest.").format(share=percent(logged / opened, 0)))
    values = [e["human_open_rate"] for e in estimators.values() if e["human_open_rate"] is not None]
    if values:
        figures["estimator_spread_pp"] = (max(values) - min(values)) * 100
    return OpensResult(
        figures=figures,
        estimators=pd.DataFrame(estimator_rows),
        by_client=by_client,
        by_posting=_by_period_unit(sums.posting, "posting", evidence, model, headline),
        by_month=_by_period_unit(sums.month, "month", evidence, model, headline),
        delays=_delay_table(sums.delay_counts),
        log_stats=log_stats,
        notes=notes,
    )


def _by_client(point: np.ndarray, boot: np.ndarray, client: np.ndarray, evidence: str) -> pd.DataFrame:
    """Per mail client (contact-level): delivered, raw and human open rate, inflation in points. The
    human open rate is the route's classified estimator (capped at what was recorded): the only one
    that measures each client's own opens -- exclusion and timing borrow other clients' rates and
    delays, so within one client they have nothing to borrow from."""
    rows = []
    contacts_per_client = np.bincount(client, minlength=len(CLIENTS))
    # A label under which no letter of the period was opened names no mail client anyone was seen using:
    # its contacts were given their address's provider because they never opened. They are counted with
    # the unknown client, not shown as a client whose Open Rate is not overstated at all.
    unseen = [code for code, name in enumerate(CLIENTS)
              if name not in ("apple", "gmail", "unknown") and CellSums(point, [code])("delivered") > 0
              and CellSums(point, [code])("opened") == 0]
    for code, name in enumerate(CLIENTS):
        if code in unseen:
            continue
        codes = [code] + unseen if code == UNKNOWN_CLIENT else [code]
        s_point, s_boot = CellSums(point, codes), CellSums(boot, codes)
        delivered = int(s_point("delivered"))
        if delivered == 0 and name not in ("apple", "gmail"):
            continue
        raw = _value(_ratio(s_point("opened"), delivered))
        human = _value(headline_rate(s_point, evidence))
        ci = _interval(headline_rate(s_boot, evidence))
        rows.append({"client": name, "contacts": int(contacts_per_client[codes].sum()), "delivered": delivered,
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
                                seed: int = 0, estimator: str | None = None) -> pd.DataFrame:
    """The open_inflation headline's estimator per segment (`estimator`: that one by default, see
    ContactEvidence.headline_estimator), capped like it at what was recorded. `members`: (contact_id,
    segment) pairs, a contact in several segments counting in each. Returns segment, delivered,
    raw_open_rate, human_open_rate and its 95% interval (contact bootstrap), inflation_pp,
    prefetch_share, own_reference (whether the segment's own click-to-open ratio was used: classified
    estimator) and estimator (the one used: the headline's, or the classified one where the headline's
    needs comparison contacts the segment does not have)."""
    columns = ["segment", "delivered", "raw_open_rate", "human_open_rate", "human_open_rate_ci",
               "inflation_pp", "prefetch_share", "own_reference", "estimator"]
    estimator = estimator or ev.headline_estimator()
    members = members.assign(contact_id=pd.to_numeric(members["contact_id"], errors="coerce"))
    members = members.sort_values(["segment", "contact_id"], kind="stable")   # engines return rows in any order
    pos = ev.contacts.index.get_indexer(members["contact_id"])
    keep = pos >= 0
    if not keep.any():
        return pd.DataFrame(columns=columns)
    pos = pos[keep]
    labels, code = np.unique(members["segment"].to_numpy()[keep].astype(str), return_inverse=True)
    slots, n_features = len(GROUPS) + 1, len(FEATURES)
    features, cell = ev.features[pos], code * slots + ev.group[pos]
    point = np.zeros((len(labels) * slots, n_features))
    np.add.at(point, cell, features)
    point = point.reshape(len(labels), 1, slots, n_features)
    boot = contact_bootstrap_sums(features, cell, len(labels) * slots, n_boot, seed).reshape(
        n_boot, len(labels), 1, slots, n_features)
    others = _comparison_groups(ev.evidence)
    for sums in (point, boot):   # exclusion's open rate of the others: the segment's comparison contacts
        sums[..., PREDICTED, :] = sums[..., list(others), :].sum(axis=-2)
    s_point, s_boot = CellSums(point), CellSums(boot)
    own = s_point("pixel_human_click", others, whole=True) >= MIN_SEGMENT_REFERENCE_CLICKS
    own_point, own_boot = pixel_ctor(s_point, others), pixel_ctor(s_boot, others)
    if own.all():
        reference_point, reference_boot = own_point, own_boot
    else:
        overall_point, overall_boot = ev.overall_pixel_ctor(n_boot, seed + 1)
        reference_point = np.where(own, own_point, overall_point)
        reference_boot = np.where(own, own_boot, overall_boot[:, None])
    human = np.minimum(classified_rate(s_point, ev.evidence, reference_point), ceiling_rate(s_point))
    human_boot = np.minimum(classified_rate(s_boot, ev.evidence, reference_boot), ceiling_rate(s_boot))
    used = np.full(len(labels), ev.evidence, dtype=object)
    if estimator not in ("access_log", "database"):
        # exclusion and timing borrow the segment's comparison contacts' rates and delays: a segment
        # without them (all Apple addresses, say) keeps the classified estimate
        other, other_boot = estimator_rate(estimator, s_point, ev.evidence), estimator_rate(estimator, s_boot, ev.evidence)
        ok = np.isfinite(other) & (np.isfinite(other_boot).mean(axis=0) >= 0.9)
        human, human_boot = np.where(ok, other, human), np.where(ok, other_boot, human_boot)
        own = own & ~ok
        used[ok] = estimator
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
        "estimator": used,
    }, columns=columns)


def _by_period_unit(table: pd.DataFrame, key: str, evidence: str, model: Model, estimator: str) -> pd.DataFrame:
    """Per posting or per month: delivered, raw and human open rate (same estimator as the headline,
    its click-to-open reference taken within the unit), inflation in points, prefetch share."""
    units = table.index.get_level_values(0).unique()
    arr = np.zeros((len(units), 1, len(GROUPS) + 1, len(FEATURES)))
    unit_pos = {u: i for i, u in enumerate(units)}
    for (unit, grp), values in zip(table.index, table[list(FEATURES)].to_numpy()):
        arr[unit_pos[unit], 0, grp] = values
    arr[..., PREDICTED, :] = arr[..., list(_comparison_groups(evidence)), :].sum(axis=-2)   # exclusion's rate
    s = CellSums(arr)
    delivered = s("delivered")
    frame = pd.DataFrame({
        key: units,
        "delivered": delivered.astype(int),
        "opened": s("opened").astype(int),
        "raw_open_rate": _ratio(s("opened"), delivered),
        "human_open_rate": headline_rate(s, evidence, estimator),
        "prefetch_share": _ratio(s("delivered", (PREFETCH,)), delivered),
    })
    frame["inflation_pp"] = (frame["raw_open_rate"] - frame["human_open_rate"]) * 100
    if key == "posting":
        frame = frame.merge(_posting_labels(model, list(units)), on="posting", how="left")
        frame = frame.sort_values("sent", ascending=False, na_position="last").reset_index(drop=True)
        frame["rank_raw"] = frame["raw_open_rate"].rank(ascending=False, method="min")
        frame["rank_human"] = frame["human_open_rate"].rank(ascending=False, method="min")
    else:
        frame = frame.sort_values(key).reset_index(drop=True)
    return frame


def _posting_labels(model: Model, postings: list[int]) -> pd.DataFrame:
    """Posting id -> its letter's title and the posting's send date (DATE_SENT)."""
    labels = model.sql("SELECT p.posting_id AS posting, l.title, p.finished_at AS sent FROM postings p "
                       "LEFT JOIN letters l USING (letter_id) WHERE p.posting_id IN (SELECT unnest($ids))",
                       {"ids": [int(p) for p in postings]})
    labels["posting"] = labels["posting"].astype(np.int64)
    labels["sent"] = pd.to_datetime(labels["sent"], errors="coerce")
    return labels


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
               "estimators": {name: {"human_open_rate": None, "ci": None, "assumption": assumption(name)}
                              for name in ASSUMPTIONS if name != "access_log" or evidence == name}}
    empty = pd.DataFrame()
    return OpensResult(figures, empty, empty, empty, empty, empty, log_stats, notes)


# --- words for the report ---------------------------------------------------------------------

def headline(result: OpensResult) -> str:
    """The report's one line for the index (reader text, in the bundle's language)."""
    f = result.figures
    if f.get("human_open_rate") is None:
        return _("Open Rate inflation could not be estimated (see notes).")
    ci = f.get("human_open_rate_ci") or [None, None]
    interval = (" " + _("(95% interval {low}–{high})").format(low=percent(ci[0], 1), high=percent(ci[1], 1))
                if ci[0] is not None else "")
    source = _("the web server's access log") if f["evidence"] == "access_log" else _("the database alone")
    values = {"raw": percent(f["raw_open_rate"], 1), "human": percent(f["human_open_rate"], 1), "interval": interval,
              "machine": percent(f["machine_open_share"], 0), "source": source}
    choice = f.get("headline_choice") or {}
    if (choice.get("spread_pp") or 0) <= SPREAD_POINTS:
        return _("Open Rate {raw}, of which people about {human}{interval}: {machine} of opens are machine opens "
                 "(estimated from {source}).").format(**values)
    low, high = (percent(v, 1) for v in choice["range"])
    line = _("Open Rate {raw}, of which people about {human}{interval}: {machine} of opens are machine opens "
             "(estimated from {source}; estimator: {estimator}).").format(estimator=short_name(choice["estimator"]),
                                                                          **values)
    failing = "; ".join(_("{estimator} assumes {assumption}, which fails here ({says})").format(
        estimator=short_name(name), assumption=_(SHORT_ASSUMPTIONS[name]), says=says[0])
        for name, says in choice["failing"].items())
    spread = (_("The estimators range from {low} to {high}: {failing}.").format(low=low, high=high, failing=failing)
              if failing else
              _("The estimators range from {low} to {high}; every one passes its checks.").format(low=low, high=high))
    return " ".join([line, spread, _("The headline's estimator was chosen because {reason}.").format(
        reason=choice["reason"])])


def access_log_notes(log_stats: dict) -> list[str]:
    """A note naming each access-log file without a usable line (no sender hit) and each file that could
    not be read to its end."""
    notes = []
    for row in log_stats.get("per_file", []):
        if row["read_error"]:
            notes.append(_("Access log {error}; the lines before the damage were read (counted per file in "
                           "tables/opens_log_files.csv).").format(error=row["read_error"]))
        if not row["sender_hits"]:
            notes.append(_("Access log {file} is empty: it adds nothing to the figures.").format(file=row["file"])
                         if not row["lines"] else
                         _("Access log {file} has no usable line ({lines} lines, no sender hit): it adds nothing to "
                           "the figures.").format(file=row["file"], lines=number(row["lines"])))
    return notes


def log_files_table(result: OpensResult) -> pd.DataFrame:
    """One row per access-log file: lines, tracking requests, sender hits, unparsed lines, garbage tags,
    read error (empty without an access log, or for a snapshot made before kit 0.3)."""
    rows = (result.log_stats or {}).get("per_file", [])
    return pd.DataFrame(rows, columns=access_logs.FILE_COLUMNS)


def human_open_rate_by_posting(ev: ContactEvidence, model: Model) -> pd.DataFrame:
    """Per posting of the period: delivered, raw and human open rate (the headline estimator within the
    posting), inflation in points, prefetch share, title and send date -- the open-inflation report's
    per-posting figures, for other reports to show the same numbers."""
    return _by_period_unit(ev.sums.posting, "posting", ev.evidence, model, ev.headline_estimator())
