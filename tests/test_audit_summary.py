"""The audit summary on index.html: ranked actions across the reports, and the suppression files with their
counts, one combined file and the blacklist import list."""
from __future__ import annotations

import json

import pandas as pd

from mailaudit.analyses import suppression
from mailaudit.report.audit_summary import actions, suppression_listing
from mailaudit.report.runner import run_reports
from report_helpers import empty_bitrix_sqlite, write_params, write_report_notebook

REPORTS = [{"name": "data_and_tracking", "title": "Data", "html": "data_and_tracking.html"},
           {"name": "list_hygiene", "title": "Hygiene", "html": "list_hygiene.html"},
           {"name": "segments", "title": "Segments", "html": None}]   # failed before its page: no link


def finding(severity, title, anchor, **extra):
    return {"severity": severity, "title": title, "detail": "d", "anchor": anchor, **extra}


def test_actions_rank_by_severity_then_stake_then_share_then_count_and_link_their_evidence(tmp_path):
    (tmp_path / "suppress_hard_bounce.csv").write_text("email\n")
    parts = {
        "data_and_tracking": {"findings": [
            finding("medium", "small share", "finding-1", count=50, of=1000),
            finding("info", "just so you know", "finding-2"),
            finding("high", "no count", "finding-3"),
            finding("medium", "a stake", "finding-4", count=1, of=1000, stake="revenue 5 RUB")]},
        "list_hygiene": {"findings": [
            finding("medium", "large share", "finding-1", count=10, of=20, unit="contacts", fix="suppress them",
                    evidence="suppress_hard_bounce.csv", stake="bounce rate"),
            finding("high", "sends after a bounce", "finding-2", count=5, of=100, unit="sends",
                    evidence="suppress_gone.csv")]},
        "segments": {"findings": [finding("high", "from a report without a page", "finding-1")]},
    }
    ranked = actions(parts, REPORTS, tmp_path)
    assert [a["title"] for a in ranked] == ["sends after a bounce", "no count", "large share", "a stake", "small share"]
    first, third = ranked[0], ranked[2]
    assert first["link"] == "list_hygiene.html#finding-2" and first["how_many"] == "5 of 100 sends"
    assert first["evidence"] is None                     # the file is not in the bundle: no dead link
    assert third["evidence"] == "suppress_hard_bounce.csv" and third["fix"] == "suppress them"
    assert third["stake"] == "bounce rate" and ranked[1]["fix"] == "d"   # no fix line: the detail
    assert len(actions({"list_hygiene": {"findings": [finding("low", f"t{i}", f"finding-{i}")
                                                       for i in range(15)]}}, REPORTS, tmp_path)) == 10


def test_suppression_listing_counts_rows_and_describes_each_file(tmp_path):
    (tmp_path / "suppress_hard_bounce.csv").write_text("\ufeffemail,reason\r\na@x.ru,hard_bounce\r\nb@x.ru,hard_bounce\r\n",
                                                       encoding="utf-8")
    (tmp_path / "suppress_complaint.csv").write_text("email,reason\r\nc@x.ru,complaint\r\n", encoding="utf-8")
    (tmp_path / "suppress_all.csv").write_text("email\r\na@x.ru\r\nb@x.ru\r\nc@x.ru\r\n", encoding="utf-8")
    (tmp_path / "suppress_blacklist_import.csv").write_text("a@x.ru\r\nb@x.ru\r\nc@x.ru\r\n", encoding="utf-8")
    listing = suppression_listing(tmp_path)
    assert [(f["file"], f["rows"]) for f in listing] == [
        ("suppress_all.csv", 3), ("suppress_blacklist_import.csv", 3), ("suppress_hard_bounce.csv", 2),
        ("suppress_complaint.csv", 1)]
    descriptions = [f["description"] for f in listing]
    assert len(set(descriptions)) == len(descriptions)


def test_every_reason_has_its_own_description():
    assert len(set(suppression.DESCRIPTIONS.values())) == len(suppression.DESCRIPTIONS)


