-- db/migrations/006_oauth_tokens.sql — what the token worker's /token,
-- /revoke and key-set steps need (workers/sb_oauth_token.c,
-- workers/sb_oauth_keys.c; docs/OAUTH.md, "The stateful half"): the
-- signing keys, the link from a refresh family to the code it came from,
-- and one function per step, each of which locks what it needs and decides
-- in one transaction (the worker's connection is shared: no transaction
-- stays open across loop turns).
--
-- Lookups by a code's or refresh token's digest are cross-tenant on
-- purpose (the client does not say whose it is): they run with
-- switchboard.system on, by digest only; everything after runs with
-- switchboard.tenant_id set to the row's tenant, under row-level security.
-- A refusal whose tenant is known is audited as token_refused under that
-- tenant by the function that refuses; nothing else changes on a refusal,
-- except a replayed code or a reused refresh token, which revoke the family
-- they belong to (RFC 6749 §4.1.2, OAuth 2.1 §4.3.1).
--
-- Outcomes are words the worker maps to RFC 6749 errors:
--   ok, unknown, used, client, redirect_uri, expired, revoked, reuse,
--   user_disabled, grant_revoked, scope.

-- ---------------------------------------------------------------------
-- Signing keys (global: one key set for the whole server). The Ed25519
-- seed is sealed with AES-256-GCM (common/sb_crypto.h, sb_aead_seal:
-- nonce 12 || ciphertext 32 || tag 16) under a key derived from the token
-- workers' --secret-key-file, with the kid as associated data, so a row's
-- seed cannot be moved to another kid and a row written without the secret
-- is never published or used. At most one key is current (retired_at
-- NULL): the partial unique index makes "create one if none is current"
-- race-safe (INSERT … ON CONFLICT DO NOTHING).

CREATE TABLE IF NOT EXISTS signing_keys (
    kid             text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9._-]{1,64}$'),
    public_key      bytea NOT NULL CHECK (octet_length (public_key) = 32),
    sealed_seed     bytea NOT NULL CHECK (octet_length (sealed_seed) = 12 + 32 + 16),
    created_at      timestamptz NOT NULL DEFAULT now (),
    retired_at      timestamptz,
    CHECK (retired_at IS NULL OR retired_at >= created_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS signing_keys_current
    ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

-- The current key, made from the candidate given when none is current.
-- Every token worker calls it with a fresh candidate when it needs the
-- key and has not read it for a few seconds; the first candidate to
-- commit wins, the others are dropped.
CREATE OR REPLACE FUNCTION signing_key_current (p_kid text, p_public bytea, p_sealed bytea)
RETURNS SETOF signing_keys
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO signing_keys (kid, public_key, sealed_seed)
    VALUES (p_kid, p_public, p_sealed)
    ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT * FROM signing_keys k WHERE k.retired_at IS NULL;
END
$$;

-- Rotation: the new key becomes current, the current one is retired (and
-- still published while tokens it signed may live), keys retired more than
-- 7 days ago are deleted. Returns the retired key's kid (NULL when there
-- was none). Rotations are serialised by the table lock (readers are not
-- blocked).
CREATE OR REPLACE FUNCTION signing_key_rotate (p_kid text, p_public bytea, p_sealed bytea)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_retired text;
BEGIN
    LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE;
    UPDATE signing_keys SET retired_at = now () WHERE retired_at IS NULL
    RETURNING kid INTO v_retired;
    INSERT INTO signing_keys (kid, public_key, sealed_seed) VALUES (p_kid, p_public, p_sealed);
    DELETE FROM signing_keys WHERE retired_at < now () - interval '7 days';
    RETURN v_retired;
END
$$;

-- ---------------------------------------------------------------------
-- A refresh family remembers the code it was issued from, so that the
-- code's second redemption revokes it; one family per code.

ALTER TABLE refresh_families ADD COLUMN IF NOT EXISTS code_hash bytea
    CHECK (octet_length (code_hash) = 32);
