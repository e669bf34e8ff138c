-- crm_contacts: CRM contacts (b_crm_contact).
CREATE TABLE crm_contacts AS
SELECT ID AS crm_contact_id, DATE_CREATE AS created_at, nullif(trim(SOURCE_ID), '') AS source_id,
       COMPANY_ID AS company_id, LEAD_ID AS lead_id
FROM raw.b_crm_contact;

-- crm_emails: the e-mail addresses of each CRM contact (b_crm_field_multi, lower-cased and trimmed),
-- and the sender contact with that address, if any.
CREATE TABLE crm_emails AS
SELECT DISTINCT f.ELEMENT_ID AS crm_contact_id, address(f.VALUE) AS email, c.contact_id
FROM raw.b_crm_field_multi f
LEFT JOIN (SELECT email, min(contact_id) AS contact_id FROM contacts
           WHERE is_email_contact AND email IS NOT NULL GROUP BY email) c
       ON c.email = address(f.VALUE)
WHERE f.ENTITY_ID = {CRM_ENTITY_CONTACT} AND f.TYPE_ID = {CRM_TYPE_EMAIL}
  AND address(f.VALUE) IS NOT NULL;

-- crm_activities: CRM activities since the snapshot window's start (b_crm_act).
CREATE TABLE crm_activities AS
SELECT ID AS activity_id, TYPE_ID AS type_id, OWNER_TYPE_ID AS owner_type_id, OWNER_ID AS owner_id,
       DIRECTION AS direction, CREATED AS created_at, COMPLETED = {YES} AS completed
FROM raw.b_crm_act;
