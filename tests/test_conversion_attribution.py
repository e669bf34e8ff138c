"""The last-touch rule on hand-built timelines, in tiny Bitrix-shaped databases, analysed from their snapshots.

Period: January 2026; windows: open 5 days, click 30 days (the contract's defaults).
Each contact below is one story; the expected attribution is written next to it.
"""

from __future__ import annotations

import os
from datetime import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import snapshot_model
from sqlalchemy import create_engine, insert
from test_conversion_demo import SERVER_LAYOUTS
from sqlalchemy.engine import make_url

from mailaudit.analyses.conversion import (
    DAY,
    SENSITIVITY_DAYS,
    analyse_conversion,
    attribute,
    cohort_labels,
    cohort_windows,
    contact_weights,
    sort_pairs,
    standardised_baseline,
    window_sensitivity,
)
from mailaudit.bitrix.codes import CrmEntityType, CrmMultiField, RecipientStatus, SenderContactType
from mailaudit.bitrix.tables import bitrix_metadata
from mailaudit.period import Period

JANUARY = Period(dt(2026, 1, 1).date(), dt(2026, 1, 31).date())


class Timeline:
    """Collects rows for a tiny portal: one mailing, one posting per send date."""

    def __init__(self, layout: str = "current"):
        self.layout = layout
        self.rows: dict[str, list[dict]] = {}
        self._ids: dict[str, int] = {}
        self.add("b_sender_mailing", ID=1, NAME="Newsletter", ACTIVE="Y")
        self.add("b_sender_mailing_chain", ID=1, MAILING_ID=1, MESSAGE_CODE="mail", MESSAGE_ID="5",
                 TITLE="January news")

    def add(self, table: str, **row) -> int:
        if "ID" not in row and table not in ("b_crm_deal_contact", "b_crm_utm"):
            row["ID"] = self._ids[table] = self._ids.get(table, 0) + 1
        self.rows.setdefault(table, []).append(row)
        return row.get("ID", 0)

    def contact(self, cid: int, user_id: int | None = None, created: dt = dt(2025, 1, 1)) -> int:
        if self.layout == "legacy":
            return self.add("b_sender_contact", ID=cid, EMAIL=f"c{cid}@example.org", USER_ID=user_id,
                            DATE_INSERT=created)
        return self.add("b_sender_contact", ID=cid, TYPE_ID=int(SenderContactType.EMAIL),
                        CODE=f"c{cid}@example.org", USER_ID=user_id, DATE_INSERT=created)

    def send(self, contact: int, sent: dt, rid: int | None = None, status: str = RecipientStatus.SENT,
             opened: dt | None = None, clicked: dt | None = None, posting: int | None = None) -> int:
        """A recipient row, in a new posting unless `posting` is given."""
        if posting is None:
            posting = self.add("b_sender_posting", MAILING_ID=1, MAILING_CHAIN_ID=1, STATUS="S", DATE_SENT=sent)
        extra = {"ID": rid} if rid is not None else {}
        who = {"EMAIL": f"c{contact}@example.org"} if self.layout == "legacy" else {"CONTACT_ID": contact}
        rid = self.add("b_sender_posting_recipient", POSTING_ID=posting, STATUS=status, DATE_SENT=sent,
                       **who, **extra)
        if opened:
            self.add("b_sender_posting_read", POSTING_ID=posting, RECIPIENT_ID=rid, DATE_INSERT=opened)
        if clicked:
            self.add("b_sender_posting_click", POSTING_ID=posting, RECIPIENT_ID=rid, DATE_INSERT=clicked,
                     URL="https://shop.example.org/")
        return rid

    def order(self, at: dt, price: float, user_id: int = 0, crm_contact: int | None = None,
              canceled: str = "N") -> int:
        oid = self.add("b_sale_order", DATE_INSERT=at, PRICE=price, USER_ID=user_id, CANCELED=canceled,
                       CURRENCY="RUB")
        if crm_contact is not None:
            self.add("b_crm_order_contact_company", ORDER_ID=oid, ENTITY_ID=crm_contact,
                     ENTITY_TYPE_ID=int(CrmEntityType.CONTACT), IS_PRIMARY="Y")
        return oid

    def crm_contact(self, crm_id: int, *emails: str) -> None:
        self.add("b_crm_contact", ID=crm_id, DATE_CREATE=dt(2025, 1, 1), HAS_EMAIL="Y")
        for email in emails:
            self.add("b_crm_field_multi", ENTITY_ID=CrmMultiField.ENTITY_CONTACT, ELEMENT_ID=crm_id,
                     TYPE_ID=CrmMultiField.TYPE_EMAIL, VALUE_TYPE="WORK", VALUE=email)

    def build(self, path=None, url=None):
        """Write the rows into a new SQLite file at `path`, or into the empty database at `url`."""
        url = url if url is not None else sqlite_url_for(path)
        metadata = bitrix_metadata(self.layout, lowercase=url.get_backend_name() == "postgresql")
        engine = create_engine(url)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for table, rows in self.rows.items():
                columns = sorted({k for r in rows for k in r})
                conn.execute(insert(metadata.tables[table]), [{c: r.get(c) for c in columns} for r in rows])
        engine.dispose()
        return path if path is not None else url


