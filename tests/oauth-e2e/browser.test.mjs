// tests/oauth-e2e/browser.test.mjs — the sign-in and consent page in a real
// headless browser: Debian's chromium driven by puppeteer-core over the
// DevTools protocol. Chromium trusts the farm's test CA through an NSS
// database of its own (a HOME made here; certutil from libnss3-tools), not
// by ignoring certificate errors. The page renders (title, fields, the
// client's name, its redirect host and the scopes), a wrong password and an
// unknown user show the same sentence, the right password redirects to the
// client's loopback redirect URI (a server here catches it) with code,
// state and iss; the answer carries CSP frame-ancestors 'none' and
// X-Frame-Options, and the page does not render inside a frame. Screenshots
// are kept in BUILD_DIR/artifacts (consent.png, consent-refused.png).
//
//   tests/oauth-e2e/run.sh BUILD_DIR WORK_DIR tests/oauth-e2e/browser.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import puppeteer from 'puppeteer-core';

import { ISSUER, ARTIFACTS, USER, requireUser, register, authorizeUrl, pkce, randomState, isCode,
         catcher } from './lib.mjs';

const CHROMIUM = process.env.SB_CHROMIUM ||
    ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));
const NAV_TIMEOUT_MS = 20000;       // one page load or form submission
const CLIENT_NAME = 'Switchboard browser test';

let browser;
let home;
let callback;       // the loopback redirect catcher (also serves the framing page)

// A HOME whose NSS database trusts the test CA as a TLS issuer (C,,).
function trustingHome() {
    const dir = mkdtempSync(join(tmpdir(), 'sb-oauth-chromium-'));
    const db = join(dir, '.pki', 'nssdb');
    mkdirSync(db, { recursive: true });
    execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
    execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'switchboard oauth-e2e test CA',
                              '-t', 'C,,', '-i', process.env.SB_OAUTH_CA_FILE]);
    return dir;
}

before(async () => {
    assert.ok(CHROMIUM, 'Debian\'s chromium is not installed (scripts/deps.sh installs it)');
    try {
        execFileSync('certutil', ['-H'], { stdio: 'ignore' });
    } catch (err) {
        if (err.code === 'ENOENT')
            assert.fail('certutil is not installed (libnss3-tools; scripts/deps.sh installs it)');
    }
    home = trustingHome();
    callback = await catcher({});
    browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        // root has no user namespace sandbox here; the flag is only for root.
        args: process.getuid() === 0 ? ['--no-sandbox'] : [],
        env: { ...process.env, HOME: home },
        userDataDir: join(home, 'profile'),
    });
});

after(async () => {
    await browser?.close();
    await callback?.close();
    if (home)
        rmSync(home, { recursive: true, force: true });
});

// A fresh client and authorization request for the catcher's redirect URI.
async function request() {
    const client = await register({
        client_name: CLIENT_NAME, redirect_uris: [callback.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'none',
    });
    const { challenge } = pkce();
    const state = randomState();
    return { client, state, url: authorizeUrl({ clientId: client.client_id, redirectUri: callback.redirectUri,
                                                challenge, state }) };
}

async function fill(page, { organisation, email, password }) {
    for (const [name, value] of Object.entries({ organisation, email, password })) {
        await page.$eval(`input[name="${name}"]`, (el) => { el.value = ''; });
        await page.type(`input[name="${name}"]`, value);
    }
}

// Presses a button and waits for the form's POST answer and the page it
// leads to. The answer is taken from the POST itself: waitForNavigation
// alone may resolve with null (a slow POST under the sanitizers).
async function submit(page, decision) {
    const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(`${ISSUER}/authorize`),
                             { timeout: NAV_TIMEOUT_MS }),
        page.waitForNavigation({ timeout: NAV_TIMEOUT_MS }),
        page.click(`button[name="decision"][value="${decision}"]`),
    ]);
    return response;
}

function textLines(text) {
    return new Set(text.split('\n').map((l) => l.trim()).filter(Boolean));
}

