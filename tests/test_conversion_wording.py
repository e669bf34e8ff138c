"""The conversion report's wording: every finding that asks for action states its stake, in English and in
Russian, with Russian plural forms and cohort labels."""
from __future__ import annotations

import re

import pytest

from mailaudit.narrative import conversion as words
from mailaudit.narrative import language

NBSP = "\u00a0"


def figures(*, unlinked: int = 650, without_followup: int = 75_725, lift=(1.06, 1.01, 1.11)) -> dict:
    return {
        "windows": {"click_days": 30, "open_days": 5}, "source": "orders",
        "delivered": 180_474, "converted": 413, "conversion_rate": 413 / 180_474,
        "conversion_rate_ci": [0.0020, 0.0026], "revenue": 1_867_684.78, "revenue_per_recipient": 10.35,
        "click_only": {"converted": 190, "revenue": 859_429.08},
        "baseline": {"lift": lift[0], "lift_ci": [lift[1], lift[2]], "window_days": 30},
        "incremental_revenue": 108_830.01, "incremental_revenue_ci": [17_203.6, 197_610.43],
        "time_to_order": {"median_days": None, "ordered_within_30_days": 0.012,
                          "censored_at": "2026-09-30T23:00:00"},
        "linking": {"qualifying": 3562, "linked": 3562 - unlinked},
        "followup": {"engaged": 76_079, "without_followup": without_followup},
        "utm": {"deals": 90, "revenue": 4_308_730.61, "orders": 0, "order_revenue": 0.0},
    }


@pytest.mark.parametrize("lang", ["en", "ru"])
@pytest.mark.parametrize("lift", [(1.06, 1.01, 1.11), (1.02, 0.95, 1.09)])
def test_every_finding_that_asks_for_action_states_its_stake(lang, lift):
    with language.using(lang):
        found = words.findings(figures(lift=lift), 3, "RUB")
    assert {f.key for f in found} == {"baseline_lift", "open_credit", "unlinked", "followup"}
    for finding in found:
        assert finding.fix and finding.extra.get("stake"), finding.title


def test_english_wording_is_as_before():
    found = {f.key: f for f in words.findings(figures(), 3, "RUB")}
    assert words.headline(figures(), "RUB") == ("0.23% of delivered sends led to a purchase (413 of 180,474, click 30 d "
                                               "/ open 5 d); revenue credited 1,867,684.78 RUB, 10.35 RUB per "
                                               "delivered send")
    assert found["followup"].title == "Openers and clickers nobody followed up within 3 days"
    assert found["unlinked"].detail.startswith("650 of 3,562 (18.2%) orders cannot be credited to any letter")
    assert found["unlinked"].extra["unit"] == "orders"
    assert words.key_figures(figures(), "RUB")[1][0] == "Sends credited with a purchase (click 30 d, open 5 d)"
    assert words.cohort_label("2026-01") == "2026-01"


@pytest.mark.parametrize("n, form", [(1, "заказ, который"), (3, "заказа, которые"), (5, "заказов, которые"),
                                     (21, "заказ, который"), (112, "заказов, которые")])
def test_russian_stakes_take_the_form_of_their_number(n, form):
    with language.using("ru"):
        found = {f.key: f for f in words.findings(figures(unlinked=n, without_followup=n), 1, "RUB")}
    assert found["unlinked"].extra["stake"].startswith(f"{n} {form} ")
    assert "в течение 1 дня" in found["followup"].title
    assert found["followup"].fix.count("через 1 день")


def test_russian_wording_has_russian_numbers_and_no_english():
    with language.using("ru"):
        texts = [words.headline(figures(), "RUB"), words.utm_line(figures()["utm"], "RUB"),
                 words.time_to_order_line(figures()["time_to_order"])]
        texts += [part for item in words.key_figures(figures(), "RUB") for part in item]
        for finding in words.findings(figures(), 3, "RUB"):
            texts += [finding.title, finding.detail, finding.fix, finding.extra["stake"], finding.extra.get("unit", "")]
    assert f"1{NBSP}867{NBSP}684,78 RUB" in texts[0] and "клик 30 дн. / открытие 5 дн." in texts[0]
    assert "(30.09.2026)" in texts[2]
    latin = {w for text in texts for w in re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text)}
    assert latin <= {"RUB", "CRM", "Apple", "Mail", "Privacy", "Protection", "UTM"}


def test_cohorts_read_as_russian_months_and_weeks():
    with language.using("ru"):
        assert words.cohort_label("2026-01") == "янв. 2026"
        assert words.cohort_label("2025-09") == "сент. 2025"
        assert words.cohort_label("2026-W03") == "нед. 3, 2026"
        assert words.currency_label(["RUB", "USD"]) == "разные валюты (RUB, USD)"
