-- Inventory: one row per SKU (written only by that SKU's actor), its open
-- reservations, and the movement ledger. Keep in step with migrations/sqlite.

CREATE TABLE inventory_items (
    sku                  VARCHAR(64) NOT NULL PRIMARY KEY,
    on_hand              BIGINT      NOT NULL,
    reserved             BIGINT      NOT NULL,
    low_stock_threshold  BIGINT      NOT NULL,
    version              BIGINT      NOT NULL,
    updated_at           BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE inventory_reservations (
    sku         VARCHAR(64) NOT NULL,
    order_id    VARCHAR(64) NOT NULL,
    quantity    BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    created_at  BIGINT      NOT NULL,
    PRIMARY KEY (sku, order_id),
    KEY inventory_reservations_expiry_idx (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE inventory_movements (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    sku             VARCHAR(64)  NOT NULL,
    kind            VARCHAR(16)  NOT NULL,
    delta_on_hand   BIGINT       NOT NULL,
    delta_reserved  BIGINT       NOT NULL,
    order_id        VARCHAR(64)  NULL,
    actor           VARCHAR(100) NOT NULL,
    reason          VARCHAR(200) NOT NULL,
    version         BIGINT       NOT NULL,
    created_at      BIGINT       NOT NULL,
    KEY inventory_movements_sku_idx (sku, id),
    KEY inventory_movements_order_idx (order_id, sku, kind)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
