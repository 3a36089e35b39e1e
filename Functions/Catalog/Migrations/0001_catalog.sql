-- The platform catalog: pool servers, tenant databases and the audit trail of every change.
-- Vocabulary (same words in C#, JSON and logs): Pool = db_servers row, TenantDatabase = tenant_databases row.

CREATE TABLE db_servers (
    id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                      text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
    -- Unknown while the server is being provisioned.
    host                      text,
    port                      integer CHECK (port BETWEEN 1 AND 65535),
    server_type               text NOT NULL CHECK (server_type IN ('shared', 'dedicated', 'platform')),
    status                    text NOT NULL CHECK (status IN ('provisioning', 'initializing', 'active', 'full', 'draining', 'error', 'deleting', 'deleted')),
    health_status             text NOT NULL DEFAULT 'unknown' CHECK (health_status IN ('healthy', 'degraded', 'unhealthy', 'unknown')),
    current_instances         integer NOT NULL DEFAULT 0 CHECK (current_instances >= 0),
    max_instances             integer NOT NULL CHECK (max_instances >= 0),
    priority                  integer NOT NULL DEFAULT 100,
    postgres_version          text,
    cpu_limit                 numeric(6, 2),
    memory_limit              text,
    storage_path              text,
    driver                    text NOT NULL CHECK (driver IN ('swarm', 'docker', 'process', 'registered')),
    driver_resource_id        text,
    -- The durable orchestration that provisions this pool (deterministic id; joined, never duplicated).
    provisioning_instance_id  text UNIQUE,
    dedicated_to_customer_id  uuid,
    dedicated_to_instance_id  uuid,
    admin_user                text NOT NULL,
    admin_password_encrypted  text NOT NULL,
    last_health_check         timestamptz,
    last_response_ms          integer,
    database_count            integer,
    consecutive_health_failures integer NOT NULL DEFAULT 0,
    last_error                text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT current_within_max CHECK (current_instances <= max_instances)
);

-- Numbers the names of provisioned pools (shared-0001, ...).
CREATE SEQUENCE pool_name_seq;

CREATE INDEX ix_db_servers_allocation ON db_servers (server_type, status, current_instances, priority);
CREATE INDEX ix_db_servers_health_status ON db_servers (health_status);
CREATE INDEX ix_db_servers_driver_resource_id ON db_servers (driver_resource_id);
-- One live dedicated server per instance.
CREATE UNIQUE INDEX ux_db_servers_dedicated_instance ON db_servers (dedicated_to_instance_id)
    WHERE dedicated_to_instance_id IS NOT NULL AND status NOT IN ('error', 'deleted');

CREATE TABLE tenant_databases (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   uuid NOT NULL,
    customer_id   uuid NOT NULL,
    plan_tier     text NOT NULL,
    db_server_id  bigint NOT NULL REFERENCES db_servers (id),
    db_name       text NOT NULL,
    db_user       text NOT NULL,
    status        text NOT NULL CHECK (status IN ('creating', 'ready', 'released', 'failed', 'dropped')),
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz,
    released_at   timestamptz,
    dropped_at    timestamptz,
    cleaned_at    timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A live row (its database exists or is being made) is unique per instance: a duplicate request loses cleanly.
CREATE UNIQUE INDEX ux_tenant_databases_live_instance ON tenant_databases (instance_id)
    WHERE status IN ('creating', 'ready', 'released');
CREATE INDEX ix_tenant_databases_server ON tenant_databases (db_server_id, status);
CREATE INDEX ix_tenant_databases_status ON tenant_databases (status, updated_at);

CREATE TABLE pool_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    db_server_id  bigint REFERENCES db_servers (id),
    instance_id   uuid,
    event         text NOT NULL,
    from_status   text,
    to_status     text,
    reason        text,
    actor         text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ix_pool_events_server_at ON pool_events (db_server_id, at DESC);
CREATE INDEX ix_pool_events_instance ON pool_events (instance_id) WHERE instance_id IS NOT NULL;
