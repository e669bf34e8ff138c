"""The audit summary at the top of index.html: the most important actions across every report, and the
suppression files with their row counts.

Actions are the reports' findings (info findings left out), ranked by severity (high, medium, low), then
those whose stake (money or deliverability) the report states before those it does not, then by the share
of its whole a finding concerns (`count` ÷ `of`), then by its count; at most MAX_ACTIONS.
Each links to the finding in its report page (``<report>.html#finding-<n>``) and to its evidence file
when the bundle holds one.
"""
from __future__ import annotations

import csv
from pathlib import Path

from mailaudit.analyses.suppression import DESCRIPTIONS
from mailaudit.narrative.language import _, number

MAX_ACTIONS = 10
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
COMBINED_FILES = ("suppress_all.csv", "suppress_blacklist_import.csv")
"""Listed first: the files that take every reason together."""
HEADERLESS = ("suppress_blacklist_import.csv",)


def how_many(finding: dict) -> str:
    """"1,234 of 20,000 contacts", "1,234 sends" or "" for a finding without a count (the unit is the
    finding's own words, already in the bundle's language)."""
    count, of, unit = finding.get("count"), finding.get("of"), finding.get("unit") or ""
    if count is None:
        return ""
    text = _("{n} of {total}").format(n=number(count), total=number(of)) if of else number(count)
    return f"{text} {unit}".strip()


def actions(parts: dict[str, dict], reports: list[dict], bundle: Path, limit: int = MAX_ACTIONS) -> list[dict]:
    """The ranked actions: severity, title, fix (else the finding's detail), how_many, stake, report (its
    title), link (to the finding) and evidence (a bundle file that exists, else None)."""
    found = []
    for order, report in enumerate(reports):
        if not report.get("html"):
            continue
        for finding in parts.get(report["name"], {}).get("findings", []):
            if finding.get("severity") not in SEVERITY_RANK:
                continue
            count, of = finding.get("count"), finding.get("of")
            evidence = finding.get("evidence")
            found.append({
                "severity": finding["severity"], "title": finding["title"],
                "fix": finding.get("fix") or finding.get("detail") or "", "how_many": how_many(finding),
                "stake": finding.get("stake") or "", "report": report["title"],
                "link": f"{report['html']}#{finding['anchor']}" if finding.get("anchor") else report["html"],
                "evidence": evidence if evidence and (bundle / evidence).is_file() else None,
                "_key": (SEVERITY_RANK[finding["severity"]], not finding.get("stake"),
                         -(count / of if count and of else 0.0),
                         -(count or 0), order)})
    found.sort(key=lambda item: item["_key"])
    return [{k: v for k, v in item.items() if k != "_key"} for item in found[:limit]]


def _data_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = sum(1 for _ in csv.reader(handle))
    return rows if path.name in HEADERLESS else max(rows - 1, 0)


def suppression_listing(bundle: Path) -> list[dict]:
    """Every suppress_*.csv of the bundle: file, rows (addresses), description; the combined files first,
    then the others by rows, most first."""
    listing = []
    for path in bundle.glob("suppress_*.csv"):
        reason = path.stem[len("suppress_"):]
        listing.append({"file": path.name, "rows": _data_rows(path),
                        "description": _(DESCRIPTIONS[reason]) if reason in DESCRIPTIONS else
                        _("addresses to suppress: {reason}").format(reason=reason.replace("_", " "))})
    combined = [item for name in COMBINED_FILES for item in listing if item["file"] == name]
    others = sorted((item for item in listing if item["file"] not in COMBINED_FILES),
                    key=lambda item: (-item["rows"], item["file"]))
    return combined + others
