-- Adopted tenants (issue 14 item 7): databases that existed on a registered server before the catalog knew them keep their
-- own names, so their roles cannot be derived from instance_id. owner_role and login_role name them (NULL for every tenant the
-- allocator made: its names come from instance_id); the second login of the alternating rotation is login_role || '_b'.
-- adopted_at is when the database became a tenant (it has no first password in the handoff: the platform already holds it).
-- callback_url (issue 14 item 6): where the allocator POSTs a signed notice after a move or a restore; never a secret in it.
ALTER TABLE tenant_databases
    ADD COLUMN owner_role text,
    ADD COLUMN login_role text,
    ADD COLUMN adopted_at timestamptz,
    ADD COLUMN callback_url text,
    ADD CONSTRAINT adopted_names_together CHECK ((owner_role IS NULL) = (login_role IS NULL));
