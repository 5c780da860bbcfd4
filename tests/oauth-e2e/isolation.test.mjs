// tests/oauth-e2e/isolation.test.mjs — issue 20 item 7 with tokens the
// authorization server issued (sign-in page, /token): a code, a refresh
// token, an MCP session or a task of one tenant never works for another
// tenant or another user of the same tenant, and each refused attempt is
// in the audit log under the right tenant with the right action, with no
// secret in it nor in the farm's logs.
//
// Tenants and users: acme (alice, made by farm.sh; bob, made here) and
// globex (carol), both through the admin API with the operator key
// ($SB_FARM_DIR/admin.key). Two public clients, X and Y.
//   - alice's code for X: refused to Y (invalid_grant, token_refused
//     code_client) and to X with another registered redirect URI
//     (code_redirect_uri); neither refusal spends it: X redeems it after;
//   - alice's refresh token of X: refused to Y (refresh_client); Y's
//     /revoke of it is 200 (RFC 7009) and changes nothing (revoke_client),
//     X still refreshes with it;
//   - alice's access token sent with bob's and with carol's Mcp-Session-Id,
//     on POST, GET and DELETE /mcp: 404, session_refused other_user and
//     other_tenant under acme, actor alice; their sessions still work;
//   - alice's task: tasks/get, tasks/update and tasks/cancel by carol and
//     by bob are "Unknown task", task_refused under globex and acme;
//   - the tokens carry ten, sub and client_id, and tools/list works;
//   - alice's access token on the admin API: 401, admin_refused under acme;
//   - users are per tenant: alice's email and password for organisation
//     globex is the generic sentence (signin_failed under globex), and the
//     same email added to globex with its own password signs in there only;
//   - no code, token, password or session ID in audit_log.detail, and no
//     code, token or password in any farm log;
//   - revocations at the gateway (tenant initech: dave, erin; client Z):
//     tokens revoke for dave, erin's password reset, client Z revoked,
//     dave removed — each refuses the access tokens it revoked at once
//     (401 invalid_token), the others' keep working, and a token issued in
//     a later second (dave signing in again, erin with her new password) works;
//   - DELETE /admin/tenants/globex: carol's access token is refused at once
//     and her refresh token is invalid_grant,
//     acme's still refreshes, acme's audit log is intact (the refusal,
//     with no tenant left, is in the token worker's log).
//
//   tests/oauth-e2e/run.sh BUILD_DIR WORK_DIR tests/oauth-e2e/isolation.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import { ISSUER, MCP_URL, FARM_DIR, USER, SCOPE, INITIALIZE, requireUser, present, isCode, pkce,
         randomState, jwtParts, register, authorizeUrl, signIn, signInRedirect,
         mcpPost, nextSecond } from './lib.mjs';

const AUDIT_WAIT_MS = 10000;        // a gateway's record reaching the log (sent after its 404)
const AUDIT_POLL_MS = 50;
const AUDIT_PAGE = 500;             // the admin API's largest page
const TASK_DELAY_MS = 2500;         // the sandbox's delay: past the api worker's --task-promote-ms (1 s)
const MODERN = '2026-07-28';
const REFUSED = 'The organisation, email or password is not right.';
const SANDBOX_URL = process.env.SB_FARM_SANDBOX_URL;
const ADMIN_KEY = readFileSync(`${FARM_DIR}/admin.key`, 'utf8').split('\n')[0].trim();

const RX1 = 'http://127.0.0.1:9/x-one';     // never reached: the tests read the 302
const RX2 = 'http://127.0.0.1:9/x-two';
const RY = 'http://127.0.0.1:9/y';

const ALICE = USER;
const BOB = { organisation: 'acme', email: 'bob@acme.test', password: password() };
const CAROL = { organisation: 'globex', email: 'carol@globex.test', password: password() };
const ALICE_AT_GLOBEX = { organisation: 'globex', email: USER.email, password: password() };

const secrets = new Set([ALICE.password, BOB.password, CAROL.password, ALICE_AT_GLOBEX.password]);
const sessionIds = new Set();
let X, Y;                           // client IDs
const ids = {};                     // email@tenant → users.id