def sqlite_url_for(path):
    return make_url(f"sqlite:///{path}")


def snapshot(source, folder: Path):
    """The model of a snapshot, for January, of a timeline's SQLite file (a path) or server database (a URL)."""
    url = source if hasattr(source, "drivername") else None
    database = {"url_env": "TIMELINE_DB"} if url is not None else {"sqlite": str(source)}
    params = folder / f"{Path(str(source)).stem if url is None else 'server'}.yaml"
    params.write_text(yaml.safe_dump({"client": "Timeline", "database": database,
                                      "period": {"start": "2026-01-01", "end": "2026-01-31"}}), encoding="utf-8")
    if url is not None:
        os.environ["TIMELINE_DB"] = url.render_as_string(hide_password=False)
    try:
        return snapshot_model(params, params.with_suffix(".duckdb"))
    finally:
        os.environ.pop("TIMELINE_DB", None)


def run(model, **kwargs):
    """Analyse January on a timeline's model."""
    return analyse_conversion(model, JANUARY, replicates=20, **kwargs)


def analysed(timeline: "Timeline", folder: Path, name: str, **kwargs):
    """Build the timeline into a SQLite file, snapshot it and analyse January."""
    model = snapshot(timeline.build(folder / f"{name}.sqlite"), folder)
    try:
        return run(model, **kwargs)
    finally:
        model.close()


def attributed_recipients(result) -> dict[int, float]:
    """recipient_id -> attributed revenue, from the per-send table."""
    return dict(zip(result.converted_sends["recipient_id"], result.converted_sends["revenue"]))


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    """The model of the stories' snapshot."""
    folder = tmp_path_factory.mktemp("conversion")
    model = snapshot(story_timeline().build(folder / "stories.sqlite"), folder)
    yield model
    model.close()


@pytest.fixture(scope="module")
def result(stories):
    """The analysis of the stories with the default settings."""
    return run(stories)


