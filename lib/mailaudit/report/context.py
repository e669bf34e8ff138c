"""What a report notebook works with: parameters, the snapshot's model, and the report's outputs.

A notebook starts with a ``parameters`` cell (``params_path``, ``out_dir``, ``snapshot_path``) and then::

    ctx = ReportContext.open("list_hygiene", params_path, out_dir, snapshot_path)

What it offers:
  ctx.params, ctx.period, ctx.source (dialect, database name)
  ctx.model (the snapshot's relations), ctx.sql(query) -> DataFrame   for analysts exploring
  ctx.capability (.ok, .reason), ctx.can_run          whether the source's tables allow this report
  ctx.notes_data_gaps()          notes on rows every figure leaves out (sent without DATE_SENT, blank addresses)
  ctx.says_if_empty()            True when the period holds no e-mail send; then the page, the notes and
                                 the headline say so (figures of the period are the analyses' nulls)
  ctx.record(section, figures)   merged into summary.json[section] (numpy types, NaN -> null)
  ctx.note(text)                 -> summary.json reports.<name>.notes
  ctx.headline(text)             the report's line in index.html
  ctx.finding(severity, title, detail)   shown as a one-line finding, kept in reports.<name>.findings
  ctx.show(df, caption, percent=[...])   an HTML table (addresses masked when privacy.mask_emails)
  ctx.save_table(name, df)       -> DIR/tables/<name>.csv (masked likewise)
  ctx.write_suppression(reason, df)      -> DIR/suppress_<reason>.csv (whole addresses)
  ctx.mask(address)              the address as the report may show it

The snapshot is made before the notebooks run (or, interactively, on first use from the database URL
in the kernel's own environment): no secret is ever a parameter.
Everything the notebook records (figures, notes, headline, findings, tables, suppression files)
is written at once to ``out_dir/.parts/<report>.json``, so the figures of a notebook that fails
half-way are still known to the runner, which merges the parts into ``summary.json``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from IPython.display import HTML, display

from mailaudit import emails
from mailaudit.narrative import language
from mailaudit.narrative.common import label as reader_label
from mailaudit.narrative.common import money as money_text
from mailaudit.narrative.common import pct, severity_word
from mailaudit.narrative.common import points as points_text
from mailaudit.narrative.language import _, ngettext
from mailaudit.report.csv_files import write_csv
from mailaudit.report.dotenv import load_env_file
from mailaudit.report.params import REPORT_NAMES, Params, load_params

PARTS_DIR = ".parts"
SEVERITIES = ("high", "medium", "low", "info")
RESERVED_SECTIONS = ("schema_version", "period", "source", "reports", "run")
"""summary.json keys the runner writes; a notebook cannot record into them."""
WORKDIR_ENV = "MAILAUDIT_WORKDIR"
# the runner sets it when reports run side by side: each kernel's share of snapshot.memory_mb
ENGINE_MEMORY_ENV = "MAILAUDIT_ENGINE_MEMORY_MB"
RUN_SHARED_ENV = "MAILAUDIT_RUN_SHARED"
"""The runner sets this for the kernels: a private folder where `ReportContext.once` keeps what several
reports of the run compute alike."""
"""The runner sets this for the kernel: relative paths in the parameter file resolve against it."""

EMAIL_PATTERN = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
_SEVERITY_STYLE = {
    "high": ("#b00020", "#fdecee"),
    "medium": ("#9a5b00", "#fff4e0"),
    "low": ("#1f5f99", "#eaf2fb"),
    "info": ("#44515c", "#f1f3f5"),
}


def finding_html(severity: str, title: str, detail: str = "", fix: str = "", anchor: str = "") -> str:
    """A finding's block: severity tag, what (bold), how many, and its fix on a line of its own; `anchor`
    is its id, the target of the index's links."""
    colour, background = _SEVERITY_STYLE[severity]
    what_to_do = _("What to do:")
    ident = f' id="{html.escape(anchor, quote=True)}"' if anchor else ""
    return (f'<div{ident} class="finding finding-{severity}" style="border-left:4px solid {colour};'
            f'background:{background};padding:6px 10px;margin:6px 0">'
            f'<strong style="color:{colour};text-transform:uppercase;font-size:0.8em;'
            f'margin-right:8px">{html.escape(severity_word(severity))}</strong><strong>{html.escape(title)}</strong>'
            + (f' — {html.escape(detail)}' if detail else "")
            + (f'<div class="finding-fix"><strong>{html.escape(what_to_do)}</strong> {html.escape(fix)}</div>'
               if fix else "")
            + "</div>")


