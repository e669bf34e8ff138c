"""``build_demo``: runs population, campaigns, postings and commerce in order and writes the database, logs and truth file."""

from __future__ import annotations

import os

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.random import PCG64, Generator
from sqlalchemy.engine import make_url

from mailaudit.bitrix.codes import SenderContactType
from mailaudit.bitrix.tables import bitrix_metadata, table_columns
from mailaudit.demo import vocab
from mailaudit.demo.behaviour import BIG, CLICK_READ, DELIVERED, PostingResult, PostingSimulator
from mailaudit.demo.campaigns import build_campaigns
from mailaudit.demo.commerce import build_commerce
from mailaudit.demo.config import DAY, END_EXCLUSIVE_TS, DemoConfig
from mailaudit.demo.logs import ACCESS_FORMATS, DELIVERY_FORMATS, AccessLog, DeliveryLogs, ip_str
from mailaudit.demo.nulls import NullingWriter, NullPolicy
from mailaudit.demo.population import CATEGORY_NAMES, CLEAN, Population, build_population
from mailaudit.demo.truth import RULES, Truth
from mailaudit.demo.worlds import WORLDS, draw_world, shape_population
from mailaudit.demo.writer import CHARSETS, PREPARE_ROWS, ServerWriter, SQLiteWriter

ANOMALY_POSTINGS = {"clicks_without_read": 6, "sent_before_posting": 20, "sent_in_future": 25}


@dataclass
class DemoResult:
    database: str                     # SQLite path, or the URL with its password hidden
    truth: Path
    world: str
    machine_opens: Path
    logs: dict = field(default_factory=dict)      # name -> path
    row_counts: dict = field(default_factory=dict)


def _yn(mask) -> np.ndarray:
    return np.where(np.asarray(mask, dtype=bool), "Y", "N").astype(object)


def _plant_anomalies(r: PostingResult, pop: Population, rng: Generator, planted: dict) -> None:
    """Data-quality defects of real portals, planted in the first posting from a fixed index that has candidates."""
    idx = r.posting.index
    quiet = ((r.outcome == DELIVERED) & ~r.is_read & ~r.is_click & ~r.is_unsub & ~pop.buyer[r.contact]
             & ~pop.deleted[r.contact] & (pop.category[r.contact] == CLEAN))
    if idx >= ANOMALY_POSTINGS["sent_before_posting"] and "sends_before_posting_date" not in planted:
        rows = np.flatnonzero(quiet)[:3]
        r.date_sent[rows] = r.posting.send_ts - 2 * DAY - rng.integers(0, 3600, len(rows))
        planted["sends_before_posting_date"] = len(rows)
    if idx >= ANOMALY_POSTINGS["sent_in_future"] and "sends_in_future" not in planted:
        rows = np.flatnonzero(quiet)[:2]
        r.date_sent[rows] = r.date_sent[rows] + 5 * 365 * DAY
        planted["sends_in_future"] = len(rows)
    if idx >= ANOMALY_POSTINGS["clicks_without_read"] and not planted.get("clicks_without_read"):
        # drop the read row a click wrote, where it is the recipient's only read
        reads_per_row = np.bincount(np.searchsorted(r.rid, r.read_rid), minlength=len(r.rid))
        click_read = r.read_cause == CLICK_READ
        only = reads_per_row[np.searchsorted(r.rid, r.read_rid)] == 1
        drop = np.flatnonzero(click_read & only)[:4]
        rows = np.searchsorted(r.rid, r.read_rid[drop])
        keep = np.ones(len(r.read_rid), dtype=bool)
        keep[drop] = False
        for name in ("read_rid", "read_ts", "read_cause", "read_ua", "read_ip"):
            setattr(r, name, getattr(r, name)[keep])
        r.is_read[rows] = False
        r.human_open[rows] = False
        planted["clicks_without_read"] = len(rows)


