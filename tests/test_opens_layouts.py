"""open_inflation on the legacy sender layout and from MariaDB and PostgreSQL sources: the same figures
as the truth, and the model of a server copy's snapshot gives the figures of the SQLite one."""

from __future__ import annotations

from datetime import date

import pytest
from opens_fixtures import built_model, write_params

from mailaudit.analyses.opens import analyse_opens
from mailaudit.demo import build_demo
from mailaudit.period import Period

PERIOD = Period(date(2025, 10, 1), date(2026, 9, 30))
SMALL = 2500
PARAMS = {"scanner_seconds": 10, "apple_ranges": None}


def _figures(model) -> dict:
    return analyse_opens(model, PERIOD, PARAMS, n_boot=100).figures


@pytest.fixture(scope="module")
def sqlite_current(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opens_current")
    model, truth, built = built_model(folder, contacts=SMALL, seed=2)
    try:
        yield _figures(model), truth, built
    finally:
        model.close()


def test_legacy_layout_recipients_by_email(tmp_path):
    model, truth, _ = built_model(tmp_path, contacts=SMALL, seed=2, layout="legacy")
    try:
        assert model.layout == "legacy"
        figures = _figures(model)
    finally:
        model.close()
    truth = truth["opens"]
    assert (figures["delivered"], figures["unique_opens"]) == (truth["delivered"], truth["unique_opens"])
    assert abs(figures["human_open_rate"] - truth["human_open_rate"]) <= 0.02
    low, high = figures["human_open_rate_ci"]
    assert low <= truth["human_open_rate"] <= high


def test_snapshot_without_access_log_takes_the_database_route(tmp_path, sqlite_current):
    model, truth, _ = built_model(tmp_path, with_access_log=False, contacts=SMALL, seed=2)
    try:
        result = analyse_opens(model, PERIOD, PARAMS, n_boot=100)
        same_data_without_log = analyse_opens(model, PERIOD, PARAMS, n_boot=100, use_access_log=False)
    finally:
        model.close()
    assert result.figures["evidence"] == "database" and result.log_stats is None
    assert "access_log" not in result.figures
    assert result.figures == same_data_without_log.figures
    assert result.figures["delivered"] == sqlite_current[0]["delivered"] == truth["opens"]["delivered"]
    assert result.figures["raw_open_rate"] == sqlite_current[0]["raw_open_rate"]
    assert abs(result.figures["human_open_rate"] - truth["opens"]["human_open_rate"]) <= 0.05


def _assert_same(figures, reference):
    for key in ("delivered", "unique_opens", "raw_open_rate", "human_open_rate", "machine_open_share"):
        assert figures[key] == pytest.approx(reference[key], rel=1e-9), key
    assert figures["human_open_rate_ci"] == pytest.approx(reference["human_open_rate_ci"], rel=1e-9)
    for name, values in reference["by_client"].items():
        assert figures["by_client"][name] == pytest.approx(values, rel=1e-9, nan_ok=True), name
    for name, values in reference["estimators"].items():
        assert figures["estimators"][name]["human_open_rate"] == pytest.approx(values["human_open_rate"], rel=1e-9)
    assert figures["access_log"] == reference["access_log"]


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def server_url(request):
    return request.getfixturevalue("mariadb_url" if request.param == "mariadb" else "postgres_url")


def test_same_figures_from_a_server_copy(server_url, tmp_path, sqlite_current, model_of, monkeypatch):
    """The same demo generated into MariaDB or PostgreSQL, snapshotted with the same access log."""
    reference, truth, built = sqlite_current
    build_demo(url=server_url.render_as_string(hide_password=False), contacts=SMALL, seed=2,
               truth_path=tmp_path / "server.truth.json")
    monkeypatch.setenv("SERVER", server_url.render_as_string(hide_password=False))
    params = write_params(tmp_path, truth, {"url_env": "SERVER"}, built.logs["access"], name="server.yaml")
    figures = _figures(model_of(params))
    assert figures["delivered"] == truth["opens"]["delivered"]
    _assert_same(figures, reference)
