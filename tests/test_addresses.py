"""Address checks: syntax, role accounts, disposable and typo domains, provider-aware duplicates."""

from __future__ import annotations

import dns.resolver
import pandas as pd
import pytest

from mailaudit.analyses import addresses as ad


@pytest.mark.parametrize("address", ["ivan@mail.ru", "Ivan.Petrov+promo@Gmail.com", "o'brien@example.co.uk",
                                     "test@пример.рф", "a_b-c@sub.domain.ru"])
def test_valid_syntax(address):
    assert ad.syntax_problem(address) is None


@pytest.mark.parametrize("address", ["ivan@@mail.ru", "ivan petrov@mail.ru", "ivan@mail", "ivan.@mail.ru",
                                     "ivan..petrov@mail.ru", "@mail.ru", "ivan@", "ivan", "ivan@mail..ru", ""])
def test_invalid_syntax_has_a_reason(address):
    assert ad.syntax_problem(address)


@pytest.mark.parametrize("address, role", [
    ("info@shop.ru", True), ("Sales@Shop.ru", True), ("noreply@shop.ru", True), ("no-reply@shop.ru", True),
    ("postmaster@shop.ru", True), ("support+ticket@shop.ru", True), ("buh@zavod.ru", True),
    ("ivan.info@shop.ru", False), ("olga@shop.ru", False), ("information@shop.ru", False),
])
def test_role_accounts(address, role):
    assert ad.is_role_account(address) is role


@pytest.mark.parametrize("domain, disposable", [
    ("mailinator.com", True), ("yopmail.com", True), ("10minutemail.com", True), ("guerrillamail.com", True),
    ("mail.ru", False), ("gmail.com", False), ("romashka.ru", False), (None, False),
])
def test_disposable_domains(domain, disposable):
    assert ad.is_disposable_domain(domain) is disposable


@pytest.mark.parametrize("domain, suggestion", [
    ("gmial.com", "gmail.com"), ("gmal.com", "gmail.com"), ("gmail.co", "gmail.com"), ("gnail.com", "gmail.com"),
    ("yandx.ru", "yandex.ru"), ("yadex.ru", "yandex.ru"), ("mail.ri", "mail.ru"), ("mial.ru", "mail.ru"),
    ("mail.ur", "mail.ru"), ("ramblr.ru", "rambler.ru"), ("hotmial.com", "hotmail.com"), ("bk.ry", "bk.ru"),
    ("inbox.r", "inbox.ru"), ("yahooo.com", "yahoo.com"), ("outlok.com", "outlook.com"),
])
def test_typo_domains_suggest_the_provider(domain, suggestion):
    assert ad.typo_suggestion(domain) == suggestion


@pytest.mark.parametrize("domain", ["gmail.com", "mail.ru", "ya.ru", "bk.ru", "mail.com", "inbox.lv", "gmx.de",
                                    "romashka.ru", "zavod-metall.ru", "yandex.by", "mailinator.com", "university.edu",
                                    "yopmail.com"])
def test_real_domains_are_not_typos(domain):
    assert ad.typo_suggestion(domain) is None


def test_edit_distance_counts_a_swap_as_one_edit():
    assert ad.edit_distance("gmial.com", "gmail.com") == 1
    assert ad.edit_distance("abc", "abc") == 0
    assert ad.edit_distance("kitten", "sitting", limit=5) == 3
    assert ad.edit_distance("a", "abcdef", limit=3) == 3


@pytest.mark.parametrize("a, b", [
    ("Ivan.Petrov@gmail.com", "ivanpetrov@gmail.com"),
    ("ivan.petrov+shop@gmail.com", "ivanpetrov@googlemail.com"),
    ("ivan.petrov@yandex.ru", "ivan-petrov@ya.ru"),
    ("ivan+news@yandex.com", "ivan@yandex.ru"),
    ("ivan+x@outlook.com", "ivan@outlook.com"),
    (" IVAN@mail.ru ", "ivan@mail.ru"),
])
def test_same_mailbox_has_one_canonical_form(a, b):
    assert ad.canonical_address(a) == ad.canonical_address(b)


