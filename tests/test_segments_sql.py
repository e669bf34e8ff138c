"""Segments analysis on a constructed Bitrix database: SQL counts, dimensions, mix effect."""

from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import URL, select

from mailaudit import emails
from mailaudit.analyses import segments as seg
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.period import Period
from mailaudit.sources.db import create_readonly_engine, sqlite_url
from segments_fixtures import PROMO_CLICK_RATIO, build_mix_effect_db

PERIOD = Period(date(2026, 1, 1), date(2026, 3, 31))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = build_mix_effect_db(tmp_path_factory.mktemp("segments") / "mix.sqlite", contacts=3000, postings=16)
    engine = create_readonly_engine(sqlite_url(path))
    with engine.connect() as conn:
        yield conn, reflect_schema(conn)
    engine.dispose()


@pytest.fixture(scope="module")
def result(source):
    conn, schema = source
    return seg.analyse_segments(conn, schema, PERIOD, seg.SegmentSettings(min_delivered=200))


def _rows(conn, schema) -> pd.DataFrame:
    """Recipient rows recomputed in pandas, the independent check of the SQL counts: opened, clicked,
    and complained (the row is its contact's latest delivered send at or before an e-mail complaint)."""
    t = {name: schema.table(name) for name in ("b_sender_posting_recipient", "b_sender_posting_read",
                                               "b_sender_posting_click", "b_sender_contact_list", "b_sender_list")}
    recipients = pd.DataFrame(conn.execute(select(t["b_sender_posting_recipient"])).mappings().all())
    reads = set(conn.execute(select(t["b_sender_posting_read"].c.RECIPIENT_ID)).scalars())
    clicks = set(conn.execute(select(t["b_sender_posting_click"].c.RECIPIENT_ID)).scalars())
    recipients["opened"] = recipients["ID"].isin(reads)
    recipients["clicked"] = recipients["ID"].isin(clicks)
    abuse = pd.DataFrame(conn.execute(select(schema.table("b_sender_abuse"))).mappings().all())
    delivered = recipients[recipients["STATUS"] == "N"].sort_values(["DATE_SENT", "ID"])
    complained = set()
    for complaint in abuse[abuse["CONTACT_TYPE_ID"] == 1].itertuples():
        before = delivered[(delivered["CONTACT_ID"] == complaint.CONTACT_ID)
                           & (delivered["DATE_SENT"] <= complaint.DATE_INSERT)]
        if len(before):
            complained.add(before["ID"].iloc[-1])
    recipients["complained"] = recipients["ID"].isin(complained)
    return recipients


def _list_members(conn, schema, name) -> set:
    link, book = schema.table("b_sender_contact_list"), schema.table("b_sender_list")
    stmt = select(link.c.CONTACT_ID).join(book, book.c.ID == link.c.LIST_ID).where(book.c.NAME == name)
    return set(conn.execute(stmt).scalars())


def test_segment_counts_equal_a_recount_of_recipient_rows(source, result):
    conn, schema = source
    rows = _rows(conn, schema)
    assert 0 < rows["complained"].sum() < (rows["STATUS"] == "E").sum()
    for name in ("VIP", "Promo", "Newsletter"):
        attempted = rows[rows["CONTACT_ID"].isin(_list_members(conn, schema, name))]
        members = attempted[attempted["STATUS"] == "N"]
        shown = result.metrics.set_index(["dimension", "segment"]).loc[("list", name)]
        assert shown["delivered"] == len(members)
        assert shown["contacts"] == members["CONTACT_ID"].nunique()
        assert shown["open_rate"] == pytest.approx(members["opened"].mean())
        assert shown["click_rate"] == pytest.approx(members["clicked"].mean())
        assert shown["ctor"] == pytest.approx(members.loc[members["opened"], "clicked"].mean())
        assert shown["complaint_rate"] == pytest.approx(members["complained"].mean())
        assert shown["error_rate"] == pytest.approx((attempted["STATUS"] == "E").mean())
        low, high = shown["error_rate_ci"]
        assert low < shown["error_rate"] < high


def test_rate_intervals_are_wider_than_row_level_wilson(result):
    """Engagement is contact-specific: the contact-clustered interval must be wider."""
    from statsmodels.stats.proportion import proportion_confint

    row = result.metrics.set_index(["dimension", "segment"]).loc[("list", "VIP")]
    low, high = row["open_rate_ci"]
    plain = proportion_confint(row["open_rate"] * row["delivered"], row["delivered"], method="wilson")
    assert low < plain[0] and high > plain[1] and low < row["open_rate"] < high


