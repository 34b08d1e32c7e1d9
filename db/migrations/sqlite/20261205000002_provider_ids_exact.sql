-- MariaDB's migration of this number makes the payment provider's event and refund ids
-- compare exactly; SQLite's text keys already do. Nothing to change here.
SELECT 1;
