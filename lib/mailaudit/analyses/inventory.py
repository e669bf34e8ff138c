"""Data and tracking readiness: what the snapshot holds, its quality, and whether links and clicks are tracked.

Every check returns a count with its denominator (its words and severity are in narrative/data_and_tracking.py). Everything is
counted in the snapshot (the model's relations; the integrity checks look at the raw Bitrix rows, which
is what they are about); only small aggregates come back to Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from mailaudit.bitrix.codes import REQUIRED_UTM, RecipientStatus
from mailaudit.bitrix.schema import OPTIONAL_TABLES
from mailaudit.model import Model
from mailaudit.period import Period

# The date column that tells how far back each table reaches.
DATE_COLUMNS = {
    "b_sender_mailing": "DATE_INSERT",
    "b_sender_mailing_chain": "DATE_INSERT",
    "b_sender_posting": "DATE_SEND",
    "b_sender_posting_recipient": "DATE_SENT",
    "b_sender_posting_read": "DATE_INSERT",
    "b_sender_posting_click": "DATE_INSERT",
    "b_sender_posting_unsub": "DATE_INSERT",
    "b_sender_contact": "DATE_INSERT",
    "b_sender_abuse": "DATE_INSERT",
    "b_main_mail_blacklist": "DATE_INSERT",
    "b_crm_contact": "DATE_CREATE",
    "b_crm_deal": "DATE_CREATE",
    "b_crm_exclusion": "DATE_INSERT",
    "b_crm_act": "CREATED",
    "b_sale_order": "DATE_INSERT",
}


@dataclass
class Check:
    """One data-quality or tracking check: ``count`` out of ``denominator``, and the facts its finding
    names (``narrative.data_and_tracking`` words it and judges its severity). A check the source
    cannot make has ``count`` None and the missing table or column under ``facts["missing"]``."""

    key: str
    count: int | None
    denominator: int | None
    facts: dict = field(default_factory=dict)

    @property
    def share(self) -> float | None:
        if self.count is None or not self.denominator:
            return None
        return self.count / self.denominator


def inventory(model: Model) -> pd.DataFrame:
    """One row per Bitrix table the source has: module, rows read into the snapshot, first and last date."""
    rows = []
    module_of = {t: group for group, tables in OPTIONAL_TABLES.items() for t in tables}
    for name in sorted(model.tables):
        first = last = None
        column = DATE_COLUMNS.get(name)
        if name == "b_sender_posting" and "DATE_SEND" not in model.columns(name):
            column = "DATE_CREATE"   # the legacy layout has no DATE_SEND
        if column and column in model.columns(name):
            first, last = model.row(f'SELECT min("{column}"), max("{column}") FROM raw."{name}"')
        rows.append({
            "table": name,
            # a machine key (bitrix.schema.OPTIONAL_TABLES), worded by narrative.data_and_tracking.MODULE_WORDS
            "group": module_of.get(name, "sender core" if name.startswith("b_sender") else "other"),
            "rows": int(model.manifest["tables"][name]["rows"]),
            "date_column": column,
            "first": first,
            "last": last,
        })
    return pd.DataFrame(rows, columns=["table", "group", "rows", "date_column", "first", "last"])


MISSING_COLUMNS = ["table", "column", "type", "rows", "null", "empty", "whitespace", "missing", "missing_share"]
_TEXT_TYPES = ("VARCHAR", "TEXT", "CHAR")


def missing_values(model: Model) -> pd.DataFrame:
    """Every column the kit reads from the source (keys aside): rows in the snapshot, NULLs and, for text,
    empty and whitespace-only values; ``missing`` is their sum. Columns a version lacks are not listed
    (the manifest names them)."""
    types = {(t, c.upper()): (c, kind) for t, c, kind in model.con.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'raw'").fetchall()}
    rows = []
    for table in sorted(model.tables):
        columns = [types[(table, c.upper())] for c in model.columns(table)
                   if c.upper() != "ID" and (table, c.upper()) in types]
        if not columns:
            continue
        parts = ["count(*)"]
        for name, kind in columns:
            quoted = f'"{name}"'
            text = kind.upper().startswith(_TEXT_TYPES)
            parts += [f"count(*) FILTER (WHERE {quoted} IS NULL)",
                      f"count(*) FILTER (WHERE {quoted} = '')" if text else "0",
                      f"count(*) FILTER (WHERE {quoted} <> '' AND trim({quoted}, ' \t\r\n') = '')" if text else "0"]
        counts = model.row(f'SELECT {", ".join(parts)} FROM raw."{table}"')
        total = int(counts[0])
        for i, (name, kind) in enumerate(columns):
            null, empty, blank = (int(v) for v in counts[1 + 3 * i: 4 + 3 * i])
            missing = null + empty + blank
            rows.append([table, name.upper(), kind, total, null, empty, blank, missing,
                         missing / total if total else None])
    frame = pd.DataFrame(rows, columns=MISSING_COLUMNS)
    return frame.sort_values(["missing_share", "table", "column"], ascending=[False, True, True],
                             na_position="last").reset_index(drop=True)


def missing_figures(frame: pd.DataFrame) -> dict:
    """summary.json's data_and_tracking.missing_values: "table.COLUMN" -> {null, empty, whitespace, rows}
    for every column with a missing value."""
    return {f"{r.table}.{r.column}": {"null": r.null, "empty": r.empty, "whitespace": r.whitespace, "rows": r.rows}
            for r in frame[frame["missing"] > 0].itertuples(index=False)}


def recipient_status_by_month(model: Model, period: Period) -> pd.DataFrame:
    """Recipient rows of e-mail letters per send month and status label, in the period (the volume chart)."""
    frame = model.sql(
        "SELECT strftime(sent_at, '%Y-%m') AS month, status, count(*) AS rows FROM sends "
        "WHERE sent_at >= $start AND sent_at < $end GROUP BY ALL ORDER BY ALL",
        {"start": period.start_dt, "end": period.end_exclusive})
    # English status keys of tables/recipients_by_month.csv; the chart words them (narrative.data_and_tracking.status_word)
    frame["status"] = frame["status"].map(lambda s: RecipientStatus.LABELS.get(s, f"other ({s})"))
    return frame.groupby(["month", "status"], as_index=False)["rows"].sum()


def data_quality_checks(model: Model, now: datetime | None = None) -> list[Check]:
    """Integrity of the sender rows in the snapshot (every posting of its window, not only the period)."""
    now = now or datetime.now()
    count = model.scalar
    total_recipients = count("SELECT count(*) FROM raw.b_sender_posting_recipient")
    checks = []
    for name, label in (("b_sender_posting_read", "reads"), ("b_sender_posting_click", "clicks")):
        if not model.has(name):
            checks.append(_missing(f"{label}_without_recipient", name))
            continue
        total = count(f"SELECT count(*) FROM raw.{name}")
        orphans = count(f"SELECT count(*) FROM raw.{name} e WHERE NOT EXISTS "
                        "(SELECT 1 FROM raw.b_sender_posting_recipient r WHERE r.ID = e.RECIPIENT_ID)")
        checks.append(Check(f"{label}_without_recipient", orphans, total))
    if model.has("b_sender_posting_read", "b_sender_posting_click"):
        # Clicks whose recipient row is gone are counted by the check above, not here.
        clickers, unread = model.row(
            """SELECT count(DISTINCT c.RECIPIENT_ID),
                      count(DISTINCT c.RECIPIENT_ID) FILTER (WHERE NOT EXISTS (
                          SELECT 1 FROM raw.b_sender_posting_read r WHERE r.RECIPIENT_ID = c.RECIPIENT_ID))
               FROM raw.b_sender_posting_click c
               JOIN raw.b_sender_posting_recipient x ON x.ID = c.RECIPIENT_ID""")
        checks.append(Check("clicks_without_read", unread, clickers))
    checks.append(_recipients_without_contact(model, total_recipients))
    undated = count("SELECT count(*) FROM sends WHERE attempted AND sent_at IS NULL")
    attempted = count("SELECT count(*) FROM sends WHERE attempted")
    checks.append(Check("sent_without_date", undated, attempted))
    blank = count("SELECT count(*) FROM contacts WHERE is_email_contact AND email IS NULL")
    contacts = count("SELECT count(*) FROM contacts WHERE is_email_contact")
    checks.append(Check("contacts_without_address", blank, contacts))
    future = count("SELECT count(*) FROM raw.b_sender_posting_recipient WHERE DATE_SENT > $now", {"now": now})
    checks.append(Check("sends_in_future", future, total_recipients, {"today": now.date()}))
    early = count("SELECT count(*) FROM raw.b_sender_posting_recipient r JOIN raw.b_sender_posting p "
                  "ON p.ID = r.POSTING_ID WHERE r.DATE_SENT < p.DATE_CREATE")
    checks.append(Check("sends_before_posting", early, total_recipients))
    return _nothing_to_check(checks)


def _nothing_to_check(checks: list[Check]) -> list[Check]:
    """A check over no rows (a period without sends, a table without rows) is null, not a clean 0."""
    for check in checks:
        if check.denominator == 0:
            check.count = None
            check.facts["nothing"] = True
    return checks


def _recipients_without_contact(model: Model, total: int) -> Check:
    if model.layout == "legacy":
        missing = model.scalar("SELECT count(*) FROM raw.b_sender_posting_recipient "
                               "WHERE address(EMAIL) IS NULL")
    else:
        missing = model.scalar("SELECT count(*) FROM raw.b_sender_posting_recipient r WHERE NOT EXISTS "
                               "(SELECT 1 FROM raw.b_sender_contact c WHERE c.ID = r.CONTACT_ID)")
    return Check("recipients_without_contact", missing, total, {"legacy": model.layout == "legacy"})


def reads_per_recipient(model: Model) -> pd.DataFrame:
    """How many read rows (pixel loads) each opening recipient has: opens are not de-duplicated by Bitrix."""
    if not model.has("b_sender_posting_read"):
        return pd.DataFrame(columns=["reads", "recipients"])
    frame = model.sql("SELECT reads, count(*) AS recipients FROM "
                      "(SELECT count(*) AS reads FROM reads GROUP BY recipient_id) GROUP BY reads ORDER BY reads")
    bands = pd.cut(frame["reads"], [0, 1, 2, 3, 5, 10, float("inf")],
                   labels=["1", "2", "3", "4–5", "6–10", "11+"])
    return frame.groupby(bands, observed=False)["recipients"].sum().rename_axis("reads").reset_index()


def tracking_checks(model: Model, period: Period) -> tuple[list[Check], pd.DataFrame]:
    """UTM sets of the letters sent in the period, campaigns without click tracking, links without UTM.

    Returns the checks and one row per letter (its UTM codes, links, links lacking UTM).
    """
    letters = letters_sent_in(model, period)
    incomplete = letters[letters["missing_utm"] != ""]
    missing_codes = sorted({c for m in incomplete["missing_utm"] for c in m.split(", ")})
    links = int(letters["links"].sum())
    checks = [
        Check("letters_missing_utm", len(incomplete), len(letters), {"missing_codes": missing_codes}),
        _click_tracking(model, period),
        Check("links_without_utm", int(letters["links_without_utm"].sum()), links),
        Check("links_reaching_site_untagged", int(letters["links_reaching_site_untagged"].sum()), links),
    ]
    return _nothing_to_check(checks), letters


def _started_in(period: Period) -> dict:
    return {"start": period.start_dt, "end": period.end_exclusive}


def letters_sent_in(model: Model, period: Period) -> pd.DataFrame:
    """E-mail letters with a posting that started in the period, with their UTM set and link counts."""
    letters = model.sql(
        "SELECT letter_id, campaign_id, title, link_params, html FROM letters WHERE is_email AND letter_id IN "
        "(SELECT letter_id FROM postings WHERE started_at >= $start AND started_at < $end) ORDER BY letter_id",
        _started_in(period))
    utm = model.sql("SELECT letter_id, code, value FROM letter_utm")
    utm_sets: dict[int, dict[str, str]] = {}
    for letter_id, code, value in utm.itertuples(index=False, name=None):
        utm_sets.setdefault(int(letter_id), {})[code] = (value if isinstance(value, str) else "").strip()
    rows = []
    for letter in letters.itertuples(index=False):
        tags = dict(utm_sets.get(int(letter.letter_id), {}))
        link_params = letter.link_params if isinstance(letter.link_params, str) else ""
        for code, value in parse_qsl(link_params):
            tags.setdefault(code.lower(), value)
        links = extract_links(letter.html if isinstance(letter.html, str) else "")
        untagged = [link for link in links if not _has_complete_utm(link)]
        letter_complete = all(tags.get(code) for code in REQUIRED_UTM)
        rows.append({
            "letter_id": int(letter.letter_id),
            "campaign_id": letter.campaign_id,
            "title": letter.title if isinstance(letter.title, str) else "",
            "utm_codes": ", ".join(sorted(code for code, value in tags.items() if value)),
            "missing_utm": ", ".join(code for code in REQUIRED_UTM if not tags.get(code)),
            "links": len(links),
            "links_without_utm": len(untagged),
            "links_reaching_site_untagged": 0 if letter_complete else len(untagged),
        })
    return pd.DataFrame(rows, columns=[
        "letter_id", "campaign_id", "title", "utm_codes", "missing_utm", "links",
        "links_without_utm", "links_reaching_site_untagged"])


_HREF = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def extract_links(html: str | None) -> list[str]:
    """http(s) link targets of a letter's HTML (not mailto:, anchors or Bitrix #PLACEHOLDERS#)."""
    return [href.strip() for href in _HREF.findall(html or "")
            if urlsplit(href.strip()).scheme in ("http", "https")]


