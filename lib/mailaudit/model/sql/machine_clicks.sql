-- machine_clicks: clicks of e-mail sends made by machines -- security gateways and link scanners that
-- fetch every link of a letter (Microsoft Safe Links, Mimecast, Proofpoint, Barracuda) -- each with
-- the first rule that says so:
--   access_log         the web server logged this click (same recipient, within 2 s) from a scanner:
--                      a scanner User-Agent or a gateway's published address range
--   link_burst         another link of the same letter was clicked within {BURST_SECONDS} s: a person
--                      opens one link at a time, a scanner fetches them all at once
--   before_delivery_possible   clicked less than {FAST_SECONDS} s after Bitrix handed the letter to the
--                      mail server: delivery, noticing and opening take longer than that for a person
--   automated_contact  the contact clicks (nearly) every letter it gets, without loading its pixel
--                      first, minutes after delivery: the pattern of a gateway in front of a mailbox;
--                      its clicks that precede any pixel load of their letter are the gateway's
-- Every other click is a person's. Bitrix writes a read row with a click that had no earlier read, so
-- `sends` also counts a read "written by a machine click" (see sends.human_clicks).
CREATE TABLE machine_clicks AS
WITH c AS (
    SELECT k.click_id, k.recipient_id, k.clicked_at, coalesce(k.url, '') AS url, s.sent_at, s.contact_id,
           s.first_read_at
    FROM clicks k JOIN sends s ON s.recipient_id = k.recipient_id
), logged AS (
    SELECT c.click_id
    FROM c
    JOIN tracking_hits h ON h.recipient_id = c.recipient_id AND h.kind = 'click'
                        AND h.time BETWEEN c.clicked_at - INTERVAL 2 SECOND AND c.clicked_at + INTERVAL 2 SECOND
    LEFT JOIN user_agents u ON u.user_agent = h.user_agent
    LEFT JOIN gateway_ranges g ON {IP_NUMBER} BETWEEN g.low AND g.high
    GROUP BY c.click_id
    HAVING bool_or(u.hit_class = 'scanner' OR g.low IS NOT NULL)
), burst AS (
    SELECT DISTINCT a.click_id
    FROM c a JOIN c b ON a.recipient_id = b.recipient_id AND a.click_id <> b.click_id AND a.url <> b.url
                     AND b.clicked_at BETWEEN a.clicked_at - INTERVAL {BURST_SECONDS} SECOND
                                          AND a.clicked_at + INTERVAL {BURST_SECONDS} SECOND
), fast AS (
    SELECT click_id FROM c
    WHERE clicked_at >= sent_at AND clicked_at < sent_at + INTERVAL {FAST_SECONDS} SECOND
), per_contact AS (
    SELECT s.contact_id,
           count(*) AS tracked,
           count(*) FILTER (WHERE s.clicks > 0) AS clicked,
           count(*) FILTER (WHERE s.clicks > 0 AND s.first_click_at <= s.sent_at + INTERVAL {PATTERN_MINUTES} MINUTE
                            AND (s.first_read_at IS NULL OR s.first_read_at >= s.first_click_at - INTERVAL 1 SECOND))
               AS clicked_unread_soon
    FROM sends s JOIN campaigns m ON m.campaign_id = s.campaign_id
    WHERE s.delivered AND s.contact_id IS NOT NULL AND coalesce(m.track_click, true)
    GROUP BY s.contact_id
), automated AS (
    SELECT c.click_id FROM c JOIN per_contact p ON p.contact_id = c.contact_id
    WHERE p.clicked >= 3 AND p.clicked >= {PATTERN_SHARE} * p.tracked AND p.clicked_unread_soon >= {PATTERN_SHARE} * p.clicked
      AND (c.first_read_at IS NULL OR c.first_read_at >= c.clicked_at - INTERVAL 1 SECOND)
      AND c.clicked_at <= c.sent_at + INTERVAL {PATTERN_MINUTES} MINUTE
)
SELECT c.click_id, c.recipient_id,
       CASE WHEN l.click_id IS NOT NULL THEN 'access_log'
            WHEN b.click_id IS NOT NULL THEN 'link_burst'
            WHEN f.click_id IS NOT NULL THEN 'before_delivery_possible'
            ELSE 'automated_contact' END AS reason
FROM c
LEFT JOIN logged l ON l.click_id = c.click_id
LEFT JOIN burst b ON b.click_id = c.click_id
LEFT JOIN fast f ON f.click_id = c.click_id
LEFT JOIN automated a ON a.click_id = c.click_id
WHERE l.click_id IS NOT NULL OR b.click_id IS NOT NULL OR f.click_id IS NOT NULL OR a.click_id IS NOT NULL;

-- sends, with its people's clicks: human_clicks and first_human_click_at leave machine clicks out
-- (clicks - human_clicks are a machine's). Only the clicked rows are updated.
ALTER TABLE sends ADD COLUMN human_clicks BIGINT DEFAULT 0;
ALTER TABLE sends ADD COLUMN first_human_click_at TIMESTAMP;
UPDATE sends SET human_clicks = h.human_clicks, first_human_click_at = h.first_human_click_at
FROM (SELECT k.recipient_id, count(*) AS human_clicks, min(k.clicked_at) AS first_human_click_at
      FROM clicks k ANTI JOIN machine_clicks m ON m.click_id = k.click_id
      GROUP BY k.recipient_id) h
WHERE h.recipient_id = sends.recipient_id;

-- machine_click_reads: the read rows machine clicks wrote (Bitrix writes a read with a click that had no
-- earlier read): a send's first read row within 2 s of one of its machine clicks. No one's open.
CREATE TABLE machine_click_reads AS
SELECT DISTINCT r.read_id, r.recipient_id
FROM reads r
JOIN sends s ON s.recipient_id = r.recipient_id AND r.read_at = s.first_read_at
JOIN clicks k ON k.recipient_id = r.recipient_id
     AND r.read_at BETWEEN k.clicked_at - INTERVAL 2 SECOND AND k.clicked_at + INTERVAL 2 SECOND
JOIN machine_clicks m ON m.click_id = k.click_id;