def story_timeline(layout: str = "current") -> Timeline:
    t = Timeline(layout)
    # 1. tie: two sends at the same second, both clicked -> the higher recipient ID wins
    t.contact(1)
    t.send(1, dt(2026, 1, 3, 9), rid=101, clicked=dt(2026, 1, 3, 10))
    t.send(1, dt(2026, 1, 3, 9), rid=102, clicked=dt(2026, 1, 3, 11))
    t.crm_contact(901, "c1@example.org")
    t.order(dt(2026, 1, 6), 100.0, crm_contact=901)
    # 2. click window edge: exactly 30 x 24 h after the click -> attributed
    t.contact(2)
    t.send(2, dt(2026, 1, 5, 9), rid=201, opened=dt(2026, 1, 5, 10), clicked=dt(2026, 1, 5, 10))
    t.crm_contact(902, "c2@example.org")
    t.order(dt(2026, 2, 4, 10), 200.0, crm_contact=902)
    # 3. one second past the click window (and far past the open window) -> not attributed
    t.contact(3)
    t.send(3, dt(2026, 1, 5, 9), rid=301, opened=dt(2026, 1, 5, 10), clicked=dt(2026, 1, 5, 10))
    t.crm_contact(903, "c3@example.org")
    t.order(dt(2026, 2, 4, 10, 0, 1), 300.0, crm_contact=903)
    # 4. open window edge: exactly 5 x 24 h after an open (no click) -> attributed by the open branch
    t.contact(4)
    t.send(4, dt(2026, 1, 10, 9), rid=401, opened=dt(2026, 1, 10, 12))
    t.crm_contact(904, "c4@example.org")
    t.order(dt(2026, 1, 15, 12), 400.0, crm_contact=904)
    # 5. several sends: a clicked older send beats a later opened-only send and an untouched one
    t.contact(5)
    t.send(5, dt(2026, 1, 2, 9), rid=501, clicked=dt(2026, 1, 3, 9))
    t.send(5, dt(2026, 1, 10, 9), rid=502, opened=dt(2026, 1, 11, 9))
    t.send(5, dt(2026, 1, 12, 9), rid=503)
    t.crm_contact(905, "c5@example.org")
    t.order(dt(2026, 1, 14), 500.0, crm_contact=905)
    # 6. several clicked sends: the latest send wins even though the earlier one was clicked later
    t.contact(6)
    t.send(6, dt(2026, 1, 2, 9), rid=601, clicked=dt(2026, 1, 20, 9))
    t.send(6, dt(2026, 1, 8, 9), rid=602, clicked=dt(2026, 1, 9, 9))
    t.crm_contact(906, "c6@example.org")
    t.order(dt(2026, 1, 21), 600.0, crm_contact=906)
    # 7. a cancelled order is never attributed
    t.contact(7)
    t.send(7, dt(2026, 1, 4, 9), rid=701, clicked=dt(2026, 1, 4, 10))
    t.crm_contact(907, "c7@example.org")
    t.order(dt(2026, 1, 5), 700.0, crm_contact=907, canceled="Y")
    # 8. an order linked only through USER_ID
    t.contact(8, user_id=5008)
    t.send(8, dt(2026, 1, 6, 9), rid=801, clicked=dt(2026, 1, 6, 10))
    t.order(dt(2026, 1, 7), 800.0, user_id=5008)
    # 9. CRM e-mail written with capitals and spaces still matches the contact's CODE
    t.contact(9)
    t.send(9, dt(2026, 1, 7, 9), rid=901, clicked=dt(2026, 1, 7, 10))
    t.crm_contact(909, "  C9@Example.ORG ")
    t.order(dt(2026, 1, 8), 900.0, crm_contact=909)
    # 10. a later send after the period takes the order: nothing counts for January
    t.contact(10)
    t.send(10, dt(2026, 1, 20, 9), rid=1001, clicked=dt(2026, 1, 21, 9))
    t.send(10, dt(2026, 2, 2, 9), rid=1002, clicked=dt(2026, 2, 2, 10))
    t.crm_contact(910, "c10@example.org")
    t.order(dt(2026, 2, 3), 1000.0, crm_contact=910)
    # 11 + 14. one CRM contact with two e-mails (two mailing contacts, far apart in ID): the latest
    # send of either contact wins, even when they are read in different contact-ID ranges
    t.contact(11)
    t.contact(14)
    t.send(11, dt(2026, 1, 5, 9), rid=1101, clicked=dt(2026, 1, 5, 10))
    t.send(14, dt(2026, 1, 6, 9), rid=1401, clicked=dt(2026, 1, 7, 10))
    t.crm_contact(911, "c11@example.org", "c14@example.org")
    t.order(dt(2026, 1, 10), 1100.0, crm_contact=911)
    # 12. a click after the order does not count; touch at the same second does
    t.contact(12)
    t.send(12, dt(2026, 1, 9, 9), rid=1201, clicked=dt(2026, 1, 12, 9))
    t.crm_contact(912, "c12@example.org")
    t.order(dt(2026, 1, 11), 1200.0, crm_contact=912)
    t.contact(13)
    t.send(13, dt(2026, 1, 9, 9), rid=1301, clicked=dt(2026, 1, 9, 12))
    t.crm_contact(913, "c13@example.org")
    t.order(dt(2026, 1, 9, 12), 1300.0, crm_contact=913)
    # 15. a failed send (STATUS E) is not delivered and cannot be attributed; nor is an SMS
    t.contact(15, user_id=5015)
    t.send(15, dt(2026, 1, 9, 9), rid=1501, status=RecipientStatus.ERROR)
    t.add("b_sender_mailing_chain", ID=2, MAILING_ID=1, MESSAGE_CODE="sms", TITLE="SMS")
    sms = t.add("b_sender_posting", MAILING_ID=1, MAILING_CHAIN_ID=2, STATUS="S")
    t.send(15, dt(2026, 1, 9, 9), rid=1502, posting=sms, clicked=dt(2026, 1, 9, 10))
    t.order(dt(2026, 1, 10), 10.0, user_id=5015)
    # 16. an order with no buyer at all, and one whose CRM contact has no e-mail
    t.order(dt(2026, 1, 9), 50.0)
    t.add("b_crm_contact", ID=999, DATE_CREATE=dt(2025, 1, 1))
    t.order(dt(2026, 1, 9), 60.0, crm_contact=999)
    # follow-up: a CRM activity a day after contact 2's click, an open deal two days after contact 3's,
    # and an activity 4 days after contact 4's open (too late for a 3-day follow-up)
    t.add("b_crm_act", TYPE_ID=4, OWNER_TYPE_ID=int(CrmEntityType.CONTACT), OWNER_ID=902, CREATED=dt(2026, 1, 6, 10))
    t.add("b_crm_deal", CONTACT_ID=903, STAGE_SEMANTIC_ID="P", DATE_CREATE=dt(2026, 1, 7), OPPORTUNITY=10)
    t.add("b_crm_act", TYPE_ID=4, OWNER_TYPE_ID=int(CrmEntityType.CONTACT), OWNER_ID=904, CREATED=dt(2026, 1, 14, 13))
    return t


