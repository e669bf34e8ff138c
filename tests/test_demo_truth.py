"""The truth file matches the generated data, recomputed here with plain SQL and pandas."""

from __future__ import annotations

import disposable_email_domains
import pandas as pd
import pytest
from demo_fixtures import column_type_violations, small_db, small_demo  # noqa: F401  (fixtures)
from email_validator import EmailNotValidError, validate_email

from mailaudit.bitrix.codes import APPLE_DOMAINS
from mailaudit.demo import vocab

START, END_EXCL = "2025-10-01 00:00:00", "2026-10-01 00:00:00"
CONTRACT_HYGIENE_KEYS = {
    "contacts", "invalid_syntax", "role_account", "disposable_domain", "typo_domain", "duplicate_contacts",
    "hard_bounce", "soft_bounce_streak", "sender_block_events", "sent_after_hard_bounce",
    "unsubscribed_not_excluded_in_crm", "sent_after_unsubscribe", "complaints", "inactive",
}


def _email_contacts(conn) -> pd.DataFrame:
    return pd.read_sql("SELECT ID, CODE, IS_UNSUB, BLACKLISTED FROM b_sender_contact WHERE TYPE_ID = 1", conn)


def _delivered(conn) -> pd.DataFrame:
    return pd.read_sql(
        "SELECT r.ID, r.CONTACT_ID, r.DATE_SENT, r.POSTING_ID FROM b_sender_posting_recipient r "
        "JOIN b_sender_posting p ON p.ID = r.POSTING_ID JOIN b_sender_mailing_chain ch ON ch.ID = p.MAILING_CHAIN_ID "
        f"WHERE ch.MESSAGE_CODE = 'mail' AND r.STATUS = 'N' AND r.DATE_SENT >= '{START}' AND r.DATE_SENT < '{END_EXCL}'",
        conn)


def test_truth_has_every_contract_key(small_demo):
    _result, truth = small_demo
    assert CONTRACT_HYGIENE_KEYS <= set(truth["hygiene"])
    assert {"delivered", "unique_opens", "raw_open_rate", "human_open_rate", "machine_open_share",
            "by_client"} <= set(truth["opens"])
    assert {"apple", "gmail"} <= set(truth["opens"]["by_client"])
    assert {"windows", "source", "delivered", "converted", "conversion_rate", "revenue", "revenue_per_recipient",
            "cohorts", "utm", "planted_lift"} <= set(truth["conversion"])
    assert truth["parameters"]["period"] == {"start": "2025-10-01", "end": "2026-09-30"}
    assert truth["parameters"]["hygiene"] == {"soft_bounce_streak": 3, "unsub_grace_hours": 48,
                                              "inactive_months": 6, "inactive_min_sends": 5}


def test_address_categories_recomputed_from_the_codes(small_demo, small_db):
    _result, truth = small_demo
    h = truth["hygiene"]
    contacts = _email_contacts(small_db)
    assert len(contacts) == h["contacts"]
    codes = contacts["CODE"].tolist()
    invalid = 0
    for code in codes:
        try:
            validate_email(code, check_deliverability=False)
        except EmailNotValidError:
            invalid += 1
    assert invalid == h["invalid_syntax"] > 0
    domains = [c.rpartition("@")[2] for c in codes]
    assert sum(d in disposable_email_domains.blocklist for d in domains) == h["disposable_domain"] > 0
    assert sum(d in vocab.TYPO_DOMAINS for d in domains) == h["typo_domain"] > 0
    assert sum(c.partition("@")[0] in vocab.ROLE_LOCAL_PARTS for c in codes) == h["role_account"] > 0
    normalised = []
    for code in codes:
        local, _, domain = code.rpartition("@")
        if domain in ("gmail.com", "googlemail.com"):
            code = local.split("+")[0].replace(".", "") + "@gmail.com"
        normalised.append(code)
    assert len(normalised) - len(set(normalised)) == h["duplicate_contacts"] > 0
    assert all(c == c.strip().lower() for c in codes)


