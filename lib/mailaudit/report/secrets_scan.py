"""The last gate before a bundle is published: no file may hold the database URL, its password,
or (with privacy.mask_emails) an unmasked e-mail address.

Each finding names the file and the kind of secret, never the secret itself.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

from sqlalchemy import URL

from mailaudit.report.context import EMAIL_PATTERN

# Base64 images would give random matches for short secrets; they are not text a reader sees.
_DATA_URI = re.compile(r"data:[\w/+.\-]+;base64,[A-Za-z0-9+/=\s]+")
_IMAGE_MIME = re.compile(r"^image/")
SHORT_PASSWORD = 6
"""A password shorter than this is matched only as a whole token, not inside longer words."""


@dataclass(frozen=True)
class Leak:
    file: str      # path relative to the bundle
    kind: str      # "database URL" | "database password" | "unmasked e-mail address"

    def __str__(self) -> str:
        return f"{self.file} contains the {self.kind}"


def _url_forms(url: URL | None) -> list[str]:
    if url is None or not url.password:
        return []   # without a password the URL is not a secret (and the cover names the database)
    forms = {url.render_as_string(hide_password=False), url.render_as_string(hide_password=True)}
    return sorted(forms, key=len, reverse=True)


def _password_patterns(url: URL | None) -> list[re.Pattern]:
    if url is None or not url.password:
        return []
    password = str(url.password)
    forms = {password, quote(password, safe=""), quote_plus(password), html.escape(password)}
    if len(password) >= SHORT_PASSWORD:
        return [re.compile(re.escape(f)) for f in forms]
    return [re.compile(rf"(?<![A-Za-z0-9]){re.escape(f)}(?![A-Za-z0-9])") for f in forms]


def _ipynb_strings(data, out: list[str]) -> None:
    """Every string of a notebook JSON except base64 image payloads."""
    if isinstance(data, dict):
        for key, value in data.items():
            out.append(str(key))
            if not _IMAGE_MIME.match(str(key)):
                _ipynb_strings(value, out)
    elif isinstance(data, list):
        for value in data:
            _ipynb_strings(value, out)
    elif isinstance(data, str):
        out.append(data)


def _texts(path: Path) -> list[str]:
    """The readable text of a file, in the forms a secret could hide in."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix in (".ipynb", ".json"):
        try:
            strings: list[str] = []
            _ipynb_strings(json.loads(raw), strings)
            return ["\n".join(strings)]
        except ValueError:
            pass
    text = _DATA_URI.sub("", raw)
    return [text, html.unescape(text)] if path.suffix in (".html", ".htm") else [text]


def email_checked(relative: str) -> bool:
    """Suppression lists keep addresses whole by contract; every other output must mask them."""
    return not Path(relative).name.startswith("suppress_")


def scan_bundle(bundle: Path, url: URL | None, mask_emails: bool) -> list[Leak]:
    """Scan every file under `bundle`; an empty list means the bundle may be published."""
    url_forms = _url_forms(url)
    password_patterns = _password_patterns(url)
    leaks: list[Leak] = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        relative = path.relative_to(bundle).as_posix()
        texts = _texts(path)
        if any(form in text for form in url_forms for text in texts):
            leaks.append(Leak(relative, "database URL"))
        elif any(p.search(text) for p in password_patterns for text in texts):
            leaks.append(Leak(relative, "database password"))
        if mask_emails and email_checked(relative) and any(EMAIL_PATTERN.search(t) for t in texts):
            leaks.append(Leak(relative, "unmasked e-mail address"))
    return leaks
