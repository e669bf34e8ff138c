"""Address quality without sending a message: syntax, role accounts, disposable and typo domains, duplicates.

- **Syntax**: `email-validator` with DNS off (offline); its message is kept as the reason. A plain
  ASCII address (dot-atom local part, one ``@``) is judged from its domain, validated once per
  distinct domain, and its length: the verdict email-validator gives, at a fraction of the cost.
  :func:`domains_without_mail` adds an optional, cached DNS check of the domains.
- **Role accounts**: the local part (plus tag removed) is an RFC 2142 mailbox name or a common
  role alias, Russian transliterations included (``buh``, ``zakaz``).
- **Disposable**: the domain, or a parent domain, is on the `disposable-email-domains` blocklist.
- **Typo domains** (mailcheck style): not a known real domain, and within edit distance 1 of a
  popular provider's domain (2 for domains of 8+ characters whose length is within one of the
  domain's, unless the domain is a listed disposable service), counting a swap of neighbouring
  letters as one edit: ``gmial.com``, ``yandx.ru``, ``mail.ri``. Only addresses of valid syntax
  are checked for typos (``ivan@mail,ru`` is reported as invalid syntax).
- **One reason per address** where the actions conflict (`ADDRESS_PRECEDENCE`): invalid syntax,
  then typo, then disposable. The blocklist holds typo-squatting domains such as ``gmial.com``
  and ``hotmial.com``; an address there is a typo (correct it), not a throw-away mailbox.
- **Duplicates**: addresses that reach the same mailbox get one canonical form:
  Gmail ignores dots and ``+tags`` in the local part and ``googlemail.com`` is ``gmail.com``;
  Yandex logins treat ``.`` and ``-`` alike, accept ``+tags`` and every Yandex domain
  (yandex.ru, ya.ru, yandex.com/by/kz/ua) reaches the same mailbox; Outlook/Hotmail and iCloud
  accept ``+tags``. Other providers (Mail.ru's bk/list/inbox are separate mailboxes; Yahoo uses
  ``-`` for disposable aliases, not tags) only get lower-casing and trimming.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import DOT_ATOM_TEXT, EMAIL_MAX_LENGTH

from mailaudit.emails import PROVIDER_DOMAINS, domain_of, normalise

ROLE_NAMES = frozenset({
    # RFC 2142
    "info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster", "hostmaster",
    "usenet", "news", "webmaster", "www", "uucp", "ftp",
    # common role aliases
    "admin", "administrator", "root", "sysadmin", "noreply", "no-reply", "no_reply", "donotreply",
    "do-not-reply", "mailer-daemon", "office", "contact", "contacts", "help", "helpdesk", "billing",
    "accounts", "accounting", "finance", "hr", "jobs", "career", "careers", "team", "press", "media",
    "service", "feedback", "enquiries", "inquiries", "hello", "mail", "reception", "secretary",
    "orders", "order", "shop", "store", "newsletter", "subscribe", "unsubscribe", "list", "all",
    "legal", "privacy", "compliance", "it", "dev", "tech", "purchasing", "procurement",
    # Russian offices, transliterated
    "buh", "buhgalter", "buhgalteria", "zakaz", "zakupki", "priemnaya", "ofis", "kadry", "otdel",
    "snab", "tender", "dogovor", "sekretar",
})

TYPO_TARGETS = (
    "gmail.com", "mail.ru", "yandex.ru", "ya.ru", "bk.ru", "list.ru", "inbox.ru", "rambler.ru",
    "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "live.com", "me.com", "yandex.com",
    "googlemail.com", "internet.ru", "ymail.com", "msn.com", "mac.com",
)
"""Popular providers' domains a mistyped domain is compared with (most popular first)."""

