-- Product catalog. Keep in step with migrations/mysql.

CREATE TABLE categories (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    parent_id   VARCHAR(36)  NULL,
    name        VARCHAR(100) NOT NULL,
    slug        VARCHAR(100) NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL
);
CREATE UNIQUE INDEX categories_slug_uq ON categories (slug);
CREATE INDEX categories_parent_idx ON categories (parent_id);

CREATE TABLE products (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    sku           VARCHAR(64)   NOT NULL,
    name          VARCHAR(200)  NOT NULL,
    description   VARCHAR(5000) NOT NULL,
    price_amount  BIGINT        NOT NULL,
    currency      VARCHAR(3)    NOT NULL,
    category_id   VARCHAR(36)   NULL,
    -- Space-separated tags, for full-text search; product_tags is the source of truth.
    tags_text     VARCHAR(1100) NOT NULL,
    -- JSON array of image URLs.
    images        VARCHAR(4000) NOT NULL,
    status        VARCHAR(16)   NOT NULL,
    created_at    BIGINT        NOT NULL,
    updated_at    BIGINT        NOT NULL
);
CREATE UNIQUE INDEX products_sku_uq ON products (sku);
CREATE INDEX products_status_id_idx ON products (status, id);
CREATE INDEX products_category_idx ON products (category_id, id);
-- Covers the category facet of a browse (no text, filtered by status).
CREATE INDEX products_status_category_idx ON products (status, category_id);
CREATE INDEX products_price_idx ON products (price_amount, id);
CREATE INDEX products_name_idx ON products (name, id);

CREATE TABLE product_tags (
    product_id  VARCHAR(36) NOT NULL,
    tag         VARCHAR(50) NOT NULL,
    PRIMARY KEY (product_id, tag)
);
CREATE INDEX product_tags_tag_idx ON product_tags (tag, product_id);

CREATE TABLE product_attributes (
    product_id  VARCHAR(36)  NOT NULL,
    name        VARCHAR(50)  NOT NULL,
    value       VARCHAR(100) NOT NULL,
    -- Copies of the product's status and category, rewritten with the rows on every
    -- product write, so the attribute facet of a browse needs no join.
    status      VARCHAR(16)  NOT NULL,
    category_id VARCHAR(36)  NULL,
    PRIMARY KEY (product_id, name)
);
CREATE INDEX product_attributes_value_idx ON product_attributes (name, value, product_id);
CREATE INDEX product_attributes_facet_idx ON product_attributes (status, category_id, name, value);

-- Full-text index over name, description and tags, kept in step by triggers so the
-- repository writes the same SQL on both engines (MySQL maintains its FULLTEXT index
-- itself).
CREATE VIRTUAL TABLE products_fts USING fts5 (
    name, description, tags_text,
    content = 'products', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (rowid, name, description, tags_text)
    VALUES (new.rowid, new.name, new.description, new.tags_text);
END;
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description, tags_text)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags_text);
END;
CREATE TRIGGER products_fts_update AFTER UPDATE ON products BEGIN
    INSERT INTO products_fts (products_fts, rowid, name, description, tags_text)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags_text);
    INSERT INTO products_fts (rowid, name, description, tags_text)
    VALUES (new.rowid, new.name, new.description, new.tags_text);
END;
