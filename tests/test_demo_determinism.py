"""The demo is a function of its seed: identical tables, byte-identical logs, identical truth."""

from __future__ import annotations

import json
import sqlite3

from demo_fixtures import table_dump

from mailaudit.bitrix.tables import bitrix_metadata
from mailaudit.demo import build_demo


def _build(root, seed, layout="current"):
    return build_demo(sqlite_path=root / "demo.sqlite", contacts=1500, seed=seed, logs_dir=root / "logs",
                      layout=layout, delivery_formats=("postfix", "exim", "msmtp", "csv"))


def _dump_all(path):
    conn = sqlite3.connect(path)
    tables = sorted(bitrix_metadata().tables)
    dump = {t: table_dump(conn, t) for t in tables}
    conn.close()
    return dump


def test_same_seed_gives_identical_tables_logs_and_truth(tmp_path):
    a = _build(tmp_path / "a", 7)
    b = _build(tmp_path / "b", 7)
    assert _dump_all(a.database) == _dump_all(b.database)
    assert sorted(a.logs) == sorted(b.logs) == ["access", "csv", "exim", "msmtp", "postfix"]
    for name in a.logs:
        with open(a.logs[name], "rb") as fa, open(b.logs[name], "rb") as fb:
            assert fa.read() == fb.read(), name
    truth_a = json.loads(a.truth.read_text(encoding="utf-8"))
    truth_b = json.loads(b.truth.read_text(encoding="utf-8"))
    assert truth_a == truth_b
    assert a.machine_opens.read_bytes() == b.machine_opens.read_bytes()


def test_another_seed_gives_other_data(tmp_path):
    a = _build(tmp_path / "a", 7)
    c = _build(tmp_path / "c", 8)
    da, dc = _dump_all(a.database), _dump_all(c.database)
    assert da["b_sender_contact"] != dc["b_sender_contact"]
    assert da["b_sender_posting_read"] != dc["b_sender_posting_read"]
    with open(a.logs["postfix"], "rb") as fa, open(c.logs["postfix"], "rb") as fc:
        assert fa.read() != fc.read()


def test_legacy_layout_holds_the_same_people_and_sends(tmp_path):
    cur = _build(tmp_path / "cur", 3)
    leg = _build(tmp_path / "leg", 3, layout="legacy")
    c_conn, l_conn = sqlite3.connect(cur.database), sqlite3.connect(leg.database)
    contact_cols = {r[1] for r in l_conn.execute("PRAGMA table_info(b_sender_contact)")}
    recipient_cols = {r[1] for r in l_conn.execute("PRAGMA table_info(b_sender_posting_recipient)")}
    assert {"EMAIL", "NAME", "PHONE"} <= contact_cols and not {"TYPE_ID", "CODE"} & contact_cols
    assert {"EMAIL", "NAME"} <= recipient_cols and "CONTACT_ID" not in recipient_cols
    current = c_conn.execute(
        "SELECT r.ID, r.STATUS, r.DATE_SENT, c.CODE FROM b_sender_posting_recipient r "
        "JOIN b_sender_contact c ON c.ID = r.CONTACT_ID WHERE c.TYPE_ID = 1 ORDER BY r.ID").fetchall()
    legacy = l_conn.execute(
        "SELECT ID, STATUS, DATE_SENT, EMAIL FROM b_sender_posting_recipient WHERE EMAIL IS NOT NULL "
        "AND EMAIL IN (SELECT EMAIL FROM b_sender_contact) ORDER BY ID").fetchall()
    assert current == legacy
    truth_c = json.loads(cur.truth.read_text(encoding="utf-8"))
    truth_l = json.loads(leg.truth.read_text(encoding="utf-8"))
    assert truth_c["hygiene"] == truth_l["hygiene"]
    assert truth_c["opens"] == truth_l["opens"]
