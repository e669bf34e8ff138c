"""Wording of the list_hygiene report: the findings (the rule that raises each, its sentence, the risk and
the fix), headline, the figures' definitions, table labels and chart texts. The counts come from
`analyses.hygiene`."""
from __future__ import annotations

import pandas as pd

from mailaudit.analyses.hygiene import BOUNCE_LINES, COMPLAINT_LINES, HygieneResult
from mailaudit.narrative.common import Finding, count, of, pct, ranked, severity_by_share


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
                               extra={"unit": unit, "evidence": EVIDENCE.get(key), "stake": risk}))

    add("sent_after_unsubscribe", f.get("sent_after_unsubscribe"), attempted,
        f"Mail sent to {count(facts.get('people_sent_after_unsubscribe'))} people more than "
        f"{hygiene['unsub_grace_hours']} hours after they unsubscribed from that campaign",
        "Mail against an explicit opt-out draws spam complaints, breaks Gmail's and Yahoo's rules for bulk "
        "senders (unsubscribes honoured within 48 hours) and is a legal exposure.",
        "exclude the addresses in suppress_unsubscribed.csv from every segment, stop re-importing them into "
        "the campaign's address book and check that the campaign's subscriptions are not reset",
        floor="high")
    add("sent_after_hard_bounce", f.get("sent_after_hard_bounce"), attempted,
        f"Mail sent to {count(facts.get('addresses_sent_after_hard_bounce'))} addresses that had already "
        "bounced as dead",
        "Every send to a dead address raises the bounce rate that mailbox providers judge the domain by.",
        "import suppress_hard_bounce.csv into the blacklist (Marketing > Blacklist) and unsubscribe those "
        "contacts; keep Bitrix's automatic blacklist switched on", floor="medium")
    postings = len(result.by_posting)
    worst_complaint = result.by_posting["complaint_rate"].max() if postings else float("nan")
    if pd.notna(worst_complaint) and worst_complaint >= COMPLAINT_LINES[0]:
        over = int((result.by_posting["complaint_rate"] >= COMPLAINT_LINES[0]).sum())
        add("complaint_rate", over, postings,
            f"Mailings with a spam-complaint rate at or above 0.1% (worst {pct(worst_complaint)})",
            "Gmail and Yahoo filter bulk mail from senders above 0.1% complaints and reject it above 0.3%.",
            "blacklist the addresses in suppress_complaint.csv, mail only recently engaged contacts and make "
            "the unsubscribe link prominent (one-click)",
            severity=_line_severity(worst_complaint, COMPLAINT_LINES))
    if have_log and postings:
        worst = result.by_posting["hard_bounce_rate"].max()
        if pd.notna(worst) and worst >= BOUNCE_LINES[0]:
            over = int((result.by_posting["hard_bounce_rate"] >= BOUNCE_LINES[0]).sum())
            add("hard_bounce_rate", over, postings,
                f"Mailings with a dead-address (hard-bounce) rate at or above 2% (worst {pct(worst)})",
                "Bounce rates above 2% draw provider filtering; Amazon SES reviews accounts at 5%.",
                "suppress suppress_hard_bounce.csv before the next send and verify old address books before "
                "mailing them", severity=_line_severity(worst, BOUNCE_LINES))
    add("unsubscribed_not_excluded_in_crm", f.get("unsubscribed_not_excluded_in_crm"), contacts,
        "Unsubscribed or blacklisted contacts are not excluded in the CRM",
        "Salespeople and CRM automation (robots, one-to-one mail) keep writing to people who opted out.",
        "import suppress_crm_exclusion.csv into the CRM's exclusion list (CRM > Settings > Exclusions), then "
        "have a developer add a handler on the sender module's OnAfterRecipientUnsub event that adds each "
        "new unsubscribe to that list, so the gap stays closed", floor="medium")
    add("complaints", f.get("complaints"), contacts, "Contacts reported your mail as spam",
        "Each complaint counts against Gmail's and Yahoo's 0.1% line.",
        "never mail them again (suppress_complaint.csv); Bitrix blacklists them already, so check that no "
        "import adds them back", floor="medium")
    add("soft_bounce_streak", f.get("soft_bounce_streak"), contacts,
        f"Addresses whose mailbox refused {hygiene['soft_bounce_streak']} or more letters in a row (full or "
        "unreachable)",
        "Full or abandoned mailboxes turn into dead addresses; every repeated send adds a bounce.",
        "pause them (suppress_soft_bounce_streak.csv) and try again after 30–90 days")
    add("sender_block_events", f.get("sender_block_events"), attempted,
        "Bounces that were providers blocking the sender, not bad addresses",
        "Providers refuse the mail for reputation or policy reasons; every recipient there is affected.",
        "check SPF, DKIM and DMARC of the sending domain, Google Postmaster Tools and the provider's block "
        "list (Microsoft: delist at sender.office.com), and slow down sending to that provider", floor="medium")
    add("typo_domain", f.get("typo_domain"), contacts, "Addresses with a mistyped domain (gmial.com, mail.ri…)",
        "They bounce or, worse, reach look-alike domains that act as spam traps.",
        "correct them with the suggestion in suppress_typo_domain.csv after confirming with the contact, and "
        "add double opt-in to the sign-up forms")
    add("invalid_syntax", f.get("invalid_syntax"), contacts, "Addresses that are not valid e-mail addresses",
        "They can never be delivered and count as errors on every send.",
        "fix or delete them in the CRM (suppress_invalid_syntax.csv) and validate the address in web forms")
    add("inactive", f.get("inactive"), contacts,
        f"Contacts who got {hygiene['inactive_min_sends']} or more letters in {hygiene['inactive_months']} "
        "months without opening or clicking",
        "Silent recipients lower engagement, which Gmail and Mail.ru use for inbox placement; old inactive "
        "addresses become spam traps.",
        "send them a re-engagement (sunset) campaign, then suppress those who stay silent (suppress_inactive.csv)")
    add("disposable_domain", f.get("disposable_domain"), contacts, "Throw-away (disposable) mailboxes",
        "Nobody reads them after sign-up.", "suppress them (suppress_disposable.csv) and block disposable "
        "domains in the sign-up forms")
    add("role_account", f.get("role_account"), contacts, "Shared role mailboxes (info@, sales@…)",
        "Shared mailboxes complain more and rarely gave personal consent.",
        "review suppress_role_account.csv and keep only those with documented consent")
    add("duplicate_contacts", f.get("duplicate_contacts"), contacts,
        "Contacts that are another spelling of an existing mailbox",
        "The same person gets the same letter twice.", "merge the duplicates listed in suppress_duplicate.csv")
    return ranked(out)


