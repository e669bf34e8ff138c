"""A demo portal read the way the open_inflation report reads it: through its snapshot's model."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import snapshot_model

from mailaudit.demo import build_demo


def write_params(folder: Path, truth: dict, database: dict, access_log=None, name: str = "params.yaml") -> Path:
    """A parameter file for the period of the demo's `truth` and `database` (with the access log when given)."""
    params = {"client": "Demo", "period": truth["parameters"]["period"], "database": database,
              "logs": {"access": [str(access_log)] if access_log else []}}
    path = folder / name
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def built_model(folder: Path, with_access_log: bool = True, **demo_options):
    """Build a demo into `folder` (SQLite, with its logs) and open the model of its snapshot:
    (model, truth, the demo build)."""
    built = build_demo(sqlite_path=folder / "demo.sqlite", logs_dir=folder / "logs",
                       truth_path=folder / "demo.truth.json", **demo_options)
    truth = json.loads(built.truth.read_text(encoding="utf-8"))
    params = write_params(folder, truth, {"sqlite": str(folder / "demo.sqlite")},
                          built.logs["access"] if with_access_log else None)
    return snapshot_model(params, folder / "demo.duckdb"), truth, built
