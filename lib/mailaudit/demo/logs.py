"""The demo's log files: outgoing-mail logs (Postfix, Exim, msmtp, CSV) and the web server's tracking-pixel access log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np

from mailaudit.demo import vocab
from mailaudit.demo.behaviour import (
    BLOCKED, CLICK_READ_CAUSES, DELIVERED, HARD_BOUNCE, SOFT_BOUNCE, UA_TABLE, PostingResult, random_ips,
)
from mailaudit.demo.config import END_EXCLUSIVE_TS, START_TS, TZ_OFFSET
from mailaudit.demo.population import Population

DELIVERY_FORMATS = ("postfix", "exim", "msmtp", "csv")
ACCESS_FORMATS = ("bitrixvm", "combined")
DELIVERY_FILES = {"postfix": "maillog", "exim": "exim_mainlog", "msmtp": "msmtp_default.log", "csv": "delivery.csv"}
ACCESS_FILE = "access.log"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SIGN_KEY = b"mailaudit-demo"
MAIL_HOST = "mail"
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _dt(ts: int) -> datetime:
    return datetime.utcfromtimestamp(ts)


def syslog_stamp(ts: int) -> str:
    d = _dt(ts)
    return f"{MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S}"


def ip_str(ip: int) -> str:
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


def tracking_tag(recipient_id: int) -> str:
    """``sender.<base64 JSON>``, PHP-urlencoded as Bitrix puts it into the pixel URL."""
    raw = base64.b64encode(json.dumps({"RECIPIENT_ID": int(recipient_id)}, separators=(",", ":")).encode()).decode()
    return "sender." + quote(raw, safe="")


class DeliveryLogs:
    """Writes each posting's delivery attempts, in time order, to every requested format."""

    def __init__(self, directory: Path, formats, seed: int):
        self.rng = np.random.default_rng([seed, 7])
        self.files = {f: open(directory / DELIVERY_FILES[f], "w", encoding="utf-8", newline="\n") for f in formats}
        if "csv" in self.files:
            self.files["csv"].write("email,date,status_code,text\n")
        self.counts = {f: 0 for f in formats}
        self.verdicts = {"sent": 0, "bounced": 0, "deferred": 0}
        self.bounce_classes = {"hard": 0, "mailbox_full": 0, "sender_block": 0}
        self.paths = {f: str(directory / DELIVERY_FILES[f]) for f in formats}

    def close(self):
        for fh in self.files.values():
            fh.close()

    def add(self, r: PostingResult, pop: Population) -> None:
        rows = np.flatnonzero(np.isin(r.outcome, (DELIVERED, HARD_BOUNCE, SOFT_BOUNCE, BLOCKED)))
        n = len(rows)
        qid = self.rng.integers(0, 16 ** 10, n)
        size = self.rng.integers(18_000, 64_000, n)
        lines = {f: [] for f in self.files}
        for k, i in enumerate(rows.tolist()):
            c = int(r.contact[i])
            addr, prov = pop.code[c], pop.provider[c]
            domain = addr.rpartition("@")[2]
            mx, mx_ip = vocab.MX_HOSTS.get(prov, vocab.MX_HOSTS["other"])
            mx = mx.format(domain=domain)
            t0 = int(r.handoff_ts[i])
            t1 = t0 + int(r.log_delay[i])
            outcome = int(r.outcome[i])
            if outcome == DELIVERED:
                dsn, reply = "2.0.0", f"250 2.0.0 OK {t1} {qid[k] % 10 ** 8:08d} - accepted"
            else:
                table = {HARD_BOUNCE: vocab.HARD_BOUNCE_TEXTS, SOFT_BOUNCE: vocab.SOFT_BOUNCE_TEXTS,
                         BLOCKED: vocab.BLOCK_TEXTS}[outcome]
                dsn, reply = table.get(prov) or table.get("default") or table["corporate"]
                reply = reply % addr if "%s" in reply else reply
            deferred = bool(r.deferred[i])
            q = f"{int(qid[k]):010X}"
            for fmt, out in lines.items():
                if fmt == "postfix":
                    self._postfix(out, t0, t1, k, q, addr, mx, mx_ip, dsn, reply, outcome, deferred, int(size[k]))
                elif fmt == "exim":
                    self._exim(out, t0, t1, k, q, addr, mx, mx_ip, reply, outcome, deferred, int(size[k]))
                elif fmt == "msmtp":
                    self._msmtp(out, t1, k, q, addr, mx, reply, outcome, int(size[k]))
                else:
                    if deferred:
                        out.append((t0 + 1, k, 0, f"{addr},{_dt(t0 + 1):%Y-%m-%d %H:%M:%S},4.4.1,"
                                    f"\"{vocab.DEFERRAL_TEXT.format(mx=mx, ip=mx_ip)}\"\n"))
                    text = reply.replace('"', '""')
                    out.append((t1, k, 1, f"{addr},{_dt(t1):%Y-%m-%d %H:%M:%S},{dsn},\"{text}\"\n"))
            self.verdicts["sent" if outcome == DELIVERED else "bounced"] += 1
            if outcome != DELIVERED:
                self.bounce_classes[{HARD_BOUNCE: "hard", SOFT_BOUNCE: "mailbox_full", BLOCKED: "sender_block"}[outcome]] += 1
            self.verdicts["deferred"] += deferred
        for fmt, out in lines.items():
            out.sort()
            self.files[fmt].writelines(line for *_key, line in out)
            self.counts[fmt] += len(out)

    @staticmethod
    def _postfix(out, t0, t1, k, q, addr, mx, mx_ip, dsn, reply, outcome, deferred, size):
        head = f"{MAIL_HOST} postfix"
        out.append((t0, k, 0, f"{syslog_stamp(t0)} {head}/pickup[1187]: {q}: uid=600 from=<bitrix>\n"))
        out.append((t0, k, 1, f"{syslog_stamp(t0)} {head}/cleanup[2211]: {q}: message-id=<{q.lower()}@example.ru>\n"))
        out.append((t0, k, 2, f"{syslog_stamp(t0)} {head}/qmgr[1186]: {q}: from=<{vocab.EMAIL_FROM}>, size={size}, "
                              "nrcpt=1 (queue active)\n"))
        if deferred:
            t = t0 + 1
            out.append((t, k, 3, f"{syslog_stamp(t)} {head}/smtp[3391]: {q}: to=<{addr}>, relay=none, delay=30, "
                                 f"delays=0.01/0/30/0, dsn=4.4.1, status=deferred "
                                 f"({vocab.DEFERRAL_TEXT.format(mx=mx, ip=mx_ip)})\n"))
        delay = max(t1 - t0, 0) + 0.4
        relay = f"{mx}[{mx_ip}]:25"
        if outcome == DELIVERED:
            verdict = f"dsn={dsn}, status=sent ({reply})"
        else:
            verdict = f"dsn={dsn}, status=bounced (host {mx}[{mx_ip}] said: {reply} (in reply to RCPT TO command))"
        out.append((t1, k, 4, f"{syslog_stamp(t1)} {head}/smtp[3392]: {q}: to=<{addr}>, relay={relay}, "
                              f"delay={delay:.1f}, delays=0.02/0.01/0.15/{delay - 0.18:.2f}, {verdict}\n"))
        if outcome != DELIVERED:
            out.append((t1, k, 5, f"{syslog_stamp(t1)} {head}/bounce[3420]: {q}: sender non-delivery "
                                  f"notification: {q[::-1]}\n"))
        out.append((t1, k, 6, f"{syslog_stamp(t1)} {head}/qmgr[1186]: {q}: removed\n"))

    @staticmethod
    def _exim(out, t0, t1, k, q, addr, mx, mx_ip, reply, outcome, deferred, size):
        n = int(q, 16)
        mid = "".join(B62[(n >> s) % 62] for s in (0, 6, 12, 18, 24, 30))
        mid = f"1{mid[:5]}-{''.join(B62[(n >> s) % 62] for s in (3, 9, 15, 21, 27, 33))}-{B62[n % 62]}{B62[(n >> 7) % 62]}"
        stamp = lambda t: f"{_dt(t):%Y-%m-%d %H:%M:%S}"  # noqa: E731
        out.append((t0, k, 0, f"{stamp(t0)} {mid} <= {vocab.EMAIL_FROM} U=bitrix P=local S={size} "
                              f"id={q.lower()}@example.ru\n"))
        if deferred:
            out.append((t0 + 1, k, 1, f"{stamp(t0 + 1)} {mid} == {addr} R=dnslookup T=remote_smtp defer (110): "
                                      "Connection timed out\n"))
        if outcome == DELIVERED:
            out.append((t1, k, 2, f"{stamp(t1)} {mid} => {addr} R=dnslookup T=remote_smtp H={mx} [{mx_ip}] "
                                  f"X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"{reply}\"\n"))
        else:
            out.append((t1, k, 2, f"{stamp(t1)} {mid} ** {addr} R=dnslookup T=remote_smtp H={mx} [{mx_ip}]: "
                                  f"SMTP error from remote mail server after RCPT TO:<{addr}>: {reply}\n"))
        out.append((t1, k, 3, f"{stamp(t1)} {mid} Completed\n"))

    @staticmethod
    def _msmtp(out, t1, k, q, addr, mx, reply, outcome, size):
        d = _dt(t1)
        stamp = f"{MONTHS[d.month - 1]} {d.day:02d} {d:%H:%M:%S}"
        head = (f"{stamp} host={mx} tls=on auth=off from={vocab.EMAIL_FROM} recipients={addr} "
                f"mailsize={size}")
        if outcome == DELIVERED:
            line = f"{head} smtpstatus=250 smtpmsg='{reply}' exitcode=EX_OK\n"
        else:
            code = reply[:3]
            line = (f"{head} smtpstatus={code} smtpmsg='{reply}' errormsg='recipient address {addr} not "
                    f"accepted by the server' exitcode=EX_DATAERR\n")
        out.append((t1, k, 0, line))


