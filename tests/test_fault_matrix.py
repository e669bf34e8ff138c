"""The fault matrix: one row per bad input or fault, each built from the 3000-contact demo.

Every row states what `mailaudit run` must do and is checked the same way:
- the exit code of `mailaudit.cli.main` (or of the command in a subprocess);
- stderr: exactly the one expected line, or nothing (kernel noise included: stderr is captured
  at the file-descriptor level, where a kernel process writes);
- what the bundle (--out) holds afterwards;
- that no file outside the bundle changed: the test's folder and the demo's, paths and hashes,
  before and after (temporary folders and lock files left beside --out show up here). The
  snapshot a run extracts goes to `snapshot.path`, set to a folder of the test's own.

A row adds a fault by giving `arrange` (build the bad input in `World`), the expectations, and
`act` when the command must run in a subprocess (signals, concurrent runs). Runner faults use the
small notebooks below (MAILAUDIT_NOTEBOOKS); data faults run the kit's own notebooks with --only.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
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
HOSTILE_ADDRESSES = ('=hyperlink("x")@mail.ru', "+cmd|' /c calc'!a0@mail.ru", "@sum(1+1)@mail.ru")


@dataclass
class World:
    """The user's folder (`root`: parameter file, --out, their own files) and the test's levers."""
    root: Path
    out: Path
    control: Path            # outside the snapshot: steers the small notebooks
    demo: object
    make_params: Callable[..., str]
    stack: contextlib.ExitStack
    params: str = ""
    only: str = "data_and_tracking"

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
    database = world.root / "shop.sqlite"
    shutil.copy(world.demo.database, database)
    with contextlib.closing(sqlite3.connect(database)) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT ID FROM b_sender_contact WHERE TYPE_ID = 1 ORDER BY ID LIMIT ?", (len(HOSTILE_ADDRESSES),))]
        for contact, address in zip(ids, HOSTILE_ADDRESSES):
            conn.execute("UPDATE b_sender_contact SET CODE = ? WHERE ID = ?", (address, contact))
        conn.commit()
    world.params = world.make_params(database={"sqlite": str(database)}, with_logs=False)
    world.only = "list_hygiene"


def unchanged(world: World, before: dict, after: dict) -> None:
    assert after == before


def nothing_published(world: World, before: dict, after: dict) -> None:
    assert after == {} and not world.out.exists()


def published(*reports: str, kept: tuple[str, ...] = ()) -> Callable[[World, dict, dict], None]:
    """--out holds the bundle of `reports`, its marker listing exactly those files, and `kept`."""
    def check(world: World, before: dict, after: dict) -> None:
        expected = {"index.html", "summary.json", *(f"{r}.{x}" for r in reports for x in ("html", "ipynb")),
                    *(f"logs/{r}.log" for r in reports)}
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


def formulas_neutralised(world: World, before: dict, after: dict) -> None:
    cells = []
    for path in world.out.glob("suppress_*.csv"):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            cells += [cell for row in csv.reader(handle) for cell in row]
    assert cells
    for address in HOSTILE_ADDRESSES:
        assert "'" + address in cells, address
    assert [c for c in cells if c.startswith(FORMULA_PREFIXES)] == []


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


@pytest.fixture
def world(demo, demo_params, tmp_path, tmp_path_factory, monkeypatch):
    control = tmp_path_factory.mktemp("control")
    notebooks = control / "notebooks"
    for report in ("data_and_tracking", "list_hygiene"):
        write_report_notebook(notebooks, report, SMALL_NOTEBOOK)
    monkeypatch.setenv(CONTROL_ENV, str(control))
    monkeypatch.setenv("MAILAUDIT_NOTEBOOKS", str(notebooks))
    monkeypatch.chdir(tmp_path)
    def make_params(**sections):
        return demo_params(snapshot={"path": str(control / "snapshot.duckdb")}, **sections)

    with contextlib.ExitStack() as stack:
        yield World(root=tmp_path, out=tmp_path / "out", control=control, demo=demo,
                    make_params=make_params, stack=stack, params=make_params())


@pytest.fixture
def started_notebooks(monkeypatch):
    started = []
    real = papermill.execute_notebook

    def recording(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", recording)
    return started


@pytest.mark.parametrize("fault", FAULTS, ids=str)
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
