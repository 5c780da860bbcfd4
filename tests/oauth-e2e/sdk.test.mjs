// tests/oauth-e2e/sdk.test.mjs — the official MCP TypeScript SDK client's
// OAuth support against the HTTPS farm: from the 401 on /mcp through
// discovery (RFC 9728, RFC 8414), dynamic registration (RFC 7591), the
// authorization with PKCE (the sign-in page filled in as a browser would,
// lib.mjs signIn), the token exchange and an authenticated tools/list; then
// the access token is spoiled in the provider, the gateway answers 401 and
// the SDK refreshes (rotation: a new refresh token) and lists again.
//
//   tests/oauth-e2e/run.sh BUILD_DIR WORK_DIR tests/oauth-e2e/sdk.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

import { ISSUER, MCP_URL, SCOPE, INITIALIZE, USER, requireUser, present, isCode, jwtParts, mcpPost,
         signInRedirect } from './lib.mjs';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';    // never reached: the test reads the 302

// An OAuthClientProvider kept in memory; redirectToAuthorization signs in
// on the page and keeps the redirect it answers with.
class Provider {
    constructor() {
        this.saved = { tokens: [] };
    }
    get redirectUrl() { return REDIRECT_URI; }
    get clientMetadata() {
        return {
            client_name: 'switchboard oauth-e2e (MCP SDK)', redirect_uris: [REDIRECT_URI],
            grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
            token_endpoint_auth_method: 'none', scope: SCOPE,
        };
    }
    state() { this.saved.state = `sdk-${Date.now()}`; return this.saved.state; }
    clientInformation() { return this.saved.client; }
    saveClientInformation(info) { this.saved.client = info; }
    tokens() { return this.saved.tokens.at(-1); }
    saveTokens(tokens) { this.saved.tokens.push(tokens); }
    saveCodeVerifier(verifier) { this.saved.verifier = verifier; }
    codeVerifier() { return this.saved.verifier; }
    saveDiscoveryState(state) { this.saved.discovery = state; }
    discoveryState() { return this.saved.discovery; }
    async redirectToAuthorization(url) {
        this.saved.authorizationUrl = url;
        this.saved.callback = await signInRedirect(url, USER);
    }
    // Makes the current access token one the gateway refuses (its signature
    // spoiled), as an expired one would be.
    spoilAccessToken() {
        const tokens = this.saved.tokens.at(-1);
        const last = tokens.access_token.at(-2) === 'A' ? 'B' : 'A';
        this.saved.tokens.push({ ...tokens,
            access_token: tokens.access_token.slice(0, -2) + last + tokens.access_token.at(-1) });
    }
}

test('discovery: the 401 on /mcp names the resource metadata, which names the authorization server', async () => {
    const response = await mcpPost(null, INITIALIZE);
    assert.equal(response.status, 401, '/mcp without a token');
    const challenge = response.headers.get('www-authenticate') || '';
    const match = /resource_metadata="([^"]+)"/.exec(challenge);
    assert.ok(match, `WWW-Authenticate names resource_metadata: ${challenge}`);
    assert.match(challenge, /^Bearer /, 'a Bearer challenge');

    const prm = await (await present(await fetch(match[1]), `GET ${match[1]}`)).json();
    assert.equal(prm.resource, MCP_URL, 'protected resource = the public URL + /mcp');
    assert.deepEqual(prm.authorization_servers, [ISSUER], 'the authorization server is the issuer');

    const metaUrl = `${ISSUER}/.well-known/oauth-authorization-server`;
    const meta = await (await present(await fetch(metaUrl), `GET ${metaUrl}`)).json();
    assert.equal(meta.issuer, ISSUER, 'issuer = --public-url, an https URL');
    for (const [field, path] of [['authorization_endpoint', '/authorize'], ['token_endpoint', '/token'],
                                 ['registration_endpoint', '/register'], ['revocation_endpoint', '/revoke'],
                                 ['jwks_uri', '/.well-known/jwks.json']])
        assert.equal(meta[field], `${ISSUER}${path}`, field);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.equal(meta.client_id_metadata_document_supported, true);
    assert.ok(meta.grant_types_supported.includes('refresh_token'), 'refresh_token grant');
});

test('SDK client: 401 → discovery → registration → sign-in with PKCE → token → tools/list → refresh → tools/list', async () => {
    requireUser();
    const provider = new Provider();

    // The first connect meets the 401, discovers, registers, and sends the
    // user to the page (redirectToAuthorization); it ends in UnauthorizedError.
    const first = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
    await assert.rejects(new Client({ name: 'oauth-e2e', version: '1' }).connect(first),
        (err) => err instanceof UnauthorizedError, 'the first connect needs the user');
    const { client, authorizationUrl, callback, state } = provider.saved;
    assert.ok(client?.client_id, 'the SDK registered a client (RFC 7591)');
    assert.equal(`${authorizationUrl.origin}${authorizationUrl.pathname}`, `${ISSUER}/authorize`);
    assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorizationUrl.searchParams.get('resource'), MCP_URL, 'RFC 8707 resource');
    assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI, 'redirected to the registered URI');
    assert.equal(callback.searchParams.get('error'), null, `no error: ${callback}`);
    assert.ok(isCode(callback.searchParams.get('code')), 'a 43-character code');
    assert.equal(callback.searchParams.get('state'), state, 'state returned');
    assert.equal(callback.searchParams.get('iss'), ISSUER, 'iss returned (RFC 9207)');

    await first.finishAuth(callback.searchParams.get('code'));
    const issued = provider.tokens();
    assert.ok(issued?.access_token, 'an access token');
    assert.equal(issued.token_type.toLowerCase(), 'bearer');
    assert.ok(isCode(issued.refresh_token), 'a 43-character refresh token');
    const { header, payload } = jwtParts(issued.access_token);
    assert.equal(header.alg, 'EdDSA');
    assert.ok(header.kid, 'a kid');
    assert.equal(payload.iss, ISSUER);
    assert.deepEqual([payload.aud].flat(), [MCP_URL], 'aud = the resource');
    assert.match(payload.sub, /^user:[0-9]+$/);
    assert.equal(payload.exp - payload.iat, 900, 'SB_OAUTH_ACCESS_TTL_S');

    // Connected with the token: an authenticated tools/list.
    const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider });
    const mcp = new Client({ name: 'oauth-e2e', version: '1' });
    try {
        await mcp.connect(transport);
        const listed = (await mcp.listTools()).tools.map((t) => t.name);
        assert.ok(listed.includes('search_accounts'), `tools/list: ${listed.join(', ')}`);

        // The access token no longer works: the SDK refreshes on the 401 and
        // sends the request again.
        provider.spoilAccessToken();
        const before = provider.saved.tokens.length;
        const again = (await mcp.listTools()).tools.map((t) => t.name);
        assert.deepEqual(again, listed, 'tools/list after the refresh');
        assert.equal(provider.saved.tokens.length, before + 1, 'the SDK saved refreshed tokens');
        const refreshed = provider.tokens();
        assert.notEqual(refreshed.refresh_token, issued.refresh_token, 'the refresh token rotated');
        assert.ok(isCode(refreshed.refresh_token));
        assert.notEqual(refreshed.access_token, issued.access_token, 'a new access token');
        assert.equal(jwtParts(refreshed.access_token).payload.sub, payload.sub, 'the same user');
    } finally {
        await transport.terminateSession().catch(() => {});
        await mcp.close();
    }
});
