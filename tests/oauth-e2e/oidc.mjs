// tests/oauth-e2e/oidc.mjs — a second OAuth provider for the connect flow's
// tests: panva's oidc-provider (npm), certified OpenID Connect, on
// 127.0.0.1 over plain HTTP (loopback). One confidential client
// (client_secret_basic) whose only redirect URI is the farm's
// /connect/callback; PKCE S256 required; refresh tokens for the
// offline_access scope (which oidc-provider grants only with
// prompt=consent), rotated on every refresh; a short access-token TTL.
// Its development interactions (a login form taking any name and password,
// then a consent form) stand in for the SaaS's sign-in page; the account's
// `sub` is the login typed. The provider's events are counted, so a test can
// tell a code exchange from a refresh (grant.success with the grant type).
import Provider from 'oidc-provider';

const LONG_TTL_S = 3600;     // grants, refresh tokens, ID tokens, sessions: outlive any test

// Starts the provider. Returns { issuer, counts, issued, accessIssuedAt,
// close }: `counts` the token endpoint's successes by grant type, its
// refusals and userinfo answers; `issued` every code, access and refresh
// token it made (opaque: the value is the jti), for the log checks;
// `accessIssuedAt` when each access token was made (ms); `close` stops it
// (the server and its keep-alive connections).
export async function startOidc({ port, clientId, clientSecret, redirectUri, accessTtlS }) {
    const issuer = `http://127.0.0.1:${port}`;
    const provider = new Provider(issuer, {
        clients: [{
            client_id: clientId,
            client_secret: clientSecret,
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_basic',
        }],
        pkce: { required: () => true },
        scopes: ['openid', 'offline_access'],
        ttl: { AccessToken: accessTtlS, RefreshToken: LONG_TTL_S, Grant: LONG_TTL_S,
               IdToken: LONG_TTL_S, Session: LONG_TTL_S, Interaction: LONG_TTL_S },
        rotateRefreshToken: true,
        // The account is whoever signed in on the development login form.
        findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
        features: { devInteractions: { enabled: true } },
        cookies: { keys: ['connect-oidc-test-cookie-key'] },
    });
    const counts = { authorization_code: 0, refresh_token: 0, refused: 0, userinfo: 0 };
    provider.on('grant.success', (ctx) => {
        const type = ctx.oidc.params.grant_type;
        counts[type] = (counts[type] || 0) + 1;
    });
    const issued = new Set();
    const accessIssuedAt = [];
    for (const model of ['authorization_code', 'access_token', 'refresh_token']) {
        provider.on(`${model}.saved`, (saved) => {
            issued.add(saved.jti);
            if (model === 'access_token')
                accessIssuedAt.push(Date.now());
        });
    }
    provider.on('grant.error', () => { counts.refused += 1; });
    provider.on('server_error', (ctx, err) => console.error(`oidc-provider server_error: ${err}`));
    provider.use(async (ctx, next) => {
        await next();
        if (ctx.path === '/me' && ctx.status === 200)
            counts.userinfo += 1;
    });
    const server = provider.listen(port, '127.0.0.1');
    await new Promise((resolve, reject) => {
        server.once('listening', resolve);
        server.once('error', reject);
    });
    return {
        issuer,
        counts,
        issued,
        accessIssuedAt,
        close: () => new Promise((resolve) => {
            server.close(resolve);
            server.closeAllConnections();
        }),
    };
}
