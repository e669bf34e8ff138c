"""The bounce classifier on real provider replies, including every trap of domain-notes §1."""

from __future__ import annotations

import pandas as pd
import pytest

from mailaudit.analyses.bounces import (AUTO_REPLY, HARD, OUTCOME_RULES, RULES, SENDER_BLOCK, SENDER_CONFIG, SOFT,
                                        UNKNOWN, classify, classify_frame, reply_pattern)

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
     "[AM0EUR02FT012.eop-EUR02.prod.protection.outlook.com]", HARD, "unknown_user"),
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
    ("deferred", "4.4.1", None, "connect to mx.example.ru[198.51.100.3]:25: Connection timed out", SOFT, "network_transient"),
    ("expired", "4.4.1", None, "connect to mx.example.ru[198.51.100.3]:25: Connection timed out", SOFT,
     "network_transient"),
    ("expired", None, None, "retry timeout exceeded", SOFT, "expired_after_retries"),
    # sender blocks without a provider rule
    ("bounced", "5.7.1", 554, "554 5.7.1 [2] Message rejected under suspicion of SPAM; https://ya.cc/1IrBc",
     SENDER_BLOCK, "spam_or_content"),
    ("bounced", None, 550, "host mxs.mail.ru said: 550 spam message rejected. Please visit "
     "http://help.mail.ru/notspam-support/id?c=abc", SENDER_BLOCK, "spam_or_content"),
    # RFC 7372: X.7.26 "multiple authentication checks failed" is our own set-up (was sender_block)
    ("bounced", "5.7.26", 550, "550-5.7.26 This mail has been blocked because the sender is unauthenticated.",
     SENDER_CONFIG, "sender_authentication"),
    ("bounced", "5.7.1", 554, "554 5.7.1 Service unavailable; Client host [203.0.113.7] blocked using zen.spamhaus.org",
     SENDER_BLOCK, "blocklisted"),
    # enhanced codes and fallbacks
    ("bounced", "5.1.1", 550, "550 5.1.1 <ghost@rambler.ru>: Recipient address rejected: User unknown in virtual "
     "mailbox table", HARD, "unknown_user"),
    ("bounced", "5.4.4", None, "Host or domain name not found. Name service error for name=gmial.com type=A: Host not "
     "found", HARD, "domain_not_found"),
    ("bounced", None, None, "Unrouteable address", HARD, "domain_not_found"),
    # Exim's default text for an ACL "deny": a policy refusal of our mail (was unknown)
    ("bounced", None, 550, "550 Administrative prohibition", SENDER_BLOCK, "policy_refusal"),
    # msmtp could not reach our own relay: our set-up, never the recipient's (was unknown)
    ("failed", None, None, "cannot connect to smtp.shop.example, port 587: Connection refused", SENDER_CONFIG,
     "local_send_failure"),
    ("bounced", None, 550, "550 Rejected", UNKNOWN, "no_rule"),
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
    assert out["rule"].tolist() == ["unknown_user", "network_transient"]


def test_reply_pattern_groups_replies_that_differ_only_in_addresses_and_ids():
    a = reply_pattern("550 5.1.1 <ivan@mail.ru>: user unknown [203.0.113.7] id 1705212903")
    b = reply_pattern("550 5.1.1 <olga@mail.ru>: user unknown [198.51.100.9] id 1705219999")
    assert a == b and "@" not in a


# The findings on real mail, each a published fact (RFC 3463/5248/7505, provider texts).
STATUS_AND_CODE_CASES = [
    # a deferral is never hard, whatever its text
    ("deferred", "4.4.3", None, "Host or domain name not found. Name service error for name=mail.example.ru type=MX: "
     "Host not found, try again", SOFT),
    ("deferred", "4.1.1", 450, "host mx.example.org[192.0.2.4] said: 450 4.1.1 <k@example.org>: Recipient address "
     "rejected: User unknown in virtual alias table (in reply to RCPT TO command)", SOFT),
    # an expiry is hard only when the last reply was a permanent recipient failure
    ("expired", "4.4.1", None, "connect to mx.example.org[192.0.2.1]:25: Connection timed out", SOFT),
    ("expired", "4.1.1", 450, "450 4.1.1 <k@example.org>: Recipient address rejected: User unknown", SOFT),
    ("expired", "5.1.1", 550, "550 5.1.1 <k@example.jp>... User Unknown", HARD),
    ("expired", "4.0.0", None, "DNS Error: DNS type 'mx' lookup of gmial.com responded with code NXDOMAIN "
     "Domain name not found: gmial.com", HARD),
    # our side: sender address and domain, authentication, reverse DNS, rates
    ("bounced", "5.1.8", 553, "553 5.1.8 <news@shop.example>... Domain of sender address news@shop.example does not "
     "exist", SENDER_CONFIG),
    ("bounced", "5.1.7", 550, "550 5.1.7 No such domain shop.example.", SENDER_CONFIG),
    ("bounced", None, 550, "550 <news@shop.example>: Sender address rejected: Domain not found", SENDER_CONFIG),
    ("bounced", "5.7.25", 550, "550-5.7.25 The IP address sending this message does not have a PTR record setup",
     SENDER_CONFIG),
    ("bounced", "5.2.1", 550, "550-5.2.1 The user you are trying to contact is receiving mail at a rate that prevents "
     "additional messages from being delivered. https://support.google.com/mail/?p=ReceivingRatePerm", SENDER_CONFIG),
    ("bounced", "5.7.1", 554, "554 5.7.1 <k@example.com>: Relay access denied", SENDER_CONFIG),
    # RFC 3463 details keyword rules got wrong
    ("bounced", "5.4.6", 554, "554 5.4.6 Too many hops", SOFT),
    ("bounced", "5.7.13", 525, "525 5.7.13 Disabled recipient address", HARD),
    ("bounced", "5.1.10", 550, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     HARD),
    ("bounced", None, 550, "550 Host does not accept mail", HARD),
    ("bounced", None, None, "an MX or SRV record indicated no SMTP service", HARD),
    ("bounced", "5.2.2", 552, "552 5.2.2 <k@icloud.com>: user is over quota", SOFT),
    # anchored phrases
    ("bounced", None, None, "User some.name (k@example.jp) not listed in Domino Directory", HARD),
    ("bounced", "5.5.0", 550, "550 5.5.0 Le compte du destinataire est bloque. The recipient account is blocked.", HARD),
    ("bounced", None, 550, "host mx3.email.ua[185.187.81.214] said: 550 Mailbox is frozen. See "
     "http://mail.i.ua/err/3/", HARD),
    ("bounced", None, 550, "550 Host unknown (Authoritative answer from name server)", HARD),
    ("bounced", "5.7.1", 550, "550 5.7.1 Service unavailable, MailFrom domain is listed in Spamhaus.", SENDER_BLOCK),
]


@pytest.mark.parametrize("status, dsn, code, text, expected", STATUS_AND_CODE_CASES)
def test_status_codes_and_anchored_phrases(status, dsn, code, text, expected):
    assert classify(dsn, code, text, status).bounce_class == expected


def test_outcome_rule_is_named_in_the_evidence():
    verdict = classify("4.1.1", 450, "450 4.1.1 Recipient address rejected: User unknown", "deferred")
    assert (verdict.bounce_class, verdict.rule) == (SOFT, "unknown_user/deferral_never_hard")
    assert {rule.id for rule in OUTCOME_RULES} >= {"deferral_never_hard", "temporary_reply_never_hard"}
