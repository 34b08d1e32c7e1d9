-- Shopping carts kept in the database (when no Redis is configured): one row per cart,
-- keyed `user:<user id>` or `guest:<SHA-256 of the guest token>`; the lines are one
-- JSON document written whole, conditional on `version`, so concurrent edits of one
-- cart never lose each other's writes. Guest carts expire (`expires_at`, micros).
-- Keep in step with migrations/sqlite.
-- BLOB, not TEXT: sqlx's Any driver reads MySQL TEXT columns as BLOB anyway, and a
-- full cart (50 lines with names) may pass a VARCHAR's row budget.
CREATE TABLE carts (
    cart_key    VARCHAR(80) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    version     BIGINT      NOT NULL,
    content     MEDIUMBLOB  NOT NULL,
    expires_at  BIGINT      NULL,
    updated_at  BIGINT      NOT NULL,
    KEY carts_expiry_idx (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