REAL_DOMAINS = frozenset(
    {d for domains in PROVIDER_DOMAINS.values() for d in domains} | set(TYPO_TARGETS) | {
        "mail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "aol.com", "inbox.lv", "inbox.lt",
        "proton.me", "protonmail.com", "tut.by", "ukr.net", "i.ua", "meta.ua", "mail.kz", "yahoo.de",
        "yahoo.fr", "yahoo.co.uk", "hotmail.co.uk", "hotmail.fr", "live.ru", "outlook.de", "mail.by",
        "qip.ru", "pochta.ru", "hmail.com", "email.com", "zoho.com", "yandex.by", "yandex.kz",
    })
"""Real mail domains that sit close to a popular one and must not be called typos."""

CANONICAL_GMAIL = "gmail.com"
CANONICAL_YANDEX = "yandex.ru"
_GMAIL = frozenset(PROVIDER_DOMAINS["gmail"])
_YANDEX = frozenset({"yandex.ru", "ya.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua"})
_PLUS_TAGS = frozenset(PROVIDER_DOMAINS["microsoft"]) | frozenset(PROVIDER_DOMAINS["apple"])


ADDRESS_PRECEDENCE = ("invalid_syntax", "typo_domain", "disposable_domain")
"""What is wrong with an address, first that applies wins: an invalid address is fixed first, a typo
domain is corrected (even when the blocklist lists it), only then is a domain judged disposable."""


def syntax_problem(address: str | None) -> str | None:
    """None when `address` is valid e-mail syntax (no DNS), else email-validator's reason."""
    if not address:
        return "empty address"
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


_PLAIN_DOMAIN = re.compile(r"[a-z0-9.-]+\Z")


@lru_cache(maxsize=100_000)
def _domain_problem(domain: str) -> str | None:
    """email-validator's verdict on a plain ASCII domain (the local part cannot change it)."""
    return syntax_problem("a@" + domain)


def _plain_and_valid(address: str, local: str, at: str, domain: str) -> bool:
    """A plain address (one ``@``, an ASCII dot-atom local part, a lower-case ASCII domain) is valid
    exactly when its domain is and it fits the length limit: only the domain needs email-validator."""
    return bool(at and local and "@" not in local and DOT_ATOM_TEXT.match(local) and _PLAIN_DOMAIN.match(domain)
                and len(address) <= EMAIL_MAX_LENGTH and _domain_problem(domain) is None)


def syntax_problems(addresses: list) -> list[str | None]:
    """`syntax_problem` of each address, validating each plain address's domain once (see `_plain_and_valid`)."""
    return [None if isinstance(a, str) and _plain_and_valid(a, *a.rpartition("@")) else syntax_problem(a)
            for a in addresses]


def local_part(address: str) -> str:
    return address.rsplit("@", 1)[0] if "@" in address else address


def is_role_account(address: str | None) -> bool:
    """The local part (without a ``+tag``) is a role mailbox name such as info@, sales@, noreply@."""
    if not address or "@" not in address:
        return False
    return _is_role_local(local_part(normalise(address)))


def _is_role_local(local: str) -> bool:
    return local.split("+", 1)[0] in ROLE_NAMES


