-- reads: one row per pixel load Bitrix recorded (b_sender_posting_read; not de-duplicated, and a click
-- without an earlier read writes one too). clicks: one row per click (b_sender_posting_click).
-- unsubscribes: b_sender_posting_unsub.
CREATE TABLE reads AS
SELECT ID AS read_id, RECIPIENT_ID AS recipient_id, POSTING_ID AS posting_id, DATE_INSERT AS read_at
FROM raw.b_sender_posting_read;

CREATE TABLE clicks AS
SELECT ID AS click_id, RECIPIENT_ID AS recipient_id, POSTING_ID AS posting_id, DATE_INSERT AS clicked_at,
       URL AS url
FROM raw.b_sender_posting_click;

CREATE TABLE unsubscribes AS
SELECT ID AS unsubscribe_id, RECIPIENT_ID AS recipient_id, POSTING_ID AS posting_id,
       DATE_INSERT AS unsubscribed_at
FROM raw.b_sender_posting_unsub;
