"""Open a snapshot, check that it fits the parameters, and find or make the one a run needs.

A snapshot is reusable: `run` with ``database.snapshot: PATH`` re-runs every report from it with other
parameters, as long as the period and its look-backs lie inside the window it was extracted for.
A snapshot whose model was built by an older kit has its model rebuilt from its raw tables on open.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb

from mailaudit.model import Model
from mailaudit.model.build import MODEL_VERSION, build_model
from mailaudit.snapshot.extract import SNAPSHOT_FORMAT, SnapshotError, SnapshotSettings, extract_snapshot
from mailaudit.snapshot.plan import snapshot_window

DEFAULT_FOLDER = Path("snapshots")


def read_manifest(con) -> dict:
    try:
        return json.loads(con.execute("SELECT manifest FROM _manifest").fetchall()[0][0])
    except (duckdb.Error, TypeError, ValueError):
        raise SnapshotError("not a mailaudit snapshot (no manifest): make one with `mailaudit snapshot`") from None


def _connect(path: Path, read_only: bool):
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise SnapshotError(f"cannot open snapshot {path}: {' '.join(str(exc).split())[:200]}") from None


def open_snapshot(path: Path, memory_mb: int = SnapshotSettings.memory_mb) -> Model:
    """The model of the snapshot at `path`, read-only; rebuilds a stale model first."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SnapshotError(f"snapshot {path} not found: make it with `mailaudit snapshot --params FILE --out {path}`")
    con = _connect(path, read_only=True)
    manifest = read_manifest(con)
    if manifest.get("format") != SNAPSHOT_FORMAT:
        con.close()
        raise SnapshotError(f"snapshot {path} has format {manifest.get('format')}, this kit reads format "
                            f"{SNAPSHOT_FORMAT}: make a new one with `mailaudit snapshot`")
    if _model_version(con) != MODEL_VERSION:
        con.close()
        writable = _connect(path, read_only=False)
        try:
            build_model(writable, manifest)
            writable.execute("CHECKPOINT")
        finally:
            writable.close()
        con = _connect(path, read_only=True)
    con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
    quiet(con)
    return Model(con, manifest, path)


def quiet(con) -> None:
    """No DuckDB progress bar on stdout (a long query in a terminal would draw one into a report's output).
    In a Jupyter kernel it is off already, and DuckDB refuses the setting there without ipywidgets."""
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.InvalidInputException:
        pass


def _model_version(con) -> int | None:
    try:
        return con.execute("SELECT version FROM _model").fetchall()[0][0]
    except duckdb.Error:
        return None


def unfit_reason(manifest: dict, params) -> str | None:
    """Why the snapshot cannot serve `params` (None when it can): the period and its look-backs must lie
    inside its window, and the custom segment columns must have been read."""
    needed = snapshot_window(params.period, params.hygiene, params.conversion)
    start, end = manifest["window"]["start"], manifest["window"]["end"]
    if needed.start.isoformat() < start or needed.end.isoformat() > end:
        return (f"the snapshot covers {start} to {end}; period {params.period.label} with its look-backs needs "
                f"{needed.start} to {needed.end}")
    have = {(c["table"], c["column"].upper()) for c in manifest.get("custom_columns", [])}
    wanted = {(c["table"], c["column"].upper()) for c in params.segments.get("custom") or []}
    if wanted - have:
        table, column = sorted(wanted - have)[0]
        return f"the snapshot has no {table}.{column} (segments.custom)"
    return None


def slug(text: str) -> str:
    value = re.sub(r"[^\w]+", "-", text.strip().lower(), flags=re.UNICODE).strip("-_")
    return value or "report"


def default_snapshot_path(params, workdir: Path) -> Path:
    """Where `run` writes the snapshot it makes: the `snapshot.path` parameter, else snapshots/<client>.duckdb."""
    configured = (getattr(params, "snapshot", None) or {}).get("path")
    if configured:
        return Path(configured)
    return (workdir / DEFAULT_FOLDER / f"{slug(params.client)}.duckdb").resolve()


def snapshot_for(params, workdir: Path, *, progress: bool = True, reuse: bool = False) -> tuple[Path, dict]:
    """The snapshot the reports of `params` read: the one ``database.snapshot`` names (checked to fit),
    else a fresh extraction to `default_snapshot_path` (with `reuse`, an existing one that fits and
    comes from the same source is kept: interactive notebooks re-use it across cells and reports)."""
    named = (params.database or {}).get("snapshot")
    if named:
        model = open_snapshot(Path(named))
        try:
            reason = unfit_reason(model.manifest, params)
        finally:
            model.close()
        if reason:
            raise SnapshotError(f"snapshot {named}: {reason}; make a new one with `mailaudit snapshot`")
        return Path(named), model.manifest
    path = default_snapshot_path(params, workdir)
    if reuse and path.is_file():
        try:
            model = open_snapshot(path)
        except SnapshotError:
            model = None
        if model is not None:
            manifest = model.manifest
            model.close()
            same_logs = {k: manifest["logs"][k]["files"] for k in ("delivery", "access")} == {
                k: [str(p) for p in params.logs.get(k) or []] for k in ("delivery", "access")}
            if unfit_reason(manifest, params) is None and same_logs:
                return path, manifest
    return path, extract_snapshot(params, path, progress=progress, workdir=workdir)
