"""The access-log route classifies each hit exactly as the mail-client classifier does hit by hit,
although it runs the classifier once per User-Agent and network, not once per hit."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from mailaudit.analyses import mail_clients as mc
from mailaudit.analyses import opens
from mailaudit.model import Model
from mailaudit.period import Period

PERIOD = Period(date(2026, 1, 1), date(2026, 3, 31))
SENT = datetime(2026, 2, 1, 10, 0, 0)
SCANNER_SECONDS = 10
USER_AGENTS = (
    "Mozilla/5.0",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "python-requests/2.31.0",
    "",
)
IPS = (
    "17.1.2.3",           # in the Apple CSV's 17.0.0.0/9
    "17.200.0.1",         # Apple's /8, outside the CSV: Apple Mail with privacy protection off
    "40.92.1.1",          # a Microsoft gateway range
    "40.93.255.255",      # the last address of 40.92.0.0/15
    "40.94.0.0",          # the first one after it
    "2620:149::5",        # IPv6 in the CSV
    "2001:db8::1",        # IPv6 elsewhere
    "::ffff:40.92.0.1",   # IPv4-mapped IPv6: not an IPv4 address to ipaddress
    "017.1.2.3",          # leading zero: not an address to ipaddress
    "unknown",
    "",
    "203.0.113.9",
    "255.255.255.255",
)
APPLE_CSV = "17.0.0.0/9,US,US-CA,Cupertino,\n2620:149::/32,US,US-CA,Cupertino,\nnot,a,range\n"


@pytest.fixture
def apple_csv(tmp_path):
    path = tmp_path / "egress-ip-ranges.csv"
    path.write_text(APPLE_CSV, encoding="utf-8")
    return path


def _model(sends: int = 400, seed: int = 5) -> tuple[Model, pd.DataFrame]:
    """A model holding only what the opens analysis reads: delivered sends (each its own contact,
    all opened and clicked by a person), their access-log hits (random User-Agent, address, kind and delay), and
    hits of a send outside the period, of a recipient row that is no delivered send, and of none."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, sends + 1)
    send_rows = pd.DataFrame({
        "recipient_id": ids, "posting_id": 1, "contact_id": ids, "delivered": True,
        "sent_at": SENT, "first_read_at": SENT + timedelta(hours=2), "last_read_at": SENT + timedelta(hours=3),
        "first_click_at": SENT + timedelta(hours=2, minutes=1), "last_click_at": SENT + timedelta(hours=2, minutes=1),
        "clicks": 1, "human_clicks": 1, "client": "unknown", "provider": "other"})
    outside = send_rows.iloc[:1].assign(recipient_id=9002, contact_id=9002, sent_at=datetime(2025, 6, 1))
    seen = ids[rng.random(sends) < 0.85]                    # the rest never appear in the log
    rid = np.repeat(seen, rng.integers(1, 5, len(seen)))
    hits = pd.DataFrame({
        "time": [SENT + timedelta(seconds=int(s)) for s in rng.choice([0, 5, 10, 11, 600, 90_000], len(rid))],
        "recipient_id": rid,
        "kind": rng.choice(["open", "open", "click"], len(rid)),
        "ip": rng.choice(IPS, len(rid)),
        "user_agent": rng.choice(USER_AGENTS, len(rid)),
        "status": 200,
    })
    unclaimed = pd.DataFrame({"time": SENT, "recipient_id": [9002, 9001, 9001, 9999, 9999, 9999], "kind": "open",
                              "ip": "203.0.113.9", "user_agent": USER_AGENTS[2], "status": 200})
    con = duckdb.connect()
    con.register("_sends", pd.concat([send_rows, outside]))
    con.register("_hits", pd.concat([hits, unclaimed]))
    con.execute("CREATE TABLE sends AS SELECT * FROM _sends")
    con.execute("CREATE TABLE tracking_hits AS SELECT * FROM _hits")
    con.execute("CREATE TABLE user_agents AS SELECT DISTINCT user_agent FROM tracking_hits")
    # no click rows here, so no machine clicks: every verdict comes from the hits alone
    con.execute("CREATE TABLE clicks (click_id BIGINT, recipient_id BIGINT, clicked_at TIMESTAMP)")
    con.execute("CREATE TABLE machine_clicks (click_id BIGINT, recipient_id BIGINT, reason VARCHAR)")
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.b_sender_posting_recipient AS SELECT recipient_id AS ID FROM sends "
                "UNION ALL SELECT 9001")
    manifest = {"logs": {"access": {"files": ["access.log"], "stats": {"lines": len(hits) + 6}}}}
    return Model(con, manifest), hits


