"""Demo worlds: each builds, is a function of its seed, looks like its description, and its truth matches its tables.

The baseline world must be the original generator: its tables, logs and truth are compared with
a fingerprint taken from the generator before the worlds existed.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from demo_fixtures import (  # noqa: F401  (small_demo is a fixture)
    SMALL, access_hits, column_type_violations, demo_fingerprint, small_demo, table_dump, truth_leaves,
)
from sqlalchemy import create_engine, inspect

from mailaudit.bitrix.tables import bitrix_metadata
from mailaudit.demo import build_demo
from mailaudit.demo.worlds import BASELINE, WORLDS, draw_world

FINGERPRINT = Path(__file__).parent / "fingerprints" / "demo_baseline_seed1_3000.json"
OTHER_WORLDS = [name for name in WORLDS if name != "baseline"]
START, END_EXCL = "2025-10-01 00:00:00", "2026-10-01 00:00:00"
# the gateway vendors' published networks, written out here independently of the generator's constants
GATEWAY_NETS = [ipaddress.ip_network(n) for n in (
    "40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17",          # Microsoft (EOP)
    "205.139.110.0/24", "207.211.30.0/24", "216.205.24.0/24", "91.220.42.0/24",  # Mimecast
    "67.231.144.0/20", "148.163.128.0/19",                                      # Proofpoint
    "64.235.144.0/20", "209.222.80.0/21")]                                       # Barracuda


def _gateway_ip(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in net for net in GATEWAY_NETS)


@pytest.fixture(scope="session")
def worlds(tmp_path_factory, small_demo):  # noqa: F811
    """name -> (result, truth): each world at 3000 contacts, seed 1, with Postfix and access logs (baseline: small_demo)."""
    built = {"baseline": small_demo}
    for name in OTHER_WORLDS:
        root = tmp_path_factory.mktemp(name)
        result = build_demo(sqlite_path=root / "demo.sqlite", contacts=SMALL, seed=1, logs_dir=root / "logs", world=name)
        built[name] = (result, json.loads(result.truth.read_text(encoding="utf-8")))
    return built


def _read(result, sql: str) -> pd.DataFrame:
    conn = sqlite3.connect(f"file:{result.database}?mode=ro", uri=True)
    try:
        return pd.read_sql(sql, conn)
    finally:
        conn.close()


DELIVERED = (
    "SELECT r.ID AS rid, r.CONTACT_ID, r.DATE_SENT, r.POSTING_ID, m.TRACK_CLICK FROM b_sender_posting_recipient r "
    "JOIN b_sender_posting p ON p.ID = r.POSTING_ID JOIN b_sender_mailing_chain ch ON ch.ID = p.MAILING_CHAIN_ID "
    "JOIN b_sender_mailing m ON m.ID = p.MAILING_ID "
    f"WHERE ch.MESSAGE_CODE = 'mail' AND r.STATUS = 'N' AND r.DATE_SENT >= '{START}' AND r.DATE_SENT < '{END_EXCL}'")


def _hits(result) -> pd.DataFrame:
    hits, _malformed = access_hits(result.logs["access"])
    frame = pd.DataFrame(hits, columns=["kind", "rid", "ts", "ua", "query", "ip"])
    frame["gateway"] = frame["ip"].map(_gateway_ip)
    return frame


# ---------------------------------------------------------------------------------------------- baseline

def test_baseline_world_is_the_original_generator(small_demo):  # noqa: F811
    result, truth = small_demo
    assert result.world == "baseline" and truth["world"]["name"] == "baseline"
    old, new = json.loads(FINGERPRINT.read_text(encoding="utf-8")), demo_fingerprint(result)
    assert new["tables"] == old["tables"]
    assert new["logs"] == old["logs"]
    assert new["machine_opens"] == old["machine_opens"]
    changed = [path for path, digest in old["truth"].items() if new["truth"].get(path) != digest]
    assert changed == []                          # every figure of the old truth file, unchanged
    assert set(new["truth"]) > set(old["truth"])  # and new ones added
    assert truth["clicks"]["machine_click_rows"] == {"gateway": 0, "other": 0}


# ---------------------------------------------------------------------------------------------- knobs

def test_knobs_are_drawn_within_their_ranges_and_differ_between_seeds():
    for name in OTHER_WORLDS:
        one, two = draw_world(name, 1), draw_world(name, 2)
        drawn = {k: r for k, r in WORLDS[name].ranges.items() if r[0] != r[1]}
        assert drawn
        for knob, (low, high) in drawn.items():
            assert low <= one[knob] <= high and low <= two[knob] <= high, knob
        assert all(one[k] != two[k] for k in drawn), name
        assert draw_world(name, 1).knobs == one.knobs
        assert {k: v for k, v in one.knobs.items() if k not in WORLDS[name].ranges} == \
               {k: v for k, v in BASELINE.items() if k not in WORLDS[name].ranges}
    assert draw_world("baseline", 1).knobs == draw_world("baseline", 2).knobs == BASELINE


def test_truth_names_the_world_and_its_knobs(worlds):
    for name, (_result, truth) in worlds.items():
        world = truth["world"]
        assert world["name"] == name and world["knobs"] == draw_world(name, 1).knobs
        assert set(world["drawn"]) == {k for k, r in WORLDS[name].ranges.items() if r[0] != r[1]}
        assert world["sources"] and all(url.startswith("https://") for url in world["sources"].values())


@pytest.mark.parametrize("name", OTHER_WORLDS)
def test_a_world_is_a_function_of_its_seed(name, tmp_path):
    builds = [build_demo(sqlite_path=tmp_path / f"{k}.sqlite", contacts=600, seed=seed, world=name)
              for k, seed in (("a", 4), ("b", 4), ("c", 5))]
    prints = [demo_fingerprint(b) for b in builds]
    assert prints[0]["tables"] == prints[1]["tables"] and prints[0]["truth"] == prints[1]["truth"]
    assert prints[0]["tables"]["b_sender_posting_read"] != prints[2]["tables"]["b_sender_posting_read"]


# ---------------------------------------------------------------------------------------------- every world

def test_truth_agrees_with_the_tables_in_every_world(worlds):
    for name, (result, truth) in worlds.items():
        delivered = _read(result, DELIVERED)
        reads = _read(result, "SELECT RECIPIENT_ID AS rid FROM b_sender_posting_read")
        clicks = _read(result, "SELECT RECIPIENT_ID AS rid FROM b_sender_posting_click")
        opens, c = truth["opens"], truth["clicks"]
        assert len(delivered) == opens["delivered"] == c["delivered"], name
        assert delivered["rid"].isin(reads["rid"]).sum() == opens["unique_opens"], name
        on_delivered = clicks[clicks["rid"].isin(delivered["rid"])]
        assert len(on_delivered) == c["click_rows"] == c["human_click_rows"] + sum(c["machine_click_rows"].values())
        assert on_delivered["rid"].nunique() == c["sends_clicked"], name
        assert c["sends_clicked"] == c["sends_human_clicked"] + c["sends_only_machine_clicks"]
        assert opens["human_open_rate"] <= opens["human_read_rate"] <= 1, name
        for label, row in opens["by_client"].items():
            assert row["human_open_rate"] <= row["human_read_rate"] + 1e-12, (name, label)
        assert sum(v["delivered"] for v in c["by_provider"].values()) == c["delivered"]
        assert sum(v["machine_click_rows"] for v in c["by_client"].values()) == sum(c["machine_click_rows"].values())


def test_every_world_stores_values_strict_mysql_accepts(worlds):
    for name, (result, _truth) in worlds.items():
        conn = sqlite3.connect(f"file:{result.database}?mode=ro", uri=True)
        assert column_type_violations(conn) == [], name
        conn.close()


def test_every_world_keeps_the_planted_segment_effects_and_hygiene_problems(worlds):
    for name, (_result, truth) in worlds.items():
        effects = {(e["dimension"], e["metric"]): e for e in truth["segments"]["effects"]}
        loyal = next(e for e in truth["segments"]["effects"] if e["metric"] == "click_rate"
                     and e["segment"] == "Постоянные покупатели")
        assert loyal["multiplier"] == 1.8 and loyal["ratio"] > 1.4, name
        assert ("crm_source", "click_rate") in effects and truth["segments"]["nulls"], name
        h = truth["hygiene"]
        for key in ("invalid_syntax", "typo_domain", "disposable_domain", "role_account", "duplicate_contacts",
                    "hard_bounce", "soft_bounce_streak", "sent_after_hard_bounce", "sent_after_unsubscribe",
                    "unsubscribed_not_excluded_in_crm", "complaints", "inactive"):
            assert h[key] > 0, (name, key)


# ---------------------------------------------------------------------------------------------- b2b_gateways

def test_b2b_gateways_click_every_link_within_minutes_of_the_send(worlds):
    result, truth = worlds["b2b_gateways"]
    delivered = _read(result, DELIVERED)
    hits = _hits(result).merge(delivered, on="rid")
    hits["delay"] = (pd.to_datetime(hits["ts"]) - pd.to_datetime(hits["DATE_SENT"])).dt.total_seconds()
    gateway = hits[(hits["kind"] == "click") & hits["gateway"]]
    assert len(gateway) == truth["clicks"]["machine_click_rows"]["gateway"] > 0
    assert (gateway["delay"] >= 5).all()
    assert (gateway["delay"] <= 300).mean() > 0.85 and gateway["delay"].median() < 120
    assert (gateway["delay"] > 120).any()                       # a heavy tail, not a fixed window
    assert gateway["ua"].str.startswith("Mozilla/5.0 (").all()   # browser-like, no bot tag
    scans = gateway.groupby("rid").agg(links=("query", "nunique"), first=("delay", "min"), last=("delay", "max"))
    assert (scans["links"] == 3).mean() > 0.99                   # every tracked link of the letter
    assert (scans["last"] - scans["first"] <= 30).mean() > 0.95  # within seconds of each other
    # no gateway clicks where click tracking is off, and none from any other network
    assert set(delivered.loc[delivered["rid"].isin(scans.index), "TRACK_CLICK"]) == {"Y"}
    assert not hits[(hits["kind"] == "click") & ~hits["gateway"]]["delay"].lt(5).any()


def test_b2b_gateways_repeat_on_every_letter_with_and_without_the_pixel(worlds):
    result, truth = worlds["b2b_gateways"]
    delivered = _read(result, DELIVERED)
    hits = _hits(result)
    scanned = set(hits.loc[(hits["kind"] == "click") & hits["gateway"], "rid"])
    tracked = delivered[delivered["TRACK_CLICK"] == "Y"].copy()
    tracked["scanned"] = tracked["rid"].isin(scanned)
    protected = tracked[tracked["CONTACT_ID"].isin(tracked.loc[tracked["scanned"], "CONTACT_ID"])]
    assert protected.groupby("CONTACT_ID")["scanned"].mean().mean() > 0.8
    # a gateway click without an earlier read row writes the read row (same second), others come after the pixel
    first_read = _read(result, "SELECT RECIPIENT_ID AS rid, MIN(DATE_INSERT) AS fr FROM b_sender_posting_read GROUP BY 1")
    first_click = (hits[(hits["kind"] == "click") & hits["gateway"]].groupby("rid")["ts"].min()
                   .rename("fc").reset_index().merge(first_read, on="rid"))
    written_by_click = (first_click["fr"] == first_click["fc"]).mean()
    assert 0.1 < written_by_click < 0.9
    assert truth["clicks"]["read_rows_written_by_machine_clicks"] > 0
    pixel_lines = hits[(hits["kind"] == "read") & hits["gateway"]]
    assert len(pixel_lines) > 0 and pixel_lines["ua"].str.startswith("Mozilla/5.0 (").all()
    c = truth["clicks"]
    assert c["machine_click_share"] > 0.5 and c["sends_only_machine_clicks"] > c["sends_human_clicked"]
    assert c["by_provider"]["other"]["machine_click_rows"] == sum(c["machine_click_rows"].values())
    assert c["contacts_only_machine_clicks"] > 0
    assert c["inactive_people"] >= c["inactive_ignoring_machine_clicks"] >= truth["hygiene"]["inactive"]


# ---------------------------------------------------------------------------------------------- images_off

def test_images_off_readers_click_without_a_read_row_before(worlds):
    shares = {}
    for name in ("baseline", "images_off"):
        result, truth = worlds[name]
        delivered = _read(result, DELIVERED)
        first = _read(result, "SELECT k.RECIPIENT_ID AS rid, MIN(k.DATE_INSERT) AS fc, "
                      "(SELECT MIN(d.DATE_INSERT) FROM b_sender_posting_read d WHERE d.RECIPIENT_ID = k.RECIPIENT_ID) AS fr "
                      "FROM b_sender_posting_click k GROUP BY k.RECIPIENT_ID")
        first = first[first["rid"].isin(delivered["rid"])]
        shares[name] = (first["fr"] == first["fc"]).mean()      # the only read row is the one the click wrote
        gap = truth["opens"]["human_read_rate"] - truth["opens"]["human_open_rate"]
        shares[name + "_gap"] = gap
    assert shares["images_off"] > 2 * shares["baseline"] and shares["images_off"] > 0.15
    assert shares["images_off_gap"] > 0.03 > shares["baseline_gap"]
    assert worlds["images_off"][1]["clicks"]["machine_click_rows"] == {"gateway": 0, "other": 0}


# ---------------------------------------------------------------------------------------------- apple_late

def test_apple_late_prefetches_come_hours_after_delivery(worlds):
    medians = {}
    for name in ("baseline", "apple_late"):
        result, truth = worlds[name]
        hits = _hits(result).merge(_read(result, DELIVERED), on="rid")
        apple = hits[(hits["kind"] == "read") & hits["ip"].str.startswith("17.") & (hits["ua"] == "Mozilla/5.0")]
        delay = (pd.to_datetime(apple["ts"]) - pd.to_datetime(apple["DATE_SENT"])).dt.total_seconds()
        first = delay.groupby(apple["rid"]).min()
        medians[name] = first.median()
        medians[name + "_fast"] = (first <= 900).mean()
        medians[name + "_truth_fast"] = truth["opens"]["apple_read_within_15min_share"]
    assert medians["baseline"] < 1800 and medians["baseline_fast"] > 0.55
    assert medians["apple_late"] > 2 * 3600 and medians["apple_late_fast"] < 0.3
    assert medians["apple_late_truth_fast"] < 0.3 < medians["baseline_truth_fast"]
    late = worlds["apple_late"][1]["opens"]
    assert late["by_client"]["apple"]["delivered"] > 0.45 * late["delivered"]


# ---------------------------------------------------------------------------------------------- cold

def test_cold_list_opens_little_and_bounces_much(worlds):
    base, cold = worlds["baseline"][1], worlds["cold"][1]
    assert cold["opens"]["human_open_rate"] < 0.1 < base["opens"]["human_open_rate"]
    assert cold["opens"]["raw_open_rate"] < base["opens"]["raw_open_rate"]
    assert cold["clicks"]["human_click_rate"] < 0.5 * base["clicks"]["human_click_rate"]
    assert cold["hygiene"]["hard_bounce"] > 2 * base["hygiene"]["hard_bounce"]
    assert cold["hygiene"]["inactive"] > 1.3 * base["hygiene"]["inactive"]
    result = worlds["cold"][0]
    delivered = _read(result, DELIVERED)
    reads = _read(result, "SELECT DISTINCT RECIPIENT_ID AS rid FROM b_sender_posting_read")
    assert delivered["rid"].isin(reads["rid"]).mean() == pytest.approx(cold["opens"]["raw_open_rate"])


# ---------------------------------------------------------------------------------------------- schema

READ_INDEXES = {("POSTING_ID", "RECIPIENT_ID"), ("RECIPIENT_ID",)}
PAIR_ONLY = {("POSTING_ID", "RECIPIENT_ID")}


def _indexes(engine, table: str) -> dict:
    out = {}
    for ix in inspect(engine).get_indexes(table):
        out[tuple(c.upper() for c in ix["column_names"])] = bool(ix["unique"])
    return out


def _check_index_set(engine, layout: str) -> None:
    assert set(_indexes(engine, "b_sender_posting_read")) == READ_INDEXES
    assert set(_indexes(engine, "b_sender_posting_click")) == PAIR_ONLY
    assert set(_indexes(engine, "b_sender_posting_unsub")) == PAIR_ONLY
    recipient = _indexes(engine, "b_sender_posting_recipient")
    if layout == "current":
        assert recipient == {("POSTING_ID", "CONTACT_ID"): True, ("POSTING_ID", "STATUS"): False}
    else:
        assert recipient == {("POSTING_ID", "STATUS"): False, ("EMAIL",): False}
    posting = {c["name"].upper() for c in inspect(engine).get_columns("b_sender_posting")}
    assert {"DATE_SENT", "DATE_CREATE"} <= posting
    assert ({"DATE_SEND", "DATE_PAUSE"} <= posting) == (layout == "current")


def test_sqlite_has_the_older_bitrix_index_set(small_demo, tmp_path):  # noqa: F811
    engine = create_engine(f"sqlite:///{small_demo[0].database}")
    _check_index_set(engine, "current")
    engine.dispose()
    legacy = build_demo(sqlite_path=tmp_path / "legacy.sqlite", contacts=500, seed=2, layout="legacy",
                        world="b2b_gateways")
    engine = create_engine(f"sqlite:///{legacy.database}")
    _check_index_set(engine, "legacy")
    engine.dispose()
    conn = sqlite3.connect(legacy.database)
    assert conn.execute("SELECT COUNT(*) FROM b_sender_posting WHERE DATE_SENT IS NULL").fetchone()[0] == 0
    conn.close()


@pytest.mark.mariadb
def test_mariadb_has_the_older_bitrix_index_set(mariadb_url, tmp_path):
    result = build_demo(url=mariadb_url, contacts=500, seed=3, world="b2b_gateways", truth_path=tmp_path / "t.json")
    truth = json.loads(result.truth.read_text(encoding="utf-8"))
    engine = create_engine(mariadb_url)
    _check_index_set(engine, "current")
    with engine.connect() as conn:
        clicks = conn.exec_driver_sql("SELECT COUNT(*) FROM b_sender_posting_click").scalar()
    engine.dispose()
    assert clicks == truth["data_quality"]["click_rows"] > truth["clicks"]["human_click_rows"]


# ---------------------------------------------------------------------------------------------- NULLs

def test_realistic_nulls_leave_the_truth_alone(tmp_path):
    plain = build_demo(sqlite_path=tmp_path / "plain.sqlite", contacts=1000, seed=6)
    nulls = build_demo(sqlite_path=tmp_path / "nulls.sqlite", contacts=1000, seed=6, realistic_nulls=True)
    a, b = (json.loads(r.truth.read_text(encoding="utf-8")) for r in (plain, nulls))
    la, lb = truth_leaves(a), truth_leaves(b)
    assert [k for k in la if la[k] != lb.get(k)] == ["/source/row_counts/b_sender_posting_recipient",
                                                      "/data_quality/email_recipient_rows"]
    never = b["realistic_nulls"]["never_sent_recipients"]
    assert b["data_quality"]["email_recipient_rows"] == a["data_quality"]["email_recipient_rows"] + sum(never.values())
    conn = sqlite3.connect(nulls.database)
    q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    assert q("SELECT COUNT(*) FROM b_sender_posting_recipient WHERE DATE_SENT IS NULL") == sum(never.values()) >= 5
    assert q("SELECT COUNT(*) FROM b_sender_posting_recipient WHERE DATE_SENT IS NULL AND STATUS NOT IN ('Y', 'W')") == 0
    for sql in ("SELECT COUNT(*) FROM b_sender_mailing_chain WHERE LINK_PARAMS IS NULL",
                "SELECT COUNT(*) FROM b_sender_mailing_chain WHERE TITLE IS NULL OR trim(TITLE) = ''",
                "SELECT COUNT(*) FROM b_sender_mailing_chain WHERE SUBJECT IS NULL",
                "SELECT COUNT(*) FROM b_sender_mailing_chain WHERE ERROR_MESSAGE IS NULL",
                "SELECT COUNT(*) FROM b_sender_contact WHERE TYPE_ID = 1 AND (NAME IS NULL OR trim(NAME) = '')",
                "SELECT COUNT(*) FROM b_sender_contact WHERE IP = ''",
                "SELECT COUNT(*) FROM b_sender_posting_recipient WHERE FIELDS = ''",
                "SELECT COUNT(*) FROM b_crm_contact WHERE NAME IS NULL OR trim(NAME) = ''",
                "SELECT COUNT(*) FROM b_crm_deal WHERE OPPORTUNITY IS NULL AND STAGE_SEMANTIC_ID <> 'S'",
                "SELECT COUNT(*) FROM b_sale_order WHERE PAYED = 'Y' AND DATE_PAYED IS NULL"):
        assert q(sql) > 0, sql
    assert q("SELECT COUNT(*) FROM b_crm_deal WHERE OPPORTUNITY IS NULL AND STAGE_SEMANTIC_ID = 'S'") == 0
    assert column_type_violations(conn) == []
    plain_conn = sqlite3.connect(plain.database)
    for table in ("b_sender_posting_read", "b_sender_posting_click", "b_sale_order_props_value", "b_crm_utm"):
        assert table_dump(conn, table) == table_dump(plain_conn, table), table
    plain_conn.close()
    conn.close()


def test_nulls_are_off_by_default_and_on_with_the_flag(tmp_path):
    import argparse

    from mailaudit.demo.cli import add_demo_db_arguments, run_demo_db

    parser = argparse.ArgumentParser()
    add_demo_db_arguments(parser)
    args = parser.parse_args(["--sqlite", str(tmp_path / "d.sqlite"), "--contacts", "500", "--world", "cold", "--nulls"])
    assert run_demo_db(args) == 0
    truth = json.loads((tmp_path / "d.truth.json").read_text(encoding="utf-8"))
    assert truth["world"]["name"] == "cold" and "realistic_nulls" in truth
    assert parser.parse_args(["--sqlite", "x"]).nulls is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--sqlite", "x", "--world", "mars"])


def test_index_metadata_of_both_layouts_is_the_older_set():
    for layout in ("current", "legacy"):
        md = bitrix_metadata(layout)
        names = {t: {tuple(c.key for c in ix.columns) for ix in md.tables[t].indexes}
                 for t in ("b_sender_posting_read", "b_sender_posting_click", "b_sender_posting_unsub")}
        assert names == {"b_sender_posting_read": READ_INDEXES, "b_sender_posting_click": PAIR_ONLY,
                         "b_sender_posting_unsub": PAIR_ONLY}
