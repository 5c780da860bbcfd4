-- db/migrations/017_webhook_delivery.sql — the outbound scheduler of the
-- webhook role (issue 23; proto/PROTOCOL.md "Webhooks", "Deliveries out";
-- workers/sb_wh_deliver.c). One statement per step, each a function, so
-- no transaction stays open while a tenant's endpoint is asked:
--
--   webhook_delivery_claim    takes due deliveries for a worker (a lease)
--   webhook_delivery_record   records one attempt and what follows it
--   webhook_delivery_release  gives back claims a stopping worker never sent
--   webhook_subscription_disable  turns a failing subscription off
--
-- The lease: a claimed delivery carries lease_owner (the worker's random
-- ID) and lease_until; no other worker claims it before lease_until, and
-- a worker that dies leaves it to be claimed again once that has passed.
-- A subscription's max_in_flight counts its deliveries under a lease in
-- force, whichever worker holds them, so it holds across workers; its
-- rate_per_s caps what one claim takes (the worker's token bucket paces
-- the rest).

-- Takes for p_owner at most p_limit due deliveries (pending, next_at
-- passed, no lease in force) of enabled subscriptions, oldest due first,
-- skipping rows another worker is claiming (FOR UPDATE SKIP LOCKED) and
-- subscriptions named in p_skip (the worker still holds some of theirs
-- unsent); per subscription at most max_in_flight minus its deliveries
-- already leased, and at most rate_per_s. Leases them for p_lease_ms.
-- Answers what a delivery needs: the subscription (URL, sealed secret,
-- limits), the event (body as bytea, received_at as RFC 3339 UTC) and
-- the attempts made so far.
CREATE OR REPLACE FUNCTION webhook_delivery_claim (p_owner text, p_limit integer,
                                                   p_lease_ms integer, p_skip text[])
