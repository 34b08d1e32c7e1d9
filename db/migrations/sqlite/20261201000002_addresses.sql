-- The address book: a user's saved shipping and billing addresses, and the snapshots
-- of them an order keeps (JSON text, written once at checkout, so a later edit or
-- deletion of the address book entry leaves the order as placed).
-- Keep in step with migrations/mysql.
CREATE TABLE addresses (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    user_id      VARCHAR(36)  NOT NULL,
    name         VARCHAR(100) NOT NULL,
    line1        VARCHAR(200) NOT NULL,
    line2        VARCHAR(200) NULL,
    city         VARCHAR(100) NOT NULL,
    region       VARCHAR(100) NULL,
    postal_code  VARCHAR(20)  NULL,
    country      VARCHAR(2)   NOT NULL,
    phone        VARCHAR(32)  NULL,
    version      BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL
);
CREATE INDEX addresses_user_idx ON addresses (user_id, id);

ALTER TABLE orders ADD COLUMN shipping_address VARCHAR(2000) NULL;
ALTER TABLE orders ADD COLUMN billing_address VARCHAR(2000) NULL;
