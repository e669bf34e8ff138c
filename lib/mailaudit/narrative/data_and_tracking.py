"""Wording of the data_and_tracking report: each check's finding (rule, sentence, fix), headline,
table labels and chart texts. The counts come from `analyses.inventory`.

Every text is marked with `N_` where it is defined and translated with `_` where it is shown (the
language is chosen after import). The values of the tables (severities, modules, date columns, column
types, Bitrix statuses) are mapped to words here; table and column names stay as identifiers.
"""
from __future__ import annotations

import pandas as pd

from mailaudit.narrative.common import Finding, count, of, ranked, severity_by_share, severity_word, unit
from mailaudit.narrative.language import N_, N_plural, _, active, date, ngettext

TITLE = N_("Data and tracking readiness")

# Each check: what it is called, the rule that sets its severity (size-based, kept between a floor and a
# ceiling), what its denominator counts (the index says "n of N <unit>"; see common.unit), what is at stake
# when it asks for action, the sentence when something was found, the sentence when nothing was, and what
# to do.
CHECKS = {
    "letters_missing_utm": dict(
        name=N_("Letters without complete UTM tags"),
        floor="medium", ceiling="high",
        unit=N_plural("letter sent in the period", "letters sent in the period"),
        stake=N_("revenue from these letters goes uncredited to e-mail in web analytics and the CRM"),
        found=N_("{n} letters sent in the period lack {codes}: visits and orders from them are not credited "
                 "to e-mail in web analytics or in the CRM"),
        clean=N_("every letter sent in the period carries source, medium and campaign tags"),
        fix=N_("fill in the letter's UTM fields (source, medium, campaign) in the mailing's settings before "
               "the next send")),
    "campaigns_click_tracking_off": dict(
        name=N_("Campaigns with click tracking switched off"),
        floor="medium", ceiling="high",
        unit=N_plural("campaign that sent", "campaigns that sent"),
        stake=N_("clicks, machine-click filtering and order attribution of these campaigns"),
        found=N_("{n} campaigns send without click tracking{names}: their clicks, click-based open estimates "
                 "and order attribution are blind"),
        clean=N_("every campaign that sent in the period tracks clicks"),
        fix=N_("switch on \"Track clicks\" in each campaign's settings")),
    "links_reaching_site_untagged": dict(
        name=N_("Links that reach the site without campaign tags"),
        floor="low", ceiling="high",
        unit=N_plural("link in letters of the period", "links in letters of the period"),
        stake=N_("visits and orders from these links are credited to no mailing"),
        found=N_("{n} links reach the site without source, medium and campaign tags (neither in the link nor "
                 "added by the letter's settings)"),
        clean=N_("every link reaches the site with complete campaign tags"),
        fix=N_("complete the letter's UTM fields; Bitrix then tags every link when it sends")),
    "links_without_utm": dict(
        name=N_("Links written without tags in the letter"),
        floor="info", ceiling="info",
        unit=N_plural("link in letters of the period", "links in letters of the period"),
        found=N_("{n} links carry no tags in the letter's text; Bitrix adds the letter's tags when it sends, "
                 "so this matters only where those are incomplete"),
        clean=N_("every link in the letters carries its tags"),
        fix=""),
    "reads_without_recipient": dict(
        name=N_("Opens recorded for a recipient that no longer exists"),
        floor="low", ceiling="medium",
        unit=N_plural("open record", "open records"),
        found=N_("{n} open records point to no recipient: they count in no rate (recipients deleted by a "
                 "clean-up?)"),
        clean=N_("every open record has its recipient"),
        fix=N_("nothing to change in the mailings; ask who deletes recipient rows, since those deletions also "
               "remove sends from every rate")),
    "clicks_without_recipient": dict(
        name=N_("Clicks recorded for a recipient that no longer exists"),
        floor="low", ceiling="medium",
        unit=N_plural("click record", "click records"),
        found=N_("{n} click records point to no recipient: they count in no rate"),
        clean=N_("every click record has its recipient"),
        fix=N_("ask who deletes recipient rows; the clicks cannot be credited to a letter")),
    "clicks_without_read": dict(
        name=N_("Recipients who clicked but have no open record"),
        floor="low", ceiling="medium",
        unit=N_plural("clicking recipient", "clicking recipients"),
        stake=N_("open rates of this portal read low"),
        found=N_("{n} clicking recipients have no open record, although Bitrix records an open with every "
                 "click: open records were deleted or imported partially"),
        clean=N_("every clicking recipient also has an open record, as Bitrix writes them"),
        fix=N_("treat this portal's open rates as a lower bound; find the clean-up or import that removed them")),
    "recipients_without_contact": dict(
        name=N_("Sends whose contact is missing"),
        floor="low", ceiling="medium",
        unit=N_plural("recipient row", "recipient rows"),
        stake=N_("these sends cannot be segmented or linked to orders"),
        found=N_("{n} sends point to no contact: they cannot be segmented or linked to orders"),
        clean=N_("every send has its contact"),
        fix=N_("find the clean-up that deletes contacts but keeps their sends")),
    "sent_without_date": dict(
        name=N_("Sends without a send date"),
        floor="low", ceiling="high",
        unit=N_plural("recipient row", "recipient rows"),
        stake=N_("these sends are missing from every rate"),
        found=N_("{n} sends marked sent or failed have no send date: no report can place them in a period, so "
                 "every rate leaves them out"),
        clean=N_("every send has its date"),
        fix=N_("check the import or migration that wrote these sends")),
    "contacts_without_address": dict(
        name=N_("E-mail contacts with a blank address"),
        floor="low", ceiling="medium",
        unit=N_plural("e-mail contact", "e-mail contacts"),
        stake=N_("contacts that can never be mailed"),
        found=N_("{n} e-mail contacts have an empty address: they cannot be mailed, checked or suppressed"),
        clean=N_("every e-mail contact has an address"),
        fix=N_("delete them from the address books or fill in the address")),
    "sends_in_future": dict(
        name=N_("Sends dated after today"),
        floor="low", ceiling="medium",
        unit=N_plural("recipient row", "recipient rows"),
        found=N_("{n} sends carry a date after {today}: the server clock or an import is wrong"),
        clean=N_("no send date lies in the future"),
        fix=N_("check the web server's clock and time zone")),
    "sends_before_posting": dict(
        name=N_("Sends dated before their mailing was created"),
        floor="low", ceiling="low",
        unit=N_plural("recipient row", "recipient rows"),
        found=N_("{n} sends are dated before their mailing existed: dates were rewritten or imported"),
        clean=N_("no send is dated before its mailing"),
        fix=N_("check the import that rewrote the dates")),
}

