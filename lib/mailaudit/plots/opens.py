"""Charts of the open_inflation report. Each says what it counts, out of what, over which period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mailaudit.narrative.common import client_name, count, points
from mailaudit.narrative.language import _, active, ngettext, number, percent
from mailaudit.narrative.open_inflation import estimator_name
from mailaudit.plots.common import (
    MUTED,
    PALETTE,
    figure,
    finish,
    percent_axis,
    rate_intervals,
)

RAW, HUMAN = PALETTE[1], PALETTE[0]


def _month_label(month) -> str:
    """A send month ("2026-03") as the bundle's language writes it (03.2026 in Russian)."""
    text = str(month)
    if active() == "ru" and len(text) == 7 and text[4] == "-":
        return f"{text[5:]}.{text[:4]}"
    return text


def _delay_label(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "∞"
    for unit, size in ((_("{n}d"), 86400), (_("{n}h"), 3600), (_("{n}min"), 60)):
        if seconds >= size and seconds % size == 0:
            return unit.format(n=number(seconds // size))
    return _("{n}s").format(n=number(seconds))


def by_client_chart(by_client: pd.DataFrame, period_label: str, evidence: str):
    """Raw vs estimated human open rate per mail client, inflation in points at each pair."""
    data = by_client[by_client["delivered"] > 0]
    # the unknown client last: it is no client, but the contacts none could be told for
    data = data.assign(_last=data["client"] == "unknown").sort_values(["_last", "delivered"],
                                                                      ascending=[True, False])
    evidence_words = _("access-log evidence") if evidence == "access_log" else _("database evidence")
    fig, ax = figure(
        _("Open Rate by mail client: as Bitrix counts it vs opened by a person"),
        _("rows with ≥1 read ÷ delivered rows (orange) and estimated human openers ÷ delivered rows (blue), "
          "per contact's mail client ({evidence}); sends {period}").format(evidence=evidence_words,
                                                                            period=period_label),
        size=(8.5, 0.45 * len(data) + 2.1))
    y = np.arange(len(data))
    ax.barh(y - 0.2, data["raw_open_rate"], height=0.4, color=RAW, label=_("Open Rate (Bitrix)"))
    ax.barh(y + 0.2, data["human_open_rate"], height=0.4, color=HUMAN, label=_("human open rate"))
    for i, row in enumerate(data.itertuples()):
        if not row.opened:
            text = _("no opens ({delivered} delivered)").format(delivered=count(row.delivered))
        elif pd.notna(row.inflation_pp) and pd.notna(row.raw_open_rate):
            text = _("{points}  ({delivered} delivered)").format(points=points(row.inflation_pp),
                                                                 delivered=count(row.delivered))
        else:
            continue
        ax.text(max(row.raw_open_rate or 0, row.human_open_rate or 0) + 0.01, i, text, va="center", fontsize=8)
    ax.set_yticks(y, [client_name(c) for c in data["client"]])
    ax.invert_yaxis()
    percent_axis(ax, "x")
    ax.set_xlim(0, min(1.0, float(np.nanmax(data["raw_open_rate"])) * 1.6 + 0.08))
    # below the axes, off the bars and their labels
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    return finish(fig)


def estimators_chart(estimators: pd.DataFrame, raw_open_rate: float, period_label: str, headline: str):
    """Each estimator's human open rate with its 95% interval; the dashed line is the raw Open Rate."""
    data = estimators.dropna(subset=["human_open_rate"])
    labels = [_("{estimator} (headline)").format(estimator=estimator_name(name)) if name == headline
              else estimator_name(name) for name in data["estimator"]]
    fig, ax = figure(
        _("Human open rate: the estimators side by side"),
        _("estimated human openers ÷ delivered rows, 95% interval from a bootstrap over contacts; "
          "dashed: Open Rate as Bitrix counts it ({raw}); sends {period}").format(raw=percent(raw_open_rate, 1),
                                                                                 period=period_label),
        size=(8.5, 0.5 * len(data) + 1.6))
    lows = data["ci_low"].fillna(data["human_open_rate"])
    highs = data["ci_high"].fillna(data["human_open_rate"])
    rate_intervals(ax, labels, data["human_open_rate"], lows, highs, colour=HUMAN, reference=raw_open_rate)
    ax.set_xlim(0, max(raw_open_rate, float(np.nanmax(highs))) * 1.15)
    return finish(fig)


def over_time_chart(by_month: pd.DataFrame, period_label: str):
    """Monthly raw and human open rate, and the share of delivered rows to Apple-proxy contacts."""
    fig, ax = figure(
        _("Open Rate inflation month by month"),
        _("rows with ≥1 read ÷ delivered rows (orange), estimated human openers ÷ delivered rows (blue); "
          "grey bars: share of delivered rows in the prefetch group; sends {period}, by send month").format(
            period=period_label),
        size=(8.5, 3.6))
    x = np.arange(len(by_month))
    ax.bar(x, by_month["prefetch_share"], color=MUTED, alpha=0.5, width=0.6, label=_("prefetch group share"))
    ax.plot(x, by_month["raw_open_rate"], marker="o", color=RAW, label=_("Open Rate (Bitrix)"))
    ax.plot(x, by_month["human_open_rate"], marker="o", color=HUMAN, label=_("human open rate"))
    ax.set_xticks(x, [_month_label(m) for m in by_month["month"]], rotation=45, ha="right")
    percent_axis(ax)
    ax.set_ylim(0, max(0.05, float(np.nanmax(by_month[["raw_open_rate", "prefetch_share"]].to_numpy())) * 1.2))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def delay_chart(delays: pd.DataFrame, period_label: str, clients: list[str] | None = None):
    """Share of each client's first reads per delay-after-delivery bin (log-spaced bins)."""
    totals = delays.groupby("client")["first_reads"].sum()
    order = [c for c in (clients or totals.sort_values(ascending=False).index) if totals.get(c, 0) > 0][:6]
    fig, axes = figure(
        _("How long after delivery the first read comes, per mail client"),
        _("share of the client's opened rows whose first read falls in each delay bin (the Apple proxy "
          "prefetch shows as a spike at the left); sends {period}").format(period=period_label),
        size=(9.0, 1.5 * len(order) + 1.2), nrows=len(order), ncols=1, sharex=True, squeeze=False)
    for ax, client in zip(axes[:, 0], order):
        part = delays[delays["client"] == client]
        share = part["first_reads"] / part["first_reads"].sum()
        x = np.arange(len(part))
        ax.bar(x, share, color=PALETTE[0] if client != "apple" else RAW, width=0.85)
        ax.set_ylabel(client_name(client), rotation=0, ha="right", va="center")
        percent_axis(ax)
        ax.set_xticks(x, [_delay_label(v) for v in part["delay_from_s"]], rotation=45, ha="right", fontsize=7)
    axes[-1, 0].set_xlabel(_("delay from delivery to first read (bin start)"))
    return finish(fig)


def ranking_chart(by_posting: pd.DataFrame, period_label: str, last: int = 15):
    """The last mailings ranked by Open Rate vs by human open rate (a slope chart of ranks)."""
    data = by_posting.dropna(subset=["human_open_rate"]).head(last).copy()
    data["rank_raw"] = data["raw_open_rate"].rank(ascending=False, method="first")
    data["rank_human"] = data["human_open_rate"].rank(ascending=False, method="first")
    fig, ax = figure(
        ngettext("The last {n} mailing ranked by Open Rate and by human open rate",
                 "The last {n} mailings ranked by Open Rate and by human open rate", len(data)).format(
            n=count(len(data))),
        _("left: rank by rows with ≥1 read ÷ delivered; right: rank by estimated human openers ÷ delivered; "
          "a line crossing others means the correction changes the order; sends {period}").format(
            period=period_label),
        size=(8.5, 0.32 * len(data) + 1.8))
    for row in data.itertuples():
        moved = row.rank_raw != row.rank_human
        ax.plot([0, 1], [row.rank_raw, row.rank_human], marker="o",
                color=RAW if moved else MUTED, linewidth=1.5 if moved else 1)
        label = str(row.title)[:38]
        ax.text(-0.03, row.rank_raw, f"{label}  {percent(row.raw_open_rate, 1)}", ha="right", va="center",
                fontsize=7.5)
        ax.text(1.03, row.rank_human, percent(row.human_open_rate, 1), ha="left", va="center", fontsize=7.5)
    ax.set_xlim(-1.2, 1.3)
    ax.set_xticks([0, 1], [_("Open Rate (Bitrix)"), _("human open rate")])
    ax.invert_yaxis()
    ax.set_yticks([])
    ax.grid(False)
    return finish(fig)