def test_opted_out_hygiene_counts_recomputed_with_sql(small_demo, small_db):
    _result, truth = small_demo
    h = truth["hygiene"]
    conn = small_db
    assert conn.execute("SELECT COUNT(DISTINCT CONTACT_ID) FROM b_sender_abuse").fetchone()[0] == h["complaints"] > 0
    blacklisted = conn.execute(
        "SELECT COUNT(*) FROM b_sender_contact c WHERE c.TYPE_ID = 1 AND c.BLACKLISTED = 'Y'").fetchone()[0]
    assert blacklisted == h["complaints"]
    auto = conn.execute(
        "SELECT COUNT(*) FROM b_main_mail_blacklist b JOIN b_sender_contact c ON c.CODE = b.CODE "
        "WHERE b.CATEGORY_ID = 0").fetchone()[0]
    assert auto == truth["hygiene_without_logs"]["hard_bounce"] > 0
    assert auto < h["hard_bounce"]
    not_excluded = conn.execute(
        "SELECT COUNT(*) FROM b_sender_contact c WHERE c.TYPE_ID = 1 AND (c.IS_UNSUB = 'Y' OR c.BLACKLISTED = 'Y') "
        "AND EXISTS (SELECT 1 FROM b_crm_field_multi f WHERE f.ENTITY_ID = 'CONTACT' AND f.TYPE_ID = 'EMAIL' "
        "            AND lower(trim(f.VALUE)) = c.CODE) "
        "AND NOT EXISTS (SELECT 1 FROM b_crm_exclusion x WHERE x.TYPE_ID = 2 AND lower(trim(x.CODE)) = c.CODE) "
        "AND NOT EXISTS (SELECT 1 FROM b_main_mail_blacklist b WHERE lower(trim(b.CODE)) = c.CODE)").fetchone()[0]
    assert not_excluded == h["unsubscribed_not_excluded_in_crm"] > 0
    late = conn.execute(
        "SELECT COUNT(*) FROM b_sender_posting_recipient r JOIN b_sender_posting p ON p.ID = r.POSTING_ID "
        "JOIN (SELECT r2.CONTACT_ID, p2.MAILING_ID, MIN(u.DATE_INSERT) AS T FROM b_sender_posting_unsub u "
        "      JOIN b_sender_posting_recipient r2 ON r2.ID = u.RECIPIENT_ID "
        "      JOIN b_sender_posting p2 ON p2.ID = u.POSTING_ID GROUP BY r2.CONTACT_ID, p2.MAILING_ID) un "
        "  ON un.CONTACT_ID = r.CONTACT_ID AND un.MAILING_ID = p.MAILING_ID "
        f"WHERE r.DATE_SENT > datetime(un.T, '+48 hours') AND r.DATE_SENT < '{END_EXCL}' "
        "AND r.CONTACT_ID IN (SELECT ID FROM b_sender_contact)").fetchone()[0]
    assert late == h["sent_after_unsubscribe"] > 0
    subs = conn.execute("SELECT COUNT(*) FROM b_sender_mailing_subscription WHERE IS_UNSUB = 'Y'").fetchone()[0]
    unsub_contacts = conn.execute("SELECT COUNT(*) FROM b_sender_contact WHERE IS_UNSUB = 'Y'").fetchone()[0]
    assert subs == unsub_contacts > 0


def test_inactive_recomputed_with_sql(small_demo, small_db):
    _result, truth = small_demo
    window = "2026-04-01 00:00:00"
    inactive = small_db.execute(
        "SELECT COUNT(*) FROM b_sender_contact c WHERE c.TYPE_ID = 1 "
        f"AND (SELECT COUNT(*) FROM b_sender_posting_recipient r WHERE r.CONTACT_ID = c.ID AND r.STATUS = 'N' "
        f"     AND r.DATE_SENT >= '{window}' AND r.DATE_SENT < '{END_EXCL}') >= 5 "
        "AND NOT EXISTS (SELECT 1 FROM b_sender_posting_recipient r JOIN b_sender_posting_read d ON d.RECIPIENT_ID = r.ID "
        f"     WHERE r.CONTACT_ID = c.ID AND d.DATE_INSERT >= '{window}' AND d.DATE_INSERT < '{END_EXCL}') "
        "AND NOT EXISTS (SELECT 1 FROM b_sender_posting_recipient r JOIN b_sender_posting_click k ON k.RECIPIENT_ID = r.ID "
        f"     WHERE r.CONTACT_ID = c.ID AND k.DATE_INSERT >= '{window}' AND k.DATE_INSERT < '{END_EXCL}')").fetchone()[0]
    assert inactive == truth["hygiene"]["inactive"] > 0


