-- Catalog search is answered by the embedded search index, built from these tables:
-- the full-text table, its triggers and the tag text they indexed go. Keep in step
-- with migrations/mysql.

DROP TRIGGER products_fts_insert;
DROP TRIGGER products_fts_delete;
DROP TRIGGER products_fts_update;
DROP TABLE products_fts;
ALTER TABLE products DROP COLUMN tags_text;
