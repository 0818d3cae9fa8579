// An MCP server and an MCP client, both from the official SDK (@modelcontextprotocol/sdk),
// driven by tests/api/oidc_clients.rs over stdin/stdout (one JSON object per line). The
// server is a protected resource (RFC 9728 metadata naming Portcullis as its authorization
// server) that checks each Bearer token against Portcullis's JWKS for its own audience. The
// client discovers all that from a 401, registers itself at Portcullis (RFC 7591, with the
// initial access token given on the command line), starts the code flow with PKCE and the
// RFC 8707 resource, prints the authorization URL, reads back where the browser landed,
// exchanges the code and calls the server's tool.
// Usage: node mcp.mjs ISSUER INITIAL_ACCESS_TOKEN REDIRECT_URI
import * as http from 'node:http';
import * as readline from 'node:readline';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [issuer, initialAccessToken, redirectUri] = process.argv.slice(2);
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));
const say = (object) => process.stdout.write(JSON.stringify(object) + '\n');
const trace = (what) => process.env.MCP_TRACE && process.stderr.write(`mcp.mjs: ${what}\n`);

// --- the MCP server (a protected resource) ---
const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
const server = http.createServer(async (req, res) => {
  const resource = `http://127.0.0.1:${server.address().port}/mcp`;
  const metadataUrl = `http://127.0.0.1:${server.address().port}/.well-known/oauth-protected-resource/mcp`;
  trace(`${req.method} ${req.url}`);
  if (req.url.startsWith('/.well-known/oauth-protected-resource')) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ resource, authorization_servers: [issuer], scopes_supported: ['openid', 'profile'] }));
    return;
  }
  if (!req.url.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(bearer, jwks, { issuer, audience: resource, typ: 'at+jwt' }));
  } catch {
    res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${metadataUrl}"` }).end();
    return;
  }
  const mcp = new McpServer({ name: 'portcullis-test-server', version: '1.0.0' });
  mcp.registerTool('whoami', { description: 'Who the token says is calling' }, async () => ({
    content: [{ type: 'text', text: JSON.stringify({ sub: claims.sub, aud: claims.aud, client_id: claims.client_id }) }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => transport.close());
  await mcp.connect(transport);
  await transport.handleRequest(req, res);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const serverUrl = new URL(`http://127.0.0.1:${server.address().port}/mcp`);

// --- the MCP client ---
let clientInformation;
let tokens;
let codeVerifier;
let authorizationUrl;
const authProvider = {
  redirectUrl: redirectUri,
  clientMetadata: {
    client_name: 'MCP test assistant',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  clientInformation: () => clientInformation,
  saveClientInformation: (information) => { clientInformation = information; },
  tokens: () => tokens,
  saveTokens: (saved) => { tokens = saved; },
  redirectToAuthorization: (url) => { authorizationUrl = url; },
  saveCodeVerifier: (verifier) => { codeVerifier = verifier; },
  codeVerifier: () => codeVerifier,
};
// How a deployment hands the client its initial access token: on the registration request.
const withInitialAccessToken = (url, init = {}) => {
  if (String(url) === discovery.registration_endpoint) {
    init = { ...init, headers: { ...Object.fromEntries(new Headers(init.headers ?? {})), authorization: `Bearer ${initialAccessToken}` } };
  }
  return fetch(url, init);
};
try {
  const first = new StreamableHTTPClientTransport(serverUrl, { authProvider, fetch: withInitialAccessToken });
  const client = new Client({ name: 'portcullis-test-client', version: '1.0.0' });
  try {
    await client.connect(first);
    say({ failed: { message: 'connected without signing in' } });
    process.exit(0);
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  say({ authorize_url: authorizationUrl.href, client_id: clientInformation.client_id });
  const landed = new URL(await nextLine());
  await first.finishAuth(landed.searchParams.get('code'));
  const second = new StreamableHTTPClientTransport(serverUrl, { authProvider, fetch: withInitialAccessToken });
  const connected = new Client({ name: 'portcullis-test-client', version: '1.0.0' });
  await connected.connect(second);
  const result = await connected.callTool({ name: 'whoami', arguments: {} });
  say({ whoami: JSON.parse(result.content[0].text), has_refresh_token: typeof tokens.refresh_token === 'string' });
  await connected.close();
} catch (error) {
  say({ failed: { name: error.name, message: error.message, stack: String(error.stack ?? '') } });
}
lines.close();
server.close();
process.exit(0);
