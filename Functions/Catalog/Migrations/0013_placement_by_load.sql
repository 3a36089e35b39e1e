-- Placement by load (issue 15 item 3, DESIGN.md §11). A pool's load score is the largest of its three shares: tenants against
-- max_instances, stored bytes against its storage budget, open connections against max_connections (a figure not yet measured
-- counts 0). It is a stored generated column, so every statement that changes a pool's count (reserve, release, move) or its
-- figures (the health check's usage collection, which also writes the budget, Pools:Shared:StorageBudgetGb) keeps it current,
-- and the placement indexes can order by it. A pool whose score reaches 1 on any dimension takes no tenant.
ALTER TABLE db_servers
    ADD COLUMN storage_budget_bytes bigint CHECK (storage_budget_bytes > 0),
    ADD COLUMN load_score float8 GENERATED ALWAYS AS (greatest(
        current_instances::float8 / NULLIF(max_instances, 0),
        coalesce(stored_bytes, 0)::float8 / NULLIF(storage_budget_bytes, 0),
        coalesce(open_connections, 0)::float8 / NULLIF(max_connections, 0))) STORED;

-- The placement indexes of 0006 ordered by count; these order by the score (Placement.OrderBy) and hold only the pools that
-- can take a tenant (Placement.Target shared, Placement.InService and Placement.HasRoom word for word), so the first entry in
-- strategy order is the candidate.
DROP INDEX ix_db_servers_placement_fill_first;
DROP INDEX ix_db_servers_placement_spread;

CREATE INDEX ix_db_servers_placement_fill_first ON db_servers (priority, load_score DESC, id)
    WHERE server_type = 'shared' AND status = 'active' AND health_status IN ('healthy', 'unknown')
      AND current_instances < max_instances AND load_score < 1;

CREATE INDEX ix_db_servers_placement_spread ON db_servers (priority, load_score, id)
    WHERE server_type = 'shared' AND status = 'active' AND health_status IN ('healthy', 'unknown')
      AND current_instances < max_instances AND load_score < 1;
