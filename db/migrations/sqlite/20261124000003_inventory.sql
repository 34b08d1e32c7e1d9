-- Inventory: one row per SKU (written only by that SKU's actor), its open
-- reservations, and the movement ledger. Keep in step with migrations/mysql.

CREATE TABLE inventory_items (
    sku                  VARCHAR(64) NOT NULL PRIMARY KEY,
    on_hand              BIGINT      NOT NULL,
    reserved             BIGINT      NOT NULL,
    low_stock_threshold  BIGINT      NOT NULL,
    -- Bumped by every write; writes are conditional on it (fencing).
    version              BIGINT      NOT NULL,
    updated_at           BIGINT      NOT NULL
);

CREATE TABLE inventory_reservations (
    sku         VARCHAR(64) NOT NULL,
    order_id    VARCHAR(64) NOT NULL,
    quantity    BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    created_at  BIGINT      NOT NULL,
    PRIMARY KEY (sku, order_id)
);
CREATE INDEX inventory_reservations_expiry_idx ON inventory_reservations (expires_at);

CREATE TABLE inventory_movements (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    sku             VARCHAR(64)  NOT NULL,
    kind            VARCHAR(16)  NOT NULL,
    delta_on_hand   BIGINT       NOT NULL,
    delta_reserved  BIGINT       NOT NULL,
    order_id        VARCHAR(64)  NULL,
    actor           VARCHAR(100) NOT NULL,
    reason          VARCHAR(200) NOT NULL,
    -- The item version this movement was committed with: one per batch.
    version         BIGINT       NOT NULL,
    created_at      BIGINT       NOT NULL
);
CREATE INDEX inventory_movements_sku_idx ON inventory_movements (sku, id);
CREATE INDEX inventory_movements_order_idx ON inventory_movements (order_id, sku, kind);
