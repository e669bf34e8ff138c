"""Charts of the list_hygiene report: bounce and complaint rates per posting and per provider, against
the published lines, plus what the address checks and the bounce classifier found."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mailaudit.analyses.hygiene import BOUNCE_LINES, COMPLAINT_LINES
from mailaudit.plots.common import HIGHLIGHT, MUTED, PALETTE, figure, finish, label_bars, percent_axis

LINE_STYLES = ("--", "-.", ":")


def _threshold_lines(ax, lines, labels, axis: str = "y") -> None:
    for value, label, style in zip(lines, labels, LINE_STYLES):
        draw = ax.axhline if axis == "y" else ax.axvline
        draw(value, color=HIGHLIGHT, linestyle=style, linewidth=1, alpha=0.8, label=label)


def _rate_column(have_log: bool) -> tuple[str, str, str]:
    """(column, name, what it counts) of the bounce rate shown: log hard bounces, else Bitrix error rows."""
    if have_log:
        return ("hard_bounce_rate", "Hard-bounce rate",
                "dead addresses found in the mail server's log ÷ sends attempted (sent or in error)")
    return ("error_rate", "Error rate (no delivery log)",
            "sends Bitrix marked as errors ÷ sends attempted (sent or in error)")


def bounce_rate_per_posting(by_posting: pd.DataFrame, period_label: str, have_log: bool):
    """Each posting's hard-bounce (or error) rate by its send date, with the 2% / 5% / 10% lines."""
    column, name, counts = _rate_column(have_log)
    fig, ax = figure(f"{name} of each mailing", f"{counts}; one dot per mailing sent in {period_label}",
                     size=(9, 3.8))
    data = by_posting.dropna(subset=[column])
    over = data[column] >= BOUNCE_LINES[0]
    ax.scatter(data.loc[~over, "first_send"], data.loc[~over, column], color=PALETTE[0], s=22, label="posting")
    ax.scatter(data.loc[over, "first_send"], data.loc[over, column], color=HIGHLIGHT, s=30,
               label="posting at or above 2%")
    _threshold_lines(ax, BOUNCE_LINES, ("2%: common warning line", "5%: Amazon SES review", "10%: at risk"))
    top = max(float(data[column].max()) if len(data) else 0.0, BOUNCE_LINES[-1]) * 1.1
    ax.set_ylim(0, top)
    percent_axis(ax, "y", decimals=0)
    ax.set_ylabel(name.lower())
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def complaint_rate_per_posting(by_posting: pd.DataFrame, period_label: str):
    """Each posting's complaint rate by its send date, with the Gmail/Yahoo 0.1% and 0.3% lines."""
    fig, ax = figure("Spam-complaint rate of each mailing",
                     "contacts who marked the mailing as spam ÷ sends delivered; "
                     f"one dot per mailing sent in {period_label}", size=(9, 3.8))
    data = by_posting.dropna(subset=["complaint_rate"])
    over = data["complaint_rate"] >= COMPLAINT_LINES[0]
    ax.scatter(data.loc[~over, "first_send"], data.loc[~over, "complaint_rate"], color=PALETTE[0], s=22,
               label="posting")
    ax.scatter(data.loc[over, "first_send"], data.loc[over, "complaint_rate"], color=HIGHLIGHT, s=30,
               label="posting at or above 0.1%")
    _threshold_lines(ax, COMPLAINT_LINES, ("0.1%: Gmail/Yahoo target", "0.3%: never reach"))
    top = max(float(data["complaint_rate"].max()) if len(data) else 0.0, COMPLAINT_LINES[-1]) * 1.15
    ax.set_ylim(0, top)
    percent_axis(ax, "y", decimals=2)
    ax.set_ylabel("complaint rate")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def rates_by_month(by_month: pd.DataFrame, period_label: str, have_log: bool):
    """Two panels per send month: the bounce (or error) rate and the complaint rate, with their lines."""
    column, name, counts = _rate_column(have_log)
    fig, axes = figure("Bounce and complaint rates per month",
                       f"left: {counts}; right: spam complaints ÷ sends delivered; {period_label}",
                       size=(12, 3.6), ncols=2)
    months = by_month["month"].astype(str)
    for ax, col, lines, labels, decimals, title in (
            (axes[0], column, BOUNCE_LINES, ("2%", "5%", "10%"), 0, name),
            (axes[1], "complaint_rate", COMPLAINT_LINES, ("0.1%", "0.3%"), 2, "Complaint rate")):
        values = by_month[col].astype(float)
        ax.plot(months, values, marker="o", color=PALETTE[0])
        _threshold_lines(ax, lines, labels)
        ax.set_ylim(0, max(float(np.nanmax(values)) if values.notna().any() else 0.0, lines[-1]) * 1.15)
        percent_axis(ax, "y", decimals=decimals)
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", rotation=60)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return finish(fig)


