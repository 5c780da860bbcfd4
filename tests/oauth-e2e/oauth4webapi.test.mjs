// tests/oauth-e2e/oauth4webapi.test.mjs — a strict OAuth 2 client library
// (oauth4webapi) against the HTTPS farm: discovery, dynamic registration,
// the code flow with PKCE S256 (the sign-in page filled in as a browser
// would, lib.mjs signIn), RFC 9207 `iss` checked by validateAuthResponse,
// the token, refresh rotation and reuse detection (the first refresh token
// again is invalid_grant and revokes the family: the rotated one fails too),
// a wrong `state` refused by the library, a `plain` challenge refused by
// the server, consent denied, a confidential client (client_secret_basic,
// a wrong secret refused), revocation.
//
//   tests/oauth-e2e/run.sh BUILD_DIR WORK_DIR tests/oauth-e2e/oauth4webapi.test.mjs
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';

import { ISSUER, MCP_URL, SCOPE, INITIALIZE, USER, requireUser, present, isCode, jwtParts, mcpPost,
         authorizeUrl, signInRedirect } from './lib.mjs';

const REDIRECT_URI = 'http://127.0.0.1:9/callback';    // never reached: the test reads the 302
const RESOURCE = { additionalParameters: { resource: MCP_URL } };

let as;         // the authorization server's metadata
let client;     // the registered client
const auth = oauth.None();      // a public client: PKCE, no secret

before(async () => {
    const issuer = new URL(ISSUER);
    as = await oauth.processDiscoveryResponse(issuer,
        await present(await oauth.discoveryRequest(issuer, { algorithm: 'oauth2' }),
                      'GET /.well-known/oauth-authorization-server'));
});

// Registers a public client (RFC 7591) once.
async function registered() {
    if (client)
        return client;
    const response = await present(await oauth.dynamicClientRegistrationRequest(as, {
        client_name: 'switchboard oauth-e2e (oauth4webapi)', redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'none', scope: SCOPE,
    }), 'POST /register');
    client = await oauth.processDynamicClientRegistrationResponse(response);
    assert.ok(client.client_id, 'a client_id');
    assert.equal(client.client_secret, undefined, 'no secret for a public client');
    return client;
}

// The code flow up to the callback: returns { callback, verifier, state }.
async function authorize({ method = 'S256', decision = 'allow', c = null } = {}) {
    c = c || await registered();
    const verifier = oauth.generateRandomCodeVerifier();
    const challenge = method === 'S256' ? await oauth.calculatePKCECodeChallenge(verifier) : verifier;
    const state = oauth.generateRandomState();
    const url = authorizeUrl({ clientId: c.client_id, redirectUri: REDIRECT_URI, challenge, state, method });
    if (method !== 'S256') {
        // Refused before the page: redirected with the error (the client and
        // the redirect URI are valid).
        const response = await present(await fetch(url, { redirect: 'manual' }), 'GET /authorize');
        assert.equal(response.status, 302, `GET /authorize with ${method}: ${response.status}`);
        return { callback: new URL(response.headers.get('location')), verifier, state };
    }
    return { callback: await signInRedirect(url, { ...USER, decision }), verifier, state };
}

async function redeem(callback, verifier, state) {
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const response = await present(await oauth.authorizationCodeGrantRequest(as, client, auth, params,
        REDIRECT_URI, verifier, RESOURCE), 'POST /token');
    return oauth.processAuthorizationCodeResponse(as, client, response);
}

async function refresh(token) {
    const response = await present(await oauth.refreshTokenGrantRequest(as, client, auth, token, RESOURCE),
                                   'POST /token');
    return oauth.processRefreshTokenResponse(as, client, response);
}

function isInvalidGrant(err) {
    return err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant';
}

test('discovery: RFC 8414 metadata the library accepts', () => {
    assert.equal(as.issuer, ISSUER);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    assert.equal(as.authorization_response_iss_parameter_supported, true,
                 'so validateAuthResponse requires iss (RFC 9207)');
    assert.ok(as.registration_endpoint, 'a registration endpoint');
});

