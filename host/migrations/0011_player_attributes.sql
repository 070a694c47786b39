-- What rules modules may read beyond the catalog and the player's holdings
-- (economy:plugin@0.1.1): the attributes the game server sets on a player
-- (a tier, a region, a flag), and the tenant-wide settings its admin gives
-- the module. Both are JSON objects.
ALTER TABLE users ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN module_settings jsonb NOT NULL DEFAULT '{}';
