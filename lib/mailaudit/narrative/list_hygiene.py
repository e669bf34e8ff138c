"""Wording of the list_hygiene report: the findings (the rule that raises each, its sentence, the risk and
the fix), headline, the figures' definitions, table labels and chart texts. The counts come from
`analyses.hygiene`; the machine keys it returns (bounce classes, classifier rules, address issues,
suppression reasons) are named here in the reader's words and the bundle's language, and stay as they are
in the CSV files."""
from __future__ import annotations

import re

import pandas as pd

from mailaudit.analyses.hygiene import BOUNCE_LINES, COMPLAINT_LINES, HygieneResult
from mailaudit.narrative import language
from mailaudit.narrative.common import Finding, count, of, pct, ranked, severity_by_share
from mailaudit.narrative.language import N_, _, ngettext


def _line_severity(worst: float, lines: tuple[float, ...]) -> str:
    """Rates judged against the mailbox providers' published lines: at or over the second line high,
    over the first medium."""
    return "high" if worst >= lines[1] else "medium"


# The bundle file that backs each finding (the index links to it).
EVIDENCE = {
    "sent_after_unsubscribe": "suppress_unsubscribed.csv", "sent_after_hard_bounce": "suppress_hard_bounce.csv",
    "complaint_rate": "tables/hygiene_by_posting.csv", "hard_bounce_rate": "tables/hygiene_by_posting.csv",
    "unsubscribed_not_excluded_in_crm": "suppress_crm_exclusion.csv", "complaints": "suppress_complaint.csv",
    "soft_bounce_streak": "suppress_soft_bounce_streak.csv", "sender_block_events": "tables/hygiene_bounce_rules.csv",
    "typo_domain": "suppress_typo_domain.csv", "invalid_syntax": "suppress_invalid_syntax.csv",
    "inactive": "suppress_inactive.csv", "disposable_domain": "suppress_disposable.csv",
    "role_account": "suppress_role_account.csv", "duplicate_contacts": "suppress_duplicate.csv",
}
PER_POSTING = ("complaint_rate", "hard_bounce_rate")


def _unit(kind: str, denominator: int) -> str:
    """What a finding's count is counted among, in words that follow "n of N" (Russian: the form that
    follows the number N)."""
    if kind == "postings":
        return ngettext("posting", "postings", denominator)
    if kind == "sends":
        return ngettext("send", "sends", denominator)
    if kind == "e-mail contacts":
        return ngettext("e-mail contact", "e-mail contacts", denominator)
    return ""


def _hours(n: int) -> str:
    return ngettext("{n} hour", "{n} hours", n).format(n=count(n))


def _months(n: int) -> str:
    return ngettext("{n} month", "{n} months", n).format(n=count(n))


def _or_more_letters(n: int) -> str:
    """"3 or more letters" (a threshold of the parameters)."""
    return ngettext("{n} or more letter", "{n} or more letters", n).format(n=count(n))


