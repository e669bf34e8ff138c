"""Delivery-log readers on real-format lines: Postfix, Exim, msmtp, CSV, rotation, gzip, years, damage."""

from __future__ import annotations

import gzip
import os
from datetime import date, datetime
from pathlib import Path

import pytest

from mailaudit.sources import delivery_logs as dl

POSTFIX_MESSAGE = """\
Jan 14 09:15:01 mx1 postfix/pickup[2101]: 4BQ2Xn1jQfz9v: uid=600 from=<news@shop.example>
Jan 14 09:15:01 mx1 postfix/cleanup[2102]: 4BQ2Xn1jQfz9v: message-id=<bx.1234.5678@shop.example>
Jan 14 09:15:01 mx1 postfix/qmgr[900]: 4BQ2Xn1jQfz9v: from=<news@shop.example>, size=18234, nrcpt=2 (queue active)
Jan 14 09:15:02 mx1 opendkim[777]: 4BQ2Xn1jQfz9v: DKIM-Signature field added (s=mail, d=shop.example)
Jan 14 09:15:03 mx1 postfix/smtp[2103]: 4BQ2Xn1jQfz9v: to=<Ivan.Petrov@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.150.27]:25, delay=2.1, delays=0.1/0.01/0.6/1.4, dsn=2.0.0, status=sent (250 2.0.0 OK  1705212903 a1-20020a05600c000100b0040e3ddb1a3bsi123456wma.12 - gsmtp)
Jan 14 09:15:03 mx1 postfix/smtp[2104]: 7C1A2B3C4D: to=<other@mail.ru>, relay=mxs.mail.ru[94.100.180.31]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 OK id=1rOt1X-00Abc-7y)
Jan 14 09:15:04 mx1 postfix/smtp[2103]: 4BQ2Xn1jQfz9v: to=<nobody@yandex.ru>, relay=mx.yandex.ru[77.88.21.249]:25, delay=3.2, delays=0.1/0.01/1.1/2, dsn=5.7.1, status=bounced (host mx.yandex.ru[77.88.21.249] said: 550 5.7.1 No such user! (in reply to end of DATA command))
Jan 14 09:15:04 mx1 postfix/bounce[2105]: 4BQ2Xn1jQfz9v: sender non-delivery notification: 9F8E7D6C5B
Jan 14 09:15:04 mx1 postfix/qmgr[900]: 4BQ2Xn1jQfz9v: removed
"""

POSTFIX_EXPIRY = """\
Dec 30 23:50:00 mx1 postfix/cleanup[311]: 5A6B7C8D9E: message-id=<bx.42@shop.example>
Dec 30 23:50:00 mx1 postfix/qmgr[900]: 5A6B7C8D9E: from=<news@shop.example>, size=9000, nrcpt=1 (queue active)
Dec 30 23:50:31 mx1 postfix/smtp[312]: 5A6B7C8D9E: to=<full@mail.ru>, relay=mxs.mail.ru[94.100.180.31]:25, delay=31, delays=0.1/0/30/1, dsn=4.2.2, status=deferred (host mxs.mail.ru[94.100.180.31] said: 452 4.2.2 Mailbox is full (in reply to RCPT TO command))
Jan  4 23:51:10 mx1 postfix/qmgr[900]: 5A6B7C8D9E: from=<news@shop.example>, status=expired, returned to sender
Jan  4 23:51:10 mx1 postfix/qmgr[900]: 5A6B7C8D9E: removed
"""


REALWORLD = Path(__file__).parent / "data" / "realworld" / "logs"


def write(path: Path, text: str, compress: bool = False, modified: date = date(2026, 3, 31)) -> Path:
    """A log file whose modification time is `modified` (noon): the evidence year-less stamps are dated by."""
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    stamp = datetime(modified.year, modified.month, modified.day, 12).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def read_all(paths, fmt=None):
    reader = dl.DeliveryLogReader(paths, fmt=fmt)
    return list(reader.events()), reader