def _has_complete_utm(link: str) -> bool:
    query = {code.lower(): value for code, value in parse_qsl(urlsplit(link).query)}
    return all(query.get(code) for code in REQUIRED_UTM)


def _click_tracking(model: Model, period: Period) -> Check:
    if "TRACK_CLICK" not in model.columns("b_sender_mailing"):
        return _missing("campaigns_click_tracking_off", "b_sender_mailing.TRACK_CLICK")
    campaigns = model.sql(
        "SELECT campaign_id, name, coalesce(NOT track_click, false) AS off FROM campaigns WHERE campaign_id IN "
        "(SELECT campaign_id FROM postings WHERE started_at >= $start AND started_at < $end) ORDER BY campaign_id",
        _started_in(period))
    off = list(campaigns.loc[campaigns["off"].astype(bool), "name"].fillna(""))
    return Check("campaigns_click_tracking_off", len(off), len(campaigns), {"campaigns": off})


def _missing(key: str, what: str) -> Check:
    return Check(key, None, None, {"missing": what})


def figures(checks: list[Check], letters: pd.DataFrame) -> dict:
    """The section recorded in summary.json: every check's count and denominator, and the
    letters sent in the period lacking each required UTM code."""
    return ({c.key: c.count for c in checks}
            | {"denominators": {c.key: c.denominator for c in checks},
               "letters_sent": len(letters),
               "letters_missing_utm_by_code": missing_utm_by_code(letters) if len(letters) else None})


def missing_utm_by_code(letters: pd.DataFrame) -> dict[str, int]:
    """Letters (rows of ``letters_sent_in``) lacking each required UTM code."""
    return {code: int(letters["missing_utm"].str.contains(code).sum()) for code in REQUIRED_UTM}