def findings(result: HygieneResult, hygiene: dict, have_log: bool) -> list[Finding]:
    """What to fix, most severe and largest first. Severity scales with size (`severity_by_share` of
    the contacts or sends concerned), kept at medium or above for consent and dead-address problems;
    mail after an opt-out is always high (each one breaks the person's explicit refusal); per-mailing bounce
    and complaint rates are judged against the providers' published lines."""
    f, facts = result.figures, result.facts
    contacts = f.get("contacts") or 0
    attempted = facts.get("attempted_sends") or 0
    out: list[Finding] = []

    def add(key, n, denominator, title, risk, fix, *, floor="low", severity=None):
        if n:
            level = severity or severity_by_share(n, denominator, floor=floor)
            unit = ("postings" if key in PER_POSTING else "sends" if denominator == attempted
                    else "e-mail contacts" if denominator == contacts else "")
            out.append(Finding(level, title, f"{of(n, denominator)}. {risk}", fix=fix, count=int(n),
                               denominator=denominator or None, key=key,
                               extra={"unit": _unit(unit, denominator), "evidence": EVIDENCE.get(key),
                                      "stake": risk}))

    people = facts.get("people_sent_after_unsubscribe") or 0
    add("sent_after_unsubscribe", f.get("sent_after_unsubscribe"), attempted,
        ngettext("Mail sent to {people} person more than {hours} after they unsubscribed from that campaign",
                 "Mail sent to {people} people more than {hours} after they unsubscribed from that campaign",
                 people).format(people=count(people), hours=_hours(int(hygiene["unsub_grace_hours"]))),
        _("Mail against an explicit opt-out draws spam complaints, breaks Gmail's and Yahoo's rules for bulk "
          "senders (unsubscribes honoured within 48 hours) and is a legal exposure."),
        _("exclude the addresses in suppress_unsubscribed.csv from every segment, stop re-importing them into "
          "the campaign's address book and check that the campaign's subscriptions are not reset"),
        floor="high")
    dead = facts.get("addresses_sent_after_hard_bounce") or 0
    add("sent_after_hard_bounce", f.get("sent_after_hard_bounce"), attempted,
        ngettext("Mail sent to {n} address that had already bounced as dead",
                 "Mail sent to {n} addresses that had already bounced as dead", dead).format(n=count(dead)),
        _("Every send to a dead address raises the bounce rate that mailbox providers judge the domain by."),
        _("import suppress_hard_bounce.csv into the blacklist (Marketing > Blacklist) and unsubscribe those "
          "contacts; keep Bitrix's automatic blacklist switched on"), floor="medium")
    postings = len(result.by_posting)
    worst_complaint = result.by_posting["complaint_rate"].max() if postings else float("nan")
    if pd.notna(worst_complaint) and worst_complaint >= COMPLAINT_LINES[0]:
        over = int((result.by_posting["complaint_rate"] >= COMPLAINT_LINES[0]).sum())
        add("complaint_rate", over, postings,
            _("Mailings with a spam-complaint rate at or above {line} (worst {worst})").format(
                line=language.percent(COMPLAINT_LINES[0]), worst=pct(worst_complaint)),
            _("Gmail and Yahoo filter bulk mail from senders above 0.1% complaints and reject it above 0.3%."),
            _("blacklist the addresses in suppress_complaint.csv, mail only recently engaged contacts and make "
              "the unsubscribe link prominent (one-click)"),
            severity=_line_severity(worst_complaint, COMPLAINT_LINES))
    if have_log and postings:
        worst = result.by_posting["hard_bounce_rate"].max()
        if pd.notna(worst) and worst >= BOUNCE_LINES[0]:
            over = int((result.by_posting["hard_bounce_rate"] >= BOUNCE_LINES[0]).sum())
            add("hard_bounce_rate", over, postings,
                _("Mailings with a dead-address (hard-bounce) rate at or above {line} (worst {worst})").format(
                    line=language.percent(BOUNCE_LINES[0], 0), worst=pct(worst)),
                _("Bounce rates above 2% draw provider filtering; Amazon SES reviews accounts at 5%."),
                _("suppress suppress_hard_bounce.csv before the next send and verify old address books before "
                  "mailing them"), severity=_line_severity(worst, BOUNCE_LINES))
    add("unsubscribed_not_excluded_in_crm", f.get("unsubscribed_not_excluded_in_crm"), contacts,
        _("Unsubscribed or blacklisted contacts are not excluded in the CRM"),
        _("Salespeople and CRM automation (robots, one-to-one mail) keep writing to people who opted out."),
        _("import suppress_crm_exclusion.csv into the CRM's exclusion list (CRM > Settings > Exclusions), then "
          "have a developer add a handler on the sender module's OnAfterRecipientUnsub event that adds each "
          "new unsubscribe to that list, so the gap stays closed"), floor="medium")
    add("complaints", f.get("complaints"), contacts, _("Contacts reported your mail as spam"),
        _("Each complaint counts against Gmail's and Yahoo's 0.1% line."),
        _("never mail them again (suppress_complaint.csv); Bitrix blacklists them already, so check that no "
          "import adds them back"), floor="medium")
    streak = int(hygiene["soft_bounce_streak"])
    add("soft_bounce_streak", f.get("soft_bounce_streak"), contacts,
        _("Addresses whose mailbox refused {letters} in a row (full or unreachable)").format(
            letters=_or_more_letters(streak)),
        _("Full or abandoned mailboxes turn into dead addresses; every repeated send adds a bounce."),
        _("pause them (suppress_soft_bounce_streak.csv) and try again after 30–90 days"))
    add("sender_block_events", f.get("sender_block_events"), attempted,
        _("Bounces that were providers blocking the sender, not bad addresses"),
        _("Providers refuse the mail for reputation or policy reasons; every recipient there is affected."),
        _("check SPF, DKIM and DMARC of the sending domain, Google Postmaster Tools and the provider's block "
          "list (Microsoft: delist at sender.office.com), and slow down sending to that provider"), floor="medium")
    add("typo_domain", f.get("typo_domain"), contacts, _("Addresses with a mistyped domain (gmial.com, mail.ri…)"),
        _("They bounce or, worse, reach look-alike domains that act as spam traps."),
        _("correct them with the suggestion in suppress_typo_domain.csv after confirming with the contact, and "
          "add double opt-in to the sign-up forms"))
    add("invalid_syntax", f.get("invalid_syntax"), contacts, _("Addresses that are not valid e-mail addresses"),
        _("They can never be delivered and count as errors on every send."),
        _("fix or delete them in the CRM (suppress_invalid_syntax.csv) and validate the address in web forms"))
    min_sends, months = int(hygiene["inactive_min_sends"]), int(hygiene["inactive_months"])
    add("inactive", f.get("inactive"), contacts,
        _("Contacts who got {letters} in {months} without opening or clicking").format(
            letters=_or_more_letters(min_sends), months=_months(months)),
        _("Silent recipients lower engagement, which Gmail and Mail.ru use for inbox placement; old inactive "
          "addresses become spam traps."),
        _("send them a re-engagement (sunset) campaign, then suppress those who stay silent (suppress_inactive.csv)"))
    add("disposable_domain", f.get("disposable_domain"), contacts, _("Throw-away (disposable) mailboxes"),
        _("Nobody reads them after sign-up."), _("suppress them (suppress_disposable.csv) and block disposable "
                                                 "domains in the sign-up forms"))
    add("role_account", f.get("role_account"), contacts, _("Shared role mailboxes (info@, sales@…)"),
        _("Shared mailboxes complain more and rarely gave personal consent."),
        _("review suppress_role_account.csv and keep only those with documented consent"))
    add("duplicate_contacts", f.get("duplicate_contacts"), contacts,
        _("Contacts that are another spelling of an existing mailbox"),
        _("The same person gets the same letter twice."),
        _("merge the duplicates listed in suppress_duplicate.csv"))
    return ranked(out)


