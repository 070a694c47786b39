-- What rules modules may read beyond the catalog and the player's holdings
-- (economy:plugin@0.1.1): the attributes the game server sets on a player,
-- and the tenant-wide settings its admin gives the module (JSON objects).
ALTER TABLE users ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
ALTER TABLE tenants ADD COLUMN module_settings TEXT NOT NULL DEFAULT '{}';