def test_mix_effect_is_not_significant_within_postings(result):
    vip = result.differences[(result.differences["segment"] == "VIP")
                             & (result.differences["metric"] == "open_rate")].iloc[0]
    assert vip["raw_ratio"] > 1.25 and vip["raw_p_adjusted"] < 0.05
    assert not vip["significant"] and vip["mix_effect"]
    assert vip["ci"][0] < 1.0 < vip["ci"][1]


def test_planted_click_effect_is_found_with_an_interval_covering_it(result):
    promo = result.differences[(result.differences["segment"] == "Promo")
                               & (result.differences["metric"] == "ctor")].iloc[0]
    assert promo["significant"] and not promo["mix_effect"]
    assert promo["ci"][0] <= PROMO_CLICK_RATIO <= promo["ci"][1]


def test_segment_holding_every_contact_is_shown_but_not_tested(result):
    newsletter = result.metrics.set_index(["dimension", "segment"]).loc[("list", "Newsletter")]
    assert not newsletter["tested"]
    assert "Newsletter" not in set(result.differences["segment"])


def test_figures_follow_the_contract(result):
    figures = result.figures
    vip = figures["dimensions"]["list"]["VIP"]
    assert set(vip) >= {"delivered", "open_rate", "open_rate_ci", "click_rate", "click_rate_ci", "ctor", "unsub_rate"}
    for difference in figures["differences"]:
        assert set(difference) >= {"dimension", "metric", "segment", "versus", "ratio", "p_adjusted", "significant", "ci"}
        assert difference["metric"] in seg.RATE_METRICS


def test_benjamini_hochberg_flags_at_least_what_holm_flags(source):
    conn, schema = source
    lists = ["list"]
    holm = seg.analyse_segments(conn, schema, PERIOD, seg.SegmentSettings(dimensions=lists, min_delivered=200))
    bh = seg.analyse_segments(conn, schema, PERIOD, seg.SegmentSettings(dimensions=lists, min_delivered=200,
                                                                        correction="fdr_bh"))
    assert (bh.differences["p_value"] == holm.differences["p_value"]).all()
    assert (bh.differences["p_adjusted"] <= holm.differences["p_adjusted"] + 1e-12).all()
    assert bh.differences["significant"].sum() >= holm.differences["significant"].sum()
    assert set(bh.differences["correction"]) == {"fdr_bh"}


def test_provider_labels_in_sql_match_emails_module(source):
    conn, schema = source
    addresses = ["a@gmail.com", "b@GoogleMail.com", "c@bk.ru", "d@ya.ru", "e@icloud.com", "f@firm.ru",
                 "g@outlook.com", "h@rambler.ru", "i@notgmail.com", "j@x@gmail.com", "k@gmail.com@firm.ru",
                 "no-at-sign", ""]
    from sqlalchemy import literal, union_all

    rows = union_all(*(select(literal(a).label("address")) for a in addresses)).subquery()
    labels = conn.execute(select(rows.c.address, seg._provider_label(rows.c.address, schema.dialect))).all()
    assert {a: label for a, label in labels} == {a: emails.provider_of_domain(emails.domain_of(a)) for a in addresses}


def test_tenure_cutoffs_measure_age_at_period_end_in_365_day_years():
    assert seg.tenure_cutoffs(Period(date(2025, 10, 1), date(2026, 9, 30))) == [
        datetime(2025, 10, 1), datetime(2024, 10, 1), datetime(2023, 10, 2)]     # 2024 has 366 days


