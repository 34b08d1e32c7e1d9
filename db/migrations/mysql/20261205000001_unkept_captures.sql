-- Captures no order could keep (a payment that lost its order to another transition)
-- whose refund the provider refused when first asked: one row per payment, owed
-- until a sweep's refund is made. `attempted_at` is the last ask.
CREATE TABLE unkept_captures (
    payment_reference VARCHAR(100) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    order_id          VARCHAR(36)  NOT NULL,
    amount            BIGINT       NOT NULL,
    currency          VARCHAR(3)   NOT NULL,
    created_at        BIGINT       NOT NULL,
    attempted_at      BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
CREATE INDEX unkept_captures_attempted_idx ON unkept_captures (attempted_at);
