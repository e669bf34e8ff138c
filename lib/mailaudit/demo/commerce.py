"""CRM and shop around the mailing list: CRM contacts and their e-mails, site users, orders, deals, leads, exclusions, blacklist."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from mailaudit.bitrix.codes import (
    CRM_ACTIVITY_EMAIL, BlacklistCategory, CrmEntityType, CrmExclusionType, CrmMultiField, DealSemantic,
)
from mailaudit.demo import vocab
from mailaudit.demo.behaviour import BIG, ContactState
from mailaudit.demo.config import DAY, END_EXCLUSIVE_TS, START_TS, DemoConfig
from mailaudit.demo.population import HARD, Population

EMAIL_PROPERTY_ID = 2
DEAL_STAGES = (("NEW", DealSemantic.OPEN), ("PREPARATION", DealSemantic.OPEN),
               ("EXECUTING", DealSemantic.OPEN), ("WON", DealSemantic.WON), ("LOSE", DealSemantic.LOST))


@dataclass
class Commerce:
    tables: dict              # table name -> (columns, list of row tuples)
    column_tables: dict       # table name -> (columns, list of column arrays): the big ones
    order_ts: np.ndarray      # every order, by ID - 1
    order_price: np.ndarray
    order_canceled: np.ndarray
    order_contact: np.ndarray  # sender contact index the contract's links reach, -1 for none
    order_email_caused: np.ndarray
    contact_in_crm: np.ndarray  # per sender contact: its address is a CRM contact's e-mail
    exclusion_norm: set       # normalised CODEs of b_crm_exclusion TYPE_ID 2
    blacklist_norm: set       # normalised CODEs of b_main_mail_blacklist (any category)
    auto_blacklist_norm: set
    utm_deals: int
    utm_revenue: float


def build_commerce(cfg: DemoConfig, pop: Population, st: ContactState, email_orders: tuple[np.ndarray, np.ndarray],
                   email_order_meta: dict, rng: np.random.Generator) -> Commerce:
    n = pop.size
    tables: dict[str, tuple[list[str], list[tuple]]] = {}
    sources = [s for s, _share, _m in vocab.CRM_SOURCES]

    # CRM contacts: one per sender contact with a CRM source, plus never-mailed ones
    has_crm = pop.crm_source >= 0
    crm_of = np.zeros(n, dtype=np.int64)
    crm_of[has_crm] = np.arange(1, int(has_crm.sum()) + 1)
    n_extra = max(50, n // 10)
    extra_ids = np.arange(int(has_crm.sum()) + 1, int(has_crm.sum()) + 1 + n_extra)
    extra_source = rng.integers(0, len(sources), n_extra)
    extra_first = rng.integers(0, len(vocab.FIRST_NAMES), n_extra)
    extra_last = rng.integers(0, len(vocab.LAST_NAMES), n_extra)
    extra_email = np.array([f"crm{int(i)}.{vocab.LAST_NAMES[int(b)][1]}@{('mail.ru', 'yandex.ru', 'gmail.com')[int(i) % 3]}"
                            for i, b in zip(extra_ids, extra_last)], dtype=object)
    extra_created = rng.integers(START_TS - 3 * 365 * DAY, END_EXCLUSIVE_TS - 30 * DAY, n_extra)
    extra_buyer = rng.random(n_extra) < 0.3

    # column-wise (a million contacts would not fit as Python tuples): the sender contacts' CRM twins first
    idx = np.flatnonzero(has_crm)
    variant = rng.random(n)[idx]
    codes = pop.code[idx]
    crm_value = codes.copy()
    titled = variant < 0.1
    spaced = (variant >= 0.1) & (variant < 0.13)
    crm_value[titled] = [c.title() for c in codes[titled]]
    crm_value[spaced] = [f" {c} " for c in codes[spaced]]
    cid = np.concatenate([crm_of[idx], extra_ids])
    m = len(cid)
    created = np.concatenate([pop.date_insert[idx] - DAY * (variant * 30).astype(np.int64), extra_created])
    source = np.array(sources, dtype=object)[np.concatenate([pop.crm_source[idx], extra_source])]
    first = np.concatenate([pop.first[idx], np.array([f for f, _ in vocab.FIRST_NAMES], dtype=object)[extra_first]])
    last = np.concatenate([pop.last[idx], np.array([x for x, _ in vocab.LAST_NAMES], dtype=object)[extra_last]])
    none, yes = [None] * m, ["Y"] * m
    column_tables = {"b_crm_contact": (
        ["ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "ASSIGNED_BY_ID", "OPENED", "COMPANY_ID",
         "LEAD_ID", "SOURCE_ID", "SOURCE_DESCRIPTION", "NAME", "LAST_NAME", "SECOND_NAME", "TYPE_ID",
         "EXPORT", "HAS_PHONE", "HAS_EMAIL"],
        [cid, created, created, [1] * m, 1 + cid % 7, yes, none, none, source, none, first, last, none,
         ["CLIENT"] * m, yes, yes, yes])}
    value_type = np.array(["WORK", "HOME"], dtype=object)[(cid % 3 == 0).astype(int)]
    value_type[len(idx):] = "WORK"
    phone_owner = np.arange(1, int(extra_ids[-1]) + 1, 3)
    k = len(phone_owner)
    column_tables["b_crm_field_multi"] = (
        ["ID", "ENTITY_ID", "ELEMENT_ID", "TYPE_ID", "VALUE_TYPE", "COMPLEX_ID", "VALUE"],
        [np.arange(1, m + k + 1), [CrmMultiField.ENTITY_CONTACT] * (m + k), np.concatenate([cid, phone_owner]),
         [CrmMultiField.TYPE_EMAIL] * m + [CrmMultiField.TYPE_PHONE] * k,
         np.concatenate([value_type, np.full(k, "MOBILE", dtype=object)]),
         np.concatenate([np.array(["EMAIL_WORK", "EMAIL_HOME"], dtype=object)[(value_type == "HOME").astype(int)],
                         np.full(k, "PHONE_MOBILE", dtype=object)]),
         np.concatenate([crm_value, extra_email,
                         np.array([f"+7 916 {c % 1000:03d}-{c % 97:02d}-{c % 89:02d}" for c in phone_owner.tolist()],
                                  dtype=object)])])
    crm_value_of = np.empty(n, dtype=object)
    crm_value_of[idx] = crm_value

    # site users: the contacts' own, then shop accounts created at checkout
    users = np.flatnonzero(pop.user_id > 0)
    column_tables["b_user"] = (
        ["ID", "LOGIN", "EMAIL", "NAME", "LAST_NAME", "ACTIVE", "DATE_REGISTER"],
        # LOGIN is VARCHAR(50) in Bitrix: a long address is cut, as strict MySQL would refuse it
        [pop.user_id[users], [code[:50] for code in pop.code[users]], pop.code[users], pop.first[users], pop.last[users],
         ["Y"] * len(users), pop.date_insert[users] - 7 * DAY])
    user_rows = []
    next_user = int(pop.user_id.max()) + 1

    # orders: baseline purchases (independent of mail) + those caused by opens and clicks
    base_n = rng.poisson(pop.buy_rate)
    base_contact = np.repeat(np.arange(n), base_n)
    base_ts = rng.integers(START_TS, END_EXCLUSIVE_TS, len(base_contact))
    email_contact, email_ts = email_orders
    extra_n = rng.poisson(np.where(extra_buyer, cfg.baseline_orders_per_year, 0.0))
    extra_contact = np.repeat(np.arange(n_extra), extra_n)
    extra_ts = rng.integers(START_TS, END_EXCLUSIVE_TS, len(extra_contact))
    o_contact = np.concatenate([base_contact, email_contact, np.full(len(extra_contact), -1)])
    o_extra = np.concatenate([np.full(len(base_contact) + len(email_contact), -1), extra_contact])
    o_ts = np.concatenate([base_ts, email_ts, extra_ts]).astype(np.int64)
    o_caused = np.concatenate([np.zeros(len(base_contact), bool), np.ones(len(email_contact), bool),
                               np.zeros(len(extra_contact), bool)])
    order = np.lexsort((o_extra, o_contact, o_ts))
    o_contact, o_extra, o_ts, o_caused = o_contact[order], o_extra[order], o_ts[order], o_caused[order]
    n_orders = len(o_ts)
    price = np.round(np.exp(rng.normal(np.log(3500), 0.7, n_orders)), 2)
    canceled = rng.random(n_orders) < cfg.cancel_prob
    via_crm = np.where(o_contact >= 0, rng.random(n_orders) < 0.7, True)
    auto_user: dict[tuple, int] = {}
    order_rows, occ_rows, opv_rows = [], [], []
    for k in range(n_orders):
        oid = k + 1
        c, x, ts = int(o_contact[k]), int(o_extra[k]), int(o_ts[k])
        if c >= 0:
            crm_id = int(crm_of[c]) if has_crm[c] else 0
            link_crm = crm_id > 0 and (via_crm[k] or pop.user_id[c] == 0)
            user = int(pop.user_id[c])
            email, fio = pop.code[c], f"{pop.last[c]} {pop.first[c]}"
            key = ("c", c)
        else:
            crm_id, link_crm, user = int(extra_ids[x]), True, 0
            email = extra_email[x]
            fio = f"{vocab.LAST_NAMES[extra_last[x]][0]} {vocab.FIRST_NAMES[extra_first[x]][0]}"
            key = ("x", x)
        if user == 0:
            if key not in auto_user:
                auto_user[key] = next_user
                user_rows.append((next_user, f"buyer{next_user}", email, fio.split()[1], fio.split()[0], "Y", ts))
                next_user += 1
            user = auto_user[key]
        if link_crm:
            occ_rows.append((len(occ_rows) + 1, oid, crm_id, int(CrmEntityType.CONTACT), 10, 0, "Y"))
        cancel = bool(canceled[k])
        payed = "N" if cancel else ("Y" if (oid % 10) else "N")
        order_rows.append((oid, "s1", 1, payed, ts + 600 if payed == "Y" else None, "Y" if cancel else "N",
                           ts + DAY if cancel else None, "F" if payed == "Y" else "N", ts, float(price[k]),
                           "RUB", user, ts, ts, str(oid), f"bx_{hashlib.md5(str(oid).encode()).hexdigest()[:12]}"))
        opv_rows.append((2 * k + 1, oid, 1, "Ф.И.О.", fio, "FIO"))
        opv_rows.append((2 * k + 2, oid, EMAIL_PROPERTY_ID, "E-Mail", email, "EMAIL"))
    tables["b_sale_order"] = (
        ["ID", "LID", "PERSON_TYPE_ID", "PAYED", "DATE_PAYED", "CANCELED", "DATE_CANCELED", "STATUS_ID",
         "DATE_STATUS", "PRICE", "CURRENCY", "USER_ID", "DATE_INSERT", "DATE_UPDATE", "ACCOUNT_NUMBER", "XML_ID"],
        order_rows)
    tables["b_crm_order_contact_company"] = (
        ["ID", "ORDER_ID", "ENTITY_ID", "ENTITY_TYPE_ID", "SORT", "ROLE_ID", "IS_PRIMARY"], occ_rows)
    tables["b_sale_order_props"] = (
        ["ID", "PERSON_TYPE_ID", "NAME", "TYPE", "REQUIRED", "SORT", "CODE", "IS_EMAIL", "IS_PROFILE_NAME",
         "IS_PHONE", "ACTIVE"],
        [(1, 1, "Ф.И.О.", "STRING", "Y", 100, "FIO", "N", "Y", "N", "Y"),
         (EMAIL_PROPERTY_ID, 1, "E-Mail", "STRING", "Y", 110, "EMAIL", "Y", "N", "N", "Y"),
         (3, 1, "Телефон", "STRING", "N", 120, "PHONE", "N", "N", "Y", "Y")])
    tables["b_sale_order_props_value"] = (["ID", "ORDER_ID", "ORDER_PROPS_ID", "NAME", "VALUE", "CODE"], opv_rows)
    tables["b_user"] = (["ID", "LOGIN", "EMAIL", "NAME", "LAST_NAME", "ACTIVE", "DATE_REGISTER"], user_rows)
    # ^ checkout accounts, after the contacts' own users (column_tables)

    # deals: one per store order for a third of the orders (UTM copied from a mail-caused visit),
    # plus a sales pipeline over some CRM contacts
    deal_rows, deal_contact_rows, utm_rows, entity_rows = [], [], [], []
    utm_deals, utm_revenue = 0, 0.0
    meta_campaign = email_order_meta.get("campaign", {})

    def add_deal(contact_crm, created, stage, amount, source, title, utm):
        nonlocal utm_deals, utm_revenue
        did = len(deal_rows) + 1
        stage_id, semantic = stage
        closed = semantic != DealSemantic.OPEN
        close_ts = min(created + 3 * DAY, END_EXCLUSIVE_TS - 60)
        deal_rows.append((did, created, close_ts, 1, 1 + did % 7, "Y", None, None, contact_crm, title, 0,
                          stage_id, semantic, "N", "N", "Y" if closed else "N", "SALE", amount, "RUB",
                          created, close_ts, source))
        deal_contact_rows.append((did, contact_crm, 10, 0, "Y"))
        for code, value in utm.items():
            utm_rows.append((int(CrmEntityType.DEAL), did, code, value))
        if semantic == DealSemantic.WON and utm.get("UTM_MEDIUM", "").lower() == "email":
            utm_deals += 1
            utm_revenue += amount
        return did

    for k in np.flatnonzero(rng.random(n_orders) < 0.33):
        c = int(o_contact[k])
        crm_id = int(crm_of[c]) if c >= 0 and has_crm[c] else (int(extra_ids[o_extra[k]]) if c < 0 else 0)
        if crm_id == 0:
            continue
        utm = {}
        if o_caused[k] and c >= 0 and (c, int(o_ts[k])) in meta_campaign:
            utm = {"UTM_SOURCE": "sender", "UTM_MEDIUM": "email", "UTM_CAMPAIGN": meta_campaign[(c, int(o_ts[k]))]}
        elif k % 5 == 0:
            utm = {"UTM_SOURCE": "yandex", "UTM_MEDIUM": "cpc", "UTM_CAMPAIGN": "brand"}
        stage = DEAL_STAGES[4] if canceled[k] else DEAL_STAGES[3]
        did = add_deal(crm_id, int(o_ts[k]), stage, float(price[k]), "STORE", f"Заказ №{k + 1}", utm)
        entity_rows.append((len(entity_rows) + 1, did, int(CrmEntityType.DEAL), int(k) + 1))
    pipeline = np.flatnonzero(rng.random(int(extra_ids[-1])) < 0.08) + 1
    for crm_id in pipeline:
        created = int(rng.integers(START_TS, END_EXCLUSIVE_TS - 5 * DAY))
        stage = DEAL_STAGES[int(rng.integers(0, len(DEAL_STAGES)))]
        amount = float(np.round(np.exp(rng.normal(np.log(45000), 0.8)), 2))
        utm = ({"UTM_SOURCE": "sender", "UTM_MEDIUM": "email", "UTM_CAMPAIGN": "webinar_lead"}
               if crm_id % 6 == 0 else {})
        add_deal(int(crm_id), created, stage, amount, sources[int(crm_id) % len(sources)], "Поставка оборудования", utm)
    tables["b_crm_deal"] = (
        ["ID", "DATE_CREATE", "DATE_MODIFY", "CREATED_BY_ID", "ASSIGNED_BY_ID", "OPENED", "LEAD_ID", "COMPANY_ID",
         "CONTACT_ID", "TITLE", "CATEGORY_ID", "STAGE_ID", "STAGE_SEMANTIC_ID", "IS_NEW", "IS_RETURN_CUSTOMER",
         "CLOSED", "TYPE_ID", "OPPORTUNITY", "CURRENCY_ID", "BEGINDATE", "CLOSEDATE", "SOURCE_ID"], deal_rows)
    tables["b_crm_deal_contact"] = (["DEAL_ID", "CONTACT_ID", "SORT", "ROLE_ID", "IS_PRIMARY"], deal_contact_rows)
    tables["b_crm_utm"] = (["ENTITY_TYPE_ID", "ENTITY_ID", "CODE", "VALUE"], utm_rows)
    tables["b_crm_order_entity"] = (["ID", "OWNER_ID", "OWNER_TYPE_ID", "ORDER_ID"], entity_rows)

    lead_rows, act_rows = [], []
    for j, crm_id in enumerate(np.flatnonzero(rng.random(int(extra_ids[-1])) < 0.05) + 1):
        created = int(rng.integers(START_TS - 365 * DAY, END_EXCLUSIVE_TS - DAY))
        lead_rows.append((j + 1, created, created, f"Заявка с сайта #{j + 1}", "CONVERTED", "S", 0.0, "RUB",
                          None, None, sources[int(crm_id) % len(sources)], int(crm_id), None, 1, "N"))
    for j, crm_id in enumerate(np.flatnonzero(rng.random(int(extra_ids[-1])) < 0.05) + 1):
        created = int(rng.integers(START_TS, END_EXCLUSIVE_TS - DAY))
        direction = 1 + j % 2
        act_rows.append((j + 1, CRM_ACTIVITY_EMAIL, "CRM_EMAIL", "EMAIL", int(crm_id), int(CrmEntityType.CONTACT),
                         "Re: вопрос по заказу" if direction == 1 else "Ответ менеджера", created, "Y", direction,
                         created, created, 1))
    tables["b_crm_lead"] = (
        ["ID", "DATE_CREATE", "DATE_MODIFY", "TITLE", "STATUS_ID", "STATUS_SEMANTIC_ID", "OPPORTUNITY",
         "CURRENCY_ID", "NAME", "LAST_NAME", "SOURCE_ID", "CONTACT_ID", "COMPANY_ID", "ASSIGNED_BY_ID",
         "IS_RETURN_CUSTOMER"], lead_rows)
    tables["b_crm_act"] = (
        ["ID", "TYPE_ID", "PROVIDER_ID", "PROVIDER_TYPE_ID", "OWNER_ID", "OWNER_TYPE_ID", "SUBJECT", "CREATED",
         "COMPLETED", "DIRECTION", "START_TIME", "END_TIME", "RESPONSIBLE_ID"], act_rows)

    # opt-outs: automatic blacklist for hard bounces; unsubscribes mirrored into CRM for some only
    bl_rows, excl_rows = [], []
    blacklist_norm, auto_norm, exclusion_norm = set(), set(), set()
    for i in np.flatnonzero((pop.category == HARD) & pop.auto_blacklist & (st.hard_ts < BIG)):
        bl_rows.append((int(st.hard_log_ts[i]), int(BlacklistCategory.AUTOMATIC), pop.code[i]))
        blacklist_norm.add(pop.code[i])
        auto_norm.add(pop.code[i])
    opted_out = np.flatnonzero(((st.unsub_ts < BIG) | st.complained) & ~pop.deleted)
    mirror = rng.random(len(opted_out))
    for i, u in zip(opted_out, mirror):
        when = int(min(st.unsub_ts[i], END_EXCLUSIVE_TS - 1)) + 3600
        if has_crm[i] and u < cfg.crm_mirror_share * 0.7:
            excl_rows.append((when, int(CrmExclusionType.EMAIL), crm_value_of[i].strip(), "Отписался от рассылки"))
            exclusion_norm.add(pop.code[i])
        elif (has_crm[i] and u < cfg.crm_mirror_share) or (not has_crm[i] and u < 0.3):
            if pop.code[i] not in blacklist_norm:
                bl_rows.append((min(when, END_EXCLUSIVE_TS - 1), int(BlacklistCategory.MANUAL), pop.code[i]))
                blacklist_norm.add(pop.code[i])
    for j in range(max(5, n // 2000)):   # phone exclusions: TYPE_ID 1, the reverse of the sender codes
        excl_rows.append((START_TS + j * 7 * DAY, int(CrmExclusionType.PHONE), f"+7916{1000000 + j * 7919:07d}",
                          "Просил не звонить"))
    bl_rows.sort(key=lambda r: (r[0], r[2]))
    excl_rows.sort(key=lambda r: (r[0], r[2]))
    tables["b_main_mail_blacklist"] = (["ID", "DATE_INSERT", "CATEGORY_ID", "CODE"],
                                       [(i + 1, *r) for i, r in enumerate(bl_rows)])
    tables["b_crm_exclusion"] = (["ID", "DATE_INSERT", "TYPE_ID", "CODE", "COMMENT"],
                                 [(i + 1, *r) for i, r in enumerate(excl_rows)])

    # which sender contact each order reaches by the contract's two links
    reach = np.where(o_contact >= 0, o_contact, -1)
    return Commerce(
        tables=tables, column_tables=column_tables, order_ts=o_ts, order_price=price, order_canceled=canceled, order_contact=reach,
        order_email_caused=o_caused, contact_in_crm=has_crm, exclusion_norm=exclusion_norm,
        blacklist_norm=blacklist_norm, auto_blacklist_norm=auto_norm, utm_deals=utm_deals,
        utm_revenue=round(utm_revenue, 2),
    )
