-- Placement (Functions/Catalog/Placement.cs) takes the first shared pool in service in strategy order. Without these indexes
-- it sorts every eligible pool on each allocation (a bitmap scan on status, then a sort of all of them); with them the first
-- pool in order is the first index entry that has room. One partial index per strategy: the predicate is Placement.Target
-- (shared) and Placement.InService word for word, the columns each strategy's ORDER BY (Placement.OrderBy), so the planner
-- matches them; NULLIF keeps the expression safe to index for a pool with max_instances 0 (it never has room).
CREATE INDEX ix_db_servers_placement_fill_first ON db_servers (priority, current_instances DESC, id)
    WHERE server_type = 'shared' AND status = 'active' AND health_status IN ('healthy', 'unknown');

CREATE INDEX ix_db_servers_placement_spread ON db_servers (priority, (current_instances::float8 / NULLIF(max_instances, 0)), id)
    WHERE server_type = 'shared' AND status = 'active' AND health_status IN ('healthy', 'unknown');
