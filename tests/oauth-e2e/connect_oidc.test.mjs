// tests/oauth-e2e/connect_oidc.test.mjs — issue 21 item 5: a tenant connects
// a SaaS whose OAuth server others wrote, panva's oidc-provider (oidc.mjs),
// through the farm's connect flow in a real headless browser (Debian's
// chromium driven by puppeteer-core, JavaScript off: every page of the flow
// must work without it), then calls the SaaS with that grant through the
// gateway, and keeps calling after the access token expired (the token
// service refreshes it at oidc-provider, which rotates the refresh token).
//
//   tests/oauth-e2e/connect-oidc.sh BUILD_DIR WORK_DIR
//
// connect-oidc.sh writes the connector (oidc-test, tool oidc_userinfo: GET
// /me with the tenant's access token) and starts the farm with it; this file
// starts oidc-provider on the port it chose, with the farm's
// /connect/callback as the client's redirect URI.
//
// Steps: tools/call oidc_userinfo for tenant acme's user (a token of the
// farm's key, sb-token) answers isError with the connect link; chromium opens
// it: the page names the connector, the tenant and the user; Continue →
// oidc-provider's login (any name) and consent → the farm's callback says
// Connected; then oidc_userinfo answers the name signed in as `sub`. The
// access token lives ACCESS_TTL_S: after it expired (oidc-provider's clock),
// the next call still answers the same `sub`, and oidc-provider counted a
// refresh_token grant for it; twice (the second refresh uses the refresh
// token the first rotated in, so the token service kept it), and no grant
// refused. Then the sandbox's own provider (sandbox-oauth) the same way in
// chromium, JavaScript still off: its connect page names it, the tenant and
// the user; the sandbox's sign-in page; Connected; oauth_whoami answers the
// account typed there. Last, no token, code or the client secret
// oidc-provider issued or knows appears in any farm log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import puppeteer from 'puppeteer-core';

import { ISSUER, MCP_URL, ARTIFACTS, FARM_DIR, requireUser } from './lib.mjs';
import { startOidc } from './oidc.mjs';

const CHROMIUM = process.env.SB_CHROMIUM ||
    ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
const NAV_TIMEOUT_MS = 20000;       // one page load or form submission
const ACCESS_TTL_S = 6;             // oidc-provider's access tokens live this long
const CONNECTOR = 'oidc-test';
const TOOL = 'oidc_userinfo';
const TENANT = process.env.SB_OAUTH_TENANT;
const SUBJECT = 'user:connect-oidc';
const ACCOUNT = `acct-${randomBytes(4).toString('hex')}`;      // the name typed at oidc-provider

let oidc;
let browser;
let home;
let token;                          // the MCP client's access token (tenant acme)

function env(name) {
    const value = process.env[name];
    assert.ok(value, `${name} is not set: run this file through tests/oauth-e2e/connect-oidc.sh`);
    return value;
}

// A HOME whose NSS database trusts the farm's test CA as a TLS issuer.
function trustingHome() {
    const dir = mkdtempSync(join(tmpdir(), 'sb-connect-chromium-'));
    const db = join(dir, '.pki', 'nssdb');
    mkdirSync(db, { recursive: true });
    execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
    execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'switchboard oauth-e2e test CA',
                              '-t', 'C,,', '-i', process.env.SB_OAUTH_CA_FILE]);
    return dir;
}

before(async () => {
    assert.ok(CHROMIUM, 'Debian\'s chromium is not installed (scripts/deps.sh installs it)');
    oidc = await startOidc({
        port: Number(env('SB_OIDC_PORT')), clientId: env('SB_OIDC_CLIENT_ID'),
        clientSecret: env('SB_OIDC_CLIENT_SECRET'), redirectUri: `${ISSUER}/connect/callback`,
        accessTtlS: ACCESS_TTL_S,
    });
    home = trustingHome();
    browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: process.getuid() === 0 ? ['--no-sandbox'] : [],
        env: { ...process.env, HOME: home },
        userDataDir: join(home, 'profile'),
    });
    token = execFileSync(join(env('SB_FARM_BIN'), 'sb-token'), [
        '--key-file', join(FARM_DIR, 'token.key'), '--tenant', TENANT, '--subject', SUBJECT,
        '--client-id', 'connect-oidc', '--scope', 'mcp:tools mcp:write', '--audience', MCP_URL,
        '--ttl', '3600'], { encoding: 'utf8' }).trim();
});

after(async () => {
    await browser?.close();
    await oidc?.close();
    if (home)
        rmSync(home, { recursive: true, force: true });
});

