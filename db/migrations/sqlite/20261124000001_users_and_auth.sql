-- Users, sessions (refresh-token families), password resets and the outbox.
-- Keep in step with migrations/mysql: same tables, columns and indexes.

CREATE TABLE users (
    id                  VARCHAR(36)  NOT NULL PRIMARY KEY,
    email               VARCHAR(254) NOT NULL,
    name                VARCHAR(100) NOT NULL,
    password_hash       VARCHAR(100) NOT NULL,
    role                VARCHAR(16)  NOT NULL,
    status              VARCHAR(16)  NOT NULL,
    email_verified_at   BIGINT       NULL,
    created_at          BIGINT       NOT NULL,
    updated_at          BIGINT       NOT NULL
);
CREATE UNIQUE INDEX users_email_uq ON users (email);
CREATE INDEX users_role_idx ON users (role, id);

CREATE TABLE refresh_tokens (
    id          VARCHAR(36) NOT NULL PRIMARY KEY,
    token_hash  VARCHAR(64) NOT NULL,
    family_id   VARCHAR(36) NOT NULL,
    user_id     VARCHAR(36) NOT NULL,
    issued_at   BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    used_at     BIGINT      NULL,
    revoked_at  BIGINT      NULL
);
CREATE UNIQUE INDEX refresh_tokens_hash_uq ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

CREATE TABLE password_resets (
    id          VARCHAR(36) NOT NULL PRIMARY KEY,
    token_hash  VARCHAR(64) NOT NULL,
    user_id     VARCHAR(36) NOT NULL,
    created_at  BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    used_at     BIGINT      NULL
);
CREATE UNIQUE INDEX password_resets_hash_uq ON password_resets (token_hash);
CREATE INDEX password_resets_user_idx ON password_resets (user_id);

CREATE TABLE outbox_events (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    topic         VARCHAR(100) NOT NULL,
    aggregate_id  VARCHAR(64)  NOT NULL,
    payload       TEXT         NOT NULL,
    created_at    BIGINT       NOT NULL,
    published_at  BIGINT       NULL
);
CREATE INDEX outbox_events_unpublished_idx ON outbox_events (published_at, id);
