"""`mailaudit run`: execute the report notebooks with papermill and publish the bundle.

Order of work, and why:
1. the output folder is locked and checked (output_folder.py: a folder that is not a bundle is
   refused, an unwritable one too), then parameters, database and schema; any problem is an
   `InputError` (exit 2) before a notebook starts;
2. the bundle is built in a hidden sibling folder ``.<name>.partial-<pid>-<random>`` (such
   folders left by a killed run are removed by the next run into the same DIR);
3. each report runs in the kit's own kernel (run.parallel_reports at a time, in threads: the work
   is in the kernels), every cell within run.cell_timeout_seconds; a
   failing notebook is exported with a one-line error (the traceback goes to logs/<report>.log)
   and the run goes on; a report the schema cannot support is "skipped" (not a failure);
4. summary.json, index.html and the marker listing the bundle's files are written, then the
   secret scan reads every file;
5. only a clean bundle is published: renamed into place, replacing only the files an older
   bundle's marker lists, so DIR never holds a half-written bundle that looks complete. An
   interrupted or leaking build deletes its temporary folder.

Exit codes: 0 every requested report ok or skipped, 1 a report failed or the scan found a
secret, 2 unusable input.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import mailaudit
from mailaudit.narrative import language as bundle_language
from mailaudit.report.audit_summary import actions as audit_actions
from mailaudit.report.audit_summary import suppression_listing
from mailaudit.report.context import (DEMO_FALLBACK_WARNING, ENGINE_MEMORY_ENV, RUN_SHARED_ENV, WORKDIR_ENV,
                                      audits_demo_by_default, database_config, mask_text, read_parts)
from mailaudit.report.dotenv import load_env_file
from mailaudit.report.html import export_report_html, report_title, sanitize_notebook, write_index
from mailaudit.report.kernel import kill_kernels
from mailaudit.report.output_folder import (OutputFolderError, OutputLock, check_writable, inspect_output,
                                            new_partial, publish, remove_abandoned_folders, write_marker)
from mailaudit.report.params import REPORT_NAMES, Params, ParamsError, load_params
from mailaudit.report.run_log import captured_execution_logs, log_name, write_report_log
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
    log: str | None = None          # logs/<name>.log inside the bundle (reports that ran)
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
    kept: list[str] = field(default_factory=list)   # the user's entries left beside the bundle
    no_sends: str | None = None     # "no e-mail sends between … and …" when the period has none

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
    period_sends: int | None = None
    """`check`: postings that may have sent in the period (a snapshot: its sends in the period); `run`:
    the snapshot's e-mail sends in the period. 0: "no e-mail sends between … and …"."""

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


