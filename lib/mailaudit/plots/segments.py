"""Charts and the sortable table of the segments report."""

from __future__ import annotations

import html
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from mailaudit.narrative.common import pct
from mailaudit.narrative.language import N_, _, active, number
from mailaudit.narrative.segments import dimension_name, segment_name

METRIC_LABELS = {
    "open_rate": N_("open rate (opened ÷ delivered)"),
    "click_rate": N_("click rate (clicked ÷ delivered)"),
    "ctor": N_("click-to-open (clicked ÷ opened)"),
    "unsub_rate": N_("unsubscribe rate (unsubscribed ÷ delivered)"),
    "complaint_rate": N_("complaint rate (complained of ÷ delivered)"),
    "error_rate": N_("error rate (in error ÷ attempted)"),
}
METRIC_TITLES = {
    "open_rate": N_("open rate"), "click_rate": N_("click rate"), "ctor": N_("click-to-open"),
    "unsub_rate": N_("unsubscribe rate"), "complaint_rate": N_("complaint rate"), "error_rate": N_("error rate"),
}
"""A forest plot panel's title (the rate without its definition)."""
ENGAGEMENT = ("open_rate", "click_rate", "ctor")
LIST_HEALTH = ("unsub_rate", "complaint_rate", "error_rate")
_RATIO_TICKS = (0.25, 0.33, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
_SIGNIFICANT, _NOT_SIGNIFICANT, _MIX = "#1d3557", "#adb5bd", "#e76f51"


def forest_plot(differences: pd.DataFrame, dimension: str, period_label: str, correction: str,
                metrics: tuple[str, ...] = ENGAGEMENT):
    """Within-posting rate ratios segment ÷ rest of the dimension, with their 95% intervals, one
    panel per metric. Dark: significant after the correction; orange: a mix effect (the raw
    difference vanishes within postings); grey: not significant."""
    data = differences[differences["dimension"] == dimension]
    metrics = [m for m in metrics if m in set(data["metric"])]
    if data.empty or not metrics:
        return None
    segments = list(dict.fromkeys(data.sort_values("segment_delivered", ascending=False)["segment"]))
    names = [segment_name(dimension, s) for s in segments]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics) + 1.5, 0.45 * len(segments) + 1.8),
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        rows = data[data["metric"] == metric].set_index("segment").reindex(segments)
        y = np.arange(len(segments))
        for i, (_segment, row) in enumerate(rows.iterrows()):
            if pd.isna(row["ratio"]) or not np.all(np.isfinite(row["ci"])):
                continue
            colour = _SIGNIFICANT if row["significant"] else (_MIX if row["mix_effect"] else _NOT_SIGNIFICANT)
            ax.plot(row["ci"], [y[i], y[i]], color=colour, lw=2)
            ax.plot(row["ratio"], y[i], "o", color=colour)
        ax.axvline(1.0, color="#555", lw=0.8, ls="--")
        ax.set_xscale("log")
        ends = [v for ci in rows["ci"].dropna() for v in ci if np.isfinite(v) and v > 0] + [1.0]
        low, high = min(ends) / 1.08, max(ends) * 1.08
        ax.set_xlim(low, high)
        ax.xaxis.set_major_locator(FixedLocator(_ratio_ticks(low, high)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _position: number(v, significant=3) + "×"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_title(_(METRIC_TITLES[metric]), fontsize=10)
        ax.set_yticks(y, names)
        ax.invert_yaxis()
        sns.despine(ax=ax)
    fig.suptitle(_("{dimension}: rate of each segment ÷ rate of the rest, within the same mailings").format(
        dimension=dimension_name(dimension)), x=0.01, ha="left", fontweight="bold")
    fig.text(0.01, 0.005, _("Points: rate ratio; bars: 95% interval (contacts as clusters); sends in {period}; dark = "
                            "significant after {correction} correction, orange = mix effect, grey = not "
                            "significant").format(period=period_label, correction=correction),
             fontsize=8, color="#555")
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    return fig


def _ratio_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Ratio ticks inside [low, high] spaced at least 1/`most` of the axis apart on its log scale,
    1× always among them (labels of a narrow panel must not overlap)."""
    gap = (np.log(high) - np.log(low)) / most
    kept = [1.0]
    for side in (sorted(t for t in _RATIO_TICKS if 1.0 < t <= high),
                 sorted((t for t in _RATIO_TICKS if low <= t < 1.0), reverse=True)):
        last = 1.0
        for tick in side:
            if abs(np.log(tick) - np.log(last)) >= gap:
                kept.append(tick)
                last = tick
    return sorted(kept)


def human_open_chart(metrics: pd.DataFrame, dimension: str, period_label: str, evidence: str):
    """Per segment, the raw open rate and the estimated human open rate (Apple MPP and scanner opens
    removed), each with its 95% interval: the gap is the segment's open-rate inflation."""
    data = metrics[(metrics["dimension"] == dimension)]
    if "human_open_rate" not in data or data["human_open_rate"].isna().all():
        return None
    data = data.sort_values("delivered", ascending=False)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(data) + 1.8))
    y = np.arange(len(data))
    for i, row in enumerate(data.itertuples()):
        ax.plot([row.human_open_rate * 100, row.open_rate * 100], [i, i], color="#ced4da", lw=6, zorder=1)
        for rate, ci, colour in ((row.open_rate, row.open_rate_ci, "#e76f51"),
                                 (row.human_open_rate, row.human_open_rate_ci, "#1d3557")):
            if isinstance(ci, (list, tuple)) and all(_finite(v) for v in ci):
                ax.plot([ci[0] * 100, ci[1] * 100], [i, i], color=colour, lw=1.5, zorder=2)
            ax.plot(rate * 100, i, "o", color=colour, zorder=3)
    ax.set_yticks(y, [segment_name(dimension, s) for s in data["segment"]])
    ax.invert_yaxis()
    ax.set_xlabel(_("% of delivered sends"))
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _position: number(v, significant=3)))
    ax.plot([], [], "o", color="#e76f51", label=_("open rate as Bitrix counts it (any read)"))
    ax.plot([], [], "o", color="#1d3557", label=_("estimated human open rate"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    sns.despine(ax=ax)
    fig.suptitle(_("{dimension}: opened ÷ delivered, as counted and by people").format(
        dimension=dimension_name(dimension)), x=0.01, ha="left", fontweight="bold")
    ax.set_title(_("sends delivered in {period}; bars: 95% intervals (contacts as clusters; human rate: contact "
                   "bootstrap, {evidence} evidence)").format(period=period_label, evidence=evidence_name(evidence)),
                 loc="left", fontsize=8, color="#555")
    fig.tight_layout()
    return fig


def month_label(month) -> str:
    """A send month ("2026-03") as the report's language writes it: 2026-03, 03.2026."""
    text = str(month)
    if active() == "ru" and len(text) == 7 and text[4] == "-":
        return f"{text[5:]}.{text[:4]}"
    return text


EVIDENCE_NAMES = {"access_log": N_("access log"), "database": N_("database")}
"""The human open rate's evidence as the chart's subtitle names it (another name: underscores as spaces)."""


def evidence_name(evidence: str) -> str:
    return _(EVIDENCE_NAMES[evidence]) if evidence in EVIDENCE_NAMES else str(evidence).replace("_", " ")


def month_heatmap(monthly: pd.DataFrame, dimension: str, metric: str, period_label: str):
    """Segment × send month heatmap of a rate (fraction shown as percent)."""
    data = monthly[monthly["dimension"] == dimension]
    if data.empty:
        return None
    table = data.pivot_table(index="segment", columns="month", values=metric, aggfunc="first")
    order = data.groupby("segment")["delivered"].sum().sort_values(ascending=False).index
    table = table.reindex(order)
    table.index = [segment_name(dimension, s) for s in table.index]
    table.columns = [month_label(m) for m in table.columns]
    fig, ax = plt.subplots(figsize=(max(8.0, 2.5 + 0.8 * len(table.columns)), 0.45 * len(table) + 2.0))
    shown = table * 100
    notes = shown.apply(lambda column: column.map(lambda v: number(v, 1) if _finite(v) else ""))
    sns.heatmap(shown, annot=notes.to_numpy(), fmt="", cmap="Blues", cbar_kws={"label": "%"}, ax=ax)
    colour_bar = ax.collections[0].colorbar
    colour_bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _position: number(v, significant=3)))
    fig.suptitle(_("{dimension}: {metric} by send month, %").format(
        dimension=dimension_name(dimension), metric=_(METRIC_LABELS[metric])), x=0.01, ha="left", fontweight="bold")
    ax.set_title(_("sends delivered in {period}, by month of sending; blank: no delivered send").format(
        period=period_label), loc="left", fontsize=9, color="#555")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", labelrotation=45)
    ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    return fig


