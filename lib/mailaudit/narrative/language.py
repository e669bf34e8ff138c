"""The language of a bundle: which one this process writes in, and the translations it writes with.

Every sentence, label and chart text is written in English in the code and passed through `_` (or
`ngettext` when it counts something), which returns it in the active language. Translations are
ordinary gettext catalogs, one ``.po`` file per report under ``mailaudit/locale/<language>/``,
read with Babel (no compiled ``.mo`` to keep in step). A notebook's markdown cells are translated whole:
the cell's English text is the message id (`translate_markdown`).

A message without a translation falls back to English, and when the environment names a file in
`MISSING_ENV` the message id is appended to it, which is how the tests prove that a Russian bundle
has no untranslated text.
"""
from __future__ import annotations

import gettext
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
LANGUAGE_ENV = "MAILAUDIT_LANGUAGE"
"""Overrides ``report.language`` in a report's kernel (`mailaudit run --lang`, or set by hand for JupyterLab)."""
MISSING_ENV = "MAILAUDIT_MISSING_MESSAGES"
"""A file to which every message asked for in a language that has no translation of it is appended."""
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"

_active = DEFAULT_LANGUAGE


def use(language: str) -> None:
    """Make `language` the one this process writes in."""
    global _active
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    _active = language


def active() -> str:
    return _active


@contextmanager
def using(language: str):
    """Write in `language` inside the block (the runner's cover pages and index), then as before."""
    before = _active
    use(language)
    try:
        yield
    finally:
        use(before)


def N_(message: str) -> str:
    """Marks a message for translation where it is defined (a table of labels); `_` translates it where
    it is shown."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Marks a counted message in a table: shown with `ngettext(singular, plural, n)`."""
    return singular, plural


@lru_cache(maxsize=None)
def catalog(language: str) -> tuple[dict, object]:
    """Every translated message of `language`: ``{msgid: msgstr or [plural forms]}``
    and the plural rule (a function of n giving the form's index). Fuzzy and empty entries are left out."""
    from babel.messages.pofile import read_po

    messages: dict = {}
    plural = None
    for po in sorted((LOCALE_DIR / language).glob("*.po")):
        with po.open("rb") as handle:
            parsed = read_po(handle, locale=language)
        plural = plural or gettext.c2py(parsed.plural_expr)
        for message in parsed:
            if not message.id or message.fuzzy:
                continue
            key = message.id[0] if message.pluralizable else message.id
            if message.pluralizable:
                if all(message.string):
                    messages[key] = list(message.string)
            elif message.string:
                messages[key] = message.string
    return messages, plural or (lambda n: int(n != 1))


def _missing(message: str) -> None:
    path = os.environ.get(MISSING_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(message.replace("\n", "\\n") + "\n")


def _(message: str) -> str:
    """`message` in the active language (English: as written)."""
    if _active == DEFAULT_LANGUAGE or not message:
        return message
    translated = catalog(_active)[0].get(message)
    if translated is None:
        _missing(message)
        return message
    return translated


def ngettext(singular: str, plural: str, n) -> str:
    """The form of a counted message that fits `n` in the active language ("1 mailing", "3 mailings";
    Russian has three forms)."""
    if _active == DEFAULT_LANGUAGE:
        return singular if n == 1 else plural
    messages, rule = catalog(_active)
    forms = messages.get(singular)
    if not isinstance(forms, list):
        _missing(singular)
        return singular if n == 1 else plural
    return forms[min(rule(int(abs(n))), len(forms) - 1)]


def number(value, digits: int = 0, *, signed: bool = False, significant: int | None = None) -> str:
    """`value` rounded to `digits` decimals (or to `significant` digits), thousands grouped, as the active
    language writes numbers: 12,345.6 in English, 12 345,6 in Russian (a no-break space groups, a comma
    separates decimals)."""
    kind = f".{significant}g" if significant else f".{digits}f"
    text = f"{value:{'+' if signed else ''},{kind}}"
    if _active == "ru":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


def percent(fraction, digits: int = 1, *, signed: bool = False) -> str:
    """A fraction as a percentage: 3.6% in English, 3,6 % in Russian."""
    if _active == "ru":
        return number(fraction * 100, digits, signed=signed) + "\u00a0%"
    return f"{fraction:{'+' if signed else ''}.{digits}%}"


def date(day) -> str:
    """A date (or the date of a datetime) as the active language writes it: 2026-12-05, 05.12.2026."""
    return day.strftime("%d.%m.%Y") if _active == "ru" else day.strftime("%Y-%m-%d")


def date_time(moment) -> str:
    """A date and time to the minute: 2026-12-05 14:30, 05.12.2026 14:30."""
    return f"{date(moment)} {moment.strftime('%H:%M')}"


def translate_markdown(source: str) -> str:
    """A notebook's markdown cell in the active language: the whole cell is one message."""
    text = source.strip()
    return _(text) if text else source
