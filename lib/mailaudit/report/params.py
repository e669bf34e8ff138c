"""Parameter file: load, validate, fill defaults, resolve paths.

Every problem is reported as a one-line `ParamsError` (the CLI turns it into exit code 2) before
any notebook runs. The file never holds credentials: a URL with a password anywhere in it is
refused, and the database is named either by an SQLite path or by the *name* of an environment
variable that holds the SQLAlchemy URL.
"""
from __future__ import annotations

import copy
import datetime as dt
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from mailaudit.period import Period

REPORT_NAMES = ("data_and_tracking", "list_hygiene", "open_inflation", "segments", "conversion")
SEGMENT_DIMENSIONS = ("list", "provider", "crm_source", "tenure", "client")

CREDENTIALS_MESSAGE = (
    "credentials come from the environment: put the URL in an environment variable "
    "and name it with database.url_env"
)
# scheme://user:password@host — the password part is non-empty and has no '@' or '/'.
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:'\"]*:[^\s/@'\"]+@")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GLOB_CHARS = re.compile(r"[*?\[]")


class ParamsError(ValueError):
    """A parameter file that cannot be used; the message is one line and holds no secret."""


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay text, so a bad one is an error naming its key."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


# --- field checkers: each takes (value, key) and returns the cleaned value or raises ----------

def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParamsError(f"{key}: expected a positive integer, got {value!r}")
    return value


def _positive_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ParamsError(f"{key}: expected a positive number, got {value!r}")
    return value


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ParamsError(f"{key}: expected true or false, got {value!r}")
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParamsError(f"{key}: expected a non-empty text")
    return value.strip()


def _optional_text(value: Any, key: str) -> str | None:
    return None if value is None else _text(value, key)


