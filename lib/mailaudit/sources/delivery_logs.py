"""Outgoing mail-server logs (Postfix, Exim, msmtp, CSV exports) as a stream of delivery events.

Every reader yields one :class:`DeliveryEvent` per recipient per delivery attempt, in file
order, with the status normalised to ``sent | deferred | bounced | expired | failed``:

- **Postfix**: the per-recipient ``to=<…>, dsn=…, status=…`` lines of any delivery agent
  (smtp, lmtp, local, virtual, error), joined by queue id with the message's ``message-id=``
  (cleanup) and with the qmgr ``status=expired, returned to sender`` line, which names no
  recipient: it expires every recipient of that queue id still deferred.
- **Exim** mainlog: ``=>`` / ``->`` delivered, ``==`` deferred, ``**`` failed (``expired``
  when Exim gave up after its retry timeout).
- **msmtp** (BitrixVM's PHP mailer): one line per message for all its ``recipients=``;
  ``smtpstatus`` 2xx sent (accepted by the relay), 4xx deferred, 5xx bounced; no SMTP status
  but an ``errormsg`` (relay unreachable, authentication…) is ``failed``.
- **CSV** with a header naming the e-mail, date, status code and text columns
  (``email,date,status_code,text``).

Files may be gzip-compressed (detected by content) and rotated (``maillog-20260101``,
``mail.log.2.gz``): :func:`chronological` orders them oldest first. Exim may log through syslog
(``exim[pid]:`` before its own stamp, or a splogger epoch stamp), msmtp through OpenWrt's
``logread`` (``Mon Oct 14 23:35:55 2024 mail.info msmtp: …``).

Years come from the log itself, never from a report period. Exim, RFC 3339 and ``logread``
stamps carry theirs. Syslog and msmtp stamps (``Mmm dd HH:MM:SS``) do not: the file's last stamp
takes the latest year that does not put it after the file's end (the ``-YYYYMMDD`` date of a
dateext name, else the file's modification time, and never after the first stamp of the next
newer file of the same rotation), and the years before it follow the stamps backwards, one year
for each December -> January step (a stamp is placed in the year nearest to the previous one, so
a few lines out of order around New Year do not shift a year). Times are kept naive in the
server's local time, like Bitrix's DATETIME columns (a zone offset, when written, is dropped).

Nothing in a file stops the read: lines that do not belong to the detected format are counted
(undecodable bytes apart) and a few are kept, with every address masked, for the report; syslog
lines cut short (syslog daemons cut near 1,000 bytes) keep what can be read (address, status, dsn)
and are counted as truncated; a damaged ``.gz`` or an unreadable file is named in ``read_error``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from mailaudit.emails import mask, normalise

SENT = "sent"
DEFERRED = "deferred"
BOUNCED = "bounced"
EXPIRED = "expired"
FAILED = "failed"
STATUSES = (SENT, DEFERRED, BOUNCED, EXPIRED, FAILED)

POSTFIX, EXIM, MSMTP, CSV = "postfix", "exim", "msmtp", "csv"
FORMATS = (POSTFIX, EXIM, MSMTP, CSV)

SAMPLE_LIMIT = 5
"""Unparseable lines kept per file (addresses masked) to show in the report."""
OPEN_QUEUE_LIMIT = 200_000
"""Postfix queue ids remembered at once; the oldest are forgotten when a log lacks `removed` lines."""
CUT_LINE_LENGTH = 900
"""A syslog line at least this long that lacks its end was cut by the syslog daemon (near 1,000 bytes)."""


class DeliveryEvent(NamedTuple):
    """One recipient's outcome of one delivery attempt, as the mail server logged it."""

    time: datetime              # naive, server-local
    email: str                  # lower-cased, trimmed
    status: str                 # sent | deferred | bounced | expired | failed
    dsn: str | None             # enhanced status code "5.1.1"
    smtp_code: int | None       # basic reply code 550
    text: str                   # the remote server's reply or the local error
    queue_id: str | None        # Postfix queue id / Exim message id
    message_id: str | None      # Message-ID header (Postfix cleanup), when logged
    source: str                 # file name the line came from


