"""Segments analysis on a constructed Bitrix database: counts in the snapshot's model, dimensions, mix effect."""

import sqlite3
from datetime import date, datetime

import pandas as pd
import pytest
from sqlalchemy import URL, create_engine, insert

from conftest import snapshot_model
from mailaudit import emails
from mailaudit.analyses import segments as seg
from mailaudit.bitrix.codes import SenderContactType
from mailaudit.bitrix.tables import bitrix_metadata
from mailaudit.period import Period
from segments_fixtures import PROMO_CLICK_RATIO, build_mix_effect_db, write_params

PERIOD = Period(date(2026, 1, 1), date(2026, 3, 31))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(path of the constructed SQLite portal, its snapshot's model)."""
    folder = tmp_path_factory.mktemp("segments")
    path = build_mix_effect_db(folder / "mix.sqlite", contacts=3000, postings=16)
    model = snapshot_model(write_params(folder / "params.yaml", {"sqlite": str(path)}), folder / "mix.duckdb")
    yield path, model
    model.close()


@pytest.fixture(scope="module")
def model(source):
    return source[1]


@pytest.fixture(scope="module")
def result(model):
    return seg.analyse_segments(model, PERIOD, seg.SegmentSettings(min_delivered=200))


def _source_table(path, query: str) -> pd.DataFrame:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return pd.read_sql_query(query, conn)


def _rows(path) -> pd.DataFrame:
    """Recipient rows recounted in pandas from the source database, the independent check of the
    model's counts: opened, clicked, and complained (the row is its contact's latest delivered send at
    or before an e-mail complaint)."""
    recipients = _source_table(path, "SELECT * FROM b_sender_posting_recipient")
    recipients["DATE_SENT"] = pd.to_datetime(recipients["DATE_SENT"])
    recipients["opened"] = recipients["ID"].isin(_source_table(path, "SELECT RECIPIENT_ID FROM b_sender_posting_read")
                                                 ["RECIPIENT_ID"])
    recipients["clicked"] = recipients["ID"].isin(_source_table(path, "SELECT RECIPIENT_ID FROM b_sender_posting_click")
                                                  ["RECIPIENT_ID"])
    abuse = _source_table(path, "SELECT * FROM b_sender_abuse")
    abuse["DATE_INSERT"] = pd.to_datetime(abuse["DATE_INSERT"])
    delivered = recipients[recipients["STATUS"] == "N"].sort_values(["DATE_SENT", "ID"])
    complained = set()
    for complaint in abuse[abuse["CONTACT_TYPE_ID"] == 1].itertuples():
        before = delivered[(delivered["CONTACT_ID"] == complaint.CONTACT_ID)
                           & (delivered["DATE_SENT"] <= complaint.DATE_INSERT)]
        if len(before):
            complained.add(before["ID"].iloc[-1])
    recipients["complained"] = recipients["ID"].isin(complained)
    return recipients


def _list_members(path, name) -> set:
    return set(_source_table(path, "SELECT l.CONTACT_ID FROM b_sender_contact_list l JOIN b_sender_list b "
                                   f"ON b.ID = l.LIST_ID WHERE b.NAME = '{name}'")["CONTACT_ID"])


def test_segment_counts_equal_a_recount_of_recipient_rows(source, result):
    path, _model = source
    rows = _rows(path)
    assert 0 < rows["complained"].sum() < (rows["STATUS"] == "E").sum()
    for name in ("VIP", "Promo", "Newsletter"):
        attempted = rows[rows["CONTACT_ID"].isin(_list_members(path, name))]
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


def test_the_gathered_sends_are_dropped_after_the_analysis(model, result):
    assert model.scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '\\_segment%' ESCAPE '\\'") == 0


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


def test_benjamini_hochberg_flags_at_least_what_holm_flags(model):
    lists = ["list"]
    holm = seg.analyse_segments(model, PERIOD, seg.SegmentSettings(dimensions=lists, min_delivered=200))
    bh = seg.analyse_segments(model, PERIOD, seg.SegmentSettings(dimensions=lists, min_delivered=200,
                                                                 correction="fdr_bh"))
    assert (bh.differences["p_value"] == holm.differences["p_value"]).all()
    assert (bh.differences["p_adjusted"] <= holm.differences["p_adjusted"] + 1e-12).all()
    assert bh.differences["significant"].sum() >= holm.differences["significant"].sum()
    assert set(bh.differences["correction"]) == {"fdr_bh"}


def test_provider_segments_are_the_model_providers_of_emails_module(tmp_path):
    addresses = ["a@gmail.com", "b@GoogleMail.com", "c@bk.ru", "d@ya.ru", "e@icloud.com", "f@firm.ru",
                 "g@outlook.com", "h@rambler.ru", "i@notgmail.com", "j@x@gmail.com", "k@gmail.com@firm.ru",
                 "no-at-sign", " L@Mail.RU "]
    path = tmp_path / "providers.sqlite"
    engine = create_engine(URL.create("sqlite", database=str(path)))
    metadata = bitrix_metadata("current")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(metadata.tables["b_sender_contact"]),
                     [{"ID": i + 1, "TYPE_ID": int(SenderContactType.EMAIL), "CODE": a} for i, a in enumerate(addresses)])
    engine.dispose()
    model = snapshot_model(write_params(tmp_path / "params.yaml", {"sqlite": str(path)}), tmp_path / "p.duckdb")
    try:
        members = seg.membership(model, seg.segment_dimension(model, "provider", PERIOD))
    finally:
        model.close()
    shown = dict(zip(members["contact_id"], members["segment"]))
    assert shown == {i + 1: emails.provider_of_domain(emails.domain_of(a.strip().lower()))
                     for i, a in enumerate(addresses)}
    assert shown[13] == "mail.ru" and shown[11] == emails.OTHER_PROVIDER


