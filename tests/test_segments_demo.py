"""Segments on the demo's snapshot: the planted effects are found, the planted nulls are not, and the
figures (human open rates per segment included) equal the truth file's."""

import json
from datetime import date

import pytest

from conftest import snapshot_model
from mailaudit.analyses import opens
from mailaudit.analyses import segments as seg
from mailaudit.demo import build_demo
from mailaudit.period import Period
from mailaudit.report.context import json_safe
from segments_fixtures import TRUTH_PROVIDER, planted_difference, write_params

DEMO_CONTACTS = 20_000
"""The demo's default size: its smallest planted effect (CRM source ADVERTISING clicks 0.6×, about
1,600 contacts) must be found with contacts as the unit and the whole table Holm-corrected."""

"""The demo's provider labels that emails.PROVIDER_DOMAINS spells differently."""
MERGED_PROVIDERS = {"corporate", "other"}
"""The demo's corporate and invalid-address providers are both "other" in emails.py."""


HUMAN_OPEN_TOLERANCE_PP = {"access_log": 2.0, "database": 3.0}
"""How far a segment's human open rate may be from the truth, in points, by evidence (the opens
report's own tolerances for the whole list are 2 and 5 points)."""


def _period(truth: dict) -> Period:
    return Period(date.fromisoformat(truth["parameters"]["period"]["start"]),
                  date.fromisoformat(truth["parameters"]["period"]["end"]))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(truth, model of the demo's snapshot with its access and Postfix logs)."""
    root = tmp_path_factory.mktemp("segments_demo")
    built = build_demo(sqlite_path=root / "demo.sqlite", contacts=DEMO_CONTACTS, seed=1, heterogeneity=True,
                       logs_dir=root / "logs", truth_path=root / "demo.truth.json")
    truth = json.loads(built.truth.read_text(encoding="utf-8"))
    params = write_params(root / "params.yaml", {"sqlite": str(built.database)}, start=_period(truth).start,
                          end=_period(truth).end, logs={"access": [str(built.logs["access"])],
                                                        "delivery": [str(built.logs["postfix"])]})
    model = snapshot_model(params, root / "demo.duckdb")
    yield truth, model
    model.close()


@pytest.fixture(scope="module")
def demo(built):
    """The analysis as the report runs it with the access log: human open rates from its evidence."""
    truth, model = built
    period = _period(truth)
    evidence = opens.classify_contacts(model, period, {"scanner_seconds": 10})
    assert evidence.evidence == "access_log"
    return truth["segments"], seg.analyse_segments(model, period, seg.SegmentSettings(), evidence)


def _our_label(dimension: str, segment: str) -> str:
    return TRUTH_PROVIDER.get(segment, segment) if dimension == "provider" else segment



def test_every_planted_effect_is_flagged_with_an_interval_covering_it(demo):
    truth, result = demo
    assert truth["effects"]
    for planted in truth["effects"]:
        found = planted_difference(result, planted)
        assert found["significant"], planted
        assert found["ci"][0] <= planted["ratio"] <= found["ci"][1], planted
        assert (found["ratio"] > 1) == (planted["ratio"] > 1)


def test_no_planted_null_is_flagged(demo):
    truth, result = demo
    checked = 0
    for planted in truth["nulls"]:
        if planted["dimension"] == "provider" and planted["segment"] in MERGED_PROVIDERS:
            continue
        found = planted_difference(result, planted)
        assert not found["significant"], planted
        assert found["ci"][0] <= planted["ratio"] <= found["ci"][1], planted
        checked += 1
    assert checked >= len(truth["nulls"]) - len(MERGED_PROVIDERS)


def test_address_books_without_a_multiplier_get_intervals_covering_their_expected_ratio(demo):
    """The site and webinar lists have no multiplier, but their rest holds the loyal and cold lists:
    their expected ratio is whatever the mailings' mix makes it, and the interval must cover it."""
    truth, result = demo
    assert {c["segment"] for c in truth["composition"]} == {"Подписчики сайта", "Участники вебинаров"}
    for expected in truth["composition"]:
        found = planted_difference(result, expected)
        assert found["ci"][0] <= expected["ratio"] <= found["ci"][1], expected


def _human_open_misses(shown: dict, truth: dict, tolerance_pp: float) -> tuple[int, int]:
    """(intervals checked, intervals missing the truth); asserts every estimate within tolerance."""
    checked = missed = 0
    for dimension, segments in truth["by_segment"].items():
        for segment, planted in segments.items():
            if dimension == "provider" and segment in MERGED_PROVIDERS:
                continue
            ours = shown[(dimension, _our_label(dimension, segment))]
            observed = planted["human_open_rate"]["observed_rate"]
            assert abs(ours["human_open_rate"] - observed) * 100 <= tolerance_pp, (dimension, segment)
            low, high = ours["human_open_rate_ci"]
            checked += 1
            missed += not low <= observed <= high
    return checked, missed


def test_human_open_rate_per_segment_from_the_access_log_matches_the_truth(demo):
    truth, result = demo
    shown = {(d, s): v for d, segments in result.figures["dimensions"].items() for s, v in segments.items()}
    checked, missed = _human_open_misses(shown, truth, HUMAN_OPEN_TOLERANCE_PP["access_log"])
    assert checked >= 18 and missed <= 1
    apple = shown[("provider", "apple")]
    assert apple["open_inflation_pp"] > 40          # Apple MPP: raw 0.90, people about 0.27


def test_human_open_rate_per_segment_from_the_database_alone_matches_the_truth(built):
    truth, model = built
    period = _period(truth)
    evidence = opens.classify_contacts(model, period, {"scanner_seconds": 10}, use_access_log=False)
    assert evidence.evidence == "database"
    shown = {}
    for name in ("list", "provider", "crm_source", "tenure"):
        members = seg.membership(model, seg.segment_dimension(model, name, period))
        for row in opens.human_open_rates_by_segment(evidence, members).to_dict(orient="records"):
            shown[(name, row["segment"])] = row
    checked, missed = _human_open_misses(shown, truth["segments"], HUMAN_OPEN_TOLERANCE_PP["database"])
    assert checked >= 18 and missed <= 2


def test_the_mix_effect_list_is_called_a_mix_effect_not_a_difference(demo):
    truth, result = demo
    mix = truth["mix_effect"]
    click = planted_difference(result, {"dimension": mix["dimension"], "segment": mix["segment"], "metric": "click_rate"})
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


def _list_figures(path, layout: str) -> seg.SegmentResult:
    build_demo(sqlite_path=path, contacts=4000, seed=3, layout=layout)
    period = Period(date(2025, 10, 1), date(2026, 9, 30))
    params = write_params(path.with_suffix(".yaml"), {"sqlite": str(path)}, start=period.start, end=period.end)
    model = snapshot_model(params, path.with_suffix(".duckdb"))
    try:
        assert model.layout == layout
        return seg.analyse_segments(model, period, seg.SegmentSettings(dimensions=["list", "tenure", "client"]))
    finally:
        model.close()


def test_legacy_layout_counts_equal_the_truth(tmp_path):
    """Sender 15/16: recipients carry EMAIL instead of CONTACT_ID, contacts have no AGENT. The same
    seed writes the same portal in either layout, so complaints (attributed through the contact's
    EMAIL there) and errors come out the same."""
    result = _list_figures(tmp_path / "legacy.sqlite", "legacy")
    truth = json.loads((tmp_path / "legacy.truth.json").read_text(encoding="utf-8"))["segments"]
    assert any("client skipped" in note for note in result.notes)
    for dimension in ("list", "tenure"):
        shown = result.figures["dimensions"][dimension]
        for segment, planted in truth["by_segment"][dimension].items():
            assert shown[segment]["delivered"] == planted["open_rate"]["delivered"], segment
            assert shown[segment]["open_rate"] == pytest.approx(planted["open_rate"]["observed_rate"], abs=1e-12)
    current = _list_figures(tmp_path / "current.sqlite", "current").figures["dimensions"]["list"]
    legacy = result.figures["dimensions"]["list"]
    assert sum(v["complaint_rate"] * v["delivered"] for v in legacy.values()) > 0
    for segment, values in current.items():
        for metric in ("complaint_rate", "error_rate"):
            assert legacy[segment][metric] == pytest.approx(values[metric], abs=1e-12), (segment, metric)


def test_client_dimension_puts_apple_addresses_in_apple(built, demo):
    """One mail client across reports: an Apple address reads in Apple Mail whatever AGENT says (Apple's
    proxy leaves it unknown), so every contact on the apple provider is in the client segment apple."""
    truth, model = built
    period = _period(truth)
    by_client = seg.membership(model, seg.segment_dimension(model, "client", period))
    by_provider = seg.membership(model, seg.segment_dimension(model, "provider", period))
    apple_addresses = set(by_provider.loc[by_provider["segment"] == "apple", "contact_id"])
    apple_client = set(by_client.loc[by_client["segment"] == "apple", "contact_id"])
    assert apple_addresses and apple_addresses <= apple_client
    _truth, result = demo
    clients = result.figures["dimensions"]["client"]
    assert clients["apple"]["delivered"] >= result.figures["dimensions"]["provider"]["apple"]["delivered"]
