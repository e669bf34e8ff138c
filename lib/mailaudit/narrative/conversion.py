"""Wording of the conversion report: key figures, findings (rule, sentence, fix, stake), headline, table
labels, cohort labels. The numbers come from `analyses.conversion`."""
from __future__ import annotations

import pandas as pd

from mailaudit.narrative import language
from mailaudit.narrative.common import Finding, count, interval, money, of, pct, ranked, severity_by_share, times, unit
from mailaudit.narrative.language import N_, N_plural, _, ngettext, number

UNITS = {"orders": N_plural("order", "orders"), "deals": N_plural("won deal", "won deals")}
"""What an unlinked-purchase finding counts, after "12 of 1,000" (see common.unit)."""


def window_rule(windows: dict) -> str:
    """The attribution windows in short: "click 30 d / open 5 d"."""
    return _("click {click} d / open {open} d").format(click=windows["click_days"], open=windows["open_days"])


def currency_label(currencies: list[str]) -> str:
    """What to write beside an amount: the purchases' one currency code, "mixed currencies (RUB, USD)" when
    they hold several (amounts then add them up unconverted), or "" when the data names none."""
    if len(currencies) == 1:
        return currencies[0]
    return _("mixed currencies ({codes})").format(codes=", ".join(currencies)) if currencies else ""


def days(value) -> str:
    """A duration in days with one decimal: "2.5 days" (Russian "2,5 дн.")."""
    return _("{days} days").format(days=number(value, 1))


def cohort_label(label: str) -> str:
    """A cohort as the reader sees it: "2026-01" and "2026-W03" in English (as in the data); in Russian
    the month's short name ("янв. 2026") and "нед. 3, 2026"."""
    if language.active() == language.DEFAULT_LANGUAGE or not isinstance(label, str):
        return label
    try:
        if "-W" in label:
            year, week = label.split("-W")
            return _("week {week}, {year}").format(week=int(week), year=year)
        stamp = pd.Timestamp(label + "-01")
    except ValueError:
        return label
    from babel.dates import format_date

    return format_date(stamp.date(), "LLL yyyy", locale=language.active())


def key_figures(figures: dict, currency: str | None = None) -> list[tuple[str, str]]:
    """The report's key numbers, each with what it counts."""
    if not figures.get("delivered"):
        return [(_("Delivered sends"), _("none in the period"))]
    ci = figures.get("conversion_rate_ci") or [None, None]
    items = [
        (_("Delivered sends"), count(figures["delivered"])),
        (_("Sends credited with a purchase (click {click} d, open {open} d)").format(
            click=figures["windows"]["click_days"], open=figures["windows"]["open_days"]),
         _("{share}; 95% interval {interval}").format(share=of(figures["converted"], figures["delivered"]),
                                                       interval=interval(*ci))),
        (_("Revenue credited to e-mail"), money(figures["revenue"], currency)),
        (_("Revenue per delivered send"), money(figures["revenue_per_recipient"], currency)),
    ]
    click = figures.get("click_only") or {}
    if click:
        n = click.get("converted") or 0
        items.append((_("Credited on clicks alone (machine opens cannot earn credit)"),
                      ngettext("{n} send, {revenue}", "{n} sends, {revenue}", n).format(
                          n=count(n), revenue=money(click.get("revenue"), currency))))
    base = figures.get("baseline") or {}
    if base.get("lift") is not None:
        window = base["window_days"]
        items.append((ngettext("Mailed ÷ comparable not-mailed contacts buying within {days} day",
                               "Mailed ÷ comparable not-mailed contacts buying within {days} days",
                               window).format(days=window),
                      _("{value} (95% interval {interval})").format(
                          value=times(base["lift"]),
                          interval=interval(*(base.get("lift_ci") or [None, None]), formatter=times))))
    if figures.get("incremental_revenue") is not None:
        low, high = figures.get("incremental_revenue_ci") or [None, None]
        items.append((_("Incremental revenue: credited revenue the not-mailed baseline does not explain"),
                      _("{value} (95% interval {interval})").format(
                          value=money(figures["incremental_revenue"], currency),
                          interval=interval(low, high, formatter=lambda x: money(x, currency)))))
    km = figures.get("time_to_order") or {}
    if km.get("median_days") is not None:
        items.append((_("Median time from a send to the next purchase"), days(km["median_days"])))
    elif km:
        items.append((_("Sends followed by a purchase within 30 days"), pct(km.get("ordered_within_30_days"))))
    return items


