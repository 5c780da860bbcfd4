-- db/migrations/007_admin.sql — the admin API's steps (workers/sb_admin.c):
-- one function per request, so the token worker's shared asynchronous
-- connection never holds a transaction across loop turns and every
-- read-modify-write is atomic (the rows it changes are locked inside one
-- call).
--
-- Each function answers with the HTTP outcome the worker relays as it is:
--     {"status": 200, "body": {…}}
--     {"status": 404, "body": {"error": "not_found", "message": "…"}}
-- A refusal changes nothing: every check runs before the first write.
-- Error codes: invalid_request (400), not_found (404), conflict (409),
-- unknown_plan (422). Every change writes audit () with actor 'admin' in
-- the tenant it touched; a tenant's deletion deletes its audit rows too,
-- so the worker writes that one to the process log.
--
-- The admin API spans tenants on purpose: each function sets
-- switchboard.system for its own transaction (set_config (…, true)).
-- Values come in only as parameters; timestamps leave as task_time (003).

CREATE OR REPLACE FUNCTION admin_answer (p_status int, p_body jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object ('status', p_status, 'body', p_body)
$$;

CREATE OR REPLACE FUNCTION admin_refusal (p_status int, p_error text, p_message text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_answer (p_status, jsonb_build_object ('error', p_error, 'message', p_message))
$$;

-- A tenant as the API shows it, with its user count (caller sets system).
CREATE OR REPLACE FUNCTION admin_tenant_json (p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', t.id, 'name', t.name, 'plan', t.plan,
                               'created_at', task_time (t.created_at),
                               'users', (SELECT count(*) FROM users u WHERE u.tenant_id = t.id))
    FROM tenants t WHERE t.id = p_id
$$;

CREATE OR REPLACE FUNCTION admin_no_tenant (p_id text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_refusal (404, 'not_found', format ('there is no tenant "%s"', p_id))
$$;

-- ---------------------------------------------------------------------
-- Tenants and plans

-- At most p_limit tenants in id order after p_after (NULL: from the start);
-- "more" says whether others follow.
CREATE OR REPLACE FUNCTION admin_tenants_list (p_limit int, p_after text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT coalesce (jsonb_agg (admin_tenant_json (x.id) ORDER BY x.id), '[]'::jsonb), count(*)
    INTO v_list, v_count
    FROM (SELECT t.id FROM tenants t WHERE p_after IS NULL OR t.id > p_after
          ORDER BY t.id LIMIT p_limit + 1) x;
    IF v_count > p_limit THEN
        v_list := v_list - (jsonb_array_length (v_list) - 1);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenants', v_list, 'more', v_count > p_limit));
END
$$;

CREATE OR REPLACE FUNCTION admin_tenant_create (p_id text, p_name text, p_plan text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_created int;
BEGIN
    IF p_id IS NULL OR p_id !~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
        RETURN admin_refusal (400, 'invalid_request',
            'a tenant id is 1 to 63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit');
    END IF;
    IF p_name IS NULL OR length (btrim (p_name)) = 0 OR length (p_name) > 256 THEN
        RETURN admin_refusal (400, 'invalid_request', 'a tenant name is 1 to 256 characters');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM plans WHERE id = p_plan) THEN
        RETURN admin_refusal (422, 'unknown_plan',
            format ('there is no plan "%s" (GET /admin/plans lists them)', p_plan));
    END IF;
    PERFORM set_config ('switchboard.system', 'on', true);
    INSERT INTO tenants (id, name, plan) VALUES (p_id, p_name, p_plan)
    ON CONFLICT (id) DO NOTHING;
    GET DIAGNOSTICS v_created = ROW_COUNT;
    IF v_created = 0 THEN
        RETURN admin_refusal (409, 'conflict', format ('tenant "%s" already exists', p_id));
    END IF;
    PERFORM audit (p_id, 'admin', 'tenant_created',
                   jsonb_build_object ('name', p_name, 'plan', p_plan));
    RETURN admin_answer (201, jsonb_build_object ('tenant', admin_tenant_json (p_id)));
END
$$;

CREATE OR REPLACE FUNCTION admin_tenant_get (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_id) THEN
        RETURN admin_no_tenant (p_id);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', admin_tenant_json (p_id)
        || jsonb_build_object (
            'oauth_grants', (SELECT count(*) FROM oauth_grants WHERE tenant_id = p_id
                                                               AND revoked_at IS NULL),
            'active_refresh_families', (SELECT count(*) FROM refresh_families
                                        WHERE tenant_id = p_id AND revoked_at IS NULL))));
END
$$;

-- Deletes the tenant and, by the foreign keys' cascades, every row it
-- owns. The tenant's row is locked first, so no row can be added to it
-- between the counts and the deletion (a foreign-key check waits on it).
CREATE OR REPLACE FUNCTION admin_tenant_delete (p_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_rows jsonb;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    PERFORM 1 FROM tenants WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_id);
    END IF;
    v_rows := jsonb_build_object (
        'users',            (SELECT count(*) FROM users WHERE tenant_id = p_id),
        'oauth_grants',     (SELECT count(*) FROM oauth_grants WHERE tenant_id = p_id),
        'oauth_codes',      (SELECT count(*) FROM oauth_codes WHERE tenant_id = p_id),
        'refresh_families', (SELECT count(*) FROM refresh_families WHERE tenant_id = p_id),
        'refresh_tokens',   (SELECT count(*) FROM refresh_tokens WHERE tenant_id = p_id),
        'tasks',            (SELECT count(*) FROM tasks WHERE tenant_id = p_id),
        'connections',      (SELECT count(*) FROM connections WHERE tenant_id = p_id),
        'audit_log',        (SELECT count(*) FROM audit_log WHERE tenant_id = p_id));
    DELETE FROM tenants WHERE id = p_id;
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_id, 'deleted', v_rows));
END
$$;

