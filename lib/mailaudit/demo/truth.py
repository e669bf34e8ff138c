"""The truth file: what the generator planted, counted posting by posting, in the contract's summary.json terms.

Everything here is computed from the generator's own arrays (who was mailed, which reads a person
caused, which orders a send caused), never by the analysis code it is meant to check.

Top-level keys of ``<stem>.truth.json``: ``parameters`` (period, hygiene and conversion parameters the
figures assume, generator settings), ``rules`` (the exact definitions, :data:`RULES`), ``source``
(layout, charset, row counts), ``hygiene`` (every count of the contract), ``hygiene_without_logs``,
``opens`` (contract keys + ``apple_read_within_15min_share``, ``machine_only_recipients``,
``human_read_rate``: people who read, recorded or not), ``clicks`` (click rows and sends by who clicked:
people or machines, by cause, client and provider; gateway timing; inactivity without machine events),
``segments`` (``effects``: planted multipliers; ``nulls``: comparisons whose segment is drawn
independently of every planted effect, expected ratio 1; ``composition``: address books without a
multiplier, whose rest holds the loyal and cold lists; ``mix_effect``; ``by_segment`` expected and
observed rates, ratios and the observed human open rate; ``multipliers``), ``conversion`` (contract keys + ``attributed_orders``, ``planted_lift``),
``data_quality``, ``logs`` (line counts per file, verdicts, bounce classes, access-log noise and
foreign tags), ``planted`` (category sizes, anomalies) and ``world`` (the behaviour profile and its
drawn knobs). Sidecar ``<stem>.machine_opens.csv``:
``recipient_id,kind`` with kind ``mpp`` or ``scanner``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from mailaudit.demo import vocab
from mailaudit.demo.behaviour import (
    BIG, BLOCKED, CLICK_CAUSES, DELIVERED, GATEWAY_CLICK_READ, HUMAN_CLICK, HUMAN_READ_CAUSES, MPP_LOAD,
    SOFT_BOUNCE, ContactState, PostingResult,
)
from mailaudit.demo.config import DAY, END_EXCLUSIVE_TS, HOUR, PERIOD_END, PERIOD_START, START_TS, DemoConfig
from mailaudit.demo.population import (
    CLIENT_LABELS, DISPOSABLE, HARD, INVALID, ROLE, SOFT, TENURE_BANDS, TYPO, Population,
)

RULES = {
    "period": "sends whose DATE_SENT is in [2025-10-01 00:00:00, 2026-10-01 00:00:00); the data snapshot "
              "ends at 2026-10-01 00:00:00 (no read, click, unsubscribe or order after it, except planted "
              "future-dated sends)",
    "delivered": "b_sender_posting_recipient rows of 'mail' letters with STATUS 'N' and DATE_SENT in the period",
    "bounce_status": "every send the remote server rejected (hard, mailbox full, sender block) is STATUS 'E' "
                     "and has exactly one final delivery-log verdict; invalid-syntax addresses and a few "
                     "sends to opted-out contacts are STATUS 'E' with no log line; deferrals that later "
                     "deliver are STATUS 'N'",
    "hard_bounce": "distinct addresses with a hard bounce (5.1.1-type or provider dead-address text, incl. "
                   "Yandex '550 5.7.1 No such user!') logged before the period end; 75% also got an "
                   "automatic b_main_mail_blacklist entry (CATEGORY_ID 0) dated at the bounce, and Bitrix "
                   "stopped mailing those; the rest kept being mailed",
    "sent_after_hard_bounce": "recipient rows of any STATUS of the address with DATE_SENT later than the "
                              "DATE_SENT of its first hard-bounced send",
    "soft_bounce_streak": "per address, sends ordered by DATE_SENT: a run of mailbox-full bounces not "
                          "interrupted by a delivered (STATUS 'N') send; qualifies when the run has >= 3 "
                          "bounces from >= 2 postings and last minus first bounce >= 7 days; sender blocks "
                          "never hit these addresses",
    "sent_after_unsubscribe": "recipient rows of any STATUS of a campaign with DATE_SENT more than 48 h "
                              "after the contact's first b_sender_posting_unsub DATE_INSERT in that campaign",
    "unsubscribed_not_excluded_in_crm": "contacts with IS_UNSUB 'Y' or BLACKLISTED 'Y' whose CODE equals a "
                                        "b_crm_field_multi EMAIL of a CRM contact after lower()/trim(), and "
                                        "is neither a b_crm_exclusion TYPE_ID 2 CODE nor a "
                                        "b_main_mail_blacklist CODE (both compared lower()/trim())",
    "inactive": "contacts with >= 5 delivered sends with DATE_SENT in [2026-04-01, 2026-10-01) (the 6 "
                "calendar months before the period end) and no read or click row dated in that window",
    "duplicates": "provider-normalised address: Gmail (gmail.com, googlemail.com -> gmail.com) drops dots "
                  "and a +tag from the local part; no other provider rule is planted (no other address "
                  "has a '+', and local parts are unique after removing dots, hyphens and underscores); "
                  "duplicate_contacts = cluster size - 1 summed over clusters",
    "categories": "invalid_syntax, typo_domain, disposable_domain, role_account, duplicates, hard bounces "
                  "and mailbox-full addresses are disjoint planted sets; typo and disposable addresses are "
                  "delivered (catch-all) and never read (so provider 'other' is not a click-rate null)",
    "human_open": "a delivered row a person opened with the open recorded: a pixel load by the person's "
                  "client (through Gmail/Yahoo/Yandex image proxies, or Apple's proxy at the time the person "
                  "read) or the read row a click writes; machine loads are Apple MPP prefetches and "
                  "security-gateway fetches seconds after delivery",
    "human_read": "human_read_rate: delivered rows the person read before the snapshot, whether or not a read "
                  "row records it (images-off readers who did not click, readers after a machine load); "
                  "human_open_rate counts only recorded opens by people and is never above it",
    "machine_click": "a click row made by a link-scanning security gateway (cause 'gateway'); no other machine "
                     "clicker is modelled ('other' is 0). Human clicks are the person's own, through whatever "
                     "redirect their gateway puts in front of the link",
    "click_sends": "clicks.* counts delivered rows (as opens.delivered) and their click rows; a send has only "
                   "machine clicks when every click row of it is a machine's",
    "inactive_ignoring_machines": "as inactive, but engagement in the window is a read row written by the person "
                                  "(pixel load or click) or a human click (inactive_people), or any read row except "
                                  "those a machine click wrote plus human clicks (inactive_ignoring_machine_clicks)",
    "machine_opens_csv": "recipient IDs of delivered rows whose read rows are all machine loads; kind mpp "
                         "when any of them came from Apple's proxy, else scanner",
    "access_log": "every read row has exactly one access-log line with the same timestamp: a pixel line, "
                  "or for a read row written by a click, that click's line",
    "expected_counts": "per delivered row P(any read row) = 1-(1-m)(1-h(1-q+qc)) and P(click) = hc (see "
                       "mailaudit.demo.behaviour); ratios are Mantel-Haenszel over postings of these "
                       "expected counts; they ignore the snapshot cut-off",
    "tenure": "age of DATE_INSERT at 2026-10-01 00:00: <1y (<365 days), 1-2y (<730), 2-3y (<1095), 3y+",
    "segments": "every contact is in exactly one b_sender_list; crm_source covers contacts whose address "
                "is a CRM contact's e-mail (others are not in that dimension); provider = the domain after the "
                "last '@': gmail (gmail.com, googlemail.com), mail.ru (mail.ru, bk.ru, list.ru, inbox.ru), "
                "yandex (yandex.ru, ya.ru), apple (icloud.com, me.com, mac.com), microsoft (outlook.com, "
                "hotmail.com), yahoo (yahoo.com), rambler (rambler.ru), other (company, typo and "
                "disposable domains); recipients whose contact row is missing are left out",
    "attribution": "an order (b_sale_order, CANCELED 'N') reaches a sender contact through "
                   "b_crm_order_contact_company (ENTITY_TYPE_ID 3) -> CRM contact -> its e-mails "
                   "(lower/trim) = CODE, or b_sale_order.USER_ID = b_sender_contact.USER_ID. Candidate "
                   "sends: that contact's delivered sends in the period. A send qualifies by click when one "
                   "of its b_sender_posting_click rows has 0 <= order DATE_INSERT - click DATE_INSERT <= 30 "
                   "days, by open when one of its b_sender_posting_read rows (machine loads included) has "
                   "0 <= order - read <= 5 days. The order goes to the qualifying-by-click send with the "
                   "latest DATE_SENT (tie: higher recipient ID), else the qualifying-by-open send with the "
                   "latest DATE_SENT. Cohort = month of the send's DATE_SENT",
    "planted_lift": "per e-mail posting, mailed = its delivered rows, not mailed = eligible members of the "
                    "posting's lists the sampling left out (inserted before the send, not opted out); "
                    "converted = has a non-cancelled order in (DATE_SEND, DATE_SEND + 30 days]; pooled "
                    "over postings",
}


PROVIDER_SEGMENT = {"mailru": "mail.ru", "corporate": "other"}
"""Segment labels of the provider dimension: the domain's mailbox provider, company domains under 'other'."""