MISSING_TEXT = N_("cannot check: this database has no {what}")
MISSING_WHAT = {
    "b_sender_posting_read": N_("open records"),
    "b_sender_posting_click": N_("click records"),
    "b_sender_mailing.TRACK_CLICK": N_("click-tracking setting on its campaigns"),
}
MISSING_WHAT_OTHER = N_("table this check needs")
NOTHING_TEXT = N_("nothing to check: no {unit}")
UTM_WORDS = {"utm_source": N_("a source tag"), "utm_medium": N_("a medium tag"), "utm_campaign": N_("a campaign tag")}
"""A required UTM code as a sentence names it (Russian: in the genitive, "метки источника")."""


def _tag_words(codes) -> str:
    """"a source tag", "a source tag or a medium tag", "a source tag, a medium tag or a campaign tag"."""
    order = list(UTM_WORDS)
    codes = sorted(codes, key=lambda c: order.index(c) if c in order else len(order))
    words = [_(UTM_WORDS[c]) if c in UTM_WORDS else c for c in codes]
    if len(words) < 2:
        return "".join(words)
    return _("{items} or {last}").format(items=", ".join(words[:-1]), last=words[-1])


def _lower_first(text: str) -> str:
    """A title inside a sentence: its first letter in lower case (acronyms such as UTM kept)."""
    return text[:1].lower() + text[1:]


