"""Charts of the list_hygiene report: bounce and complaint rates per posting and per provider, against
the published lines, plus what the address checks and the bounce classifier found."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mailaudit.analyses.hygiene import BOUNCE_LINES, COMPLAINT_LINES
from mailaudit.narrative.common import count
from mailaudit.narrative.language import N_, _, ngettext, percent
from mailaudit.narrative.list_hygiene import BOUNCE_CLASSES_SHORT, provider_name
from mailaudit.plots.common import (HIGHLIGHT, MUTED, PALETTE, figure, finish, label_bars, percent_axis,
                                   thousands_axis)

LINE_STYLES = ("--", "-.", ":")


def _threshold_lines(ax, lines, labels, axis: str = "y") -> None:
    for value, label, style in zip(lines, labels, LINE_STYLES):
        draw = ax.axhline if axis == "y" else ax.axvline
        draw(value, color=HIGHLIGHT, linestyle=style, linewidth=1, alpha=0.8, label=label)


def _rate_column(have_log: bool) -> tuple[str, str, str]:
    """(column, name, what it counts) of the bounce rate shown: log hard bounces, else Bitrix error rows."""
    if have_log:
        return ("hard_bounce_rate", _("Hard-bounce rate"),
                _("dead addresses found in the mail server's log ÷ sends attempted (sent or in error)"))
    return ("error_rate", _("Error rate (no delivery log)"),
            _("sends Bitrix marked as errors ÷ sends attempted (sent or in error)"))


def _bounce_line_labels() -> tuple[str, ...]:
    return (_("{line}: common warning line").format(line=percent(BOUNCE_LINES[0], 0)),
            _("{line}: Amazon SES review").format(line=percent(BOUNCE_LINES[1], 0)),
            _("{line}: at risk").format(line=percent(BOUNCE_LINES[2], 0)))


def bounce_rate_per_posting(by_posting: pd.DataFrame, period_label: str, have_log: bool):
    """Each posting's hard-bounce (or error) rate by its send date, with the 2% / 5% / 10% lines."""
    column, name, counts = _rate_column(have_log)
    title = _("Hard-bounce rate of each mailing") if have_log else _("Error rate (no delivery log) of each mailing")
    fig, ax = figure(title, _("{counts}; one dot per mailing sent in {period}").format(counts=counts,
                                                                                       period=period_label),
                     size=(9, 3.8))
    data = by_posting.dropna(subset=[column])
    over = data[column] >= BOUNCE_LINES[0]
    ax.scatter(data.loc[~over, "first_send"], data.loc[~over, column], color=PALETTE[0], s=22, label=_("mailing"))
    ax.scatter(data.loc[over, "first_send"], data.loc[over, column], color=HIGHLIGHT, s=30,
               label=_("mailing at or above {line}").format(line=percent(BOUNCE_LINES[0], 0)))
    _threshold_lines(ax, BOUNCE_LINES, _bounce_line_labels())
    top = max(float(data[column].max()) if len(data) else 0.0, BOUNCE_LINES[-1]) * 1.1
    ax.set_ylim(0, top)
    percent_axis(ax, "y", decimals=0)
    ax.set_ylabel(name.lower())
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def complaint_rate_per_posting(by_posting: pd.DataFrame, period_label: str):
    """Each posting's complaint rate by its send date, with the Gmail/Yahoo 0.1% and 0.3% lines."""
    fig, ax = figure(_("Spam-complaint rate of each mailing"),
                     _("contacts who marked the mailing as spam ÷ sends delivered; one dot per mailing sent in "
                       "{period}").format(period=period_label), size=(9, 3.8))
    data = by_posting.dropna(subset=["complaint_rate"])
    over = data["complaint_rate"] >= COMPLAINT_LINES[0]
    ax.scatter(data.loc[~over, "first_send"], data.loc[~over, "complaint_rate"], color=PALETTE[0], s=22,
               label=_("mailing"))
    ax.scatter(data.loc[over, "first_send"], data.loc[over, "complaint_rate"], color=HIGHLIGHT, s=30,
               label=_("mailing at or above {line}").format(line=percent(COMPLAINT_LINES[0])))
    _threshold_lines(ax, COMPLAINT_LINES, (_("{line}: Gmail/Yahoo target").format(line=percent(COMPLAINT_LINES[0])),
                                           _("{line}: never reach").format(line=percent(COMPLAINT_LINES[1]))))
    top = max(float(data["complaint_rate"].max()) if len(data) else 0.0, COMPLAINT_LINES[-1]) * 1.15
    ax.set_ylim(0, top)
    percent_axis(ax, "y", decimals=2)
    ax.set_ylabel(_("complaint rate"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return finish(fig)


def rates_by_month(by_month: pd.DataFrame, period_label: str, have_log: bool):
    """Two panels per send month: the bounce (or error) rate and the complaint rate, with their lines."""
    column, name, counts = _rate_column(have_log)
    fig, axes = figure(_("Bounce and complaint rates per month"),
                       _("left: {counts}; right: spam complaints ÷ sends delivered; {period}").format(
                           counts=counts, period=period_label),
                       size=(12, 3.6), ncols=2)
    months = by_month["month"].astype(str)
    for ax, col, lines, labels, decimals, title in (
            (axes[0], column, BOUNCE_LINES, [percent(v, 0) for v in BOUNCE_LINES], 0, name),
            (axes[1], "complaint_rate", COMPLAINT_LINES, [percent(v) for v in COMPLAINT_LINES], 2,
             _("Complaint rate"))):
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
    fig, axes = figure(_("Bounce and complaint rates by mailbox provider"),
                       _("left: {counts}; right: spam complaints ÷ sends delivered; sends in {period}; "
                         "whiskers: 95% Wilson intervals").format(counts=counts, period=period_label),
                       size=(10, 1.2 + 0.42 * max(len(by_provider), 3)), ncols=2, sharey=True)
    data = by_provider.sort_values("sent", ascending=False)
    labels = [f"{provider_name(p)} ({count(s)})" for p, s in zip(data["provider"], data["sent"])]
    y = np.arange(len(data))
    panels = [(axes[0], column, BOUNCE_LINES, 0, name),
              (axes[1], "complaint_rate", COMPLAINT_LINES, 2, _("Complaint rate"))]
    for ax, col, lines, decimals, title in panels:
        rates = data[col].astype(float).to_numpy()
        low_col, high_col = f"{col}_low", f"{col}_high"
        if low_col in data and data[low_col].notna().any():
            err = np.vstack([rates - data[low_col].to_numpy(float), data[high_col].to_numpy(float) - rates])
            # clip: a zero rate's Wilson bound can sit a rounding error above zero
            ax.errorbar(rates, y, xerr=np.clip(np.nan_to_num(err), 0, None), fmt="o", color=PALETTE[0], capsize=3)
        else:
            ax.plot(rates, y, "o", color=PALETTE[0])
        _threshold_lines(ax, lines, [percent(v, decimals) for v in lines], axis="x")
        ax.set_yticks(y, labels)
        percent_axis(ax, "x", decimals=decimals)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", visible=False)
    axes[0].invert_yaxis()
    axes[0].set_ylabel(_("provider (rows sent)"))
    return finish(fig)


ADDRESS_PROBLEMS = {"invalid_syntax": N_("invalid syntax"), "typo_domain": N_("typo domain"),
                    "disposable_domain": N_("disposable"), "role_account": N_("role mailbox"),
                    "duplicate_contacts": N_("duplicate")}


def address_problems(figures: dict):
    """Bars: contacts with each address problem."""
    counts = pd.Series({_(label): figures.get(key) or 0 for key, label in ADDRESS_PROBLEMS.items()})
    contacts = figures["contacts"]
    fig, ax = figure(_("Address problems found without sending"),
                     ngettext("e-mail contacts with each problem, of {n} contact; one contact may have several",
                              "e-mail contacts with each problem, of {n} contacts; one contact may have several",
                              contacts).format(n=count(contacts)), size=(7, 2.8))
    ax.barh(counts.index, counts.values, color=PALETTE[1])
    label_bars(ax)
    thousands_axis(ax, "x")
    ax.invert_yaxis()
    ax.set_xlabel(_("contacts"))
    return finish(fig)


def bounce_classes(bounce_events: pd.DataFrame, period_label: str):
    """Bars: non-delivery events of the delivery log by class (hard, soft, sender block, auto-reply, unknown)."""
    counts = bounce_events["bounce_class"].value_counts()
    order = [c for c in ("hard", "soft", "sender_block", "auto_reply", "unknown") if c in counts]
    fig, ax = figure(_("What the mail server's non-deliveries were"),
                     _("delivery-log events that were not deliveries (bounced, deferred, expired, failed), by class; "
                       "up to the end of {period}").format(period=period_label), size=(7, 2.6))
    colours = {"hard": HIGHLIGHT, "soft": PALETTE[3], "sender_block": PALETTE[6], "auto_reply": MUTED,
               "unknown": PALETTE[4]}
    ax.barh([_(BOUNCE_CLASSES_SHORT[c]) for c in order], [counts[c] for c in order],
            color=[colours[c] for c in order])
    label_bars(ax)
    thousands_axis(ax, "x")
    ax.invert_yaxis()
    ax.set_xlabel(_("events"))
    return finish(fig)