function password() {
    return `iso-${randomBytes(12).toString('base64url')}`;
}

function keep(...values) {
    for (const v of values)
        if (v)
            secrets.add(v);
}

// The admin API as the operator: { status, body }.
async function admin(method, path, body) {
    const response = await fetch(`${ISSUER}/admin${path}`, {
        method,
        headers: { Authorization: `Bearer ${ADMIN_KEY}`,
                   ...(body ? { 'Content-Type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: await response.json() };
}

async function addUser(user) {
    const { status, body } = await admin('POST', `/tenants/${user.organisation}/users`,
                                         { email: user.email, password: user.password });
    assert.equal(status, 201, `user add ${user.email} in ${user.organisation}: ${JSON.stringify(body)}`);
    ids[`${user.email}@${user.organisation}`] = body.user.id;
}

function subject(user) {
    return `user:${ids[`${user.email}@${user.organisation}`]}`;
}

// The audit log of `tenant`, newest first (one page: the test writes less).
async function audit(tenant) {
    const { status, body } = await admin('GET', `/audit?tenant=${tenant}&limit=${AUDIT_PAGE}`);
    assert.equal(status, 200, `GET /admin/audit: ${JSON.stringify(body)}`);
    assert.ok(body.entries.length < AUDIT_PAGE, 'the whole log fits one page');
    return body.entries;
}

function matching(entries, { actor, action, ...detail }) {
    return entries.filter((e) => e.actor === actor && e.action === action
        && Object.entries(detail).every(([k, v]) => e.detail?.[k] === v));
}

// Waits (polling, with a deadline) until `tenant`'s log holds `count` rows
// matching `want`, then asserts it holds exactly that many.
async function expectAudit(tenant, want, count = 1) {
    const deadline = Date.now() + AUDIT_WAIT_MS;
    let found = matching(await audit(tenant), want);
    while (found.length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, AUDIT_POLL_MS));
        found = matching(await audit(tenant), want);
    }
    assert.equal(found.length, count, `audit_log of ${tenant}: ${count} row(s) ${JSON.stringify(want)}, ` +
                 `found ${found.length}`);
    return found;
}

// A code for `user` through `client` and `redirectUri`: { code, verifier }.
async function codeFor(user, client, redirectUri) {
    const { verifier, challenge } = pkce();
    const state = randomState();
    const url = authorizeUrl({ clientId: client, redirectUri, challenge, state });
    const location = await signInRedirect(url, user);
    assert.equal(`${location.origin}${location.pathname}`, redirectUri);
    assert.equal(location.searchParams.get('state'), state);
    const code = location.searchParams.get('code');
    assert.ok(isCode(code), `a code in ${location}`);
    keep(code);
    return { code, verifier };
}

async function token(params) {
    const response = await present(await fetch(`${ISSUER}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams({ resource: MCP_URL, ...params }),
    }), 'POST /token');
    const body = await response.json();
    if (response.status === 200)
        keep(body.access_token, body.refresh_token);
    return { status: response.status, body };
}

function redeem(client, code, redirectUri, verifier) {
    return token({ grant_type: 'authorization_code', client_id: client, code, redirect_uri: redirectUri,
                   code_verifier: verifier });
}

function refresh(client, refreshToken) {
    return token({ grant_type: 'refresh_token', client_id: client, refresh_token: refreshToken });
}

function assertInvalidGrant({ status, body }, what) {
    assert.equal(status, 400, `${what}: HTTP ${status} ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_grant', `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.access_token, undefined);
}

function assertTokens({ status, body }, what) {
    assert.equal(status, 200, `${what}: HTTP ${status} ${JSON.stringify(body)}`);
    assert.ok(body.access_token && isCode(body.refresh_token), `${what}: tokens`);
    return body;
}

// Signs `user` in through client X and redeems the code: the tokens.
async function tokensFor(user, client = X, redirectUri = RX1) {
    const { code, verifier } = await codeFor(user, client, redirectUri);
    return assertTokens(await redeem(client, code, redirectUri, verifier), `${user.email} redeems`);
}

// A session opened with `accessToken` (initialize): its Mcp-Session-Id.
async function openSession(accessToken) {
    const response = await mcpPost(accessToken, INITIALIZE);
    const text = await response.text();
    assert.equal(response.status, 200, `initialize: ${text.slice(0, 300)}`);
    const id = response.headers.get('mcp-session-id');
    assert.ok(id, 'an Mcp-Session-Id');
    sessionIds.add(id);
    return id;
}

const PING = { jsonrpc: '2.0', id: 2, method: 'ping' };

// POST, GET or DELETE /mcp with `accessToken` and `sessionId`: the status.
async function onSession(method, accessToken, sessionId) {
    if (method === 'POST') {
        const response = await mcpPost(accessToken, PING, sessionId);
        await response.body?.cancel();
        return response.status;
    }
    const controller = new AbortController();
    const response = await fetch(MCP_URL, {
        method,
        signal: controller.signal,
        headers: { Authorization: `Bearer ${accessToken}`, Accept: 'text/event-stream',
                   'MCP-Protocol-Version': '2025-06-18', 'Mcp-Session-Id': sessionId },
    });
    controller.abort();     // a GET that succeeded is a stream: not read
    return response.status;
}

// A 2026-07-28 request (tasks extension declared): the JSON-RPC reply.
async function modern(accessToken, method, name, params) {
    const body = {
        jsonrpc: '2.0', id: 9, method,
        params: { ...params, _meta: {
            'io.modelcontextprotocol/protocolVersion': MODERN,
            'io.modelcontextprotocol/clientCapabilities': { extensions: { 'io.modelcontextprotocol/tasks': {} } },
            'io.modelcontextprotocol/clientInfo': { name: 'oauth-e2e-isolation', version: '1' },
        } },
    };
    const response = await fetch(MCP_URL, {
        method: 'POST',
        headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json',
                   Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': MODERN,
                   'Mcp-Method': method, 'Mcp-Name': name },
        body: JSON.stringify(body),
    });
    const text = await response.text();
    assert.equal(response.status, 200, `${method}: HTTP ${response.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
}

function assertUnknownTask(reply, what) {
    assert.ok(reply.error, `${what}: an error, got ${JSON.stringify(reply)}`);
    assert.equal(reply.error.code, -32602, what);
    assert.match(reply.error.message, /Unknown task/, what);
}

// ---------------------------------------------------------------------------

const tokens = {};                  // alice, bob, carol: the latest tokens

before(async () => {
    requireUser();
    assert.ok(SANDBOX_URL, 'SB_FARM_SANDBOX_URL is set (farm.sh)');
    const { status, body } = await admin('POST', '/tenants', { id: 'globex', name: 'Globex' });
    assert.equal(status, 201, `tenant create globex: ${JSON.stringify(body)}`);
    // alice was made by farm.sh: her ID from the list.
    const users = await admin('GET', '/tenants/acme/users');
    const alice = users.body.users.find((u) => u.email === ALICE.email);
    assert.ok(alice, `${ALICE.email} in acme: ${JSON.stringify(users.body)}`);
    ids[`${ALICE.email}@acme`] = alice.id;
    await addUser(BOB);
    await addUser(CAROL);
    X = (await register({ client_name: 'isolation X', redirect_uris: [RX1, RX2],
                          token_endpoint_auth_method: 'none', scope: SCOPE })).client_id;
    Y = (await register({ client_name: 'isolation Y', redirect_uris: [RY],
                          token_endpoint_auth_method: 'none', scope: SCOPE })).client_id;
    tokens.alice = await tokensFor(ALICE);
    tokens.bob = await tokensFor(BOB);
    tokens.carol = await tokensFor(CAROL);
});

test('the tokens name their tenant, user and client; tools/list works', async () => {
    for (const [name, user] of [['alice', ALICE], ['bob', BOB], ['carol', CAROL]]) {
        const claims = jwtParts(tokens[name].access_token).payload;
        assert.equal(claims.iss, ISSUER);
        assert.equal(claims.ten, user.organisation, `${name}'s ten`);
        assert.equal(claims.sub, subject(user), `${name}'s sub`);
        assert.equal(claims.client_id, X, `${name}'s client_id`);
    }
    const response = await mcpPost(tokens.alice.access_token, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
    const text = await response.text();
    assert.equal(response.status, 200, text.slice(0, 300));
    assert.match(text, /"tools":\[/, 'a tool list');
});

test('a code issued to client X: refused to client Y and to another redirect_uri, audited', async () => {
    const { code, verifier } = await codeFor(ALICE, X, RX1);
    // Y with its own redirect URI, and with the code's.
    assertInvalidGrant(await redeem(Y, code, RY, verifier), 'Y redeems X\'s code (Y\'s redirect_uri)');
    assertInvalidGrant(await redeem(Y, code, RX1, verifier), 'Y redeems X\'s code (X\'s redirect_uri)');
    // X with its other registered redirect URI.
    assertInvalidGrant(await redeem(X, code, RX2, verifier), 'X redeems with another redirect_uri');
    const byY = await expectAudit('acme', { actor: Y, action: 'token_refused', reason: 'code_client' }, 2);
    for (const entry of byY) {
        assert.equal(entry.tenant, 'acme');
        assert.equal(entry.detail.client_id, Y);
        assert.equal(entry.detail.user, subject(ALICE));
    }
    await expectAudit('acme', { actor: X, action: 'token_refused', reason: 'code_redirect_uri',
                                user: subject(ALICE) });
    // None of it spent the code: X redeems it with the right redirect URI.
    const issued = assertTokens(await redeem(X, code, RX1, verifier), 'X redeems its code');
    assert.equal(jwtParts(issued.access_token).payload.ten, 'acme');
    // And globex's log has none of it.
    assert.equal((await audit('globex')).filter((e) => e.action === 'token_refused').length, 0);
});

test('a refresh token of client X: refused to client Y, Y\'s revocation changes nothing', async () => {
    const mine = await tokensFor(ALICE);
    assertInvalidGrant(await refresh(Y, mine.refresh_token), 'Y refreshes X\'s token');
    await expectAudit('acme', { actor: Y, action: 'token_refused', reason: 'refresh_client',
                                user: subject(ALICE), client_id: Y });
    const response = await fetch(`${ISSUER}/revoke`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: Y, token: mine.refresh_token, token_type_hint: 'refresh_token' }),
    });
    assert.equal(response.status, 200, `Y's /revoke: ${await response.text()}`);
    await expectAudit('acme', { actor: Y, action: 'token_refused', reason: 'revoke_client',
                                user: subject(ALICE), client_id: Y });
    assert.equal(matching(await audit('acme'), { actor: Y, action: 'token_revoked' }).length, 0,
                 'nothing revoked');
    // X's token still works, and rotates.
    const rotated = assertTokens(await refresh(X, mine.refresh_token), 'X refreshes after Y\'s attempts');
    assert.notEqual(rotated.refresh_token, mine.refresh_token);
    assert.equal(jwtParts(rotated.access_token).payload.sub, subject(ALICE));
});

test('alice\'s token on bob\'s and carol\'s sessions: 404 on every method, audited under acme', async () => {
    const bobs = await openSession(tokens.bob.access_token);
    const carols = await openSession(tokens.carol.access_token);
    for (const method of ['POST', 'GET', 'DELETE']) {
        assert.equal(await onSession(method, tokens.alice.access_token, bobs), 404, `${method} on bob's`);
        assert.equal(await onSession(method, tokens.alice.access_token, carols), 404, `${method} on carol's`);
    }
    for (const method of ['POST', 'GET', 'DELETE']) {
        await expectAudit('acme', { actor: subject(ALICE), action: 'session_refused', reason: 'other_user',
                                    method });
        await expectAudit('acme', { actor: subject(ALICE), action: 'session_refused',
                                    reason: 'other_tenant', method });
    }
    // Recorded under the tenant that attempted, not the owner's.
    assert.equal(matching(await audit('globex'), { actor: subject(ALICE), action: 'session_refused' }).length, 0);
    // The owners' sessions were not ended by alice's DELETE.
    assert.equal(await onSession('POST', tokens.bob.access_token, bobs), 200, 'bob\'s session still works');
    assert.equal(await onSession('POST', tokens.carol.access_token, carols), 200, 'carol\'s session still works');
    // And carol's token on alice's session: under globex.
    const alices = await openSession(tokens.alice.access_token);
    assert.equal(await onSession('POST', tokens.carol.access_token, alices), 404);
    await expectAudit('globex', { actor: subject(CAROL), action: 'session_refused', reason: 'other_tenant',
                                  method: 'POST' });
    assert.equal(await onSession('POST', tokens.alice.access_token, alices), 200, 'alice\'s own session');
});

test('alice\'s task: unknown to carol and to bob, each attempt audited', async () => {
    // A slow upstream call of a task-capable tool becomes a task.
    const fault = await fetch(`${SANDBOX_URL}/_sandbox/faults`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ delay_ms: TASK_DELAY_MS, count: 1, path_prefix: '/v1/accounts' }),
    });
    assert.equal(fault.status / 100 | 0, 2, 'the sandbox took the fault');
    const created = await modern(tokens.alice.access_token, 'tools/call', 'search_accounts',
                                 { name: 'search_accounts', arguments: { query: 'Acme' } });
    assert.equal(created.result?.resultType, 'task', `a task: ${JSON.stringify(created)}`);
    const task = created.result.taskId;
    assert.ok(task, 'a taskId');
    for (const [name, user, tenant, reason] of [['carol', CAROL, 'globex', 'other_tenant'],
                                                ['bob', BOB, 'acme', 'other_user']]) {
        const as = tokens[name].access_token;
        assertUnknownTask(await modern(as, 'tasks/get', task, { taskId: task }), `${name}'s tasks/get`);
        assertUnknownTask(await modern(as, 'tasks/update', task, { taskId: task, inputResponses: { x: {} } }),
                          `${name}'s tasks/update`);
        assertUnknownTask(await modern(as, 'tasks/cancel', task, { taskId: task }), `${name}'s tasks/cancel`);
        for (const op of ['get', 'update', 'cancel'])
            await expectAudit(tenant, { actor: subject(user), action: 'task_refused', reason, op });
    }
    // Untouched: alice reads it, not cancelled.
    const mine = await modern(tokens.alice.access_token, 'tasks/get', task, { taskId: task });
    assert.equal(mine.result?.taskId, task, JSON.stringify(mine));
    assert.ok(['working', 'completed'].includes(mine.result.status), `status ${mine.result.status}`);
    assert.equal(matching(await audit('acme'), { actor: subject(ALICE), action: 'task_refused' }).length, 0);
});

