"""Behaviour profiles ("worlds") of the demo: who is on the list and what people and machines do with a letter.

Every estimator of the kit was first tested on one demo. A world changes the behaviour model
(not the planted segment effects or hygiene problems, which every world keeps) so the
estimators can be tested on data they were not tuned on. Each world's rates are knobs drawn
with the seed from the ranges below, from a separate random stream, so two seeds give two
portals of the same kind; ``baseline`` draws nothing and reproduces the original generator
exactly (same tables, logs and truth for the same seed and contacts).

| world | models | knobs (range) | published behaviour it follows |
|---|---|---|---|
| baseline | the original demo: B2C list, 10% Apple domains + 18% Apple Mail elsewhere, MPP mostly within minutes, a pixel-only gateway on 30% of corporate Outlook readers | fixed | [mpp], [litmus] |
| b2b_gateways | mostly company addresses behind link-scanning gateways (Defender Safe Links, Mimecast, Proofpoint, Barracuda) that click every tracked link of every letter 5 s to minutes after delivery, some after loading the pixel, some without it; from the vendors' networks with browser User-Agents | corporate_share 0.6-0.8; gateway_domain_share 0.05-0.3; gateway_act_prob 0.85-1; per vendor weight, pixel_prob, delay_median_s; gateway_delay_sigma 0.8-1.3; gateway_link_gap_s 0.5-3 | [scanners], [arternal], [safelinks], [ranges] |
| images_off | many desktop readers (Outlook desktop, Thunderbird) who keep remote images blocked: they read and click with no pixel load, a click writing the only read row | corporate_share 0.3-0.5; desktop_share_corporate 0.5-0.8; desktop_share_freemail 0.08-0.2; thunderbird_share 0.15-0.35; images_blocked_outlook 0.6-0.9; images_blocked_thunderbird 0.75-0.95; images_enable_per_letter 0.05-0.25; images_off_prob 0.03-0.1 | [outlook], [thunderbird] |
| apple_late | an Apple-heavy list whose MPP prefetches come hours after delivery (device awake, on Wi-Fi or charging overnight) rather than within minutes | apple_domain_share 0.25-0.4; apple_mail_other_share 0.3-0.5; mpp_share 0.85-0.97; mpp_load_prob 0.93-0.99; mpp_fast_share 0.05-0.25; mpp_slow_median_h 3-9; mpp_slow_sigma 0.7-1.2; mpp_overnight_share 0.2-0.45 | [mpp], [mpp_late], [litmus] |
| cold | an old, bought or rarely mailed list: low open and click propensities, many dormant contacts, many dead mailboxes | open_mean 0.04-0.10; ctor_mean 0.05-0.10; dormant_share 0.3-0.55; hard_bounce_share 0.05-0.10; dead_before_period_share 0.5-0.9; unsub_per_open 0.02-0.04; complaint_share 0.15-0.3 | [benchmarks], [decay] |

Sources (:data:`SOURCES`): [mpp] Apple, Mail Privacy Protection (prefetches remote content
through Apple's relays whether or not the message is read); [mpp_late] the prefetch is not at
delivery but on Apple's schedule; [litmus] Litmus email client market share (Apple 57.4% of
opens, Dec 2021); [scanners] ESP field guides: gateways click every link, several within
seconds, often before or without a pixel load, Defender the most common; [arternal] the same
signs listed by a CRM vendor; [safelinks] Microsoft Defender for Office 365 Safe Links scans
URLs in messages before delivery; [ranges] the vendors' published address ranges;
[outlook] classic Outlook blocks automatic picture downloads by default; [thunderbird]
Thunderbird blocks remote content by default; [benchmarks] Mailchimp benchmarks (average
open 22.7%, click 2.9%, hard bounce 0.4%); [decay] lists lose about 22.5% of addresses a
year, cold outreach lists 30-50%.

What the ranges are NOT: published per-vendor pixel and delay figures do not exist; the vendor
ranges are modelling assumptions inside the published envelope (seconds to minutes, with or
without the pixel). No estimator of the kit was consulted to set them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mailaudit.demo import vocab
from mailaudit.demo.config import DAY, START_TS, DemoConfig
from mailaudit.demo.population import (
    APPLE, HARD, OTHER, OUTLOOK, OUTLOOK_DESKTOP_UA, THUNDERBIRD_UA, Population, corporate_domains,
)

SOURCES = {
    "mpp": "https://www.litmus.com/apple-mail-privacy-protection-resources ; "
           "https://www.auxiris.com/insights/when-apple-privacy-fails-open",
    "mpp_late": "https://cleanbox.app/blog/apple-mail-privacy-protection-explained ; "
                "https://engineered.at/articles/apple-s-protect-mail-activity-doesn-t-work-91b9441c-6089-48aa-b7be-19fb74db5f0c",
    "litmus": "https://www.litmus.com/blog/email-client-market-share-december-2021",
    "scanners": "https://check.live-direct-marketing.online/blog/bot-clicks-security-scanners-detect ; "
                "https://www.suped.com/knowledge/email-deliverability/technical/do-email-security-software-solutions-click-hyperlinks-in-emails",
    "arternal": "https://support.arternal.com/en/articles/15216436-smart-mail-clickthroughs-triggered-by-email-security-scanners",
    "safelinks": "https://learn.microsoft.com/en-us/defender-office-365/safe-links-about",
    "ranges": "https://learn.microsoft.com/en-us/microsoft-365/enterprise/urls-and-ip-address-ranges ; "
              "https://excelmicro.kayako.com/en-us/article/384-mimecast-data-centers-and-urls-north-american ; "
              "https://campus.barracuda.com/product/essentials/doc/78810332/barracuda-email-security-service/",
    "outlook": "https://support.microsoft.com/en-us/outlook/block-or-unblock-automatic-picture-downloads-in-classic-outlook-email-messages",
    "thunderbird": "https://support.mozilla.org/kb/remote-content-in-messages",
    "benchmarks": "https://mailchimp.com/resources/email-marketing-benchmarks/",
    "decay": "https://savoirfaire-us.com/blog/email-list-decay-inevitable-not-necessarily-bad/ ; "
             "https://mailflowauthority.com/list-hygiene/email-list-decay-rate",
}

# random streams, each seeded with [seed, stream]: independent of the original generator's draws
KNOB_STREAM, POPULATION_STREAM, BEHAVIOUR_STREAM = 1301, 1302, 1303

# link-scanning gateways: name, published networks (base, host bits)
GATEWAYS = (
    ("defender", ((0x285C0000, 17), (0x286B0000, 16), (0x34640000, 18), (0x682F0000, 15))),
    # 40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17 (Exchange Online Protection)
    ("mimecast", ((0xCD8B6E00, 8), (0xCFD31E00, 8), (0xD8CD1800, 8), (0x5BDC2A00, 8))),
    # 205.139.110.0/24, 207.211.30.0/24, 216.205.24.0/24, 91.220.42.0/24
    ("proofpoint", ((0x43E79000, 12), (0x94A38000, 13))),
    # 67.231.144.0/20, 148.163.128.0/19
    ("barracuda", ((0x40EB9000, 12), (0xD1DE5000, 11))),
    # 64.235.144.0/20, 209.222.80.0/21
)
GATEWAY_NAMES = tuple(name for name, _nets in GATEWAYS)

BASELINE = {
    # population
    "corporate_share": None,        # None: the vocabulary's provider shares (9% company domains)
    "apple_domain_share": None,     # None: the vocabulary's (icloud.com, me.com, mac.com: 10%)
    "apple_mail_other_share": 0.18,
    "mpp_share": 0.9,
    "mpp_load_prob": 0.97,
    "scanner_share": 0.3,           # pixel-only gateway on corporate Outlook readers (no clicks)
    "images_off_prob": 0.1,         # per letter, non-Apple readers
    "open_mean": 0.22,
    "ctor_mean": 0.15,
    "hard_bounce_share": 0.02,
    "unsub_per_open": 0.012,
    "complaint_share": 0.15,
    "dormant_share": 0.0,
    "dead_before_period_share": 0.0,
    "desktop_share_corporate": 0.0,
    "desktop_share_freemail": 0.0,
    "thunderbird_share": 0.0,
    "images_blocked_outlook": 0.0,
    "images_blocked_thunderbird": 0.0,
    "images_enable_per_letter": 0.0,
    # Apple's prefetch: a fast component (exponential, seconds) and a slow one (lognormal, hours)
    "mpp_fast_share": 0.8,
    "mpp_fast_mean_s": 240.0,
    "mpp_slow_median_h": 2.0,
    "mpp_slow_sigma": 1.0,
    "mpp_overnight_share": 0.0,     # of the slow prefetches: at the next night (01:00-06:00), charging
    # link-scanning gateways
    "gateway_domain_share": 0.0,
    "gateway_act_prob": 0.0,
    "gateway_delay_sigma": 1.0,
    "gateway_link_gap_s": 1.0,
    **{f"{g}_weight": 0.0 for g in GATEWAY_NAMES},
    **{f"{g}_pixel_prob": 0.0 for g in GATEWAY_NAMES},
    **{f"{g}_delay_median_s": 30.0 for g in GATEWAY_NAMES},
}
"""Every knob with the original generator's value: a world draws some of them, the rest keep these."""