def headline(result: HygieneResult, items: list[Finding]) -> str:
    f = result.figures
    parts = [ngettext("{n} contact", "{n} contacts", f["contacts"]).format(n=count(f["contacts"]))]
    if f.get("hard_bounce") is not None:
        parts.append(ngettext("{n} dead address", "{n} dead addresses", f["hard_bounce"]).format(
            n=count(f["hard_bounce"])))
    if f.get("sent_after_unsubscribe"):
        parts.append(ngettext("{n} send after an unsubscribe", "{n} sends after an unsubscribe",
                              f["sent_after_unsubscribe"]).format(n=count(f["sent_after_unsubscribe"])))
    if f.get("sent_after_hard_bounce"):
        parts.append(ngettext("{n} send to dead addresses", "{n} sends to dead addresses",
                              f["sent_after_hard_bounce"]).format(n=count(f["sent_after_hard_bounce"])))
    high = sum(1 for item in items if item.severity == "high")
    parts.append(ngettext("{n} high-severity finding", "{n} high-severity findings", high).format(n=count(high)))
    return "; ".join(parts)


# --- what the notebook says in its own words -------------------------------------------------------

def nothing_found() -> str:
    return _("No hygiene problem found: every check below came back clean.")


def no_log() -> str:
    """Instead of the bounce classes' chart, when no delivery log has a usable line."""
    return _("No mail-server log was given, or none of its files has a usable line: dead addresses come from "
             "Bitrix's automatic blacklist only, repeatedly refused mailboxes and blocks of the sender cannot be "
             "told apart, and the rates below use the sends Bitrix marked as errors.")


def no_log_given() -> str:
    return _("No mail-server log was given.")


UNREADABLE_LABELS = {"line": N_("Line as written in the log")}


def unreadable_view(samples: list[str]) -> pd.DataFrame:
    """Examples of log lines no reader understood (data: shown as they are)."""
    return pd.DataFrame({"line": samples[:5]})


def unreadable_caption() -> str:
    return _("Examples of lines the kit could not read (addresses masked)")


def suppression_caption() -> str:
    return _("Suppression files written")


def issues_caption() -> str:
    return _("Examples of each address problem")


def worst_caption(have_log: bool) -> str:
    return _("Mailings with the highest bounce rate") if have_log else _("Mailings with the highest error rate")


def provider_caption() -> str:
    return _("Rates by mailbox provider")


def crm_caption() -> str:
    return _("Unsubscribed or blacklisted contacts to add to the CRM's exclusion list")


