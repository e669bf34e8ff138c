"""Segments on the demo database: the planted effects are found, the planted nulls are not, and the
figures equal the truth file's."""

import json
from datetime import date

import pytest

from mailaudit.analyses import segments as seg
from mailaudit.bitrix.schema import reflect_schema
from mailaudit.demo import build_demo
from mailaudit.period import Period
from mailaudit.report.context import json_safe
from mailaudit.sources.db import create_readonly_engine, sqlite_url

DEMO_CONTACTS = 20_000
"""The demo's default size: its smallest planted effect (CRM source ADVERTISING clicks 0.6×, about
1,600 contacts) must be found with contacts as the unit and the whole table Holm-corrected."""

TRUTH_PROVIDER = {"mailru": "mail.ru"}
"""The demo's provider labels that emails.PROVIDER_DOMAINS spells differently."""
MERGED_PROVIDERS = {"corporate", "other"}
"""The demo's corporate and invalid-address providers are both "other" in emails.py."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("segments_demo") / "demo.sqlite"
    built = build_demo(sqlite_path=path, contacts=DEMO_CONTACTS, seed=1, heterogeneity=True)
    truth = json.loads(built.truth.read_text(encoding="utf-8"))
    period = Period(date.fromisoformat(truth["parameters"]["period"]["start"]),
                    date.fromisoformat(truth["parameters"]["period"]["end"]))
    engine = create_readonly_engine(sqlite_url(path))
    with engine.connect() as conn:
        result = seg.analyse_segments(conn, reflect_schema(conn), period, seg.SegmentSettings())
    engine.dispose()
    return truth["segments"], result


def _our_label(dimension: str, segment: str) -> str:
    return TRUTH_PROVIDER.get(segment, segment) if dimension == "provider" else segment


def _difference(result, planted: dict) -> dict:
    key = (planted["dimension"], _our_label(planted["dimension"], planted["segment"]), planted["metric"])
    rows = [d for d in result.figures["differences"] if (d["dimension"], d["segment"], d["metric"]) == key]
    assert len(rows) == 1, f"no single comparison for {key}"
    return rows[0]


def test_every_planted_effect_is_flagged_with_an_interval_covering_it(demo):
    truth, result = demo
    assert truth["effects"]
    for planted in truth["effects"]:
        found = _difference(result, planted)
        assert found["significant"], planted
        assert found["ci"][0] <= planted["ratio"] <= found["ci"][1], planted
        assert (found["ratio"] > 1) == (planted["ratio"] > 1)


def test_no_planted_null_is_flagged(demo):
    truth, result = demo
    checked = 0
    for planted in truth["nulls"]:
        if planted["dimension"] == "provider" and planted["segment"] in MERGED_PROVIDERS:
            continue
        found = _difference(result, planted)
        assert not found["significant"], planted
        assert found["ci"][0] <= planted["ratio"] <= found["ci"][1], planted
        checked += 1
    assert checked >= len(truth["nulls"]) - len(MERGED_PROVIDERS)


def test_the_mix_effect_list_is_called_a_mix_effect_not_a_difference(demo):
    truth, result = demo
    mix = truth["mix_effect"]
    click = _difference(result, {"dimension": mix["dimension"], "segment": mix["segment"], "metric": "click_rate"})
    assert click["raw_ratio"] == pytest.approx(mix["metrics"]["click_rate"]["raw_ratio"], rel=0.1)
    assert click["mix_effect"] and not click["significant"]
    assert click["ci"][0] <= mix["metrics"]["click_rate"]["ratio"] <= click["ci"][1]


@pytest.mark.parametrize("dimension", ["list", "crm_source", "tenure", "provider"])
def test_segment_sizes_and_rates_equal_the_truth(demo, dimension):
    truth, result = demo
    shown = result.figures["dimensions"][dimension]
    for segment, planted in truth["by_segment"][dimension].items():
        if dimension == "provider" and segment in MERGED_PROVIDERS:
            continue
        ours = shown[_our_label(dimension, segment)]
        assert ours["delivered"] == planted["open_rate"]["delivered"], segment
        assert ours["open_rate"] == pytest.approx(planted["open_rate"]["observed_rate"], abs=1e-12), segment
        assert ours["click_rate"] == pytest.approx(planted["click_rate"]["observed_rate"], abs=1e-12), segment
        low, high = ours["open_rate_ci"]
        assert low < ours["open_rate"] < high


def test_merged_provider_other_holds_the_demo_corporate_and_other_rows(demo):
    truth, result = demo
    merged = sum(truth["by_segment"]["provider"][p]["open_rate"]["delivered"]
                 for p in MERGED_PROVIDERS if p in truth["by_segment"]["provider"])
    assert result.figures["dimensions"]["provider"]["other"]["delivered"] == merged


def test_summary_figures_carry_the_contract_keys(demo):
    _truth, result = demo
    figures = json.loads(json.dumps(json_safe(result.figures), allow_nan=False))
    assert {"list", "provider", "crm_source", "tenure"} <= set(figures["dimensions"])
    for segments in figures["dimensions"].values():
        for values in segments.values():
            assert {"delivered", "open_rate", "open_rate_ci", "click_rate", "click_rate_ci", "ctor",
                    "unsub_rate"} <= set(values)
    for difference in figures["differences"]:
        assert {"dimension", "metric", "segment", "versus", "ratio", "p_adjusted", "significant", "ci"} <= set(difference)
        assert difference["metric"] in seg.RATE_METRICS


def test_legacy_layout_counts_equal_the_truth(tmp_path):
    """Sender 15/16: recipients carry EMAIL instead of CONTACT_ID, contacts have no AGENT."""
    path = tmp_path / "legacy.sqlite"
    built = build_demo(sqlite_path=path, contacts=4000, seed=3, layout="legacy")
    truth = json.loads(built.truth.read_text(encoding="utf-8"))["segments"]
    engine = create_readonly_engine(sqlite_url(path))
    with engine.connect() as conn:
        schema = reflect_schema(conn)
        assert schema.layout == "legacy"
        result = seg.analyse_segments(conn, schema, Period(date(2025, 10, 1), date(2026, 9, 30)),
                                      seg.SegmentSettings(dimensions=["list", "tenure", "client"]))
    engine.dispose()
    assert any("client skipped" in note for note in result.notes)
    for dimension in ("list", "tenure"):
        shown = result.figures["dimensions"][dimension]
        for segment, planted in truth["by_segment"][dimension].items():
            assert shown[segment]["delivered"] == planted["open_rate"]["delivered"], segment
            assert shown[segment]["open_rate"] == pytest.approx(planted["open_rate"]["observed_rate"], abs=1e-12)
