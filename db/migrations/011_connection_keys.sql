-- db/migrations/011_connection_keys.sql — the data keys that seal
-- connection secrets, storing a connection, and the admin API's
-- connection and key steps (workers/sb_conn_keys.c, sb_conn_admin.c;
-- docs/CONNECTIONS.md "Storage and keys"). Depends on 001, 004, 007, 010.
--
-- The key ring. connection_keys holds every data key ever made, sealed
-- under a key derived from the token workers' master secret (the database
-- never sees a key in the clear). One is current: new secrets are sealed
-- under it. A worker reads the whole ring with connection_key_ring (),
-- passing a freshly made candidate that becomes current only when no key
-- is: the partial unique index connection_keys_current lets exactly one
-- concurrent candidate in, the others are dropped and every caller reads
-- the winner.
--
-- Rotation (admin API). connection_key_rotate () makes a new key current;
-- the rows under older keys stay readable (workers keep every key), and
-- the admin's reseal calls move them in batches: connection_reseal_batch
-- () lists rows under a key that is not current, the worker opens and
-- seals them again, and connection_reseal () writes one row back only if
-- its version is still the one read, so a refresh or reconnect that
-- happened meanwhile is never overwritten (re-sealing does not bump the
-- version). connection_keys_settle () retires the keys no connection or
-- connect flow uses any more (kept, marked retired_at, never deleted: a
-- worker whose current key was read just before a rotation may still seal
-- under the old one for SB_OAUTH_KEY_CHECK_MS; such a row is readable and
-- is picked by the next reseal).
--
-- Every function that touches a tenant's rows sets the tenant (or, for
-- the admin API and the reseal, switchboard.system) for its own
-- transaction only. No function takes or returns a secret in the clear.

-- ---------------------------------------------------------------------
-- The key ring

