"""Bounce classification: enhanced status code plus provider reply texts -> hard / soft / sender_block / auto_reply / unknown.

Rules are tried in order and the first that matches wins; its id is kept as evidence so a
reviewer can see why an address was suppressed. Provider texts come first because the codes
lie in known places (domain-notes §1): Yandex answers a dead address with ``550 5.7.1 No such
user!`` (a 5.7 *policy* code), while Microsoft ``S3150``, Gmail ``5.7.28`` and Yahoo ``TSS04``
are blocks of the *sender* that must never be held against the recipient. Then the enhanced
code (RFC 3463) decides; the basic code alone is used only where it is unambiguous (4xx
transient, 552 storage) because 550/554 carry both "user unknown" and "blocked".

Classes:
- ``hard``: the address is dead (no such mailbox, bad domain, disabled account);
- ``soft``: a transient recipient-side failure (mailbox full, greylisting, timeouts, expiry);
- ``sender_block``: the receiving server refuses *our* mail (reputation, blocklist, policy,
  authentication, content, rate limits);
- ``auto_reply``: an out-of-office answer, not a bounce at all;
- ``unknown``: nothing above matched (listed by frequency in the report for review).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

HARD, SOFT, SENDER_BLOCK, AUTO_REPLY, UNKNOWN = "hard", "soft", "sender_block", "auto_reply", "unknown"
CLASSES = (HARD, SOFT, SENDER_BLOCK, AUTO_REPLY, UNKNOWN)


@dataclass(frozen=True)
class Rule:
    """One classification rule: matches when every given condition holds."""

    id: str
    bounce_class: str
    text: re.Pattern | None = None    # searched in the reply text (case-insensitive)
    dsn: re.Pattern | None = None     # full-matched against the enhanced code "5.1.1"
    code: re.Pattern | None = None    # full-matched against the basic code "550"
    status: frozenset | None = None   # delivery-log statuses it applies to

    def matches(self, dsn: str, code: str, text: str, status: str) -> bool:
        return ((self.status is None or status in self.status)
                and (self.dsn is None or bool(self.dsn.fullmatch(dsn)))
                and (self.code is None or bool(self.code.fullmatch(code)))
                and (self.text is None or bool(self.text.search(text))))


def _t(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def _c(pattern: str) -> re.Pattern:
    return re.compile(pattern)


RULES: tuple[Rule, ...] = (
    # not bounces at all
    Rule("auto_reply", AUTO_REPLY, text=_t(r"auto(?:matic)?[ -]?repl|out of (?:the )?office|on vacation|"
                                           r"vacation reply|автоответ|я в отпуске|нахожусь в отпуске")),
    # provider traps: the code says one thing, the text another
    Rule("yandex_no_such_user", HARD, text=_t(r"no such user")),
    Rule("microsoft_block_list", SENDER_BLOCK, text=_t(r"\bS3150\b|\bS3140\b|\bS3114\b|block ?list|blocklist|"
                                                       r"banned sending ip|on our block")),
    Rule("gmail_rate_unsolicited", SENDER_BLOCK, dsn=_c(r"[45]\.7\.28")),
    Rule("gmail_rate_unsolicited_text", SENDER_BLOCK, text=_t(r"unusual rate of unsolicited mail")),
    Rule("gmail_authentication", SENDER_BLOCK, dsn=_c(r"[45]\.7\.(?:26|27|30|32|40)")),
    Rule("gmail_likely_spam", SENDER_BLOCK, text=_t(r"likely (?:unsolicited|suspicious)|"
                                                    r"detected that this message is likely")),
    Rule("yahoo_tss", SENDER_BLOCK, text=_t(r"\[?\bTS[S]?0\d\b\]?|unexpected volume or user complaints")),
    Rule("mailru_spam", SENDER_BLOCK, text=_t(r"spam message (?:rejected|discarded)|notspam|"
                                              r"message rejected as spam|ratelimit|rate limit")),
    Rule("spamhaus_or_dnsbl", SENDER_BLOCK, text=_t(r"spamhaus|spamcop|barracuda|sorbs|\bdnsbl\b|\brbl\b|"
                                                    r"listed (?:in|at|on)|blacklisted|poor reputation|"
                                                    r"sender reputation|ip reputation")),
    Rule("dmarc_spf_dkim", SENDER_BLOCK, text=_t(r"\bdmarc\b|\bspf\b|\bdkim\b|not authenticated|"
                                                 r"unauthenticated")),
    Rule("gmail_no_account", HARD, text=_t(r"email account that you tried to reach does not exist|"
                                           r"account that you tried to reach is disabled")),
    Rule("microsoft_recipient_not_found", HARD, text=_t(r"RESOLVER\.ADR\.Recip\w*NotFound|RecipientNotFound|"
                                                        r"recipient not found by SMTP address lookup")),
    Rule("microsoft_mailbox_unavailable", HARD, dsn=_c(r"5\.\d+\.\d+"),
         text=_t(r"requested action not taken: mailbox unavailable")),
    Rule("yahoo_no_account", HARD, text=_t(r"delivery error: dd |doesn't have a [\w.]+ account|"
                                           r"this mailbox is disabled|user doesn't have")),
    Rule("mailru_invalid_mailbox", HARD, text=_t(r"invalid mailbox|mailbox [^ ]* ?is unavailable: user not found|"
                                                 r"user not found")),
    Rule("over_quota", SOFT, text=_t(r"over ?quota|quota exceeded|mailbox (?:is )?full|mailbox size limit|"
                                     r"insufficient (?:system )?storage|переполнен")),
    Rule("greylisted", SOFT, text=_t(r"grey ?listed|gray ?listed|greylisting")),
    # enhanced status codes (RFC 3463)
    Rule("dsn_bad_mailbox", HARD, dsn=_c(r"5\.1\.[1-36]|5\.1\.10")),
    Rule("dsn_mailbox_disabled", HARD, dsn=_c(r"5\.2\.1")),
    Rule("dsn_unroutable_domain", HARD, dsn=_c(r"5\.4\.[46]")),
    Rule("dsn_mailbox_full", SOFT, dsn=_c(r"[45]\.2\.2")),
    Rule("dsn_message_too_big", SOFT, dsn=_c(r"[45]\.[23]\.[34]")),
    Rule("dsn_policy", SENDER_BLOCK, dsn=_c(r"[45]\.7\.\d+")),
    Rule("dsn_content", SENDER_BLOCK, dsn=_c(r"5\.6\.\d+")),
    Rule("expired_after_retries", SOFT, status=frozenset({"expired"})),
    # the relay itself never answered about the recipient (msmtp: connection, TLS, authentication)
    Rule("local_send_failure", UNKNOWN, code=_c(""), dsn=_c(""),
         text=_t(r"cannot connect|authentication failed|tls|could not send mail|cannot locate host")),
    # keyword fallbacks (listmonk/Mautic style) for replies without a telling enhanced code
    Rule("text_unknown_user", HARD, text=_t(r"user unknown|unknown user|unknown recipient|no such (?:mailbox|recipient|"
                                            r"account)|does not exist|doesn't exist|recipient not found|"
                                            r"address rejected|invalid recipient|mailbox not found|"
                                            r"mailbox unavailable|unrouteable address|unroutable address|"
                                            r"host or domain name not found|domain not found|no mx|"
                                            r"account (?:is )?disabled|нет такого")),
    Rule("text_rejected_as_spam", SENDER_BLOCK, text=_t(r"\bspam\b|\bblocked\b|\bpolicy\b|rejected for policy")),
    Rule("dsn_transient", SOFT, dsn=_c(r"4\.\d+\.\d+")),
    Rule("code_transient", SOFT, code=_c(r"4\d\d")),
    Rule("code_storage", SOFT, code=_c(r"552")),
    Rule("text_transient", SOFT, text=_t(r"try again later|temporar|timed? ?out|connection refused|"
                                         r"connection reset|lost connection")),
    Rule("status_deferred", SOFT, status=frozenset({"deferred"})),
)


@dataclass(frozen=True)
class Verdict:
    bounce_class: str
    rule: str


NO_RULE = Verdict(UNKNOWN, "no_rule")


@lru_cache(maxsize=200_000)
def classify(dsn: str | None, smtp_code: int | None, text: str | None, status: str = "bounced") -> Verdict:
    """The class of one non-delivery (a ``bounced``/``deferred``/``expired``/``failed`` log event).

    ``text`` is the remote server's reply (or the local error); ``dsn`` the enhanced code.
    Cached: mail logs repeat the same replies over and over.
    """
    dsn_text = dsn or ""
    code_text = "" if smtp_code is None else str(smtp_code)
    reply = text or ""
    for rule in RULES:
        if rule.matches(dsn_text, code_text, reply, status):
            return Verdict(rule.bounce_class, rule.id)
    return NO_RULE


def classify_frame(events: pd.DataFrame) -> pd.DataFrame:
    """Adds ``bounce_class`` and ``rule`` to a frame of non-delivery events (columns dsn, smtp_code, text, status)."""
    verdicts = [
        classify(dsn if isinstance(dsn, str) else None,
                 None if code is None or pd.isna(code) else int(code),
                 text if isinstance(text, str) else None, status)
        for dsn, code, text, status in zip(events["dsn"], events["smtp_code"], events["text"], events["status"])
    ]
    out = events.copy()
    out["bounce_class"] = [v.bounce_class for v in verdicts]
    out["rule"] = [v.rule for v in verdicts]
    return out


_VARIABLE_PARTS = re.compile(
    r"[^\s<>()\[\]]+@[^\s<>()\[\]]+"          # addresses
    r"|\[[0-9a-f.:]+\]"                       # [ip]
    r"|\b[0-9a-f]{8,}\b|\b\d{4,}\b"            # ids, timestamps
    r"|\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+){2,}\b", re.IGNORECASE)  # host names


def reply_pattern(text: str) -> str:
    """A reply with addresses, hosts, IPs and ids replaced by ``…``, so equal replies group together."""
    return re.sub(r"\s+", " ", _VARIABLE_PARTS.sub("…", text or "")).strip()[:200]
