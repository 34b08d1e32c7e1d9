-- Product catalog. Keep in step with migrations/sqlite.

CREATE TABLE categories (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    parent_id   VARCHAR(36)  NULL,
    name        VARCHAR(100) NOT NULL,
    slug        VARCHAR(100) NOT NULL,
    created_at  BIGINT       NOT NULL,
    updated_at  BIGINT       NOT NULL,
    UNIQUE KEY categories_slug_uq (slug),
    KEY categories_parent_idx (parent_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE products (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    sku           VARCHAR(64)   NOT NULL,
    name          VARCHAR(200)  NOT NULL,
    -- VARCHAR, not TEXT: sqlx's Any driver reads MySQL TEXT columns as BLOB.
    description   VARCHAR(5000) NOT NULL,
    price_amount  BIGINT        NOT NULL,
    currency      VARCHAR(3)    NOT NULL,
    category_id   VARCHAR(36)   NULL,
    tags_text     VARCHAR(1100) NOT NULL,
    images        VARCHAR(4000) NOT NULL,
    status        VARCHAR(16)   NOT NULL,
    created_at    BIGINT        NOT NULL,
    updated_at    BIGINT        NOT NULL,
    UNIQUE KEY products_sku_uq (sku),
    KEY products_status_id_idx (status, id),
    KEY products_category_idx (category_id, id),
    KEY products_status_category_idx (status, category_id),
    KEY products_price_idx (price_amount, id),
    KEY products_name_idx (name, id),
    FULLTEXT KEY products_fts (name, description, tags_text),
    -- A name-only index too, so a match in the name can weigh more (see catalog.rs).
    FULLTEXT KEY products_fts_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci ROW_FORMAT = DYNAMIC;

CREATE TABLE product_tags (
    product_id  VARCHAR(36) NOT NULL,
    -- Binary collation: tags, attribute names and values compare exactly, as in SQLite.
    tag         VARCHAR(50) COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (product_id, tag),
    KEY product_tags_tag_idx (tag, product_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE product_attributes (
    product_id  VARCHAR(36)  NOT NULL,
    name        VARCHAR(50)  COLLATE utf8mb4_bin NOT NULL,
    value       VARCHAR(100) COLLATE utf8mb4_bin NOT NULL,
    -- Copies of the product's status and category (see migrations/sqlite).
    status      VARCHAR(16)  NOT NULL,
    category_id VARCHAR(36)  NULL,
    PRIMARY KEY (product_id, name),
    KEY product_attributes_value_idx (name, value, product_id),
    KEY product_attributes_facet_idx (status, category_id, name, value)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
