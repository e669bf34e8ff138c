"""Wording of the open_inflation report: findings (rule, sentence, fix), the answer table, table labels and
chart texts. The estimates and the headline's choice of estimator come from `analyses.opens`."""
from __future__ import annotations

import pandas as pd

from mailaudit.analyses.opens import SHORT_ASSUMPTIONS, SPREAD_POINTS
from mailaudit.narrative.common import Finding, count, interval, of, pct

ESTIMATORS = {"access_log": "web-server log", "database": "database split", "exclusion": "exclusion",
              "click_anchored": "click anchored", "timing_mixture": "timing mixture"}


def estimator_name(name) -> str:
    return ESTIMATORS.get(str(name), str(name).replace("_", " "))


def findings(result) -> list[Finding]:
    """Open Rate inflation in percentage points: 10 or more high, 4 or more medium, less low (the share of
    opens that are machines grows with it); Apple Mail contacts 20 points or more medium; estimators more
    than 5 points apart and mailings that change rank are info."""
    f, out = result.figures, []
    if f.get("human_open_rate") is None:
        return out
    inflation = (f["raw_open_rate"] - f["human_open_rate"]) * 100
    out.append(Finding(
        "high" if inflation >= 10 else "medium" if inflation >= 4 else "low",
        f"Bitrix's Open Rate overstates people's opens by {inflation:.1f} percentage points",
        f"{of(f['unique_opens'], f['delivered'])} delivered letters were opened, people about "
        f"{pct(f['human_open_rate'])}; an estimated {pct(f['machine_open_share'])} of opens are machines (Apple's "
        "privacy proxy, security scanners)",
        fix="compare mailings, subject lines and segments on the human open rate or on clicks, never on "
            "Bitrix's Open Rate", count=f["unique_opens"], denominator=f["delivered"], key="inflation",
        extra={"unit": "delivered letters opened", "evidence": "tables/open_estimators.csv",
               "stake": "mailings and segments ranked by Open Rate favour Apple Mail audiences, not readers"}))
    apple = f["by_client"].get("apple") or {}
    if apple.get("inflation_pp") is not None and apple.get("delivered"):
        out.append(Finding(
            "medium" if apple["inflation_pp"] >= 20 else "low",
            f"Apple Mail contacts: Open Rate {pct(apple['raw_open_rate'])}, people about {pct(apple['human_open_rate'])}",
            f"{pct(f['apple_share'])} of delivered letters go to Apple Mail contacts, whose letters Apple's proxy "
            "opens whether or not anyone reads them",
            fix="exclude Apple Mail opens from re-engagement and inactivity rules; use clicks for them",
            count=apple.get("delivered"), key="apple"))
    spread = f.get("estimator_spread_pp")
    choice = f.get("headline_choice") or {}
    if spread is not None and spread > SPREAD_POINTS and choice.get("range"):
        failing = " ".join(f"The {estimator_name(name)} estimate assumes {SHORT_ASSUMPTIONS[name]}; its checks say: "
                           f"{'; '.join(says)}." for name, says in choice.get("failing", {}).items())
        out.append(Finding(
            "info", f"The estimators disagree by {spread:.1f} percentage points "
                    f"({interval(*choice['range'])})",
            (failing + " " if failing else "") + f"The headline uses the {estimator_name(f['headline_estimator'])} "
            f"estimate: {choice.get('reason', '')}", key="spread"))
    capped = [name for name, e in f["estimators"].items()
              if any(c["check"] == "ceiling" and not c["passed"] for c in e.get("diagnostics", []))]
    if capped:
        out.append(Finding(
            "info", f"The {', '.join(estimator_name(n) for n in capped)} estimate is capped at what was recorded",
            f"no estimate is shown above {pct(f['human_open_ceiling'])}: the Open Rate plus the letters a person "
            "clicked without any recorded open (images off); an estimate beyond it fails its assumption",
            key="ceiling"))
    last = last_mailings(result.by_posting)
    if len(last):
        moved = int((last["raw_open_rate"].rank(ascending=False, method="first")
                     != last["human_open_rate"].rank(ascending=False, method="first")).sum())
        if moved:
            out.append(Finding(
                "info", f"{moved} of the last {len(last)} mailings change rank once machine opens are removed",
                "a letter that looked best by Open Rate may only have gone to more Apple Mail users",
                fix="pick winning letters and subject lines by the human open rate or by clicks", key="ranking"))
    return out