test('users are per tenant: alice\'s email and password for organisation globex', async () => {
    const url = () => authorizeUrl({ clientId: X, redirectUri: RX1, challenge: pkce().challenge,
                                     state: randomState() });
    const refusedPage = async (user, what) => {
        const { response } = await signIn(url(), user);
        const html = await response.text();
        assert.equal(response.status, 200, `${what}: HTTP ${response.status}`);
        assert.equal(response.headers.get('location'), null, `${what}: no redirect`);
        assert.ok(html.includes(REFUSED), `${what}: the generic sentence`);
    };
    await refusedPage({ ...ALICE, organisation: 'globex' }, 'alice\'s password, organisation globex');
    await expectAudit('globex', { actor: ALICE.email, action: 'signin_failed', reason: 'unknown_user',
                                  client_id: X });
    // The same email in globex is another user with its own password.
    await addUser(ALICE_AT_GLOBEX);
    assert.notEqual(subject(ALICE_AT_GLOBEX), subject(ALICE));
    await refusedPage({ ...ALICE, organisation: 'globex' }, 'alice\'s acme password for her globex user');
    await expectAudit('globex', { actor: ALICE.email, action: 'signin_failed', reason: 'password' });
    await refusedPage({ ...ALICE_AT_GLOBEX, organisation: 'acme' }, 'her globex password for acme');
    await expectAudit('acme', { actor: ALICE.email, action: 'signin_failed', reason: 'password' });
    const there = await tokensFor(ALICE_AT_GLOBEX);
    const claims = jwtParts(there.access_token).payload;
    assert.equal(claims.ten, 'globex');
    assert.equal(claims.sub, subject(ALICE_AT_GLOBEX));
});