@dataclass
class FileStats:
    """What reading one file found (one row of the report's log-file table)."""

    path: str
    format: str | None
    lines: int = 0
    events: int = 0
    unparseable: int = 0            # lines of no known shape
    truncated_lines: int = 0        # lines cut short; read as far as they go
    undecodable_lines: int = 0      # binary junk: NUL bytes or bytes that are not text
    read_error: str | None = None   # the file could not be read to its end (named, with the reason)
    year_source: str | None = None  # where year-less stamps got their year
    samples: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Whether the file gave at least one delivery event."""
        return self.events > 0

    def reject(self, line: str) -> None:
        if "\ufffd" in line or "\x00" in line:
            self.undecodable_lines += 1
            return
        self.unparseable += 1
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(mask_addresses(line.rstrip("\n")[:300]))

    def as_row(self) -> dict:
        return {"file": self.path, "format": self.format or "not recognised", "lines": self.lines,
                "events": self.events, "unparseable": self.unparseable, "truncated_lines": self.truncated_lines,
                "undecodable_lines": self.undecodable_lines, "read_error": self.read_error,
                "year_source": self.year_source}


_ADDRESS = re.compile(r"[^\s<>()\[\],;:'\"=]+@[^\s<>()\[\],;:'\"=]+")


def mask_addresses(text: str) -> str:
    """Every address in `text` masked (for samples of log lines shown in a report)."""
    return _ADDRESS.sub(lambda m: mask(m.group(0)) or "", text)


# --- files ------------------------------------------------------------------------------------------

_DATEEXT = re.compile(r"-(\d{8})(?:\.gz)?$")
_ROTATION = re.compile(r"\.(\d+)(?:\.gz)?$")


def _rotation_key(path: Path) -> tuple:
    name = path.name
    stamped = _DATEEXT.search(name)
    if stamped:
        return (_DATEEXT.sub("", name), 0, stamped.group(1), 0)
    numbered = _ROTATION.search(name)
    if numbered:
        return (_ROTATION.sub("", name), 1, "", -int(numbered.group(1)))
    return (name.removesuffix(".gz"), 2, "", 0)


def chronological(paths: Iterable[Path]) -> list[Path]:
    """Rotated files oldest first: dateext names by date, ``.N`` names by N descending, then the live file."""
    return sorted((Path(p) for p in paths), key=lambda p: (str(p.parent), _rotation_key(p)))


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def open_text(path: Path) -> io.TextIOBase:
    """The file as text lines, gunzipped when it is gzip (by its magic bytes, not its name).

    Bytes that are not UTF-8 (cp1251 servers) are replaced rather than failing the read.
    """
    if _is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


READ_ERRORS = (OSError, EOFError, zlib.error)


def _read_error(path: Path, exc: BaseException) -> str:
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return f"{path.name}: damaged or truncated gzip ({exc}); the lines before the damage were read"
    return f"{path.name}: {exc.strerror or exc}" if isinstance(exc, OSError) else f"{path.name}: {exc}"


def _guarded(handle, stats: FileStats, path: Path) -> Iterator[str]:
    """The file's lines; a read failure (truncated gzip…) ends them and is recorded, never raised."""
    try:
        yield from handle
    except READ_ERRORS as exc:
        stats.read_error = _read_error(path, exc)


# --- years of year-less stamps ----------------------------------------------------------------------

_MONTHS = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# msmtp writes %b in the server's locale: the Russian abbreviations of BitrixVM hosts.
_MONTHS.update({"янв": 1, "фев": 2, "мар": 3, "апр": 4, "мая": 5, "май": 5, "июн": 6, "июл": 7,
                "авг": 8, "сен": 9, "окт": 10, "ноя": 11, "дек": 12})
_MONTH_STARTS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _day_of_year(month: int, day: int) -> int:
    return _MONTH_STARTS[month - 1] + day


def _step(year: int, previous: tuple[int, int], month: int, day: int) -> int:
    """The year of (month, day) after a stamp of (previous month, day) in `year`. Logs run forward in
    time: a date more than a week earlier in the calendar means a new year began (December ->
    January); a late-December line right after early-January ones came out of order and is last
    year's; any forward move, however long, stays in the year."""
    gap = _day_of_year(month, day) - _day_of_year(*previous)
    if gap < -7:
        return year + 1
    if gap >= 360:
        return year - 1
    return year


