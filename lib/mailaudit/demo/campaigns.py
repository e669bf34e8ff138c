"""A year of campaigns: mailings, letters with their HTML and UTM sets, and the posting schedule with audiences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from mailaudit.demo import vocab
from mailaudit.demo.config import DAY, HOUR, MINUTE, START_TS, epoch

STRONG_CAMPAIGNS = ("blackfriday", "seasonal", "webinars")
"""Letters people want: mailed mostly to the webinar list (the mix effect), with higher appeal."""
VIOLATION_CAMPAIGN = "news"
"""The campaign whose list is re-imported: it keeps mailing people who unsubscribed from it."""
CAMPAIGN_PLAN = (["news"] * 14 + ["promo"] * 10 + ["catalog"] * 8 + ["corporate"] * 4 + ["winback"] * 4
                 + ["seasonal"] * 3 + ["webinars"] * 5)
"""The 48 letters besides the two Black Friday ones (placed on fixed dates)."""
BLOCK_POSTINGS = {"microsoft": ((11, 12), 0.4), "gmail": ((29,), 0.1), "yahoo": ((19, 20), 0.4)}
"""Sender-reputation blocks: posting indices hit, and the share of that provider's sends blocked."""
MISSING_UTM = {"utm_campaign": (3, 9, 17, 33), "utm_medium": (5, 27), "all": (41,)}
"""Letters (by index) whose UTM set lacks a key: LINK_PARAMS written without it."""
FIELD_ONLY_LETTERS = (2, 14, 26, 38, 46)
"""Letters whose chain SUBJECT/MESSAGE are empty: only b_sender_message_field holds them."""


@dataclass
class Posting:
    index: int               # 0-based, chronological
    mailing_id: int
    campaign: str            # campaign code
    chain_id: int
    posting_id: int
    send_ts: int             # DATE_SEND: start of the send run
    subject: str
    list_fraction: np.ndarray  # per vocab.LISTS: share of each list's eligible contacts mailed
    open_appeal: float
    click_appeal: float
    track_click: bool
    utm: dict
    links: tuple


@dataclass
class Campaigns:
    mailings: list[dict]
    chains: list[dict]
    postings: list[Posting]
    sms_postings: list[dict]


def _letter_html(subject: str, links: tuple[str, ...], hard_utm: bool) -> str:
    items = "".join(
        f'<tr><td style="padding:12px"><a href="{url}">{label}</a></td></tr>'
        for url, label in zip(links, ("Перейти в каталог", "Смотреть подборку", "Подробнее", "Корзина"))
    )
    extra = (f'<p><a href="https://{vocab.SHOP_HOST}/sale/?utm_source=email&amp;utm_medium=banner">Баннер</a></p>'
             if hard_utm else "")
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>' + subject + "</title></head>"
        '<body style="font-family:Arial,sans-serif"><table width="600" align="center">'
        f"<tr><td><h1>{subject}</h1></td></tr>{items}</table>{extra}"
        '<p style="font-size:11px">Вы получили это письмо, потому что подписались на рассылку. '
        '<a href="#UNSUBSCRIBE_LINK#">Отписаться</a></p></body></html>'
    )


