-- A stack created by a bundle's purchase records that purchase (legacy
-- inventories show it as the stack's bundle parent). A column of the
-- player's own row: nothing changes for distribution.
ALTER TABLE inventory ADD COLUMN bundle_purchase_id uuid;
