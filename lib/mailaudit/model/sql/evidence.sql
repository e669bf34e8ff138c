-- complaints: spam complaints (b_sender_abuse). `email` is the complained address (CONTACT_CODE,
-- lower-cased and trimmed); is_email: the complaint came from an e-mail contact.
CREATE TABLE complaints AS
SELECT ID AS complaint_id, CONTACT_ID AS contact_id, CONTACT_TYPE_ID AS contact_type_id,
       address(CONTACT_CODE) AS email,
       coalesce(CONTACT_TYPE_ID = {EMAIL_CONTACT_TYPE}, strpos(CONTACT_CODE, '@') > 0) AS is_email,
       TEXT AS text, DATE_INSERT AS complained_at
FROM raw.b_sender_abuse;

-- blacklist: the portal-wide b_main_mail_blacklist; automatic entries come from hard bounces.
CREATE TABLE blacklist AS
SELECT ID AS entry_id, address(CODE) AS email, CATEGORY_ID = {AUTOMATIC_BLACKLIST} AS automatic,
       DATE_INSERT AS created_at
FROM raw.b_main_mail_blacklist;

-- crm_exclusions: addresses on the CRM exclusion list (b_crm_exclusion TYPE_ID 2 = e-mail).
CREATE TABLE crm_exclusions AS
SELECT address(CODE) AS email, DATE_INSERT AS created_at
FROM raw.b_crm_exclusion
WHERE TYPE_ID = {CRM_EXCLUSION_EMAIL};
