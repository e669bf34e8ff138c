"""The bounce classifier on real provider replies, including every trap of domain-notes §1."""

from __future__ import annotations

import pandas as pd
import pytest

from mailaudit.analyses.bounces import (AUTO_REPLY, HARD, RULES, SENDER_BLOCK, SOFT, UNKNOWN, classify,
                                        classify_frame, reply_pattern)

# (status, dsn, basic code, reply text) -> (class, rule)
REAL_REPLIES = [
    # traps: the code says one thing, the text another
    ("bounced", "5.7.1", 550, "host mx.yandex.ru[77.88.21.249] said: 550 5.7.1 No such user! (in reply to end of DATA command)",
     HARD, "yandex_no_such_user"),
    ("bounced", "5.7.1", 550, "host outlook-com.olc.protection.outlook.com[52.101.42.3] said: 550 5.7.1 Unfortunately, "
     "messages from [203.0.113.7] weren't sent. Please contact your Internet service provider since part of their "
     "network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.",
     SENDER_BLOCK, "microsoft_block_list"),
    ("deferred", "4.7.28", 421, "host gmail-smtp-in.l.google.com[142.250.150.27] said: 421-4.7.28 Gmail has detected an "
     "unusual rate of unsolicited mail originating from your DKIM domain [shop.example 30]. To protect our users from "
     "spam, mail sent from your domain has been temporarily rate limited.",
     SENDER_BLOCK, "gmail_rate_unsolicited"),
    ("bounced", "5.7.28", 550, "550-5.7.28 Our system has detected an unusual rate of unsolicited mail originating from "
     "your IP address.", SENDER_BLOCK, "gmail_rate_unsolicited"),
    ("deferred", "4.7.0", 421, "host mta7.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from "
     "203.0.113.7 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see "
     "https://postmaster.yahooinc.com/error-codes", SENDER_BLOCK, "yahoo_tss"),
    ("bounced", None, None, "Automatic reply: I am out of the office until Monday", AUTO_REPLY, "auto_reply"),
    ("bounced", None, None, "Автоответ: я в отпуске до 15 января", AUTO_REPLY, "auto_reply"),
    # provider dead-address texts
    ("bounced", "5.1.1", 550, "host gmail-smtp-in.l.google.com[142.250.150.27] said: 550-5.1.1 The email account that "
     "you tried to reach does not exist. Please try double-checking the recipient's email address for typos or "
     "unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp (in reply to RCPT TO command)",
     HARD, "gmail_no_account"),
    ("bounced", "5.2.1", 550, "550-5.2.1 The email account that you tried to reach is disabled.", HARD, "gmail_no_account"),
    ("bounced", "5.5.0", 550, "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302). "
     "[AM0EUR02FT012.eop-EUR02.prod.protection.outlook.com]", HARD, "microsoft_mailbox_unavailable"),
    ("bounced", "5.1.10", 550, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     HARD, "microsoft_recipient_not_found"),
    ("bounced", None, 554, "554 delivery error: dd This user doesn't have a yahoo.com account (ghost@yahoo.com) [0] - "
     "mta4321.mail.bf1.yahoo.com", HARD, "yahoo_no_account"),
    ("bounced", "5.0.0", 550, "host mxs.mail.ru[94.100.180.31] said: 550 Message was not accepted -- invalid mailbox.  "
     "Local mailbox ghost@mail.ru is unavailable: user not found (in reply to end of DATA command)",
     HARD, "mailru_invalid_mailbox"),
    # soft
    ("bounced", "5.2.2", 552, "552-5.2.2 The email account that you tried to reach is over quota. Please direct the "
     "recipient to https://support.google.com/mail/?p=OverQuotaPerm", SOFT, "over_quota"),
    ("deferred", "4.2.2", 452, "452 4.2.2 Mailbox size limit exceeded", SOFT, "over_quota"),
    ("deferred", "4.7.1", 451, "451 4.7.1 Greylisted, please try again in 300 seconds", SOFT, "greylisted"),
    ("deferred", "4.4.1", None, "connect to mx.example.ru[198.51.100.3]:25: Connection timed out", SOFT, "dsn_transient"),
    ("expired", "4.4.1", None, "connect to mx.example.ru[198.51.100.3]:25: Connection timed out", SOFT,
     "expired_after_retries"),
    ("expired", None, None, "retry timeout exceeded", SOFT, "expired_after_retries"),
    # sender blocks without a provider rule
    ("bounced", "5.7.1", 554, "554 5.7.1 [2] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc",
     SENDER_BLOCK, "dsn_policy"),
    ("bounced", None, 550, "host mxs.mail.ru said: 550 spam message rejected. Please visit "
     "http://help.mail.ru/notspam-support/id?c=abc", SENDER_BLOCK, "mailru_spam"),
    ("bounced", "5.7.26", 550, "550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
     SENDER_BLOCK, "gmail_authentication"),
    ("bounced", "5.7.1", 554, "554 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org",
     SENDER_BLOCK, "spamhaus_or_dnsbl"),
    # enhanced codes and fallbacks
    ("bounced", "5.1.1", 550, "550 5.1.1 <ghost@rambler.ru>: Recipient address rejected: User unknown in virtual "
     "mailbox table", HARD, "dsn_bad_mailbox"),
    ("bounced", "5.4.4", None, "Host or domain name not found. Name service error for name=gmial.com type=A: Host not "
     "found", HARD, "dsn_unroutable_domain"),
    ("bounced", None, None, "Unrouteable address", HARD, "text_unknown_user"),
    ("bounced", None, 550, "550 Administrative prohibition", UNKNOWN, "no_rule"),
    ("failed", None, None, "cannot connect to smtp.shop.example, port 587: Connection refused", UNKNOWN,
     "local_send_failure"),
]


@pytest.mark.parametrize("status, dsn, code, text, expected_class, expected_rule", REAL_REPLIES)
def test_real_provider_replies(status, dsn, code, text, expected_class, expected_rule):
    verdict = classify(dsn, code, text, status)
    assert (verdict.bounce_class, verdict.rule) == (expected_class, expected_rule)


def test_550_alone_is_never_enough_to_call_an_address_dead():
    assert classify(None, 550, "550 Rejected", "bounced").bounce_class == UNKNOWN
    assert classify(None, 554, "554 Transaction failed", "bounced").bounce_class == UNKNOWN


def test_rule_ids_are_unique():
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))


def test_classify_frame_adds_class_and_rule():
    frame = pd.DataFrame({"status": ["bounced", "deferred"], "dsn": ["5.1.1", None],
                          "smtp_code": [550, pd.NA], "text": ["550 5.1.1 user unknown", "451 try later"]})
    out = classify_frame(frame)
    assert out["bounce_class"].tolist() == [HARD, SOFT]
    assert out["rule"].tolist() == ["dsn_bad_mailbox", "status_deferred"]


def test_reply_pattern_groups_replies_that_differ_only_in_addresses_and_ids():
    a = reply_pattern("550 5.1.1 <ivan@mail.ru>: user unknown [203.0.113.7] id 1705212903")
    b = reply_pattern("550 5.1.1 <olga@mail.ru>: user unknown [198.51.100.9] id 1705219999")
    assert a == b and "@" not in a
