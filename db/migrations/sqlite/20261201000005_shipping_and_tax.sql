-- Shipping and tax: the shipping methods an admin offers (a flat rate per method,
-- optionally free from a subtotal on, serving a list of countries or all), the tax
-- rate of each country, and what an order was charged for them. An order placed
-- before this migration reads as subtotal = total, no shipping, no tax.
-- Keep in step with migrations/mysql.
CREATE TABLE shipping_methods (
    code               VARCHAR(100)  NOT NULL PRIMARY KEY,
    name               VARCHAR(100)  NOT NULL,
    -- ISO 3166-1 alpha-2 codes, upper case, sorted, space-separated; empty: every country.
    countries          VARCHAR(1000) NOT NULL,
    rate_amount        BIGINT        NOT NULL,
    currency           VARCHAR(3)    NOT NULL,
    -- Shipping is free when the subtotal reaches this amount (same currency); NULL: never.
    free_above_amount  BIGINT        NULL,
    active             BIGINT        NOT NULL,
    created_at         BIGINT        NOT NULL,
    updated_at         BIGINT        NOT NULL
);

-- Basis points: 1900 is 19 %.
CREATE TABLE tax_rates (
    country     VARCHAR(2) NOT NULL PRIMARY KEY,
    rate_bps    BIGINT     NOT NULL,
    updated_at  BIGINT     NOT NULL
);

ALTER TABLE orders ADD COLUMN subtotal_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN shipping_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN tax_amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN tax_rate_bps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN prices_include_tax BIGINT NOT NULL DEFAULT 1;
ALTER TABLE orders ADD COLUMN shipping_method VARCHAR(100) NULL;
ALTER TABLE orders ADD COLUMN shipping_method_name VARCHAR(100) NULL;
UPDATE orders SET subtotal_amount = total_amount;
