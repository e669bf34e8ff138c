"""The clicks every report leaves out as a machine's, counted by the reason the model gives (see
model/sql/machine_clicks.sql): one definition of a person's click for open_inflation, segments,
list_hygiene and conversion, and one table each of them publishes."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from mailaudit.model import Model

REASONS = ("access_log", "link_burst", "before_delivery_possible", "automated_contact")
"""Machine-click reasons, in the order the model applies them (their meaning in words: narrative.common)."""


def removed_clicks(model: Model, start: datetime, end_exclusive: datetime) -> pd.DataFrame:
    """Click rows of delivered sends sent in [start, end_exclusive), by who made them: one row per
    machine-click reason (zero when none) and one for people. Columns: reason, clicks, sends (with at
    least one such click), share (of all click rows)."""
    counts = model.con.execute("""
        SELECT coalesce(m.reason, 'person') AS reason, count(*) AS clicks, count(DISTINCT k.recipient_id) AS sends
        FROM clicks k
        JOIN sends s ON s.recipient_id = k.recipient_id AND s.delivered AND s.sent_at >= $start AND s.sent_at < $end
        LEFT JOIN machine_clicks m ON m.click_id = k.click_id
        GROUP BY ALL""", {"start": start, "end": end_exclusive}).df().set_index("reason")
    table = pd.DataFrame([{"reason": reason,
                           "clicks": int(counts["clicks"].get(reason, 0)),
                           "sends": int(counts["sends"].get(reason, 0))} for reason in (*REASONS, "person")])
    total = table["clicks"].sum()
    table.insert(3, "share", table["clicks"] / total if total else 0.0)
    return table


def removed_by_reason(table: pd.DataFrame) -> dict[str, int]:
    """{reason: machine click rows} of a `removed_clicks` table (for summary.json)."""
    return {row.reason: int(row.clicks) for row in table.itertuples() if row.reason != "person"}
