-- db/migrations/003_tasks.sql — the task store of the MCP Tasks
-- extension (SEP-2663): one row per task, written only by the `task`
-- worker role (workers/sb_task_role.c), which reaches it only through the
-- functions below — each op one statement, so the role's shared
-- asynchronous connection never holds a transaction open, and each
-- read-modify-write is atomic (a row lock inside one function call).
--
-- A task belongs to a tenant and, within it, to the token's subject (the
-- user): every function filters on both (task_finish, which the gateway
-- running the task's job calls, on the tenant), so another's task is
-- indistinguishable from none. Tenants are not a foreign key: a gateway
-- serves any tenant its tokens name, whether or not `tenants` lists it.
--
-- Values come in only as parameters ($1…) of the functions; no SQL is
-- built from text anywhere. Timestamps leave as ISO 8601 UTC text with
-- milliseconds (task_time).

CREATE TABLE tasks (
    tenant_id           text NOT NULL,
    id                  text NOT NULL CHECK (id ~ '^[!-~]{1,64}$'),
    subject             text NOT NULL CHECK (length (subject) <= 256),
    status              text NOT NULL DEFAULT 'working'
                        CHECK (status IN ('working', 'input_required', 'completed',
                                          'failed', 'cancelled')),
    status_message      text,
    -- What runs the task: the tools/call to send again on each resume.
    connector           text NOT NULL,
    tool                text NOT NULL,
    args                text NOT NULL,                  -- JSON object text, kept verbatim
    inputs              jsonb NOT NULL DEFAULT '{}',    -- the client's answers so far
    caps                bigint NOT NULL DEFAULT 0 CHECK (caps BETWEEN 0 AND 4294967295),
    round               int NOT NULL DEFAULT 1 CHECK (round >= 1),
    -- The outcome so far, by status.
    input_requests      jsonb,                          -- input_required: outstanding requests
    result              json,                           -- completed: the CallToolResult
    error               json,                           -- failed: the JSON-RPC error
    -- Limits the gateway chose (milliseconds).
    ttl_ms              int NOT NULL CHECK (ttl_ms BETWEEN 1 AND 86400000),
    poll_interval_ms    int NOT NULL CHECK (poll_interval_ms BETWEEN 1 AND 3600000),
    run_ms              int NOT NULL CHECK (run_ms BETWEEN 1 AND 600000),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    run_deadline        timestamptz NOT NULL,           -- working past this: failed when read
    expires_at          timestamptz NOT NULL,           -- created_at + ttl_ms: then deleted
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX tasks_expires_at ON tasks (expires_at);

ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tasks
    USING (tenant_id = current_setting('switchboard.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('switchboard.tenant_id', true));
CREATE POLICY system_access ON tasks
    USING (current_setting('switchboard.system', true) = 'on')
    WITH CHECK (current_setting('switchboard.system', true) = 'on');

-- A timestamp as the protocol writes it: 2026-11-23T21:40:00.123Z.
CREATE FUNCTION task_time (t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT to_char (t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- What task_create and task_get hand back: the Task's fields, and the
-- outcome that belongs to its status (the others NULL).
CREATE TYPE task_view AS (
    id                  text,
    status              text,
    status_message      text,
    created_at          text,   -- task_time
    updated_at          text,   -- task_time
    ttl_ms              int,
    poll_interval_ms    int,
    result              text,   -- completed: JSON object text
    error               text,   -- failed: JSON object text
    input_requests      text    -- input_required: JSON object text
);

CREATE FUNCTION task_view_of (t tasks) RETURNS task_view
LANGUAGE sql STABLE AS $$
    SELECT ROW (t.id, t.status, t.status_message, task_time (t.created_at),
                task_time (t.updated_at), t.ttl_ms, t.poll_interval_ms,
                CASE WHEN t.status = 'completed' THEN t.result::text END,
                CASE WHEN t.status = 'failed' THEN t.error::text END,
                CASE WHEN t.status = 'input_required' THEN t.input_requests::text END)::task_view
$$;

-- task/create: a new working task; its run deadline is now + run_ms. The
-- same (tenant, id) again for the same subject (a retried job) gives the
-- task as it is, not a second one; for another subject, no row.
CREATE FUNCTION task_create (p_tenant text, p_id text, p_subject text, p_connector text,
                             p_tool text, p_args text, p_inputs jsonb, p_caps bigint,
                             p_round int, p_ttl_ms int, p_poll_interval_ms int, p_run_ms int)
RETURNS SETOF task_view
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    INSERT INTO tasks (tenant_id, id, subject, connector, tool, args, inputs, caps, round,
                       ttl_ms, poll_interval_ms, run_ms, run_deadline, expires_at)
    VALUES (p_tenant, p_id, p_subject, p_connector, p_tool, p_args, p_inputs, p_caps, p_round,
            p_ttl_ms, p_poll_interval_ms, p_run_ms,
            now () + p_run_ms * interval '1 millisecond',
            now () + p_ttl_ms * interval '1 millisecond')
    ON CONFLICT (tenant_id, id) DO NOTHING;
    RETURN QUERY
        SELECT v.* FROM tasks t, LATERAL task_view_of (t) v
        WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
          AND t.expires_at > now ();
END
$$;

-- task/get: the task of this tenant and subject, or no row. A task still
-- working past its run deadline is failed first: whatever ran it (a
-- gateway, a worker) stopped without reporting back.
CREATE FUNCTION task_get (p_tenant text, p_id text, p_subject text)
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
END
$$;

-- task/finish: the outcome of the task's job, applied only while the task
-- is working (a cancelled task stays cancelled; terminal states never
-- change). p_status completed takes p_result, failed p_error (and its
-- message as the statusMessage), input_required p_input_requests and
-- replaces inputs and round. Returns whether it was applied.
CREATE FUNCTION task_finish (p_tenant text, p_id text, p_status text, p_result json,
                             p_error json, p_status_message text, p_input_requests jsonb,
                             p_inputs jsonb, p_round int)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_status NOT IN ('completed', 'failed', 'input_required') THEN
        RAISE EXCEPTION 'task_finish: status % is not an outcome', p_status;
    END IF;
    PERFORM set_config ('switchboard.tenant_id', p_tenant, true);
    UPDATE tasks t
    SET status = p_status, status_message = p_status_message,
        result = CASE WHEN p_status = 'completed' THEN p_result END,
        error = CASE WHEN p_status = 'failed' THEN p_error END,
        input_requests = CASE WHEN p_status = 'input_required' THEN p_input_requests END,
        inputs = CASE WHEN p_status = 'input_required' THEN p_inputs ELSE t.inputs END,
        round = CASE WHEN p_status = 'input_required' THEN p_round ELSE t.round END,
        updated_at = now ()
    WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.status = 'working'
      AND t.expires_at > now ();
    RETURN FOUND;
END
$$;

-- What task_update hands back (one row; none when the task is unknown).
CREATE TYPE task_resume AS (
    resume      boolean,    -- true: the last request was answered, run it again
    connector   text,       -- with resume: what to run …
    tool        text,
    args        text,
    inputs      text,       -- … with these answers (JSON object text),
    caps        bigint,     -- these client capabilities,
    round       int         -- as this round
);

-- task/update: the client's inputResponses (a JSON object). Only an
-- input_required task changes: each answer to a still-outstanding request
-- is kept in inputs and its request removed; other keys are ignored. When
-- none is left the task is working again (round + 1, a new run deadline)
-- and the row says resume — to exactly one caller, as the row is locked
-- from the read to the write.
CREATE FUNCTION task_update (p_tenant text, p_id text, p_subject text, p_responses jsonb)
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

-- task/cancel: a task not yet terminal is cancelled (its requests
-- dropped); a terminal one stays as it is. Returns whether the task is
-- known to this tenant and subject.
CREATE FUNCTION task_cancel (p_tenant text, p_id text, p_subject text)
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
    RETURN EXISTS (SELECT 1 FROM tasks t
                   WHERE t.tenant_id = p_tenant AND t.id = p_id AND t.subject = p_subject
                     AND t.expires_at > now ());
END
$$;

-- The sweep: deletes up to p_limit tasks whose ttl has passed, of every
-- tenant (rows another sweeper holds are skipped). Returns how many.
CREATE FUNCTION task_sweep (p_limit int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    v_count int;
BEGIN
    PERFORM set_config ('switchboard.system', 'on', true);
    DELETE FROM tasks t
    USING (SELECT e.tenant_id, e.id FROM tasks e
           WHERE e.expires_at <= now ()
           ORDER BY e.expires_at
           LIMIT p_limit
           FOR UPDATE SKIP LOCKED) d
    WHERE t.tenant_id = d.tenant_id AND t.id = d.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