test('an access token is not the operator key: /admin/ is 401, audited under the token\'s tenant', async () => {
    for (const [method, path] of [['GET', '/admin/tenants'], ['GET', '/admin/audit?tenant=acme'],
                                  ['DELETE', '/admin/tenants/globex']]) {
        const response = await fetch(`${ISSUER}${path}`, {
            method, headers: { Authorization: `Bearer ${tokens.alice.access_token}` } });
        const text = await response.text();
        assert.equal(response.status, 401, `${method} ${path}: ${text.slice(0, 200)}`);
        assert.ok(!text.includes(tokens.alice.access_token));
        await expectAudit('acme', { actor: subject(ALICE), action: 'admin_refused', method,
                                    path: path.split('?')[0], client_id: X });
    }
    // Nothing was done: globex is still there.
    assert.equal((await admin('GET', '/tenants/globex')).status, 200);
});

// Every value in `secrets` (and, for the audit log, every session ID)
// absent from both tenants' audit_log and from every farm log.
async function assertNoSecrets(tenants) {
    assert.ok(secrets.size > 20, `secrets collected: ${secrets.size}`);
    for (const tenant of tenants) {
        const text = JSON.stringify(await audit(tenant));
        for (const secret of [...secrets, ...sessionIds])
            assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) in ${tenant}'s audit_log`);
    }
    const dir = `${FARM_DIR}/logs`;
    const logs = readdirSync(dir);
    assert.ok(logs.includes('gateway.log') && logs.includes('token-worker.log'), `logs: ${logs}`);
    for (const name of logs) {
        const text = readFileSync(`${dir}/${name}`, 'utf8');
        for (const secret of secrets)
            assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) in ${name}`);
    }
}

// An access token refused at once after the admin request that revoked it
// (the gateway's revocation list): 401 invalid_token with the sentence.
async function assertRevoked(accessToken, what) {
    const response = await mcpPost(accessToken, { jsonrpc: '2.0', id: 5, method: 'ping' });
    const text = await response.text();
    assert.equal(response.status, 401, `${what}: HTTP ${response.status} ${text.slice(0, 300)}`);
    assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/, what);
    assert.match(text, /The access token was revoked: /, what);
}

async function assertWorks(accessToken, what) {
    const response = await mcpPost(accessToken, { jsonrpc: '2.0', id: 6, method: 'ping' });
    const text = await response.text();
    assert.equal(response.status, 200, `${what}: HTTP ${response.status} ${text.slice(0, 300)}`);
}

const DAVE = { organisation: 'initech', email: 'dave@initech.test', password: password() };
const ERIN = { organisation: 'initech', email: 'erin@initech.test', password: password() };
const RZ = 'http://127.0.0.1:9/z';

test('revoking at the admin API refuses the access tokens at once; later ones work', async () => {
    keep(DAVE.password, ERIN.password);
    const created = await admin('POST', '/tenants', { id: 'initech', name: 'Initech' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await addUser(DAVE);
    await addUser(ERIN);
    let dave = await tokensFor(DAVE);
    let erin = await tokensFor(ERIN);
    await assertWorks(dave.access_token, 'dave before');
    await assertWorks(erin.access_token, 'erin before');

    // tokens revoke for one user: dave's access token at once, erin's not
    const davesId = ids[`${DAVE.email}@initech`];
    let answer = await admin('DELETE', `/tenants/initech/tokens?user=${davesId}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    await assertRevoked(dave.access_token, 'dave after tokens revoke --user');
    await assertWorks(erin.access_token, 'erin after dave\'s tokens were revoked');
    assertInvalidGrant(await refresh(X, dave.refresh_token), 'dave\'s refresh token');
    // dave signs in again (a later second): the new token works
    await nextSecond();
    dave = await tokensFor(DAVE);
    await assertWorks(dave.access_token, 'dave\'s token issued after the revocation');

    // a password reset: erin's token at once; signing in with the new one works
    const erinsId = ids[`${ERIN.email}@initech`];
    ERIN.password = password();
    keep(ERIN.password);
    answer = await admin('PUT', `/tenants/initech/users/${erinsId}/password`, { password: ERIN.password });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    await assertRevoked(erin.access_token, 'erin after her password reset');
    await assertWorks(dave.access_token, 'dave after erin\'s reset');
    await nextSecond();
    erin = await tokensFor(ERIN);
    await assertWorks(erin.access_token, 'erin signed in with her new password');

    // a client revoked: alice's token of Z refused, hers of X not
    const Z = (await register({ client_name: 'isolation Z', redirect_uris: [RZ],
                               token_endpoint_auth_method: 'none', scope: SCOPE })).client_id;
    const aliceZ = await tokensFor(ALICE, Z, RZ);
    const aliceX = await tokensFor(ALICE);
    await assertWorks(aliceZ.access_token, 'alice through Z before');
    answer = await admin('DELETE', `/clients/${encodeURIComponent(Z)}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    await assertRevoked(aliceZ.access_token, 'alice through Z after the client was revoked');
    // A client ID that is a URL reaches the token service as one segment
    const cimd = 'https://cimd.example/client.json';
    answer = await admin('DELETE', `/clients/${encodeURIComponent(cimd)}`);
    assert.equal(answer.status, 404, JSON.stringify(answer.body));
    assert.equal(answer.body.message, `there is no client "${cimd}"`);
    await assertWorks(aliceX.access_token, 'alice through X');

    // a user removed: dave's token at once, erin's not
    answer = await admin('DELETE', `/tenants/initech/users/${davesId}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    await assertRevoked(dave.access_token, 'dave after his removal');
    await assertWorks(erin.access_token, 'erin after dave\'s removal');
});