def _hit_by_hit(hits: pd.DataFrame, classifier: mc.MailClientClassifier) -> pd.DataFrame:
    """Per send: the verdicts from classifying every hit on its own (the reference)."""
    found = [classifier.classify(ua, ip) for ua, ip in zip(hits["user_agent"], hits["ip"])]
    hits = hits.assign(hit_class=[opens.HIT_CLASS_CODE[f.hit_class] for f in found],
                       client=[opens.CLIENT_CODE.get(f.client, opens.UNKNOWN_CLIENT) for f in found],
                       click=hits["kind"] == "click", t=(hits["time"] - SENT).dt.total_seconds())
    machine = {opens.HIT_CLASS_CODE[c] for c in mc.MACHINE_CLASSES}
    timed = {opens.HIT_CLASS_CODE[c] for c in mc.TIMING_CHECKED_CLASSES}
    rows = {}
    for rid, of_send in hits.groupby("recipient_id"):
        groups = of_send.groupby(["click", "hit_class", "client"]).agg(last=("t", "max"), hits=("t", "size")).reset_index()
        human = [c not in machine and not (c in timed and last <= SCANNER_SECONDS)
                 for c, last in zip(groups["hit_class"], groups["last"])]
        people = groups[human]
        named = groups[groups["client"] != opens.SCANNER_CLIENT].sort_values(
            ["hits", "click", "hit_class", "client"], ascending=[False, True, True, True])
        rows[rid] = {"human_open": bool((~people["click"]).any()), "human_click": bool(people["click"].any()),
                     "apple_proxy": bool((groups["hit_class"] == opens.HIT_CLASS_CODE[mc.APPLE_PROXY]).any()),
                     "client": int(named["client"].iloc[0]) if len(named) else opens.UNKNOWN_CLIENT}
    return pd.DataFrame.from_dict(rows, orient="index")


@pytest.mark.parametrize("with_apple_ranges", [True, False])
def test_verdicts_equal_hit_by_hit_classification(apple_csv, with_apple_ranges):
    model, hits = _model()
    params = {"scanner_seconds": SCANNER_SECONDS, "apple_ranges": str(apple_csv) if with_apple_ranges else None}
    classifier = mc.MailClientClassifier(mc.IpRanges.from_apple_csv(apple_csv) if with_apple_ranges else None)
    expected = _hit_by_hit(hits, classifier)
    ev = opens.classify_contacts(model, PERIOD, params)
    assert ev.evidence == "access_log"
    found = ev.contacts.assign(client=ev.client)
    seen = found.loc[expected.index]
    # every send is opened and clicked: the features show the hits' verdicts directly
    assert (seen["logged"] == 1).all()
    assert seen["pixel_human"].tolist() == expected["human_open"].astype(int).tolist()
    assert seen["human_log"].tolist() == (expected["human_open"] | expected["human_click"]).astype(int).tolist()
    assert seen["apple_proxy"].tolist() == expected["apple_proxy"].astype(int).tolist()
    assert seen["client"].tolist() == expected["client"].tolist()
    # the classes cover every case the addresses and agents were chosen for
    assert expected["apple_proxy"].any() and (~expected["apple_proxy"]).any()
    assert expected["human_open"].any() and (~expected["human_open"]).any()
    assert expected["human_click"].any() and (expected["human_open"] != expected["human_click"]).any()
    unseen = found.drop(index=expected.index)
    assert len(unseen) and (unseen["logged"] == 0).all() and (unseen["human_log"] == 0).all()


def test_apple_ranges_turn_proxy_hits_from_elsewhere_into_people(apple_csv):
    model, _ = _model()
    without = opens.classify_contacts(model, PERIOD, {"scanner_seconds": SCANNER_SECONDS})
    confirmed = opens.classify_contacts(model, PERIOD, {"scanner_seconds": SCANNER_SECONDS,
                                                         "apple_ranges": str(apple_csv)})
    assert confirmed.contacts["apple_proxy"].sum() < without.contacts["apple_proxy"].sum()
    assert confirmed.contacts["pixel_human"].sum() > without.contacts["pixel_human"].sum()


def test_unclaimed_hits_are_counted_as_orphans_or_outside_the_period():
    model, hits = _model()
    ev = opens.classify_contacts(model, PERIOD, {"scanner_seconds": SCANNER_SECONDS})
    assert ev.log_stats["lines"] == len(hits) + 6
    assert (ev.log_stats["orphan_recipient_hits"], ev.log_stats["orphan_recipients"]) == (3, 1)
    assert ev.log_stats["outside_period_hits"] == 3       # the send of June 2025, and a row that is no send
    assert 9002 not in ev.contacts.index
