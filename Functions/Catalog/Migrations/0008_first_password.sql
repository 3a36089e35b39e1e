-- The durable first password (DESIGN.md §5): the ciphertext of a new tenant's first password (purpose handoff:{instance_id},
-- the same sealing as the handoff entity's) is written by the statement that marks the row ready. The entity's deposit is a
-- signal that can be lost with its host; a claim that finds no deposit re-deposits this copy. It is cleared by the first
-- claim, by a rotation, by the release, and by the daily cleanup once the handoff TTL has passed.
ALTER TABLE tenant_databases ADD COLUMN first_password_encrypted text;

CREATE INDEX ix_tenant_databases_first_password ON tenant_databases (ready_at) WHERE first_password_encrypted IS NOT NULL;