def figures_caption(end) -> str:
    return _("List hygiene figures, evidence up to {date}").format(date=language.date(end))


def log_files_caption() -> str:
    return _("Mail-server log files read (unreadable, cut and undecodable lines are counted, never fatal)")


def rules_caption() -> str:
    return _("Bounces by classifier rule")


def unclassified_caption() -> str:
    return _("Most frequent replies no rule recognised (review these)")


# --- the figures -------------------------------------------------------------------------------

FIGURES = {
    "contacts": (N_("E-mail contacts"), N_("contacts of the sender module with an e-mail address")),
    "invalid_syntax": (N_("Invalid addresses"),
                       N_("contacts whose address is not valid e-mail syntax (checked without DNS)")),
    "role_account": (N_("Role mailboxes"),
                     N_("contacts whose address is a shared mailbox (info, sales, support, noreply…)")),
    "disposable_domain": (N_("Throw-away mailboxes"),
                          N_("contacts on a domain from a maintained list of disposable domains")),
    "typo_domain": (N_("Mistyped domains"),
                    N_("contacts whose domain is one or two keystrokes from a popular provider's")),
    "duplicate_contacts": (N_("Duplicate mailboxes"),
                           N_("contacts reaching the same mailbox as an older contact (Gmail dots and +tags, "
                              "googlemail.com, Yandex domains…), all but the oldest")),
    "hard_bounce": (N_("Dead addresses (hard bounces)"),
                    N_("addresses with a permanent failure in the mail server's log or on Bitrix's automatic "
                       "blacklist")),
    "soft_bounce_streak": (N_("Repeatedly refused mailboxes"),
                           N_("addresses refused several letters in a row (no delivery between) from two or more "
                              "mailings over a week or more")),
    "sender_block_events": (N_("Blocks of the sender"),
                            N_("bounces that were providers refusing the sender (reputation, policy), not bad "
                               "addresses")),
    "sent_after_hard_bounce": (N_("Sends to dead addresses"),
                               N_("sends of the period to an address after its first hard bounce, which may be "
                                  "older")),
    "unsubscribed_not_excluded_in_crm": (N_("Opt-outs not excluded in the CRM"),
                                         N_("unsubscribed or blacklisted contacts whose CRM address is neither on "
                                            "the CRM's exclusion list nor on the blacklist")),
    "sent_after_unsubscribe": (N_("Sends after an unsubscribe"),
                               N_("sends of a campaign in the period more than the grace period after the contact "
                                  "unsubscribed from it, which may be older")),
    "complaints": (N_("Spam complaints"), N_("contacts who marked a letter as spam")),
    "inactive": (N_("Inactive contacts"),
                 N_("contacts with the minimum number of letters in the look-back window and no open or click in "
                    "it")),
}


def figures_table(figures: dict) -> pd.DataFrame:
    """The audit's figures as a table: figure, value (None = needs data the source lacks), what it counts."""
    return pd.DataFrame([{"figure": _(name), "value": figures.get(key), "definition": _(text)}
                         for key, (name, text) in FIGURES.items()])


FIGURES_LABELS = {"value": N_("Count")}

# --- address problems ----------------------------------------------------------------------------

ISSUE_NAMES = {"invalid_syntax": N_("invalid address"), "typo_domain": N_("mistyped domain"),
               "disposable": N_("throw-away mailbox"), "disposable_domain": N_("throw-away mailbox"),
               "role_account": N_("role mailbox"), "duplicate": N_("duplicate"),
               "duplicate_contacts": N_("duplicate"), "no_mail_domain": N_("domain accepts no mail")}

