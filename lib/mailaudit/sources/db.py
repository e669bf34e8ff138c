"""Connections to the source database: URL hygiene and read-only engines with a statement time limit.

The source is a client's production database. Three rules hold here:
credentials only ever come from the environment, no URL is shown with its password,
and every connection is read-only at the database level, not just by convention.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.exc import ArgumentError
from sqlalchemy.engine import make_url

DEFAULT_URL_ENV = "MAILAUDIT_DB_URL"
DEMO_SQLITE = Path("data/demo.sqlite")

# Users write the short dialect names; the kit speaks to each through one tested driver.
_DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


class DatabaseConfigError(ValueError):
    """The database cannot be reached as configured. The message is one line and holds no secret."""


def resolve_database_url(
    database: Mapping[str, str] | None, environ: Mapping[str, str] = os.environ
) -> URL:
    """The source URL from the ``database`` parameter section.

    ``{"sqlite": path}`` or ``{"url_env": NAME}``; when absent, ``MAILAUDIT_DB_URL`` if set,
    else the embedded demo database.
    """
    database = dict(database or {})
    if database.get("sqlite") and database.get("url_env"):
        raise DatabaseConfigError("database: give either sqlite or url_env, not both")
    if database.get("sqlite"):
        return sqlite_url(Path(database["sqlite"]))
    if database.get("url_env"):
        return _url_from_env(database["url_env"], environ)
    if environ.get(DEFAULT_URL_ENV):
        return _url_from_env(DEFAULT_URL_ENV, environ)
    return sqlite_url(DEMO_SQLITE)


def sqlite_url(path: Path) -> URL:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise DatabaseConfigError(
            f"SQLite file {path} not found: build it with `mailaudit demo-db --sqlite {path}` "
            "or correct database.sqlite"
        )
    return URL.create("sqlite", database=str(path))


def _url_from_env(name: str, environ: Mapping[str, str]) -> URL:
    raw = environ.get(name)
    if not raw:
        raise DatabaseConfigError(
            f"environment variable {name} is not set: export it with the SQLAlchemy URL of the "
            "Bitrix database (e.g. mysql://reader:PASSWORD@host/bitrix)"
        )
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseConfigError(
            f"environment variable {name} does not hold a SQLAlchemy URL "
            "(expected dialect://user:password@host/database)"
        ) from None
    driver = _DRIVERS.get(url.drivername)
    if driver:
        url = url.set(drivername=driver)
    if url.get_backend_name() in ("mysql", "mariadb") and "charset" not in url.query:
        # utf8mb4 on the connection: the server converts cp1251 and utf8mb3 columns to it.
        url = url.update_query_dict({"charset": "utf8mb4"})
    if url.get_backend_name() not in ("mysql", "mariadb", "postgresql", "sqlite"):
        raise DatabaseConfigError(
            f"{name}: dialect {url.get_backend_name()!r} is not supported "
            "(use mysql, mariadb, postgresql or sqlite)"
        )
    return url


def safe_url_text(url: URL) -> str:
    """The URL for display: the password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def describe_source(url: URL) -> dict:
    """Dialect and database name, for report covers: no user, host or password."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite":
        database = Path(database).name
    return {"dialect": url.get_backend_name(), "driver": url.get_driver_name(), "database": database}


def scrub(text: str, url: URL | None) -> str:
    """Remove the URL and its password from a message (driver errors sometimes echo them)."""
    if url is None:
        return text
    secrets = [url.render_as_string(hide_password=False), safe_url_text(url)]
    if url.password:
        secrets.append(str(url.password))
        secrets.append(quote(str(url.password), safe=""))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def session_statements(dialect: str, flavour: str, timeout_seconds: float | None) -> list[str]:
    """What every source session runs first: a read-only transaction, and a server-side time limit on
    each statement (MariaDB max_statement_time in seconds, MySQL max_execution_time in ms, PostgreSQL
    statement_timeout in ms) so that no statement of the kit can load a client's server for long."""
    if dialect in ("mysql", "mariadb"):
        statements = ["SET SESSION TRANSACTION READ ONLY"]
        if timeout_seconds:
            statements.append(f"SET SESSION max_statement_time = {timeout_seconds:g}" if flavour == "mariadb"
                              else f"SET SESSION max_execution_time = {int(timeout_seconds * 1000)}")
        return statements
    if dialect == "postgresql":
        statements = ["SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"]
        if timeout_seconds:
            statements.append(f"SET statement_timeout = {int(timeout_seconds * 1000)}")
        return statements
    return []


def mysql_flavour(version: str | None) -> str:
    """"mariadb" or "mysql" from the server's VERSION() text (their time-limit settings differ)."""
    return "mariadb" if "mariadb" in (version or "").lower() else "mysql"


def create_readonly_engine(url: URL, statement_timeout_seconds: float | None = None) -> Engine:
    """An engine whose every connection refuses writes at the database level and, when
    `statement_timeout_seconds` is given, has the server stop any statement that runs longer."""
    backend = url.get_backend_name()
    common = {"hide_parameters": True, "pool_pre_ping": True}
    if backend == "sqlite":
        path = Path(url.database or "")
        uri = f"file:{quote(str(path))}?mode=ro"
        return create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
            **common,
        )
    if backend == "postgresql":
        options = "-c default_transaction_read_only=on"
        if statement_timeout_seconds:
            options += f" -c statement_timeout={int(statement_timeout_seconds * 1000)}"
        return create_engine(url, connect_args={"options": options}, **common)
    if backend in ("mysql", "mariadb"):
        engine = create_engine(url, **common)

        @event.listens_for(engine, "connect")
        def _read_only_session(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT VERSION()")
                flavour = mysql_flavour(cursor.fetchone()[0])
                for statement in session_statements(backend, flavour, statement_timeout_seconds):
                    cursor.execute(statement)

        return engine
    raise DatabaseConfigError(f"dialect {backend!r} is not supported")