CONFIG_KNOBS = ("apple_mail_other_share", "mpp_share", "mpp_load_prob", "scanner_share", "images_off_prob",
                "hard_bounce_share", "unsub_per_open", "complaint_share")
"""Knobs that are DemoConfig fields of the same name."""


@dataclass(frozen=True)
class WorldSpec:
    name: str
    summary: str
    ranges: dict          # knob -> (low, high); low == high: a fixed override
    sources: tuple


WORLDS = {spec.name: spec for spec in (
    WorldSpec("baseline", "The original demo: a B2C shop list; Apple MPP prefetches mostly within minutes of "
              "delivery; a pixel-only gateway on part of the corporate Outlook readers; no machine clicks.",
              {}, ("mpp", "litmus")),
    WorldSpec("b2b_gateways", "A B2B list, mostly company domains, many behind link-scanning security gateways "
              "(Microsoft Defender Safe Links, Mimecast, Proofpoint, Barracuda) that click every tracked link of "
              "every letter 5 s to minutes after delivery, within seconds of each other; some load the pixel "
              "first, some click without it (the click then writes the read row).",
              {"corporate_share": (0.6, 0.8), "scanner_share": (0.0, 0.0),
               "gateway_domain_share": (0.05, 0.3), "gateway_act_prob": (0.85, 1.0),
               "gateway_delay_sigma": (0.8, 1.3), "gateway_link_gap_s": (0.5, 3.0),
               "defender_weight": (1.5, 3.0), "mimecast_weight": (0.5, 1.5),
               "proofpoint_weight": (0.5, 1.5), "barracuda_weight": (0.3, 1.0),
               "defender_pixel_prob": (0.0, 0.25), "mimecast_pixel_prob": (0.7, 1.0),
               "proofpoint_pixel_prob": (0.6, 1.0), "barracuda_pixel_prob": (0.0, 0.35),
               "defender_delay_median_s": (10.0, 40.0), "mimecast_delay_median_s": (20.0, 90.0),
               "proofpoint_delay_median_s": (15.0, 60.0), "barracuda_delay_median_s": (8.0, 30.0)},
              ("scanners", "arternal", "safelinks", "ranges")),
    WorldSpec("images_off", "Many desktop readers (Outlook desktop, Thunderbird) who keep remote images "
              "blocked, as both clients do by default: they read and click without a pixel load, so a read row "
              "exists only when they click (Bitrix writes one for a click without an earlier read).",
              {"corporate_share": (0.3, 0.5), "scanner_share": (0.0, 0.0),
               "desktop_share_corporate": (0.5, 0.8), "desktop_share_freemail": (0.08, 0.2),
               "thunderbird_share": (0.15, 0.35), "images_blocked_outlook": (0.6, 0.9),
               "images_blocked_thunderbird": (0.75, 0.95), "images_enable_per_letter": (0.05, 0.25),
               "images_off_prob": (0.03, 0.1)},
              ("outlook", "thunderbird")),
    WorldSpec("apple_late", "An Apple-heavy list whose Mail Privacy Protection prefetches come hours after "
              "delivery, when devices wake, are on Wi-Fi or charge overnight, not near delivery.",
              {"apple_domain_share": (0.25, 0.4), "apple_mail_other_share": (0.3, 0.5),
               "mpp_share": (0.85, 0.97), "mpp_load_prob": (0.93, 0.99), "mpp_fast_share": (0.05, 0.25),
               "mpp_slow_median_h": (3.0, 9.0), "mpp_slow_sigma": (0.7, 1.2),
               "mpp_overnight_share": (0.2, 0.45)},
              ("mpp", "mpp_late", "litmus")),
    WorldSpec("cold", "A cold list (old, bought or rarely mailed): low open and click propensities, many "
              "dormant contacts who never open, many mailboxes already dead, more unsubscribes and complaints.",
              {"open_mean": (0.04, 0.10), "ctor_mean": (0.05, 0.10), "dormant_share": (0.3, 0.55),
               "hard_bounce_share": (0.05, 0.10), "dead_before_period_share": (0.5, 0.9),
               "unsub_per_open": (0.02, 0.04), "complaint_share": (0.15, 0.3)},
              ("benchmarks", "decay")),
)}


