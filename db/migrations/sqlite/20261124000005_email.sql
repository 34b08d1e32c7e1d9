-- Email: outbox relay leases, verification tokens, sends and dead letters.
-- Keep in step with migrations/mysql.

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
    used_at     BIGINT      NULL
);
CREATE UNIQUE INDEX email_verifications_hash_uq ON email_verifications (token_hash);
CREATE INDEX email_verifications_user_idx ON email_verifications (user_id);

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
    updated_at   BIGINT       NOT NULL
);
CREATE UNIQUE INDEX email_sends_dedup_uq ON email_sends (event_id, template, recipient);
CREATE INDEX email_sends_recent_idx ON email_sends (created_at, id);

CREATE TABLE email_dead_letters (
    id          VARCHAR(36)   NOT NULL PRIMARY KEY,
    event_id    VARCHAR(36)   NOT NULL,
    topic       VARCHAR(100)  NOT NULL,
    aggregate_id VARCHAR(64)  NOT NULL,
    payload     VARCHAR(12000) NOT NULL,
    attempts    BIGINT        NOT NULL,
    last_error  VARCHAR(1000) NOT NULL,
    created_at  BIGINT        NOT NULL,
    replayed_at BIGINT        NULL
);
CREATE INDEX email_dead_letters_created_idx ON email_dead_letters (created_at, id);
