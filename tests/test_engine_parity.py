"""The whole bundle: the demo loaded into MariaDB and PostgreSQL, reached through MAILAUDIT_DB_URL,
gives the same summary.json figures as the SQLite file."""

from __future__ import annotations

import json
import math

import pytest

from mailaudit.demo import build_demo
from mailaudit.report.runner import run_reports

RUNNER_SECTIONS = {"schema_version", "period", "source", "reports", "run"}
"""Written by the runner about the run itself (dialect, timings), not figures of the data."""


def _figures(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key not in RUNNER_SECTIONS}


def _same(a, b, path="summary") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{path}: keys differ"
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), \
            f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


@pytest.mark.slow
@pytest.mark.parametrize("server", [pytest.param("mariadb", marks=pytest.mark.mariadb),
                                    pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_report_gives_the_same_figures_as_on_sqlite(server, demo, demo_params, request, tmp_path,
                                                          monkeypatch):
    url = request.getfixturevalue("mariadb_url" if server == "mariadb" else "postgres_url")
    build_demo(url=url.render_as_string(hide_password=False), contacts=3000, seed=1,
               truth_path=tmp_path / "server.truth.json")

    on_sqlite = run_reports(demo_params(), tmp_path / "sqlite", progress=False)
    monkeypatch.setenv("MAILAUDIT_DB_URL", url.render_as_string(hide_password=False))
    server_params = demo_params(database={"url_env": "MAILAUDIT_DB_URL"}, name="server.yaml")
    on_server = run_reports(server_params, tmp_path / "server", progress=False)

    assert on_sqlite.exit_code == 0 and on_server.exit_code == 0
    sqlite_summary = json.loads((tmp_path / "sqlite" / "summary.json").read_text())
    server_summary = json.loads((tmp_path / "server" / "summary.json").read_text())
    assert server_summary["source"]["dialect"] == ("mysql" if server == "mariadb" else "postgresql")
    assert {"hygiene", "opens", "segments", "conversion", "data_and_tracking"} <= sqlite_summary.keys()
    _same(_figures(sqlite_summary), _figures(server_summary))