def headline(result: HygieneResult, items: list[Finding]) -> str:
    f = result.figures
    parts = [f"{count(f['contacts'])} contacts"]
    if f.get("hard_bounce") is not None:
        parts.append(f"{count(f['hard_bounce'])} dead addresses")
    if f.get("sent_after_unsubscribe"):
        parts.append(f"{count(f['sent_after_unsubscribe'])} sends after an unsubscribe")
    if f.get("sent_after_hard_bounce"):
        parts.append(f"{count(f['sent_after_hard_bounce'])} sends to dead addresses")
    high = sum(1 for item in items if item.severity == "high")
    parts.append(f"{high} high-severity finding{'s' if high != 1 else ''}")
    return "; ".join(parts)


FIGURES = {
    "contacts": ("E-mail contacts", "contacts of the sender module with an e-mail address"),
    "invalid_syntax": ("Invalid addresses", "contacts whose address is not valid e-mail syntax (checked without DNS)"),
    "role_account": ("Role mailboxes", "contacts whose address is a shared mailbox (info, sales, support, noreply…)"),
    "disposable_domain": ("Throw-away mailboxes", "contacts on a domain from a maintained list of disposable domains"),
    "typo_domain": ("Mistyped domains", "contacts whose domain is one or two keystrokes from a popular provider's"),
    "duplicate_contacts": ("Duplicate mailboxes", "contacts reaching the same mailbox as an older contact (Gmail "
                           "dots and +tags, googlemail.com, Yandex domains…), all but the oldest"),
    "hard_bounce": ("Dead addresses (hard bounces)", "addresses with a permanent failure in the mail server's "
                    "log or on Bitrix's automatic blacklist"),
    "soft_bounce_streak": ("Repeatedly refused mailboxes", "addresses refused several letters in a row (no "
                           "delivery between) from two or more mailings over a week or more"),
    "sender_block_events": ("Blocks of the sender", "bounces that were providers refusing the sender "
                            "(reputation, policy), not bad addresses"),
    "sent_after_hard_bounce": ("Sends to dead addresses", "sends of the period to an address after its first "
                               "hard bounce, which may be older"),
    "unsubscribed_not_excluded_in_crm": ("Opt-outs not excluded in the CRM", "unsubscribed or blacklisted "
                                         "contacts whose CRM address is neither on the CRM's exclusion list nor "
                                         "on the blacklist"),
    "sent_after_unsubscribe": ("Sends after an unsubscribe", "sends of a campaign in the period more than the "
                               "grace period after the contact unsubscribed from it, which may be older"),
    "complaints": ("Spam complaints", "contacts who marked a letter as spam"),
    "inactive": ("Inactive contacts", "contacts with the minimum number of letters in the look-back window and "
                 "no open or click in it"),
}


def figures_table(figures: dict) -> pd.DataFrame:
    """The audit's figures as a table: figure, value (None = needs data the source lacks), what it counts."""
    return pd.DataFrame([{"figure": name, "value": figures.get(key), "definition": text}
                         for key, (name, text) in FIGURES.items()])


