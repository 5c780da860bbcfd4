-- db/migrations/014_quotas.sql — per-tenant quotas (issue 22;
-- proto/PROTOCOL.md "Quotas", docs/QUOTAS.md): each plan's limits, each
-- tenant's billing anchor, the usage the broker counts (by billing period
-- and by minute), and the functions the quota service (the token workers,
-- workers/sb_quota_sync.c) and the admin API (workers/sb_admin.c) call.
--
-- Limits travel to the broker as LIMITS messages. A sequence numbers
-- every change of what the broker needs (a plan's limits or id, a
-- tenant's plan or anchor, a new plan or tenant): the row's
-- limits_version. The quota service polls quota_version () and sends what
-- changed since the last version it saw (quota_plans_since,
-- quota_tenants_since). The triggers take a transaction-level advisory
-- lock before they number a change, so versions are handed out in commit
-- order: a change that becomes visible never carries a number below one
-- that was already visible (the poller cannot skip it).
--
-- Usage comes back from the broker in batches (broker_id, seq);
-- quota_usage_record stores a batch once, however many times it is sent.
-- usage_minutes keeps 2 days, usage_batches 1 day (pruned as batches
-- arrive). Deleting a tenant deletes its usage (ON DELETE CASCADE).
--
-- Every limit is named here, and mirrored by proto/sb_quota_msg.h:
--   rate_per_min   0..10^7 cost units per minute (0 = unlimited)
--   burst          0..10^7 (at least 1 when rate_per_min is set)
--   max_in_flight  0..100000 (0 = unlimited)
--   monthly_calls  0..2^53 per billing period (0 = unlimited)
--   weight         1..100 (the fair queues' share)
--   billing_anchor 1..28 (the period runs from that day 00:00 UTC to the
--                  same day of the next month; 1 = calendar months)

-- ---------------------------------------------------------------------
-- Plans' limits and tenants' anchors

ALTER TABLE plans
    ADD COLUMN IF NOT EXISTS rate_per_min int NOT NULL DEFAULT 0
        CONSTRAINT plans_rate_per_min_range CHECK (rate_per_min BETWEEN 0 AND 10000000),
    ADD COLUMN IF NOT EXISTS burst int NOT NULL DEFAULT 0
        CONSTRAINT plans_burst_range CHECK (burst BETWEEN 0 AND 10000000),
    ADD COLUMN IF NOT EXISTS max_in_flight int NOT NULL DEFAULT 0
        CONSTRAINT plans_max_in_flight_range CHECK (max_in_flight BETWEEN 0 AND 100000),
    ADD COLUMN IF NOT EXISTS monthly_calls bigint NOT NULL DEFAULT 0
        CONSTRAINT plans_monthly_calls_range CHECK (monthly_calls BETWEEN 0 AND 9007199254740992),
    ADD COLUMN IF NOT EXISTS weight int NOT NULL DEFAULT 1
        CONSTRAINT plans_weight_range CHECK (weight BETWEEN 1 AND 100),
    ADD COLUMN IF NOT EXISTS limits_version bigint;
ALTER TABLE plans DROP CONSTRAINT IF EXISTS plans_burst_with_rate;
ALTER TABLE plans ADD CONSTRAINT plans_burst_with_rate CHECK (rate_per_min = 0 OR burst >= 1);

ALTER TABLE tenants
    ADD COLUMN IF NOT EXISTS billing_anchor smallint NOT NULL DEFAULT 1
        CONSTRAINT tenants_billing_anchor_range CHECK (billing_anchor BETWEEN 1 AND 28),
    ADD COLUMN IF NOT EXISTS limits_version bigint;

CREATE SEQUENCE IF NOT EXISTS quota_version_seq;

-- Numbers a change: waits for any other transaction numbering one to
-- commit (the lock ends with the transaction), then takes the next value.
CREATE OR REPLACE FUNCTION quota_next_version ()
RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock (7400322);
    RETURN nextval ('quota_version_seq');
END
$$;

CREATE OR REPLACE FUNCTION plans_limits_version ()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
    OR (NEW.id, NEW.rate_per_min, NEW.burst, NEW.max_in_flight, NEW.monthly_calls, NEW.weight)
       IS DISTINCT FROM
       (OLD.id, OLD.rate_per_min, OLD.burst, OLD.max_in_flight, OLD.monthly_calls, OLD.weight) THEN
        NEW.limits_version := quota_next_version ();
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION tenants_limits_version ()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT'
    OR (NEW.id, NEW.plan, NEW.billing_anchor) IS DISTINCT FROM (OLD.id, OLD.plan, OLD.billing_anchor) THEN
        NEW.limits_version := quota_next_version ();
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS plans_limits_version ON plans;
CREATE TRIGGER plans_limits_version BEFORE INSERT OR UPDATE ON plans
    FOR EACH ROW EXECUTE FUNCTION plans_limits_version ();
DROP TRIGGER IF EXISTS tenants_limits_version ON tenants;
CREATE TRIGGER tenants_limits_version BEFORE INSERT OR UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_limits_version ();

-- The seeded plans' limits (the update numbers them through the trigger).
UPDATE plans p SET rate_per_min = s.rate, burst = s.burst, max_in_flight = s.in_flight,
                   monthly_calls = s.monthly, weight = s.weight
FROM (VALUES ('free',          60,     30,   4,    1000::bigint,  1),
             ('pro',         1200,    300,  32,  100000::bigint,  4),
             ('enterprise', 12000,   2000, 256,       0::bigint, 16),
             ('custom',         0,      0,   0,       0::bigint,  4))
     AS s (id, rate, burst, in_flight, monthly, weight)
WHERE p.id = s.id;
-- Every other row gets its first number.
UPDATE plans SET limits_version = quota_next_version () WHERE limits_version IS NULL;
UPDATE tenants SET limits_version = quota_next_version () WHERE limits_version IS NULL;
ALTER TABLE plans ALTER COLUMN limits_version SET NOT NULL;
ALTER TABLE tenants ALTER COLUMN limits_version SET NOT NULL;
CREATE INDEX IF NOT EXISTS plans_limits_version ON plans (limits_version);
CREATE INDEX IF NOT EXISTS tenants_limits_version ON tenants (limits_version);

-- The demo tenant (002) is what scripts/up and the benchmarks drive at
-- thousands of calls per second: it moves from pro to custom (no limits).
SELECT set_config ('switchboard.tenant_id', 'demo', true);     -- this transaction only
WITH moved AS (
    UPDATE tenants SET plan = 'custom' WHERE id = 'demo' AND plan = 'pro' RETURNING id
)
INSERT INTO audit_log (tenant_id, actor, action, detail)
SELECT id, 'migration', 'plan_set', '{"from": "pro", "to": "custom", "migration": "014_quotas"}'
FROM moved;
SELECT set_config ('switchboard.tenant_id', '', true);

-- ---------------------------------------------------------------------
-- Usage

CREATE TABLE IF NOT EXISTS usage_months (
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    period_start    timestamptz NOT NULL,
    calls           bigint NOT NULL DEFAULT 0 CHECK (calls >= 0),
    refused         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof (refused) = 'object'),
    updated_at      timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (tenant_id, period_start)
);

CREATE TABLE IF NOT EXISTS usage_minutes (
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    minute          timestamptz NOT NULL,
    calls           bigint NOT NULL DEFAULT 0 CHECK (calls >= 0),
    refused         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof (refused) = 'object'),
    updated_at      timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (tenant_id, minute)
);
CREATE INDEX IF NOT EXISTS usage_minutes_minute ON usage_minutes (minute);

