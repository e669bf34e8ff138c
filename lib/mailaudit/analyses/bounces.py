"""Bounce classification: the log status, the enhanced status code and the reply text -> a bounce class.

Two tables decide, both data:

1. ``REPLY_RULES`` read the remote reply (or the local error): tried in order, the first that matches
   names the reply's class and is kept as evidence. Provider texts and anchored phrases come first
   because codes lie in known places (Yandex answers a dead address with ``550 5.7.1 No such
   user!``; "not listed in Domino Directory" is an unknown user, not a blocklist listing; "the
   recipient account is blocked" is a dead mailbox, not a block of our mail). Then come failures
   of *our* side, blocks of our mail, transient failures, dead-address phrases, and last the
   enhanced code read by subject and detail (RFC 3463, registry RFC 5248) and the basic reply code
   where it is unambiguous.
2. ``OUTCOME_RULES`` combine that with the log status: a deferral is retried, so it is never a hard
   bounce; a hard verdict needs a permanent reply (a 5.x.x / 5xx code, a final refusal without a
   code, or an authoritative text such as NXDOMAIN or null MX), so an expiry after deferrals is
   hard only when its last reply was a permanent recipient failure.

Classes and what they mean for suppression:

- ``hard``: the address is dead (no such user, mailbox or domain, null MX, disabled account):
  suppress it;
- ``soft``: a transient failure on the recipient's side (full mailbox, greylisting, timeouts,
  routing and DNS trouble, message size): counts towards a soft-bounce streak only;
- ``sender_block``: the receiver refuses *our* mail for reputation, blocklists, spam or content
  filters, or policy: never held against the recipient;
- ``sender_config``: a fault of our own set-up or sending (sender address or domain,
  SPF/DKIM/DMARC, reverse DNS/HELO, relay access, rate and connection limits, malformed
  messages, an unreachable relay): fix it on our side; never held against the recipient;
- ``auto_reply``: an out-of-office answer, not a bounce;
- ``unknown``: nothing above matched (listed by frequency in the report for review).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

HARD, SOFT, SENDER_BLOCK, SENDER_CONFIG, AUTO_REPLY, UNKNOWN = (
    "hard", "soft", "sender_block", "sender_config", "auto_reply", "unknown")
CLASSES = (HARD, SOFT, SENDER_BLOCK, SENDER_CONFIG, AUTO_REPLY, UNKNOWN)
SENDER_SIDE = frozenset({SENDER_BLOCK, SENDER_CONFIG})
"""Classes that are about our mail or our set-up: never a reason to suppress the recipient."""

BOUNCED, DEFERRED, EXPIRED, FAILED = "bounced", "deferred", "expired", "failed"


@dataclass(frozen=True)
class Rule:
    """One reply rule: matches when every given condition holds."""

    id: str
    bounce_class: str
    text: re.Pattern | None = None    # searched in the reply text (case-insensitive)
    dsn: re.Pattern | None = None     # full-matched against the enhanced code "5.1.1"
    code: re.Pattern | None = None    # full-matched against the basic code "550" ("" when none)
    definitive: bool = False          # the text is final whatever the code says (NXDOMAIN, null MX)

    def matches(self, dsn: str, code: str, text: str) -> bool:
        return ((self.dsn is None or bool(self.dsn.fullmatch(dsn)))
                and (self.code is None or bool(self.code.fullmatch(code)))
                and (self.text is None or bool(self.text.search(text))))


def _t(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


def _c(pattern: str) -> re.Pattern:
    return re.compile(pattern)


REPLY_RULES: tuple[Rule, ...] = (
    # --- not bounces at all
    Rule("auto_reply", AUTO_REPLY, text=_t(r"auto(?:matic)?[ -]?repl|out of (?:the )?office|on vacation|"
                                           r"vacation reply|автоответ|я в отпуске|нахожусь в отпуске")),
    # --- provider traps: the code says one thing, the text another
    Rule("yandex_no_such_user", HARD, text=_t(r"no such user")),
    Rule("directory_not_listed", HARD, text=_t(r"not listed in (?:the )?(?:Domino Directory|public Name & Address Book)|"
                                               r"Domino ディレクトリには見つかりません|ディレクトリのリストにありません")),
    Rule("recipient_account_blocked", HARD, text=_t(r"recipient(?:'s)? account is blocked|compte du destinataire est bloque|"
                                                    r"policy rejection on the target address|"
                                                    r"recipient address rejected: (?:inactive|blocked)\b|"
                                                    r"mailbox (?:is |has been )?(?:frozen|blocked due to inactivity)")),
    Rule("microsoft_directory_edge_block", HARD, dsn=_c(r"5\.4\.1"),
         text=_t(r"recipient address(?:es)? rejected\s*:?\s*access denied")),
    Rule("gmail_no_account", HARD, text=_t(r"email account that you tried to reach (?:does not exist|is (?:disabled|inactive))|"
                                           r"\?p=(?:NoSuchUser|DisabledUser)")),
    Rule("gmail_receiving_rate", SENDER_CONFIG, text=_t(r"receiving mail (?:at a rate|too quickly)|ReceivingRate")),
    # Gmail: "unusual rate of unsolicited mail originating from your IP / DKIM domain" is reputation
    Rule("gmail_rate_unsolicited", SENDER_BLOCK, dsn=_c(r"[45]\.7\.28")),
    # --- our side: the sender address or domain, authentication, reverse DNS, relay access, rates, format
    Rule("sender_address", SENDER_CONFIG, dsn=_c(r"[45]\.1\.[78]")),
    Rule("sender_address_text", SENDER_CONFIG, text=_t(
        r"sender address rejected|domain of sender address|unroutable sender|invalid sender|emetteur invalide|"
        r"from: domain is invalid|need fully-qualified address|purported responsible address|"
        r"'send mail as'|after MAIL FROM:<[^>]*>(?: SIZE=\d+)?: [^:]*\b(?:no such domain|does not exist)")),
    Rule("sender_authentication", SENDER_CONFIG, dsn=_c(r"[45]\.7\.(?:2[3-6]|509|515|32)")),
    Rule("sender_authentication_text", SENDER_CONFIG, text=_t(
        r"\bdmarc\b|\bspf\b|\bdkim\b|unauthenticated (?:email|senders?)|sender is unauthenticated|"
        r"authentication (?:checks? failed|required|level)|smtp authentication|authrequired|"
        r"not allowed to send from|invalid ip for sending|email address is not verified")),
    Rule("sender_reverse_dns", SENDER_CONFIG, text=_t(
        r"reverse dns|\bPTR\b|\brdns\b|ip name lookup failed|mismatches client ip|may not be mail exchanger|"
        r"unverifyable sending ip|valid sender domain|invalid dns mx or a/aaaa|my name was rejected")),
    Rule("relay_denied", SENDER_CONFIG, text=_t(
        r"relay(?:ing)? (?:access )?(?:denied|disallowed|prohibited|not permitted)|not configured to relay|"
        r"open relay|insecure mail relay|as a relay|no relaying")),
    Rule("rate_limited", SENDER_CONFIG, text=_t(
        r"rate limit(?:ed)? (?:exceeded|because there is no dmarc)|rate limit exceeded|frequency limited|"
        r"too many (?:recipients|connections|recent messages)|sent to too many recipients|excessive volume|"
        r"concurrent connections|max(?:imum)? messages? per connection|relay quota|"
        r"exceeded (?:their|the) limit for the number of messages|message rate limit")),
    Rule("message_format", SENDER_CONFIG, text=_t(
        r"not RFC ?5322 compliant|headers are not RFC compliant|multiple addresses in From|"
        r"missing a valid address in From|header error|headers? too large|duplicate header|8-bit data|"
        r"line limit exceeded|duplicated message-id|protocol violation|syntax error in parameters|"
        r"improper sequence of commands|command parameter not implemented")),
    # --- blocks of our mail: reputation, blocklists, spam and content filters, policy
    Rule("microsoft_block_list", SENDER_BLOCK, text=_t(r"\bS3150\b|\bS3140\b|\bS3114\b|\bS3113\b|\bS843\b|"
                                                       r"banned sending ip|on our block ?list|messages from \S+ weren't sent|\(AS\d+\)")),
    Rule("yahoo_tss", SENDER_BLOCK, text=_t(r"\[TSS0\d\]|unexpected volume or user complaints|\[BL2\d\]|\[PH0\d\]|"
                                            r"not accepted for policy reasons|Message not allowed - \[\d+\]")),
    Rule("blocklisted", SENDER_BLOCK, text=_t(
        r"spamhaus|spamcop|sorbs|abuseat|cloudmark|\bdnsbl\b|\brbl\b|block ?list|blacklist|"
        r"(?<!not )listed (?:in|at|on|by)\b|blocked using|client host (?:\[[^\]]*\] )?blocked|"
        r"blocked for (?:abuse|spam)|block for spam|bloquee|(?:low|poor) reputation|ip reputation|"
        r"sender reputation|unusual rate of unsolicited|AUP#|\(BL\)")),
    Rule("spam_or_content", SENDER_BLOCK, text=_t(
        r"\bspam\b|unsolicited|\bUBE\b|content (?:rejected|denied)|message content|suspicious|virus|"
        r"banned content|illegal attachment|security (?:issue|polic)|flagged as|message filtered|"
        r"mail rejete|spoof")),
    Rule("provider_filter_policy", SENDER_BLOCK, text=_t(
        r"mail (?:is )?rejected by (?:destination domain|recipients)|recipient preferences|reject due to policy restrictions|"
        r"delivery restricted by policy|policy error|mailpolicy violation|"
        r"permission to post|not a member of|policy rejection|envelope blocked|blocked senders")),
    # --- recipient-side trouble that passes
    Rule("over_quota", SOFT, text=_t(r"over ?quota|quota exceeded|mailbox (?:is )?full|mailbox size|mailfolder is full|"
                                     r"out of storage|insufficient (?:system )?storage|disk space|exceeds allowed size|"
                                     r"storage allocation|mailbox exceeded|recipient overquota|quota violation|переполнен")),
    Rule("greylisted", SOFT, text=_t(r"grey ?listed|gray ?listed|greylisting")),
    Rule("message_too_big", SOFT, text=_t(r"size limit exceeded|message (?:is )?too (?:large|big)|exceeds? (?:the )?"
                                          r"(?:message )?size|message length exceeds")),
    Rule("recipient_system_error", SOFT, text=_t(r"pipe to \||procmail|child process of \S+ transport|mailer error|"
                                                 r"operating system error|queue file write error|internal (?:system|server) error")),
    Rule("temporarily_locked", SOFT, text=_t(r"temporar(?:y|ily) locked")),
    # --- dead addresses
    Rule("microsoft_recipient_not_found", HARD, text=_t(r"RESOLVER\.ADR\.Recip\w*NotFound|RecipientNotFound|"
                                                        r"recipient not found by SMTP address lookup")),
    Rule("yahoo_no_account", HARD, text=_t(r"delivery error: dd |doesn't have a [\w.]+ account|this mailbox is disabled|"
                                           r"account has been disabled or discontinued|is no longer valid")),
    Rule("mailru_invalid_mailbox", HARD, text=_t(r"invalid mailbox|user not found")),
    Rule("null_mx", HARD, definitive=True, text=_t(
        r"null mx|does not accept mail|doesn't receive email|no mx (?:record )?found|no smtp service|"
        r"couldn't find a mail exchanger")),
    Rule("domain_not_found", HARD, definitive=True, text=_t(
        r"NXDOMAIN|domain name not found|no such domain|domain does not exist|host unknown|"
        r"host or domain name not found(?!.*try again)|couldn't find any host|illegal host/domain|"
        r"invalid domain|unrouteable address|unroutable address|had no relevant answers|\bdomain not found|"
        r"\bhost (?:\S+ )?not found(?!,? try again)")),
    Rule("unknown_user", HARD, text=_t(
        r"user unknown|unknown (?:user|recipient)|recipient unknown|addressee unknown|"
        r"no such (?:mailbox|recipient|account|address)|(?:does ?n[o']t|not) exist|mailbox (?:not found|unavailable)|"
        r"recipient not found|address (?:couldn't be found|not found|could not be found)|invalid (?:recipient|address|final)|"
        r"no mailbox here|not our (?:customer|user)|no longer on server|account (?:is |has been )?(?:disabled|locked|inactive)|"
        r"inactive (?:email )?address|not a valid (?:email )?address|not a valid rfc|not a registered|mailbox unallocated|"
        r"mailbox has moved|malformed address|recipient (?:temporarily )?unavailable|"
        r"(?:recipient|user)(?:'s)? account is disabled|Invalid-Recipient|NO-DOMAIN|BLOCK-RCPT|not in recipient list|"
        r"destinataire invalide|no valid recipients|bad (?:destination )?(?:mailbox )?address syntax|address is marked as invalid")),
    # --- transient failures (after the dead-address phrases: a reply may add "try again" to a final refusal)
    Rule("expired_after_retries", SOFT, text=_t(
        r"retry time(?:out)? (?:exceeded|not reached)|message expired|envelope expired|could not be delivered for|"
        r"in the queue too long|giving up|unable to deliver (?:this )?message after|not delivered within|"
        r"delivery failed \d+ attempts|undelivered after|failing for a long time")),
    Rule("network_transient", SOFT, text=_t(
        r"timed? ?out|connection (?:refused|reset)|lost connection|network is unreachable|no route to host|"
        r"could not connect|unable to connect|did not accept our requests to connect|not reachable|"
        r"host not found, try again|try again|try later|temporar|service (?:not |un)available|"
        r"server busy|resources temporarily|hop count exceeded|too many hops|routing loop|loop detected|network error|"
        r"service (?:is )?(?:currently |temporarily )?(?:not |un)available|"
        r"dns query failed|name server reply")),
    # --- enhanced status codes (RFC 3463 / RFC 5248), by subject and detail; RFC 7504 reply codes
    Rule("code_host_does_not_accept_mail", HARD, code=_c(r"521|556"), definitive=True),
    Rule("dsn_bad_mailbox", HARD, dsn=_c(r"5\.1\.(?:[1-36]|10)")),
    Rule("dsn_user_account_disabled", HARD, dsn=_c(r"5\.7\.13")),
    Rule("dsn_mailbox_disabled", HARD, dsn=_c(r"5\.2\.1")),
    Rule("dsn_mailbox_full", SOFT, dsn=_c(r"[45]\.2\.[23]")),
    Rule("dsn_mail_system", SOFT, dsn=_c(r"[45]\.3\.\d+")),
    Rule("dsn_routing", SOFT, dsn=_c(r"[45]\.4\.\d+")),
    Rule("dsn_content", SENDER_BLOCK, dsn=_c(r"[45]\.6\.\d+")),
    Rule("dsn_policy", SENDER_BLOCK, dsn=_c(r"[45]\.7\.\d+")),
    # --- words that are only telling after everything above
    Rule("policy_refusal", SENDER_BLOCK, text=_t(
        r"\bpolicy\b|policies|administrative prohibition|prohibited|access denied|not allowed|not authorized|"
        r"not permitted|denied|\bblocked\b|refused|refuse\b")),
    Rule("dsn_transient", SOFT, dsn=_c(r"4\.\d+\.\d+")),
    Rule("code_transient", SOFT, code=_c(r"4\d\d")),
    Rule("code_storage", SOFT, code=_c(r"552")),
)
RULES = REPLY_RULES

LOCAL_FAILURE = Rule("local_send_failure", SENDER_CONFIG, code=_c(""), dsn=_c(""), text=_t(
    r"cannot connect|authentication failed|\btls\b|could not send mail|cannot locate host|"
    r"server did not accept the mail|SASL"))
"""An msmtp ``failed`` event without any SMTP reply: our relay was unreachable or refused our login."""


@dataclass(frozen=True)
class OutcomeRule:
    """How the log status changes a reply's class: `reply_class` under `statuses` becomes `outcome`.

    `permanent` (when not None) restricts the rule to replies that are (True) or are not (False)
    a permanent failure.
    """

    id: str
    reply_class: str
    outcome: str
    statuses: frozenset | None = None
    permanent: bool | None = None


OUTCOME_RULES: tuple[OutcomeRule, ...] = (
    OutcomeRule("deferral_never_hard", HARD, SOFT, statuses=frozenset({DEFERRED})),
    OutcomeRule("temporary_reply_never_hard", HARD, SOFT, permanent=False),
    OutcomeRule("retried_without_reason", UNKNOWN, SOFT, statuses=frozenset({DEFERRED, EXPIRED})),
)


@dataclass(frozen=True)
class Verdict:
    bounce_class: str
    rule: str


NO_RULE = Verdict(UNKNOWN, "no_rule")


def _reply_rule(dsn: str, code: str, text: str, status: str) -> Rule | None:
    if status == FAILED and LOCAL_FAILURE.matches(dsn, code, text):
        return LOCAL_FAILURE
    for rule in REPLY_RULES:
        if rule.matches(dsn, code, text):
            return rule
    return None


def _permanent(rule: Rule | None, dsn: str, code: str, status: str) -> bool:
    """A permanent failure: a 5.x.x (or, without one, 5xx) reply, a final refusal without any code,
    or a text that is final whatever the code."""
    if rule is not None and rule.definitive:
        return True
    first = (dsn or code)[:1]
    if first:
        return first == "5"
    return status in (BOUNCED, FAILED)


@lru_cache(maxsize=200_000)
def classify(dsn: str | None, smtp_code: int | None, text: str | None, status: str = BOUNCED) -> Verdict:
    """The class of one non-delivery (a ``bounced``/``deferred``/``expired``/``failed`` log event).

    ``text`` is the remote server's reply (or the local error); ``dsn`` the enhanced code.
    Cached: mail logs repeat the same replies over and over.
    """
    dsn_text = dsn or ""
    code_text = "" if smtp_code is None else str(smtp_code)
    reply = text or ""
    rule = _reply_rule(dsn_text, code_text, reply, status)
    reply_class, rule_id = (rule.bounce_class, rule.id) if rule else (UNKNOWN, "no_rule")
    permanent = _permanent(rule, dsn_text, code_text, status)
    for outcome in OUTCOME_RULES:
        if (outcome.reply_class == reply_class
                and (outcome.statuses is None or status in outcome.statuses)
                and (outcome.permanent is None or outcome.permanent == permanent)):
            return Verdict(outcome.outcome, f"{rule_id}/{outcome.id}")
    return Verdict(reply_class, rule_id)


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


EVENT_COLUMNS = ["time", "email", "status", "dsn", "smtp_code", "class", "rule", "text", "file", "format"]
DELIVERED = "delivered"
"""The class column of a ``sent`` event in :func:`event_table` (not a bounce)."""


def event_table(paths) -> tuple[pd.DataFrame, list]:
    """Every event of the given delivery logs, one row each, with its class and rule (``delivered``
    for sent events), and the readers' per-file stats; no database needed."""
    from mailaudit.sources.delivery_logs import SENT, DeliveryLogReader

    reader = DeliveryLogReader(paths)
    rows = []
    for event in reader.events():
        if event.status == SENT:
            bounce_class, rule = DELIVERED, ""
        else:
            verdict = classify(event.dsn, event.smtp_code, event.text, event.status)
            bounce_class, rule = verdict.bounce_class, verdict.rule
        rows.append((event.time, event.email, event.status, event.dsn, event.smtp_code, bounce_class, rule,
                     event.text, event.source))
    table = pd.DataFrame.from_records(rows, columns=EVENT_COLUMNS[:-1])
    table["smtp_code"] = table["smtp_code"].astype("Int64")
    table["format"] = table["file"].map({s.path: s.format for s in reader.stats})
    return table[EVENT_COLUMNS], reader.stats
