-- Usage (issue 15, DESIGN.md §11). The health sweep reads each pool in one round trip and records it in one statement:
-- the pool's latest totals on its db_servers row (what placement ranks by, in the same statement it already runs), each
-- tenant database's latest size and sessions in tenant_usage, and an hourly rollup (the hour's largest size and most
-- sessions, tenant_id 0 for the pool's totals) kept for Usage:HistoryRetention.
ALTER TABLE db_servers
    ADD COLUMN stored_bytes bigint,
    ADD COLUMN open_connections integer,
    ADD COLUMN max_connections integer,
    ADD COLUMN usage_at timestamptz;

CREATE TABLE tenant_usage (
    tenant_id     bigint PRIMARY KEY REFERENCES tenant_databases (id) ON DELETE CASCADE,
    db_server_id  bigint NOT NULL REFERENCES db_servers (id),
    size_bytes    bigint NOT NULL,
    connections   integer NOT NULL,
    collected_at  timestamptz NOT NULL
);

CREATE INDEX ix_tenant_usage_server_size ON tenant_usage (db_server_id, size_bytes DESC);
CREATE INDEX ix_tenant_usage_size ON tenant_usage (size_bytes DESC);

CREATE TABLE usage_hourly (
    hour          timestamptz NOT NULL,
    db_server_id  bigint NOT NULL REFERENCES db_servers (id),
    tenant_id     bigint NOT NULL,
    size_bytes    bigint NOT NULL,
    connections   integer NOT NULL,
    samples       integer NOT NULL,
    PRIMARY KEY (hour, db_server_id, tenant_id)
);

-- Quotas (issue 15 item 2): where a tenant stands against its tier's limits; read_only is enforced on its server.
ALTER TABLE tenant_databases
    ADD COLUMN quota_state text NOT NULL DEFAULT 'ok' CHECK (quota_state IN ('ok', 'warning', 'read_only')),
    ADD COLUMN quota_changed_at timestamptz;
