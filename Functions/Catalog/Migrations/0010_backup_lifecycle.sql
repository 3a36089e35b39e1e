-- Backups through the tenant's life (DESIGN.md §10, issue 14): why a backup was taken, and backups past their expiry.
-- kind: manual (asked for over HTTP), final (taken after a release, before the purge), scheduled (the tier's BackupEvery).
-- status expired: the cleanup deleted the blob of a backup past expires_at; the row stays (a restored tenant may name it in
-- restored_from_backup_id) but is never restorable.
ALTER TABLE tenant_backups ADD COLUMN kind text NOT NULL DEFAULT 'manual' CHECK (kind IN ('manual', 'final', 'scheduled'));

ALTER TABLE tenant_backups DROP CONSTRAINT tenant_backups_status_check;
ALTER TABLE tenant_backups ADD CONSTRAINT tenant_backups_status_check CHECK (status IN ('creating', 'completed', 'failed', 'expired'));

-- The cleanup's expiry scan and the schedule's "last completed backup" look-up.
CREATE INDEX ix_tenant_backups_expiry ON tenant_backups (expires_at) WHERE status = 'completed';
CREATE INDEX ix_tenant_backups_tenant_completed ON tenant_backups (tenant_id, finished_at DESC) WHERE status = 'completed';
