-- Regenerating currencies: while a balance is below its currency's
-- recharge max, it gains `recharge_amount` every `recharge_period_seconds`
-- counted from `recharged_at`. Settled (with a `recharge` ledger entry)
-- before the balance is read or changed.
ALTER TABLE balances ADD COLUMN recharged_at timestamptz NOT NULL DEFAULT now();
