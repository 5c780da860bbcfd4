// tests/oauth-e2e/admin.test.mjs — the admin interface and signing-key
// rotation end to end (issue 20 items 4 and 5): every sb-admin command runs
// through the farm's HTTPS gateway against the real token worker, and what
// it changes is checked where a client meets it — a generated password
// signs in on /authorize, a reset password and a revoked client or token
// family stop working at /token, the audit log lists what was done, newest
// first. Rotation: a token under the old key still works on /mcp, a
// refreshed one carries the new kid and works at once (the gateway learns
// the key set on the unknown kid), /.well-known/jwks.json lists both, and
// a key retired longer than an access token lives leaves the key set (its
// retirement moved back in SQL: nobody waits 15 minutes). Last, the token
// worker is stopped by PID and the admin API answers 503 within the
// broker's no-worker grace, then at once.
//
//   tests/oauth-e2e/run.sh BUILD_DIR WORK_DIR tests/oauth-e2e/admin.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import { ISSUER, FARM_DIR, USER, requireUser, register, authorizeUrl, pkce, randomState,
         signIn, signInRedirect, isCode, mcpPost, jwtParts, INITIALIZE, nextSecond } from './lib.mjs';

const run = promisify(execFile);
const BIN = process.env.SB_FARM_BIN;
const PG_BIN = process.env.SB_PG_BIN;
const CA = process.env.SB_OAUTH_CA_FILE;
const KEY_FILE = join(FARM_DIR, 'admin.key');
const TENANT = `adm-${randomBytes(4).toString('hex')}`;
const REDIRECT = 'http://127.0.0.1:9/callback';    // never followed: the test reads the 302
const NO_WORKER_GRACE_MS = 2000;    // the broker's --no-worker-grace-ms (proto/PROTOCOL.md "No worker")
const PROMPT_MS = 1500;             // "at once", with a shared CPU's slack
const STOP_WAIT_MS = 15000;         // the token worker's drain on SIGTERM, at most

// sb-admin ARGS against the farm's gateway; resolves {code, stdout, stderr, ms}.
async function admin(args, { keyFile = KEY_FILE } = {}) {
    assert.ok(BIN && existsSync(join(BIN, 'sb-admin')), `no sb-admin in ${BIN} (SB_FARM_BIN)`);
    const started = Date.now();
    try {
        const { stdout, stderr } = await run(join(BIN, 'sb-admin'),
            ['--url', ISSUER, '--admin-key-file', keyFile, '--cacert', CA, ...args]);
        return { code: 0, stdout, stderr, ms: Date.now() - started };
    } catch (err) {
        if (typeof err.code !== 'number')
            throw err;
        return { code: err.code, stdout: err.stdout, stderr: err.stderr, ms: Date.now() - started };
    }
}

// sb-admin --json ARGS, which must succeed; its answer parsed.
async function adminJson(args) {
    const r = await admin(['--json', ...args]);
    assert.equal(r.code, 0, `sb-admin ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
}

// sb-admin ARGS, which the server must refuse with `status` and `error`.
async function refused(args, status, error) {
    const r = await admin(args);
    assert.equal(r.code, 1, `sb-admin ${args.join(' ')} exits 1 (refused): ${r.code} ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^sb-admin: refused \\(HTTP ${status}${error ? `, ${error}` : ''}\\): \\S`),
                 `sb-admin ${args.join(' ')}: the sentence`);
    return r;
}

function generatedPassword(stdout) {
    const m = stdout.match(/^password: (\S+)$/m);
    assert.ok(m, `sb-admin printed the generated password: ${stdout}`);
    assert.match(m[1], /^[A-Za-z0-9_-]{24}$/, 'a 24-character base64url password');
    return m[1];
}

async function tokenRequest(form) {
    const response = await fetch(`${ISSUER}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams(form),
    });
    return { status: response.status, body: await response.json() };
}