def rates_by_provider(by_provider: pd.DataFrame, period_label: str, have_log: bool):
    """Per mailbox provider: the bounce (or error) rate and the complaint rate with 95% intervals."""
    column, name, counts = _rate_column(have_log)
    fig, axes = figure("Bounce and complaint rates by mailbox provider",
                       f"left: {counts}; right: spam complaints ÷ sends delivered; sends in {period_label}; "
                       "whiskers: 95% Wilson intervals",
                       size=(10, 1.2 + 0.42 * max(len(by_provider), 3)), ncols=2, sharey=True)
    data = by_provider.sort_values("sent", ascending=False)
    labels = [f"{p} ({s:,})" for p, s in zip(data["provider"], data["sent"])]
    y = np.arange(len(data))
    panels = [(axes[0], column, BOUNCE_LINES, 0, name), (axes[1], "complaint_rate", COMPLAINT_LINES, 2, "Complaint rate")]
    for ax, col, lines, decimals, title in panels:
        rates = data[col].astype(float).to_numpy()
        low_col, high_col = f"{col}_low", f"{col}_high"
        if low_col in data and data[low_col].notna().any():
            err = np.vstack([rates - data[low_col].to_numpy(float), data[high_col].to_numpy(float) - rates])
            # clip: a zero rate's Wilson bound can sit a rounding error above zero
            ax.errorbar(rates, y, xerr=np.clip(np.nan_to_num(err), 0, None), fmt="o", color=PALETTE[0], capsize=3)
        else:
            ax.plot(rates, y, "o", color=PALETTE[0])
        _threshold_lines(ax, lines, [f"{v:.{decimals}%}" for v in lines], axis="x")
        ax.set_yticks(y, labels)
        percent_axis(ax, "x", decimals=decimals)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", visible=False)
    axes[0].invert_yaxis()
    axes[0].set_ylabel("provider (rows sent)")
    return finish(fig)


def address_problems(figures: dict):
    """Bars: contacts with each address problem."""
    names = {"invalid_syntax": "invalid syntax", "typo_domain": "typo domain", "disposable_domain": "disposable",
             "role_account": "role mailbox", "duplicate_contacts": "duplicate"}
    counts = pd.Series({label: figures.get(key) or 0 for key, label in names.items()})
    fig, ax = figure("Address problems found without sending",
                     f"e-mail contacts with each problem, of {figures['contacts']:,} contacts; "
                     "one contact may have several", size=(7, 2.8))
    ax.barh(counts.index, counts.values, color=PALETTE[1])
    label_bars(ax)
    ax.invert_yaxis()
    ax.set_xlabel("contacts")
    return finish(fig)


def bounce_classes(bounce_events: pd.DataFrame, period_label: str):
    """Bars: non-delivery events of the delivery log by class (hard, soft, sender block, auto-reply, unknown)."""
    counts = bounce_events["bounce_class"].value_counts()
    order = [c for c in ("hard", "soft", "sender_block", "auto_reply", "unknown") if c in counts]
    fig, ax = figure("What the mail server's non-deliveries were",
                     f"delivery-log events that were not deliveries (bounced, deferred, expired, failed), by class; "
                     f"up to the end of {period_label}", size=(7, 2.6))
    colours = {"hard": HIGHLIGHT, "soft": PALETTE[3], "sender_block": PALETTE[6], "auto_reply": MUTED,
               "unknown": PALETTE[4]}
    ax.barh(order, [counts[c] for c in order], color=[colours[c] for c in order])
    label_bars(ax)
    ax.invert_yaxis()
    ax.set_xlabel("events")
    return finish(fig)