// tools/call `name` (no arguments) as the tenant's user; the JSON-RPC result.
async function call(name) {
    const response = await fetch(MCP_URL, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json',
                   Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {} } }),
    });
    const text = await response.text();
    assert.equal(response.status, 200, `tools/call ${name}: HTTP ${response.status} ${text.slice(0, 300)}`);
    const reply = JSON.parse(text);
    assert.ok(reply.result, `tools/call ${name}: a result, got ${text.slice(0, 300)}`);
    return reply.result;
}

function resultText(result) {
    return (result.content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

// oidc_userinfo answers the account signed in at oidc-provider.
async function assertUserinfo(what) {
    const result = await call(TOOL);
    assert.ok(!result.isError, `${what}: ${TOOL} answered isError: ${resultText(result)}`);
    assert.equal(result.structuredContent?.sub, ACCOUNT,
                 `${what}: ${TOOL}'s sub is the account signed in (${JSON.stringify(result)})`);
}

// Waits (oidc-provider's clock, not the farm's) until the newest access
// token oidc-provider issued has expired.
async function untilExpired() {
    const last = oidc.accessIssuedAt.at(-1);
    const wait = last + ACCESS_TTL_S * 1000 + 500 - Date.now();
    if (wait > 0)
        await new Promise((resolve) => setTimeout(resolve, wait));
}

async function navigate(page, action) {
    const [response] = await Promise.all([page.waitForNavigation({ timeout: NAV_TIMEOUT_MS }), action()]);
    return response;
}

function bodyText(page) {
    return page.$eval('body', (el) => el.innerText);
}

test('connect oidc-provider in chromium, call with the grant, keep calling across refreshes', async () => {
    requireUser();
    // No connection yet: isError, a sentence and the link.
    const first = await call(TOOL);
    const sentence = resultText(first);
    assert.equal(first.isError, true, `${TOOL} without a connection is isError: ${JSON.stringify(first)}`);
    const link = sentence.match(/https:\/\/[^\s"'<>)]+\/connect\/oidc-test\?ticket=[A-Za-z0-9._~%-]+/)?.[0];
    assert.ok(link, `the answer carries the connect link: ${sentence}`);
    assert.ok(link.startsWith(`${ISSUER}/connect/${CONNECTOR}?`), `the link is the farm's: ${link}`);
    assert.equal(oidc.counts.authorization_code, 0, 'nothing exchanged yet');

    // The connect page, without JavaScript: the connector, tenant and user.
    const page = await browser.newPage();
    await page.setJavaScriptEnabled(false);
    const shown = await page.goto(link, { timeout: NAV_TIMEOUT_MS });
    assert.equal(shown.status(), 200, `GET the connect link: ${shown.status()}`);
    const text = await bodyText(page);
    assert.ok(text.includes('OIDC test provider') || text.includes(CONNECTOR), `the page names the connector: ${text}`);
    assert.ok(text.includes(TENANT), `the page names the tenant ${TENANT}: ${text}`);
    assert.ok(text.includes(SUBJECT.replace(/^user:/, '')), `the page names the user ${SUBJECT}: ${text}`);
    await page.screenshot({ path: join(ARTIFACTS, 'connect-oidc.png'), fullPage: true });
    const buttons = await page.$$eval('form button, form input[type=submit]',
                                      (els) => els.map((el) => (el.innerText || el.value || '').trim()));
    const index = buttons.findIndex((b) => /continue/i.test(b));
    assert.ok(index >= 0, `a Continue button on the connect page (buttons: ${buttons.join(', ')})`);

    // Continue → oidc-provider's login form (its development interaction).
    await navigate(page, async () => (await page.$$('form button, form input[type=submit]'))[index].click());
    assert.ok(page.url().startsWith(`${oidc.issuer}/interaction/`),
              `at oidc-provider's login: ${page.url()} shows ${await bodyText(page)}`);
    await page.type('input[name="login"]', ACCOUNT);
    await page.type('input[name="password"]', 'any password');
    await navigate(page, () => page.click('button[type="submit"]'));
    assert.ok(page.url().startsWith(`${oidc.issuer}/interaction/`), `at oidc-provider's consent: ${page.url()}`);

    // Consent → back to the farm's callback, which exchanges the code.
    const [callback] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${ISSUER}/connect/callback`), { timeout: NAV_TIMEOUT_MS }),
        page.waitForNavigation({ timeout: NAV_TIMEOUT_MS, waitUntil: 'load' }),
        page.click('button[type="submit"]'),
    ]);
    const done = await bodyText(page);
    await page.screenshot({ path: join(ARTIFACTS, 'connect-oidc-done.png'), fullPage: true });
    assert.equal(callback.status(), 200, `the callback answered ${callback.status()}: ${done}`);
    assert.match(done, /connected/i, `the callback page says Connected: ${done}`);
    assert.equal(oidc.counts.authorization_code, 1, 'the code was exchanged once');
    const params = new URL(callback.url()).searchParams;
    assert.ok(params.get('code') && params.get('state'), 'the callback came with code and state');

    // The grant at work through the gateway.
    await assertUserinfo('after connecting');
    const refused = oidc.counts.refused;
    assert.equal(refused, 0, 'oidc-provider refused no grant');

    // Twice: the access token expires, the next call refreshes it.
    for (const round of [1, 2]) {
        await untilExpired();
        const refreshes = oidc.counts.refresh_token;
        const served = oidc.counts.userinfo;
        await assertUserinfo(`after access token expiry ${round}`);
        assert.ok(oidc.counts.refresh_token > refreshes,
                  `round ${round}: a refresh_token grant at oidc-provider (${refreshes} before, ${oidc.counts.refresh_token} after)`);
        assert.ok(oidc.counts.userinfo > served, `round ${round}: the call reached oidc-provider's userinfo`);
        assert.equal(oidc.counts.refused, 0, `round ${round}: no grant refused (the rotated refresh token was kept)`);
    }
    await page.close();
    console.log(`oidc-provider: ${JSON.stringify(oidc.counts)}`);
});

test('the sandbox provider\'s connect page in chromium without JavaScript', async () => {
    requireUser();
    const first = await call('oauth_whoami');
    const sentence = resultText(first);
    assert.equal(first.isError, true, `oauth_whoami without a connection is isError: ${JSON.stringify(first)}`);
    const link = sentence.match(/https:\/\/[^\s"'<>)]+\/connect\/sandbox-oauth\?ticket=[A-Za-z0-9._~%-]+/)?.[0];
    assert.ok(link, `the answer carries the connect link: ${sentence}`);

    const page = await browser.newPage();
    await page.setJavaScriptEnabled(false);
    const shown = await page.goto(link, { timeout: NAV_TIMEOUT_MS });
    assert.equal(shown.status(), 200, `GET the connect link: ${shown.status()}`);
    const text = await bodyText(page);
    for (const [what, value] of [['connector', 'Sandbox CRM (OAuth)'], ['tenant', TENANT], ['user', SUBJECT]])
        assert.ok(text.includes(value), `the page names the ${what} (${value}): ${text}`);
    await page.screenshot({ path: join(ARTIFACTS, 'connect-sandbox.png'), fullPage: true });

    // Continue → the sandbox's sign-in page → Allow → the callback.
    await navigate(page, () => page.click('form button[type="submit"]'));
    assert.match(await page.title(), /Sign in to the Sandbox CRM/, `at the sandbox's sign-in: ${page.url()}`);
    const account = `sbx-${randomBytes(3).toString('hex')}`;
    await page.type('input[name="account"]', account);
    const [callback] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${ISSUER}/connect/callback`), { timeout: NAV_TIMEOUT_MS }),
        page.waitForNavigation({ timeout: NAV_TIMEOUT_MS, waitUntil: 'load' }),
        page.click('button[name="decision"][value="allow"]'),
    ]);
    const done = await bodyText(page);
    assert.equal(callback.status(), 200, `the callback answered ${callback.status()}: ${done}`);
    assert.match(done, /connected/i, `the callback page says Connected: ${done}`);
    await page.close();

    const result = await call('oauth_whoami');
    assert.ok(!result.isError, `oauth_whoami answered isError: ${resultText(result)}`);
    assert.equal(result.structuredContent?.account, account, `oauth_whoami's account (${JSON.stringify(result)})`);
});

test('no token, code or client secret of oidc-provider in the farm logs', () => {
    requireUser();
    const secrets = [...oidc.issued, env('SB_OIDC_CLIENT_SECRET')];
    assert.ok(oidc.issued.size >= 4, `oidc-provider made codes and tokens (${oidc.issued.size})`);
    const logs = join(FARM_DIR, 'logs');
    for (const file of readdirSync(logs)) {
        const text = readFileSync(join(logs, file), 'utf8');
        for (const secret of secrets)
            assert.ok(!text.includes(secret), `${file} holds a secret oidc-provider issued or knows`);
    }
});