def mask_text(text: str) -> str:
    """Mask every address inside a piece of text (``ivan@mail.ru`` -> ``i***@mail.ru``)."""
    return EMAIL_PATTERN.sub(lambda m: emails.mask(m.group(0)), text)


_ADDRESS_COLUMN = re.compile(r"(^|[_\s])e-?mails?($|[_\s])|^(address|recipient_address)$", re.I)
"""Columns holding addresses: every value is masked whole, even one that is not valid syntax."""


def mask_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` with addresses masked: whole values in address columns (``email``…),
    any address inside other text cells, the index and column names."""
    out = df.copy()
    for column in out.columns:
        if not (out[column].dtype == object or pd.api.types.is_string_dtype(out[column])):
            continue
        mask = emails.mask if isinstance(column, str) and _ADDRESS_COLUMN.search(column) else mask_text
        out[column] = out[column].map(lambda v, mask=mask: mask(v) if isinstance(v, str) else v)
    if out.index.dtype == object:
        out.index = out.index.map(lambda v: mask_text(v) if isinstance(v, str) else v)
    out.columns = [mask_text(c) if isinstance(c, str) else c for c in out.columns]
    return out


def json_safe(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, NaN/inf/NA -> None, dates -> ISO text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, pd.Series):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return [json_safe(r) for r in value.to_dict(orient="records")]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in summary.json")


def deep_merge(into: dict, new: dict) -> dict:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value
    return into


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _default_workdir() -> Path:
    """Where relative paths in the parameter file point.

    The runner exports MAILAUDIT_WORKDIR (the directory `mailaudit run` was started in). Opened
    interactively from JupyterLab, a notebook's working directory is ``notebooks/``; the paths
    in params/*.yaml are written relative to the repository root, its parent.
    """
    if os.environ.get(WORKDIR_ENV):
        return Path(os.environ[WORKDIR_ENV])
    cwd = Path.cwd()
    return cwd.parent if cwd.name == "notebooks" else cwd


class ReportContext:
    """One report's view of the run; see the module docstring."""

    def __init__(self, report: str, params: Params, out_dir: Path, model, interactive: bool = False):
        self.report = report
        self.interactive = interactive   # opened by hand (JupyterLab), not by `mailaudit run`
        self.params = params
        self.period = params.period
        self.out_dir = out_dir
        self.model = model
        self.source = {k: model.manifest["source"].get(k) for k in ("dialect", "driver", "database")}
        self._parts_path = out_dir / PARTS_DIR / f"{report}.json"
        self._parts: dict = {"report": report, "sections": {}, "notes": [], "headline": None,
                             "findings": [], "tables": [], "suppression_files": {}}
        self._empty_period = False
        self._save_parts()

    @classmethod
    def open(cls, report: str, params_path: str | os.PathLike, out_dir: str | os.PathLike,
             snapshot_path: str | os.PathLike | None = None) -> "ReportContext":
        """Validate the parameters and open the snapshot the report reads: `snapshot_path` (what
        `mailaudit run` made), else the one the parameters name, else the default snapshot of these
        parameters, made now if it is missing or does not fit (interactive use).

        Without `snapshot_path` the notebook was opened by hand: every file it writes, suppression files
        included, masks addresses when privacy.mask_emails (whole addresses are for the bundles of
        `mailaudit run`, which the secret scan checks), and one printed line says where the files go."""
        from mailaudit.snapshot.store import open_snapshot, snapshot_for

        if report not in REPORT_NAMES:
            raise ValueError(f"unknown report {report!r}; reports: {', '.join(REPORT_NAMES)}")
        workdir = _default_workdir()
        load_env_file(workdir / ".env")
        params_file = Path(params_path)
        if not params_file.is_absolute():
            # interactive default "../params/demo.yaml" is relative to the notebook itself
            params_file = (Path.cwd() / params_file).resolve()
        params = load_params(params_file, base_dir=workdir)
        out = Path(out_dir)
        if not out.is_absolute():
            out = (Path.cwd() / out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        interactive = snapshot_path is None
        if interactive:
            snapshot_path, _manifest = snapshot_for(params, workdir, reuse=True)
            masked = "addresses masked" if params.mask_emails else "whole addresses (privacy.mask_emails: false)"
            print(f"Interactive run: tables and suppression files go to {out} ({masked}); "
                  "`mailaudit run` writes the bundle with whole-address suppression files.")
        language.use(os.environ.get(language.LANGUAGE_ENV) or params.report["language"])
        memory_mb = int(os.environ.get(ENGINE_MEMORY_ENV) or params.snapshot["memory_mb"])
        return cls(report, params, out, open_snapshot(Path(snapshot_path), memory_mb),
                   interactive=interactive)

    def once(self, name: str, compute: Callable[[], Any], *key) -> Any:
        """`compute()`, worked out once per `mailaudit run` for the same `name` and `key` and shared by the
        reports that ask for it (open_inflation and segments classify the same contacts' opens). The first
        kernel computes it under a lock, with the machine to itself while the other waits, and leaves it
        pickled in the run's private folder; the other reads it. A notebook opened by hand, or a system
        without file locks, just computes."""
        folder = os.environ.get(RUN_SHARED_ENV)
        try:
            import fcntl
        except ImportError:
            folder = None
        if not folder:
            return compute()
        digest = hashlib.sha256(repr((name, str(self.model.path), language.active(), key)).encode()).hexdigest()
        stored = Path(folder) / f"{name}-{digest[:16]}.pickle"
        stored.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(stored.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes, or when the kernel dies
            if stored.is_file():
                with stored.open("rb") as handle:
                    return pickle.load(handle)
            value = compute()
            partial = stored.with_suffix(".partial")
            with partial.open("wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(partial, stored)
            return value

    def sql(self, query: str, params: dict | list | None = None) -> pd.DataFrame:
        """Run SQL on the snapshot's model (sends, reads, clicks, contacts…) and return a DataFrame."""
        return self.model.sql(query, params)

    # --- capability -------------------------------------------------------------------------

    @property
    def capability(self):
        """What the snapshot's source allows this report: ``.ok`` and ``.reason``."""
        return self.model.capabilities[self.report]

    @property
    def can_run(self) -> bool:
        return bool(self.capability.ok)

    @property
    def mask_emails(self) -> bool:
        return self.params.mask_emails

    def notes_data_gaps(self, blank_addresses: bool = True) -> None:
        """Notes on what every figure of this report leaves out (data_and_tracking counts them): recipient
        rows sent (STATUS N or E) without a DATE_SENT and, with `blank_addresses`, e-mail contacts whose
        address is empty or whitespace."""
        undated = self.model.scalar("SELECT count(*) FROM sends WHERE attempted AND sent_at IS NULL")
        if undated:
            self.note(ngettext(
                "{n} letter was sent without a send date: no period can hold it, so every figure of this report "
                "leaves it out (the data and tracking report counts such letters).",
                "{n} letters were sent without a send date: no period can hold them, so every figure of this "
                "report leaves them out (the data and tracking report counts them).", undated
            ).format(n=language.number(undated)))
        blank = self.model.scalar("SELECT count(*) FROM contacts WHERE is_email_contact AND email IS NULL")
        if blank and blank_addresses:
            self.note(ngettext(
                "{n} e-mail contact has an empty address: it cannot be mailed or matched, and this report "
                "leaves it out (the data and tracking report counts such contacts).",
                "{n} e-mail contacts have an empty address: they cannot be mailed or matched, and this report "
                "leaves them out (the data and tracking report counts them).", blank
            ).format(n=language.number(blank)))

    def says_if_empty(self) -> bool:
        """Whether the period holds no e-mail send (a future period, or one before the data). If so the
        page says so at the top, a note says so, and every headline of the report starts with it."""
        if self.model.sends_in(self.period):
            return False
        self._empty_period = True
        no_sends = self.period.no_sends
        self.note(_("{no_sends}: the rates of the period are null; checks of the contacts and of the evidence "
                    "(bounces, unsubscribes, blacklist, orders) still apply").format(no_sends=no_sends))
        self.headline(no_sends)
        display(HTML(f'<p class="ma-empty-period" style="border-left:4px solid #9a5b00;background:#fff4e0;'
                     f'padding:6px 10px"><strong>{html.escape(no_sends[:1].upper() + no_sends[1:])}.</strong> '
                     + html.escape(_("Nothing of the period can be measured: its rates are null (dashes). Checks of "
                                     "the contacts and of the evidence (bounces, unsubscribes, blacklist, orders) "
                                     "still apply. Is the period right? The dates the data covers are in the data "
                                     "and tracking report.")) + "</p>"))
        return True

    # --- recording --------------------------------------------------------------------------

    def record(self, section: str, figures: dict) -> None:
        """Merge `figures` into summary.json's top-level `section` (e.g. "hygiene")."""
        if not isinstance(figures, dict):
            raise TypeError("figures must be a dict")
        if section in RESERVED_SECTIONS:
            raise ValueError(f"{section!r} is written by the runner; record figures under another section")
        deep_merge(self._parts["sections"].setdefault(section, {}), json_safe(figures))
        self._save_parts()

    def note(self, text: str) -> None:
        """A sentence for reports.<name>.notes (e.g. why a figure is null)."""
        self._parts["notes"].append(self._clean(text))
        self._save_parts()

    def headline(self, text: str) -> None:
        """The one line shown for this report in index.html (the last call wins; in a period without
        sends it is the sentence saying so)."""
        if self._empty_period and self._parts["headline"]:
            return
        self._parts["headline"] = self._clean(text)
        self._save_parts()

    def finding(self, severity, title: str | None = None, detail: str = "", *, fix: str = "",
                count: int | None = None, of: int | None = None, unit: str = "", stake: str | None = None,
                evidence: str | None = None) -> None:
        """Show a finding (severity, what, how many of how many, what to do) and keep it for summary.json
        and the index's audit summary: `count` of `of` `unit`, `stake` (the money or deliverability at
        stake, in words), `fix` and `evidence` (a bundle file, such as a suppression file). The finding
        gets an anchor (``finding-<n>``) the index links to.

        `severity` may instead be a `narrative.common.Finding`, which carries the rest (its
        `denominator` is `of`; `unit`, `stake` and `evidence` may sit in its `extra`)."""
        if not isinstance(severity, str):
            item = severity
            severity, title, detail, fix = item.severity, item.title, item.detail, item.fix
            count, of = item.count, item.denominator
            unit = item.extra.get("unit", unit)
            stake = item.extra.get("stake", stake)
            evidence = item.extra.get("evidence", evidence)
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        title, detail, fix = self._clean(title), self._clean(detail), self._clean(fix)
        anchor = f"finding-{len(self._parts['findings']) + 1}"
        record = {"severity": severity, "title": title, "detail": detail}
        extra = {"fix": fix, "count": count, "of": of, "unit": unit, "stake": self._clean(stake) if stake else None,
                 "evidence": evidence}
        record.update({k: v for k, v in extra.items() if v not in (None, "")})
        record["anchor"] = anchor
        self._parts["findings"].append(json_safe(record))
        self._save_parts()
        display(HTML(finding_html(severity, title, detail, fix, anchor)))
    def say(self, text: str) -> None:
        """A sentence of the report as a paragraph of the page (never console text)."""
        display(HTML(f"<p class='ma-text'>{html.escape(self._clean(text))}</p>"))

    def key_figures(self, items: list[tuple[str, str]]) -> None:
        """The report's key numbers as a short list of (what, value) pairs."""
        rows = "".join(f"<dt>{html.escape(self._clean(what))}</dt><dd>{html.escape(self._clean(value))}</dd>"
                       for what, value in items)
        display(HTML(f"<dl class='ma-keys'>{rows}</dl>"))

    # --- tables -----------------------------------------------------------------------------

    def mask(self, address: str | None) -> str | None:
        """The address as it may appear in the report (masked when privacy.mask_emails)."""
        return emails.mask(address) if self.mask_emails else address

    def show(self, df: pd.DataFrame, caption: str | None = None, percent: list[str] | tuple = (),
             max_rows: int = 50, *, labels: dict | None = None, money=(), currency: str | None = None,
             of: dict | None = None, verbatim=()) -> None:
        """Display `df` as a sortable HTML table (see `table_html`): addresses masked, reader labels
        from `labels` (the report's narrative) or the shared ones, numbers formatted by kind, at most
        `max_rows` rows. A named index is shown as the first column; an unnamed one is not."""
        shown = mask_frame(df) if self.mask_emails else df
        more = len(shown) - max_rows
        table = table_html(shown.head(max_rows), percent, labels=labels, money=money, currency=currency, of=of,
                           verbatim=verbatim)
        head = f"<p class='ma-caption'><strong>{html.escape(self._clean(caption))}</strong></p>" if caption else ""
        tail = ""
        if more > 0:
            more_rows = _("… {n} more rows (see tables/ in the bundle)").format(n=language.number(more))
            tail = f"<p class='ma-more'>{html.escape(more_rows)}</p>"
        display(HTML(head + table + tail))

    def save_table(self, name: str, df: pd.DataFrame) -> str:
        """Write DIR/tables/<name>.csv (addresses masked when privacy.mask_emails); returns the path
        relative to the bundle."""
        self._check_name(name)
        folder = self.out_dir / "tables"
        folder.mkdir(exist_ok=True)
        data = mask_frame(df) if self.mask_emails else df
        write_csv(data, folder / f"{name}.csv", index=not isinstance(df.index, pd.RangeIndex),
                  bom=self.params.csv_bom)
        relative = f"tables/{name}.csv"
        if relative not in self._parts["tables"]:
            self._parts["tables"].append(relative)
        self._save_parts()
        return relative

    def write_suppression(self, reason: str, df: pd.DataFrame, *, listed: bool = True,
                          import_file: bool = False) -> str:
        """Write DIR/suppress_<reason>.csv with whole addresses (the file is for importing into a
        blacklist; masked in an interactive run with privacy.mask_emails); returns its file name, listed
        under hygiene.suppression_files unless `listed` is False (a file that combines the reasons).
        `import_file`: no header line and no byte-order mark, for an import that reads every line as an
        address."""
        self._check_name(reason)
        filename = f"suppress_{reason}.csv"
        data = mask_frame(df) if self.interactive and self.mask_emails else df
        write_csv(data, self.out_dir / filename, bom=self.params.csv_bom and not import_file,
                  header=not import_file)
        if listed:
            self._parts["suppression_files"][reason] = filename
            self._save_parts()
        return filename

    # --- internals --------------------------------------------------------------------------

    def _clean(self, text: str | None) -> str:
        text = "" if text is None else str(text)
        return mask_text(text) if self.mask_emails else text

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"{name!r}: use lower-case letters, digits, '_' or '-'")

    def _save_parts(self) -> None:
        self._parts_path.parent.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self._parts_path, self._parts)

    def close(self) -> None:
        """Close the snapshot."""
        self.model.close()


DEMO_FALLBACK_WARNING = (
    "warning: the parameter file names no database and MAILAUDIT_DB_URL is not set: auditing the built-in "
    "DEMO database; add database: {sqlite: FILE} or {url_env: VARIABLE}, or demo: true to silence this")


def audits_demo_by_default(params: Params) -> bool:
    """True when the parameters fall back to the demo without asking for it (no `database`, no
    MAILAUDIT_DB_URL, no ``demo: true``): the run says so loudly, on the terminal and on every page."""
    from mailaudit.sources.db import DEFAULT_URL_ENV

    return params.database is None and not os.environ.get(DEFAULT_URL_ENV) and not params.demo


def database_config(params: Params, workdir: Path) -> dict | None:
    """The `database` section for `resolve_database_url`. Without one: MAILAUDIT_DB_URL when set, else the
    embedded demo database under `workdir` (see `audits_demo_by_default` for the warning)."""
    from mailaudit.sources.db import DEFAULT_URL_ENV, DEMO_SQLITE

    if params.database is not None and not params.database.get("snapshot"):
        return {k: str(v) for k, v in params.database.items()}
    if os.environ.get(DEFAULT_URL_ENV):
        return None
    return {"sqlite": str(workdir / DEMO_SQLITE)}


_RATE_NAME = re.compile(r"(^|_)(rate|share|ctor)(_ci_low|_ci_high|_low|_high)?$")
_MONEY_NAME = re.compile(r"(^|_)revenue(_|$)|(^|_)(amount|order_value)$")
_POINTS_NAME = re.compile(r"_pp$")


def table_html(df: pd.DataFrame, percent=(), *, labels: dict | None = None, money=(), currency: str | None = None,
               of: dict | None = None, verbatim=()) -> str:
    """An HTML table that sorts on a click on its header: reader labels on every column (see
    `narrative.common.label`), numbers formatted by kind and right-aligned, text left-aligned, all escaped.

    Kinds: rates (the `percent` columns and names ending in ``_rate``, ``_share``, ``ctor``) as
    percentages; money (the `money` columns and ``revenue`` names) with two decimals and `currency`;
    ``_pp`` as percentage points; counts with thousands separators; ids plain; yes/no for booleans.
    `of` maps a count column to its denominator (a column name or a number): the cell reads
    "1,234 (5.6%)". `verbatim` columns hold text quoted from the data (a mail server's reply, a file name):
    shown as code, in whichever language the bundle is. Every cell keeps its raw value in ``data-v`` for sorting.
    """
    def head(value) -> str:
        return reader_label(value, labels)

    kinds = [_column_kind(c, df[c], percent, money) for c in df.columns]
    with_index = any(name is not None for name in df.index.names)
    header = ("".join(f'<th class="text">{html.escape(head(n))}</th>' for n in df.index.names) if with_index else "") + \
        "".join(f'<th class="{"text" if kind == "text" else "num"}">{html.escape(head(c))}</th>'
                for c, kind in zip(df.columns, kinds))
    totals = {c: (df[d] if isinstance(d, str) else pd.Series(d, index=df.index)) for c, d in (of or {}).items()}
    rows = []
    for position, (key, values) in enumerate(zip(df.index, df.itertuples(index=False, name=None))):
        cells = "".join(f'<th class="text" data-v="{html.escape(str(k), quote=True)}">{html.escape(_format_number(k))}</th>'
                        for k in (key if isinstance(key, tuple) else (key,))) if with_index else ""
        for column, value, kind in zip(df.columns, values, kinds):
            text = _format_cell(value, kind, currency)
            if column in totals and kind == "count":
                total = totals[column].iloc[position]
                if _finite_number(value) and _finite_number(total) and total:
                    text += f" ({pct(float(value) / float(total))})"
            shown = f"<code>{html.escape(text)}</code>" if column in verbatim and text != "—" else html.escape(text)
            cells += (f'<td class="{"text" if kind == "text" else "num"}" data-v="{html.escape(_sort_key(value), quote=True)}">'
                      f'{shown}</td>')
        rows.append(f"<tr>{cells}</tr>")
    return (f'<div class="ma-table-wrap"><table class="ma-table sortable"><thead><tr>{header}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _column_kind(column, values: pd.Series, percent, money) -> str:
    name = str(column).lower()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if column in percent or (numeric and _RATE_NAME.search(name)):
        return "percent"
    if column in money or (numeric and _MONEY_NAME.search(name)):
        return "money"
    if numeric and _POINTS_NAME.search(name):
        return "points"
    if numeric and _is_identifier(column):
        return "id"
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    return "count" if numeric else "text"


def _format_cell(value, kind: str, currency: str | None) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, (float, np.floating)) and not math.isfinite(value)):
        return "—"
    if kind == "percent":
        return _format_percent(value)
    if kind == "money" and isinstance(value, (int, float, np.integer, np.floating)):
        return money_text(float(value), currency)
    if kind == "points" and isinstance(value, (int, float, np.integer, np.floating)):
        return points_text(float(value))
    if kind == "id" and isinstance(value, (int, np.integer, float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return _format_number(value)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(float(value))


def _sort_key(value) -> str:
    if _finite_number(value):
        return repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (list, tuple)) and value and _finite_number(value[0]):
        return repr(float(value[0]))
    return str(value)


def _is_identifier(column) -> bool:
    name = str(column).lower()
    return name == "id" or name.endswith("_id")


def _format_number(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return _("yes") if value else _("no")
    if isinstance(value, (int, np.integer)):
        return language.number(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "—"
        if float(value).is_integer() and abs(value) >= 1:
            return language.number(value)
        if value == 0:
            return "0"
        return language.number(value, significant=3) if abs(value) < 1 else language.number(value, 2)
    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return language.date_time(value) if (value.hour or value.minute) else language.date(value)
    if isinstance(value, dt.date):
        return language.date(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_finite_number(v) for v in value):
        return f"{_format_number(value[0])}–{_format_number(value[1])}"
    return str(value)


def _format_percent(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and not math.isfinite(value)):
        return "—"
    if isinstance(value, str):
        return value
    return pct(float(value))


def read_parts(out_dir: str | os.PathLike) -> dict[str, dict]:
    """Every report's parts file in `out_dir`, by report name."""
    folder = Path(out_dir) / PARTS_DIR
    parts = {}
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        parts[file.stem] = json.loads(file.read_text(encoding="utf-8"))
    return parts
