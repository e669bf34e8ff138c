"""open_inflation on the demo portal: figures equal (counts) or recover (estimates) the truth file.

The demo is built once per session with its access log (BitrixVM format) at the default size and
seed, the data the issue's acceptance refers to, and read through its snapshot's model: once with the
access log's hits, once by the database alone.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from opens_fixtures import built_model

from mailaudit.analyses.opens import analyse_opens
from mailaudit.period import Period
from mailaudit.report.params import load_params
from mailaudit.report.runner import run_reports

PERIOD = Period(date(2025, 10, 1), date(2026, 9, 30))
OPENS_PARAMS = {"scanner_seconds": 10, "apple_ranges": None}


@pytest.fixture(scope="session")
def opens_demo(tmp_path_factory):
    model, truth, _ = built_model(tmp_path_factory.mktemp("opens_demo"), contacts=20_000, seed=1)
    try:
        with_log = analyse_opens(model, PERIOD, OPENS_PARAMS)
        database = analyse_opens(model, PERIOD, OPENS_PARAMS, use_access_log=False)
    finally:
        model.close()
    return {"truth": truth, "access_log": with_log, "database": database}


@pytest.mark.parametrize("route", ["access_log", "database"])
def test_counts_equal_the_truth(opens_demo, route):
    truth, figures = opens_demo["truth"]["opens"], opens_demo[route].figures
    assert figures["evidence"] == route
    assert figures["delivered"] == truth["delivered"]
    assert figures["unique_opens"] == truth["unique_opens"]
    assert figures["raw_open_rate"] == pytest.approx(truth["raw_open_rate"], abs=1e-12)


def test_access_log_headline_within_2_points_with_covering_interval(opens_demo):
    truth, figures = opens_demo["truth"]["opens"], opens_demo["access_log"].figures
    assert figures["estimators"][figures["headline_estimator"]]["passes"]
    assert abs(figures["human_open_rate"] - truth["human_open_rate"]) <= 0.02
    low, high = figures["human_open_rate_ci"]
    assert low <= truth["human_open_rate"] <= high
    assert figures["machine_open_share"] == pytest.approx(truth["machine_open_share"], abs=0.03)


def test_access_log_apple_inflation_within_3_points(opens_demo):
    truth, figures = opens_demo["truth"]["opens"], opens_demo["access_log"].figures
    apple = figures["by_client"]["apple"]
    assert abs(apple["inflation_pp"] - truth["by_client"]["apple"]["inflation_pp"]) <= 3
    gmail = figures["by_client"]["gmail"]
    assert abs(gmail["inflation_pp"] - truth["by_client"]["gmail"]["inflation_pp"]) <= 1


def test_database_route_within_5_points_with_covering_interval(opens_demo):
    truth, figures = opens_demo["truth"]["opens"], opens_demo["database"].figures
    assert figures["estimators"][figures["headline_estimator"]]["passes"]
    assert abs(figures["human_open_rate"] - truth["human_open_rate"]) <= 0.05
    low, high = figures["human_open_rate_ci"]
    assert low <= truth["human_open_rate"] <= high


ESTIMATORS = {"access_log": ("access_log", "exclusion", "click_anchored", "timing_mixture"),
              "database": ("database", "exclusion", "click_anchored", "timing_mixture")}


@pytest.mark.parametrize("route, estimator", [(r, e) for r, names in ESTIMATORS.items() for e in names])
def test_estimator_interval_covers_the_planted_rate_when_its_checks_pass(opens_demo, route, estimator):
    truth = opens_demo["truth"]["opens"]["human_open_rate"]
    found = opens_demo[route].figures["estimators"][estimator]
    assert found["assumption"] and found["diagnostics"]
    if not found["passes"]:   # a failed check names the assumption that does not hold, and the estimate misses
        assert abs(found["human_open_rate"] - truth) > 0.01
        return
    low, high = found["ci"]
    assert low <= truth <= high, f"{estimator}: {found['human_open_rate']:.4f} [{low:.4f}, {high:.4f}] vs {truth:.4f}"


def test_access_log_counts_foreign_and_garbage_tags(opens_demo):
    planted = opens_demo["truth"]["logs"]["access"]
    stats = opens_demo["access_log"].figures["access_log"]
    assert stats["crm_hits"] == planted["foreign_tags"]["crm_module"]
    assert stats["garbage_tags"] == planted["foreign_tags"]["undecodable"]
    assert stats["orphan_recipient_hits"] == planted["foreign_tags"]["orphan_recipient"]
    assert stats["sender_opens"] == planted["pixel_lines"] + planted["portal_pixel_lines"]
    assert stats["sender_clicks"] == planted["click_lines"]
    assert stats["lines"] == planted["lines"]
    assert stats["opened_rows_in_log_share"] == 1.0


def test_views_cover_the_period(opens_demo):
    result = opens_demo["access_log"]
    assert result.by_month["delivered"].sum() == result.figures["delivered"]
    assert result.by_posting["delivered"].sum() == result.figures["delivered"]
    assert result.by_client["delivered"].sum() == result.figures["delivered"]
    assert list(result.by_month["month"]) == sorted(result.by_month["month"])
    assert result.by_posting["sent"].is_monotonic_decreasing
    apple_delays = result.delays[result.delays["client"] == "apple"].set_index("delay_from_s")["first_reads"]
    # the prefetch spike: most Apple first reads within 10 minutes of sending
    assert apple_delays.loc[:300].sum() > 0.5 * apple_delays.sum()


def test_report_bundle_records_the_figures_of_the_model(demo, demo_params, demo_model, tmp_path):
    """The notebook reads the snapshot the run makes: its summary.json figures are the analysis's."""
    result = run_reports(demo_params(), tmp_path / "bundle", only=["open_inflation"], progress=False)
    summary = json.loads((tmp_path / "bundle" / "summary.json").read_text())
    assert result.exit_code == 0 and summary["reports"]["open_inflation"]["status"] == "ok"
    params = load_params(demo_params())
    direct = analyse_opens(demo_model, params.period, params.opens).figures
    assert summary["opens"]["evidence"] == "access_log"
    assert summary["opens"]["delivered"] == direct["delivered"] == demo.truth_figures["opens"]["delivered"]
    assert summary["opens"]["human_open_rate"] == pytest.approx(direct["human_open_rate"], abs=1e-12)
    assert summary["opens"]["human_open_rate_ci"] == pytest.approx(direct["human_open_rate_ci"], abs=1e-12)
    html = (tmp_path / "bundle" / "open_inflation.html").read_text()
    assert html.count("data:image/png;base64") >= 4   # estimators, clients, delays, months, ranking
