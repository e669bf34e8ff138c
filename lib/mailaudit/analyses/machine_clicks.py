"""The clicks every report leaves out as a machine's, counted by the reason the model gives (see
model/sql/machine_clicks.sql): one definition of a person's click for open_inflation, segments,
list_hygiene and conversion, and one table each of them publishes."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from mailaudit.model import Model

REASONS = {
    "access_log": "the web server logged it from a security scanner (its User-Agent, or a gateway's "
                  "published network)",
    "link_burst": "another link of the same letter was clicked within seconds: a scanner fetches every "
                  "link at once, a person one at a time",
    "before_delivery_possible": "clicked within a minute of sending: faster than a person can receive, "
                                "notice and open a letter",
    "automated_contact": "the contact clicks nearly every letter minutes after delivery without loading "
                         "its pixel first: a gateway in front of the mailbox",
}
"""Machine-click reason -> what it means, in the order the model applies them."""


def removed_clicks(model: Model, start: datetime, end_exclusive: datetime) -> pd.DataFrame:
    """Click rows of delivered sends sent in [start, end_exclusive), by who made them: one row per
    machine-click reason (zero when none) and one for people. Columns: reason, clicks, sends (with at
    least one such click), share (of all click rows), meaning."""
    counts = model.con.execute("""
        SELECT coalesce(m.reason, 'person') AS reason, count(*) AS clicks, count(DISTINCT k.recipient_id) AS sends
        FROM clicks k
        JOIN sends s ON s.recipient_id = k.recipient_id AND s.delivered AND s.sent_at >= $start AND s.sent_at < $end
        LEFT JOIN machine_clicks m ON m.click_id = k.click_id
        GROUP BY ALL""", {"start": start, "end": end_exclusive}).df().set_index("reason")
    rows = [(reason, meaning) for reason, meaning in REASONS.items()] + [("person", "every other click")]
    table = pd.DataFrame([{"reason": reason,
                           "clicks": int(counts["clicks"].get(reason, 0)),
                           "sends": int(counts["sends"].get(reason, 0)),
                           "meaning": meaning} for reason, meaning in rows])
    total = table["clicks"].sum()
    table.insert(3, "share", table["clicks"] / total if total else 0.0)
    return table


def removed_by_reason(table: pd.DataFrame) -> dict[str, int]:
    """{reason: machine click rows} of a `removed_clicks` table (for summary.json)."""
    return {row.reason: int(row.clicks) for row in table.itertuples() if row.reason != "person"}


def sentence(table: pd.DataFrame, period_label: str) -> str:
    """One line: how many click rows were left out as machines' and why."""
    machine = table[table["reason"] != "person"]
    removed, total = int(machine["clicks"].sum()), int(table["clicks"].sum())
    if not total:
        return f"No click rows in {period_label}."
    if not removed:
        return f"All {total:,} click rows of letters sent in {period_label} look like people's: none was removed."
    parts = ", ".join(f"{int(r.clicks):,} {r.reason.replace('_', ' ')}" for r in machine.itertuples() if r.clicks)
    return (f"{removed:,} of {total:,} click rows of letters sent in {period_label} ({removed / total:.0%}) are "
            f"machines' and count as no one's click here ({parts}).")