DETAILS = {
    # issue: (how analyses.hygiene writes the detail, the message that says it in the reader's language)
    "role_account": (re.compile(r"role mailbox (?P<name>.*)", re.S), N_("role mailbox {name}")),
    "disposable_domain": (re.compile(r"disposable domain (?P<domain>.*)", re.S), N_("disposable domain {domain}")),
    "typo_domain": (re.compile(r"did you mean (?P<domain>.*)", re.S), N_("did you mean {domain}")),
    "duplicate": (re.compile(r"same mailbox as (?P<address>.*)", re.S), N_("same mailbox as {address}")),
}
SYNTAX_REASONS = (
    # email-validator's reasons (and the audit's own "empty address"), read from their English text
    (r"empty address", N_("empty address")),
    (r"An email address must have an @-sign\.", N_("An email address must have an @-sign.")),
    (r"There must be something before the @-sign\.", N_("There must be something before the @-sign.")),
    (r"There must be something after the @-sign\.", N_("There must be something after the @-sign.")),
    (r"An email address cannot have two periods in a row\.", N_("An email address cannot have two periods in a row.")),
    (r"An email address cannot start with a period\.", N_("An email address cannot start with a period.")),
    (r"An email address cannot end with a period\.", N_("An email address cannot end with a period.")),
    (r"An email address cannot have a period immediately before the @-sign\.",
     N_("An email address cannot have a period immediately before the @-sign.")),
    (r"An email address cannot have a period immediately after the @-sign\.",
     N_("An email address cannot have a period immediately after the @-sign.")),
    (r"An email address cannot (?:start|end) with a hyphen\.|An email address cannot have a hyphen immediately "
     r"(?:before|after) the @-sign\.|An email address cannot have a period and a hyphen next to each other\.",
     N_("A hyphen stands where the address cannot have one.")),
    (r"The part after the @-sign contains invalid characters: (?P<chars>.*)\.",
     N_("The part after the @-sign contains invalid characters: {chars}.")),
    (r"The email address contains invalid characters before the @-sign: (?P<chars>.*)\.",
     N_("The part before the @-sign contains invalid characters: {chars}.")),
    (r"The part after the @-sign is not valid\. It should have a period\.",
     N_("The part after the @-sign is not valid. It should have a period.")),
    (r"The part after the @-sign is not valid\. It is not within a valid top-level domain\.",
     N_("The part after the @-sign is not valid. It is not within a valid top-level domain.")),
    (r"The part after the @-sign is a special-use or reserved name.*",
     N_("The part after the @-sign is a reserved name that cannot be used with e-mail.")),
    (r"The email address is too long.*|After the @-sign, periods cannot be separated by so many characters.*",
     N_("The address is too long.")),
    (r"Internationalized characters before the @-sign are not supported.*",
     N_("The part before the @-sign has non-Latin characters, which mail servers do not accept.")),
)
SYNTAX_REASONS = tuple((re.compile(pattern, re.S), message) for pattern, message in SYNTAX_REASONS)
CHARACTER_NAMES = {"SPACE": N_("space"), "NO-BREAK SPACE": N_("no-break space"),
                   "CHARACTER TABULATION": N_("tab")}


def _characters(listed: str) -> str:
    """email-validator's list of bad characters ("'@', SPACE"), its character names in words."""
    return ", ".join(_(CHARACTER_NAMES[c]) if c in CHARACTER_NAMES else c for c in listed.split(", "))


def syntax_reason(reason: str) -> str:
    """Why an address is not valid, in the reader's language (English: email-validator's own words)."""
    if language.active() == language.DEFAULT_LANGUAGE or not isinstance(reason, str):
        return reason
    for pattern, message in SYNTAX_REASONS:
        found = pattern.fullmatch(reason.strip())
        if found:
            chars = found.groupdict().get("chars")
            return _(message).format(chars=_characters(chars)) if chars is not None else _(message)
    return _("The address is not valid e-mail syntax.")


def issue_detail(issue: str, detail) -> str:
    """An address issue's detail (as analyses.hygiene writes it) in the reader's language."""
    if not isinstance(detail, str) or language.active() == language.DEFAULT_LANGUAGE:
        return detail
    if issue == "invalid_syntax":
        return syntax_reason(detail)
    if issue == "no_mail_domain":
        return _("the domain accepts no mail (no MX or A record, or a null MX)")
    if issue in DETAILS:
        pattern, message = DETAILS[issue]
        found = pattern.fullmatch(detail)
        if found:
            return _(message).format(**found.groupdict())
    return detail


def issues_view(issues: pd.DataFrame, per_issue: int = 5) -> pd.DataFrame:
    """A few examples of each address problem, the problem and its detail in words."""
    view = issues.groupby("issue").head(per_issue).reset_index(drop=True)
    view["detail"] = [issue_detail(issue, detail) for issue, detail in zip(view["issue"], view["detail"])]
    view["issue"] = view["issue"].map(lambda name: _(ISSUE_NAMES[name]) if name in ISSUE_NAMES
                                      else name.replace("_", " "))
    return view


ISSUE_LABELS = {"contact_id": N_("Contact no."), "suggestion": N_("Suggested correction"), "detail": N_("Detail"),
                "kept_contact_id": N_("Kept contact no.")}

