"""The secret scan: a planted URL, password or unmasked address fails the build, naming only the file."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import URL

from mailaudit.report.runner import prepare, run_reports
from mailaudit.report.secrets_scan import scan_bundle
from report_helpers import empty_bitrix_sqlite, write_params, write_report_notebook

PASSWORD = "Tr0ub4dor&3x"
URL_WITH_PASSWORD = URL.create("mysql+pymysql", username="audit", password=PASSWORD, host="db.acme.local",
                               database="sitemanager")


def bundle_with(tmp_path, name: str, content: str):
    (tmp_path / "tables").mkdir(exist_ok=True)
    (tmp_path / "index.html").write_text("<p>clean</p>")
    (tmp_path / name).write_text(content, encoding="utf-8")
    return tmp_path


def kinds(leaks):
    return [(leak.file, leak.kind) for leak in leaks]


@pytest.mark.parametrize("content", [
    URL_WITH_PASSWORD.render_as_string(hide_password=False),
    f"error: could not connect, password={PASSWORD}",
    f"<p>password {PASSWORD.replace('&', '&amp;')}</p>",
    "url-quoted Tr0ub4dor%263x",
])
def test_the_password_is_found_in_any_form(tmp_path, content):
    leaks = scan_bundle(bundle_with(tmp_path, "report.html", content), URL_WITH_PASSWORD, mask_emails=False)
    assert kinds(leaks) in ([("report.html", "database URL")], [("report.html", "database password")])


def test_the_password_hidden_url_is_still_a_leak_when_the_url_has_a_password(tmp_path):
    content = URL_WITH_PASSWORD.render_as_string(hide_password=True)
    leaks = scan_bundle(bundle_with(tmp_path, "summary.json", json.dumps({"source": content})),
                        URL_WITH_PASSWORD, mask_emails=True)
    assert kinds(leaks) == [("summary.json", "database URL")]


def test_a_leak_names_the_file_never_the_secret(tmp_path):
    leaks = scan_bundle(bundle_with(tmp_path, "tables/x.csv", f"a,b\n1,{PASSWORD}\n"), URL_WITH_PASSWORD, True)
    assert [str(leak) for leak in leaks] == ["tables/x.csv contains the database password"]
    assert PASSWORD not in str(leaks)


def test_secrets_inside_a_notebook_are_found(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "stream", name="stdout", text=f"connecting with {PASSWORD}\n")])]
    nbformat.write(nb, tmp_path / "r.ipynb")
    assert kinds(scan_bundle(tmp_path, URL_WITH_PASSWORD, True)) == [("r.ipynb", "database password")]


def test_images_do_not_give_false_matches(tmp_path):
    short = URL.create("mysql", username="u", password="Ab", host="h", database="d")
    png = base64.b64encode(b"\x89PNG" + b"Ab" * 50).decode()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": png, "text/plain": "<Figure>"})])]
    nbformat.write(nb, tmp_path / "r.ipynb")
    (tmp_path / "r.html").write_text(f'<img src="data:image/png;base64,{png}"> Absolutely fine text')
    assert scan_bundle(tmp_path, short, True) == []
    (tmp_path / "r.html").write_text("the password is Ab.")
    assert kinds(scan_bundle(tmp_path, short, True)) == [("r.html", "database password")]


def test_a_url_without_password_is_not_a_secret(tmp_path):
    url = URL.create("sqlite", database="/data/shop.sqlite")
    assert scan_bundle(bundle_with(tmp_path, "index.html", "sqlite:////data/shop.sqlite"), url, True) == []


@pytest.mark.parametrize("name", ["report.html", "summary.json", "tables/contacts.csv", "report.ipynb"])
def test_an_unmasked_address_is_a_leak_when_masking(tmp_path, name):
    bundle = bundle_with(tmp_path, name, json.dumps({"x": "contact ivan.petrov@mail.ru"}))
    assert kinds(scan_bundle(bundle, None, mask_emails=True)) == [(name, "unmasked e-mail address")]
    assert scan_bundle(bundle, None, mask_emails=False) == []


def test_masked_addresses_and_suppression_files_pass(tmp_path):
    bundle = bundle_with(tmp_path, "report.html", "<td>i***@mail.ru</td>")
    (bundle / "suppress_hard_bounce.csv").write_text("email,reason\nivan.petrov@mail.ru,hard_bounce\n")
    assert scan_bundle(bundle, None, mask_emails=True) == []


@pytest.fixture
def leaking_run(tmp_path, monkeypatch):
    """A run whose notebook prints the (pretended) database password."""
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "p.yaml", db, "reports: [data_and_tracking]\n")
    secret_parts = [PASSWORD[:4], PASSWORD[4:]]   # not literally in the notebook source
    write_report_notebook(tmp_path / "nb", "data_and_tracking", f"print({secret_parts!r}[0] + {secret_parts!r}[1])")
    source = prepare(params)
    source.url = URL_WITH_PASSWORD   # the scan must look for this URL's password
    return tmp_path, params, source


def test_a_planted_password_fails_the_build_and_nothing_is_published(leaking_run):
    root, params, source = leaking_run
    result = run_reports(params, root / "out", notebooks_dir=root / "nb", progress=False, source=source)
    assert result.exit_code == 1
    assert not result.published
    assert [str(leak) for leak in result.leaks] == ["data_and_tracking.html contains the database password",
                                                    "data_and_tracking.ipynb contains the database password"]
    assert not (root / "out").exists()
    assert not list(root.glob(".out.*"))


def test_an_error_quoting_the_password_is_scrubbed_not_published(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    params = write_params(tmp_path / "p.yaml", db, "reports: [data_and_tracking]\n")
    secret_parts = [PASSWORD[:4], PASSWORD[4:]]
    write_report_notebook(tmp_path / "nb", "data_and_tracking",
                          f"raise RuntimeError('driver said: bad password ' + {secret_parts!r}[0] + {secret_parts!r}[1])")
    source = prepare(params)
    source.url = URL_WITH_PASSWORD
    result = run_reports(params, tmp_path / "out", notebooks_dir=tmp_path / "nb", progress=False, source=source)
    assert result.exit_code == 1 and result.published and result.leaks == []
    assert result.outcomes[0].error.startswith("RuntimeError: driver said: bad password *** (cell ")
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path.name


SERVER_PASSWORD = "Srv-pw-4815162342"


def _mariadb_reader(server_url):
    """A SELECT-only user with a password on the scratch database; its URL."""
    from sqlalchemy import create_engine, text

    user = f"ma_{server_url.database[-10:]}"
    admin = create_engine(server_url.set(database=None), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SERVER_PASSWORD}'"))
        conn.execute(text(f"GRANT SELECT ON {server_url.database}.* TO '{user}'@'%'"))
    admin.dispose()
    return server_url.set(username=user, password=SERVER_PASSWORD), user


@pytest.mark.slow
@pytest.mark.parametrize("server", [pytest.param("mariadb", marks=pytest.mark.mariadb),
                                    pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_password_in_the_environment_lands_in_no_file(server, request, tmp_path, monkeypatch):
    from sqlalchemy import create_engine, text

    from mailaudit.demo import build_demo

    server_url = request.getfixturevalue("mariadb_url" if server == "mariadb" else "postgres_url")
    build_demo(url=server_url, contacts=500, seed=3, truth_path=tmp_path / "truth.json")
    if server == "mariadb":
        url, user = _mariadb_reader(server_url)
    else:   # the test server trusts local connections: the password is carried, not checked
        url, user = server_url.set(password=SERVER_PASSWORD), None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOP_DB_URL", url.render_as_string(hide_password=False))
    params = tmp_path / "p.yaml"
    params.write_text("client: Server shop\nperiod: {start: 2025-10-01, end: 2026-09-30}\n"
                      "database: {url_env: SHOP_DB_URL}\nreports: [data_and_tracking]\n")
    repo = Path(__file__).resolve().parents[1]
    try:
        result = run_reports(params, tmp_path / "out", notebooks_dir=repo / "notebooks", progress=False)
    finally:
        if user:
            admin = create_engine(server_url.set(database=None), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"DROP USER '{user}'@'%'"))
            admin.dispose()
    assert result.leaks == [] and result.published, result.outcomes
    assert result.exit_code == 0, result.outcomes
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SERVER_PASSWORD not in path.read_text(encoding="utf-8", errors="replace"), path.name
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["source"]["dialect"] == ("mysql" if server == "mariadb" else "postgresql")