CREATE OR REPLACE FUNCTION admin_tenant_plan (p_id text, p_plan text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_old text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT plan INTO v_old FROM tenants WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_id);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM plans WHERE id = p_plan) THEN
        RETURN admin_refusal (422, 'unknown_plan',
            format ('there is no plan "%s" (GET /admin/plans lists them)', p_plan));
    END IF;
    IF v_old <> p_plan THEN
        UPDATE tenants SET plan = p_plan WHERE id = p_id;
        PERFORM audit (p_id, 'admin', 'plan_set', jsonb_build_object ('from', v_old, 'to', p_plan));
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', admin_tenant_json (p_id),
                                                  'changed', v_old <> p_plan));
END
$$;

CREATE OR REPLACE FUNCTION admin_plans_list ()
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    RETURN admin_answer (200, jsonb_build_object ('plans', coalesce ((
        SELECT jsonb_agg (jsonb_build_object ('id', p.id, 'name', p.name,
                                              'tenants', (SELECT count(*) FROM tenants t
                                                          WHERE t.plan = p.id))
                          ORDER BY p.id)
        FROM plans p), '[]'::jsonb)));
END
$$;

-- ---------------------------------------------------------------------
-- Users

CREATE OR REPLACE FUNCTION admin_user_json (p_tenant text, p_user bigint)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('id', u.id, 'email', u.email,
                               'created_at', task_time (u.created_at),
                               'disabled_at', task_time (u.disabled_at),
                               'active_refresh_families',
                               (SELECT count(*) FROM refresh_families f
                                WHERE f.tenant_id = u.tenant_id AND f.user_id = u.id
                                  AND f.revoked_at IS NULL))
    FROM users u WHERE u.tenant_id = p_tenant AND u.id = p_user
$$;

CREATE OR REPLACE FUNCTION admin_users_list (p_tenant text, p_limit int, p_after bigint)
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
    SELECT coalesce (jsonb_agg (admin_user_json (p_tenant, x.id) ORDER BY x.id), '[]'::jsonb),
           count(*)
    INTO v_list, v_count
    FROM (SELECT u.id FROM users u
          WHERE u.tenant_id = p_tenant AND (p_after IS NULL OR u.id > p_after)
          ORDER BY u.id LIMIT p_limit + 1) x;
    IF v_count > p_limit THEN
        v_list := v_list - (jsonb_array_length (v_list) - 1);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'users', v_list,
                                                  'more', v_count > p_limit));
END
$$;