// A public client of its own, a sign-in as `user`, the code exchanged:
// {client, access, refresh}.
async function signInTokens(user, clientName = 'admin e2e') {
    const client = await register({
        client_name: clientName, redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'none',
    });
    const { verifier, challenge } = pkce();
    const state = randomState();
    const location = await signInRedirect(authorizeUrl({ clientId: client.client_id, redirectUri: REDIRECT,
                                                         challenge, state }), user);
    const code = location.searchParams.get('code');
    assert.ok(isCode(code), `a code in ${location}`);
    const { status, body } = await tokenRequest({
        grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier,
        client_id: client.client_id,
    });
    assert.equal(status, 200, `POST /token (code): ${JSON.stringify(body)}`);
    return { client, access: body.access_token, refresh: body.refresh_token };
}

// grant_type=refresh_token; {status, body}.
function refresh(tokens) {
    return tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refresh,
                          client_id: tokens.client.client_id });
}

async function refreshRefused(tokens, what) {
    const { status, body } = await refresh(tokens);
    assert.equal(status, 400, `${what}: the refresh token is refused: ${status} ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_grant', `${what}: invalid_grant`);
}

// A sign-in with `password` that the page refuses (200, the page again).
async function signInRefused(user, what) {
    const { challenge } = pkce();
    const { response } = await signIn(authorizeUrl({ clientId: (await register({
        client_name: 'admin e2e refused', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] })).client_id,
        redirectUri: REDIRECT, challenge, state: randomState() }), user);
    assert.equal(response.status, 200, `${what}: no redirect, the page again (${response.status})`);
    assert.match(await response.text(), /<form\b/i, `${what}: the sign-in form again`);
}

async function mcpWorks(token, what) {
    const started = Date.now();
    const response = await mcpPost(token, INITIALIZE);
    const text = await response.text();
    assert.equal(response.status, 200, `${what}: POST /mcp initialize: ${response.status} ${text.slice(0, 200)}`);
    return Date.now() - started;
}

async function jwksKids() {
    const response = await fetch(`${ISSUER}/.well-known/jwks.json`);
    assert.equal(response.status, 200, 'GET /.well-known/jwks.json');
    return (await response.json()).keys.map((k) => k.kid);
}

function gatewayLog() {
    return readFileSync(join(FARM_DIR, 'logs', 'gateway.log'), 'utf8');
}

function count(text, needle) {
    return text.split(needle).length - 1;
}

// One SQL statement against the farm's database (as the services' role).
async function sql(statement) {
    const conninfo = readFileSync(join(FARM_DIR, 'pg', 'conninfo'), 'utf8').trim();
    const { stdout } = await run(join(PG_BIN, 'psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
                                                       '-d', conninfo, '-c', statement]);
    return stdout.trim();
}

const users = {};       // name → what a later test needs of that user
let issued = null;      // an access token the last test uses

test('tenants and plans: create, list, show, plan, and the refusals', async () => {
    requireUser();
    const plans = (await adminJson(['plan', 'list'])).plans.map((p) => p.id);
    assert.ok(plans.includes('free'), `plan list names free: ${plans}`);
    const other = plans.find((p) => p !== 'free');
    assert.ok(other, `a second plan to move to: ${plans}`);

    const made = await admin(['tenant', 'create', TENANT, 'Admin Test']);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, new RegExp(`^${TENANT} +free +\\S+ +0  Admin Test$`, 'm'), made.stdout);
    await refused(['tenant', 'create', TENANT, 'Again'], 409, 'conflict');
    await refused(['tenant', 'create', `${TENANT}-x`, 'No plan', '--plan', 'gold'], 422, 'unknown_plan');
    const listed = (await adminJson(['tenant', 'list'])).tenants.map((t) => t.id);
    assert.ok(listed.includes(TENANT) && listed.includes(USER.organisation), `tenant list: ${listed}`);
    assert.ok(!listed.includes(`${TENANT}-x`), 'the refused create made nothing');

    const shown = (await adminJson(['tenant', 'show', TENANT])).tenant;
    assert.equal(shown.plan, 'free');
    assert.equal(shown.users, 0);
    const set = await adminJson(['tenant', 'plan', TENANT, other]);
    assert.equal(set.tenant.plan, other);
    assert.equal(set.changed, true);
    await refused(['tenant', 'plan', TENANT, 'gold'], 422, 'unknown_plan');
    assert.equal((await adminJson(['tenant', 'show', TENANT])).tenant.plan, other, 'a refusal changes nothing');
    await refused(['tenant', 'show', 'no-such-tenant'], 404, 'not_found');
    await refused(['tenant', 'plan', 'no-such-tenant', 'free'], 404, 'not_found');
    await refused(['user', 'add', 'no-such-tenant', 'x@example.com'], 404, 'not_found');
});

test('users: a generated password signs in; reset refuses the old one and ends its refresh tokens; remove', async () => {
    requireUser();
    const added = await admin(['user', 'add', TENANT, 'bob@example.com']);
    assert.equal(added.code, 0, added.stderr);
    const password = generatedPassword(added.stdout);
    const shortFile = join(FARM_DIR, 'short.password');
    writeFileSync(shortFile, 'short1\n', { mode: 0o600 });
    await refused(['user', 'add', TENANT, 'carol@example.com', '--password-file', shortFile], 422, 'weak_password');
    await refused(['user', 'add', TENANT, 'bob@example.com'], 409, 'conflict');

    const listed = (await adminJson(['user', 'list', TENANT])).users;
    assert.deepEqual(listed.map((u) => u.email), ['bob@example.com'], 'only bob (carol was refused)');
    const bob = { organisation: TENANT, email: 'bob@example.com', password };
    const id = String(listed[0].id);

    const tokens = await signInTokens(bob);
    assert.equal(jwtParts(tokens.access).payload.sub, `user:${id}`, 'the token names bob');
    await mcpWorks(tokens.access, 'bob\'s token');

    const reset = await admin(['user', 'password', TENANT, id]);
    assert.equal(reset.code, 0, reset.stderr);
    const fresh = generatedPassword(reset.stdout);
    assert.notEqual(fresh, password);
    assert.match(reset.stdout, /1 refresh token families revoked/, reset.stdout);
    await refreshRefused(tokens, 'after a password reset');
    await signInRefused(bob, 'the old password');
    // The reset revoked bob's access tokens at the gateways too, up to its
    // second: the new sign-in comes in a later one.
    await nextSecond();
    const again = await signInTokens({ ...bob, password: fresh });
    await mcpWorks(again.access, 'a token after the reset');
    users.bob = { id, password: fresh };

    await refused(['user', 'password', TENANT, '999999999'], 404, 'not_found');
    const removed = await admin(['user', 'remove', TENANT, id]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`^user ${id} removed from tenant ${TENANT}: `), removed.stdout);
    await refreshRefused(again, 'after the user was removed');
    await signInRefused({ ...bob, password: fresh }, 'a removed user');
    assert.deepEqual((await adminJson(['user', 'list', TENANT])).users, [], 'no users left');
    await refused(['user', 'remove', TENANT, id], 404, 'not_found');
});

test('clients: list, and a revoked client\'s refresh token and /authorize stop working', async () => {
    requireUser();
    const added = await admin(['user', 'add', TENANT, 'dan@example.com']);
    assert.equal(added.code, 0, added.stderr);
    const dan = { organisation: TENANT, email: 'dan@example.com', password: generatedPassword(added.stdout) };
    const name = `admin e2e revoked ${randomBytes(3).toString('hex')}`;
    const tokens = await signInTokens(dan, name);
    const kept = await signInTokens(dan, 'admin e2e kept');

    const clients = (await adminJson(['client', 'list'])).clients;
    const row = clients.find((c) => c.client_id === tokens.client.client_id);
    assert.ok(row, `client list names ${tokens.client.client_id}`);
    assert.equal(row.client_name, name);
    assert.equal(row.revoked_at ?? null, null, 'not revoked yet');

    const revoked = await admin(['client', 'revoke', tokens.client.client_id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, new RegExp(`^client ${tokens.client.client_id} revoked at \\S+: `), revoked.stdout);
    const { status, body } = await refresh(tokens);
    assert.ok([400, 401].includes(status) && ['invalid_grant', 'invalid_client'].includes(body.error),
              `the revoked client's refresh token: ${status} ${JSON.stringify(body)}`);
    const { challenge } = pkce();
    const page = await fetch(authorizeUrl({ clientId: tokens.client.client_id, redirectUri: REDIRECT, challenge,
                                           state: randomState() }), { redirect: 'manual' });
    const html = await page.text();
    assert.ok(page.status >= 400 && !/name="password"/.test(html),
              `GET /authorize for the revoked client shows no sign-in form: ${page.status} ${html.slice(0, 200)}`);
    const listedAfter = (await adminJson(['client', 'list'])).clients
        .find((c) => c.client_id === tokens.client.client_id);
    assert.ok(listedAfter.revoked_at, 'client list shows it revoked');

    const ok = await refresh(kept);
    assert.equal(ok.status, 200, `another client's refresh token still works: ${JSON.stringify(ok.body)}`);
    kept.refresh = ok.body.refresh_token;
    users.dan = { ...dan, tokens: kept };
});

