"""Every CSV file the kit writes goes through `write_csv`.

Two things a consultant's spreadsheet needs that `DataFrame.to_csv` does not do:
- a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return runs as a formula
  when the file is opened in Excel or LibreOffice (an address such as ``=hyperlink(…)@mail.ru`` is
  valid enough to sit in a contact list). Such text cells are prefixed with a single quote, the
  OWASP guard against CSV injection; numbers are left alone;
- a carriage return inside a cell must be quoted, or the row splits in two;
- Excel opens a UTF-8 file without a byte-order mark as the local code page, so Cyrillic turns into
  garbage: the file starts with one unless ``bom=False``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """`value` made safe for a spreadsheet cell: text that would start a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells, index labels and column names are neutralised."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            out[column] = values.map(neutralise).astype(object)
    if out.index.dtype == object or pd.api.types.is_string_dtype(out.index):
        out.index = out.index.map(neutralise)
    out.columns = [neutralise(c) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | os.PathLike, *, index: bool = False, bom: bool = True,
              header: bool = True) -> Path:
    """Write `frame` to `path` as a spreadsheet-safe UTF-8 CSV (see the module docstring); `header=False`
    leaves out the line of column names (an import that reads every line as data)."""
    path = Path(path)
    # CRLF line ends (RFC 4180): the csv writer then quotes any cell holding a CR or LF
    neutralise_frame(frame).to_csv(path, index=index, header=header, encoding="utf-8-sig" if bom else "utf-8",
                                   lineterminator="\r\n")
    return path