def finding(check) -> Finding:
    """A check's finding: its severity by size (`severity_by_share` between the check's floor and
    ceiling), the sentence with "n of N (share)", and the fix."""
    spec = CHECKS[check.key]
    facts = check.facts
    name = _(spec["name"])
    if check.count is None and facts.get("nothing"):
        return Finding("info", name, _(NOTHING_TEXT).format(unit=unit(spec["unit"], 0)), key=check.key)
    if check.count is None:
        what = MISSING_WHAT.get(facts.get("missing"), MISSING_WHAT_OTHER)
        return Finding("info", name, _(MISSING_TEXT).format(what=_(what)), key=check.key)
    if not check.count:
        return Finding("info", name, _(spec["clean"]), count=0, denominator=check.denominator, key=check.key)
    names = [n for n in facts.get("campaigns", []) if n]
    today = facts.get("today")
    detail = _(spec["found"]).format(
        n=of(check.count, check.denominator),
        codes=_tag_words(facts.get("missing_codes", [])),
        names=" ({}{})".format("; ".join(names[:3]), "…" if len(names) > 3 else "") if names else "",
        today=date(today) if today else "")
    severity = ("info" if spec["ceiling"] == "info" else
                severity_by_share(check.count, check.denominator, floor=spec["floor"], ceiling=spec["ceiling"]))
    return Finding(severity, name, detail, fix=_(spec["fix"]) if severity != "info" and spec["fix"] else "",
                   count=check.count, denominator=check.denominator, key=check.key,
                   extra={"unit": unit(spec["unit"], check.denominator),
                          **({"stake": _(spec["stake"])} if "stake" in spec and severity != "info" else {})})


def findings(checks) -> list[Finding]:
    """Every check's finding, most severe and largest first."""
    return ranked([finding(c) for c in checks])


def headline(items: list[Finding]) -> str:
    problems = [f for f in items if f.severity in ("high", "medium")]
    if not problems:
        return ngettext("Data and tracking are ready: none of {total} checks needs attention",
                        "Data and tracking are ready: none of {total} checks needs attention",
                        len(items)).format(total=count(len(items)))
    first = problems[0]
    return ngettext("{problems} of {total} checks need attention; first: {title}, {how_many}",
                    "{problems} of {total} checks need attention; first: {title}, {how_many}",
                    len(problems)).format(problems=count(len(problems)), total=count(len(items)),
                                          title=_lower_first(first.title),
                                          how_many=of(first.count, first.denominator))


def clean_line(items: list[Finding]) -> str:
    """Under the findings: how many checks came back clean (or could not be made), which the appendix lists."""
    clean = [item for item in items if item.severity == "info"]
    if not clean:
        return ""
    return ngettext("{n} of {total} checks came back clean or could not be made here (see the appendix).",
                    "{n} of {total} checks came back clean or could not be made here (see the appendix).",
                    len(clean)).format(n=count(len(clean)), total=count(len(items)))


def checks_table(items: list[Finding]) -> pd.DataFrame:
    """All checks, most severe first: severity, check, found, out of."""
    return pd.DataFrame([{"severity": f.severity, "check": f.title, "found": f.count,
                          "out_of": f.denominator, "detail": f.detail} for f in items],
                        columns=["severity", "check", "found", "out_of", "detail"])


def checks_view(table: pd.DataFrame) -> pd.DataFrame:
    """The checks table as shown: the severity in words."""
    view = table.copy()
    view["severity"] = view["severity"].map(severity_word)
    return view


CHECKS_LABELS = {"check": N_("Check"), "found": N_("Found"), "out_of": N_("Out of"),
                 "detail": N_("What it means")}
CHECKS_CAPTION = N_("All checks, most severe first")

INVENTORY_LABELS = {"table": N_("Bitrix table"), "group": N_("Module"), "rows": N_("Rows read"),
                    "date_column": N_("Dated by"), "first": N_("Earliest"), "last": N_("Latest")}