EXPECTED = {102: 100.0, 201: 200.0, 401: 400.0, 501: 500.0, 602: 600.0, 801: 800.0, 901: 900.0,
            1401: 1100.0, 1301: 1300.0}


def test_each_story_is_attributed_as_the_rule_says(result):
    assert attributed_recipients(result) == EXPECTED


def test_contact_id_ranges_do_not_change_the_answer(stories, result):
    small = run(stories, contacts_per_chunk=2)
    assert attributed_recipients(small) == EXPECTED
    assert small.figures == result.figures


@pytest.fixture(params=[("sqlite", "legacy"), *SERVER_LAYOUTS], ids=lambda p: "-".join(p))
def stories_elsewhere(request, tmp_path):
    """The stories in another engine or sender layout, snapshotted."""
    engine, layout = request.param
    timeline = story_timeline(layout)
    if engine == "sqlite":
        source = timeline.build(tmp_path / f"stories-{layout}.sqlite")
    else:
        source = timeline.build(url=request.getfixturevalue(f"{engine}_url"))
    model = snapshot(source, tmp_path)
    yield model
    model.close()


def test_every_engine_and_layout_gives_the_same_answer(stories_elsewhere, result):
    elsewhere = run(stories_elsewhere)
    assert attributed_recipients(elsewhere) == EXPECTED
    assert elsewhere.figures == result.figures
    pd.testing.assert_frame_equal(elsewhere.followup, result.followup)


def test_figures_count_delivered_sends_of_the_period(result):
    f = result.figures
    # 18 recipient rows in January with STATUS N (1002 is February, 1501 failed, 1502 is an SMS)
    assert f["delivered"] == 18
    assert f["converted"] == len(EXPECTED)
    assert f["revenue"] == pytest.approx(sum(EXPECTED.values()))
    assert f["conversion_rate"] == pytest.approx(len(EXPECTED) / 18)
    assert f["revenue_per_recipient"] == pytest.approx(sum(EXPECTED.values()) / 18)
    assert f["source"] == "orders"
    assert f["windows"] == {"open_days": 5, "click_days": 30}
    assert [c["cohort"] for c in f["cohorts"]] == ["2026-01"]
    assert f["cohorts"][0]["converted"] == len(EXPECTED)


def test_legacy_layout_links_recipients_by_address(tmp_path):
    t = Timeline(layout="legacy")
    t.contact(1)
    t.contact(2, user_id=77)
    t.send(1, dt(2026, 1, 3, 9), rid=11, clicked=dt(2026, 1, 3, 10))
    t.send(2, dt(2026, 1, 3, 9), rid=12, opened=dt(2026, 1, 3, 10))
    t.send(2, dt(2026, 1, 20, 9), rid=13)
    t.crm_contact(901, "C1@example.org")
    t.order(dt(2026, 1, 10), 100.0, crm_contact=901)
    t.order(dt(2026, 1, 5), 50.0, user_id=77)
    # a letter to an address no contact has any more: delivered, but no purchase can reach it
    posting = t.add("b_sender_posting", MAILING_ID=1, MAILING_CHAIN_ID=1, STATUS="S", DATE_SENT=dt(2026, 1, 3, 9))
    t.add("b_sender_posting_recipient", POSTING_ID=posting, STATUS=RecipientStatus.SENT, DATE_SENT=dt(2026, 1, 3, 9),
          EMAIL="gone@example.org")
    result = analysed(t, tmp_path, "legacy")
    assert attributed_recipients(result) == {11: 100.0, 12: 50.0}
    assert result.figures["delivered"] == 4
    assert result.figures["converted"] == 2


