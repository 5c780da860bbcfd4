-- db/migrations/013_connect_flows.sql — the steps of the connect flow
-- (workers/sb_connect.c; proto/PROTOCOL.md "Connections", "Connect";
-- docs/CONNECTIONS.md "The connect flow"), one function per step:
--
--   * connect_page_info (): what the confirmation page shows about the
--     ticket's tenant and subject (does the tenant exist, the user's email);
--   * connect_flow_create (): a flow starts (the page's POST): its state's
--     and browser cookie's SHA-256, who started it, the sealed PKCE
--     verifier; flows past their expiry are dropped on the way;
--   * connect_flow_take (): the provider's redirect back takes the flow by
--     its state's digest, once (DELETE … RETURNING), expired or not;
--   * connect_refused (): a refusal whose tenant is known (a bad ticket, a
--     browser without the flow's cookie) to the audit log.
--
-- Lookups by a state's digest are cross-tenant on purpose (the provider
-- does not say whose it is): they run with switchboard.system on, by
-- digest only. What a flow stores at its end (the tokens) goes through
-- connection_store (migration 011), under the flow's tenant. Depends on
-- 001, 004, 010.

-- The page's facts: whether `p_tenant` exists, and the email of
-- `p_subject` when it is "user:<id>" of that tenant (NULL otherwise).
CREATE OR REPLACE FUNCTION connect_page_info (p_tenant text, p_subject text)
RETURNS TABLE (tenant_known boolean, email text)
LANGUAGE plpgsql AS $$
DECLARE
    v_email text;
BEGIN
    PERFORM set_config ('switchboard.system', '', true);
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    IF NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = p_tenant) THEN
        RETURN QUERY SELECT false, NULL::text;
        RETURN;
    END IF;
    IF p_subject ~ '^user:[0-9]{1,18}$' THEN
        SELECT u.email INTO v_email FROM users u
        WHERE u.tenant_id = p_tenant AND u.id = substr (p_subject, 6)::bigint;
    END IF;
    RETURN QUERY SELECT true, v_email;
END
$$;

-- Starts a flow. Returns false, storing nothing, when the tenant is not in
-- `tenants` (deleted since the ticket was signed).
CREATE OR REPLACE FUNCTION connect_flow_create (p_state_hash bytea, p_tenant text, p_subject text,
                                                p_connector text, p_verifier_enc bytea,
                                                p_key_id text, p_cookie_hash bytea,
                                                p_redirect_uri text, p_ttl_s int)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    -- Flows nobody came back for: gone (any tenant's: the sweep is cheap
    -- on the expiry index, and a flow holds a sealed verifier only).
    PERFORM set_config ('switchboard.system', 'on', true);
    DELETE FROM connect_flows f WHERE f.expires_at < now ();
    PERFORM set_config ('switchboard.system', '', true);
    IF NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = p_tenant) THEN
        RETURN false;
    END IF;
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    INSERT INTO connect_flows (state_hash, tenant_id, subject, connector, verifier_enc, key_id,
                               cookie_hash, redirect_uri, expires_at)
    VALUES (p_state_hash, p_tenant, p_subject, p_connector, p_verifier_enc, p_key_id,
            p_cookie_hash, p_redirect_uri, now () + p_ttl_s * interval '1 second');
    RETURN true;
END
$$;

-- Takes the flow of `p_state_hash`, once: outcome 'ok' (the flow's
-- fields), 'expired' (tenant, subject and connector set, the flow gone)
-- or 'unknown' (no such flow: never made, already used, or swept).
-- Verifier and cookie digest come back as hex.
CREATE OR REPLACE FUNCTION connect_flow_take (p_state_hash bytea)
RETURNS TABLE (outcome text, tenant_id text, subject text, connector text, verifier_enc text,
               key_id text, cookie_hash text, redirect_uri text)
LANGUAGE plpgsql AS $$
DECLARE
    v_flow connect_flows%ROWTYPE;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    DELETE FROM connect_flows f WHERE f.state_hash = p_state_hash RETURNING * INTO v_flow;
    PERFORM set_config ('switchboard.system', '', true);
    IF v_flow.state_hash IS NULL THEN
        RETURN QUERY SELECT 'unknown', NULL::text, NULL::text, NULL::text, NULL::text,
                            NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    PERFORM set_config ('switchboard.tenant_id', v_flow.tenant_id, true);
    IF v_flow.expires_at <= now () THEN
        RETURN QUERY SELECT 'expired', v_flow.tenant_id, v_flow.subject, v_flow.connector,
                            NULL::text, NULL::text, NULL::text, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'ok', v_flow.tenant_id, v_flow.subject, v_flow.connector,
                        encode (v_flow.verifier_enc, 'hex'), v_flow.key_id,
                        encode (v_flow.cookie_hash, 'hex'), v_flow.redirect_uri;
END
$$;

-- A refused connect step of a known tenant to its audit log:
-- connect_refused {connector, reason} by `p_subject`. Returns false,
-- writing nothing, when the tenant is not in `tenants`.
CREATE OR REPLACE FUNCTION connect_refused (p_tenant text, p_subject text, p_connector text,
                                            p_reason text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.system', '', true);
    RETURN audit_refusal (p_tenant, p_subject, 'connect_refused',
                          jsonb_build_object ('connector', p_connector, 'reason', p_reason));
END
$$;
