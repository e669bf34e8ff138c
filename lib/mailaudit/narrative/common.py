"""What every report's wording shares: number formats, the size-based severity rule, a finding, column labels.

Numbers in sentences: counts with thousands separators, rates as percentages, money with its currency,
"n of N (share)" whenever a count has a denominator. p-values never appear in a sentence (they stay in
tables), nor do raw Bitrix codes or column names.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from mailaudit.narrative.language import N_, _, ngettext, number, percent

SEVERITIES = ("high", "medium", "low", "info")
SEVERITY_WORDS = {"high": N_("high"), "medium": N_("medium"), "low": N_("low"), "info": N_("info")}
SEVERITY_ORDER = {name: rank for rank, name in enumerate(SEVERITIES)}

HIGH_SHARE = 0.05
"""A problem touching at least 5% of what it is counted out of is high severity …"""
MEDIUM_SHARE = 0.005
"""… at least 0.5% medium, anything above zero low, and zero is info (nothing to do)."""


def severity_by_share(count: int | None, denominator: int | None, *, floor: str = "low",
                      ceiling: str = "high") -> str:
    """Severity that scales with size: the share ``count / denominator`` against `HIGH_SHARE` and
    `MEDIUM_SHARE`, then kept between `floor` and `ceiling` (a legal problem such as mail after an
    opt-out is never below medium; a data inconsistency that changes no rate much never above medium).
    No count (or zero) is "info"; a count without a denominator gets `floor`."""
    if not count:
        return "info"
    share = count / denominator if denominator else None
    if share is None:
        by_size = floor
    elif share >= HIGH_SHARE:
        by_size = "high"
    elif share >= MEDIUM_SHARE:
        by_size = "medium"
    else:
        by_size = "low"
    rank = min(max(SEVERITY_ORDER[by_size], SEVERITY_ORDER[ceiling]), SEVERITY_ORDER[floor])
    return SEVERITIES[rank]


@dataclass
class Finding:
    """One finding as a reader sees it: how bad, what, how many of how many, and what to do."""

    severity: str
    title: str
    detail: str = ""
    fix: str = ""
    count: int | None = None
    denominator: int | None = None
    key: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "extra"} | self.extra


def severity_word(severity: str) -> str:
    """high / medium / low / info as the reader sees it."""
    return _(SEVERITY_WORDS[severity])


def ranked(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then the largest count."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], -(f.count or 0)))


# --- numbers in sentences ----------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def count(n) -> str:
    """12,345 (Russian: 12 345; a missing count is "—")."""
    if _missing(n):
        return "—"
    return number(int(round(n)))


def pct(fraction, *, signed: bool = False) -> str:
    """A fraction as a percentage, with two significant digits for small rates (0.036%, not 0.0%)."""
    if _missing(fraction):
        return "—"
    size = abs(fraction)
    digits = 1 if size >= 0.01 or size == 0 else 2 if size >= 0.001 else 3
    return percent(fraction, digits, signed=signed)


def points(pp, *, signed: bool = True) -> str:
    """Percentage points: +3.2 pp."""
    if _missing(pp):
        return "—"
    return _("{value} pp").format(value=number(pp, 1, signed=signed))


def of(n, total) -> str:
    """"3 of 109,386 (0.003%)"; without a total, the count alone."""
    if not total:
        return count(n)
    return _("{n} of {total} ({share})").format(n=count(n), total=count(total), share=pct(n / total))


def money(amount, currency: str | None = None) -> str:
    """1,867,685.00 RUB (no currency known: the amount alone)."""
    if _missing(amount):
        return "—"
    return number(amount, 2) + (f" {currency}" if currency else "")


def unit(forms: tuple[str, str], total) -> str:
    """What a finding counts, in the form that agrees with the total it is counted out of (`N_plural`
    forms): the index says "n of <total> <unit>" (Russian: the genitive after «из N», из 21 отправки,
    из 25 отправок)."""
    return ngettext(forms[0], forms[1], int(total or 0))


def interval(low, high, formatter=pct) -> str:
    """"12.3%–14.1%" (a missing end: "—")."""
    if low is None or high is None:
        return "—"
    return f"{formatter(low)}–{formatter(high)}"


def times(ratio) -> str:
    """A ratio: 1.06×, 12× (or "—")."""
    if _missing(ratio):
        return "—"
    return number(ratio, 2) + "×" if ratio < 10 else number(ratio) + "×"


# --- column labels -----------------------------------------------------------------------------

COLUMN_LABELS = {
    "delivered": N_("Delivered"),
    "sent": N_("Sent"),
    "attempted": N_("Attempted"),
    "opened": N_("Opened"),
    "clicked": N_("Clicked"),
    "open_rate": N_("Open rate"),
    "raw_open_rate": N_("Open rate (Bitrix)"),
    "human_open_rate": N_("Human open rate"),
    "click_rate": N_("Click rate"),
    "ctor": N_("Click-to-open"),
    "unsub_rate": N_("Unsubscribe rate"),
    "complaint_rate": N_("Complaint rate"),
    "error_rate": N_("Error rate"),
    "hard_bounce_rate": N_("Hard-bounce rate"),
    "hard_bounces": N_("Hard bounces"),
    "soft_bounces": N_("Soft bounces"),
    "sender_blocks": N_("Blocks of the sender"),
    "error_rows": N_("Sends in error"),
    "complaints": N_("Complaints"),
    "unsubscribes": N_("Unsubscribes"),
    "posting": N_("Mailing"),
    "posting_id": N_("Mailing no."),
    "campaign": N_("Campaign"),
    "campaign_id": N_("Campaign no."),
    "letter_id": N_("Letter no."),
    "title": N_("Letter"),
    "first_send": N_("First send"),
    "provider": N_("Mailbox provider"),
    "month": N_("Month"),
    "severity": N_("Severity"),
    "count": N_("Count"),
    "denominator": N_("Out of"),
    "unit": N_("Counted among"),
    "share": N_("Share"),
    "email": N_("Address"),
    "reason": N_("Reason"),
    "file": N_("File"),
    "addresses": N_("Addresses"),
    "events": N_("Events"),
    "rows": N_("Rows"),
    "contacts": N_("Contacts"),
    "revenue": N_("Revenue"),
    "value": N_("Value"),
    "figure": N_("Figure"),
    "definition": N_("What it counts"),
    "example": N_("Example reply"),
    "rule": N_("Rule that matched"),
    "issue": N_("Problem"),
    "dimension": N_("Compared by"),
    "segment": N_("Segment"),
    "metric": N_("Rate"),
    "ratio": N_("Ratio"),
    "p_adjusted": N_("p (adjusted)"),
    "significant": N_("Significant"),
}


def label(column, labels: dict | None = None) -> str:
    """The reader's name of a column: the report's own label, else a shared one. A name without a
    label is shown as is, so a test on the HTML finds it (a snake_case name means a missing label)."""
    if isinstance(column, tuple):
        return " / ".join(label(c, labels) for c in column)
    name = str(column)
    if labels and name in labels:
        return _(labels[name])
    if name in COLUMN_LABELS:
        return _(COLUMN_LABELS[name])
    return name[:1].upper() + name[1:] if "_" not in name else name



# --- mail clients (open_inflation's rows, segments' client dimension) -----------------------------

MAIL_CLIENTS = {"apple": N_("Apple Mail"), "gmail": N_("Gmail"), "yahoo": N_("Yahoo Mail"), "outlook": N_("Outlook"),
                "thunderbird": N_("Thunderbird"), "yandex": N_("Yandex Mail"), "rambler": N_("Rambler Mail"),
                "mail.ru": N_("Mail.ru Mail"), "android": N_("Android mail apps"),
                "webmail": N_("Webmail in a browser"), "scanner": N_("Security scanners"),
                "unknown": N_("Client not identified")}
"""The mail clients of `analyses.opens.CLIENTS` as a reader sees them."""


def client_name(client) -> str:
    client = str(client)
    return _(MAIL_CLIENTS[client]) if client in MAIL_CLIENTS else client


# --- machine clicks (every report that counts clicks publishes the ones it left out) ----------------

MACHINE_CLICK_WHO = {"access_log": N_("Security scanner seen in the access log"),
                     "link_burst": N_("Several links clicked within seconds"),
                     "before_delivery_possible": N_("Clicked within a minute of sending"),
                     "automated_contact": N_("Contact whose every letter is clicked like a gateway's"),
                     "person": N_("People")}
MACHINE_CLICK_MEANING = {
    "access_log": N_("the web server logged it from a security scanner (its User-Agent, or a gateway's "
                     "published network)"),
    "link_burst": N_("another link of the same letter was clicked within seconds: a scanner fetches every "
                     "link at once, a person one at a time"),
    "before_delivery_possible": N_("clicked within a minute of sending: faster than a person can receive, "
                                   "notice and open a letter"),
    "automated_contact": N_("the contact clicks nearly every letter minutes after delivery without loading "
                            "its pixel first: a gateway in front of the mailbox"),
    "person": N_("every other click"),
}
MACHINE_CLICK_LABELS = {"reason": N_("Who clicked"), "clicks": N_("Click rows"), "sends": N_("Sends with such a click"),
                        "share": N_("Share of click rows"), "meaning": N_("How it is recognised")}


def machine_clicks_view(table):
    """`analyses.machine_clicks.removed_clicks` with each reason, and how it is recognised, in words."""
    view = table.copy()
    view["meaning"] = view["reason"].map(lambda r: _(MACHINE_CLICK_MEANING[r]) if r in MACHINE_CLICK_MEANING else "")
    view["reason"] = view["reason"].map(lambda r: _(MACHINE_CLICK_WHO[r]) if r in MACHINE_CLICK_WHO else r)
    return view


def publish_machine_clicks(ctx, table, *, name: str, section: str | None, period_label: str | None) -> None:
    """A report's "machine clicks left out" section: the table saved as `name`, its counts recorded in
    summary.json under `section` (None: not recorded), one sentence and the table. `period_label` names
    when the letters were sent (None: the inactivity window of list hygiene)."""
    from mailaudit.analyses.machine_clicks import removed_by_reason

    ctx.save_table(name, table)
    if section:
        ctx.record(section, {"machine_clicks_removed": removed_by_reason(table)})
    period_label = period_label or _("the inactivity window")
    ctx.say(machine_clicks_sentence(table, period_label))
    ctx.show(machine_clicks_view(table), caption=machine_clicks_caption(period_label), percent=["share"],
             labels=MACHINE_CLICK_LABELS)


def machine_clicks_sentence(table, period_label: str) -> str:
    """One line: how many click rows of letters sent in `period_label` were left out as machines', and why."""
    machine = table[table["reason"] != "person"]
    removed, total = int(machine["clicks"].sum()), int(table["clicks"].sum())
    if not total:
        return _("No click rows in {period}.").format(period=period_label)
    if not removed:
        return ngettext("The {total} click row of letters sent in {period} looks like a person's: none was removed.",
                        "All {total} click rows of letters sent in {period} look like people's: none was removed.",
                        total).format(total=count(total), period=period_label)
    parts = "; ".join(f"{_(MACHINE_CLICK_WHO[r.reason]).lower()}: {count(r.clicks)}"
                      for r in machine.itertuples() if r.clicks)
    return _("{removed} click rows of letters sent in {period} are machines' and count as no one's click here "
             "({parts}).").format(removed=of(removed, total), period=period_label, parts=parts)


def machine_clicks_caption(period_label: str) -> str:
    return _("Click rows of letters sent in {period}, by who made them").format(period=period_label)