def test_postfix_joins_a_message_split_across_interleaved_lines(tmp_path):
    events, reader = read_all([write(tmp_path / "maillog", POSTFIX_MESSAGE)])
    assert reader.stats[0].format == dl.POSTFIX
    assert [(e.email, e.status, e.dsn) for e in events] == [
        ("ivan.petrov@gmail.com", "sent", "2.0.0"),
        ("other@mail.ru", "sent", "2.0.0"),
        ("nobody@yandex.ru", "bounced", "5.7.1"),
    ]
    bounce = events[2]
    assert bounce.message_id == "bx.1234.5678@shop.example"
    assert bounce.queue_id == "4BQ2Xn1jQfz9v"
    assert bounce.smtp_code == 550
    assert bounce.text.startswith("host mx.yandex.ru[77.88.21.249] said: 550 5.7.1 No such user!")
    assert bounce.time == datetime(2026, 1, 14, 9, 15, 4)
    assert events[1].message_id is None  # a queue id whose cleanup line is not in the file
    assert reader.unparseable == 0


def test_postfix_expiry_names_the_deferred_recipient_and_crosses_new_year(tmp_path):
    events, _ = read_all([write(tmp_path / "maillog", POSTFIX_EXPIRY)])
    assert [(e.status, e.email, e.time) for e in events] == [
        ("deferred", "full@mail.ru", datetime(2025, 12, 30, 23, 50, 31)),
        ("expired", "full@mail.ru", datetime(2026, 1, 4, 23, 51, 10)),
    ]
    assert events[1].dsn == "4.2.2" and "Mailbox is full" in events[1].text
    assert events[1].message_id == "bx.42@shop.example"


def test_garbage_lines_are_counted_sampled_masked_and_never_fatal(tmp_path):
    text = POSTFIX_MESSAGE + "\x00\x01 binary junk\n" + "this is not a log line ivan@mail.ru\n"
    text += "Jan 14 09:16:00 mx1 postfix/smtp[1]: 1A2B3C4D5E: to=<x@y.ru>, relay=none, status=\n"
    events, reader = read_all([write(tmp_path / "maillog", text)])
    assert len(events) == 3
    assert reader.unparseable == 2 and reader.stats[0].undecodable_lines == 1  # binary junk is counted apart
    samples = reader.stats[0].samples
    assert any("i***@mail.ru" in s for s in samples)
    assert not any("ivan@mail.ru" in s for s in samples)


def test_rfc3339_syslog_stamps_keep_their_year(tmp_path):
    line = ("2025-11-03T10:20:30.123456+03:00 mx1 postfix/smtp[55]: 3C4D5E6F7A: to=<a@bk.ru>, "
            "relay=mxs.mail.ru[94.100.180.31]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.0.0, "
            "status=bounced (host mxs.mail.ru[94.100.180.31] said: 550 Message was not accepted -- invalid "
            "mailbox.  Local mailbox a@bk.ru is unavailable: user not found (in reply to end of DATA command))\n")
    events, _ = read_all([write(tmp_path / "mail.log", line)])
    assert events[0].time == datetime(2025, 11, 3, 10, 20, 30)
    assert events[0].smtp_code == 550


MSMTP = """\
Mar 02 10:00:01 host=smtp.shop.example tls=on auth=on user=robot from=news@shop.example recipients=a@mail.ru,B@Yandex.ru mailsize=5120 smtpstatus=250 smtpmsg='250 2.0.0 Ok: queued as 4BQ2Xn' exitcode=EX_OK
Mar 02 10:00:05 host=smtp.shop.example tls=on auth=on user=robot from=news@shop.example recipients=gone@gmail.com mailsize=5120 smtpstatus=550 smtpmsg='550 5.1.1 <gone@gmail.com>: Recipient address rejected: User unknown in virtual mailbox table' errormsg='recipient address gone@gmail.com not accepted by the server' exitcode=EX_DATAERR
Mar 02 10:00:09 host=smtp.shop.example tls=on auth=on user=robot from=news@shop.example recipients=c@list.ru errormsg='cannot connect to smtp.shop.example, port 587: Connection refused' exitcode=EX_TEMPFAIL
Mar 02 10:00:11 host=smtp.shop.example tls=on auth=on user=robot from=news@shop.example recipients=d@inbox.ru smtpstatus=451 smtpmsg='451 4.7.1 Greylisted, please try again later' errormsg='the server did not accept the mail' exitcode=EX_UNAVAILABLE
"""


