"""Charts of the conversion report. Each returns the figure; the notebook displays it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mailaudit.plots.common import (
    MUTED,
    PALETTE,
    apply_theme,
    figure,
    finish,
    percent_axis,
    thousands_axis,
)


def _in(currency: str) -> str:
    return f" ({currency})" if currency else ""


def cohorts(table: pd.DataFrame, period_label: str, windows: dict, currency: str = ""):
    """Conversion rate per send cohort (Wilson 95% interval) and revenue per recipient (bootstrap 95%), in
    `currency` (the purchases' code; "" when unknown)."""
    apply_theme()
    fig, (left, right) = figure(
        "Conversion and revenue per recipient by send cohort",
        f"converted sends ÷ delivered sends (left), attributed revenue ÷ delivered sends (right); "
        f"last touch, click {windows['click_days']} d / open {windows['open_days']} d; sends in {period_label}",
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
        ax.set_xticks(x, table["cohort"], rotation=60, ha="right")
        ax.grid(axis="x", visible=False)
    percent_axis(left, decimals=1)
    left.set_ylabel("converted ÷ delivered")
    right.set_ylabel("revenue per delivered send" + _in(currency))
    return finish(fig)


def sensitivity(table: pd.DataFrame, period_label: str, currency: str = ""):
    """Attributed revenue (in `currency`) as the attribution window grows from 1 to 30 days: last touch and
    click only."""
    apply_theme()
    fig, ax = figure(
        "Attributed revenue depends on the window you choose",
        f"revenue credited to sends in {period_label}; last touch with click and open windows both x days",
        size=(8, 3.6))
    ax.plot(table["window_days"], table["last_touch_revenue"], color=PALETTE[0], marker="o", ms=3,
            label="last touch (click, else open)")
    ax.plot(table["window_days"], table["click_only_revenue"], color=PALETTE[1], marker="o", ms=3,
            label="click only")
    ax.set_xlabel("attribution window, days")
    ax.set_ylabel("attributed revenue" + _in(currency))
    thousands_axis(ax)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def cumulative(table: pd.DataFrame, period_label: str):
    """Share of delivered sends converted within d days of sending."""
    apply_theme()
    fig, ax = figure(
        "How soon after the send the purchase comes",
        f"sends with an attributed purchase within d days ÷ delivered sends; sends in {period_label}",
        size=(8, 3.4))
    ax.step(table["days_since_send"], table["cumulative_conversion_rate"], where="post", color=PALETTE[0])
    ax.set_xlabel("days since send")
    ax.set_ylabel("converted ÷ delivered")
    percent_axis(ax, decimals=2)
    ax.set_ylim(bottom=0)
    return finish(fig)


def time_to_order(table: pd.DataFrame, period_label: str, source: str):
    """Kaplan–Meier: share of sends followed by any purchase of the contact within t days."""
    apply_theme()
    what = "order" if source == "orders" else "won deal"
    article = "an" if what == "order" else "a"
    fig, ax = figure(
        f"Time from a send to the contact's next {what} (Kaplan–Meier)",
        f"delivered sends in {period_label} followed by {article} {what} (any, not only attributed) within t days "
        f"÷ sends;\nsends without one are censored at the data's end; band = 95% interval",
        size=(8, 3.6))
    if not table.empty:
        shown = table[table["days"] <= 90]
        ax.step(shown["days"], shown["share_ordered"], where="post", color=PALETTE[0])
        ax.fill_between(shown["days"], shown["ci_low"], shown["ci_high"], step="post", color=PALETTE[0], alpha=0.2)
    ax.set_xlabel("days since send")
    ax.set_ylabel(f"sends followed by a {what}")
    percent_axis(ax, decimals=1)
    ax.set_ylim(bottom=0)
    return finish(fig)


def baseline(figures: dict, period_label: str):
    """Recipients of a posting vs comparable contacts it did not reach: share buying within the window."""
    apply_theme()
    fig, ax = figure(
        "Recipients vs comparable contacts a posting did not reach",
        f"contacts buying within {figures.get('window_days')} days of a posting ÷ contacts, postings in "
        f"{period_label}\nnot mailed: re-weighted to the recipients' month × prior purchase × tenure; observational",
        size=(8, 3.2))
    rates = [figures.get("mailed_rate"), figures.get("baseline_rate")]
    labels = ["recipients", "not mailed (matched)"]
    ax.barh(labels, [r if r is not None else np.nan for r in rates], color=[PALETTE[0], MUTED])
    for i, r in enumerate(rates):
        if r is not None:
            ax.text(r, i, f" {r:.2%}", va="center", fontsize=9)
    ax.invert_yaxis()
    percent_axis(ax, "x", decimals=1)
    return finish(fig)


def followup(table: pd.DataFrame, period_label: str, days: int, top: int = 15):
    """Per mailing: engaged recipients with and without a follow-up within N days."""
    apply_theme()
    shown = table.head(top).iloc[::-1]
    fig, ax = figure(
        "Openers and clickers nobody followed up",
        f"delivered sends in {period_label} that were opened or clicked, per mailing:\nwith / without a CRM "
        f"activity, deal or order within {days} days of the first open or click",
        size=(8, 0.35 * len(shown) + 1.6))
    names = shown["mailing"].astype(str).str.slice(0, 40)
    ax.barh(names, shown["engaged"] - shown["without_followup"], color=PALETTE[2], label="followed up")
    ax.barh(names, shown["without_followup"], left=shown["engaged"] - shown["without_followup"],
            color=PALETTE[1], label="no follow-up")
    thousands_axis(ax, "x")
    ax.set_xlabel("engaged recipients")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)
