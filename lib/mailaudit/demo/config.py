"""The demo's fixed calendar and the knobs of its behaviour model (rates, propensities, planted counts).

Times inside the generator are int64 seconds since 1970-01-01 of the portal's naive local time
(Europe/Moscow, UTC+3, as Bitrix stores DATETIME); nothing depends on today's date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

PERIOD_START = date(2025, 10, 1)
PERIOD_END = date(2026, 9, 30)
"""The demo period (params/demo.yaml): every campaign send lies inside it."""

TZ_OFFSET = "+0300"
"""The portal's local time zone, written into access-log stamps."""

DAY = 86_400
HOUR = 3_600
MINUTE = 60


def epoch(value: date | datetime) -> int:
    """Seconds since the epoch of a naive local date or datetime."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return int((value - datetime(1970, 1, 1)).total_seconds())


START_TS = epoch(PERIOD_START)
END_EXCLUSIVE_TS = epoch(datetime(2026, 10, 1))
"""The data snapshot: no event at or after this instant exists (the database was copied then)."""


@dataclass(frozen=True)
class HygieneParams:
    soft_bounce_streak: int = 3
    unsub_grace_hours: int = 48
    inactive_months: int = 6
    inactive_min_sends: int = 5


@dataclass(frozen=True)
class ConversionParams:
    open_window_days: int = 5
    click_window_days: int = 30
    cohort: str = "month"


@dataclass(frozen=True)
class DemoConfig:
    """Everything that shapes a demo build. Rates are fractions of contacts unless named otherwise."""

    contacts: int = 20_000
    seed: int = 1
    layout: str = "current"
    world: str = "baseline"
    """Behaviour profile (mailaudit.demo.worlds); its knobs replace the rates below."""
    realistic_nulls: bool = False
    """NULL, empty and whitespace values where real portals have them (mailaudit.demo.nulls)."""
    heterogeneity: bool = True
    """Per-contact Beta open/click propensities (many near zero, a few near one); off = all equal."""

    # planted address problems (disjoint categories)
    invalid_share: float = 0.004
    typo_share: float = 0.006
    disposable_share: float = 0.005
    role_share: float = 0.008
    duplicate_share: float = 0.008
    hard_bounce_share: float = 0.02
    soft_bounce_share: float = 0.006
    soft_recovering_share: float = 0.35
    """Of the mailbox-full contacts, those whose mailbox is emptied after two bounces (near misses)."""
    auto_blacklist_share: float = 0.75
    """Of the hard-bounced addresses, those Bitrix put on b_main_mail_blacklist (then stops mailing)."""

    # behaviour
    open_mean: float = 0.22
    open_beta: tuple[float, float] = (0.35, 1.24)
    ctor_mean: float = 0.15
    ctor_beta: tuple[float, float] = (0.6, 3.4)
    apple_mail_other_share: float = 0.18
    """Share of non-Apple-domain addresses read in Apple Mail (iPhone users on gmail, mail.ru…)."""
    mpp_share: float = 0.9
    """Of Apple Mail users, those with Mail Privacy Protection on."""
    mpp_load_prob: float = 0.97
    scanner_share: float = 0.3
    """Of corporate-domain Outlook readers, those behind a security gateway that fetches the pixel."""
    images_off_prob: float = 0.1
    unsub_per_open: float = 0.012
    complaint_share: float = 0.15
    violation_share: float = 0.5
    """Of the unsubscribers of the news campaign, those it keeps mailing (list re-import)."""
    deferral_prob: float = 0.03
    crm_share: float = 0.85
    user_share: float = 0.35
    buyer_share: float = 0.12
    crm_mirror_share: float = 0.6
    """Of the unsubscribed/blacklisted contacts with a CRM contact, those mirrored into the CRM exclusion list or blacklist."""

    # commerce
    baseline_orders_per_year: float = 1.2
    order_after_click_prob: float = 0.12
    order_after_open_prob: float = 0.03
    cancel_prob: float = 0.08

    hygiene: HygieneParams = field(default_factory=HygieneParams)
    conversion: ConversionParams = field(default_factory=ConversionParams)

    def planted(self, share: float, minimum: int = 3) -> int:
        """How many contacts a planted category gets: the share of contacts, at least ``minimum``."""
        return max(minimum, int(round(self.contacts * share)))