def test_msmtp_multi_recipient_line_gives_one_event_per_recipient(tmp_path):
    events, reader = read_all([write(tmp_path / "msmtp_default.log", MSMTP)])
    assert reader.stats[0].format == dl.MSMTP
    assert [(e.email, e.status, e.smtp_code, e.dsn) for e in events] == [
        ("a@mail.ru", "sent", 250, "2.0.0"),
        ("b@yandex.ru", "sent", 250, "2.0.0"),
        ("gone@gmail.com", "bounced", 550, "5.1.1"),
        ("c@list.ru", "deferred", None, None),
        ("d@inbox.ru", "deferred", 451, "4.7.1"),
    ]
    assert "Connection refused" in events[3].text
    assert events[0].time == datetime(2026, 3, 2, 10, 0, 1)


def test_msmtp_via_syslog_and_russian_month_names(tmp_path):
    text = ("Mar  2 10:00:01 web1 msmtp: host=smtp.shop.example tls=on auth=on from=n@shop.example "
            "recipients=a@mail.ru mailsize=10 smtpstatus=250 smtpmsg='250 OK' exitcode=EX_OK\n"
            "мар 03 11:00:00 host=smtp.shop.example tls=on auth=on from=n@shop.example recipients=b@mail.ru "
            "errormsg='authentication failed (method PLAIN)' exitcode=EX_NOPERM\n")
    events, _ = read_all([write(tmp_path / "msmtp.log", text)], fmt=dl.MSMTP)
    assert [(e.email, e.status, e.time.month, e.time.day) for e in events] == [
        ("a@mail.ru", "sent", 3, 2), ("b@mail.ru", "failed", 3, 3)]


EXIM = """\
2026-02-10 12:00:00 1rYkQx-000Abc-1D <= news@shop.example H=localhost [127.0.0.1] P=esmtp S=14512 id=bx.77@shop.example
2026-02-10 12:00:01 1rYkQx-000Abc-1D => a@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [142.250.150.26] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes K C="250 2.0.0 OK  1707566401 x1si2 - gsmtp"
2026-02-10 12:00:01 1rYkQx-000Abc-1D -> b@gmail.com R=dnslookup T=remote_smtp H=gmail-smtp-in.l.google.com [142.250.150.26] C="250 2.0.0 OK"
2026-02-10 12:00:02 1rYkQx-000Abc-1D ** ghost@outlook.com R=dnslookup T=remote_smtp H=outlook-com.olc.protection.outlook.com [52.101.8.35]: SMTP error from remote mail server after RCPT TO:<ghost@outlook.com>: 550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM0EUR02FT012.eop-EUR02.prod.protection.outlook.com]
2026-02-10 12:00:03 1rYkQx-000Abc-1D == slow@rambler.ru R=dnslookup T=remote_smtp defer (-44) H=mx.rambler.ru [81.19.77.166]: SMTP error from remote mail server after RCPT TO:<slow@rambler.ru>: 451 4.7.1 Try again later
2026-02-10 12:00:04 1rYkQx-000Abc-1D ** typo@gmial.com: Unrouteable address
2026-02-10 12:00:05 1rYkQx-000Abc-1D ** late@mail.ru R=dnslookup T=remote_smtp: retry timeout exceeded
2026-02-10 12:00:06 1rYkQx-000Abc-1D Completed
2026-02-10 12:00:07 SMTP connection from [10.0.0.5] lost
"""


def test_exim_flags_texts_and_expiry(tmp_path):
    events, reader = read_all([write(tmp_path / "mainlog", EXIM)])
    assert reader.stats[0].format == dl.EXIM
    assert [(e.email, e.status) for e in events] == [
        ("a@gmail.com", "sent"), ("b@gmail.com", "sent"), ("ghost@outlook.com", "bounced"),
        ("slow@rambler.ru", "deferred"), ("typo@gmial.com", "bounced"), ("late@mail.ru", "expired")]
    ghost = events[2]
    assert ghost.text.startswith("550 5.5.0 Requested action not taken: mailbox unavailable")
    assert (ghost.smtp_code, ghost.dsn, ghost.queue_id) == (550, "5.5.0", "1rYkQx-000Abc-1D")
    assert events[3].dsn == "4.7.1" and events[3].smtp_code == 451
    assert events[4].text == "Unrouteable address"
    assert reader.unparseable == 0