def sortable_table_html(df: pd.DataFrame, caption: str, percent: tuple[str, ...] = (),
                        intervals: tuple[str, ...] = (), labels: dict | None = None,
                        amounts: tuple[str, ...] = (), counts: tuple[str, ...] = ()) -> str:
    """An HTML table the page's script sorts on a click on a header (see report/templates/sort_tables.js).

    `percent` columns hold fractions shown as percentages; `intervals` columns hold [low, high]
    fractions: an interval whose rate is a column too (``open_rate_ci`` beside ``open_rate``) is shown
    in the rate's cell, "41.0% (40.1%–42.0%)", so the table stays narrow enough to print; any other as
    "low–high". `amounts` are money (two decimals, thousands separated); `counts` whole numbers (a
    median may end in .5: shown rounded). `labels` name the columns for a reader. Cells keep their raw
    value in ``data-v``."""
    from mailaudit.narrative.common import label

    merged = {c: f"{c}_ci" for c in df.columns if f"{c}_ci" in intervals and f"{c}_ci" in df.columns}
    columns = [c for c in df.columns if c not in merged.values()]
    head = "".join(f"<th class='{'text' if df[c].dtype == object and c not in percent else 'num'}'>"
                   f"{html.escape(label(c, labels))}</th>" for c in columns)
    body = []
    for record in df.to_dict(orient="records"):
        cells = []
        for column in columns:
            value = record[column]
            shown, key = _cell(value, column in percent, column in intervals)
            if column in merged and shown != "—":
                bounds, _key = _cell(record[merged[column]], False, True)
                shown += f" ({bounds})" if bounds != "—" else ""
            elif column in amounts and _finite(value):
                shown = number(float(value), 2)
            elif column in counts and _finite(value):
                shown = number(float(value))
            numeric = column in percent or column in intervals or (_finite(value) and not isinstance(value, bool))
            css = " class='num'" if numeric else ""
            cells.append(f"<td{css} data-v='{html.escape(key, quote=True)}'>{html.escape(shown)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    hint = _("(click a column to sort)")
    return (f"<p class='ma-caption'><strong>{html.escape(caption)}</strong> "
            f"<span style='color:#777;font-size:0.85em'>{html.escape(hint)}</span></p>"
            f"<div class='ma-table-wrap'><table class='ma-table sortable'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _cell(value, percent: bool, interval: bool) -> tuple[str, str]:
    if interval:
        if not isinstance(value, (list, tuple)) or not all(_finite(v) for v in value):
            return "—", ""
        return f"{pct(value[0])}–{pct(value[1])}", f"{value[0]}"
    if isinstance(value, (bool, np.bool_)):
        return (_("yes") if value else _("no")), str(int(value))
    if not _finite(value) and isinstance(value, (float, np.floating)):
        return "—", ""
    if percent:
        return pct(float(value)), f"{float(value)}"
    if isinstance(value, (int, np.integer)):
        return number(int(value)), str(int(value))
    if isinstance(value, (float, np.floating)):
        return number(float(value), significant=3), f"{float(value)}"
    return ("—", "") if value is None else (str(value), str(value))


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value))
