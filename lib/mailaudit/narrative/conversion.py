"""Wording of the conversion report: key figures, findings (rule, sentence, fix), headline, table labels.
The numbers come from `analyses.conversion`."""
from __future__ import annotations

import pandas as pd

from mailaudit.narrative.common import Finding, count, interval, money, of, pct, ranked, severity_by_share, times


def _purchases(source: str) -> str:
    return "orders" if source == "orders" else "won deals"


def key_figures(figures: dict, currency: str | None = None) -> list[tuple[str, str]]:
    """The report's key numbers, each with what it counts."""
    if not figures.get("delivered"):
        return [("Delivered sends", "none in the period")]
    w = figures["windows"]
    ci = figures.get("conversion_rate_ci") or [None, None]
    items = [
        ("Delivered sends", count(figures["delivered"])),
        (f"Sends credited with a purchase (click {w['click_days']} d, open {w['open_days']} d)",
         f"{of(figures['converted'], figures['delivered'])}; 95% interval {interval(*ci)}"),
        ("Revenue credited to e-mail", money(figures["revenue"], currency)),
        ("Revenue per delivered send", money(figures["revenue_per_recipient"], currency)),
    ]
    click = figures.get("click_only") or {}
    if click:
        items.append(("Credited on clicks alone (machine opens cannot earn credit)",
                      f"{count(click.get('converted'))} sends, {money(click.get('revenue'), currency)}"))
    base = figures.get("baseline") or {}
    if base.get("lift") is not None:
        items.append((f"Mailed ÷ comparable not-mailed contacts buying within {base['window_days']} days",
                      f"{times(base['lift'])} (95% interval {interval(*(base.get('lift_ci') or [None, None]), formatter=times)})"))
    if figures.get("incremental_revenue") is not None:
        low, high = figures.get("incremental_revenue_ci") or [None, None]
        items.append(("Incremental revenue: credited revenue the not-mailed baseline does not explain",
                      f"{money(figures['incremental_revenue'], currency)} (95% interval "
                      f"{interval(low, high, formatter=lambda x: money(x, currency))})"))
    km = figures.get("time_to_order") or {}
    if km.get("median_days") is not None:
        items.append(("Median time from a send to the next purchase", f"{km['median_days']:.1f} days"))
    elif km:
        items.append(("Sends followed by a purchase within 30 days", pct(km.get("ordered_within_30_days"))))
    return items


def headline(figures: dict, currency: str | None = None) -> str:
    if not figures.get("delivered"):
        return "No delivered sends in the period: conversion cannot be measured"
    w = figures["windows"]
    return (f"{pct(figures['conversion_rate'])} of delivered sends led to a purchase "
            f"({of(figures['converted'], figures['delivered']).split(' (')[0]}, click {w['click_days']} d / "
            f"open {w['open_days']} d); revenue credited {money(figures['revenue'], currency)}, "
            f"{money(figures['revenue_per_recipient'], currency)} per delivered send")


def findings(figures: dict, followup_days: int, currency: str | None = None) -> list[Finding]:
    """What the conversion figures ask a marketer to do, most severe first."""
    out: list[Finding] = []
    source = figures.get("source") or "orders"
    base = figures.get("baseline") or {}
    if base.get("lift") is not None:
        low, high = base.get("lift_ci") or [None, None]
        if low is not None and low <= 1 <= high:
            out.append(Finding(
                "medium", "No measurable lift over comparable contacts who were not mailed",
                f"mailed contacts bought {times(base['lift'])} as often as comparable ones (interval "
                f"{interval(low, high, times)}), which includes no difference at all",
                fix="test it: hold out a random 10% of each mailing's audience for a month and compare purchases",
                key="baseline_lift",
                extra={"stake": f"credited revenue {money(figures.get('revenue'), currency)} may not be caused by the mailings",
                       "evidence": "tables/conversion_baseline.csv"}))
        elif base["lift"] > 1:
            extra = 1 - 1 / base["lift"]
            out.append(Finding(
                "low" if extra < 0.25 else "info",
                f"About {pct(extra)} of the mailed contacts' purchases are extra",
                f"mailed contacts bought {times(base['lift'])} as often as comparable contacts who were not "
                f"mailed (interval {interval(low, high, times)}); the rest would probably have happened anyway, "
                "so the credited revenue overstates what e-mail caused",
                fix="judge mailings on the extra purchases, and confirm with a random hold-out group",
                key="baseline_lift"))
    revenue = figures.get("revenue") or 0
    click = figures.get("click_only") or {}
    if revenue and click.get("revenue") is not None:
        opens_only = revenue - click["revenue"]
        share = opens_only / revenue
        if share > 0:
            out.append(Finding(
                "medium" if share >= 0.25 else "low",
                "Part of the credited revenue rests on an open alone",
                f"{money(opens_only, currency)} of {money(revenue, currency)} ({pct(share)}) is credited to letters "
                "that were opened but not clicked; Apple's privacy protection opens letters by machine, so that part "
                "is the least certain",
                fix="compare mailings on the click-only revenue, which machine opens cannot earn", key="open_credit"))
    linking = figures.get("linking") or {}
    qualifying = linking.get("qualifying")
    unlinked = (qualifying - linking["linked"]) if qualifying is not None and linking.get("linked") is not None else None
    if unlinked:
        out.append(Finding(
            severity_by_share(unlinked, qualifying, ceiling="medium"),
            f"{_purchases(source).capitalize()} that reach no mailing contact",
            f"{of(unlinked, qualifying)} {_purchases(source)} cannot be credited to any letter: the buyer's address "
            "or site account is not among the mailing contacts",
            fix="ask for the e-mail address at checkout and link orders to CRM contacts, so more purchases can be "
                "traced", count=unlinked, denominator=qualifying, key="unlinked",
            extra={"unit": _purchases(source), "evidence": "tables/conversion_linking.csv"}))
    follow = figures.get("followup") or {}
    if follow.get("engaged"):
        n, total = follow["without_followup"], follow["engaged"]
        out.append(Finding(
            severity_by_share(n, total, ceiling="medium"),
            f"Openers and clickers nobody followed up within {followup_days} days",
            f"{of(n, total)} recipients who opened or clicked had no CRM activity, deal or order afterwards",
            fix=f"set up a trigger: a task for the sales team or a follow-up letter {followup_days} days after an "
                "open or click without a response", count=n, denominator=total, key="followup",
            extra={"unit": "engaged recipients", "evidence": "tables/conversion_followup.csv"}))
    return ranked(out)