def test_csv_export_with_header_and_codes(tmp_path):
    text = ("email,date,status_code,text\n"
            "A@Mail.ru,2026-01-05 10:00:00,250,OK\n"
            "b@gmail.com,2026-01-05T10:01:00,550 5.1.1,The email account that you tried to reach does not exist\n"
            "c@yandex.ru,05.01.2026 10:02:00,4.2.2,Mailbox full\n"
            "not-an-address,2026-01-05,550,x\n")
    events, reader = read_all([write(tmp_path / "export.csv", text)])
    assert reader.stats[0].format == dl.CSV
    assert [(e.email, e.status, e.smtp_code, e.dsn) for e in events] == [
        ("a@mail.ru", "sent", 250, None), ("b@gmail.com", "bounced", 550, "5.1.1"),
        ("c@yandex.ru", "deferred", None, "4.2.2")]
    assert events[2].time == datetime(2026, 1, 5, 10, 2)
    assert reader.unparseable == 1


def test_rotated_and_gzipped_files_read_oldest_first(tmp_path):
    older = "Dec 31 23:59:00 mx1 postfix/smtp[1]: 1A2B3C4D5E: to=<a@mail.ru>, relay=x[1.2.3.4]:25, dsn=4.2.2, status=deferred (452 4.2.2 full)\n"
    newer = "Jan  2 00:01:00 mx1 postfix/smtp[1]: 2A2B3C4D5E: to=<a@mail.ru>, relay=x[1.2.3.4]:25, dsn=2.0.0, status=sent (250 ok)\n"
    live = "Jan  9 08:00:00 mx1 postfix/smtp[1]: 3A2B3C4D5E: to=<a@mail.ru>, relay=x[1.2.3.4]:25, dsn=2.0.0, status=sent (250 ok)\n"
    paths = [write(tmp_path / "mail.log", live), write(tmp_path / "mail.log.1", newer),
             write(tmp_path / "mail.log.2.gz", older, compress=True)]
    for path in paths:  # copied without their times: every file looks written on 31 January
        stamp = datetime(2026, 1, 31, 12).timestamp()
        os.utime(path, (stamp, stamp))
    events, reader = read_all(sorted(paths))
    assert [e.time for e in events] == [datetime(2025, 12, 31, 23, 59), datetime(2026, 1, 2, 0, 1),
                                        datetime(2026, 1, 9, 8, 0)]
    assert [s.year_source for s in reader.stats] == ["next rotated file", "next rotated file", "modification time"]


def test_dateext_name_anchors_the_year(tmp_path):
    line = "Dec 20 10:00:00 mx1 postfix/smtp[1]: 1A2B3C4D5E: to=<a@mail.ru>, relay=x[1.2.3.4]:25, dsn=2.0.0, status=sent (250 ok)\n"
    events, reader = read_all([write(tmp_path / "maillog-20241222", line, modified=date(2026, 3, 31))])
    assert events[0].time.year == 2024 and reader.stats[0].year_source == "dateext"


def _postfix_sent(stamp: str, n: int) -> str:
    return (f"{stamp} mx1 postfix/smtp[1]: {n:010X}: to=<a{n}@mail.ru>, relay=x[1.2.3.4]:25, dsn=2.0.0, "
            "status=sent (250 ok)\n")


@pytest.mark.parametrize("modified, stamp, year", [
    (date(2026, 3, 31), "Oct  1 12:00:00", 2025),   # a stamp after the file's time is last year's
    (date(2026, 3, 31), "Mar 31 11:00:00", 2026),
    (date(2026, 9, 30), "Oct  1 12:00:00", 2025),
    (date(2026, 9, 30), "Sep 29 12:00:00", 2026),
])
def test_the_last_stamp_takes_the_latest_year_not_after_the_file_time(tmp_path, modified, stamp, year):
    events, _ = read_all([write(tmp_path / "maillog", _postfix_sent(stamp, 1), modified=modified)])
    assert events[0].time.year == year


