"""Charts of the data_and_tracking report."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from mailaudit.narrative import data_and_tracking as words
from mailaudit.plots.common import MUTED, PALETTE, figure, finish, thousands_axis

STATUS_COLOURS = {"sent": PALETTE[2], "error": PALETTE[1], "not sent yet": MUTED,
                  "waiting": PALETTE[3], "denied": PALETTE[4], "awaiting consent": PALETTE[5]}


def volume_by_month(by_month: pd.DataFrame, period_label: str):
    """Stacked bars: recipient rows per send month, split by Bitrix recipient status."""
    table = by_month.pivot_table(index="month", columns="status", values="rows", aggfunc="sum", fill_value=0)
    fig, ax = figure(words.VOLUME_TITLE, words.VOLUME_SUBTITLE.format(period=period_label), size=(9, 4))
    table.plot.bar(stacked=True, ax=ax, width=0.85,
                   color=[STATUS_COLOURS.get(s, PALETTE[4]) for s in table.columns])
    ax.set_xlabel("")
    ax.set_ylabel("sends")
    thousands_axis(ax)
    ax.legend(title="Bitrix status", bbox_to_anchor=(1, 1), loc="upper left")
    return finish(fig)


def reads_per_recipient(distribution: pd.DataFrame):
    """Bars: how many opening recipients have 1, 2, 3… read rows (pixel loads)."""
    fig, ax = figure(words.READS_TITLE, words.READS_SUBTITLE, size=(7, 3.4))
    sns.barplot(data=distribution, x="reads", y="recipients", color=PALETTE[0], ax=ax)
    ax.set_xlabel("open records of the recipient")
    ax.set_ylabel("recipients")
    thousands_axis(ax)
    return finish(fig)


def utm_completeness(missing_by_code: dict[str, int], letters_sent: int, period_label: str):
    """Bars: letters sent in the period lacking each required UTM parameter."""
    missing = pd.Series(missing_by_code)
    fig, ax = figure(words.UTM_TITLE, words.UTM_SUBTITLE.format(letters=f"{letters_sent:,}", period=period_label),
                     size=(7, 2.8))
    missing.index = [words.UTM_WORDS.get(code, code).split(" ", 1)[1] for code in missing.index]
    ax.barh(missing.index, missing.values, color=PALETTE[1])
    ax.barh(missing.index, letters_sent - missing.values, left=missing.values, color=MUTED)
    ax.invert_yaxis()
    ax.set_xlabel("letters")
    return finish(fig)
