"""Shared chart style: one theme, and a `figure` helper that makes every chart say what it counts.

Every chart of the kit has a bold title (what it shows) and a grey subtitle (what is counted,
out of what, over which period), so a reader never has to guess a denominator. Rates are
fractions in the data and percentages on the axes.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from mailaudit.narrative.language import _, number, percent

PALETTE = ["#1f5f99", "#e76f51", "#2a9d8f", "#e9c46a", "#6c757d", "#8ecae6", "#9b5de5", "#f4a261"]
"""Categorical colours, in order of use (first: the main series)."""
MUTED = "#adb5bd"
HIGHLIGHT = "#b00020"
SUBTITLE_COLOUR = "#555555"


def apply_theme() -> None:
    """The kit's seaborn/matplotlib look: white grid, system sans-serif font, readable sizes."""
    sns.set_theme(style="whitegrid", palette=PALETTE, font="sans-serif", rc={
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "figure.facecolor": "white",
        "axes.titlesize": 12,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": 10,
        "axes.edgecolor": "#cccccc",
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "grid.color": "#e9ecef",
        "axes.spines.top": False,
        "axes.spines.right": False,
    })


def figure(title: str, subtitle: str, *, size: tuple[float, float] = (8.0, 3.6),
           nrows: int = 1, ncols: int = 1, **subplots_kw):
    """A new figure with a title and the subtitle saying what the chart counts.

    Returns ``(fig, ax)`` (``ax`` is an array when ``nrows * ncols > 1``). The subtitle is
    required: e.g. "unique opens / delivered recipient rows, 2026-01-01 – 2026-03-31".
    """
    if not title or not subtitle:
        raise ValueError("a chart needs a title and a subtitle saying what it counts")
    fig, ax = plt.subplots(nrows, ncols, figsize=size, **subplots_kw)
    height = size[1]
    fig.text(0.01, 1 - 0.08 / height, title, ha="left", va="top", fontsize=12, fontweight="bold")
    fig.text(0.01, 1 - 0.36 / height, subtitle, ha="left", va="top", fontsize=9, color=SUBTITLE_COLOUR,
             wrap=True)
    fig.subplots_adjust(top=1 - _HEADER_INCHES / height)
    fig.set_label(f"{title}. {subtitle}")   # the chart's alternative text in the HTML report
    return fig, ax


_HEADER_INCHES = 0.5
"""Room kept above the axes for the title and the subtitle."""


def finish(fig):
    """Tight layout that keeps the room for the title and subtitle; returns the figure."""
    fig.tight_layout(rect=(0, 0, 1, 1 - _HEADER_INCHES / fig.get_figheight()))
    return fig


def show(fig, alt: str | None = None) -> None:
    """Display the figure once, as a PNG whose alternative text is `alt` (else the chart's own
    description: the title and subtitle `figure` set, or the figure's and axes' titles), and release
    it. `None` (a chart with nothing to draw) shows nothing."""
    from io import BytesIO

    from IPython.display import Image, display

    if fig is None:
        return
    text = alt or describe(fig)
    buffer = BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="png", alt=text, metadata={"alt": text}))


def describe(fig) -> str:
    """A chart's description from its own texts: the label `figure` set, else the suptitle and the
    titles of its axes."""
    if fig.get_label():
        return fig.get_label()
    texts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    texts += [ax.get_title(loc=loc) for ax in fig.axes for loc in ("center", "left") if ax.get_title(loc=loc)]
    return ". ".join(dict.fromkeys(t.strip() for t in texts if t.strip())) or _("Chart")


def percent_axis(ax, axis: str = "y", decimals: int = 0) -> None:
    """Label an axis whose values are fractions in [0, 1] as percentages (in the bundle's language:
    12.5% or 12,5 %)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda value, _position: percent(value, decimals)))


def thousands_axis(ax, axis: str = "y") -> None:
    """Counts with thousands separators (12,345; Russian 12 345)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda value, _position: number(value)))


def label_bars(ax, decimals: int = 0, as_percent: bool = False, padding: int = 2) -> None:
    """Write each bar's value at its end: a count with `decimals`, or a fraction as a percentage with one
    decimal when `as_percent` (numbers as the bundle's language writes them)."""
    for container in ax.containers:
        labels = [(percent(v, 1) if as_percent else number(v, decimals)) if np.isfinite(v) else ""
                  for v in container.datavalues]
        ax.bar_label(container, labels=labels, padding=padding, fontsize=8, color="#333333")


def rate_intervals(ax, labels: Sequence[str], rates: Sequence[float], lows: Sequence[float],
                   highs: Sequence[float], colour: str = PALETTE[0], reference: float | None = None) -> None:
    """Horizontal dot-and-whisker chart of rates (fractions) with their 95% intervals.

    `reference` draws a dashed vertical line (e.g. the overall rate) to compare against.
    """
    y = np.arange(len(labels))
    rates, lows, highs = (np.asarray(v, dtype=float) for v in (rates, lows, highs))
    ax.errorbar(rates, y, xerr=[rates - lows, highs - rates], fmt="o", color=colour,
                ecolor=colour, elinewidth=1.5, capsize=3)
    if reference is not None and np.isfinite(reference):
        ax.axvline(reference, color=MUTED, linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    percent_axis(ax, "x", decimals=0)
    ax.grid(axis="y", visible=False)