def test_a_log_of_two_new_years_counts_back_from_its_end(tmp_path):
    stamps = ["Nov 20 10:00:00", "Dec 31 23:00:00", "Jan  1 01:00:00", "Jun  1 10:00:00", "Dec 30 10:00:00",
              "Jan  2 10:00:00", "Feb 27 10:00:00"]
    text = "".join(_postfix_sent(stamp, n) for n, stamp in enumerate(stamps))
    events, _ = read_all([write(tmp_path / "maillog", text, modified=date(2026, 2, 28))])
    assert [e.time.year for e in events] == [2024, 2024, 2025, 2025, 2025, 2026, 2026]


def test_lines_out_of_order_around_new_year_keep_their_year(tmp_path):
    stamps = ["Dec 31 23:59:58", "Jan  1 00:00:01", "Dec 31 23:59:59", "Jan  1 00:00:02"]
    text = "".join(_postfix_sent(stamp, n) for n, stamp in enumerate(stamps))
    events, _ = read_all([write(tmp_path / "maillog", text, modified=date(2026, 1, 1))])
    assert [e.time.year for e in events] == [2025, 2026, 2025, 2026]


def test_the_year_never_depends_on_anything_but_the_file(tmp_path):
    path = write(tmp_path / "maillog", _postfix_sent("Dec 20 10:00:00", 1), modified=date(2023, 12, 21))
    assert read_all([path])[0][0].time == datetime(2023, 12, 20, 10, 0)


# --- real lines from public test data (tests/data/realworld/README.md) ----------------------------

def test_exim_through_syslog_gives_the_same_events_as_its_mainlog():
    mainlog, _ = read_all([REALWORLD / "exim_mainlog"])
    syslog, reader = read_all([REALWORLD / "exim_syslog.log"])
    assert reader.stats[0].format == dl.EXIM
    assert [(e.email, e.status, e.dsn, e.text) for e in syslog] == [(e.email, e.status, e.dsn, e.text) for e in mainlog]
    assert {e.status for e in mainlog} == {"sent", "deferred", "bounced", "expired"}
    molly = next(e for e in mainlog if e.email == "molly@zee.corp")
    assert molly.smtp_code == 554 and molly.dsn == "5.2.0" and "Recipient Mailbox Full" in molly.text


def test_exim_through_syslog_without_its_own_stamp_and_through_splogger(tmp_path):
    text = ("Jun 24 00:13:06 mx exim[4000]: 1raAO7-0094KF-7u ** rudy@foo.corp R=dnslookup T=remote_smtp "
            "H=(relay.test.corp) [4.4.4.4]: SMTP error from remote mail server after RCPT TO:<rudy@test.corp>: "
            "540 5.7.1 <rudy@test.corp>: recipient address rejected: Blocked\n"
            "Jun 24 00:20:14 mx exim: 1592957714.123456 2020-06-24 00:20:14 1raAV4-009jr4-9x => jack@test.corp "
            "R=dnslookup T=remote_smtp H=mail.test.corp [4.4.4.4] C=\"250 OK\"\n")
    events, reader = read_all([write(tmp_path / "mail.log", text, modified=date(2020, 6, 30))])
    assert reader.stats[0].format == dl.EXIM
    assert [(e.email, e.status, e.time) for e in events] == [
        ("rudy@foo.corp", "bounced", datetime(2020, 6, 24, 0, 13, 6)),
        ("jack@test.corp", "sent", datetime(2020, 6, 24, 0, 20, 14))]
    assert events[0].smtp_code == 540 and events[0].dsn == "5.7.1"


def test_msmtp_in_openwrt_logread_format():
    events, reader = read_all([REALWORLD / "msmtp_logread.log"], fmt=dl.MSMTP)
    assert [(e.email, e.status, e.smtp_code, e.time) for e in events] == [
        ("admin@example.com", "sent", 250, datetime(2024, 10, 14, 23, 35, 55))]
    assert reader.unparseable == 0


def test_msmtp_logread_is_detected(tmp_path):
    line = (REALWORLD / "msmtp_logread.log").read_text(encoding="utf-8")
    events, reader = read_all([write(tmp_path / "messages", line)])
    assert reader.stats[0].format == dl.MSMTP and len(events) == 1