def prepare(params_path: str | os.PathLike, workdir: Path | None = None, look_at_period: bool = False) -> Source:
    """Validate parameters and look at the data without reading it: connect read-only and reflect the
    schema, or, when the parameters name a snapshot, open it and check that it fits. With
    `look_at_period`, also count the postings that may have sent in the period (`period_sends`; the
    dates of b_sender_posting, or the snapshot's sends). Raises InputError."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailaudit.bitrix.schema import MissingTableError, postings_may_send_in, reflect_schema
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
                          description=snapshot_description(manifest), snapshot=path,
                          period_sends=snapshot_sends(path, params) if look_at_period else None)
        url = resolve_database_url(database_config(params, workdir))
        demo_by_default = audits_demo_by_default(params)
        if demo_by_default:
            print(DEMO_FALLBACK_WARNING, file=sys.stderr, flush=True)
    except (DatabaseConfigError, SnapshotError) as exc:
        raise InputError(str(exc)) from None
    try:
        engine = create_readonly_engine(url, params.snapshot["statement_timeout_seconds"])
        period_sends = None
        try:
            with engine.connect() as conn:
                schema = reflect_schema(conn)
                description = {**describe_source(url), "layout": schema.layout, "charset": schema.charset,
                               "demo_by_default": demo_by_default}
                if look_at_period:
                    period_sends = postings_may_send_in(conn, params.period.start_dt, params.period.end_exclusive)
        finally:
            engine.dispose()
    except MissingTableError as exc:
        raise InputError(scrub(_one_line(str(exc)), url)) from None
    except (SQLAlchemyError, DatabaseConfigError, OSError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise InputError("cannot read the database: "
                         + scrub(_one_line(f"{type(detail).__name__}: {detail}"), url)) from None
    return Source(params=params, url=url, schema=schema, description=description, period_sends=period_sends)


def snapshot_sends(path: Path, params: Params) -> int:
    """The snapshot's e-mail sends (recipient rows, any status) in the parameters' period."""
    from mailaudit.snapshot.store import open_snapshot

    model = open_snapshot(path, params.snapshot["memory_mb"])
    try:
        return model.sends_in(params.period)
    finally:
        model.close()


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
    source.description = {**snapshot_description(manifest),
                          "demo_by_default": source.description.get("demo_by_default", False)}
    source.schema = _SnapshotTables(manifest)
    if progress:
        print(f"snapshot: {path} ({manifest['seconds']:.1f} s)", file=sys.stderr, flush=True)


def _one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


DIALECT_NAMES = {"sqlite": "SQLite", "mysql": "MySQL/MariaDB", "mariadb": "MariaDB", "postgresql": "PostgreSQL"}


def source_label(description: dict) -> str:
    _ = bundle_language._
    dialect = description.get("dialect") or "?"
    parts = [DIALECT_NAMES.get(dialect, dialect)]
    if description.get("database"):
        parts.append(_("database {name}").format(name=description["database"]))
    if description.get("layout"):
        parts.append(_("legacy sender layout") if description["layout"] == "legacy" else _("current sender layout"))
    label = ", ".join(parts)
    if description.get("demo_by_default"):
        return _("DEMO DATA (the parameter file names no database): {source}").format(source=label)
    return label


def run_reports(params_path: str | os.PathLike, out_dir: str | os.PathLike, only=None,
                notebooks_dir: str | os.PathLike | None = None, progress: bool = True,
                source: Source | None = None, workdir: str | os.PathLike | None = None,
                language: str | None = None) -> RunResult:
    """Run the requested reports into `out_dir` (see the module docstring), written in `language`
    (default: the parameters' report.language).

    Relative paths in the parameter file resolve against `workdir` (default: the current
    directory). Raises InputError (exit 2) before any notebook runs when the input or the
    output folder is unusable.
    """
    workdir = Path(workdir or Path.cwd()).resolve()
    requested = parse_only(only)
    out = Path(out_dir).resolve()
    try:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"cannot create the folder {out.parent} for --out: "
                                    f"{exc.strerror or type(exc).__name__}; choose another --out") from None
        with OutputLock(out):
            inspect_output(out)
            check_writable(out)
            source = source or prepare(params_path, workdir)
            if language:
                source.params.report["language"] = language
            with bundle_language.using(source.params.report["language"]):
                return _build_and_publish(params_path, out, requested, notebooks_dir, progress, source, workdir)
    except OutputFolderError as exc:
        raise InputError(str(exc)) from None


def _build_and_publish(params_path, out: Path, requested, notebooks_dir, progress: bool, source: Source,
                       workdir: Path) -> RunResult:
    import papermill

    from mailaudit.report.kernel import ensure_kernel

    params = source.params
    reports = requested or params.reports
    notebooks = Path(notebooks_dir).resolve() if notebooks_dir else default_notebooks_dir()
    if not notebooks.is_dir():
        raise InputError(f"notebooks folder not found: {notebooks}")
    kernel = ensure_kernel()
    params_file = str(Path(params_path).resolve())
    make_snapshot(source, workdir, progress)
    source.period_sends = snapshot_sends(source.snapshot, params)

    remove_abandoned_folders(out)
    partial = new_partial(out)
    result = RunResult(out_dir=out, no_sends=None if source.period_sends else params.period.no_sends)
    now = dt.datetime.now().astimezone()
    generated_at = now.strftime("%Y-%m-%d %H:%M %Z")   # summary.json and the bundle marker
    cover = {"client": params.client, "period": params.period.label,
             "source": source_label(source.description), "version": mailaudit.__version__,
             "generated_at": f"{bundle_language.date_time(now)} {now.strftime('%Z')}".strip(),
             "language": params.report["language"]}
    private = tempfile.TemporaryDirectory(prefix="mailaudit-kernel-")   # sockets and kernel output
    try:
        outcomes, runs = {}, []
        for name in reports:
            capability = source.schema.capabilities[name]
            if capability.ok:
                runs.append(_NotebookRun(name, notebooks, partial, kernel, params_file, Path(private.name)))
            else:
                outcomes[name] = ReportOutcome(name, "skipped", reason=capability.reason)
        kernel_env = {WORKDIR_ENV: str(workdir),   # the kernels resolve relative paths as here
                      bundle_language.LANGUAGE_ENV: params.report["language"],
                      RUN_SHARED_ENV: str(Path(private.name) / "shared")}
        outcomes.update(_execute_all(runs, papermill, out, cover, source, params.run["parallel_reports"], progress,
                                     kernel_env))
        result.outcomes = [outcomes[name] for name in reports]
        parts = read_parts(partial)
        for outcome in result.outcomes:
            outcome.headline = parts.get(outcome.name, {}).get("headline")
        _write_bundle_files(partial, source, result, parts, cover, generated_at)
        shutil.rmtree(partial / ".parts", ignore_errors=True)
        write_marker(partial, cover["version"], generated_at)
        result.leaks = scan_bundle(partial, source.url, params.mask_emails)
        if result.leaks:
            shutil.rmtree(partial, ignore_errors=True)
            return result
        result.kept = publish(partial, out)
        result.published = True
        return result
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        private.cleanup()


LONGEST_FIRST = ("segments", "open_inflation", "list_hygiene", "conversion", "data_and_tracking")
"""The reports by their usual running time (measured at 1M contacts), for starting them side by side."""


def _execute_all(runs: list[_NotebookRun], papermill, out: Path, cover: dict, source: Source, parallel: int,
                 progress: bool, env: dict[str, str]) -> dict[str, ReportOutcome]:
    """Execute the notebooks, `parallel` at a time (each in its own kernel, `env` added to its
    environment); Ctrl-C kills every kernel.

    Side by side, the reports share the engine's memory cap (snapshot.memory_mb) and papermill's
    per-cell progress bars give way to one line per finished report.
    """
    parallel = max(1, min(parallel, len(runs)))
    if parallel > 1:
        env = {**env, ENGINE_MEMORY_ENV: str(max(256, source.params.snapshot["memory_mb"] // parallel))}
    kernels: list = []
    done: dict[str, ReportOutcome] = {}
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="mailaudit-report")
    if parallel > 1:   # longest first, so that the last report to start is a short one
        runs = sorted(runs, key=lambda run: LONGEST_FIRST.index(run.name) if run.name in LONGEST_FIRST else len(LONGEST_FIRST))
    try:
        futures = {}
        for number, run in enumerate(runs, 1):
            run.kernels, run.cell_progress, run.env = kernels, progress and parallel == 1, env
            if progress and parallel == 1:
                print(f"[{number}/{len(runs)}] {run.name}", file=sys.stderr, flush=True)
            futures[pool.submit(run.execute, papermill, out, cover, source)] = run.name
        for future in as_completed(futures):
            outcome = done[futures[future]] = future.result()
            if progress and parallel > 1:
                print(f"[{len(done)}/{len(runs)}] {outcome.name}: {outcome.status} in {outcome.seconds:.0f} s",
                      file=sys.stderr, flush=True)
        return done
    except BaseException:
        kill_kernels(kernels)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _NotebookRun:
    """One report's notebook executed into the partial bundle: page, executed notebook, log."""
    name: str
    notebooks: Path
    partial: Path
    kernel: str
    params_file: str
    private: Path          # this user's temporary folder: kernel sockets and the kernel's output
    cell_progress: bool = True     # papermill's progress bar (off when reports run side by side)
    kernels: list = field(default_factory=list)   # every kernel manager started, for an interrupt
    env: dict = field(default_factory=dict)       # added to the kernel's environment

    def execute(self, papermill, out: Path, cover: dict, source: Source) -> ReportOutcome:
        from nbclient.exceptions import CellTimeoutError
        from papermill.exceptions import PapermillExecutionError

        from mailaudit.report.kernel import quiet_kernel_manager

        started = time.monotonic()
        notebook = self.notebooks / f"{self.name}.ipynb"
        executed = self.partial / f"{self.name}.ipynb"
        outcome = ReportOutcome(self.name, "ok", html=f"{self.name}.html", log=log_name(self.name))
        if not notebook.is_file():
            outcome.status, outcome.html, outcome.log = "failed", None, None
            outcome.error = f"notebook not found: {notebook}"
            return outcome
        timeout = source.params.run["cell_timeout_seconds"]
        kernel_output = self.private / f"{self.name}.kernel.txt"
        sockets = self.private / self.name
        sockets.mkdir(mode=0o700, exist_ok=True)
        failure = None
        try:
            with captured_execution_logs() as logged:
                papermill.execute_notebook(
                    str(self._in_bundle_language(notebook)), str(executed),
                    parameters={"params_path": self.params_file, "out_dir": str(self.partial),
                                "snapshot_path": str(source.snapshot)},
                    kernel_name=self.kernel, progress_bar=self.cell_progress,
                    log_output=False, execution_timeout=timeout,
                    kernel_manager_class=quiet_kernel_manager(str(sockets), str(kernel_output),
                                                              cwd=str(self.notebooks), started=self.kernels,
                                                              env=self.env))
        except PapermillExecutionError as exc:
            outcome.status = "failed"
            outcome.error = source.scrub(_one_line(f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"))
        except CellTimeoutError as exc:
            outcome.status, failure = "failed", f"{type(exc).__name__}: {exc}"
            outcome.error = f"a cell ran longer than run.cell_timeout_seconds ({timeout} s) and was stopped"
        except Exception as exc:   # the kernel died or could not start, …: the other reports still run
            outcome.status, failure = "failed", f"{type(exc).__name__}: {exc}"
            outcome.error = source.scrub(_one_line(failure))
        outcome.seconds = round(time.monotonic() - started, 1)
        nb = None
        if executed.is_file():
            nb = nbformat.read(executed, as_version=4)
            sanitize_notebook(nb, self.params_file, str(out), source.scrub)
            nbformat.write(nb, executed)
            export_report_html(nb, self.partial / outcome.html,
                               {**cover, "title": report_title(self.name), "status": outcome.status,
                                "error": outcome.error, "log": outcome.log})
        else:
            outcome.html = None
        write_report_log(self.partial / outcome.log, report=self.name, status=outcome.status,
                         seconds=outcome.seconds, error=outcome.error, nb=nb,
                         detail="\n".join(filter(None, [*logged, failure])),
                         kernel_output=_read_text(kernel_output), scrub=source.scrub)
        return outcome


    def _in_bundle_language(self, notebook: Path) -> Path:
        """The notebook with its markdown cells in the bundle's language (English: the notebook itself)."""
        if bundle_language.active() == bundle_language.DEFAULT_LANGUAGE:
            return notebook
        nb = nbformat.read(notebook, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = bundle_language.translate_markdown(cell.source)
        translated = self.private / f"{self.name}.{bundle_language.active()}.ipynb"
        nbformat.write(nb, translated)
        return translated


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _write_bundle_files(partial: Path, source: Source, result: RunResult, parts: dict, cover: dict,
                        generated_at: str) -> None:
    reports = [{**o.as_dict(), "title": report_title(o.name)} for o in result.outcomes]
    actions = audit_actions(parts, reports, partial)
    suppression = suppression_listing(partial)
    summary = build_summary(period=source.params.period, source=source.description,
                            outcomes=[o.as_dict() for o in result.outcomes], parts=parts,
                            run={"kit_version": cover["version"], "generated_at": generated_at,
                                 "parameters": source.params.to_dict()})
    summary["audit_summary"] = {"actions": actions, "suppression_files": suppression}
    write_summary(partial / "summary.json", summary)
    tables = sorted(p.relative_to(partial).as_posix() for p in (partial / "tables").glob("*.csv"))
    write_index(partial / "index.html", cover=cover, reports=[o.as_dict() for o in result.outcomes],
                tables=tables, actions=actions, suppression=suppression)
