"""Wording of the segments report: the findings (which differences are reported, their sentence, severity
and fix), segment and dimension names, table labels and chart texts. The comparisons themselves come from
`analyses.segments`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from mailaudit.bitrix.codes import CrmSource
from mailaudit.narrative.common import HIGH_SHARE, SEVERITY_ORDER, Finding, interval, of, pct, times

DIMENSIONS = {"list": "Address book", "provider": "Mailbox provider", "crm_source": "CRM source",
              "tenure": "Time on the list", "client": "Mail client"}
VERSUS = {"list": "the other address books", "provider": "the other providers", "crm_source": "the other CRM sources",
          "tenure": "the other tenure bands", "client": "the other mail clients"}
VERBS = {"open_rate": "open", "click_rate": "click", "ctor": "click after opening", "unsub_rate": "unsubscribe",
         "complaint_rate": "mark letters as spam", "error_rate": "bounce"}
METRICS = {"open_rate": "Open rate", "click_rate": "Click rate", "ctor": "Click-to-open", "unsub_rate": "Unsubscribe rate",
           "complaint_rate": "Complaint rate", "error_rate": "Error rate", "human_open_rate": "Human open rate"}

NOT_AUDIENCE = {("client", m) for m in VERBS} | {("provider", "open_rate"), ("provider", "ctor")}
"""Differences that describe machines or who opened, not the audience, so they are never a finding:
the mail client is known only for contacts who opened (an unknown client is mostly a never-opener or a
bounced address), and Apple's privacy proxy opens every letter of Apple Mail users (a provider's open rate,
and so its click-to-open, is mostly its share of them). They stay in the tables."""

LARGE_EFFECT = 1.5
"""A difference is worth acting on when the segment does it at least 1.5× (or at most 1/1.5) as often."""

FIXES = {
    ("open_rate", "low"): "review how these contacts were collected and send them a re-engagement series before "
                          "the regular mailings",
    ("open_rate", "high"): "keep this group on every regular mailing; it is the audience to grow",
    ("click_rate", "low"): "send this group fewer, better-targeted letters or a re-engagement series; check how "
                           "the addresses were collected",
    ("click_rate", "high"): "give this group more of the mailings and use it as the model audience for acquisition",
    ("ctor", "low"): "the letters do not interest this group once opened: try content written for it",
    ("ctor", "high"): "this group responds to the content: give it more of the mailings",
    ("unsub_rate", "high"): "mail this group less often and only with content it asked for",
    ("unsub_rate", "low"): "",
    ("complaint_rate", "high"): "check this group's consent; mail only those who engaged recently",
    ("complaint_rate", "low"): "",
    ("error_rate", "high"): "verify this group's addresses (see list hygiene) before the next send",
    ("error_rate", "low"): "",
}
PROVIDER_ERRORS_FIX = ("see the list hygiene report's blocks of the sender: a provider that bounces more is usually "
                       "refusing the sender, not holding bad addresses")


def segment_name(dimension: str, segment) -> str:
    """A segment as a reader knows it: the CRM's source names, "unknown" spelled out."""
    text = str(segment)
    if dimension == "crm_source":
        return CrmSource.LABELS.get(text, text)
    if text == "unknown":
        return {"client": "client not known", "crm_source": "no source"}.get(dimension, "unknown")
    return text


def who(dimension: str, segment) -> str:
    name = segment_name(dimension, segment)
    return {"list": f"Subscribers in address book «{name}»", "provider": f"Subscribers on {name}",
            "crm_source": f"Contacts from the CRM source «{name}»", "tenure": f"Contacts on the list for {name}",
            "client": f"Readers using {name}"}.get(dimension, f"Contacts in «{name}» ({dimension})")


def how_often(ratio: float) -> str:
    return f"{times(ratio)} as often as" if ratio >= 1 else f"{pct(1 - ratio)} less often than"


