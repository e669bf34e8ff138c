-- campaigns: Bitrix mailings (b_sender_mailing), the campaign every letter belongs to.
CREATE TABLE campaigns AS
SELECT ID                       AS campaign_id,
       NAME                     AS name,
       ACTIVE = {YES}           AS active,
       TRACK_CLICK = {YES}      AS track_click,     -- NULL when the portal does not say
       coalesce(IS_TRIGGER = {YES}, false) AS is_trigger,
       DATE_INSERT              AS created_at
FROM raw.b_sender_mailing;
