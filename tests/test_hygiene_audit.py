"""The list-hygiene audit on the demo database: every contract figure equals the truth file.

The demo is built once per session with its delivery log in all four formats; each format must
give the same figures. Server tests rebuild a smaller demo on MariaDB and PostgreSQL and expect
the SQLite figures.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import URL

from mailaudit.analyses import hygiene as hyg
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.demo import build_demo
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine, sqlite_url

CONTACTS = 2000
FORMATS = ("postfix", "exim", "msmtp", "csv")
CONTRACT_KEYS = ("contacts", "invalid_syntax", "role_account", "disposable_domain", "typo_domain",
                 "duplicate_contacts", "hard_bounce", "soft_bounce_streak", "sender_block_events",
                 "sent_after_hard_bounce", "unsubscribed_not_excluded_in_crm", "sent_after_unsubscribe",
                 "complaints", "inactive")
LOG_ONLY = ("soft_bounce_streak", "sender_block_events")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hygiene_demo")
    result = build_demo(sqlite_path=folder / "demo.sqlite", contacts=CONTACTS, seed=1, logs_dir=folder / "logs",
                        delivery_formats=FORMATS)
    truth = json.loads(Path(result.truth).read_text(encoding="utf-8"))
    return result, truth


def _period(truth) -> Period:
    period = truth["parameters"]["period"]
    return Period(date.fromisoformat(period["start"]), date.fromisoformat(period["end"]))


def _audit(database: URL, truth, logs) -> hyg.HygieneResult:
    engine = create_readonly_engine(database)
    try:
        with engine.connect() as conn:
            return hyg.audit_hygiene(conn, reflect_schema(conn), _period(truth), truth["parameters"]["hygiene"], logs)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def audits(demo):
    result, truth = demo
    url = sqlite_url(Path(result.database))
    runs = {fmt: _audit(url, truth, [Path(result.logs[fmt])]) for fmt in FORMATS}
    runs["none"] = _audit(url, truth, [])
    return runs


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_hygiene_figure_equals_the_truth(audits, demo, fmt):
    _, truth = demo
    figures = audits[fmt].figures
    assert {k: figures[k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}


def test_without_a_delivery_log_log_only_figures_are_null_and_explained(audits, demo):
    _, truth = demo
    run = audits["none"]
    for key in LOG_ONLY:
        assert run.figures[key] is None
    assert run.figures["hard_bounce"] == truth["hygiene_without_logs"]["hard_bounce"]
    note = " ".join(run.notes)
    assert "soft_bounce_streak" in note and "sender_block_events" in note and "b_main_mail_blacklist" in note
    for key in CONTRACT_KEYS:
        if key not in LOG_ONLY and key not in ("hard_bounce", "sent_after_hard_bounce"):
            assert run.figures[key] == truth["hygiene"][key], key


def test_without_a_log_sends_after_the_automatic_blacklist_entry_are_counted(audits, demo):
    """Sends (any STATUS) dated after an address's automatic blacklist entry, recounted straight from SQLite."""
    result, _ = demo
    with sqlite3.connect(result.database) as db:
        expected = db.execute(
            "SELECT COUNT(*) FROM b_sender_posting_recipient r JOIN b_sender_contact c ON c.ID = r.CONTACT_ID "
            "JOIN (SELECT CODE, MIN(DATE_INSERT) AS FIRST FROM b_main_mail_blacklist WHERE CATEGORY_ID = 0 "
            "GROUP BY CODE) b ON b.CODE = c.CODE WHERE r.DATE_SENT > b.FIRST AND r.DATE_SENT < '2026-10-01'"
        ).fetchone()[0]
    assert audits["none"].figures["sent_after_hard_bounce"] == expected


def test_without_a_log_sends_after_hard_bounce_equal_the_truth(audits, demo):
    assert audits["none"].figures["sent_after_hard_bounce"] == demo[1]["hygiene_without_logs"]["sent_after_hard_bounce"]


