-- db/migrations/015_webhooks.sql — webhooks in and out (issue 23;
-- proto/PROTOCOL.md "Webhooks", docs/WEBHOOKS.md): the tenants' inbound
-- endpoints and their verification secrets, the event log, the tenants'
-- outbound subscriptions, and the deliveries to them with every attempt.
-- The functions come in later migrations, one file per worker module:
-- 016 the inbound group commit and the event log (webhook role),
-- 017 the outbound scheduler (webhook role), 018 the admin API's (token
-- role). Every table is a tenant's, under the same row-level security as
-- the others (001): its tenant, or switchboard.system = 'on'.
--
-- Sealing. A secret (an endpoint's signing secret, a subscription's
-- whsec_ key) is sealed exactly as a connection's (010): AES-256-GCM under
-- the data key named by the row's key_id (connection_keys), the
-- associated data "<tenant>/webhook:<endpoint id>/secret" (or
-- "/previous") for an endpoint and "<tenant>/subscription:<id>/secret"
-- for a subscription. A data-key rotation re-seals these rows too.

-- An inbound endpoint: /webhooks/{id} for one tenant's connector. The ID
-- is random (the URL is not a secret, the signature is the proof).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{8,64}$'),
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    connector       text NOT NULL CHECK (connector ~ '^[A-Za-z0-9-]{1,64}$'),
    scheme          text NOT NULL CHECK (scheme IN ('stripe', 'github', 'shopify', 'slack',
                                                    'standard', 'salesforce', 'hmac')),
    -- the scheme's settings: tolerance_s (stripe, slack, standard);
    -- organization_id (salesforce); header, algorithm (sha1, sha256,
    -- sha512), encoding (hex, base64), prefix, id_header (hmac)
    options         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof (options) = 'object'),
    key_id          text NOT NULL,          -- the data key both secrets are sealed under
    secret_enc      bytea NOT NULL,
    -- after a rotation the replaced secret verifies too, until previous_until
    previous_enc    bytea,
    previous_until  timestamptz,
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now (),
    rotated_at      timestamptz,
    CHECK ((previous_enc IS NULL) = (previous_until IS NULL))
);
CREATE INDEX IF NOT EXISTS webhook_endpoints_tenant ON webhook_endpoints (tenant_id);
CREATE INDEX IF NOT EXISTS webhook_endpoints_key_id ON webhook_endpoints (key_id);

-- The tenant's event log: one row per event, stored once per
-- (endpoint, event_key) whatever the provider resends.
CREATE TABLE IF NOT EXISTS webhook_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    connector       text NOT NULL,
    event_key       text NOT NULL CHECK (length (event_key) BETWEEN 1 AND 256),
    type            text NOT NULL DEFAULT '' CHECK (length (type) <= 256),
    received_at     timestamptz NOT NULL DEFAULT now (),
    body            bytea NOT NULL,
    UNIQUE (endpoint_id, event_key)
);
CREATE INDEX IF NOT EXISTS webhook_events_log ON webhook_events (tenant_id, connector, id);

-- A tenant's own endpoint that wants its events (outbound), signed per
-- Standard Webhooks with its whsec_ secret.
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id              text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{8,64}$'),
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (url ~ '^https?://' AND length (url) <= 2048),
    -- event types wanted: exact types, or a prefix ending in '*';
    -- empty: every event of the tenant
    event_types     text[] NOT NULL DEFAULT '{}',
    connector       text,                   -- NULL: events of every connector
    key_id          text NOT NULL,
    secret_enc      bytea NOT NULL,
    rate_per_s      integer NOT NULL DEFAULT 10 CHECK (rate_per_s BETWEEN 1 AND 10000),
    max_in_flight   integer NOT NULL DEFAULT 4 CHECK (max_in_flight BETWEEN 1 AND 256),
    enabled         boolean NOT NULL DEFAULT true,
    failing_since   timestamptz,            -- first failure of the current run of failures
    disabled_at     timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now ()
);
CREATE INDEX IF NOT EXISTS webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id);
CREATE INDEX IF NOT EXISTS webhook_subscriptions_key_id ON webhook_subscriptions (key_id);

-- One event for one subscription. pending: to be sent at next_at (a
-- worker holds it while lease_until is ahead); delivered; dead (out of
-- attempts, or its subscription disabled): listed and replayed by sb-admin.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id text NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id        bigint NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now (),
    lease_owner     text,
    lease_until     timestamptz,
    last_status     integer,                -- the last attempt's HTTP status, 0: no response
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now (),
    finished_at     timestamptz,            -- delivered or dead
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due
    ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_dead
    ON webhook_deliveries (tenant_id, finished_at) WHERE state = 'dead';

-- Every attempt of a delivery, kept for the tenant to read.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    delivery_id     bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL DEFAULT now (),
    status          integer NOT NULL,       -- HTTP status; 0: no response (refused, reset, timeout)
    latency_ms      integer NOT NULL,
    error           text,                   -- why, when status is 0 or the guard refused
    excerpt         text CHECK (length (excerpt) <= 1024)   -- the response body's first bytes
);
CREATE INDEX IF NOT EXISTS webhook_attempts_delivery ON webhook_attempts (delivery_id, at);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY ['webhook_endpoints', 'webhook_events', 'webhook_subscriptions',
                              'webhook_deliveries', 'webhook_attempts'] LOOP
        EXECUTE format ('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format ('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format ('DROP POLICY IF EXISTS tenant_isolation ON %I', t);
        EXECUTE format ('CREATE POLICY tenant_isolation ON %I'
                        '    USING (tenant_id = current_setting (''switchboard.tenant_id'', true))'
                        '    WITH CHECK (tenant_id = current_setting (''switchboard.tenant_id'', true))', t);
        EXECUTE format ('DROP POLICY IF EXISTS system_access ON %I', t);
        EXECUTE format ('CREATE POLICY system_access ON %I'
                        '    USING (current_setting (''switchboard.system'', true) = ''on'')'
                        '    WITH CHECK (current_setting (''switchboard.system'', true) = ''on'')', t);
    END LOOP;
END
$$;
