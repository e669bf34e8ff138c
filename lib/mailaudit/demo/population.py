"""The demo's people: addresses with planted problems, lists, CRM sources, tenure, mail clients and propensities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mailaudit.bitrix.codes import MailAgent
from mailaudit.demo import vocab
from mailaudit.demo.config import DAY, END_EXCLUSIVE_TS, DemoConfig

# address categories (disjoint)
CLEAN, INVALID, TYPO, DISPOSABLE, ROLE, DUPLICATE, HARD, SOFT = range(8)
CATEGORY_NAMES = ("clean", "invalid_syntax", "typo_domain", "disposable_domain", "role_account",
                  "duplicate", "hard_bounce", "mailbox_full")

# true mail clients
APPLE, GMAIL, YANDEX, OUTLOOK, OTHER = range(5)
CLIENT_LABELS = ("apple", "gmail", "yandex", "outlook", "other")

# how a client's own (human) pixel loads look: (User-Agent, AGENT, IP kind)
IP_HOME, IP_APPLE_PROXY, IP_GOOGLE_PROXY, IP_YANDEX_PROXY, IP_YAHOO_PROXY, IP_CORPORATE = range(6)
HUMAN_UAS = (
    (vocab.UA_APPLE_PROXY, MailAgent.UNKNOWN, IP_APPLE_PROXY),   # 0 Apple Mail, MPP on: via Apple's proxy
    (vocab.UA_IPHONE, MailAgent.IPHONE, IP_HOME),                # 1 Apple Mail, MPP off
    (vocab.UA_GMAIL, MailAgent.GMAIL, IP_GOOGLE_PROXY),          # 2
    (vocab.UA_YANDEX, MailAgent.YANDEX, IP_YANDEX_PROXY),        # 3
    (vocab.UA_OUTLOOK, MailAgent.OUTLOOK, IP_CORPORATE),         # 4
    (vocab.UA_THUNDERBIRD, MailAgent.THUNDERBIRD, IP_CORPORATE),  # 5
    (vocab.UA_BROWSERS[0], MailAgent.UNKNOWN, IP_HOME),          # 6 webmail, desktop
    (vocab.UA_BROWSERS[1], MailAgent.UNKNOWN, IP_HOME),          # 7 webmail, Yandex Browser
    (vocab.UA_BROWSERS[2], MailAgent.ANDROID, IP_HOME),          # 8 Android app / mobile web
    (vocab.UA_YAHOO, MailAgent.UNKNOWN, IP_YAHOO_PROXY),         # 9
    (vocab.UA_RAMBLER, MailAgent.UNKNOWN, IP_HOME),              # 10
    (vocab.UA_BROWSERS[4], MailAgent.UNKNOWN, IP_HOME),          # 11 webmail, Safari on a Mac
)

OUTLOOK_DESKTOP_UA, THUNDERBIRD_UA = 4, 5
"""HUMAN_UAS indices of the desktop clients that block remote images by default."""

TENURE_BANDS = ("<1y", "1-2y", "2-3y", "3y+")
"""Contact age at the period end: DATE_INSERT before 2026-10-01 00:00 by <365, <730, <1095, >=1095 days."""

CORPORATE_STEMS = ("romashka", "vektor", "stroymontazh", "agrokompleks", "teplolux", "medtekhnika",
                   "logistika", "uralsteel", "optovik", "finconsult", "printservis", "avtodetal",
                   "elektroset", "kamchatka-fish", "baltika-trans", "nord-mebel", "sibles", "promsnab",
                   "tekhnopark", "volga-agro", "energomash", "gidrostroy", "severtrans", "yug-invest",
                   "krasnodar-opt", "altay-med", "zavod-kontakt", "bumprom", "tsentr-servis", "kvant-soft")
CORPORATE_SUFFIXES = ("", "-trade", "-group", "-plus", "-msk", "-spb", "-ural", "-sib", "-yug", "-nn",
                      "-holding", "-service", "-company", "-invest", "-pro", "-24", "-online", "-rus")


def corporate_domains() -> list[str]:
    """Company domains, far (in spelling) from every mailbox provider."""
    return [f"{stem}{suffix}.{tld}" for tld in ("ru", "com") for stem in CORPORATE_STEMS for suffix in CORPORATE_SUFFIXES]


@dataclass
class Population:
    """One entry per sender e-mail contact (ID = index + 1), plus the SMS-only phone contacts."""

    code: np.ndarray          # str: b_sender_contact.CODE (lower-case, trimmed)
    first: np.ndarray         # str: Cyrillic first name
    last: np.ndarray          # str: Cyrillic last name
    date_insert: np.ndarray   # int64 ts
    category: np.ndarray      # int8, CATEGORY_NAMES
    provider: np.ndarray      # str: mailbox provider label (gmail, mailru, …, corporate, other)
    list_idx: np.ndarray      # int8 into vocab.LISTS
    crm_source: np.ndarray    # int8 into vocab.CRM_SOURCES, -1 without a CRM contact
    user_id: np.ndarray       # int32, 0 = no site user
    client: np.ndarray        # int8, CLIENT_LABELS
    human_ua: np.ndarray      # int8 into HUMAN_UAS
    mpp: np.ndarray           # bool: Apple Mail Privacy Protection loads every delivery
    scanner: np.ndarray       # bool: a security gateway fetches the pixel seconds after delivery
    home_ip: np.ndarray       # uint32
    open_p: np.ndarray        # float: per-delivery human open probability before list/letter multipliers
    ctor_p: np.ndarray        # float: click probability given a human open, before multipliers
    buyer: np.ndarray         # bool: buys in the shop at all
    buy_rate: np.ndarray      # float: baseline orders per year (0 for non-buyers)
    deleted: np.ndarray       # bool: contact row deleted after mailing (recipients without contact)
    dead_ts: np.ndarray       # int64: HARD: mailbox deleted from then on (else max)
    full_ts: np.ndarray       # int64: SOFT: mailbox full from then on (else max)
    soft_cap: np.ndarray      # int16: SOFT: bounces before the mailbox is emptied (-1 never)
    auto_blacklist: np.ndarray  # bool: HARD: Bitrix adds the address to b_main_mail_blacklist
    violator: np.ndarray      # bool: kept in the news campaign after unsubscribing from it
    phone_codes: np.ndarray   # str: SMS-only contacts (TYPE_ID 2), IDs after the e-mail contacts
    images_off_q: np.ndarray  # float: per letter, the person reads with remote images off
    gateway: np.ndarray       # int8: link-scanning gateway of the company domain (worlds.GATEWAYS), -1 none

    @property
    def size(self) -> int:
        return len(self.code)

    def tenure_band(self) -> np.ndarray:
        age_days = (END_EXCLUSIVE_TS - self.date_insert) / DAY
        return np.digitize(age_days, [365, 730, 1095]).astype(np.int8)


def _pick(rng: np.random.Generator, n: int, shares) -> np.ndarray:
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def build_population(cfg: DemoConfig, rng: np.random.Generator, provider_weights: list | None = None) -> Population:
    """The contacts; ``provider_weights`` (vocab.PROVIDER_DOMAINS, then company domains) default to the vocabulary's shares."""
    n = cfg.contacts
    counts = {
        INVALID: cfg.planted(cfg.invalid_share), TYPO: cfg.planted(cfg.typo_share),
        DISPOSABLE: cfg.planted(cfg.disposable_share), ROLE: cfg.planted(cfg.role_share),
        HARD: cfg.planted(cfg.hard_bounce_share, 10), SOFT: cfg.planted(cfg.soft_bounce_share, 8),
    }
    n_dup = cfg.planted(cfg.duplicate_share, 4)
    n_base = n - n_dup
    if n_base < 10 * (sum(counts.values()) + n_dup) // 5:
        raise ValueError(f"--contacts {n} is too small for the planted categories (use at least 500)")

    category = np.full(n, CLEAN, dtype=np.int8)
    order = rng.permutation(n_base)
    pos = 0
    for cat, k in counts.items():
        category[order[pos:pos + k]] = cat
        pos += k
    n_orig = n_dup - n_dup // 4
    originals = np.sort(order[pos:pos + n_orig])
    category[n_base:] = DUPLICATE

    # names and unique local-part skeletons: the number is unique per contact, so no two addresses
    # collapse under any dot/hyphen/plus-tag normalisation except the planted duplicates
    fi = rng.integers(0, len(vocab.FIRST_NAMES), n)
    li = rng.integers(0, len(vocab.LAST_NAMES), n)
    number = rng.permutation(n) + rng.integers(10, 90)
    sep = np.array([".", "_", "", "-"])[rng.integers(0, 4, n)]
    sep[originals] = ""
    first_lat = np.array([f[1] for f in vocab.FIRST_NAMES])[fi]
    last_lat = np.array([x[1] for x in vocab.LAST_NAMES])[li]
    first_ru = np.array([f[0] for f in vocab.FIRST_NAMES], dtype=object)[fi]
    last_ru = np.array([x[0] for x in vocab.LAST_NAMES], dtype=object)[li]
    female = fi >= vocab.FEMALE_FIRST_FROM
    last_ru = np.where(female, last_ru + "а", last_ru)
    local = np.array([f"{a}{s}{b}{k}" for a, s, b, k in zip(first_lat, sep, last_lat, number)], dtype=object)

    # domains and providers of clean-looking addresses
    prov_domains = [d for d, _, _ in vocab.PROVIDER_DOMAINS]
    prov_labels = dict((d, lab) for d, lab, _ in vocab.PROVIDER_DOMAINS)
    shares = [s for _, _, s in vocab.PROVIDER_DOMAINS]
    corp = corporate_domains()
    pick = _pick(rng, n, provider_weights or shares + [max(0.0, 1 - sum(shares))])
    domain = np.empty(n, dtype=object)
    is_corp = pick == len(prov_domains)
    domain[~is_corp] = np.array(prov_domains, dtype=object)[pick[~is_corp]]
    domain[is_corp] = np.array(corp, dtype=object)[rng.integers(0, len(corp), int(is_corp.sum()))]
    domain[originals] = "gmail.com"
    hard_or_soft = np.isin(category, (HARD, SOFT))
    domain[hard_or_soft & is_corp] = "mail.ru"   # bounce texts are per provider: keep them on known ones

    code = np.empty(n, dtype=object)
    provider = np.empty(n, dtype=object)
    for i in range(n):
        provider[i] = prov_labels.get(domain[i], vocab.CORPORATE_PROVIDER)
    code[:] = local + "@" + domain

    def cat_idx(cat):
        return np.flatnonzero(category == cat)

    idx = cat_idx(TYPO)
    code[idx] = local[idx] + "@" + np.array(vocab.TYPO_DOMAINS, dtype=object)[np.arange(len(idx)) % len(vocab.TYPO_DOMAINS)]
    provider[idx] = "other"
    idx = cat_idx(DISPOSABLE)
    code[idx] = local[idx] + "@" + np.array(vocab.DISPOSABLE_DOMAINS, dtype=object)[np.arange(len(idx)) % len(vocab.DISPOSABLE_DOMAINS)]
    provider[idx] = "other"
    idx = cat_idx(ROLE)
    roles = vocab.ROLE_LOCAL_PARTS
    role_domains = rng.permutation(len(corp))
    if len(idx) > len(roles) * len(corp):
        raise ValueError("too many role accounts for the corporate domain list")
    for j, i in enumerate(idx):   # unique (role, domain) pairs
        code[i] = f"{roles[j % len(roles)]}@{corp[role_domains[(j // len(roles)) % len(corp)]]}"
        provider[i] = vocab.CORPORATE_PROVIDER
    idx = cat_idx(INVALID)
    for j, i in enumerate(idx):
        d = domain[i] if domain[i] in prov_labels else "mail.ru"
        form = j % 6
        code[i] = (
            f"{local[i]}{d}" if form == 0 else
            f"{local[i]}@@{d}" if form == 1 else
            f"{local[i]}@{d.split('.')[0]}" if form == 2 else
            f"{first_lat[i]} {last_lat[i]}{number[i]}@{d}" if form == 3 else
            f"{first_lat[i]}..{last_lat[i]}{number[i]}@{d}" if form == 4 else
            f"{local[i]}@{d.replace('.', ',')}"
        )
        provider[i] = "other"

    # provider-aware duplicates: Gmail dots, plus tags, googlemail.com of a gmail.com original
    dup_idx = np.arange(n_base, n)
    targets = np.concatenate([originals, originals[: n_dup - n_orig]])
    for j, (i, o) in enumerate(zip(dup_idx, targets)):
        base = f"{first_lat[o]}{last_lat[o]}{number[o]}"
        if j >= n_orig:                      # third member of a cluster: always a plus tag
            code[i] = f"{base}+{('shop', 'promo', 'news', 'sale')[j % 4]}@gmail.com"
        elif j % 3 == 0:
            code[i] = f"{first_lat[o]}.{last_lat[o]}{number[o]}@gmail.com"
        elif j % 3 == 1:
            code[i] = f"{base}@googlemail.com"
        else:
            code[i] = f"{first_lat[o]}.{last_lat[o]}.{number[o]}@gmail.com"
        first_ru[i], last_ru[i], fi[i] = first_ru[o], last_ru[o], fi[o]
        provider[i] = "gmail"
    if len(set(code.tolist())) != n:
        raise AssertionError("demo addresses are not unique")

    # tenure: DATE_INSERT spread over six years before the period end
    band = _pick(rng, n, [0.25, 0.25, 0.2, 0.3])
    lo = np.array([2, 365, 730, 1095])[band]
    hi = np.array([364, 729, 1094, 2190])[band]
    age = rng.uniform(lo, hi) * DAY
    date_insert = (END_EXCLUSIVE_TS - age).astype(np.int64)
    date_insert -= date_insert % 60

    list_idx = _pick(rng, n, [s for _, _, s, _, _ in vocab.LISTS]).astype(np.int8)
    has_crm = (rng.random(n) < cfg.crm_share) & (category != DUPLICATE)
    crm_source = np.where(has_crm, _pick(rng, n, [s for _, s, _ in vocab.CRM_SOURCES]), -1).astype(np.int8)
    has_user = rng.random(n) < cfg.user_share
    user_id = np.zeros(n, dtype=np.int32)
    user_id[has_user] = np.arange(1, int(has_user.sum()) + 1)

    # mail clients
    client = np.full(n, OTHER, dtype=np.int8)
    prov_arr = provider
    client[prov_arr == "gmail"] = GMAIL
    client[prov_arr == "yandex"] = YANDEX
    client[prov_arr == "microsoft"] = OUTLOOK
    corp_mask = prov_arr == vocab.CORPORATE_PROVIDER
    corp_draw = rng.random(n)
    client[corp_mask & (corp_draw < 0.5)] = OUTLOOK
    apple_mail = (prov_arr == "apple") | (rng.random(n) < cfg.apple_mail_other_share)
    client[apple_mail] = APPLE
    mpp = apple_mail & (rng.random(n) < cfg.mpp_share)
    human_ua = np.full(n, 6, dtype=np.int8)
    human_ua[rng.random(n) < 0.3] = 7
    human_ua[rng.random(n) < 0.25] = 8
    human_ua[rng.random(n) < 0.1] = 11
    human_ua[prov_arr == "yahoo"] = 9
    human_ua[prov_arr == "rambler"] = 10
    human_ua[corp_mask & (corp_draw >= 0.5) & (corp_draw < 0.65)] = 5
    human_ua[client == GMAIL] = 2
    human_ua[client == YANDEX] = 3
    human_ua[client == OUTLOOK] = 4
    human_ua[client == APPLE] = np.where(mpp[client == APPLE], 0, 1)
    scanner = corp_mask & (client == OUTLOOK) & (rng.random(n) < cfg.scanner_share)
    isp_base = np.array([0x5F180000, 0xB2400000, 0x05100000, 0x4E6C0000], dtype=np.uint32)  # 95.24/13, 178.64/13, 5.16/14, 78.108/14
    home_ip = isp_base[rng.integers(0, 4, n)] + rng.integers(1, 0x3FFFF, n).astype(np.uint32)

    # engagement propensities
    if cfg.heterogeneity:
        open_p = rng.beta(*cfg.open_beta, n)
        ctor_p = rng.beta(*cfg.ctor_beta, n)
    else:
        open_p = np.full(n, cfg.open_mean)
        ctor_p = np.full(n, cfg.ctor_mean)
    open_p[np.isin(category, (TYPO, DISPOSABLE))] = 0.0   # mail to a typo or throw-away domain is never read

    # shop buyers: clean contacts reachable through a CRM contact or a site user
    reachable = (category == CLEAN) & (has_crm | has_user)
    buyer_p = np.where(np.array([c for c, *_ in vocab.LISTS])[list_idx] == "loyal", 2.0, 1.0) * cfg.buyer_share
    buyer = reachable & (rng.random(n) < buyer_p)
    buy_rate = np.where(buyer, rng.gamma(2.0, cfg.baseline_orders_per_year / 2.0, n), 0.0)

    # recipients without contact: a few clean, non-CRM, non-user contacts deleted after mailing
    n_deleted = max(3, n // 10000)
    candidates = np.flatnonzero((category == CLEAN) & ~has_crm & ~has_user & ~buyer)
    deleted = np.zeros(n, dtype=bool)
    deleted[rng.choice(candidates, n_deleted, replace=False)] = True

    big = np.iinfo(np.int64).max
    period_start = END_EXCLUSIVE_TS - 365 * DAY
    dead_ts = np.full(n, big, dtype=np.int64)
    idx = cat_idx(HARD)
    dead_ts[idx] = rng.integers(period_start - 60 * DAY, END_EXCLUSIVE_TS - 40 * DAY, len(idx))
    auto_blacklist = np.zeros(n, dtype=bool)
    auto_blacklist[idx] = rng.random(len(idx)) < cfg.auto_blacklist_share
    full_ts = np.full(n, big, dtype=np.int64)
    idx = cat_idx(SOFT)
    full_ts[idx] = rng.integers(period_start, END_EXCLUSIVE_TS - 120 * DAY, len(idx))
    soft_cap = np.full(n, -1, dtype=np.int16)
    soft_cap[idx[rng.random(len(idx)) < cfg.soft_recovering_share]] = 2
    violator = rng.random(n) < cfg.violation_share

    n_phone = max(20, n // 100)
    phone_codes = np.array([f"7916{x:07d}" for x in rng.choice(10_000_000, n_phone, replace=False)], dtype=object)
    return Population(
        code=code, first=first_ru, last=last_ru, date_insert=date_insert, category=category,
        provider=provider, list_idx=list_idx, crm_source=crm_source, user_id=user_id, client=client,
        human_ua=human_ua, mpp=mpp, scanner=scanner, home_ip=home_ip, open_p=open_p, ctor_p=ctor_p,
        buyer=buyer, buy_rate=buy_rate, deleted=deleted, dead_ts=dead_ts, full_ts=full_ts,
        soft_cap=soft_cap, auto_blacklist=auto_blacklist, violator=violator, phone_codes=phone_codes,
        images_off_q=np.where(client == APPLE, 0.0, cfg.images_off_prob), gateway=np.full(n, -1, dtype=np.int8),
    )
