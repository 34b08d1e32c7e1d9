-- The owner epoch of each SKU and order: the shard lease epoch of the node whose actor
-- last claimed the row. A write carries its actor's epoch and succeeds only while no
-- later owner has claimed the row, so a node that lost its shard cannot write.
-- 0 on a node that is not clustered.
ALTER TABLE inventory_items ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0;
