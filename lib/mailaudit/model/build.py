"""Build the model's relations inside a snapshot, from its raw tables and parsed logs.

Each business word is defined once, in one SQL file under ``model/sql/`` (listed in `RELATIONS`,
in dependency order) or, where it needs the kit's Python rules, below: bounce classes of delivery
events, and the class of each User-Agent seen in tracking hits. Bitrix's codes reach the SQL through
`constants()`, so the raw spelling lives in `bitrix.codes` only.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd

from mailaudit import emails
from mailaudit.bitrix import codes

MODEL_VERSION = 4
"""Raised whenever a relation's definition changes: a snapshot with an older model is rebuilt on open."""

RELATIONS = ("campaigns", "letters", "postings", "contacts", "tracking", "sends", "evidence", "crm", "commerce")
"""Built from the raw tables, in this order; then the logs (Python rules), then `LOG_RELATIONS`."""
LOG_RELATIONS = ("machine_clicks",)
"""Built last: they read the parsed logs too."""

MACHINE_CLICK_RULES = {
    "BURST_SECONDS": 5,
    "FAST_SECONDS": 60,
    "PATTERN_MINUTES": 15,
    "PATTERN_SHARE": 0.8,
}
"""The machine-click rules' constants (see model/sql/machine_clicks.sql): two different links of a letter
within 5 s; a click under a minute after the send; a contact clicking at least 80% of its letters, 80% of
them before any pixel load and within 15 minutes. From the published behaviour of link-scanning gateways
(they fetch every link, seconds to minutes after delivery, often without the pixel), not fitted to data."""


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def constants(manifest: dict) -> dict[str, str]:
    """Bitrix codes and layout-dependent expressions, as SQL, for the relation files' {PLACEHOLDERS}."""
    chain_columns = set(manifest["tables"].get("b_sender_mailing_chain", {}).get("columns", []))
    legacy = manifest["source"]["layout"] == "legacy"
    agent_cases = " ".join(f"WHEN {int(code)} THEN {_sql_text(client)}" for code, client in codes.MAIL_AGENT_CLIENT.items())
    return {
        "YES": _sql_text(codes.YES),
        "SENT": _sql_text(codes.RecipientStatus.SENT),
        "ERROR": _sql_text(codes.RecipientStatus.ERROR),
        "IS_EMAIL_LETTER": (f"coalesce(c.MESSAGE_CODE = {_sql_text(codes.EMAIL_MESSAGE_CODE)}, false)"
                            if "MESSAGE_CODE" in chain_columns else "true"),
        "IS_EMAIL_CONTACT": ("EMAIL IS NOT NULL" if legacy
                             else f"coalesce(TYPE_ID = {int(codes.SenderContactType.EMAIL)}, false)"),
        "EMAIL_CONTACT_TYPE": str(int(codes.SenderContactType.EMAIL)),
        # legacy recipient rows carry the address, not CONTACT_ID: the contact is the one with that address
        "RECIPIENT_CONTACT": "e.contact_id" if legacy else "r.CONTACT_ID",
        "RECIPIENT_EMAIL": "address(r.EMAIL)" if legacy else "NULL::VARCHAR",
        "LEGACY_CONTACT_JOIN": ("LEFT JOIN (SELECT email, min(contact_id) AS contact_id FROM contacts "
                                "WHERE email IS NOT NULL GROUP BY email) e ON e.email = address(r.EMAIL)"
                                if legacy else ""),
        "AGENT_CLIENT": f"CASE b.agent {agent_cases} ELSE 'unknown' END",
        "OTHER_PROVIDER": emails.OTHER_PROVIDER,
        "AUTOMATIC_BLACKLIST": str(int(codes.BlacklistCategory.AUTOMATIC)),
        "CRM_EXCLUSION_EMAIL": str(int(codes.CrmExclusionType.EMAIL)),
        "CRM_ENTITY_CONTACT": _sql_text(codes.CrmMultiField.ENTITY_CONTACT),
        "CRM_TYPE_EMAIL": _sql_text(codes.CrmMultiField.TYPE_EMAIL),
        "CRM_CONTACT_ENTITY_TYPE": str(int(codes.CrmEntityType.CONTACT)),
        "DEAL_WON": _sql_text(codes.DealSemantic.WON),
        "IP_NUMBER": ("CASE WHEN regexp_full_match(h.ip, '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}') THEN "
                      "(split_part(h.ip, '.', 1)::BIGINT << 24) + (split_part(h.ip, '.', 2)::BIGINT << 16) + "
                      "(split_part(h.ip, '.', 3)::BIGINT << 8) + split_part(h.ip, '.', 4)::BIGINT END"),
        **{name: str(value) for name, value in MACHINE_CLICK_RULES.items()},
    }


