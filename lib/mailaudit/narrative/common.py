"""What every report's wording shares: number formats, the size-based severity rule, a finding, column labels.

Numbers in sentences: counts with thousands separators, rates as percentages, money with its currency,
"n of N (share)" whenever a count has a denominator. p-values never appear in a sentence (they stay in
tables), nor do raw Bitrix codes or column names.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

SEVERITIES = ("high", "medium", "low", "info")
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


def ranked(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then the largest count."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], -(f.count or 0)))


# --- numbers in sentences ----------------------------------------------------------------------

def count(n) -> str:
    """12,345 (a missing count is "—")."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "—"
    return f"{int(round(n)):,}"


def pct(fraction, *, signed: bool = False) -> str:
    """A fraction as a percentage, with two significant digits for small rates (0.036%, not 0.0%)."""
    if fraction is None or (isinstance(fraction, float) and not math.isfinite(fraction)):
        return "—"
    size = abs(fraction)
    digits = 1 if size >= 0.01 or size == 0 else 2 if size >= 0.001 else 3
    return f"{fraction:{'+' if signed else ''}.{digits}%}"


def points(pp, *, signed: bool = True) -> str:
    """Percentage points: +3.2 pp."""
    if pp is None or (isinstance(pp, float) and not math.isfinite(pp)):
        return "—"
    return f"{pp:{'+' if signed else ''}.1f} pp"


def of(n, total) -> str:
    """"3 of 109,386 (0.003%)"; without a total, the count alone."""
    if not total:
        return count(n)
    return f"{count(n)} of {count(total)} ({pct(n / total)})"


def money(amount, currency: str | None = None) -> str:
    """1,867,685.00 RUB (no currency known: the amount alone)."""
    if amount is None or (isinstance(amount, float) and not math.isfinite(amount)):
        return "—"
    return f"{amount:,.2f}" + (f" {currency}" if currency else "")


def interval(low, high, formatter=pct) -> str:
    """"12.3%–14.1%" (a missing end: "—")."""
    if low is None or high is None:
        return "—"
    return f"{formatter(low)}–{formatter(high)}"


def times(ratio) -> str:
    """A ratio: 1.06×, 12× (or "—")."""
    if ratio is None or (isinstance(ratio, float) and not math.isfinite(ratio)):
        return "—"
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:,.0f}×"


def plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


# --- column labels -----------------------------------------------------------------------------

COLUMN_LABELS = {
    "delivered": "Delivered",
    "sent": "Sent",
    "attempted": "Attempted",
    "opened": "Opened",
    "clicked": "Clicked",
    "open_rate": "Open rate",
    "raw_open_rate": "Open rate (Bitrix)",
    "human_open_rate": "Human open rate",
    "click_rate": "Click rate",
    "ctor": "Click-to-open",
    "unsub_rate": "Unsubscribe rate",
    "complaint_rate": "Complaint rate",
    "error_rate": "Error rate",
    "hard_bounce_rate": "Hard-bounce rate",
    "hard_bounces": "Hard bounces",
    "soft_bounces": "Soft bounces",
    "sender_blocks": "Blocks of the sender",
    "error_rows": "Sends in error",
    "complaints": "Complaints",
    "unsubscribes": "Unsubscribes",
    "posting": "Mailing",
    "posting_id": "Mailing no.",
    "campaign": "Campaign",
    "campaign_id": "Campaign no.",
    "letter_id": "Letter no.",
    "title": "Letter",
    "first_send": "First send",
    "provider": "Mailbox provider",
    "month": "Month",
    "severity": "Severity",
    "count": "Count",
    "denominator": "Out of",
    "unit": "Counted among",
    "share": "Share",
    "email": "Address",
    "reason": "Reason",
    "file": "File",
    "addresses": "Addresses",
    "events": "Events",
    "rows": "Rows",
    "contacts": "Contacts",
    "revenue": "Revenue",
    "value": "Value",
    "figure": "Figure",
    "definition": "What it counts",
    "example": "Example reply",
    "rule": "Rule that matched",
    "issue": "Problem",
    "dimension": "Compared by",
    "segment": "Segment",
    "metric": "Rate",
    "ratio": "Ratio",
    "p_adjusted": "p (adjusted)",
    "significant": "Significant",
}


def label(column, labels: dict | None = None) -> str:
    """The reader's name of a column: the report's own label, else a shared one. A name without a
    label is shown as is, so a test on the HTML finds it (a snake_case name means a missing label)."""
    if isinstance(column, tuple):
        return " / ".join(label(c, labels) for c in column)
    name = str(column)
    if labels and name in labels:
        return labels[name]
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    return name[:1].upper() + name[1:] if "_" not in name else name



# --- machine clicks (every report that counts clicks publishes the ones it left out) ----------------

MACHINE_CLICK_WHO = {"access_log": "Security scanner seen in the access log",
                     "link_burst": "Several links clicked within seconds",
                     "before_delivery_possible": "Clicked within a minute of sending",
                     "automated_contact": "Contact whose every letter is clicked like a gateway's",
                     "person": "People"}
MACHINE_CLICK_LABELS = {"reason": "Who clicked", "clicks": "Click rows", "sends": "Sends with such a click",
                        "share": "Share of click rows", "meaning": "How it is recognised"}


def machine_clicks_view(table):
    """`analyses.machine_clicks.removed_clicks` with each reason in words."""
    view = table.copy()
    view["reason"] = view["reason"].map(lambda r: MACHINE_CLICK_WHO.get(r, r))
    return view
