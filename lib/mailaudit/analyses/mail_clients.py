"""Who loaded a tracking pixel: mail client and machine/human class from User-Agent and IP.

A hit gets a *class* (what fetched it: Apple's privacy proxy, another mail provider's image proxy,
a security scanner or HTTP library, an identified mail client, or unknown) and a *client* label in
the marketer's words (apple, gmail, outlook…), the same labels as ``codes.MAIL_AGENT_CLIENT`` so the
access-log and database routes line up. An e-mail-specific rule table (``UA_RULES``: proxies, then
scanners, then mail apps that general UA parsers do not name) is tried first, then the
``ua-parser`` package mapped through ``UA_FAMILY_CLIENT``. No UA parser recognises Apple Mail
Privacy Protection, so the bare ``Mozilla/5.0`` is handled before everything. The timing rule for
scanners (a hit seconds after delivery) needs the delivery time and is applied in ``analyses.opens``.
"""

from __future__ import annotations

import bisect
import csv
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import pandas as pd
from ua_parser import parse as parse_ua

# Hit classes (opens packs them into 3 bits: at most 8). Only APPLE_PROXY and SCANNER are machine
# opens; an image proxy of Gmail, Yahoo, Yandex, Rambler… fetches when the person opens the letter
# (first load only, then cached), so it is human. PROXY is any other provider's image proxy: its
# client label names the provider, and ``report_class`` turns it into e.g. ``yandex_proxy``.
APPLE_PROXY = "apple_proxy"
GMAIL_PROXY = "gmail_proxy"
YAHOO_PROXY = "yahoo_proxy"
SCANNER = "scanner"
CLIENT = "client"
UNKNOWN = "unknown"
PROXY = "proxy"
HIT_CLASSES = (APPLE_PROXY, GMAIL_PROXY, YAHOO_PROXY, SCANNER, CLIENT, UNKNOWN, PROXY)
MACHINE_CLASSES = frozenset({APPLE_PROXY, SCANNER})
TIMING_CHECKED_CLASSES = frozenset({CLIENT, UNKNOWN})
"""Classes whose hits count as a scanner when they all fall within seconds of delivery: gateways
mostly send ordinary browser User-Agents (domain-notes §6); named proxies and Apple's are exempt."""

APPLE_MPP_USER_AGENT = "Mozilla/5.0"
"""The whole User-Agent of Apple's privacy proxy (and, since iOS 15, of Apple Mail itself)."""

# ua-parser family -> the kit's client label (families as of uap-core 2026).
UA_FAMILY_CLIENT = {
    "Apple Mail": "apple",
    "Mobile Safari UI/WKWebView": "apple",    # iOS/iPadOS Mail renders through WKWebView
    "GmailImageProxy": "gmail",
    "YahooMailProxy": "yahoo",
    "Outlook": "outlook",
    "Windows Live Mail": "outlook",
    "Thunderbird": "thunderbird",
    "Yandex Browser": "webmail",
    "Chrome": "webmail",
    "Chromium": "webmail",
    "Firefox": "webmail",
    "Safari": "webmail",
    "Edge": "webmail",
    "Opera": "webmail",
    "Chrome Mobile": "android",
    "Chrome Mobile WebView": "android",
    "Android": "android",
    "Samsung Internet": "android",
}
UA_FAMILY_CLASS = {"GmailImageProxy": GMAIL_PROXY, "YahooMailProxy": YAHOO_PROXY}


def _r(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE)


