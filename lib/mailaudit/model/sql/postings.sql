-- postings: one send run of a letter (b_sender_posting). started_at is DATE_SEND (current layout),
-- else the posting's creation; finished_at is DATE_SENT. A posting is e-mail when its letter is.
CREATE TABLE postings AS
SELECT p.ID                                    AS posting_id,
       p.MAILING_ID                            AS campaign_id,
       p.MAILING_CHAIN_ID                      AS letter_id,
       p.STATUS                                AS status,
       p.DATE_CREATE                           AS created_at,
       coalesce(p.DATE_SEND, p.DATE_CREATE)    AS started_at,
       p.DATE_SENT                             AS finished_at,
       coalesce(l.is_email, false)             AS is_email
FROM raw.b_sender_posting p
LEFT JOIN letters l ON l.letter_id = p.MAILING_CHAIN_ID;