def findings(differences: pd.DataFrame, total_delivered: int | None = None, limit: int = 8) -> list[Finding]:
    """The differences a marketer can act on, then the mix effects.

    Reported: significant within the same mailings after the correction, at least `LARGE_EFFECT` either
    way, not in `NOT_AUDIENCE`; the `limit` largest. Severity scales with the segment's share of the
    delivered sends: medium from `HIGH_SHARE` (5%) up, low below (never high: a segment difference is an
    opportunity, not a breakage). A mix effect (a pooled difference that vanishes within mailings) is info: the segment got
    different letters."""
    if differences.empty:
        return []
    total = total_delivered or int(differences["segment_delivered"].add(differences["versus_delivered"]).max())
    keep = differences["significant"] & ~differences.apply(
        lambda r: (r["dimension"], r["metric"]) in NOT_AUDIENCE, axis=1)
    chosen = differences[keep].assign(size=lambda d: np.abs(np.log(d["ratio"])))
    chosen = chosen[chosen["size"] >= np.log(LARGE_EFFECT)].sort_values("size", ascending=False).head(limit)
    out = []
    for r in chosen.to_dict(orient="records"):
        direction = "high" if r["ratio"] > 1 else "low"
        severity = "medium" if r["segment_delivered"] >= HIGH_SHARE * total else "low"
        out.append(Finding(
            severity,
            f"{who(r['dimension'], r['segment'])} {VERBS[r['metric']]} {how_often(r['ratio'])} "
            f"{VERSUS.get(r['dimension'], 'the rest')}, in the same mailings",
            f"ratio {times(r['ratio'])} (95% interval {interval(*r['ci'], formatter=times)}); "
            f"{of(int(r['segment_delivered']), total)} delivered sends went to them",
            fix=PROVIDER_ERRORS_FIX if (r["dimension"], r["metric"]) == ("provider", "error_rate")
            else FIXES.get((r["metric"], direction), ""), count=int(r["segment_delivered"]), denominator=total,
            key=f"{r['dimension']}:{r['metric']}:{r['segment']}"))
    mixed = differences[differences["mix_effect"] & differences["metric"].isin(["open_rate", "click_rate"])
                        & ~differences["dimension"].eq("client")]
    for r in mixed.to_dict(orient="records"):
        out.append(Finding(
            "info",
            f"{who(r['dimension'], r['segment'])} only seem to {VERBS[r['metric']]} "
            f"{how_often(r['raw_ratio'])} {VERSUS.get(r['dimension'], 'the rest')}",
            f"pooled over all mailings the ratio is {times(r['raw_ratio'])}, but compared within the same "
            f"mailings it is {times(r['ratio'])} and not a reliable difference: they received different letters",
            fix="judge the letters they received, not the group", key=f"mix:{r['dimension']}:{r['metric']}:{r['segment']}"))
    return sorted(out, key=lambda f: SEVERITY_ORDER[f.severity])


ARTEFACT_NOTE = ("Differences by mail client, and open and click-to-open rates by provider, are never findings: the client is known "
                 "only for contacts who opened, and Apple's privacy proxy opens every letter of Apple Mail users, so "
                 "those differences describe machines and who opened rather than the audience. They stay in the tables.")

TABLE_LABELS = {
    "segment": "Segment", "contacts": "Contacts", "delivered": "Delivered",
    "open_rate": "Open rate (95% interval)", "open_rate_ci": "Open rate, 95% interval",
    "human_open_rate": "Human open rate (95% interval)", "human_open_rate_ci": "Human open rate, 95% interval",
    "click_rate": "Click rate (95% interval)", "click_rate_ci": "Click rate, 95% interval",
    "ctor": "Click-to-open (95% interval)", "ctor_ci": "Click-to-open, 95% interval",
    "unsub_rate": "Unsubscribe rate (95% interval)", "unsub_rate_ci": "Unsubscribe rate, 95% interval",
    "complaint_rate": "Complaint rate (95% interval)", "complaint_rate_ci": "Complaint rate, 95% interval",
    "error_rate": "Error rate (95% interval)", "error_rate_ci": "Error rate, 95% interval",
    "previous_open_rate": "Open rate, previous period", "open_rate_change_pp": "Open rate change",
    "tested": "Compared",
}
DIFFERENCE_LABELS = {"dimension": "Compared by", "segment": "Segment", "metric": "Rate", "ratio": "Within mailings",
                     "p_adjusted": "p (adjusted)", "raw_ratio": "Pooled", "mix_effect": "Mix effect",
                     "segment_delivered": "Delivered to the segment", "versus_delivered": "Delivered to the rest"}


def table_caption(dimension: str, period: str) -> str:
    return f"{DIMENSIONS.get(dimension, dimension)}: sends delivered in {period}, rates with 95% intervals"


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
    view["dimension"] = view["dimension"].map(lambda d: DIMENSIONS.get(d, d))
    view["metric"] = view["metric"].map(lambda m: METRICS.get(m, m))
    return view


def _in_sentence(name: str) -> str:
    return name if name.isupper() or name.split()[0].isupper() else name[:1].lower() + name[1:]


def scope_line(figures: dict, dimensions, settings) -> str:
    previous = figures.get("previous_period") or {}
    return (f"Compared with the previous period {previous.get('start')} – {previous.get('end')}; compared by "
            f"{', '.join(_in_sentence(DIMENSIONS.get(d, d)) for d in dimensions)}; a segment needs at least "
            f"{settings.min_delivered:,} delivered sends to be tested; significance allows for the number of "
            f"comparisons ({settings.correction} correction).")
