"""NULL, empty and whitespace values where real portals carry them (``DemoConfig.realistic_nulls``, ``--nulls``).

Off by default. When on, the demo writes these values, drawn from their own random stream (so
every other table, log and truth figure stays what it would be without them), only in columns
the truth file does not depend on:

| table.column | written | share |
|---|---|---|
| b_sender_mailing_chain.LINK_PARAMS | NULL where it is empty; NULL also where the letter's UTM set is in b_sender_message_utm | all empty ones; 30% of the others |
| b_sender_mailing_chain.SUBJECT, MESSAGE | NULL instead of '' (letters kept in b_sender_message_field) | all empty ones |
| b_sender_mailing_chain.TITLE | NULL / '' / '  ' | 10% / 5% / 5% |
| b_sender_mailing_chain.ERROR_MESSAGE | NULL / ' ' instead of '' | 80% / 10% |
| b_sender_posting_recipient.USER_ID | NULL although the contact has a site user (older versions did not copy it) | 30% of those |
| b_sender_posting_recipient.FIELDS | '' / 'a:0:{}' (PHP-serialised empty array), else NULL | 20% / 20% |
| b_sender_contact.NAME | NULL / '' / ' ' | 15% / 5% / 3% |
| b_sender_contact.USER_ID | NULL although a site user exists, only for contacts who never order | 25% of those |
| b_sender_contact.IP | '' instead of the last reader's address | 5% of those with one |
| b_crm_contact.NAME, LAST_NAME | NULL / ' ' | 8% / 2% each |
| b_crm_contact.SOURCE_DESCRIPTION, SECOND_NAME | '' / ' ' (else NULL, as before) | 20% / 5% |
| b_crm_contact.DATE_MODIFY | NULL | 10% |
| b_crm_deal.TITLE | NULL / ' ' | 5% / 3% |
| b_crm_deal.DATE_MODIFY, BEGINDATE, CLOSEDATE | NULL | 10% each |
| b_crm_deal.OPPORTUNITY, CURRENCY_ID | NULL, only on deals not won (the truth sums won deals) | 20% of those |
| b_crm_lead.TITLE | ' ' | 5% |
| b_crm_lead.OPPORTUNITY, CURRENCY_ID, DATE_MODIFY | NULL | 30% / 30% / 10% |
| b_crm_act.SUBJECT | NULL / '' | 10% / 5% |
| b_crm_act.END_TIME | NULL | 30% |
| b_sale_order.DATE_PAYED | NULL although PAYED is 'Y' | 30% of paid orders |

Also recipient rows that were never sent: STATUS 'Y' (not sent yet: the last posting was stopped
before it reached them) or 'W' (waiting), DATE_SENT NULL, for about 0.5% of the contacts that the
last posting's lists hold but it did not mail. They count in ``data_quality.email_recipient_rows``
and in the posting's COUNT_SEND_ALL / COUNT_SEND_NONE; no truth figure of delivered sends, opens,
clicks, hygiene, segments or conversion involves them (STATUS is never 'N', DATE_SENT is NULL).
The truth file's ``realistic_nulls`` counts every value written per column.
"""

from __future__ import annotations

import numpy as np

NULLS_STREAM = 1304
NEVER_SENT_SHARE = 0.005

# (table, column) -> ((value, share), ...): each row gets at most one of the values, by one draw
RULES = {
    ("b_sender_mailing_chain", "TITLE"): ((None, 0.10), ("", 0.05), ("  ", 0.05)),
    ("b_sender_mailing_chain", "ERROR_MESSAGE"): ((None, 0.80), (" ", 0.10)),
    ("b_sender_posting_recipient", "FIELDS"): (("", 0.20), ("a:0:{}", 0.20)),
    ("b_sender_posting_recipient", "USER_ID"): ((None, 0.30),),
    ("b_sender_contact", "NAME"): ((None, 0.15), ("", 0.05), (" ", 0.03)),
    ("b_sender_contact", "IP"): (("", 0.05),),
    ("b_crm_contact", "NAME"): ((None, 0.08), (" ", 0.02)),
    ("b_crm_contact", "LAST_NAME"): ((None, 0.08), (" ", 0.02)),
    ("b_crm_contact", "SOURCE_DESCRIPTION"): (("", 0.20), (" ", 0.05)),
    ("b_crm_contact", "SECOND_NAME"): (("", 0.20), (" ", 0.05)),
    ("b_crm_contact", "DATE_MODIFY"): ((None, 0.10),),
    ("b_crm_deal", "TITLE"): ((None, 0.05), (" ", 0.03)),
    ("b_crm_deal", "DATE_MODIFY"): ((None, 0.10),),
    ("b_crm_deal", "BEGINDATE"): ((None, 0.10),),
    ("b_crm_deal", "CLOSEDATE"): ((None, 0.10),),
    ("b_crm_lead", "TITLE"): ((" ", 0.05),),
    ("b_crm_lead", "OPPORTUNITY"): ((None, 0.30),),
    ("b_crm_lead", "CURRENCY_ID"): ((None, 0.30),),
    ("b_crm_lead", "DATE_MODIFY"): ((None, 0.10),),
    ("b_crm_act", "SUBJECT"): ((None, 0.10), ("", 0.05)),
    ("b_crm_act", "END_TIME"): ((None, 0.30),),
}
ADDED_COLUMNS = {"b_sender_posting_recipient": ("FIELDS",)}
"""Columns the demo otherwise leaves out (all NULL) that the policy fills."""
TABLES = {t for t, _c in RULES} | {"b_sender_mailing_chain", "b_sale_order", "b_crm_deal"}