-- Every key, the current one first (made from the candidate when none is
-- current). sealed_key is nonce || ciphertext || tag under the master
-- secret's "connection-keys" key with the id as associated data.
CREATE OR REPLACE FUNCTION connection_key_ring (p_id text, p_sealed bytea)
RETURNS TABLE (id text, sealed_key bytea, current boolean, retired boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO connection_keys (id, sealed_key, current)
    SELECT p_id, p_sealed, true
    WHERE NOT EXISTS (SELECT 1 FROM connection_keys k WHERE k.current)
    ON CONFLICT DO NOTHING;     -- two at once: the index admits one, the other is dropped
    RETURN QUERY SELECT k.id, k.sealed_key, k.current, k.retired_at IS NOT NULL
                 FROM connection_keys k ORDER BY k.current DESC, k.created_at DESC, k.id;
END
$$;

-- Makes the given key current; the previous current key stays in the
-- ring, not current. Rotations are serialised by the table lock (readers
-- are not blocked). Returns the previous key's id (NULL: there was none).
CREATE OR REPLACE FUNCTION connection_key_rotate (p_id text, p_sealed bytea)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_previous text;
BEGIN
    LOCK TABLE connection_keys IN SHARE ROW EXCLUSIVE MODE;
    UPDATE connection_keys SET current = false WHERE current RETURNING id INTO v_previous;
    INSERT INTO connection_keys (id, sealed_key, current) VALUES (p_id, p_sealed, true);
    RETURN v_previous;
END
$$;

-- The id of the current key (NULL: none yet).
CREATE OR REPLACE FUNCTION connection_key_current ()
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT k.id FROM connection_keys k WHERE k.current
$$;

-- ---------------------------------------------------------------------
-- Storing a connection

-- Stores p_tenant's credential for p_connector (the connect flow's
-- callback, the admin API's API key): inserts the row or replaces the
-- credential of the one there, under p_tenant's row-level security.
-- status connected; version 1 for a new row, +1 otherwise; the refresh
-- lease, failures, retry time, status_detail and refreshed_at cleared;
-- connected_by p_subject. p_access (required) and p_refresh (NULL: none)
-- are sealed under p_key_id by the caller. Audits connection_connected
-- {connector, kind} by p_subject. Returns the row's id and version.
CREATE OR REPLACE FUNCTION connection_store (p_tenant text, p_connector text, p_kind text,
                                             p_access bytea, p_refresh bytea, p_key_id text,
                                             p_expires_at timestamptz, p_scopes text,
                                             p_vars jsonb, p_subject text)
RETURNS TABLE (id bigint, version bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_version bigint;
BEGIN
    IF p_access IS NULL OR p_key_id IS NULL THEN
        RAISE EXCEPTION 'connection_store: a connection needs a sealed credential and its key'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_vars IS NOT NULL AND jsonb_typeof (p_vars) <> 'object' THEN
        RAISE EXCEPTION 'connection_store: vars must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = p_tenant) THEN
        RAISE EXCEPTION 'there is no tenant "%"', p_tenant USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    INSERT INTO connections AS c (tenant_id, connector, kind, status, status_detail,
                                  access_token_enc, refresh_token_enc, key_id, scopes,
                                  expires_at, vars, version, lease_owner, lease_until,
                                  refresh_failures, retry_at, refreshed_at, connected_by)
    VALUES (p_tenant, p_connector, p_kind, 'connected', NULL, p_access, p_refresh, p_key_id,
            p_scopes, p_expires_at, coalesce (p_vars, '{}'::jsonb), 1, NULL, NULL, 0, NULL,
            NULL, p_subject)
    ON CONFLICT (tenant_id, connector) DO UPDATE SET
        kind = EXCLUDED.kind, status = 'connected', status_detail = NULL,
        access_token_enc = EXCLUDED.access_token_enc,
        refresh_token_enc = EXCLUDED.refresh_token_enc, key_id = EXCLUDED.key_id,
        scopes = EXCLUDED.scopes, expires_at = EXCLUDED.expires_at, vars = EXCLUDED.vars,
        version = c.version + 1, lease_owner = NULL, lease_until = NULL,
        refresh_failures = 0, retry_at = NULL, refreshed_at = NULL,
        connected_by = EXCLUDED.connected_by, updated_at = now ()
    RETURNING c.id, c.version INTO v_id, v_version;
    PERFORM audit (p_tenant, coalesce (p_subject, 'system'), 'connection_connected',
                   jsonb_build_object ('connector', p_connector, 'kind', p_kind));
    RETURN QUERY SELECT v_id, v_version;
END
$$;

-- ---------------------------------------------------------------------
-- The admin API (answers as 007's: {"status", "body"})

-- A connection as the admin API shows it: never a secret (caller sets system).
CREATE OR REPLACE FUNCTION admin_connection_json (p_id bigint)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object ('connector', c.connector, 'kind', c.kind, 'status', c.status,
                               'status_detail', c.status_detail, 'scopes', c.scopes,
                               'expires_at', task_time (c.expires_at), 'version', c.version,
                               'refreshed_at', task_time (c.refreshed_at), 'key_id', c.key_id,
                               'connected_by', c.connected_by,
                               'created_at', task_time (c.created_at),
                               'updated_at', task_time (c.updated_at))
    FROM connections c WHERE c.id = p_id
$$;

-- p_tenant's connections in connector order (a tenant has one per
-- connector, so the list is bounded by the connectors there are).
CREATE OR REPLACE FUNCTION admin_connections_list (p_tenant text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'connections',
        (SELECT coalesce (jsonb_agg (admin_connection_json (c.id) ORDER BY c.connector),
                          '[]'::jsonb)
         FROM connections c WHERE c.tenant_id = p_tenant)));
END
$$;

-- Stores an API key (sealed by the worker under p_key_id) as p_tenant's
-- connection to p_connector, through connection_store with subject
-- 'admin'. 404 for an unknown tenant; 201 for a new connection, 200 for a
-- replaced key.
CREATE OR REPLACE FUNCTION admin_connection_put (p_tenant text, p_connector text,
                                                 p_access bytea, p_key_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_version bigint;
BEGIN
    PERFORM 1 FROM tenants WHERE id = p_tenant FOR SHARE;
    IF NOT FOUND THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    SELECT s.id, s.version INTO v_id, v_version
    FROM connection_store (p_tenant, p_connector, 'api_key', p_access, NULL, p_key_id, NULL,
                           NULL, '{}'::jsonb, 'admin') s;
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN admin_answer (CASE WHEN v_version = 1 THEN 201 ELSE 200 END,
                         jsonb_build_object ('tenant', p_tenant,
                                             'connection', admin_connection_json (v_id)));
END
$$;

-- Deletes p_tenant's connection to p_connector (its sealed credential
-- with it); audits connection_deleted {connector, kind}.
CREATE OR REPLACE FUNCTION admin_connection_delete (p_tenant text, p_connector text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text;
    v_status text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant) THEN
        RETURN admin_no_tenant (p_tenant);
    END IF;
    DELETE FROM connections WHERE tenant_id = p_tenant AND connector = p_connector
    RETURNING kind, status INTO v_kind, v_status;
    IF NOT FOUND THEN
        RETURN admin_refusal (404, 'not_found',
            format ('tenant "%s" has no connection to "%s"', p_tenant, p_connector));
    END IF;
    PERFORM audit (p_tenant, 'admin', 'connection_deleted',
                   jsonb_build_object ('connector', p_connector, 'kind', v_kind));
    RETURN admin_answer (200, jsonb_build_object ('tenant', p_tenant, 'connector', p_connector,
                                                  'kind', v_kind, 'status', v_status,
                                                  'deleted', true));
END
$$;

-- Every key with the rows sealed under it (connections and connect
-- flows), the current first.
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
                                       WHERE f.key_id = k.id))
                 ORDER BY k.current DESC, k.created_at DESC, k.id), '[]'::jsonb)
                 FROM connection_keys k)));
