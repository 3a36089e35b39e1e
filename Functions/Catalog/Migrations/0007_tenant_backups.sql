-- Tenant backups (DESIGN.md §10): a pg_dump -Fc archive of one tenant database in a block blob, one row per attempt.
-- status: creating (the dump is streaming) -> completed (blob written, size and SHA-256 recorded) | failed (partial blob deleted).
-- table_rows: the row count of every table the dump holds data for, counted in the dump's own snapshot, so a restore can be
-- verified table by table; large_objects likewise.
CREATE TABLE tenant_backups (
    id              uuid PRIMARY KEY,
    instance_id     uuid NOT NULL,
    tenant_id       bigint NOT NULL REFERENCES tenant_databases (id),
    db_server_id    bigint NOT NULL REFERENCES db_servers (id),
    server_version  text,
    blob_name       text NOT NULL UNIQUE,
    size_bytes      bigint,
    sha256          text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    table_rows      jsonb,
    large_objects   bigint,
    status          text NOT NULL CHECK (status IN ('creating', 'completed', 'failed')),
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    expires_at      timestamptz,
    error           text,
    CHECK (status <> 'completed' OR (size_bytes IS NOT NULL AND sha256 IS NOT NULL AND table_rows IS NOT NULL AND finished_at IS NOT NULL))
);

CREATE INDEX ix_tenant_backups_instance ON tenant_backups (instance_id, started_at DESC);

-- The backup the tenant's database content was last restored from (in place), and when.
ALTER TABLE tenant_databases ADD COLUMN restored_from_backup_id uuid REFERENCES tenant_backups (id);
ALTER TABLE tenant_databases ADD COLUMN restored_at timestamptz;
