-- A tenant's request rate limits: NULL keeps the host's defaults, the JSON
-- text 'null' turns them off (for load tests), an object sets them.
ALTER TABLE tenants ADD COLUMN rate_limits TEXT;
