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

BLACKLIST_REASONS = ("hard_bounce", "complaint", "unsubscribed", "disposable", "no_mail_domain")
"""Reasons whose action is to stop mailing the address for good. Typos are corrected, role and duplicate
addresses reviewed, inactive contacts re-engaged, soft-bouncing ones paused: none of those is blacklisted."""

DESCRIPTIONS = {
    "hard_bounce": "addresses the mail server reported dead (hard bounce) or Bitrix blacklisted automatically",
    "soft_bounce_streak": "addresses that soft-bounced several times in a row: pause, retry later",
    "complaint": "people who marked a letter as spam",
    "unsubscribed": "people who unsubscribed in the sender module",
    "invalid_syntax": "addresses that are not valid e-mail syntax: fix or delete the contact",
    "typo_domain": "addresses with a mistyped domain, with the likely correction",
    "disposable": "throw-away (disposable) mailboxes",
    "role_account": "shared role mailboxes (info@, sales@…): keep only with documented consent",
    "duplicate": "contacts that reach the same mailbox as another contact: merge them",
    "no_mail_domain": "addresses whose domain accepts no mail",
    "inactive": "contacts mailed repeatedly without an open or click: re-engage, then suppress",
    "crm_exclusion": "unsubscribed or blacklisted people missing from the CRM exclusion list",
    "all": "every address above once, with all its reasons, contact IDs and evidence",
    "blacklist_import": "addresses only, ready for Bitrix's blacklist import (hard bounces, complaints, "
                        "unsubscribes, disposable and dead domains)",
}
"""One line per suppression file (by the reason in its name): what it holds."""

COMBINED_COLUMNS = ["email", "reasons", "contact_ids", "evidence", "recommended_actions"]


def _evidence_text(row: pd.Series) -> str:
    """`reason: code, text (date, posting N)` of one suppression row, empty parts left out."""
    code, text = row.get("evidence_code"), row.get("evidence_text")
    parts = [v for v in (code, text) if pd.notna(v) and str(v).strip() and str(v) != row["reason"]]
    what = ", ".join(str(v) for v in parts)
    when = [str(row["evidence_date"])[:10]] if pd.notna(row.get("evidence_date")) else []
    if pd.notna(row.get("evidence_posting")):
        when.append(f"posting {int(row['evidence_posting'])}")
    return f"{row['reason']}: {what}" + (f" ({', '.join(when)})" if when else "")


def combined(model: Model, suppressions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per address (compared lower-cased and trimmed) of every suppression table: the reasons, the
    sender contacts holding it (IDs), the evidence and the recommended actions, each joined with " | " in
    the order of `suppressions`. Sorted by address."""
    frames = [frame.assign(_order=i) for i, frame in enumerate(suppressions.values()) if len(frame)]
    if not frames:
        return pd.DataFrame(columns=COMBINED_COLUMNS)
    rows = pd.concat(frames, ignore_index=True)
    rows["key"] = rows["email"].astype(str).str.strip().str.lower()
    rows["evidence"] = rows.apply(_evidence_text, axis=1)
    rows = rows.sort_values(["key", "_order"], kind="stable")
    joined = rows.groupby("key", sort=True).agg(
        email=("email", "first"),
        reasons=("reason", lambda s: " | ".join(dict.fromkeys(s))),
        evidence=("evidence", lambda s: " | ".join(dict.fromkeys(s))),
        recommended_actions=("recommended_action", lambda s: " | ".join(dict.fromkeys(s.astype(str)))))
    contacts = model.sql("SELECT lower(trim(email)) AS key, string_agg(contact_id::VARCHAR, ' | ' ORDER BY contact_id) "
                         "AS contact_ids FROM contacts WHERE email IS NOT NULL AND lower(trim(email)) IN "
                         "(SELECT unnest($keys::VARCHAR[])) GROUP BY 1", {"keys": joined.index.tolist()})
    joined = joined.join(contacts.set_index("key"))
    return joined.reset_index(drop=True)[COMBINED_COLUMNS]


def blacklist_addresses(suppressions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The addresses of the BLACKLIST_REASONS tables, once each (lower-cased, trimmed), sorted: one column."""
    picked = [frame["email"] for reason, frame in suppressions.items() if reason in BLACKLIST_REASONS and len(frame)]
    if not picked:
        return pd.DataFrame({"email": pd.Series(dtype=object)})
    emails = pd.concat(picked).astype(str).str.strip().str.lower()
    return pd.DataFrame({"email": sorted(set(emails[emails != ""]))})
