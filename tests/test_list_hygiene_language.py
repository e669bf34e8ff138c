"""The list hygiene report's words in Russian: counted phrases take the form of their number, machine keys
(bounce classes, classifier rules, address issues, email-validator's reasons) are named in words, and the
English stays as it was."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from mailaudit.narrative import language
from mailaudit.narrative import list_hygiene as words

HYGIENE = {"unsub_grace_hours": 48, "soft_bounce_streak": 3, "inactive_min_sends": 5, "inactive_months": 6}


def result(people=1, contacts=21, high=0):
    figures = {"contacts": contacts, "hard_bounce": 2, "sent_after_unsubscribe": 5, "sent_after_hard_bounce": 0,
               "inactive": 7}
    facts = {"people_sent_after_unsubscribe": people, "addresses_sent_after_hard_bounce": 0, "attempted_sends": 1000}
    by_posting = pd.DataFrame({"complaint_rate": [0.0], "hard_bounce_rate": [0.0]})
    return SimpleNamespace(figures=figures, facts=facts, by_posting=by_posting)


@pytest.fixture
def russian():
    with language.using("ru"):
        yield


@pytest.mark.parametrize("people, phrase", [(1, "1 человек получил"), (3, "3 человека получили"),
                                            (5, "5 человек получили"), (21, "21 человек получил")])
def test_mail_after_an_opt_out_counts_people_in_russian(russian, people, phrase):
    found = {f.key: f for f in words.findings(result(people), HYGIENE, have_log=True)}
    title = found["sent_after_unsubscribe"].title
    assert title.startswith(phrase) and "через 48 часов" in title


def test_a_finding_counts_among_contacts_in_the_form_that_follows_the_total(russian):
    found = {f.key: f for f in words.findings(result(contacts=21), HYGIENE, have_log=True)}
    assert found["inactive"].extra["unit"] == "email-контакта"      # 7 из 21 email-контакта
    assert found["inactive"].title == "Контакты, получившие не менее 5 писем за 6 месяцев без открытий и кликов"
    assert found["sent_after_unsubscribe"].extra["unit"] == "отправок"   # из 1000 отправок


def test_the_english_findings_and_headline_are_as_before():
    found = {f.key: f for f in words.findings(result(people=40, contacts=19997), HYGIENE, have_log=True)}
    assert found["sent_after_unsubscribe"].title == ("Mail sent to 40 people more than 48 hours after they "
                                                     "unsubscribed from that campaign")
    assert found["inactive"].title == "Contacts who got 5 or more letters in 6 months without opening or clicking"
    assert found["inactive"].extra["unit"] == "e-mail contacts"
    assert words.headline(result(contacts=19997), []) == ("19,997 contacts; 2 dead addresses; 5 sends after an "
                                                          "unsubscribe; 0 high-severity findings")


def test_the_russian_headline_agrees_with_each_number(russian):
    assert words.headline(result(contacts=19997), []) == ("19\u00a0997 контактов; 2 несуществующих адреса; "
                                                          "5 отправок после отписки; 0 выводов высокой важности")


def test_address_issues_are_named_in_russian_and_the_data_kept(russian):
    issues = pd.DataFrame({"contact_id": [1, 2, 3, 4], "email": ["a b@x.ru", "info@x.ru", "a@gmial.com", "b@mail"],
                           "issue": ["invalid_syntax", "role_account", "typo_domain", "invalid_syntax"],
                           "detail": ["The email address contains invalid characters before the @-sign: SPACE.",
                                      "role mailbox info", "did you mean gmail.com",
                                      "Some reason email-validator will add one day."]})
    view = words.issues_view(issues)
    assert list(view["issue"]) == ["некорректный адрес", "ролевой адрес", "опечатка в домене", "некорректный адрес"]
    assert list(view["detail"]) == ["Часть до знака @ содержит недопустимые символы: пробел.",
                                    "ролевой адрес info@", "возможно, имелся в виду gmail.com",
                                    "Адрес не соответствует синтаксису электронной почты."]
    assert list(issues["detail"])[1] == "role mailbox info"   # the CSV's table is left as it is


def test_english_address_issues_keep_their_details():
    issues = pd.DataFrame({"contact_id": [1], "email": ["info@x.ru"], "issue": ["role_account"],
                           "detail": ["role mailbox info"]})
    assert words.issues_view(issues).iloc[0].to_dict() == {"contact_id": 1, "email": "info@x.ru",
                                                           "issue": "role mailbox", "detail": "role mailbox info"}


def test_classifier_rules_and_bounce_classes_are_named_in_words(russian):
    rules = pd.DataFrame({"bounce_class": ["soft", "hard"], "rule": ["unknown_user/deferral_never_hard", "no_rule"],
                          "events": [3, 1], "addresses": [2, 1], "example": ["550 user unknown", "x"]})
    view = words.rules_view(rules)
    assert list(view["bounce_class"]) == ["мягкий отказ (ящик переполнен или недоступен)",
                                          "жёсткий отказ (адреса нет)"]
    assert list(view["rule"]) == ["неизвестный пользователь; отложенная доставка не бывает жёстким отказом",
                                  "ни одно правило не подошло"]
    assert list(view["example"]) == ["550 user unknown", "x"]   # the server's reply is data


def test_every_classifier_rule_has_a_name():
    from mailaudit.analyses.bounces import LOCAL_FAILURE, OUTCOME_RULES, REPLY_RULES

    assert {r.id for r in (*REPLY_RULES, LOCAL_FAILURE)} <= set(words.RULE_NAMES)
    assert {r.id for r in OUTCOME_RULES} <= set(words.OUTCOME_NAMES)
