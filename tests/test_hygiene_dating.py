"""Which evidence dates an address's first hard bounce (hand-built frames; issue: 102 counted, 89 right)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from mailaudit.analyses.hygiene import first_hard_bounces


def log_events(*rows):
    """rows: (email, time, status, class, send_time)."""
    return pd.DataFrame([{"email": e, "time": t, "status": st, "bounce_class": cls, "send_time": sent,
                          "posting_id": 1.0, "dsn": "5.1.1", "smtp_code": 550, "text": "550 5.1.1 user unknown",
                          "rule": "unknown_user"} for e, t, st, cls, sent in rows])


def blacklist(*rows):
    return pd.DataFrame([{"email": e, "automatic": True, "date_insert": d} for e, d in rows],
                        columns=["email", "automatic", "date_insert"])


NO_LOG = log_events().reindex(columns=["email", "time", "status", "bounce_class", "send_time", "posting_id", "dsn",
                                        "smtp_code", "text", "rule"])
T = datetime(2026, 3, 5, 14, 0)


def first(bounces, entries) -> dict:
    out = first_hard_bounces(bounces, entries)
    return dict(zip(out["email"], out["first_hard"]))


def test_a_deferral_never_dates_a_hard_bounce():
    events = log_events(("a@x.ru", T, "deferred", "hard", T), ("a@x.ru", datetime(2026, 3, 9), "bounced", "hard",
                                                                 datetime(2026, 3, 9)))
    assert first(events, blacklist()) == {"a@x.ru": datetime(2026, 3, 9)}


def test_soft_and_sender_side_events_never_date_a_hard_bounce():
    events = log_events(("a@x.ru", T, "bounced", "soft", T), ("b@x.ru", T, "bounced", "sender_config", T),
                        ("c@x.ru", T, "expired", "sender_block", T))
    assert first(events, blacklist()) == {}


def test_a_midnight_blacklist_entry_of_the_bounce_day_yields_to_the_log_time():
    events = log_events(("a@x.ru", datetime(2026, 3, 5, 14, 0, 3), "bounced", "hard", T))
    assert first(events, blacklist(("a@x.ru", datetime(2026, 3, 5)))) == {"a@x.ru": T}


def test_a_blacklist_entry_of_an_earlier_day_is_an_older_bounce_dated_at_the_end_of_its_day():
    events = log_events(("a@x.ru", T, "bounced", "hard", T))
    got = first(events, blacklist(("a@x.ru", datetime(2026, 2, 10))))
    assert got == {"a@x.ru": datetime(2026, 2, 10, 23, 59, 59, 999999)}


def test_without_a_log_a_midnight_entry_does_not_count_the_sends_of_its_own_day():
    got = first(NO_LOG, blacklist(("a@x.ru", datetime(2026, 3, 5)), ("b@x.ru", datetime(2026, 3, 5, 9, 30))))
    assert got == {"a@x.ru": datetime(2026, 3, 5, 23, 59, 59, 999999), "b@x.ru": datetime(2026, 3, 5, 9, 30)}
    sends = pd.Series([datetime(2026, 3, 5, 13, 0), datetime(2026, 3, 6, 9, 0)])
    assert int((sends > got["a@x.ru"]).sum()) == 1


def test_the_log_evidence_is_kept_with_the_earlier_blacklist_date():
    events = log_events(("a@x.ru", T, "bounced", "hard", T))
    out = first_hard_bounces(events, blacklist(("a@x.ru", datetime(2026, 2, 10))))
    row = out.iloc[0]
    assert row["source"] == "delivery log" and row["rule"] == "unknown_user" and not np.isnan(row["posting_id"])