test('no code, token, password or session ID in audit_log.detail or the farm\'s logs', async () => {
    const entries = [...await audit('acme'), ...await audit('globex')];
    assert.ok(entries.some((e) => e.action === 'token_refused'), 'refusals were recorded');
    await assertNoSecrets(['acme', 'globex']);
});

test('deleting tenant globex: carol\'s access token refused at once, her refresh token invalid_grant, acme\'s still works', async () => {
    // Both work before.
    tokens.carol = assertTokens(await refresh(X, tokens.carol.refresh_token), 'carol refreshes');
    await assertWorks(tokens.carol.access_token, 'carol\'s access token before deletion');
    tokens.alice = assertTokens(await refresh(X, tokens.alice.refresh_token), 'alice refreshes');
    const before = (await audit('acme')).length;
    const { status, body } = await admin('DELETE', '/tenants/globex');
    assert.equal(status, 200, `DELETE /admin/tenants/globex: ${JSON.stringify(body)}`);
    assert.ok(body.deleted.users >= 2 && body.deleted.refresh_families >= 1, JSON.stringify(body));
    // carol's access token is refused at once (the gateway's revocation), not in 15 minutes
    await assertRevoked(tokens.carol.access_token, 'carol\'s access token after deletion');
    assertInvalidGrant(await refresh(X, tokens.carol.refresh_token), 'carol\'s refresh token after deletion');
    const { response } = await signIn(authorizeUrl({ clientId: X, redirectUri: RX1, challenge: pkce().challenge,
                                                    state: randomState() }), CAROL);
    assert.ok(response.status === 200 && (await response.text()).includes(REFUSED), 'carol cannot sign in');
    const alice = assertTokens(await refresh(X, tokens.alice.refresh_token), 'alice refreshes after');
    assert.equal(jwtParts(alice.access_token).payload.ten, 'acme');
    const tools = await mcpPost(alice.access_token, { jsonrpc: '2.0', id: 4, method: 'tools/list' });
    assert.equal(tools.status, 200);
    await tools.body?.cancel();
    // acme's log: what it had, plus the refresh just made.
    const after = await audit('acme');
    assert.ok(after.length > before, 'acme\'s audit log kept');
    const gone = await admin('GET', '/audit?tenant=globex');
    assert.equal(gone.status, 404, `globex's audit log after deletion: ${JSON.stringify(gone.body)}`);
    assert.equal(gone.body.error, 'not_found');
    // Its refusal has no tenant left to be filed under: the process log.
    const worker = readFileSync(`${FARM_DIR}/logs/token-worker.log`, 'utf8');
    assert.match(worker, /"event":"token_refused","msg":"client [^"]*: unknown refresh token"/,
                 'the refresh after deletion in the token worker\'s log');
    await assertNoSecrets(['acme']);
});
