-- A stack created by a bundle's purchase records that purchase (legacy
-- inventories show it as the stack's bundle parent).
ALTER TABLE inventory ADD COLUMN bundle_purchase_id BLOB;
