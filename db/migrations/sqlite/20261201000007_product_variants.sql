-- Product variants: a product's options (size, colour …, each with its values in
-- display order) and its variants, each sold by its own SKU at its own price with its
-- own images. A product without options has no rows here and is sold by its own SKU.
-- Every SKU the catalog sells or names, a product's own or a variant's, is a key of
-- catalog_skus, so one SKU names one thing even when two writes race.
-- Keep in step with migrations/mysql.
CREATE TABLE product_options (
    product_id  VARCHAR(36)   NOT NULL,
    position    BIGINT        NOT NULL,
    name        VARCHAR(50)   NOT NULL,
    -- JSON array of the values, in display order.
    choices     VARCHAR(6000) NOT NULL,
    PRIMARY KEY (product_id, position)
);

CREATE TABLE product_variants (
    sku           VARCHAR(64)   NOT NULL PRIMARY KEY,
    product_id    VARCHAR(36)   NOT NULL,
    position      BIGINT        NOT NULL,
    -- JSON array: the variant's value of each option, in the options' order.
    option_values VARCHAR(1000) NOT NULL,
    -- In the product's currency.
    price_amount  BIGINT        NOT NULL,
    -- JSON array of URLs; empty: the product's images.
    images        VARCHAR(4000) NOT NULL
);
CREATE INDEX product_variants_product_idx ON product_variants (product_id, position);

CREATE TABLE catalog_skus (
    sku         VARCHAR(64) NOT NULL PRIMARY KEY,
    product_id  VARCHAR(36) NOT NULL
);
CREATE INDEX catalog_skus_product_idx ON catalog_skus (product_id);
INSERT INTO catalog_skus (sku, product_id) SELECT sku, id FROM products;
