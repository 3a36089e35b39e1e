-- Alternating logins (DESIGN.md §9): every tenant has two login roles in its owner role; db_user names the one in use.
-- A rotation is recorded here, its new password encrypted, BEFORE the password is set on the idle login; the login in
-- use keeps working until the new password is claimed (or RotationGrace ends), then it is retired (NOLOGIN).
-- rotation_state: setting (in flight) -> pending (in the handoff) -> committed (claimed: db_user switched);
-- unconfirmed (the set or the deposit may not have happened) and abandoned (given up by the sweep) end a failed one.

-- Orders rotations: a handoff ignores a deposit older than the one it holds.
CREATE SEQUENCE login_rotation_seq;

ALTER TABLE tenant_databases
    ADD COLUMN rotation_id bigint,
    ADD COLUMN rotation_login text,
    ADD COLUMN rotation_password_encrypted text,
    ADD COLUMN rotation_state text CHECK (rotation_state IN ('setting', 'unconfirmed', 'pending', 'committed', 'abandoned')),
    ADD COLUMN rotation_started_at timestamptz,
    ADD COLUMN rotation_deposited_at timestamptz,
    -- The login that was in use before the last committed rotation, until it is set NOLOGIN.
    ADD COLUMN retiring_login text;

CREATE INDEX ix_tenant_databases_rotation_due ON tenant_databases (id)
    WHERE rotation_state IN ('setting', 'unconfirmed', 'pending') OR retiring_login IS NOT NULL;
