// tests/oauth-e2e/lib.mjs — what the OAuth end-to-end tests share: the farm
// from the environment (tests/oauth-e2e/farm.sh), a check that the part of
// issue 20 a test needs is there (a clear failure, never a silent skip), the
// sign-in form read and posted as a browser would (plain HTTP: GET
// /authorize, its hidden fields and CSRF cookie, POST with organisation,
// email, password and decision), PKCE, and a loopback redirect catcher.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

function env(name) {
    const value = process.env[name];
    if (value === undefined)
        throw new Error(`${name} is not set: run this file through tests/oauth-e2e/run.sh`);
    return value;
}

export const ISSUER = env('SB_OAUTH_ISSUER');
export const MCP_URL = env('SB_OAUTH_MCP_URL');
export const ARTIFACTS = env('SB_OAUTH_ARTIFACTS');
export const FARM_DIR = env('SB_FARM_DIR');
export const USER = {
    organisation: env('SB_OAUTH_TENANT'),
    email: env('SB_OAUTH_EMAIL'),
    password: readFileSync(env('SB_OAUTH_PASSWORD_FILE'), 'utf8').trim(),
};
export const SCOPE = 'mcp:tools';
const SETUP_ERROR = process.env.SB_OAUTH_SETUP_ERROR || '';
const BASE64URL_43 = /^[A-Za-z0-9_-]{43}$/;      // 32 random bytes (codes, refresh tokens)

// Fails the test when the farm could not create the tenant and user.
export function requireUser() {
    if (SETUP_ERROR)
        assert.fail(`the farm is not set up for a sign-in: ${SETUP_ERROR}`);
}

// Fails with a sentence naming the missing endpoint when `response` says the
// route is not there (404/405, or the gateway's 503/502 for a job no worker
// serves); otherwise returns it.
export async function present(response, what) {
    if ([404, 405, 501, 502, 503].includes(response.status)) {
        const body = (await response.clone().text()).slice(0, 200);
        assert.fail(`${what} answered ${response.status} (${body}): that endpoint of issue 20 is ` +
                    `missing or not served (gateway relay / token worker op)`);
    }
    return response;
}

export function isCode(value) {
    return typeof value === 'string' && BASE64URL_43.test(value);
}

export function pkce() {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    return { verifier, challenge };
}

export function randomState() {
    return randomBytes(16).toString('base64url');
}

// The payload of a JWT (no verification: the gateway verifies).
export function jwtParts(token) {
    const [header, payload] = token.split('.');
    return {
        header: JSON.parse(Buffer.from(header, 'base64url').toString()),
        payload: JSON.parse(Buffer.from(payload, 'base64url').toString()),
    };
}

// POST /register (RFC 7591) with `metadata`; returns the registration.
export async function register(metadata) {
    const response = await present(await fetch(`${ISSUER}/register`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(metadata),
    }), 'POST /register');
    const body = await response.json();
    assert.equal(response.status, 201, `POST /register: ${JSON.stringify(body)}`);
    assert.ok(body.client_id, 'a client_id');
    return body;
}

// The authorization request of the design (S256, state, scope, resource).
export function authorizeUrl({ clientId, redirectUri, challenge, state, method = 'S256', scope = SCOPE }) {
    const url = new URL(`${ISSUER}/authorize`);
    url.search = new URLSearchParams({
        response_type: 'code', client_id: clientId, redirect_uri: redirectUri,
        code_challenge: challenge, code_challenge_method: method, state, scope, resource: MCP_URL,
    }).toString();
    return url;
}

function decodeEntities(text) {
    return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (all, name) => {
        const lower = name.toLowerCase();
        if (lower.startsWith('#x'))
            return String.fromCodePoint(parseInt(lower.slice(2), 16));
        if (lower.startsWith('#'))
            return String.fromCodePoint(parseInt(lower.slice(1), 10));
        return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[lower];
    });
}

function attributes(tag) {
    const found = {};
    for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))/g))
        found[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4]);
    return found;
}

