"""Bitrix's magic letters and numbers, named once.

Every other module refers to these names; the raw spelling (``STATUS = 'N'``)
appears nowhere else. Sources: Bitrix sender/crm/sale install SQL and module code
(see ../shared/bitrix-schema.md).
"""

from __future__ import annotations

from enum import IntEnum


class RecipientStatus:
    """b_sender_posting_recipient.STATUS. Counter-intuitive: ``N`` means sent OK."""

    SENT = "N"            # delivered to the mail server (Bitrix's own CRM code counts this as delivered)
    NOT_SENT_YET = "Y"
    ERROR = "E"
    WAIT = "W"
    DENIED = "D"          # trigger chain stopped
    AWAITING_CONSENT = "A"

    LABELS = {
        "N": "sent",
        "Y": "not sent yet",
        "E": "error",
        "W": "waiting",
        "D": "denied",
        "A": "awaiting consent",
    }


class PostingStatus:
    """b_sender_posting.STATUS."""

    NEW = "N"
    SENDING = "P"
    SENT = "S"
    SENT_WITH_ERRORS = "E"
    ABORTED = "A"


class ChainStatus:
    """b_sender_mailing_chain.STATUS (the letter)."""

    DRAFT = "N"
    READY = "R"
    SENDING = "S"
    PAUSED = "P"
    WAITING = "W"
    HALTED = "H"
    PLANNED = "T"
    FINISHED = "Y"
    CANCELLED = "C"


EMAIL_MESSAGE_CODE = "mail"
"""b_sender_mailing_chain.MESSAGE_CODE of e-mail letters (others: sms, im, call…)."""

YES = "Y"
NO = "N"
"""CHAR(1) flags everywhere in Bitrix."""


class SenderContactType(IntEnum):
    """b_sender_contact.TYPE_ID (sender module)."""

    EMAIL = 1
    PHONE = 2
    IM = 3


class CrmExclusionType(IntEnum):
    """b_crm_exclusion.TYPE_ID: the REVERSE of the sender module's codes."""

    PHONE = 1
    EMAIL = 2


class MailAgent(IntEnum):
    """b_sender_contact.AGENT: the mail client seen on the contact's latest read."""

    UNKNOWN = 0
    GMAIL = 1       # GoogleImageProxy
    IPHONE = 2
    IPAD = 3
    ANDROID = 4
    OUTLOOK = 5
    THUNDERBIRD = 6
    YANDEX = 7


MAIL_AGENT_CLIENT = {
    MailAgent.UNKNOWN: "unknown",
    MailAgent.GMAIL: "gmail",
    MailAgent.IPHONE: "apple",
    MailAgent.IPAD: "apple",
    MailAgent.ANDROID: "android",
    MailAgent.OUTLOOK: "outlook",
    MailAgent.THUNDERBIRD: "thunderbird",
    MailAgent.YANDEX: "yandex",
}
"""AGENT code -> the kit's mail-client label (shared with the access-log route)."""


class BlacklistCategory(IntEnum):
    """b_main_mail_blacklist.CATEGORY_ID."""

    AUTOMATIC = 0   # added by the system after a hard bounce (unknown user, unroutable)
    MANUAL = 1


class CrmEntityType(IntEnum):
    """CRM owner/entity type ids (b_crm_utm.ENTITY_TYPE_ID, b_crm_order_contact_company…)."""

    LEAD = 1
    DEAL = 2
    CONTACT = 3
    COMPANY = 4
    ORDER = 14


class CrmMultiField:
    """b_crm_field_multi."""

    ENTITY_CONTACT = "CONTACT"
    ENTITY_COMPANY = "COMPANY"
    ENTITY_LEAD = "LEAD"
    TYPE_EMAIL = "EMAIL"
    TYPE_PHONE = "PHONE"


class DealSemantic:
    """b_crm_deal.STAGE_SEMANTIC_ID."""

    OPEN = "P"
    WON = "S"
    LOST = "F"


class CrmSource:
    """b_crm_contact.SOURCE_ID: the CRM's standard sources (a portal may add its own), with the names
    Bitrix24 shows for them."""

    LABELS = {
        "CALL": "Call", "EMAIL": "E-mail", "WEB": "Website", "ADVERTISING": "Advertising",
        "PARTNER": "Existing client", "RECOMMENDATION": "By recommendation", "TRADE_SHOW": "Show or exhibition",
        "WEBFORM": "CRM form", "CALLBACK": "Callback", "RC_GENERATOR": "Sales boost", "STORE": "Online store",
        "OTHER": "Other", "SELF": "Personal contact", "BOOKING": "Online booking",
    }


CRM_ACTIVITY_EMAIL = 4
"""b_crm_act.TYPE_ID of an e-mail activity."""

UTM_CODES = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
"""b_sender_message_utm.CODE values (lower-case); b_crm_utm.CODE uses the upper-case spelling."""

REQUIRED_UTM = ("utm_source", "utm_medium", "utm_campaign")

APPLE_DOMAINS = frozenset({"icloud.com", "me.com", "mac.com"})