class AccessLog:
    """Collects pixel loads and clicks of every posting, adds site traffic and noise, writes one sorted file."""

    def __init__(self, directory: Path, fmt: str, seed: int):
        if fmt not in ACCESS_FORMATS:
            raise ValueError(f"access format must be one of {ACCESS_FORMATS}")
        self.path = directory / ACCESS_FILE
        self.fmt = fmt
        self.rng = np.random.default_rng([seed, 11])
        self.chunks: list[tuple] = []
        self.counts = {"pixel_lines": 0, "click_lines": 0, "portal_pixel_lines": 0, "site_lines": 0,
                       "bad_request_lines": 0, "garbage_lines": 0,
                       "foreign_tags": {"orphan_recipient": 0, "crm_module": 0, "undecodable": 0}}

    def add(self, r: PostingResult) -> None:
        pixel = ~np.isin(r.read_cause, CLICK_READ_CAUSES)
        p = r.posting
        self.chunks.append(("read", r.read_rid[pixel], r.read_ts[pixel], r.read_ua[pixel], r.read_ip[pixel], None, p))
        self.chunks.append(("click", r.click_rid, r.click_ts, r.click_ua, r.click_ip, r.click_link, p))

    def add_orphans(self, kind: str, rids, ts, posting) -> None:
        n = len(rids)
        self.chunks.append((kind, np.asarray(rids), np.asarray(ts), np.full(n, 6, dtype=np.int8),
                            random_ips(self.rng, (0x5F180000, 18), n), np.zeros(n, dtype=np.int8), posting))
        self.counts["foreign_tags"]["orphan_recipient"] += n

    def write(self) -> None:
        rng = self.rng
        events = []   # (ts, seq, line)
        seq = 0
        for kind, rids, tss, uas, ips, links, p in self.chunks:
            portal = rng.random(len(rids)) < 0.05
            for j, (rid, ts, ua, ip) in enumerate(zip(rids.tolist(), tss.tolist(), uas.tolist(), ips.tolist())):
                tag = tracking_tag(rid)
                if kind == "read":
                    path = "/pub/mail/read.php" if portal[j] else "/bitrix/tools/track_mail_read.php"
                    self.counts["portal_pixel_lines" if portal[j] else "pixel_lines"] += 1
                    line = self._line(ip_str(ip), ts, f"GET {path}?tag={tag} HTTP/1.1", 200, 43, "-", UA_TABLE[ua])
                else:
                    target = p.links[int(links[j])]
                    params = dict(p.utm)
                    params["bx_sender_conversion_id"] = str(rid)
                    url = f"{target}?{urlencode(params)}"
                    sign = hmac.new(SIGN_KEY, f"{tag}{url}".encode(), hashlib.sha256).hexdigest()[:32]
                    self.counts["click_lines"] += 1
                    line = self._line(ip_str(ip), ts, f"GET /bitrix/tools/track_mail_click.php?tag={tag}&url="
                                      f"{quote(url, safe='')}&sign={sign} HTTP/1.1", 302, 0, "-", UA_TABLE[ua])
                events.append((ts, seq, line))
                seq += 1
        if not events:
            self.path.write_text("")
            return
        lo, hi = START_TS, END_EXCLUSIVE_TS - 1
        # unrelated site traffic, CRM one-to-one mail tags, undecodable tags, bad requests, broken lines
        n_site = len(events) // 50 + 50
        for ts in np.sort(rng.integers(lo, hi, n_site)).tolist():
            path = vocab.SITE_PATHS[int(rng.integers(0, len(vocab.SITE_PATHS)))]
            ua = vocab.UA_SITE_VISITORS[int(rng.integers(0, len(vocab.UA_SITE_VISITORS)))]
            status = 404 if path == "/favicon.ico" else 200
            events.append((ts, seq, self._line(ip_str(int(random_ips(rng, (0xB2400000, 19), 1)[0])), ts,
                                               f"GET {path} HTTP/1.1", status, int(rng.integers(300, 90000)),
                                               f"https://{vocab.SHOP_HOST}/", ua)))
            seq += 1
            self.counts["site_lines"] += 1
        for j, ts in enumerate(np.sort(rng.integers(lo, hi, 4)).tolist()):
            raw = base64.b64encode(json.dumps({"ACTIVITY_ID": 1000 + j, "OWNER_TYPE_ID": 3}).encode()).decode()
            events.append((ts, seq, self._line("95.24.1.%d" % (10 + j), ts, f"GET /pub/mail/read.php?tag=crm."
                                               f"{quote(raw, safe='')} HTTP/1.1", 200, 43, "-", vocab.UA_BROWSERS[0])))
            seq += 1
            self.counts["foreign_tags"]["crm_module"] += 1
        for j, ts in enumerate(np.sort(rng.integers(lo, hi, 3)).tolist()):
            events.append((ts, seq, self._line("185.220.101.%d" % (5 + j), ts, "GET /bitrix/tools/track_mail_read.php"
                                               f"?tag=sender.%ZZ{j}not-base64!! HTTP/1.1", 200, 43, "-",
                                               "python-requests/2.31.0")))
            seq += 1
            self.counts["foreign_tags"]["undecodable"] += 1
        for j, ts in enumerate(np.sort(rng.integers(lo, hi, 3)).tolist()):
            events.append((ts, seq, self._line("45.155.205.%d" % (20 + j), ts, "\\x16\\x03\\x01\\x02\\x00\\x01\\x00"
                                               "\\x01\\xFC\\x03\\x03", 400, 157, "-", "-")))
            seq += 1
            self.counts["bad_request_lines"] += 1
        for j, ts in enumerate(np.sort(rng.integers(lo, hi, 3)).tolist()):
            full = self._line("77.88.5.%d" % j, ts, "GET /catalog/ HTTP/1.1", 200, 5120, "-", vocab.UA_BROWSERS[1])
            events.append((ts, seq, full[: 25 + 7 * j].rstrip("\n") + "\n"))
            seq += 1
            self.counts["garbage_lines"] += 1
        events.sort()
        with open(self.path, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(line for _ts, _seq, line in events)
        self.counts["lines"] = len(events)

    def _line(self, ip: str, ts: int, request: str, status: int, size: int, referer: str, ua: str) -> str:
        d = _dt(ts)
        local = f"{d.day:02d}/{MONTHS[d.month - 1]}/{d:%Y:%H:%M:%S} {TZ_OFFSET}"
        if self.fmt == "combined":
            return f'{ip} - - [{local}] "{request}" {status} {size} "{referer}" "{ua}"\n'
        upstream = "0.012" if status != 404 else "-"
        return f'{ip} - - [{local} - {upstream}] {status} "{request}" {size} "{referer}" "{ua}" "-"\n'
