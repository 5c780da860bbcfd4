-- db/migrations/009_audit_refusals.sql — refused attempts on another's
-- data reach the audit log (DESIGN §3), logged under the tenant that
-- attempted them, the attempting subject as actor:
--
--   * audit_refusal (): what a gateway refused (another's session, a token
--     for another audience, a scope the token lacks) and reported through
--     the token service's op audit/record (workers/sb_audit.c);
--   * task_refused: the task store's get, update and cancel of a task that
--     exists but is another tenant's or another user's. The caller still
--     gets what it got before (no row, false): another's task stays
--     indistinguishable from none. A taskId nobody holds is not recorded
--     (a guess is no one's data), nor is the caller's own expired task.
--
-- A tenant `tenants` does not list cannot own an audit row (its foreign
-- key): such a refusal is not recorded here, and audit_refusal says so
-- (false), for the worker to log it instead. Depends on 001, 003, 004.

-- Records `p_action` by `p_actor` for `p_tenant` under the tenant's
-- row-level security. Returns false, writing nothing, when the tenant is
-- not in `tenants`.
CREATE OR REPLACE FUNCTION audit_refusal (p_tenant text, p_actor text, p_action text,
                                          p_detail jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants n WHERE n.id = p_tenant) THEN
        RETURN false;
    END IF;
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    PERFORM audit (p_tenant, p_actor, p_action, p_detail);
    RETURN true;
END
$$;

-- Called by a task function that found no task of p_tenant and p_subject
-- with id p_id: when a live task of that id is someone else's, records
-- task_refused under p_tenant ({"op", "reason": other_tenant|other_user}).
-- The cross-tenant look needs switchboard.system for one statement; the
-- caller's tenant setting is put back before anything else runs.
CREATE OR REPLACE FUNCTION task_refusal (p_tenant text, p_id text, p_subject text, p_op text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_other_tenant boolean;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    SELECT bool_or (t.tenant_id <> p_tenant) INTO v_other_tenant
    FROM tasks t
    WHERE t.id = p_id AND t.expires_at > now ()
      AND NOT (t.tenant_id = p_tenant AND t.subject = p_subject);
    PERFORM set_config ('switchboard.system', 'off', true);
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    IF v_other_tenant IS NULL THEN
        RETURN;                 -- no such task of anyone else
    END IF;
    PERFORM audit_refusal (p_tenant, p_subject, 'task_refused',
                           jsonb_build_object ('op', p_op,
                                               'reason', CASE WHEN v_other_tenant
                                                              THEN 'other_tenant'
                                                              ELSE 'other_user' END));
END
$$;

-- task_get as in 003, and another's task is audited.
CREATE OR REPLACE FUNCTION task_get (p_tenant text, p_id text, p_subject text)
RETURNS SETOF task_view
LANGUAGE plpgsql AS $$
DECLARE
    v_message constant text := 'The task stopped: the process running it did not report back '
                               'before its deadline.';
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    UPDATE tasks t
    SET status = 'failed', status_message = v_message,
        error = json_build_object ('code', -32603, 'message', v_message),
        updated_at = now ()
    WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
      AND t.status = 'working' AND t.run_deadline <= now () AND t.expires_at > now ();
    RETURN QUERY
        SELECT v.* FROM tasks t, LATERAL task_view_of (t) v
        WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
          AND t.expires_at > now ();
    IF NOT FOUND THEN
        PERFORM task_refusal (p_tenant, p_id, p_subject, 'get');
    END IF;
END
$$;

-- task_update as in 003, and another's task is audited.
CREATE OR REPLACE FUNCTION task_update (p_tenant text, p_id text, p_subject text, p_responses jsonb)
RETURNS SETOF task_resume
LANGUAGE plpgsql AS $$
DECLARE
    v_task      tasks%ROWTYPE;
    v_answered  jsonb;
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    SELECT * INTO v_task FROM tasks t
    WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
      AND t.expires_at > now ()
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM task_refusal (p_tenant, p_id, p_subject, 'update');
        RETURN;
    END IF;
    IF v_task.status <> 'input_required' OR jsonb_typeof (p_responses) <> 'object' THEN
        RETURN NEXT ROW (false, NULL, NULL, NULL, NULL, NULL, NULL)::task_resume;
        RETURN;
    END IF;
    SELECT coalesce (jsonb_object_agg (r.key, r.value), '{}'::jsonb) INTO v_answered
    FROM jsonb_each (p_responses) r
    WHERE v_task.input_requests ? r.key;
    IF v_answered = '{}'::jsonb THEN
        RETURN NEXT ROW (false, NULL, NULL, NULL, NULL, NULL, NULL)::task_resume;
        RETURN;
    END IF;
    v_task.inputs := v_task.inputs || v_answered;
    v_task.input_requests := v_task.input_requests
                             - ARRAY (SELECT jsonb_object_keys (v_answered));
    IF v_task.input_requests <> '{}'::jsonb THEN
        UPDATE tasks t
        SET inputs = v_task.inputs, input_requests = v_task.input_requests, updated_at = now ()
        WHERE t.tenant_id = p_tenant AND t.id = p_id;
        RETURN NEXT ROW (false, NULL, NULL, NULL, NULL, NULL, NULL)::task_resume;
        RETURN;
    END IF;
    UPDATE tasks t
    SET status = 'working', status_message = NULL, inputs = v_task.inputs,
        input_requests = NULL, round = t.round + 1,
        run_deadline = now () + t.run_ms * interval '1 millisecond',
        updated_at = now ()
    WHERE t.tenant_id = p_tenant AND t.id = p_id;
    RETURN NEXT ROW (true, v_task.connector, v_task.tool, v_task.args, v_task.inputs::text,
                     v_task.caps, v_task.round + 1)::task_resume;
END
$$;

-- task_cancel as in 003, and another's task is audited.
CREATE OR REPLACE FUNCTION task_cancel (p_tenant text, p_id text, p_subject text)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    UPDATE tasks t
    SET status = 'cancelled', status_message = 'Cancelled by the client.',
        input_requests = NULL, updated_at = now ()
    WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
      AND t.status IN ('working', 'input_required') AND t.expires_at > now ();
    IF FOUND THEN
        RETURN true;
    END IF;
    IF EXISTS (SELECT 1 FROM tasks t
               WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
                 AND t.expires_at > now ()) THEN
        RETURN true;
    END IF;
    PERFORM task_refusal (p_tenant, p_id, p_subject, 'cancel');
    RETURN false;
END
$$;