UA_RULES: tuple[tuple[re.Pattern, str, str], ...] = (
    # image proxies of mail providers: they fetch when a person opens the letter
    (_r(r"GoogleImageProxy"), GMAIL_PROXY, "gmail"),
    (_r(r"YahooMailProxy"), YAHOO_PROXY, "yahoo"),
    (_r(r"YandexImageResizer"), PROXY, "yandex"),
    (_r(r"RamblerMail|Rambler.*ImageProxy"), PROXY, "rambler"),
    (_r(r"SeznamEmailProxy"), PROXY, "seznam"),
    (_r(r"mail\.ukr\.net proxy"), PROXY, "ukr.net"),
    # machines: security gateways, server-side fetchers, link previews, crawlers, HTTP libraries
    (_r(r"barracuda|mimecast|proofpoint|symantec|messagelabs|trend ?micro|forcepoint|ironport|cisco|fireeye"
        r"|sophos|zscaler|safelinks|microsoft defender|\bATP\b"
        r"|Microsoft Exchange/\d|Exchange check|ExchangeServicesClient|Office Existence Discovery|Office ?365"
        r"|HubSpot|^AHC/|Amazon CloudFront|lua-resty-http|Mail\.RU_Bot|YandexImages|YandexUserproxy"
        r"|Preview\b|Prefetch Proxy|FlipboardProxy|AppEngine-Google|scanner|E-?Mail Ex\w*ractor|um-LN/"
        r"|python-requests|python-urllib|aiohttp|curl/|libcurl|PycURL|Guzzle|wget/|go-http-client|^Java/|Apache-HttpClient"
        r"|okhttp|unirest|aws-sdk|libwww|mechanize|headlesschrome|phantomjs|scrapy"
        r"|\bbot\b|bot/|crawler|spider|slurp"), SCANNER, "scanner"),
    # mail apps that general UA parsers do not name (device-detector's and uap-core's fixtures)
    (_r(r"Microsoft Outlook|MSOffice|ms-office|MacOutlook/|Outlook-(?:iOS|Android|Express)/|^Outlook/\d"), CLIENT, "outlook"),
    (_r(r"WindowsMail/"), CLIENT, "windows_mail"),
    (_r(r"Thunderbird/|Icedove/"), CLIENT, "thunderbird"),
    (_r(r"^Airmail "), CLIENT, "airmail"),
    (_r(r"Postbox[ /]"), CLIENT, "postbox"),
    (_r(r"^The Bat!"), CLIENT, "the_bat"),
    (_r(r"eM ?Client/"), CLIENT, "em_client"),
    (_r(r"Mailspring/"), CLIENT, "mailspring"),
    (_r(r"BlueMail/"), CLIENT, "bluemail"),
    (_r(r"Mailbird/"), CLIENT, "mailbird"),
    (_r(r"Lotus-Notes/"), CLIENT, "lotus_notes"),
    (_r(r"^Barca(?:Pro)?/"), CLIENT, "barca"),
    (_r(r"^MailBar/"), CLIENT, "mailbar"),
    (_r(r"NaverMailApp/"), CLIENT, "naver"),
    (_r(r"Foxmail/"), CLIENT, "foxmail"),
    (_r(r"MailMaster"), CLIENT, "mail_master"),
    (_r(r"Spicebird/"), CLIENT, "spicebird"),
    (_r(r"kmail2?/"), CLIENT, "kmail"),
    (_r(r"DaumMail/"), CLIENT, "daum"),
    (_r(r"MailPlugin_Electron|WeMail"), CLIENT, "wemail"),
    (_r(r"Yahoo%20Mail/|YahooMobileMail|\bymail/"), CLIENT, "yahoo"),
    (_r(r"Android-Gmail/"), CLIENT, "gmail"),
    (_r(r"ru\.mail\.my/|\bmailapp/"), CLIENT, "mail.ru"),
    (_r(r"AppleExchangeWebServices/|^Mail/\d+ CFNetwork|ExchangeWebServices/.*\bMail/"), CLIENT, "apple"),
)
"""(pattern, hit class, client), first match wins; checked before ua-parser."""

GATEWAY_RANGES = ("40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17")
"""Microsoft Exchange Online Protection egress ranges (domain-notes §6): Defender/Safe Links fetches."""


