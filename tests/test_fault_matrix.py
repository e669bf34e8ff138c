"""The fault matrix: one row per bad input or fault, each built from the 3000-contact demo.

Rows: the output folder (foreign, forged marker, old bundle, the user's files, read-only, a second run),
interruptions (SIGINT, a failing notebook, a slow cell), the source (each core table missing, optional
tables one by one, NULL-heavy columns from `--nulls`, garbage and hostile addresses, a connection killed
during the snapshot on MariaDB), the period (future, past, `check` on it) and the logs (empty, binary
junk, truncated gzip).

Every row states what `mailaudit run` must do and is checked the same way:
- the exit code of `mailaudit.cli.main` (or of the command in a subprocess);
- stderr: exactly the one expected line, or nothing (kernel noise included: stderr is captured
  at the file-descriptor level, where a kernel process writes);
- what the bundle (--out) holds afterwards;
- that no file outside the bundle changed: the test's folder and the demo's, paths and hashes,
  before and after (temporary folders and lock files left beside --out show up here). The
  snapshot a run extracts goes to `snapshot.path`, set to a folder of the test's own.

A row adds a fault by giving `arrange` (build the bad input in `World`), the expectations, and
`act` when the command must run otherwise (a subprocess for signals and concurrent runs, `check`, a
second database session). Runner faults use the small notebooks below (MAILAUDIT_NOTEBOOKS) and read
the demo's snapshot made once per session; data faults copy and change the demo database (or point
at other logs) and run the kit's own notebooks with --only, on the reports the fault concerns.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import papermill
import pytest

from mailaudit import cli
from mailaudit.report.csv_files import FORMULA_PREFIXES
from mailaudit.report.output_folder import MARKER
from report_helpers import write_report_notebook

CONTROL_ENV = "MAILAUDIT_TEST_CONTROL"
ADDRESS_IN_ERROR = "ivan.petrov@mail.ru"
SMALL_NOTEBOOK = f"""
import os, pathlib, time
control = pathlib.Path(os.environ["{CONTROL_ENV}"])
report = ctx.report
(control / f"{{report}}.started").touch()
if (control / f"{{report}}.hold").exists():   # wait until the test releases it (or 120 s)
    deadline = time.monotonic() + 120
    while not (control / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
if (control / f"{{report}}.raise").exists():
    raise RuntimeError("deliberate failure for " + {ADDRESS_IN_ERROR.split("@")[0]!r} + "@mail.ru")
ctx.headline(f"{{report}} ran")
"""
REPORTS = ("data_and_tracking", "list_hygiene", "open_inflation", "segments", "conversion")
HOSTILE_ADDRESSES = ('=hyperlink("x")@mail.ru', "+cmd|' /c calc'!a0@mail.ru", "@sum(1+1)@mail.ru")
GARBAGE_ADDRESSES = ("no-at-sign.mail.ru", "two@@mail.ru", "a@b@c.ru", "spaces in@mail.ru", "x" * 300 + "@mail.ru",
                     "<script>alert(1)</script>@mail.ru", "bell\x07@mail.ru", "trailing.dot.@mail.ru", "@", "-")


@dataclass
class World:
    """The user's folder (`root`: parameter file, --out, their own files) and the test's levers."""
    root: Path
    out: Path
    control: Path            # outside the snapshot: steers the small notebooks
    demo: object
    make_params: Callable[..., str]
    stack: contextlib.ExitStack
    request: pytest.FixtureRequest
    params: str = ""
    only: str = "data_and_tracking"
    database: Path | None = None     # the copy of the demo database a data fault changed
    expected: dict = field(default_factory=dict)   # what an arrange step knows the check will need

    def copy_database(self, source: Path | None = None) -> sqlite3.Connection:
        """A copy of the demo database (or `source`) in the user's folder, open for changes; the run reads it."""
        self.database = self.root / "shop.sqlite"
        shutil.copy(source or self.demo.database, self.database)
        conn = sqlite3.connect(self.database)
        self.stack.callback(conn.close)
        return conn

    def use_database(self, **sections) -> None:
        self.params = self.make_params(database={"sqlite": str(self.database)}, **sections)

    def summary(self) -> dict:
        return json.loads((self.out / "summary.json").read_text(encoding="utf-8"))

    def argv(self) -> list[str]:
        return ["run", "--params", self.params, "--out", str(self.out), "--only", self.only, "--no-progress"]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Fault:
    name: str
    arrange: Callable[[World], None]
    exit_code: int
    stderr: str | None                 # regex for the one line on stderr; None: stderr stays empty
    bundle: Callable[[World, dict, dict], None]   # (world, out before, out after) -> asserts
    stdout: str | None = None          # regex one stdout line must match
    notebooks: str = "small"           # "small" (below) or "kit" (the kit's own)
    act: Callable[[World, pytest.CaptureFixture], Outcome] | None = None
    notebooks_start: bool = True       # False: refused before any notebook started
    mariadb: bool = False              # needs the MariaDB server (skipped without it, as the other server tests)

    def __str__(self) -> str:
        return self.name


# --- how a row runs -----------------------------------------------------------------------------

def run_in_process(world: World, capfd) -> Outcome:
    capfd.readouterr()
    code = cli.main(world.argv())
    captured = capfd.readouterr()
    return Outcome(code, captured.out, captured.err)


def _command(world: World) -> list[str]:
    return [sys.executable, "-m", "mailaudit.cli", *world.argv()]


def _wait_for(path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.1)


def _held_run(world: World, during: Callable[[subprocess.Popen], object], release: bool = True,
              **popen) -> tuple[Outcome, object]:
    """Start the command in a subprocess, wait until its data_and_tracking notebook is under way and
    holds, call `during` (with the process), then let the notebook finish (`release`) and wait."""
    (world.control / "data_and_tracking.hold").touch()
    process = subprocess.Popen(_command(world), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=world.root, **popen)
    try:
        _wait_for(world.control / "data_and_tracking.started")
        done = during(process)
    finally:
        if release:
            (world.control / "release").touch()
        out, err = process.communicate(timeout=120)
    return Outcome(process.returncode, out, err), done


def interrupted_by_ctrl_c(world: World, capfd) -> Outcome:
    """The run is interrupted as a terminal's Ctrl-C does: SIGINT to its process group, mid-notebook."""
    return _held_run(world, lambda process: os.killpg(process.pid, signal.SIGINT), release=False,
                     start_new_session=True)[0]


ADDED_DURING_RUN = hashlib.sha256(b"written while the reports ran").hexdigest()


def user_adds_a_file_during_the_run(world: World, capfd) -> Outcome:
    """The user drops a file into an older bundle's folder while the new run is under way."""
    def add(process):
        (world.out / "added.txt").write_bytes(b"written while the reports ran")

    return _held_run(world, add)[0]


def second_run_while_the_first_writes(world: World, capfd) -> Outcome:
    """A first run (subprocess) holds --out; the second (in process) is the one under test."""
    first, second = _held_run(world, lambda process: run_in_process(world, capfd))
    assert (first.code, first.stderr) == (0, ""), first
    assert first.stdout.splitlines()[-1] == str(world.out / "index.html")
    return second


# --- folders ------------------------------------------------------------------------------------

def tree(*folders: Path) -> dict[str, str]:
    """Every path under `folders` (folders included) -> "dir" or the file's sha256."""
    entries = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            entries[str(path)] = ("dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def split(snapshot: dict[str, str], out: Path) -> tuple[dict, dict]:
    inside = {p: h for p, h in snapshot.items() if p == str(out) or p.startswith(str(out) + os.sep)}
    return inside, {p: h for p, h in snapshot.items() if p not in inside}


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


def make_read_only(world: World, folder: Path) -> None:
    """chmod 555; as root (which ignores modes) the immutable attribute; undone after the test."""
    folder.chmod(0o555)
    world.stack.callback(folder.chmod, 0o755)
    if _writable(folder):
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("cannot make a folder read-only here (root without chattr +i)")
        world.stack.callback(subprocess.run, ["chattr", "-i", str(folder)], check=True)
    assert not _writable(folder)


def previous_bundle(world: World) -> None:
    """A bundle of an earlier run (two reports, one failed) in --out."""
    (world.control / "list_hygiene.raise").touch()
    argv = world.argv()
    argv[argv.index("--only") + 1] = "data_and_tracking,list_hygiene"
    assert cli.main(argv) == 1
    (world.control / "list_hygiene.raise").unlink()
    (world.control / "data_and_tracking.started").unlink()
    (world.control / "list_hygiene.started").unlink()


def files_of(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def marker_files(folder: Path) -> set[str]:
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    assert marker["generator"] == "mailaudit" and marker["complete"] is True
    return set(marker["files"])


# --- the rows -----------------------------------------------------------------------------------

def arrange_foreign_folder(world: World) -> None:
    world.out.mkdir()
    (world.out / "index.html").write_text("<h1>my web site</h1>")
    (world.out / "style.css").write_text("h1 { color: red }")
    (world.out / "blog").mkdir()
    (world.out / "blog" / "post.html").write_text("<p>a post</p>")


def arrange_forged_marker(world: World) -> None:
    arrange_foreign_folder(world)
    (world.out / MARKER).write_text(json.dumps({"generator": "mailaudit", "files": ["../params.yaml", "index.html"]}))


def arrange_markerless_bundle(world: World) -> None:
    previous_bundle(world)
    (world.out / MARKER).unlink()   # as bundles of kit 0.2.0 and earlier were


def arrange_user_files_beside_a_bundle(world: World) -> None:
    previous_bundle(world)
    (world.out / "notes.txt").write_text("the client's remarks")
    (world.out / "archive").mkdir()
    (world.out / "archive" / "q4.pdf").write_bytes(b"%PDF-1.4 old report")


def arrange_kit_named_user_file(world: World) -> None:
    previous_bundle(world)
    (world.out / "suppress_mine.csv").write_text("email\nkeep@me.example\n")


def arrange_read_only_out(world: World) -> None:
    previous_bundle(world)
    make_read_only(world, world.out)


def arrange_read_only_parent(world: World) -> None:
    site = world.root / "site"
    site.mkdir()
    (site / "README").write_text("a folder the user cannot write")
    world.out = site / "out"
    make_read_only(world, site)


def arrange_failing_notebook(world: World) -> None:
    world.only = "data_and_tracking,list_hygiene"
    (world.control / "list_hygiene.raise").touch()


def arrange_slow_cell(world: World) -> None:
    world.only = "data_and_tracking,list_hygiene"
    world.params = world.make_params(run={"cell_timeout_seconds": 10})
    (world.control / "data_and_tracking.hold").touch()


def arrange_hostile_addresses(world: World) -> None:
    conn = world.copy_database()
    addresses = HOSTILE_ADDRESSES + GARBAGE_ADDRESSES
    ids = [row[0] for row in conn.execute(
        "SELECT ID FROM b_sender_contact WHERE TYPE_ID = 1 ORDER BY ID LIMIT ?", (len(addresses),))]
    for contact, address in zip(ids, addresses):
        conn.execute("UPDATE b_sender_contact SET CODE = ? WHERE ID = ?", (address, contact))
    conn.commit()
    world.use_database(with_logs=False)
    world.only = "list_hygiene"


def unchanged(world: World, before: dict, after: dict) -> None:
    assert after == before


def nothing_published(world: World, before: dict, after: dict) -> None:
    assert after == {} and not world.out.exists()


def published(*reports: str, kept: tuple[str, ...] = ()) -> Callable[[World, dict, dict], None]:
    """--out holds the bundle of `reports`, its marker listing exactly those files, and `kept` (with
    `extra`: also the tables and suppression files the kit's notebooks write, all in the marker)."""
    def check(world: World, before: dict, after: dict, extra: bool = False) -> None:
        expected = {"index.html", "summary.json", *(f"{r}.{x}" for r in reports for x in ("html", "ipynb")),
                    *(f"logs/{r}.log" for r in reports)}
        if extra:
            written = files_of(world.out) - {MARKER, *kept}
            assert expected <= written and all(f.startswith(("tables/", "suppress_")) for f in written - expected)
            expected = written
        assert files_of(world.out) == expected | {MARKER, *kept}
        assert marker_files(world.out) == expected
        for name in kept:   # untouched, byte for byte
            assert after[str(world.out / name)] == before.get(str(world.out / name), ADDED_DURING_RUN)
    return check


def failure_in_one_paragraph(world: World, before: dict, after: dict) -> None:
    published("data_and_tracking", "list_hygiene")(world, before, after)
    page = (world.out / "list_hygiene.html").read_text(encoding="utf-8")
    paragraphs = re.findall(r'<p class="cover-failed">(.*?)</p>', page, re.S)
    assert len(paragraphs) == 1 and "RuntimeError: deliberate failure for i***@mail.ru (cell 4)" in paragraphs[0]
    assert "Traceback" not in page and "site-packages" not in page and "-->" not in page.split("</header>")[1]
    log = (world.out / "logs" / "list_hygiene.log").read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in log and "RuntimeError: deliberate failure for i***@mail.ru" in log
    for path in world.out.rglob("*"):   # privacy.mask_emails: the address is masked everywhere
        assert not path.is_file() or ADDRESS_IN_ERROR not in path.read_text(encoding="utf-8", errors="replace")
    assert "data_and_tracking ran" in (world.out / "index.html").read_text(encoding="utf-8")


def timeout_fails_one_report(world: World, before: dict, after: dict) -> None:
    published("data_and_tracking", "list_hygiene")(world, before, after)
    summary = json.loads((world.out / "summary.json").read_text(encoding="utf-8"))
    assert {n: r["status"] for n, r in summary["reports"].items()} == {"data_and_tracking": "failed",
                                                                      "list_hygiene": "ok"}
    log = (world.out / "logs" / "data_and_tracking.log").read_text(encoding="utf-8")
    assert "CellTimeoutError" in log and "after 10 seconds" in log


def csv_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def formulas_neutralised(world: World, before: dict, after: dict) -> None:
    published("list_hygiene", kept=())(world, before, after, extra=True)
    cells = [cell for path in world.out.glob("suppress_*.csv") for cell in csv_cells(path)]
    assert cells
    for address in HOSTILE_ADDRESSES:
        assert "'" + address in cells, address
    assert [c for c in cells if c.startswith(FORMULA_PREFIXES)] == []
    invalid = csv_cells(world.out / "suppress_invalid_syntax.csv")
    for address in GARBAGE_ADDRESSES:   # each is invalid, written whole (neutralised when it starts a formula)
        assert address in invalid or "'" + address in invalid, address
    page = (world.out / "list_hygiene.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "Traceback" not in page


OUT = r"\S+/out"
NOT_A_BUNDLE = (rf"mailaudit: error: --out {OUT} is not empty and is not a mailaudit bundle \(no valid "
                r"\.mailaudit-bundle\.json\); choose a new or empty folder")
FAULTS = [
    Fault("foreign --out folder (index.html, other files, a sub-folder)", arrange_foreign_folder, 2,
          NOT_A_BUNDLE, unchanged, notebooks_start=False),
    Fault("foreign folder with a forged marker listing ../params.yaml", arrange_forged_marker, 2,
          NOT_A_BUNDLE, unchanged, notebooks_start=False),
    Fault("bundle of an earlier kit version (no marker)", arrange_markerless_bundle, 2,
          NOT_A_BUNDLE + r" \(a bundle of mailaudit 0\.2\.0 or earlier has no marker: delete it yourself once\)",
          unchanged, notebooks_start=False),
    Fault("older bundle with the user's files beside it", arrange_user_files_beside_a_bundle, 0,
          rf"mailaudit: left 2 entries in {OUT} that mailaudit did not write: archive/, notes\.txt",
          published("data_and_tracking", kept=("notes.txt", "archive/q4.pdf")),
          stdout=r"ok +data_and_tracking +data_and_tracking ran"),
    Fault("a file added to an older bundle's folder while the reports run", previous_bundle, 0,
          rf"mailaudit: left 1 entry in {OUT} that mailaudit did not write: added\.txt",
          published("data_and_tracking", kept=("added.txt",)), act=user_adds_a_file_during_the_run),
    Fault("older bundle with a user's file named like a bundle file", arrange_kit_named_user_file, 2,
          rf"mailaudit: error: --out {OUT} holds suppress_mine\.csv, which the bundle would overwrite but "
          r"mailaudit did not write; move it or choose another folder", unchanged, notebooks_start=False),
    Fault("read-only --out", arrange_read_only_out, 2,
          rf"mailaudit: error: cannot write in {OUT} \(--out\): (Permission denied|Operation not permitted); "
          r"fix its permissions or choose another --out", unchanged, notebooks_start=False),
    Fault("read-only parent of --out", arrange_read_only_parent, 2,
          r"mailaudit: error: cannot write in \S+/site \(the folder that holds --out\): "
          r"(Permission denied|Operation not permitted); fix its permissions or choose another --out",
          nothing_published, notebooks_start=False),
    Fault("second run into an --out another run is writing", lambda world: None, 2,
          rf"mailaudit: error: another mailaudit run \(pid \d+\) is writing {OUT}; wait for it to finish "
          r"or choose another --out", published("data_and_tracking"), act=second_run_while_the_first_writes,
          notebooks_start=False),
    Fault("SIGINT (Ctrl-C) during a notebook", lambda world: None, 130,
          r"mailaudit: interrupted; no bundle was published", nothing_published, act=interrupted_by_ctrl_c),
    Fault("a notebook that raises", arrange_failing_notebook, 1, None, failure_in_one_paragraph,
          stdout=r"failed +list_hygiene +RuntimeError: deliberate failure for i\*\*\*@mail\.ru \(cell 4\)"),
    Fault("a cell that outlasts run.cell_timeout_seconds", arrange_slow_cell, 1, None, timeout_fails_one_report,
          stdout=r"failed +data_and_tracking +a cell ran longer than run\.cell_timeout_seconds \(10 s\) and was stopped"),
    Fault("hostile addresses (formula cells) in the contacts", arrange_hostile_addresses, 0, None,
          formulas_neutralised, notebooks="kit", stdout=r"ok +list_hygiene +.*"),
]


# --- data faults: tables, values, periods, logs, the source connection -------------------------

CORE_TABLES = ("b_sender_mailing", "b_sender_mailing_chain", "b_sender_posting", "b_sender_posting_recipient",
               "b_sender_contact")


def drop_table(table: str, with_logs: bool = False) -> Callable[[World], None]:
    def arrange(world: World) -> None:
        conn = world.copy_database()
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
        world.use_database(with_logs=with_logs)
    return arrange


def missing_core_table(table: str) -> Fault:
    return Fault(f"core table {table} missing", drop_table(table), 2,
                 rf"mailaudit: error: not a Bitrix sender database: missing table\(s\) {table} \(check "
                 r"database\.url_env / database\.sqlite points at the portal's database\)",
                 nothing_published, notebooks_start=False)


def noted(report: str, pattern: str | None, null: tuple[str, ...] = (), skipped: dict[str, str] | None = None,
          ran: tuple[str, ...] = ()) -> Callable[[World, dict, dict], None]:
    """The kit's `report` ran (and `ran`), a note of it matches `pattern`, the `null` figures
    ("section.key") are null, and the `skipped` reports are skipped with their reason."""
    def check(world: World, before: dict, after: dict) -> None:
        published(report, *ran)(world, before, after, extra=True)
        summary = world.summary()
        assert summary["reports"][report]["status"] == "ok"
        if pattern:
            assert any(re.search(pattern, note) for note in summary["reports"][report]["notes"]), \
                summary["reports"][report]["notes"]
        for key in null:
            section, name = key.split(".")
            assert summary[section][name] is None, key
        for name, reason in (skipped or {}).items():
            assert summary["reports"][name]["status"] == "skipped"
            assert summary["reports"][name]["notes"] == [f"skipped: {reason}"]
        for page in world.out.glob("*.html"):
            assert "Traceback" not in page.read_text(encoding="utf-8")
    return check


def missing_optional_table(table: str, only: str, pattern: str | None, null: tuple[str, ...] = (),
                           skipped: tuple[str, ...] = ()) -> Fault:
    """The kit's report that reads `table` runs without it; the reports that need it are skipped."""
    def arrange(world: World) -> None:
        drop_table(table)(world)
        world.only = ",".join((only, *skipped))

    reason = f"missing table(s) {table}"
    return Fault(f"optional table {table} missing ({only})", arrange, 0, None,
                 noted(only, pattern, null, {name: reason for name in skipped}), notebooks="kit",
                 stdout=rf"ok +{only} +.*")


def arrange_null_heavy(world: World) -> None:
    """The `--nulls` demo, with a tenth of the sent recipient rows without DATE_SENT and blank addresses
    (empty, spaces, a tab, a line break) on some contacts."""
    conn = world.copy_database(world.request.getfixturevalue("nulls_demo"))
    conn.execute("UPDATE b_sender_posting_recipient SET DATE_SENT = NULL WHERE STATUS IN ('N', 'E') AND ID % 10 = 3")
    email_rows = ("FROM b_sender_posting_recipient r JOIN b_sender_posting p ON p.ID = r.POSTING_ID "
                  "JOIN b_sender_mailing_chain c ON c.ID = p.MAILING_CHAIN_ID WHERE c.MESSAGE_CODE = 'mail'")
    ids = [row[0] for row in conn.execute("SELECT ID FROM b_sender_contact WHERE TYPE_ID = 1 AND ID % 97 = 5")]
    for n, contact in enumerate(ids):   # (TYPE_ID, CODE) is unique: each blank is another string
        conn.execute("UPDATE b_sender_contact SET CODE = ? WHERE ID = ?", ([" ", "\t", "\n"][n % 3] * n, contact))
    conn.commit()
    world.expected = {"undated": conn.execute(f"SELECT count(*) {email_rows} AND r.STATUS IN ('N', 'E') "
                                              "AND r.DATE_SENT IS NULL").fetchone()[0],   # SMS rows are not e-mail
                      "blank": len(ids)}
    world.use_database(with_logs=False)
    world.only = "data_and_tracking,list_hygiene"


def null_heavy_counted(world: World, before: dict, after: dict) -> None:
    published("data_and_tracking", "list_hygiene")(world, before, after, extra=True)
    summary = world.summary()
    quality = summary["data_and_tracking"]
    assert quality["sent_without_date"] == world.expected["undated"] > 2000
    assert quality["contacts_without_address"] == world.expected["blank"] > 20
    missing = quality["missing_values"]
    assert missing["b_sender_posting_recipient.DATE_SENT"]["null"] >= world.expected["undated"]
    assert sum(missing["b_sender_contact.CODE"][k] for k in ("null", "empty", "whitespace")) == world.expected["blank"]
    for column in ("b_sender_mailing_chain.LINK_PARAMS", "b_crm_deal.OPPORTUNITY", "b_sale_order.DATE_PAYED"):
        assert missing[column]["null"] > 0, column   # text, number, date
    table = (world.out / "tables" / "missing_values.csv").read_text(encoding="utf-8-sig")
    assert "b_sender_posting_recipient,DATE_SENT" in table
    notes = summary["reports"]["list_hygiene"]["notes"]
    assert any(f"{world.expected['undated']:,} letters were sent without a send date" in n for n in notes), notes
    assert any(f"{world.expected['blank']:,} e-mail contacts have a blank address" in n for n in notes), notes
    for path in world.out.glob("suppress_*.csv"):   # no row without an address
        if path.name == "suppress_blacklist_import.csv":   # addresses only, no header line
            assert all(line.strip() for line in path.read_text(encoding="utf-8").splitlines()), path.name
            continue
        rows = list(csv.DictReader(path.open(encoding="utf-8-sig", newline="")))
        assert all((row.get("email") or "").strip() for row in rows), path.name


FUTURE = {"start": "2040-01-01", "end": "2040-03-31"}
PAST = {"start": "2024-01-01", "end": "2024-03-31"}


def period(dates: dict, only: str) -> Callable[[World], None]:
    def arrange(world: World) -> None:
        world.params = world.make_params(period=dates, database={"sqlite": str(world.demo.database)})
        world.only = only
    return arrange


def empty_period_pages(dates: dict, reports: tuple[str, ...]) -> Callable[[World, dict, dict], None]:
    def check(world: World, before: dict, after: dict) -> None:
        published(*reports)(world, before, after, extra=True)
        sentence = f"no e-mail sends between {dates['start']} and {dates['end']}"
        summary = world.summary()
        for report in reports:
            entry = summary["reports"][report]
            assert entry["status"] == "ok" and entry["headline"] == sentence, entry
            assert any(note.startswith(sentence) for note in entry["notes"])
            page = (world.out / f"{report}.html").read_text(encoding="utf-8")
            assert sentence.capitalize() in page and "Traceback" not in page
        expected_null = {"data_and_tracking": ("reads_without_recipient", "letters_missing_utm",
                                               "letters_missing_utm_by_code"),
                         "list_hygiene": (), "segments": (), "open_inflation": ("raw_open_rate", "human_open_rate"),
                         "conversion": ("conversion_rate", "revenue_per_recipient")}
        section = {"open_inflation": "opens", "list_hygiene": "hygiene"}
        for report in reports:
            for key in expected_null[report]:
                assert summary[section.get(report, report)][key] is None, (report, key)
        if "list_hygiene" in reports:
            assert set(summary["hygiene"]["period_rates"].values()) == {None}
        if "segments" in reports:
            assert summary["segments"]["dimensions"] == {} and summary["segments"]["differences"] == []
    return check


def check_command(world: World, capfd) -> Outcome:
    capfd.readouterr()
    code = cli.main(["check", "--params", world.params])
    captured = capfd.readouterr()
    return Outcome(code, captured.out, captured.err)


def with_logs(delivery: Callable[[Path], Path], access: Callable[[Path], Path]) -> Callable[[World], None]:
    """The demo's logs replaced by what `delivery` and `access` write into the user's folder."""
    def arrange(world: World) -> None:
        logs = {"delivery": [str(delivery(world.root))], "access": [str(access(world.root))]}
        world.params = world.make_params(database={"sqlite": str(world.demo.database)}, logs=logs)
        world.only = "list_hygiene,open_inflation"
    return arrange


def empty_file(name: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        (root / name).write_bytes(b"")
        return root / name
    return write


def binary_file(name: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        (root / name).write_bytes(bytes(random.Random(name).getrandbits(8) for _ in range(30_000)))
        return root / name
    return write


def cut_gzip(source_key: str, name: str):
    def write(root: Path) -> Path:
        data = gzip.compress(Path(DEMO_LOGS[source_key]).read_bytes())
        (root / name).write_bytes(data[: len(data) // 2])
        return root / name
    return write


DEMO_LOGS: dict[str, str] = {}   # filled by the world fixture: the shared demo's postfix and access logs


def unusable_logs(delivery: str, access: str) -> Callable[[World, dict, dict], None]:
    def check(world: World, before: dict, after: dict) -> None:
        noted("list_hygiene", rf"Delivery log {re.escape(delivery)} (is empty|has no usable line)",
              ("hygiene.soft_bounce_streak", "hygiene.sender_block_events"), ran=("open_inflation",))(
            world, before, after)
        summary = world.summary()
        assert summary["opens"]["evidence"] == "database"
        assert summary["opens"]["access_log"]["opened_rows_in_log_share"] is None
        assert any(note.startswith(f"Access log {access} ") for note in summary["reports"]["open_inflation"]["notes"])
        assert delivery in (world.out / "tables" / "hygiene_log_files.csv").read_text(encoding="utf-8-sig")
        assert access in (world.out / "tables" / "opens_log_files.csv").read_text(encoding="utf-8-sig")
    return check


def truncated_logs_named(world: World, before: dict, after: dict) -> None:
    noted("list_hygiene", r"Delivery log maillog-cut\.gz: damaged or truncated gzip", ran=("open_inflation",))(
        world, before, after)
    summary = world.summary()
    assert summary["hygiene"]["soft_bounce_streak"] is not None and summary["opens"]["evidence"] == "access_log"
    assert any(note.startswith("Access log access-cut.gz: ") for note in summary["reports"]["open_inflation"]["notes"])
    for table, name in (("hygiene_log_files", "maillog-cut.gz"), ("opens_log_files", "access-cut.gz")):
        rows = list(csv.DictReader((world.out / "tables" / f"{table}.csv").open(encoding="utf-8-sig", newline="")))
        assert [r["file"] for r in rows] == [name] and name in rows[0]["read_error"] and int(rows[0]["lines"]) > 1000


def arrange_dropped_connection(world: World) -> None:
    """A MariaDB copy of the demo (500 contacts); the snapshot reads it in small ranges."""
    from mailaudit.demo import build_demo

    url = world.request.getfixturevalue("mariadb_url")
    build_demo(url=url.render_as_string(hide_password=False), contacts=500, seed=1,
               truth_path=world.control / "mariadb.truth.json")
    world.request.getfixturevalue("monkeypatch").setenv("MAILAUDIT_TEST_SERVER_URL",
                                                        url.render_as_string(hide_password=False))
    world.expected = {"url": url}
    world.params = world.make_params(database={"url_env": "MAILAUDIT_TEST_SERVER_URL"}, with_logs=False,
                                     snapshot={"path": str(world.control / "snapshot.duckdb"), "chunk_rows": 100})


def connection_killed_mid_snapshot(world: World, capfd) -> Outcome:
    """Another session locks the recipient table, so the snapshot's first read of it waits; that read's
    connection is killed (as a DBA's KILL or a dropped link does), then the table is unlocked."""
    from sqlalchemy import create_engine, text

    url = world.expected["url"]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    killed, stop = [], threading.Event()
    waiting = text("SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE DB = :db AND ID <> CONNECTION_ID() "
                   "AND INFO LIKE '%%FROM%%b_sender_posting_recipient%%'")

    def killer(conn):
        try:
            while not stop.is_set() and not killed:
                for pid, info in conn.execute(waiting, {"db": url.database}).fetchall():
                    conn.execute(text(f"KILL CONNECTION {int(pid)}"))
                    killed.append(info)
                time.sleep(0.01)
        finally:
            conn.execute(text("UNLOCK TABLES"))

    with admin.connect() as conn:
        conn.execute(text("LOCK TABLES b_sender_posting_recipient WRITE"))
        thread = threading.Thread(target=killer, args=(conn,))
        thread.start()
        try:
            outcome = run_in_process(world, capfd)
        finally:
            stop.set()
            thread.join()
    admin.dispose()
    world.expected["killed"] = killed
    return outcome


def snapshot_completed_after_retry(world: World, before: dict, after: dict) -> None:
    from sqlalchemy import create_engine, text

    from mailaudit.snapshot.store import open_snapshot

    published("data_and_tracking")(world, before, after)
    assert len(world.expected["killed"]) == 1 and "b_sender_posting_recipient" in world.expected["killed"][0]
    model = open_snapshot(world.control / "snapshot.duckdb")
    try:
        table = model.manifest["tables"]["b_sender_posting_recipient"]
        got = model.row("SELECT count(*), count(DISTINCT ID) FROM raw.b_sender_posting_recipient")
    finally:
        model.close()
    engine = create_engine(world.expected["url"])
    with engine.connect() as conn:
        source = conn.execute(text("SELECT count(*) FROM b_sender_posting_recipient")).scalar()
    engine.dispose()
    assert table["reader"] == "connectorx" and table["retries"] >= 1   # the chunk read again, not a fallback
    assert got == (source, source) == (table["rows"], table["rows"])


NO_SENDS = "mailaudit: no e-mail sends between {start} and {end}: every report says so and leaves the figures of the period null"
FAULTS += [
    *[missing_core_table(table) for table in CORE_TABLES],
    missing_optional_table("b_sender_posting_read", "list_hygiene", r"IS_READ",
                           skipped=("open_inflation", "segments", "conversion")),
    missing_optional_table("b_sender_posting_click", "list_hygiene", r"IS_CLICK", skipped=("segments", "conversion")),
    missing_optional_table("b_sender_posting_unsub", "list_hygiene", None),
    missing_optional_table("b_sender_abuse", "list_hygiene", r"b_sender_abuse is missing", ("hygiene.complaints",)),
    missing_optional_table("b_main_mail_blacklist", "list_hygiene", r"b_main_mail_blacklist is missing"),
    missing_optional_table("b_crm_exclusion", "list_hygiene", r"b_crm_exclusion is missing"),
    missing_optional_table("b_crm_field_multi", "list_hygiene", r"b_crm_field_multi",
                           ("hygiene.unsubscribed_not_excluded_in_crm",)),
    missing_optional_table("b_sale_order", "conversion", None),
    Fault("NULL-heavy columns (--nulls), sent rows without DATE_SENT, blank addresses", arrange_null_heavy, 0, None,
          null_heavy_counted, notebooks="kit"),
    Fault("a future period (no sends)", period(FUTURE, ",".join(REPORTS)), 0, NO_SENDS.format(**FUTURE),
          empty_period_pages(FUTURE, REPORTS), notebooks="kit"),
    Fault("a past period, before any data", period(PAST, "data_and_tracking,list_hygiene,segments"), 0,
          NO_SENDS.format(**PAST), empty_period_pages(PAST, ("data_and_tracking", "list_hygiene", "segments")),
          notebooks="kit"),
    Fault("check on a period without sends", period(FUTURE, ""), 2,
          r"mailaudit: no e-mail sends between 2040-01-01 and 2040-03-31: every report would say so and leave the "
          r"figures of the period null; check period\.start and period\.end", nothing_published,
          act=check_command, notebooks_start=False),
    Fault("empty delivery and access logs", with_logs(empty_file("maillog"), empty_file("access.log")), 0, None,
          unusable_logs("maillog", "access.log"), notebooks="kit"),
    Fault("binary junk as delivery and access logs", with_logs(binary_file("maillog.bin"), binary_file("access.bin")),
          0, None, unusable_logs("maillog.bin", "access.bin"), notebooks="kit"),
    Fault("truncated .gz delivery and access logs",
          with_logs(cut_gzip("postfix", "maillog-cut.gz"), cut_gzip("access", "access-cut.gz")), 0, None,
          truncated_logs_named, notebooks="kit"),
    Fault("database connection killed during the snapshot (MariaDB)", arrange_dropped_connection, 0, None,
          snapshot_completed_after_retry, act=connection_killed_mid_snapshot, mariadb=True),
]


@pytest.fixture(scope="session")
def demo_snapshot(demo, tmp_path_factory) -> Path:
    """The shared demo's snapshot (database and both logs), made once: runner faults run from it."""
    from conftest import _write_demo_params
    from mailaudit.report.params import load_params
    from mailaudit.snapshot.extract import extract_snapshot

    folder = tmp_path_factory.mktemp("matrix-snapshot")
    path = folder / "demo.duckdb"
    extract_snapshot(load_params(_write_demo_params(demo, folder)), path, progress=False)
    return path


@pytest.fixture(scope="session")
def nulls_demo(tmp_path_factory):
    """The shared demo's portal written with `--nulls` (NULL, empty and whitespace values), no logs."""
    from mailaudit.demo import build_demo

    root = tmp_path_factory.mktemp("nulls-demo")
    return build_demo(sqlite_path=root / "nulls.sqlite", contacts=3000, seed=1, realistic_nulls=True).database


@pytest.fixture
def world(demo, demo_params, demo_snapshot, tmp_path, tmp_path_factory, monkeypatch, request):
    control = tmp_path_factory.mktemp("control")
    notebooks = control / "notebooks"
    for report in REPORTS:
        write_report_notebook(notebooks, report, SMALL_NOTEBOOK)
    monkeypatch.setenv(CONTROL_ENV, str(control))
    monkeypatch.setenv("MAILAUDIT_NOTEBOOKS", str(notebooks))
    monkeypatch.chdir(tmp_path)
    DEMO_LOGS.update(demo.logs)

    def make_params(**sections):
        """Parameters of the demo, read from the shared snapshot unless a section names a database."""
        sections.setdefault("database", {"snapshot": str(demo_snapshot)})
        sections.setdefault("snapshot", {"path": str(control / "snapshot.duckdb")})
        return demo_params(**sections)

    with contextlib.ExitStack() as stack:
        yield World(root=tmp_path, out=tmp_path / "out", control=control, demo=demo,
                    make_params=make_params, stack=stack, request=request, params=make_params())


@pytest.fixture
def started_notebooks(monkeypatch):
    started = []
    real = papermill.execute_notebook

    def recording(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", recording)
    return started


@pytest.mark.parametrize("fault", [pytest.param(f, id=str(f), marks=[pytest.mark.mariadb] if f.mariadb else [])
                                   for f in FAULTS])
def test_fault(fault: Fault, world: World, capfd, monkeypatch, started_notebooks):
    if fault.notebooks == "kit":
        monkeypatch.delenv("MAILAUDIT_NOTEBOOKS")
    fault.arrange(world)
    folders = (world.root, Path(world.demo.database).parent)
    before_out, before_outside = split(tree(*folders), world.out)
    started_notebooks.clear()

    outcome = (fault.act or run_in_process)(world, capfd)

    after_out, after_outside = split(tree(*folders), world.out)
    assert outcome.code == fault.exit_code, (outcome.stdout, outcome.stderr)
    errors = outcome.stderr.splitlines()
    if fault.stderr is None:
        assert errors == []
    else:
        assert len(errors) == 1 and re.fullmatch(fault.stderr, errors[0]), errors
    if fault.stdout is not None:
        assert any(re.fullmatch(fault.stdout, line) for line in outcome.stdout.splitlines()), outcome.stdout
    if not fault.notebooks_start:
        assert started_notebooks == []
    fault.bundle(world, before_out, after_out)
    assert after_outside == before_outside, "a file outside the bundle changed"
