"""`mailaudit run`: execute the report notebooks with papermill and publish the bundle.

Order of work, and why:
1. parameters, database, schema are checked first; any problem is an `InputError` (exit 2)
   before a notebook starts;
2. the bundle is built in a hidden sibling folder ``.<name>.partial-<pid>-<random>`` (such
   folders left by a killed run are removed by the next run into the same DIR);
3. each report runs in the kit's own kernel; a failing notebook is exported with its error and
   the run goes on; a report the schema cannot support is "skipped" (not a failure);
4. summary.json and index.html are written, then the secret scan reads every file;
5. only a clean bundle is renamed into place (an older bundle is moved aside first, then
   deleted), so DIR never holds a half-written bundle that looks complete. An interrupted or
   leaking build deletes its temporary folder.

Exit codes: 0 every requested report ok or skipped, 1 a report failed or the scan found a
secret, 2 unusable input.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import mailaudit
from mailaudit.report.context import WORKDIR_ENV, database_config, mask_text, read_parts
from mailaudit.report.dotenv import load_env_file
from mailaudit.report.html import export_report_html, report_title, sanitize_notebook, write_index
from mailaudit.report.params import REPORT_NAMES, Params, ParamsError, load_params
from mailaudit.report.secrets_scan import scan_bundle
from mailaudit.report.summary import build_summary, write_summary

NOTEBOOKS_ENV = "MAILAUDIT_NOTEBOOKS"
MAX_ERROR_CHARS = 300


class InputError(Exception):
    """Unusable input found before any notebook ran (exit code 2); one line, no secret."""


@dataclass
class ReportOutcome:
    name: str
    status: str                     # "ok" | "failed" | "skipped"
    html: str | None = None         # file name inside the bundle
    error: str | None = None        # one line, scrubbed, for failed reports
    reason: str | None = None       # why a report was skipped
    headline: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RunResult:
    out_dir: Path
    outcomes: list[ReportOutcome] = field(default_factory=list)
    leaks: list = field(default_factory=list)   # secret-scan findings (file + kind, no secret)
    published: bool = False

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"

    @property
    def exit_code(self) -> int:
        if self.leaks or not self.published or any(o.status == "failed" for o in self.outcomes):
            return 1
        return 0


@dataclass
class Source:
    """What `prepare` learned about the data; the URL stays in memory only."""
    params: Params
    url: object                   # None when the parameters name a snapshot
    schema: object                # what `capabilities` answers: the reflected source, or the snapshot's model
    description: dict             # dialect, database, layout, charset (+ row_counts once snapshotted); no credentials
    snapshot: Path | None = None  # the snapshot the reports read, once made or named

    def scrub(self, text: str) -> str:
        from mailaudit.sources.db import scrub
        text = scrub(text, self.url)
        return mask_text(text) if self.params.mask_emails else text


def default_notebooks_dir() -> Path:
    """``MAILAUDIT_NOTEBOOKS`` if set, else the repository's notebooks/ beside lib/, else ./notebooks."""
    if os.environ.get(NOTEBOOKS_ENV):
        return Path(os.environ[NOTEBOOKS_ENV]).resolve()
    beside_package = Path(mailaudit.__file__).resolve().parents[2] / "notebooks"
    return beside_package if beside_package.is_dir() else (Path.cwd() / "notebooks").resolve()


def parse_only(only: str | list[str] | None) -> list[str] | None:
    """`--only a,b` -> ["a", "b"]; unknown names are an InputError listing the valid ones."""
    if only is None:
        return None
    names = [n.strip() for n in (only.split(",") if isinstance(only, str) else only) if n.strip()]
    unknown = [n for n in names if n not in REPORT_NAMES]
    if unknown or not names:
        raise InputError(f"unknown report {', '.join(unknown) or '(none given)'}; "
                         f"reports: {', '.join(REPORT_NAMES)}")
    return list(dict.fromkeys(names))


def load_params_or_fail(params_path: str | os.PathLike, workdir: Path) -> Params:
    """The validated parameters (with `.env` loaded from `workdir`), or InputError."""
    load_env_file(workdir / ".env")
    try:
        return load_params(params_path, base_dir=workdir)
    except ParamsError as exc:
        raise InputError(str(exc)) from None