class IpRanges:
    """A set of CIDR ranges with a fast membership test (sorted integer intervals + bisect)."""

    def __init__(self, cidrs: Iterable[str]):
        intervals = {4: [], 6: []}
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
            intervals[net.version].append((int(net.network_address), int(net.broadcast_address)))
        self._starts, self._ends = {}, {}
        for version, items in intervals.items():
            merged: list[list[int]] = []
            for start, end in sorted(items):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[version] = [s for s, _ in merged]
            self._ends[version] = [e for _, e in merged]
        self.size = sum(len(v) for v in self._starts.values())

    def __contains__(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        value = int(addr)
        starts = self._starts[addr.version]
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and value <= self._ends[addr.version][i]

    @classmethod
    def from_apple_csv(cls, path: str | Path) -> "IpRanges":
        """Apple's ``egress-ip-ranges.csv`` snapshot: first column a CIDR, then country/region/city."""
        with open(path, newline="", encoding="utf-8") as fh:
            return cls(row[0] for row in csv.reader(fh) if row and "/" in row[0])


@dataclass(frozen=True)
class HitClass:
    """What fetched a tracking URL: ``hit_class`` (one of HIT_CLASSES) and the ``client`` label."""

    hit_class: str
    client: str

    @property
    def machine(self) -> bool:
        return self.hit_class in MACHINE_CLASSES


@lru_cache(maxsize=1 << 16)
def classify_user_agent(user_agent: str) -> HitClass:
    """Class and client from the User-Agent alone (IP-independent; cached per distinct string)."""
    ua = (user_agent or "").strip()
    if ua == APPLE_MPP_USER_AGENT:
        return HitClass(APPLE_PROXY, "apple")
    if not ua or ua == "-":
        return HitClass(UNKNOWN, "unknown")
    for pattern, hit_class, client in UA_RULES:
        if pattern.search(ua):
            return HitClass(hit_class, client)
    parsed = parse_ua(ua)
    family = parsed.user_agent.family if parsed.user_agent else None
    if family in UA_FAMILY_CLASS:
        return HitClass(UA_FAMILY_CLASS[family], UA_FAMILY_CLIENT[family])
    if family in UA_FAMILY_CLIENT:
        return HitClass(CLIENT, UA_FAMILY_CLIENT[family])
    if parsed.device is not None and parsed.device.family == "Spider":
        return HitClass(SCANNER, "scanner")
    os_family = parsed.os.family if parsed.os else None
    if os_family in ("iOS", "Mac OS X") and "AppleWebKit" in ua and "Safari/" not in ua:
        return HitClass(CLIENT, "apple")   # an Apple Mail build ua-parser does not name
    return HitClass(UNKNOWN, "unknown")


def report_class(hit: HitClass) -> str:
    """The class as reports name it: an image proxy by its provider (``yandex_proxy``), else the hit class."""
    if hit.hit_class == PROXY:
        return re.sub(r"\W+", "", hit.client) + "_proxy"
    return hit.hit_class


APPLE_MAIL_DIRECT = HitClass(CLIENT, "apple")
GATEWAY_SCANNER = HitClass(SCANNER, "scanner")


class MailClientClassifier:
    """Classify hits by User-Agent and IP.

    ``apple_ranges``: Apple's relay egress ranges (optional). With them, a bare ``Mozilla/5.0``
    from outside those ranges is Apple Mail with Privacy Protection off (a person, client apple);
    without them every bare ``Mozilla/5.0`` counts as the proxy. ``gateway_ranges``: networks
    whose hits are security scanners whatever their User-Agent.
    """

    def __init__(self, apple_ranges: IpRanges | None = None,
                 gateway_ranges: IpRanges | None = None):
        self.apple_ranges = apple_ranges
        self.gateway_ranges = gateway_ranges if gateway_ranges is not None else IpRanges(GATEWAY_RANGES)
        # bounded caches: a year of logs holds millions of distinct addresses
        self._in_apple = lru_cache(maxsize=1 << 16)(
            (lambda ip: ip in self.apple_ranges) if apple_ranges is not None else (lambda ip: True))
        self._in_gateway = lru_cache(maxsize=1 << 16)(lambda ip: ip in self.gateway_ranges)

    def classify(self, user_agent: str, ip: str) -> HitClass:
        by_ua = classify_user_agent(user_agent)
        if by_ua.hit_class == APPLE_PROXY:
            return by_ua if self._in_apple(ip) else APPLE_MAIL_DIRECT
        if by_ua.hit_class != SCANNER and self._in_gateway(ip):
            return GATEWAY_SCANNER
        return by_ua


def user_agent_table(user_agents) -> pd.DataFrame:
    """One row per User-Agent line: ``user_agent``, ``class`` (``client``, ``scanner``, ``unknown`` or
    the image proxy's name) and ``client`` (the family)."""
    rows = []
    for line in user_agents:
        user_agent = line.rstrip("\r\n")
        hit = classify_user_agent(user_agent)
        rows.append((user_agent, report_class(hit), hit.client))
    return pd.DataFrame(rows, columns=["user_agent", "class", "client"])
