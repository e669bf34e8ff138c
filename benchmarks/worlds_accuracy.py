"""Accuracy of every open_inflation estimator on every demo world, with the access log and from the database alone.

For each world (`mailaudit demo-db --world`) and seed, a demo portal is built (SQLite, access log),
snapshotted, and analysed twice (access-log route, database-only route). Each estimator's human open
rate is compared with the truth file's ``opens.human_open_rate``: the error in points, and whether its
95% interval covers the truth. Prints one JSON line per run, then a Markdown table per world × route ×
estimator (mean error, mean absolute error, largest absolute error, interval coverage, how often the
headline used it) and the headline's own error.

    .venv/bin/python benchmarks/worlds_accuracy.py --seeds 3 --contacts 20000 --work /tmp/worlds

Builds are cached in --work (one folder per world and seed), so a second run only re-analyses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

ROUTES = ("access_log", "database")


def build(folder: Path, world: str, seed: int, contacts: int) -> dict:
    """Build (once) the world's demo, its access log and snapshot in `folder`; return its truth."""
    import yaml

    from mailaudit.demo import build_demo
    from mailaudit.report.params import load_params
    from mailaudit.snapshot.extract import extract_snapshot

    truth_path, snapshot = folder / "demo.truth.json", folder / "demo.duckdb"
    if not snapshot.exists():
        folder.mkdir(parents=True, exist_ok=True)
        built = build_demo(sqlite_path=folder / "demo.sqlite", logs_dir=folder / "logs", truth_path=truth_path,
                           contacts=contacts, seed=seed, world=world)
        truth = json.loads(built.truth.read_text(encoding="utf-8"))
        params = folder / "params.yaml"
        params.write_text(yaml.safe_dump({"client": "worlds", "period": truth["parameters"]["period"],
                                          "database": {"sqlite": str(folder / "demo.sqlite")},
                                          "logs": {"access": [str(built.logs["access"])]}}), encoding="utf-8")
        extract_snapshot(load_params(params), snapshot, progress=False)
    return json.loads(truth_path.read_text(encoding="utf-8"))


def measure(folder: Path, truth: dict, world: str, seed: int) -> list[dict]:
    """One row per route: the headline and every estimator with its error (points) and coverage."""
    from mailaudit.analyses.opens import analyse_opens
    from mailaudit.period import Period
    from mailaudit.snapshot.store import open_snapshot

    period = Period(*(date.fromisoformat(truth["parameters"]["period"][k]) for k in ("start", "end")))
    planted = truth["opens"]["human_open_rate"]
    model = open_snapshot(folder / "demo.duckdb")
    rows = []
    try:
        for route in ROUTES:
            f = analyse_opens(model, period, {"scanner_seconds": 10}, use_access_log=route == "access_log").figures
            estimators = {}
            for name, e in f["estimators"].items():
                key = "classified" if name in ROUTES else name
                value, ci = e["human_open_rate"], e["ci"]
                estimators[key] = {"error_pp": None if value is None else (value - planted) * 100,
                                   "covers": None if not ci else ci[0] <= planted <= ci[1],
                                   "passes": e.get("passes"), "headline": name == f["headline_estimator"]}
            rows.append({"world": world, "seed": seed, "route": route, "truth": planted,
                         "raw_open_rate": f["raw_open_rate"], "headline": f["human_open_rate"],
                         "headline_estimator": f["headline_estimator"],
                         "headline_error_pp": (f["human_open_rate"] - planted) * 100,
                         "headline_covers": f["human_open_rate_ci"][0] <= planted <= f["human_open_rate_ci"][1],
                         "estimators": estimators})
    finally:
        model.close()
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: per world × route, the headline and each estimator's errors and coverage."""
    cells = defaultdict(list)
    for r in rows:
        cells[(r["world"], r["route"], "headline")].append((r["headline_error_pp"], r["headline_covers"], None))
        for name, e in r["estimators"].items():
            if e["error_pp"] is not None:
                cells[(r["world"], r["route"], name)].append((e["error_pp"], e["covers"], e["headline"]))
    out = ["| world | route | estimator | runs | mean error (pp) | mean abs. error (pp) | max abs. error (pp) "
           "| 95% interval coverage | used by the headline |",
           "|---|---|---|---|---|---|---|---|---|"]
    for (world, route, name), values in cells.items():
        errors = [v[0] for v in values]
        covered = sum(bool(v[1]) for v in values)
        used = "—" if name == "headline" else f"{sum(bool(v[2]) for v in values)}/{len(values)}"
        out.append(f"| {world} | {route} | {name} | {len(values)} | {sum(errors) / len(errors):+.1f} | "
                   f"{sum(abs(e) for e in errors) / len(errors):.1f} | {max(abs(e) for e in errors):.1f} | "
                   f"{covered}/{len(values)} | {used} |")
    return "\n".join(out)


def main() -> None:
    from mailaudit.demo.worlds import WORLDS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", default=",".join(WORLDS), help="comma-separated world names (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per world (101, 102, …)")
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=Path("worlds_accuracy"), help="folder for the builds (cached)")
    args = parser.parse_args()
    rows = []
    for world in args.worlds.split(","):
        for seed in range(101, 101 + args.seeds):
            folder = args.work / f"{world}-{seed}-{args.contacts}"
            truth = build(folder, world, seed, args.contacts)
            for row in measure(folder, truth, world, seed):
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(table(rows))


if __name__ == "__main__":
    sys.exit(main())