def summary_table(result) -> pd.DataFrame:
    """The answer as a two-column table of formatted text."""
    f = result.figures
    ci = f.get("human_open_rate_ci") or [None, None]
    rows = [
        ("Delivered letters", count(f["delivered"])),
        ("Opened letters (at least one open record)", of(f["unique_opens"], f["delivered"])),
        ("Open Rate as Bitrix counts it", pct(f["raw_open_rate"])),
        (f"Human open rate ({estimator_name(f.get('headline_estimator', ''))})", pct(f["human_open_rate"])),
        ("Human open rate, 95% interval", interval(*ci)),
        ("Machine opens among opens", pct(f["machine_open_share"])),
        ("Letters to Apple Mail contacts", pct(f.get("apple_share"))),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


SUMMARY_LABELS = {"figure": "Figure", "value": "Value"}

LOG_QUALITY = {
    "files": "log files read", "lines": "lines", "unparsed_lines": "tracking lines in an unknown format",
    "tracking_lines": "requests to the image or click addresses", "sender_opens": "campaign image loads",
    "sender_clicks": "campaign clicks", "crm_hits": "CRM one-to-one mail (not campaigns)",
    "other_module_hits": "requests of other modules", "garbage_tags": "tags that name no recipient",
    "failed_requests": "failed requests (HTTP 400 or more)", "unreadable_files": "log files that could not be read",
    "orphan_recipient_hits": "requests naming a recipient that does not exist",
    "orphan_recipients": "recipients named by such requests",
    "outside_period_hits": "requests for letters sent outside the period (or not delivered)",
    "opened_rows_in_log_share": "opened letters of the period seen in the log",
}


def log_quality_table(result) -> pd.DataFrame:
    stats = result.log_stats or {}
    rows = [(LOG_QUALITY.get(k, k.replace("_", " ")),
             pct(v) if k.endswith("_share") else count(v) if isinstance(v, (int, float)) else str(v))
            for k, v in stats.items()]
    return pd.DataFrame(rows, columns=["what", "count"])


LOG_QUALITY_LABELS = {"what": "In the web-server log", "count": "Count"}

ESTIMATOR_LABELS = {"estimator": "Estimator", "human_open_rate": "Human open rate", "ci_low": "95% interval from",
                    "ci_high": "95% interval to", "headline": "Used for the answer", "assumption": "Assumes",
                    "checks_pass": "Its checks pass", "failed_checks": "Checks that fail"}
CLIENT_LABELS = {"client": "Mail client", "contacts": "Contacts", "delivered": "Delivered", "opened": "Opened",
                 "raw_open_rate": "Open rate (Bitrix)", "human_open_rate": "Human open rate",
                 "human_open_rate_ci_low": "95% interval from", "human_open_rate_ci_high": "95% interval to",
                 "inflation_pp": "Overstated by"}
POSTING_LABELS = {"posting": "Mailing no.", "title": "Letter", "sent": "Sent", "delivered": "Delivered",
                  "raw_open_rate": "Open rate (Bitrix)", "human_open_rate": "Human open rate",
                  "inflation_pp": "Overstated by", "prefetch_share": "Share to Apple Mail"}


def estimators_view(estimators: pd.DataFrame) -> pd.DataFrame:
    view = estimators.drop(columns="assumption").copy()
    view["estimator"] = view["estimator"].map(estimator_name)
    return view


def assumptions(estimators: pd.DataFrame) -> list[str]:
    return [f"{estimator_name(r.estimator)}: {r.assumption}" for r in estimators.itertuples()]


def last_mailings(by_posting: pd.DataFrame, last: int = 15) -> pd.DataFrame:
    """The last mailings with a human open rate: the same rows in the ranking chart and its table."""
    if by_posting.empty:
        return by_posting
    return by_posting.dropna(subset=["human_open_rate"]).head(last)