def prepare(params_path: str | os.PathLike, workdir: Path | None = None) -> Source:
    """Validate parameters and look at the data without reading it: connect read-only and reflect the
    schema, or, when the parameters name a snapshot, open it and check that it fits. Raises InputError."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailaudit.bitrix.schema import MissingTableError, reflect_schema
    from mailaudit.snapshot.extract import SnapshotError
    from mailaudit.snapshot.store import snapshot_for
    from mailaudit.sources.db import (DatabaseConfigError, create_readonly_engine, describe_source,
                                      resolve_database_url, scrub)

    workdir = (workdir or Path.cwd()).resolve()
    params = load_params_or_fail(params_path, workdir)
    try:
        if (params.database or {}).get("snapshot"):
            path, manifest = snapshot_for(params, workdir)
            return Source(params=params, url=None, schema=_SnapshotTables(manifest),
                          description=snapshot_description(manifest), snapshot=path)
        url = resolve_database_url(database_config(params, workdir))
    except (DatabaseConfigError, SnapshotError) as exc:
        raise InputError(str(exc)) from None
    try:
        engine = create_readonly_engine(url)
        try:
            with engine.connect() as conn:
                schema = reflect_schema(conn)
                description = {**describe_source(url), "layout": schema.layout, "charset": schema.charset}
        finally:
            engine.dispose()
    except MissingTableError as exc:
        raise InputError(scrub(_one_line(str(exc)), url)) from None
    except (SQLAlchemyError, DatabaseConfigError, OSError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise InputError("cannot read the database: "
                         + scrub(_one_line(f"{type(detail).__name__}: {detail}"), url)) from None
    return Source(params=params, url=url, schema=schema, description=description)


class _SnapshotTables:
    """The `capabilities` of a snapshot, from its manifest (no connection needed)."""

    def __init__(self, manifest: dict):
        from mailaudit.model import Model

        self.capabilities = Model(None, manifest).capabilities


def snapshot_description(manifest: dict) -> dict:
    """summary.json's `source`: where the snapshot came from and the rows it holds per table."""
    source = manifest["source"]
    return {**{k: source.get(k) for k in ("dialect", "driver", "database", "layout", "charset", "server_version")},
            "row_counts": {name: table["rows"] for name, table in sorted(manifest["tables"].items())},
            "snapshot": {"created_at": manifest.get("created_at"), "window": manifest.get("window"),
                         "kit_version": manifest.get("kit_version")}}


