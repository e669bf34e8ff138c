"""One posting's sends and what people and machines did with them: statuses, bounces, pixel loads, clicks, unsubscribes, orders.

The model, per delivered recipient row (STATUS 'N'):
  h = min(0.95, open_p * list open multiplier * letter open appeal)       a person opens
  c = min(0.95, ctor_p * list click/open multiplier * CRM-source click multiplier * letter click appeal)
                                                                          the person clicks, given an open
                                                                          (0 when the campaign's TRACK_CLICK is 'N')
  m = 0.97 for Apple Mail users with MPP on, 0.9 behind a security gateway, else 0   a machine loads the pixel
  q = 0.1 for non-Apple clients: the person reads with images off (no pixel; a click then writes the read row)
so P(any read row) = 1 - (1 - m)(1 - h(1 - q + qc)) and P(click) = hc: the "expected counts" of the truth file.
These are the baseline world's values; a world (mailaudit.demo.worlds) sets its own. Where a link-scanning
gateway guards the company domain, it acts on a letter with probability a and writes a read row (its pixel
load, or the read row of its first click) with probability a when the letter's clicks are tracked, a times its
pixel probability otherwise: m becomes 1 - (1 - m)(1 - that). Its clicks are machine clicks: P(click) stays
the person's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mailaudit.bitrix.codes import MailAgent
from mailaudit.demo import vocab
from mailaudit.demo.campaigns import BLOCK_POSTINGS, VIOLATION_CAMPAIGN, Posting
from mailaudit.demo.config import DAY, END_EXCLUSIVE_TS, HOUR, DemoConfig
from mailaudit.demo.population import (
    APPLE, GMAIL, HARD, HUMAN_UAS, INVALID, IP_APPLE_PROXY, IP_GOOGLE_PROXY, IP_YAHOO_PROXY,
    IP_YANDEX_PROXY, SOFT, Population,
)
from mailaudit.demo.worlds import BEHAVIOUR_STREAM, GATEWAY_NAMES, World, draw_world, gateway_ips

BIG = np.iinfo(np.int64).max

# delivery outcome of a recipient row
DELIVERED, HARD_BOUNCE, SOFT_BOUNCE, BLOCKED, NO_LOG_ERROR = range(5)
# cause of a read row: machine pixel loads (MPP, gateways), the person's, the read row a click writes
MPP_LOAD, SCANNER_LOAD, HUMAN_LOAD, CLICK_READ, GATEWAY_CLICK_READ = range(5)
READ_CAUSES = ("mpp", "scanner", "human", "click", "gateway_click")
HUMAN_READ_CAUSES = (HUMAN_LOAD, CLICK_READ)
CLICK_READ_CAUSES = (CLICK_READ, GATEWAY_CLICK_READ)
"""Read rows written by a click: they have no pixel line in the access log."""
# cause of a click row
HUMAN_CLICK, GATEWAY_CLICK = range(2)
CLICK_CAUSES = ("human", "gateway")
# IP ranges of machine fetchers (network base, host bits)
APPLE_PROXY_NET = (0x11000000, 24)        # 17.0.0.0/8: Apple's own network
GOOGLE_PROXY_NET = (0x42F95000, 12)       # 66.249.80.0/20
YANDEX_PROXY_NET = (0xD5B4C000, 13)       # 213.180.192.0/19
YAHOO_PROXY_NET = (0x62880000, 18)        # 98.136.0.0/14
SCANNER_NET = (0x286B0000, 16)            # 40.107.0.0/16: Exchange Online Protection


def random_ips(rng: np.random.Generator, net: tuple[int, int], n: int) -> np.ndarray:
    base, bits = net
    return (base + rng.integers(1, (1 << bits) - 1, n)).astype(np.uint32)


@dataclass
class ContactState:
    """What earlier postings left behind, per contact (index = contact ID - 1)."""

    unsub_ts: np.ndarray       # first unsubscribe (b_sender_posting_unsub DATE_INSERT), else BIG
    unsub_mailing: np.ndarray  # campaign (MAILING_ID) of that unsubscribe, 0 if none
    complained: np.ndarray     # bool: spam complaint (BLACKLISTED='Y')
    hard_ts: np.ndarray        # DATE_SENT of the first hard-bounced send, else BIG
    hard_log_ts: np.ndarray    # the delivery-log time of that bounce
    soft_count: np.ndarray     # mailbox-full bounces so far
    last_read_ts: np.ndarray
    last_agent: np.ndarray
    last_ip: np.ndarray
    ever_read: np.ndarray
    ever_click: np.ndarray
    ever_sent_ok: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "ContactState":
        return cls(
            unsub_ts=np.full(n, BIG, dtype=np.int64), unsub_mailing=np.zeros(n, dtype=np.int32),
            complained=np.zeros(n, dtype=bool), hard_ts=np.full(n, BIG, dtype=np.int64),
            hard_log_ts=np.full(n, BIG, dtype=np.int64), soft_count=np.zeros(n, dtype=np.int16),
            last_read_ts=np.full(n, -1, dtype=np.int64), last_agent=np.zeros(n, dtype=np.int8),
            last_ip=np.zeros(n, dtype=np.uint32), ever_read=np.zeros(n, dtype=bool),
            ever_click=np.zeros(n, dtype=bool), ever_sent_ok=np.zeros(n, dtype=bool),
        )


@dataclass
class PostingResult:
    """Row-aligned arrays of one posting (recipients sorted by contact, IDs ascending)."""

    posting: Posting
    rid: np.ndarray
    contact: np.ndarray        # contact index (ID - 1)
    status: np.ndarray         # 'N' / 'E'
    date_sent: np.ndarray      # DATE_SENT as stored (planted anomalies included)
    handoff_ts: np.ndarray     # when the send really reached the mail server (the delivery log's clock)
    outcome: np.ndarray        # DELIVERED, HARD_BOUNCE, …
    deferred: np.ndarray       # bool: deferred once, delivered on retry
    log_delay: np.ndarray      # seconds between DATE_SENT and the delivery-log verdict
    p_open: np.ndarray         # expected raw open (any read row) probability; 0 if not delivered
    p_click: np.ndarray
    human_open: np.ndarray     # bool: a read row caused by the person exists
    is_read: np.ndarray
    is_click: np.ndarray
    is_unsub: np.ndarray
    person_read: np.ndarray    # bool: the person read the letter before the snapshot, recorded or not
    gateway_first_ts: np.ndarray  # first pixel load or click of a link-scanning gateway, else BIG
    gateway_pixel: np.ndarray  # bool: that gateway loaded the pixel
    # read rows
    read_rid: np.ndarray
    read_ts: np.ndarray
    read_cause: np.ndarray
    read_ua: np.ndarray        # index into ua_table
    read_ip: np.ndarray
    # click rows
    click_rid: np.ndarray
    click_ts: np.ndarray
    click_link: np.ndarray     # index into posting.links
    click_ua: np.ndarray
    click_ip: np.ndarray
    click_cause: np.ndarray    # HUMAN_CLICK or GATEWAY_CLICK
    # unsubscribes
    unsub_rid: np.ndarray
    unsub_ts: np.ndarray
    unsub_abuse: np.ndarray
    # orders caused by this posting's opens and clicks: (contact index, ts)
    order_contact: np.ndarray
    order_ts: np.ndarray
    order_after_click: np.ndarray
    # comparable contacts not mailed: eligible list members the sampling left out
    held_out: np.ndarray       # the buyers among them (contact indices)
    held_out_n: int


UA_TABLE = tuple(ua for ua, _agent, _ip in HUMAN_UAS) + (vocab.UA_SCANNER,) + vocab.UA_GATEWAYS
"""User-Agents of pixel loads and clicks, indexed by read_ua / click_ua."""
UA_AGENT = np.array([int(agent) for _ua, agent, _ip in HUMAN_UAS]
                    + [int(MailAgent.UNKNOWN)] * (1 + len(vocab.UA_GATEWAYS)), dtype=np.int8)
SCANNER_UA = len(HUMAN_UAS)
GATEWAY_UA = SCANNER_UA + 1
MOBILE_BROWSER_UA = 8
DESKTOP_BROWSER_UA = 6
HUMAN_IP_KIND = np.array([kind for _ua, _agent, kind in HUMAN_UAS], dtype=np.int8)


class PostingSimulator:
    """Runs postings in date order over one population, carrying the contact state between them."""

    def __init__(self, cfg: DemoConfig, pop: Population, rng: np.random.Generator, world: World | None = None):
        self.cfg, self.pop, self.rng = cfg, pop, rng
        self.world = world or draw_world("baseline", cfg.seed)
        self.wrng = np.random.default_rng([cfg.seed, BEHAVIOUR_STREAM])   # the world's draws only
        k = self.world.knobs
        self.gateways = bool((pop.gateway >= 0).any())
        self.gw_pixel = np.array([k[f"{g}_pixel_prob"] for g in GATEWAY_NAMES])
        self.gw_median = np.array([k[f"{g}_delay_median_s"] for g in GATEWAY_NAMES])
        self.state = ContactState.empty(pop.size)
        self.next_rid = 1
        lists = vocab.LISTS
        self.list_open = np.array([o for *_x, o, _c in lists])
        self.list_ctor = np.array([c / o for *_x, o, c in lists])
        src_click = np.array([m for _s, _share, m in vocab.CRM_SOURCES] + [1.0])
        self.source_click = src_click[np.where(pop.crm_source < 0, len(vocab.CRM_SOURCES), pop.crm_source)]

    def run(self, posting: Posting, mailing_ids: dict) -> PostingResult:
        cfg, pop, rng, st = self.cfg, self.pop, self.rng, self.state
        t0 = posting.send_ts
        news_id = mailing_ids[VIOLATION_CAMPAIGN]

        # audience: list members present before the send, sampled per list
        frac = posting.list_fraction[pop.list_idx]
        eligible = (pop.date_insert < t0) & (frac > 0)
        sampled = rng.random(pop.size) < frac
        unsubscribed = st.unsub_ts < t0
        kept_violator = (unsubscribed & pop.violator & (posting.mailing_id == news_id)
                         & (st.unsub_mailing == news_id) & ~st.complained)
        excluded = ((unsubscribed & ~kept_violator) | st.complained
                    | ((st.hard_ts < t0) & pop.auto_blacklist))
        slip = excluded & (rng.random(pop.size) < 0.01)        # hand-off failures to excluded contacts
        take = eligible & sampled & (~excluded | slip)
        not_mailed = eligible & ~sampled & ~excluded
        held_out = np.flatnonzero(not_mailed & pop.buyer)
        contact = np.flatnonzero(take)
        n = len(contact)
        rid = np.arange(self.next_rid, self.next_rid + n, dtype=np.int64)
        self.next_rid += n

        # send run: recipients in ID order, about 1500 a minute
        duration = max(1200, n * 60 // 1500)
        sent = t0 + (np.arange(n) * duration) // max(n, 1) + rng.integers(0, 3, n)

        # delivery outcome
        outcome = np.full(n, DELIVERED, dtype=np.int8)
        cat = pop.category[contact]
        outcome[slip[contact] | (cat == INVALID)] = NO_LOG_ERROR
        live = outcome == DELIVERED
        hard = live & (cat == HARD) & (sent >= pop.dead_ts[contact])
        outcome[hard] = HARD_BOUNCE
        cap = pop.soft_cap[contact]
        soft = (live & (cat == SOFT) & (sent >= pop.full_ts[contact])
                & ((cap < 0) | (st.soft_count[contact] < cap)))
        outcome[soft] = SOFT_BOUNCE
        st.soft_count[contact[soft]] += 1
        prov = pop.provider[contact]
        for provider, (indices, share) in BLOCK_POSTINGS.items():
            if posting.index in indices:
                # never a deleted contact: every log bounce must resolve to an address in b_sender_contact
                hit = ((outcome == DELIVERED) & (prov == provider) & (cat != SOFT) & ~pop.deleted[contact]
                       & (rng.random(n) < share))
                outcome[hit] = BLOCKED
        status = np.where(outcome == DELIVERED, "N", "E").astype(object)
        delivered = outcome == DELIVERED
        deferred = delivered & (rng.random(n) < np.where(prov == "mailru", 3, 1) * cfg.deferral_prob)
        log_delay = rng.integers(0, 4, n) + np.where(deferred, rng.integers(300, 2400, n), 0)

        first_hard = hard & (st.hard_ts[contact] == BIG)
        st.hard_ts[contact[first_hard]] = sent[first_hard]
        st.hard_log_ts[contact[first_hard]] = sent[first_hard] + log_delay[first_hard]
        st.ever_sent_ok[contact[delivered]] = True

        # engagement of delivered rows
        li = pop.list_idx[contact]
        h = np.minimum(0.95, pop.open_p[contact] * self.list_open[li] * posting.open_appeal)
        c = np.minimum(0.95, pop.ctor_p[contact] * self.list_ctor[li] * self.source_click[contact]
                       * posting.click_appeal) * (1.0 if posting.track_click else 0.0)
        client = pop.client[contact]
        mpp = pop.mpp[contact]
        scanner = pop.scanner[contact]
        m = np.where(mpp, cfg.mpp_load_prob, np.where(scanner, 0.9, 0.0))
        q = pop.images_off_q[contact]
        gw = pop.gateway[contact]
        if self.gateways:
            m_gw = np.where(gw >= 0, self.world["gateway_act_prob"]
                            * (1.0 if posting.track_click else self.gw_pixel[np.maximum(gw, 0)]), 0.0)
            m = 1 - (1 - m) * (1 - m_gw)
        h, c, m = h * delivered, c * delivered, m * delivered
        p_open = 1 - (1 - m) * (1 - h * (1 - q + q * c))
        p_click = h * c

        opens = rng.random(n) < h
        images_off = rng.random(n) < q
        clicks = opens & (rng.random(n) < c)
        machine = rng.random(n) < m

        delay = np.exp(rng.normal(np.log(2.5 * HOUR), 1.2, n)).astype(np.int64) + 60
        open_ts = sent + log_delay + np.minimum(delay, 10 * DAY)
        hour = (open_ts % DAY) // HOUR
        night = hour < 7
        open_ts = np.where(night, open_ts - open_ts % DAY + 7 * HOUR + rng.integers(0, 3 * HOUR, n), open_ts)

        reads = []   # (row index, ts, cause, ua, ip)
        ua_h = pop.human_ua[contact]

        def human_ips(rows):
            kind = HUMAN_IP_KIND[ua_h[rows]]
            ips = pop.home_ip[contact[rows]].copy()
            for k, net in ((IP_APPLE_PROXY, APPLE_PROXY_NET), (IP_GOOGLE_PROXY, GOOGLE_PROXY_NET),
                           (IP_YANDEX_PROXY, YANDEX_PROXY_NET), (IP_YAHOO_PROXY, YAHOO_PROXY_NET)):
                sel = kind == k
                ips[sel] = random_ips(rng, net, int(sel.sum()))
            return ips

        # machine loads: Apple's proxy minutes (sometimes hours) after delivery, gateways seconds after
        k = self.world.knobs
        rows = np.flatnonzero(machine & mpp)
        fast = rng.random(len(rows)) < k["mpp_fast_share"]
        mdelay = np.where(fast, 20 + rng.exponential(k["mpp_fast_mean_s"], len(rows)),
                          np.exp(rng.normal(np.log(k["mpp_slow_median_h"] * HOUR), k["mpp_slow_sigma"],
                                            len(rows)))).astype(np.int64)
        if k["mpp_overnight_share"] > 0:
            mdelay = self._overnight(sent[rows] + log_delay[rows], mdelay, ~fast)
        ts = sent[rows] + log_delay[rows] + mdelay
        reads.append((rows, ts, MPP_LOAD, np.zeros(len(rows), dtype=np.int8),
                      random_ips(rng, APPLE_PROXY_NET, len(rows))))
        again = rng.random(len(rows)) < 0.1
        reads.append((rows[again], ts[again] + rng.integers(HOUR, 2 * DAY, int(again.sum())), MPP_LOAD,
                      np.zeros(int(again.sum()), dtype=np.int8), random_ips(rng, APPLE_PROXY_NET, int(again.sum()))))
        rows = np.flatnonzero(machine & scanner)
        reads.append((rows, sent[rows] + log_delay[rows] + rng.integers(2, 31, len(rows)), SCANNER_LOAD,
                      np.full(len(rows), SCANNER_UA, dtype=np.int8), random_ips(rng, SCANNER_NET, len(rows))))
        scan = self._gateway_scans(posting, gw, delivered, sent + log_delay)
        reads.append(scan["pixel_reads"])
        machine_first = np.full(n, BIG, dtype=np.int64)
        for r, t, *_ in reads:
            np.minimum.at(machine_first, r, t)

        # the person: one load when opening with images on, re-reads except through Gmail's cache
        rows = np.flatnonzero(opens & ~images_off)
        reads.append((rows, open_ts[rows], HUMAN_LOAD, ua_h[rows], human_ips(rows)))
        rereads = rng.poisson(0.5, n) * (opens & ~images_off & (client != GMAIL))
        rows = np.repeat(np.arange(n), rereads)
        reads.append((rows, open_ts[rows] + 60 + rng.exponential(8 * HOUR, len(rows)).astype(np.int64),
                      HUMAN_LOAD, ua_h[rows], human_ips(rows)))

        # clicks a minute or two after the open; a second one sometimes
        click_rows = np.flatnonzero(clicks)
        click_ts = open_ts[click_rows] + 10 + rng.exponential(90, len(click_rows)).astype(np.int64)
        second = rng.random(len(click_rows)) < 0.2
        click_rows2 = click_rows[second]
        click_ts2 = click_ts[second] + 30 + rng.exponential(300, len(click_rows2)).astype(np.int64)
        all_click_rows = np.concatenate([click_rows, click_rows2])
        all_click_ts = np.concatenate([click_ts, click_ts2])
        browser_ua = np.where(pop.human_ua[contact] == MOBILE_BROWSER_UA, MOBILE_BROWSER_UA,
                              np.where(client == APPLE, 1, DESKTOP_BROWSER_UA)).astype(np.int8)
        click_ua = browser_ua[all_click_rows]
        click_ip = pop.home_ip[contact[all_click_rows]]
        # a click with no earlier read row writes one (images were off)
        first_click = np.full(n, BIG, dtype=np.int64)
        np.minimum.at(first_click, all_click_rows, all_click_ts)
        human_pixel = opens & ~images_off
        gw_first = scan["first_click"]
        needs_read = clicks & ~human_pixel & (machine_first > first_click) & (gw_first > first_click)
        rows = np.flatnonzero(needs_read)
        reads.append((rows, first_click[rows], CLICK_READ, browser_ua[rows], pop.home_ip[contact[rows]]))
        # a gateway's click before any pixel load and before the person's click writes the read row
        human_first_pixel = np.where(human_pixel, open_ts, BIG)
        rows = np.flatnonzero((gw_first < BIG) & (machine_first > gw_first) & (human_first_pixel > gw_first)
                              & (first_click >= gw_first))
        reads.append((rows, gw_first[rows], GATEWAY_CLICK_READ, scan["ua"][rows], scan["ip"][rows]))

        read_row = np.concatenate([r for r, *_ in reads]).astype(np.int64)
        read_ts = np.concatenate([np.asarray(t, dtype=np.int64) for _r, t, *_ in reads])
        read_cause = np.concatenate([np.full(len(r), cause, dtype=np.int8) for r, _t, cause, *_ in reads])
        read_ua = np.concatenate([np.asarray(u, dtype=np.int8) for *_x, u, _ip in reads])
        read_ip = np.concatenate([np.asarray(ip, dtype=np.uint32) for *_x, ip in reads])
        keep = read_ts < END_EXCLUSIVE_TS
        order = np.lexsort((read_row[keep], read_ts[keep]))
        read_row, read_ts, read_cause, read_ua, read_ip = (
            a[keep][order] for a in (read_row, read_ts, read_cause, read_ua, read_ip))
        keep = all_click_ts < END_EXCLUSIVE_TS
        order = np.lexsort((all_click_rows[keep], all_click_ts[keep]))
        click_row = all_click_rows[keep][order]
        click_ts_all = all_click_ts[keep][order]
        click_ua, click_ip = click_ua[keep][order], click_ip[keep][order]
        click_link = rng.integers(0, len(posting.links), len(click_row)).astype(np.int8)
        click_cause = np.full(len(click_row), HUMAN_CLICK, dtype=np.int8)
        g_row, g_ts, g_link = scan["clicks"]
        if len(g_row):
            keep = g_ts < END_EXCLUSIVE_TS
            merged = [np.concatenate([a, b[keep]]) for a, b in (
                (click_row, g_row), (click_ts_all, g_ts), (click_link, g_link), (click_ua, scan["ua"][g_row]),
                (click_ip, scan["ip"][g_row]), (click_cause, np.full(len(g_row), GATEWAY_CLICK, dtype=np.int8)))]
            order = np.lexsort((merged[5], merged[0], merged[1]))
            click_row, click_ts_all, click_link, click_ua, click_ip, click_cause = (a[order] for a in merged)

        is_read = np.zeros(n, dtype=bool)
        is_read[read_row] = True
        is_click = np.zeros(n, dtype=bool)
        is_click[click_row] = True
        human_open = np.zeros(n, dtype=bool)
        human_open[read_row[np.isin(read_cause, HUMAN_READ_CAUSES)]] = True

        # the contact's IP and AGENT follow its latest read
        if len(read_row):
            rc = contact[read_row]
            last = np.full(pop.size, -1, dtype=np.int64)
            np.maximum.at(last, rc, read_ts)
            is_last = read_ts == last[rc]
            newer = last > st.last_read_ts
            idx = np.flatnonzero(is_last & newer[rc])
            # several reads at the same second: the one written last (highest position) wins
            st.last_agent[rc[idx]] = UA_AGENT[read_ua[idx]]
            st.last_ip[rc[idx]] = read_ip[idx]
            st.last_read_ts[newer] = last[newer]
            st.ever_read[rc] = True
        st.ever_click[contact[click_row]] = True

        # unsubscribes (some flagged as spam complaints) from people who opened
        cold = np.array([code for code, *_ in vocab.LISTS]) == "cold"
        p_unsub = cfg.unsub_per_open * np.where(cold[li], 2.0, 1.0)
        unsub = opens & (st.unsub_ts[contact] == BIG) & (rng.random(n) < p_unsub)
        unsub_rows = np.flatnonzero(unsub)
        u_ts = open_ts[unsub_rows] + rng.integers(20, 600, len(unsub_rows))
        keep = u_ts < END_EXCLUSIVE_TS
        unsub_rows, u_ts = unsub_rows[keep], u_ts[keep]
        abuse = rng.random(len(unsub_rows)) < cfg.complaint_share
        st.unsub_ts[contact[unsub_rows]] = u_ts
        st.unsub_mailing[contact[unsub_rows]] = posting.mailing_id
        st.complained[contact[unsub_rows[abuse]]] = True
        is_unsub = np.zeros(n, dtype=bool)
        is_unsub[unsub_rows] = True

        # orders caused by mail: a buyer sometimes orders after a click, less often after an open
        buyer = pop.buyer[contact]
        after_click = clicks & buyer & (rng.random(n) < cfg.order_after_click_prob)
        after_open = opens & ~clicks & buyer & (rng.random(n) < cfg.order_after_open_prob)
        rows_c = np.flatnonzero(after_click)
        rows_o = np.flatnonzero(after_open)
        o_ts = np.concatenate([
            first_click[rows_c] + 600 + np.minimum(rng.exponential(1.5 * DAY, len(rows_c)), 28 * DAY).astype(np.int64),
            open_ts[rows_o] + 300 + np.minimum(rng.exponential(0.8 * DAY, len(rows_o)), 4 * DAY).astype(np.int64),
        ])
        o_contact = contact[np.concatenate([rows_c, rows_o])]
        keep = o_ts < END_EXCLUSIVE_TS

        return PostingResult(
            posting=posting, rid=rid, contact=contact, status=status, date_sent=sent.copy(), handoff_ts=sent,
            outcome=outcome, deferred=deferred, log_delay=log_delay, p_open=p_open, p_click=p_click,
            human_open=human_open, is_read=is_read, is_click=is_click, is_unsub=is_unsub,
            person_read=opens & (open_ts < END_EXCLUSIVE_TS), gateway_first_ts=scan["first"],
            gateway_pixel=scan["pixel"],
            read_rid=rid[read_row], read_ts=read_ts, read_cause=read_cause, read_ua=read_ua, read_ip=read_ip,
            click_rid=rid[click_row], click_ts=click_ts_all, click_link=click_link, click_ua=click_ua,
            click_ip=click_ip, click_cause=click_cause, unsub_rid=rid[unsub_rows], unsub_ts=u_ts, unsub_abuse=abuse,
            order_contact=o_contact[keep], order_ts=o_ts[keep],
            order_after_click=(np.arange(len(o_ts)) < len(rows_c))[keep], held_out=held_out,
            held_out_n=int(not_mailed.sum()),
        )

    def _overnight(self, delivered_ts: np.ndarray, delay: np.ndarray, slow: np.ndarray) -> np.ndarray:
        """Some slow prefetches wait for the night (device charging on Wi-Fi): 01:00-06:00, at least 30 min on."""
        wrng = self.wrng
        night = slow & (wrng.random(len(delay)) < self.world["mpp_overnight_share"])
        earliest = delivered_ts + 1800
        at = earliest - earliest % DAY + HOUR + wrng.integers(0, 5 * HOUR, len(delay))
        at = np.where(at < earliest, at + DAY, at)
        return np.where(night, at - delivered_ts, delay)

    def _gateway_scans(self, posting: Posting, gw: np.ndarray, delivered: np.ndarray, arrived: np.ndarray) -> dict:
        """Link-scanning gateways: per scanned letter an optional pixel load, then every tracked link clicked.

        One scan per letter (probability gateway_act_prob), from one address of the vendor's networks
        with one browser User-Agent; the first action comes 5 s + a lognormal delay (vendor median,
        common sigma; at most 2 h) after the letter arrived; links follow each other by exponential
        gaps of gateway_link_gap_s mean, in random order, a few seconds after the pixel if it loaded.
        """
        n = len(gw)
        out = {"first": np.full(n, BIG, dtype=np.int64), "first_click": np.full(n, BIG, dtype=np.int64),
               "pixel": np.zeros(n, dtype=bool), "ua": np.zeros(n, dtype=np.int8), "ip": np.zeros(n, dtype=np.uint32),
               "clicks": (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8)),
               "pixel_reads": (np.zeros(0, np.int64), np.zeros(0, np.int64), SCANNER_LOAD,
                               np.zeros(0, np.int8), np.zeros(0, np.uint32))}
        if not self.gateways:
            return out
        k, wrng = self.world.knobs, self.wrng
        rows = np.flatnonzero(delivered & (gw >= 0))
        rows = rows[wrng.random(len(rows)) < k["gateway_act_prob"]]
        vendor = gw[rows]
        delay = 5 + np.minimum(np.exp(wrng.normal(np.log(self.gw_median[vendor]), k["gateway_delay_sigma"])), 2 * HOUR)
        first = arrived[rows] + delay.astype(np.int64)
        pixel = wrng.random(len(rows)) < self.gw_pixel[vendor]
        out["ua"][rows] = GATEWAY_UA + wrng.integers(0, len(vocab.UA_GATEWAYS), len(rows))
        out["ip"][rows] = gateway_ips(wrng, vendor)
        out["first"][rows], out["pixel"][rows] = first, pixel
        out["pixel_reads"] = (rows[pixel], first[pixel], SCANNER_LOAD, out["ua"][rows[pixel]], out["ip"][rows[pixel]])
        if posting.track_click and len(rows):
            n_links = len(posting.links)
            start = first + np.where(pixel, wrng.integers(1, 6, len(rows)), 0)
            gaps = wrng.exponential(k["gateway_link_gap_s"], (len(rows), n_links))
            gaps[:, 0] = 0
            ts = start[:, None] + np.cumsum(gaps, axis=1).astype(np.int64)
            links = wrng.permuted(np.tile(np.arange(n_links, dtype=np.int8), (len(rows), 1)), axis=1)
            out["first_click"][rows] = ts[:, 0]
            out["clicks"] = (np.repeat(rows, n_links), ts.ravel(), links.ravel())
        return out
