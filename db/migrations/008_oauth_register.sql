-- 008_oauth_register.sql — dynamic client registration and Client ID
-- Metadata Documents (workers/sb_oauth_register.c, workers/sb_cimd.c).
--
-- A metadata document's row in oauth_clients is the cache of the fetched
-- document: metadata_fetched_at (004) says when it was fetched,
-- metadata_expires_at until when it is reused without a refetch (the
-- response's Cache-Control max-age, clamped by the worker). oauth_clients
-- is global (no tenant): no RLS here.
--
-- Applied once, in one transaction, by sb_db_migrate; IF NOT EXISTS keeps
-- it safe to run on a schema that already has part of it.

ALTER TABLE oauth_clients ADD COLUMN IF NOT EXISTS metadata_expires_at timestamptz;

ALTER TABLE oauth_clients DROP CONSTRAINT IF EXISTS oauth_clients_document_times;
ALTER TABLE oauth_clients ADD CONSTRAINT oauth_clients_document_times
    CHECK (kind <> 'metadata_document'
           OR (metadata_fetched_at IS NOT NULL AND metadata_expires_at IS NOT NULL));
