"""E-mail address helpers shared by every analysis: normalising, domain, mailbox provider, masking."""

from __future__ import annotations

import pandas as pd

# Mailbox providers by domain. A label is what a marketer calls the provider.
PROVIDER_DOMAINS: dict[str, tuple[str, ...]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "mail.ru": ("mail.ru", "bk.ru", "list.ru", "inbox.ru", "internet.ru", "mail.ua", "my.com"),
    "yandex": ("yandex.ru", "ya.ru", "yandex.com", "yandex.by", "yandex.kz", "yandex.ua", "narod.ru"),
    "apple": ("icloud.com", "me.com", "mac.com"),
    "microsoft": ("outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.ru", "hotmail.ru"),
    "yahoo": ("yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk"),
    "rambler": ("rambler.ru", "lenta.ru", "autorambler.ru", "myrambler.ru", "ro.ru"),
}
OTHER_PROVIDER = "other"
"""Label of every domain not listed above (corporate and small providers)."""

DOMAIN_PROVIDER: dict[str, str] = {
    domain: provider for provider, domains in PROVIDER_DOMAINS.items() for domain in domains
}


def normalise(address: str | None) -> str | None:
    """Lower-case and trim, as Bitrix stores b_sender_contact.CODE."""
    if address is None:
        return None
    return address.strip().lower()


def domain_of(address: str | None) -> str | None:
    """The part after the last ``@`` (lower-case), or None when there is none."""
    if not address or "@" not in address:
        return None
    return address.rsplit("@", 1)[1].strip().lower() or None


def provider_of_domain(domain: str | None) -> str:
    return DOMAIN_PROVIDER.get((domain or "").lower(), OTHER_PROVIDER)


def domain_series(addresses: pd.Series) -> pd.Series:
    """Vectorised domain_of for a Series of addresses (the whole text when it has no ``@``)."""
    return addresses.astype("string").str.strip().str.lower().str.rsplit("@", n=1).str[-1]


def provider_series(addresses: pd.Series) -> pd.Series:
    """Vectorised provider label for a Series of addresses."""
    return domain_series(addresses).map(DOMAIN_PROVIDER).fillna(OTHER_PROVIDER).astype(object)


def mask(address: str | None) -> str | None:
    """``ivan.petrov@mail.ru`` -> ``i***@mail.ru``: the domain stays readable, the person does not."""
    if address is None:
        return None
    text = str(address).strip()
    if "@" not in text:
        return text[:1] + "***" if text else text
    local, domain = text.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"