def test_tenure_cutoffs_measure_age_at_period_end_in_365_day_years():
    assert seg.tenure_cutoffs(Period(date(2025, 10, 1), date(2026, 9, 30))) == [
        datetime(2025, 10, 1), datetime(2024, 10, 1), datetime(2023, 10, 2)]     # 2024 has 366 days


def test_tenure_bands_of_the_contacts(source):
    path, model = source
    members = seg.membership(model, seg.segment_dimension(model, "tenure", PERIOD))
    contacts = _source_table(path, "SELECT ID, DATE_INSERT FROM b_sender_contact")
    inserted = dict(zip(contacts["ID"], pd.to_datetime(contacts["DATE_INSERT"])))
    end = pd.Timestamp(PERIOD.end_exclusive)
    assert len(members) == len(contacts)
    for contact_id, band in members.itertuples(index=False):
        age_days = (end - inserted[contact_id]) / pd.Timedelta(days=1)
        assert band == seg.TENURE_BANDS[min(int(age_days // 365), 3)]


def test_custom_dimension_is_validated_against_the_snapshot(model):
    with pytest.raises(seg.DimensionError, match="make a new snapshot"):
        seg.segment_dimension(model, "x", PERIOD, {"table": "b_sender_contact", "column": "NOPE", "name": "x"})
    with pytest.raises(seg.DimensionError, match="make a new snapshot"):
        seg.segment_dimension(model, "x", PERIOD, {"table": "users; drop", "column": "ID", "name": "x"})
    with pytest.raises(seg.DimensionError, match="CONTACT_ID"):
        seg.segment_dimension(model, "x", PERIOD, {"table": "b_sender_list", "column": "NAME", "name": "x"})


def test_custom_dimension_the_snapshot_lacks_asks_for_a_new_snapshot(model):
    """The snapshot read no IP column (no custom dimension asked for it): a one-line error says what to do."""
    with pytest.raises(seg.DimensionError) as error:
        seg.segment_dimension(model, "ip", PERIOD, {"table": "b_sender_contact", "column": "IP", "name": "ip"})
    message = str(error.value)
    assert "\n" not in message and "b_sender_contact.IP" in message and "mailaudit snapshot --params" in message


def test_custom_dimensions_the_source_lacks_are_named(tmp_path):
    """With the dimensions in the parameters, the snapshot records which table or column the source lacks."""
    path = build_mix_effect_db(tmp_path / "mix.sqlite", contacts=200, postings=2)
    custom = [{"table": "b_sender_contact", "column": "NOPE", "name": "nope"},
              {"table": "users; drop", "column": "ID", "name": "users"},
              {"table": "b_sender_list", "column": "NAME", "name": "list_name"}]
    params = write_params(tmp_path / "params.yaml", {"sqlite": str(path)}, segments={"custom": custom})
    model = snapshot_model(params, tmp_path / "custom.duckdb")
    try:
        errors = {}
        for item in custom:
            with pytest.raises(seg.DimensionError) as error:
                seg.segment_dimension(model, item["name"], PERIOD, item)
            errors[item["name"]] = str(error.value)
    finally:
        model.close()
    assert "table b_sender_contact has no column NOPE" in errors["nope"]
    assert "not a known Bitrix table" in errors["users"]
    assert "no CONTACT_ID column to join contacts by" in errors["list_name"]


def test_custom_dimension_from_a_contact_column(source, model):
    settings = seg.SegmentSettings(dimensions=[], min_delivered=200,
                                   custom=[{"table": "b_sender_contact", "column": "AGENT", "name": "agent_code"}])
    custom = seg.analyse_segments(model, PERIOD, settings)
    assert set(custom.metrics["dimension"]) == {"agent_code"}
    assert list(custom.metrics["segment"]) == ["0"]
    assert custom.metrics["delivered"].sum() == (_rows(source[0])["STATUS"] == "N").sum()


def test_custom_dimension_from_a_table_joined_by_contact_id_counts_like_the_address_books(tmp_path, result):
    """LIST_ID of b_sender_contact_list, a column of another table joined by CONTACT_ID, with a contact
    in several segments: its segments count exactly as the address books 1, 2, 3 do."""
    path = build_mix_effect_db(tmp_path / "mix.sqlite", contacts=3000, postings=16)
    custom = [{"table": "b_sender_contact_list", "column": "LIST_ID", "name": "list_id"}]
    model = snapshot_model(write_params(tmp_path / "params.yaml", {"sqlite": str(path)}, segments={"custom": custom}),
                           tmp_path / "custom.duckdb")
    try:
        by_id = seg.analyse_segments(model, PERIOD, seg.SegmentSettings(dimensions=[], custom=custom,
                                                                        min_delivered=200))
    finally:
        model.close()
    shown = by_id.figures["dimensions"]["list_id"]
    books = result.figures["dimensions"]["list"]
    for list_id, name in (("1", "Newsletter"), ("2", "VIP"), ("3", "Promo")):
        for key in ("delivered", "contacts", "open_rate", "ctor", "complaint_rate", "error_rate", "open_rate_ci"):
            assert shown[list_id][key] == pytest.approx(books[name][key]), (list_id, key)
    by_name = {d["segment"]: d for d in result.figures["differences"] if d["dimension"] == "list"}
    for d in by_id.figures["differences"]:
        name = {"2": "VIP", "3": "Promo"}[d["segment"]]
        same = next(x for x in result.figures["differences"]
                    if (x["dimension"], x["segment"], x["metric"]) == ("list", name, d["metric"]))
        assert d["ratio"] == pytest.approx(same["ratio"]) and d["p_value"] == pytest.approx(same["p_value"])
    assert by_name


def test_without_recipient_flags_the_tracking_rows_are_the_evidence(tmp_path, result):
    """Sender 15.x has no IS_READ/IS_CLICK/IS_UNSUB on recipients: reads and clicks rows say the same
    (the constructed portal sets each flag with its first tracking row)."""
    path = build_mix_effect_db(tmp_path / "mix.sqlite", contacts=3000, postings=16)
    with sqlite3.connect(path) as conn:
        for column in ("IS_READ", "IS_CLICK", "IS_UNSUB"):
            conn.execute(f"ALTER TABLE b_sender_posting_recipient DROP COLUMN {column}")
    model = snapshot_model(write_params(tmp_path / "params.yaml", {"sqlite": str(path)}), tmp_path / "noflags.duckdb")
    try:
        assert "IS_READ" not in model.columns("b_sender_posting_recipient")
        _assert_same_figures(seg.analyse_segments(model, PERIOD, seg.SegmentSettings(min_delivered=200)).figures,
                             result.figures)
    finally:
        model.close()


def test_crm_source_matches_trimmed_lower_case_email_and_leaves_other_contacts_out(result):
    crm = result.metrics[result.metrics["dimension"] == "crm_source"].set_index("segment")
    assert list(crm.index) == ["WEB"] and crm.loc["WEB", "contacts"] == 1


def _figures_on(url, folder, monkeypatch=None) -> dict:
    build_mix_effect_db(url, contacts=600, postings=8)
    if isinstance(url, URL) and url.get_backend_name() != "sqlite":
        monkeypatch.setenv("SEGMENTS_SERVER", url.render_as_string(hide_password=False))
        database = {"url_env": "SEGMENTS_SERVER"}
    else:
        database = {"sqlite": url.database}
    model = snapshot_model(write_params(folder / "params.yaml", database), folder / "snapshot.duckdb")
    try:
        return seg.analyse_segments(model, PERIOD, seg.SegmentSettings(min_delivered=50)).figures
    finally:
        model.close()


@pytest.fixture(scope="module")
def sqlite_figures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    return _figures_on(URL.create("sqlite", database=str(folder / "small.sqlite")), folder)


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
def test_same_figures_from_a_mariadb_snapshot(mariadb_url, sqlite_figures, tmp_path, monkeypatch):
    _assert_same_figures(_figures_on(mariadb_url, tmp_path, monkeypatch), sqlite_figures)


@pytest.mark.postgres
def test_same_figures_from_a_postgresql_snapshot(postgres_url, sqlite_figures, tmp_path, monkeypatch):
    _assert_same_figures(_figures_on(postgres_url, tmp_path, monkeypatch), sqlite_figures)


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