def build_campaigns(rng: np.random.Generator) -> Campaigns:
    mailings = []
    for i, (name, code, track, _prefix) in enumerate(vocab.CAMPAIGNS, start=1):
        mailings.append({"ID": i, "NAME": name, "code": code, "TRACK_CLICK": track,
                         "DATE_INSERT": START_TS - (90 - 7 * i) * DAY})
    sms_mailing_id = len(mailings) + 1
    mailings.append({"ID": sms_mailing_id, "NAME": vocab.SMS_CAMPAIGN[0], "code": vocab.SMS_CAMPAIGN[1],
                     "TRACK_CLICK": "Y", "DATE_INSERT": START_TS - 100 * DAY})
    by_code = {m["code"]: m for m in mailings}

    # fifty send dates about a week apart, Black Friday letters on fixed dates in late November
    slots = [epoch(date(2025, 10, 2)) + round(k * 7.3 * DAY) for k in range(48)]
    bf = [epoch(date(2025, 11, 24)), epoch(date(2025, 11, 27))]
    plan = list(rng.permutation(np.array(CAMPAIGN_PLAN, dtype=object)))
    dated = sorted([(t, c) for t, c in zip(slots, plan)] + [(t, "blackfriday") for t in bf])
    lists = [code for code, *_ in vocab.LISTS]

    chains, postings = [], []
    counters = {}
    for index, (day_ts, campaign) in enumerate(dated):
        mailing = by_code[campaign]
        counters[campaign] = counters.get(campaign, 0) + 1
        send_ts = day_ts - day_ts % DAY + 10 * HOUR + int(rng.integers(0, 180)) * MINUTE
        month = int(np.datetime64(send_ts, "s").astype("datetime64[M]").astype(int) % 12)
        templates = vocab.SUBJECT_TEMPLATES[campaign]
        subject = templates[(counters[campaign] - 1) % len(templates)].format(
            month=vocab.MONTHS_RU[month], month_gen=vocab.MONTHS_RU_GEN[month], n=counters[campaign])
        strong = campaign in STRONG_CAMPAIGNS
        fraction = np.array([0.3 if code == "site" else 0.9 if code == "webinar" else 0.0 for code in lists]
                            if strong else [0.0 if code == "webinar" else 0.24 for code in lists])
        yyyymm = str(np.datetime64(send_ts, "s").astype("datetime64[M]")).replace("-", "")
        prefix = next(p for _n, c, _t, p in vocab.CAMPAIGNS if c == campaign)
        utm = {"utm_source": "sender", "utm_medium": "email", "utm_campaign": f"{prefix}_{yyyymm}"}
        if index in MISSING_UTM["utm_campaign"]:
            del utm["utm_campaign"]
        if index in MISSING_UTM["utm_medium"]:
            del utm["utm_medium"]
        if index in MISSING_UTM["all"]:
            utm = {}
        links = tuple(f"https://{vocab.SHOP_HOST}{p}" for p in
                      rng.choice(np.array(vocab.LINK_PATHS, dtype=object), 3, replace=False))
        chain_id = index + 1
        html = _letter_html(subject, links, hard_utm=index % 7 == 3)
        field_only = index in FIELD_ONLY_LETTERS
        chains.append({
            "ID": chain_id, "MAILING_ID": mailing["ID"], "POSTING_ID": index + 1, "CREATED_BY": 1,
            "DATE_INSERT": send_ts - 3 * DAY, "STATUS": "Y", "REITERATE": "N", "IS_TRIGGER": "N",
            "LAST_EXECUTED": send_ts, "TITLE": subject, "EMAIL_FROM": vocab.EMAIL_FROM,
            "SUBJECT": "" if field_only else subject, "MESSAGE": "" if field_only else html,
            "TEMPLATE_TYPE": "SITE_TMPL", "TEMPLATE_ID": "bx_sale", "PRIORITY": "",
            "LINK_PARAMS": "&".join(f"{k}={v}" for k, v in utm.items()), "MESSAGE_CODE": "mail",
            "MESSAGE_ID": str(chain_id), "AUTO_SEND_TIME": send_ts, "ERROR_MESSAGE": "", "TIME_SHIFT": 0,
            "html": html, "subject": subject, "utm": utm,
        })
        postings.append(Posting(
            index=index, mailing_id=mailing["ID"], campaign=campaign, chain_id=chain_id,
            posting_id=index + 1, send_ts=send_ts, subject=subject, list_fraction=fraction,
            open_appeal=2.0 if strong else float(rng.uniform(0.8, 1.15)),
            click_appeal=2.0 if strong else float(rng.uniform(0.7, 1.3)),
            track_click=mailing["TRACK_CLICK"] == "Y", utm=utm, links=links,
        ))

    sms_postings = []
    for k, day in enumerate((date(2026, 2, 10), date(2026, 6, 16))):
        send_ts = epoch(day) + 12 * HOUR
        chain_id = len(chains) + 1
        text = "Ваш заказ готов к выдаче. Промокод SMS10 на следующую покупку."
        chains.append({
            "ID": chain_id, "MAILING_ID": sms_mailing_id, "POSTING_ID": len(postings) + k + 1,
            "CREATED_BY": 1, "DATE_INSERT": send_ts - DAY, "STATUS": "Y", "REITERATE": "N",
            "IS_TRIGGER": "N", "LAST_EXECUTED": send_ts, "TITLE": f"SMS {k + 1}", "EMAIL_FROM": "",
            "SUBJECT": "", "MESSAGE": text, "TEMPLATE_TYPE": "", "TEMPLATE_ID": "", "PRIORITY": "",
            "LINK_PARAMS": "", "MESSAGE_CODE": "sms", "MESSAGE_ID": str(chain_id), "AUTO_SEND_TIME": send_ts,
            "ERROR_MESSAGE": "", "TIME_SHIFT": 0, "html": text, "subject": "", "utm": {},
        })
        sms_postings.append({"posting_id": len(postings) + k + 1, "chain_id": chain_id,
                             "mailing_id": sms_mailing_id, "send_ts": send_ts})
    return Campaigns(mailings=mailings, chains=chains, postings=postings, sms_postings=sms_postings)