RETURNS TABLE (id bigint, tenant_id text, subscription_id text, url text, key_id text,
               secret_enc bytea, rate_per_s integer, max_in_flight integer, attempts integer,
               event_id bigint, endpoint_id text, connector text, event_key text, type text,
               received_at text, body bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY
    WITH due AS (
        SELECT d.id, d.subscription_id, d.next_at
          FROM webhook_deliveries d
         WHERE d.state = 'pending' AND d.next_at <= now ()
           AND (d.lease_until IS NULL OR d.lease_until <= now ())
           AND NOT (d.subscription_id = ANY (coalesce (p_skip, '{}')))
         ORDER BY d.next_at, d.id
         LIMIT greatest (p_limit, 0) * 8
         FOR UPDATE SKIP LOCKED),
    room AS (
        SELECT s.id AS subscription_id,
               least (s.rate_per_s,
                      s.max_in_flight - (SELECT count (*) FROM webhook_deliveries l
                                          WHERE l.subscription_id = s.id AND l.state = 'pending'
                                            AND l.lease_until > now ()))::integer AS n
          FROM webhook_subscriptions s
         WHERE s.enabled AND s.id IN (SELECT DISTINCT due.subscription_id FROM due)),
    ranked AS (
        SELECT due.id, due.next_at,
               row_number () OVER (PARTITION BY due.subscription_id ORDER BY due.next_at, due.id) AS k,
               room.n
          FROM due JOIN room ON room.subscription_id = due.subscription_id),
    chosen AS (
        SELECT ranked.id FROM ranked WHERE ranked.k <= ranked.n
         ORDER BY ranked.next_at, ranked.id
         LIMIT greatest (p_limit, 0)),
    taken AS (
        UPDATE webhook_deliveries d
           SET lease_owner = p_owner,
               lease_until = now () + make_interval (secs => p_lease_ms / 1000.0)
          FROM chosen WHERE d.id = chosen.id
        RETURNING d.*)
    SELECT t.id, t.tenant_id, t.subscription_id, s.url, s.key_id, s.secret_enc, s.rate_per_s,
           s.max_in_flight, t.attempts, e.id, e.endpoint_id, e.connector, e.event_key, e.type,
           to_char (e.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), e.body
      FROM taken t
      JOIN webhook_subscriptions s ON s.id = t.subscription_id
      JOIN webhook_events e ON e.id = t.event_id
     ORDER BY t.next_at, t.id;
END
$$;

-- Turns subscription p_id off for p_reason when it is on: disabled_at,
-- disabled_reason; its pending deliveries go dead (dead letters sb-admin
-- can replay once it is enabled again); the tenant's audit log gets
-- webhook_subscription_disabled {"subscription", "url", "reason",
-- "dead"} by p_actor. True when it was on (false: unknown or off already).
CREATE OR REPLACE FUNCTION webhook_subscription_disable (p_id text, p_reason text, p_actor text)
RETURNS boolean
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v webhook_subscriptions;
    v_dead integer;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    UPDATE webhook_subscriptions s
       SET enabled = false, disabled_at = now (), disabled_reason = left (p_reason, 512)
     WHERE s.id = p_id AND s.enabled
    RETURNING * INTO v;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE webhook_deliveries d
       SET state = 'dead', finished_at = now (), lease_owner = NULL, lease_until = NULL,
           last_error = coalesce (d.last_error, 'the subscription was disabled')
     WHERE d.subscription_id = p_id AND d.state = 'pending';
    GET DIAGNOSTICS v_dead = ROW_COUNT;
    PERFORM audit (v.tenant_id, p_actor, 'webhook_subscription_disabled',
                   jsonb_build_object ('subscription', v.id, 'url', v.url,
                                       'reason', left (p_reason, 512), 'dead', v_dead));
    RETURN true;
END
$$;

-- Records one attempt of delivery p_id by p_owner: its HTTP status (0:
-- no answer), latency, error and response excerpt, then per p_outcome:
--   'delivered'  the delivery is done; the subscription's failing run ends
--   'retry'      pending again at now () + p_retry_ms, the lease let go
--   'dead'       out of attempts: a dead letter
--   'gone'       the endpoint said 410 Gone: dead, and the subscription
--                is disabled at once
-- A failure starts the subscription's failing run (failing_since) when
-- none is running; once the run is older than p_disable_after_s with no
-- success between, the subscription is disabled
-- (webhook_subscription_disable). The delivery changes only while
-- p_owner still holds it (a worker whose lease ran out and was taken
-- over records its attempt and changes nothing else). Answers the
-- delivery's state after, its attempts, and whether this disabled the
-- subscription.
CREATE OR REPLACE FUNCTION webhook_delivery_record (p_id bigint, p_owner text, p_status integer,
                                                    p_latency_ms integer, p_error text,
                                                    p_excerpt text, p_outcome text,
                                                    p_retry_ms integer, p_disable_after_s integer)
RETURNS TABLE (state text, attempts integer, disabled boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v webhook_deliveries;
    v_sub webhook_subscriptions;
    v_disabled boolean := false;
    v_reason text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF p_outcome NOT IN ('delivered', 'retry', 'dead', 'gone') THEN
        RAISE EXCEPTION 'webhook_delivery_record: unknown outcome "%"', p_outcome
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO v FROM webhook_deliveries d WHERE d.id = p_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO webhook_attempts (tenant_id, delivery_id, status, latency_ms, error, excerpt)
    VALUES (v.tenant_id, p_id, p_status, greatest (p_latency_ms, 0), left (p_error, 1024),
            left (p_excerpt, 1024));
    IF v.lease_owner IS DISTINCT FROM p_owner OR v.state <> 'pending' THEN
        RETURN QUERY SELECT v.state, v.attempts, false;
        RETURN;
    END IF;
    UPDATE webhook_deliveries d
       SET attempts = d.attempts + 1, last_status = p_status, last_error = left (p_error, 1024),
           lease_owner = NULL, lease_until = NULL,
           state = CASE p_outcome WHEN 'delivered' THEN 'delivered'
                                  WHEN 'retry' THEN 'pending' ELSE 'dead' END,
           next_at = CASE WHEN p_outcome = 'retry'
                          THEN now () + make_interval (secs => greatest (p_retry_ms, 0) / 1000.0)
                          ELSE d.next_at END,
           finished_at = CASE WHEN p_outcome = 'retry' THEN NULL ELSE now () END
     WHERE d.id = p_id
    RETURNING * INTO v;
    IF p_outcome = 'delivered' THEN
        UPDATE webhook_subscriptions s SET failing_since = NULL
         WHERE s.id = v.subscription_id AND s.failing_since IS NOT NULL;
    ELSE
        -- A run that began before the subscription was last disabled
        -- (then enabled again) is over: a new one begins now.
        UPDATE webhook_subscriptions s
           SET failing_since = CASE WHEN s.failing_since IS NULL
                                      OR (s.disabled_at IS NOT NULL AND s.failing_since <= s.disabled_at)
                                    THEN now () ELSE s.failing_since END
         WHERE s.id = v.subscription_id
        RETURNING * INTO v_sub;
        IF p_outcome = 'gone' THEN
            v_reason := 'the endpoint answered 410 Gone';
        ELSIF v_sub.enabled AND v_sub.failing_since < now () - make_interval (secs => p_disable_after_s) THEN
            v_reason := format ('every delivery failed for %s s (the last: %s)',
                                floor (extract (epoch FROM now () - v_sub.failing_since))::bigint,
                                CASE WHEN p_status = 0 THEN coalesce (p_error, 'no answer')
                                     ELSE 'HTTP ' || p_status END);
        END IF;
        IF v_reason IS NOT NULL THEN
            v_disabled := webhook_subscription_disable (v.subscription_id, v_reason, 'webhook-deliverer');
            SELECT * INTO v FROM webhook_deliveries d WHERE d.id = p_id;
        END IF;
    END IF;
    RETURN QUERY SELECT v.state, v.attempts, v_disabled;
END
$$;

-- Lets go of p_owner's leases on deliveries p_ids it claimed and never
-- sent (the worker stops): they are due again at once. Answers how many.
CREATE OR REPLACE FUNCTION webhook_delivery_release (p_owner text, p_ids bigint[])
RETURNS integer
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_count integer;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    UPDATE webhook_deliveries d SET lease_owner = NULL, lease_until = NULL
     WHERE d.id = ANY (p_ids) AND d.lease_owner = p_owner AND d.state = 'pending';
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
