-- db/migrations/001_init.sql — the first schema: tenants, their
-- upstream connections, and the audit log.
--
-- Migrations are applied by sb_db_migrate (db/sb_db.c) in order, each
-- in its own transaction, recorded in schema_migrations; so files hold no
-- BEGIN/COMMIT and are never edited once released — add a new number.
--
-- Tenant isolation: every tenant-owned table carries tenant_id, and
-- row-level security (forced, so it binds the owning role too) admits only
-- rows of the tenant named by the session setting switchboard.tenant_id:
--     SELECT set_config('switchboard.tenant_id', $1, true);   -- per transaction
-- Work that spans tenants on purpose (token refresh sweeps, admin API)
-- says so with switchboard.system = 'on'. With neither set, a query sees
-- no tenant rows at all.

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL,
    plan        text NOT NULL DEFAULT 'free'
                CHECK (plan IN ('free', 'pro', 'enterprise', 'custom')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One tenant's link to one SaaS account through a connector. Tokens are
-- AES-256-GCM ciphertexts; key_id names the key that sealed them.
CREATE TABLE connections (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector           text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'connected', 'broken', 'revoked')),
    status_detail       text,
    access_token_enc    bytea,
    refresh_token_enc   bytea,
    key_id              text,
    scopes              text,
    expires_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, connector)
);

-- Who did what to which tenant's data, including refused cross-tenant attempts.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor       text NOT NULL,
    action      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);

ALTER TABLE connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE connections FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON connections
    USING (tenant_id = current_setting('switchboard.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('switchboard.tenant_id', true));
CREATE POLICY system_access ON connections
    USING (current_setting('switchboard.system', true) = 'on')
    WITH CHECK (current_setting('switchboard.system', true) = 'on');

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (tenant_id = current_setting('switchboard.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('switchboard.tenant_id', true));
CREATE POLICY system_access ON audit_log
    USING (current_setting('switchboard.system', true) = 'on')
    WITH CHECK (current_setting('switchboard.system', true) = 'on');
