-- Shopping carts kept in the database (when no Redis is configured): one row per cart,
-- keyed `user:<user id>` or `guest:<SHA-256 of the guest token>`; the lines are one
-- JSON document written whole, conditional on `version`, so concurrent edits of one
-- cart never lose each other's writes. Guest carts expire (`expires_at`, micros).
-- Keep in step with migrations/mysql.
CREATE TABLE carts (
    cart_key    VARCHAR(80) NOT NULL PRIMARY KEY,
    version     BIGINT      NOT NULL,
    content     BLOB        NOT NULL,
    expires_at  BIGINT      NULL,
    updated_at  BIGINT      NOT NULL
);
CREATE INDEX carts_expiry_idx ON carts (expires_at);
