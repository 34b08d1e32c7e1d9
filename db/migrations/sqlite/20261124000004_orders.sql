-- Orders, their lines (prices snapshotted from the catalog) and status history.
-- Keep in step with migrations/mysql.

CREATE TABLE orders (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    user_id          VARCHAR(36)  NOT NULL,
    status           VARCHAR(20)  NOT NULL,
    was_paid         BIGINT       NOT NULL,
    currency         VARCHAR(3)   NOT NULL,
    total_amount     BIGINT       NOT NULL,
    idempotency_key  VARCHAR(100) NULL,
    request_hash     VARCHAR(64)  NOT NULL,
    payment_reference VARCHAR(100) NULL,
    expires_at       BIGINT       NOT NULL,
    -- 0 while the stock effect of the last transition (sell, release, return) is not yet
    -- done; the node's sweeper finishes it after a crash.
    stock_settled    BIGINT       NOT NULL,
    version          BIGINT       NOT NULL,
    created_at       BIGINT       NOT NULL,
    updated_at       BIGINT       NOT NULL
);
CREATE UNIQUE INDEX orders_idempotency_uq ON orders (user_id, idempotency_key);
CREATE INDEX orders_user_idx ON orders (user_id, created_at, id);
CREATE INDEX orders_created_idx ON orders (created_at, id);
CREATE INDEX orders_status_expiry_idx ON orders (status, expires_at);

CREATE TABLE order_lines (
    order_id     VARCHAR(36)  NOT NULL,
    line_no      BIGINT       NOT NULL,
    sku          VARCHAR(64)  NOT NULL,
    product_id   VARCHAR(36)  NOT NULL,
    name         VARCHAR(200) NOT NULL,
    unit_amount  BIGINT       NOT NULL,
    quantity     BIGINT       NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_history (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    order_id     VARCHAR(36)  NOT NULL,
    from_status  VARCHAR(20)  NULL,
    to_status    VARCHAR(20)  NOT NULL,
    actor        VARCHAR(100) NOT NULL,
    reason       VARCHAR(200) NOT NULL,
    created_at   BIGINT       NOT NULL
);
CREATE INDEX order_history_order_idx ON order_history (order_id, id);
