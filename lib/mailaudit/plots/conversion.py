"""Charts of the conversion report. Each returns the figure; the notebook displays it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from mailaudit.narrative.common import pct
from mailaudit.narrative.conversion import cohort_label, window_rule
from mailaudit.narrative.language import _, ngettext, number
from mailaudit.plots.common import (
    MUTED,
    PALETTE,
    apply_theme,
    figure,
    finish,
    percent_axis,
    thousands_axis,
)


def _in(text: str, currency: str) -> str:
    """An axis label with the amounts' currency: "attributed revenue (RUB)"."""
    return _("{label} ({currency})").format(label=text, currency=currency) if currency else text


def _amount_axis(ax, axis: str = "y") -> None:
    """Amounts with thousands grouped and, below 100, one decimal (7.5; Russian 7,5)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(
        lambda value, _position: number(value) if abs(value) >= 100 or float(value).is_integer()
        else number(value, 1)))


def cohorts(table: pd.DataFrame, period_label: str, windows: dict, currency: str = ""):
    """Conversion rate per send cohort (Wilson 95% interval) and revenue per recipient (bootstrap 95%), in
    `currency` (the purchases' code; "" when unknown)."""
    apply_theme()
    fig, (left, right) = figure(
        _("Conversion and revenue per recipient by send cohort"),
        _("converted sends ÷ delivered sends (left), attributed revenue ÷ delivered sends (right); "
          "last touch, {rule}; sends in {period}").format(rule=window_rule(windows), period=period_label),
        size=(10, 3.8), ncols=2)
    x = np.arange(len(table))
    for ax, rate, ci, colour in ((left, "conversion_rate", "conversion_rate_ci", PALETTE[0]),
                                 (right, "revenue_per_recipient", "revenue_per_recipient_ci", PALETTE[2])):
        values = table[rate].to_numpy(float)
        lows = np.array([c[0] if c else np.nan for c in table[ci]])
        highs = np.array([c[1] if c else np.nan for c in table[ci]])
        ax.bar(x, values, color=colour, width=0.7)
        # drawn low to high: a percentile bootstrap interval on a small cohort need not contain the estimate
        ax.vlines(x, lows, highs, color="#333333", lw=1)
        ax.set_xticks(x, [cohort_label(c) for c in table["cohort"]], rotation=60, ha="right")
        ax.grid(axis="x", visible=False)
    percent_axis(left, decimals=1)
    _amount_axis(right)
    left.set_ylabel(_("converted ÷ delivered"))
    right.set_ylabel(_in(_("revenue per delivered send"), currency))
    return finish(fig)


def sensitivity(table: pd.DataFrame, period_label: str, currency: str = ""):
    """Attributed revenue (in `currency`) as the attribution window grows from 1 to 30 days: last touch and
    click only."""
    apply_theme()
    fig, ax = figure(
        _("Attributed revenue depends on the window you choose"),
        _("revenue credited to sends in {period}; last touch with click and open windows both x days").format(
            period=period_label),
        size=(8, 3.6))
    ax.plot(table["window_days"], table["last_touch_revenue"], color=PALETTE[0], marker="o", ms=3,
            label=_("last touch (click, else open)"))
    ax.plot(table["window_days"], table["click_only_revenue"], color=PALETTE[1], marker="o", ms=3,
            label=_("click only"))
    ax.set_xlabel(_("attribution window, days"))
    ax.set_ylabel(_in(_("attributed revenue"), currency))
    thousands_axis(ax)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def cumulative(table: pd.DataFrame, period_label: str):
    """Share of delivered sends converted within d days of sending."""
    apply_theme()
    fig, ax = figure(
        _("How soon after the send the purchase comes"),
        _("sends with an attributed purchase within d days ÷ delivered sends; sends in {period}").format(
            period=period_label),
        size=(8, 3.4))
    ax.step(table["days_since_send"], table["cumulative_conversion_rate"], where="post", color=PALETTE[0])
    ax.set_xlabel(_("days since send"))
    ax.set_ylabel(_("converted ÷ delivered"))
    percent_axis(ax, decimals=2)
    ax.set_ylim(bottom=0)
    return finish(fig)


def time_to_order(table: pd.DataFrame, period_label: str, source: str):
    """Kaplan–Meier: share of sends followed by any purchase of the contact within t days."""
    apply_theme()
    if source == "orders":
        title = _("Time from a send to the contact's next order (Kaplan–Meier)")
        subtitle = _("delivered sends in {period} followed by an order (any, not only attributed) within t days "
                     "÷ sends;\nsends without one are censored at the data's end; band = 95% interval")
        axis = _("sends followed by an order")
    else:
        title = _("Time from a send to the contact's next won deal (Kaplan–Meier)")
        subtitle = _("delivered sends in {period} followed by a won deal (any, not only attributed) within t days "
                     "÷ sends;\nsends without one are censored at the data's end; band = 95% interval")
        axis = _("sends followed by a won deal")
    fig, ax = figure(title, subtitle.format(period=period_label), size=(8, 3.6))
    if not table.empty:
        shown = table[table["days"] <= 90]
        ax.step(shown["days"], shown["share_ordered"], where="post", color=PALETTE[0])
        ax.fill_between(shown["days"], shown["ci_low"], shown["ci_high"], step="post", color=PALETTE[0], alpha=0.2)
    ax.set_xlabel(_("days since send"))
    ax.set_ylabel(axis)
    percent_axis(ax, decimals=1)
    ax.set_ylim(bottom=0)
    return finish(fig)


def baseline(figures: dict, period_label: str):
    """Recipients of a posting vs comparable contacts it did not reach: share buying within the window."""
    apply_theme()
    window = figures.get("window_days") or 0
    fig, ax = figure(
        _("Recipients vs comparable contacts a posting did not reach"),
        ngettext("contacts buying within {days} day of a posting ÷ contacts, postings in {period}\nnot mailed: "
                 "re-weighted to the recipients' month × prior purchase × tenure; observational",
                 "contacts buying within {days} days of a posting ÷ contacts, postings in {period}\nnot mailed: "
                 "re-weighted to the recipients' month × prior purchase × tenure; observational",
                 window).format(days=figures.get("window_days"), period=period_label),
        size=(8, 3.2))
    rates = [figures.get("mailed_rate"), figures.get("baseline_rate")]
    labels = [_("recipients"), _("not mailed (matched)")]
    ax.barh(labels, [r if r is not None else np.nan for r in rates], color=[PALETTE[0], MUTED])
    for i, r in enumerate(rates):
        if r is not None:
            ax.text(r, i, " " + pct(r), va="center", fontsize=9)
    ax.invert_yaxis()
    percent_axis(ax, "x", decimals=1)
    return finish(fig)


def followup(table: pd.DataFrame, period_label: str, days: int, top: int = 15):
    """Per mailing: engaged recipients with and without a follow-up within N days."""
    apply_theme()
    shown = table.head(top).iloc[::-1]
    fig, ax = figure(
        _("Openers and clickers nobody followed up"),
        ngettext("delivered sends in {period} that were opened or clicked, per mailing:\nwith / without a CRM "
                 "activity, deal or order within {days} day of the first open or click",
                 "delivered sends in {period} that were opened or clicked, per mailing:\nwith / without a CRM "
                 "activity, deal or order within {days} days of the first open or click", days).format(
            period=period_label, days=days),
        size=(8, 0.35 * len(shown) + 1.6))
    names = shown["mailing"].astype(str).str.slice(0, 40)
    ax.barh(names, shown["engaged"] - shown["without_followup"], color=PALETTE[2], label=_("followed up"))
    ax.barh(names, shown["without_followup"], left=shown["engaged"] - shown["without_followup"],
            color=PALETTE[1], label=_("no follow-up"))
    thousands_axis(ax, "x")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))   # grouped thousands are wide: fewer ticks
    ax.set_xlabel(_("recipients who opened or clicked"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)
