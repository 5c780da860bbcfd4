-- db/migrations/012_connection_refresh.sql — reading a connection's
-- credential and refreshing it exactly once (issue 21; proto/PROTOCOL.md
-- "Connections", docs/CONNECTIONS.md "Credentials and refresh",
-- workers/sb_connections.c). One statement per step, each a function that
-- locks what it needs: the token worker's connection is shared by all its
-- jobs, so no transaction stays open while the provider is asked.
--
-- The refresh lease: a worker claims lease_owner/lease_until only when the
-- lease is free or past, only for the version it saw (a refresh that
-- happened meanwhile is not redone) and only when no backoff holds; it
-- saves the new access and refresh tokens in one statement WHERE
-- lease_owner is still itself, so the rotated refresh token is never
-- stored apart from its access token. Every function answers the row as
-- connection_row says, so the worker reads one shape.

-- What the worker reads of a connection: secrets sealed (bytea), the
-- seconds left on the access token (NULL: no expiry known), whether
-- another worker's lease is in force, and the seconds until a backoff
-- ends (0: none).
CREATE OR REPLACE FUNCTION connection_row (c connections, p_claimed boolean)
RETURNS TABLE (id bigint, tenant_id text, connector text, kind text, status text,
               status_detail text, access_token_enc bytea, refresh_token_enc bytea,
               key_id text, expires_in bigint, vars jsonb, version bigint,
               leased boolean, retry_in bigint, refresh_failures integer, claimed boolean)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.tenant_id, c.connector, c.kind, c.status, c.status_detail,
           c.access_token_enc, c.refresh_token_enc, c.key_id,
           CASE WHEN c.expires_at IS NULL THEN NULL
                ELSE floor (extract (epoch FROM c.expires_at - now ()))::bigint END,
           c.vars, c.version,
           c.lease_until IS NOT NULL AND c.lease_until > now () AND NOT coalesce (p_claimed, false),
           CASE WHEN c.retry_at IS NULL OR c.retry_at <= now () THEN 0
                ELSE ceil (extract (epoch FROM c.retry_at - now ()))::bigint END,
           c.refresh_failures, coalesce (p_claimed, false)
$$;