LINKING = {
    "orders": ("Orders", "every order of the store"),
    "cancelled": ("Cancelled", "not counted"),
    "qualifying": ("Counted", "orders not cancelled"),
    "won deals": ("Won deals", "every deal won in the CRM"),
    "linked": ("Linked to a mailing contact", "the buyer is a contact the mailings reach"),
    "linked via CRM contact e-mail": ("… through the CRM contact's e-mail", "the order's CRM contact has the address"),
    "linked via USER_ID": ("… through the buyer's site account", "the site user is a mailing contact"),
    "unlinked: no CRM contact and no user": ("Not linked: no buyer named", "the order names no CRM contact and no site user"),
    "unlinked: no CRM contact": ("Not linked: no buyer named", "the deal names no contact"),
    "unlinked: CRM contact without e-mail": ("Not linked: buyer without e-mail", "the buyer's CRM contact has no e-mail address"),
    "unlinked: e-mail / user not a mailing contact": ("Not linked: buyer not a mailing contact",
                                                      "the buyer's e-mail or site account is not among the mailing contacts"),
    "unlinked: e-mail not a mailing contact": ("Not linked: buyer not a mailing contact",
                                               "the contacts' e-mails are not among the mailing contacts"),
}
LINKING_LABELS = {"what": "Purchases", "count": "Count", "detail": "What it means"}


def linking_view(linking: pd.DataFrame) -> pd.DataFrame:
    """The linking table in words, with each row's share of the purchases counted."""
    view = linking.copy()
    view["detail"] = view["what"].map(lambda w: LINKING.get(w, (w, ""))[1])
    view["what"] = view["what"].map(lambda w: LINKING.get(w, (w, ""))[0])
    return view


def linking_total(linking: pd.DataFrame) -> int:
    """The purchases counted (not cancelled): what the other rows are shares of."""
    rows = dict(zip(linking["what"], linking["count"]))
    return int(rows.get("qualifying", rows.get("won deals", 0)) or 0)


def linking_caption(source: str) -> str:
    return f"{_purchases(source).capitalize()} and how they were linked to mailing contacts"


COHORT_LABELS = {"cohort": "Send month", "delivered": "Delivered", "converted": "Sends with a purchase",
                 "revenue": "Revenue credited", "conversion_rate": "Conversion", "revenue_per_recipient":
                 "Revenue per delivered send"}
UTM_LABELS = {"letters": "Letters carrying the tag set", "letter_count": "Letters", "utm_set": "Tag set",
              "entity": "Credited", "currency": "Currency", "count": "Purchases", "revenue": "Revenue"}
UTM_ENTITIES = {"deal": "won deals", "order": "orders"}
FOLLOWUP_LABELS = {"mailing_id": "Campaign no.", "mailing": "Campaign", "engaged": "Opened or clicked",
                   "in_crm": "In the CRM", "without_followup": "Without follow-up",
                   "without_followup_share": "Share without follow-up"}


def utm_view(utm_letters: pd.DataFrame) -> pd.DataFrame:
    view = utm_letters.copy()
    if "entity" in view:
        view["entity"] = view["entity"].map(lambda e: UTM_ENTITIES.get(e, e))
    return view


def utm_line(utm: dict, currency: str | None = None) -> str:
    if utm.get("deals") is None:
        return "This portal keeps no campaign tags on deals, so the tag check is not available."
    return (f"{count(utm['deals'])} won deals of the period came from e-mail by their campaign tags (revenue "
            f"{money(utm['revenue'], currency)}); {count(utm.get('orders'))} orders (revenue "
            f"{money(utm.get('order_revenue'), currency)}). Letters that share one tag set cannot be told apart by "
            "it: they are one row below, with the letters listed; a purchase that matches several sets is credited "
            "once, to the most specific.")


def time_to_order_line(km: dict) -> str:
    parts = []
    if km.get("median_days") is None:
        parts.append("Fewer than half of the sends are followed by a purchase before the data ends, so the median "
                     "time is not reached.")
    else:
        parts.append(f"Median time from a send to the next purchase: {km['median_days']:.1f} days.")
    if km.get("censored_at"):
        parts.append(f"Sends not followed by a purchase count as still waiting at the end of the data "
                     f"({str(km['censored_at'])[:10]}).")
    return " ".join(parts)