def test_won_deals_stand_in_when_there_is_no_store(tmp_path):
    t = Timeline()
    t.contact(1)
    t.contact(2)
    t.send(1, dt(2026, 1, 3, 9), rid=11, clicked=dt(2026, 1, 3, 10))
    t.send(2, dt(2026, 1, 3, 9), rid=12, clicked=dt(2026, 1, 3, 10))
    t.crm_contact(901, "c1@example.org")
    t.crm_contact(902, "c2@example.org")
    # won through the deal-contact link, dated by CLOSEDATE; a lost deal and an open one do not count
    won = t.add("b_crm_deal", STAGE_SEMANTIC_ID="S", DATE_CREATE=dt(2025, 12, 1), CLOSEDATE=dt(2026, 1, 9),
                OPPORTUNITY=700)
    t.add("b_crm_deal_contact", DEAL_ID=won, CONTACT_ID=901, IS_PRIMARY="Y")
    t.add("b_crm_deal", STAGE_SEMANTIC_ID="F", CONTACT_ID=902, DATE_CREATE=dt(2026, 1, 4), CLOSEDATE=dt(2026, 1, 5),
          OPPORTUNITY=300)
    t.add("b_crm_deal", STAGE_SEMANTIC_ID="P", CONTACT_ID=902, DATE_CREATE=dt(2026, 1, 4), OPPORTUNITY=300)
    result = analysed(t, tmp_path, "deals")
    assert result.figures["source"] == "deals"
    assert attributed_recipients(result) == {11: 700.0}
    assert result.figures["linking"]["won deals"] == 1


def test_baseline_compares_each_posting_with_comparable_contacts_not_in_it(tmp_path):
    t = Timeline()
    for cid in (1, 2, 3, 5):
        t.contact(cid, user_id=100 + cid)
    t.contact(4, created=dt(2026, 1, 15))                       # joined after both postings
    first = t.add("b_sender_posting", MAILING_ID=1, MAILING_CHAIN_ID=1, STATUS="S")
    second = t.add("b_sender_posting", MAILING_ID=1, MAILING_CHAIN_ID=1, STATUS="S")
    rid = t.send(5, dt(2026, 1, 2, 9), posting=first)
    t.add("b_sender_posting_unsub", POSTING_ID=first, RECIPIENT_ID=rid, DATE_INSERT=dt(2026, 1, 3))
    t.send(1, dt(2026, 1, 10, 9), posting=second)
    t.send(2, dt(2026, 1, 10, 9), posting=second, status=RecipientStatus.ERROR)   # targeted, not delivered
    t.order(dt(2026, 1, 12), 10.0, user_id=101)
    t.order(dt(2026, 1, 20), 10.0, user_id=103)
    base = analysed(t, tmp_path, "baseline").figures["baseline"]
    # first posting: mailed 5 (no order); not mailed 1, 2, 3 (1 and 3 buy within 30 days)
    # second: mailed 1 (buys); 2 was targeted, 5 had unsubscribed, 4 did not exist yet; not mailed 3 (buys)
    assert (base["mailed"], base["not_mailed"]) == (2, 4)
    assert base["mailed_rate"] == pytest.approx(1 / 2)
    assert base["baseline_rate"] == pytest.approx(3 / 4)
    assert base["lift"] == pytest.approx(2 / 3)


def test_click_only_variant_drops_open_attributions(result):
    f = result.figures
    # 401 converts only through its open; every other conversion had a click in reach
    assert f["click_only"]["converted"] == len(EXPECTED) - 1
    assert f["click_only"]["revenue"] == pytest.approx(sum(EXPECTED.values()) - 400.0)


def test_linking_tally_names_cancelled_and_unlinked_orders(result):
    linking = result.figures["linking"]
    assert linking["cancelled"] == 1
    assert linking["qualifying"] == 15
    assert linking["linked via USER_ID"] == 2
    assert linking["unlinked: no CRM contact and no user"] == 1
    assert linking["unlinked: CRM contact without e-mail"] == 1
    assert linking["linked"] == 13


