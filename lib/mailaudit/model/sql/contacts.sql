-- contacts: the sender module's contacts (b_sender_contact). `email` is the address as Bitrix keys it
-- (lower-cased and trimmed CODE; legacy layout: EMAIL), NULL when blank. An e-mail contact has
-- TYPE_ID 1 (legacy: every contact with an EMAIL). `client` is the mail client the database shows:
-- Apple for an Apple address (Apple's privacy proxy leaves AGENT unknown) or AGENT iPhone/iPad, else
-- AGENT's client (the User-Agent of the contact's latest read as Bitrix recognised it).
CREATE TABLE contacts AS
WITH base AS (
    SELECT ID AS contact_id,
           address(coalesce(CODE, EMAIL)) AS email,
           {IS_EMAIL_CONTACT} AS is_email_contact,
           DATE_INSERT AS created_at, DATE_UPDATE AS updated_at,
           CASE WHEN USER_ID > 0 THEN USER_ID END AS user_id,
           BLACKLISTED = {YES} AS blacklisted, IS_UNSUB = {YES} AS unsubscribed,
           IS_READ = {YES} AS read_flag, IS_CLICK = {YES} AS click_flag,
           IS_SEND_SUCCESS = {YES} AS sent_ok_flag, CONSENT_STATUS AS consent_status,
           AGENT AS agent
    FROM raw.b_sender_contact
)
SELECT b.*,
       d.domain,
       coalesce(pd.provider, '{OTHER_PROVIDER}') AS provider,
       CASE WHEN pd.provider = 'apple' THEN 'apple' ELSE {AGENT_CLIENT} END AS client
FROM base b
CROSS JOIN LATERAL (SELECT CASE WHEN strpos(b.email, '@') > 0
                                THEN nullif(string_split(b.email, '@')[-1], '') END AS domain) d
LEFT JOIN provider_domains pd ON pd.domain = d.domain;

-- contact_lists: address books (b_sender_list) each contact is in.
CREATE TABLE contact_lists AS
SELECT cl.CONTACT_ID AS contact_id, cl.LIST_ID AS list_id, l.NAME AS list_name
FROM raw.b_sender_contact_list cl
LEFT JOIN raw.b_sender_list l ON l.ID = cl.LIST_ID;

-- subscriptions: per-campaign subscription rows; unsubscribed = IS_UNSUB 'Y'.
CREATE TABLE subscriptions AS
SELECT MAILING_ID AS campaign_id, CONTACT_ID AS contact_id, DATE_INSERT AS created_at,
       IS_UNSUB = {YES} AS unsubscribed
FROM raw.b_sender_mailing_subscription;