def _safe_datetime(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # 29 February of a year without one: the stamp is wrong by a day, not by a year
        return datetime(year, month, 28, hour, minute, second)


class YearResolver:
    """Years for the ``Mmm dd HH:MM:SS`` stamps of one file read in order: the first stamp takes
    `first_year`, each later one the year nearest to the stamp before it."""

    def __init__(self, first_year: int):
        self.year = first_year
        self.previous: tuple[int, int] | None = None

    def resolve(self, month: int, day: int, clock: str) -> datetime:
        if self.previous is not None and month != self.previous[0]:
            self.year = _step(self.year, self.previous, month, day)
        self.previous = (month, day)
        return _safe_datetime(self.year, month, day, int(clock[0:2]), int(clock[3:5]), int(clock[6:8]))


_STAMP = re.compile(r"([^\W\d_]{3})\.?\s+(\d{1,2}) (\d\d):(\d\d):(\d\d)")


def _stamp_of(line: str) -> tuple[int, int, int] | None:
    found = _STAMP.match(line)
    if not found:
        return None
    month = _MONTHS.get(found.group(1).lower())
    if month is None:
        return None
    return month, int(found.group(2)), int(found.group(3)) * 3600 + int(found.group(4)) * 60 + int(found.group(5))


def _month_changes(path: Path) -> list[tuple[int, int, int]]:
    """The file's year-less stamps wherever the month changes, plus its last one, in file order.

    A quick pass over the raw lines (it compares the first three bytes of each line with the line
    before): it is what lets the last stamp date the first one however sparse the log is."""
    stamps: list[tuple[int, int, int]] = []
    previous = b""
    last = b""
    opener = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rb") as handle:
            for raw in handle:
                if raw[:3] != previous:
                    previous = raw[:3]
                    stamp = _stamp_of(raw[:24].decode("utf-8", "replace"))
                    if stamp:
                        stamps.append(stamp)
                last = raw
    except READ_ERRORS:
        pass  # a damaged .gz: the read names it; date what could be read
    stamp = _stamp_of(last[:24].decode("utf-8", "replace"))
    if stamp:
        stamps.append(stamp)
    return stamps


CLOCK_SKEW = timedelta(hours=1)
"""Tolerance between a file's modification time and its last stamp (time zones, late flushes)."""


@dataclass(frozen=True)
class YearPlan:
    """The year of a file's first year-less stamp, and what decided it."""

    first_year: int
    first: tuple[int, int, int]
    source: str

    @property
    def first_time(self) -> datetime:
        month, day, seconds = self.first
        return _safe_datetime(self.first_year, month, day) + timedelta(seconds=seconds)


def file_end(path: Path) -> tuple[datetime, str]:
    """The latest time a file's lines can have: the end of its dateext day, else its modification time."""
    found = _DATEEXT.search(path.name)
    if found:
        try:
            return datetime.strptime(found.group(1), "%Y%m%d") + timedelta(days=1), "dateext"
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime), "modification time"


def plan_years(path: Path, not_after: tuple[datetime, str] | None = None) -> YearPlan | None:
    """The year plan of a file with year-less stamps (None when it has none): its last stamp is put in
    the latest year not after the file's end (or `not_after`, the next newer file's first stamp, when
    earlier), and the stamps before it follow backwards."""
    stamps = _month_changes(path)
    if not stamps:
        return None
    end, source = file_end(path)
    if not_after is not None and not_after[0] < end:
        end, source = not_after
    offset, previous = 0, stamps[0][:2]
    for month, day, _ in stamps[1:]:
        offset = _step(offset, previous, month, day)
        previous = (month, day)
    month, day, seconds = stamps[-1]
    year = end.year
    if _safe_datetime(year, month, day) + timedelta(seconds=seconds) > end + CLOCK_SKEW:
        year -= 1
    return YearPlan(year - offset, stamps[0], source)


# --- shared pieces of text ------------------------------------------------------------------------

_DSN = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_REPLY_CODE = re.compile(r"(?<!\d)([245]\d\d)(?:[ -]|$)")
_SAID = re.compile(r"said: ([245]\d\d)\b")


def smtp_code_of(text: str) -> int | None:
    """The first basic reply code (``550``) that opens a reply inside `text`."""
    said = _SAID.search(text)
    if said:
        return int(said.group(1))
    found = _REPLY_CODE.search(text)
    return int(found.group(1)) if found else None


def dsn_of(text: str) -> str | None:
    found = _DSN.search(text)
    return found.group(1) if found else None


# --- syslog lines (Postfix, msmtp and Exim via syslog) ---------------------------------------------

_SYSLOG = re.compile(
    r"^(?:(?P<mon>[^\W\d_]{3})\.?\s+(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d)"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[\d+\])?: (?P<msg>.*)$"
)


