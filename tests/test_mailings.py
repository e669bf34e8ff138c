"""The per-mailing scoreboard: one row per posting, its columns agree with the other reports' figures."""
from __future__ import annotations

from datetime import date

import pytest

from mailaudit.analyses import mailings, opens
from mailaudit.analyses.conversion import analyse_conversion
from mailaudit.period import Period

OPENS = {"scanner_seconds": 10, "apple_ranges": None}


@pytest.fixture(scope="module")
def setting(demo, demo_model):
    params = demo.truth_figures["parameters"]
    period = Period(date.fromisoformat(params["period"]["start"]), date.fromisoformat(params["period"]["end"]))
    windows = {"open_window_days": params["conversion"]["open_window_days"],
               "click_window_days": params["conversion"]["click_window_days"]}
    board = mailings.scoreboard(demo_model, period, opens_params=OPENS, **windows)
    return demo_model, period, windows, board


def test_one_row_per_posting_with_the_periods_delivered_sends(setting):
    model, period, _windows, board = setting
    expected = model.sql("SELECT posting_id, count_if(delivered) AS delivered FROM sends WHERE sent_at >= $start "
                         "AND sent_at < $end GROUP BY 1 HAVING count_if(delivered) > 0",
                         {"start": period.start_dt, "end": period.end_exclusive})
    table = board.table
    assert table["posting_id"].is_unique and len(table) == len(expected) > 5
    assert dict(zip(table["posting_id"], table["delivered"])) == \
        dict(zip(expected["posting_id"].astype(int), expected["delivered"]))
    assert list(table.columns) == mailings.COLUMNS


def test_orders_and_revenue_add_up_to_the_conversion_totals_without_counting_twice(setting):
    model, period, windows, board = setting
    figures = analyse_conversion(model, period, **windows).figures
    assert board.table["orders"].sum() == figures["attributed_orders"]
    assert board.table["revenue"].sum() == pytest.approx(figures["revenue"], abs=0.01)
    assert board.figures["currency"] == figures["currency"] == "RUB"
    per_recipient = board.table["revenue"] / board.table["delivered"]
    assert (board.table["revenue_per_recipient"] == per_recipient).all()


def test_rates_are_the_open_inflation_reports_and_the_models(setting):
    model, period, _windows, board = setting
    by_posting = opens.analyse_opens(model, period, OPENS).by_posting.set_index("posting")
    table = board.table.set_index("posting_id")
    assert table["human_open_rate"].to_numpy() == pytest.approx(
        by_posting.loc[table.index, "human_open_rate"].to_numpy(), nan_ok=True)
    clicks = model.sql("SELECT posting_id, count_if(human_clicks > 0) / count(*) AS rate FROM sends WHERE delivered "
                       "AND sent_at >= $start AND sent_at < $end GROUP BY 1",
                       {"start": period.start_dt, "end": period.end_exclusive}).set_index("posting_id")["rate"]
    tracked = model.sql("SELECT DISTINCT s.posting_id FROM sends s JOIN campaigns c USING (campaign_id) "
                        "WHERE c.track_click IS DISTINCT FROM false")["posting_id"].astype(int)
    tracking = table.index.isin(tracked)
    assert (~tracking).sum() > 0 and table.loc[~tracking, "human_click_rate"].isna().all()   # untracked: unknown
    assert table.loc[tracking, "human_click_rate"].to_numpy() == pytest.approx(clicks.loc[table.index[tracking]].to_numpy())
    assert board.figures["bounce_source"] == "delivery log" and table["bounces"].sum() > 0
    assert table["unsubscribes"].sum() > 0 and table["complaints"].sum() > 0


def test_the_median_row_is_each_columns_median_over_mailings(setting):
    board = setting[3]
    assert board.median["delivered"] == board.table["delivered"].median()
    assert board.median["revenue_per_recipient"] == pytest.approx(board.table["revenue_per_recipient"].median())
    shown = mailings.labelled(board)
    assert len(shown) == len(board.table) + 1 and shown.iloc[-1]["mailing"].startswith("median mailing of ")
    assert "posting_id" not in shown.columns and shown["first sent"].iloc[0][:2] == "20"
    assert "opened by people" in shown.columns and "revenue per recipient" in shown.columns
