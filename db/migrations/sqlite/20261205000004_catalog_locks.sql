-- One row per catalog structure whose changes must be checked one at a time against
-- its current state: a transaction that changes the category tree updates the
-- `categories` row first, which makes concurrent changes of the tree wait for it (so
-- two moves cannot each pass the cycle check against the tree before the other).
CREATE TABLE catalog_locks (
    name     VARCHAR(32) NOT NULL PRIMARY KEY,
    version  BIGINT      NOT NULL
);
INSERT INTO catalog_locks (name, version) VALUES ('categories', 0);