-- The batches already stored, by the broker that sent them (a random id
-- per broker start) and its sequence number. Not tenant-owned.
CREATE TABLE IF NOT EXISTS usage_batches (
    broker_id       text NOT NULL CHECK (length (broker_id) BETWEEN 1 AND 64),
    seq             bigint NOT NULL CHECK (seq >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now (),
    PRIMARY KEY (broker_id, seq)
);
CREATE INDEX IF NOT EXISTS usage_batches_recorded_at ON usage_batches (recorded_at);

DO $$
DECLARE
    v_table text;
BEGIN
    FOREACH v_table IN ARRAY ARRAY['usage_months', 'usage_minutes']
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
-- The quota service's functions. Each spans tenants on purpose and sets
-- switchboard.system for its own transaction.

-- The start of the billing period around p_now for billing day p_anchor
-- (another value than 1..28 is taken as 1): the latest instant ≤ p_now
-- that is 00:00:00 UTC on day p_anchor of a month. Mirrors
-- sb_quota_period (proto/sb_quota_msg.c); no session time zone involved.
CREATE OR REPLACE FUNCTION quota_period_start (p_anchor int, p_now timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN x.this_month <= x.t THEN x.this_month
                ELSE x.this_month - interval '1 month' END AT TIME ZONE 'UTC'
    FROM (SELECT p_now AT TIME ZONE 'UTC' AS t,
                 date_trunc ('month', p_now AT TIME ZONE 'UTC')
                 + (CASE WHEN p_anchor BETWEEN 1 AND 28 THEN p_anchor ELSE 1 END - 1)
                   * interval '1 day' AS this_month) x
$$;

-- The highest limits_version of any plan or tenant (0 when none).
CREATE OR REPLACE FUNCTION quota_version ()
RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT greatest (coalesce ((SELECT max (limits_version) FROM plans), 0),
                     coalesce ((SELECT max (limits_version) FROM tenants), 0))
$$;

-- The plans changed since p_version (0: all), by id.
CREATE OR REPLACE FUNCTION quota_plans_since (p_version bigint)
RETURNS TABLE (id text, rate int, burst int, in_flight int, monthly bigint, weight int,
               version bigint)
LANGUAGE sql STABLE AS $$
    SELECT p.id, p.rate_per_min, p.burst, p.max_in_flight, p.monthly_calls, p.weight,
           p.limits_version
    FROM plans p
    WHERE p.limits_version > coalesce (p_version, 0)
    ORDER BY p.id
$$;

-- At most p_limit tenants changed since p_version (0: all), by id, after
-- p_after ('' or NULL: from the start): plan, anchor, the current
-- period's start (Unix s) and the calls stored for it.
CREATE OR REPLACE FUNCTION quota_tenants_since (p_version bigint, p_after text, p_limit int)
RETURNS TABLE (id text, plan text, anchor int, period bigint, used bigint, version bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY
        SELECT t.id, t.plan, t.billing_anchor::int,
               extract (epoch FROM x.start)::bigint,
               coalesce (u.calls, 0)::bigint,
               t.limits_version
        FROM (SELECT * FROM tenants n
              WHERE n.limits_version > coalesce (p_version, 0)
                AND n.id > coalesce (p_after, '')
              ORDER BY n.id
              LIMIT greatest (coalesce (p_limit, 0), 0)) t
        CROSS JOIN LATERAL (SELECT quota_period_start (t.billing_anchor, now ()) AS start) x
        LEFT JOIN usage_months u ON u.tenant_id = t.id AND u.period_start = x.start
        ORDER BY t.id;
END
$$;

-- Whether p_value is a JSON integer from 0 to 2^53 (a count).
CREATE OR REPLACE FUNCTION quota_is_count (p_value jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof (p_value) = 'number'
                THEN p_value::text::numeric BETWEEN 0 AND 9007199254740992
                     AND p_value::text::numeric = trunc (p_value::text::numeric)
                ELSE false END
$$;

-- The sum of two {"reason": count} objects.
CREATE OR REPLACE FUNCTION quota_refused_add (p_a jsonb, p_b jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce (jsonb_object_agg (r.key, r.total), '{}'::jsonb)
    FROM (SELECT e.key, sum (e.value::bigint) AS total
          FROM (SELECT * FROM jsonb_each_text (coalesce (p_a, '{}'::jsonb))
                UNION ALL
                SELECT * FROM jsonb_each_text (coalesce (p_b, '{}'::jsonb))) e
          GROUP BY e.key) r
$$;

-- The entries of a usage batch summed per tenant and per instant, the
-- instant read from the entries' field `p_key` ("period" or "minute");
-- tenants that no longer exist are left out. One row per key: a batch may
-- name a tenant's period or minute twice.
CREATE OR REPLACE FUNCTION quota_usage_sum (p_entries jsonb, p_key text)
RETURNS TABLE (tenant_id text, instant timestamptz, calls bigint, refused jsonb)
LANGUAGE sql STABLE AS $$
    WITH b AS (
        SELECT e->>'tenant' AS tenant_id, to_timestamp ((e->>p_key)::bigint) AS instant,
               (e->>'calls')::bigint AS calls, coalesce (e->'refused', '{}'::jsonb) AS refused
        FROM jsonb_array_elements (p_entries) e
        JOIN tenants t ON t.id = e->>'tenant'
    ), r AS (
        SELECT b.tenant_id, b.instant, k.key, sum (k.value::bigint) AS total
        FROM b, jsonb_each_text (b.refused) k
        GROUP BY b.tenant_id, b.instant, k.key
    )
    SELECT a.tenant_id, a.instant, a.calls::bigint,
           coalesce ((SELECT jsonb_object_agg (r.key, r.total) FROM r
                      WHERE r.tenant_id = a.tenant_id AND r.instant = a.instant),
                     '{}'::jsonb)
    FROM (SELECT b.tenant_id, b.instant, sum (b.calls) AS calls
          FROM b GROUP BY b.tenant_id, b.instant) a
$$;

-- Stores one usage batch of a broker, once: entries
--     [{"tenant", "period", "minute", "calls", "refused": {"rate": n, …}}]
-- (period and minute in Unix s). A batch already stored (broker_id, seq)
-- returns false and changes nothing; otherwise its calls and refusals are
-- added to usage_months (per tenant and period) and usage_minutes (per
-- tenant and minute), in this one transaction, and it returns true.
-- Entries of tenants `tenants` does not list (deleted since, the reserved
-- `_admin`) are skipped. A malformed batch raises invalid_parameter_value
-- and stores nothing.
CREATE OR REPLACE FUNCTION quota_usage_record (p_broker_id text, p_seq bigint, p_entries jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_new int;
    v_bad jsonb;
BEGIN
    IF p_broker_id IS NULL OR length (p_broker_id) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'quota_usage_record: a broker id is 1 to 64 characters'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_seq IS NULL OR p_seq < 0 THEN
        RAISE EXCEPTION 'quota_usage_record: seq is a non-negative integer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_entries IS NULL OR jsonb_typeof (p_entries) <> 'array' THEN
        RAISE EXCEPTION 'quota_usage_record: the entries are a JSON array'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT e INTO v_bad FROM jsonb_array_elements (p_entries) e
    WHERE CASE WHEN jsonb_typeof (e) <> 'object' THEN true
               ELSE jsonb_typeof (e->'tenant') IS DISTINCT FROM 'string'
                    OR NOT quota_is_count (e->'period')
                    OR NOT quota_is_count (e->'minute')
                    OR NOT quota_is_count (e->'calls')
                    OR CASE WHEN NOT e ? 'refused' THEN false
                            WHEN jsonb_typeof (e->'refused') <> 'object' THEN true
                            ELSE EXISTS (SELECT 1 FROM jsonb_each (e->'refused') r
                                         WHERE NOT quota_is_count (r.value)) END
          END
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'quota_usage_record: malformed entry %', left (v_bad::text, 200)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM set_config ('switchboard.system', 'on', true);
    INSERT INTO usage_batches (broker_id, seq) VALUES (p_broker_id, p_seq)
    ON CONFLICT (broker_id, seq) DO NOTHING;
    GET DIAGNOSTICS v_new = ROW_COUNT;
    IF v_new = 0 THEN
        RETURN false;
    END IF;

    --  One row per key (a batch may name a tenant's period or minute twice),
    --  written in key order: two batches (of two brokers) stored at once
    --  lock their common rows in the same order, so they never deadlock.
    INSERT INTO usage_months AS m (tenant_id, period_start, calls, refused)
    SELECT s.tenant_id, s.instant, s.calls, s.refused
    FROM quota_usage_sum (p_entries, 'period') s
    ORDER BY s.tenant_id, s.instant
    ON CONFLICT (tenant_id, period_start) DO UPDATE
    SET calls = m.calls + EXCLUDED.calls,
        refused = quota_refused_add (m.refused, EXCLUDED.refused),
        updated_at = now ();

    INSERT INTO usage_minutes AS m (tenant_id, minute, calls, refused)
    SELECT s.tenant_id, s.instant, s.calls, s.refused
    FROM quota_usage_sum (p_entries, 'minute') s
    ORDER BY s.tenant_id, s.instant
    ON CONFLICT (tenant_id, minute) DO UPDATE
    SET calls = m.calls + EXCLUDED.calls,
        refused = quota_refused_add (m.refused, EXCLUDED.refused),
        updated_at = now ();

    DELETE FROM usage_minutes WHERE minute < now () - interval '2 days';
    DELETE FROM usage_batches WHERE recorded_at < now () - interval '1 day';
    RETURN true;
END
$$;

-- ---------------------------------------------------------------------
-- The admin API's quota steps (the conventions of 007: one call per
-- request, {"status", "body"}, every check before the first write,
-- switchboard.system for the function's own transaction). A plan belongs
-- to no tenant, so a plan's creation or change has no audit row: the
-- token worker writes it to its process log (workers/sb_admin.c).

-- A plan as the API shows it (0 in rate_per_min, max_in_flight and
-- monthly_calls = unlimited), with the number of its tenants.
CREATE OR REPLACE FUNCTION admin_plan_json (p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', p.id, 'name', p.name,
                               'rate_per_min', p.rate_per_min, 'burst', p.burst,
                               'max_in_flight', p.max_in_flight,
                               'monthly_calls', p.monthly_calls, 'weight', p.weight,
                               'created_at', task_time (p.created_at),
                               'tenants', (SELECT count(*) FROM tenants t WHERE t.plan = p.id))
    FROM plans p WHERE p.id = p_id
$$;

CREATE OR REPLACE FUNCTION admin_no_plan (p_id text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_refusal (404, 'not_found',
        format ('there is no plan "%s" (GET /admin/plans lists them)', p_id))
$$;

-- Why p_value cannot be the plan field p_field (NULL: it can). JSON null
-- is "unlimited" for monthly_calls only; a number must be written as a
-- whole number (no fraction, no exponent).
CREATE OR REPLACE FUNCTION admin_plan_field_error (p_field text, p_value jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_min numeric;
    v_max numeric;
    v_what text;
BEGIN
    IF p_field = 'name' THEN
        IF jsonb_typeof (p_value) = 'string' AND length (btrim (p_value #>> '{}')) > 0
        AND length (p_value #>> '{}') <= 256 THEN
            RETURN NULL;
        END IF;
        RETURN '"name" must be a string of 1 to 256 characters';
    END IF;
    CASE p_field
    WHEN 'rate_per_min' THEN
        v_min := 0; v_max := 10000000;
        v_what := 'calls (cost units) per minute, 0 = unlimited';
    WHEN 'burst' THEN
        v_min := 0; v_max := 10000000;
        v_what := 'cost units allowed at once above the rate; at least 1 when rate_per_min is set';
    WHEN 'max_in_flight' THEN
        v_min := 0; v_max := 100000;
        v_what := 'calls running at once, 0 = unlimited';
    WHEN 'monthly_calls' THEN
        IF jsonb_typeof (p_value) = 'null' THEN
            RETURN NULL;
        END IF;
        v_min := 0; v_max := 9007199254740992;
        v_what := 'calls (cost units) per billing period, 0 or null = unlimited';
    WHEN 'weight' THEN
        v_min := 1; v_max := 100;
        v_what := 'the share of the fair queues';
    ELSE
        RETURN format ('a plan has no field "%s"', p_field);
    END CASE;
    IF jsonb_typeof (p_value) = 'number' AND p_value::text ~ '^-?[0-9]{1,20}$'
    AND p_value::text::numeric BETWEEN v_min AND v_max THEN
        RETURN NULL;
    END IF;
    RETURN format ('"%s" must be a whole number from %s to %s (%s)', p_field, v_min, v_max, v_what);
END
$$;

-- The limits of p_fields (a JSON object of plan fields, any subset) over
-- those of plan row p_plan (NULL members: the defaults of a new plan):
-- the first refusal's sentence, or NULL when every field and the whole
-- are valid.
CREATE OR REPLACE FUNCTION admin_plan_fields_error (p_fields jsonb, p_rate int, p_burst int)
RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_key text;
    v_error text;
    v_rate bigint;
    v_burst bigint;
BEGIN
    IF p_fields IS NULL OR jsonb_typeof (p_fields) <> 'object' THEN
        RETURN 'the limits must be a JSON object';
    END IF;
    FOR v_key IN SELECT k FROM jsonb_object_keys (p_fields) k ORDER BY k LOOP
        v_error := admin_plan_field_error (v_key, p_fields -> v_key);
        IF v_error IS NOT NULL THEN
            RETURN v_error;
        END IF;
    END LOOP;
    v_rate := coalesce ((p_fields ->> 'rate_per_min')::bigint, p_rate);
    v_burst := coalesce ((p_fields ->> 'burst')::bigint, p_burst);
    IF v_rate > 0 AND v_burst < 1 THEN
        RETURN format ('"burst" must be at least 1 when "rate_per_min" is set (%s per minute): '
                       'it is how many calls may come at once', v_rate);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION admin_plans_list ()
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RETURN admin_answer (200, jsonb_build_object ('plans', coalesce ((
        SELECT jsonb_agg (admin_plan_json (p.id) ORDER BY p.id) FROM plans p), '[]'::jsonb)));
END
$$;

CREATE OR REPLACE FUNCTION admin_plan_get (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM plans WHERE id = p_id) THEN
        RETURN admin_no_plan (p_id);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('plan', admin_plan_json (p_id)));
END
$$;

-- p_fields: {"name", "rate_per_min"?, "burst"?, "max_in_flight"?,
-- "monthly_calls"?, "weight"?}; a limit left out is unlimited (weight 1).
CREATE OR REPLACE FUNCTION admin_plan_create (p_id text, p_fields jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_error text;
    v_created int;
BEGIN
    IF p_id IS NULL OR p_id !~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
        RETURN admin_refusal (400, 'invalid_request',
            'a plan id is 1 to 63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit');
    END IF;
    IF p_fields IS NULL OR NOT p_fields ? 'name' THEN
        RETURN admin_refusal (400, 'invalid_request', '"name" is required: a string of 1 to 256 characters');
    END IF;
    v_error := admin_plan_fields_error (p_fields, 0, 0);
    IF v_error IS NOT NULL THEN
        RETURN admin_refusal (400, 'invalid_request', v_error);
    END IF;
    INSERT INTO plans (id, name, rate_per_min, burst, max_in_flight, monthly_calls, weight)
    VALUES (p_id, p_fields ->> 'name',
            coalesce ((p_fields ->> 'rate_per_min')::int, 0),
            coalesce ((p_fields ->> 'burst')::int, 0),
            coalesce ((p_fields ->> 'max_in_flight')::int, 0),
            coalesce ((p_fields ->> 'monthly_calls')::bigint, 0),
            coalesce ((p_fields ->> 'weight')::int, 1))
    ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    IF v_created = 0 THEN
        RETURN admin_refusal (409, 'conflict', format ('plan "%s" already exists', p_id));
    END IF;
    RETURN admin_answer (201, jsonb_build_object ('plan', admin_plan_json (p_id)));
END
$$;

-- p_fields: any subset of the plan's fields; the others stay. The new
-- limits reach the brokers within seconds (the quota service polls
-- quota_version ()) and apply to calls admitted after that.
CREATE OR REPLACE FUNCTION admin_plan_set (p_id text, p_fields jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_plan plans%ROWTYPE;
    v_error text;
    v_after plans%ROWTYPE;
BEGIN
    SELECT * INTO v_plan FROM plans WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN admin_no_plan (p_id);
    END IF;
    v_error := admin_plan_fields_error (p_fields, v_plan.rate_per_min, v_plan.burst);
    IF v_error IS NOT NULL THEN
        RETURN admin_refusal (400, 'invalid_request', v_error);
    END IF;
    UPDATE plans SET
        name          = coalesce (p_fields ->> 'name', name),
        rate_per_min  = coalesce ((p_fields ->> 'rate_per_min')::int, rate_per_min),
        burst         = coalesce ((p_fields ->> 'burst')::int, burst),
        max_in_flight = coalesce ((p_fields ->> 'max_in_flight')::int, max_in_flight),
        monthly_calls = CASE WHEN NOT p_fields ? 'monthly_calls' THEN monthly_calls
                             ELSE coalesce ((p_fields ->> 'monthly_calls')::bigint, 0) END,
        weight        = coalesce ((p_fields ->> 'weight')::int, weight)
    WHERE id = p_id
    RETURNING * INTO v_after;
    RETURN admin_answer (200, jsonb_build_object (
        'plan', admin_plan_json (p_id),
        'changed', (v_after.name, v_after.rate_per_min, v_after.burst, v_after.max_in_flight,
                    v_after.monthly_calls, v_after.weight)
                   IS DISTINCT FROM
                   (v_plan.name, v_plan.rate_per_min, v_plan.burst, v_plan.max_in_flight,
                    v_plan.monthly_calls, v_plan.weight)));
END
$$;

-- A tenant as the API shows it: 007's, with its billing anchor.
CREATE OR REPLACE FUNCTION admin_tenant_json (p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', t.id, 'name', t.name, 'plan', t.plan,
                               'billing_anchor', t.billing_anchor,
                               'created_at', task_time (t.created_at),
                               'users', (SELECT count(*) FROM users u WHERE u.tenant_id = t.id))
    FROM tenants t WHERE t.id = p_id
$$;

-- Sets the tenant's billing day (1..28): its period runs from that day
-- 00:00 UTC to the same day of the next month. The period that starts
-- counts from what usage_months holds for it (usually nothing).
CREATE OR REPLACE FUNCTION admin_tenant_anchor (p_id text, p_day int)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_old int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT billing_anchor INTO v_old FROM tenants WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_id);
    END IF;
    IF p_day IS NULL OR p_day NOT BETWEEN 1 AND 28 THEN
        RETURN admin_refusal (400, 'invalid_request',
            '"day" must be a whole number from 1 to 28 (the billing day of the month; 1 = calendar months)');
    END IF;
    IF v_old <> p_day THEN
        UPDATE tenants SET billing_anchor = p_day WHERE id = p_id;
        PERFORM audit (p_id, 'admin', 'billing_anchor_set',
                       jsonb_build_object ('from', v_old, 'to', p_day));
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', admin_tenant_json (p_id),
                                                  'changed', v_old <> p_day));
END
$$;

-- What the tenant used, as the quota service stored it (the broker
-- flushes every second or so): its plan's limits, the current billing
-- period with the calls and refusals counted in it, and this minute's
-- (zeros when no row of the current minute is stored yet).
CREATE OR REPLACE FUNCTION admin_tenant_usage (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant tenants%ROWTYPE;
    v_plan plans%ROWTYPE;
    v_start timestamptz;
    v_minute timestamptz := date_trunc ('minute', now ());
    v_month usage_months%ROWTYPE;
    v_last usage_minutes%ROWTYPE;
    v_calls bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT * INTO v_tenant FROM tenants WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_id);
    END IF;
    SELECT * INTO v_plan FROM plans WHERE id = v_tenant.plan;
    v_start := quota_period_start (v_tenant.billing_anchor, now ());
    SELECT * INTO v_month FROM usage_months WHERE tenant_id = p_id AND period_start = v_start;
    SELECT * INTO v_last FROM usage_minutes WHERE tenant_id = p_id
    ORDER BY minute DESC LIMIT 1;
    v_calls := coalesce (v_month.calls, 0);
    RETURN admin_answer (200, jsonb_build_object (
        'tenant', p_id,
        'plan', v_tenant.plan,
        'billing_anchor', v_tenant.billing_anchor,
        'limits', jsonb_build_object ('rate_per_min', v_plan.rate_per_min, 'burst', v_plan.burst,
                                      'max_in_flight', v_plan.max_in_flight,
                                      'monthly_calls', v_plan.monthly_calls,
                                      'weight', v_plan.weight),
        'period', jsonb_build_object ('start', task_time (v_start),
                                      'end', task_time (v_start + interval '1 month')),
        'month', jsonb_build_object (
            'calls', v_calls,
            'allowance', CASE WHEN v_plan.monthly_calls > 0 THEN v_plan.monthly_calls END,
            'remaining', CASE WHEN v_plan.monthly_calls > 0
                              THEN greatest (v_plan.monthly_calls - v_calls, 0) END,
            'refused', coalesce (v_month.refused, '{}'::jsonb)),
        'minute', CASE WHEN v_last.minute = v_minute
                       THEN jsonb_build_object ('start', task_time (v_last.minute),
                                                'calls', v_last.calls,
                                                'refused', v_last.refused)
                       ELSE jsonb_build_object ('start', task_time (v_minute),
                                                'calls', 0, 'refused', '{}'::jsonb) END));
END
$$;