def headline(figures: dict, currency: str | None = None) -> str:
    if not figures.get("delivered"):
        return _("No delivered sends in the period: conversion cannot be measured")
    return _("{rate} of delivered sends led to a purchase ({converted} of {delivered}, {rule}); revenue credited "
             "{revenue}, {per_send} per delivered send").format(
        rate=pct(figures["conversion_rate"]), converted=count(figures["converted"]),
        delivered=count(figures["delivered"]), rule=window_rule(figures["windows"]),
        revenue=money(figures["revenue"], currency), per_send=money(figures["revenue_per_recipient"], currency))


def findings(figures: dict, followup_days: int, currency: str | None = None) -> list[Finding]:
    """What the conversion figures ask a marketer to do, most severe first. Each finding that asks for
    action says what is at stake (money, or purchases and leads) in `extra["stake"]`."""
    out: list[Finding] = []
    source = figures.get("source") or "orders"
    revenue = figures.get("revenue") or 0
    base = figures.get("baseline") or {}
    if base.get("lift") is not None:
        low, high = base.get("lift_ci") or [None, None]
        if low is not None and low <= 1 <= high:
            out.append(Finding(
                "medium", _("No measurable lift over comparable contacts who were not mailed"),
                _("mailed contacts bought {lift} as often as comparable ones (interval {interval}), which includes "
                  "no difference at all").format(lift=times(base["lift"]), interval=interval(low, high, times)),
                fix=_("test it: hold out a random 10% of each mailing's audience for a month and compare purchases"),
                key="baseline_lift",
                extra={"stake": _("credited revenue {revenue} may not be caused by the mailings").format(
                           revenue=money(figures.get("revenue"), currency)),
                       "evidence": "tables/conversion_baseline.csv"}))
        elif base["lift"] > 1:
            extra = 1 - 1 / base["lift"]
            incremental = figures.get("incremental_revenue")
            if incremental is not None:
                stake = _("of the credited revenue {revenue}, e-mail probably caused about {incremental}").format(
                    revenue=money(revenue, currency), incremental=money(incremental, currency))
            else:
                stake = _("the credited revenue {revenue} overstates what e-mail caused").format(
                    revenue=money(revenue, currency))
            out.append(Finding(
                "low" if extra < 0.25 else "info",
                _("About {share} of the mailed contacts' purchases are extra").format(share=pct(extra)),
                _("mailed contacts bought {lift} as often as comparable contacts who were not mailed (interval "
                  "{interval}); the rest would probably have happened anyway, so the credited revenue overstates "
                  "what e-mail caused").format(lift=times(base["lift"]), interval=interval(low, high, times)),
                fix=_("judge mailings on the extra purchases, and confirm with a random hold-out group"),
                key="baseline_lift", extra={"stake": stake, "evidence": "tables/conversion_baseline.csv"}))
    click = figures.get("click_only") or {}
    if revenue and click.get("revenue") is not None:
        opens_only = revenue - click["revenue"]
        share = opens_only / revenue
        if share > 0:
            out.append(Finding(
                "medium" if share >= 0.25 else "low",
                _("Part of the credited revenue rests on an open alone"),
                _("{amount} of {revenue} ({share}) is credited to letters that were opened but not clicked; Apple's "
                  "privacy protection opens letters by machine, so that part is the least certain").format(
                    amount=money(opens_only, currency), revenue=money(revenue, currency), share=pct(share)),
                fix=_("compare mailings on the click-only revenue, which machine opens cannot earn"),
                key="open_credit",
                extra={"stake": _("{amount} of the credited revenue rests on an open alone").format(
                    amount=money(opens_only, currency))}))
    linking = figures.get("linking") or {}
    qualifying = linking.get("qualifying")
    unlinked = (qualifying - linking["linked"]) if qualifying is not None and linking.get("linked") is not None else None
    if unlinked:
        if source == "orders":
            title = _("Orders that reach no mailing contact")
            detail = _("{n_of_total} orders cannot be credited to any letter: the buyer's address or site account is "
                       "not among the mailing contacts")
            stake = ngettext("{n} order the mailings may have earned cannot be credited to any letter",
                             "{n} orders the mailings may have earned cannot be credited to any letter", unlinked)
        else:
            title = _("Won deals that reach no mailing contact")
            detail = _("{n_of_total} won deals cannot be credited to any letter: the buyer's address or site account "
                       "is not among the mailing contacts")
            stake = ngettext("{n} won deal the mailings may have earned cannot be credited to any letter",
                             "{n} won deals the mailings may have earned cannot be credited to any letter", unlinked)
        out.append(Finding(
            severity_by_share(unlinked, qualifying, ceiling="medium"), title,
            detail.format(n_of_total=of(unlinked, qualifying)),
            fix=_("ask for the e-mail address at checkout and link orders to CRM contacts, so more purchases can be "
                  "traced"), count=unlinked, denominator=qualifying, key="unlinked",
            extra={"unit": unit(UNITS.get(source, UNITS["orders"]), qualifying), "stake": stake.format(n=count(unlinked)),
                   "evidence": "tables/conversion_linking.csv"}))
    follow = figures.get("followup") or {}
    if follow.get("engaged"):
        n, total = follow["without_followup"], follow["engaged"]
        out.append(Finding(
            severity_by_share(n, total, ceiling="medium"),
            ngettext("Openers and clickers nobody followed up within {days} day",
                     "Openers and clickers nobody followed up within {days} days", followup_days).format(
                days=followup_days),
            _("{n_of_total} recipients who opened or clicked had no CRM activity, deal or order afterwards").format(
                n_of_total=of(n, total)),
            fix=ngettext("set up a trigger: a task for the sales team or a follow-up letter {days} day after an open "
                         "or click without a response",
                         "set up a trigger: a task for the sales team or a follow-up letter {days} days after an open "
                         "or click without a response", followup_days).format(days=followup_days),
            count=n, denominator=total, key="followup",
            extra={"unit": ngettext("engaged recipient", "engaged recipients", total),
                   "stake": ngettext("{n} interested recipient got no follow-up: a warm lead for a sales call or a "
                                     "trigger letter",
                                     "{n} interested recipients got no follow-up: warm leads for a sales call or a "
                                     "trigger letter", n).format(n=count(n)),
                   "evidence": "tables/conversion_followup.csv"}))
    return ranked(out)


