"""Behaviour switches and formats of the demo generator."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter

from demo_fixtures import small_demo  # noqa: F401  (fixture)

from mailaudit.demo import build_demo

NEVER_OPENED = """
SELECT AVG(opened = 0) FROM (
  SELECT r.CONTACT_ID, SUM(EXISTS (SELECT 1 FROM b_sender_posting_read d WHERE d.RECIPIENT_ID = r.ID)) AS opened
  FROM b_sender_posting_recipient r JOIN b_sender_contact c ON c.ID = r.CONTACT_ID
  WHERE r.STATUS = 'N' AND c.TYPE_ID = 1
    AND c.CODE NOT LIKE '%@icloud.com' AND c.CODE NOT LIKE '%@me.com' AND c.CODE NOT LIKE '%@mac.com'
  GROUP BY r.CONTACT_ID HAVING COUNT(*) >= 8)
"""


def test_engagement_heterogeneity_can_be_switched_off(tmp_path):
    shares = {}
    for flag in (True, False):
        result = build_demo(sqlite_path=tmp_path / f"h{flag}.sqlite", contacts=1500, seed=2, heterogeneity=flag)
        conn = sqlite3.connect(result.database)
        shares[flag] = conn.execute(NEVER_OPENED).fetchone()[0]
        conn.close()
    # with per-contact propensities many people never open; with one shared rate almost nobody
    assert shares[True] > 0.3 > 0.15 > shares[False]


def test_combined_access_format(tmp_path):
    result = build_demo(sqlite_path=tmp_path / "c.sqlite", contacts=1000, seed=4, logs_dir=tmp_path / "logs",
                        access_format="combined")
    combined = re.compile(r'^\S+ - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0300\] "[^"]*" \d{3} \d+ "[^"]*" "[^"]*"$')
    lines = open(result.logs["access"], encoding="utf-8").read().splitlines()
    good = sum(bool(combined.match(line)) for line in lines)
    assert good >= len(lines) - 3 and any("track_mail_read.php?tag=sender." in line for line in lines)


def test_gmail_proxy_fetches_a_letter_once(small_demo):
    result, _truth = small_demo
    per_tag = Counter()
    for line in open(result.logs["access"], encoding="utf-8"):
        if "GoogleImageProxy" in line and "track_mail_read" in line:
            per_tag[re.search(r"tag=([^ &]+)", line).group(1)] += 1
    assert per_tag and max(per_tag.values()) == 1


def test_contact_agent_and_ip_follow_the_latest_read(small_demo):
    result, _truth = small_demo
    conn = sqlite3.connect(result.database)
    rows = conn.execute(
        "SELECT c.AGENT, c.IP, c.DATE_UPDATE, (SELECT MAX(d.DATE_INSERT) FROM b_sender_posting_read d "
        "JOIN b_sender_posting_recipient r ON r.ID = d.RECIPIENT_ID WHERE r.CONTACT_ID = c.ID), "
        "(SELECT COUNT(*) FROM b_sender_posting_click k "
        "JOIN b_sender_posting_recipient r ON r.ID = k.RECIPIENT_ID WHERE r.CONTACT_ID = c.ID) "
        "FROM b_sender_contact c WHERE c.TYPE_ID = 1").fetchall()
    conn.close()
    read = [r for r in rows if r[3] is not None]
    assert read and all(r[0] is not None and r[1] for r in read)
    # a contact who never loaded the pixel has no AGENT/IP (the planted clicks whose read rows were
    # deleted keep the AGENT their read wrote, as a real clean-up would)
    assert all(r[0] is None and r[1] is None for r in rows if r[3] is None and r[4] == 0)
    assert {r[0] for r in read} >= {0, 1, 2, 5, 7}          # unknown, gmail, iphone, outlook, yandex
    assert sum(r[2] == r[3] for r in read) / len(read) > 0.95