def test_open_counts_recomputed_with_sql(small_demo, small_db):
    _result, truth = small_demo
    delivered = _delivered(small_db)
    reads = pd.read_sql("SELECT RECIPIENT_ID, DATE_INSERT FROM b_sender_posting_read", small_db)
    opened = delivered["ID"].isin(reads["RECIPIENT_ID"])
    assert len(delivered) == truth["opens"]["delivered"]
    assert int(opened.sum()) == truth["opens"]["unique_opens"]
    machine = pd.read_csv(_result_path(small_demo, "machine_opens"))
    assert len(machine) == truth["opens"]["machine_only_recipients"]
    assert set(machine["kind"]) == {"mpp", "scanner"}
    assert machine["recipient_id"].isin(delivered.loc[opened, "ID"]).all()
    o = truth["opens"]
    assert o["human_open_rate"] < o["raw_open_rate"]
    assert o["by_client"]["apple"]["inflation_pp"] > 40
    assert abs(o["by_client"]["gmail"]["inflation_pp"]) < 1e-9   # Gmail's proxy loads are human
    assert o["machine_open_share"] == pytest.approx(len(machine) / o["unique_opens"])


def test_apple_mail_reads_arrive_within_minutes_of_delivery(small_demo, small_db):
    _result, truth = small_demo
    delivered = _delivered(small_db)
    contacts = _email_contacts(small_db)
    apple_ids = contacts.loc[contacts["CODE"].str.rpartition("@")[2].isin(sorted(APPLE_DOMAINS)), "ID"]
    apple = delivered[delivered["CONTACT_ID"].isin(apple_ids)]
    reads = pd.read_sql("SELECT RECIPIENT_ID, DATE_INSERT FROM b_sender_posting_read", small_db)
    merged = apple.merge(reads, left_on="ID", right_on="RECIPIENT_ID")
    delay = pd.to_datetime(merged["DATE_INSERT"]) - pd.to_datetime(merged["DATE_SENT"])
    fast = merged.loc[delay <= pd.Timedelta(minutes=15), "ID"].nunique()
    share = fast / len(apple)
    assert share == pytest.approx(truth["opens"]["apple_read_within_15min_share"], abs=0.06)
    assert share > 0.55


def test_segment_truth_plants_effects_nulls_and_a_mix_effect(small_demo):
    _result, truth = small_demo
    seg = truth["segments"]
    loyal = next(e for e in seg["effects"] if e["segment"] == "Постоянные покупатели" and e["metric"] == "click_rate")
    assert loyal["multiplier"] == 1.8 and loyal["ratio"] > 1.5
    cold = next(e for e in seg["effects"] if e["segment"].startswith("Холодная") and e["metric"] == "open_rate")
    assert cold["ratio"] < 0.85
    for null in seg["nulls"]:
        if null["dimension"] == "tenure":
            assert 0.75 < null["ratio"] < 1.3
    mix = seg["mix_effect"]["metrics"]["open_rate"]
    assert mix["raw_ratio"] > 1.1 and abs(mix["ratio"] - 1) < 0.1


def test_conversion_recomputed_with_pandas(small_demo, small_db):
    _result, truth = small_demo
    conn = small_db
    delivered = _delivered(conn)
    contacts = pd.read_sql("SELECT ID AS CONTACT_ID, CODE, USER_ID FROM b_sender_contact WHERE TYPE_ID = 1", conn)
    orders = pd.read_sql("SELECT ID AS ORDER_ID, USER_ID, DATE_INSERT, PRICE FROM b_sale_order WHERE CANCELED = 'N'", conn)
    via_crm = pd.read_sql(
        "SELECT o.ORDER_ID, lower(trim(f.VALUE)) AS CODE FROM b_crm_order_contact_company o "
        "JOIN b_crm_field_multi f ON f.ENTITY_ID = 'CONTACT' AND f.ELEMENT_ID = o.ENTITY_ID AND f.TYPE_ID = 'EMAIL' "
        "WHERE o.ENTITY_TYPE_ID = 3", conn).merge(contacts[["CONTACT_ID", "CODE"]], on="CODE")
    via_user = orders.merge(contacts.dropna(subset=["USER_ID"]), on="USER_ID")[["ORDER_ID", "CONTACT_ID"]]
    links = pd.concat([via_crm[["ORDER_ID", "CONTACT_ID"]], via_user]).drop_duplicates()
    orders = orders.merge(links, on="ORDER_ID")
    orders["T"] = pd.to_datetime(orders["DATE_INSERT"])
    sends = delivered.rename(columns={"ID": "RID"})
    sends["SENT"] = pd.to_datetime(sends["DATE_SENT"])
    events = {}
    for name, table in (("click", "b_sender_posting_click"), ("read", "b_sender_posting_read")):
        ev = pd.read_sql(f"SELECT RECIPIENT_ID AS RID, DATE_INSERT FROM {table}", conn)
        ev["E"] = pd.to_datetime(ev["DATE_INSERT"])
        events[name] = ev.merge(sends[["RID", "CONTACT_ID", "SENT"]], on="RID")
    attributed = {}
    for kind, days in (("click", 30), ("read", 5)):
        cand = orders.merge(events[kind], on="CONTACT_ID")
        lag = cand["T"] - cand["E"]
        cand = cand[(lag >= pd.Timedelta(0)) & (lag <= pd.Timedelta(days=days))]
        cand = cand[~cand["ORDER_ID"].isin(attributed)]
        best = cand.sort_values(["SENT", "RID"]).groupby("ORDER_ID").tail(1)
        attributed.update(dict(zip(best["ORDER_ID"], best["RID"])))
    conv = truth["conversion"]
    assert len(attributed) == conv["attributed_orders"] > 0
    assert len(set(attributed.values())) == conv["converted"]
    revenue = orders.set_index("ORDER_ID").loc[list(attributed), "PRICE"].sum()
    assert revenue == pytest.approx(conv["revenue"], abs=0.01)
    assert sum(c["delivered"] for c in conv["cohorts"]) == conv["delivered"] == len(delivered)
    assert conv["planted_lift"]["lift_ratio"] > 1
    won_email = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(d.OPPORTUNITY), 0) FROM b_crm_deal d WHERE d.STAGE_SEMANTIC_ID = 'S' AND EXISTS "
        "(SELECT 1 FROM b_crm_utm u WHERE u.ENTITY_TYPE_ID = 2 AND u.ENTITY_ID = d.ID AND u.CODE = 'UTM_MEDIUM' "
        " AND lower(u.VALUE) = 'email')").fetchone()
    assert won_email[0] == conv["utm"]["deals"] > 0
    assert won_email[1] == pytest.approx(conv["utm"]["revenue"], abs=0.01)


