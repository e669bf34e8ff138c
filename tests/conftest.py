"""Shared fixtures: real MariaDB and PostgreSQL servers, each test getting its own database.

On a machine without the servers these tests skip with the reason; in CI (CI=true) an
unreachable server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

MYSQL_URL = os.environ.get("MAILAUDIT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
PG_URL = os.environ.get("MAILAUDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _server_or_skip(url: str, label: str) -> None:
    try:
        engine = create_engine(url, hide_parameters=True)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # the server is absent or refuses us
        reason = f"{label} server not reachable at {make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: database tests must run)")
        pytest.skip(reason)


def _scratch_database(server_url: str, label: str, create_sql: str):
    _server_or_skip(server_url, label)
    name = f"mailaudit_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    with admin.connect() as conn:
        conn.execute(text(create_sql.format(name=name)))
    url = make_url(server_url).set(database=name)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture
def mariadb_url():
    """URL of a fresh, empty utf8mb4 MariaDB database, dropped afterwards."""
    yield from _scratch_database(MYSQL_URL, "MariaDB", "CREATE DATABASE {name} CHARACTER SET utf8mb4")


@pytest.fixture
def mariadb_cp1251_url():
    """URL of a fresh windows-1251 MariaDB database, as old Russian Bitrix sites have."""
    yield from _scratch_database(MYSQL_URL, "MariaDB", "CREATE DATABASE {name} CHARACTER SET cp1251")


@pytest.fixture
def postgres_url():
    """URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    yield from _scratch_database(PG_URL, "PostgreSQL", "CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """A small demo portal (3000 contacts, seed 1) with its Postfix and access logs and truth file."""
    import json

    from mailaudit.demo import build_demo

    root = tmp_path_factory.mktemp("shared-demo")
    result = build_demo(sqlite_path=root / "demo.sqlite", contacts=3000, seed=1, logs_dir=root / "logs")
    result.truth_figures = json.loads(result.truth.read_text(encoding="utf-8"))
    return result


@pytest.fixture
def demo_params(demo, tmp_path):
    """A factory writing a parameter file for the demo (optionally with another database) -> its path."""
    return lambda **options: _write_demo_params(demo, tmp_path, **options)


def _write_demo_params(demo, tmp_path, *, with_logs: bool = True, database: dict | None = None,
                       name: str = "params.yaml", **sections) -> str:
    import yaml

    truth = demo.truth_figures
    params = {
        "client": "Demo shop",
        "period": truth["parameters"]["period"],
        "database": database or {"sqlite": str(demo.database)},
    }
    if with_logs:
        params["logs"] = {"delivery": [demo.logs["postfix"]], "access": [demo.logs["access"]]}
    params.update(sections)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    return str(path)


def snapshot_model(params_path, out_path):
    """Extract the snapshot the parameters name into `out_path` and open its model (read-only)."""
    from pathlib import Path

    from mailaudit.report.params import load_params
    from mailaudit.snapshot.extract import extract_snapshot
    from mailaudit.snapshot.store import open_snapshot

    extract_snapshot(load_params(params_path), Path(out_path), progress=False)
    return open_snapshot(Path(out_path))


@pytest.fixture(scope="session")
def demo_model(demo, tmp_path_factory):
    """The model of the shared demo's snapshot (database, Postfix log and access log), read-only."""
    folder = tmp_path_factory.mktemp("demo-snapshot")
    params = _write_demo_params(demo, folder)
    model = snapshot_model(params, folder / "demo.duckdb")
    yield model
    model.close()


@pytest.fixture(scope="session")
def demo_bundle(demo, tmp_path_factory):
    """Every report of the shared demo run into one bundle (database, Postfix and access logs) -> its folder."""
    from mailaudit.report.runner import run_reports

    folder = tmp_path_factory.mktemp("demo-bundle")
    result = run_reports(_write_demo_params(demo, folder), folder / "bundle", progress=False)
    assert result.exit_code == 0, "the demo bundle did not build"
    return result.out_dir


@pytest.fixture(scope="session")
def demo_bundle_ru(demo, tmp_path_factory):
    """The bundle of `demo_bundle` written in Russian -> (its folder, the messages asked for in Russian that
    have no translation, one a line)."""
    from mailaudit.narrative.language import MISSING_ENV
    from mailaudit.report.runner import run_reports

    folder = tmp_path_factory.mktemp("demo-bundle-ru")
    missing = folder / "missing.txt"
    missing.touch()
    os.environ[MISSING_ENV] = str(missing)   # the kernels inherit it
    try:
        result = run_reports(_write_demo_params(demo, folder, client="Демо-магазин"), folder / "bundle",
                             progress=False, language="ru")
    finally:
        del os.environ[MISSING_ENV]
    assert result.exit_code == 0, "the Russian demo bundle did not build"
    return result.out_dir, missing.read_text(encoding="utf-8").splitlines()


@pytest.fixture
def model_of(tmp_path):
    """A factory: the model of the snapshot of a parameter file (extracted into tmp_path)."""
    made = []

    def make(params_path, name: str = "snapshot.duckdb"):
        model = snapshot_model(params_path, tmp_path / name)
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


@pytest.fixture(params=[pytest.param("mariadb", marks=pytest.mark.mariadb),
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def server_model(request, demo, demo_params, model_of, tmp_path, monkeypatch):
    """The model of a snapshot of the shared demo generated (same seed and size) into MariaDB or
    PostgreSQL, with the same logs: a report must give the figures it gives on `demo_model`."""
    from mailaudit.demo import build_demo

    url = request.getfixturevalue("mariadb_url" if request.param == "mariadb" else "postgres_url")
    build_demo(url=url.render_as_string(hide_password=False), contacts=3000, seed=1,
               truth_path=tmp_path / "server.truth.json")
    monkeypatch.setenv("MAILAUDIT_TEST_SERVER_URL", url.render_as_string(hide_password=False))
    return model_of(demo_params(database={"url_env": "MAILAUDIT_TEST_SERVER_URL"}, name="server.yaml"), "server.duckdb")