def _date(value: Any, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ParamsError(f"{key}: expected a date YYYY-MM-DD, got {value!r}")


def _choice(*allowed: str) -> Callable[[Any, str], str]:
    def check(value: Any, key: str) -> str:
        if value not in allowed:
            raise ParamsError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")
        return value
    return check


def _choices_list(*allowed: str) -> Callable[[Any, str], list[str]]:
    def check(value: Any, key: str) -> list[str]:
        if not isinstance(value, list) or not value:
            raise ParamsError(f"{key}: expected a non-empty list of {', '.join(allowed)}")
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise ParamsError(f"{key}: unknown value {unknown[0]!r}; allowed: {', '.join(allowed)}")
        return list(dict.fromkeys(value))
    return check


# --- the schema: section -> key -> (checker, default) -------------------------------------------

_SECTIONS: dict[str, dict[str, tuple[Callable[[Any, str], Any], Any]]] = {
    "hygiene": {
        "soft_bounce_streak": (_positive_int, 3),
        "unsub_grace_hours": (_positive_int, 48),
        "inactive_months": (_positive_int, 6),
        "inactive_min_sends": (_positive_int, 5),
        # look up each address domain's MX/A records (cached, one query per domain); needs network access
        "check_dns": (_boolean, False),
        # custom CRM user field (UF_CRM_...) that marks a contact "do not email", if the portal has one
        "crm_unsub_field": (_optional_text, None),
    },
    "conversion": {
        "open_window_days": (_positive_int, 5),
        "click_window_days": (_positive_int, 30),
        "cohort": (_choice("month", "week"), "month"),
        "followup_days": (_positive_int, 3),
    },
    "privacy": {
        "mask_emails": (_boolean, True),
    },
    "segments": {
        "dimensions": (_choices_list(*SEGMENT_DIMENSIONS), list(SEGMENT_DIMENSIONS)),
        "correction": (_choice("holm", "fdr_bh"), "holm"),
        "min_delivered": (_positive_int, 500),
        # estimate each segment's human open rate (a second pass over the period's sends, and the access logs)
        "human_opens": (_boolean, True),
        # "custom" (a list of {table, column, name}) is checked by _custom_dimensions
    },
    "opens": {
        "scanner_seconds": (_positive_number, 10),
        # "apple_ranges" (a file path or null) is resolved by _optional_file
    },
    "snapshot": {
        # every statement sent to the source is stopped by the server after this long
        "statement_timeout_seconds": (_positive_number, 60),
        # rows one range read aims at (the key range adapts to the table's density)
        "chunk_rows": (_positive_int, 250_000),
        # key ranges read at once, on separate connections
        "parallel_reads": (_positive_int, 2),
        # attempts of a range whose connection was lost (exponential backoff from 1 s)
        "retries": (_positive_int, 5),
        # memory cap of the embedded engine; it spills to disk beyond
        "memory_mb": (_positive_int, 1024),
        # "path" (where `run` writes the snapshot it makes) is resolved by _optional_path
    },
    "run": {
        # a notebook cell still running after this long is stopped and fails its report
        "cell_timeout_seconds": (_positive_int, 1800),
        # reports executed at once, each in its own kernel (the engine's memory cap is shared); one at a
        # time keeps a 1M-contact run under 2 GB, two side by side are faster but add their memory up
        "parallel_reports": (_positive_int, 1),
    },
    "report": {
        # CSV files start with a UTF-8 byte-order mark, so that Excel reads Cyrillic as UTF-8
        "csv_bom": (_boolean, True),
        # the language of every page, finding, label and chart of the bundle (`run --lang` overrides it)
        "language": (_choice("en", "ru"), "en"),
    },
}
_TOP_KEYS = ("client", "period", "demo", "database", "logs", *_SECTIONS, "reports")
_CUSTOM_DIMENSION_KEYS = ("table", "column", "name")
DATABASE_KEYS = ("sqlite", "url_env", "snapshot")


def _reject_unknown(mapping: dict, allowed: tuple[str, ...] | list[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            place = f"{where}.{key}" if where else str(key)
            raise ParamsError(f"unknown key {place!r}; allowed keys{' in ' + where if where else ''}: "
                              f"{', '.join(allowed)}")


def _mapping(value: Any, key: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamsError(f"{key}: expected a mapping of keys, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Params:
    """Validated parameters with defaults filled and paths made absolute."""

    path: Path
    client: str
    period: Period
    database: dict | None           # {"sqlite": Path} | {"url_env": NAME} | {"snapshot": Path} | None
    logs: dict[str, list[Path]]     # {"delivery": [...], "access": [...]} (existing files, sorted)
    hygiene: dict
    conversion: dict
    privacy: dict
    segments: dict
    opens: dict
    snapshot: dict
    run: dict
    report: dict
    reports: list[str] = field(default_factory=lambda: list(REPORT_NAMES))
    demo: bool = False              # without `database`: audit the demo database (else an error)

    @property
    def mask_emails(self) -> bool:
        return bool(self.privacy["mask_emails"])

    @property
    def csv_bom(self) -> bool:
        return bool(self.report["csv_bom"])

    def to_dict(self) -> dict:
        """Plain JSON/YAML-safe form (dates as ISO text, paths as text); holds no secret."""
        def plain(value):
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            if isinstance(value, Path):
                return str(value)
            return value
        return plain({
            "client": self.client,
            "demo": self.demo,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "database": self.database,
            "logs": self.logs,
            "hygiene": self.hygiene,
            "conversion": self.conversion,
            "privacy": self.privacy,
            "segments": self.segments,
            "opens": self.opens,
            "snapshot": self.snapshot,
            "run": self.run,
            "report": self.report,
            "reports": self.reports,
        })


def refuse_url_passwords(text: str) -> None:
    """Raise when `text` holds a URL with a password (`scheme://user:secret@host`)."""
    if _URL_WITH_PASSWORD.search(text):
        raise ParamsError(f"a URL with a password is written in the parameter file; {CREDENTIALS_MESSAGE}")


def load_params(path: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Params:
    """Read and validate the YAML file at `path`.

    Relative paths inside the file (SQLite database, log files, Apple ranges) resolve against
    `base_dir`, by default the current working directory.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"parameter file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"cannot read parameter file {path}: {type(exc).__name__}") from None
    refuse_url_passwords(text)
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of parameters at the top level")
    return validate_params(raw, path=path, base_dir=base_dir)


def validate_params(raw: dict, path: str | os.PathLike = "<params>",
                    base_dir: str | os.PathLike | None = None) -> Params:
    """Validate an already-parsed parameter mapping (see `load_params`)."""
    raw = copy.deepcopy(raw)
    refuse_url_passwords(repr(raw))
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    _reject_unknown(raw, _TOP_KEYS, "")

    client = _text(raw["client"], "client") if raw.get("client") is not None else Path(path).stem
    period = _period(raw.get("period"))
    demo = _boolean(raw["demo"], "demo") if raw.get("demo") is not None else False
    database = _database(raw.get("database"), base)
    logs = _logs(raw.get("logs"), base)

    sections: dict[str, dict] = {}
    for name, spec in _SECTIONS.items():
        given = _mapping(raw.get(name), name)
        extra = {"segments": ("custom",), "opens": ("apple_ranges",), "snapshot": ("path",)}.get(name, ())
        _reject_unknown(given, [*spec, *extra], name)
        section = {}
        for key, (check, default) in spec.items():
            value = given.get(key)
            # an absent key or an explicit null both mean "the default"
            section[key] = check(value, f"{name}.{key}") if value is not None else copy.deepcopy(default)
        sections[name] = section
    sections["segments"]["custom"] = _custom_dimensions(_mapping(raw.get("segments"), "segments").get("custom"))
    sections["opens"]["apple_ranges"] = _optional_file(
        _mapping(raw.get("opens"), "opens").get("apple_ranges"), "opens.apple_ranges", base)
    target = _mapping(raw.get("snapshot"), "snapshot").get("path")
    sections["snapshot"]["path"] = None if target is None else _absolute(_text(target, "snapshot.path"), base)

    reports = raw.get("reports")
    reports = list(REPORT_NAMES) if reports is None else _choices_list(*REPORT_NAMES)(reports, "reports")

    return Params(path=Path(path), client=client, period=period, database=database, logs=logs,
                  reports=reports, demo=demo, **sections)


def _period(value: Any) -> Period:
    if value is None:
        raise ParamsError("period: required, e.g. period: {start: 2026-01-01, end: 2026-03-31}")
    value = _mapping(value, "period")
    _reject_unknown(value, ("start", "end"), "period")
    for key in ("start", "end"):
        if value.get(key) is None:
            raise ParamsError(f"period.{key}: required (a date YYYY-MM-DD)")
    start, end = _date(value["start"], "period.start"), _date(value["end"], "period.end")
    if start > end:
        raise ParamsError(f"period: start {start} is after end {end}")
    return Period(start, end)


def _database(value: Any, base: Path) -> dict | None:
    if value is None:
        return None
    value = _mapping(value, "database")
    _reject_unknown(value, DATABASE_KEYS, "database")
    given = [k for k in DATABASE_KEYS if value.get(k) is not None]
    if len(given) != 1:
        raise ParamsError("database: give exactly one of sqlite (a file path), url_env (the name of an "
                          "environment variable holding the URL) or snapshot (a snapshot file)")
    if given == ["url_env"]:
        name = value["url_env"]
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            if isinstance(name, str) and "://" in name:
                raise ParamsError(f"database.url_env: expected a variable name, not a URL; {CREDENTIALS_MESSAGE}")
            raise ParamsError(f"database.url_env: expected an environment variable name, got {name!r}")
        return {"url_env": name}
    key = given[0]
    path = value[key]
    if not isinstance(path, str) or not path.strip():
        raise ParamsError(f"database.{key}: expected a file path")
    if "://" in path:
        raise ParamsError(f"database.{key}: expected a file path, not a URL; {CREDENTIALS_MESSAGE}")
    file = _absolute(path, base)
    if not file.is_file():
        hint = " (make it with `mailaudit snapshot --params FILE --out PATH`)" if key == "snapshot" else ""
        raise ParamsError(f"database.{key}: file not found: {file}{hint}")
    return {key: file}


def _logs(value: Any, base: Path) -> dict[str, list[Path]]:
    value = _mapping(value, "logs")
    _reject_unknown(value, ("delivery", "access"), "logs")
    logs = {}
    for kind in ("delivery", "access"):
        entries = value.get(kind) or []
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, str) and e.strip() for e in entries):
            raise ParamsError(f"logs.{kind}: expected a list of file paths or glob patterns")
        logs[kind] = expand_log_paths(entries, base, f"logs.{kind}")
    return logs


def expand_log_paths(entries: list[str], base: Path, key: str) -> list[Path]:
    """Expand globs (rotated files such as maillog-20260101.gz), de-duplicate and sort by name.

    A plain path that does not exist, or a pattern that matches nothing, is an error.
    """
    files: set[Path] = set()
    for entry in entries:
        pattern = _absolute(entry, base)
        if _GLOB_CHARS.search(entry):
            matches = [Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file()]
            if not matches:
                raise ParamsError(f"{key}: no file matches {entry!r} (resolved to {pattern})")
            files.update(matches)
        elif pattern.is_file():
            files.add(pattern)
        else:
            raise ParamsError(f"{key}: file not found: {pattern}")
    return sorted(files)


def _custom_dimensions(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ParamsError("segments.custom: expected a list of {table, column, name}")
    out = []
    for i, item in enumerate(value):
        where = f"segments.custom[{i}]"
        item = _mapping(item, where)
        _reject_unknown(item, _CUSTOM_DIMENSION_KEYS, where)
        table, column = _text(item.get("table"), f"{where}.table"), _text(item.get("column"), f"{where}.column")
        name = _text(item["name"], f"{where}.name") if item.get("name") is not None else f"{table}.{column}"
        out.append({"table": table, "column": column, "name": name})
    return out


def _optional_file(value: Any, key: str, base: Path) -> Path | None:
    if value is None:
        return None
    file = _absolute(_text(value, key), base)
    if not file.is_file():
        raise ParamsError(f"{key}: file not found: {file}")
    return file


def _absolute(value: str, base: Path) -> Path:
    path = Path(os.path.expanduser(value.strip()))
    return path if path.is_absolute() else (base / path).resolve()