class _Clock:
    """Times of syslog stamps in file order (RFC 3339 ones keep their year), reusing the last result."""

    def __init__(self, years: YearResolver | None):
        self.years = years
        self.last_text: str | None = None
        self.last_time: datetime | None = None

    def time(self, stamp: str) -> datetime | None:
        if stamp != self.last_text:
            self.last_text, self.last_time = stamp, self._parse(stamp)
        return self.last_time

    def _parse(self, stamp: str) -> datetime | None:
        if stamp[:4].isdigit():
            try:
                return datetime.fromisoformat(stamp[:19])
            except ValueError:
                return None
        found = _STAMP.match(stamp)
        month = _MONTHS.get(found.group(1).lower()) if found else None
        if month is None or self.years is None:
            return None
        return self.years.resolve(month, int(found.group(2)), stamp[-8:])


# --- Postfix ----------------------------------------------------------------------------------------

_PF_HEAD = re.compile(
    r"(?P<stamp>[^\W\d_]{3}\.? [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" \S+ postfix[^\s\[:]*(?:\[\d+\])?: (?P<qid>(?!NOQUEUE)[0-9A-Za-z]{5,20}): ")
_PF_MESSAGE_ID = re.compile(r"message-id=<?(?P<mid>[^>\s]*)>?")
_SYSLOG_MONTHS = frozenset(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
_SYSLOG_START = re.compile(r"[^\W\d_]{3}\.?\s+\d{1,2} \d\d:\d\d:\d\d |\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class _Queued:
    __slots__ = ("message_id", "deferred")

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.deferred: dict[str, tuple[str | None, str]] = {}   # recipient -> (dsn, text) of the last deferral


def _remember(queue: dict[str, _Queued], qid: str) -> _Queued:
    state = queue.get(qid)
    if state is None:
        if len(queue) >= OPEN_QUEUE_LIMIT:
            queue.pop(next(iter(queue)))
        state = queue[qid] = _Queued()
    return state


def read_postfix(lines: Iterable[str], stats: FileStats, years: YearResolver | None) -> Iterator[DeliveryEvent]:
    """Postfix delivery events. Only four line shapes matter (``to=<`` deliveries, cleanup's
    ``message-id=``, qmgr's ``removed`` and ``status=expired``); plain substring tests find them
    before any regular expression runs, which is what makes the reader fast."""
    queue: dict[str, _Queued] = {}
    clock = _Clock(years)
    source = stats.path
    count = 0
    try:
        for line in lines:
            count += 1
            if " to=<" in line:
                kind = 1
            elif "message-id=" in line:
                kind = 2
            elif line.endswith((": removed\n", ": removed")):
                kind = 3
            elif "status=expired" in line:
                kind = 4
            else:
                if line[:3] not in _SYSLOG_MONTHS and not line[:4].isdigit() and line.strip():
                    stats.reject(line)  # not a syslog line at all (a cheap test: most lines are other Postfix ones)
                continue
            head = _PF_HEAD.match(line)
            if head is None:
                if not _SYSLOG_START.match(line):
                    stats.reject(line)
                continue  # another program's line, or a warning naming an address
            qid = head.group("qid")
            rest = line[head.end():].rstrip("\r\n")
            if kind == 1:
                event = _postfix_delivery(rest, line, qid, head.group("stamp"), queue, clock, stats, source)
                if event is not None:
                    yield event
            elif kind == 2:
                if rest.startswith("message-id="):
                    found = _PF_MESSAGE_ID.match(rest)
                    _remember(queue, qid).message_id = found.group("mid") if found else None
            elif kind == 3:
                if rest == "removed":
                    queue.pop(qid, None)
            elif rest.startswith("from=<"):
                state = queue.get(qid)
                when = clock.time(head.group("stamp"))
                if state is not None and when is not None:
                    for email, (dsn, text) in state.deferred.items():
                        stats.events += 1
                        yield DeliveryEvent(when, email, EXPIRED, dsn, smtp_code_of(text), text, qid,
                                            state.message_id, source)
                    state.deferred.clear()
    finally:
        stats.lines += count


def _postfix_delivery(rest: str, line: str, qid: str, stamp: str, queue: dict[str, _Queued], clock: _Clock,
                      stats: FileStats, source: str) -> DeliveryEvent | None:
    """One ``to=<…>, relay=…, dsn=…, status=… (text)`` line; a line cut short keeps what it has."""
    if not rest.startswith("to=<"):
        return None
    close = rest.find(">", 4)
    at = rest.find(", status=")
    if close < 0 or at < 0:
        if len(line) >= CUT_LINE_LENGTH:
            stats.truncated_lines += 1
        else:
            stats.reject(line)
        return None
    end = rest.find(" ", at + 9)
    status = rest[at + 9:] if end < 0 else rest[at + 9:end]
    if status not in STATUSES:
        if not status.replace("-", "").isalpha():
            stats.reject(line)
        return None  # address-verification probes (undeliverable-but-not-cached, deliverable): not deliveries
    text = ""
    if end > 0 and rest[end + 1:end + 2] == "(":
        text = rest[end + 2:]
        if text.endswith(")"):
            text = text[:-1]
        elif len(line) >= CUT_LINE_LENGTH:
            stats.truncated_lines += 1
    when = clock.time(stamp)
    if when is None:
        stats.reject(line)
        return None
    dsn = None
    found = rest.find(", dsn=", 0, at + 1)
    if found >= 0:
        value = rest[found + 6:rest.find(",", found + 6)]
        if len(value) >= 5 and value[1] == "." and value[0] in "245":
            dsn = value
    email = normalise(rest[4:close])
    state = queue.get(qid)
    if status == DEFERRED:
        if state is None:
            state = _remember(queue, qid)
        state.deferred[email] = (dsn, text)
    elif state is not None and state.deferred:
        state.deferred.pop(email, None)
    if status == SENT:
        code = int(text[:3]) if text[:3].isdigit() else None
    else:
        code = smtp_code_of(text)
    stats.events += 1
    return DeliveryEvent(when, email, status, dsn, code, text, qid, state.message_id if state else None, source)


# --- msmtp --------------------------------------------------------------------------------------------

_MSMTP_OWN = re.compile(r"^(?P<mon>[^\W\d_]{3})\.?\s+(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d) (?P<msg>host=.*)$")
_LOGREAD = re.compile(
    r"^[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d) (?P<year>\d{4})"
    r" \S+ (?P<prog>[^\s\[:]+)(?:\[\d+\])?: (?P<msg>.*)$")
"""OpenWrt ``logread``: ``Mon Oct 14 23:35:55 2024 mail.info msmtp: host=…`` (ctime stamp with the year)."""
_MSMTP_FIELD = re.compile(r"(?P<key>[a-z]+)=(?:'(?P<quoted>(?:[^']|'(?! [a-z]+=|$))*)'?|(?P<plain>\S*))")


def parse_msmtp_fields(msg: str) -> dict[str, str]:
    """``host=… recipients=a,b smtpmsg='550 …'`` as a dict (quoted values may hold spaces)."""
    return {m.group("key"): m.group("quoted") if m.group("quoted") is not None else m.group("plain")
            for m in _MSMTP_FIELD.finditer(msg)}


def _msmtp_line(text_line: str, years: YearResolver | None) -> tuple[datetime | None, str] | None:
    """(time, the ``host=…`` part) of an msmtp line in its own, syslog or logread form."""
    own = _MSMTP_OWN.match(text_line)
    if own:
        month = _MONTHS.get(own.group("mon").lower())
        when = years.resolve(month, int(own.group("day")), own.group("clock")) if month and years else None
        return when, own.group("msg")
    logread = _LOGREAD.match(text_line)
    if logread:
        if not logread.group("msg").startswith("host="):
            return None
        month = _MONTHS.get(logread.group("mon").lower())
        when = _safe_datetime(int(logread.group("year")), month, int(logread.group("day")),
                              *map(int, logread.group("clock").split(":"))) if month else None
        return when, logread.group("msg")
    syslog = _SYSLOG.match(text_line)
    if not syslog or not syslog.group("msg").startswith("host="):
        return None
    stamp = syslog.group("iso") or f"{syslog.group('mon')} {syslog.group('day')} {syslog.group('clock')}"
    return _Clock(years).time(stamp), syslog.group("msg")


def read_msmtp(lines: Iterable[str], stats: FileStats, years: YearResolver | None) -> Iterator[DeliveryEvent]:
    for line in lines:
        stats.lines += 1
        text_line = line.rstrip("\r\n")
        found = _msmtp_line(text_line, years)
        if found is None:
            if text_line.strip():
                stats.reject(line)
            continue
        when, msg = found
        fields = parse_msmtp_fields(msg)
        cut = "exitcode" not in fields
        if cut and len(line) >= CUT_LINE_LENGTH:
            stats.truncated_lines += 1
            if "smtpstatus" not in fields and "errormsg" not in fields:
                continue  # cut before the outcome: nothing to report for its recipients
            if "smtpstatus" not in fields:
                fields["exitcode"] = "EX_UNAVAILABLE"
        recipients = [r for r in (fields.get("recipients") or "").split(",") if "@" in r]
        if when is None or not recipients:
            stats.reject(line)
            continue
        status, code, text = _msmtp_outcome(fields)
        dsn = dsn_of(text)
        for recipient in recipients:
            stats.events += 1
            yield DeliveryEvent(when, normalise(recipient), status, dsn, code, text, None, None, stats.path)


def _msmtp_outcome(fields: dict[str, str]) -> tuple[str, int | None, str]:
    smtpstatus = fields.get("smtpstatus")
    text = fields.get("smtpmsg") or fields.get("errormsg") or ""
    if smtpstatus and smtpstatus.isdigit():
        code = int(smtpstatus)
        status = SENT if code < 400 else DEFERRED if code < 500 else BOUNCED
        return status, code, text
    if fields.get("exitcode", "EX_OK") == "EX_OK" and not fields.get("errormsg"):
        return SENT, None, text
    if fields.get("exitcode") == "EX_TEMPFAIL":
        return DEFERRED, None, text
    return FAILED, None, text


# --- Exim ---------------------------------------------------------------------------------------------

_EXIM_MID = r"[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}"
_EXIM = re.compile(
    r"^(?:(?P<date>\d{4}-\d\d-\d\d) (?P<clock>\d\d:\d\d:\d\d)(?:\.\d+)?(?: [+-]\d{4})?(?: \[\d+\])? )?"
    rf"(?P<mid>{_EXIM_MID}) (?P<flag><=|=>|->|>>|\*>|\*\*|==|Completed)(?: (?P<rest>.*))?$"
)
_EXIM_ANY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_EXIM_SYSLOG = re.compile(
    r"^(?P<stamp>[^\W\d_]{3}\.?\s+\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" \S+ [^\s\[:]+(?:\[\d+\])?: (?:\d{9,10}\.\d+ )?")
"""Exim through syslog: ``Mmm dd HH:MM:SS host exim[pid]: `` (splogger adds an epoch stamp) before
Exim's own line, which keeps its date unless ``syslog_timestamp`` is false."""
_EXIM_SMTP_ERROR = re.compile(r"SMTP error from remote mail(?:er| server)? after [^:]*(?::<[^>]*>)?"
                              r"(?: SIZE=\d+)?: (?:host [^:]*: )?(?P<text>.*)$")
_EXIM_CONFIRMATION = re.compile(r'\bC="(?P<text>[^"]*)"')
_EXIM_FLAGS = {"=>": SENT, "->": SENT, "==": DEFERRED, "**": BOUNCED}
_EXIM_GAVE_UP = re.compile(r"retry time(?:out)? (?:not reached for any host after a long failure period|exceeded)",
                           re.IGNORECASE)


def read_exim(lines: Iterable[str], stats: FileStats, years: YearResolver | None = None) -> Iterator[DeliveryEvent]:
    clock = _Clock(years)
    for line in lines:
        stats.lines += 1
        text_line = line.rstrip("\r\n")
        stamp = None
        wrapped = _EXIM_SYSLOG.match(text_line)
        if wrapped and not _EXIM_ANY.match(text_line):
            stamp, text_line = wrapped.group("stamp"), text_line[wrapped.end():]
        match = _EXIM.match(text_line)
        if not match or (match.group("date") is None and stamp is None):
            if text_line.strip() and not _EXIM_ANY.match(text_line) and not wrapped:
                stats.reject(line)
            continue  # other Exim lines: SMTP connections, rejects of incoming mail, queue runs
        status = _EXIM_FLAGS.get(match.group("flag"))
        if status is None:
            continue
        rest = match.group("rest") or ""
        address = rest.split(" ", 1)[0].rstrip(":")
        if "@" not in address:
            stats.reject(line)
            continue
        text = _exim_text(rest, status)
        if status == BOUNCED and _EXIM_GAVE_UP.search(text):
            status = EXPIRED
        if match.group("date"):
            when = datetime.fromisoformat(f"{match.group('date')} {match.group('clock')}")
        else:
            when = clock.time(stamp)
            if when is None:
                stats.reject(line)
                continue
        stats.events += 1
        yield DeliveryEvent(when, normalise(address.strip("<>")), status, dsn_of(text), smtp_code_of(text),
                            text, match.group("mid"), None, stats.path)


def _exim_text(rest: str, status: str) -> str:
    if status == SENT:
        confirmation = _EXIM_CONFIRMATION.search(rest)
        return confirmation.group("text") if confirmation else ""
    remote = _EXIM_SMTP_ERROR.search(rest)
    if remote:
        return remote.group("text")
    # local failures: "** addr: Unrouteable address", "** addr R=x T=y: retry timeout exceeded"
    head, _, tail = rest.partition(": ")
    return tail or head
# --- CSV exports ----------------------------------------------------------------------------------

_CSV_COLUMNS = {
    "email": ("email", "e-mail", "recipient", "address", "to", "rcpt"),
    "date": ("date", "time", "datetime", "timestamp", "date_time", "event_time"),
    "code": ("status_code", "code", "smtp_code", "status", "dsn", "smtp_status"),
    "text": ("text", "message", "reason", "diagnostic", "response", "smtp_response", "error"),
}
_CSV_DATE_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S")
_CSV_WORDS = {"sent": SENT, "delivered": SENT, "ok": SENT, "deferred": DEFERRED, "soft": DEFERRED,
              "bounced": BOUNCED, "bounce": BOUNCED, "hard": BOUNCED, "expired": EXPIRED,
              "failed": FAILED, "error": FAILED}


def _csv_positions(header: list[str]) -> dict[str, int] | None:
    names = [h.strip().lower() for h in header]
    positions = {}
    for role, aliases in _CSV_COLUMNS.items():
        for alias in aliases:
            if alias in names:
                positions[role] = names.index(alias)
                break
    return positions if {"email", "date"} <= positions.keys() else None


def _csv_time(value: str) -> datetime | None:
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=None)
    except ValueError:
        pass
    for fmt in _CSV_DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def csv_outcome(code_field: str, text: str) -> tuple[str | None, str | None, int | None]:
    """(status, dsn, smtp code) from a CSV status column (``550``, ``5.1.1``, ``550 5.1.1``, ``bounced``)."""
    code_field = (code_field or "").strip()
    word = _CSV_WORDS.get(code_field.lower())
    dsn = dsn_of(code_field) or dsn_of(text)
    found = _REPLY_CODE.search(code_field)
    smtp_code = int(found.group(1)) if found else smtp_code_of(text)
    if word:
        return word, dsn, smtp_code
    first = (str(smtp_code) if smtp_code else dsn or "")[:1]
    status = {"2": SENT, "4": DEFERRED, "5": BOUNCED}.get(first)
    return status, dsn, smtp_code


def _delimiter(first_line: str) -> str:
    return ";" if first_line.count(";") > first_line.count(",") else ","


def read_csv(lines: Iterable[str], stats: FileStats) -> Iterator[DeliveryEvent]:
    iterator = iter(lines)
    first = next(iterator, "")
    stats.lines += 1 if first else 0
    delimiter = _delimiter(first)
    header = next(csv.reader([first], delimiter=delimiter))
    positions = _csv_positions(header)
    pending: list[str] = []
    if positions is None:  # no header: the documented column order
        positions = {"email": 0, "date": 1, "code": 2, "text": 3}
        pending.append(first)

    def rows() -> Iterator[str]:
        yield from pending
        for raw in iterator:
            stats.lines += 1
            yield raw

    for row in csv.reader(rows(), delimiter=delimiter):
        if not row or not any(value.strip() for value in row):
            continue

        def cell(role: str) -> str:
            at = positions.get(role)
            return row[at] if at is not None and at < len(row) else ""

        email, when = normalise(cell("email")), _csv_time(cell("date"))
        text = cell("text").strip()
        status, dsn, smtp_code = csv_outcome(cell("code"), text)
        if not email or "@" not in email or when is None or status is None:
            stats.reject(",".join(row))
            continue
        stats.events += 1
        yield DeliveryEvent(when, email, status, dsn, smtp_code, text, None, None, stats.path)


# --- detection and the public reader --------------------------------------------------------------

DETECT_LINES = 200
YEARLESS_FORMATS = (POSTFIX, MSMTP, EXIM)
"""Formats whose stamps may lack a year (Exim only when it logs through syslog without its own stamp)."""


def detect_format(path: Path) -> str | None:
    """The format that recognises most of the file's first lines, or None when none does."""
    with open_text(path) as handle:
        head = []
        try:
            for line in handle:
                if line.strip():
                    head.append(line)
                    if len(head) >= DETECT_LINES:
                        break
        except READ_ERRORS:
            pass  # a damaged .gz: detect from what could be read; the read names the damage
    if not head:
        return None
    if _csv_positions(next(csv.reader([head[0]], delimiter=_delimiter(head[0])))):
        return CSV
    scores = Counter()
    for line in head:
        text = line.rstrip("\r\n")
        wrapped = _EXIM_SYSLOG.match(text)
        if _EXIM_ANY.match(text) or (wrapped and _EXIM.match(text[wrapped.end():])):
            scores[EXIM] += 1
        if _MSMTP_OWN.match(text) or (" host=" in text and ("recipients=" in text or "exitcode=" in text)):
            scores[MSMTP] += 1
        syslog = _SYSLOG.match(text)
        if syslog and syslog.group("prog").startswith("postfix"):
            scores[POSTFIX] += 1
    if not scores:
        return CSV if path.name.lower().removesuffix(".gz").endswith(".csv") else None
    return scores.most_common(1)[0][0]


class DeliveryLogReader:
    """Reads a set of delivery-log files as one stream of events; `stats` says what each file held.

    Years of year-less stamps come from the files themselves (see the module docstring); nothing
    in a file raises: damaged, empty and binary files are counted in `stats`.
    """

    def __init__(self, paths: Iterable[str | Path], fmt: str | None = None):
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"unknown delivery-log format {fmt!r}; formats: {', '.join(FORMATS)}")
        self.paths = chronological(Path(p) for p in paths)
        self.fmt = fmt
        self.stats: list[FileStats] = []

    def events(self) -> Iterator[DeliveryEvent]:
        self.stats = [FileStats(path=path.name, format=None) for path in self.paths]
        formats = [self._format(path, stats) for path, stats in zip(self.paths, self.stats)]
        plans = self._year_plans(formats)
        for path, fmt, stats in zip(self.paths, formats, self.stats):
            stats.format = fmt
            if stats.read_error and fmt is None:
                continue
            plan = plans.get(path)
            stats.year_source = plan.source if plan else None
            years = YearResolver(plan.first_year) if plan else None
            try:
                with open_text(path) as handle:
                    lines = _guarded(handle, stats, path)
                    if fmt is None:
                        for line in lines:
                            stats.lines += 1
                            if line.strip():
                                stats.reject(line)
                        continue
                    yield from self._read(fmt, lines, stats, years)
            except OSError as exc:
                stats.read_error = _read_error(path, exc)

    def _format(self, path: Path, stats: FileStats) -> str | None:
        try:
            return self.fmt or detect_format(path)
        except READ_ERRORS as exc:
            stats.read_error = _read_error(path, exc)
            return None

    def _year_plans(self, formats: list[str | None]) -> dict[Path, YearPlan]:
        """Year plans of the year-less files, newest first within each rotation group, so that a file
        never ends after the next newer one begins."""
        plans: dict[Path, YearPlan] = {}
        newer_start: dict[tuple, tuple[datetime, str]] = {}
        for path, fmt, stats in reversed(list(zip(self.paths, formats, self.stats))):
            if fmt not in YEARLESS_FORMATS:
                continue
            group = (str(path.parent), _rotation_key(path)[0])
            try:
                plan = plan_years(path, newer_start.get(group))
            except READ_ERRORS as exc:
                stats.read_error = _read_error(path, exc)
                continue
            if plan is not None:
                plans[path] = plan
                newer_start[group] = (plan.first_time, "next rotated file")
        return plans

    @staticmethod
    def _read(fmt: str, lines: Iterable[str], stats: FileStats, years: YearResolver | None) -> Iterator[DeliveryEvent]:
        if fmt == POSTFIX:
            return read_postfix(lines, stats, years)
        if fmt == MSMTP:
            return read_msmtp(lines, stats, years)
        if fmt == EXIM:
            return read_exim(lines, stats, years)
        return read_csv(lines, stats)

    @property
    def unparseable(self) -> int:
        return sum(s.unparseable for s in self.stats)
