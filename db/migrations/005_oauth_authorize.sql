-- db/migrations/005_oauth_authorize.sql — the three steps of a sign-in at
-- /authorize (workers/sb_oauth_authorize.c), each one statement on the
-- token worker's shared connection, so no transaction stays open while the
-- password is hashed on another thread:
--
--   oauth_signin_lookup   the user a form names, by (tenant, lower (email)),
--                         with its hash, whether it is disabled, and how
--                         many sign-ins failed for that email lately (the
--                         per-email brake);
--   oauth_signin_failed   a refused sign-in, audited under its tenant;
--   oauth_code_issue      the consent (oauth_grants), the code (its SHA-256
--                         only) and the audit rows, in one transaction.
--
-- The tenant comes from the form, never from the job's envelope (which is
-- the reserved `_oauth`). Each function sets switchboard.tenant_id for its
-- own transaction only (set_config (…, true)), so row-level security
-- (004's rules) applies to every row it reads or writes.

-- The user `p_email` of tenant `p_tenant`, as one row: whether the tenant
-- exists, the user's id and hash (NULL when there is no such user),
-- whether it is disabled, and the signin_failed rows for this email in the
-- last `p_window_s` seconds. An unknown tenant is a row too (false, NULL…):
-- the caller then hashes against a dummy, so both take the same time.
CREATE OR REPLACE FUNCTION oauth_signin_lookup (p_tenant text, p_email text, p_window_s int)
RETURNS TABLE (o_tenant_known boolean, o_user_id bigint, o_password_hash text,
               o_disabled boolean, o_failures int)
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = p_tenant) THEN
        RETURN QUERY SELECT false, NULL::bigint, NULL::text, false, 0;
        RETURN;
    END IF;
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    RETURN QUERY
        SELECT true, u.id, u.password_hash, coalesce (u.disabled_at IS NOT NULL, false),
               (SELECT count (*)::int FROM audit_log a
                 WHERE a.tenant_id = p_tenant AND a.action = 'signin_failed'
                   AND a.actor = lower (p_email)
                   AND a.at > now () - p_window_s * interval '1 second')
          FROM (SELECT 1) one
          LEFT JOIN users u ON u.tenant_id = p_tenant AND lower (u.email) = lower (p_email);
END
$$;

-- A sign-in refused for `p_email` of an existing tenant: audited as
-- signin_failed with the email (lowercased) as actor. The detail says why
-- (password, unknown_user, disabled, braked) for the tenant's
-- administrators; it never holds the password.
CREATE OR REPLACE FUNCTION oauth_signin_failed (p_tenant text, p_email text, p_client_id text,
                                                p_reason text, p_remote text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = p_tenant) THEN
        RETURN;
    END IF;
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    PERFORM audit (p_tenant, lower (p_email), 'signin_failed',
                   jsonb_build_object ('client_id', p_client_id, 'reason', p_reason,
                                       'remote', p_remote));
END
$$;

-- A user who proved their password allowed a client: records the consent
-- (one oauth_grants row per user and client, its scope the one granted
-- now), stores the code's SHA-256 (`p_code_hash`, hex) with everything
-- /token checks, valid `p_ttl_s` seconds, and audits signin and
-- code_issued. Returns true; false (and changes nothing) when the user was
-- disabled or removed, or the client revoked, since the lookup.
CREATE OR REPLACE FUNCTION oauth_code_issue (p_tenant text, p_user_id bigint, p_client_id text,
                                             p_scope text, p_code_hash text, p_redirect_uri text,
                                             p_challenge text, p_resource text, p_ttl_s int,
                                             p_remote text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_subject text := 'user:' || p_user_id;
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    PERFORM 1 FROM users u
     WHERE u.tenant_id = p_tenant AND u.id = p_user_id AND u.disabled_at IS NULL
       FOR SHARE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM oauth_clients c
     WHERE c.client_id = p_client_id AND c.revoked_at IS NULL
       FOR SHARE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO oauth_grants (tenant_id, user_id, client_id, scope)
    VALUES (p_tenant, p_user_id, p_client_id, p_scope)
    ON CONFLICT (tenant_id, user_id, client_id)
    DO UPDATE SET scope = EXCLUDED.scope, granted_at = now (), revoked_at = NULL;
    INSERT INTO oauth_codes (code_hash, tenant_id, user_id, client_id, redirect_uri,
                             code_challenge, scope, resource, expires_at)
    VALUES (decode (p_code_hash, 'hex'), p_tenant, p_user_id, p_client_id, p_redirect_uri,
            p_challenge, p_scope, nullif (p_resource, ''),
            now () + p_ttl_s * interval '1 second');
    PERFORM audit (p_tenant, v_subject, 'signin',
                   jsonb_build_object ('client_id', p_client_id, 'remote', p_remote));
    PERFORM audit (p_tenant, v_subject, 'code_issued',
                   jsonb_build_object ('client_id', p_client_id, 'scope', p_scope,
                                       'redirect_uri', p_redirect_uri));
    RETURN true;
END
$$;
