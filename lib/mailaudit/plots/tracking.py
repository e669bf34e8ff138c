"""Charts of the data_and_tracking report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

STATUS_COLOURS = {"sent": "#2a9d8f", "error": "#e76f51", "not sent yet": "#adb5bd",
                  "waiting": "#e9c46a", "denied": "#6c757d", "awaiting consent": "#8ecae6"}


def volume_by_month(by_month: pd.DataFrame, period_label: str):
    """Stacked bars: recipient rows per send month, split by Bitrix recipient status."""
    table = by_month.pivot_table(index="month", columns="status", values="rows", aggfunc="sum", fill_value=0)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    colours = [STATUS_COLOURS.get(s, "#495057") for s in table.columns]
    table.plot.bar(stacked=True, ax=ax, color=colours, width=0.85)
    ax.set_title("Recipient rows per send month, by status", loc="left", fontweight="bold")
    ax.text(0, 1.02, f"b_sender_posting_recipient rows with DATE_SENT in {period_label}",
            transform=ax.transAxes, fontsize=9, color="#555")
    ax.set_xlabel("")
    ax.set_ylabel("recipient rows")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.legend(title="status", frameon=False, bbox_to_anchor=(1, 1), loc="upper left")
    sns.despine(ax=ax)
    fig.tight_layout()
    return fig


def reads_per_recipient(distribution: pd.DataFrame):
    """Bars: how many opening recipients have 1, 2, 3… read rows (pixel loads)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    sns.barplot(data=distribution, x="reads", y="recipients", color="#457b9d", ax=ax)
    ax.set_title("Read rows per opening recipient", loc="left", fontweight="bold")
    ax.text(0, 1.02, "b_sender_posting_read: one row per pixel load, all dates", transform=ax.transAxes,
            fontsize=9, color="#555")
    ax.set_xlabel("read rows of the recipient")
    ax.set_ylabel("recipients")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    sns.despine(ax=ax)
    fig.tight_layout()
    return fig


def utm_completeness(missing_by_code: dict[str, int], letters_sent: int, period_label: str):
    """Bars: letters sent in the period lacking each required UTM parameter."""
    missing = pd.Series(missing_by_code)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh(missing.index, missing.values, color="#e76f51")
    ax.barh(missing.index, letters_sent - missing.values, left=missing.values, color="#dee2e6")
    ax.set_title("Letters lacking each UTM parameter", loc="left", fontweight="bold")
    ax.text(0, 1.04, f"red: letters without it, grey: with it; {letters_sent:,} e-mail letters sent in {period_label}",
            transform=ax.transAxes, fontsize=9, color="#555")
    ax.invert_yaxis()
    ax.set_xlabel("letters")
    sns.despine(ax=ax)
    fig.tight_layout()
    return fig
