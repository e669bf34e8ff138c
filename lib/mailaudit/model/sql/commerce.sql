-- orders: store orders (b_sale_order); value is PRICE, cancelled CANCELED 'Y'.
CREATE TABLE orders AS
SELECT ID AS order_id, CASE WHEN USER_ID > 0 THEN USER_ID END AS user_id, DATE_INSERT AS ordered_at,
       coalesce(PRICE, 0) AS value, nullif(trim(CURRENCY), '') AS currency,
       coalesce(CANCELED = {YES}, false) AS cancelled, PAYED = {YES} AS paid, DATE_PAYED AS paid_at
FROM raw.b_sale_order;

-- order_crm_contacts: the CRM contacts an order names (b_crm_order_contact_company, ENTITY_TYPE_ID 3).
CREATE TABLE order_crm_contacts AS
SELECT DISTINCT ORDER_ID AS order_id, ENTITY_ID AS crm_contact_id
FROM raw.b_crm_order_contact_company
WHERE ENTITY_TYPE_ID = {CRM_CONTACT_ENTITY_TYPE} AND ORDER_ID IS NOT NULL AND ENTITY_ID IS NOT NULL;

-- deals: CRM deals (b_crm_deal); won = STAGE_SEMANTIC_ID 'S'; closed_at CLOSEDATE, value OPPORTUNITY.
CREATE TABLE deals AS
SELECT ID AS deal_id, DATE_CREATE AS created_at, CLOSEDATE AS closed_at,
       STAGE_SEMANTIC_ID = {DEAL_WON} AS won, coalesce(OPPORTUNITY, 0) AS value,
       nullif(trim(CURRENCY_ID), '') AS currency, CASE WHEN CONTACT_ID > 0 THEN CONTACT_ID END AS crm_contact_id,
       nullif(trim(SOURCE_ID), '') AS source_id
FROM raw.b_crm_deal;

-- deal_crm_contacts: every CRM contact of a deal (b_crm_deal_contact, and the deal's own CONTACT_ID).
CREATE TABLE deal_crm_contacts AS
SELECT DISTINCT deal_id, crm_contact_id FROM (
    SELECT DEAL_ID AS deal_id, CONTACT_ID AS crm_contact_id FROM raw.b_crm_deal_contact
    UNION ALL
    SELECT deal_id, crm_contact_id FROM deals
) WHERE deal_id IS NOT NULL AND crm_contact_id > 0;

-- crm_utm: UTM tags of deals and orders (b_crm_utm); codes lower-case.
CREATE TABLE crm_utm AS
SELECT ENTITY_TYPE_ID AS entity_type_id, ENTITY_ID AS entity_id, lower(trim(CODE)) AS code, trim(VALUE) AS value
FROM raw.b_crm_utm;