test('the consent page in chromium: render, refuse a wrong password, allow, redirect with code, state and iss', async () => {
    requireUser();
    const { state, url } = await request();
    const page = await browser.newPage();
    const response = await page.goto(url.href, { timeout: NAV_TIMEOUT_MS });
    assert.equal(response.status(), 200, `GET /authorize in chromium: ${response.status()}`);

    // The answer's headers: not frameable, not cached.
    const headers = response.headers();
    assert.match(headers['content-security-policy'] || '', /frame-ancestors 'none'/,
                 `CSP: ${headers['content-security-policy']}`);
    assert.match(headers['x-frame-options'] || '', /^deny$/i, 'X-Frame-Options: DENY');
    assert.match(headers['cache-control'] || '', /no-store/, 'Cache-Control: no-store');

    // What it shows.
    assert.ok((await page.title()).trim(), 'a title');
    for (const name of ['organisation', 'email', 'password'])
        assert.ok(await page.$(`input[name="${name}"]`), `an input "${name}"`);
    assert.equal(await page.$eval('input[name="password"]', (el) => el.type), 'password');
    for (const decision of ['allow', 'deny'])
        assert.ok(await page.$(`button[name="decision"][value="${decision}"]`), `a ${decision} button`);
    const shown = await page.evaluate(() => document.body.innerText);
    assert.ok(shown.includes(CLIENT_NAME), 'the client\'s name is shown');
    assert.ok(shown.includes('127.0.0.1'), 'the redirect host is shown');
    assert.ok(shown.includes('mcp:tools'), 'the scope is shown');
    const shot = join(ARTIFACTS, 'consent.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);

    // A wrong password: the page again, with one sentence more; an unknown
    // user gets the same sentence.
    await fill(page, { ...USER, password: `${USER.password}-wrong` });
    const refused = await submit(page, 'allow');
    assert.equal(new URL(refused.url()).origin, ISSUER, 'still on the sign-in page');
    assert.ok(await page.$('input[name="password"]'), 'the form again');
    const before = textLines(shown);
    const added = [...textLines(await page.evaluate(() => document.body.innerText))].filter((l) => !before.has(l));
    assert.ok(added.length >= 1, 'a sentence says the sign-in failed');
    await page.screenshot({ path: join(ARTIFACTS, 'consent-refused.png'), fullPage: true });
    await fill(page, { ...USER, email: 'nobody@acme.test' });
    await submit(page, 'allow');
    const unknown = [...textLines(await page.evaluate(() => document.body.innerText))].filter((l) => !before.has(l));
    assert.deepEqual(unknown, added, 'an unknown user gets the same sentence as a wrong password');
    assert.equal(callback.hits.length, 0, 'no redirect to the client yet');

    // The right password: redirected to the client.
    await fill(page, USER);
    const arrived = callback.next();
    await submit(page, 'allow');
    const hit = await arrived;
    assert.equal(`${hit.origin}${hit.pathname}`, callback.redirectUri);
    assert.equal(hit.searchParams.get('error'), null, `no error: ${hit}`);
    assert.ok(isCode(hit.searchParams.get('code')), 'a code');
    assert.equal(hit.searchParams.get('state'), state, 'state returned');
    assert.equal(hit.searchParams.get('iss'), ISSUER, 'iss (RFC 9207)');
    await page.close();
});

test('the sign-in page does not render inside a frame', async () => {
    const { url } = await request();
    const framing = `/frame-${Date.now()}`;
    const host = await catcher({
        [framing]: `<!doctype html><title>framing</title><iframe src="${url.href.replace(/"/g, '&quot;')}"></iframe>`,
    });
    const page = await browser.newPage();
    const blocked = [];
    page.on('console', (msg) => { if (/frame-ancestors|X-Frame-Options/i.test(msg.text())) blocked.push(msg.text()); });
    page.on('requestfailed', (req) => { if (req.url().startsWith(ISSUER)) blocked.push(req.failure()?.errorText); });
    try {
        const loaded = page.waitForResponse((r) => r.url().startsWith(`${ISSUER}/authorize`),
                                            { timeout: NAV_TIMEOUT_MS });
        await page.goto(`${host.base}${framing}`, { timeout: NAV_TIMEOUT_MS });
        const framed = await loaded;
        assert.equal(framed.status(), 200, 'the page was fetched for the frame');
        // The response reached the browser, which refuses to show it.
        const frame = page.frames().find((f) => f !== page.mainFrame());
        assert.ok(frame, 'the iframe exists');
        await frame.waitForFunction(() => document.readyState === 'complete', { timeout: NAV_TIMEOUT_MS })
            .catch(() => {});
        const inside = await frame.$('input[name="password"]').catch(() => null);
        assert.equal(inside, null, `the sign-in form rendered inside a frame (${frame.url()})`);
        assert.ok(blocked.length > 0 || frame.url().startsWith('chrome-error:'),
                  `chromium blocked the frame (frame at ${frame.url()})`);
    } finally {
        await page.close();
        await host.close();
    }
});
