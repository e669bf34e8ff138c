"""Wording of the segments report: the findings (which differences are reported, their sentence, severity,
stake and fix), the headline, segment and dimension names, table labels and the page's sentences. The
comparisons themselves come from `analyses.segments`.

Every text is English in the code and goes through `_` / `ngettext` where it is shown (the tables of names
are marked with `N_`), so that ``report.language: ru`` writes the page in Russian.

The headline's example (`headline`): among the differences that are findings (significant within the same
mailings after the correction, about the audience rather than machines -- not in `NOT_AUDIENCE` -- and at
least `LARGE_EFFECT` either way, on any engagement or list-health rate), the one whose segment received the
most delivered sends, i.e. the largest share of them (ties: the larger effect). It is the difference that
changes the most letters when acted on, not the first dimension compared nor the largest ratio of a small
segment. Without such a difference the headline counts the significant ones and says none is large enough.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mailaudit.bitrix.codes import CrmSource
from mailaudit.narrative.common import (HIGH_SHARE, SEVERITY_ORDER, Finding, client_name, count, interval, of, pct,
                                        times, unit)
from mailaudit.narrative.language import N_, N_plural, _, date, ngettext

DIMENSIONS = {"list": N_("Address book"), "provider": N_("Mailbox provider"), "crm_source": N_("CRM source"),
              "tenure": N_("Time on the list"), "client": N_("Mail client")}
"""Reader's name of each built-in dimension (a custom dimension is named by its parameters: shown as is)."""
VERSUS = {"list": N_("the other address books"), "provider": N_("the other providers"),
          "crm_source": N_("the other CRM sources"), "tenure": N_("the other tenure bands"),
          "client": N_("the other mail clients")}
METRICS = {"open_rate": N_("Open rate"), "click_rate": N_("Click rate"), "ctor": N_("Click-to-open"),
           "unsub_rate": N_("Unsubscribe rate"), "complaint_rate": N_("Complaint rate"),
           "error_rate": N_("Error rate"), "human_open_rate": N_("Human open rate")}

TITLES = {
    ("open_rate", "more"): N_("{who} open {ratio} as often as {versus}, in the same mailings"),
    ("open_rate", "less"): N_("{who} open {share} less often than {versus}, in the same mailings"),
    ("click_rate", "more"): N_("{who} click {ratio} as often as {versus}, in the same mailings"),
    ("click_rate", "less"): N_("{who} click {share} less often than {versus}, in the same mailings"),
    ("ctor", "more"): N_("{who} click after opening {ratio} as often as {versus}, in the same mailings"),
    ("ctor", "less"): N_("{who} click after opening {share} less often than {versus}, in the same mailings"),
    ("unsub_rate", "more"): N_("{who} unsubscribe {ratio} as often as {versus}, in the same mailings"),
    ("unsub_rate", "less"): N_("{who} unsubscribe {share} less often than {versus}, in the same mailings"),
    ("complaint_rate", "more"): N_("{who} mark letters as spam {ratio} as often as {versus}, in the same mailings"),
    ("complaint_rate", "less"): N_("{who} mark letters as spam {share} less often than {versus}, in the same "
                                   "mailings"),
    ("error_rate", "more"): N_("{who} bounce {ratio} as often as {versus}, in the same mailings"),
    ("error_rate", "less"): N_("{who} bounce {share} less often than {versus}, in the same mailings"),
}
"""A finding's title by rate and direction: `who` the segment, `versus` the rest of its dimension."""
SEEMING_TITLES = {
    ("open_rate", "more"): N_("{who} only seem to open {ratio} as often as {versus}"),
    ("open_rate", "less"): N_("{who} only seem to open {share} less often than {versus}"),
    ("click_rate", "more"): N_("{who} only seem to click {ratio} as often as {versus}"),
    ("click_rate", "less"): N_("{who} only seem to click {share} less often than {versus}"),
}
"""The title of a mix effect (open and click rates only)."""

NOT_AUDIENCE = {("client", m) for m in ("open_rate", "click_rate", "ctor", "unsub_rate", "complaint_rate",
                                        "error_rate")} | {("provider", "open_rate"), ("provider", "ctor")}
"""Differences that describe machines or who opened, not the audience, so they are never a finding:
the mail client is known only for contacts who opened (an unknown client is mostly a never-opener or a
bounced address), and Apple's privacy proxy opens every letter of Apple Mail users (a provider's open rate,
and so its click-to-open, is mostly its share of them). They stay in the tables."""