INVENTORY_CAPTION = N_("Bitrix tables present: rows and the dates they cover")
MODULE_WORDS = {
    "sender core": N_("sender core"),
    "tracking": N_("open and click tracking"),
    "letters": N_("letters and their tags"),
    "lists": N_("address books"),
    "abuse": N_("spam complaints"),
    "blacklist": N_("blacklist"),
    "crm": N_("CRM contacts"),
    "crm_deals": N_("CRM deals"),
    "crm_activity": N_("CRM activities"),
    "exclusion": N_("CRM exclusions"),
    "store": N_("online store"),
    "users": N_("portal users"),
    "other": N_("other tables"),
}
"""`analyses.inventory`'s module keys (bitrix.schema.OPTIONAL_TABLES) in words."""
DATE_COLUMN_WORDS = {
    "DATE_INSERT": N_("date added"),
    "DATE_CREATE": N_("date created"),
    "CREATED": N_("date created"),
    "DATE_SEND": N_("date sent"),
    "DATE_SENT": N_("date sent"),
}
"""The date column of each table (`analyses.inventory.DATE_COLUMNS`) as what it records."""


def inventory_view(tables: pd.DataFrame) -> pd.DataFrame:
    """The inventory as shown: modules and date columns in words (table names stay as identifiers)."""
    view = tables.copy()
    view["group"] = view["group"].map(lambda g: _(MODULE_WORDS[g]) if g in MODULE_WORDS else g)
    view["date_column"] = view["date_column"].map(
        lambda c: _(DATE_COLUMN_WORDS[c]) if c in DATE_COLUMN_WORDS else c)
    return view


LETTERS_LABELS = {"letter_id": N_("Letter no."), "campaign_id": N_("Campaign no."), "title": N_("Letter"),
                  "utm_codes": N_("Tags set"), "missing_utm": N_("Tags missing"), "links": N_("Links"),
                  "links_without_utm": N_("Links without tags in the text"),
                  "links_reaching_site_untagged": N_("Links reaching the site untagged")}
LETTERS_CAPTION = N_("Letters sent in the period with incomplete campaign tags")


def letters_view(letters: pd.DataFrame) -> pd.DataFrame:
    """The incomplete letters; their tags are named by their UTM codes (utm_source, utm_medium…), as
    marketers and web analytics name them in every language."""
    return letters[letters["missing_utm"] != ""].copy()


DIALECTS = {"sqlite": "SQLite", "mysql": "MySQL", "mariadb": "MariaDB", "postgresql": "PostgreSQL"}
LAYOUTS = {"current": N_("current sender module (version 20 and later)"),
           "legacy": N_("older sender module (15–16)")}


def source_line(dialect: str, layout: str, charset, period_label: str) -> str:
    values = dict(dialect=DIALECTS.get(dialect, dialect),
                  layout=_(LAYOUTS[layout]) if layout in LAYOUTS else layout,
                  charset=charset, period=period_label)
    if charset:
        return _("Read from a {dialect} database written by the {layout}, character set {charset}; "
                 "reporting period {period}.").format(**values)
    return _("Read from a {dialect} database written by the {layout}; reporting period {period}.").format(**values)


VOLUME_TITLE = N_("Sends per month, by Bitrix status")
VOLUME_SUBTITLE = N_("recipient rows sent in {period}, by the month of their send date")
VOLUME_ALT = N_("Stacked bars of sends per month in {period}, split into sent, error and other statuses; "
                "{total} sends in all.")
VOLUME_AXIS = N_("sends per month")
VOLUME_LEGEND = N_("Bitrix status")
STATUS_WORDS = {"sent": N_("sent"), "error": N_("error"), "not sent yet": N_("not sent yet"),
                "waiting": N_("waiting"), "denied": N_("denied"), "awaiting consent": N_("awaiting consent")}
"""`bitrix.codes.RecipientStatus.LABELS` (the statuses `analyses.inventory.recipient_status_by_month`
names) in words."""
STATUS_OTHER = N_("other status ({code})")
READS_TITLE = N_("How often an opened letter was opened again")
READS_SUBTITLE = N_("recipients with at least one open record (one per image load), all dates")
READS_ALT = N_("Bars: opening recipients by their number of open records; {single} of {total} have exactly one.")
READS_X = N_("open records of the recipient")
READS_Y = N_("opening recipients")
UTM_TITLE = N_("Letters lacking each campaign tag")
UTM_SUBTITLE = N_("red: letters without the tag, grey: with it; of {letters} e-mail letters sent in {period}")
UTM_ALT = N_("Bars per tag (utm_source, utm_medium, utm_campaign): letters without it of {letters} sent; {worst}.")
UTM_WORST = N_("most often missing: {tag} ({how_many})")
UTM_NONE = N_("no tag is missing")
UTM_AXIS = N_("letters of the period")