# --- bounces ---------------------------------------------------------------------------------------

BOUNCE_CLASSES = {"hard": N_("hard bounce (dead address)"), "soft": N_("soft bounce (mailbox full or unreachable)"),
                  "sender_block": N_("block of the sender"), "sender_config": N_("fault of our own set-up"),
                  "auto_reply": N_("auto-reply"), "unknown": N_("not recognised")}
BOUNCE_CLASSES_SHORT = {"hard": N_("hard bounce"), "soft": N_("soft bounce"), "sender_block": N_("block of the sender"),
                        "sender_config": N_("our own set-up"), "auto_reply": N_("auto-reply"),
                        "unknown": N_("not recognised")}
"""The bounce classes as the chart's bars name them."""
RULE_NAMES = {
    # analyses.bounces: REPLY_RULES, LOCAL_FAILURE and OUTCOME_RULES, by id
    "auto_reply": N_("auto-reply or out-of-office"),
    "yandex_no_such_user": N_("Yandex: no such user"),
    "directory_not_listed": N_("not in the recipient's directory"),
    "recipient_account_blocked": N_("recipient's account blocked"),
    "microsoft_directory_edge_block": N_("Microsoft: recipient not in the directory"),
    "gmail_no_account": N_("Gmail: no such account"),
    "gmail_receiving_rate": N_("Gmail: recipient receives mail too fast"),
    "gmail_rate_unsolicited": N_("Gmail: unusual rate of unsolicited mail"),
    "sender_address": N_("sender address refused (code)"),
    "sender_address_text": N_("sender address refused"),
    "sender_authentication": N_("sender authentication (code)"),
    "sender_authentication_text": N_("sender authentication (SPF, DKIM, DMARC)"),
    "sender_reverse_dns": N_("reverse DNS of the sending server"),
    "relay_denied": N_("relay denied"),
    "rate_limited": N_("sending rate limited"),
    "message_format": N_("malformed message"),
    "microsoft_block_list": N_("Microsoft: block list"),
    "yahoo_tss": N_("Yahoo: refused for volume or complaints"),
    "blocklisted": N_("sender on a blocklist"),
    "spam_or_content": N_("spam or content filter"),
    "provider_filter_policy": N_("provider's filter or policy"),
    "over_quota": N_("mailbox full"),
    "greylisted": N_("greylisted"),
    "message_too_big": N_("message too big"),
    "recipient_system_error": N_("recipient's mail system error"),
    "temporarily_locked": N_("mailbox temporarily locked"),
    "microsoft_recipient_not_found": N_("Microsoft: recipient not found"),
    "yahoo_no_account": N_("Yahoo: no such account"),
    "mailru_invalid_mailbox": N_("Mail.ru: no such mailbox"),
    "null_mx": N_("domain accepts no mail (null MX)"),
    "domain_not_found": N_("domain does not exist"),
    "unknown_user": N_("unknown user"),
    "expired_after_retries": N_("expired after retries"),
    "network_transient": N_("temporary network failure"),
    "code_host_does_not_accept_mail": N_("host accepts no mail (code 521/556)"),
    "dsn_bad_mailbox": N_("bad mailbox (code 5.1.x)"),
    "dsn_user_account_disabled": N_("account disabled (code 5.7.13)"),
    "dsn_mailbox_disabled": N_("mailbox disabled (code 5.2.1)"),
    "dsn_mailbox_full": N_("mailbox full (code x.2.2/x.2.3)"),
    "dsn_mail_system": N_("recipient's mail system (code x.3.x)"),
    "dsn_routing": N_("routing (code x.4.x)"),
    "dsn_content": N_("content refused (code x.6.x)"),
    "dsn_policy": N_("policy refusal (code x.7.x)"),
    "policy_refusal": N_("refused by policy"),
    "dsn_transient": N_("temporary failure (code 4.x.x)"),
    "code_transient": N_("temporary failure (code 4xx)"),
    "code_storage": N_("storage exceeded (code 552)"),
    "local_send_failure": N_("our relay unreachable or refused our login"),
    "bitrix_blacklist": N_("Bitrix's automatic blacklist"),
    "no_rule": N_("no rule matched"),
}
OUTCOME_NAMES = {
    "deferral_never_hard": N_("a deferral is never hard"),
    "temporary_reply_never_hard": N_("a temporary reply is never hard"),
    "retried_without_reason": N_("retried without a reason given"),
}


