"""The ``--out`` folder: the kit deletes only files it wrote, and one run writes it at a time.

- A published bundle carries ``.mailaudit-bundle.json`` (MARKER): the kit version and the list of
  files it wrote. A non-empty folder without a valid marker is refused; replacing a bundle
  removes only the files its marker lists, and anything else in the folder stays.
- A run holds an exclusive lock on ``.<name>.lock`` beside the folder from the first check to the
  publish; a second run into the same folder is refused (the OS releases the lock of a killed run).
- The bundle is built in a hidden sibling ``.<name>.partial-<pid>-<random>``; `publish` renames it
  into place. Folders of this kind left by a killed run are removed by the next run.
"""
from __future__ import annotations

import fnmatch
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mailaudit.report.params import REPORT_NAMES

MARKER = ".mailaudit-bundle.json"
GENERATOR = "mailaudit"
KIT_SUBFOLDERS = ("tables", "logs")
KIT_NAME_PATTERNS = ("index.html", "summary.json", "suppress_*.csv", *KIT_SUBFOLDERS,
                     *(f"{name}.{ext}" for name in REPORT_NAMES for ext in ("html", "ipynb")))
"""Names a bundle may write: a user's file by such a name would be overwritten, so it is refused."""


class OutputFolderError(Exception):
    """The output folder cannot be used; one line naming the folder and what to do."""


@dataclass
class Previous:
    """What the output folder holds before the run: the older bundle's files and everything else."""
    bundle_files: set[str] = field(default_factory=set)   # relative posix paths listed by its marker
    foreign: list[str] = field(default_factory=list)      # the user's entries (top-level names, "dir/")


# --- the lock ---------------------------------------------------------------------------------

def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class OutputLock:
    """An exclusive lock on ``.<name>.lock`` beside `out`; refuses when another run holds it.

    The file is removed on release. A run that opened it just before that removal would lock a
    file no longer on disk, so after locking the path is checked to still be the same file.
    """

    def __init__(self, out: Path):
        self.out = out
        self.path = out.parent / f".{out.name}.lock"
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise OutputFolderError(_not_writable(self.out.parent, exc, "the folder that holds --out")) from None
            if not _try_lock(fd):
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                raise OutputFolderError(
                    f"another mailaudit run{f' (pid {holder})' if holder.isdigit() else ''} is writing "
                    f"{self.out}; wait for it to finish or choose another --out")
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.path.unlink()
        except OSError:   # Windows cannot remove an open file: it stays, unlocked
            pass
        os.close(self.fd)
        self.fd = None


# --- what the folder holds --------------------------------------------------------------------

