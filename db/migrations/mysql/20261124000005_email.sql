-- Email: outbox relay leases, verification tokens, sends and dead letters.
-- Keep in step with migrations/sqlite.

-- A relay leases rows before publishing them, so several nodes relaying at once do not
-- publish the same event twice in the normal case.
ALTER TABLE outbox_events ADD COLUMN claimed_by VARCHAR(64) NULL;
ALTER TABLE outbox_events ADD COLUMN claimed_until BIGINT NULL;

-- When the one verification reminder went out (`souk email remind-unverified`).
ALTER TABLE users ADD COLUMN verification_reminded_at BIGINT NULL;

CREATE TABLE email_verifications (
    id          VARCHAR(36) NOT NULL PRIMARY KEY,
    token_hash  VARCHAR(64) NOT NULL,
    user_id     VARCHAR(36) NOT NULL,
    created_at  BIGINT      NOT NULL,
    expires_at  BIGINT      NOT NULL,
    used_at     BIGINT      NULL,
    UNIQUE KEY email_verifications_hash_uq (token_hash),
    KEY email_verifications_user_idx (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per (event, template, recipient): the consumers' de-duplication key.
CREATE TABLE email_sends (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    event_id     VARCHAR(36)  NOT NULL,
    template     VARCHAR(40)  NOT NULL,
    recipient    VARCHAR(254) NOT NULL,
    subject      VARCHAR(300) NOT NULL,
    status       VARCHAR(16)  NOT NULL,
    attempts     BIGINT       NOT NULL,
    last_error   VARCHAR(1000) NULL,
    created_at   BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL,
    UNIQUE KEY email_sends_dedup_uq (event_id, template, recipient),
    KEY email_sends_recent_idx (created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE email_dead_letters (
    id          VARCHAR(36)   NOT NULL PRIMARY KEY,
    event_id    VARCHAR(36)   NOT NULL,
    topic       VARCHAR(100)  NOT NULL,
    aggregate_id VARCHAR(64)  NOT NULL,
    -- VARCHAR, not TEXT: sqlx's Any driver reads MySQL TEXT columns as BLOB.
    payload     VARCHAR(12000) NOT NULL,
    attempts    BIGINT        NOT NULL,
    last_error  VARCHAR(1000) NOT NULL,
    created_at  BIGINT        NOT NULL,
    replayed_at BIGINT        NULL,
    KEY email_dead_letters_created_idx (created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