LARGE_EFFECT = 1.5
"""A difference is worth acting on when the segment does it at least 1.5× (or at most 1/1.5) as often."""

FIXES = {
    ("open_rate", "low"): N_("review how these contacts were collected and send them a re-engagement series before "
                             "the regular mailings"),
    ("open_rate", "high"): N_("keep this group on every regular mailing; it is the audience to grow"),
    ("click_rate", "low"): N_("send this group fewer, better-targeted letters or a re-engagement series; check how "
                              "the addresses were collected"),
    ("click_rate", "high"): N_("give this group more of the mailings and use it as the model audience for "
                               "acquisition"),
    ("ctor", "low"): N_("the letters do not interest this group once opened: try content written for it"),
    ("ctor", "high"): N_("this group responds to the content: give it more of the mailings"),
    ("unsub_rate", "high"): N_("mail this group less often and only with content it asked for"),
    ("unsub_rate", "low"): "",
    ("complaint_rate", "high"): N_("check this group's consent; mail only those who engaged recently"),
    ("complaint_rate", "low"): "",
    ("error_rate", "high"): N_("verify this group's addresses (see list hygiene) before the next send"),
    ("error_rate", "low"): "",
}
PROVIDER_ERRORS_FIX = N_("see the list hygiene report's blocks of the sender: a provider that bounces more is "
                         "usually refusing the sender, not holding bad addresses")
MIX_FIX = N_("judge the letters they received, not the group")

STAKES = {
    ("open_rate", "low"): N_("deliverability and money: mailbox providers judge a sender by how its letters are "
                             "opened, and unread letters sell nothing"),
    ("open_rate", "high"): N_("money: the group that reads the most; leaving it out of a mailing loses the most "
                              "readers"),
    ("click_rate", "low"): N_("money: letters to this group bring few visits and orders for what they cost"),
    ("click_rate", "high"): N_("money: the group that brings the most visits per letter; mailing it less loses "
                               "orders"),
    ("ctor", "low"): N_("money: opened letters that lead to no visit are sales lost at the last step"),
    ("ctor", "high"): N_("money: the group whose opened letters most often lead to a visit; mailing it less loses "
                         "orders"),
    ("unsub_rate", "high"): N_("the list: each unsubscribe is a contact no mailing can reach again"),
    ("complaint_rate", "high"): N_("deliverability: spam complaints are the signal mailbox providers weigh most; a "
                                   "few per thousand letters send the sender's mail to spam"),
    ("error_rate", "high"): N_("deliverability: bounces raise the rate mailbox providers watch, and those letters "
                               "are sent for nothing"),
}
"""What is at risk when a finding's fix is not made, by rate and direction (how many sends: the finding's count)."""
PROVIDER_ERRORS_STAKE = N_("deliverability: a provider that refuses the sender hides the letters from all its users")
MIX_STAKE = N_("decisions: judged on pooled rates, this group would be mailed more or less for the letters it "
               "happened to get, not for how it behaves")
UNIT = N_plural("delivered send", "delivered sends")
"""What a segment finding counts (its count of the delivered sends of the period)."""

SEGMENT_NAMES = {"other": N_("other"), "unknown": N_("unknown"), "(no source)": N_("(no source)"),
                 "(empty)": N_("(empty)"), "<1y": N_("<1y"), "1-2y": N_("1-2y"), "2-3y": N_("2-3y"),
                 "3y+": N_("3y+")}
"""Segments named by the kit rather than by the data (an address book's or a custom column's value is shown
as is)."""
UNKNOWN_NAMES = {"client": N_("client not known"), "crm_source": N_("no source")}
CRM_SOURCES = {
    "CALL": N_("Call"), "EMAIL": N_("E-mail"), "WEB": N_("Website"), "ADVERTISING": N_("Advertising"),
    "PARTNER": N_("Existing client"), "RECOMMENDATION": N_("By recommendation"),
    "TRADE_SHOW": N_("Show or exhibition"), "WEBFORM": N_("CRM form"), "CALLBACK": N_("Callback"),
    "RC_GENERATOR": N_("Sales boost"), "STORE": N_("Online store"), "OTHER": N_("Other"),
    "SELF": N_("Personal contact"), "BOOKING": N_("Online booking"),
}
"""The CRM's own source names (`bitrix.codes.CrmSource.LABELS`), to translate; an unknown code is shown as is."""
WHO = {"list": N_("Subscribers in address book «{name}»"), "provider": N_("Subscribers on {name}"),
       "crm_source": N_("Contacts from the CRM source «{name}»"), "tenure": N_("Contacts on the list for {name}"),
       "client": N_("Readers using {name}")}