test('code + PKCE + iss, then refresh rotation and reuse detection', async () => {
    requireUser();
    const { callback, verifier, state } = await authorize();
    assert.equal(callback.searchParams.get('iss'), ISSUER, 'iss in the redirect');
    const tokens = await redeem(callback, verifier, state);
    assert.equal(tokens.token_type, 'bearer');
    assert.ok(isCode(tokens.refresh_token), 'a refresh token');
    assert.ok(tokens.expires_in > 0 && tokens.expires_in <= 900, `expires_in ${tokens.expires_in}`);
    assert.deepEqual(tokens.scope.split(' ').sort(), SCOPE.split(' ').sort(), 'the scope granted');
    const claims = jwtParts(tokens.access_token).payload;
    assert.equal(claims.iss, ISSUER);
    assert.deepEqual([claims.aud].flat(), [MCP_URL], 'aud = the resource');
    assert.equal(claims.client_id, client.client_id);
    assert.equal((await mcpPost(tokens.access_token, INITIALIZE)).status, 200, 'the access token opens /mcp');

    // The same code a second time is invalid_grant (single use).
    await assert.rejects(redeem(callback, verifier, state), isInvalidGrant, 'a code is single use');

    // Rotation: each refresh gives a new refresh token.
    const first = await authorize();
    const family = await redeem(first.callback, first.verifier, first.state);
    const rotated = await refresh(family.refresh_token);
    assert.ok(isCode(rotated.refresh_token));
    assert.notEqual(rotated.refresh_token, family.refresh_token, 'rotated');
    assert.equal((await mcpPost(rotated.access_token, INITIALIZE)).status, 200, 'the refreshed access token works');

    // Reuse: the first refresh token again is refused, and the family with it.
    await assert.rejects(refresh(family.refresh_token), isInvalidGrant, 'a used refresh token is refused');
    await assert.rejects(refresh(rotated.refresh_token), isInvalidGrant,
                         'after a reuse the whole family is revoked, the rotated token too');
});

test('a wrong state is refused by validateAuthResponse', async () => {
    requireUser();
    const { callback, state } = await authorize();
    assert.throws(() => oauth.validateAuthResponse(as, client, callback, `${state}x`),
        (err) => err instanceof oauth.OperationProcessingError && /state/i.test(err.message));
    // Without iss the library refuses the response too (RFC 9207).
    const stripped = new URL(callback);
    stripped.searchParams.delete('iss');
    assert.throws(() => oauth.validateAuthResponse(as, client, stripped, state),
        (err) => err instanceof oauth.OperationProcessingError && /iss/i.test(err.message));
});

test('a plain PKCE challenge is refused (redirected invalid_request, with iss)', async () => {
    await registered();
    const { callback, state } = await authorize({ method: 'plain' });
    assert.equal(callback.searchParams.get('code'), null, 'no code');
    assert.equal(callback.searchParams.get('iss'), ISSUER, 'iss on the error response too');
    assert.throws(() => oauth.validateAuthResponse(as, client, callback, state),
        (err) => err instanceof oauth.AuthorizationResponseError && err.error === 'invalid_request');
});

test('revocation (RFC 7009): a revoked refresh token is refused', async () => {
    requireUser();
    const { callback, verifier, state } = await authorize();
    const tokens = await redeem(callback, verifier, state);
    const response = await present(await oauth.revocationRequest(as, client, auth, tokens.refresh_token),
                                   'POST /revoke');
    await oauth.processRevocationResponse(response);
    await assert.rejects(refresh(tokens.refresh_token), isInvalidGrant, 'revoked');
});

test('consent denied: redirected with access_denied and iss', async () => {
    requireUser();
    const { callback, state } = await authorize({ decision: 'deny' });
    assert.equal(callback.searchParams.get('code'), null, 'no code');
    assert.throws(() => oauth.validateAuthResponse(as, client, callback, state),
        (err) => err instanceof oauth.AuthorizationResponseError && err.error === 'access_denied');
});

test('a confidential client: client_secret_basic, and a wrong secret is invalid_client', async () => {
    requireUser();
    const response = await present(await oauth.dynamicClientRegistrationRequest(as, {
        client_name: 'switchboard oauth-e2e (confidential)', redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic', scope: SCOPE,
    }), 'POST /register');
    const confidential = await oauth.processDynamicClientRegistrationResponse(response);
    assert.ok(confidential.client_secret, 'a client_secret for a confidential client');
    const { callback, verifier, state } = await authorize({ c: confidential });
    const params = oauth.validateAuthResponse(as, confidential, callback, state);
    const wrong = await oauth.authorizationCodeGrantRequest(as, confidential,
        oauth.ClientSecretBasic(`${confidential.client_secret}x`), params, REDIRECT_URI, verifier, RESOURCE);
    // RFC 6749 §5.2: a client that authenticated with the Authorization
    // header gets 401 with a Basic challenge, which oauth4webapi reports as
    // such; the body is still invalid_client.
    await assert.rejects(oauth.processAuthorizationCodeResponse(as, confidential, wrong),
        (err) => err instanceof oauth.WWWAuthenticateChallengeError && err.status === 401
              && err.cause.some((c) => c.scheme === 'basic')
              && err.response.headers.get('content-type') === 'application/json', 'a wrong secret');
    const right = await oauth.authorizationCodeGrantRequest(as, confidential,
        oauth.ClientSecretBasic(confidential.client_secret), params, REDIRECT_URI, verifier, RESOURCE);
    const tokens = await oauth.processAuthorizationCodeResponse(as, confidential, right);
    assert.equal(jwtParts(tokens.access_token).payload.client_id, confidential.client_id);
    const rotated = await oauth.processRefreshTokenResponse(as, confidential,
        await oauth.refreshTokenGrantRequest(as, confidential, oauth.ClientSecretBasic(confidential.client_secret),
                                             tokens.refresh_token, RESOURCE));
    assert.notEqual(rotated.refresh_token, tokens.refresh_token, 'rotated');
});
