"""Wording of the data_and_tracking report: each check's finding (rule, sentence, fix), headline,
table labels and chart texts. The counts come from `analyses.inventory`."""
from __future__ import annotations

import pandas as pd

from mailaudit.narrative.common import Finding, count, of, ranked, severity_by_share

TITLE = "Data and tracking readiness"

# Each check: what it is called, the rule that sets its severity (size-based, kept between a floor and a
# ceiling), the sentence when something was found, the sentence when nothing was, and what to do.
CHECKS = {
    "letters_missing_utm": dict(
        name="Letters without complete UTM tags",
        floor="medium", ceiling="high",
        found="{n} letters sent in the period lack {codes}: visits and orders from them are not credited "
              "to e-mail in web analytics or in the CRM",
        clean="every letter sent in the period carries source, medium and campaign tags",
        fix="fill in the letter's UTM fields (source, medium, campaign) in the mailing's settings before "
            "the next send"),
    "campaigns_click_tracking_off": dict(
        name="Campaigns with click tracking switched off",
        floor="medium", ceiling="high",
        found="{n} campaigns send without click tracking{names}: their clicks, click-based open estimates "
              "and order attribution are blind",
        clean="every campaign that sent in the period tracks clicks",
        fix="switch on \"Track clicks\" in each campaign's settings"),
    "links_reaching_site_untagged": dict(
        name="Links that reach the site without campaign tags",
        floor="low", ceiling="high",
        found="{n} links reach the site without source, medium and campaign tags (neither in the link nor "
              "added by the letter's settings)",
        clean="every link reaches the site with complete campaign tags",
        fix="complete the letter's UTM fields; Bitrix then tags every link when it sends"),
    "links_without_utm": dict(
        name="Links written without tags in the letter",
        floor="info", ceiling="info",
        found="{n} links carry no tags in the letter's text; Bitrix adds the letter's tags when it sends, "
              "so this matters only where those are incomplete",
        clean="every link in the letters carries its tags",
        fix=""),
    "reads_without_recipient": dict(
        name="Opens recorded for a recipient that no longer exists",
        floor="low", ceiling="medium",
        found="{n} open records point to no recipient: they count in no rate (recipients deleted by a clean-up?)",
        clean="every open record has its recipient",
        fix="nothing to change in the mailings; ask who deletes recipient rows, since those deletions also "
            "remove sends from every rate"),
    "clicks_without_recipient": dict(
        name="Clicks recorded for a recipient that no longer exists",
        floor="low", ceiling="medium",
        found="{n} click records point to no recipient: they count in no rate",
        clean="every click record has its recipient",
        fix="ask who deletes recipient rows; the clicks cannot be credited to a letter"),
    "clicks_without_read": dict(
        name="Recipients who clicked but have no open record",
        floor="low", ceiling="medium",
        found="{n} clicking recipients have no open record, although Bitrix records an open with every "
              "click: open records were deleted or imported partially",
        clean="every clicking recipient also has an open record, as Bitrix writes them",
        fix="treat this portal's open rates as a lower bound; find the clean-up or import that removed them"),
    "recipients_without_contact": dict(
        name="Sends whose contact is missing",
        floor="low", ceiling="medium",
        found="{n} sends point to no contact: they cannot be segmented or linked to orders",
        clean="every send has its contact",
        fix="find the clean-up that deletes contacts but keeps their sends"),
    "sent_without_date": dict(
        name="Sends without a send date",
        floor="low", ceiling="high",
        found="{n} sends marked sent or failed have no send date: no report can place them in a period, so "
              "every rate leaves them out",
        clean="every send has its date",
        fix="check the import or migration that wrote these sends"),
    "contacts_without_address": dict(
        name="E-mail contacts with a blank address",
        floor="low", ceiling="medium",
        found="{n} e-mail contacts have an empty address: they cannot be mailed, checked or suppressed",
        clean="every e-mail contact has an address",
        fix="delete them from the address books or fill in the address"),
    "sends_in_future": dict(
        name="Sends dated after today",
        floor="low", ceiling="medium",
        found="{n} sends carry a date after {today}: the server clock or an import is wrong",
        clean="no send date lies in the future",
        fix="check the web server's clock and time zone"),
    "sends_before_posting": dict(
        name="Sends dated before their mailing was created",
        floor="low", ceiling="low",
        found="{n} sends are dated before their mailing existed: dates were rewritten or imported",
        clean="no send is dated before its mailing",
        fix="check the import that rewrote the dates"),
}

MISSING_TEXT = "cannot check: this database has no {what}"
MISSING_WHAT = {
    "b_sender_posting_read": "open records",
    "b_sender_posting_click": "click records",
    "b_sender_mailing.TRACK_CLICK": "click-tracking setting on its campaigns",
}
UTM_WORDS = {"utm_source": "a source tag", "utm_medium": "a medium tag", "utm_campaign": "a campaign tag"}


def finding(check) -> Finding:
    """A check's finding: its severity by size (`severity_by_share` between the check's floor and
    ceiling), the sentence with "n of N (share)", and the fix."""
    spec = CHECKS[check.key]
    facts = check.facts
    if check.count is None and facts.get("nothing"):
        return Finding("info", spec["name"], f"nothing to check: no {UNITS[check.key]}", key=check.key)
    if check.count is None:
        what = MISSING_WHAT.get(facts.get("missing"), "table this check needs")
        return Finding("info", spec["name"], MISSING_TEXT.format(what=what), key=check.key)
    if not check.count:
        return Finding("info", spec["name"], spec["clean"], count=0, denominator=check.denominator, key=check.key)
    names = [n for n in facts.get("campaigns", []) if n]
    detail = spec["found"].format(
        n=of(check.count, check.denominator),
        codes=" or ".join(UTM_WORDS.get(c, c) for c in facts.get("missing_codes", [])),
        names=f" ({'; '.join(names[:3])}{'…' if len(names) > 3 else ''})" if names else "",
        today=facts.get("today", ""))
    severity = ("info" if spec["ceiling"] == "info" else
                severity_by_share(check.count, check.denominator, floor=spec["floor"], ceiling=spec["ceiling"]))
    return Finding(severity, spec["name"], detail, fix=spec["fix"] if severity != "info" else "",
                   count=check.count, denominator=check.denominator, key=check.key,
                   extra={"unit": UNITS[check.key]} if check.key in UNITS else {})


