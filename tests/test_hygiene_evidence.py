"""Missing evidence never becomes a verdict, and each address gets one reason: list_hygiene on damaged
copies of the shared demo (a tracking table dropped, flags dropped, blank and typo-squatted addresses)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from mailaudit.analyses import hygiene as hyg
from mailaudit.period import Period

WINDOW = ("2026-04-01", "2026-10-01")
"""The demo's inactivity window: the 6 calendar months before the period end."""


def _audit(demo, model) -> hyg.HygieneResult:
    truth = demo.truth_figures
    period = truth["parameters"]["period"]
    return hyg.audit_hygiene(model, Period(date.fromisoformat(period["start"]), date.fromisoformat(period["end"])),
                             truth["parameters"]["hygiene"])


def _damaged(demo, demo_params, model_of, tmp_path: Path, *statements: str):
    """The model of a copy of the demo database after `statements` (SQLite), without logs."""
    copy = tmp_path / "damaged.sqlite"
    copy.write_bytes(Path(demo.database).read_bytes())
    with sqlite3.connect(copy) as db:
        for statement in statements:
            db.execute(statement)
    return model_of(demo_params(database={"sqlite": str(copy)}, with_logs=False, name="damaged.yaml"), "damaged.duckdb")


def _openers(demo) -> set[str]:
    """Addresses of contacts with a read or click row dated in the inactivity window (the demo as built)."""
    with sqlite3.connect(demo.database) as db:
        return {code for (code,) in db.execute(
            "SELECT DISTINCT c.CODE FROM b_sender_contact c JOIN b_sender_posting_recipient r ON r.CONTACT_ID = c.ID "
            "WHERE r.ID IN (SELECT RECIPIENT_ID FROM b_sender_posting_read WHERE DATE_INSERT >= ? AND DATE_INSERT < ? "
            "               UNION SELECT RECIPIENT_ID FROM b_sender_posting_click WHERE DATE_INSERT >= ? AND DATE_INSERT < ?)",
            WINDOW * 2)}


NO_READS = "DROP TABLE b_sender_posting_read"
NO_RECIPIENT_FLAGS = ("ALTER TABLE b_sender_posting_recipient DROP COLUMN IS_READ",
                      "ALTER TABLE b_sender_posting_recipient DROP COLUMN IS_CLICK")
NO_CONTACT_FLAGS = ("ALTER TABLE b_sender_contact DROP COLUMN IS_READ",
                    "ALTER TABLE b_sender_contact DROP COLUMN IS_CLICK")


@pytest.mark.parametrize("damage, evidence", [
    ((NO_READS,), "recipient rows' IS_READ/IS_CLICK flags"),
    ((NO_READS, *NO_RECIPIENT_FLAGS), "contacts' IS_READ/IS_CLICK flags"),
    (("DROP TABLE b_sender_posting_click",), "recipient rows' IS_READ/IS_CLICK flags"),
], ids=["no-read-table", "no-read-table-nor-recipient-flags", "no-click-table"])
def test_without_tracking_rows_inactivity_uses_the_next_best_evidence(demo, demo_params, model_of, tmp_path,
                                                                     damage, evidence):
    run = _audit(demo, _damaged(demo, demo_params, model_of, tmp_path, *damage))
    suppressed = set(run.suppressions["inactive"]["email"])
    assert suppressed and not suppressed & _openers(demo)
    assert run.figures["inactive"] == len(suppressed) <= demo.truth_figures["hygiene"]["inactive"]
    note = [n for n in run.notes if n.startswith("inactive:")]
    assert len(note) == 1 and evidence in note[0] and "missing" in note[0]


def test_the_demo_with_its_read_and_click_rows_needs_no_fallback(demo, demo_model):
    run = _audit(demo, demo_model)
    assert run.figures["inactive"] == demo.truth_figures["hygiene"]["inactive"]
    assert not [n for n in run.notes if n.startswith("inactive")]


def test_a_portal_that_records_no_opens_gets_no_inactivity_verdict(demo, demo_params, model_of, tmp_path):
    run = _audit(demo, _damaged(demo, demo_params, model_of, tmp_path, NO_READS, *NO_RECIPIENT_FLAGS,
                                *NO_CONTACT_FLAGS))
    assert run.figures["inactive"] is None and "inactive" not in run.suppressions
    assert any(n.startswith("inactive is null") and "b_sender_posting_read" in n for n in run.notes)
    assert run.figures["hard_bounce"] == demo.truth_figures["hygiene_without_logs"]["hard_bounce"]


def test_blank_addresses_are_counted_never_suppressed(demo, demo_params, model_of, tmp_path):
    """Three inactive contacts lose their address ('', spaces, a tab): no suppression row is blank."""
    inactive = sorted(_audit(demo, model_of(demo_params(with_logs=False))).suppressions["inactive"]["email"])[:3]
    blanks = ("", "   ", "\t")
    run = _audit(demo, _damaged(demo, demo_params, model_of, tmp_path, *(
        f"UPDATE b_sender_contact SET CODE = '{blank}' WHERE CODE = '{code}'" for blank, code in zip(blanks, inactive))))
    for reason, rows in run.suppressions.items():
        assert rows["email"].map(lambda v: isinstance(v, str) and bool(v.strip())).all(), reason
    truth = demo.truth_figures["hygiene"]
    assert run.figures["contacts"] == truth["contacts"] and run.figures["invalid_syntax"] == truth["invalid_syntax"]
    assert len(run.suppressions["inactive"]) == truth["inactive"] - 3
    # the tab is white space too: the model blanks it with the others, so no suppression row is left to drop
    assert [n for n in run.notes if "blank address" in n][0].startswith("3 e-mail contacts have a blank address")
    assert not [n for n in run.notes if "named no address" in n]


def test_a_typo_domain_on_the_disposable_list_is_a_typo(demo, demo_params, model_of, tmp_path):
    """gmial.com and hotmial.com are typo-squatted domains the disposable list carries: correct, do not drop."""
    with sqlite3.connect(demo.database) as db:
        ids = [i for (i,) in db.execute("SELECT ID FROM b_sender_contact WHERE TYPE_ID = 1 AND CODE LIKE '%@gmail.com' "
                                        "AND CODE NOT LIKE '%.%@%' AND CODE NOT LIKE 'info@%' ORDER BY ID LIMIT 2")]
    moved = {"ivan.typo@gmial.com": ids[0], "olga.typo@hotmial.com": ids[1]}
    run = _audit(demo, _damaged(demo, demo_params, model_of, tmp_path, *(
        f"UPDATE b_sender_contact SET CODE = '{code}' WHERE ID = {i}" for code, i in moved.items())))
    truth = demo.truth_figures["hygiene"]
    assert run.figures["typo_domain"] == truth["typo_domain"] + 2
    assert run.figures["disposable_domain"] == truth["disposable_domain"]
    typos = run.suppressions["typo_domain"].set_index("email")["evidence_text"]
    assert typos["ivan.typo@gmial.com"] == "did you mean gmail.com"
    assert typos["olga.typo@hotmial.com"] == "did you mean hotmail.com"
    assert not set(moved) & set(run.suppressions["disposable"]["email"])
