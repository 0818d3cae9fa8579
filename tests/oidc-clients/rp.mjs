// A relying party built on openid-client (npm), driven by tests/api/oidc_clients.rs over
// stdin/stdout, one JSON object per line: it discovers the provider, prints the authorization
// URL (code flow with PKCE S256, state and nonce), reads back the URL the browser landed on,
// then exchanges the code, reads userinfo, refreshes, revokes, and reports what it saw.
// With MODE `par` the authorization request is pushed first (RFC 9126); with MODE `device` it
// runs the device flow instead (RFC 8628): prints the device authorization answer, polls until
// the person decides, and reports the tokens' claims and userinfo (or the error).
// Usage: node rp.mjs ISSUER CLIENT_ID CLIENT_SECRET|- REDIRECT_URI [code|par|device]
import * as client from 'openid-client';
import * as readline from 'node:readline';

const [issuer, clientId, secret, redirectUri, mode = 'code'] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
const say = (object) => process.stdout.write(JSON.stringify(object) + '\n');
const failure = (error) => ({ name: error.name, code: error.code, error: error.error, message: error.message, cause: String(error.cause ?? "") });

try {
  const options = { execute: [client.allowInsecureRequests] };
  const config = secret === '-'
    ? await client.discovery(new URL(issuer), clientId, undefined, client.None(), options)
    : await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), options);
  if (mode === 'device') {
    const started = await client.initiateDeviceAuthorization(config, { scope: 'openid profile email' });
    say({ device: started });
    let report;
    try {
      const tokens = await client.pollDeviceAuthorizationGrant(config, started);
      const claims = tokens.claims();
      report = { claims, userinfo: await client.fetchUserInfo(config, tokens.access_token, claims.sub) };
    } catch (error) {
      report = { failed: failure(error) };
    }
    say(report);
    lines.close();
    process.exit(0);
  }
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const build = mode === 'par' ? client.buildAuthorizationUrlWithPAR : client.buildAuthorizationUrl;
  const url = await build(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  say({ authorize_url: url.href });
  const landed = new URL(await nextLine());
  const tokens = await client.authorizationCodeGrant(config, landed, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  await client.tokenRevocation(config, refreshed.refresh_token);
  let afterRevocation;
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token);
    afterRevocation = { refreshed: true };
  } catch (error) {
    afterRevocation = failure(error);
  }
  let reused;
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token);
    reused = { refreshed: true };
  } catch (error) {
    reused = failure(error);
  }
  say({
    claims,
    userinfo,
    refreshed: { has_id_token: typeof refreshed.id_token === 'string', sub: refreshed.claims()?.sub },
    after_revocation: afterRevocation,
    reused,
  });
} catch (error) {
  say({ failed: failure(error) });
}
lines.close();
