// The benchmark peer for bench/oidc.sh: npm's oidc-provider (OpenID Certified) with its
// in-memory adapter, one confidential client, and its development login (any name signs in).
// It listens on PORT, then signs "alice" in through its own interaction pages once and prints
// one JSON line: the client's credentials and an access token for userinfo.
// Usage: node bench/oidc_peer.mjs PORT
import { createRequire } from 'node:module';
import { createHash, randomBytes } from 'node:crypto';

const require = createRequire(new URL('../tests/oidc-clients/package.json', import.meta.url));
const { default: Provider } = await import(require.resolve('oidc-provider'));

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = 'http://127.0.0.1:9/callback';
const client = { client_id: 'bench', client_secret: randomBytes(32).toString('base64url') };
const provider = new Provider(issuer, {
  clients: [{ ...client, redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] }],
  features: { clientCredentials: { enabled: true }, devInteractions: { enabled: true } },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@example.com`, name: id }) }),
  claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
  // The development keys; cookies signed with a throwaway key.
  cookies: { keys: [randomBytes(32).toString('hex')] },
});
provider.on('server_error', (ctx, error) => console.error(error));
await new Promise((resolve) => provider.listen(port, resolve));

// Signing in through the provider's own pages, following redirects by hand with a cookie jar.
const jar = new Map();
const remember = (response) => {
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    const at = pair.indexOf('=');
    jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
};
const cookieHeader = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
const visit = async (url, init = {}) => {
  const response = await fetch(new URL(url, issuer), { ...init, redirect: 'manual', headers: { ...(init.headers || {}), cookie: cookieHeader() } });
  remember(response);
  return response;
};
const verifier = randomBytes(32).toString('base64url');
const challenge = createHash('sha256').update(verifier).digest('base64url');
const authorize = `/auth?${new URLSearchParams({ client_id: client.client_id, response_type: 'code', scope: 'openid email profile', redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state: 's', nonce: 'n' })}`;
let response = await visit(authorize);
let code;
for (let hop = 0; hop < 20 && !code; hop += 1) {
  const location = response.headers.get('location');
  if (location?.startsWith(redirectUri)) {
    code = new URL(location).searchParams.get('code');
    break;
  }
  if (location) {
    response = await visit(location);
    continue;
  }
  // An interaction page: the login form first, then the consent form.
  const html = await response.text();
  const action = html.match(/action="([^"]+)"/)?.[1];
  if (!action) throw new Error(`no form on the interaction page: ${html.slice(0, 300)}`);
  const body = html.includes('name="login"') ? new URLSearchParams({ prompt: 'login', login: 'alice', password: 'any' }) : new URLSearchParams({ prompt: 'consent' });
  response = await visit(action, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}
if (!code) throw new Error('the sign-in did not end with a code');
const tokens = await (await fetch(`${issuer}/token`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
  body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
})).json();
if (!tokens.access_token) throw new Error(`no access token: ${JSON.stringify(tokens)}`);
console.log(JSON.stringify({ ...client, access_token: tokens.access_token }));
