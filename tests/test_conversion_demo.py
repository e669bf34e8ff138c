"""The conversion report on the demo portal: every figure equals the generator's truth file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from mailaudit.analyses.conversion import analyse_conversion
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.period import Period
from mailaudit.report.runner import run_reports
from mailaudit.sources.db import create_readonly_engine, sqlite_url

CONTRACT_KEYS = {"windows", "source", "delivered", "converted", "conversion_rate", "revenue",
                 "revenue_per_recipient", "baseline_conversion_rate", "cohorts", "utm"}
COHORT_KEYS = {"cohort", "delivered", "converted", "conversion_rate", "revenue_per_recipient"}


def analyse(url, truth) -> dict:
    params = truth["parameters"]
    period = Period(date.fromisoformat(params["period"]["start"]), date.fromisoformat(params["period"]["end"]))
    engine = create_readonly_engine(url)
    with engine.connect() as conn:
        result = analyse_conversion(conn, reflect_schema(conn), period,
                                    open_window_days=params["conversion"]["open_window_days"],
                                    click_window_days=params["conversion"]["click_window_days"],
                                    cohort=params["conversion"]["cohort"])
    engine.dispose()
    return result.figures


@pytest.fixture(scope="module")
def figures(demo):
    return analyse(sqlite_url(Path(demo.database)), demo.truth_figures)


def assert_equal_to_truth(found: dict, truth: dict) -> None:
    assert found["windows"] == truth["windows"]
    assert found["source"] == truth["source"]
    for key in ("delivered", "converted", "attributed_orders"):
        assert found[key] == truth[key], key
    for key in ("conversion_rate", "revenue", "revenue_per_recipient"):
        assert found[key] == pytest.approx(truth[key], rel=1e-9), key
    assert [c["cohort"] for c in found["cohorts"]] == [c["cohort"] for c in truth["cohorts"]]
    for mine, theirs in zip(found["cohorts"], truth["cohorts"]):
        for key in ("delivered", "converted"):
            assert mine[key] == theirs[key], (mine["cohort"], key)
        for key in ("conversion_rate", "revenue_per_recipient"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-9), (mine["cohort"], key)
    assert found["utm"]["deals"] == truth["utm"]["deals"]
    assert found["utm"]["revenue"] == pytest.approx(truth["utm"]["revenue"], abs=0.005)


def test_every_conversion_figure_equals_the_truth(figures, demo):
    truth = demo.truth_figures["conversion"]
    assert figures["converted"] > 20     # the demo is big enough for the comparison to mean something
    assert_equal_to_truth(figures, truth)


def test_baseline_lift_interval_covers_the_planted_lift(figures, demo):
    planted = demo.truth_figures["conversion"]["planted_lift"]["lift_ratio"]
    low, high = figures["baseline"]["lift_ci"]
    assert low <= planted <= high
    assert figures["baseline_conversion_rate"] == figures["baseline"]["baseline_rate"]
    assert 0 < figures["baseline_conversion_rate"] < 1


def test_click_only_and_window_sensitivity_bracket_the_rule(figures):
    # dropping the open branch can only lose conversions
    assert figures["click_only"]["converted"] <= figures["converted"]
    assert figures["click_only"]["revenue"] <= figures["revenue"] + 1e-6


def test_report_bundle_records_the_contract_keys(demo, demo_params, tmp_path):
    result = run_reports(demo_params(with_logs=False), tmp_path / "bundle", only=["conversion"], progress=False)
    summary = json.loads((tmp_path / "bundle" / "summary.json").read_text())
    assert result.exit_code == 0, summary["reports"]["conversion"]
    section = summary["conversion"]
    assert CONTRACT_KEYS <= set(section)
    assert all(COHORT_KEYS <= set(c) for c in section["cohorts"])
    assert_equal_to_truth(section, demo.truth_figures["conversion"])
    html = (tmp_path / "bundle" / "conversion.html").read_text()
    assert html.count("data:image/png;base64") >= 5
    assert (tmp_path / "bundle" / "tables" / "conversion_cohorts.csv").is_file()


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def server_demo(request, tmp_path):
    """The same demo (3000 contacts, seed 1) generated into MariaDB or PostgreSQL."""
    from mailaudit.demo import build_demo

    url = request.getfixturevalue("mariadb_url" if request.param == "mariadb" else "postgres_url")
    build_demo(url=url.render_as_string(hide_password=False), contacts=3000, seed=1,
               truth_path=tmp_path / "server.truth.json")
    if request.param == "postgres":
        # a freshly loaded PostgreSQL database has no planner statistics until autovacuum runs
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
        engine.dispose()
    return url


def test_same_figures_on_mariadb_and_postgresql(server_demo, demo):
    assert_equal_to_truth(analyse(server_demo, demo.truth_figures), demo.truth_figures["conversion"])
