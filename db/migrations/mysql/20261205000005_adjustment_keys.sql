-- The Idempotency-Key an admin's stock change was sent with, if any: a change sent
-- again with the same key (a retry after an answer that never came) finds its
-- movement here and is not applied twice. Keys compare exactly (binary collation),
-- as on SQLite: `Delivery-7` is another key than `delivery-7`.
ALTER TABLE inventory_movements ADD COLUMN request_key VARCHAR(100) COLLATE utf8mb4_bin NULL;
CREATE INDEX inventory_movements_request_idx ON inventory_movements (sku, request_key);
