"""open_inflation on the legacy sender layout and on MariaDB and PostgreSQL: the same figures as the truth
and as the SQLite build of the same small demo."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import URL

from mailaudit.analyses.opens import analyse_opens
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.demo import build_demo
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine

PERIOD = Period(date(2025, 10, 1), date(2026, 9, 30))
SMALL = 2500
PARAMS = {"scanner_seconds": 10, "apple_ranges": None}


def _run(url, access_log=None):
    engine = create_readonly_engine(url)
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        result = analyse_opens(conn, schema, PERIOD, PARAMS, [access_log] if access_log else [], n_boot=100)
        layout = schema.layout
    engine.dispose()
    return result.figures, layout


def _build(tmp_path, layout="current", url=None):
    kwargs = {"url": url} if url is not None else {"sqlite_path": tmp_path / "demo.sqlite"}
    built = build_demo(contacts=SMALL, seed=2, logs_dir=tmp_path / "logs", layout=layout,
                       truth_path=tmp_path / "demo.truth.json", **kwargs)
    return built, json.loads(built.truth.read_text(encoding="utf-8"))["opens"]


@pytest.fixture(scope="module")
def sqlite_current(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opens_current")
    built, truth = _build(folder)
    url = URL.create("sqlite", database=str(folder / "demo.sqlite"))
    return _run(url, built.logs["access"])[0], truth


def test_legacy_layout_recipients_by_email(tmp_path):
    built, truth = _build(tmp_path, layout="legacy")
    figures, layout = _run(URL.create("sqlite", database=str(tmp_path / "demo.sqlite")), built.logs["access"])
    assert layout == "legacy"
    assert (figures["delivered"], figures["unique_opens"]) == (truth["delivered"], truth["unique_opens"])
    assert abs(figures["human_open_rate"] - truth["human_open_rate"]) <= 0.02
    low, high = figures["human_open_rate_ci"]
    assert low <= truth["human_open_rate"] <= high


def _assert_same(figures, reference):
    for key in ("delivered", "unique_opens", "raw_open_rate", "human_open_rate", "machine_open_share"):
        assert figures[key] == pytest.approx(reference[key], rel=1e-9), key
    assert figures["human_open_rate_ci"] == pytest.approx(reference["human_open_rate_ci"], rel=1e-9)
    for name, values in reference["by_client"].items():
        assert figures["by_client"][name] == pytest.approx(values, rel=1e-9, nan_ok=True), name
    for name, values in reference["estimators"].items():
        assert figures["estimators"][name]["human_open_rate"] == pytest.approx(values["human_open_rate"], rel=1e-9)


@pytest.mark.mariadb
def test_same_figures_on_mariadb(mariadb_url, tmp_path, sqlite_current):
    built, truth = _build(tmp_path, url=mariadb_url)
    figures, _ = _run(mariadb_url, built.logs["access"])
    assert figures["delivered"] == truth["delivered"]
    _assert_same(figures, sqlite_current[0])


@pytest.mark.postgres
def test_same_figures_on_postgresql(postgres_url, tmp_path, sqlite_current):
    built, truth = _build(tmp_path, url=postgres_url)
    figures, _ = _run(postgres_url, built.logs["access"])
    assert figures["delivered"] == truth["delivered"]
    _assert_same(figures, sqlite_current[0])
