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
``mail.log.2.gz``): :func:`chronological` orders them oldest first. Syslog and msmtp stamps carry
no year: a file's first stamp takes the latest year that puts it on or before an anchor date
(the rotation date in a ``-YYYYMMDD`` file name, else the period's end), and the year advances
whenever the month goes back (December -> January). RFC 3339 stamps (newer rsyslog) and Exim
stamps carry their year; times are kept naive in the server's local time, like Bitrix's
DATETIME columns (a zone offset, when written, is dropped).

Lines that do not belong to the detected format are counted and a few are kept, with every
address masked, for the report; they never stop the read.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
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
    """What reading one file found."""

    path: str
    format: str | None
    lines: int = 0
    events: int = 0
    unparseable: int = 0
    samples: list[str] = field(default_factory=list)

    def reject(self, line: str) -> None:
        self.unparseable += 1
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(mask_addresses(line.rstrip("\n")[:300]))


_ADDRESS = re.compile(r"[^\s<>()\[\],;:'\"=]+@[^\s<>()\[\],;:'\"=]+")


def mask_addresses(text: str) -> str:
    """Every address in `text` masked (for samples of log lines shown in a report)."""
    return _ADDRESS.sub(lambda m: mask(m.group(0)) or "", text)


# --- timestamps ----------------------------------------------------------------------------------

_MONTHS = {name: i for i, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# msmtp writes %b in the server's locale: the Russian abbreviations of BitrixVM hosts.
_MONTHS.update({"янв": 1, "фев": 2, "мар": 3, "апр": 4, "мая": 5, "май": 5, "июн": 6, "июл": 7,
                "авг": 8, "сен": 9, "окт": 10, "ноя": 11, "дек": 12})
_DATEEXT = re.compile(r"-(\d{8})(?:\.gz)?$")
_ROTATION = re.compile(r"\.(\d+)(?:\.gz)?$")


class YearResolver:
    """Years for ``Mmm dd HH:MM:SS`` stamps of one file read in order.

    The first stamp takes the latest year that does not put it after `anchor`; afterwards the
    year advances each time the month goes back (December -> January).
    """

    def __init__(self, anchor: date):
        self.anchor = anchor
        self.year: int | None = None
        self.month = 0

    def resolve(self, month: int, day: int, clock: str) -> datetime:
        if self.year is None:
            year = self.anchor.year
            if (month, day) > (self.anchor.month, self.anchor.day):
                year -= 1
            self.year = year
        elif month < self.month:
            self.year += 1
        self.month = month
        hour, minute, second = int(clock[0:2]), int(clock[3:5]), int(clock[6:8])
        try:
            return datetime(self.year, month, day, hour, minute, second)
        except ValueError:  # 29 Feb in a year that has none: the stamp belongs to the next leap year
            return datetime(self.year + 1, month, day, hour, minute, second)


def anchor_for(path: Path, period_end: date | None) -> date:
    """The date a file's year-less stamps are resolved against (see the module docstring)."""
    found = _DATEEXT.search(path.name)
    if found:
        try:
            return datetime.strptime(found.group(1), "%Y%m%d").date()
        except ValueError:
            pass
    return period_end or date.today()


def chronological(paths: Iterable[Path]) -> list[Path]:
    """Rotated files oldest first: dateext names by date, ``.N`` names by N descending, then the live file."""
    def key(path: Path):
        name = path.name
        stamped = _DATEEXT.search(name)
        if stamped:
            return (_DATEEXT.sub("", name), 0, stamped.group(1), 0)
        numbered = _ROTATION.search(name)
        if numbered:
            return (_ROTATION.sub("", name), 1, "", -int(numbered.group(1)))
        return (name.removesuffix(".gz"), 2, "", 0)
    return sorted((Path(p) for p in paths), key=key)


def open_text(path: Path) -> io.TextIOBase:
    """The file as text lines, gunzipped when it is gzip (by its magic bytes, not its name).

    Bytes that are not UTF-8 (cp1251 servers) are replaced rather than failing the read.
    """
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


# --- shared pieces of text ------------------------------------------------------------------------

_DSN = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_REPLY_CODE = re.compile(r"(?<!\d)([245]\d\d)(?:[ -]|$)")


def smtp_code_of(text: str) -> int | None:
    """The first basic reply code (``550``) that opens a reply inside `text`."""
    said = re.search(r"said: ([245]\d\d)\b", text)
    if said:
        return int(said.group(1))
    found = _REPLY_CODE.search(text)
    return int(found.group(1)) if found else None


def dsn_of(text: str) -> str | None:
    found = _DSN.search(text)
    return found.group(1) if found else None


# --- syslog lines (Postfix, msmtp via syslog) -----------------------------------------------------

_SYSLOG = re.compile(
    r"^(?:(?P<mon>[^\W\d_]{3})\.?\s+(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d)"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[\d+\])?: (?P<msg>.*)$"
)


def _syslog_time(match: re.Match, years: YearResolver) -> datetime | None:
    if match.group("iso"):
        return datetime.fromisoformat(match.group("iso"))
    month = _MONTHS.get(match.group("mon").lower())
    if month is None:
        return None
    return years.resolve(month, int(match.group("day")), match.group("clock"))


# --- Postfix ----------------------------------------------------------------------------------------

_PF_QUEUED = re.compile(r"^(?P<qid>(?!NOQUEUE)[0-9A-Za-z]{5,20}): (?P<rest>.*)$")
_PF_TO = re.compile(r"\bto=<(?P<to>[^>]*)>")
_PF_DSN = re.compile(r"\bdsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3})")
_PF_STATUS = re.compile(r"\bstatus=(?P<status>[a-z]+)(?: \((?P<text>.*)\))?\s*$")
_PF_MESSAGE_ID = re.compile(r"^message-id=<?(?P<mid>[^>\s]*)>?")
_PF_EXPIRED = re.compile(r"\bstatus=expired\b")


class _Queued:
    __slots__ = ("message_id", "deferred")

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.deferred: dict[str, tuple[str | None, str]] = {}   # recipient -> (dsn, text) of the last deferral


def read_postfix(lines: Iterable[str], stats: FileStats, years: YearResolver) -> Iterator[DeliveryEvent]:
    queue: dict[str, _Queued] = {}
    clock = _StampCache(years)
    for line in lines:
        stats.lines += 1
        match = _SYSLOG.match(line.rstrip("\r\n"))
        if not match:
            if line.strip():
                stats.reject(line)
            continue
        if not match.group("prog").startswith("postfix"):
            continue  # other programs share the mail log (dovecot, opendkim…)
        queued = _PF_QUEUED.match(match.group("msg"))
        if not queued:
            continue  # connect/disconnect, NOQUEUE rejects of incoming mail, warnings
        qid, rest = queued.group("qid", "rest")
        if rest == "removed":
            queue.pop(qid, None)
            continue
        if rest.startswith("message-id="):
            found = _PF_MESSAGE_ID.match(rest)
            _remember(queue, qid).message_id = found.group("mid") if found else None
            continue
        if rest.startswith("to=<"):
            to, status = _PF_TO.search(rest), _PF_STATUS.search(rest)
            when = clock.time(match)
            if not to or not status or status.group("status") not in STATUSES or when is None:
                stats.reject(line)
                continue
            email = normalise(to.group("to"))
            dsn_match = _PF_DSN.search(rest)
            dsn = dsn_match.group("dsn") if dsn_match else None
            text = status.group("text") or ""
            state = _remember(queue, qid)
            if status.group("status") == DEFERRED:
                state.deferred[email] = (dsn, text)
            else:
                state.deferred.pop(email, None)
            stats.events += 1
            yield DeliveryEvent(when, email, status.group("status"), dsn, smtp_code_of(text), text,
                                qid, state.message_id, stats.path)
            continue
        if rest.startswith("from=<") and _PF_EXPIRED.search(rest):
            state = queue.get(qid)
            when = clock.time(match)
            for email, (dsn, text) in (state.deferred.items() if state and when else ()):
                stats.events += 1
                yield DeliveryEvent(when, email, EXPIRED, dsn, smtp_code_of(text), text,
                                    qid, state.message_id, stats.path)
            if state:
                state.deferred.clear()


class _StampCache:
    """Resolves a syslog line's stamp, reusing the previous result for the same stamp text."""

    def __init__(self, years: YearResolver):
        self.years = years
        self.last_text: str | None = None
        self.last_time: datetime | None = None

    def time(self, match: re.Match) -> datetime | None:
        text = match.group("iso") or match.group("mon") + match.group("day") + match.group("clock")
        if text != self.last_text:
            self.last_text, self.last_time = text, _syslog_time(match, self.years)
        return self.last_time


def _remember(queue: dict[str, _Queued], qid: str) -> _Queued:
    state = queue.get(qid)
    if state is None:
        if len(queue) >= OPEN_QUEUE_LIMIT:
            queue.pop(next(iter(queue)))
        state = queue[qid] = _Queued()
    return state


# --- msmtp --------------------------------------------------------------------------------------------

_MSMTP_OWN = re.compile(r"^(?P<mon>[^\W\d_]{3})\.?\s+(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d) (?P<msg>host=.*)$")
_MSMTP_FIELD = re.compile(r"(?P<key>[a-z]+)=(?:'(?P<quoted>(?:[^']|'(?! [a-z]+=|$))*)'|(?P<plain>\S*))")


def parse_msmtp_fields(msg: str) -> dict[str, str]:
    """``host=… recipients=a,b smtpmsg='550 …'`` as a dict (quoted values may hold spaces)."""
    return {m.group("key"): m.group("quoted") if m.group("quoted") is not None else m.group("plain")
            for m in _MSMTP_FIELD.finditer(msg)}


def read_msmtp(lines: Iterable[str], stats: FileStats, years: YearResolver) -> Iterator[DeliveryEvent]:
    for line in lines:
        stats.lines += 1
        text_line = line.rstrip("\r\n")
        own = _MSMTP_OWN.match(text_line)
        if own:
            month = _MONTHS.get(own.group("mon").lower())
            when = years.resolve(month, int(own.group("day")), own.group("clock")) if month else None
            msg = own.group("msg")
        else:
            syslog = _SYSLOG.match(text_line)
            if not syslog or not syslog.group("msg").startswith("host="):
                if text_line.strip():
                    stats.reject(line)
                continue
            when, msg = _syslog_time(syslog, years), syslog.group("msg")
        fields = parse_msmtp_fields(msg)
        recipients = [r for r in (fields.get("recipients") or "").split(",") if r.strip()]
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

_EXIM = re.compile(
    r"^(?P<date>\d{4}-\d\d-\d\d) (?P<clock>\d\d:\d\d:\d\d)(?:\.\d+)?(?: [+-]\d{4})?(?: \[\d+\])?"
    r" (?P<mid>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?P<flag><=|=>|->|>>|\*>|\*\*|==|Completed)"
    r"(?: (?P<rest>.*))?$"
)
_EXIM_ANY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_EXIM_SMTP_ERROR = re.compile(r"SMTP error from remote mail(?: server)? after [^:]*(?::<[^>]*>)?: (?P<text>.*)$")
_EXIM_CONFIRMATION = re.compile(r'\bC="(?P<text>[^"]*)"')
_EXIM_FLAGS = {"=>": SENT, "->": SENT, "==": DEFERRED, "**": BOUNCED}
_EXIM_GAVE_UP = re.compile(r"retry time(?:out)? (?:not reached for any host after a long failure period|exceeded)",
                           re.IGNORECASE)


def read_exim(lines: Iterable[str], stats: FileStats) -> Iterator[DeliveryEvent]:
    for line in lines:
        stats.lines += 1
        text_line = line.rstrip("\r\n")
        match = _EXIM.match(text_line)
        if not match:
            if text_line.strip() and not _EXIM_ANY.match(text_line):
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
        when = datetime.fromisoformat(f"{match.group('date')} {match.group('clock')}")
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


def detect_format(path: Path) -> str | None:
    """The format that recognises most of the file's first lines, or None when none does."""
    with open_text(path) as handle:
        head = [line for _, line in zip(range(DETECT_LINES), handle) if line.strip()]
    if not head:
        return None
    if _csv_positions(next(csv.reader([head[0]], delimiter=_delimiter(head[0])))):
        return CSV
    scores = Counter()
    for line in head:
        text = line.rstrip("\r\n")
        if _EXIM_ANY.match(text):
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
    """Reads a set of delivery-log files as one stream of events; `stats` says what each file held."""

    def __init__(self, paths: Iterable[str | Path], period_end: date | None = None, fmt: str | None = None):
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"unknown delivery-log format {fmt!r}; formats: {', '.join(FORMATS)}")
        self.paths = chronological(Path(p) for p in paths)
        self.period_end = period_end
        self.fmt = fmt
        self.stats: list[FileStats] = []

    def events(self) -> Iterator[DeliveryEvent]:
        self.stats = []
        for path in self.paths:
            fmt = self.fmt or detect_format(path)
            stats = FileStats(path=path.name, format=fmt)
            self.stats.append(stats)
            with open_text(path) as handle:
                if fmt is None:
                    for line in handle:
                        stats.lines += 1
                        if line.strip():
                            stats.reject(line)
                    continue
                yield from self._read(fmt, handle, stats, path)

    def _read(self, fmt: str, handle, stats: FileStats, path: Path) -> Iterator[DeliveryEvent]:
        if fmt == POSTFIX:
            return read_postfix(handle, stats, YearResolver(anchor_for(path, self.period_end)))
        if fmt == MSMTP:
            return read_msmtp(handle, stats, YearResolver(anchor_for(path, self.period_end)))
        if fmt == EXIM:
            return read_exim(handle, stats)
        return read_csv(handle, stats)

    @property
    def unparseable(self) -> int:
        return sum(s.unparseable for s in self.stats)