def status_word(status: str) -> str:
    """A Bitrix recipient status label ("sent", "other (X)") in words of the bundle's language."""
    if status in STATUS_WORDS:
        return _(STATUS_WORDS[status])
    if status.startswith("other (") and status.endswith(")"):
        return _(STATUS_OTHER).format(code=status[len("other ("):-1])
    return status


def month_label(month: str) -> str:
    """A month of the volume chart ("2026-03") as the bundle's language writes it (Russian: 03.2026)."""
    if active() == "ru" and len(month) == 7 and month[4] == "-":
        return f"{month[5:]}.{month[:4]}"
    return month


def volume_alt(volume: pd.DataFrame, period: str) -> str:
    return _(VOLUME_ALT).format(period=period, total=count(volume["rows"].sum() if len(volume) else 0))


def reads_alt(loads: pd.DataFrame) -> str:
    single = loads.loc[loads["reads"].astype(str) == "1", "recipients"].sum()
    return _(READS_ALT).format(single=count(single), total=count(loads["recipients"].sum()))


def utm_alt(missing: dict[str, int], letters: int) -> str:
    worst = max(missing, key=missing.get) if missing else None
    text = (_(UTM_WORST).format(tag=_tag_words([worst]), how_many=of(missing[worst], letters))
            if worst and missing[worst] else _(UTM_NONE))
    return _(UTM_ALT).format(letters=count(letters), worst=text)


MISSING_CAPTION = N_("Empty values per column read (keys aside), most missing first")
MISSING_LABELS = {"field": N_("Column"), "type": N_("Type"), "rows": N_("Rows"), "null": N_("No value"),
                  "empty": N_("Empty text"), "whitespace": N_("Only spaces"), "missing": N_("Missing in all"),
                  "missing_share": N_("Share missing")}
TYPE_WORDS = {"text": N_("text"), "integer": N_("integer"), "decimal": N_("decimal number"),
              "date": N_("date"), "timestamp": N_("date and time"), "time": N_("time of day"),
              "boolean": N_("yes or no"), "binary": N_("binary data")}
_TYPE_FAMILIES = (("VARCHAR", "text"), ("CHAR", "text"), ("TEXT", "text"), ("STRING", "text"),
                  ("TIMESTAMP", "timestamp"), ("DATETIME", "timestamp"), ("DATE", "date"), ("TIME", "time"),
                  ("BOOL", "boolean"), ("BLOB", "binary"), ("BYTEA", "binary"), ("DECIMAL", "decimal"),
                  ("NUMERIC", "decimal"), ("DOUBLE", "decimal"), ("FLOAT", "decimal"), ("REAL", "decimal"),
                  ("INT", "integer"))


CAPTIONS = {"checks": CHECKS_CAPTION, "inventory": INVENTORY_CAPTION, "letters": LETTERS_CAPTION,
            "missing_values": MISSING_CAPTION}


def caption(table: str) -> str:
    """The caption of one of the report's tables (checks, inventory, letters, missing_values)."""
    return _(CAPTIONS[table])


def type_word(kind) -> str:
    """A database column type (VARCHAR, BIGINT, TIMESTAMP…) as what it holds: text, integer, date and time…"""
    name = str(kind).upper()
    for prefix, family in _TYPE_FAMILIES:
        if name.startswith(prefix) or (family == "integer" and prefix in name):
            return _(TYPE_WORDS[family])
    return str(kind)


def missing_view(missing: pd.DataFrame) -> pd.DataFrame:
    """The missing-values table as shown: one column naming the field as ``table.COLUMN`` (an identifier),
    its type in words, then the counts."""
    view = missing.copy()
    view.insert(0, "field", view["table"] + "." + view["column"])
    view["type"] = view["type"].map(type_word)
    return view.drop(columns=["table", "column"])