@dataclass(frozen=True)
class World:
    """A world with its knobs drawn for one seed."""

    spec: WorldSpec
    knobs: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_baseline(self) -> bool:
        return not self.spec.ranges

    def __getitem__(self, knob: str):
        return self.knobs[knob]

    def configure(self, cfg: DemoConfig) -> DemoConfig:
        """The DemoConfig with this world's knobs; the baseline's is returned untouched."""
        if self.is_baseline:
            return cfg
        k = self.knobs
        cfg = replace(cfg, **{name: k[name] for name in CONFIG_KNOBS})
        for mean, beta in (("open_mean", "open_beta"), ("ctor_mean", "ctor_beta")):
            if mean in self.spec.ranges:   # same Beta shape a, mean moved: b = a (1 - mean) / mean
                a = getattr(cfg, beta)[0]
                cfg = replace(cfg, **{mean: k[mean], beta: (a, a * (1 - k[mean]) / k[mean])})
        return cfg

    def provider_weights(self) -> list[float]:
        """Draw weights of vocab.PROVIDER_DOMAINS, then company domains (last)."""
        shares = [s for _d, _p, s in vocab.PROVIDER_DOMAINS]
        corp, apple = self.knobs["corporate_share"], self.knobs["apple_domain_share"]
        if corp is None and apple is None:
            return shares + [max(0.0, 1 - sum(shares))]
        corp = max(0.0, 1 - sum(shares)) if corp is None else corp
        is_apple = [p == "apple" for _d, p, _s in vocab.PROVIDER_DOMAINS]
        apple_sum = sum(s for s, a in zip(shares, is_apple) if a)
        other_sum = sum(s for s, a in zip(shares, is_apple) if not a)
        apple = apple_sum * (1 - corp) / (apple_sum + other_sum) if apple is None else apple
        rest = 1 - corp - apple
        return [s * (apple / apple_sum if a else rest / other_sum) for s, a in zip(shares, is_apple)] + [corp]

    def truth(self) -> dict:
        return {
            "name": self.name,
            "summary": self.spec.summary,
            "knobs": dict(self.knobs),
            "drawn": {k: list(v) for k, v in self.spec.ranges.items() if v[0] != v[1]},
            "fixed": {k: v[0] for k, v in self.spec.ranges.items() if v[0] == v[1]},
            "sources": {key: SOURCES[key] for key in self.spec.sources},
        }


