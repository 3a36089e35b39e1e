-- Moves of tenants between pools (DESIGN.md §10). generation counts where a tenant lives: 1 where it was allocated, +1 at
-- every move's switch, so the instance-service can tell a new address from a stale one.
ALTER TABLE tenant_databases ADD COLUMN generation int NOT NULL DEFAULT 1;

-- One row per move. status: moving (target slot reserved, in flight) -> switched (the tenant row points at the target, in
-- the same transaction; its logins not yet open there) -> moved (open on the target; the source copy kept, frozen, until
-- source_purge_after) -> source_purged; or moving -> failed (rolled back: the tenant on its source, nothing on the target).
-- A moving row counts on its target's capacity (a slot is reserved there before any DDL). frozen_logins: the logins the
-- source's freeze refused, to open on the target.
CREATE TABLE tenant_moves (
    id                  uuid PRIMARY KEY,
    tenant_id           bigint NOT NULL REFERENCES tenant_databases (id),
    instance_id         uuid NOT NULL,
    source_pool_id      bigint NOT NULL REFERENCES db_servers (id),
    target_pool_id      bigint NOT NULL REFERENCES db_servers (id) CHECK (target_pool_id <> source_pool_id),
    status              text NOT NULL CHECK (status IN ('moving', 'switched', 'moved', 'failed', 'source_purged')),
    frozen_logins       text[],
    source_open         boolean,
    reason              text,
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    downtime_ms         double precision,
    tables              int,
    rows                bigint,
    error               text,
    source_purge_after  timestamptz
);

-- At most one move of a tenant in flight.
CREATE UNIQUE INDEX ux_tenant_moves_in_flight ON tenant_moves (tenant_id) WHERE status IN ('moving', 'switched');
CREATE INDEX ix_tenant_moves_target_in_flight ON tenant_moves (target_pool_id) WHERE status = 'moving';
CREATE INDEX ix_tenant_moves_source_copies ON tenant_moves (source_purge_after) WHERE status = 'moved';
CREATE INDEX ix_tenant_moves_instance ON tenant_moves (instance_id, started_at DESC);
