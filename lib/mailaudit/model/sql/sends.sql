-- sends: one row per recipient row of an e-mail letter (b_sender_posting_recipient of a posting whose
-- letter is e-mail). The contact is CONTACT_ID (legacy layout: the contact with the recipient's
-- address); `email` is the contact's address, else the recipient row's own (legacy); provider and
-- mail client are the contact's (a legacy row without a contact: those of its own address).
--   delivered  STATUS 'N': Bitrix handed the letter to the mail server ("sent OK")
--   attempted  STATUS 'N' or 'E' (an error is an attempt too)
--   sent_at    DATE_SENT; NULL on rows never sent (or sent by versions that did not record it)
-- Read, click and unsubscribe times come from the tracking rows; the *_flag columns are the
-- recipient row's own IS_READ/IS_CLICK/IS_UNSUB (absent on sender 15.x).
CREATE TABLE sends AS
WITH read_times AS (
    SELECT recipient_id, min(read_at) AS first_read_at, max(read_at) AS last_read_at, count(*) AS reads
    FROM reads WHERE recipient_id IS NOT NULL GROUP BY recipient_id
), click_times AS (
    SELECT recipient_id, min(clicked_at) AS first_click_at, max(clicked_at) AS last_click_at, count(*) AS clicks
    FROM clicks WHERE recipient_id IS NOT NULL GROUP BY recipient_id
), unsub_times AS (
    SELECT recipient_id, min(unsubscribed_at) AS unsubscribed_at
    FROM unsubscribes WHERE recipient_id IS NOT NULL GROUP BY recipient_id
), recipient_rows AS (
    SELECT r.ID AS recipient_id, r.POSTING_ID AS posting_id, p.letter_id, p.campaign_id,
           {RECIPIENT_CONTACT} AS contact_id,
           {RECIPIENT_EMAIL} AS recipient_email,
           r.STATUS AS status, r.DATE_SENT AS sent_at,
           r.IS_READ = {YES} AS read_flag, r.IS_CLICK = {YES} AS click_flag, r.IS_UNSUB = {YES} AS unsub_flag
    FROM raw.b_sender_posting_recipient r
    JOIN postings p ON p.posting_id = r.POSTING_ID AND p.is_email
    {LEGACY_CONTACT_JOIN}
), addressed AS (
    SELECT x.*, c.client AS contact_client,
           coalesce(c.email, x.recipient_email) AS email,
           CASE WHEN c.contact_id IS NOT NULL THEN c.domain
                WHEN strpos(x.recipient_email, '@') > 0 THEN nullif(string_split(x.recipient_email, '@')[-1], '')
           END AS domain
    FROM recipient_rows x
    LEFT JOIN contacts c ON c.contact_id = x.contact_id
)
SELECT a.recipient_id, a.posting_id, a.letter_id, a.campaign_id, a.contact_id, a.email, a.domain,
       coalesce(pd.provider, '{OTHER_PROVIDER}') AS provider,
       coalesce(a.contact_client, CASE WHEN pd.provider = 'apple' THEN 'apple' ELSE 'unknown' END) AS client,
       a.status, a.sent_at,
       a.status = {SENT} AS delivered,
       a.status IN ({SENT}, {ERROR}) AS attempted,
       a.read_flag, a.click_flag, a.unsub_flag,
       rt.first_read_at, rt.last_read_at, coalesce(rt.reads, 0) AS reads,
       ct.first_click_at, ct.last_click_at, coalesce(ct.clicks, 0) AS clicks,
       ut.unsubscribed_at
FROM addressed a
LEFT JOIN provider_domains pd ON pd.domain = a.domain
LEFT JOIN read_times rt ON rt.recipient_id = a.recipient_id
LEFT JOIN click_times ct ON ct.recipient_id = a.recipient_id
LEFT JOIN unsub_times ut ON ut.recipient_id = a.recipient_id;
