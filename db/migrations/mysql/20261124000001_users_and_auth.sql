-- Users, sessions (refresh-token families), password resets and the outbox.
-- Keep in step with migrations/sqlite: same tables, columns and indexes.

CREATE TABLE users (
    id                  VARCHAR(36)  NOT NULL PRIMARY KEY,
    email               VARCHAR(254) NOT NULL,
    name                VARCHAR(100) NOT NULL,
    password_hash       VARCHAR(100) NOT NULL,
    role                VARCHAR(16)  NOT NULL,
    status              VARCHAR(16)  NOT NULL,
    email_verified_at   BIGINT       NULL,
    created_at          BIGINT       NOT NULL,
    updated_at          BIGINT       NOT NULL,
    UNIQUE KEY users_email_uq (email),
    KEY users_role_idx (role, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE refresh_tokens (
    id          VARCHAR(36) NOT NULL PRIMARY KEY,
    token_hash  VARCHAR(64) NOT NULL,
    family_id   VARCHAR(36) NOT NULL,
    user_id     VARCHAR(36) NOT NULL,
    issued_at   BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    used_at     BIGINT      NULL,
    revoked_at  BIGINT      NULL,
    UNIQUE KEY refresh_tokens_hash_uq (token_hash),
    KEY refresh_tokens_family_idx (family_id),
    KEY refresh_tokens_user_idx (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE password_resets (
    id          VARCHAR(36) NOT NULL PRIMARY KEY,
    token_hash  VARCHAR(64) NOT NULL,
    user_id     VARCHAR(36) NOT NULL,
    created_at  BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    used_at     BIGINT      NULL,
    UNIQUE KEY password_resets_hash_uq (token_hash),
    KEY password_resets_user_idx (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE outbox_events (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    topic         VARCHAR(100) NOT NULL,
    aggregate_id  VARCHAR(64)  NOT NULL,
    -- VARCHAR, not TEXT: sqlx's Any driver reads MySQL TEXT columns as BLOB. Payloads are
    -- bounded by souk_db::outbox::MAX_PAYLOAD_CHARS.
    payload       VARCHAR(12000) NOT NULL,
    created_at    BIGINT       NOT NULL,
    published_at  BIGINT       NULL,
    KEY outbox_events_unpublished_idx (published_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
