-- Who holds each reservation, so a SKU's actor can cap the units one customer holds
-- across unpaid orders. NULL for reservations made before the column existed.
ALTER TABLE inventory_reservations ADD COLUMN customer_id VARCHAR(64) NULL;
