"""Every message the kit writes for a reader, found in its code, templates and notebooks, and the ones a
language's catalog lacks or gets wrong. ``python -m mailaudit.narrative.messages ru`` prints what is
missing as ``.po`` entries to fill in (see docs/developers.md, "Translating").
"""
from __future__ import annotations

import json
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path

from mailaudit.narrative.language import LOCALE_DIR, catalog

PACKAGE_DIR = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = PACKAGE_DIR.parent.parent / "notebooks"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "N_plural": (1, 2)}
METHODS = [("**/demo/**.py", "ignore"), ("**.py", "python"), ("**/templates/*.j2", "jinja2.ext:babel_extract")]


@dataclass(frozen=True)
class Message:
    key: str                  # the English message (of a plural: its singular)
    plural: str | None
    where: str                # file:line


def in_code() -> list[Message]:
    """Messages marked in the package's Python files and the index page's template."""
    from babel.messages.extract import extract_from_dir

    found = []
    for filename, line, message, _comments, _context in extract_from_dir(
            str(PACKAGE_DIR), METHODS, keywords=KEYWORDS):
        singular, plural = (message[0], message[1]) if isinstance(message, tuple) else (message, None)
        if singular:
            found.append(Message(singular, plural, f"{filename}:{line}"))
    return found


def in_notebooks(notebooks: Path = NOTEBOOKS_DIR) -> list[Message]:
    """Each markdown cell of the report notebooks, whole (see `language.translate_markdown`)."""
    found = []
    for path in sorted(notebooks.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for number, cell in enumerate(cells, 1):
            text = "".join(cell["source"]).strip()
            if cell["cell_type"] == "markdown" and text:
                found.append(Message(text, None, f"{path.name}:cell {number}"))
    return found


_FIELD = re.compile(r"\{[^{}]*\}")


def fields(text: str) -> set[str]:
    """The str.format fields of a message ({n}, {share}), which a translation must keep."""
    try:
        return {name for _text, name, _spec, _conv in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return set(_FIELD.findall(text))


def problems(language: str, messages: list[Message] | None = None) -> list[str]:
    """One line per message of the code or notebooks that `language` does not translate, or translates
    with other format fields than the English."""
    translated, _rule = catalog(language)
    out, seen = [], set()
    for message in messages if messages is not None else in_code() + in_notebooks():
        if message.key in seen:
            continue
        seen.add(message.key)
        english = message.key
        target = translated.get(english)
        if target is None:
            out.append(f"{message.where}: no {language} translation of {english!r}")
            continue
        expected = fields(english) | fields(message.plural or "")
        for form in target if isinstance(target, list) else [target]:
            if not fields(form) <= expected or not fields(english) <= fields(form):
                out.append(f"{message.where}: the {language} translation of {english!r} has fields "
                           f"{sorted(fields(form))}, the English {sorted(expected)}")
                break
    return out


def _po_entry(message: Message) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"#: {message.where}", f"msgid {quoted(message.key)}"]
    if message.plural:
        lines += [f"msgid_plural {quoted(message.plural)}", 'msgstr[0] ""', 'msgstr[1] ""', 'msgstr[2] ""']
    else:
        lines.append('msgstr ""')
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    language = (argv or sys.argv[1:] or ["ru"])[0]
    translated, _rule = catalog(language)
    missing = [m for m in {m.key: m for m in in_code() + in_notebooks()}.values() if m.key not in translated]
    for message in missing:
        print(_po_entry(message) + "\n")
    print(f"# {len(missing)} messages without a {language} translation "
          f"(catalogs: {LOCALE_DIR / language}/*.po)", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