-- The tenant's connection for a connector (no row: none).
CREATE OR REPLACE FUNCTION connection_credential_read (p_tenant text, p_connector text)
RETURNS TABLE (id bigint, tenant_id text, connector text, kind text, status text,
               status_detail text, access_token_enc bytea, refresh_token_enc bytea,
               key_id text, expires_in bigint, vars jsonb, version bigint,
               leased boolean, retry_in bigint, refresh_failures integer, claimed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v connections;
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    SELECT * INTO v FROM connections c WHERE c.tenant_id = p_tenant AND c.connector = p_connector;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM connection_row (v, false);
    END IF;
END
$$;

-- Claims the refresh lease of connection p_id for p_owner, for
-- p_lease_s seconds, when the row is still at p_seen, connected, OAuth
-- with a refresh token, its lease free or past and no backoff holds.
-- Answers the row with claimed true, or as it is (claimed false: the
-- version moved, the status changed, another holds the lease, or a
-- backoff holds — the row says which).
CREATE OR REPLACE FUNCTION connection_refresh_claim (p_tenant text, p_id bigint, p_seen bigint,
                                                     p_owner text, p_lease_s integer)
RETURNS TABLE (id bigint, tenant_id text, connector text, kind text, status text,
               status_detail text, access_token_enc bytea, refresh_token_enc bytea,
               key_id text, expires_in bigint, vars jsonb, version bigint,
               leased boolean, retry_in bigint, refresh_failures integer, claimed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v connections;
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    UPDATE connections c SET lease_owner = p_owner,
                             lease_until = now () + make_interval (secs => p_lease_s)
     WHERE c.id = p_id AND c.tenant_id = p_tenant AND c.version = p_seen
       AND c.status = 'connected' AND c.kind = 'oauth2' AND c.refresh_token_enc IS NOT NULL
       AND (c.lease_until IS NULL OR c.lease_until <= now ())
       AND (c.retry_at IS NULL OR c.retry_at <= now ())
    RETURNING * INTO v;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM connection_row (v, true);
        RETURN;
    END IF;
    SELECT * INTO v FROM connections c WHERE c.id = p_id AND c.tenant_id = p_tenant;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM connection_row (v, false);
    END IF;
END
$$;

-- Saves a refresh: the new access token and the refresh token (the
-- rotated one, or the old one re-sealed under the current key), both
-- sealed under p_key_id, in one statement, only while p_owner holds the
-- lease. Kept vars are merged; version +1; lease, failures and backoff
-- cleared. No row: the lease was lost (another worker may have refreshed).
CREATE OR REPLACE FUNCTION connection_refresh_save (p_tenant text, p_id bigint, p_owner text,
                                                    p_access bytea, p_refresh bytea,
                                                    p_key_id text, p_expires_in bigint,
                                                    p_scopes text, p_vars jsonb)
RETURNS TABLE (id bigint, tenant_id text, connector text, kind text, status text,
               status_detail text, access_token_enc bytea, refresh_token_enc bytea,
               key_id text, expires_in bigint, vars jsonb, version bigint,
               leased boolean, retry_in bigint, refresh_failures integer, claimed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v connections;
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    UPDATE connections c SET access_token_enc = p_access, refresh_token_enc = p_refresh,
                             key_id = p_key_id,
                             expires_at = CASE WHEN p_expires_in IS NULL THEN NULL
                                               ELSE now () + make_interval (secs => p_expires_in) END,
                             scopes = coalesce (p_scopes, c.scopes),
                             vars = c.vars || coalesce (p_vars, '{}'::jsonb),
                             version = c.version + 1, status_detail = NULL,
                             lease_owner = NULL, lease_until = NULL,
                             refresh_failures = 0, retry_at = NULL,
                             refreshed_at = now (), updated_at = now ()
     WHERE c.id = p_id AND c.tenant_id = p_tenant AND c.lease_owner = p_owner
       AND c.status = 'connected'
    RETURNING * INTO v;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM connection_row (v, true);
    END IF;
END
$$;

-- A refresh failed while p_owner held the lease. Permanent (the provider
-- refused the grant): status broken, status_detail the sentence, audit
-- connection_broken. Transient: refresh_failures +1 and retry_at after an
-- exponential backoff (p_base_s doubling per failure, at most p_cap_s,
-- with jitter between half and all of it), or p_retry_after_s when the
-- provider asked for longer. The lease is released either way. Answers
-- the row (claimed false), or none when the lease was lost.
CREATE OR REPLACE FUNCTION connection_refresh_failed (p_tenant text, p_id bigint, p_owner text,
                                                      p_permanent boolean, p_detail text,
                                                      p_base_s integer, p_cap_s integer,
                                                      p_retry_after_s integer)
RETURNS TABLE (id bigint, tenant_id text, connector text, kind text, status text,
               status_detail text, access_token_enc bytea, refresh_token_enc bytea,
               key_id text, expires_in bigint, vars jsonb, version bigint,
               leased boolean, retry_in bigint, refresh_failures integer, claimed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v connections;
    v_backoff double precision;
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    IF p_permanent THEN
        UPDATE connections c SET status = 'broken', status_detail = left (p_detail, 512),
                                 lease_owner = NULL, lease_until = NULL, updated_at = now ()
         WHERE c.id = p_id AND c.tenant_id = p_tenant AND c.lease_owner = p_owner
        RETURNING * INTO v;
        IF FOUND THEN
            PERFORM audit (p_tenant, 'token-worker', 'connection_broken',
                           jsonb_build_object ('connector', v.connector, 'version', v.version,
                                               'detail', left (p_detail, 512)));
        END IF;
    ELSE
        SELECT least (p_cap_s::double precision,
                      p_base_s * power (2, least (c.refresh_failures, 20)))
          INTO v_backoff
          FROM connections c WHERE c.id = p_id AND c.tenant_id = p_tenant;
        v_backoff := v_backoff * (0.5 + random () / 2);
        UPDATE connections c SET refresh_failures = c.refresh_failures + 1,
                                 retry_at = now () + make_interval (secs =>
                                     greatest (v_backoff, coalesce (p_retry_after_s, 0))),
                                 status_detail = left (p_detail, 512),
                                 lease_owner = NULL, lease_until = NULL, updated_at = now ()
         WHERE c.id = p_id AND c.tenant_id = p_tenant AND c.lease_owner = p_owner
        RETURNING * INTO v;
    END IF;
    IF v.id IS NOT NULL THEN
        RETURN QUERY SELECT * FROM connection_row (v, false);
    END IF;
END
$$;

-- Gives a lease back without a refresh (the worker could not try: the
-- connector is not loaded, the keys could not be had).
CREATE OR REPLACE FUNCTION connection_refresh_release (p_tenant text, p_id bigint, p_owner text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    UPDATE connections c SET lease_owner = NULL, lease_until = NULL
     WHERE c.id = p_id AND c.tenant_id = p_tenant AND c.lease_owner = p_owner;
END
$$;

-- The proactive sweep: claims for p_owner at most p_limit connected OAuth
-- connections of any tenant whose access token ends within p_window_s,
-- whose lease is free or past and whose backoff is over, soonest first,
-- skipping rows another worker is claiming (FOR UPDATE SKIP LOCKED).
CREATE OR REPLACE FUNCTION connection_sweep_claim (p_owner text, p_window_s integer,
                                                   p_limit integer, p_lease_s integer)
RETURNS TABLE (id bigint, tenant_id text, connector text, kind text, status text,
               status_detail text, access_token_enc bytea, refresh_token_enc bytea,
               key_id text, expires_in bigint, vars jsonb, version bigint,
               leased boolean, retry_in bigint, refresh_failures integer, claimed boolean)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    RETURN QUERY
    WITH due AS (
        SELECT c.id FROM connections c
         WHERE c.status = 'connected' AND c.kind = 'oauth2' AND c.refresh_token_enc IS NOT NULL
           AND c.expires_at < now () + make_interval (secs => p_window_s)
           AND (c.lease_until IS NULL OR c.lease_until <= now ())
           AND (c.retry_at IS NULL OR c.retry_at <= now ())
         ORDER BY c.expires_at
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED),
    taken AS (
        UPDATE connections c SET lease_owner = p_owner,
                                 lease_until = now () + make_interval (secs => p_lease_s)
          FROM due WHERE c.id = due.id
        RETURNING c.*)
    SELECT r.* FROM taken, connection_row (taken::connections, true) r;
END
$$;