END
$$;

-- Rows under a key that is not current, at most p_limit, in id order:
-- what the worker re-seals next. Secrets stay sealed.
CREATE OR REPLACE FUNCTION connection_reseal_batch (p_limit int)
RETURNS TABLE (id bigint, tenant_id text, connector text, key_id text, version bigint,
               access_token_enc bytea, refresh_token_enc bytea)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY
    SELECT c.id, c.tenant_id, c.connector, c.key_id, c.version, c.access_token_enc,
           c.refresh_token_enc
    FROM connections c
    WHERE c.key_id IS NOT NULL AND c.key_id IS DISTINCT FROM connection_key_current ()
      AND (c.access_token_enc IS NOT NULL OR c.refresh_token_enc IS NOT NULL)
    ORDER BY c.id LIMIT greatest (p_limit, 0);
END
$$;

-- Writes row p_id re-sealed under p_key_id, only if it still is version
-- p_version under p_from_key (a refresh or reconnect since then wins).
-- The version stays: the credential is the same. Audits
-- connection_key_rotated {connector, from, to} under the row's tenant.
-- Returns whether the row was written.
CREATE OR REPLACE FUNCTION connection_reseal (p_id bigint, p_version bigint, p_from_key text,
                                              p_key_id text, p_access bytea, p_refresh bytea)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_connector text;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    UPDATE connections SET access_token_enc = p_access, refresh_token_enc = p_refresh,
                           key_id = p_key_id
    WHERE id = p_id AND version = p_version AND key_id = p_from_key
    RETURNING tenant_id, connector INTO v_tenant, v_connector;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM audit (v_tenant, 'admin', 'connection_key_rotated',
                   jsonb_build_object ('connector', v_connector, 'from', p_from_key,
                                       'to', p_key_id));
    RETURN true;
END
$$;

-- After a reseal call: retires the keys that are not current and that no
-- connection or connect flow uses, and answers the current key, the rows
-- still under other keys and the keys retired now.
CREATE OR REPLACE FUNCTION connection_keys_settle ()
RETURNS TABLE (current_id text, remaining bigint, retired text[])
LANGUAGE plpgsql AS $$
DECLARE
    v_retired text[];
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    LOCK TABLE connection_keys IN SHARE ROW EXCLUSIVE MODE;
    WITH r AS (
        UPDATE connection_keys k SET retired_at = now ()
        WHERE NOT k.current AND k.retired_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM connections c WHERE c.key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM connect_flows f WHERE f.key_id = k.id)
        RETURNING k.id)
    SELECT coalesce (array_agg (r.id ORDER BY r.id), '{}') INTO v_retired FROM r;
    RETURN QUERY
    SELECT connection_key_current (),
           (SELECT count(*) FROM connections c
            WHERE c.key_id IS NOT NULL AND c.key_id IS DISTINCT FROM connection_key_current ()
              AND (c.access_token_enc IS NOT NULL OR c.refresh_token_enc IS NOT NULL)),
           v_retired;
END
$$;
