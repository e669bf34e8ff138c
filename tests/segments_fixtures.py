"""A small Bitrix-shaped database with a constructed mailing-mix effect, for the segments tests.

The demo generator plants segment effects; this builder plants the opposite case it cannot:
address book "VIP" has the same propensity to open as everyone else in every posting, but its
members receive mostly the strong postings, so its pooled open rate is much higher. Address book
"Promo" clicks `PROMO_CLICK_RATIO` times as often as the rest within every posting. Contacts differ
strongly in engagement (gamma-distributed propensity), as real lists do. One contact in twenty has a
dead address (every send in error), and one in thirty complains (b_sender_abuse) a day after one of
the postings; one more complaint is a phone contact's and one comes before any send.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import URL, create_engine, insert

from mailaudit.bitrix.codes import NO, YES, CrmMultiField, RecipientStatus, SenderContactType
from mailaudit.bitrix.tables import bitrix_metadata

PROMO_CLICK_RATIO = 1.8
PERIOD_START = datetime(2026, 1, 1)


def build_mix_effect_db(target: Path | URL, contacts: int = 4000, postings: int = 24, seed: int = 7):
    """Write the database to an SQLite file (a Path) or an empty server database (a URL)."""
    rng = np.random.default_rng(seed)
    url = target if isinstance(target, URL) else URL.create("sqlite", database=str(target))
    metadata = bitrix_metadata("current", lowercase=url.get_backend_name() == "postgresql")
    engine = create_engine(url)
    metadata.create_all(engine)
    t = metadata.tables
    vip = rng.random(contacts) < 0.2
    promo = rng.random(contacts) < 0.3
    propensity = rng.gamma(0.6, 1 / 0.6, contacts)
    dead = rng.random(contacts) < 0.05
    contact_rows = [{"ID": i + 1, "TYPE_ID": int(SenderContactType.EMAIL), "CODE": f"c{i}@example.org",
                     "DATE_INSERT": PERIOD_START - timedelta(days=30 + i % 1500, hours=12), "AGENT": 0}
                    for i in range(contacts)]
    link_rows = [{"CONTACT_ID": i + 1, "LIST_ID": 1} for i in range(contacts)]
    link_rows += [{"CONTACT_ID": int(i) + 1, "LIST_ID": 2} for i in np.flatnonzero(vip)]
    link_rows += [{"CONTACT_ID": int(i) + 1, "LIST_ID": 3} for i in np.flatnonzero(promo)]
    recipients, reads, clicks = [], [], []
    posting_rows = []
    rid = 0
    for j in range(postings):
        strong = j % 2 == 0
        open_rate = 0.30 if strong else 0.08
        sent_at = PERIOD_START + timedelta(days=3 * j, hours=10)
        posting_rows.append({"ID": j + 1, "MAILING_ID": 1, "MAILING_CHAIN_ID": j + 1, "STATUS": "S",
                             "DATE_SENT": sent_at})
        share = np.where(vip, 0.9 if strong else 0.1, 0.5)
        for i in np.flatnonzero(rng.random(contacts) < share):
            rid += 1
            # Bitrix sets the recipient's IS_READ / IS_CLICK with the first read / click row
            recipient = {"ID": rid, "POSTING_ID": j + 1, "CONTACT_ID": int(i) + 1, "STATUS": RecipientStatus.SENT,
                         "DATE_SENT": sent_at, "IS_READ": NO, "IS_CLICK": NO, "IS_UNSUB": NO}
            recipients.append(recipient)
            if dead[i]:
                recipient["STATUS"] = RecipientStatus.ERROR
                continue
            if rng.random() < min(open_rate * propensity[i], 1.0):
                # a person opens hours later and clicks a minute after (a click at the send's own second
                # would be a machine's: see analyses.machine_clicks)
                reads.append({"POSTING_ID": j + 1, "RECIPIENT_ID": rid, "DATE_INSERT": sent_at + timedelta(hours=2)})
                recipient["IS_READ"] = YES
                click_given_open = 0.15 * (PROMO_CLICK_RATIO if promo[i] else 1.0) * min(propensity[i], 2.5)
                if rng.random() < min(click_given_open, 1.0):
                    clicks.append({"POSTING_ID": j + 1, "RECIPIENT_ID": rid,
                                   "DATE_INSERT": sent_at + timedelta(hours=2, minutes=1),
                                   "URL": "https://example.org/"})
                    recipient["IS_CLICK"] = YES
    complainers = rng.choice(np.flatnonzero(~dead), contacts // 30, replace=False)
    abuse_rows = [{"ID": k + 1, "CONTACT_ID": int(i) + 1, "CONTACT_TYPE_ID": int(SenderContactType.EMAIL),
                   "CONTACT_CODE": f"c{i}@example.org", "TEXT": "spam",
                   "DATE_INSERT": PERIOD_START + timedelta(days=3 * int(rng.integers(0, postings)) + 1)}
                  for k, i in enumerate(complainers)]
    abuse_rows += [{"ID": len(abuse_rows) + 1, "CONTACT_ID": int(complainers[0]) + 1, "CONTACT_TYPE_ID": 2,
                    "CONTACT_CODE": "79160000000", "TEXT": "sms", "DATE_INSERT": PERIOD_START + timedelta(days=10)},
                   {"ID": len(abuse_rows) + 2, "CONTACT_ID": int(complainers[1]) + 1,
                    "CONTACT_TYPE_ID": int(SenderContactType.EMAIL), "CONTACT_CODE": "", "TEXT": "",
                    "DATE_INSERT": PERIOD_START - timedelta(days=1)}]
    with engine.begin() as conn:
        conn.execute(insert(t["b_sender_contact"]), contact_rows)
        conn.execute(insert(t["b_sender_abuse"]), abuse_rows)
        conn.execute(insert(t["b_sender_list"]), [{"ID": 1, "NAME": "Newsletter"}, {"ID": 2, "NAME": "VIP"},
                                                  {"ID": 3, "NAME": "Promo"}])
        conn.execute(insert(t["b_sender_contact_list"]), link_rows)
        conn.execute(insert(t["b_sender_mailing"]), [{"ID": 1, "NAME": "News"}])
        conn.execute(insert(t["b_sender_mailing_chain"]),
                     [{"ID": j + 1, "MAILING_ID": 1, "MESSAGE_CODE": "mail"} for j in range(postings)])
        conn.execute(insert(t["b_sender_posting"]), posting_rows)
        conn.execute(insert(t["b_sender_posting_recipient"]), recipients)
        conn.execute(insert(t["b_sender_posting_read"]), reads)
        if clicks:
            conn.execute(insert(t["b_sender_posting_click"]), clicks)
        conn.execute(insert(t["b_crm_contact"]), [{"ID": 1, "SOURCE_ID": "WEB"}])
        conn.execute(insert(t["b_crm_field_multi"]), [{"ENTITY_ID": CrmMultiField.ENTITY_CONTACT, "ELEMENT_ID": 1,
                                                        "TYPE_ID": CrmMultiField.TYPE_EMAIL, "VALUE": " C0@Example.org"}])
    engine.dispose()
    return target


def write_params(path: Path, database: dict, start=PERIOD_START.date(), end=None, **sections) -> Path:
    """A parameter file for a constructed database (`database`: the parameters' database section)."""
    import yaml

    end = end or datetime(2026, 3, 31).date()
    params = {"client": "Segments test", "period": {"start": start.isoformat(), "end": end.isoformat()},
              "database": database, **sections}
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    return path


TRUTH_PROVIDER = {"mailru": "mail.ru"}
"""The demo truth file's provider names that the kit spells otherwise."""


def planted_difference(result, planted: dict) -> dict:
    """The kit's one comparison (dimension, segment, metric) for a planted effect of the truth file."""
    segment = TRUTH_PROVIDER.get(planted["segment"], planted["segment"]) if planted["dimension"] == "provider" \
        else planted["segment"]
    key = (planted["dimension"], segment, planted["metric"])
    rows = [d for d in result.figures["differences"] if (d["dimension"], d["segment"], d["metric"]) == key]
    assert len(rows) == 1, f"no single comparison for {key}"
    return rows[0]