test('tokens revoke: one user\'s families, then the whole tenant\'s', async () => {
    requireUser();
    const added = await admin(['user', 'add', TENANT, 'eve@example.com']);
    assert.equal(added.code, 0, added.stderr);
    const eve = { organisation: TENANT, email: 'eve@example.com', password: generatedPassword(added.stdout) };
    const eveTokens = await signInTokens(eve);
    const eveId = jwtParts(eveTokens.access).payload.sub.replace(/^user:/, '');
    const danTokens = users.dan.tokens;

    const one = await admin(['tokens', 'revoke', TENANT, '--user', eveId]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^1 refresh token families revoked in tenant ${TENANT}$`, 'm'), one.stdout);
    await refreshRefused(eveTokens, 'eve after tokens revoke --user');
    const still = await refresh(danTokens);
    assert.equal(still.status, 200, `dan's refresh token survives eve's revocation: ${JSON.stringify(still.body)}`);
    danTokens.refresh = still.body.refresh_token;

    const all = await adminJson(['tokens', 'revoke', TENANT]);
    assert.equal(all.tenant, TENANT);
    assert.ok(all.refresh_families_revoked >= 1, `the tenant's revocation: ${JSON.stringify(all)}`);
    await refreshRefused(danTokens, 'dan after tokens revoke of the tenant');
    await refused(['tokens', 'revoke', 'no-such-tenant'], 404, 'not_found');
});

test('audit: what the test did, newest first, paged with --before', async () => {
    requireUser();
    const { entries } = await adminJson(['audit', TENANT, '--limit', '500']);
    assert.ok(entries.length > 5, `audit entries: ${entries.length}`);
    for (let i = 1; i < entries.length; i++)
        assert.ok(Number(entries[i - 1].id) > Number(entries[i].id), 'newest first (ids decrease)');
    assert.ok(entries.every((e) => e.tenant === TENANT), 'only this tenant\'s rows');
    const actions = entries.map((e) => e.action);
    // The admin's own actions, in the order done, appear in reverse.
    const done = ['tenant_created', 'plan_set', 'user_added', 'password_reset', 'user_removed', 'tokens_revoked'];
    let last = actions.length;
    for (const action of done) {
        const at = action === 'tokens_revoked' ? actions.indexOf(action) : actions.lastIndexOf(action);
        assert.ok(at >= 0, `the audit log has ${action}: ${actions.join(' ')}`);
        assert.ok(at < last, `${action} is newer than what came before it: ${actions.join(' ')}`);
        last = at;
    }
    assert.equal(actions.filter((a) => a === 'tokens_revoked').length, 2, 'two tokens_revoked');
    for (const action of ['signin', 'signin_failed', 'code_issued', 'token_issued'])
        assert.ok(actions.includes(action), `the sign-ins are there too (${action}): ${actions.join(' ')}`);
    const created = entries.find((e) => e.action === 'tenant_created');
    assert.equal(created.actor, 'admin');
    assert.equal(created.detail.name, 'Admin Test');
    assert.ok(!JSON.stringify(entries).includes(users.bob.password), 'no password in the audit log');

    const first = await adminJson(['audit', TENANT, '--limit', '2']);
    assert.deepEqual(first.entries.map((e) => e.id), entries.slice(0, 2).map((e) => e.id));
    assert.equal(String(first.next_before), String(entries[1].id), 'next_before is the last id shown');
    const second = await adminJson(['audit', TENANT, '--limit', '2', '--before', String(first.next_before)]);
    assert.deepEqual(second.entries.map((e) => e.id), entries.slice(2, 4).map((e) => e.id), 'the next page');
    const table = await admin(['audit', TENANT, '--limit', '2']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^\\(more: --before ${first.next_before}\\)$`, 'm'), table.stdout);
    const tail = await adminJson(['audit', TENANT, '--limit', '500', '--before', String(entries.at(-1).id)]);
    assert.deepEqual(tail.entries, [], 'nothing before the oldest');
    assert.equal(tail.next_before, null, 'and no next page');
});

test('the operator key: a wrong one is 401, and sb-admin exits 1 saying so', async () => {
    const wrong = join(FARM_DIR, 'wrong-admin.key');
    writeFileSync(wrong, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    const r = await admin(['tenant', 'list'], { keyFile: wrong });
    assert.equal(r.code, 1, `exit 1 with a wrong key: ${r.code} ${r.stderr}`);
    assert.match(r.stderr, /^sb-admin: refused \(HTTP 401[,)].*operator key/m, r.stderr);
    assert.equal(r.stdout, '', 'nothing listed');
    for (const headers of [{}, { Authorization: `Bearer ${randomBytes(32).toString('hex')}` }]) {
        const response = await fetch(`${ISSUER}/admin/tenants`, { headers });
        assert.equal(response.status, 401, `GET /admin/tenants with ${JSON.stringify(Object.keys(headers))}`);
        const body = await response.text();
        assert.ok(!body.includes(TENANT), 'no tenant leaks in the refusal');
    }
});

test('tenant delete removes the tenant and its rows', async () => {
    requireUser();
    const r = await admin(['tenant', 'delete', TENANT]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^tenant ${TENANT} deleted: .*users 2\\b`, 'm'), r.stdout);
    assert.match(r.stdout, /\baudit_log [1-9]/, `its audit rows went with it: ${r.stdout}`);
    assert.match(r.stdout, /\brefresh_families [1-9]/, `and its refresh token families: ${r.stdout}`);
    await refused(['tenant', 'show', TENANT], 404, 'not_found');
    await refused(['tenant', 'delete', TENANT], 404, 'not_found');
    await refused(['audit', TENANT], 404, 'not_found');
    assert.ok(!(await adminJson(['tenant', 'list'])).tenants.some((t) => t.id === TENANT), 'not listed');
    await signInRefused({ organisation: TENANT, email: 'dan@example.com', password: users.dan.password },
                        'a user of a deleted tenant');
});