FIGURES_LABELS = {"value": "Count"}
ISSUE_NAMES = {"invalid_syntax": "invalid address", "typo_domain": "mistyped domain", "disposable": "throw-away mailbox",
               "disposable_domain": "throw-away mailbox", "role_account": "role mailbox", "duplicate": "duplicate",
               "duplicate_contacts": "duplicate", "no_mail_domain": "domain accepts no mail"}


def issues_view(issues: pd.DataFrame, per_issue: int = 5) -> pd.DataFrame:
    """A few examples of each address problem, the problem named in words."""
    view = issues.groupby("issue").head(per_issue).reset_index(drop=True)
    view["issue"] = view["issue"].map(lambda name: ISSUE_NAMES.get(name, name.replace("_", " ")))
    return view


ISSUE_LABELS = {"contact_id": "Contact no.", "suggestion": "Suggested correction", "detail": "Detail",
                "kept_contact_id": "Kept contact no."}
RULE_LABELS = {"bounce_class": "Kind of bounce", "rule": "Rule that matched", "events": "Bounces",
               "addresses": "Addresses", "example": "Typical reply"}
LOG_FILE_LABELS = {"file": "File", "format": "Format", "lines": "Lines", "events": "Delivery events",
                   "unparseable": "Lines not understood", "truncated_lines": "Lines cut short",
                   "undecodable_lines": "Lines in an unknown encoding", "read_error": "Read error",
                   "year_source": "Year taken from"}
UNCLASSIFIED_LABELS = {"reply": "Reply (addresses removed)", "events": "Bounces", "example_status": "Example status"}
RATE_LABELS = {"posting_id": "Mailing no.", "campaign": "Campaign", "first_send": "First send",
               "provider": "Mailbox provider", "attempted": "Attempted", "sent": "Sent",
               "hard_bounces": "Dead-address bounces", "hard_bounce_rate": "Dead-address rate",
               "soft_bounces": "Refused (soft)", "sender_blocks": "Blocks of the sender",
               "error_rows": "Sends in error", "error_rate": "Error rate", "complaints": "Complaints",
               "complaint_rate": "Complaint rate"}
CRM_LABELS = {"crm_contact_id": "CRM contact no.", "opted_out_in_sender": "Opted out by",
              "opted_out_on": "Opted out on", "action": "What to do"}


def crm_view(remediation: pd.DataFrame) -> pd.DataFrame:
    """The opt-outs to exclude in the CRM, how each opted out in words (the CSV keeps the evidence codes)."""
    view = remediation.copy()
    view["opted_out_in_sender"] = view["opted_out_in_sender"].astype(str).str.replace(
        r"^contact [A-Z_/]+$", "marked unsubscribed or blacklisted in the sender module", regex=True)
    if "action" in view:
        view["action"] = "add to the CRM's exclusion list"
    return view
SUPPRESSION_LABELS = {"reason": "Reason", "file": "File", "addresses": "Addresses",
                      "recommended action": "What to do"}
SUPPRESSION_REASONS = {
    "hard_bounce": ("Dead addresses (hard bounces)",
                    "add to the blacklist and unsubscribe in Bitrix; remove only if the bounce is shown wrong"),
    "soft_bounce_streak": ("Repeatedly refused mailboxes",
                           "pause; try again after 30–90 days or once the contact confirms the address"),
    "complaint": ("Spam complaints", "never mail again: the person marked your mail as spam"),
    "unsubscribed": ("Unsubscribed", "exclude from every campaign and add to the CRM's exclusion list"),
    "invalid_syntax": ("Invalid addresses", "correct or delete the address in the CRM; it cannot be delivered"),
    "typo_domain": ("Mistyped domains", "correct the domain (a suggestion is given) after confirming with the contact"),
    "disposable": ("Throw-away mailboxes", "suppress: nobody reads a throw-away mailbox"),
    "role_account": ("Role mailboxes", "review: keep a shared mailbox (info@, sales@) only with documented consent"),
    "duplicate": ("Duplicate mailboxes", "merge with the kept contact; mail one address per mailbox"),
    "inactive": ("Inactive contacts", "send a re-engagement campaign; suppress those who stay silent"),
    "no_mail_domain": ("Domains that accept no mail", "suppress; check the domain again before deleting"),
    "crm_exclusion": ("Opt-outs to exclude in the CRM", "add to the CRM's exclusion list (CRM > Settings > Exclusions)"),
}


def suppression_view(overview: pd.DataFrame) -> pd.DataFrame:
    """The suppression files with each reason and action in words."""
    view = overview.copy()
    view["recommended action"] = view["reason"].map(lambda r: SUPPRESSION_REASONS.get(r, (r, ""))[1])
    view["reason"] = view["reason"].map(lambda r: SUPPRESSION_REASONS.get(r, (r.replace("_", " "), ""))[0])
    return view
