"""Web-server access logs: Bitrix tracking-pixel and click hits, streamed line by line.

Reads nginx/Apache ``combined`` and BitrixVM's own nginx ``main`` format (the upstream time
sits inside the brackets and the status comes before the request), plain or gzip, rotated
files in chronological order. Each tracking hit's ``tag`` is decoded to the recipient id
(b_sender_posting_recipient.ID) without trusting it: undecodable tags are counted, never
dropped silently. Times are kept as the naive local time the server wrote, like Bitrix's
DATETIME columns.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple
from urllib.parse import unquote

OPEN_PATHS = ("/bitrix/tools/track_mail_read.php", "/pub/mail/read.php")
"""Pixel endpoints (Bitrix sender module, and portal boxes)."""
CLICK_PATHS = ("/bitrix/tools/track_mail_click.php", "/pub/mail/click.php")
"""Click-redirect endpoints."""

SENDER_MODULE = "sender"
"""Tag module of campaign mail; ``crm`` tags are one-to-one CRM e-mails on the same endpoints."""

OPEN = "open"
CLICK = "click"

# $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
_COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]\s]+ [^\]\s]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) \S+'
    r'(?: "(?P<referer>[^"]*)" "(?P<ua>[^"]*)")?'
)
# BitrixVM: $remote_addr - $remote_user [$time_local - $upstream_response_time] $status "$request"
#           $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"
_BITRIXVM = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]\s]+ [^\]\s]+) - [^\]]*\] (?P<status>\d{3}) "(?P<request>[^"]*)" \S+'
    r' "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"'
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_EPOCH = datetime(1970, 1, 1)
_RECIPIENT_JSON = re.compile(r'\{\s*"RECIPIENT_ID"\s*:\s*"?(\d+)"?\s*\}')
"""The usual tag payload; anything else goes through the JSON parser."""
_ROTATION_SUFFIX = re.compile(r"\.(\d+)(?:\.gz)?$")
_DATEEXT_SUFFIX = re.compile(r"-(\d{8})(?:\.gz)?$")


class TrackingHit(NamedTuple):
    """One request to a pixel or click endpoint whose tag decoded to a sender recipient."""

    kind: str               # OPEN or CLICK
    recipient_id: int
    timestamp: int          # seconds since 1970-01-01 of the naive server-local time of the request
    ip: str
    user_agent: str
    status: int

    @property
    def time(self) -> datetime:
        """Naive server-local time of the request, like Bitrix's DATETIME columns."""
        return _EPOCH + timedelta(seconds=self.timestamp)


@dataclass
class ScanStats:
    """What a pass over the logs saw, for the report's data-quality notes (counts of lines)."""

    files: int = 0
    lines: int = 0
    unparsed_lines: int = 0                 # lines naming an endpoint, in neither combined nor BitrixVM format
    tracking_lines: int = 0                 # requests to a pixel or click endpoint
    sender_hits: Counter = field(default_factory=Counter)   # {OPEN|CLICK: n} decoded sender hits
    crm_hits: int = 0                       # module `crm` (one-to-one CRM mail, not campaigns)
    other_module_hits: int = 0              # a tag of any other module
    garbage_tags: int = 0                   # sender/no-module tag missing, not base64, not JSON or no RECIPIENT_ID
    failed_requests: int = 0                # HTTP status >= 400 (not counted as hits)
    undecodable_lines: int = 0              # other lines with bytes that are not UTF-8 (binary junk)
    read_errors: list = field(default_factory=list)   # "file: reason" of files that could not be read to the end
    per_file: list = field(default_factory=list)      # one FILE_COLUMNS dict per file, in reading order

    def _counts(self) -> tuple[int, int, int, int, int]:
        return (self.lines, self.tracking_lines, sum(self.sender_hits.values()), self.unparsed_lines,
                self.garbage_tags, self.undecodable_lines)

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "lines": self.lines,
            "unparsed_lines": self.unparsed_lines,
            "tracking_lines": self.tracking_lines,
            "sender_opens": self.sender_hits[OPEN],
            "sender_clicks": self.sender_hits[CLICK],
            "crm_hits": self.crm_hits,
            "other_module_hits": self.other_module_hits,
            "garbage_tags": self.garbage_tags,
            "failed_requests": self.failed_requests,
            "undecodable_lines": self.undecodable_lines,
            "unreadable_files": len(self.read_errors),
            "per_file": list(self.per_file),
        }


