-- A purchase's idempotency record is the purchase row itself: the request
-- hash and the response are written with it, and a unique index makes the
-- key claim. One row and one index entry fewer per purchase.
ALTER TABLE purchases
    ADD COLUMN request_hash    bytea,
    ADD COLUMN response_status smallint,
    ADD COLUMN response_body   jsonb;

UPDATE purchases p
SET request_hash = k.request_hash, response_status = k.response_status, response_body = k.response_body
FROM idempotency_keys k
WHERE k.user_id = p.user_id AND k.key = p.idempotency_key;

CREATE UNIQUE INDEX purchases_by_idempotency_key ON purchases (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

DROP TABLE idempotency_keys;
