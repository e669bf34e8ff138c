"""The bundle's language: formats, plural forms, the catalogs' completeness, and a Russian bundle with no
untranslated text."""
from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailaudit.narrative import language
from mailaudit.narrative.common import count, money, of, pct, points, times
from mailaudit.narrative.messages import fields, in_code, in_notebooks, problems


@pytest.fixture
def russian():
    with language.using("ru"):
        yield


def test_english_formats_are_as_written():
    assert (count(1234567), pct(0.0362), pct(0.00036), points(3.24), of(3, 109386), money(1867685, "RUB"),
            times(1.0634)) == ("1,234,567", "3.6%", "0.036%", "+3.2 pp", "3 of 109,386 (0.003%)",
                               "1,867,685.00 RUB", "1.06×")
    assert language.date(dt.date(2026, 12, 5)) == "2026-12-05"


def test_russian_formats_group_with_a_space_and_write_a_decimal_comma(russian):
    nbsp = "\u00a0"
    assert count(1234567) == f"1{nbsp}234{nbsp}567"
    assert pct(0.0362) == f"3,6{nbsp}%"
    assert of(3, 109386) == f"3 из 109{nbsp}386 (0,003{nbsp}%)"
    assert money(1867685, "RUB") == f"1{nbsp}867{nbsp}685,00 RUB"
    assert points(-3.24) == "-3,2 п. п."
    assert language.date(dt.date(2026, 12, 5)) == "05.12.2026"
    assert language.date_time(dt.datetime(2026, 12, 5, 14, 30)) == "05.12.2026 14:30"


@pytest.mark.parametrize("n, form", [(1, "запись"), (2, "записи"), (5, "записей"), (11, "записей"),
                                     (21, "запись"), (22, "записи"), (112, "записей")])
def test_russian_counted_messages_take_the_form_of_their_number(russian, n, form):
    text = language.ngettext("The {total} click row of letters sent in {period} looks like a person's: none was "
                             "removed.", "All {total} click rows of letters sent in {period} look like people's: "
                             "none was removed.", n)
    assert f" {form} " in text


@pytest.mark.parametrize("total, form", [(1, "доставленной отправки"), (21, "доставленной отправки"),
                                         (183_521, "доставленной отправки"), (22, "доставленных отправок"),
                                         (11, "доставленных отправок"), (180_450, "доставленных отправок")])
def test_a_unit_agrees_with_the_total_it_is_counted_out_of(russian, total, form):
    """«23 из 183 521 доставленной отправки», «23 из 180 450 доставленных отправок»."""
    from mailaudit.narrative.common import unit

    assert unit(language.N_plural("delivered send", "delivered sends"), total) == form


def test_english_units_agree_too():
    from mailaudit.narrative.common import unit

    assert [unit(language.N_plural("order", "orders"), n) for n in (1, 2)] == ["order", "orders"]


def test_no_message_has_two_translations_across_the_catalogs():
    """The catalogs are merged: a message translated differently in two reports would be one of them."""
    from babel.messages.pofile import read_po

    seen, clashes = {}, []
    for po in sorted((language.LOCALE_DIR / "ru").glob("*.po")):
        with po.open("rb") as handle:
            for message in read_po(handle, locale="ru"):
                key = message.id[0] if message.pluralizable else message.id
                if not key:
                    continue
                if key in seen and seen[key][1] != message.string:
                    clashes.append((key, seen[key][0], po.name))
                seen.setdefault(key, (po.name, message.string))
    assert clashes == []


def test_a_message_without_translation_is_english_and_recorded(russian, tmp_path, monkeypatch):
    missing = tmp_path / "missing.txt"
    monkeypatch.setenv(language.MISSING_ENV, str(missing))
    assert language._("A sentence nobody translated") == "A sentence nobody translated"
    assert language._("Contents") == "Содержание"
    assert missing.read_text(encoding="utf-8") == "A sentence nobody translated\n"


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="en, ru"):
        language.use("de")


def test_messages_are_found_in_code_templates_and_notebooks():
    code = {m.key for m in in_code()}
    assert "Audit summary: what to do first" in code            # the index page's template
    assert "Who clicked" in code                                 # an N_() label
    assert any(m.key.startswith("# ") for m in in_notebooks())   # a notebook's title cell
    assert fields("{n} of {total} ({share})") == {"n", "total", "share"}


def test_every_message_has_a_russian_translation_with_the_same_fields():
    assert problems("ru") == []


def test_no_message_is_marked_inside_an_f_string():
    """Babel cannot read a call inside an f-string: such a message would be missed by the catalog check."""
    package = Path(language.__file__).resolve().parent.parent
    offenders = [f"{path.relative_to(package)}:{number}" for path in package.rglob("*.py")
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"""\bf(["']).*\{[^}]*\b(_|ngettext)\(\s*["']""", line)]
    assert offenders == []


# --- the Russian bundle -------------------------------------------------------------------------------

LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+[A-Za-z]")
NAMES = {
    # products, services and formats named as they are
    "Apple", "Mail", "Privacy", "Protection", "MPP", "Gmail", "Google", "Yandex", "Outlook", "Microsoft",
    "Bitrix", "Bitrix24", "Open", "Rate", "UTM", "CSV", "HTML", "JSON", "PDF", "Excel", "CRM", "SMTP", "DNS", "MX",
    "SPF", "DKIM", "DMARC", "Postfix", "Exim", "User-Agent", "IP", "URL", "RUB", "USD", "EUR", "ID", "mailaudit",
    "Holm", "Benjamini", "Hochberg", "Poisson", "Wilson", "Newcombe", "Mimecast", "Proofpoint", "Barracuda",
    "Kaspersky", "Thunderbird", "iOS", "iPhone", "iPad", "macOS", "Android", "Windows", "Mail.ru", "Rambler",
    "Yahoo", "ProtonMail", "Proton", "iCloud", "Zoho", "Brevo", "MailChimp", "Mailchimp", "UniSender", "DuckDB",
    "CTOR", "pp", "JupyterLab", "papermill", "Spamhaus", "RFC", "SQL", "Chrome", "Firefox", "SQLite", "MySQL",
    "MariaDB", "PostgreSQL", "UTC", "email", "Amazon", "SES", "Postmaster", "Tools", "OnAfterRecipientUnsub",
}
"""Words a Russian page keeps in Latin letters (compared without case)."""
NAMES = {name.lower() for name in NAMES}


class _VisibleText(HTMLParser):
    """The text a reader sees (and an image's alt text), without scripts, styles and code."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code"):
            self._skip += 1
        if tag == "img":
            self.parts.append(dict(attrs).get("alt") or "")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def english_words(page: str) -> set[str]:
    parser = _VisibleText()
    parser.feed(page)
    words = set()
    for chunk in parser.parts:
        for token in chunk.split():
            if re.search(r"[@./_\\]|\d", token):   # addresses, domains, file names, identifiers
                continue
            words.update(w for w in LATIN_WORD.findall(token) if w.lower() not in NAMES)
    return words


def test_the_russian_bundle_asked_for_no_untranslated_message(demo_bundle_ru):
    _folder, missing = demo_bundle_ru
    assert sorted(set(missing)) == []


@pytest.mark.parametrize("page", ["index", "data_and_tracking", "list_hygiene", "open_inflation", "segments",
                                  "conversion"])
def test_the_russian_pages_show_no_english_words(demo_bundle_ru, page):
    folder, _missing = demo_bundle_ru
    html = (folder / f"{page}.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in html
    assert sorted(english_words(html)) == []
