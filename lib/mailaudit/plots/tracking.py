"""Charts of the data_and_tracking report."""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from mailaudit.narrative import data_and_tracking as words
from mailaudit.narrative.common import count
from mailaudit.narrative.language import _
from mailaudit.plots.common import MUTED, PALETTE, figure, finish, thousands_axis

STATUS_COLOURS = {"sent": PALETTE[2], "error": PALETTE[1], "not sent yet": MUTED,
                  "waiting": PALETTE[3], "denied": PALETTE[4], "awaiting consent": PALETTE[5]}


def volume_by_month(by_month: pd.DataFrame, period_label: str):
    """Stacked bars: recipient rows per send month, split by Bitrix recipient status."""
    table = by_month.pivot_table(index="month", columns="status", values="rows", aggfunc="sum", fill_value=0)
    fig, ax = figure(_(words.VOLUME_TITLE), _(words.VOLUME_SUBTITLE).format(period=period_label), size=(9, 4))
    colours = [STATUS_COLOURS.get(s, PALETTE[4]) for s in table.columns]
    table.columns = [words.status_word(s) for s in table.columns]
    table.index = [words.month_label(m) for m in table.index]
    table.plot.bar(stacked=True, ax=ax, width=0.85, color=colours)
    ax.set_xlabel("")
    ax.set_ylabel(_(words.VOLUME_AXIS))
    thousands_axis(ax)
    ax.legend(title=_(words.VOLUME_LEGEND), bbox_to_anchor=(1, 1), loc="upper left")
    return finish(fig)


def reads_per_recipient(distribution: pd.DataFrame):
    """Bars: how many opening recipients have 1, 2, 3… read rows (pixel loads)."""
    fig, ax = figure(_(words.READS_TITLE), _(words.READS_SUBTITLE), size=(7, 3.4))
    sns.barplot(data=distribution, x="reads", y="recipients", color=PALETTE[0], ax=ax)
    ax.set_xlabel(_(words.READS_X))
    ax.set_ylabel(_(words.READS_Y))
    thousands_axis(ax)
    return finish(fig)


def utm_completeness(missing_by_code: dict[str, int], letters_sent: int, period_label: str):
    """Bars: letters sent in the period lacking each required UTM parameter (named by its code)."""
    missing = pd.Series(missing_by_code)
    fig, ax = figure(_(words.UTM_TITLE),
                     _(words.UTM_SUBTITLE).format(letters=count(letters_sent), period=period_label),
                     size=(7, 2.8))
    ax.barh(missing.index, missing.values, color=PALETTE[1])
    ax.barh(missing.index, letters_sent - missing.values, left=missing.values, color=MUTED)
    ax.invert_yaxis()
    ax.set_xlabel(_(words.UTM_AXIS))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    thousands_axis(ax, "x")
    return finish(fig)
