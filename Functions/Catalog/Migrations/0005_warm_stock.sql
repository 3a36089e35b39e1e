-- Warm stock (DESIGN.md §9): databases made ahead of demand on active shared pools, each an owner role and a database
-- from template0 that nobody may connect to. A row exists only while its stock is unclaimed: the allocation that claims
-- it deletes the row in the statement that takes the slot and records its name on the tenant row (stock_name), so a
-- stock database is always owned by exactly one row, here or there.
-- status: creating (a replenisher is making its objects) -> ready (claimable).
CREATE TABLE warm_stock (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    db_server_id  bigint NOT NULL REFERENCES db_servers (id),
    name          text NOT NULL UNIQUE CHECK (name ~ '^tenantdb_stock_[0-9a-f]{20}$'),
    status        text NOT NULL CHECK (status IN ('creating', 'ready')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    ready_at      timestamptz
);

CREATE INDEX ix_warm_stock_server ON warm_stock (db_server_id, status, id);

-- The stock this tenant's database was made from: until the allocation finishes, its objects may still carry this name.
ALTER TABLE tenant_databases ADD COLUMN stock_name text;
