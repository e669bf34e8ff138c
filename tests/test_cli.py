"""The `mailaudit` command line: exit codes, one-line errors without secrets, check/run/demo."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from mailaudit import cli
from mailaudit.report.params import REPORT_NAMES
from report_helpers import add_posting, empty_bitrix_sqlite, write_params, write_report_notebook

SECRET = "cli-S3cret-pw"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    notebooks = tmp_path / "notebooks"
    write_report_notebook(notebooks, "data_and_tracking", 'ctx.headline("ok from the test notebook")')
    monkeypatch.setenv("MAILAUDIT_NOTEBOOKS", str(notebooks))
    db = empty_bitrix_sqlite(tmp_path / "shop.sqlite")
    return tmp_path, write_params(tmp_path / "p.yaml", db.name, "reports: [data_and_tracking]\n")


@pytest.fixture
def no_notebook_may_start(monkeypatch):
    started = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: started.append(a))
    yield
    assert started == [], "a notebook started although the input was unusable"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mailaudit: error: ") and "Traceback" not in err[0]
    return err[0]


def test_bad_parameters_exit_2_before_any_notebook(workspace, capsys, no_notebook_may_start):
    root, params = workspace
    params.write_text(params.read_text() + "conversion: {cohort: fortnight}\n")
    assert cli.main(["run", "--params", str(params)]) == 2
    assert "conversion.cohort" in one_line_error(capsys)
    assert not (root / "reports").exists()


def test_unknown_key_exit_2_lists_allowed_keys(workspace, capsys, no_notebook_may_start):
    _, params = workspace
    params.write_text(params.read_text() + "privacy: {mask_email: true}\n")
    assert cli.main(["run", "--params", str(params)]) == 2
    assert "unknown key 'privacy.mask_email'; allowed keys in privacy: mask_emails" in one_line_error(capsys)


def test_password_in_the_file_exit_2(workspace, capsys, no_notebook_may_start):
    _, params = workspace
    params.write_text(params.read_text().replace("database: {sqlite: shop.sqlite}",
                                                 f"database: {{url_env: 'mysql://u:{SECRET}@h/db'}}"))
    assert cli.main(["check", "--params", str(params)]) == 2
    line = one_line_error(capsys)
    assert "credentials come from the environment" in line and SECRET not in line


def test_start_after_end_exit_2(workspace, capsys, no_notebook_may_start):
    _, params = workspace
    params.write_text(params.read_text().replace("end: 2026-03-31", "end: 2025-12-31"))
    assert cli.main(["run", "--params", str(params)]) == 2
    assert "start 2026-01-01 is after end 2025-12-31" in one_line_error(capsys)


def test_unknown_report_in_only_lists_the_valid_ones(workspace, capsys, no_notebook_may_start):
    _, params = workspace
    assert cli.main(["run", "--params", str(params), "--only", "list_hygiene,opens"]) == 2
    line = one_line_error(capsys)
    assert "unknown report opens" in line
    assert "data_and_tracking, list_hygiene, open_inflation, segments, conversion" in line


def test_unreachable_database_exit_2_without_the_password(workspace, capsys, monkeypatch, no_notebook_may_start):
    _, params = workspace
    monkeypatch.setenv("ACME_DB_URL", f"mysql://audit:{SECRET}@127.0.0.1:9/sitemanager")
    params.write_text(params.read_text().replace("database: {sqlite: shop.sqlite}", "database: {url_env: ACME_DB_URL}"))
    assert cli.main(["--verbose", "check", "--params", str(params)]) == 2
    captured = capsys.readouterr()
    assert "cannot read the database" in captured.err
    assert SECRET not in captured.err + captured.out


def test_a_file_without_database_audits_the_demo_loudly_unless_it_says_demo(workspace, capsys, monkeypatch,
                                                                           no_notebook_may_start):
    """The contract: without `database`, MAILAUDIT_DB_URL, else the demo — never silently."""
    root, params = workspace
    monkeypatch.delenv("MAILAUDIT_DB_URL", raising=False)
    params.write_text(params.read_text().replace("database: {sqlite: shop.sqlite}\n", ""))
    (root / "data").mkdir()
    add_posting(empty_bitrix_sqlite(root / "data" / "demo.sqlite"))
    assert cli.main(["check", "--params", str(params)]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "DEMO" in line]
    assert len(warning) == 1 and "names no database" in warning[0] and "demo: true" in warning[0]
    assert "demo.sqlite" in captured.out
    params.write_text(params.read_text() + "demo: true\n")
    assert cli.main(["check", "--params", str(params)]) == 0
    assert "DEMO" not in capsys.readouterr().err


def test_a_run_that_falls_back_to_the_demo_says_so_on_its_pages():
    from mailaudit.report.runner import source_label

    description = {"dialect": "sqlite", "database": "demo.sqlite", "layout": "current"}
    assert not source_label(description).startswith("DEMO")
    assert source_label({**description, "demo_by_default": True}).startswith("DEMO DATA")


def test_missing_core_tables_exit_2(tmp_path, capsys, monkeypatch, no_notebook_may_start):
    monkeypatch.chdir(tmp_path)
    db = empty_bitrix_sqlite(tmp_path / "x.sqlite", without=("b_sender_contact",))
    assert cli.main(["run", "--params", str(write_params(tmp_path / "p.yaml", db))]) == 2
    assert "not a Bitrix sender database: missing table(s) b_sender_contact" in one_line_error(capsys)


def test_check_prints_what_can_run(workspace, capsys):
    root, params = workspace
    add_posting(root / "shop.sqlite")
    assert cli.main(["check", "--params", str(params)]) == 0
    out = capsys.readouterr().out
    assert "SQLite, database shop.sqlite, current sender layout" in out
    assert "data_and_tracking  yes" in out


def test_check_exits_2_when_a_requested_report_cannot_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = add_posting(empty_bitrix_sqlite(tmp_path / "x.sqlite", without=("b_sender_posting_read",)))
    params = write_params(tmp_path / "p.yaml", db)
    assert cli.main(["check", "--params", str(params)]) == 2
    captured = capsys.readouterr()
    assert "open_inflation     NO       missing table(s) b_sender_posting_read" in captured.out
    assert "cannot run: open_inflation, segments, conversion" in captured.err
    assert cli.main(["check", "--params", str(params), "--only", "data_and_tracking"]) == 0


def test_check_exits_2_when_the_period_holds_no_sends(workspace, capsys):
    root, params = workspace
    add_posting(root / "shop.sqlite", started="2025-06-01 10:00:00")   # the only posting ended before the period
    with sqlite3.connect(root / "shop.sqlite") as conn:
        conn.execute("UPDATE b_sender_posting SET DATE_SENT = '2025-06-02 10:00:00'")
    assert cli.main(["check", "--params", str(params)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "mailaudit: no e-mail sends between 2026-01-01 and 2026-03-31: every report would say so and leave the "
        "figures of the period null; check period.start and period.end"]


def test_run_writes_the_bundle_to_reports_client_slug(workspace, capsys):
    root, params = workspace
    assert cli.main(["run", "--params", str(params), "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    index = root / "reports" / "test-shop" / "index.html"
    assert out[-1] == str(index) and index.is_file()
    assert out[0].split() == ["ok", "data_and_tracking", "ok", "from", "the", "test", "notebook"]


def test_slug():
    assert cli.slug("Acme Shop, LLC") == "acme-shop-llc"
    assert cli.slug("Магазин «Ромашка»") == "магазин-ромашка"
    assert cli.slug("!!!") == "report"


def test_scrub_environment_secrets():
    environ = {"ANY_URL": f"postgresql://u:{SECRET}@h/db", "PATH": "/usr/bin"}
    text = f"failed: postgresql://u:{SECRET}@h/db and {SECRET}"
    assert SECRET not in cli.scrub_environment_secrets(text, environ)


def test_usage_errors_are_one_line_exit_2():
    done = subprocess.run([sys.executable, "-m", "mailaudit.cli", "run"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["mailaudit run: error: the following arguments are required: --params"]


def test_demo_paths_keep_non_default_builds_apart():
    defaults = cli.demo_defaults()
    assert cli.demo_paths(defaults["contacts"], defaults["seed"]) == (cli.DEMO_DB, cli.DEMO_LOGS)
    db, logs = cli.demo_paths(2000, 7)
    assert db.name == "demo-c2000-s7.sqlite" and logs.name == "demo-c2000-s7-logs"


@pytest.mark.slow
def test_demo_builds_once_and_runs_every_report(tmp_path, monkeypatch, capsys):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILAUDIT_NOTEBOOKS", str(repo / "notebooks"))
    (tmp_path / "params").mkdir()
    shutil.copy(repo / "params" / "demo.yaml", tmp_path / "params" / "demo.yaml")
    argv = ["demo", "--contacts", "800", "--seed", "5", "--out", "reports/small", "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    index = tmp_path / "reports" / "small" / "index.html"
    assert out[-1] == str(index) and index.is_file()
    db = tmp_path / "data" / "demo-c800-s5.sqlite"
    assert db.is_file() and (tmp_path / "data" / "demo-c800-s5.yaml").is_file()
    summary = json.loads((index.parent / "summary.json").read_text())
    assert {name: r["status"] for name, r in summary["reports"].items()} == dict.fromkeys(REPORT_NAMES, "ok")
    for section in ("hygiene", "opens", "segments", "conversion"):
        assert section in summary, section
    built = db.stat().st_mtime_ns
    assert cli.ensure_demo_database(800, 5, tmp_path) == (db, tmp_path / "data" / "demo-c800-s5-logs")
    assert db.stat().st_mtime_ns == built


# --- classify ---------------------------------------------------------------------------------

REALWORLD_LOGS = Path(__file__).parent / "data" / "realworld" / "logs"


def test_classify_delivery_logs_writes_one_row_per_event(tmp_path, capsys):
    import csv

    maillog = tmp_path / "maillog"
    maillog.write_text(
        "Jan 14 09:15:03 mx1 postfix/smtp[2103]: 4BQ2Xn1jQfz9v: to=<a@gmail.com>, relay=x[1.2.3.4]:25, dsn=2.0.0, "
        "status=sent (250 2.0.0 OK)\n"
        "Jan 14 09:15:04 mx1 postfix/smtp[2103]: 4BQ2Xn1jQfz9v: to=<=cmd@yandex.ru>, relay=mx.yandex.ru[77.88.21.249]:25,"
        " dsn=5.7.1, status=bounced (host mx.yandex.ru[77.88.21.249] said: 550 5.7.1 No such user! (in reply to end of "
        "DATA command))\n"
        "Jan 14 09:15:05 mx1 postfix/smtp[2104]: 5BQ2Xn1jQfz9v: to=<c@mail.ru>, relay=none, delay=30, dsn=4.4.3, "
        "status=deferred (Host or domain name not found. Name service error for name=mail.ru type=MX: Host not found, "
        "try again)\n", encoding="utf-8")
    out = tmp_path / "events.csv"
    assert cli.main(["classify", "--delivery-log", str(maillog), str(REALWORLD_LOGS / "exim_mainlog"),
                     "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out, encoding="utf-8-sig", newline="")))
    assert {"email", "status", "dsn", "smtp_code", "class", "rule"} <= set(rows[0])
    postfix = [r for r in rows if r["file"] == "maillog"]
    assert [(r["email"], r["status"], r["class"]) for r in postfix] == [
        ("a@gmail.com", "sent", "delivered"), ("'=cmd@yandex.ru", "bounced", "hard"), ("c@mail.ru", "deferred", "soft")]
    assert postfix[1]["smtp_code"] == "550" and postfix[1]["rule"] == "yandex_no_such_user"
    assert len(rows) == 3 + 13
    assert "maillog: postfix, 3 lines, 3 events" in capsys.readouterr().err


def test_classify_user_agents_to_standard_output(tmp_path, capsys):
    agents = tmp_path / "agents.txt"
    agents.write_text("Mozilla/5.0\nMozilla/5.0 (compatible; Linux x86_64; Mail.RU_Bot/2.0; +http://go.mail.ru/help/robots)\n"
                      "MacOutlook/16.12.0.180401 (Intelx64 Mac OS X Version 10.12.6 (build 16G29))\n\n"
                      "Mozilla/5.0 (compatible; YandexImageResizer/2.0; +http://yandex.com/bots)\n", encoding="utf-8")
    assert cli.main(["classify", "--user-agents", str(agents)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "user_agent,class,client"
    assert [line.rsplit(",", 2)[1:] for line in lines[1:]] == [
        ["apple_proxy", "apple"], ["scanner", "scanner"], ["client", "outlook"], ["yandex_proxy", "yandex"]]


def test_classify_names_a_missing_file_in_one_line(tmp_path, capsys):
    assert cli.main(["classify", "--delivery-log", str(tmp_path / "nope.log")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