-- p_hash: an Argon2id string the worker made off its loop.
CREATE OR REPLACE FUNCTION admin_user_add (p_tenant text, p_email text, p_hash text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    PERFORM 1 FROM tenants WHERE id = p_tenant FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    IF p_email IS NULL OR length (p_email) NOT BETWEEN 3 AND 254
    OR p_email !~ '^[^@\s]+@[^@\s]+$' THEN
        RETURN admin_refusal (400, 'invalid_request',
            'an email is 3 to 254 characters: a local part, "@" and a domain, without spaces');
    END IF;
    INSERT INTO users (tenant_id, email, password_hash) VALUES (p_tenant, p_email, p_hash)
    ON CONFLICT (tenant_id, lower (email)) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RETURN admin_refusal (409, 'conflict',
            format ('tenant "%s" already has a user with email %s', p_tenant, p_email));
    END IF;
    PERFORM audit (p_tenant, 'admin', 'user_added',
                   jsonb_build_object ('user_id', v_id, 'email', p_email));
    RETURN admin_answer (201, jsonb_build_object ('tenant', p_tenant,
                                                  'user', admin_user_json (p_tenant, v_id)));
END
$$;

CREATE OR REPLACE FUNCTION admin_no_user (p_tenant text, p_user bigint)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT admin_refusal (404, 'not_found', format ('tenant "%s" has no user %s', p_tenant, p_user))
$$;

-- Deletes the user; its grants, codes and refresh families go with it
-- (the composite foreign keys cascade).
CREATE OR REPLACE FUNCTION admin_user_remove (p_tenant text, p_user bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_email text;
    v_rows jsonb;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT email INTO v_email FROM users WHERE tenant_id = p_tenant AND id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN admin_no_user (p_tenant, p_user);
    END IF;
    v_rows := jsonb_build_object (
        'oauth_grants',     (SELECT count(*) FROM oauth_grants
                             WHERE tenant_id = p_tenant AND user_id = p_user),
        'oauth_codes',      (SELECT count(*) FROM oauth_codes
                             WHERE tenant_id = p_tenant AND user_id = p_user),
        'refresh_families', (SELECT count(*) FROM refresh_families
                             WHERE tenant_id = p_tenant AND user_id = p_user));
    DELETE FROM users WHERE tenant_id = p_tenant AND id = p_user;
    PERFORM audit (p_tenant, 'admin', 'user_removed',
                   jsonb_build_object ('user_id', p_user, 'email', v_email));
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'user_id', p_user,
                                                  'deleted', v_rows));
END
$$;

-- Sets a new password hash, revokes the user's refresh families (reason
-- 'admin') and deletes its unused codes: whoever held the old password
-- keeps nothing that outlives an access token.
CREATE OR REPLACE FUNCTION admin_user_password (p_tenant text, p_user bigint, p_hash text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_families int;
    v_codes int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    UPDATE users SET password_hash = p_hash WHERE tenant_id = p_tenant AND id = p_user;
    IF NOT FOUND THEN
        RETURN admin_no_user (p_tenant, p_user);
    END IF;
    UPDATE refresh_families SET revoked_at = now (), revoked_reason = 'admin'
    WHERE tenant_id = p_tenant AND user_id = p_user AND revoked_at IS NULL;
    GET DIAGNOSTICS v_families = ROW_COUNT;
    DELETE FROM oauth_codes WHERE tenant_id = p_tenant AND user_id = p_user AND used_at IS NULL;
    GET DIAGNOSTICS v_codes = ROW_COUNT;
    PERFORM audit (p_tenant, 'admin', 'password_reset',
                   jsonb_build_object ('user_id', p_user, 'refresh_families_revoked', v_families,
                                       'codes_deleted', v_codes));
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'user_id', p_user,
                                                  'refresh_families_revoked', v_families,
                                                  'codes_deleted', v_codes));
END
$$;

-- ---------------------------------------------------------------------
-- Clients and tokens

CREATE OR REPLACE FUNCTION admin_clients_list (p_limit int, p_after text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT coalesce (jsonb_agg (jsonb_build_object (
               'client_id', c.client_id, 'kind', c.kind, 'client_name', c.client_name,
               'redirect_uris', to_jsonb (c.redirect_uris),
               'token_endpoint_auth_method', c.token_endpoint_auth_method,
               'scope', c.scope, 'created_at', task_time (c.created_at),
               'revoked_at', task_time (c.revoked_at),
               'grants', (SELECT count(*) FROM oauth_grants g
                          WHERE g.client_id = c.client_id AND g.revoked_at IS NULL))
               ORDER BY c.client_id), '[]'::jsonb),
           count(*)
    INTO v_list, v_count
    FROM (SELECT * FROM oauth_clients x WHERE p_after IS NULL OR x.client_id > p_after
          ORDER BY x.client_id LIMIT p_limit + 1) c;
    IF v_count > p_limit THEN
        v_list := v_list - (jsonb_array_length (v_list) - 1);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('clients', v_list, 'more', v_count > p_limit));