def test_data_quality_plants_are_in_the_data(small_demo, small_db):
    _result, truth = small_demo
    dq = truth["data_quality"]
    conn = small_db
    orphans = conn.execute("SELECT COUNT(*) FROM b_sender_posting_read d WHERE NOT EXISTS "
                           "(SELECT 1 FROM b_sender_posting_recipient r WHERE r.ID = d.RECIPIENT_ID)").fetchone()[0]
    assert orphans == dq["orphan_reads"] == 3
    no_read = conn.execute("SELECT COUNT(DISTINCT k.RECIPIENT_ID) FROM b_sender_posting_click k "
                           "JOIN b_sender_posting_recipient r ON r.ID = k.RECIPIENT_ID WHERE NOT EXISTS "
                           "(SELECT 1 FROM b_sender_posting_read d WHERE d.RECIPIENT_ID = k.RECIPIENT_ID)").fetchone()[0]
    assert no_read == dq["clicks_without_read_recipients"] > 0
    no_contact = conn.execute("SELECT COUNT(*) FROM b_sender_posting_recipient r WHERE NOT EXISTS "
                              "(SELECT 1 FROM b_sender_contact c WHERE c.ID = r.CONTACT_ID)").fetchone()[0]
    assert no_contact == dq["recipients_without_contact"] > 0
    early = conn.execute("SELECT COUNT(*) FROM b_sender_posting_recipient r JOIN b_sender_posting p "
                         "ON p.ID = r.POSTING_ID WHERE r.DATE_SENT < p.DATE_SEND").fetchone()[0]
    assert early == dq["sends_before_posting_date"] > 0
    untracked = conn.execute("SELECT COUNT(*) FROM b_sender_mailing WHERE TRACK_CLICK = 'N'").fetchone()[0]
    assert untracked == dq["campaigns_track_click_off"] == 1
    letters = pd.read_sql("SELECT ch.ID, u.CODE FROM b_sender_mailing_chain ch LEFT JOIN b_sender_message_utm u "
                          "ON u.MESSAGE_ID = CAST(ch.MESSAGE_ID AS INTEGER) WHERE ch.MESSAGE_CODE = 'mail'", conn)
    for key, missing in dq["letters_missing_utm"].items():
        have = letters.loc[letters["CODE"] == key, "ID"].nunique()
        assert letters["ID"].nunique() - have == missing > 0


def _result_path(small_demo, name):
    result, _truth = small_demo
    return getattr(result, name)


def test_stored_values_fit_their_bitrix_column_types(small_demo, small_db):
    """Integers are stored as integers (not numpy blobs) and text fits its VARCHAR length, so strict
    MySQL would accept every row."""
    assert column_type_violations(small_db) == []