def test_followup_gap_counts_engaged_recipients_nobody_acted_on(result):
    followup = result.followup
    row = followup.iloc[0]
    # 17 opened/clicked January sends; followed up within 3 days of the first touch: eight by an
    # order (101, 102, 502, 601, 801, 901, 1401, 1301), 201 by a CRM activity, 301 by a new deal
    assert (row["engaged"], row["without_followup"]) == (17, 7)
    assert row["in_crm"] == 16          # contact 8 reaches the shop only as a site user


def test_window_sensitivity_grows_with_the_window(result):
    s = result.sensitivity
    assert list(s["window_days"]) == list(range(1, 31))
    at = s.set_index("window_days")
    assert at.loc[30, "last_touch_revenue"] == pytest.approx(sum(EXPECTED.values()))
    # both windows 5 days: 502's open takes contact 5's order, 601's late click takes contact 6's
    assert at.loc[5, "last_touch_revenue"] == pytest.approx(100 + 400 + 500 + 600 + 800 + 900 + 1100 + 1300)
    assert s.loc[s["window_days"] == 30, "click_only_revenue"].item() == pytest.approx(
        sum(EXPECTED.values()) - 400.0)


def test_window_sensitivity_applies_the_rule_at_every_window():
    rng = np.random.default_rng(7)
    n = 3000
    lags = lambda: np.where(rng.random(n) < 0.5, np.nan, rng.integers(0, 31 * DAY, n).astype(float))
    pairs = sort_pairs(pd.DataFrame({
        "purchase_id": rng.integers(0, 400, n), "recipient_id": np.arange(n), "contact_id": 1,
        "sent_at": rng.integers(0, 50, n) * DAY, "click_lag": lags(), "open_lag": lags()}))
    pairs = pairs.drop_duplicates(["purchase_id", "recipient_id"]).reset_index(drop=True)
    value = (pairs["purchase_id"] * 10 + 5).to_numpy(float)
    counted = (pairs["sent_at"] < 30 * DAY).to_numpy()
    found = window_sensitivity(pairs, value, counted)
    for i, days in enumerate(SENSITIVITY_DAYS):
        for column, opens in ((0, days), (2, None)):
            chosen = attribute(pairs, days, opens)
            chosen = chosen[chosen["sent_at"] < 30 * DAY]
            assert found[i, column] == pytest.approx((chosen["purchase_id"] * 10 + 5).sum()), (days, opens)
            assert found[i, column + 1] == len(chosen), (days, opens)


def test_attribute_prefers_click_then_latest_send():
    pairs = pd.DataFrame({
        "purchase_id": [1, 1, 1],
        "recipient_id": [10, 11, 12],
        "contact_id": [5, 5, 5],
        "sent_at": [100, 200, 300],
        "click_lag": [1000.0, float("nan"), float("nan")],
        "open_lag": [1000.0, 500.0, float("nan")],
    })
    assert attribute(pairs, click_days=30, open_days=5)["recipient_id"].tolist() == [10]
    # the click is out of a zero-day window; the open of send 11 is within 1 day
    assert attribute(pairs, click_days=0, open_days=1)["recipient_id"].tolist() == [11]
    assert attribute(pairs, click_days=0, open_days=None).empty


def test_cohort_labels_month_and_iso_week():
    times = pd.Series(pd.to_datetime(["2026-01-01 10:00", "2025-12-29 00:00", "2026-03-31 23:59"]))
    assert cohort_labels(times, "month").tolist() == ["2026-01", "2025-12", "2026-03"]
    # 2026-01-01 is in ISO week 1 of 2026, as is Monday 2025-12-29
    assert cohort_labels(times, "week").tolist() == ["2026-W01", "2026-W01", "2026-W14"]
    weeks = cohort_windows(JANUARY, "week")
    assert weeks["cohort"].tolist() == ["2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05"]
    assert weeks["start"].iloc[0] == pd.Timestamp("2026-01-01")


def test_bootstrap_weights_depend_on_the_contact_only():
    a = contact_weights([1, 2, 3], 50)
    b = contact_weights([3, 2, 1], 50)
    assert (a[0] == b[2]).all() and (a[2] == b[0]).all()
    big = contact_weights(range(20000), 10)
    assert big.mean() == pytest.approx(1.0, abs=0.02)
    assert big.var() == pytest.approx(1.0, abs=0.05)


