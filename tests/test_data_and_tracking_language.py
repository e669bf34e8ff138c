"""The data_and_tracking report's wording in English and Russian: findings, headline, table values."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from mailaudit.analyses.inventory import Check
from mailaudit.narrative import data_and_tracking as words
from mailaudit.narrative import language

NBSP = "\u00a0"


@pytest.fixture
def russian():
    with language.using("ru"):
        yield


def test_a_finding_names_the_missing_tags_in_order_and_in_english():
    item = words.finding(Check("letters_missing_utm", 7, 50, {"missing_codes": ["utm_campaign", "utm_source"]}))
    assert item.title == "Letters without complete UTM tags"
    assert item.detail.startswith("7 of 50 (14.0%) letters sent in the period lack a source tag or a campaign tag:")
    assert item.severity == "high" and item.extra == {"unit": "letters sent in the period",
                                              "stake": "revenue from these letters goes uncredited to e-mail in web "
                                                       "analytics and the CRM"}


def test_a_finding_in_russian_puts_the_count_after_what_it_counts(russian):
    item = words.finding(Check("letters_missing_utm", 7, 50,
                               {"missing_codes": ["utm_campaign", "utm_medium", "utm_source"]}))
    assert item.title == "Письма без полного набора меток UTM"
    assert item.detail.startswith("писем за период без метки источника, метки канала или метки кампании: "
                                  f"7 из 50 (14,0{NBSP}%);")
    assert item.fix.startswith("заполните поля UTM")
    assert item.extra == {"unit": "писем, отправленных за период",
                          "stake": "выручка от этих писем не засчитывается email-каналу ни в веб-аналитике, ни в CRM"}
    future = words.finding(Check("sends_in_future", 2, 183521, {"today": dt.date(2026, 12, 5)}))
    assert "позже 05.12.2026:" in future.detail


def test_a_check_that_cannot_be_made_says_what_the_database_lacks(russian):
    item = words.finding(Check("reads_without_recipient", None, None, {"missing": "b_sender_posting_read"}))
    assert (item.severity, item.detail) == ("info", "проверить нельзя: в этой базе нет записей об открытиях")
    empty = words.finding(Check("letters_missing_utm", None, 0, {"nothing": True}))
    assert empty.detail == "проверять нечего: нет писем, отправленных за период"


@pytest.mark.parametrize("problems, verb", [(1, "требует"), (2, "требуют"), (5, "требуют")])
def test_the_russian_headline_agrees_with_the_number_of_problems(russian, problems, verb):
    found = [words.finding(Check("letters_missing_utm", 7, 50, {"missing_codes": ["utm_source"]}))] * problems
    found += [words.finding(Check("sent_without_date", 0, 10))] * (12 - problems)
    line = words.headline(found)
    assert line.startswith(f"{problems} из 12 проверок {verb} внимания; первая — письма без полного набора меток UTM: ")


def test_the_clean_headline_in_both_languages():
    clean = [words.finding(Check("sent_without_date", 0, 10))] * 12
    assert words.headline(clean) == "Data and tracking are ready: none of 12 checks needs attention"
    with language.using("ru"):
        assert words.headline(clean) == "Данные и отслеживание готовы: ни одна из 12 проверок не требует внимания"
        assert words.clean_line(clean).startswith("12 из 12 проверок прошли без замечаний")


def test_table_values_are_words_and_identifiers_stay(russian):
    missing = pd.DataFrame([["b_sender_contact", "EMAIL", "VARCHAR", 10, 1, 0, 0, 1, 0.1],
                            ["b_crm_act", "CREATED", "TIMESTAMP", 10, 0, 0, 0, 0, 0.0]],
                           columns=["table", "column", "type", "rows", "null", "empty", "whitespace", "missing",
                                    "missing_share"])
    view = words.missing_view(missing)
    assert list(view["field"]) == ["b_sender_contact.EMAIL", "b_crm_act.CREATED"]
    assert list(view["type"]) == ["текст", "дата и время"]
    assert set(words.MISSING_LABELS) == set(view.columns)
    tables = pd.DataFrame([{"table": "b_crm_act", "group": "crm_activity", "rows": 3, "date_column": "CREATED",
                            "first": None, "last": None}])
    shown = words.inventory_view(tables).iloc[0]
    assert (shown["group"], shown["date_column"]) == ("дела CRM", "дата создания")
    assert words.status_word("sent") == "отправлено" and words.status_word("other (X)") == "другой статус (X)"
    assert words.month_label("2026-03") == "03.2026"
    assert words.type_word("BIGINT") == "целое число"


def test_every_table_column_of_the_page_has_a_label():
    letters = ["letter_id", "campaign_id", "title", "utm_codes", "missing_utm", "links", "links_without_utm",
               "links_reaching_site_untagged"]
    assert set(letters) <= set(words.LETTERS_LABELS)
    assert {"table", "group", "rows", "date_column", "first", "last"} <= set(words.INVENTORY_LABELS)
    assert set(words.checks_table([]).columns) - {"severity"} <= set(words.CHECKS_LABELS)
