"""The segments report's wording: the headline's example is the most actionable difference, every finding
that asks for action says what is at stake, and the Russian sentences take the right forms."""
from __future__ import annotations

import pandas as pd
import pytest

from mailaudit.analyses import mailings
from mailaudit.analyses import segments as seg
from mailaudit.narrative import language
from mailaudit.narrative import segments as words


def _difference(dimension, segment, metric, ratio, delivered, *, significant=True, mix=False, total=100_000):
    return {"dimension": dimension, "segment": segment, "metric": metric, "ratio": ratio,
            "ci": [ratio * 0.9, ratio * 1.1], "significant": significant, "mix_effect": mix,
            "raw_ratio": ratio, "p_adjusted": 0.001 if significant else 0.5,
            "segment_delivered": delivered, "versus_delivered": total - delivered}


@pytest.fixture
def differences():
    return pd.DataFrame([
        # the first dimension compared, the largest ratio, but a small segment
        _difference("list", "Webinar", "click_rate", 3.0, 2_000),
        # machines, not the audience: never the example, however large
        _difference("client", "apple", "open_rate", 2.3, 40_000),
        _difference("provider", "apple", "open_rate", 2.0, 35_000),
        # significant but below 1.5× either way
        _difference("crm_source", "STORE", "unsub_rate", 1.2, 60_000),
        # the most actionable: at least 1.5× and the most delivered sends
        _difference("crm_source", "WEB", "click_rate", 0.58, 30_000),
        _difference("tenure", "3y+", "complaint_rate", 1.8, 10_000),
        # not significant: a mix effect at most
        _difference("list", "Site", "open_rate", 0.95, 50_000, significant=False, mix=True),
    ])


def test_the_headline_example_is_the_actionable_difference_with_the_most_delivered_sends(differences):
    top = words.headline_example(differences)
    assert (top["dimension"], top["segment"], top["metric"]) == ("crm_source", "WEB", "click_rate")
    line = words.headline(differences, "holm")
    assert line.startswith("6 significant segment differences within the same mailings; the one that touches "
                           "the most sends: Contacts from the CRM source «Website» click 42.0% less often than "
                           "the other CRM sources, in the same mailings (30.0% of the delivered sends)")
    assert seg.headline(differences, "holm") == line


def test_without_a_large_enough_difference_the_headline_names_none(differences):
    small = differences[differences["metric"].isin(["unsub_rate"]) | ~differences["significant"]]
    assert words.headline_example(small) is None
    assert words.headline(small, "holm") == ("1 significant segment difference within the same mailings, none "
                                             "large enough (1.50× either way) to act on")
    nothing = differences.assign(significant=False)
    assert words.headline(nothing, "holm").startswith("no segment differs significantly")


def test_the_headline_example_is_always_among_the_findings(differences):
    found = words.findings(differences, limit=1)
    keys = [f.key for f in found]
    assert "list:click_rate:Webinar" in keys and "crm_source:click_rate:WEB" in keys


def test_every_finding_that_asks_for_action_carries_a_stake(differences):
    found = words.findings(differences)
    assert found and all(f.fix for f in found)
    for finding in found:
        stake = finding.extra.get("stake", "")
        assert stake.split(":")[0] in ("money", "deliverability", "deliverability and money", "the list",
                                       "decisions"), stake
        assert finding.extra["unit"] == "delivered sends" and finding.count and finding.denominator == 100_000
    complaint = next(f for f in found if f.key == "tenure:complaint_rate:3y+")
    assert complaint.extra["stake"].startswith("deliverability: spam complaints")
    assert complaint.detail.endswith("10,000 of 100,000 (10.0%) delivered sends went to them")


def test_every_rate_and_direction_with_a_fix_has_a_stake():
    assert {key for key, fix in words.FIXES.items() if fix} == set(words.STAKES)


def test_the_russian_headline_and_findings_are_russian(differences):
    with language.using("ru"):
        line = words.headline(differences, "holm")
        found = words.findings(differences)
        scope = words.scope_line({"previous_period": {"start": pd.Timestamp("2024-10-01").date(),
                                                      "end": pd.Timestamp("2025-09-30").date()}},
                                 ["list", "crm_source"], seg.SegmentSettings(min_delivered=21))
    assert line.startswith("6 значимых различий сегментов в пределах одних и тех же рассылок")
    assert "Контакты из источника CRM «Веб-сайт» кликают на 42,0\u00a0% реже" in line
    assert all(f.extra["stake"].split(":")[0] in ("деньги", "доставляемость", "база", "решения",
                                                  "доставляемость и деньги") for f in found)
    assert "01.10.2024 – 30.09.2025" in scope and "не меньше 21 доставленной отправки" in scope
    assert "адресная книга, источник CRM" in scope


@pytest.mark.parametrize("n, text", [(1, "медиана 1 рассылки"), (21, "медиана 21 рассылки"),
                                     (3, "медиана 3 рассылок"), (50, "медиана 50 рассылок")])
def test_the_median_row_is_named_in_russian(n, text):
    with language.using("ru"):
        assert mailings.median_label(n) == text
    assert mailings.median_label(n) == f"median mailing of {n}"


def test_segment_names_the_kit_gives_are_translated_and_data_is_not():
    with language.using("ru"):
        assert words.segment_name("tenure", "<1y") == "до 1 года"
        assert words.segment_name("provider", "other") == "прочие"
        assert words.segment_name("client", "unknown") == "клиент не определён"
        assert words.segment_name("crm_source", "STORE") == "Интернет-магазин"
        assert words.segment_name("crm_source", "MY_SOURCE") == "MY_SOURCE"
        assert words.segment_name("list", "other") == "other"          # an address book's title is data
        assert words.who("list", "Клиенты") == "Подписчики адресной книги «Клиенты»"
    assert words.segment_name("crm_source", "STORE") == "Online store"
    assert words.who("provider", "gmail") == "Subscribers on gmail"
