"""The data_and_tracking report: its checks find exactly what the demo planted, on every engine."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from mailaudit.analyses import inventory as inv
from mailaudit.demo import build_demo
from mailaudit.report.params import load_params
from mailaudit.report.runner import run_reports

TODAY = datetime(2026, 11, 27)


def _figures(model, period) -> dict:
    quality = inv.data_quality_checks(model, now=TODAY)
    tracking, letters = inv.tracking_checks(model, period)
    tables = inv.inventory(model)
    return inv.figures(quality + tracking, letters) | {"rows": dict(zip(tables["table"], tables["rows"]))}


def test_checks_count_what_the_demo_planted(demo, demo_params, demo_model):
    truth = demo.truth_figures["data_quality"]
    params = load_params(demo_params())
    found = _figures(demo_model, params.period)
    assert found["reads_without_recipient"] == truth["orphan_reads"]
    assert found["clicks_without_recipient"] == truth["orphan_clicks"]
    assert found["clicks_without_read"] == truth["clicks_without_read_recipients"]
    assert found["recipients_without_contact"] == truth["recipients_without_contact"]
    assert found["sends_in_future"] == truth["sends_in_future"]
    assert found["sends_before_posting"] == truth["sends_before_posting_date"]
    assert found["campaigns_click_tracking_off"] == truth["campaigns_track_click_off"]
    assert found["letters_sent"] == truth["letters"]
    assert found["letters_missing_utm_by_code"] == truth["letters_missing_utm"]
    assert found["rows"]["b_sender_posting_read"] == truth["read_rows"]
    assert found["sent_without_date"] == 0 and found["contacts_without_address"] == 0


def test_report_bundle_records_the_checks(demo, demo_params, tmp_path):
    result = run_reports(demo_params(), tmp_path / "bundle", only=["data_and_tracking"], progress=False)
    summary = json.loads((tmp_path / "bundle" / "summary.json").read_text())
    assert result.exit_code == 0
    assert summary["reports"]["data_and_tracking"]["status"] == "ok"
    section = summary["data_and_tracking"]
    truth = demo.truth_figures["data_quality"]
    assert section["campaigns_click_tracking_off"] == truth["campaigns_track_click_off"]
    assert section["letters_missing_utm_by_code"] == truth["letters_missing_utm"]
    html = (tmp_path / "bundle" / "data_and_tracking.html").read_text()
    assert html.count("data:image/png;base64") >= 3  # volume, reads per recipient, UTM charts


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def server_copy(request, demo, tmp_path):
    """The demo (same seed and size) generated into a MariaDB or PostgreSQL database."""
    url = request.getfixturevalue("mariadb_url" if request.param == "mariadb" else "postgres_url")
    build_demo(url=url.render_as_string(hide_password=False), contacts=3000, seed=1,
               truth_path=tmp_path / "server.truth.json")
    return url


def test_same_figures_on_mariadb_and_postgresql_as_on_sqlite(demo, demo_params, demo_model, server_copy,
                                                             model_of, monkeypatch):
    params = load_params(demo_params())
    monkeypatch.setenv("SERVER", server_copy.render_as_string(hide_password=False))
    on_server = model_of(demo_params(database={"url_env": "SERVER"}, name="server.yaml"))
    assert _figures(on_server, params.period) == _figures(demo_model, params.period)