FILE_COLUMNS = ["file", "lines", "tracking_lines", "sender_hits", "unparsed_lines", "garbage_tags",
                "undecodable_lines", "read_error"]
"""What each access-log file held (ScanStats.per_file): a file with no sender hit has no usable line."""


def _rotation_key(path: Path) -> tuple:
    """Oldest first: ``access.log.3.gz`` < ``access.log.2`` < ``access.log.1`` < ``access.log``;
    dateext names (``access.log-20260101.gz``) sort by their date, before the live file."""
    name = path.name
    m = _ROTATION_SUFFIX.search(name)
    if m:
        return (name[: m.start()], 0, -int(m.group(1)), "")
    m = _DATEEXT_SUFFIX.search(name)
    if m:
        return (name[: m.start()], 0, 0, m.group(1))
    return (name, 1, 0, "")


def order_rotated(paths: Iterable[str | Path]) -> list[Path]:
    """The given files in chronological order of their rotation suffixes."""
    return sorted((Path(p) for p in paths), key=lambda p: (str(p.parent), _rotation_key(p)))


def open_text(path: str | Path):
    """Open a plain or gzip log (detected by its magic bytes, not its name) as text lines."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, "rt", encoding="utf-8", errors="replace")


def parse_time_local(text: str) -> datetime:
    """``27/Nov/2026:17:26:03 +0300`` -> naive 2026-11-27 17:26:03 (server local time, offset dropped)."""
    return _EPOCH + timedelta(seconds=local_seconds(text))


@lru_cache(maxsize=4096)
def _day_seconds(day_text: str) -> int:
    day, month, year = day_text.split("/")
    return int((datetime(int(year), _MONTHS[month], int(day)) - _EPOCH).total_seconds())


def local_seconds(text: str) -> int:
    """``27/Nov/2026:17:26:03 +0300`` -> seconds since 1970-01-01 of the naive local time."""
    return _day_seconds(text[:11]) + int(text[12:14]) * 3600 + int(text[15:17]) * 60 + int(text[18:20])


def _b64decode_lenient(text: str) -> bytes:
    """Standard or URL-safe base64 with missing padding."""
    text = text.strip().rstrip("=").replace("-", "+").replace("_", "/")
    if not text:
        raise ValueError("empty")
    if len(text) % 4 == 1:
        raise ValueError("not base64")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


_PHP_ESCAPES = (("%3D", "="), ("%2B", "+"), ("%2F", "/"), ("%3d", "="), ("%2b", "+"), ("%2f", "/"))


def _percent_decoded(raw: str) -> str:
    """``unquote``, with a fast path for the three escapes PHP's urlencode puts into a base64 tag."""
    if "%" not in raw:
        return raw
    for escape, char in _PHP_ESCAPES:
        raw = raw.replace(escape, char)
    return unquote(raw) if "%" in raw else raw


@lru_cache(maxsize=1 << 18)
def decode_tag(raw: str) -> tuple[str, int | None]:
    """Decode a ``tag`` query value to ``(module, recipient_id)``.

    The value is percent-decoded (``%3D``, ``%2B``, ``%2F``; a ``+`` stays a ``+``, never a space,
    and doubly encoded values are decoded twice), split on the first ``.`` into module and base64
    payload, base64-decoded with missing padding tolerated, and read as JSON. ``recipient_id`` is
    None when anything fails (a garbage tag); module is ``""`` when there is no ``.``.
    """
    value = _percent_decoded(raw)
    if "%" in value:
        value = _percent_decoded(value)
    module, sep, payload = value.partition(".")
    if not sep:
        return "", None
    try:
        text = _b64decode_lenient(payload).decode("utf-8")
        quick = _RECIPIENT_JSON.fullmatch(text)
        if quick:
            recipient_id = int(quick.group(1))
        else:
            data = json.loads(text)
            recipient = data["RECIPIENT_ID"] if isinstance(data, dict) else None
            recipient_id = int(recipient)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        return module.lower(), None
    if recipient_id <= 0:
        return module.lower(), None
    return module.lower(), recipient_id