def make_snapshot(source: Source, workdir: Path, progress: bool) -> None:
    """Extract the snapshot the reports will read (unless the parameters named one). InputError when the
    source cannot be read as needed."""
    if source.snapshot is not None:
        return
    from sqlalchemy.exc import SQLAlchemyError

    from mailaudit.snapshot.extract import SnapshotError
    from mailaudit.snapshot.store import snapshot_for
    from mailaudit.sources.db import DatabaseConfigError, scrub

    if progress:
        print("snapshot: reading the source database", file=sys.stderr, flush=True)
    try:
        path, manifest = snapshot_for(source.params, workdir, progress=progress)
    except (SnapshotError, SQLAlchemyError, DatabaseConfigError, OSError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise InputError("cannot make the snapshot: " + scrub(_one_line(str(detail)), source.url)) from None
    source.snapshot = path
    source.description = snapshot_description(manifest)
    source.schema = _SnapshotTables(manifest)
    if progress:
        print(f"snapshot: {path} ({manifest['seconds']:.1f} s)", file=sys.stderr, flush=True)


def _one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_label(description: dict) -> str:
    parts = [description.get("dialect") or "?"]
    if description.get("database"):
        parts.append(f"database {description['database']}")
    if description.get("layout"):
        parts.append(f"{description['layout']} sender layout")
    return ", ".join(parts)


def run_reports(params_path: str | os.PathLike, out_dir: str | os.PathLike, only=None,
                notebooks_dir: str | os.PathLike | None = None, progress: bool = True,
                source: Source | None = None, workdir: str | os.PathLike | None = None) -> RunResult:
    """Run the requested reports into `out_dir` (see the module docstring).

    Relative paths in the parameter file resolve against `workdir` (default: the current
    directory). Raises InputError (exit 2) before any notebook runs when the input is unusable.
    """
    import papermill

    from mailaudit.report.kernel import ensure_kernel, ipc_kernel_manager

    workdir = Path(workdir or Path.cwd()).resolve()
    requested = parse_only(only)
    source = source or prepare(params_path, workdir)
    params = source.params
    reports = requested or params.reports
    out = Path(out_dir).resolve()
    _check_replaceable(out)
    notebooks = Path(notebooks_dir).resolve() if notebooks_dir else default_notebooks_dir()
    if not notebooks.is_dir():
        raise InputError(f"notebooks folder not found: {notebooks}")
    kernel = ensure_kernel()
    params_file = str(Path(params_path).resolve())
    make_snapshot(source, workdir, progress)

    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_folders(out)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    partial.mkdir()
    result = RunResult(out_dir=out)
    generated_at = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cover = {"client": params.client, "period": params.period.label,
             "source": source_label(source.description), "generated_at": generated_at,
             "version": mailaudit.__version__}
    previous_workdir = os.environ.get(WORKDIR_ENV)
    os.environ[WORKDIR_ENV] = str(workdir)   # the kernel inherits it: relative paths as here
    sockets = tempfile.TemporaryDirectory(prefix="mailaudit-kernel-")
    engine_kwargs = {"kernel_manager_class": manager} if (manager := ipc_kernel_manager(sockets.name)) else {}
    try:
        for number, name in enumerate(reports, 1):
            if progress:
                print(f"[{number}/{len(reports)}] {name}", file=sys.stderr, flush=True)
            capability = source.schema.capabilities[name]
            if not capability.ok:
                result.outcomes.append(ReportOutcome(name, "skipped", reason=capability.reason))
                continue
            result.outcomes.append(_run_one(papermill, name, notebooks, partial, kernel, params_file,
                                            out, cover, source, progress, engine_kwargs))
        parts = read_parts(partial)
        for outcome in result.outcomes:
            outcome.headline = parts.get(outcome.name, {}).get("headline")
        _write_bundle_files(partial, source, result, parts, cover)
        shutil.rmtree(partial / ".parts", ignore_errors=True)
        result.leaks = scan_bundle(partial, source.url, params.mask_emails)
        if result.leaks:
            shutil.rmtree(partial, ignore_errors=True)
            return result
        _publish(partial, out)
        result.published = True
        return result
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        sockets.cleanup()
        if previous_workdir is None:
            os.environ.pop(WORKDIR_ENV, None)
        else:
            os.environ[WORKDIR_ENV] = previous_workdir


def _run_one(papermill, name: str, notebooks: Path, partial: Path, kernel: str, params_file: str,
             out: Path, cover: dict, source: Source, progress: bool, engine_kwargs: dict) -> ReportOutcome:
    from papermill.exceptions import PapermillExecutionError

    started = time.monotonic()
    notebook = notebooks / f"{name}.ipynb"
    executed = partial / f"{name}.ipynb"
    outcome = ReportOutcome(name, "ok", html=f"{name}.html")
    if not notebook.is_file():
        outcome.status, outcome.html, outcome.error = "failed", None, f"notebook not found: {notebook}"
        return outcome
    try:
        papermill.execute_notebook(
            str(notebook), str(executed),
            parameters={"params_path": params_file, "out_dir": str(partial),
                        "snapshot_path": str(source.snapshot)},
            kernel_name=kernel, cwd=str(notebooks), progress_bar=progress, log_output=False,
            **engine_kwargs)
    except PapermillExecutionError as exc:
        outcome.status = "failed"
        outcome.error = source.scrub(_one_line(f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"))
    except Exception as exc:   # kernel died, could not start, …: the other reports still run
        outcome.status = "failed"
        outcome.error = source.scrub(_one_line(f"{type(exc).__name__}: {exc}"))
    outcome.seconds = round(time.monotonic() - started, 1)
    if not executed.is_file():
        outcome.html = None
        return outcome
    nb = nbformat.read(executed, as_version=4)
    sanitize_notebook(nb, params_file, str(out), source.scrub)
    nbformat.write(nb, executed)
    export_report_html(nb, partial / outcome.html,
                       {**cover, "title": report_title(name), "status": outcome.status,
                        "error": outcome.error})
    return outcome


def _write_bundle_files(partial: Path, source: Source, result: RunResult, parts: dict, cover: dict) -> None:
    summary = build_summary(period=source.params.period, source=source.description,
                            outcomes=[o.as_dict() for o in result.outcomes], parts=parts,
                            run={"kit_version": cover["version"], "generated_at": cover["generated_at"],
                                 "parameters": source.params.to_dict()})
    write_summary(partial / "summary.json", summary)
    tables = sorted(p.relative_to(partial).as_posix() for p in (partial / "tables").glob("*.csv"))
    suppression = sorted(p.name for p in partial.glob("suppress_*.csv"))
    write_index(partial / "index.html", client=cover["client"], period=cover["period"],
                source=cover["source"], generated_at=cover["generated_at"], version=cover["version"],
                reports=[o.as_dict() for o in result.outcomes], suppression_files=suppression,
                tables=tables)


def _check_replaceable(out: Path) -> None:
    """Refuse to replace a folder that is not a bundle (it might be the user's own files)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (
            (out / "index.html").exists() or (out / "summary.json").exists()))):
        raise InputError(f"--out {out} exists and is not a mailaudit bundle; choose another folder")


def _remove_abandoned_folders(out: Path) -> None:
    """Delete temporary folders of earlier runs into `out` whose process is gone (killed runs)."""
    for folder in out.parent.glob(f".{out.name}.*-*"):
        kind, _, rest = folder.name[len(out.name) + 2:].partition("-")
        pid = rest.split("-", 1)[0]
        if kind in ("partial", "old") and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if os.name == "nt":   # os.kill would terminate the process there: assume alive, keep the folder
        return True
    try:
        os.kill(pid, 0)   # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, another user's
        return True
    return True


def _publish(partial: Path, out: Path) -> None:
    """Move the finished bundle to `out`, replacing an older one."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.replace(out, old)
    os.replace(partial, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
