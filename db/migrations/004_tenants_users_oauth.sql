-- db/migrations/004_tenants_users_oauth.sql — plans as a table, the users
-- of a tenant, the OAuth 2.1 authorization server's state (clients,
-- grants, authorization codes, refresh-token families), the tasks table
-- tied to its tenant, and audit (), the one way code writes the audit log.
--
-- Rules every tenant-owned table here follows (tests/50_db_integration.c
-- checks them for every table with a tenant_id column, so a new table
-- that forgets one fails the test):
--   - tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
--     so deleting a tenant deletes every row it owns;
--   - row-level security ENABLEd and FORCEd (it binds the owning role,
--     which is the role the services connect as) with the two policies of
--     001: tenant_isolation (switchboard.tenant_id) and system_access
--     (switchboard.system = 'on', for work that spans tenants on purpose).
-- Rows that point at another tenant-owned row do it with a composite key
-- (tenant_id, …), so a code, a grant or a refresh token can never name a
-- user of another tenant.
--
-- OAuth clients are global, not tenant-owned: a client registers once per
-- server (dynamic client registration, or a Client ID Metadata Document
-- URL) before any user has signed in, so no tenant is known yet — ChatGPT
-- registers once for everyone. What a tenant owns is the consent its user
-- gave a client (oauth_grants) and what followed from it (codes, refresh
-- families and tokens). Revoking a client deletes all of those, of every
-- tenant (ON DELETE CASCADE from oauth_clients).
--
-- Secrets are never stored: codes, refresh tokens and client secrets are
-- kept as SHA-256 digests (bytea, 32 bytes) and looked up by digest.
-- The /token endpoint knows a code or refresh token but not its tenant:
-- that lookup is cross-tenant on purpose and runs with switchboard.system
-- on, by digest only, then the rest of the transaction sets the tenant.
--
-- Passwords are Argon2id encoded strings ($argon2id$v=19$m=…,t=…,p=…$salt$hash)
-- made by sb_password_hash (common/sb_password.c).
--
-- Applied once, in one transaction, by sb_db_migrate; IF NOT EXISTS and
-- DROP … IF EXISTS keep each statement safe to run on a schema that
-- already has part of it.

-- ---------------------------------------------------------------------
-- Plans: a table, so the quota work can attach limits as columns or a
-- table keyed by plan. A plan in use cannot be deleted (the foreign key
-- from tenants restricts); renaming its id follows into tenants.

CREATE TABLE IF NOT EXISTS plans (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (id, name) VALUES
    ('free', 'Free'),
    ('pro', 'Pro'),
    ('enterprise', 'Enterprise'),
    ('custom', 'Custom')        -- 001's CHECK list allowed it: existing rows stay valid
ON CONFLICT (id) DO NOTHING;

ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_plan_check;
ALTER TABLE tenants DROP CONSTRAINT IF EXISTS tenants_plan_fkey;
ALTER TABLE tenants ADD CONSTRAINT tenants_plan_fkey
    FOREIGN KEY (plan) REFERENCES plans (id) ON UPDATE CASCADE ON DELETE RESTRICT;

-- ---------------------------------------------------------------------
-- The tasks of 003 now belong to a known tenant: a tenant's deletion
-- deletes its tasks. Tasks of tenants that `tenants` does not list (the
-- gateway used to serve any tenant a token named) cannot be kept: they
-- live at most a day (ttl_ms) and are deleted here.

SELECT set_config ('switchboard.system', 'on', true);      -- this transaction only
DELETE FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = t.tenant_id);
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_tenant_id_fkey;
ALTER TABLE tasks ADD CONSTRAINT tasks_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
SELECT set_config ('switchboard.system', '', true);

-- ---------------------------------------------------------------------
-- Users of a tenant. An email is unique within its tenant, compared
-- case-insensitively; the same person may be a user of several tenants.

CREATE TABLE IF NOT EXISTS users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email           text NOT NULL CHECK (length (email) BETWEEN 3 AND 254 AND email ~ '^[^@\s]+@[^@\s]+$'),
    password_hash   text NOT NULL CHECK (password_hash LIKE '$argon2id$%' AND length (password_hash) <= 512),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz,                -- set: the user cannot sign in
    UNIQUE (tenant_id, id)                      -- target of the composite keys below
);
CREATE UNIQUE INDEX IF NOT EXISTS users_tenant_email ON users (tenant_id, lower (email));

-- ---------------------------------------------------------------------
-- OAuth clients (global, see the top). client_id is what the client
-- sends: a generated id for a registered client, the HTTPS URL of its
-- metadata document for a CIMD client.

CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id           text PRIMARY KEY CHECK (length (client_id) BETWEEN 1 AND 2048),
    kind                text NOT NULL CHECK (kind IN ('registered', 'metadata_document', 'static')),
    client_name         text CHECK (length (client_name) <= 256),
    redirect_uris       text[] NOT NULL CHECK (cardinality (redirect_uris) BETWEEN 1 AND 16),
    token_endpoint_auth_method text NOT NULL DEFAULT 'none'
                        CHECK (token_endpoint_auth_method IN
                               ('none', 'client_secret_basic', 'client_secret_post')),
    client_secret_hash  bytea CHECK (octet_length (client_secret_hash) = 32),
    scope               text,                   -- registered scopes (space-separated); NULL: the default
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,   -- the registration as received
    created_at          timestamptz NOT NULL DEFAULT now(),
    metadata_fetched_at timestamptz,            -- metadata_document: when the cache was filled
    revoked_at          timestamptz,
    CHECK ((token_endpoint_auth_method = 'none') = (client_secret_hash IS NULL))
);