def segment_name(dimension: str, segment) -> str:
    """A segment as a reader knows it: the CRM's source names, "unknown" spelled out, the kit's own labels
    (tenure bands, "other") in the page's language; data (address books, custom values) as it is."""
    text = str(segment)
    if dimension == "crm_source":
        if text in CRM_SOURCES:
            return _(CRM_SOURCES[text])
        if text in CrmSource.LABELS:
            return CrmSource.LABELS[text]
    if text == "unknown" and dimension in UNKNOWN_NAMES:
        return _(UNKNOWN_NAMES[dimension])
    if dimension == "client":
        return client_name(text)
    if text in SEGMENT_NAMES and (dimension != "list" or text.startswith("(")):
        return _(SEGMENT_NAMES[text])
    return text


def dimension_name(dimension: str) -> str:
    return _(DIMENSIONS[dimension]) if dimension in DIMENSIONS else str(dimension)


def who(dimension: str, segment) -> str:
    name = segment_name(dimension, segment)
    if dimension in WHO:
        return _(WHO[dimension]).format(name=name)
    return _("Contacts in «{name}» ({dimension})").format(name=name, dimension=dimension)


def versus(dimension: str) -> str:
    return _(VERSUS[dimension]) if dimension in VERSUS else _("the rest")


def difference_title(dimension: str, segment, metric: str, ratio: float, *, seeming: bool = False) -> str:
    """"Subscribers in address book «X» click 1.80× as often as the other address books, in the same
    mailings" (`seeming`: a mix effect, "only seem to")."""
    direction = "more" if ratio >= 1 else "less"
    template = (SEEMING_TITLES if seeming else TITLES)[(metric, direction)]
    return _(template).format(who=who(dimension, segment), versus=versus(dimension), ratio=times(ratio),
                              share=pct(1 - ratio))


def findings(differences: pd.DataFrame, total_delivered: int | None = None, limit: int = 8) -> list[Finding]:
    """The differences a marketer can act on (`actionable`), then the mix effects.

    Reported: significant within the same mailings after the correction, at least `LARGE_EFFECT` either
    way, not in `NOT_AUDIENCE`; the `limit` largest, and the headline's example (`headline_example`) if it is
    not among them. Severity scales with the segment's share of the
    delivered sends: medium from `HIGH_SHARE` (5%) up, low below (never high: a segment difference is an
    opportunity, not a breakage). A mix effect (a pooled difference that vanishes within mailings) is info: the
    segment got different letters. Every finding with a fix says what is at stake (``extra["stake"]``)."""
    if differences.empty:
        return []
    total = _total(differences, total_delivered)
    pool = actionable(differences).sort_values("size", ascending=False)
    chosen = pool.head(limit)
    example = headline_example(differences)
    if example is not None and not _same(chosen, example).any():      # the headline's example is always shown
        chosen = pd.concat([chosen, pool[_same(pool, example)]])
    out = []
    for r in chosen.to_dict(orient="records"):
        direction = "high" if r["ratio"] > 1 else "low"
        severity = "medium" if r["segment_delivered"] >= HIGH_SHARE * total else "low"
        delivered = int(r["segment_delivered"])
        if (r["dimension"], r["metric"]) == ("provider", "error_rate"):
            fix, stake = PROVIDER_ERRORS_FIX, PROVIDER_ERRORS_STAKE
        else:
            fix, stake = FIXES.get((r["metric"], direction), ""), STAKES.get((r["metric"], direction))
        out.append(Finding(
            severity,
            difference_title(r["dimension"], r["segment"], r["metric"], r["ratio"]),
            _("ratio {ratio} (95% interval {interval}); {sends} delivered sends went to them").format(
                ratio=times(r["ratio"]), interval=interval(*r["ci"], formatter=times), sends=of(delivered, total)),
            fix=_(fix) if fix else "", count=delivered, denominator=total,
            key=f"{r['dimension']}:{r['metric']}:{r['segment']}",
            extra={"unit": unit(UNIT, total), **({"stake": _(stake)} if fix and stake else {})}))
    mixed = differences[differences["mix_effect"] & differences["metric"].isin(["open_rate", "click_rate"])
                        & ~differences["dimension"].eq("client")]
    for r in mixed.to_dict(orient="records"):
        delivered = int(r["segment_delivered"])
        out.append(Finding(
            "info",
            difference_title(r["dimension"], r["segment"], r["metric"], r["raw_ratio"], seeming=True),
            _("pooled over all mailings the ratio is {pooled}, but compared within the same mailings it is "
              "{within} and not a reliable difference: they received different letters").format(
                pooled=times(r["raw_ratio"]), within=times(r["ratio"])),
            fix=_(MIX_FIX), count=delivered, denominator=total,
            key=f"mix:{r['dimension']}:{r['metric']}:{r['segment']}",
            extra={"unit": unit(UNIT, total), "stake": _(MIX_STAKE)}))
    return sorted(out, key=lambda f: SEVERITY_ORDER[f.severity])


