"""Charts of the data_and_tracking report."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from mailaudit.plots.common import MUTED, PALETTE, figure, finish, thousands_axis

STATUS_COLOURS = {"sent": PALETTE[2], "error": PALETTE[1], "not sent yet": MUTED,
                  "waiting": PALETTE[3], "denied": PALETTE[4], "awaiting consent": PALETTE[5]}


def volume_by_month(by_month: pd.DataFrame, period_label: str):
    """Stacked bars: recipient rows per send month, split by Bitrix recipient status."""
    table = by_month.pivot_table(index="month", columns="status", values="rows", aggfunc="sum", fill_value=0)
    fig, ax = figure("Recipient rows per send month, by status",
                     f"b_sender_posting_recipient rows with DATE_SENT in {period_label}", size=(9, 4))
    table.plot.bar(stacked=True, ax=ax, width=0.85,
                   color=[STATUS_COLOURS.get(s, PALETTE[4]) for s in table.columns])
    ax.set_xlabel("")
    ax.set_ylabel("recipient rows")
    thousands_axis(ax)
    ax.legend(title="status", bbox_to_anchor=(1, 1), loc="upper left")
    return finish(fig)


def reads_per_recipient(distribution: pd.DataFrame):
    """Bars: how many opening recipients have 1, 2, 3… read rows (pixel loads)."""
    fig, ax = figure("Read rows per opening recipient",
                     "recipients with at least one b_sender_posting_read row (one row per pixel load), all dates",
                     size=(7, 3.4))
    sns.barplot(data=distribution, x="reads", y="recipients", color=PALETTE[0], ax=ax)
    ax.set_xlabel("read rows of the recipient")
    ax.set_ylabel("recipients")
    thousands_axis(ax)
    return finish(fig)


def utm_completeness(missing_by_code: dict[str, int], letters_sent: int, period_label: str):
    """Bars: letters sent in the period lacking each required UTM parameter."""
    missing = pd.Series(missing_by_code)
    fig, ax = figure("Letters lacking each UTM parameter",
                     f"red: letters without it, grey: with it; of {letters_sent:,} e-mail letters "
                     f"sent in {period_label}", size=(7, 2.8))
    ax.barh(missing.index, missing.values, color=PALETTE[1])
    ax.barh(missing.index, letters_sent - missing.values, left=missing.values, color=MUTED)
    ax.invert_yaxis()
    ax.set_xlabel("letters")
    return finish(fig)
