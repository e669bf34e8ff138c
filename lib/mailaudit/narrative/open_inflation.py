"""Wording of the open_inflation report: findings (rule, sentence, fix), the answer table, table labels and
chart texts. The estimates and the headline's choice of estimator come from `analyses.opens`."""
from __future__ import annotations

import pandas as pd

from mailaudit.analyses.opens import SHORT_ASSUMPTIONS, SPREAD_POINTS
from mailaudit.narrative.common import Finding, client_name, count, interval, of, pct, unit
from mailaudit.narrative.language import N_, N_plural, _, ngettext, number

ESTIMATORS = {"access_log": N_("web-server log"), "database": N_("database split"), "exclusion": N_("exclusion"),
              "click_anchored": N_("click anchored"), "timing_mixture": N_("timing mixture")}


def estimator_name(name) -> str:
    name = str(name)
    return _(ESTIMATORS[name]) if name in ESTIMATORS else name.replace("_", " ")



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
        _("Bitrix's Open Rate overstates people's opens by {points} percentage points").format(
            points=number(inflation, 1)),
        _("{opened} delivered letters were opened, people about {human}; an estimated {machine} of opens are "
          "machines (Apple's privacy proxy, security scanners)").format(
            opened=of(f["unique_opens"], f["delivered"]), human=pct(f["human_open_rate"]),
            machine=pct(f["machine_open_share"])),
        fix=_("compare mailings, subject lines and segments on the human open rate or on clicks, never on "
              "Bitrix's Open Rate"), count=f["unique_opens"], denominator=f["delivered"], key="inflation",
        extra={"unit": unit(N_plural("delivered letter opened", "delivered letters opened"), f["delivered"]),
               "evidence": "tables/open_estimators.csv",
               "stake": _("decisions: mailings, subject lines and segments ranked by Open Rate favour Apple Mail "
                          "audiences, not readers")}))
    apple = f["by_client"].get("apple") or {}
    if apple.get("inflation_pp") is not None and apple.get("delivered"):
        out.append(Finding(
            "medium" if apple["inflation_pp"] >= 20 else "low",
            _("Apple Mail contacts: Open Rate {raw}, people about {human}").format(
                raw=pct(apple["raw_open_rate"]), human=pct(apple["human_open_rate"])),
            _("{share} of delivered letters go to Apple Mail contacts, whose letters Apple's proxy opens whether "
              "or not anyone reads them").format(share=pct(f["apple_share"])),
            fix=_("exclude Apple Mail opens from re-engagement and inactivity rules; use clicks for them"),
            count=apple.get("delivered"), denominator=f["delivered"], key="apple",
            extra={"unit": unit(N_plural("delivered letter goes to Apple Mail contacts",
                                         "delivered letters go to Apple Mail contacts"), f["delivered"]),
                   "stake": _("deliverability: an inactivity rule that counts Apple's automatic opens never stops "
                              "mailing Apple Mail contacts who no longer read, and such dead addresses raise "
                              "complaints and spam-folder placement")}))
    spread = f.get("estimator_spread_pp")
    choice = f.get("headline_choice") or {}
    if spread is not None and spread > SPREAD_POINTS and choice.get("range"):
        failing = " ".join(_("The {estimator} estimate assumes {assumption}; its checks say: {says}.").format(
            estimator=estimator_name(name), assumption=_(SHORT_ASSUMPTIONS[name]), says="; ".join(says))
            for name, says in choice.get("failing", {}).items())
        uses = _("The headline uses the {estimator} estimate: {reason}").format(
            estimator=estimator_name(f["headline_estimator"]), reason=choice.get("reason", ""))
        out.append(Finding(
            "info", _("The estimators disagree by {points} percentage points ({range})").format(
                points=number(spread, 1), range=interval(*choice["range"])),
            (failing + " " if failing else "") + uses, key="spread"))
    capped = [name for name, e in f["estimators"].items()
              if any(c["check"] == "ceiling" and not c["passed"] for c in e.get("diagnostics", []))]
    if capped:
        out.append(Finding(
            "info", ngettext("The {names} estimate is capped at what was recorded",
                             "The {names} estimates are capped at what was recorded", len(capped)).format(
                names=", ".join(estimator_name(n) for n in capped)),
            _("no estimate is shown above {ceiling}: the Open Rate plus the letters a person clicked without any "
              "recorded open (images off); an estimate beyond it fails its assumption").format(
                ceiling=pct(f["human_open_ceiling"])),
            key="ceiling"))
    last = last_mailings(result.by_posting)
    if len(last):
        moved = int((last["raw_open_rate"].rank(ascending=False, method="first")
                     != last["human_open_rate"].rank(ascending=False, method="first")).sum())
        if moved:
            out.append(Finding(
                "info", ngettext("{moved} of the last {total} mailing change rank once machine opens are removed",
                                 "{moved} of the last {total} mailings change rank once machine opens are removed",
                                 len(last)).format(moved=count(moved), total=count(len(last))),
                _("a letter that looked best by Open Rate may only have gone to more Apple Mail users"),
                fix=_("pick winning letters and subject lines by the human open rate or by clicks"), key="ranking",
                extra={"stake": _("decisions: the next mailings copy the letter and subject line that won on "
                                  "Apple's automatic opens, not the one people read")}))
    return out


