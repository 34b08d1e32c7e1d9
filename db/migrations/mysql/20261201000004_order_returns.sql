-- Returns a shopper asks for after delivery: requested, then approved or rejected by an
-- admin; approved returns are received (their units go back to stock) and refunded.
CREATE TABLE order_returns (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    order_id       VARCHAR(36)  NOT NULL,
    status         VARCHAR(20)  NOT NULL,
    reason         VARCHAR(200) NOT NULL,
    -- Why an admin rejected it, or empty.
    decision       VARCHAR(200) NOT NULL,
    -- The order's currency, for the amounts of the return.
    currency       VARCHAR(3)   NOT NULL,
    refund_amount  BIGINT       NULL,
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
CREATE INDEX order_returns_order_idx ON order_returns (order_id, created_at);
CREATE INDEX order_returns_status_idx ON order_returns (status, created_at);
-- The units of each returned line, at the price the order paid for them.
CREATE TABLE order_return_lines (
    return_id    VARCHAR(36)  NOT NULL,
    sku          VARCHAR(64)  NOT NULL,
    quantity     BIGINT       NOT NULL,
    unit_amount  BIGINT       NOT NULL,
    PRIMARY KEY (return_id, sku)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