# What each check's denominator counts (the index's audit summary says "n of N <unit>").
UNITS = {
    "letters_missing_utm": "letters sent in the period", "campaigns_click_tracking_off": "campaigns that sent",
    "links_reaching_site_untagged": "links in letters of the period", "links_without_utm": "links in letters of the period",
    "reads_without_recipient": "reads", "clicks_without_recipient": "clicks", "clicks_without_read": "clicking recipients",
    "recipients_without_contact": "recipient rows", "sent_without_date": "recipient rows",
    "contacts_without_address": "e-mail contacts", "sends_in_future": "recipient rows",
    "sends_before_posting": "recipient rows",
}


def findings(checks) -> list[Finding]:
    """Every check's finding, most severe and largest first."""
    return ranked([finding(c) for c in checks])


def headline(items: list[Finding]) -> str:
    problems = [f for f in items if f.severity in ("high", "medium")]
    if not problems:
        return f"Data and tracking are ready: none of {len(items)} checks needs attention"
    first = problems[0]
    return (f"{len(problems)} of {len(items)} checks need attention; first: {first.title.lower()}, "
            f"{of(first.count, first.denominator)}")


def checks_table(items: list[Finding]) -> pd.DataFrame:
    """All checks, most severe first: severity, check, found, out of."""
    return pd.DataFrame([{"severity": f.severity, "check": f.title, "found": f.count,
                          "out_of": f.denominator, "detail": f.detail} for f in items],
                        columns=["severity", "check", "found", "out_of", "detail"])


CHECKS_LABELS = {"check": "Check", "found": "Found", "out_of": "Out of", "detail": "What it means"}
CHECKS_CAPTION = "All checks, most severe first"

INVENTORY_LABELS = {"table": "Bitrix table", "group": "Module", "rows": "Rows read",
                    "date_column": "Dated by", "first": "Earliest", "last": "Latest"}
INVENTORY_CAPTION = "Bitrix tables present: rows and the dates they cover"

LETTERS_LABELS = {"letter_id": "Letter no.", "campaign_id": "Campaign no.", "title": "Letter",
                  "utm_codes": "Tags set", "missing_utm": "Tags missing", "links": "Links",
                  "links_without_utm": "Links without tags in the text",
                  "links_reaching_site_untagged": "Links reaching the site untagged"}
LETTERS_CAPTION = "Letters sent in the period with incomplete campaign tags"


def letters_view(letters: pd.DataFrame) -> pd.DataFrame:
    """The incomplete letters with tag names in words (source, medium, campaign)."""
    view = letters[letters["missing_utm"] != ""].copy()
    words = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "campaign", "utm_content": "content",
             "utm_term": "term"}
    for column in ("utm_codes", "missing_utm"):
        view[column] = view[column].map(lambda text: ", ".join(words.get(c, c) for c in text.split(", ") if c))
    return view


def source_line(dialect: str, layout: str, charset, period_label: str) -> str:
    layouts = {"current": "current sender module (version 20 and later)", "legacy": "older sender module (15–16)"}
    return (f"Read from a {dialect} database written by the {layouts.get(layout, layout)}"
            + (f", character set {charset}" if charset else "") + f"; reporting period {period_label}.")


VOLUME_TITLE = "Sends per month, by Bitrix status"
VOLUME_SUBTITLE = "recipient rows sent in {period}, by the month of their send date"
VOLUME_ALT = ("Stacked bars of sends per month in {period}, split into sent, error and other statuses; "
              "{total} sends in all.")
READS_TITLE = "How often an opened letter was opened again"
READS_SUBTITLE = "recipients with at least one open record (one per image load), all dates"
READS_ALT = "Bars: opening recipients by their number of open records; {single} of {total} have exactly one."
UTM_TITLE = "Letters lacking each campaign tag"
UTM_SUBTITLE = "red: letters without the tag, grey: with it; of {letters} e-mail letters sent in {period}"
UTM_ALT = "Bars per tag (source, medium, campaign): letters without it of {letters} sent; {worst}."


def volume_alt(volume: pd.DataFrame, period: str) -> str:
    return VOLUME_ALT.format(period=period, total=count(volume["rows"].sum()) if len(volume) else 0)


def reads_alt(loads: pd.DataFrame) -> str:
    single = loads.loc[loads["reads"].astype(str) == "1", "recipients"].sum()
    return READS_ALT.format(single=count(single), total=count(loads["recipients"].sum()))


def utm_alt(missing: dict[str, int], letters: int) -> str:
    worst = max(missing, key=missing.get) if missing else None
    text = (f"most often missing: {UTM_WORDS.get(worst, worst).split(' ', 1)[1]} ({of(missing[worst], letters)})"
            if worst and missing[worst] else "no tag is missing")
    return UTM_ALT.format(letters=count(letters), worst=text)


MISSING_CAPTION = "Empty values per column read (keys aside), most missing first"
MISSING_LABELS = {"table": "Table", "column": "Column", "type": "Type", "rows": "Rows", "null": "NULL",
                  "empty": "Empty text", "whitespace": "Only spaces", "missing": "Missing in all",
                  "missing_share": "Share missing"}
