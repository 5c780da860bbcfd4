-- db/migrations/010_connections.sql — each tenant's SaaS connections
-- (issue 21; proto/PROTOCOL.md "Connections", docs/CONNECTIONS.md): the
-- columns a connection's credentials, refresh lease and provider extras
-- need, the data keys that seal them, and the connect flows in progress.
-- The functions that read and change them come in later migrations
-- (011 refresh and credentials, 012 connect flows), one per step, each
-- locking what it needs (the token worker's connection is shared: no
-- transaction stays open across loop turns).
--
-- Sealing. Every secret column is AES-256-GCM (common/sb_crypto.h,
-- sb_aead_seal: nonce 12 || ciphertext || tag 16) under a data key named
-- by the row's key_id; the associated data is
-- "<tenant>/<connector>/<column>", so a ciphertext cannot be moved to
-- another tenant, connector or column. Data keys are random, kept in
-- connection_keys sealed under a key derived from the token workers'
-- master secret (--secret-key-file or SB_SECRET_KEY; never in the
-- database), with the key's id as associated data. Rotation makes a new
-- data key current and re-seals rows in batches; rows under the old key
-- stay readable until none is left, then the old key is retired.

CREATE TABLE IF NOT EXISTS connection_keys (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,32}$'),
    sealed_key      bytea NOT NULL CHECK (octet_length (sealed_key) = 12 + 32 + 16),
    created_at      timestamptz NOT NULL DEFAULT now (),
    current         boolean NOT NULL DEFAULT false,   -- new secrets are sealed under it
    retired_at      timestamptz,        -- no row uses it any more; kept for the record
    CHECK (retired_at IS NULL OR retired_at >= created_at),
    CHECK (NOT (current AND retired_at IS NOT NULL))
);
-- At most one current key.
CREATE UNIQUE INDEX IF NOT EXISTS connection_keys_current
    ON connection_keys ((current)) WHERE current;

ALTER TABLE connections
    ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'oauth2'
        CHECK (kind IN ('oauth2', 'api_key')),
    -- non-secret extras the connector keeps from the token response
    -- (auth.oauth2.keep: Salesforce's instance_url…)
    ADD COLUMN IF NOT EXISTS vars jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- counts the credentials: +1 on each refresh or reconnect, so a
    -- worker told "stale" about version n refreshes only if it is still n
    ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 1,
    -- the refresh lease: a token worker that refreshes holds it; another
    -- waits for the new credentials or for the lease to end
    ADD COLUMN IF NOT EXISTS lease_owner text,
    ADD COLUMN IF NOT EXISTS lease_until timestamptz,
    -- transient refresh failures in a row, and when to try again
    ADD COLUMN IF NOT EXISTS refresh_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS retry_at timestamptz,
    ADD COLUMN IF NOT EXISTS refreshed_at timestamptz,
    ADD COLUMN IF NOT EXISTS connected_by text;     -- the subject that connected it

-- The proactive refresh sweep: connected OAuth connections by expiry.
CREATE INDEX IF NOT EXISTS connections_expiring
    ON connections (expires_at)
    WHERE status = 'connected' AND refresh_token_enc IS NOT NULL;
CREATE INDEX IF NOT EXISTS connections_key_id ON connections (key_id);

-- A connect flow between /connect/{connector} and its callback: the
-- state's SHA-256 (the state itself only travels to the provider and
-- back), who started it, the PKCE verifier sealed (associated data
-- "<tenant>/<connector>/verifier"), the browser's cookie binding as its
-- SHA-256. Single use: the callback deletes the row it uses.
CREATE TABLE IF NOT EXISTS connect_flows (
    state_hash      bytea PRIMARY KEY CHECK (octet_length (state_hash) = 32),
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subject         text NOT NULL,
    connector       text NOT NULL,
    verifier_enc    bytea NOT NULL,
    key_id          text NOT NULL,
    cookie_hash     bytea NOT NULL CHECK (octet_length (cookie_hash) = 32),
    redirect_uri    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now (),
    expires_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS connect_flows_expires ON connect_flows (expires_at);

ALTER TABLE connect_flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE connect_flows FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON connect_flows;
CREATE POLICY tenant_isolation ON connect_flows
    USING (tenant_id = current_setting('switchboard.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('switchboard.tenant_id', true));
DROP POLICY IF EXISTS system_access ON connect_flows;
CREATE POLICY system_access ON connect_flows
    USING (current_setting('switchboard.system', true) = 'on')
    WITH CHECK (current_setting('switchboard.system', true) = 'on');