def test_postfix_grok_test_lines_read_without_failing():
    events, reader = read_all([REALWORLD / "postfix_grok.log"])
    stats = reader.stats[0]
    assert stats.format == dl.POSTFIX and stats.lines > 150
    statuses = {e.status for e in events}
    assert {"sent", "bounced", "deferred"} <= statuses
    expired = [e for e in events if e.status == "expired"]
    assert all(e.email for e in expired)
    assert stats.unparseable < 15  # the postscreen pipelining test's raw SMTP lines


# --- cut lines, damaged and odd files: counted, never fatal ----------------------------------------

def _cut(line: str, at: int = 1000) -> str:
    return line[:at] + "\n"


def test_a_postfix_line_cut_by_syslog_keeps_address_status_and_dsn(tmp_path):
    long_reply = "550-5.7.1 " + "Our system has detected that this message is likely unsolicited mail. " * 20
    line = ("Jan 14 09:15:04 mx1 postfix/smtp[2103]: 4BQ2Xn1jQfz9v: to=<nobody@gmail.com>, "
            "relay=gmail-smtp-in.l.google.com[142.250.150.27]:25, delay=3.2, delays=0.1/0.01/1.1/2, dsn=5.7.1, "
            f"status=bounced (host gmail-smtp-in.l.google.com[142.250.150.27] said: {long_reply} (in reply to end of DATA command))")
    cut_early = ("Jan 14 09:15:05 mx1 postfix/smtp[2103]: 5BQ2Xn1jQfz9v: to=<other@gmail.com>, relay=" + "x" * 1100)
    events, reader = read_all([write(tmp_path / "maillog", _cut(line) + _cut(cut_early))])
    assert [(e.email, e.status, e.dsn, e.smtp_code) for e in events] == [("nobody@gmail.com", "bounced", "5.7.1", 550)]
    assert events[0].text.startswith("host gmail-smtp-in")
    stats = reader.stats[0]
    assert stats.truncated_lines == 2 and stats.unparseable == 0


def test_an_msmtp_line_cut_by_syslog_keeps_its_status(tmp_path):
    line = ("Mar  2 10:00:05 web1 msmtp: host=smtp.shop.example tls=on auth=on user=robot from=news@shop.example "
            "recipients=gone@gmail.com mailsize=5120 smtpstatus=550 smtpmsg='550 5.1.1 " + "x" * 1200 + "'"
            " exitcode=EX_DATAERR")
    events, reader = read_all([write(tmp_path / "msmtp.log", _cut(line))], fmt=dl.MSMTP)
    assert [(e.email, e.status, e.smtp_code, e.dsn) for e in events] == [("gone@gmail.com", "bounced", 550, "5.1.1")]
    assert reader.stats[0].truncated_lines == 1


def test_a_truncated_gzip_is_named_and_what_precedes_the_damage_is_read(tmp_path):
    whole = tmp_path / "whole.gz"
    text = "".join(_postfix_sent(f"Mar  1 10:{n // 60:02d}:{n % 60:02d}", n) for n in range(2000))
    write(whole, text, compress=True)
    damaged = tmp_path / "maillog.1.gz"
    damaged.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    events, reader = read_all([damaged])
    stats = reader.stats[0]
    assert 0 < len(events) < 2000
    assert stats.read_error and stats.read_error.startswith("maillog.1.gz:") and "gzip" in stats.read_error


def test_empty_and_binary_files_give_no_events_and_say_so(tmp_path):
    empty = write(tmp_path / "empty.log", "")
    binary = tmp_path / "binary.log"
    binary.write_bytes(bytes(range(256)) * 40 + b"\n" + b"\x00\xff\xfe" * 100 + b"\n")
    events, reader = read_all([empty, binary])
    assert events == []
    by_name = {s.path: s for s in reader.stats}
    assert not by_name["empty.log"].usable and by_name["empty.log"].lines == 0
    assert by_name["binary.log"].undecodable_lines >= 1 and not by_name["binary.log"].usable
    assert set(by_name["binary.log"].as_row()) >= {"file", "truncated_lines", "undecodable_lines", "read_error"}


def test_unknown_format_counts_every_line(tmp_path):
    events, reader = read_all([write(tmp_path / "notes.txt", "hello\nworld\n")])
    assert events == [] and reader.stats[0].format is None and reader.unparseable == 2