test('key rotation: old tokens keep working, new ones carry the new kid at once, retired keys leave the set', async () => {
    requireUser();
    const a = await signInTokens(USER, 'rotation');
    const k0 = jwtParts(a.access).header.kid;
    assert.ok(k0, 'the access token has a kid');
    assert.ok((await jwksKids()).includes(k0), 'the key set lists the current key');

    const first = await adminJson(['keys', 'rotate']);
    assert.equal(first.retired, k0, `rotate retires the key that signed: ${JSON.stringify(first)}`);
    const k1 = first.kid;
    assert.notEqual(k1, k0);
    await mcpWorks(a.access, 'a token under the retired key');

    const before = count(gatewayLog(), `kid=${k1}:`);
    let r = await refresh(a);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    a.refresh = r.body.refresh_token;
    const b = r.body.access_token;
    assert.equal(jwtParts(b).header.kid, k1, 'a refreshed token is signed by the new key');
    const ms = await mcpWorks(b, 'a token under the new key, at once');
    assert.ok(ms < PROMPT_MS, `the new key is learned without delay (${ms} ms)`);
    assert.ok(count(gatewayLog(), `kid=${k1}:`) - before <= 1, 'one key-set fetch for the unknown kid, at most');
    let kids = await jwksKids();
    assert.ok(kids.includes(k0) && kids.includes(k1), `jwks.json lists both keys: ${kids}`);

    const second = await adminJson(['keys', 'rotate']);
    assert.equal(second.retired, k1);
    const k2 = second.kid;
    r = await refresh(a);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    a.refresh = r.body.refresh_token;
    const c = r.body.access_token;
    assert.equal(jwtParts(c).header.kid, k2);
    await mcpWorks(c, 'a token under the second new key');
    await mcpWorks(b, 'a token under the first new key, now retired');
    await mcpWorks(a.access, 'a token under the first key, retired twice');
    kids = await jwksKids();
    assert.ok([k0, k1, k2].every((k) => kids.includes(k)), `jwks.json lists the three keys: ${kids}`);

    // The key set lists a retired key while tokens it signed may live
    // (SB_OAUTH_ACCESS_TTL_S + skew). Move k0's retirement an hour back,
    // rotate again: the gateway learns the new set on the new kid, and
    // k0's token, not yet expired by its own exp, is refused.
    assert.ok(PG_BIN && existsSync(join(PG_BIN, 'psql')), `psql in ${PG_BIN} (SB_PG_BIN)`);
    assert.equal(await sql(`UPDATE signing_keys SET created_at = now () - interval '2 hours', ` +
                           `retired_at = now () - interval '1 hour' WHERE kid = '${k0}' RETURNING kid`), k0);
    const third = await adminJson(['keys', 'rotate']);
    assert.equal(third.retired, k2);
    r = await refresh(a);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = r.body.access_token;
    assert.equal(jwtParts(d).header.kid, third.kid);
    await mcpWorks(d, 'a token under the third new key');
    kids = await jwksKids();
    assert.ok(!kids.includes(k0), `a key retired an hour ago is not in the key set: ${kids}`);
    assert.ok([k1, k2, third.kid].every((k) => kids.includes(k)), `the others are: ${kids}`);
    assert.ok(jwtParts(a.access).payload.exp * 1000 > Date.now(), 'the old token has not expired by its exp');
    const old = await mcpPost(a.access, INITIALIZE);
    assert.equal(old.status, 401, 'a token whose key left the set is refused');
    await mcpWorks(b, 'a token under a key retired minutes ago');
    issued = d;
});