def read_marker(folder: Path) -> set[str] | None:
    """The files a bundle's marker lists, or None when the marker is absent or not the kit's."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) and data.get("generator") == GENERATOR else None
    if not isinstance(files, list) or not all(isinstance(f, str) and _inside(f) for f in files):
        return None
    return set(files)


def _inside(relative: str) -> bool:
    """A marker entry that names a file inside the folder (no absolute path, no `..`)."""
    path = PurePosixPath(relative)
    return bool(relative) and "\\" not in relative and not path.is_absolute() and ".." not in path.parts


def inspect_output(out: Path) -> Previous:
    """Check that `out` may receive a bundle, or raise OutputFolderError.

    Accepted: a missing or empty folder, or one with a valid marker whose other entries (the
    user's) do not carry a name the bundle may write.
    """
    if not out.exists():
        return Previous()
    if not out.is_dir():
        raise OutputFolderError(f"--out {out} is a file, not a folder; choose a folder")
    listed = read_marker(out)
    if listed is None:
        if any(out.iterdir()):
            legacy = (out / "summary.json").is_file() and (out / "index.html").is_file()
            raise OutputFolderError(
                f"--out {out} is not empty and is not a mailaudit bundle (no valid {MARKER}); "
                "choose a new or empty folder" + (" (a bundle of mailaudit 0.2.0 or earlier has no marker: "
                                                  "delete it yourself once)" if legacy else ""))
        return Previous()
    previous = Previous(bundle_files={f for f in listed if (out / f).is_file()})
    known = previous.bundle_files | {MARKER}
    for path in out.rglob("*"):
        relative = path.relative_to(out).as_posix()
        if relative in known or (path.is_dir() and _kit_folder(path, out, previous)):
            continue
        top = relative.split("/", 1)[0]
        if any(fnmatch.fnmatch(top, pattern) for pattern in KIT_NAME_PATTERNS):
            raise OutputFolderError(
                f"--out {out} holds {relative}, which the bundle would overwrite but mailaudit did not "
                "write; move it or choose another folder")
        entry = top + "/" if (out / top).is_dir() else top
        if entry not in previous.foreign:
            previous.foreign.append(entry)
    previous.foreign.sort()
    return previous


def _kit_folder(folder: Path, out: Path, previous: Previous) -> bool:
    """A sub-folder holding only the older bundle's files (or an empty tables/ or logs/)."""
    inner = list(folder.rglob("*"))
    if not inner:
        return folder.relative_to(out).as_posix() in KIT_SUBFOLDERS
    return all(p.is_dir() or p.relative_to(out).as_posix() in previous.bundle_files for p in inner)


def check_writable(out: Path) -> None:
    """Refuse (before any work) an output folder the kit could not write or clean up."""
    if out.exists():
        try:
            fd, probe = tempfile.mkstemp(dir=out, prefix=".mailaudit-probe-")
        except OSError as exc:
            raise OutputFolderError(_not_writable(out, exc, "--out")) from None
        os.close(fd)
        os.unlink(probe)


def _not_writable(folder: Path, exc: OSError, what: str) -> str:
    return (f"cannot write in {folder} ({what}): {exc.strerror or type(exc).__name__}; "
            "fix its permissions or choose another --out")


# --- temporary folders ------------------------------------------------------------------------

def new_partial(out: Path) -> Path:
    """Create the hidden sibling the bundle is built in."""
    partial = out.parent / f".{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        partial.mkdir()
    except OSError as exc:
        raise OutputFolderError(_not_writable(out.parent, exc, "the folder that holds --out")) from None
    return partial


def remove_abandoned_folders(out: Path) -> None:
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


# --- marker and publish -----------------------------------------------------------------------

def bundle_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MARKER}


def write_marker(folder: Path, version: str, generated_at: str) -> None:
    """List every file of the bundle being built in `folder` (call it when the bundle is complete)."""
    _write_marker_file(folder / MARKER, version, generated_at, bundle_files(folder))


def _write_marker_file(path: Path, version: str, generated_at: str, files: set[str], complete: bool = True) -> None:
    data = {"generator": GENERATOR, "version": version, "generated_at": generated_at,
            "complete": complete, "files": sorted(files)}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def publish(partial: Path, out: Path) -> list[str]:
    """Move the finished bundle in `partial` to `out`, removing only the older bundle's files;
    returns the user's entries left in `out`.

    `out` is inspected again (the user may have added files while the reports ran). Without
    files of the user's the whole folder is swapped by two renames. Otherwise the files move one
    by one: the marker first lists the files of both bundles (so a run killed half-way leaves
    every kit file known to the next run), index.html goes last, then the new bundle's marker.
    """
    if not out.exists():
        os.replace(partial, out)
        return []
    previous = inspect_output(out)
    new = bundle_files(partial)
    clashes = sorted(f for f in new if (out / f).exists() and f not in previous.bundle_files)
    if clashes:
        raise OutputFolderError(f"--out {out} now holds {clashes[0]}, which mailaudit did not write; "
                                "move it or choose another folder")
    if not previous.foreign:
        old = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old, ignore_errors=True)
        return []
    marker = json.loads((partial / MARKER).read_text(encoding="utf-8"))
    journal = partial / (MARKER + ".journal")
    _write_marker_file(journal, marker["version"], marker["generated_at"], previous.bundle_files | new,
                       complete=False)
    os.replace(journal, out / MARKER)
    (out / "index.html").unlink(missing_ok=True)
    for relative in sorted(previous.bundle_files - new):
        (out / relative).unlink(missing_ok=True)
    for relative in sorted(new - {"index.html"}) + ["index.html", MARKER]:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial / relative, out / relative)
    for relative in previous.bundle_files - new:
        _remove_empty_parents(out / relative, out)
    shutil.rmtree(partial, ignore_errors=True)   # only the emptied sub-folders are left
    return previous.foreign


def _remove_empty_parents(path: Path, top: Path) -> None:
    for folder in path.parents:
        if folder == top:
            return
        try:
            folder.rmdir()
        except OSError:   # not empty (or gone): keep it
            return