LINKING = {
    "orders": (N_("Orders"), N_("every order of the store")),
    "cancelled": (N_("Cancelled"), N_("not counted")),
    "qualifying": (N_("Counted"), N_("orders not cancelled")),
    "won deals": (N_("Won deals"), N_("every deal won in the CRM")),
    "linked": (N_("Linked to a mailing contact"), N_("the buyer is a contact the mailings reach")),
    "linked via CRM contact e-mail": (N_("… through the CRM contact's e-mail"),
                                      N_("the order's CRM contact has the address")),
    "linked via USER_ID": (N_("… through the buyer's site account"), N_("the site user is a mailing contact")),
    "unlinked: no CRM contact and no user": (N_("Not linked: no buyer named"),
                                             N_("the order names no CRM contact and no site user")),
    "unlinked: no CRM contact": (N_("Not linked: no buyer named"), N_("the deal names no contact")),
    "unlinked: CRM contact without e-mail": (N_("Not linked: buyer without e-mail"),
                                             N_("the buyer's CRM contact has no e-mail address")),
    "unlinked: e-mail / user not a mailing contact": (N_("Not linked: buyer not a mailing contact"),
                                                      N_("the buyer's e-mail or site account is not among the "
                                                         "mailing contacts")),
    "unlinked: e-mail not a mailing contact": (N_("Not linked: buyer not a mailing contact"),
                                               N_("the contacts' e-mails are not among the mailing contacts")),
}
LINKING_LABELS = {"what": N_("Purchases"), "count": N_("Count"), "detail": N_("What it means")}


