-- pool_events is the platform's status history (who changed what, when): append-only for the app.
-- UPDATE, DELETE and TRUNCATE are refused by triggers, except the retention purge: purge_pool_events() deletes rows
-- older than its cutoff, which it announces for the rest of its own statement through a transaction-local setting that
-- the trigger checks (a row newer than the cutoff is refused even then). It is the one path that removes an event.

CREATE FUNCTION pool_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    purge_before text := current_setting('tenantdb.purge_events_before', true);
BEGIN
    IF TG_OP = 'DELETE' AND purge_before IS NOT NULL AND purge_before <> ''
       AND extract(epoch FROM OLD.at) < purge_before::numeric THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'pool_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege', HINT = 'Old events leave only through purge_pool_events(cutoff, batch).';
END
$$;

CREATE TRIGGER pool_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON pool_events
    FOR EACH ROW EXECUTE FUNCTION pool_events_append_only();

CREATE TRIGGER pool_events_no_truncate
    BEFORE TRUNCATE ON pool_events
    FOR EACH STATEMENT EXECUTE FUNCTION pool_events_append_only();

-- The retention purge: at most max_rows events older than cutoff, oldest first; returns how many it removed.
CREATE FUNCTION purge_pool_events(cutoff timestamptz, max_rows integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    removed integer;
BEGIN
    PERFORM set_config('tenantdb.purge_events_before', extract(epoch FROM cutoff)::text, true);
    DELETE FROM pool_events
    WHERE id IN (SELECT id FROM pool_events WHERE at < cutoff ORDER BY id LIMIT max_rows);
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('tenantdb.purge_events_before', '', true);
    RETURN removed;
END
$$;

-- The history routes page newest first by id: per pool, per instance; the purge finds old rows by time.
CREATE INDEX ix_pool_events_server_id ON pool_events (db_server_id, id DESC);
CREATE INDEX ix_pool_events_instance_id ON pool_events (instance_id, id DESC) WHERE instance_id IS NOT NULL;
CREATE INDEX ix_pool_events_at ON pool_events (at);