def test_every_suppression_row_carries_its_evidence(audits):
    run = audits["postfix"]
    assert {"hard_bounce", "soft_bounce_streak", "complaint", "unsubscribed", "invalid_syntax", "typo_domain",
            "disposable", "role_account", "duplicate", "inactive"} <= run.suppressions.keys()
    for reason, rows in run.suppressions.items():
        assert list(rows.columns) == hyg.SUPPRESSION_COLUMNS
        assert (rows["email"].str.len() > 0).all(), reason
        assert (rows["reason"] == reason).all()
        for column in ("evidence_code", "evidence_text", "recommended_action"):
            assert rows[column].notna().all() and (rows[column].astype(str).str.len() > 0).all(), (reason, column)
    for reason in ("hard_bounce", "soft_bounce_streak", "complaint"):
        rows = run.suppressions[reason]
        assert rows["evidence_date"].notna().all() and rows["evidence_posting"].notna().all(), reason
    assert len(run.suppressions["hard_bounce"]) == run.figures["hard_bounce"]
    assert len(run.suppressions["soft_bounce_streak"]) == run.figures["soft_bounce_streak"]


def test_hard_bounce_evidence_names_the_provider_rule(audits):
    rows = audits["postfix"].suppressions["hard_bounce"]
    yandex = rows[rows["email"].str.endswith(("@yandex.ru", "@ya.ru"))]
    assert len(yandex) and yandex["evidence_text"].str.contains("yandex_no_such_user").all()


def test_every_log_bounce_is_matched_to_its_send(audits):
    events = audits["postfix"].bounce_events
    final = events[events["status"] != "deferred"]
    assert len(final) and final["posting_id"].notna().all()


def test_crm_remediation_list_is_the_unexcluded_opt_outs(audits):
    run = audits["postfix"]
    assert len(run.crm_remediation) == run.figures["unsubscribed_not_excluded_in_crm"]
    assert run.crm_remediation["email"].is_unique


def test_findings_are_ranked_and_name_the_bitrix_fix(audits):
    findings = audits["postfix"].findings
    order = [hyg.SEVERITY_ORDER[f["severity"]] for f in findings]
    assert order == sorted(order)
    unsub = [f for f in findings if "unsubscribed from that campaign" in f["title"]]
    assert unsub and unsub[0]["severity"] == "high"
    crm = [f for f in findings if "not excluded in the CRM" in f["title"]]
    assert "OnAfterRecipientUnsub" in crm[0]["fix"] and "b_crm_exclusion" in crm[0]["fix"]
    assert not any("OnSenderMailingUnsubscribe" in f["detail"] for f in findings)


def test_rate_tables_count_the_same_sends(audits):
    run = audits["postfix"]
    total = run.by_posting["sent"].sum()
    assert total > 0
    assert run.by_provider["sent"].sum() == total == run.by_month["sent"].sum()
    assert run.by_posting["hard_bounces"].sum() == run.by_month["hard_bounces"].sum()
    blocked = run.by_provider.set_index("provider")["sender_blocks"]
    assert blocked.get("microsoft", 0) > 0 and blocked.get("mail.ru", 0) == 0


def test_demo_logs_parse_without_rejected_lines(audits):
    for fmt in FORMATS:
        files = audits[fmt].log_files
        assert files["unparseable"].sum() == 0 and files["events"].sum() > 0, fmt


def _server_figures(url: URL, truth_dir: Path):
    result = build_demo(url=url.render_as_string(hide_password=False), contacts=1000, seed=3,
                        logs_dir=truth_dir, delivery_formats=("postfix",), truth_path=truth_dir / "truth.json")
    truth = json.loads(Path(result.truth).read_text(encoding="utf-8"))
    return _audit(url, truth, [Path(result.logs["postfix"])]).figures, truth