def linking_view(linking: pd.DataFrame) -> pd.DataFrame:
    """The linking table in words, with each row's share of the purchases counted."""
    view = linking.copy()
    view["detail"] = view["what"].map(lambda w: _(LINKING[w][1]) if w in LINKING else "")
    view["what"] = view["what"].map(lambda w: _(LINKING[w][0]) if w in LINKING else w)
    return view


def linking_total(linking: pd.DataFrame) -> int:
    """The purchases counted (not cancelled): what the other rows are shares of."""
    rows = dict(zip(linking["what"], linking["count"]))
    return int(rows.get("qualifying", rows.get("won deals", 0)) or 0)


def linking_caption(source: str) -> str:
    if source == "orders":
        return _("Orders and how they were linked to mailing contacts")
    return _("Won deals and how they were linked to mailing contacts")


COHORT_LABELS = {"cohort": N_("Send month"), "delivered": N_("Delivered"), "converted": N_("Sends with a purchase"),
                 "revenue": N_("Revenue credited"), "conversion_rate": N_("Conversion"),
                 "revenue_per_recipient": N_("Revenue per delivered send")}
UTM_LABELS = {"letters": N_("Letters carrying the tag set"), "letter_count": N_("Letters"),
              "utm_set": N_("Tag set"), "entity": N_("Credited"), "currency": N_("Currency"),
              "count": N_("Purchases"), "revenue": N_("Revenue")}
UTM_ENTITIES = {"deal": N_("Won deals"), "order": N_("Orders")}
FOLLOWUP_LABELS = {"mailing_id": N_("Campaign no."), "mailing": N_("Campaign"), "engaged": N_("Opened or clicked"),
                   "in_crm": N_("In the CRM"), "without_followup": N_("Without follow-up"),
                   "without_followup_share": N_("Share without follow-up")}


def cohorts_view(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The cohort table as shown: intervals left out (the charts draw them), cohorts in the reader's format."""
    view = cohorts.drop(columns=["conversion_rate_ci", "revenue_per_recipient_ci"], errors="ignore")
    if "cohort" in view:
        view["cohort"] = view["cohort"].map(cohort_label)
    return view


def cohorts_caption(cohort: str = "month") -> str:
    return _("Send weeks") if cohort == "week" else _("Send months")


def followup_caption() -> str:
    return _("Per campaign: recipients who opened or clicked, and those nobody followed up")


def utm_caption() -> str:
    return _("Tag sets (with the letters carrying each) matched by e-mail-tagged deals and orders")


def utm_view(utm_letters: pd.DataFrame) -> pd.DataFrame:
    view = utm_letters.copy()
    if "entity" in view:
        view["entity"] = view["entity"].map(lambda e: _(UTM_ENTITIES[e]) if e in UTM_ENTITIES else e)
    return view


def utm_line(utm: dict, currency: str | None = None) -> str:
    if utm.get("deals") is None:
        return _("This portal keeps no campaign tags on deals, so the tag check is not available.")
    return _("{deals} won deals of the period came from e-mail by their campaign tags (revenue {deal_revenue}); "
             "{orders} orders (revenue {order_revenue}). Letters that share one tag set cannot be told apart by it: "
             "they are one row below, with the letters listed; a purchase that matches several sets is credited "
             "once, to the most specific.").format(
        deals=count(utm["deals"]), deal_revenue=money(utm["revenue"], currency), orders=count(utm.get("orders")),
        order_revenue=money(utm.get("order_revenue"), currency))


def baseline_missing() -> str:
    return _("Baseline not computed: no contacts without letters in the same windows to compare with.")


def time_to_order_line(km: dict) -> str:
    parts = []
    if km.get("median_days") is None:
        parts.append(_("Fewer than half of the sends are followed by a purchase before the data ends, so the median "
                       "time is not reached."))
    else:
        parts.append(_("Median time from a send to the next purchase: {days}.").format(days=days(km["median_days"])))
    if km.get("censored_at"):
        parts.append(_("Sends not followed by a purchase count as still waiting at the end of the data "
                       "({date}).").format(date=language.date(pd.Timestamp(km["censored_at"]))))
    return " ".join(parts)