def _months_before(ts: int, months: int) -> int:
    d = datetime.utcfromtimestamp(ts)
    y, m = divmod(d.year * 12 + d.month - 1 - months, 12)
    day = min(d.day, calendar.monthrange(y, m + 1)[1])
    return int((datetime(y, m + 1, day) - datetime(1970, 1, 1)).total_seconds())


def gmail_normalise(code: str) -> str:
    local, _, domain = code.rpartition("@")
    if domain in ("gmail.com", "googlemail.com"):
        return local.split("+", 1)[0].replace(".", "") + "@gmail.com"
    return code


def mantel_haenszel(e_s, n_s, e_r, n_r) -> float | None:
    """sum_p(E_S,p n_R,p / n_p) / sum_p(E_R,p n_S,p / n_p) over strata with both groups present."""
    n = n_s + n_r
    ok = (n_s > 0) & (n_r > 0)
    num = (e_s[ok] * n_r[ok] / n[ok]).sum()
    den = (e_r[ok] * n_s[ok] / n[ok]).sum()
    return float(num / den) if den > 0 else None


@dataclass
class Truth:
    """Accumulates per posting; ``finish`` returns the JSON document."""

    cfg: DemoConfig
    pop: Population
    n_postings: int
    dims: dict = field(init=False)
    def __post_init__(self):
        pop = self.pop
        provider = np.array([PROVIDER_SEGMENT.get(p, p) for p in pop.provider.tolist()], dtype=object)
        self.provider_labels = sorted(set(provider.tolist()))
        prov_idx = {p: i for i, p in enumerate(self.provider_labels)}
        self.dims = {
            "list": ([name for _c, name, *_x in vocab.LISTS], pop.list_idx.astype(np.int64)),
            "provider": (self.provider_labels, np.array([prov_idx[p] for p in provider], dtype=np.int64)),
            "crm_source": ([s for s, *_x in vocab.CRM_SOURCES], pop.crm_source.astype(np.int64)),
            "tenure": (list(TENURE_BANDS), pop.tenure_band().astype(np.int64)),
        }
        self.seg = {d: {k: np.zeros((self.n_postings, len(labels))) for k in ("n", "eo", "ec", "o", "c", "h", "hc")}
                    for d, (labels, _idx) in self.dims.items()}
        nc = len(CLIENT_LABELS)
        self.client = {k: np.zeros(nc, dtype=np.int64) for k in ("delivered", "opened", "human", "read")}
        self.click_by = {dim: {k: np.zeros(len(labels), dtype=np.int64) for k in
                               ("delivered", "clicked", "human_clicked", "only_machine", "click_rows", "machine_rows")}
                         for dim, labels in (("client", CLIENT_LABELS), ("provider", self.provider_labels))}
        self.click_rows_by_cause = np.zeros(len(CLICK_CAUSES), dtype=np.int64)
        self.gateway_reads_from_clicks = 0
        self.gateway_delays: list[np.ndarray] = []
        self.gateway_pixel_first = np.zeros(2, dtype=np.int64)   # scans, of which with a pixel load first
        self.links_per_scan: list[np.ndarray] = []
        self.contact_human_click = np.zeros(pop.size, dtype=bool)
        self.contact_machine_click = np.zeros(pop.size, dtype=bool)
        self.apple_fast = np.zeros(2, dtype=np.int64)
        self.machine_rows: list[tuple[np.ndarray, np.ndarray]] = []
        n = pop.size
        self.window_start = _months_before(END_EXCLUSIVE_TS, self.cfg.hygiene.inactive_months)
        self.window_sends = np.zeros(n, dtype=np.int32)
        self.window_engaged = np.zeros(n, dtype=bool)
        self.window_engaged_no_machine_clicks = np.zeros(n, dtype=bool)
        self.window_engaged_people = np.zeros(n, dtype=bool)
        self.sent_after_hard = 0
        self.sent_after_blacklist = 0
        self.sent_after_unsub = 0
        self.block_events = 0
        self.soft_events: list[tuple] = []
        self.buyer_sends, self.buyer_reads, self.buyer_clicks = [], [], []
        self.cohort_delivered: dict[str, int] = {}
        self.lift_postings: list[dict] = []
        self.dq = {"sends_before_posting_date": 0, "sends_in_future": 0, "recipients_without_contact": 0}
        self.read_rows = 0
        self.click_rows = 0
        self.clicks_without_read_recipients = 0
        self.clicks_without_read_rows = 0

    def add_posting(self, r: PostingResult, st: ContactState) -> None:
        pop, p = self.pop, r.posting
        c = r.contact
        in_period = (r.date_sent >= START_TS) & (r.date_sent < END_EXCLUSIVE_TS)
        delivered = (r.outcome == DELIVERED) & in_period
        self.read_rows += len(r.read_rid)
        self.click_rows += len(r.click_rid)
        self.dq["sends_before_posting_date"] += int((r.date_sent < p.send_ts).sum())
        self.dq["sends_in_future"] += int((r.date_sent >= END_EXCLUSIVE_TS).sum())
        self.dq["recipients_without_contact"] += int(pop.deleted[c].sum())
        clicked_no_read = r.is_click & ~r.is_read
        self.clicks_without_read_recipients += int(clicked_no_read.sum())
        self.clicks_without_read_rows += int(np.isin(r.click_rid, r.rid[clicked_no_read]).sum())

        # opens by the recipient's true client
        cl = pop.client[c]
        for key, mask in (("delivered", delivered), ("opened", delivered & r.is_read),
                          ("human", delivered & r.human_open), ("read", delivered & r.person_read)):
            self.client[key] += np.bincount(cl[mask], minlength=len(CLIENT_LABELS))
        row_of = np.searchsorted(r.rid, r.read_rid)
        machine_only = delivered & r.is_read & ~r.human_open
        has_mpp = np.zeros(len(r.rid), dtype=bool)
        has_mpp[row_of[r.read_cause == MPP_LOAD]] = True
        self.machine_rows.append((r.rid[machine_only], has_mpp[machine_only]))
        fast = np.zeros(len(r.rid), dtype=bool)
        fast[row_of[(r.read_ts - r.date_sent[row_of]) <= 15 * 60]] = True
        apple = delivered & (cl == 0)
        self.apple_fast += (int(apple.sum()), int((apple & fast).sum()))

        human_clicked = self._add_clicks(r, delivered)

        # segments: expected and observed counts per posting and segment
        seg_rows = delivered & ~pop.deleted[c]
        for dim, (labels, idx) in self.dims.items():
            s = idx[c]
            ok = seg_rows & (s >= 0)
            acc = self.seg[dim]
            k = len(labels)
            acc["n"][p.index] += np.bincount(s[ok], minlength=k)
            acc["eo"][p.index] += np.bincount(s[ok], weights=r.p_open[ok], minlength=k)
            acc["ec"][p.index] += np.bincount(s[ok], weights=r.p_click[ok], minlength=k)
            acc["o"][p.index] += np.bincount(s[ok], weights=r.is_read[ok], minlength=k)
            acc["c"][p.index] += np.bincount(s[ok], weights=r.is_click[ok], minlength=k)
            acc["h"][p.index] += np.bincount(s[ok], weights=r.human_open[ok], minlength=k)
            acc["hc"][p.index] += np.bincount(s[ok], weights=human_clicked[ok], minlength=k)

        # hygiene evidence up to the period end
        live = ~pop.deleted[c] & (r.date_sent < END_EXCLUSIVE_TS)   # evidence up to the period end
        win = (r.outcome == DELIVERED) & (r.date_sent >= self.window_start) & (r.date_sent < END_EXCLUSIVE_TS)
        np.add.at(self.window_sends, c[win], 1)
        for ts, rid in ((r.read_ts, r.read_rid), (r.click_ts, r.click_rid)):
            hit = (ts >= self.window_start) & (ts < END_EXCLUSIVE_TS)
            self.window_engaged[c[np.searchsorted(r.rid, rid[hit])]] = True
        human_click = r.click_cause == HUMAN_CLICK
        for store, read_ok in ((self.window_engaged_no_machine_clicks, r.read_cause != GATEWAY_CLICK_READ),
                               (self.window_engaged_people, np.isin(r.read_cause, HUMAN_READ_CAUSES))):
            for ts, rid in ((r.read_ts[read_ok], r.read_rid[read_ok]), (r.click_ts[human_click], r.click_rid[human_click])):
                hit = (ts >= self.window_start) & (ts < END_EXCLUSIVE_TS)
                store[c[np.searchsorted(r.rid, rid[hit])]] = True
        self.sent_after_hard += int((live & (r.date_sent > st.hard_ts[c])).sum())
        # what is visible without logs: sends after the automatic blacklist entry (dated at the bounce's log line)
        blacklisted = (pop.category[c] == HARD) & pop.auto_blacklist[c]
        self.sent_after_blacklist += int((live & blacklisted & (r.date_sent > st.hard_log_ts[c])).sum())
        same = (st.unsub_mailing[c] == p.mailing_id) & (st.unsub_ts[c] < BIG)
        late = r.date_sent > st.unsub_ts[c] + self.cfg.hygiene.unsub_grace_hours * HOUR
        self.sent_after_unsub += int((live & same & late).sum())
        self.block_events += int(((r.outcome == BLOCKED) & (r.date_sent < END_EXCLUSIVE_TS)).sum())
        soft_rows = pop.category[c] == SOFT
        if soft_rows.any():
            self.soft_events.append((c[soft_rows], r.date_sent[soft_rows], r.outcome[soft_rows],
                                     np.full(int(soft_rows.sum()), p.index)))

        # conversion inputs: buyers' delivered sends and their reads and clicks
        month = np.datetime64(p.send_ts, "s").astype("datetime64[M]")
        months = r.date_sent.astype("datetime64[s]").astype("datetime64[M]")
        for mth, cnt in zip(*np.unique(months[delivered], return_counts=True)):
            self.cohort_delivered[str(mth)] = self.cohort_delivered.get(str(mth), 0) + int(cnt)
        b = delivered & pop.buyer[c]
        self.buyer_sends.append((r.rid[b], c[b], r.date_sent[b]))
        for store, ts, rid in ((self.buyer_reads, r.read_ts, r.read_rid), (self.buyer_clicks, r.click_ts, r.click_rid)):
            keep = np.isin(rid, r.rid[b])
            store.append((rid[keep], ts[keep]))
        self.lift_postings.append({
            "send_ts": p.send_ts, "mailed_n": int(((r.outcome == DELIVERED)).sum()),
            "mailed_buyers": c[(r.outcome == DELIVERED) & pop.buyer[c]], "held_out_n": r.held_out_n,
            "held_out_buyers": r.held_out, "month": str(month),
        })

    def _add_clicks(self, r: PostingResult, delivered: np.ndarray) -> np.ndarray:
        """Click rows of delivered rows by cause; per send who clicked; gateway timing. Returns human_clicked."""
        n = len(r.rid)
        row = np.searchsorted(r.rid, r.click_rid)
        on_delivered = delivered[row]
        human = r.click_cause == HUMAN_CLICK
        self.click_rows_by_cause += np.bincount(r.click_cause[on_delivered], minlength=len(CLICK_CAUSES))
        human_clicked = np.zeros(n, dtype=bool)
        human_clicked[row[human]] = True
        machine_clicked = np.zeros(n, dtype=bool)
        machine_clicked[row[~human]] = True
        human_clicked &= delivered
        machine_clicked &= delivered
        self.contact_human_click[r.contact[human_clicked]] = True
        self.contact_machine_click[r.contact[machine_clicked]] = True
        rows_of = {"click_rows": row[on_delivered], "machine_rows": row[on_delivered & ~human]}
        sends = {"delivered": delivered, "clicked": human_clicked | machine_clicked, "human_clicked": human_clicked,
                 "only_machine": machine_clicked & ~human_clicked}
        for dim, idx in (("client", self.pop.client[r.contact]), ("provider", self.dims["provider"][1][r.contact])):
            acc, k = self.click_by[dim], len(self.click_by[dim]["delivered"])
            for key, mask in sends.items():
                acc[key] += np.bincount(idx[mask], minlength=k)
            for key, rows in rows_of.items():
                acc[key] += np.bincount(idx[rows], minlength=k)
        self.gateway_reads_from_clicks += int((delivered[np.searchsorted(r.rid, r.read_rid)]
                                               & (r.read_cause == GATEWAY_CLICK_READ)).sum())
        scanned = delivered & (r.gateway_first_ts < BIG)
        if scanned.any():
            self.gateway_delays.append((r.gateway_first_ts - r.date_sent)[scanned])
            self.gateway_pixel_first += (int(scanned.sum()), int((scanned & r.gateway_pixel).sum()))
            per_row = np.bincount(row[on_delivered & ~human], minlength=n)
            self.links_per_scan.append(per_row[scanned & machine_clicked])
        return human_clicked

    # ------------------------------------------------------------------ finish
    def hygiene(self, st: ContactState, commerce) -> tuple[dict, dict]:
        pop, cfg = self.pop, self.cfg
        live = ~pop.deleted
        cat = pop.category
        counts = {name: int(((cat == k) & live).sum()) for k, name in
                  ((INVALID, "invalid_syntax"), (ROLE, "role_account"), (DISPOSABLE, "disposable_domain"),
                   (TYPO, "typo_domain"))}
        duplicates = int(pd.Series([gmail_normalise(c) for c in pop.code[live]]).duplicated().sum())
        hard = live & (st.hard_ts < END_EXCLUSIVE_TS)
        streak = self._soft_streaks()
        opted = live & ((st.unsub_ts < BIG) | st.complained)
        not_excluded = sum(1 for i in np.flatnonzero(opted & commerce.contact_in_crm)
                           if pop.code[i] not in commerce.exclusion_norm and pop.code[i] not in commerce.blacklist_norm)
        inactive = live & (self.window_sends >= cfg.hygiene.inactive_min_sends) & ~self.window_engaged
        hygiene = {
            "contacts": int(live.sum()),
            **counts,
            "duplicate_contacts": int(duplicates),
            "hard_bounce": int(hard.sum()),
            "soft_bounce_streak": int(streak),
            "sender_block_events": int(self.block_events),
            "sent_after_hard_bounce": int(self.sent_after_hard),
            "unsubscribed_not_excluded_in_crm": int(not_excluded),
            "sent_after_unsubscribe": int(self.sent_after_unsub),
            "complaints": int((st.complained & live).sum()),
            "inactive": int(inactive.sum()),
        }
        auto = sum(1 for code in pop.code[live] if code in commerce.auto_blacklist_norm)
        without_logs = {"hard_bounce": int(auto), "sent_after_hard_bounce": int(self.sent_after_blacklist),
                        "note": "hard bounces visible from automatic b_main_mail_blacklist entries alone; later "
                                "sends are the rows of any STATUS dated after the address's first automatic entry "
                                "(Bitrix's hand-off failures to blacklisted addresses)"}
        return hygiene, without_logs

    def _soft_streaks(self) -> int:
        if not self.soft_events:
            return 0
        c, ts, out, post = (np.concatenate([e[i] for e in self.soft_events]) for i in range(4))
        order = np.lexsort((ts, c))
        c, ts, out, post = c[order], ts[order], out[order], post[order]
        need = self.cfg.hygiene.soft_bounce_streak
        qualified = set()
        run: list[tuple[int, int]] = []
        prev = -1
        for ci, t, o, pi in zip(c.tolist(), ts.tolist(), out.tolist(), post.tolist()):
            if ci != prev:
                run, prev = [], ci
            if t >= END_EXCLUSIVE_TS:
                continue
            if o == SOFT_BOUNCE:
                run.append((t, pi))
                if (len(run) >= need and len({q for _t, q in run}) >= 2 and run[-1][0] - run[0][0] >= 7 * DAY):
                    qualified.add(ci)
            elif o == DELIVERED:
                run = []
        return len(qualified)

    def opens(self) -> dict:
        d, o, h, rd = (self.client[k] for k in ("delivered", "opened", "human", "read"))
        by_client = {}
        for i, label in enumerate(CLIENT_LABELS):
            if d[i]:
                raw, hum = o[i] / d[i], h[i] / d[i]
                by_client[label] = {"delivered": int(d[i]), "raw_open_rate": raw, "human_open_rate": hum,
                                    "inflation_pp": 100 * (raw - hum), "human_read_rate": rd[i] / d[i]}
        delivered, opened, human, read = int(d.sum()), int(o.sum()), int(h.sum()), int(rd.sum())
        return {
            "evidence": "generator",
            "delivered": delivered, "unique_opens": opened,
            "raw_open_rate": opened / delivered if delivered else None,
            "human_open_rate": human / delivered if delivered else None,
            "machine_open_share": (opened - human) / opened if opened else None,
            "by_client": by_client,
            "apple_read_within_15min_share": (self.apple_fast[1] / self.apple_fast[0]) if self.apple_fast[0] else None,
            "machine_only_recipients": int(sum(len(r) for r, _k in self.machine_rows)),
            "human_read_rate": read / delivered if delivered else None,
            "human_reads_without_own_read_row": read - human,
        }

    def clicks(self) -> dict:
        """Click rows and sends by who clicked (see RULES machine_click, click_sends)."""
        def rates(acc, j):
            dlv = int(acc["delivered"][j])
            return {"delivered": dlv, "click_rate": acc["clicked"][j] / dlv, "human_click_rate": acc["human_clicked"][j] / dlv,
                    "sends_only_machine_clicks": int(acc["only_machine"][j]), "click_rows": int(acc["click_rows"][j]),
                    "machine_click_rows": int(acc["machine_rows"][j])}

        c = self.click_by["client"]
        rows = int(self.click_rows_by_cause.sum())
        machine = {cause: int(v) for cause, v in zip(CLICK_CAUSES[1:], self.click_rows_by_cause[1:])}
        delays = np.concatenate(self.gateway_delays) if self.gateway_delays else np.zeros(0)
        links = np.concatenate(self.links_per_scan) if self.links_per_scan else np.zeros(0)
        delivered = int(c["delivered"].sum())
        mailed = ~self.pop.deleted & (self.window_sends >= self.cfg.hygiene.inactive_min_sends)
        return {
            "delivered": delivered,
            "click_rows": rows, "human_click_rows": int(self.click_rows_by_cause[HUMAN_CLICK]),
            "machine_click_rows": {**machine, "other": 0},
            "machine_click_share": (rows - int(self.click_rows_by_cause[HUMAN_CLICK])) / rows if rows else None,
            "sends_clicked": int(c["clicked"].sum()), "sends_human_clicked": int(c["human_clicked"].sum()),
            "sends_only_machine_clicks": int(c["only_machine"].sum()),
            "click_rate": c["clicked"].sum() / delivered if delivered else None,
            "human_click_rate": c["human_clicked"].sum() / delivered if delivered else None,
            "contacts_clicked": int((self.contact_human_click | self.contact_machine_click).sum()),
            "contacts_only_machine_clicks": int((self.contact_machine_click & ~self.contact_human_click).sum()),
            "read_rows_written_by_machine_clicks": self.gateway_reads_from_clicks,
            "gateway": {
                "sends_scanned": int(self.gateway_pixel_first[0]),
                "pixel_first_share": (self.gateway_pixel_first[1] / self.gateway_pixel_first[0]
                                      if self.gateway_pixel_first[0] else None),
                "first_action_seconds_after_date_sent": ({f"p{q}": float(np.percentile(delays, q)) for q in (10, 50, 90, 99)}
                                                         if len(delays) else None),
                "links_clicked_per_scan": float(links.mean()) if len(links) else None,
            },
            "inactive_ignoring_machine_clicks": int((mailed & ~self.window_engaged_no_machine_clicks).sum()),
            "inactive_people": int((mailed & ~self.window_engaged_people).sum()),
            "by_client": {label: rates(c, j) for j, label in enumerate(CLIENT_LABELS) if c["delivered"][j]},
            "by_provider": {label: rates(self.click_by["provider"], j) for j, label in enumerate(self.provider_labels)
                            if self.click_by["provider"]["delivered"][j]},
        }

    def machine_csv_rows(self):
        for rids, mpp in self.machine_rows:
            for rid, is_mpp in zip(rids.tolist(), mpp.tolist()):
                yield rid, "mpp" if is_mpp else "scanner"

    def segments(self) -> dict:
        open_mult = {name: o for _c, name, _s, o, _k in vocab.LISTS}
        click_mult = {name: k for _c, name, _s, _o, k in vocab.LISTS}
        mix_name = next(name for code, name, *_x in vocab.LISTS if code == vocab.MIX_LIST)
        src_click = {s: m for s, _share, m in vocab.CRM_SOURCES}
        effects, nulls, composition, ratios = [], [], [], {}
        for dim, (labels, _idx) in self.dims.items():
            acc = self.seg[dim]
            ratios[dim] = {}
            for j, label in enumerate(labels):
                entry = {}
                for metric, key in (("open_rate", "eo"), ("click_rate", "ec")):
                    e_s, n_s = acc[key][:, j], acc["n"][:, j]
                    e_r, n_r = acc[key].sum(axis=1) - e_s, acc["n"].sum(axis=1) - n_s
                    mh = mantel_haenszel(e_s, n_s, e_r, n_r)
                    crude = (e_s.sum() / n_s.sum()) / (e_r.sum() / n_r.sum()) if n_s.sum() and n_r.sum() else None
                    entry[metric] = {"ratio": mh, "crude_ratio": crude, "delivered": int(n_s.sum()),
                                     "expected_rate": float(e_s.sum() / n_s.sum()) if n_s.sum() else None,
                                     "observed_rate": float(acc["o" if key == "eo" else "c"][:, j].sum() / n_s.sum())
                                     if n_s.sum() else None}
                    planted = None
                    if dim == "list":
                        planted = open_mult[label] if metric == "open_rate" else click_mult[label]
                    elif dim == "crm_source" and metric == "click_rate":
                        planted = src_click[label]
                    if planted is not None and planted != 1.0:
                        effects.append({"dimension": dim, "segment": label, "metric": metric,
                                        "multiplier": planted, "ratio": mh})
                    elif dim == "list":
                        composition.append({"dimension": dim, "segment": label, "metric": metric, "ratio": mh,
                                            "note": "no multiplier of its own, but its rest holds the loyal and "
                                                    "cold lists: the expected ratio is what the mailings' mix of "
                                                    "lists makes it" + (" (also the mix effect)" if label == mix_name
                                                                        else "")})
                    elif dim in ("tenure", "crm_source") or (dim == "provider" and metric == "click_rate"
                                                              and label != "other"):
                        nulls.append({"dimension": dim, "segment": label, "metric": metric, "ratio": mh})
                n_s = acc["n"][:, j].sum()
                entry["human_open_rate"] = {"delivered": int(n_s),
                                            "observed_rate": float(acc["h"][:, j].sum() / n_s) if n_s else None}
                entry["human_click_rate"] = {"delivered": int(n_s),
                                             "observed_rate": float(acc["hc"][:, j].sum() / n_s) if n_s else None}
                ratios[dim][label] = entry
        mix = {"dimension": "list", "segment": mix_name,
               "metrics": {m: {"raw_ratio": ratios["list"][mix_name][m]["crude_ratio"],
                               "ratio": ratios["list"][mix_name][m]["ratio"]} for m in ("open_rate", "click_rate")},
               "planted_multiplier": 1.0,
               "note": "mailed only by the strong letters (Black Friday, seasonal sale, webinars), together "
                       "with part of the site list: the pooled (raw) ratio is far from 1; the within-posting "
                       "ratio is 1 by construction, up to which people the list happens to hold"}
        return {"effects": effects, "nulls": nulls, "composition": composition, "mix_effect": mix,
                "by_segment": ratios,
                "multipliers": {"list_open": open_mult, "list_click": click_mult, "crm_source_click": src_click},
                "provider_note": "raw open_rate by provider is NOT null: Apple MPP and gateway loads inflate "
                                 "apple and corporate addresses"}

    def conversion(self, commerce) -> dict:
        cfg = self.cfg.conversion
        sends = pd.DataFrame({"rid": np.concatenate([s[0] for s in self.buyer_sends]),
                              "contact": np.concatenate([s[1] for s in self.buyer_sends]),
                              "sent": np.concatenate([s[2] for s in self.buyer_sends])})
        ok = ~commerce.order_canceled & (commerce.order_contact >= 0)
        orders = pd.DataFrame({"order": np.flatnonzero(ok), "contact": commerce.order_contact[ok],
                               "t": commerce.order_ts[ok], "price": commerce.order_price[ok]})
        attributed = pd.DataFrame({"order": [], "rid": [], "sent": []}).astype(np.int64)
        for store, window in ((self.buyer_clicks, cfg.click_window_days), (self.buyer_reads, cfg.open_window_days)):
            events = pd.DataFrame({"rid": np.concatenate([e[0] for e in store]),
                                   "e": np.concatenate([e[1] for e in store])}).merge(sends, on="rid")
            cand = orders[~orders["order"].isin(attributed["order"])].merge(events, on="contact")
            lag = cand["t"] - cand["e"]
            cand = cand[(lag >= 0) & (lag <= window * DAY)]
            best = cand.sort_values(["order", "sent", "rid"]).groupby("order").tail(1)
            attributed = pd.concat([attributed, best[["order", "rid", "sent"]]], ignore_index=True)
        attributed["price"] = commerce.order_price[attributed["order"].to_numpy()]
        attributed["month"] = attributed["sent"].to_numpy().astype("datetime64[s]").astype("datetime64[M]").astype(str)
        per_send = attributed.groupby("rid").agg(price=("price", "sum"), month=("month", "first"))
        by_month = per_send.groupby("month").agg(converted=("price", "size"), revenue=("price", "sum"))
        delivered = sum(self.cohort_delivered.values())
        revenue = round(float(attributed["price"].sum()), 2)
        cohorts = []
        for mth in sorted(self.cohort_delivered):
            conv = int(by_month["converted"].get(mth, 0))
            rev = float(by_month["revenue"].get(mth, 0.0))
            dlv = self.cohort_delivered[mth]
            cohorts.append({"cohort": mth, "delivered": dlv, "converted": conv,
                            "conversion_rate": conv / dlv, "revenue_per_recipient": rev / dlv})
        return {
            "windows": {"open_days": cfg.open_window_days, "click_days": cfg.click_window_days},
            "source": "orders",
            "delivered": delivered, "converted": len(per_send),
            "conversion_rate": len(per_send) / delivered if delivered else None,
            "revenue": revenue, "revenue_per_recipient": revenue / delivered if delivered else None,
            "attributed_orders": len(attributed),
            "attributed_orders_email_caused": int(commerce.order_email_caused[attributed["order"].to_numpy()].sum()),
            "cohorts": cohorts,
            "utm": {"deals": commerce.utm_deals, "revenue": commerce.utm_revenue},
            "planted_lift": self._lift(commerce),
        }

    def _lift(self, commerce) -> dict:
        ok = ~commerce.order_canceled & (commerce.order_contact >= 0)
        orders = pd.DataFrame({"contact": commerce.order_contact[ok], "t": commerce.order_ts[ok]})
        window = self.cfg.conversion.click_window_days * DAY
        groups = pd.concat([pd.DataFrame({"posting": k, "t0": lp["send_ts"], "mailed": mailed,
                                          "contact": lp["mailed_buyers" if mailed else "held_out_buyers"]})
                            for k, lp in enumerate(self.lift_postings) for mailed in (True, False)])
        hit = groups.merge(orders, on="contact")
        hit = hit[(hit["t"] > hit["t0"]) & (hit["t"] <= hit["t0"] + window)]
        converted = hit.drop_duplicates(["posting", "mailed", "contact"])["mailed"].value_counts()
        mailed_conv, held_conv = int(converted.get(True, 0)), int(converted.get(False, 0))
        mailed_n = sum(lp["mailed_n"] for lp in self.lift_postings)
        held_n = sum(lp["held_out_n"] for lp in self.lift_postings)
        m_rate = mailed_conv / mailed_n if mailed_n else None
        h_rate = held_conv / held_n if held_n else None
        return {
            "mailed": mailed_n, "mailed_converted": mailed_conv, "mailed_rate": m_rate,
            "not_mailed": held_n, "not_mailed_converted": held_conv, "not_mailed_rate": h_rate,
            "lift_ratio": (m_rate / h_rate) if m_rate and h_rate else None,
            "orders_caused_by_mail": int(commerce.order_email_caused.sum()),
            "orders_baseline": int((~commerce.order_email_caused).sum()),
            "order_after_click_prob": self.cfg.order_after_click_prob,
            "order_after_open_prob": self.cfg.order_after_open_prob,
            "window_days": self.cfg.conversion.click_window_days,
        }

    def parameters(self) -> dict:
        h, c = self.cfg.hygiene, self.cfg.conversion
        return {
            "period": {"start": PERIOD_START.isoformat(), "end": PERIOD_END.isoformat()},
            "hygiene": {"soft_bounce_streak": h.soft_bounce_streak, "unsub_grace_hours": h.unsub_grace_hours,
                        "inactive_months": h.inactive_months, "inactive_min_sends": h.inactive_min_sends},
            "conversion": {"open_window_days": c.open_window_days, "click_window_days": c.click_window_days,
                           "cohort": c.cohort},
            "generator": {"contacts": self.cfg.contacts, "seed": self.cfg.seed, "layout": self.cfg.layout,
                          "heterogeneity": self.cfg.heterogeneity},
        }

