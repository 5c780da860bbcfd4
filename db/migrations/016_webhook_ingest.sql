-- db/migrations/016_webhook_ingest.sql — the webhook role's inbound
-- steps (workers/sb_wh_ingest.c, sb_webhook_role.c; proto/PROTOCOL.md
-- "Webhooks"): an endpoint as the role caches it, the group commit of
-- verified events, and a tenant's event log read. Depends on 003
-- (task_time), 015. Each function is one statement of the role's
-- asynchronous connection, so nothing holds a transaction across the
-- role's loop turns; each sets the row-level security it needs for its
-- own transaction only.

-- An endpoint as the role verifies with it: its tenant, connector, scheme
-- and options, and its secrets as sealed (hex, opened by the worker with
-- sb_wh_keys), the previous one only while its overlap lasts. No row:
-- unknown.
CREATE OR REPLACE FUNCTION webhook_endpoint_get (p_id text)
RETURNS TABLE (tenant_id text, connector text, scheme text, options text, key_id text,
               secret_hex text, previous_hex text, enabled boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY
        SELECT e.tenant_id, e.connector, e.scheme, e.options::text, e.key_id,
               encode (e.secret_enc, 'hex'),
               CASE WHEN e.previous_until > now () THEN encode (e.previous_enc, 'hex') END,
               e.enabled
        FROM webhook_endpoints e WHERE e.id = p_id;
END
$$;

-- Whether a subscription with event types p_types wants an event of type
-- p_type: no types, one equal, or one ending in '*' that is its prefix.
CREATE OR REPLACE FUNCTION webhook_type_matches (p_types text[], p_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT cardinality (p_types) = 0
        OR EXISTS (SELECT 1 FROM unnest (p_types) t
                   WHERE t = p_type
                      OR (right (t, 1) = '*' AND starts_with (p_type, left (t, -1))))
$$;

-- The group commit: the events of many requests in one statement. Arrays
-- of one element per event (its endpoint, key, type and the index, from
-- 1, of its request's body in p_bodies, hex: a request's events share
-- its body). The tenant and connector are the endpoint's. A key already
-- stored for the endpoint, or repeated in the batch, is stored once;
-- each new event gets a pending delivery for every enabled subscription
-- of its tenant that wants it (connector NULL or equal, event_types as
-- webhook_type_matches). Returns one row per event, by its ordinal (from
-- 1): 'new' (stored now, with its id), 'duplicate' (already there), or
-- 'gone' (its endpoint was deleted since the worker read it: not stored).
CREATE OR REPLACE FUNCTION webhook_ingest (p_endpoints text[], p_keys text[], p_types text[],
                                           p_body_index integer[], p_bodies text[])
RETURNS TABLE (ord integer, state text, event_id bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    IF cardinality (p_endpoints) <> cardinality (p_keys)
    OR cardinality (p_endpoints) <> cardinality (p_types)
    OR cardinality (p_endpoints) <> cardinality (p_body_index) THEN
        RAISE EXCEPTION 'webhook_ingest: arrays of different lengths';
    END IF;
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY
    WITH input AS (
        SELECT u.endpoint_id, u.event_key, u.type, u.body_index, u.ord::integer AS ord
        FROM unnest (p_endpoints, p_keys, p_types, p_body_index)
             WITH ORDINALITY AS u (endpoint_id, event_key, type, body_index, ord)
    ), known AS (
        SELECT i.*, e.tenant_id, e.connector
        FROM input i JOIN webhook_endpoints e ON e.id = i.endpoint_id
    ), first AS (
        -- a key repeated in the batch: its first occurrence is the one stored
        SELECT DISTINCT ON (k.endpoint_id, k.event_key) k.*
        FROM known k ORDER BY k.endpoint_id, k.event_key, k.ord
    ), stored AS (
        -- in key order, so concurrent batches wait on each other's keys in
        -- one order (no deadlock)
        INSERT INTO webhook_events (tenant_id, endpoint_id, connector, event_key, type, body)
        SELECT f.tenant_id, f.endpoint_id, f.connector, f.event_key, f.type,
               decode (p_bodies [f.body_index], 'hex')
        FROM first f ORDER BY f.endpoint_id, f.event_key
        ON CONFLICT (endpoint_id, event_key) DO NOTHING
        RETURNING id, tenant_id, endpoint_id, connector, event_key, type
    ), deliveries AS (
        INSERT INTO webhook_deliveries (tenant_id, subscription_id, event_id)
        SELECT s.tenant_id, s.id, n.id
        FROM stored n JOIN webhook_subscriptions s
             ON s.tenant_id = n.tenant_id AND s.enabled
            AND (s.connector IS NULL OR s.connector = n.connector)
            AND webhook_type_matches (s.event_types, n.type)
        ON CONFLICT (subscription_id, event_id) DO NOTHING
    )
    SELECT i.ord,
           CASE WHEN k.ord IS NULL THEN 'gone'
                WHEN n.id IS NOT NULL AND f.ord = i.ord THEN 'new'
                ELSE 'duplicate' END,
           CASE WHEN f.ord = i.ord THEN n.id END
    FROM input i
    LEFT JOIN known k ON k.ord = i.ord
    LEFT JOIN first f ON f.endpoint_id = i.endpoint_id AND f.event_key = i.event_key
    LEFT JOIN stored n ON n.endpoint_id = i.endpoint_id AND n.event_key = i.event_key
    ORDER BY i.ord;
END
$$;

-- p_tenant's events of p_connector, newest first: at most p_limit (1..100),
-- and only while their bodies come to p_max_bytes in all (the older ones
-- past that are left out). The body as unpadded base64url (the worker
-- shows it as text when it is UTF-8), the time as task_time.
CREATE OR REPLACE FUNCTION webhook_events_read (p_tenant text, p_connector text,
                                                p_limit integer, p_max_bytes bigint)
RETURNS TABLE (event_key text, type text, endpoint_id text, received_at text, body text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    RETURN QUERY
    SELECT r.event_key, r.type, r.endpoint_id, task_time (r.received_at),
           rtrim (translate (encode (r.body, 'base64'), E'+/\n', '-_'), '=')
    FROM (
        SELECT e.*, sum (octet_length (e.body)) OVER (ORDER BY e.id DESC) AS running
        FROM (SELECT * FROM webhook_events w
              WHERE w.tenant_id = p_tenant AND w.connector = p_connector
              ORDER BY w.id DESC LIMIT least (greatest (p_limit, 1), 100)) e
    ) r
    WHERE r.running <= p_max_bytes
    ORDER BY r.id DESC;
END
$$;