// The sign-in form of an HTML page: its action, hidden fields and the names
// of every field and button.
export function readForm(html) {
    const forms = [...html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)];
    assert.equal(forms.length, 1, `the page has one form (found ${forms.length})`);
    const form = attributes(forms[0][0].slice(0, forms[0][0].indexOf('>') + 1));
    const hidden = {};
    const names = new Set();
    for (const m of forms[0][1].matchAll(/<(input|button)\b[^>]*>/gi)) {
        const a = attributes(m[0]);
        if (!a.name)
            continue;
        names.add(a.name);
        if (m[1].toLowerCase() === 'input' && a.type?.toLowerCase() === 'hidden')
            hidden[a.name] = a.value ?? '';
    }
    return { action: form.action, method: (form.method || 'get').toLowerCase(), hidden, names };
}

// Signs in on the page at `url` as a browser without JavaScript would:
// GET it, keep its cookies, POST the form with the hidden fields plus
// organisation, email, password and decision. Returns the POST's response
// (not followed) and the page's form.
export async function signIn(url, { organisation, email, password, decision = 'allow' } = USER) {
    const page = await present(await fetch(url, { redirect: 'manual' }), 'GET /authorize');
    const html = await page.text();
    assert.equal(page.status, 200, `GET /authorize answered ${page.status}: ${html.slice(0, 300)}`);
    assert.match(page.headers.get('content-type') || '', /^text\/html/, 'the sign-in page is HTML');
    const form = readForm(html);
    for (const name of ['organisation', 'email', 'password', 'decision'])
        assert.ok(form.names.has(name), `the form has a field "${name}" (it has: ${[...form.names].join(', ')})`);
    assert.equal(form.method, 'post', 'the form is POSTed');
    const cookies = page.headers.getSetCookie().map((c) => c.split(';')[0]);
    const target = new URL(form.action || url.pathname, url);
    const body = new URLSearchParams({ ...form.hidden, organisation, email, password, decision });
    const response = await present(await fetch(target, {
        method: 'POST',
        redirect: 'manual',
        headers: {
            'Content-Type': 'application/x-www-form-urlencoded',
            Origin: new URL(ISSUER).origin,
            ...(cookies.length ? { Cookie: cookies.join('; ') } : {}),
        },
        body,
    }), 'POST /authorize');
    return { response, form };
}

// signIn, then the 302's Location as a URL (fails on anything else).
export async function signInRedirect(url, user = USER) {
    const { response } = await signIn(url, user);
    const text = response.status === 302 ? '' : (await response.text()).slice(0, 300);
    assert.equal(response.status, 302, `POST /authorize answered ${response.status}, not a redirect: ${text}`);
    return new URL(response.headers.get('location'));
}

// A loopback HTTP server that records the redirects it receives (RFC 8252
// §7.3) and answers each with a small page. `extra` serves other paths.
export async function catcher(extra = {}) {
    const hits = [];
    const waiters = [];
    const server = createServer((req, res) => {
        const url = new URL(req.url, `http://${req.headers.host}`);
        if (extra[url.pathname]) {
            res.writeHead(200, { 'Content-Type': 'text/html' });
            res.end(extra[url.pathname]);
            return;
        }
        hits.push(url);
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<!doctype html><title>callback</title><p>signed in</p>');
        waiters.splice(0).forEach((w) => w(url));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    return {
        base,
        redirectUri: `${base}/callback`,
        hits,
        next: () => new Promise((resolve) => waiters.push(resolve)),
        close: () => new Promise((resolve) => {
            server.close(resolve);
            server.closeAllConnections();       // a browser keeps its connections alive
        }),
    };
}

// An MCP JSON-RPC POST with a bearer token; returns the response.
export async function mcpPost(token, body, sessionId) {
    return fetch(MCP_URL, {
        method: 'POST',
        headers: {
            'Content-Type': 'application/json',
            Accept: 'application/json, text/event-stream',
            'MCP-Protocol-Version': '2025-06-18',
            ...(token ? { Authorization: `Bearer ${token}` } : {}),
            ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
        },
        body: JSON.stringify(body),
    });
}

export const INITIALIZE = {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'oauth-e2e', version: '1' } },
};

// Waits for the wall clock's next second: a token issued in the second of a
// revocation is refused by design (iat <= revoked_at, docs/ADMIN.md
// "Revoked access tokens"), so a sign-in that must survive a revocation
// happens in a later second.
export async function nextSecond() {
    const second = Math.floor(Date.now() / 1000);
    while (Math.floor(Date.now() / 1000) <= second)
        await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 1));
}