def bounce_class(name) -> str:
    return _(BOUNCE_CLASSES[name]) if name in BOUNCE_CLASSES else name


def rule_name(rule) -> str:
    """A classifier rule's id ("unknown_user", "unknown_user/deferral_never_hard") in words."""
    if not isinstance(rule, str):
        return rule
    reply, _slash, outcome = rule.partition("/")
    name = _(RULE_NAMES[reply]) if reply in RULE_NAMES else reply
    if outcome:
        then = _(OUTCOME_NAMES[outcome]) if outcome in OUTCOME_NAMES else outcome
        return _("{rule}; {outcome}").format(rule=name, outcome=then)
    return name


def rules_view(rules: pd.DataFrame) -> pd.DataFrame:
    """`analyses.hygiene.rule_counts` with each class and rule in words (the CSV keeps the ids)."""
    view = rules.copy()
    view["bounce_class"] = view["bounce_class"].map(bounce_class)
    view["rule"] = view["rule"].map(rule_name)
    return view


RULE_LABELS = {"bounce_class": N_("Kind of bounce"), "rule": N_("Rule that matched"), "events": N_("Bounces"),
               "addresses": N_("Addresses"), "example": N_("Typical reply")}
LOG_FILE_LABELS = {"file": N_("File"), "format": N_("Format"), "lines": N_("Lines"), "events": N_("Delivery events"),
                   "unparseable": N_("Lines not understood"), "truncated_lines": N_("Lines cut short"),
                   "undecodable_lines": N_("Lines in an unknown encoding"), "read_error": N_("Read error"),
                   "year_source": N_("Year taken from")}
LOG_FORMATS = {"postfix": "Postfix", "exim": "Exim", "msmtp": "msmtp", "csv": "CSV"}
"""The readers' formats by their product names (not translated)."""
YEAR_SOURCES = {"dateext": N_("the date in the file's name"), "modification time": N_("the file's modification time"),
                "next rotated file": N_("the next rotated file")}
_DAMAGED_GZIP = re.compile(r"(?P<file>[^:]*): damaged or truncated gzip \((?P<why>.*)\); "
                           r"the lines before the damage were read", re.S)


def _read_error(text):
    found = _DAMAGED_GZIP.fullmatch(text) if isinstance(text, str) else None
    if found and language.active() != language.DEFAULT_LANGUAGE:
        return _("{file}: damaged or cut-short gzip; the lines before the damage were read").format(
            file=found["file"])
    return text


def log_files_view(files: pd.DataFrame) -> pd.DataFrame:
    """The delivery-log files read, their format, year source and read error in words (the CSV keeps the
    keys)."""
    view = files.copy()
    if "format" in view:
        view["format"] = view["format"].map(lambda v: LOG_FORMATS.get(v, _("not recognised") if v == "not recognised"
                                                                     else v))
    if "year_source" in view:
        view["year_source"] = view["year_source"].map(lambda v: _(YEAR_SOURCES[v]) if v in YEAR_SOURCES else v)
    if "read_error" in view:
        view["read_error"] = view["read_error"].map(_read_error)
    return view


UNCLASSIFIED_LABELS = {"reply": N_("Reply (addresses removed)"), "events": N_("Bounces"),
                       "example_status": N_("Example status")}
LOG_STATUSES = {"bounced": N_("bounced"), "deferred": N_("deferred"), "expired": N_("expired"),
                "failed": N_("failed")}


def unclassified_view(unclassified: pd.DataFrame) -> pd.DataFrame:
    view = unclassified.copy()
    view["example_status"] = view["example_status"].map(lambda v: _(LOG_STATUSES[v]) if v in LOG_STATUSES else v)
    return view


# --- rates -----------------------------------------------------------------------------------------

RATE_LABELS = {"posting_id": N_("Mailing no."), "campaign": N_("Campaign"), "first_send": N_("First send"),
               "provider": N_("Mailbox provider"), "attempted": N_("Attempted"), "sent": N_("Sent"),
               "hard_bounces": N_("Dead-address bounces"), "hard_bounce_rate": N_("Dead-address rate"),
               "soft_bounces": N_("Refused (soft)"), "sender_blocks": N_("Blocks of the sender"),
               "error_rows": N_("Sends in error"), "error_rate": N_("Error rate"), "complaints": N_("Complaints"),
               "complaint_rate": N_("Complaint rate")}
