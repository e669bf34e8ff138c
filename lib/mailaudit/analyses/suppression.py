"""The suppression files taken together: one row per address with every reason, and the addresses to
import into Bitrix's blacklist.

Each `suppress_<reason>.csv` of list hygiene holds one reason. An address found for several reasons is in
several files; `combined` gives it one row (`suppress_all.csv`) with the reasons, the evidence and the
actions of each, joined, and the IDs of the sender contacts holding the address. `blacklist_addresses`
picks the addresses whose reason means "never mail again" for Bitrix's blacklist import (Marketing >
Blacklist > Import: one address per line, optionally `;name`, no header line; see
`write_blacklist_import`).
"""
from __future__ import annotations

import pandas as pd

from mailaudit.model import Model
from mailaudit.narrative.language import N_

BLACKLIST_REASONS = ("hard_bounce", "complaint", "unsubscribed", "disposable", "no_mail_domain")
"""Reasons whose action is to stop mailing the address for good. Typos are corrected, role and duplicate
addresses reviewed, inactive contacts re-engaged, soft-bouncing ones paused: none of those is blacklisted."""

DESCRIPTIONS = {
    "hard_bounce": N_("addresses the mail server reported dead (hard bounce) or Bitrix blacklisted automatically"),
    "soft_bounce_streak": N_("addresses that soft-bounced several times in a row: pause, retry later"),
    "complaint": N_("people who marked a letter as spam"),
    "unsubscribed": N_("people who unsubscribed in the sender module"),
    "invalid_syntax": N_("addresses that are not valid e-mail syntax: fix or delete the contact"),
    "typo_domain": N_("addresses with a mistyped domain, with the likely correction"),
    "disposable": N_("throw-away (disposable) mailboxes"),
    "role_account": N_("shared role mailboxes (info@, sales@…): keep only with documented consent"),
    "duplicate": N_("contacts that reach the same mailbox as another contact: merge them"),
    "no_mail_domain": N_("addresses whose domain accepts no mail"),
    "inactive": N_("contacts mailed repeatedly without an open or click: re-engage, then suppress"),
    "crm_exclusion": N_("unsubscribed or blacklisted people missing from the CRM exclusion list"),
    "all": N_("every address above once, with all its reasons, contact IDs and evidence"),
    "blacklist_import": N_("addresses only, ready for Bitrix's blacklist import (hard bounces, complaints, "
                        "unsubscribes, disposable and dead domains)"),
}
"""One line per suppression file (by the reason in its name): what it holds (translated where shown)."""

COMBINED_COLUMNS = ["email", "reasons", "contact_ids", "evidence", "recommended_actions"]


def _text(values: pd.Series) -> pd.Series:
    """Each value as text (None where missing), as Python's str() writes it."""
    return values.astype(object).map(lambda v: None if pd.isna(v) else str(v))


# `reason: code, text (date, posting N)` of each row: code and text left out when blank or equal to the
# reason; then each column's distinct values per address, joined in the order the rows come.
_COMBINE = """
    WITH rows AS (
        SELECT seq, key, email, reason, recommended_action,
               reason || ': ' || concat_ws(', ',
                   CASE WHEN trim(code) <> '' AND code <> reason THEN code END,
                   CASE WHEN trim(text) <> '' AND text <> reason THEN text END)
               || CASE WHEN day IS NULL AND posting IS NULL THEN ''
                       ELSE ' (' || concat_ws(', ', day, 'posting ' || posting) || ')' END AS evidence
        FROM _suppression_rows
    ), firsts AS (
        SELECT key, min(seq) AS seq, arg_min(email, seq) AS email FROM rows GROUP BY key
    ), joined AS (
        SELECT key, column_name, string_agg(value, ' | ' ORDER BY first) AS value FROM (
            SELECT key, column_name, value, min(seq) AS first
            FROM (UNPIVOT (SELECT seq, key, reason, evidence, recommended_action FROM rows)
                  ON reason, evidence, recommended_action INTO NAME column_name VALUE value)
            GROUP BY ALL)
        GROUP BY ALL
    ), contacts_by_key AS (
        SELECT lower(trim(email)) AS key, string_agg(contact_id::VARCHAR, ' | ' ORDER BY contact_id) AS contact_ids
        FROM contacts WHERE email IS NOT NULL AND lower(trim(email)) IN (SELECT key FROM firsts) GROUP BY 1
    )
    SELECT f.email,
           max(j.value) FILTER (WHERE j.column_name = 'reason') AS reasons,
           c.contact_ids,
           max(j.value) FILTER (WHERE j.column_name = 'evidence') AS evidence,
           max(j.value) FILTER (WHERE j.column_name = 'recommended_action') AS recommended_actions
    FROM firsts f JOIN joined j USING (key) LEFT JOIN contacts_by_key c USING (key)
    GROUP BY f.key, f.email, c.contact_ids
    ORDER BY f.key"""


def combined(model: Model, suppressions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per address (compared lower-cased and trimmed) of every suppression table: the reasons, the
    sender contacts holding it (IDs), the evidence and the recommended actions, each joined with " | " in
    the order of `suppressions`. Sorted by address. Computed by the embedded engine: a large list has
    hundreds of thousands of addresses."""
    frames = [frame for frame in suppressions.values() if len(frame)]
    if not frames:
        return pd.DataFrame(columns=COMBINED_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    column = lambda name: rows[name] if name in rows else pd.Series(None, index=rows.index, dtype=object)  # noqa: E731
    posting = pd.to_numeric(column("evidence_posting"), errors="coerce")
    frame = pd.DataFrame({
        "seq": range(len(rows)),
        "key": rows["email"].astype(str).str.strip().str.lower(),
        "email": rows["email"].astype(str),
        "reason": rows["reason"].astype(str),
        "recommended_action": _text(column("recommended_action")),
        "code": _text(column("evidence_code")),
        "text": _text(column("evidence_text")),
        "day": _text(column("evidence_date")).str[:10],
        "posting": _text(posting.astype("Int64")),
    })
    model.con.register("_suppression_rows", frame)
    try:
        return model.con.execute(_COMBINE).df()[COMBINED_COLUMNS]
    finally:
        model.con.unregister("_suppression_rows")


def blacklist_addresses(suppressions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The addresses of the BLACKLIST_REASONS tables, once each (lower-cased, trimmed), sorted: one column."""
    picked = [frame["email"] for reason, frame in suppressions.items() if reason in BLACKLIST_REASONS and len(frame)]
    if not picked:
        return pd.DataFrame({"email": pd.Series(dtype=object)})
    emails = pd.concat(picked).astype(str).str.strip().str.lower()
    return pd.DataFrame({"email": sorted(set(emails[emails != ""]))})
