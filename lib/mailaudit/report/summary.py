"""summary.json: the run's frame (period, source, report statuses) plus every recorded section."""
from __future__ import annotations

import json
from pathlib import Path

from mailaudit.report.context import deep_merge, json_safe

SCHEMA_VERSION = 1


def build_summary(*, period, source: dict, outcomes: list[dict], parts: dict[str, dict],
                  run: dict | None = None) -> dict:
    """Merge the notebooks' parts into the summary.

    `source`: dialect, layout, charset, row_counts (+ database name). `outcomes`: one dict per
    requested report with name, status, html, error, reason. `parts`: report name -> parts file.
    `run`: how the bundle was made (kit version, time, the validated parameters), kept under "run".
    Sections recorded by several reports merge; suppression files go under hygiene.suppression_files.
    """
    summary: dict = {
        "schema_version": SCHEMA_VERSION,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "source": source,
        "reports": {},
    }
    if run:
        summary["run"] = run
    for outcome in outcomes:
        part = parts.get(outcome["name"], {})
        notes = list(part.get("notes", []))
        if outcome["status"] == "skipped" and outcome.get("reason"):
            notes.insert(0, f"skipped: {outcome['reason']}")
        if outcome["status"] == "failed" and outcome.get("error"):
            notes.insert(0, f"failed: {outcome['error']}")
        entry = {"status": outcome["status"], "html": outcome.get("html"), "notes": notes,
                 "headline": part.get("headline"), "findings": part.get("findings", []),
                 "tables": part.get("tables", [])}
        if outcome.get("error"):
            entry["error"] = outcome["error"]
        summary["reports"][outcome["name"]] = entry
        for section, figures in part.get("sections", {}).items():
            deep_merge(summary.setdefault(section, {}), figures)
        if part.get("suppression_files"):
            hygiene = summary.setdefault("hygiene", {})
            hygiene.setdefault("suppression_files", {}).update(part["suppression_files"])
    return json_safe(summary)


def write_summary(path: Path, summary: dict) -> None:
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, allow_nan=False) + "\n", encoding="utf-8")