test('no token worker: the admin API answers 503 within the no-worker grace, then at once', async () => {
    const pids = readFileSync(join(FARM_DIR, 'pids'), 'utf8').split('\n').map((l) => l.split(' '));
    const entry = pids.find(([name]) => name === 'token-worker');
    assert.ok(entry, `the farm's pids file names the token worker: ${pids}`);
    const pid = Number(entry[1]);
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + STOP_WAIT_MS;
    const running = () => {
        try {
            return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
        } catch {
            return false;
        }
    };
    while (running()) {
        assert.ok(Date.now() < deadline, `the token worker (pid ${pid}) stops within ${STOP_WAIT_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // The first request waits out the broker's grace for a restarting worker.
    const first = await admin(['tenant', 'list']);
    assert.equal(first.code, 4, `exit 4 (try again) without a token worker: ${first.code} ${first.stderr}`);
    const UNAVAILABLE = /^sb-admin: unavailable, try again \(HTTP 503, temporarily_unavailable\): The token service is not available/m;
    assert.match(first.stderr, UNAVAILABLE, first.stderr);
    assert.ok(first.ms < NO_WORKER_GRACE_MS + 3000, `answered within the grace (${first.ms} ms)`);
    const second = await admin(['tenant', 'show', USER.organisation]);
    assert.equal(second.code, 4, second.stderr);
    assert.match(second.stderr, UNAVAILABLE, second.stderr);
    assert.ok(second.ms < PROMPT_MS, `then at once (${second.ms} ms)`);
    const response = await fetch(`${ISSUER}/admin/plans`, {
        headers: { Authorization: `Bearer ${readFileSync(KEY_FILE, 'utf8').split('\n')[0]}` },
    });
    assert.equal(response.status, 503, 'HTTP 503');
    assert.ok(response.headers.get('retry-after'), 'with Retry-After');
    // A token already issued still works: the gateway checks it without the worker.
    assert.ok(issued, 'a token from the rotation test');
    await mcpWorks(issued, 'a token, with the token worker stopped');
});