@pytest.mark.parametrize("a, b", [
    ("ivan@mail.ru", "ivan@bk.ru"),             # separate Mail.ru mailboxes
    ("ivan.petrov@mail.ru", "ivanpetrov@mail.ru"),
    ("ivan+x@mail.ru", "ivan@mail.ru"),         # no plus tags assumed for Mail.ru
    ("ivan-x@yahoo.com", "ivan@yahoo.com"),
    ("ivan@outlook.com", "ivan@hotmail.com"),
])
def test_different_mailboxes_stay_apart(a, b):
    assert ad.canonical_address(a) != ad.canonical_address(b)


def test_check_addresses_frame():
    frame = ad.check_addresses(pd.Series(["Info@Gmial.com", "ivan@mailinator.com", "bad@@mail.ru", "olga@mail.ru"]))
    assert frame["email"].tolist()[0] == "info@gmial.com"
    assert frame["invalid_syntax"].tolist() == [False, False, True, False]
    assert frame["role_account"].tolist() == [True, False, False, False]
    assert frame["disposable_domain"].tolist() == [False, True, False, False]
    assert frame["typo_domain"].tolist() == [True, False, False, False]
    assert frame["suggested_domain"].iloc[0] == "gmail.com"
    assert frame["syntax_reason"].iloc[2]


@pytest.mark.parametrize("address, reason", [
    ("ivan@gmial.com", "typo_domain"),          # typo-squatted: on the disposable list, yet a typo to correct
    ("olga@hotmial.com", "typo_domain"),
    ("ivan@yopmail.com", "disposable_domain"),   # a real throw-away service, two edits from hotmail.com
    ("ivan..x@mailinator.com", "invalid_syntax"),
    ("ivan@gmial..com", "invalid_syntax"),
    ("ivan@mail.ru", None),
])
def test_each_address_gets_one_reason_by_precedence(address, reason):
    row = ad.check_addresses(pd.Series([address])).iloc[0]
    assert [name for name in ad.ADDRESS_PRECEDENCE if row[name]] == ([reason] if reason else [])


HARD_CASES = [
    "ivan@mail.ru", "IVAN@MAIL.RU", " ivan@mail.ru ", "i.v.a.n+tag@gmail.com", "o'brien@example.co.uk",
    "a{b}c|d~e@x.org", "test@пример.рф", "иван@mail.ru", "ivan@xn--e1afmkfd.xn--p1ai", "ivan@-bad.ru",
    "ivan@bad-.ru", "ivan@localhost", "ivan@host.test", "ivan@invalid", "ivan@123.45", "ivan@[1.2.3.4]",
    "Ivan <ivan@mail.ru>", '"ivan petrov"@mail.ru', "ivan@@mail.ru", "ivan.@mail.ru", ".ivan@mail.ru",
    "iv..an@mail.ru", "ivan@mail..ru", "ivan@mail.ru.", "ivan@", "@mail.ru", "ivan", "", None, "ivan@mail,ru",
    "a" * 64 + "@mail.ru", "a" * 65 + "@mail.ru", "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".ru",
    "a@" + "b" * 64 + ".ru", "ivan@mail.r", "ivan@mail.ru\n", "=cmd|' /c calc'!a0@mail.ru", "@sum(1+1)@mail.ru",
]


def test_the_fast_syntax_check_agrees_with_email_validator():
    """syntax_problems judges plain addresses by their domain and length: the same verdict and reason."""
    assert ad.syntax_problems(HARD_CASES) == [ad.syntax_problem(a) for a in HARD_CASES]
    assert any(ad.syntax_problem(a) is None for a in HARD_CASES) and any(ad.syntax_problem(a) for a in HARD_CASES)


class _FakeResolver:
    """Answers MX queries from a dict; unknown domains do not exist."""

    def __init__(self, known):
        self.known = known
        self.asked = []

    def resolve(self, domain, rdtype):
        self.asked.append((str(domain), rdtype))
        if str(domain).rstrip(".") in self.known:
            class _Mx:
                preference = 10
                exchange = "mx." + str(domain)
            return [_Mx()]
        raise dns.resolver.NXDOMAIN()


def test_dns_check_reports_dead_domains_once_each():
    resolver = _FakeResolver({"mail.ru"})
    dead = ad.domains_without_mail(["mail.ru", "no-such-domain-xyz.ru", "no-such-domain-xyz.ru"], resolver=resolver)
    assert list(dead) == ["no-such-domain-xyz.ru"]
    assert len(resolver.asked) == 2
