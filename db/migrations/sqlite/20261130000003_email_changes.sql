-- Pending changes of a user's email address: the new address takes effect only when
-- the token mailed to it is spent. Only the token's SHA-256 hash is stored.
CREATE TABLE email_changes (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    token_hash  VARCHAR(64)  NOT NULL,
    user_id     VARCHAR(36)  NOT NULL,
    new_email   VARCHAR(254) NOT NULL,
    created_at  BIGINT       NOT NULL,
    expires_at  BIGINT       NOT NULL,
    used_at     BIGINT       NULL
);
CREATE UNIQUE INDEX email_changes_hash_uq ON email_changes (token_hash);
CREATE INDEX email_changes_user_idx ON email_changes (user_id);