CREATE UNIQUE INDEX IF NOT EXISTS refresh_families_code
    ON refresh_families (code_hash) WHERE code_hash IS NOT NULL;

-- An audit row for p_tenant, written as that tenant (what the worker
-- records for a refusal it decides itself, such as a PKCE mismatch).
CREATE OR REPLACE FUNCTION oauth_audit (p_tenant text, p_actor text, p_action text, p_detail jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    PERFORM audit (p_tenant, p_actor, p_action, p_detail);
END
$$;

-- The user may still use what the grant gave: the user is not disabled and
-- its grant to the client exists and is not revoked. Runs as the tenant.
CREATE OR REPLACE FUNCTION oauth_grant_state (p_tenant text, p_user bigint, p_client text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM users u WHERE u.tenant_id = p_tenant AND u.id = p_user
                                           AND u.disabled_at IS NULL) THEN
        RETURN 'user_disabled';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM oauth_grants g
                   WHERE g.tenant_id = p_tenant AND g.user_id = p_user AND g.client_id = p_client
                     AND g.revoked_at IS NULL) THEN
        RETURN 'grant_revoked';
    END IF;
    RETURN 'ok';
END
$$;

-- ---------------------------------------------------------------------
-- Redeeming an authorization code (grant_type=authorization_code).
--
-- Called twice by the worker. First with p_refresh_hash NULL: the checks
-- only (the code exists, is unused, unexpired, was issued to p_client for
-- exactly p_redirect_uri, its user and grant still stand), returning the
-- stored PKCE challenge for the worker to verify the code_verifier against
-- (sb_oauth_pkce_verify). A refusal changes nothing — a wrong verifier
-- does not spend the code, so a party that intercepted a code but not its
-- verifier cannot burn it for the client that holds both — with one
-- exception: a code already used is a replay, and the family its first
-- redemption issued is revoked (reason 'reuse').
-- Then with the new refresh token's digest: the same checks again under
-- the code's row lock, and if they still hold the code is spent and the
-- refresh family (linked to the code) and its first token are created, in
-- this one transaction; token_issued is audited. Two redemptions racing:
-- the second waits on the row lock, then finds the code used (a replay).

CREATE OR REPLACE FUNCTION oauth_code_redeem (p_code_hash bytea, p_client text, p_redirect_uri text,
                                              p_refresh_hash bytea, p_refresh_ttl_s int)