def draw_world(name: str, seed: int) -> World:
    """The world ``name`` with its knobs drawn for ``seed`` (uniform in each range, 4 significant digits)."""
    if name not in WORLDS:
        raise ValueError(f"world must be one of {tuple(WORLDS)}, not {name!r}")
    spec = WORLDS[name]
    rng = np.random.default_rng([seed, KNOB_STREAM, list(WORLDS).index(name)])
    knobs = dict(BASELINE)
    for knob, (low, high) in spec.ranges.items():
        if knob not in BASELINE:
            raise ValueError(f"world {name}: unknown knob {knob}")
        knobs[knob] = low if low == high else float(f"{low + (high - low) * rng.random():.4g}")
    return World(spec=spec, knobs=knobs)


def gateway_ips(rng: np.random.Generator, vendor: np.ndarray) -> np.ndarray:
    """One address per hit from the networks of its gateway (index into GATEWAYS)."""
    out = np.zeros(len(vendor), dtype=np.uint32)
    for g, (_name, nets) in enumerate(GATEWAYS):
        rows = np.flatnonzero(vendor == g)
        net = rng.integers(0, len(nets), len(rows))
        base = np.array([b for b, _bits in nets], dtype=np.int64)[net]
        size = np.array([1 << bits for _b, bits in nets], dtype=np.int64)[net]
        out[rows] = (base + 1 + (rng.random(len(rows)) * (size - 2)).astype(np.int64)).astype(np.uint32)
    return out


