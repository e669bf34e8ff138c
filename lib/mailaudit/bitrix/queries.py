"""Statements several analyses share, written once."""

from __future__ import annotations

from sqlalchemy import select

from mailaudit.bitrix import codes
from mailaudit.bitrix.schema import BitrixSchema


def email_postings(schema: BitrixSchema):
    """SELECT of the IDs of the postings of e-mail letters (chain MESSAGE_CODE 'mail'; every letter when
    the column is absent, as in sender 15/16): SMS and messenger postings also write recipient rows."""
    posting = schema.table("b_sender_posting")
    chain = schema.table("b_sender_mailing_chain")
    stmt = select(posting.c.ID).select_from(posting.join(chain, chain.c.ID == posting.c.MAILING_CHAIN_ID))
    if "MESSAGE_CODE" in chain.c:
        stmt = stmt.where(chain.c.MESSAGE_CODE == codes.EMAIL_MESSAGE_CODE)
    return stmt
