-- Catalog search is answered by the embedded search index, built from these tables:
-- the full-text keys and the tag text they indexed go. Keep in step with
-- migrations/sqlite.

ALTER TABLE products
    DROP INDEX products_fts,
    DROP INDEX products_fts_name,
    DROP COLUMN tags_text;