def test_bootstrap_weights_invert_the_poisson_distribution_function():
    from scipy.stats import poisson

    from mailaudit.analyses.conversion import _mix

    ids = np.random.default_rng(5).integers(0, 2 ** 40, 3000).astype(np.uint64)
    reps = (np.arange(64, dtype=np.uint64) + np.uint64(11)) * np.uint64(0xD1B54A32D192ED03)
    uniform = (_mix(ids[:, None], reps[None, :]) >> np.uint64(11)).astype(np.float64) / 2.0 ** 53
    expected = np.searchsorted(poisson.cdf(np.arange(30), 1.0), uniform, side="right")
    assert (contact_weights(ids, 64, seed=11) == expected).all()


def test_weighted_sums_are_exact_in_either_precision():
    from mailaudit.analyses.conversion import _Weights

    weights = _Weights(np.arange(1, 2001), 50, seed=3)
    exact = lambda counts: weights.matrix.astype(np.int64).T @ counts
    small = np.random.default_rng(1).integers(0, 4, (2000, 7))
    large = small * 40_001 + 1          # sums beyond 2^24: single precision would round them
    assert (weights.sums(small) == exact(small)).all()
    assert (weights.sums(large) == exact(large)).all()
    assert (weights.sums(small[:10], np.arange(10)) == weights.matrix[:10].astype(np.int64).T @ small[:10]).all()


def test_standardised_baseline_reweights_to_the_mailed_mix():
    # cell 0: not mailed 10% buy, cell 1: not mailed 50% buy; mailed contacts all in cell 1
    units = pd.DataFrame([[100, 0], [100, 50]]).to_numpy(float)
    ordered = pd.DataFrame([[10, 0], [50, 30]]).to_numpy(float)
    mailed, baseline = standardised_baseline(units, ordered)
    assert baseline == pytest.approx(0.5)
    assert mailed == pytest.approx(0.6)


def test_every_chart_draws_from_the_result(result):
    import matplotlib

    matplotlib.use("Agg")
    from mailaudit.plots import conversion as charts

    f = result.figures
    label = JANUARY.label
    figures = [
        charts.cohorts(result.cohorts, label, f["windows"]),
        charts.sensitivity(result.sensitivity, label),
        charts.cumulative(result.cumulative, label),
        charts.time_to_order(result.time_to_order, label, f["source"]),
        charts.baseline(f["baseline"], label),
        charts.followup(result.followup, label, 3),
    ]
    assert all(fig.axes for fig in figures)
    # the time-to-order curve starts at the orders placed at the same second as a send
    assert result.time_to_order["share_ordered"].is_monotonic_increasing


def test_kaplan_meier_on_grouped_times_matches_the_row_level_estimate():
    import numpy as np
    from statsmodels.duration.survfunc import SurvfuncRight

    from mailaudit.analyses.conversion import _kaplan_meier

    rng = np.random.default_rng(3)
    hours = rng.integers(1, 200, 400)
    event = rng.random(400) < 0.6
    counts: dict = {}
    for h, e in zip(hours, event):
        counts[(int(h), int(e))] = counts.get((int(h), int(e)), 0) + 1
    table, figures = _kaplan_meier(counts)
    rows = SurvfuncRight(hours / 24.0, event.astype(float))
    assert np.allclose(table["share_ordered"], 1 - rows.surv_prob)
    # Greenwood's interval (statsmodels leaves the last point, where everyone left has ordered, NaN)
    assert np.allclose((table["ci_high"] - table["share_ordered"])[:-1],
                       np.minimum(1.959963984540054 * rows.surv_prob_se, 1 - table["share_ordered"])[:-1])
    assert figures["median_days"] == pytest.approx(rows.quantile(0.5))