END
$$;

-- Marks the client revoked (the first time only) and deletes what it
-- holds in every tenant: grants, codes and refresh families (their tokens
-- cascade). Audited as client_revoked in each tenant that lost rows.
CREATE OR REPLACE FUNCTION admin_client_revoke (p_client text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_revoked_at timestamptz;
    v_tenants text[];
    v_grants int;
    v_codes int;
    v_families int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    UPDATE oauth_clients SET revoked_at = coalesce (revoked_at, now ())
    WHERE client_id = p_client
    RETURNING revoked_at INTO v_revoked_at;
    IF NOT FOUND THEN
        RETURN admin_refusal (404, 'not_found', format ('there is no client "%s"', p_client));
    END IF;
    SELECT coalesce (array_agg (DISTINCT x.tenant_id ORDER BY x.tenant_id), '{}') INTO v_tenants
    FROM (SELECT tenant_id FROM oauth_grants WHERE client_id = p_client
          UNION SELECT tenant_id FROM oauth_codes WHERE client_id = p_client
          UNION SELECT tenant_id FROM refresh_families WHERE client_id = p_client) x;
    DELETE FROM oauth_grants WHERE client_id = p_client;
    GET DIAGNOSTICS v_grants = ROW_COUNT;
    DELETE FROM oauth_codes WHERE client_id = p_client;
    GET DIAGNOSTICS v_codes = ROW_COUNT;
    DELETE FROM refresh_families WHERE client_id = p_client;
    GET DIAGNOSTICS v_families = ROW_COUNT;
    PERFORM audit (t, 'admin', 'client_revoked', jsonb_build_object ('client_id', p_client))
    FROM unnest (v_tenants) t;
    RETURN admin_answer (200, jsonb_build_object (
        'client_id', p_client, 'revoked_at', task_time (v_revoked_at),
        'tenants', to_jsonb (v_tenants),
        'deleted', jsonb_build_object ('oauth_grants', v_grants, 'oauth_codes', v_codes,
                                       'refresh_families', v_families)));
END
$$;

-- Revokes every live refresh family of the tenant, or of one of its
-- users when p_user is not NULL (reason 'admin').
CREATE OR REPLACE FUNCTION admin_tokens_revoke (p_tenant text, p_user bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_families int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    IF p_user IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users
                                          WHERE tenant_id = p_tenant AND id = p_user) THEN
        RETURN admin_no_user (p_tenant, p_user);
    END IF;
    UPDATE refresh_families SET revoked_at = now (), revoked_reason = 'admin'
    WHERE tenant_id = p_tenant AND revoked_at IS NULL AND (p_user IS NULL OR user_id = p_user);
    GET DIAGNOSTICS v_families = ROW_COUNT;
    PERFORM audit (p_tenant, 'admin', 'tokens_revoked',
                   jsonb_strip_nulls (jsonb_build_object ('user_id', p_user,
                                                          'refresh_families_revoked', v_families)));
    RETURN admin_answer (200, jsonb_strip_nulls (jsonb_build_object (
        'tenant', p_tenant, 'user_id', p_user, 'refresh_families_revoked', v_families)));
END
$$;

-- ---------------------------------------------------------------------
-- The audit log, newest first: at most p_limit rows with id below
-- p_before (NULL: from the newest), of one tenant or (p_tenant NULL) all.
-- next_before is the cursor for the page after, or null at the end.
CREATE OR REPLACE FUNCTION admin_audit_list (p_tenant text, p_limit int, p_before bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_list jsonb;
    v_count int;
    v_last bigint;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF p_tenant IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT coalesce (jsonb_agg (jsonb_build_object (
               'id', a.id, 'tenant', a.tenant_id, 'actor', a.actor, 'action', a.action,
               'detail', a.detail, 'at', task_time (a.at)) ORDER BY a.id DESC), '[]'::jsonb),
           count(*), min (a.id)
    INTO v_list, v_count, v_last
    FROM (SELECT * FROM audit_log x
          WHERE (p_tenant IS NULL OR x.tenant_id = p_tenant)
            AND (p_before IS NULL OR x.id < p_before)
          ORDER BY x.id DESC LIMIT p_limit) a;
    RETURN admin_answer (200, jsonb_build_object (
        'entries', v_list,
        'next_before', CASE WHEN v_count = p_limit THEN v_last END));
END
$$;