@lru_cache(maxsize=100_000)
def is_disposable_domain(domain: str | None) -> bool:
    """The domain or one of its parent domains is on the maintained disposable-domain blocklist."""
    if not domain:
        return False
    labels = domain.lower().split(".")
    return any(".".join(labels[i:]) in DISPOSABLE_DOMAINS for i in range(len(labels) - 1))


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Optimal-string-alignment distance (insert, delete, substitute, swap neighbours), capped at `limit`."""
    if abs(len(a) - len(b)) >= limit:
        return limit
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) >= limit:
            return limit
        previous2, previous = previous, current
    return min(previous[len(b)], limit)


@lru_cache(maxsize=100_000)
def typo_suggestion(domain: str | None) -> str | None:
    """The popular domain that `domain` is most likely a typo of, or None."""
    if not domain or domain in REAL_DOMAINS:
        return None
    best, best_distance = None, 3
    # a real throw-away service (yopmail.com) is two edits from hotmail.com; a typo-squat (gmial.com) is one
    disposable = is_disposable_domain(domain)
    for target in TYPO_TARGETS:
        allowed = 2 if len(target) >= 8 and abs(len(target) - len(domain)) <= 1 and not disposable else 1
        distance = edit_distance(domain, target, limit=allowed + 1)
        if distance <= allowed and distance < best_distance:
            best, best_distance = target, distance
    return best


def canonical_address(address: str | None) -> str | None:
    """The provider-aware form under which two spellings of one mailbox compare equal (see module doc)."""
    address = normalise(address)
    return _canonical(address, *address.rpartition("@")) if address else address


def _canonical(address: str, local: str, at: str, domain: str) -> str:
    """`canonical_address` of a normalised address split at its last ``@``."""
    if not at:
        return address
    if domain in _GMAIL:
        return local.split("+", 1)[0].replace(".", "") + "@" + CANONICAL_GMAIL
    if domain in _YANDEX:
        return local.split("+", 1)[0].replace(".", "-") + "@" + CANONICAL_YANDEX
    if domain in _PLUS_TAGS:
        return local.split("+", 1)[0] + "@" + domain
    return address


CHECK_COLUMNS = ["email", "domain", "syntax_reason", "suggested_domain", "role_account", "disposable_domain",
                 "canonical"]


def _check(raw) -> tuple:
    """One address's facts, in CHECK_COLUMNS order (one pass: the address is normalised and split once)."""
    email = normalise(raw) if isinstance(raw, str) else None
    if not email:
        return email, None, syntax_problem(email), None, False, False, email
    local, at, rest = email.rpartition("@")
    domain = domain_of(email)
    reason = None if _plain_and_valid(email, local, at, rest) else syntax_problem(email)
    # a typo is a deliverable-looking address at the wrong domain; "mail,ru" is a syntax error first
    suggestion = typo_suggestion(domain) if reason is None else None
    return (email, domain, reason, suggestion, bool(at) and _is_role_local(local), is_disposable_domain(domain),
            _canonical(email, local, at, rest))


def check_addresses(addresses: pd.Series) -> pd.DataFrame:
    """One row per address: ``email``, ``domain``, ``invalid_syntax`` + ``syntax_reason``, ``role_account``,
    ``disposable_domain``, ``typo_domain`` + ``suggested_domain``, ``canonical``. Of the reasons in
    `ADDRESS_PRECEDENCE`, an address gets the first that applies only."""
    frame = pd.DataFrame.from_records([_check(a) for a in addresses.tolist()], columns=CHECK_COLUMNS)
    frame = frame.astype({c: object for c in ("email", "domain", "syntax_reason", "suggested_domain", "canonical")})
    frame["invalid_syntax"] = frame["syntax_reason"].notna()
    frame["typo_domain"] = frame["suggested_domain"].notna()
    taken = pd.Series(False, index=frame.index)
    for reason in ADDRESS_PRECEDENCE:
        frame[reason] = frame[reason].astype(bool) & ~taken
        taken |= frame[reason]
    columns = ["email", "domain", "invalid_syntax", "syntax_reason", "role_account", "disposable_domain",
               "typo_domain", "suggested_domain", "canonical"]
    return frame[columns].set_axis(addresses.index)


def domains_without_mail(domains, timeout: float = 5.0, resolver=None) -> dict[str, str]:
    """Optional DNS check: {domain: reason} for domains with no MX/A record or a null MX.

    One lookup per distinct domain through email-validator's caching resolver; `resolver` may be
    given (a dnspython resolver) to share a cache between calls.
    """
    from email_validator import caching_resolver

    resolver = resolver or caching_resolver(timeout=timeout)
    dead = {}
    for domain in sorted({d for d in domains if d}):
        try:
            validate_email(f"postmaster@{domain}", check_deliverability=True, dns_resolver=resolver)
        except EmailNotValidError as exc:
            dead[domain] = str(exc)
    return dead
