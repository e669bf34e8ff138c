"""The model: the business relations of one snapshot (sends, reads, clicks, contacts, orders…), each
defined once (see model/build.py and model/sql/), queried by every analysis and by analysts.

    model = Model.open("data/demo.snapshot.duckdb")
    model.sql("SELECT provider, avg(delivered::INT) FROM sends GROUP BY 1")   # a DataFrame

Relations (columns in docs/developers.md and in each SQL file's header):
  campaigns, letters, letter_utm, postings, contacts, contact_lists, subscriptions, sends, reads,
  clicks, unsubscribes, complaints, blacklist, crm_exclusions, crm_contacts, crm_emails,
  crm_activities, orders, order_crm_contacts, deals, deal_crm_contacts, crm_utm, delivery_events,
  tracking_hits, user_agents, provider_domains.
Raw Bitrix tables stay readable as ``raw.<table>`` and the parsed logs as ``logs.<table>``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mailaudit.bitrix.schema import REPORTS, Capability, capability


class Model:
    """A read-only view of one snapshot: SQL over the model's relations, and what the source held."""

    def __init__(self, con, manifest: dict, path: Path | None = None):
        self.con = con
        self.manifest = manifest
        self.path = path

    @classmethod
    def open(cls, path: str | Path) -> "Model":
        from mailaudit.snapshot.store import open_snapshot

        return open_snapshot(Path(path))

    # --- what the source held -----------------------------------------------------------------

    @property
    def layout(self) -> str:
        return self.manifest["source"]["layout"]

    @property
    def dialect(self) -> str:
        return self.manifest["source"]["dialect"]

    @property
    def tables(self) -> frozenset[str]:
        """The Bitrix tables the source has (those the kit reads)."""
        return frozenset(self.manifest["tables"])

    def has(self, *tables: str) -> bool:
        """Whether the source has every one of these Bitrix tables."""
        return all(t in self.manifest["tables"] for t in tables)

    def columns(self, table: str) -> set[str]:
        """The Bitrix columns of `table` the source has (upper-case names); empty when it lacks the table."""
        return set(self.manifest["tables"].get(table, {}).get("columns", []))

    @property
    def capabilities(self) -> dict[str, Capability]:
        return {report: capability(self.has, report) for report in REPORTS}

    @property
    def has_delivery_log(self) -> bool:
        return bool(self.manifest.get("logs", {}).get("delivery", {}).get("files"))

    @property
    def has_access_log(self) -> bool:
        return bool(self.manifest.get("logs", {}).get("access", {}).get("files"))

    # --- queries --------------------------------------------------------------------------------

    def sql(self, query: str, params: dict | list | None = None) -> pd.DataFrame:
        """Run `query` on the model and return the result as a DataFrame."""
        return self.con.execute(query, params).df() if params is not None else self.con.execute(query).df()

    def row(self, query: str, params: dict | list | None = None) -> tuple | None:
        """The first row of the result (the whole result is fetched: DuckDB refuses other work on a
        connection while a result is still open)."""
        rows = (self.con.execute(query, params) if params is not None else self.con.execute(query)).fetchall()
        return rows[0] if rows else None

    def scalar(self, query: str, params: dict | list | None = None):
        row = self.row(query, params)
        return None if row is None else row[0]

    def sends_in(self, period) -> int:
        """Recipient rows of e-mail letters (any STATUS) whose DATE_SENT falls in `period`."""
        return int(self.scalar("SELECT count(*) FROM sends WHERE sent_at >= $start AND sent_at < $end",
                               {"start": period.start_dt, "end": period.end_exclusive}))

    def close(self) -> None:
        self.con.close()
