"""The demo's logs agree with its database: pixel tags, read rows, bounces and STATUS='E'."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pandas as pd
from demo_fixtures import access_hits, small_db, small_demo  # noqa: F401  (fixtures)

POSTFIX_VERDICT = re.compile(r"^(\w{3}) +(\d+) (\d\d:\d\d:\d\d) \S+ postfix/smtp\[\d+\]: \w+: to=<([^>]+)>, .*"
                             r"dsn=(\d\.\d+\.\d+), status=(sent|bounced|deferred)")
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                      "Nov", "Dec"), start=1)}


def test_every_pixel_tag_decodes_to_a_recipient_except_the_counted_foreign_ones(small_demo, small_db):
    result, truth = small_demo
    hits, malformed = access_hits(result.logs["access"])
    recipients = {r for (r,) in small_db.execute("SELECT ID FROM b_sender_posting_recipient")}
    foreign = [h for h in hits if h[1] not in recipients]
    counted = truth["logs"]["access"]["foreign_tags"]
    assert len(foreign) == sum(counted.values()) > 0
    assert malformed == truth["logs"]["access"]["garbage_lines"]
    assert sum(1 for h in hits if h[0] == "click") == truth["logs"]["access"]["click_lines"]
    # the tag is PHP-urlencoded: no raw '=' '+' '/' inside it
    for _kind, _rid, _ts, _ua, query, _ip in hits[:2000]:
        tag = re.search(r"tag=([^&]*)", query).group(1)
        assert not set("=+/") & set(tag)


def test_every_read_row_has_one_access_line_at_its_timestamp(small_demo, small_db):
    result, _truth = small_demo
    hits, _ = access_hits(result.logs["access"])
    pixel = Counter((rid, ts) for kind, rid, ts, _ua, _q, _ip in hits if kind == "read")
    clicks = Counter((rid, ts) for kind, rid, ts, _ua, _q, _ip in hits if kind == "click")
    reads = Counter(small_db.execute("SELECT RECIPIENT_ID, DATE_INSERT FROM b_sender_posting_read").fetchall())
    db_clicks = Counter(small_db.execute("SELECT RECIPIENT_ID, DATE_INSERT FROM b_sender_posting_click").fetchall())
    assert clicks == db_clicks
    # a read row is a pixel line, or (written by a click) that click's line
    unmatched = reads - pixel
    assert all(key in clicks for key in unmatched)
    assert sum((pixel - reads).values()) == 0 or all(k[0] is None for k in (pixel - reads))


def test_apple_proxy_loads_are_bare_mozilla_from_apple_addresses(small_demo):
    result, _truth = small_demo
    for line in open(result.logs["access"], encoding="utf-8"):
        if line.startswith("17.") and "track_mail_read" in line:
            assert line.rstrip("\n").endswith('"Mozilla/5.0" "-"')


def _postfix_verdicts(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        m = POSTFIX_VERDICT.match(line)
        if m:
            rows.append((m.group(4), m.group(1), int(m.group(2)), m.group(3), m.group(5), m.group(6)))
    return pd.DataFrame(rows, columns=["email", "mon", "day", "time", "dsn", "status"])


def test_every_delivery_log_bounce_is_a_status_e_recipient_of_that_address(small_demo, small_db):
    result, truth = small_demo
    log = _postfix_verdicts(result.logs["postfix"])
    bounced = log[log["status"] == "bounced"].copy()
    year = bounced["mon"].map(lambda m: 2025 if MONTHS[m] >= 10 else 2026)
    bounced["when"] = pd.to_datetime(year.astype(str) + "-" + bounced["mon"].map(MONTHS).astype(str) + "-"
                                     + bounced["day"].astype(str) + " " + bounced["time"])
    errors = pd.read_sql("SELECT r.ID, r.DATE_SENT, c.CODE AS email FROM b_sender_posting_recipient r "
                         "JOIN b_sender_contact c ON c.ID = r.CONTACT_ID WHERE r.STATUS = 'E'", small_db)
    errors["sent"] = pd.to_datetime(errors["DATE_SENT"])
    merged = bounced.reset_index().merge(errors, on="email")
    close = merged[(merged["when"] >= merged["sent"]) & (merged["when"] - merged["sent"] <= pd.Timedelta(hours=1))]
    assert close["index"].nunique() == len(bounced) > 0
    assert close["ID"].nunique() == len(bounced)          # one E row per bounce
    delivered = small_db.execute("SELECT COUNT(*) FROM b_sender_posting_recipient r JOIN b_sender_contact c "
                                 "ON c.ID = r.CONTACT_ID WHERE r.STATUS = 'N' AND c.TYPE_ID = 1").fetchone()[0]
    assert (log["status"] == "sent").sum() >= delivered
    assert truth["logs"]["delivery_verdicts"]["bounced"] == len(bounced) == sum(truth["logs"]["bounce_classes"].values())
    assert truth["logs"]["bounce_classes"]["sender_block"] == truth["hygiene"]["sender_block_events"]
    # the Yandex dead-address trap and the reputation blocks are there
    text = open(result.logs["postfix"], encoding="utf-8").read()
    assert "550 5.7.1 No such user!" in text and "(S3150)" in text and "[TSS04]" in text and "5.7.28" in text


def test_other_delivery_formats_carry_the_same_verdicts(small_demo):
    result, truth = small_demo
    bounced = truth["logs"]["delivery_verdicts"]["bounced"]
    exim = open(result.logs["exim"], encoding="utf-8").read().splitlines()
    assert sum(" ** " in line for line in exim) == bounced
    assert all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w{6}-\w{6}-\w{2} ", line) for line in exim)
    msmtp = open(result.logs["msmtp"], encoding="utf-8").read().splitlines()
    assert sum("exitcode=EX_OK" not in line for line in msmtp) == bounced
    csv = pd.read_csv(result.logs["csv"], dtype=str)
    assert list(csv.columns) == ["email", "date", "status_code", "text"]
    assert (csv["status_code"].str.startswith("5")).sum() == bounced
    assert csv["date"].str.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$").all()


def test_click_lines_carry_target_utm_and_conversion_id(small_demo):
    result, _truth = small_demo
    hits, _ = access_hits(result.logs["access"])
    clicks = [h for h in hits if h[0] == "click" and h[1] is not None]
    assert clicks
    for _kind, rid, _ts, _ua, query, _ip in clicks[:500]:
        params = parse_qs(query)
        target = parse_qs(urlsplit(params["url"][0]).query)
        assert target["bx_sender_conversion_id"] == [str(rid)]
        assert params["sign"][0]


def test_log_derived_hygiene_counts_recomputed_from_the_maillog(small_demo, small_db):
    result, truth = small_demo
    log = _postfix_verdicts(result.logs["postfix"])
    text = {}
    for line in open(result.logs["postfix"], encoding="utf-8"):
        m = re.search(r"to=<([^>]+)>.*status=bounced \(host \S+ said: (.*) \(in reply to", line)
        if m:
            text.setdefault(m.group(1), []).append(m.group(2))
    block = re.compile(r"S3150|5\.7\.28|TSS04")
    full = re.compile(r"5\.2\.2")
    hard = {a for a, texts in text.items() if any(not block.search(t) and not full.search(t) for t in texts)}
    assert len(hard) == truth["hygiene"]["hard_bounce"]
    assert sum(bool(block.search(t)) for texts in text.values() for t in texts) == \
        truth["hygiene"]["sender_block_events"]
    # soft streaks: per address, verdicts in time order; a delivery resets the run
    year = log["mon"].map(lambda m: 2025 if MONTHS[m] >= 10 else 2026)
    log["when"] = pd.to_datetime(year.astype(str) + "-" + log["mon"].map(MONTHS).astype(str) + "-"
                                 + log["day"].astype(str) + " " + log["time"])
    log = log[log["status"] != "deferred"].sort_values(["email", "when"], kind="stable")
    streaks = 0
    for _email, rows in log.groupby("email"):
        run = []
        qualified = False
        for status, dsn, when in zip(rows["status"], rows["dsn"], rows["when"]):
            if status == "sent":
                run = []
            elif dsn == "5.2.2":
                run.append(when)
                qualified |= len(run) >= 3 and run[-1] - run[0] >= pd.Timedelta(days=7)
        streaks += qualified
    assert streaks == truth["hygiene"]["soft_bounce_streak"] > 0
