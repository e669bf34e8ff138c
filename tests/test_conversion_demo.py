"""The conversion report on the demo portal: every figure equals the generator's truth file, from the
snapshot of a SQLite, MariaDB or PostgreSQL copy, in the current and the legacy sender layout."""

from __future__ import annotations

import json
from datetime import date

import pytest
import yaml
from conftest import snapshot_model

from mailaudit.analyses.conversion import analyse_conversion, attributed_sends
from mailaudit.demo import build_demo
from mailaudit.period import Period
from mailaudit.report.runner import run_reports

CONTRACT_KEYS = {"windows", "source", "delivered", "converted", "conversion_rate", "revenue",
                 "revenue_per_recipient", "baseline_conversion_rate", "cohorts", "utm"}
COHORT_KEYS = {"cohort", "delivered", "converted", "conversion_rate", "revenue_per_recipient"}


def analyse(model, truth) -> dict:
    params = truth["parameters"]
    period = Period(date.fromisoformat(params["period"]["start"]), date.fromisoformat(params["period"]["end"]))
    return analyse_conversion(model, period, open_window_days=params["conversion"]["open_window_days"],
                              click_window_days=params["conversion"]["click_window_days"],
                              cohort=params["conversion"]["cohort"]).figures


@pytest.fixture(scope="module")
def figures(demo, demo_model):
    return analyse(demo_model, demo.truth_figures)


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


def test_time_to_order_is_censored_at_the_latest_record(figures, demo_model):
    # the demo plants two sends dated years ahead: the data's end is the latest of them
    latest = demo_model.scalar("SELECT max(sent_at) FROM sends")
    assert latest.year > 2030
    assert figures["time_to_order"]["censored_at"] == latest.isoformat()


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


@pytest.fixture(scope="module")
def legacy_figures(tmp_path_factory, demo):
    """The figures of the same demo (3000 contacts, seed 1) in the legacy sender layout: recipients carry
    EMAIL, not CONTACT_ID, and postings have no DATE_SEND."""
    root = tmp_path_factory.mktemp("legacy-demo")
    build_demo(sqlite_path=root / "legacy.sqlite", contacts=3000, seed=1, layout="legacy")
    params = root / "legacy.yaml"
    params.write_text(yaml.safe_dump({"client": "Legacy", "period": demo.truth_figures["parameters"]["period"],
                                      "database": {"sqlite": str(root / "legacy.sqlite")}}), encoding="utf-8")
    model = snapshot_model(params, root / "legacy.duckdb")
    yield analyse(model, json.loads((root / "legacy.truth.json").read_text(encoding="utf-8")))
    model.close()


def test_legacy_layout_gives_the_truth(legacy_figures, demo, figures):
    assert_equal_to_truth(legacy_figures, demo.truth_figures["conversion"])
    # the same people and sends: recipients reach the same contacts by address as by CONTACT_ID
    for key in ("click_only", "linking", "followup", "time_to_order", "utm"):
        assert legacy_figures[key] == figures[key], key
    # postings start at their creation, an hour before the first send (no DATE_SEND): a few units change cells
    legacy, current = legacy_figures["baseline"], figures["baseline"]
    assert legacy["mailed"] == current["mailed"]
    assert legacy["not_mailed"] == pytest.approx(current["not_mailed"], rel=1e-3)
    assert legacy["lift"] == pytest.approx(current["lift"], rel=1e-2)
    planted = demo.truth_figures["conversion"]["planted_lift"]["lift_ratio"]
    assert legacy["lift_ci"][0] <= planted <= legacy["lift_ci"][1]


SERVER_LAYOUTS = [pytest.param((server, layout), marks=getattr(pytest.mark, server))
                  for layout in ("current", "legacy") for server in ("mariadb", "postgres")]
"""(server, sender layout) pairs of the parity tests, marked with the server they need."""


@pytest.fixture(params=SERVER_LAYOUTS, ids=lambda p: "-".join(p))
def server_copy(request, tmp_path):
    """The same demo (3000 contacts, seed 1) generated into MariaDB or PostgreSQL, in either layout:
    (URL, layout)."""
    server, layout = request.param
    url = request.getfixturevalue("mariadb_url" if server == "mariadb" else "postgres_url")
    build_demo(url=url.render_as_string(hide_password=False), contacts=3000, seed=1, layout=layout,
               truth_path=tmp_path / "server.truth.json")
    return url, layout


def test_snapshot_of_a_server_copy_gives_the_same_figures(server_copy, demo, demo_params, model_of, request,
                                                          monkeypatch):
    url, layout = server_copy
    monkeypatch.setenv("SERVER", url.render_as_string(hide_password=False))
    on_server = analyse(model_of(demo_params(database={"url_env": "SERVER"}, name="server.yaml", with_logs=False)),
                        demo.truth_figures)
    assert_equal_to_truth(on_server, demo.truth_figures["conversion"])
    on_sqlite = request.getfixturevalue("figures" if layout == "current" else "legacy_figures")
    for key in ("baseline", "click_only", "linking", "followup", "time_to_order", "utm"):
        assert on_server[key] == on_sqlite[key], key


def test_no_total_counts_an_order_or_deal_twice(demo, demo_model):
    params = demo.truth_figures["parameters"]
    period = Period(date.fromisoformat(params["period"]["start"]), date.fromisoformat(params["period"]["end"]))
    windows = {"open_window_days": params["conversion"]["open_window_days"],
               "click_window_days": params["conversion"]["click_window_days"]}
    result = analyse_conversion(demo_model, period, cohort=params["conversion"]["cohort"], **windows)
    figures = result.figures
    credited = attributed_sends(demo_model, period, **windows)
    # each purchase is credited to one send, and the totals are the sums over distinct purchases
    assert credited["purchase_id"].is_unique and len(credited) == figures["attributed_orders"]
    assert credited["value"].sum() == pytest.approx(figures["revenue"], abs=0.01)
    assert result.converted_sends["revenue"].sum() == pytest.approx(figures["revenue"], abs=0.01)
    assert sum(c["revenue"] for c in figures["cohorts"]) == pytest.approx(figures["revenue"], abs=0.01)
    # the UTM table: one row per set of letters; its rows add up to at most the e-mail-tagged deals and orders
    utm = result.utm_letters
    assert not utm.duplicated(["utm_set", "entity", "currency"]).any()
    deals, orders = utm[utm["entity"] == "deal"], utm[utm["entity"] == "order"]
    assert deals["count"].sum() <= figures["utm"]["deals"] and orders["count"].sum() <= figures["utm"]["orders"]
    assert deals["revenue"].sum() <= figures["utm"]["revenue"] + 0.01
    assert (utm["letter_count"] == utm["letters"].str.count("; ") + 1).all()


def test_amounts_carry_the_purchases_currency_and_an_incremental_revenue(figures):
    assert figures["currency"] == "RUB" and figures["currencies"] == ["RUB"]
    low, high = figures["incremental_revenue_ci"]
    assert low <= figures["incremental_revenue"] <= high
    share = figures["baseline"]["incremental_share"]
    assert figures["incremental_revenue"] == pytest.approx(figures["revenue"] * share, abs=0.01)
    assert share == pytest.approx(1 - figures["baseline"]["baseline_rate"] / figures["baseline"]["mailed_rate"])