RETURNS TABLE (outcome text, tenant_id text, user_id bigint, scope text, resource text,
               code_challenge text, family_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_code oauth_codes%ROWTYPE;
    v_state text;
    v_family bigint;
    v_revoked int;
    v_detail jsonb;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    IF p_refresh_hash IS NULL THEN
        SELECT * INTO v_code FROM oauth_codes c WHERE c.code_hash = p_code_hash;
    ELSE
        SELECT * INTO v_code FROM oauth_codes c WHERE c.code_hash = p_code_hash FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown', NULL::text, NULL::bigint, NULL::text, NULL::text,
                            NULL::text, NULL::bigint;
        RETURN;
    END IF;
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', v_code.tenant_id, true);
    v_detail := jsonb_build_object ('grant_type', 'authorization_code', 'client_id', p_client,
                                    'user', 'user:' || v_code.user_id);
    IF v_code.used_at IS NOT NULL THEN
        UPDATE refresh_families f SET revoked_at = now (), revoked_reason = 'reuse'
         WHERE f.tenant_id = v_code.tenant_id AND f.code_hash = p_code_hash AND f.revoked_at IS NULL;
        GET DIAGNOSTICS v_revoked = ROW_COUNT;
        v_state := 'used';
        v_detail := v_detail || jsonb_build_object ('families_revoked', v_revoked);
    ELSIF v_code.client_id <> p_client THEN
        v_state := 'client';
    ELSIF v_code.expires_at <= now () THEN
        v_state := 'expired';
    ELSIF v_code.redirect_uri <> p_redirect_uri THEN
        v_state := 'redirect_uri';
    ELSE
        v_state := oauth_grant_state (v_code.tenant_id, v_code.user_id, v_code.client_id);
    END IF;
    IF v_state <> 'ok' THEN
        PERFORM audit (v_code.tenant_id, p_client, 'token_refused',
                       v_detail || jsonb_build_object ('reason', 'code_' || v_state));
        RETURN QUERY SELECT v_state, v_code.tenant_id, NULL::bigint, NULL::text, NULL::text,
                            NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_refresh_hash IS NULL THEN
        RETURN QUERY SELECT 'ok', v_code.tenant_id, v_code.user_id, v_code.scope, v_code.resource,
                            v_code.code_challenge, NULL::bigint;
        RETURN;
    END IF;
    UPDATE oauth_codes c SET used_at = now () WHERE c.code_hash = p_code_hash;
    INSERT INTO refresh_families (tenant_id, user_id, client_id, scope, resource, code_hash)
    VALUES (v_code.tenant_id, v_code.user_id, v_code.client_id, v_code.scope, v_code.resource,
            p_code_hash)
    RETURNING id INTO v_family;
    INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, generation, expires_at)
    VALUES (p_refresh_hash, v_code.tenant_id, v_family, 1,
            now () + p_refresh_ttl_s * interval '1 second');
    PERFORM audit (v_code.tenant_id, 'user:' || v_code.user_id, 'token_issued',
                   v_detail || jsonb_build_object ('scope', v_code.scope, 'family', v_family,
                                                   'generation', 1));
    RETURN QUERY SELECT 'ok', v_code.tenant_id, v_code.user_id, v_code.scope, v_code.resource,
                        v_code.code_challenge, v_family;
END
$$;