def test_the_combined_file_has_one_row_per_address_with_every_reason_and_its_contacts(demo_model):
    people = demo_model.sql("SELECT contact_id, email FROM contacts WHERE email LIKE '%@%' ORDER BY contact_id LIMIT 3")
    a, b, c = people["email"]

    def rows(reason, emails, code):
        return pd.DataFrame({"email": emails, "reason": reason, "evidence_code": code, "evidence_text": "why",
                             "evidence_date": pd.Timestamp("2026-01-02"), "evidence_posting": pd.array([7] * len(emails), "Int64"),
                             "recommended_action": f"act on {reason}"})

    tables = {"hard_bounce": rows("hard_bounce", [a, b], "5.1.1"), "inactive": rows("inactive", [" " + a.upper()], "x"),
              "typo_domain": rows("typo_domain", [c], "typo_domain")}
    combined = suppression.combined(demo_model, tables)
    assert list(combined.columns) == suppression.COMBINED_COLUMNS and len(combined) == 3
    first = combined.set_index(combined["email"].str.strip().str.lower()).loc[a.lower()]
    assert first["reasons"] == "hard_bounce | inactive"
    assert first["evidence"] == "hard_bounce: 5.1.1, why (2026-01-02, posting 7) | inactive: x, why (2026-01-02, posting 7)"
    assert first["recommended_actions"] == "act on hard_bounce | act on inactive"
    assert str(people["contact_id"][0]) in first["contact_ids"].split(" | ")
    # typos are corrected, inactive contacts re-engaged: only the hard bounces go to the blacklist import
    assert suppression.blacklist_addresses(tables)["email"].tolist() == sorted({a.lower(), b.lower()})


SUMMARY_BODY = """
import pandas as pd
ivan, olga = "@".join(["ivan", "mail.ru"]), "@".join(["olga", "bk.ru"])   # no address in the notebook's source
ctx.finding("medium", "Few things", "detail", count=3, of=10, unit="contacts", fix="do X", evidence="suppress_x.csv")
ctx.finding("high", f"Big thing for {ivan}", count=1, of=2, unit="sends", stake="100 RUB")
ctx.finding("info", "FYI")
ctx.write_suppression("x", pd.DataFrame({"email": [ivan, olga], "reason": "x"}))
ctx.write_suppression("blacklist_import", pd.DataFrame({"email": [ivan]}), listed=False, import_file=True)
"""


def test_the_index_opens_with_the_audit_summary_and_the_bundle_passes_the_secret_scan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_params(tmp_path / "p.yaml", empty_bitrix_sqlite(tmp_path / "shop.sqlite"), "reports: [data_and_tracking]\n")
    write_report_notebook(tmp_path / "notebooks", "data_and_tracking", SUMMARY_BODY)
    result = run_reports(params, tmp_path / "out", notebooks_dir=tmp_path / "notebooks", progress=False)
    assert result.exit_code == 0 and not result.leaks, (result.outcomes, result.leaks)
    index = (result.out_dir / "index.html").read_text(encoding="utf-8")
    summary_part = index[index.index("Audit summary"):index.index("<h2>Reports</h2>")]
    assert summary_part.index("Big thing for i***@mail.ru") < summary_part.index("Few things")
    assert "FYI" not in summary_part and "ivan@mail.ru" not in summary_part
    assert 'href="data_and_tracking.html#finding-2"' in summary_part and 'href="suppress_x.csv"' in summary_part
    assert "1 of 2 sends" in summary_part and "100 RUB" in summary_part
    assert '<a href="suppress_x.csv">suppress_x.csv</a></td><td class="num">2</td>' in summary_part
    assert '<a href="suppress_blacklist_import.csv">suppress_blacklist_import.csv</a></td><td class="num">1</td>' \
        in summary_part
    assert (result.out_dir / "suppress_blacklist_import.csv").read_bytes() == b"ivan@mail.ru\r\n"
    summary = json.loads((result.out_dir / "summary.json").read_text(encoding="utf-8"))
    assert [a["title"] for a in summary["audit_summary"]["actions"]] == ["Big thing for i***@mail.ru", "Few things"]
    assert summary["hygiene"]["suppression_files"] == {"x": "suppress_x.csv"}