FREEMAIL_PROVIDERS = ("gmail", "mailru", "yandex", "microsoft", "yahoo", "rambler")


def shape_population(pop: Population, world: World, seed: int) -> None:
    """Apply the world's reading habits, gateways and dormancy to a built population (in place).

    The baseline is left untouched. Draws come from the world's own population stream, always in
    the same order, so a knob at zero changes nothing else.
    """
    if world.is_baseline:
        return
    k = world.knobs
    rng = np.random.default_rng([seed, POPULATION_STREAM])
    n = pop.size
    corp = pop.provider == vocab.CORPORATE_PROVIDER
    freemail = np.isin(pop.provider, FREEMAIL_PROVIDERS)

    # desktop readers: Outlook desktop or Thunderbird, on company mail and (via IMAP) on freemail
    share = np.where(corp, k["desktop_share_corporate"], np.where(freemail, k["desktop_share_freemail"], 0.0))
    desktop = (pop.client != APPLE) & (rng.random(n) < share)
    thunderbird = desktop & (rng.random(n) < k["thunderbird_share"])
    outlook = desktop & ~thunderbird
    pop.client[outlook], pop.human_ua[outlook] = OUTLOOK, OUTLOOK_DESKTOP_UA
    pop.client[thunderbird], pop.human_ua[thunderbird] = OTHER, THUNDERBIRD_UA

    # who keeps remote images blocked (both clients' default): reads without a pixel, unless they
    # download the pictures of that one letter
    blocked = (((pop.human_ua == OUTLOOK_DESKTOP_UA) & (rng.random(n) < k["images_blocked_outlook"]))
               | ((pop.human_ua == THUNDERBIRD_UA) & (rng.random(n) < k["images_blocked_thunderbird"])))
    pop.images_off_q[blocked] = 1.0 - k["images_enable_per_letter"]

    # link-scanning gateways: one per company domain, or none
    domains = corporate_domains()
    weights = np.array([k[f"{g}_weight"] for g in GATEWAY_NAMES], dtype=float)
    behind = rng.random(len(domains)) < k["gateway_domain_share"]
    vendor = rng.choice(len(GATEWAYS), size=len(domains), p=weights / weights.sum() if weights.sum() else None)
    of_domain = dict(zip(domains, np.where(behind, vendor, -1).tolist()))
    pop.gateway[:] = [of_domain.get(code.rpartition("@")[2], -1) if is_corp else -1
                      for code, is_corp in zip(pop.code.tolist(), corp.tolist())]

    # dormant contacts never open; dead mailboxes of a cold list died before the first letter
    pop.open_p[rng.random(n) < k["dormant_share"]] = 0.0
    early = (pop.category == HARD) & (rng.random(n) < k["dead_before_period_share"])
    pop.dead_ts[early] = START_TS - rng.integers(30 * DAY, 400 * DAY, int(early.sum()))