def _same(frame: pd.DataFrame, row: dict) -> pd.Series:
    return (frame["dimension"].eq(row["dimension"]) & frame["segment"].eq(row["segment"])
            & frame["metric"].eq(row["metric"]))


def _total(differences: pd.DataFrame, total_delivered: int | None = None) -> int:
    return total_delivered or int(differences["segment_delivered"].add(differences["versus_delivered"]).max())


def actionable(differences: pd.DataFrame) -> pd.DataFrame:
    """The differences that are findings (see `findings`), with their effect size |log ratio| as ``size``."""
    if differences.empty:
        return differences.assign(size=pd.Series(dtype=float))
    keep = differences["significant"] & ~differences.apply(
        lambda r: (r["dimension"], r["metric"]) in NOT_AUDIENCE, axis=1)
    chosen = differences[keep].assign(size=lambda d: np.abs(np.log(d["ratio"])))
    return chosen[chosen["size"] >= np.log(LARGE_EFFECT)]


def headline_example(differences: pd.DataFrame) -> dict | None:
    """The difference the headline names (rule in the module docstring): of the `actionable` ones, the one
    whose segment received the most delivered sends, then the larger effect; None when there is none."""
    pool = actionable(differences)
    if pool.empty:
        return None
    return pool.sort_values(["segment_delivered", "size"], ascending=[False, False]).iloc[0].to_dict()


def headline(differences: pd.DataFrame, correction: str, total_delivered: int | None = None) -> str:
    """The report's one line on the index page: how many differences hold within the same mailings and, as
    the example, the most actionable one (`headline_example`) with its share of the delivered sends."""
    significant = differences[differences["significant"]] if len(differences) else differences
    if significant.empty:
        return _("no segment differs significantly from the rest within the same mailings ({correction} "
                 "correction)").format(correction=correction)
    n = len(significant)
    top = headline_example(differences)
    if top is None:
        return ngettext("{n} significant segment difference within the same mailings, none large enough "
                        "({ratio} either way) to act on",
                        "{n} significant segment differences within the same mailings, none large enough "
                        "({ratio} either way) to act on", n).format(n=count(n), ratio=times(LARGE_EFFECT))
    total = _total(differences, total_delivered)
    return ngettext("{n} significant segment difference within the same mailings; the one that touches the most "
                    "sends: {example} ({share} of the delivered sends)",
                    "{n} significant segment differences within the same mailings; the one that touches the "
                    "most sends: {example} ({share} of the delivered sends)", n).format(
        n=count(n), example=difference_title(top["dimension"], top["segment"], top["metric"], top["ratio"]),
        share=pct(top["segment_delivered"] / total))


ARTEFACT_NOTE = N_("Differences by mail client, and open and click-to-open rates by provider, are never findings: "
                   "the client is known only for contacts who opened, and Apple's privacy proxy opens every letter "
                   "of Apple Mail users, so those differences describe machines and who opened rather than the "
                   "audience. They stay in the tables.")


def artefact_note() -> str:
    return _(ARTEFACT_NOTE)


def nothing_to_act_on() -> str:
    return _("No segment differs enough from the rest, within the same mailings, to act on.")


def no_human_opens() -> str:
    return _("The human open rate per segment was not estimated (segments.human_opens: false).")


def nothing_to_compare(dimension: str) -> str:
    return _("{dimension}: no segment large enough to compare.").format(dimension=dimension_name(dimension))


def differences_caption() -> str:
    return _("Significant differences and mix effects (within mailings; pooled: all sends together)")


def scoreboard_caption(period: str, currency: str | None) -> str:
    if currency:
        return _("Mailings sent in {period} (revenue in {currency})").format(period=period, currency=currency)
    return _("Mailings sent in {period}").format(period=period)


