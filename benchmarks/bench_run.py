"""Wall time and peak memory of `mailaudit run` (every report) on a demo database.

    python benchmarks/bench_run.py [--contacts 20000] [--seed 1] [--workdir benchmarks/out/run]

Builds the demo (database + Postfix and access logs) if missing, then runs all reports in a
subprocess. Peak memory is the largest resident set of the runner or any notebook kernel
(getrusage of waited-for children).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mailaudit.demo import build_demo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/out/run"))
    args = parser.parse_args()

    root = args.workdir / f"demo-{args.contacts}-{args.seed}"
    database = root / "demo.sqlite"
    if not database.exists():
        started = time.perf_counter()
        build_demo(sqlite_path=database, contacts=args.contacts, seed=args.seed, logs_dir=root / "logs")
        print(f"demo built in {time.perf_counter() - started:.1f} s")
    truth = json.loads(database.with_suffix(".truth.json").read_text())
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({
        "client": "Benchmark",
        "period": truth["parameters"]["period"],
        "database": {"sqlite": str(database.resolve())},
        "logs": {"delivery": [str((root / "logs" / "maillog").resolve())],
                 "access": [str((root / "logs" / "access.log").resolve())]},
    }))
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "mailaudit.cli", "run", "--params", str(params),
                                "--out", str(root / "reports")], check=False)
    wall = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    recipients = truth["data_quality"]["email_recipient_rows"]
    print(f"mailaudit run: exit {completed.returncode}, {wall:.1f} s wall, peak RSS {peak_mib:.0f} MiB "
          f"({args.contacts:,} contacts, {recipients:,} recipient rows)")
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
