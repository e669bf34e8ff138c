"""``logs/<report>.log`` in the bundle: what a report's page leaves out, scrubbed like every output.

A page says in one line why its report failed; the log keeps the full traceback, what the
cells wrote to stderr (warnings) and what the kernel process printed. Every text passes through
the run's scrub (database URL and password; addresses with privacy.mask_emails), and the log is
read by the secret scan like any file of the bundle.
"""
from __future__ import annotations

import logging
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import nbformat

LOGS_DIR = "logs"
EXECUTION_LOGGERS = ("papermill", "traitlets", "nbclient", "jupyter_client")
"""Loggers of the notebook machinery (``Timeout waiting for execute reply``, ``Kernel died``…)."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def log_name(report: str) -> str:
    return f"{LOGS_DIR}/{report}.log"


def plain(text: str) -> str:
    """Terminal colour codes removed (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


class _Collect(logging.Handler):
    """Keeps the records of one thread: reports running side by side each collect their own."""

    def __init__(self, lines: list[str]):
        super().__init__(logging.WARNING)
        self.lines = lines
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))


_capturing = threading.Lock()
_captures: list[_Collect] = []
_saved_propagate: dict[str, bool] = {}


@contextmanager
def captured_execution_logs() -> Iterator[list[str]]:
    """Collect what the notebook machinery logs (for the report's log) instead of printing it.

    The loggers stop propagating while any capture is active and get their setting back when the
    last one ends, so captures may overlap (one per report thread).
    """
    lines: list[str] = []
    handler = _Collect(lines)
    with _capturing:
        if not _captures:
            for name in EXECUTION_LOGGERS:
                _saved_propagate[name] = logging.getLogger(name).propagate
                logging.getLogger(name).propagate = False
        _captures.append(handler)
        for name in EXECUTION_LOGGERS:
            logging.getLogger(name).addHandler(handler)
    try:
        yield lines
    finally:
        with _capturing:
            for name in EXECUTION_LOGGERS:
                logging.getLogger(name).removeHandler(handler)
            _captures.remove(handler)
            if not _captures:
                for name, propagate in _saved_propagate.items():
                    logging.getLogger(name).propagate = propagate


def _cell_sections(nb: nbformat.NotebookNode | None) -> list[tuple[str, str]]:
    sections = []
    for cell in nb.cells if nb is not None else []:
        number = cell.get("execution_count") or "?"   # as the page's error line and In[n] count
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                sections.append((f"traceback (cell {number})", "\n".join(output.get("traceback", []))
                                 or f"{output.get('ename')}: {output.get('evalue')}"))
            elif output.get("output_type") == "stream" and output.get("name") == "stderr":
                sections.append((f"stderr (cell {number})", output.get("text", "")))
    return sections


def write_report_log(path: Path, *, report: str, status: str, seconds: float, error: str | None,
                     detail: str | None, nb: nbformat.NotebookNode | None, kernel_output: str,
                     scrub: Callable[[str], str]) -> None:
    """Write the log of one report.

    `detail`: the runner's account of the execution (a timeout or a dead kernel, which leave no
    traceback in the notebook; what papermill and nbclient logged). `kernel_output`: what the
    kernel process printed.
    """
    lines = [f"report   {report}", f"status   {status} ({seconds} s)"]
    if error:
        lines.append(f"error    {error}")
    sections = _cell_sections(nb)
    if detail:
        sections.append(("runner", detail))
    if kernel_output.strip():
        sections.append(("kernel process output", kernel_output))
    for title, text in sections:
        lines += ["", f"== {title} ==", plain(text).rstrip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(scrub("\n".join(lines)) + "\n", encoding="utf-8")