-- ---------------------------------------------------------------------
-- Rotating a refresh token (grant_type=refresh_token): the token found by
-- digest, its family locked, then in order: another client's token
-- ('client', nothing changes), a revoked family ('revoked'), a token
-- already rotated — reuse: the whole family is revoked (reason 'reuse')
-- and refresh_reused audited ('reuse') —, an expired token ('expired'), the
-- user disabled or the grant revoked, a scope wider than the family's
-- ('scope'; p_scope NULL: the family's). Then the token is marked rotated
-- and its successor (p_new_hash, generation + 1, p_ttl_s from now) made
-- current. The family keeps its scope: narrowing applies to the access
-- token of this exchange only (RFC 6749 §6).

CREATE OR REPLACE FUNCTION oauth_refresh_rotate (p_token_hash bytea, p_client text, p_scope text,
                                                 p_new_hash bytea, p_ttl_s int)
RETURNS TABLE (outcome text, tenant_id text, user_id bigint, scope text, resource text,
               family_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_token refresh_tokens%ROWTYPE;
    v_family refresh_families%ROWTYPE;
    v_state text;
    v_scope text;
    v_detail jsonb;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT t.tenant_id INTO v_tenant FROM refresh_tokens t WHERE t.token_hash = p_token_hash;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown', NULL::text, NULL::bigint, NULL::text, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', v_tenant, true);
    -- The family's lock first, then the token as it is now: a rotation
    -- that held the lock has committed by the time we read it.
    SELECT f.* INTO v_family FROM refresh_families f, refresh_tokens t
     WHERE t.token_hash = p_token_hash AND f.tenant_id = t.tenant_id AND f.id = t.family_id
       FOR UPDATE OF f;
    SELECT * INTO v_token FROM refresh_tokens t WHERE t.token_hash = p_token_hash;
    v_scope := coalesce (p_scope, v_family.scope);
    v_detail := jsonb_build_object ('grant_type', 'refresh_token', 'client_id', p_client,
                                    'user', 'user:' || v_family.user_id, 'family', v_family.id,
                                    'generation', v_token.generation);
    IF v_family.client_id <> p_client THEN
        v_state := 'client';
    ELSIF v_family.revoked_at IS NOT NULL THEN
        v_state := 'revoked';
    ELSIF v_token.rotated_at IS NOT NULL THEN
        UPDATE refresh_families f SET revoked_at = now (), revoked_reason = 'reuse'
         WHERE f.tenant_id = v_tenant AND f.id = v_family.id;
        PERFORM audit (v_tenant, p_client, 'refresh_reused', v_detail);
        RETURN QUERY SELECT 'reuse', v_tenant, NULL::bigint, NULL::text, NULL::text, v_family.id;
        RETURN;
    ELSIF v_token.expires_at <= now () THEN
        v_state := 'expired';
    ELSIF NOT (string_to_array (v_scope, ' ') <@ string_to_array (v_family.scope, ' ')) THEN
        v_state := 'scope';
    ELSE
        v_state := oauth_grant_state (v_tenant, v_family.user_id, v_family.client_id);
    END IF;
    IF v_state <> 'ok' THEN
        PERFORM audit (v_tenant, p_client, 'token_refused',
                       v_detail || jsonb_build_object ('reason', 'refresh_' || v_state));
        RETURN QUERY SELECT v_state, v_tenant, NULL::bigint, NULL::text, NULL::text, v_family.id;
        RETURN;
    END IF;
    UPDATE refresh_tokens t SET rotated_at = now () WHERE t.token_hash = p_token_hash;
    INSERT INTO refresh_tokens (token_hash, tenant_id, family_id, generation, expires_at)
    VALUES (p_new_hash, v_tenant, v_family.id, v_token.generation + 1,
            now () + p_ttl_s * interval '1 second');
    PERFORM audit (v_tenant, 'user:' || v_family.user_id, 'token_issued',
                   v_detail || jsonb_build_object ('scope', v_scope,
                                                   'generation', v_token.generation + 1));
    RETURN QUERY SELECT 'ok', v_tenant, v_family.user_id, v_scope, v_family.resource, v_family.id;
END
$$;

-- ---------------------------------------------------------------------
-- Revocation (RFC 7009) of a refresh token by the client it was issued
-- to: its whole family is revoked (reason 'revocation') and token_revoked
-- audited ('ok'); a family already revoked stays as it is ('revoked'); an
-- unknown token ('unknown') or another client's ('client', audited as
-- token_refused) changes nothing — the endpoint answers 200 for all of
-- them, so it tells no one whether a token exists.

CREATE OR REPLACE FUNCTION oauth_refresh_revoke (p_token_hash bytea, p_client text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant text;
    v_family refresh_families%ROWTYPE;
    v_detail jsonb;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT t.tenant_id INTO v_tenant FROM refresh_tokens t WHERE t.token_hash = p_token_hash;
    IF NOT FOUND THEN
        RETURN 'unknown';
    END IF;
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', v_tenant, true);
    SELECT f.* INTO v_family FROM refresh_families f, refresh_tokens t
     WHERE t.token_hash = p_token_hash AND f.tenant_id = t.tenant_id AND f.id = t.family_id
       FOR UPDATE OF f;
    v_detail := jsonb_build_object ('client_id', p_client, 'user', 'user:' || v_family.user_id,
                                    'family', v_family.id);
    IF v_family.client_id <> p_client THEN
        PERFORM audit (v_tenant, p_client, 'token_refused',
                       v_detail || jsonb_build_object ('reason', 'revoke_client'));
        RETURN 'client';
    END IF;
    IF v_family.revoked_at IS NOT NULL THEN
        RETURN 'revoked';
    END IF;
    UPDATE refresh_families f SET revoked_at = now (), revoked_reason = 'revocation'
     WHERE f.tenant_id = v_tenant AND f.id = v_family.id;
    PERFORM audit (v_tenant, p_client, 'token_revoked', v_detail);
    RETURN 'ok';
END
$$;