def utm_timeline() -> Timeline:
    t = Timeline()
    t.contact(1)
    t.send(1, dt(2026, 1, 3, 9), rid=11)
    t.add("b_sender_mailing_chain", ID=2, MAILING_ID=1, MESSAGE_CODE="mail", MESSAGE_ID="6", TITLE="No medium")
    t.add("b_sender_mailing_chain", ID=3, MAILING_ID=1, MESSAGE_CODE="mail", MESSAGE_ID="7", TITLE="January news, resent")
    for message, code, value in ((5, "utm_source", "sender"), (5, "utm_medium", "email"),
                                 (5, "utm_campaign", "news_202601"), (6, "utm_source", "sender"),
                                 (7, "utm_campaign", "NEWS_202601"), (7, "utm_source", "sender"),
                                 (7, "utm_medium", "email")):
        t.add("b_sender_message_utm", MESSAGE_ID=message, CODE=code, VALUE=value)
    deals = [  # (stage, closed, value, {UTM code: value})
        ("S", dt(2026, 1, 9), 500, {"UTM_SOURCE": "sender", "UTM_MEDIUM": "email", "UTM_CAMPAIGN": "news_202601"}),
        ("S", dt(2026, 1, 9), 300, {"UTM_SOURCE": "google", "UTM_MEDIUM": "cpc"}),
        ("S", dt(2026, 1, 19), 200, {"UTM_SOURCE": "sender", "UTM_MEDIUM": "Email", "UTM_CAMPAIGN": "other"}),
        ("S", dt(2026, 2, 2), 900, {"UTM_SOURCE": "sender", "UTM_MEDIUM": "email", "UTM_CAMPAIGN": "news_202601"}),
        ("F", dt(2026, 1, 9), 800, {"UTM_SOURCE": "sender", "UTM_MEDIUM": "email", "UTM_CAMPAIGN": "news_202601"}),
    ]
    for stage, closed, value, utm in deals:
        deal = t.add("b_crm_deal", STAGE_SEMANTIC_ID=stage, DATE_CREATE=dt(2026, 1, 2), CLOSEDATE=closed,
                     OPPORTUNITY=value)
        for code, v in utm.items():
            t.add("b_crm_utm", ENTITY_TYPE_ID=int(CrmEntityType.DEAL), ENTITY_ID=deal, CODE=code, VALUE=v)
    return t


def check_utm(result):
    # won deals closed in January with an e-mail utm_medium: 500 and 200 (the medium's case is ignored)
    assert (result.figures["utm"]["deals"], result.figures["utm"]["revenue"]) == (2, 700.0)
    letters = result.utm_letters
    # "January news" and its resend share one UTM set: one row naming both. The 500 deal matches that set
    # and "No medium" (utm_source=sender only); it is credited once, to the more specific set.
    assert dict(zip(letters["letters"], letters["revenue"])) == {"January news; January news, resent": 500.0,
                                                                 "No medium": 200.0}
    assert dict(zip(letters["letters"], letters["letter_count"])) == {"January news; January news, resent": 2,
                                                                      "No medium": 1}
    # no deal is counted twice: the rows add up to the e-mail-tagged deals they matched
    assert letters["count"].sum() == 2 and letters["revenue"].sum() == 700.0


def test_utm_tagged_deals_are_counted_and_matched_to_letters(tmp_path):
    check_utm(analysed(utm_timeline(), tmp_path, "utm"))


@pytest.mark.postgres
def test_utm_letters_join_on_postgresql(postgres_url, tmp_path):
    model = snapshot(utm_timeline().build(url=postgres_url), tmp_path)
    try:
        check_utm(run(model))
    finally:
        model.close()


def test_week_cohorts_split_the_same_sends(stories, result):
    weekly = run(stories, cohort="week").figures
    assert [c["cohort"] for c in weekly["cohorts"]] == ["2026-W01", "2026-W02", "2026-W03", "2026-W04"]
    assert sum(c["delivered"] for c in weekly["cohorts"]) == result.figures["delivered"]
    assert sum(c["converted"] for c in weekly["cohorts"]) == result.figures["converted"]
    # sends of 1-4 January fall in ISO week 1: contact 1's two, the first of contacts 5 and 6, contact 7's
    assert weekly["cohorts"][0]["delivered"] == 5


def test_a_machine_click_attributes_no_order(tmp_path):
    """A click 20 s after sending is a scanner's (no person receives, opens and clicks that fast): the order
    that follows is not the mailing's. The same story with a person's click two hours later is."""
    t = Timeline()
    for cid, clicked in ((21, dt(2026, 1, 5, 9, 0, 20)), (22, dt(2026, 1, 5, 11))):
        t.contact(cid)
        t.send(cid, dt(2026, 1, 5, 9), rid=cid * 100 + 1, clicked=clicked)
        t.crm_contact(900 + cid, f"c{cid}@example.org")
        t.order(dt(2026, 1, 6), 100.0 * cid, crm_contact=900 + cid)
    assert attributed_recipients(analysed(t, tmp_path, "machine")) == {2201: 2200.0}