def _query_value(query: str, name: str) -> str | None:
    prefix = name + "="
    for part in query.split("&"):
        if part.startswith(prefix):
            return part[len(prefix):]
    return None


def _endpoint_kind(path: str, open_paths: tuple[str, ...], click_paths: tuple[str, ...]) -> str | None:
    if path.endswith(open_paths):
        return OPEN
    if path.endswith(click_paths):
        return CLICK
    return None


_FORMATS = (_COMBINED, _BITRIXVM)


def _markers(paths: tuple[str, ...]) -> tuple[str, ...]:
    """The endpoints' file names, without any that contains another (``read.php`` finds
    ``track_mail_read.php`` too): substrings every tracking request holds."""
    names = sorted({p.rsplit("/", 1)[-1] for p in paths}, key=len)
    return tuple(n for i, n in enumerate(names) if not any(shorter in n for shorter in names[:i]))


def parse_line(line: str):
    """The regex match of a combined or BitrixVM ``main`` line, or None."""
    return _COMBINED.match(line) or _BITRIXVM.match(line)


def iter_tracking_hits(
    paths: Iterable[str | Path],
    stats: ScanStats | None = None,
    open_paths: tuple[str, ...] = OPEN_PATHS,
    click_paths: tuple[str, ...] = CLICK_PATHS,
) -> Iterator[TrackingHit]:
    """Stream the sender-module pixel and click hits of the given logs (rotated files oldest first).

    Non-sender tags, garbage tags and failed requests are counted in ``stats`` and not yielded.
    Extra endpoint paths (a portal's custom ``read_link``) can be passed in ``open_paths``.
    """
    stats = stats if stats is not None else ScanStats()
    markers = _markers(open_paths + click_paths)
    formats = list(_FORMATS)
    for path in order_rotated(paths):
        stats.files += 1
        before, error = stats._counts(), None
        try:
            with open_text(path) as fh:
                yield from _file_hits(fh, stats, markers, formats, open_paths, click_paths)
        except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz or an unreadable file: named, never fatal
            error = f"{path.name}: {exc}"
            stats.read_errors.append(error)
        counts = [after - first for after, first in zip(stats._counts(), before)]
        stats.per_file.append(dict(zip(FILE_COLUMNS, [path.name, *counts, error])))


def _file_hits(fh, stats: ScanStats, markers: tuple[str, ...], formats: list, open_paths: tuple[str, ...],
               click_paths: tuple[str, ...]) -> Iterator[TrackingHit]:
    for line in fh:
        stats.lines += 1
        for marker in markers:  # cheap pre-filter: most lines are not tracking requests
            if marker in line:
                break
        else:
            if "\ufffd" in line:   # bytes that are not UTF-8: binary junk (or another encoding)
                stats.undecodable_lines += 1
            continue
        m = formats[0].match(line)
        if m is None:
            m = formats[1].match(line)
            if m is None:
                stats.unparsed_lines += 1
                continue
            formats.reverse()   # a file keeps one format: try it first from now on
        request = m.group("request").split(" ")
        if len(request) < 2:
            continue
        route, _, query = request[1].partition("?")
        kind = _endpoint_kind(route, open_paths, click_paths)
        if kind is None:
            continue
        stats.tracking_lines += 1
        status = int(m.group("status"))
        if status >= 400:
            stats.failed_requests += 1
            continue
        raw_tag = _query_value(query, "tag")
        if raw_tag is None:
            stats.garbage_tags += 1
            continue
        module, recipient_id = decode_tag(raw_tag)
        if module == "crm":
            stats.crm_hits += 1
            continue
        if module and module != SENDER_MODULE:
            stats.other_module_hits += 1
            continue
        if recipient_id is None:
            stats.garbage_tags += 1
            continue
        stats.sender_hits[kind] += 1
        yield TrackingHit(kind, recipient_id, local_seconds(m.group("time")), m.group("ip"),
                          m.group("ua") or "", status)
