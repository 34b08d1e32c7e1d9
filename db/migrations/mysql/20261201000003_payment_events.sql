-- Payment events received from the payment provider's webhook, one row per event id:
-- the id makes a redelivered event a no-op. `outcome` is 'processing' while the
-- event's order is being changed, then what the event did.
CREATE TABLE payment_events (
    id           VARCHAR(100) NOT NULL PRIMARY KEY,
    kind         VARCHAR(40)  NOT NULL,
    order_id     VARCHAR(36)  NOT NULL,
    outcome      VARCHAR(40)  NOT NULL,
    received_at  BIGINT       NOT NULL,
    finished_at  BIGINT       NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
-- Money given back on an order, one row per refund at the provider (its refund id):
-- the order shows them, and their sum never exceeds what was captured.
CREATE TABLE order_refunds (
    id           VARCHAR(100) NOT NULL PRIMARY KEY,
    order_id     VARCHAR(36)  NOT NULL,
    amount       BIGINT       NOT NULL,
    currency     VARCHAR(3)   NOT NULL,
    reason       VARCHAR(200) NOT NULL,
    created_at   BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
CREATE INDEX order_refunds_order_idx ON order_refunds (order_id, created_at);