def summary_table(result) -> pd.DataFrame:
    """The answer as a two-column table of formatted text."""
    f = result.figures
    ci = f.get("human_open_rate_ci") or [None, None]
    rows = [
        (_("Delivered letters"), count(f["delivered"])),
        (_("Opened letters (at least one open record)"), of(f["unique_opens"], f["delivered"])),
        (_("Open Rate as Bitrix counts it"), pct(f["raw_open_rate"])),
        (_("Human open rate ({estimator})").format(estimator=estimator_name(f.get("headline_estimator", ""))),
         pct(f["human_open_rate"])),
        (_("Human open rate, 95% interval"), interval(*ci)),
        (_("Machine opens among opens"), pct(f["machine_open_share"])),
        (_("Letters to Apple Mail contacts"), pct(f.get("apple_share"))),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


def summary_caption(period_label: str) -> str:
    return _("Open Rate and human open rate, sends of {period}").format(period=period_label)


SUMMARY_LABELS = {"figure": N_("Figure"), "value": N_("Value")}

LOG_QUALITY = {
    "files": N_("log files read"), "lines": N_("lines"),
    "unparsed_lines": N_("tracking lines in an unknown format"),
    "tracking_lines": N_("requests to the image or click addresses"),
    "sender_opens": N_("campaign image loads"),
    "sender_clicks": N_("campaign clicks"), "crm_hits": N_("CRM one-to-one mail (not campaigns)"),
    "other_module_hits": N_("requests of other modules"), "garbage_tags": N_("tags that name no recipient"),
    "failed_requests": N_("failed requests (HTTP 400 or more)"),
    "undecodable_lines": N_("other lines with bytes that are not UTF-8 (binary junk)"),
    "unreadable_files": N_("log files that could not be read"),
    "orphan_recipient_hits": N_("requests naming a recipient that does not exist"),
    "orphan_recipients": N_("recipients named by such requests"),
    "outside_period_hits": N_("requests for letters sent outside the period (or not delivered)"),
    "opened_rows_in_log_share": N_("opened letters of the period seen in the log"),
}


def log_quality_table(result) -> pd.DataFrame:
    stats = result.log_stats or {}
    rows = [(_(LOG_QUALITY[k]) if k in LOG_QUALITY else k.replace("_", " "),
             pct(v) if k.endswith("_share") else count(v) if isinstance(v, (int, float)) else str(v))
            for k, v in stats.items() if k != "per_file"]   # per file: opens_log_files
    return pd.DataFrame(rows, columns=["what", "count"])


def log_quality_caption() -> str:
    return _("Access log: what was read")


LOG_QUALITY_LABELS = {"what": N_("In the web-server log"), "count": N_("Count")}

ESTIMATOR_LABELS = {"estimator": N_("Estimator"), "human_open_rate": N_("Human open rate"),
                    "ci_low": N_("95% interval from"), "ci_high": N_("95% interval to"),
                    "headline": N_("Used for the answer"), "assumption": N_("Assumes"),
                    "checks_pass": N_("Its checks pass"), "failed_checks": N_("Checks that fail")}
CLIENT_LABELS = {"client": N_("Mail client"), "contacts": N_("Contacts"), "delivered": N_("Delivered"),
                 "opened": N_("Opened"), "raw_open_rate": N_("Open rate (Bitrix)"),
                 "human_open_rate": N_("Human open rate"), "human_open_rate_ci_low": N_("95% interval from"),
                 "human_open_rate_ci_high": N_("95% interval to"), "inflation_pp": N_("Overstated by")}
POSTING_LABELS = {"posting": N_("Mailing no."), "title": N_("Letter"), "sent": N_("Sent"),
                  "delivered": N_("Delivered"), "raw_open_rate": N_("Open rate (Bitrix)"),
                  "human_open_rate": N_("Human open rate"), "inflation_pp": N_("Overstated by"),
                  "prefetch_share": N_("Share to Apple Mail")}


def cannot_run(reason: str) -> str:
    return _("open_inflation cannot run: {reason}").format(reason=reason)


# --- by mail client ----------------------------------------------------------------------------

def client_caption() -> str:
    return _("Mail clients: delivered letters, Open Rate, human open rate, how much it is overstated")



def clients_view(by_client: pd.DataFrame) -> pd.DataFrame:
    """The by-client table with each client's name as a reader sees it; a client without an opened letter
    shows no inflation (there is nothing to overstate), not 0.0 points."""
    view = by_client.copy()
    view["client"] = view["client"].map(client_name)
    view["inflation_pp"] = view["inflation_pp"].where(view["opened"] > 0)
    return view


def unknown_client_sentence(by_client: pd.DataFrame) -> str | None:
    """What the "client not identified" row holds, in words (None without such a row)."""
    row = by_client[by_client["client"] == "unknown"]
    if row.empty or not int(row["delivered"].iloc[0]):
        return None
    row = row.iloc[0]
    return ngettext(
        "{name}: {contacts} contact ({delivered} delivered letters) whose mail client is unknown: neither the "
        "access log nor Bitrix named one. A mail client shows itself only when a letter is opened, so contacts "
        "who opened nothing in the period land here, even at a known provider (such as Mail.ru) when no one "
        "opened a letter in that provider's own client; so do contacts who opened in a program that does not "
        "name itself.",
        "{name}: {contacts} contacts ({delivered} delivered letters) whose mail client is unknown: neither the "
        "access log nor Bitrix named one. A mail client shows itself only when a letter is opened, so contacts "
        "who opened nothing in the period land here, even at a known provider (such as Mail.ru) when no one "
        "opened a letter in that provider's own client; so do contacts who opened in a program that does not "
        "name itself.", int(row["contacts"])).format(
        name=client_name("unknown"), contacts=count(row["contacts"]), delivered=count(row["delivered"]))


# --- the last mailings and the estimators ----------------------------------------------------------

def ranking_caption(n: int) -> str:
    return ngettext("The last {n} mailing: Open Rate and human open rate",
                    "The last {n} mailings: Open Rate and human open rate", n).format(n=count(n))


def estimators_caption() -> str:
    return _("Estimators: human open rate and 95% interval")



def estimators_view(estimators: pd.DataFrame) -> pd.DataFrame:
    view = estimators.drop(columns="assumption").copy()
    view["estimator"] = view["estimator"].map(estimator_name)
    return view


def assumptions(estimators: pd.DataFrame) -> list[str]:
    return [_("{estimator}: {assumption}").format(estimator=estimator_name(r.estimator), assumption=r.assumption)
            for r in estimators.itertuples()]


def last_mailings(by_posting: pd.DataFrame, last: int = 15) -> pd.DataFrame:
    """The last mailings with a human open rate: the same rows in the ranking chart and its table."""
    if by_posting.empty:
        return by_posting
    return by_posting.dropna(subset=["human_open_rate"]).head(last)


def no_access_log() -> str:
    return _("No access log was given: the estimate comes from the database alone.")


def log_files_caption() -> str:
    return _("Access-log files: what each held (a damaged file is read up to the damage)")


LOG_FILE_LABELS = {"file": N_("File"), "lines": N_("Lines"),
                   "tracking_lines": N_("Requests to the image or click addresses"),
                   "sender_hits": N_("Campaign requests"), "unparsed_lines": N_("Lines in an unknown format"),
                   "garbage_tags": N_("Tags that name no recipient"), "undecodable_lines": N_("Lines of binary junk"),
                   "read_error": N_("Read error")}