TABLE_LABELS = {
    "segment": N_("Segment"), "contacts": N_("Contacts"), "delivered": N_("Delivered"),
    "open_rate": N_("Open rate (95% interval)"), "open_rate_ci": N_("Open rate, 95% interval"),
    "human_open_rate": N_("Human open rate (95% interval)"),
    "human_open_rate_ci": N_("Human open rate, 95% interval"),
    "click_rate": N_("Click rate (95% interval)"), "click_rate_ci": N_("Click rate, 95% interval"),
    "ctor": N_("Click-to-open (95% interval)"), "ctor_ci": N_("Click-to-open, 95% interval"),
    "unsub_rate": N_("Unsubscribe rate (95% interval)"), "unsub_rate_ci": N_("Unsubscribe rate, 95% interval"),
    "complaint_rate": N_("Complaint rate (95% interval)"), "complaint_rate_ci": N_("Complaint rate, 95% interval"),
    "error_rate": N_("Error rate (95% interval)"), "error_rate_ci": N_("Error rate, 95% interval"),
    "previous_open_rate": N_("Open rate, previous period"), "open_rate_change_pp": N_("Open rate change"),
    "tested": N_("Compared"),
}
DIFFERENCE_LABELS = {"dimension": N_("Compared by"), "segment": N_("Segment"), "metric": N_("Rate"),
                     "ratio": N_("Within mailings"), "p_adjusted": N_("p (adjusted)"), "raw_ratio": N_("Pooled"),
                     "mix_effect": N_("Mix effect"), "segment_delivered": N_("Delivered to the segment"),
                     "versus_delivered": N_("Delivered to the rest")}
SCOREBOARD_LABELS = {
    "mailing": N_("Mailing"), "letter": N_("Letter"), "first sent": N_("First sent"), "delivered": N_("Delivered"),
    "opened by people": N_("Opened by people"), "clicked by people": N_("Clicked by people"),
    "unsubscribes": N_("Unsubscribes"), "bounces": N_("Bounces"), "complaints": N_("Complaints"),
    "orders": N_("Orders"), "revenue": N_("Revenue"), "revenue per recipient": N_("Revenue per recipient"),
}
"""The reader's names of the per-mailing scoreboard's columns (as `analyses.mailings.labelled` names them)."""


def table_caption(dimension: str, period: str) -> str:
    return _("{dimension}: sends delivered in {period}, rates with 95% intervals").format(
        dimension=dimension_name(dimension), period=period)


def dimension_view(table: pd.DataFrame, dimension: str) -> pd.DataFrame:
    view = table.copy()
    view["segment"] = view["segment"].map(lambda s: segment_name(dimension, s))
    return view


def differences_view(differences: pd.DataFrame) -> pd.DataFrame:
    """Significant differences and mix effects, in words (dimension, segment and rate names)."""
    view = differences[differences["significant"] | differences["mix_effect"]][
        ["dimension", "segment", "metric", "ratio", "p_adjusted", "raw_ratio", "mix_effect",
         "segment_delivered", "versus_delivered"]].copy()
    view["segment"] = [segment_name(d, s) for d, s in zip(view["dimension"], view["segment"])]
    view["dimension"] = view["dimension"].map(dimension_name)
    view["metric"] = view["metric"].map(lambda m: _(METRICS[m]) if m in METRICS else m)
    return view


def _in_sentence(name: str) -> str:
    return name if name.isupper() or name.split()[0].isupper() else name[:1].lower() + name[1:]


def scope_line(figures: dict, dimensions, settings) -> str:
    previous = figures.get("previous_period") or {}
    start, end = previous.get("start"), previous.get("end")
    return ngettext(
        "Compared with the previous period {start} – {end}; compared by {dimensions}; a segment needs at least "
        "{min_delivered} delivered send to be tested; significance allows for the number of comparisons "
        "({correction} correction).",
        "Compared with the previous period {start} – {end}; compared by {dimensions}; a segment needs at least "
        "{min_delivered} delivered sends to be tested; significance allows for the number of comparisons "
        "({correction} correction).", settings.min_delivered).format(
        start=date(start) if hasattr(start, "strftime") else start,
        end=date(end) if hasattr(end, "strftime") else end,
        dimensions=", ".join(_in_sentence(dimension_name(d)) for d in dimensions),
        min_delivered=count(settings.min_delivered), correction=settings.correction)