def test_tenure_bands_of_the_contacts(source):
    conn, schema = source
    members = pd.DataFrame(conn.execute(seg.membership(schema, seg.segment_dimension(schema, "tenure", PERIOD))).all(),
                           columns=["contact_id", "segment"])
    contact = schema.table("b_sender_contact")
    inserted = dict(conn.execute(select(contact.c.ID, contact.c.DATE_INSERT)).all())
    end = pd.Timestamp(PERIOD.end_exclusive)
    for contact_id, band in members.itertuples(index=False):
        age_days = (end - pd.Timestamp(inserted[contact_id])) / pd.Timedelta(days=1)
        assert band == seg.TENURE_BANDS[min(int(age_days // 365), 3)]


def test_custom_dimension_is_validated_against_the_schema(source):
    conn, schema = source
    with pytest.raises(seg.DimensionError, match="no column"):
        seg.segment_dimension(schema, "x", PERIOD, {"table": "b_sender_contact", "column": "NOPE", "name": "x"})
    with pytest.raises(seg.DimensionError, match="not a known"):
        seg.segment_dimension(schema, "x", PERIOD, {"table": "users; drop", "column": "ID", "name": "x"})
    with pytest.raises(seg.DimensionError, match="CONTACT_ID"):
        seg.segment_dimension(schema, "x", PERIOD, {"table": "b_sender_list", "column": "NAME", "name": "x"})


def test_custom_dimension_from_a_contact_column(source):
    conn, schema = source
    settings = seg.SegmentSettings(dimensions=[], min_delivered=200,
                                   custom=[{"table": "b_sender_contact", "column": "AGENT", "name": "agent_code"}])
    custom = seg.analyse_segments(conn, schema, PERIOD, settings)
    assert set(custom.metrics["dimension"]) == {"agent_code"}
    assert custom.metrics["delivered"].sum() == (_rows(conn, schema)["STATUS"] == "N").sum()


def test_crm_source_matches_trimmed_lower_case_email_and_leaves_other_contacts_out(result):
    crm = result.metrics[result.metrics["dimension"] == "crm_source"].set_index("segment")
    assert list(crm.index) == ["WEB"] and crm.loc["WEB", "contacts"] == 1


def _figures_on(url) -> dict:
    build_mix_effect_db(url, contacts=600, postings=8)
    engine = create_readonly_engine(url)
    with engine.connect() as conn:
        figures = seg.analyse_segments(conn, reflect_schema(conn), PERIOD, seg.SegmentSettings(min_delivered=50)).figures
    engine.dispose()
    return figures


@pytest.fixture(scope="module")
def sqlite_figures(tmp_path_factory):
    return _figures_on(URL.create("sqlite", database=str(tmp_path_factory.mktemp("small") / "small.sqlite")))


def _assert_same_figures(figures, reference):
    assert figures["dimensions"].keys() == reference["dimensions"].keys()
    for dimension, segments in reference["dimensions"].items():
        assert figures["dimensions"][dimension].keys() == segments.keys()
        for segment, values in segments.items():
            for key in ("delivered", "contacts", "open_rate", "click_rate", "ctor", "unsub_rate", "complaint_rate",
                        "error_rate"):
                assert figures["dimensions"][dimension][segment][key] == pytest.approx(values[key], nan_ok=True)
            assert figures["dimensions"][dimension][segment]["open_rate_ci"] == pytest.approx(values["open_rate_ci"], nan_ok=True)
    got = {(d["dimension"], d["metric"], d["segment"]): d for d in figures["differences"]}
    want = {(d["dimension"], d["metric"], d["segment"]): d for d in reference["differences"]}
    assert got.keys() == want.keys()
    for key, difference in want.items():
        assert got[key]["ratio"] == pytest.approx(difference["ratio"], rel=1e-9)
        assert got[key]["p_adjusted"] == pytest.approx(difference["p_adjusted"], rel=1e-6, abs=1e-12)


@pytest.mark.mariadb
def test_same_figures_on_mariadb(mariadb_url, sqlite_figures):
    _assert_same_figures(_figures_on(mariadb_url), sqlite_figures)


@pytest.mark.postgres
def test_same_figures_on_postgresql(postgres_url, sqlite_figures):
    _assert_same_figures(_figures_on(postgres_url), sqlite_figures)


def test_complaint_and_error_rates_are_compared_within_postings_with_contact_clustered_intervals(result):
    """Dead addresses fail every send: errors are contact-specific, so their interval must be far
    wider than a row-level Wilson interval, and VIP (dead addresses drawn independently) is no different."""
    from statsmodels.stats.proportion import proportion_confint

    vip = result.differences.set_index(["segment", "metric"])
    for metric in ("complaint_rate", "error_rate"):
        row = vip.loc[("VIP", metric)]
        assert row["ci"][0] < 1.0 < row["ci"][1] and not row["significant"]
    shown = result.metrics.set_index(["dimension", "segment"]).loc[("list", "VIP")]
    attempted = round(shown["delivered"] / (1 - shown["error_rate"]))
    plain = proportion_confint(shown["error_rate"] * attempted, attempted, method="wilson")
    assert (shown["error_rate_ci"][1] - shown["error_rate_ci"][0]) > 2 * (plain[1] - plain[0])
