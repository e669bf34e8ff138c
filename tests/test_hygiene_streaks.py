"""Soft-bounce streaks: N in a row, from 2+ postings over 7+ days, reset only by a delivery."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from mailaudit.analyses.hygiene import is_soft_bounce, soft_bounce_streaks

T0 = datetime(2026, 1, 5, 10, 0)


def bounce(email, day, posting, cls="soft", status="bounced", fmt="postfix", queue="Q1"):
    return {"email": email, "time": T0 + timedelta(days=day), "posting_id": float(posting),
            "send_key": f"posting {posting}", "dsn": "5.2.2", "text": "552 5.2.2 Mailbox full",
            "bounce_class": cls, "status": status, "format": fmt, "queue_id": queue}


def deliveries(*pairs):
    return pd.DataFrame({"email": [e for e, _ in pairs], "time": [T0 + timedelta(days=d) for _, d in pairs]},
                        columns=["email", "time"])


def streaks(rows, delivered=(), n=3):
    return soft_bounce_streaks(pd.DataFrame(rows), deliveries(*delivered), n)


def test_three_in_a_row_over_a_week_from_two_postings_qualifies():
    out = streaks([bounce("a@x.ru", 0, 1), bounce("a@x.ru", 4, 2), bounce("a@x.ru", 8, 3)])
    assert out["email"].tolist() == ["a@x.ru"]
    row = out.iloc[0]
    assert row["soft_bounces"] == 3 and row["postings"] == "1,2,3" and row["last_posting_id"] == 3
    assert pd.isna(row["delivered_since"])


def test_a_delivery_in_between_resets_the_run():
    out = streaks([bounce("a@x.ru", 0, 1), bounce("a@x.ru", 4, 2), bounce("a@x.ru", 8, 3)], delivered=[("a@x.ru", 5)])
    assert out.empty


def test_a_delivery_after_the_streak_is_reported_not_hidden():
    out = streaks([bounce("a@x.ru", 0, 1), bounce("a@x.ru", 4, 2), bounce("a@x.ru", 8, 3)], delivered=[("a@x.ru", 20)])
    assert out.iloc[0]["delivered_since"] == T0 + timedelta(days=20)


def test_a_run_shorter_than_seven_days_does_not_qualify():
    assert streaks([bounce("a@x.ru", 0, 1), bounce("a@x.ru", 3, 2), bounce("a@x.ru", 6, 3)]).empty


def test_one_posting_retried_does_not_qualify():
    assert streaks([bounce("a@x.ru", 0, 1), bounce("a@x.ru", 4, 1), bounce("a@x.ru", 8, 1)]).empty


def test_sender_blocks_neither_count_nor_reset():
    rows = [bounce("a@x.ru", 0, 1), bounce("a@x.ru", 2, 2, cls="sender_block"), bounce("a@x.ru", 4, 2),
            bounce("a@x.ru", 8, 3)]
    assert streaks(rows)["soft_bounces"].tolist() == [3]
    rows = [bounce("b@x.ru", 0, 1), bounce("b@x.ru", 4, 2), bounce("b@x.ru", 8, 3, cls="sender_block")]
    assert streaks(rows).empty


def test_the_threshold_is_the_parameter():
    rows = [bounce("a@x.ru", 0, 1), bounce("a@x.ru", 4, 2), bounce("a@x.ru", 8, 3)]
    assert streaks(rows, n=4).empty
    assert len(streaks(rows, n=2)) == 1


def test_retried_deferrals_are_not_soft_bounces_but_msmtp_ones_are():
    frame = pd.DataFrame([bounce("a@x.ru", 0, 1, status="deferred"),
                          bounce("a@x.ru", 0, 1, status="deferred", fmt="csv", queue=None),
                          bounce("a@x.ru", 0, 1, status="deferred", fmt="msmtp", queue=None),
                          bounce("a@x.ru", 0, 1, status="expired"),
                          bounce("a@x.ru", 0, 1, status="bounced", cls="hard")])
    assert is_soft_bounce(frame).tolist() == [False, False, True, True, False]
