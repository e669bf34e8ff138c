"""The list-hygiene audit on the demo's snapshot model: every contract figure equals the truth file.

A demo is built once for this module with its delivery log in all four formats; the snapshot made
with each must give the same figures. Server tests snapshot the shared demo generated into MariaDB
and PostgreSQL and expect the figures of the SQLite snapshot.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mailaudit.analyses import hygiene as hyg
from mailaudit.demo import build_demo
from mailaudit.period import Period
from mailaudit.report.params import load_params
from mailaudit.snapshot.extract import extract_snapshot
from mailaudit.snapshot.store import open_snapshot

CONTACTS = 2000
FORMATS = ("postfix", "exim", "msmtp", "csv")
CONTRACT_KEYS = ("contacts", "invalid_syntax", "role_account", "disposable_domain", "typo_domain",
                 "duplicate_contacts", "hard_bounce", "soft_bounce_streak", "sender_block_events",
                 "sent_after_hard_bounce", "unsubscribed_not_excluded_in_crm", "sent_after_unsubscribe",
                 "complaints", "inactive")
LOG_ONLY = ("soft_bounce_streak", "sender_block_events")


def _period(truth, start: str | None = None) -> Period:
    period = truth["parameters"]["period"]
    return Period(date.fromisoformat(start or period["start"]), date.fromisoformat(period["end"]))


def snapshot(folder: Path, name: str, database: Path, truth: dict, logs=()):
    """The model of a snapshot of `database` (SQLite) with the given delivery logs, for the truth's period."""
    params = {"client": "Demo", "period": truth["parameters"]["period"], "database": {"sqlite": str(database)},
              "logs": {"delivery": [str(p) for p in logs]}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    extract_snapshot(load_params(path), folder / f"{name}.duckdb", progress=False)
    return open_snapshot(folder / f"{name}.duckdb")


def _audit(model, truth, start: str | None = None) -> hyg.HygieneResult:
    return hyg.audit_hygiene(model, _period(truth, start), truth["parameters"]["hygiene"])


@pytest.fixture(scope="module")
def formats_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hygiene_demo")
    result = build_demo(sqlite_path=folder / "demo.sqlite", contacts=CONTACTS, seed=1, logs_dir=folder / "logs",
                        delivery_formats=FORMATS)
    truth = json.loads(Path(result.truth).read_text(encoding="utf-8"))
    return result, truth, folder


@pytest.fixture(scope="module")
def models(formats_demo):
    result, truth, folder = formats_demo
    made = {fmt: snapshot(folder, fmt, Path(result.database), truth, [result.logs[fmt]]) for fmt in FORMATS}
    made["none"] = snapshot(folder, "none", Path(result.database), truth)
    yield made
    for model in made.values():
        model.close()


@pytest.fixture(scope="module")
def audits(formats_demo, models):
    _, truth, _ = formats_demo
    return {name: _audit(model, truth) for name, model in models.items()}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_hygiene_figure_equals_the_truth(audits, formats_demo, fmt):
    _, truth, _ = formats_demo
    figures = audits[fmt].figures
    assert {k: figures[k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}


def test_the_shared_demo_gives_its_truth(demo, demo_model):
    truth = demo.truth_figures
    figures = _audit(demo_model, truth).figures
    assert {k: figures[k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}


def test_without_a_delivery_log_log_only_figures_are_null_and_explained(audits, formats_demo):
    _, truth, _ = formats_demo
    run = audits["none"]
    for key in LOG_ONLY:
        assert run.figures[key] is None
    assert run.figures["hard_bounce"] == truth["hygiene_without_logs"]["hard_bounce"]
    note = " ".join(run.notes)
    assert "soft_bounce_streak" in note and "sender_block_events" in note and "b_main_mail_blacklist" in note
    for key in CONTRACT_KEYS:
        if key not in LOG_ONLY and key not in ("hard_bounce", "sent_after_hard_bounce"):
            assert run.figures[key] == truth["hygiene"][key], key


BLACKLISTED_AFTER = ("SELECT COUNT(*) FROM b_sender_posting_recipient r JOIN b_sender_contact c ON c.ID = r.CONTACT_ID "
                     "JOIN (SELECT CODE, MIN(DATE_INSERT) AS FIRST FROM b_main_mail_blacklist WHERE CATEGORY_ID = 0 "
                     "GROUP BY CODE) b ON b.CODE = c.CODE "
                     "WHERE r.DATE_SENT > b.FIRST AND r.DATE_SENT >= :start AND r.DATE_SENT < '2026-10-01'")
"""Sends (any STATUS) in [start, period end) dated after the address's first automatic blacklist entry."""
UNSUBSCRIBED_AFTER = (
    "SELECT COUNT(*) FROM b_sender_posting_recipient r JOIN b_sender_posting p ON p.ID = r.POSTING_ID "
    "JOIN (SELECT p2.MAILING_ID, rr.CONTACT_ID, MIN(u.DATE_INSERT) AS T FROM b_sender_posting_unsub u "
    "      JOIN b_sender_posting_recipient rr ON rr.ID = u.RECIPIENT_ID "
    "      JOIN b_sender_posting p2 ON p2.ID = rr.POSTING_ID GROUP BY p2.MAILING_ID, rr.CONTACT_ID) x "
    "  ON x.MAILING_ID = p.MAILING_ID AND x.CONTACT_ID = r.CONTACT_ID "
    "WHERE r.DATE_SENT > datetime(x.T, '+48 hours') AND r.DATE_SENT >= :start AND r.DATE_SENT < '2026-10-01'")
"""Sends of a campaign in [start, period end) more than 48 h after the contact's first unsubscribe from it."""


def _count(database, query: str, start: str) -> int:
    with sqlite3.connect(database) as db:
        return db.execute(query, {"start": start}).fetchone()[0]


def test_without_a_log_sends_after_the_automatic_blacklist_entry_are_counted(audits, formats_demo):
    result, truth, _ = formats_demo
    expected = _count(result.database, BLACKLISTED_AFTER, truth["parameters"]["period"]["start"])
    assert audits["none"].figures["sent_after_hard_bounce"] == expected
    assert expected == truth["hygiene_without_logs"]["sent_after_hard_bounce"]


LATER = "2026-04-01"


@pytest.fixture(scope="module")
def older_evidence(formats_demo):
    """A copy of the demo where 5 contacts were blacklisted before the period and 5 unsubscribed from a
    campaign on its first posting, and all 10 are still mailed after April: (database, model)."""
    result, truth, folder = formats_demo
    database = folder / "older_evidence.sqlite"
    database.write_bytes(Path(result.database).read_bytes())
    with sqlite3.connect(database) as db:
        mailed_late = ("SELECT r.CONTACT_ID FROM b_sender_posting_recipient r WHERE r.DATE_SENT >= :later "
                       "GROUP BY r.CONTACT_ID HAVING COUNT(*) >= 3")
        codes = [row[0] for row in db.execute(
            f"SELECT CODE FROM b_sender_contact WHERE TYPE_ID = 1 AND ID IN ({mailed_late}) "
            "AND CODE NOT IN (SELECT CODE FROM b_main_mail_blacklist) ORDER BY ID LIMIT 5", {"later": LATER})]
        top = db.execute("SELECT MAX(ID) FROM b_main_mail_blacklist").fetchone()[0] or 0
        db.executemany("INSERT INTO b_main_mail_blacklist (ID, DATE_INSERT, CATEGORY_ID, CODE) VALUES (?, ?, 0, ?)",
                       [(top + i + 1, "2025-09-01 00:00:00", code) for i, code in enumerate(codes)])
        # the first posting of the campaign with most postings after April; recipients mailed by it again later
        campaign = db.execute("SELECT MAILING_ID FROM b_sender_posting WHERE DATE_SEND >= :later GROUP BY 1 "
                              "ORDER BY COUNT(*) DESC LIMIT 1", {"later": LATER}).fetchone()[0]
        first = db.execute("SELECT ID FROM b_sender_posting WHERE MAILING_ID = ? ORDER BY DATE_SEND LIMIT 1",
                           (campaign,)).fetchone()[0]
        rows = db.execute(
            "SELECT r.ID, r.DATE_SENT FROM b_sender_posting_recipient r WHERE r.POSTING_ID = :first "
            "AND r.STATUS = 'N' AND r.CONTACT_ID IN (SELECT r2.CONTACT_ID FROM b_sender_posting_recipient r2 "
            "  JOIN b_sender_posting p ON p.ID = r2.POSTING_ID WHERE p.MAILING_ID = :campaign AND r2.DATE_SENT >= :later) "
            "AND r.ID NOT IN (SELECT RECIPIENT_ID FROM b_sender_posting_unsub) ORDER BY r.ID LIMIT 5",
            {"first": first, "campaign": campaign, "later": LATER}).fetchall()
        top = db.execute("SELECT MAX(ID) FROM b_sender_posting_unsub").fetchone()[0] or 0
        db.executemany("INSERT INTO b_sender_posting_unsub (ID, POSTING_ID, RECIPIENT_ID, DATE_INSERT) "
                       "VALUES (?, ?, ?, datetime(?, '+1 hour'))",
                       [(top + i + 1, first, rid, sent) for i, (rid, sent) in enumerate(rows)])
    assert len(codes) == 5 and len(rows) == 5
    model = snapshot(folder, "older_evidence", database, truth)
    yield database, model
    model.close()


def test_sends_of_the_period_are_counted_against_older_evidence(formats_demo, older_evidence):
    """Only the period's sends count, against a blacklist entry or an unsubscribe that may be older."""
    _, truth, _ = formats_demo
    database, model = older_evidence
    whole, later = _audit(model, truth), _audit(model, truth, LATER)
    for figure, query in (("sent_after_hard_bounce", BLACKLISTED_AFTER), ("sent_after_unsubscribe", UNSUBSCRIBED_AFTER)):
        in_whole = _count(database, query, truth["parameters"]["period"]["start"])
        in_later = _count(database, query, LATER)
        assert whole.figures[figure] == in_whole and later.figures[figure] == in_later, figure
        assert 0 < in_later < in_whole, figure


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


def test_findings_are_ranked_plain_and_name_the_bitrix_fix(audits):
    from mailaudit.narrative import list_hygiene as words
    from mailaudit.narrative.common import SEVERITY_ORDER

    run = audits["postfix"]
    findings = words.findings(run, {"unsub_grace_hours": 48, "soft_bounce_streak": 3, "inactive_min_sends": 5,
                                    "inactive_months": 6}, have_log=True)
    order = [SEVERITY_ORDER[f.severity] for f in findings]
    assert order == sorted(order)
    unsub = [f for f in findings if f.key == "sent_after_unsubscribe"]
    assert unsub and unsub[0].severity in ("high", "medium") and "unsubscribed from that campaign" in unsub[0].title
    crm = [f for f in findings if f.key == "unsubscribed_not_excluded_in_crm"]
    assert "OnAfterRecipientUnsub" in crm[0].fix and "exclusion list" in crm[0].fix
    for f in findings:
        assert f.fix and f.denominator, f.key
        assert not re.search(r"\bb_[a-z_]+|TYPE_ID|STATUS", f.title + f.detail + f.fix), f.key


def test_rate_tables_count_the_periods_delivered_sends(audits, formats_demo):
    _, truth, _ = formats_demo
    run = audits["postfix"]
    total = run.by_posting["sent"].sum()
    assert total == truth["opens"]["delivered"]
    assert run.by_provider["sent"].sum() == total == run.by_month["sent"].sum()
    assert run.by_posting["hard_bounces"].sum() == run.by_month["hard_bounces"].sum()
    blocked = run.by_provider.set_index("provider")["sender_blocks"]
    assert blocked.get("microsoft", 0) > 0 and blocked.get("mail.ru", 0) == 0


def test_months_are_recounted_from_the_recipient_rows(audits, formats_demo):
    """Every month of the period, with the sent and error rows of e-mail letters dated in it."""
    result, truth, _ = formats_demo
    with sqlite3.connect(result.database) as db:
        expected = pd.read_sql_query(
            "SELECT strftime('%Y-%m', r.DATE_SENT) AS month, SUM(r.STATUS = 'N') AS sent, "
            "SUM(r.STATUS = 'E') AS error_rows FROM b_sender_posting_recipient r "
            "JOIN b_sender_posting p ON p.ID = r.POSTING_ID JOIN b_sender_mailing_chain c ON c.ID = p.MAILING_CHAIN_ID "
            "WHERE c.MESSAGE_CODE = 'mail' AND r.DATE_SENT >= '2025-10-01' AND r.DATE_SENT < '2026-10-01' "
            "GROUP BY 1 ORDER BY 1", db)
    found = audits["postfix"].by_month[["month", "sent", "error_rows"]]
    assert len(found) == 12
    pd.testing.assert_frame_equal(found.reset_index(drop=True), expected.astype({"sent": "int64", "error_rows": "int64"}),
                                  check_dtype=False)


def test_demo_logs_parse_without_rejected_lines(audits):
    for fmt in FORMATS:
        files = audits[fmt].log_files
        assert files["unparseable"].sum() == 0 and files["events"].sum() > 0, fmt


def test_same_figures_on_mariadb_and_postgresql_as_on_sqlite(demo, demo_model, server_model):
    truth = demo.truth_figures
    server, local = _audit(server_model, truth), _audit(demo_model, truth)
    figures = [{k: run.figures[k] for k in (*CONTRACT_KEYS, "period_rates", "bounce_classes")} for run in (server, local)]
    assert figures[0] == figures[1]
    assert {k: figures[0][k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}
    for reason, rows in local.suppressions.items():
        pd.testing.assert_frame_equal(server.suppressions[reason], rows, check_dtype=False, obj=reason)


@pytest.mark.slow
def test_the_notebook_records_the_truth_and_writes_the_suppression_files(demo, tmp_path, monkeypatch):
    from mailaudit.report.runner import run_reports

    truth = demo.truth_figures
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "demo.yaml"
    period = truth["parameters"]["period"]
    params.write_text(f"client: Demo\nperiod: {{start: {period['start']}, end: {period['end']}}}\n"
                      f"database: {{sqlite: {demo.database}}}\nlogs: {{delivery: [{demo.logs['postfix']}]}}\n"
                      "reports: [list_hygiene]\n", encoding="utf-8")
    run = run_reports(params, tmp_path / "out", progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["reports"]["list_hygiene"]["status"] == "ok", summary["reports"]["list_hygiene"]
    assert {k: summary["hygiene"][k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}
    for reason, name in summary["hygiene"]["suppression_files"].items():
        rows = pd.read_csv(tmp_path / "out" / name)
        assert len(rows) and rows["email"].notna().all(), reason
    assert (tmp_path / "out" / "tables" / "hygiene_log_files.csv").is_file()
    html = (tmp_path / "out" / "list_hygiene.html").read_text(encoding="utf-8")
    some_address = pd.read_csv(tmp_path / "out" / "suppress_hard_bounce.csv")["email"].iloc[0]
    assert some_address not in html
    assert run.exit_code == 0


def test_legacy_layout_gives_the_truth(tmp_path):
    """Sender 15/16: contacts and recipients carry EMAIL, contacts have no IS_UNSUB."""
    result = build_demo(sqlite_path=tmp_path / "legacy.sqlite", contacts=1000, seed=2, logs_dir=tmp_path / "logs",
                        layout="legacy")
    truth = json.loads(Path(result.truth).read_text(encoding="utf-8"))
    model = snapshot(tmp_path, "legacy", Path(result.database), truth, [result.logs["postfix"]])
    try:
        assert model.layout == "legacy"
        figures = _audit(model, truth).figures
    finally:
        model.close()
    assert {k: figures[k] for k in CONTRACT_KEYS} == {k: truth["hygiene"][k] for k in CONTRACT_KEYS}


def test_dns_check_flags_contacts_on_domains_without_mail(demo, demo_model, monkeypatch):
    """The optional DNS check: each distinct domain is looked up once; its contacts become suppressions,
    except those whose address has a problem of its own (invalid syntax comes first)."""
    from mailaudit.analyses import addresses

    truth = demo.truth_figures
    looked_up = []

    def fake_lookup(domains, **_options):
        looked_up.append(sorted(domains))
        return {"mail.ru": "The domain name mail.ru does not accept email."}

    monkeypatch.setattr(addresses, "domains_without_mail", fake_lookup)
    audited = _audit(demo_model, truth)
    checked = _audit(demo_model, truth | {"parameters": truth["parameters"] | {
        "hygiene": truth["parameters"]["hygiene"] | {"check_dns": True}}})
    with sqlite3.connect(demo.database) as db:
        on_mail_ru = [code for (code,) in db.execute(
            "SELECT CODE FROM b_sender_contact WHERE TYPE_ID = 1 AND CODE LIKE '%@mail.ru'")]
    invalid = {code for code in on_mail_ru if addresses.syntax_problem(code)}
    assert len(looked_up) == 1 and "mail.ru" in looked_up[0] and len(looked_up[0]) == len(set(looked_up[0]))
    assert audited.figures["no_mail_domain"] is None
    assert checked.figures["no_mail_domain"] == len(on_mail_ru) - len(invalid) > 0 and invalid
    rows = checked.suppressions["no_mail_domain"]
    assert len(rows) == checked.figures["no_mail_domain"] and rows["email"].str.endswith("@mail.ru").all()
    assert rows["evidence_text"].str.contains("does not accept email").all()
    assert invalid <= set(checked.suppressions["invalid_syntax"]["email"]) and not invalid & set(rows["email"])
