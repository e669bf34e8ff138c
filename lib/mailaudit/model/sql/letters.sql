-- letters: one row per letter (b_sender_mailing_chain). An e-mail letter has MESSAGE_CODE 'mail'
-- (sender 15/16 have no MESSAGE_CODE and send e-mail only). Subject and HTML fall back to the
-- message fields (b_sender_message_field) where the chain's own columns are empty.
CREATE TABLE letters AS
WITH fields AS (
    SELECT TRY_CAST(MESSAGE_ID AS BIGINT) AS message_id,
           max(VALUE) FILTER (WHERE CODE = 'SUBJECT')     AS subject,
           max(VALUE) FILTER (WHERE CODE = 'MESSAGE')     AS html,
           max(VALUE) FILTER (WHERE CODE = 'LINK_PARAMS') AS link_params
    FROM raw.b_sender_message_field GROUP BY 1
)
SELECT c.ID                                           AS letter_id,
       c.MAILING_ID                                   AS campaign_id,
       coalesce(nullif(trim(c.TITLE), ''), nullif(trim(c.SUBJECT), ''), nullif(trim(f.subject), '')) AS title,
       coalesce(nullif(trim(c.SUBJECT), ''), nullif(trim(f.subject), '')) AS subject,
       c.MESSAGE_CODE                                 AS message_code,
       {IS_EMAIL_LETTER}                              AS is_email,
       TRY_CAST(c.MESSAGE_ID AS BIGINT)               AS message_id,
       coalesce(nullif(trim(c.LINK_PARAMS), ''), nullif(trim(f.link_params), '')) AS link_params,
       coalesce(nullif(c.MESSAGE, ''), f.html)        AS html,
       nullif(trim(c.ERROR_MESSAGE), '')              AS error_message,
       c.STATUS                                       AS status,
       c.DATE_INSERT                                  AS created_at
FROM raw.b_sender_mailing_chain c
LEFT JOIN fields f ON f.message_id = TRY_CAST(c.MESSAGE_ID AS BIGINT);

-- letter_utm: each letter's UTM set (b_sender_message_utm, codes and values trimmed; codes lower-case).
CREATE TABLE letter_utm AS
SELECT l.letter_id, lower(trim(u.CODE)) AS code, trim(u.VALUE) AS value
FROM raw.b_sender_message_utm u
JOIN letters l ON l.message_id = u.MESSAGE_ID
WHERE nullif(trim(u.CODE), '') IS NOT NULL;