def build_demo(*, sqlite_path=None, url=None, contacts: int = 20_000, seed: int = 1, logs_dir=None,
               layout: str = "current", charset: str = "utf8mb4", delivery_formats=("postfix",),
               access_format: str = "bitrixvm", truth_path=None, heterogeneity: bool = True,
               world: str = "baseline", realistic_nulls: bool = False) -> DemoResult:
    """Write a Bitrix-shaped demo database (SQLite file or SQLAlchemy URL), optional logs and the truth file.

    ``url`` is created if missing (MariaDB: in ``charset`` utf8mb4 or cp1251) and its Bitrix tables
    are replaced. ``logs_dir`` receives the delivery logs (``delivery_formats``: postfix -> maillog,
    exim -> exim_mainlog, msmtp -> msmtp_default.log, csv -> delivery.csv) and access.log
    (``access_format`` bitrixvm or combined). ``heterogeneity=False`` gives every contact the same
    open and click propensity. ``world`` picks a behaviour profile (``mailaudit.demo.worlds.WORLDS``;
    ``baseline`` is the original demo) whose rates are drawn with the seed. ``realistic_nulls`` writes
    NULL, empty and whitespace values where real portals have them (``mailaudit.demo.nulls``). The truth file goes to
    ``truth_path``, else ``<sqlite stem>.truth.json`` beside the SQLite file, else ``demo.truth.json``
    in ``logs_dir``. Same seed, same everything.
    """
    if world not in WORLDS:
        raise ValueError(f"world must be one of {tuple(WORLDS)}, not {world!r}")
    if (sqlite_path is None) == (url is None):
        raise ValueError("give exactly one of sqlite_path or url")
    if charset not in CHARSETS:
        raise ValueError(f"charset must be one of {CHARSETS}")
    if access_format not in ACCESS_FORMATS:
        raise ValueError(f"access format must be one of {ACCESS_FORMATS}")
    delivery_formats = tuple(dict.fromkeys(delivery_formats))
    bad = [f for f in delivery_formats if f not in DELIVERY_FORMATS]
    if bad:
        raise ValueError(f"delivery formats must be among {DELIVERY_FORMATS}, not {bad}")
    if truth_path is None:
        if sqlite_path is not None:
            truth_path = Path(sqlite_path).with_suffix(".truth.json")
        elif logs_dir is not None:
            truth_path = Path(logs_dir) / "demo.truth.json"
        else:
            raise ValueError("with a database URL, give logs_dir or truth_path for the truth file")
    truth_path = Path(truth_path)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    machine_path = truth_path.with_name(truth_path.name.replace(".truth.json", "") + ".machine_opens.csv")

    profile = draw_world(world, seed)
    cfg = profile.configure(DemoConfig(contacts=contacts, seed=seed, layout=layout, heterogeneity=heterogeneity,
                                       world=world, realistic_nulls=realistic_nulls))
    rng = Generator(PCG64(seed))
    pop = build_population(cfg, rng, None if profile.is_baseline else profile.provider_weights())
    shape_population(pop, profile, seed)
    camps = build_campaigns(rng)
    if url is not None:
        url = make_url(url)
        metadata = bitrix_metadata(layout, lowercase=url.get_backend_name() == "postgresql")
        writer = ServerWriter(url, metadata, charset=charset)
        database = url.render_as_string(hide_password=True)
    else:
        metadata = bitrix_metadata(layout)
        writer = SQLiteWriter(Path(sqlite_path), metadata)
        database = str(sqlite_path)
    cols = lambda name: table_columns(metadata, name)  # noqa: E731
    nulls = None
    if realistic_nulls:
        nulls = NullPolicy(seed, set((np.flatnonzero(~pop.buyer) + 1).tolist()))
        writer = NullingWriter(writer, nulls)

    log_paths = {}
    delivery = access = None
    if logs_dir is not None:
        logs_dir = Path(logs_dir)
        logs_dir.mkdir(parents=True, exist_ok=True)
        delivery = DeliveryLogs(logs_dir, delivery_formats, seed)
        access = AccessLog(logs_dir, access_format, seed)

    _write_letters(writer, camps, cols)
    mailing_ids = {m["code"]: m["ID"] for m in camps.mailings}
    sim = PostingSimulator(cfg, pop, rng, profile)
    truth = Truth(cfg, pop, len(camps.postings))
    email_orders_c, email_orders_t, order_campaign = [], [], {}
    posting_rows, daily = [], {}
    planted_dq = {}
    for posting in camps.postings:
        r = sim.run(posting, mailing_ids)
        last_result = r
        _plant_anomalies(r, pop, rng, planted_dq)
        truth.add_posting(r, sim.state)
        _write_posting(writer, r, pop, layout, cols)
        if delivery is not None:
            delivery.add(r, pop)
            access.add(r)
        email_orders_c.append(r.order_contact)
        email_orders_t.append(r.order_ts)
        if "utm_campaign" in posting.utm:
            for ci, t in zip(r.order_contact[r.order_after_click].tolist(), r.order_ts[r.order_after_click].tolist()):
                order_campaign[(ci, t)] = posting.utm["utm_campaign"]
        posting_rows.append(_posting_row(r))
        for day, status in zip((r.handoff_ts // DAY).tolist(), r.status.tolist()):
            sent, err = daily.get(day, (0, 0))
            daily[day] = (sent + 1, err + (status == "E"))
    n_email_recipients = sim.next_rid - 1
    next_rid = _write_sms(writer, camps, pop, layout, cols, sim.next_rid, posting_rows)

    st = sim.state
    _write_contacts(writer, pop, st, layout, cols, mailing_ids)
    commerce = build_commerce(cfg, pop, st, (np.concatenate(email_orders_c), np.concatenate(email_orders_t)),
                              {"campaign": order_campaign}, rng)
    for name, (columns, values) in commerce.column_tables.items():
        writer.insert_columns(name, columns, values)
    for name, (columns, rows) in commerce.tables.items():
        writer.insert(name, columns, rows)
    commerce.column_tables, commerce.tables = {}, {}   # written: free them before the truth is computed

    # orphan reads and clicks: recipients deleted after the send (their tags decode to no recipient)
    orphan_rids = np.arange(next_rid + 1000, next_rid + 1005)
    orphan_post = camps.postings[30]
    orphan_ts = orphan_post.send_ts + 3 * 3600 + np.arange(5) * 97
    writer.insert("b_sender_posting_read", ["POSTING_ID", "RECIPIENT_ID", "DATE_INSERT"],
                  [(orphan_post.posting_id, int(r_), int(t)) for r_, t in zip(orphan_rids[:3], orphan_ts[:3])])
    writer.insert("b_sender_posting_click", ["POSTING_ID", "RECIPIENT_ID", "DATE_INSERT", "URL"],
                  [(orphan_post.posting_id, int(r_), int(t), orphan_post.links[0]) for r_, t in
                   zip(orphan_rids[3:], orphan_ts[3:])])
    if access is not None:
        access.add_orphans("read", orphan_rids[:3], orphan_ts[:3], orphan_post)
        access.add_orphans("click", orphan_rids[3:], orphan_ts[3:], orphan_post)
    never_sent = {}
    if nulls is not None:
        never_sent = _write_never_sent(writer, nulls, last_result, pop, sim.state, layout,
                                       posting_rows[len(camps.postings) - 1], int(orphan_rids[-1]) + 1)
        n_email_recipients += sum(never_sent.values())

    writer.insert("b_sender_posting", cols("b_sender_posting"),
                  [tuple(row[c] for c in cols("b_sender_posting")) for row in posting_rows])
    abuse_days = (st.unsub_ts[st.complained] // DAY).tolist()
    for day in abuse_days:
        daily.setdefault(day, (0, 0))
    abuse_count = {d: abuse_days.count(d) for d in set(abuse_days)}
    writer.insert("b_sender_counter_daily", cols("b_sender_counter_daily"),
                  [(day * DAY, s, 0, e, abuse_count.get(day, 0)) for day, (s, e) in sorted(daily.items())])
    row_counts = dict(writer.row_counts)
    writer.close()

    if delivery is not None:
        delivery.close()
        access.write()
        log_paths = {**delivery.paths, "access": str(access.path)}
        for path in log_paths.values():
            # as a copied server log would be: last written when the data ends (readers take the year of
            # year-less stamps from the file's modification time)
            os.utime(path, (END_EXCLUSIVE_TS, END_EXCLUSIVE_TS))

    hygiene, without_logs = truth.hygiene(st, commerce)
    doc = {
        "schema_version": 1,
        "generator": "mailaudit.demo",
        "parameters": truth.parameters(),
        "rules": RULES,
        "source": {"layout": layout, "charset": charset if url is not None else "utf-8", "row_counts": row_counts},
        "hygiene": hygiene,
        "hygiene_without_logs": without_logs,
        "opens": truth.opens(),
        "clicks": truth.clicks(),
        "segments": truth.segments(),
        "conversion": truth.conversion(commerce),
        "data_quality": {
            "letters": len(camps.postings),
            "letters_missing_utm": {
                key: sum(1 for p in camps.postings if key not in p.utm) for key in ("utm_source", "utm_medium", "utm_campaign")},
            "campaigns_track_click_off": sum(1 for m in camps.mailings if m["TRACK_CLICK"] == "N"),
            "non_mail_letters": len(camps.sms_postings),
            "orphan_reads": 3, "orphan_clicks": 2,
            "clicks_without_read_recipients": truth.clicks_without_read_recipients,
            "clicks_without_read_rows": truth.clicks_without_read_rows,
            "recipients_without_contact": truth.dq["recipients_without_contact"],
            "contacts_deleted": int(pop.deleted.sum()),
            "sends_before_posting_date": truth.dq["sends_before_posting_date"],
            "sends_in_future": truth.dq["sends_in_future"],
            "email_recipient_rows": n_email_recipients,
            "read_rows": truth.read_rows + 3, "click_rows": truth.click_rows + 2,
        },
        "logs": ({"delivery": {f: {"path": Path(p).name, "lines": delivery.counts[f]} for f, p in delivery.paths.items()},
                  "delivery_verdicts": delivery.verdicts, "bounce_classes": delivery.bounce_classes,
                  "access": {"path": access.path.name, "format": access_format, **access.counts}}
                 if delivery is not None else None),
        "planted": {"categories": {CATEGORY_NAMES[k]: int(v) for k, v in zip(*np.unique(pop.category, return_counts=True))},
                    "anomalies": planted_dq},
        "world": profile.truth(),
    }
    if nulls is not None:
        doc["realistic_nulls"] = {"columns": nulls.counts, "never_sent_recipients": never_sent}
    truth_path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False, default=_json_default) + "\n",
                          encoding="utf-8")
    with open(machine_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recipient_id", "kind"])
        w.writerows(truth.machine_csv_rows())
    return DemoResult(database=database, truth=truth_path, world=world, machine_opens=machine_path,
                      logs=log_paths, row_counts=row_counts)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _write_letters(writer, camps, cols) -> None:
    writer.insert("b_sender_mailing", cols("b_sender_mailing"), [
        (m["ID"], "Y", m["DATE_INSERT"], m["NAME"], "", 100 + m["ID"], "N", "N", "s1", vocab.EMAIL_FROM,
         m["TRACK_CLICK"], None) for m in camps.mailings])
    chain_cols = cols("b_sender_mailing_chain")
    writer.insert("b_sender_mailing_chain", chain_cols, [
        tuple(ch.get(c) if c != "PARENT_ID" else None for c in chain_cols) for ch in camps.chains])
    writer.insert("b_sender_message", ["ID", "CODE"], [(ch["ID"], ch["MESSAGE_CODE"]) for ch in camps.chains])
    fields, utm_rows = [], []
    for ch in camps.chains:
        fields.append((ch["ID"], "text", "SUBJECT", ch["subject"]))
        fields.append((ch["ID"], "html", "MESSAGE", ch["html"]))
        for code, value in ch["utm"].items():
            utm_rows.append((len(utm_rows) + 1, ch["ID"], code, value))
    writer.insert("b_sender_message_field", ["MESSAGE_ID", "TYPE", "CODE", "VALUE"], fields)
    writer.insert("b_sender_message_utm", ["ID", "MESSAGE_ID", "CODE", "VALUE"], utm_rows)
    lists = []
    for i, (code, name, *_x) in enumerate(vocab.LISTS, start=1):
        lists.append((i, code, name, 100 * i, camps.mailings[0]["DATE_INSERT"] - 400 * DAY))
    writer.insert("b_sender_list", ["ID", "CODE", "NAME", "SORT", "DATE_INSERT"], lists)
    writer.insert("b_sender_group", cols("b_sender_group"), [
        (i, f"list_{code}", f"Адресная книга: {name}", lid_ts, lid_ts, "Y", "", 100, None, "N", "N")
        for (i, code, name, _s, lid_ts) in lists])
    writer.insert("b_sender_group_connector", cols("b_sender_group_connector"), [
        (i, "Адресная книга", json.dumps({"MODULE_ID": "sender", "CODE": "contact_list",
                                          "FIELDS": {"LIST_ID": i}}), None) for (i, *_x) in lists])
    writer.insert("b_sender_mailing_chain_group", ["CHAIN_ID", "GROUP_ID", "TYPE"], [
        (p.chain_id, j + 1, 1) for p in camps.postings for j, f in enumerate(p.list_fraction) if f > 0])


def _write_posting(writer, r: PostingResult, pop: Population, layout: str, cols) -> None:
    pid = r.posting.posting_id
    n = len(r.rid)
    c = r.contact
    user = pop.user_id[c]
    link = ([c + 1] if layout == "current" else
            [(pop.first[c] + " " + pop.last[c]).tolist(), pop.code[c].tolist(), [None] * n])
    columns = (["ID", "POSTING_ID", "STATUS", "DATE_SENT", "CONTACT_ID"] if layout == "current" else
               ["ID", "POSTING_ID", "STATUS", "DATE_SENT", "NAME", "EMAIL", "PHONE"])
    columns += ["USER_ID", "IS_READ", "IS_CLICK", "IS_UNSUB"]
    writer.insert_columns("b_sender_posting_recipient", columns, [
        r.rid, [pid] * n, r.status, r.date_sent, *link,
        np.where(user > 0, user, None).tolist(), _yn(r.is_read), _yn(r.is_click), _yn(r.is_unsub)])
    writer.insert_columns("b_sender_posting_read", ["POSTING_ID", "RECIPIENT_ID", "DATE_INSERT"],
                          [[pid] * len(r.read_rid), r.read_rid, r.read_ts])
    urls = [f"{r.posting.links[k]}" + (("?" + "&".join(f"{a}={b}" for a, b in r.posting.utm.items()))
                                        if r.posting.utm else "") for k in range(len(r.posting.links))]
    writer.insert_columns("b_sender_posting_click", ["POSTING_ID", "RECIPIENT_ID", "DATE_INSERT", "URL"],
                          [[pid] * len(r.click_rid), r.click_rid, r.click_ts, [urls[k] for k in r.click_link.tolist()]])
    writer.insert_columns("b_sender_posting_unsub", ["POSTING_ID", "RECIPIENT_ID", "DATE_INSERT"],
                          [[pid] * len(r.unsub_rid), r.unsub_rid, r.unsub_ts])


POSTING_COLUMNS = ("ID", "MAILING_ID", "MAILING_CHAIN_ID", "DATE_CREATE", "DATE_UPDATE", "STATUS", "DATE_SEND",
                   "DATE_PAUSE", "DATE_SENT", "COUNT_READ", "COUNT_CLICK", "COUNT_UNSUB", "COUNT_SEND_ALL",
                   "COUNT_SEND_NONE", "COUNT_SEND_ERROR", "COUNT_SEND_SUCCESS", "COUNT_SEND_DENY", "CONSENT_SUPPORT")
"""Every b_sender_posting column either layout has; each layout writes the ones it has."""


def _posting_row(r: PostingResult) -> dict:
    p = r.posting
    n_ok = int((r.status == "N").sum())
    n_err = len(r.rid) - n_ok
    last = int(r.handoff_ts.max()) if len(r.rid) else p.send_ts
    return dict(zip(POSTING_COLUMNS, (
        p.posting_id, p.mailing_id, p.chain_id, p.send_ts - 3600, last, "E" if n_err else "S", p.send_ts, None,
        last, int(r.is_read.sum()), int(r.is_click.sum()), int(r.is_unsub.sum()), len(r.rid), 0, n_err, n_ok, 0, "N")))


def _write_never_sent(writer, nulls: NullPolicy, r: PostingResult, pop: Population, st, layout: str,
                      posting_row: dict, first_id: int) -> dict:
    """Recipient rows of the last posting that were never sent (STATUS 'Y'/'W', DATE_SENT NULL): contacts its
    lists hold, inserted before it, not opted out and not mailed by it. Returns the count per STATUS."""
    p = r.posting
    listed = (p.list_fraction[pop.list_idx] > 0) & (pop.date_insert < p.send_ts) & ~pop.deleted
    opted_out = (st.unsub_ts < p.send_ts) | st.complained
    mailed = np.zeros(pop.size, dtype=bool)
    mailed[r.contact] = True
    contact, status = nulls.never_sent_rows(np.flatnonzero(listed & ~opted_out & ~mailed), pop.size)
    k = len(contact)
    link = ([contact + 1] if layout == "current" else
            [(pop.first[contact] + " " + pop.last[contact]).tolist(), pop.code[contact].tolist(), [None] * k])
    columns = (["ID", "POSTING_ID", "STATUS", "DATE_SENT", "CONTACT_ID"] if layout == "current" else
               ["ID", "POSTING_ID", "STATUS", "DATE_SENT", "NAME", "EMAIL", "PHONE"])
    user = pop.user_id[contact]
    writer.insert_columns("b_sender_posting_recipient", columns + ["USER_ID", "IS_READ", "IS_CLICK", "IS_UNSUB"], [
        np.arange(first_id, first_id + k), [p.posting_id] * k, status, [None] * k, *link,
        np.where(user > 0, user, None).tolist(), ["N"] * k, ["N"] * k, ["N"] * k])
    posting_row["COUNT_SEND_ALL"] += k
    posting_row["COUNT_SEND_NONE"] += k
    return {s: int((status == s).sum()) for s in ("Y", "W")}


def _write_sms(writer, camps, pop: Population, layout: str, cols, next_rid: int, posting_rows: list) -> int:
    """SMS postings to the phone contacts: non-mail chains every analysis must ignore."""
    n_email = pop.size
    for sp in camps.sms_postings:
        phones = np.arange(len(pop.phone_codes))
        rid = np.arange(next_rid, next_rid + len(phones))
        next_rid += len(phones)
        sent = sp["send_ts"] + phones * 2
        link = ([n_email + phones + 1] if layout == "current" else
                [[None] * len(phones), [None] * len(phones), pop.phone_codes[phones].tolist()])
        columns = (["ID", "POSTING_ID", "STATUS", "DATE_SENT", "CONTACT_ID"] if layout == "current" else
                   ["ID", "POSTING_ID", "STATUS", "DATE_SENT", "NAME", "EMAIL", "PHONE"])
        writer.insert_columns("b_sender_posting_recipient", columns + ["IS_READ", "IS_CLICK", "IS_UNSUB"], [
            rid, [sp["posting_id"]] * len(phones), ["N"] * len(phones), sent, *link,
            ["N"] * len(phones), ["N"] * len(phones), ["N"] * len(phones)])
        posting_rows.append(dict(zip(POSTING_COLUMNS, (
            sp["posting_id"], sp["mailing_id"], sp["chain_id"], sp["send_ts"] - 3600, int(sent.max()), "S",
            sp["send_ts"], None, int(sent.max()), 0, 0, 0, len(phones), 0, 0, len(phones), 0, "N"))))
    return next_rid


def _contact_columns(pop: Population, st, part: np.ndarray, layout: str) -> tuple[list, list]:
    """b_sender_contact columns of the e-mail contacts ``part`` (indices), with the state their reads left."""
    name = (pop.first[part] + " " + pop.last[part]).tolist()
    date_insert = pop.date_insert[part]
    user = np.where(pop.user_id[part] > 0, pop.user_id[part], None).tolist()
    if layout != "current":
        return (["ID", "DATE_INSERT", "DATE_UPDATE", "NAME", "EMAIL", "PHONE", "USER_ID", "BLACKLISTED"],
                [part + 1, date_insert, date_insert, name, pop.code[part], [None] * len(part), user,
                 _yn(st.complained[part])])
    read = st.last_read_ts[part] >= 0
    ip = [ip_str(int(x)) if ok else None for x, ok in zip(st.last_ip[part].tolist(), read.tolist())]
    agent = np.where(read, st.last_agent[part], None).tolist()
    updated = np.maximum(date_insert, np.where(read, st.last_read_ts[part], 0))
    return (["ID", "DATE_INSERT", "DATE_UPDATE", "TYPE_ID", "CODE", "NAME", "USER_ID", "IP", "AGENT",
             "BLACKLISTED", "IS_READ", "IS_CLICK", "IS_UNSUB", "IS_SEND_SUCCESS", "CONSENT_STATUS"],
            [part + 1, date_insert, updated, [int(SenderContactType.EMAIL)] * len(part), pop.code[part], name, user,
             ip, agent, _yn(st.complained[part]), _yn(st.ever_read[part]), _yn(st.ever_click[part]),
             _yn(st.unsub_ts[part] < BIG), _yn(st.ever_sent_ok[part]), ["N"] * len(part)])


def _write_contacts(writer, pop: Population, st, layout: str, cols, mailing_ids: dict) -> None:
    live = np.flatnonzero(~pop.deleted)
    ids = live + 1
    unsub = st.unsub_ts[live] < BIG
    for start in range(0, len(live), PREPARE_ROWS):
        writer.insert_columns("b_sender_contact", *_contact_columns(pop, st, live[start:start + PREPARE_ROWS], layout))
    phone_ids = pop.size + 1 + np.arange(len(pop.phone_codes))
    k = len(phone_ids)
    created = [END_EXCLUSIVE_TS - 400 * DAY] * k
    if layout == "current":
        writer.insert_columns("b_sender_contact", ["ID", "DATE_INSERT", "DATE_UPDATE", "TYPE_ID", "CODE", "NAME",
                                                   "BLACKLISTED", "IS_READ", "IS_CLICK", "IS_UNSUB",
                                                   "IS_SEND_SUCCESS", "CONSENT_STATUS"], [
            phone_ids, created, created, [int(SenderContactType.PHONE)] * k, pop.phone_codes, [None] * k,
            ["N"] * k, ["N"] * k, ["N"] * k, ["N"] * k, ["Y"] * k, ["N"] * k])
    else:
        writer.insert_columns("b_sender_contact", ["ID", "DATE_INSERT", "DATE_UPDATE", "PHONE", "BLACKLISTED"], [
            phone_ids, created, created, pop.phone_codes, ["N"] * k])
    writer.insert_columns("b_sender_contact_list", ["CONTACT_ID", "LIST_ID"], [ids, pop.list_idx[live] + 1])

    # subscriptions: the site list's news subscriptions, and every campaign unsubscribe
    news = mailing_ids["news"]
    site_idx = [c for c, *_x in vocab.LISTS].index("site")
    rows = {}
    for i in live[pop.list_idx[live] == site_idx].tolist():
        rows[(news, i)] = (news, i + 1, int(pop.date_insert[i]), "N")
    for i in live[unsub].tolist():
        m = int(st.unsub_mailing[i])
        rows[(m, i)] = (m, i + 1, int(st.unsub_ts[i]), "Y")
    writer.insert("b_sender_mailing_subscription", ["MAILING_ID", "CONTACT_ID", "DATE_INSERT", "IS_UNSUB"],
                  [rows[k] for k in sorted(rows)])
    abuse = live[st.complained[live]]
    writer.insert("b_sender_abuse", ["ID", "TEXT", "CONTACT_CODE", "CONTACT_ID", "CONTACT_TYPE_ID", "DATE_INSERT"], [
        (k + 1, "Жалоба на спам (отписка с пометкой «спам»)", pop.code[i], int(i) + 1, int(SenderContactType.EMAIL),
         int(st.unsub_ts[i])) for k, i in enumerate(abuse.tolist())])
