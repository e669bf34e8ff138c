"""The `mailaudit` console script: check, run, demo, demo-db, classify.

Exit codes (contract): 0 every requested report built (or skipped because the data cannot
support it); 1 a report failed or the bundle did not pass the secret scan; 2 unusable input,
found before any notebook ran. Errors are one line on stderr, never a traceback or a secret
(``--verbose`` shows the traceback, scrubbed).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path

import mailaudit
from mailaudit.narrative.language import LANGUAGES
from mailaudit.report.params import REPORT_NAMES

DEMO_DIR = Path("data")
DEMO_DB = DEMO_DIR / "demo.sqlite"
DEMO_LOGS = DEMO_DIR / "demo-logs"
DEMO_PARAMS = Path("params/demo.yaml")
_ENV_URL_PASSWORD = re.compile(r"://[^\s/@:]*:([^\s/@]+)@")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mailaudit", description="Audit reports for Bitrix24 email-marketing data.")
    parser.add_argument("--version", action="version", version=f"mailaudit {mailaudit.__version__}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks (secrets removed)")
    # also accepted after the subcommand; SUPPRESS keeps a top-level --verbose from being reset
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = sub.add_parser("check", parents=[common], help="validate parameters, connect read-only, list which reports can run")
    check.add_argument("--params", required=True, type=Path, help="parameter file (YAML)")
    check.add_argument("--only", help="comma-separated reports to check: " + ", ".join(REPORT_NAMES))

    run = sub.add_parser("run", parents=[common], help="run the report notebooks and write the bundle")
    run.add_argument("--params", required=True, type=Path, help="parameter file (YAML)")
    run.add_argument("--out", type=Path, help="bundle folder (default reports/<client>)")
    run.add_argument("--only", help="comma-separated reports: " + ", ".join(REPORT_NAMES))
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--lang", choices=LANGUAGES, help="language of the bundle (default: report.language, else en)")

    snap = sub.add_parser("snapshot", parents=[common],
                          help="read what the reports need from the source into a local snapshot file")
    snap.add_argument("--params", required=True, type=Path, help="parameter file (YAML)")
    snap.add_argument("--out", type=Path, help="snapshot file (default: snapshot.path, else snapshots/<client>.duckdb)")
    snap.add_argument("--parquet", type=Path, metavar="DIR", help="also write every table as Parquet under DIR")
    snap.add_argument("--no-progress", action="store_true", help="no progress bars")

    demo = sub.add_parser("demo", parents=[common], help="build the demo database and logs if missing, then run every report")
    demo.add_argument("--out", type=Path, help="bundle folder (default reports/demo in the kit's folder)")
    demo.add_argument("--contacts", type=int, help="demo contacts (default: the generator's)")
    demo.add_argument("--seed", type=int, help="random seed (default: the generator's)")
    demo.add_argument("--world", default="baseline",
                      help="demo behaviour profile (default baseline; see `mailaudit demo-db --help`)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument("--lang", choices=LANGUAGES, help="language of the bundle (default: en)")

    classify = sub.add_parser("classify", parents=[common],
                              help="classify delivery-log events or User-Agents (no database needed)")
    what = classify.add_mutually_exclusive_group(required=True)
    what.add_argument("--delivery-log", nargs="+", type=Path, metavar="FILE",
                      help="mail-server logs (Postfix, Exim, msmtp or CSV; plain or .gz): one row per delivery event")
    what.add_argument("--user-agents", type=Path, metavar="FILE", help="one User-Agent a line")
    classify.add_argument("--out", type=Path, metavar="CSV", help="write the CSV here (default: standard output)")

    demo_db = sub.add_parser("demo-db", help="write a synthetic Bitrix-shaped database (and logs)")
    try:
        from mailaudit.demo.cli import add_demo_db_arguments
    except ImportError:  # the generator is optional at parse time; running demo-db reports the error
        demo_db.add_argument("demo_db_args", nargs=argparse.REMAINDER)
    else:
        add_demo_db_arguments(demo_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mailaudit.report.runner import InputError

    try:
        return {"check": cmd_check, "run": cmd_run, "snapshot": cmd_snapshot, "demo": cmd_demo,
                "demo-db": cmd_demo_db, "classify": cmd_classify}[args.command](args)
    except InputError as exc:
        return _fail(args, exc, 2)
    except KeyboardInterrupt:
        print("mailaudit: interrupted; no bundle was published", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still ends in one clean line
        return _fail(args, exc, 1, prefix=f"{type(exc).__name__}: ")


def _fail(args, exc: BaseException, code: int, prefix: str = "") -> int:
    if getattr(args, "verbose", False):
        print(scrub_environment_secrets("".join(traceback.format_exception(exc))), file=sys.stderr)
    message = " ".join(scrub_environment_secrets(f"{prefix}{exc}").split())
    print(f"mailaudit: error: {message}", file=sys.stderr)
    return code


def scrub_environment_secrets(text: str, environ=os.environ) -> str:
    """Remove every URL password (and the URL itself) held in an environment variable.

    The CLI does not always know which variable names the database, so it treats every
    ``scheme://user:password@`` value in the environment as a secret.
    """
    for value in environ.values():
        match = _ENV_URL_PASSWORD.search(value)
        if match:
            text = text.replace(value, "***").replace(match.group(1), "***")
    return text


# --- check ------------------------------------------------------------------------------------

def cmd_check(args) -> int:
    from mailaudit.report.runner import parse_only, prepare, source_label

    requested = parse_only(args.only)
    source = prepare(args.params, look_at_period=True)
    reports = requested or source.params.reports
    capabilities = source.schema.capabilities
    print(f"parameters  {args.params}: ok")
    print(f"client      {source.params.client}")
    print(f"period      {source.params.period.label}")
    print(f"source      {source_label(source.description)} (read-only), charset {source.description.get('charset')}")
    logs = source.params.logs
    print(f"logs        delivery: {len(logs['delivery'])} file(s), access: {len(logs['access'])} file(s)")
    print()
    width = max(len(n) for n in REPORT_NAMES)
    print(f"{'report':<{width}}  can run  notes")
    for name in REPORT_NAMES:
        capability = capabilities[name]
        verdict = "yes" if capability.ok else "NO"
        if name not in reports:
            verdict = "-"
        print(f"{name:<{width}}  {verdict:<7}  {capability.reason or ''}".rstrip())
    if not source.period_sends:
        print(f"mailaudit: {source.params.period.no_sends}: every report would say so and leave the "
              "figures of the period null; check period.start and period.end", file=sys.stderr)
        return 2
    blocked = [n for n in reports if not capabilities[n].ok]
    if blocked:
        print(f"\n{len(blocked)} requested report(s) cannot run: {', '.join(blocked)}", file=sys.stderr)
        return 2
    return 0


# --- run --------------------------------------------------------------------------------------

def slug(text: str) -> str:
    value = re.sub(r"[^\w]+", "-", text.strip().lower(), flags=re.UNICODE).strip("-_")
    return value or "report"


def cmd_run(args) -> int:
    from mailaudit.report.runner import load_params_or_fail, parse_only, run_reports

    only = parse_only(args.only)
    # the output folder is checked before the database is opened (run_reports does both)
    out = args.out or Path("reports") / slug(load_params_or_fail(args.params, Path.cwd().resolve()).client)
    result = run_reports(args.params, out, only=only, progress=not args.no_progress, language=args.lang)
    return _print_result(result)


def _print_result(result) -> int:
    if result.published and result.kept:
        print(f"mailaudit: left {len(result.kept)} entr{'y' if len(result.kept) == 1 else 'ies'} in "
              f"{result.out_dir} that mailaudit did not write: {', '.join(result.kept)}", file=sys.stderr)
    if result.no_sends:
        print(f"mailaudit: {result.no_sends}: every report says so and leaves the figures of the period null",
              file=sys.stderr)
    for outcome in result.outcomes:
        detail = outcome.error or outcome.reason or outcome.headline or ""
        print(f"{outcome.status:<8} {outcome.name:<18} {detail}".rstrip())
    if result.leaks:
        for leak in result.leaks:
            print(f"mailaudit: error: secret scan: {leak}", file=sys.stderr)
        print("mailaudit: error: the bundle was not published (fix the report that leaks, then run again)",
              file=sys.stderr)
        return result.exit_code
    print(result.index)
    return result.exit_code


# --- snapshot -----------------------------------------------------------------------------------

def cmd_snapshot(args) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from mailaudit.report.runner import InputError, load_params_or_fail
    from mailaudit.snapshot.extract import SnapshotError, extract_snapshot
    from mailaudit.snapshot.store import default_snapshot_path
    from mailaudit.sources.db import DatabaseConfigError

    workdir = Path.cwd().resolve()
    params = load_params_or_fail(args.params, workdir)
    if (params.database or {}).get("snapshot"):
        raise InputError("the parameters name a snapshot (database.snapshot): name the source database instead")
    out = (args.out or default_snapshot_path(params, workdir)).resolve()
    try:
        manifest = extract_snapshot(params, out, progress=not args.no_progress, parquet_dir=args.parquet,
                                    workdir=workdir)
    except (SnapshotError, SQLAlchemyError, DatabaseConfigError, OSError) as exc:
        detail = getattr(exc, "orig", None) or exc
        raise InputError(f"cannot make the snapshot: {detail}") from None
    rows = sum(table["rows"] for table in manifest["tables"].values())
    print(f"{rows:,} rows from {len(manifest['tables'])} tables in {manifest['seconds']:.1f} s "
          f"(window {manifest['window']['start']} to {manifest['window']['end']}; "
          f"longest source statement {manifest['longest_statement_seconds']:.2f} s)", file=sys.stderr)
    print(out)
    return 0


# --- classify ---------------------------------------------------------------------------------

def cmd_classify(args) -> int:
    """Delivery-log events with their bounce class, or User-Agents with their hit class, as CSV."""
    from mailaudit.report.runner import InputError

    inputs = args.delivery_log or [args.user_agents]
    missing = [str(p) for p in inputs if not p.is_file()]
    if missing:
        raise InputError(f"no such file: {', '.join(missing)} (give existing log or User-Agent files)")
    if args.delivery_log:
        from mailaudit.analyses.bounces import event_table

        table, stats = event_table(args.delivery_log)
        for s in stats:
            problems = [f"{n:,} {what}" for n, what in ((s.unparseable, "unparseable"), (s.truncated_lines, "cut"),
                                                        (s.undecodable_lines, "undecodable")) if n]
            note = f"; {', '.join(problems)} lines" if problems else ""
            error = f"; {s.read_error}" if s.read_error else ""
            print(f"{s.path}: {s.format or 'format not recognised'}, {s.lines:,} lines, {s.events:,} events{note}{error}",
                  file=sys.stderr)
    else:
        from mailaudit.analyses.mail_clients import user_agent_table

        with open(args.user_agents, encoding="utf-8", errors="replace", newline="") as handle:
            table = user_agent_table(line for line in handle if line.strip())
    if args.out:
        from mailaudit.report.csv_files import write_csv

        write_csv(table, args.out)
        print(f"{len(table):,} rows written to {args.out}", file=sys.stderr)
    else:
        from mailaudit.report.csv_files import neutralise_frame

        neutralise_frame(table).to_csv(sys.stdout, index=False, lineterminator="\n")
    return 0


# --- demo -------------------------------------------------------------------------------------

def demo_defaults() -> dict[str, int]:
    """The generator's own default contacts and seed (the build of data/demo.sqlite)."""
    import inspect

    from mailaudit.demo import build_demo

    parameters = inspect.signature(build_demo).parameters
    return {"contacts": parameters["contacts"].default, "seed": parameters["seed"].default}