def _check_server(url: URL, tmp_path: Path):
    figures, truth = _server_figures(url, tmp_path)
    assert {k: figures[k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}


@pytest.mark.mariadb
def test_same_figures_on_mariadb(mariadb_url, tmp_path):
    _check_server(mariadb_url, tmp_path)


@pytest.mark.postgres
def test_same_figures_on_postgresql(postgres_url, tmp_path):
    _check_server(postgres_url, tmp_path)


@pytest.mark.slow
def test_the_notebook_records_the_truth_and_writes_the_suppression_files(demo, tmp_path, monkeypatch):
    from mailaudit.report.runner import run_reports

    result, truth = demo
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "demo.yaml"
    period = truth["parameters"]["period"]
    params.write_text(f"client: Demo\nperiod: {{start: {period['start']}, end: {period['end']}}}\n"
                      f"database: {{sqlite: {result.database}}}\nlogs: {{delivery: [{result.logs['postfix']}]}}\n"
                      "reports: [list_hygiene]\n", encoding="utf-8")
    run = run_reports(params, tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["reports"]["list_hygiene"]["status"] == "ok", summary["reports"]["list_hygiene"]
    assert {k: summary["hygiene"][k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}
    for reason, name in summary["hygiene"]["suppression_files"].items():
        rows = pd.read_csv(tmp_path / "out" / name)
        assert len(rows) and rows["email"].notna().all(), reason
    html = (tmp_path / "out" / "list_hygiene.html").read_text(encoding="utf-8")
    some_address = pd.read_csv(tmp_path / "out" / "suppress_hard_bounce.csv")["email"].iloc[0]
    assert some_address not in html
    assert run.exit_code == 0


def test_a_posting_straddling_months_is_recounted_per_month(demo):
    """Months come from per-posting counts; a posting whose sends cross a month boundary is split by SQL."""
    result, truth = demo
    engine = create_readonly_engine(sqlite_url(Path(result.database)))
    with engine.connect() as conn:
        schema, period = reflect_schema(conn), _period(truth)
        postings = hyg.sends_by_posting(conn, schema, period)
        plain = hyg.sends_by_month(conn, schema, period, postings)
        widened = postings.copy()
        widened.loc[widened.index[:3], "last_send"] = widened["first_send"].iloc[:3] + pd.DateOffset(months=1)
        recounted = hyg.sends_by_month(conn, schema, period, widened)
    engine.dispose()
    pd.testing.assert_frame_equal(recounted, plain)
    assert plain["sent"].sum() == postings["sent"].sum()


def test_legacy_layout_gives_the_truth(tmp_path):
    """Sender 15/16: contacts and recipients carry EMAIL, contacts have no IS_UNSUB."""
    result = build_demo(sqlite_path=tmp_path / "legacy.sqlite", contacts=1000, seed=2, logs_dir=tmp_path / "logs",
                        layout="legacy")
    truth = json.loads(Path(result.truth).read_text(encoding="utf-8"))
    figures = _audit(sqlite_url(Path(result.database)), truth, [Path(result.logs["postfix"])]).figures
    assert {k: figures[k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}


def test_dns_check_flags_contacts_on_domains_without_mail(demo, monkeypatch):
    """The optional DNS check: each distinct domain is looked up once; its contacts become suppressions."""
    from mailaudit.analyses import addresses

    result, truth = demo
    looked_up = []

    def fake_lookup(domains, **_options):
        looked_up.append(sorted(domains))
        return {"mail.ru": "The domain name mail.ru does not accept email."}

    monkeypatch.setattr(addresses, "domains_without_mail", fake_lookup)
    audited = _audit(sqlite_url(Path(result.database)), truth, [])
    checked = _audit(sqlite_url(Path(result.database)), truth | {"parameters": truth["parameters"] | {
        "hygiene": truth["parameters"]["hygiene"] | {"check_dns": True}}}, [])
    db = sqlite3.connect(result.database)
    on_mail_ru = db.execute("SELECT COUNT(*) FROM b_sender_contact WHERE TYPE_ID = 1 AND CODE LIKE '%@mail.ru'").fetchone()[0]
    db.close()
    assert len(looked_up) == 1 and "mail.ru" in looked_up[0] and len(looked_up[0]) == len(set(looked_up[0]))
    assert audited.figures["no_mail_domain"] is None
    assert checked.figures["no_mail_domain"] == on_mail_ru > 0
    rows = checked.suppressions["no_mail_domain"]
    assert len(rows) == on_mail_ru and rows["email"].str.endswith("@mail.ru").all()
    assert rows["evidence_text"].str.contains("does not accept email").all()
