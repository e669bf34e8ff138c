"""SQLAlchemy Core definitions of the Bitrix tables, as Bitrix's install SQL declares them.

Used by the demo generator to CREATE a Bitrix-shaped database. Names and types follow the
sender/main/crm/sale install scripts: CHAR(1) Y/N flags,
DATETIME, DECIMAL money, TEXT for HTML. Columns are always keyed by the upper-case Bitrix name
(``table.c.STATUS``); with ``lowercase=True`` (PostgreSQL, where Bitrix's install uses unquoted,
hence lower-case, identifiers) the column *names* are lower-case.

Two sender layouts: ``current`` (sender 20.x-25.x: contacts keyed by TYPE_ID/CODE, recipients by
CONTACT_ID) and ``legacy`` (sender 16.x: contacts with EMAIL/NAME/PHONE, recipients with
NAME/EMAIL/PHONE instead of CONTACT_ID, and postings without DATE_SEND and DATE_PAUSE).

Indexes are the set older sender versions ship, which every newer portal also has, so a query
that is fast here does not depend on an index many portals lack: reads by (POSTING_ID,
RECIPIENT_ID) and (RECIPIENT_ID); clicks and unsubscribes by (POSTING_ID, RECIPIENT_ID) only;
recipients UNIQUE (POSTING_ID, CONTACT_ID) and (POSTING_ID, STATUS), no CONTACT_ID index
(legacy: (POSTING_ID, STATUS) and (EMAIL)).
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

LAYOUTS = ("current", "legacy")


def _flag():
    return CHAR(1)


def _sender_tables(layout: str) -> list[tuple]:
    """(table name, columns, indexes) of the sender module. Columns are (name, type, options)."""
    pk = {"primary_key": True, "autoincrement": True}
    tables = [
        ("b_sender_mailing", [
            ("ID", Integer, pk), ("ACTIVE", _flag()), ("DATE_INSERT", DateTime),
            ("NAME", String(100)), ("DESCRIPTION", Text), ("SORT", Integer),
            ("IS_PUBLIC", _flag()), ("IS_TRIGGER", _flag()), ("SITE_ID", CHAR(2)),
            ("EMAIL_FROM", String(255)), ("TRACK_CLICK", _flag()), ("TRIGGER_FIELDS", Text),
        ], []),
        ("b_sender_mailing_chain", [
            ("ID", Integer, pk), ("MAILING_ID", Integer), ("PARENT_ID", Integer),
            ("POSTING_ID", Integer), ("CREATED_BY", Integer), ("DATE_INSERT", DateTime),
            ("STATUS", _flag()), ("REITERATE", _flag()), ("IS_TRIGGER", _flag()),
            ("LAST_EXECUTED", DateTime), ("TITLE", String(255)), ("EMAIL_FROM", String(255)),
            ("SUBJECT", String(255)), ("MESSAGE", Text), ("TEMPLATE_TYPE", String(20)),
            ("TEMPLATE_ID", String(20)), ("PRIORITY", String(50)), ("LINK_PARAMS", String(255)),
            ("MESSAGE_CODE", String(50)), ("MESSAGE_ID", String(50)), ("AUTO_SEND_TIME", DateTime),
            ("ERROR_MESSAGE", String(2000)), ("TIME_SHIFT", Integer),
        ], [("IX_SENDER_MAILING_CHAIN_MAILING", ("MAILING_ID",))]),
        ("b_sender_message", [("ID", Integer, pk), ("CODE", String(50))], []),
        ("b_sender_message_field", [
            ("MESSAGE_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("TYPE", String(50)), ("CODE", String(50), {"primary_key": True}), ("VALUE", Text),
        ], []),
        ("b_sender_message_utm", [
            ("ID", Integer, pk), ("MESSAGE_ID", Integer), ("CODE", String(50)), ("VALUE", String(255)),
        ], [("IX_SENDER_MESSAGE_UTM_MESSAGE", ("MESSAGE_ID",))]),
        ("b_sender_posting", [
            ("ID", Integer, pk), ("MAILING_ID", Integer), ("MAILING_CHAIN_ID", Integer),
            ("DATE_CREATE", DateTime), ("DATE_UPDATE", DateTime), ("STATUS", _flag()),
            *([("DATE_SEND", DateTime), ("DATE_PAUSE", DateTime)] if layout == "current" else []),
            ("DATE_SENT", DateTime),
            ("COUNT_READ", Integer), ("COUNT_CLICK", Integer), ("COUNT_UNSUB", Integer),
            ("COUNT_SEND_ALL", Integer), ("COUNT_SEND_NONE", Integer), ("COUNT_SEND_ERROR", Integer),
            ("COUNT_SEND_SUCCESS", Integer), ("COUNT_SEND_DENY", Integer), ("CONSENT_SUPPORT", _flag()),
        ], [("IX_SENDER_POSTING_MAILING_CHAIN", ("MAILING_ID", "MAILING_CHAIN_ID"))]),
    ]
    recipient_link = (
        [("CONTACT_ID", Integer)] if layout == "current"
        else [("NAME", String(255)), ("EMAIL", String(255)), ("PHONE", String(255))]
    )
    tables.append(("b_sender_posting_recipient", [
        ("ID", BigInteger().with_variant(Integer, "sqlite"), pk), ("POSTING_ID", Integer),
        ("STATUS", _flag()), ("DATE_SENT", DateTime), ("DATE_DENY", DateTime),
        *recipient_link, ("USER_ID", Integer), ("FIELDS", Text), ("ROOT_ID", Integer),
        ("IS_READ", _flag()), ("IS_CLICK", _flag()), ("IS_UNSUB", _flag()),
    ], [
        ("IX_SENDER_POSTING_RECIP_1", ("POSTING_ID", "STATUS")),
        *([("UK_SENDER_POSTING_RCPNT", ("POSTING_ID", "CONTACT_ID"), True)] if layout == "current"
          else [("IX_SENDER_POSTING_RECIP_EMAIL", ("EMAIL",))]),
    ]))
    for name, extra, indexes in (
        ("b_sender_posting_read", [], [("IX_SENDER_POSTING_READ", ("POSTING_ID", "RECIPIENT_ID")),
                                       ("ix_b_sender_posting_read_recip_id", ("RECIPIENT_ID",))]),
        ("b_sender_posting_click", [("URL", String(2000))],
         [("IX_SENDER_POSTING_CLICK", ("POSTING_ID", "RECIPIENT_ID"))]),
        ("b_sender_posting_unsub", [], [("IX_SENDER_POSTING_UNSUB", ("POSTING_ID", "RECIPIENT_ID"))]),
    ):
        tables.append((name, [
            ("ID", BigInteger().with_variant(Integer, "sqlite"), pk), ("POSTING_ID", Integer),
            ("RECIPIENT_ID", BigInteger), ("DATE_INSERT", DateTime), *extra,
        ], indexes))
    if layout == "current":
        contact = [
            ("ID", Integer, pk), ("DATE_INSERT", DateTime), ("DATE_UPDATE", DateTime),
            ("TYPE_ID", Integer), ("CODE", String(255)), ("NAME", String(255)), ("USER_ID", Integer),
            ("IP", String(15)), ("AGENT", Integer), ("BLACKLISTED", _flag()), ("IS_READ", _flag()),
            ("IS_CLICK", _flag()), ("IS_UNSUB", _flag()), ("IS_SEND_SUCCESS", _flag()),
            ("CONSENT_STATUS", _flag()), ("DATE_CONSENT", DateTime), ("CONSENT_REQUEST", Integer),
            ("CONSENT_REJECTED", Integer),
        ]
        contact_unique = ("TYPE_ID", "CODE")
    else:
        contact = [
            ("ID", Integer, pk), ("DATE_INSERT", DateTime), ("DATE_UPDATE", DateTime),
            ("NAME", String(255)), ("EMAIL", String(255)), ("PHONE", String(255)),
            ("USER_ID", Integer), ("BLACKLISTED", _flag()),
        ]
        contact_unique = ("EMAIL",)
    tables.append(("b_sender_contact", contact, [("UX_SENDER_CONTACT", contact_unique, True)]))
    tables += [
        ("b_sender_list", [
            ("ID", Integer, pk), ("CODE", String(60)), ("NAME", String(100)), ("SORT", Integer),
            ("DATE_INSERT", DateTime),
        ], []),
        ("b_sender_contact_list", [
            ("CONTACT_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("LIST_ID", Integer, {"primary_key": True, "autoincrement": False}),
        ], []),
        ("b_sender_mailing_subscription", [
            ("MAILING_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("CONTACT_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("DATE_INSERT", DateTime), ("IS_UNSUB", _flag()),
        ], []),
        ("b_sender_group", [
            ("ID", Integer, pk), ("CODE", String(50)), ("NAME", String(100)), ("DATE_INSERT", DateTime),
            ("DATE_UPDATE", DateTime), ("ACTIVE", _flag()), ("DESCRIPTION", String(2000)),
            ("SORT", Integer), ("ADDRESS_COUNT", Integer), ("HIDDEN", _flag()), ("IS_SYSTEM", _flag()),
        ], []),
        ("b_sender_group_connector", [
            ("GROUP_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("NAME", String(100)), ("ENDPOINT", Text), ("ADDRESS_COUNT", Integer),
        ], []),
        ("b_sender_group_data", [
            # inferred from sender 20+ code: cached rows of a CRM-filter segment
            ("ID", Integer, pk), ("GROUP_ID", Integer), ("DATE_INSERT", DateTime),
            ("FILTER_ID", String(100)), ("CRM_ENTITY_ID", Integer), ("NAME", String(255)),
            ("CRM_ENTITY_TYPE_ID", Integer), ("CRM_ENTITY_TYPE", String(20)),
            ("CONTACT_ID", Integer), ("COMPANY_ID", Integer), ("EMAIL", String(255)),
            ("HAS_EMAIL", _flag()), ("HAS_PHONE", _flag()), ("HAS_IMOL", _flag()),
        ], []),
        ("b_sender_mailing_chain_group", [
            ("CHAIN_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("GROUP_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("TYPE", Integer, {"primary_key": True, "autoincrement": False}),   # 1 include, 0 exclude
        ], []),
        ("b_sender_abuse", [
            ("ID", Integer, pk), ("TEXT", Text), ("CONTACT_CODE", String(255)),
            ("CONTACT_ID", Integer), ("CONTACT_TYPE_ID", Integer), ("DATE_INSERT", DateTime),
        ], []),
        ("b_sender_counter_daily", [
            ("DATE_STAT", Date, {"primary_key": True}), ("SENT_CNT", Integer),
            ("TEST_SENT_CNT", Integer), ("ERROR_CNT", Integer), ("ABUSE_CNT", Integer),
        ], []),
    ]
    return tables


def _other_tables() -> list[tuple]:
    pk = {"primary_key": True, "autoincrement": True}
    return [
        ("b_main_mail_blacklist", [
            ("ID", Integer, pk), ("DATE_INSERT", DateTime), ("CATEGORY_ID", Integer),
            ("CODE", String(255)),
        ], [("UX_B_MAIN_MAIL_BLACKLIST", ("CODE",), True)]),
        ("b_user", [
            ("ID", Integer, pk), ("LOGIN", String(50)), ("EMAIL", String(255)), ("NAME", String(50)),
            ("LAST_NAME", String(50)), ("ACTIVE", _flag()), ("DATE_REGISTER", DateTime),
        ], []),
        ("b_crm_contact", [
            ("ID", Integer, pk), ("DATE_CREATE", DateTime), ("DATE_MODIFY", DateTime),
            ("CREATED_BY_ID", Integer), ("ASSIGNED_BY_ID", Integer), ("OPENED", _flag()),
            ("COMPANY_ID", Integer), ("LEAD_ID", Integer), ("SOURCE_ID", String(50)),
            ("SOURCE_DESCRIPTION", Text), ("NAME", String(50)), ("LAST_NAME", String(50)),
            ("SECOND_NAME", String(50)), ("TYPE_ID", String(50)), ("EXPORT", _flag()),
            ("HAS_PHONE", _flag()), ("HAS_EMAIL", _flag()),
        ], []),
        ("b_crm_field_multi", [
            ("ID", Integer, pk), ("ENTITY_ID", String(16)), ("ELEMENT_ID", Integer),
            ("TYPE_ID", String(16)), ("VALUE_TYPE", String(50)), ("COMPLEX_ID", String(100)),
            ("VALUE", String(250)),
        ], [("IX_B_CRM_FIELD_MULTI_ELEMENT", ("ENTITY_ID", "ELEMENT_ID"))]),
        ("b_crm_deal", [
            ("ID", Integer, pk), ("DATE_CREATE", DateTime), ("DATE_MODIFY", DateTime),
            ("CREATED_BY_ID", Integer), ("ASSIGNED_BY_ID", Integer), ("OPENED", _flag()),
            ("LEAD_ID", Integer), ("COMPANY_ID", Integer), ("CONTACT_ID", Integer),
            ("TITLE", String(255)), ("CATEGORY_ID", Integer), ("STAGE_ID", String(50)),
            ("STAGE_SEMANTIC_ID", String(3)), ("IS_NEW", _flag()), ("IS_RETURN_CUSTOMER", _flag()),
            ("CLOSED", _flag()), ("TYPE_ID", String(50)), ("OPPORTUNITY", Numeric(18, 2)),
            ("CURRENCY_ID", String(50)), ("BEGINDATE", DateTime), ("CLOSEDATE", DateTime),
            ("SOURCE_ID", String(50)),
        ], [("IX_B_CRM_DEAL_CONTACT", ("CONTACT_ID",))]),
        ("b_crm_deal_contact", [
            ("DEAL_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("CONTACT_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("SORT", Integer), ("ROLE_ID", Integer), ("IS_PRIMARY", _flag()),
        ], []),
        ("b_crm_lead", [
            ("ID", Integer, pk), ("DATE_CREATE", DateTime), ("DATE_MODIFY", DateTime),
            ("TITLE", String(255)), ("STATUS_ID", String(50)), ("STATUS_SEMANTIC_ID", String(3)),
            ("OPPORTUNITY", Numeric(18, 2)), ("CURRENCY_ID", String(50)), ("NAME", String(50)),
            ("LAST_NAME", String(50)), ("SOURCE_ID", String(50)), ("CONTACT_ID", Integer),
            ("COMPANY_ID", Integer), ("ASSIGNED_BY_ID", Integer), ("IS_RETURN_CUSTOMER", _flag()),
        ], []),
        ("b_crm_utm", [
            ("ENTITY_TYPE_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("ENTITY_ID", Integer, {"primary_key": True, "autoincrement": False}),
            ("CODE", String(255), {"primary_key": True}), ("VALUE", String(255)),
        ], []),
        ("b_crm_exclusion", [
            ("ID", Integer, pk), ("DATE_INSERT", DateTime), ("TYPE_ID", Integer),
            ("CODE", String(255)), ("COMMENT", String(255)),
        ], []),
        ("b_crm_act", [
            ("ID", Integer, pk), ("TYPE_ID", Integer), ("PROVIDER_ID", String(100)),
            ("PROVIDER_TYPE_ID", String(100)), ("OWNER_ID", Integer), ("OWNER_TYPE_ID", Integer),
            ("SUBJECT", String(512)), ("CREATED", DateTime), ("COMPLETED", _flag()),
            ("DIRECTION", Integer), ("START_TIME", DateTime), ("END_TIME", DateTime),
            ("RESPONSIBLE_ID", Integer),
        ], []),
        ("b_crm_order_contact_company", [
            ("ID", Integer, pk), ("ORDER_ID", Integer), ("ENTITY_ID", Integer),
            ("ENTITY_TYPE_ID", Integer), ("SORT", Integer), ("ROLE_ID", Integer),
            ("IS_PRIMARY", _flag()),
        ], [("IX_B_CRM_ORDER_CC_ORDER", ("ORDER_ID",))]),
        ("b_crm_order_entity", [
            ("ID", Integer, pk), ("OWNER_ID", Integer), ("OWNER_TYPE_ID", Integer), ("ORDER_ID", Integer),
        ], []),
        ("b_sale_order", [
            ("ID", Integer, pk), ("LID", CHAR(2)), ("PERSON_TYPE_ID", Integer), ("PAYED", _flag()),
            ("DATE_PAYED", DateTime), ("CANCELED", _flag()), ("DATE_CANCELED", DateTime),
            ("STATUS_ID", CHAR(2)), ("DATE_STATUS", DateTime), ("PRICE", Numeric(18, 4)),
            ("CURRENCY", CHAR(3)), ("USER_ID", Integer), ("DATE_INSERT", DateTime),
            ("DATE_UPDATE", DateTime), ("ACCOUNT_NUMBER", String(100)), ("XML_ID", String(255)),
        ], [("IX_B_SALE_ORDER_USER", ("USER_ID",))]),
        ("b_sale_order_props", [
            ("ID", Integer, pk), ("PERSON_TYPE_ID", Integer), ("NAME", String(255)),
            ("TYPE", String(20)), ("REQUIRED", _flag()), ("SORT", Integer), ("CODE", String(50)),
            ("IS_EMAIL", _flag()), ("IS_PROFILE_NAME", _flag()), ("IS_PHONE", _flag()),
            ("ACTIVE", _flag()),
        ], []),
        ("b_sale_order_props_value", [
            ("ID", Integer, pk), ("ORDER_ID", Integer), ("ORDER_PROPS_ID", Integer),
            ("NAME", String(255)), ("VALUE", String(500)), ("CODE", String(50)),
        ], [("IX_SALE_OPV_ORDER", ("ORDER_ID",))]),
    ]


def bitrix_metadata(layout: str = "current", lowercase: bool = False) -> MetaData:
    """Every Bitrix table the kit knows, in the given sender layout.

    ``lowercase=True`` for PostgreSQL: column and index names lower-case, columns still keyed
    by the upper-case Bitrix name.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    metadata = MetaData()
    for name, columns, indexes in _sender_tables(layout) + _other_tables():
        cols = []
        for spec in columns:
            col_name, col_type = spec[0], spec[1]
            options = dict(spec[2]) if len(spec) > 2 else {}
            if isinstance(col_type, type):
                col_type = col_type()
            cols.append(Column(col_name.lower() if lowercase else col_name, col_type, key=col_name, **options))
        table = Table(name, metadata, *cols)
        for index in indexes:
            index_name, index_cols = index[0], index[1]
            unique = len(index) > 2 and index[2]
            index_name = f"{name}_{index_name}" if index_name.startswith("IX_") else index_name
            index_name = index_name.lower() if lowercase else index_name
            Index(index_name, *[table.c[c] for c in index_cols], unique=bool(unique))
    return metadata


def table_columns(metadata: MetaData, name: str) -> list[str]:
    """The upper-case Bitrix column names of a table, in declaration order."""
    return [c.key for c in metadata.tables[name].columns]