def kit_root() -> Path:
    """The folder holding params/demo.yaml: the current one, else the kit's checkout."""
    from mailaudit.report.runner import InputError

    for folder in (Path.cwd(), Path(mailaudit.__file__).resolve().parents[2]):
        if (folder / DEMO_PARAMS).is_file():
            return folder
    raise InputError(f"{DEMO_PARAMS} not found: run `mailaudit demo` from the kit's folder")


def demo_paths(contacts: int, seed: int, world: str = "baseline") -> tuple[Path, Path]:
    """Database and logs folder of a demo build (relative to the kit's folder); a non-default
    build gets its own names, so it never overwrites the default demo."""
    if {"contacts": contacts, "seed": seed} == demo_defaults() and world == "baseline":
        return DEMO_DB, DEMO_LOGS
    stem = f"demo-c{contacts}-s{seed}" + ("" if world == "baseline" else f"-{world}")
    return DEMO_DIR / f"{stem}.sqlite", DEMO_DIR / f"{stem}-logs"


def ensure_demo_database(contacts: int, seed: int, root: Path, world: str = "baseline") -> tuple[Path, Path]:
    """Build the demo database and logs under `root` unless the same build (contacts, seed, world,
    kit version) is there; returns their absolute paths."""
    from mailaudit.demo import build_demo
    from mailaudit.report.runner import InputError

    db, logs = (root / p for p in demo_paths(contacts, seed, world))
    wanted = {"contacts": contacts, "seed": seed, "kit_version": mailaudit.__version__}
    if world != "baseline":
        wanted["world"] = world
    stamp = db.with_name(db.name + ".build.json")
    try:
        current = json.loads(stamp.read_text(encoding="utf-8")) if db.is_file() and logs.is_dir() else None
    except (OSError, ValueError):
        current = None
    if current == wanted:
        return db, logs
    print(f"building the demo database {db} ({contacts} contacts, seed {seed}, world {world}) and logs {logs}/ …",
          file=sys.stderr, flush=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    try:
        build_demo(sqlite_path=db, contacts=contacts, seed=seed, logs_dir=logs, world=world)
    except ValueError as exc:
        raise InputError(f"cannot build the demo database: {exc}") from None
    stamp.write_text(json.dumps(wanted) + "\n", encoding="utf-8")
    return db, logs


def demo_params(db: Path, logs: Path, root: Path) -> Path:
    """params/demo.yaml, or for a non-default build a copy pointing at its database and logs."""
    if (db, logs) == (root / DEMO_DB, root / DEMO_LOGS):
        return root / DEMO_PARAMS
    import yaml

    raw = yaml.safe_load((root / DEMO_PARAMS).read_text(encoding="utf-8"))
    raw["database"] = {"sqlite": str(db)}
    raw["snapshot"] = {"path": str(db.with_suffix(".snapshot.duckdb"))}
    prefix = str(DEMO_LOGS) + "/"
    for kind, entries in (raw.get("logs") or {}).items():
        raw["logs"][kind] = [str(logs) + "/" + e[len(prefix):] if e.startswith(prefix) else e for e in entries]
    target = db.with_suffix(".yaml")
    target.write_text("# generated by `mailaudit demo` from params/demo.yaml\n"
                      + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def cmd_demo(args) -> int:
    from mailaudit.report.runner import run_reports

    root = kit_root()
    out = args.out.resolve() if args.out else root / "reports" / "demo"
    defaults = demo_defaults()
    contacts = defaults["contacts"] if args.contacts is None else args.contacts
    seed = defaults["seed"] if args.seed is None else args.seed
    db, logs = ensure_demo_database(contacts, seed, root, args.world)
    result = run_reports(demo_params(db, logs, root), out, progress=not args.no_progress, workdir=root,
                         language=args.lang)
    return _print_result(result)


def cmd_demo_db(args) -> int:
    from mailaudit.demo.cli import run_demo_db

    return int(run_demo_db(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
