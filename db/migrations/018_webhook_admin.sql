-- db/migrations/018_webhook_admin.sql — the admin API's webhook steps
-- (workers/sb_wh_admin.c; docs/ADMIN.md "Webhooks"): inbound endpoints
-- (create, list, show, rotate, disable/enable, delete), outbound
-- subscriptions (subscribe, list, unsubscribe, enable), dead letters
-- (list, replay one or all of a tenant's), the event log and a delivery's
-- attempts; and the data-key reseal of 011 extended to the webhook rows
-- (key_reseal_batch, webhook_reseal, connection_keys_settle replaced).
-- Depends on 001, 004, 007, 011, 015.
--
-- Every function answers as 007's ({"status", "body"}) and sets
-- switchboard.system for its own transaction only. Secrets arrive sealed
-- by the worker (015 "Sealing") and never leave: no answer holds a
-- secret_enc or previous_enc. Each change that the tenant's audit log can
-- keep is recorded there by actor 'admin'.

-- ---------------------------------------------------------------------
-- Endpoints

-- An endpoint as the admin API shows it: never a secret (caller sets system).
CREATE OR REPLACE FUNCTION admin_webhook_json (p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', e.id, 'tenant', e.tenant_id, 'connector', e.connector,
                               'scheme', e.scheme, 'options', e.options,
                               'path', '/webhooks/' || e.id, 'key_id', e.key_id,
                               'enabled', e.enabled,
                               'previous_until', task_time (e.previous_until),
                               'created_at', task_time (e.created_at),
                               'rotated_at', task_time (e.rotated_at))
    FROM webhook_endpoints e WHERE e.id = p_id
$$;

CREATE OR REPLACE FUNCTION admin_no_webhook (p_id text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_refusal (404, 'not_found', format ('there is no webhook endpoint "%s"', p_id))
$$;

-- Stores a new endpoint for p_tenant's p_connector; p_secret sealed by
-- the worker under p_key_id. 404 for an unknown tenant, 409 for an id in
-- use (random: a retry of the same request). Audits
-- webhook_endpoint_created {endpoint, connector, scheme}.
CREATE OR REPLACE FUNCTION admin_webhook_create (p_tenant text, p_id text, p_connector text,
                                                 p_scheme text, p_options jsonb, p_key_id text,
                                                 p_secret bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    PERFORM 1 FROM tenants WHERE id = p_tenant FOR SHARE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    INSERT INTO webhook_endpoints (id, tenant_id, connector, scheme, options, key_id, secret_enc)
    VALUES (p_id, p_tenant, p_connector, p_scheme, p_options, p_key_id, p_secret)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN admin_refusal (409, 'conflict', format ('webhook endpoint "%s" exists', p_id));
    END IF;
    PERFORM audit (p_tenant, 'admin', 'webhook_endpoint_created',
                   jsonb_build_object ('endpoint', p_id, 'connector', p_connector,
                                       'scheme', p_scheme));
    RETURN admin_answer (201, jsonb_build_object ('tenant', p_tenant,
                                                  'endpoint', admin_webhook_json (p_id)));
END
$$;

-- p_tenant's endpoints, at most p_limit in id order; "more" when others follow.
CREATE OR REPLACE FUNCTION admin_webhooks_list (p_tenant text, p_limit int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT coalesce (jsonb_agg (admin_webhook_json (e.id) ORDER BY e.id), '[]'::jsonb), count(*)
    INTO v_list, v_count
    FROM (SELECT x.id FROM webhook_endpoints x WHERE x.tenant_id = p_tenant
          ORDER BY x.id LIMIT p_limit + 1) e;
    IF v_count > p_limit THEN
        v_list := v_list - p_limit;
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'endpoints', v_list,
                                                  'more', v_count > p_limit));
END
$$;

-- One endpoint, with the count of its events.
CREATE OR REPLACE FUNCTION admin_webhook_get (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = p_id) THEN
        RETURN admin_no_webhook (p_id);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('endpoint', admin_webhook_json (p_id) ||
        jsonb_build_object ('events', (SELECT count(*) FROM webhook_events v
                                       WHERE v.endpoint_id = p_id))));
END
$$;

-- What a rotation re-seals: the endpoint's tenant, scheme, key and
-- current secret (sealed), and an md5 of it that admin_webhook_rotate
-- compares. No row: no such endpoint.
CREATE OR REPLACE FUNCTION admin_webhook_sealed (p_id text)
RETURNS TABLE (tenant_id text, scheme text, key_id text, secret_enc bytea, version text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY SELECT e.tenant_id, e.scheme, e.key_id, e.secret_enc, md5 (e.secret_enc)
                 FROM webhook_endpoints e WHERE e.id = p_id;
END
$$;

-- Rotates endpoint p_id's secret: p_secret the new one, p_previous the
-- replaced one (both sealed under p_key_id by the worker; p_previous NULL
-- when p_overlap_s is 0: the old secret stops at once), which verifies
-- too until now + p_overlap_s. Wins only while the row's secret is the
-- one read (p_version, its md5): 409 when another rotation came first.
-- Audits webhook_endpoint_rotated {endpoint, overlap_s, previous_until}.
CREATE OR REPLACE FUNCTION admin_webhook_rotate (p_id text, p_version text, p_key_id text,
                                                 p_secret bytea, p_previous bytea,
                                                 p_overlap_s int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_until timestamptz;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = p_id) THEN
        RETURN admin_no_webhook (p_id);
    END IF;
    v_until := CASE WHEN p_previous IS NULL THEN NULL
                    ELSE now () + make_interval (secs => p_overlap_s) END;
    UPDATE webhook_endpoints SET key_id = p_key_id, secret_enc = p_secret,
                                 previous_enc = p_previous, previous_until = v_until,
                                 rotated_at = now ()
    WHERE id = p_id AND md5 (secret_enc) = p_version
    RETURNING tenant_id INTO v_tenant;
    IF NOT FOUND THEN
        RETURN admin_refusal (409, 'conflict', format ('webhook endpoint "%s" was rotated or '
                              're-sealed meanwhile: try again', p_id));
    END IF;
    PERFORM audit (v_tenant, 'admin', 'webhook_endpoint_rotated',
                   jsonb_build_object ('endpoint', p_id, 'overlap_s', p_overlap_s,
                                       'previous_until', task_time (v_until)));
    RETURN admin_answer (200, jsonb_build_object ('tenant', v_tenant,
                                                  'endpoint', admin_webhook_json (p_id)));
END
$$;

-- Enables or disables endpoint p_id (the webhook role refuses what a
-- disabled one is sent). Audits webhook_endpoint_enabled / _disabled.
CREATE OR REPLACE FUNCTION admin_webhook_enable (p_id text, p_enabled boolean)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    UPDATE webhook_endpoints SET enabled = p_enabled WHERE id = p_id
    RETURNING tenant_id INTO v_tenant;
    IF NOT FOUND THEN
        RETURN admin_no_webhook (p_id);
    END IF;
    PERFORM audit (v_tenant, 'admin',
                   CASE WHEN p_enabled THEN 'webhook_endpoint_enabled'
                        ELSE 'webhook_endpoint_disabled' END,
                   jsonb_build_object ('endpoint', p_id));
    RETURN admin_answer (200, jsonb_build_object ('tenant', v_tenant,
                                                  'endpoint', admin_webhook_json (p_id)));
END
$$;

-- Deletes endpoint p_id, its events (and their deliveries) with it.
-- Audits webhook_endpoint_deleted {endpoint, connector, events}.
CREATE OR REPLACE FUNCTION admin_webhook_delete (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_connector text;
    v_events bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT count(*) INTO v_events FROM webhook_events WHERE endpoint_id = p_id;
    DELETE FROM webhook_endpoints WHERE id = p_id RETURNING tenant_id, connector
    INTO v_tenant, v_connector;
    IF NOT FOUND THEN
        RETURN admin_no_webhook (p_id);
    END IF;
    PERFORM audit (v_tenant, 'admin', 'webhook_endpoint_deleted',
                   jsonb_build_object ('endpoint', p_id, 'connector', v_connector,
                                       'events', v_events));
    RETURN admin_answer (200, jsonb_build_object ('tenant', v_tenant, 'endpoint', p_id,
                                                  'deleted', true, 'events', v_events));
END
$$;

-- ---------------------------------------------------------------------
-- Subscriptions

CREATE OR REPLACE FUNCTION admin_subscription_json (p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', s.id, 'tenant', s.tenant_id, 'url', s.url,
                               'types', to_jsonb (s.event_types), 'connector', s.connector,
                               'rate_per_s', s.rate_per_s, 'max_in_flight', s.max_in_flight,
                               'key_id', s.key_id, 'enabled', s.enabled,
                               'failing_since', task_time (s.failing_since),
                               'disabled_at', task_time (s.disabled_at),
                               'disabled_reason', s.disabled_reason,
                               'created_at', task_time (s.created_at),
                               'pending', (SELECT count(*) FROM webhook_deliveries d
                                           WHERE d.subscription_id = s.id
                                             AND d.state = 'pending'),
                               'dead', (SELECT count(*) FROM webhook_deliveries d
                                        WHERE d.subscription_id = s.id AND d.state = 'dead'))
    FROM webhook_subscriptions s WHERE s.id = p_id
$$;

CREATE OR REPLACE FUNCTION admin_no_subscription (p_id text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_refusal (404, 'not_found', format ('there is no subscription "%s"', p_id))
$$;

-- Subscribes p_url for p_tenant's events of p_types (empty: all) from
-- p_connector (NULL: every connector); p_secret (its whsec_ key) sealed
-- by the worker under p_key_id. Audits webhook_subscribed {subscription,
-- url, types, connector}.
CREATE OR REPLACE FUNCTION admin_subscription_create (p_tenant text, p_id text, p_url text,
                                                      p_types text[], p_connector text,
                                                      p_rate int, p_in_flight int,
                                                      p_key_id text, p_secret bytea)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    PERFORM 1 FROM tenants WHERE id = p_tenant FOR SHARE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    INSERT INTO webhook_subscriptions (id, tenant_id, url, event_types, connector, rate_per_s,
                                       max_in_flight, key_id, secret_enc)
    VALUES (p_id, p_tenant, p_url, coalesce (p_types, '{}'), p_connector, p_rate, p_in_flight,
            p_key_id, p_secret)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN admin_refusal (409, 'conflict', format ('subscription "%s" exists', p_id));
    END IF;
    PERFORM audit (p_tenant, 'admin', 'webhook_subscribed',
                   jsonb_build_object ('subscription', p_id, 'url', p_url,
                                       'types', to_jsonb (coalesce (p_types, '{}')),
                                       'connector', p_connector));
    RETURN admin_answer (201, jsonb_build_object ('tenant', p_tenant,
                                                  'subscription', admin_subscription_json (p_id)));
END
$$;

CREATE OR REPLACE FUNCTION admin_subscriptions_list (p_tenant text, p_limit int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT coalesce (jsonb_agg (admin_subscription_json (s.id) ORDER BY s.id), '[]'::jsonb),
           count(*)
    INTO v_list, v_count
    FROM (SELECT x.id FROM webhook_subscriptions x WHERE x.tenant_id = p_tenant
          ORDER BY x.id LIMIT p_limit + 1) s;
    IF v_count > p_limit THEN
        v_list := v_list - p_limit;
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'subscriptions', v_list,
                                                  'more', v_count > p_limit));
END
$$;

-- Unsubscribes: the subscription and its deliveries go. Audits
-- webhook_unsubscribed {subscription, url}.
CREATE OR REPLACE FUNCTION admin_subscription_delete (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_url text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    DELETE FROM webhook_subscriptions WHERE id = p_id RETURNING tenant_id, url
    INTO v_tenant, v_url;
    IF NOT FOUND THEN
        RETURN admin_no_subscription (p_id);
    END IF;
    PERFORM audit (v_tenant, 'admin', 'webhook_unsubscribed',
                   jsonb_build_object ('subscription', p_id, 'url', v_url));
    RETURN admin_answer (200, jsonb_build_object ('tenant', v_tenant, 'subscription', p_id,
                                                  'deleted', true));
END
$$;

-- Enables subscription p_id again (after the deliverer disabled it): its
-- failure run and disabled fields cleared. Its dead deliveries stay dead
-- (replay them). Audits webhook_subscription_enabled {subscription}.
CREATE OR REPLACE FUNCTION admin_subscription_enable (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    UPDATE webhook_subscriptions SET enabled = true, failing_since = NULL, disabled_at = NULL,
                                     disabled_reason = NULL
    WHERE id = p_id RETURNING tenant_id INTO v_tenant;
    IF NOT FOUND THEN
        RETURN admin_no_subscription (p_id);
    END IF;
    PERFORM audit (v_tenant, 'admin', 'webhook_subscription_enabled',
                   jsonb_build_object ('subscription', p_id));
    RETURN admin_answer (200, jsonb_build_object ('tenant', v_tenant,
                                                  'subscription', admin_subscription_json (p_id)));
END
$$;

-- ---------------------------------------------------------------------
-- Deliveries, dead letters, events

CREATE OR REPLACE FUNCTION admin_delivery_json (p_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', d.id, 'tenant', d.tenant_id,
                               'subscription', d.subscription_id, 'event', d.event_id,
                               'type', v.type, 'connector', v.connector, 'state', d.state,
                               'attempts', d.attempts, 'next_at', task_time (d.next_at),
                               'last_status', d.last_status, 'last_error', d.last_error,
                               'created_at', task_time (d.created_at),
                               'finished_at', task_time (d.finished_at))
    FROM webhook_deliveries d JOIN webhook_events v ON v.id = d.event_id
    WHERE d.id = p_id
$$;

CREATE OR REPLACE FUNCTION admin_no_delivery (p_id bigint)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_refusal (404, 'not_found', format ('there is no delivery %s', p_id))
$$;

-- p_tenant's dead deliveries, newest first: at most p_limit with id
-- below p_before (NULL: from the newest); next_before the next page's.
CREATE OR REPLACE FUNCTION admin_dead_list (p_tenant text, p_limit int, p_before bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
    v_last bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT coalesce (jsonb_agg (admin_delivery_json (d.id) ORDER BY d.id DESC), '[]'::jsonb),
           count(*), min (d.id)
    INTO v_list, v_count, v_last
    FROM (SELECT x.id FROM webhook_deliveries x
          WHERE x.tenant_id = p_tenant AND x.state = 'dead'
            AND (p_before IS NULL OR x.id < p_before)
          ORDER BY x.id DESC LIMIT p_limit) d;
    RETURN admin_answer (200, jsonb_build_object (
        'tenant', p_tenant, 'deliveries', v_list,
        'next_before', CASE WHEN v_count = p_limit THEN v_last END));
END
$$;

-- Replays dead delivery p_id: pending again at once, its attempts kept
-- (the deliverer counts on from them). 409 when it is not dead, or its
-- subscription is disabled (enable it first). Audits webhook_replayed
-- {delivery, subscription}.
CREATE OR REPLACE FUNCTION admin_delivery_replay (p_id bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_state text;
    v_subscription text;
    v_enabled boolean;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT d.tenant_id, d.state, d.subscription_id, s.enabled
    INTO v_tenant, v_state, v_subscription, v_enabled
    FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.id = p_id FOR UPDATE OF d;
    IF NOT FOUND THEN
        RETURN admin_no_delivery (p_id);
    END IF;
    IF v_state <> 'dead' THEN
        RETURN admin_refusal (409, 'conflict', format ('delivery %s is %s, not dead', p_id,
                                                       v_state));
    END IF;
    IF NOT v_enabled THEN
        RETURN admin_refusal (409, 'conflict', format ('subscription "%s" is disabled: enable '
                              'it first (sb-admin webhooks subscription enable)', v_subscription));
    END IF;
    UPDATE webhook_deliveries SET state = 'pending', next_at = now (), finished_at = NULL,
                                  lease_owner = NULL, lease_until = NULL
    WHERE id = p_id;
    PERFORM audit (v_tenant, 'admin', 'webhook_replayed',
                   jsonb_build_object ('delivery', p_id, 'subscription', v_subscription));
    RETURN admin_answer (200, jsonb_build_object ('tenant', v_tenant,
                                                  'delivery', admin_delivery_json (p_id)));
END
$$;

-- Replays every dead delivery of p_tenant whose subscription is enabled,
-- at most p_limit (the oldest first); "remaining" counts the dead left.
-- Audits webhook_replayed {all, count}.
CREATE OR REPLACE FUNCTION admin_dead_replay_all (p_tenant text, p_limit int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_left bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    WITH picked AS (
        SELECT d.id FROM webhook_deliveries d
        JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
        WHERE d.tenant_id = p_tenant AND d.state = 'dead'
        ORDER BY d.id LIMIT p_limit FOR UPDATE OF d SKIP LOCKED),
    moved AS (
        UPDATE webhook_deliveries d SET state = 'pending', next_at = now (), finished_at = NULL,
                                        lease_owner = NULL, lease_until = NULL
        FROM picked WHERE d.id = picked.id RETURNING d.id)
    SELECT count(*) INTO v_count FROM moved;
    SELECT count(*) INTO v_left FROM webhook_deliveries
    WHERE tenant_id = p_tenant AND state = 'dead';
    IF v_count > 0 THEN
        PERFORM audit (p_tenant, 'admin', 'webhook_replayed',
                       jsonb_build_object ('all', true, 'count', v_count));
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'replayed', v_count,
                                                  'remaining', v_left));
END
$$;

-- Delivery p_id with every attempt, oldest first (at most p_limit).
CREATE OR REPLACE FUNCTION admin_delivery_attempts (p_id bigint, p_limit int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = p_id) THEN
        RETURN admin_no_delivery (p_id);
    END IF;
    RETURN admin_answer (200, jsonb_build_object (
        'delivery', admin_delivery_json (p_id),
        'attempts', (SELECT coalesce (jsonb_agg (jsonb_build_object (
                         'id', a.id, 'at', task_time (a.at), 'status', a.status,
                         'latency_ms', a.latency_ms, 'error', a.error, 'excerpt', a.excerpt)
                         ORDER BY a.at, a.id), '[]'::jsonb)
                     FROM (SELECT * FROM webhook_attempts x WHERE x.delivery_id = p_id
                           ORDER BY x.at, x.id LIMIT p_limit) a)));
END
$$;

-- p_tenant's event log, newest first: of p_connector (NULL: all), at
-- most p_limit with id below p_before (NULL: from the newest). The body
-- is not sent, its size is.
CREATE OR REPLACE FUNCTION admin_events_list (p_tenant text, p_connector text, p_limit int,
                                              p_before bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
    v_last bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT coalesce (jsonb_agg (jsonb_build_object (
               'id', v.id, 'endpoint', v.endpoint_id, 'connector', v.connector,
               'key', v.event_key, 'type', v.type, 'received_at', task_time (v.received_at),
               'bytes', octet_length (v.body)) ORDER BY v.id DESC), '[]'::jsonb),
           count(*), min (v.id)
    INTO v_list, v_count, v_last
    FROM (SELECT * FROM webhook_events x
          WHERE x.tenant_id = p_tenant AND (p_connector IS NULL OR x.connector = p_connector)
            AND (p_before IS NULL OR x.id < p_before)
          ORDER BY x.id DESC LIMIT p_limit) v;
    RETURN admin_answer (200, jsonb_build_object (
        'tenant', p_tenant, 'connector', p_connector, 'events', v_list,
        'next_before', CASE WHEN v_count = p_limit THEN v_last END));
END
$$;

-- ---------------------------------------------------------------------
-- The data-key reseal, webhook rows included (011's, extended)

-- Rows under a key that is not current, at most p_limit: connections
-- first (in id order), then endpoints, then subscriptions. kind
-- 'connection' (owner: the connector; version: the row's; a, b: access,
-- refresh), 'webhook' (owner "webhook:<id>"; version: md5 of secret_enc;
-- a, b: secret, previous) or 'subscription' (owner "subscription:<id>";
-- a: secret). Secrets stay sealed.
CREATE OR REPLACE FUNCTION key_reseal_batch (p_limit int)
RETURNS TABLE (kind text, id text, tenant_id text, owner text, key_id text, version text,
               a bytea, b bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_current text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    v_current := connection_key_current ();
    RETURN QUERY
    SELECT r.kind, r.id, r.tenant_id, r.owner, r.key_id, r.version, r.a, r.b
    FROM (
        (SELECT 1 AS o, 'connection' AS kind, c.id::text AS id, c.id AS n, c.tenant_id,
                c.connector AS owner, c.key_id, c.version::text AS version,
                c.access_token_enc AS a, c.refresh_token_enc AS b
         FROM connections c
         WHERE c.key_id IS NOT NULL AND c.key_id IS DISTINCT FROM v_current
           AND (c.access_token_enc IS NOT NULL OR c.refresh_token_enc IS NOT NULL)
         ORDER BY c.id LIMIT greatest (p_limit, 0))
        UNION ALL
        (SELECT 2, 'webhook', e.id, 0, e.tenant_id, 'webhook:' || e.id, e.key_id,
                md5 (e.secret_enc), e.secret_enc, e.previous_enc
         FROM webhook_endpoints e WHERE e.key_id IS DISTINCT FROM v_current
         ORDER BY e.id LIMIT greatest (p_limit, 0))
        UNION ALL
        (SELECT 3, 'subscription', s.id, 0, s.tenant_id, 'subscription:' || s.id, s.key_id,
                md5 (s.secret_enc), s.secret_enc, NULL::bytea
         FROM webhook_subscriptions s WHERE s.key_id IS DISTINCT FROM v_current
         ORDER BY s.id LIMIT greatest (p_limit, 0))) r
    ORDER BY r.o, r.n, r.id LIMIT greatest (p_limit, 0);
END
$$;

-- Writes endpoint or subscription p_id (p_kind 'webhook' or
-- 'subscription') re-sealed under p_key_id, only if it is still under
-- p_from_key with the secret read (p_version, its md5): a rotation since
-- then wins. previous_until stays. Audits webhook_key_rotated {kind, id,
-- from, to}. Returns whether the row was written.
CREATE OR REPLACE FUNCTION webhook_reseal (p_kind text, p_id text, p_version text,
                                           p_from_key text, p_key_id text, p_secret bytea,
                                           p_previous bytea)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF p_kind = 'webhook' THEN
        UPDATE webhook_endpoints SET key_id = p_key_id, secret_enc = p_secret,
                                     previous_enc = CASE WHEN previous_enc IS NULL THEN NULL
                                                         ELSE p_previous END
        WHERE id = p_id AND key_id = p_from_key AND md5 (secret_enc) = p_version
          AND (previous_enc IS NULL OR p_previous IS NOT NULL)
        RETURNING tenant_id INTO v_tenant;
    ELSIF p_kind = 'subscription' THEN
        UPDATE webhook_subscriptions SET key_id = p_key_id, secret_enc = p_secret
        WHERE id = p_id AND key_id = p_from_key AND md5 (secret_enc) = p_version
        RETURNING tenant_id INTO v_tenant;
    ELSE
        RAISE EXCEPTION 'webhook_reseal: unknown kind "%"', p_kind
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_tenant IS NULL THEN
        RETURN false;
    END IF;
    PERFORM audit (v_tenant, 'admin', 'webhook_key_rotated',
                   jsonb_build_object ('kind', p_kind, 'id', p_id, 'from', p_from_key,
                                       'to', p_key_id));
    RETURN true;
END
$$;

-- 011's settle, counting the webhook rows too: a key is retired only when
-- no connection, connect flow, endpoint or subscription uses it.
CREATE OR REPLACE FUNCTION connection_keys_settle ()
RETURNS TABLE (current_id text, remaining bigint, retired text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_retired text[];
    v_current text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    LOCK TABLE connection_keys IN SHARE ROW EXCLUSIVE MODE;
    v_current := connection_key_current ();
    WITH r AS (
        UPDATE connection_keys k SET retired_at = now ()
        WHERE NOT k.current AND k.retired_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM connections c WHERE c.key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM connect_flows f WHERE f.key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.key_id = k.id)
        RETURNING k.id)
    SELECT coalesce (array_agg (r.id ORDER BY r.id), '{}') INTO v_retired FROM r;
    RETURN QUERY
    SELECT v_current,
           (SELECT count(*) FROM connections c
            WHERE c.key_id IS NOT NULL AND c.key_id IS DISTINCT FROM v_current
              AND (c.access_token_enc IS NOT NULL OR c.refresh_token_enc IS NOT NULL))
         + (SELECT count(*) FROM webhook_endpoints e WHERE e.key_id IS DISTINCT FROM v_current)
         + (SELECT count(*) FROM webhook_subscriptions s
            WHERE s.key_id IS DISTINCT FROM v_current),
           v_retired;
END
$$;

-- 011's key list, with the endpoints and subscriptions under each key.
CREATE OR REPLACE FUNCTION admin_connection_keys_list ()
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN admin_answer (200, jsonb_build_object (
        'current', connection_key_current (),
        'keys', (SELECT coalesce (jsonb_agg (jsonb_build_object (
                     'id', k.id, 'current', k.current,
                     'created_at', task_time (k.created_at),
                     'retired_at', task_time (k.retired_at),
                     'connections', (SELECT count(*) FROM connections c WHERE c.key_id = k.id),
                     'connect_flows', (SELECT count(*) FROM connect_flows f
                                       WHERE f.key_id = k.id),
                     'webhook_endpoints', (SELECT count(*) FROM webhook_endpoints e
                                           WHERE e.key_id = k.id),
                     'webhook_subscriptions', (SELECT count(*) FROM webhook_subscriptions s
                                               WHERE s.key_id = k.id))
                 ORDER BY k.current DESC, k.created_at DESC, k.id), '[]'::jsonb)
                 FROM connection_keys k)));
END
$$;