-- The consent a user of a tenant gave a client, with the scopes granted.
CREATE TABLE IF NOT EXISTS oauth_grants (
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL,
    client_id   text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope       text NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Authorization codes: single use (used_at), short-lived (expires_at),
-- PKCE S256 only (code_challenge is the base64url SHA-256, 43 characters).
CREATE TABLE IF NOT EXISTS oauth_codes (
    code_hash       bytea PRIMARY KEY CHECK (octet_length (code_hash) = 32),
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL,
    client_id       text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    redirect_uri    text NOT NULL CHECK (length (redirect_uri) <= 2048),
    code_challenge  text NOT NULL CHECK (code_challenge ~ '^[A-Za-z0-9_-]{43}$'),
    scope           text NOT NULL,
    resource        text CHECK (length (resource) <= 2048),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    CHECK (expires_at > created_at),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS oauth_codes_expires_at ON oauth_codes (expires_at);

-- A refresh-token family: everything issued from one authorization code.
-- Presenting a token of the family that was already rotated revokes the
-- whole family (revoked_at, revoked_reason 'reuse').
CREATE TABLE IF NOT EXISTS refresh_families (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL,
    client_id       text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope           text NOT NULL,
    resource        text CHECK (length (resource) <= 2048),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text CHECK (revoked_reason IN ('reuse', 'revocation', 'admin', 'user_disabled')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- The tokens of a family, by digest; at most one is current (rotated_at NULL).
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash      bytea PRIMARY KEY CHECK (octet_length (token_hash) = 32),
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    family_id       bigint NOT NULL,
    generation      int NOT NULL CHECK (generation >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    rotated_at      timestamptz,                -- set: exchanged for its successor
    UNIQUE (family_id, generation),
    FOREIGN KEY (tenant_id, family_id) REFERENCES refresh_families (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS refresh_tokens_current
    ON refresh_tokens (family_id) WHERE rotated_at IS NULL;

-- ---------------------------------------------------------------------
-- Row-level security for every tenant-owned table of this migration.

DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['users', 'oauth_grants', 'oauth_codes',
                                   'refresh_families', 'refresh_tokens']
    LOOP
        EXECUTE format ('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', v_table);
        EXECUTE format ('ALTER TABLE %I FORCE ROW LEVEL SECURITY', v_table);
        EXECUTE format ('DROP POLICY IF EXISTS tenant_isolation ON %I', v_table);
        EXECUTE format ('CREATE POLICY tenant_isolation ON %I'
                        ' USING (tenant_id = current_setting (''switchboard.tenant_id'', true))'
                        ' WITH CHECK (tenant_id = current_setting (''switchboard.tenant_id'', true))',
                        v_table);
        EXECUTE format ('DROP POLICY IF EXISTS system_access ON %I', v_table);
        EXECUTE format ('CREATE POLICY system_access ON %I'
                        ' USING (current_setting (''switchboard.system'', true) = ''on'')'
                        ' WITH CHECK (current_setting (''switchboard.system'', true) = ''on'')',
                        v_table);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------
-- The audit log, written by code through audit (): who (actor: a user's
-- subject, 'admin', 'system', a client id) did what (action: a short
-- snake_case verb) to which tenant's data, with a JSON object of detail.
-- No bypass: the row goes in under the caller's row-level security, so
-- the caller must already act for p_tenant (or as system). Refused
-- cross-tenant attempts are logged under the tenant that attempted them.

ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action ~ '^[a-z][a-z0-9_.]{0,63}$');
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_detail_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_detail_check
    CHECK (jsonb_typeof (detail) = 'object');

CREATE OR REPLACE FUNCTION audit (p_tenant text, p_actor text, p_action text, p_detail jsonb)
RETURNS void
LANGUAGE sql AS $$
    INSERT INTO audit_log (tenant_id, actor, action, detail)
    VALUES (p_tenant, left (p_actor, 256), p_action, coalesce (p_detail, '{}'::jsonb))
$$;

-- task_create as in 003, with two changes: a tenant `tenants` does not
-- list gets a clear error (not a bare foreign-key violation), and a task
-- actually created (not a retried job's) is in the audit log as
-- task_created by its subject.
CREATE OR REPLACE FUNCTION task_create (p_tenant text, p_id text, p_subject text, p_connector text,
                                        p_tool text, p_args text, p_inputs jsonb, p_caps bigint,
                                        p_round int, p_ttl_ms int, p_poll_interval_ms int,
                                        p_run_ms int)
RETURNS SETOF task_view
LANGUAGE plpgsql AS $$
DECLARE
    v_created int;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = p_tenant) THEN
        RAISE EXCEPTION 'task_create: tenant "%" is unknown', p_tenant
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    INSERT INTO tasks (tenant_id, id, subject, connector, tool, args, inputs, caps, round,
                       ttl_ms, poll_interval_ms, run_ms, run_deadline, expires_at)
    VALUES (p_tenant, p_id, p_subject, p_connector, p_tool, p_args, p_inputs, p_caps, p_round,
            p_ttl_ms, p_poll_interval_ms, p_run_ms,
            now () + p_run_ms * interval '1 millisecond',
            now () + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT (tenant_id, id) DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    IF v_created = 1 THEN
        PERFORM audit (p_tenant, p_subject, 'task_created',
                       jsonb_build_object ('task', p_id, 'connector', p_connector,
                                           'tool', p_tool));
    END IF;
    RETURN QUERY
        SELECT v.* FROM tasks t, LATERAL task_view_of (t) v
        WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
          AND t.expires_at > now ();
END
$$;
