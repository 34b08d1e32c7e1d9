-- The payment provider's event and refund ids are compared exactly, as SQLite does:
-- under the table's case- and accent-insensitive collation, two ids differing only in
-- case were one row, and the second event was answered as the first's duplicate.
ALTER TABLE payment_events MODIFY id VARCHAR(100) COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE order_refunds MODIFY id VARCHAR(100) COLLATE utf8mb4_bin NOT NULL;
