"""The ``mailaudit demo-db`` command: arguments and the call into ``build_demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time

from sqlalchemy.engine import make_url

from mailaudit.demo.build import build_demo
from mailaudit.demo.logs import ACCESS_FORMATS, DELIVERY_FORMATS
from mailaudit.demo.worlds import WORLDS
from mailaudit.demo.writer import CHARSETS


def add_demo_db_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", metavar="PATH", help="write an SQLite file (replaced if it exists)")
    target.add_argument("--url-env", metavar="VAR",
                        help="name of the environment variable holding the SQLAlchemy URL of the target database "
                             "(created if missing; its Bitrix tables are replaced)")
    parser.add_argument("--contacts", type=int, default=20_000, help="e-mail contacts (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1): same seed, same data")
    parser.add_argument("--logs", metavar="DIR", help="also write delivery and access logs into DIR")
    parser.add_argument("--truth", metavar="PATH",
                        help="truth file (default: <sqlite stem>.truth.json, or DIR/demo.truth.json with --logs)")
    parser.add_argument("--layout", choices=("current", "legacy"), default="current",
                        help="sender module layout: current (20.x+) or legacy (15/16.x)")
    parser.add_argument("--charset", choices=CHARSETS, default="utf8mb4",
                        help="MariaDB/MySQL database character set (cp1251 as old Russian sites)")
    parser.add_argument("--delivery-format", action="append", choices=DELIVERY_FORMATS, dest="delivery_formats",
                        help="delivery log format, repeatable (default postfix)")
    parser.add_argument("--access-format", choices=ACCESS_FORMATS, default="bitrixvm",
                        help="access log format: BitrixVM nginx 'main' (default) or nginx/Apache combined")
    parser.add_argument("--world", choices=tuple(WORLDS), default="baseline",
                        help="behaviour profile (default baseline, the original demo): " + ", ".join(WORLDS))
    parser.add_argument("--nulls", action="store_true",
                        help="write NULL, empty and whitespace values where real portals have them")


def run_demo_db(args: argparse.Namespace) -> int:
    url = None
    if args.url_env:
        url = os.environ.get(args.url_env)
        if not url:
            print(f"error: environment variable {args.url_env} is not set", file=sys.stderr)
            return 2
        try:
            url = make_url(url)
        except Exception:  # never echo the value: it may hold a password
            print(f"error: {args.url_env} does not hold a valid SQLAlchemy URL", file=sys.stderr)
            return 2
        if not args.logs and not args.truth:
            print("error: with --url-env give --logs DIR or --truth PATH for the truth file", file=sys.stderr)
            return 2
    if args.contacts < 500:
        print("error: --contacts must be at least 500", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        result = build_demo(
            sqlite_path=args.sqlite, url=url, contacts=args.contacts, seed=args.seed, logs_dir=args.logs,
            layout=args.layout, charset=args.charset, delivery_formats=tuple(args.delivery_formats or ("postfix",)),
            access_format=args.access_format, truth_path=args.truth, world=args.world, realistic_nulls=args.nulls,
        )
    except Exception as exc:
        target = url.render_as_string(hide_password=True) if url is not None else args.sqlite
        detail = f": {exc}" if isinstance(exc, ValueError) else ""
        print(f"error: could not build the demo database at {target}: {type(exc).__name__}{detail}", file=sys.stderr)
        return 2
    print(f"demo database: {result.database} ({args.contacts} contacts, seed {args.seed}, world {args.world}, "
          f"{time.monotonic() - started:.1f} s)")
    for name, path in result.logs.items():
        print(f"  log {name}: {path}")
    print(f"  truth: {result.truth}")
    print(f"  machine opens: {result.machine_opens}")
    return 0
