"""Benchmark of the log readers: lines per second of CPU time on one core.

- ``postfix``: :class:`mailaudit.sources.delivery_logs.DeliveryLogReader` over a Postfix log of
  ``--lines`` lines with the line mix of an outgoing relay: per message pickup, cleanup
  (message-id), qmgr (from=), one smtp ``to=`` line per recipient (mostly sent; deferrals,
  bounces and expiries with real provider replies) and qmgr ``removed``, interleaved with smtpd
  connect/disconnect lines and a few lines of other programs.
- ``access``: :func:`mailaudit.sources.access_logs.iter_tracking_hits` over a BitrixVM nginx log
  of ``--lines`` lines: about a third pixel and click hits with real mail-client User-Agents, the
  rest ordinary site traffic.

Each file is written first (not timed), then read once in this process; CPU time is
``time.process_time()``, so other jobs on the machine do not inflate it.

    .venv/bin/python benchmarks/bench_logs.py --lines 2000000 [--work DIR] [--only postfix|access]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from mailaudit.sources.access_logs import ScanStats, iter_tracking_hits
from mailaudit.sources.delivery_logs import DeliveryLogReader

REPLIES = {
    "sent": ("2.0.0", "250 2.0.0 OK  1705212903 a1-20020a05600c000100b0040e3ddb1a3bsi123456wma.12 - gsmtp"),
    "bounced": ("5.1.1", "host gmail-smtp-in.l.google.com[142.250.150.27] said: 550-5.1.1 The email account that you "
                "tried to reach does not exist. Please try double-checking the recipient's email address for typos "
                "or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp (in reply to "
                "RCPT TO command)"),
    "deferred": ("4.4.1", "connect to mx.example.ru[198.51.100.3]:25: Connection timed out"),
}
USER_AGENTS = ("Mozilla/5.0", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
               "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
               "Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)")
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def write_postfix(path: Path, lines: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    when = datetime(2026, 3, 1)
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        n = 0
        while written < lines:
            n += 1
            when += timedelta(seconds=rng.randint(0, 2))
            stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
            qid = f"{n:011X}"
            rcpt = f"user{n % 500_000}@{('gmail.com', 'mail.ru', 'yandex.ru', 'example.org')[n % 4]}"
            outcome = rng.choices(("sent", "bounced", "deferred"), (90, 5, 5))[0]
            dsn, reply = REPLIES[outcome]
            block = [
                f"{stamp} mx1 postfix/smtpd[{n % 9000}]: connect from localhost[127.0.0.1]",
                f"{stamp} mx1 postfix/smtpd[{n % 9000}]: {qid}: client=localhost[127.0.0.1]",
                f"{stamp} mx1 postfix/cleanup[2211]: {qid}: message-id=<bx.{n}@shop.example>",
                f"{stamp} mx1 postfix/qmgr[1186]: {qid}: from=<news@shop.example>, size=18234, nrcpt=1 (queue active)",
                f"{stamp} mx1 postfix/smtpd[{n % 9000}]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
                f"{stamp} mx1 postfix/smtp[3392]: {qid}: to=<{rcpt}>, relay=mx.example[192.0.2.1]:25, delay=1.2, "
                f"delays=0.02/0.01/0.15/1, dsn={dsn}, status={outcome} ({reply})",
            ]
            if outcome != "deferred":
                block.append(f"{stamp} mx1 postfix/qmgr[1186]: {qid}: removed")
            if n % 50 == 0:
                block.append(f"{stamp} mx1 dovecot[1001]: imap-login: Login: user=<someone>, method=PLAIN")
            out.write("\n".join(block) + "\n")
            written += len(block)
    return written


def write_access(path: Path, lines: int, seed: int = 2) -> int:
    rng = random.Random(seed)
    when = datetime(2026, 3, 1)
    with open(path, "w", encoding="utf-8") as out:
        for n in range(lines):
            when += timedelta(seconds=rng.randint(0, 1))
            stamp = f"{when:%d/%b/%Y:%H:%M:%S} +0300"
            if n % 3 == 0:
                tag = quote("sender." + base64.b64encode(json.dumps({"RECIPIENT_ID": n}).encode()).decode(), safe="")
                target, ua = f"/bitrix/tools/track_mail_read.php?tag={tag}", USER_AGENTS[n % len(USER_AGENTS)]
            else:
                target, ua = f"/catalog/item{n % 977}/?page={n % 7}", BROWSER
            out.write(f'198.51.100.{n % 250} - - [{stamp} - 0.012] 200 "GET {target} HTTP/1.1" 43 "-" "{ua}" "-"\n')
    return lines


def measure(name: str, count: int, run) -> None:
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    result = run()
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    print(f"{name:8} {count:>11,} lines  CPU {cpu:6.2f} s  wall {wall:6.2f} s  {count / cpu:>10,.0f} lines/s (CPU)  {result}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, help="folder for the generated logs (default: a temporary one)")
    parser.add_argument("--only", choices=("postfix", "access"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.only in (None, "postfix"):
            path = work / "maillog"
            count = write_postfix(path, args.lines)
            reader = DeliveryLogReader([path])
            measure("postfix", count, lambda: f"{sum(1 for _ in reader.events()):,} events")
        if args.only in (None, "access"):
            path = work / "access.log"
            count = write_access(path, args.lines)
            stats = ScanStats()
            measure("access", count, lambda: f"{sum(1 for _ in iter_tracking_hits([path], stats)):,} hits")


if __name__ == "__main__":
    main()