def relation_sql(name: str, manifest: dict) -> str:
    text = resources.files("mailaudit.model").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
    return text.format(**constants(manifest))


def model_tables(con) -> list[str]:
    return [row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT starts_with(table_name, '_')"
    ).fetchall()]


def build_model(con, manifest: dict) -> None:
    """(Re)create every model relation in `con` (a writable snapshot connection)."""
    for table in model_tables(con):
        con.execute(f'DROP TABLE "{table}"')
    # an address as Bitrix keys it: trimmed of any white space (tabs and no-break spaces included) and
    # lower-cased; blank -> NULL
    con.execute("CREATE OR REPLACE MACRO address(x) AS nullif(lower(regexp_replace(x, "
                "'^[[:space:]\\x{00a0}\\x{feff}\\x{200b}]+|[[:space:]\\x{00a0}\\x{feff}\\x{200b}]+$', '', 'g')), '')")
    con.register("_providers", pd.DataFrame(sorted(emails.DOMAIN_PROVIDER.items()), columns=["domain", "provider"]))
    con.execute("CREATE TABLE provider_domains AS SELECT * FROM _providers")
    con.unregister("_providers")
    for name in RELATIONS:
        con.execute(relation_sql(name, manifest))
    _delivery_events(con)
    _tracking_hits(con)
    _gateway_ranges(con)
    for name in LOG_RELATIONS:
        con.execute(relation_sql(name, manifest))
    con.execute(f"CREATE OR REPLACE TABLE _model AS SELECT {MODEL_VERSION} AS version")


def _delivery_events(con) -> None:
    """delivery_events: the delivery logs' events, each non-delivery with its bounce class and the rule
    that decided it (the kit's bounce rules, `analyses.bounces`)."""
    from mailaudit.analyses.bounces import classify_frame

    replies = classify_frame(con.execute(   # the frame holds NaN where the log had no dsn, code or text
        "SELECT DISTINCT status, dsn, smtp_code, text FROM logs.delivery_events WHERE status <> 'sent'").df())
    con.register("_verdicts", replies)
    con.execute("""
        CREATE TABLE delivery_events AS
        SELECT row_number() OVER (ORDER BY e.time, e.file) AS event_id, e.time, e.email, e.status, e.dsn,
               e.smtp_code, e.text, e.queue_id, e.message_id, e.file, f.format, v.bounce_class, v.rule
        FROM logs.delivery_events e
        LEFT JOIN logs.delivery_files f ON f.file = e.file
        LEFT JOIN _verdicts v ON v.status = e.status AND v.dsn IS NOT DISTINCT FROM e.dsn
             AND v.smtp_code IS NOT DISTINCT FROM e.smtp_code AND v.text IS NOT DISTINCT FROM e.text""")
    con.unregister("_verdicts")


def _gateway_ranges(con) -> None:
    """gateway_ranges: the published IPv4 egress ranges of mail security gateways, as integer bounds."""
    import ipaddress

    from mailaudit.analyses.mail_clients import GATEWAY_RANGES

    networks = [ipaddress.ip_network(cidr) for cidr in GATEWAY_RANGES]
    con.register("_ranges", pd.DataFrame(
        [(int(n.network_address), int(n.broadcast_address), str(n)) for n in networks if n.version == 4],
        columns=["low", "high", "cidr"]))
    con.execute("CREATE TABLE gateway_ranges AS SELECT * FROM _ranges")
    con.unregister("_ranges")


def _tracking_hits(con) -> None:
    """tracking_hits: the access logs' pixel and click requests; user_agents: each User-Agent's class
    (Apple's proxy, Gmail's, a scanner, a person's client…) by the kit's User-Agent rules alone --
    address-range evidence is applied by the analysis that has the ranges."""
    from mailaudit.analyses.mail_clients import classify_user_agent

    agents = con.execute("SELECT DISTINCT user_agent FROM logs.tracking_hits").df()
    found = [classify_user_agent(ua or "") for ua in agents["user_agent"]]
    agents["hit_class"] = [f.hit_class for f in found]
    agents["client"] = [f.client for f in found]
    con.register("_agents", agents)
    con.execute("CREATE TABLE user_agents AS SELECT * FROM _agents")
    con.unregister("_agents")
    con.execute("CREATE TABLE tracking_hits AS SELECT time, recipient_id, kind, ip, user_agent, status "
                "FROM logs.tracking_hits")