class NullPolicy:
    """Rewrites column values of one table insert; counts what it wrote (``counts``)."""

    def __init__(self, seed: int, never_ordering_contact_ids: set):
        self.rng = np.random.default_rng([seed, NULLS_STREAM])
        self.never_ordering = never_ordering_contact_ids
        self.counts: dict[str, dict[str, int]] = {}

    def _count(self, table: str, column: str, values: list) -> None:
        tally = self.counts.setdefault(f"{table}.{column}", {"null": 0, "empty": 0, "blank": 0, "value": 0})
        for v in values:
            key = "null" if v is None else "empty" if v == "" else "blank" if isinstance(v, str) and not v.strip() else "value"
            tally[key] += 1

    def _draw(self, table: str, column: str, values: list, eligible: np.ndarray, choices) -> list:
        u = self.rng.random(len(values))
        out = list(values)
        written = []
        edges = np.cumsum([share for _v, share in choices])
        pick = np.searchsorted(edges, u, side="right")
        for i in np.flatnonzero(eligible & (pick < len(choices))).tolist():
            out[i] = choices[pick[i]][0]
            written.append(out[i])
        self._count(table, column, written)
        return out

    def apply(self, table: str, columns: list[str], cols: list) -> tuple[list[str], list]:
        if table not in TABLES:
            return columns, cols
        columns = list(columns)
        cols = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in cols]
        n = len(cols[0]) if cols else 0
        for extra in ADDED_COLUMNS.get(table, ()):
            if extra not in columns:
                columns.append(extra)
                cols.append([None] * n)
        index = {c: j for j, c in enumerate(columns)}
        everywhere = np.ones(n, dtype=bool)
        for (t, column), choices in RULES.items():
            if t != table or column not in index:
                continue
            values = cols[index[column]]
            eligible = everywhere
            if column in ("USER_ID", "IP"):
                eligible = np.array([v is not None for v in values], dtype=bool)
            cols[index[column]] = self._draw(table, column, values, eligible, choices)
        if table == "b_sender_contact" and "USER_ID" in index:
            ids = cols[index["ID"]]
            keep = np.array([i in self.never_ordering and u is not None for i, u in zip(ids, cols[index["USER_ID"]])])
            cols[index["USER_ID"]] = self._draw(table, "USER_ID", cols[index["USER_ID"]], keep, ((None, 0.25),))
        if table == "b_sender_mailing_chain":
            for column in ("SUBJECT", "MESSAGE", "LINK_PARAMS"):
                values = cols[index[column]]
                empty = np.array([v == "" for v in values], dtype=bool)
                cols[index[column]] = self._draw(table, column, values, empty, ((None, 1.0),))
            values = cols[index["LINK_PARAMS"]]
            filled = np.array([bool(v) for v in values], dtype=bool)
            cols[index["LINK_PARAMS"]] = self._draw(table, "LINK_PARAMS", values, filled, ((None, 0.30),))
        if table == "b_crm_deal":
            not_won = np.array([s != "S" for s in cols[index["STAGE_SEMANTIC_ID"]]], dtype=bool)
            pick = self.rng.random(n) < 0.20
            for column in ("OPPORTUNITY", "CURRENCY_ID"):
                values = cols[index[column]]
                cols[index[column]] = [None if (nw and p) else v for v, nw, p in zip(values, not_won, pick)]
                self._count(table, column, [None] * int((not_won & pick).sum()))
        if table == "b_sale_order":
            paid = np.array([p == "Y" for p in cols[index["PAYED"]]], dtype=bool)
            cols[index["DATE_PAYED"]] = self._draw(table, "DATE_PAYED", cols[index["DATE_PAYED"]], paid, ((None, 0.30),))
        return columns, cols

    def never_sent_rows(self, candidates: np.ndarray, contacts: int) -> tuple[np.ndarray, np.ndarray]:
        """NEVER_SENT_SHARE of ``contacts`` (at least 5) drawn from the candidate contact indices, sorted,
        with their STATUS: 'Y' (not sent yet) for 80%, else 'W' (waiting)."""
        k = min(len(candidates), max(5, round(NEVER_SENT_SHARE * contacts)))
        chosen = np.sort(self.rng.choice(candidates, k, replace=False))
        status = np.where(self.rng.random(k) < 0.8, "Y", "W").astype(object)
        return chosen, status


class NullingWriter:
    """A demo writer whose inserts pass through a NullPolicy first."""

    def __init__(self, writer, policy: NullPolicy):
        self.writer, self.policy = writer, policy

    @property
    def row_counts(self):
        return self.writer.row_counts

    def insert(self, table: str, columns: list[str], rows: list[tuple]) -> None:
        if rows:
            self.insert_columns(table, columns, list(zip(*rows)))

    def insert_columns(self, table: str, columns: list[str], cols: list) -> None:
        self.writer.insert_columns(table, *self.policy.apply(table, columns, cols))

    def close(self) -> None:
        self.writer.close()