PROVIDER_NAMES = {"gmail": N_("gmail"), "mail.ru": N_("mail.ru"), "yandex": N_("yandex"), "apple": N_("apple"),
                  "microsoft": N_("microsoft"), "yahoo": N_("yahoo"), "rambler": N_("rambler"),
                  "other": N_("other")}
"""`emails.PROVIDER_DOMAINS`' keys as a reader names the provider."""


def provider_name(key) -> str:
    return _(PROVIDER_NAMES[key]) if key in PROVIDER_NAMES else key


def rates_view(view: pd.DataFrame) -> pd.DataFrame:
    """`analyses.hygiene.rate_view` with the providers named in words."""
    out = view.copy()
    if "provider" in out:
        out["provider"] = out["provider"].map(provider_name)
    return out


# --- consent ---------------------------------------------------------------------------------------

CRM_LABELS = {"crm_contact_id": N_("CRM contact no."), "opted_out_in_sender": N_("Opted out by"),
              "opted_out_on": N_("Opted out on"), "action": N_("What to do")}
OPT_OUT_SOURCES = {"unsubscribe link": N_("unsubscribe link (campaign {campaign})"),
                   "campaign subscription": N_("unsubscribed from the campaign's subscription (campaign {campaign})")}
_OPT_OUT = re.compile(r"(?P<source>unsubscribe link|campaign subscription) \(campaign (?P<campaign>[^)]*)\)")


def _opted_out_by(text):
    if not isinstance(text, str):
        return text
    if re.fullmatch(r"contact [A-Z_/]+", text):
        return _("marked unsubscribed or blacklisted in the sender module")
    found = _OPT_OUT.fullmatch(text)
    if found and language.active() != language.DEFAULT_LANGUAGE:
        return _(OPT_OUT_SOURCES[found["source"]]).format(campaign=found["campaign"])
    return text


def crm_view(remediation: pd.DataFrame) -> pd.DataFrame:
    """The opt-outs to exclude in the CRM, how each opted out in words (the CSV keeps the evidence codes)."""
    view = remediation.copy()
    view["opted_out_in_sender"] = view["opted_out_in_sender"].map(_opted_out_by)
    if "action" in view:
        view["action"] = _("add to the CRM's exclusion list")
    return view


# --- suppression files -----------------------------------------------------------------------------

SUPPRESSION_LABELS = {"reason": N_("Reason"), "file": N_("File"), "addresses": N_("Addresses"),
                      "recommended action": N_("What to do")}
SUPPRESSION_REASONS = {
    "hard_bounce": (N_("Dead addresses (hard bounces)"),
                    N_("add to the blacklist and unsubscribe in Bitrix; remove only if the bounce is shown wrong")),
    "soft_bounce_streak": (N_("Repeatedly refused mailboxes"),
                           N_("pause; try again after 30–90 days or once the contact confirms the address")),
    "complaint": (N_("Spam complaints"), N_("never mail again: the person marked your mail as spam")),
    "unsubscribed": (N_("Unsubscribed"), N_("exclude from every campaign and add to the CRM's exclusion list")),
    "invalid_syntax": (N_("Invalid addresses"), N_("correct or delete the address in the CRM; it cannot be delivered")),
    "typo_domain": (N_("Mistyped domains"),
                    N_("correct the domain (a suggestion is given) after confirming with the contact")),
    "disposable": (N_("Throw-away mailboxes"), N_("suppress: nobody reads a throw-away mailbox")),
    "role_account": (N_("Role mailboxes"),
                     N_("review: keep a shared mailbox (info@, sales@) only with documented consent")),
    "duplicate": (N_("Duplicate mailboxes"), N_("merge with the kept contact; mail one address per mailbox")),
    "inactive": (N_("Inactive contacts"), N_("send a re-engagement campaign; suppress those who stay silent")),
    "no_mail_domain": (N_("Domains that accept no mail"), N_("suppress; check the domain again before deleting")),
    "crm_exclusion": (N_("Opt-outs to exclude in the CRM"),
                      N_("add to the CRM's exclusion list (CRM > Settings > Exclusions)")),
}


def suppression_view(overview: pd.DataFrame) -> pd.DataFrame:
    """The suppression files with each reason and action in words."""
    view = overview.copy()
    view["recommended action"] = view["reason"].map(
        lambda r: _(SUPPRESSION_REASONS[r][1]) if r in SUPPRESSION_REASONS else "")
    view["reason"] = view["reason"].map(
        lambda r: _(SUPPRESSION_REASONS[r][0]) if r in SUPPRESSION_REASONS else r.replace("_", " "))
    return view
