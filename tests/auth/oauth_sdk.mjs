// auth-sdk: the official TypeScript SDK client (@modelcontextprotocol/sdk 1.32.2,
// StreamableHTTPClientTransport + a headless OAuthClientProvider, mcp-protocol.md §6.3) runs
// signbridge's OAuth 2.1 flow end to end against a signbridge-sandbox:
//   401 -> protected resource metadata -> AS metadata -> client registration (DCR, or a client ID
//   metadata document) -> /authorize -> consent page (driven by plain HTTP, tests/auth/consent.mjs)
//   -> /token -> tools/list -> tools/call list_documents -> refresh (the SDK's own refresh path,
//   auth() with a stored refresh token) -> tools/call again with the new access token; the old
//   refresh token replayed -> 400 invalid_grant (rotation).
// Cases: (a) consent with a BoldSign API key, region detected, on /mcp; (b) "Sign in with BoldSign"
// through the sandbox's OAuth app (auto-approve) on /boldsign/us/mcp; (c) a client ID metadata
// document (https on 127.0.0.1, trusted by oauth.cimd_trusted_prefixes) instead of DCR; (d) a
// read-only grant (scope signbridge.read): no send_document listed, calling it is HTTP 403
// insufficient_scope (raw fetch; and the SDK throws).
// For (a) and (b) the sandbox request log shows the upstream calls with the provider's own
// credential scheme (x-api-key / bearer) resolved to the expected account, and never signbridge's
// access or refresh token.
//
// Env (tests/auth/run-sdk.sh): SB_URL (signbridge origin), SANDBOX_URL, SB_NODE_MODULES,
// SB_SECRETS_OUT (every secret value seen is written there, one a line, for the log check),
// CIMD_CERT / CIMD_KEY (server certificate + key for the metadata-document server).
// Output: "ok - ..." / "not ok - ...: detail", then "N passed, N failed"; exit 1 on failure.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { consent } from './consent.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.SB_NODE_MODULES || path.resolve(here, '..', 'node', 'node_modules');
const sdk = (p) =>
  import(pathToFileURL(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'dist', 'esm', p)).href);
const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
const { UnauthorizedError, auth } = await sdk('client/auth.js');

let passed = 0;
let failed = 0;
const oneLine = (s) => String(s).replace(/\s+/g, ' ').slice(0, 900);
const show = (v) => oneLine(JSON.stringify(v));
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
    return true;
  } catch (e) {
    failed++;
    const detail = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    console.log(`not ok - ${name}: ${oneLine(detail)}`);
    return false;
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
const watchdog = setTimeout(() => {
  console.log('not ok - watchdog: the run did not finish within 150 s');
  failed++;
  finish();
}, 150_000);

const need = (v) => {
  const x = process.env[v];
  if (!x) {
    console.log(`not ok - setup: ${v} is not set (run tests/auth/run-sdk.sh)`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  return x.replace(/\/+$/, '');
};
const SB = need('SB_URL');
const SBX = need('SANDBOX_URL');
const SECRETS_OUT = need('SB_SECRETS_OUT');
const CIMD_CERT = need('CIMD_CERT');
const CIMD_KEY = need('CIMD_KEY');

const secrets = new Set();
const keep = (v) => {
  if (typeof v === 'string' && v.length >= 8) {
    secrets.add(v);
    fs.writeFileSync(SECRETS_OUT, [...secrets].join('\n') + '\n', { mode: 0o600 });
  }
};

// ------------------------------------------------------------------------------------------------
// The sandbox

async function sbx(p, init = {}) {
  const r = await fetch(SBX + p, { ...init, signal: AbortSignal.timeout(20_000) });
  const text = await r.text();
  if (!r.ok) throw new Error(`sandbox ${init.method || 'GET'} ${p}: HTTP ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : {};
}
const lastSeq = async () => (await sbx('/_sandbox/requests?limit=1')).last_seq ?? 0;
async function requestsSince(seq) {
  return (await sbx(`/_sandbox/requests?since=${seq}&limit=1000`)).requests || [];
}

const accounts = (await sbx('/_sandbox/accounts')).accounts;
const bsUs = accounts.filter((a) => a.provider === 'boldsign' && a.region === 'us');
if (bsUs.length < 2) {
  console.log(`not ok - setup: the sandbox lists ${bsUs.length} BoldSign us accounts, want 2`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
// (a) uses the second account's API key; (b) signs in through the first account's OAuth app
// (the one run-sdk.sh put into signbridge's oauth.apps["boldsign/us"]).
const KEY_ACCOUNT = bsUs[1];
const APP_ACCOUNT = bsUs[0];
keep(KEY_ACCOUNT.api_key);
keep(APP_ACCOUNT.oauth.client_secret);
await sbx('/_sandbox/config', {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ oauth_auto_approve: true }),
});

// ------------------------------------------------------------------------------------------------
// The headless OAuth client (§6.3)

/** fetch that records method, path, status (and the grant_type of token requests). */
function recordingFetch(log) {
  return async (url, init = {}) => {
    const r = await fetch(url, init);
    const u = new URL(typeof url === 'string' || url instanceof URL ? url : url.url);
    const e = { method: (init.method || 'GET').toUpperCase(), path: u.pathname, status: r.status };
    if (e.path === '/token' && init.body) e.grant = new URLSearchParams(String(init.body)).get('grant_type');
    if (e.path === '/register' && init.body) e.registered = JSON.parse(String(init.body));
    log.push(e);
    return r;
  };
}

class HeadlessProvider {
  constructor(o) {
    this.o = o; // {redirect, action, apiKey, region, scope, clientMetadataUrl, noConsent}
    this.authUrls = [];
    this.codes = [];
  }
  get redirectUrl() { return this.o.redirect; }
  get clientMetadata() {
    return {
      client_name: 'signbridge auth-sdk test', redirect_uris: [this.o.redirect],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  get clientMetadataUrl() { return this.o.clientMetadataUrl; }
  clientInformation() { return this._c; }
  saveClientInformation(c) { this._c = c; keep(c.client_secret); }
  tokens() { return this._t; }
  saveTokens(t) { this._t = t; keep(t.access_token); keep(t.refresh_token); }
  saveCodeVerifier(v) { this._v = v; }
  codeVerifier() { return this._v; }
  state() { this._state = `st-${Math.random().toString(36).slice(2)}`; return this._state; }
  async redirectToAuthorization(u) {
    const url = new URL(u);
    this.askedScopes = [...(this.askedScopes || []), url.searchParams.get('scope')];
    if (this.o.scope && this.authUrls.length === 0) url.searchParams.set('scope', this.o.scope); // the user narrows the grant
    this.authUrls.push(url);
    if (this.o.noConsent) return;
    const res = await consent(url.href, { action: this.o.action, apiKey: this.o.apiKey, region: this.o.region || '' });
    this.consentResult = res;
    const back = new URL(res.location);
    this.redirectBack = back;
    const code = back.searchParams.get('code');
    if (code) { this.codes.push(code); keep(code); }
    this.authCode = code;
  }
}

async function connect(url, provider, log) {
  const client = new Client({ name: 'auth-sdk', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch(log) });
  await client.connect(transport);
  return client;
}

/** The whole interactive flow: first connect -> UnauthorizedError -> finishAuth -> connect. */
async function authorizeAndConnect(url, provider, log) {
  let first;
  try {
    first = await connect(url, provider, log);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  assert(!first, 'the first connect succeeded without authorization');
  assert(provider.authCode, `no authorization code came back (redirect: ${provider.redirectBack})`);
  const t = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch(log) });
  await t.finishAuth(provider.authCode);
  return connect(url, provider, log);
}

/** In-order subsequence check over the recorded requests. */
function assertSequence(log, want) {
  let i = 0;
  for (const e of log) {
    const w = want[i];
    if (w && e.method === w[0] && e.path === w[1] && e.status === w[2] && (!w[3] || e.grant === w[3])) i++;
  }
  assert(i === want.length, `missing step ${show(want[i])} in ${show(log.map((e) => `${e.method} ${e.path} ${e.status}${e.grant ? ' ' + e.grant : ''}`))}`);
}

async function rawToken(params) {
  const r = await fetch(`${SB}/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(), signal: AbortSignal.timeout(20_000),
  });
  const text = await r.text();
  let j = {};
  try { j = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: j, text, cacheControl: r.headers.get('cache-control') };
}

/** Raw MCP POSTs with a bearer token: initialize, initialized, then one request. */
async function rawMcp(url, token, method, params) {
  const h = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token}` };
  const post = (body, extra = {}) => fetch(url, { method: 'POST', headers: { ...h, ...extra }, body: JSON.stringify(body), signal: AbortSignal.timeout(20_000) });
  const r0 = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  await r0.text();
  assert(r0.status === 200, `raw initialize: HTTP ${r0.status}`);
  const sid = r0.headers.get('mcp-session-id');
  const sh = sid ? { 'Mcp-Session-Id': sid, 'MCP-Protocol-Version': '2025-11-25' } : { 'MCP-Protocol-Version': '2025-11-25' };
  const r1 = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, sh);
  await r1.text();
  const r2 = await post({ jsonrpc: '2.0', id: 2, method, params }, sh);
  return { status: r2.status, www: r2.headers.get('www-authenticate'), body: await r2.text() };
}

const callOk = async (client, name, args) => {
  const res = await client.callTool({ name, arguments: args });
  assert(!res.isError, `${name} isError: ${show(res.content)}`);
  return res;
};

// ------------------------------------------------------------------------------------------------
// One full case

async function runCase(label, { route, action, apiKey, region, clientMetadataUrl, expectScheme, expectAccount, redirect }) {
  const url = `${SB}${route}`;
  const log = [];
  const p = new HeadlessProvider({ redirect, action, apiKey, region, clientMetadataUrl });
  let client;
  const ok = await check(`${label}: SDK connects after 401 -> PRM -> AS metadata -> ${clientMetadataUrl ? 'client ID metadata document' : 'DCR'} -> authorize -> consent -> token`, async () => {
    client = await authorizeAndConnect(url, p, log);
    const prm = `/.well-known/oauth-protected-resource${route}`;
    const seq = [['POST', route, 401], ['GET', prm, 200], ['GET', '/.well-known/oauth-authorization-server', 200]];
    if (!clientMetadataUrl) seq.push(['POST', '/register', 201]);
    seq.push(['POST', '/token', 200, 'authorization_code'], ['POST', route, 200]);
    assertSequence(log, seq);
    if (clientMetadataUrl) {
      assert(!log.some((e) => e.path === '/register'), 'the SDK registered (DCR) although a metadata document URL was given');
      assert(p.clientInformation().client_id === clientMetadataUrl, `client_id ${show(p.clientInformation().client_id)}`);
    } else {
      assert(/^sbc_/.test(p.clientInformation().client_id || '') || p.clientInformation().client_id, 'no client_id from /register');
    }
  });
  if (!ok) return null;
  await check(`${label}: the authorize request and the redirect back are well-formed`, async () => {
    const au = p.authUrls[0];
    assert(au.origin === SB && au.pathname === '/authorize', `authorize URL ${au.href}`);
    assert(au.searchParams.get('code_challenge_method') === 'S256', 'no S256 PKCE');
    assert(au.searchParams.get('resource') === url, `resource ${au.searchParams.get('resource')} != ${url}`);
    assert(au.searchParams.get('client_id') === p.clientInformation().client_id, 'client_id mismatch');
    const back = p.redirectBack;
    assert(`${back.origin}${back.pathname}` === redirect, `redirected to ${back.origin}${back.pathname}, want ${redirect}`);
    assert(back.searchParams.get('state') === p._state, `state ${back.searchParams.get('state')} != ${p._state}`);
    assert(back.searchParams.get('iss') === SB, `iss ${back.searchParams.get('iss')} != ${SB}`);
    if (action === 'provider') {
      const steps = p.consentResult.steps.map((s) => `${s.method} ${s.url} ${s.status}`);
      assert(p.consentResult.providerAuthorize.startsWith(`${SBX}/boldsign/us/account/connect/authorize`),
        `consent sent the user to ${p.consentResult.providerAuthorize}, not the sandbox's BoldSign us authorize page`);
      assert(new URL(p.consentResult.callback).pathname === '/oauth/callback/boldsign', `callback ${p.consentResult.callback}`);
      assert(steps.length === 5, `steps ${show(steps)}`);
    }
  });
  const tok0 = { ...p.tokens() };
  await check(`${label}: token response: Bearer, expires_in, scope "signbridge.read signbridge.write", refresh_token`, async () => {
    assert(/^bearer$/i.test(tok0.token_type), `token_type ${tok0.token_type}`);
    assert(typeof tok0.access_token === 'string' && tok0.access_token.length > 20, 'access_token');
    assert(typeof tok0.refresh_token === 'string' && tok0.refresh_token.length > 20, 'refresh_token');
    assert(tok0.expires_in > 0 && tok0.expires_in <= 3600, `expires_in ${tok0.expires_in}`);
    assert(tok0.scope === 'signbridge.read signbridge.write', `scope ${show(tok0.scope)}`);
  });
  await check(`${label}: tools/list lists list_documents and send_document`, async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert(names.includes('list_documents') && names.includes('send_document'), `tools ${show(names)}`);
  });
  let seq0 = await lastSeq();
  await check(`${label}: tools/call list_documents returns documents`, async () => {
    const res = await callOk(client, 'list_documents', { page_size: 5 });
    assert(Array.isArray(res.structuredContent?.documents), `structuredContent ${show(res.structuredContent)}`);
  });
  await check(`${label}: upstream calls carry the provider credential (${expectScheme}, account ${expectAccount.name}, region us), never signbridge's tokens`, async () => {
    const reqs = await requestsSince(seq0);
    assert(reqs.length >= 1, 'the sandbox saw no request');
    for (const r of reqs) {
      assert(r.provider === 'boldsign' && r.region === 'us', `request ${r.method} ${r.path} went to ${r.provider}/${r.region}`);
      assert(r.auth_scheme === expectScheme, `${r.route}: auth_scheme ${r.auth_scheme}, want ${expectScheme}`);
      assert(r.account_id === expectAccount.account_id, `${r.route}: account ${r.account_id}, want ${expectAccount.account_id}`);
    }
    const all = JSON.stringify(reqs);
    assert(!all.includes(tok0.access_token) && !all.includes(tok0.refresh_token), 'a signbridge token reached the sandbox');
  });
  await client.close();

  // Refresh through the SDK's own path: auth() with a stored refresh token posts grant_type=refresh_token.
  const rlog = [];
  let tok1;
  await check(`${label}: refresh (SDK auth() with the stored refresh token) rotates both tokens`, async () => {
    const r = await auth(p, { serverUrl: new URL(url), fetchFn: recordingFetch(rlog) });
    assert(r === 'AUTHORIZED', `auth() returned ${r}`);
    assert(rlog.some((e) => e.path === '/token' && e.grant === 'refresh_token' && e.status === 200), `requests ${show(rlog)}`);
    tok1 = { ...p.tokens() };
    assert(tok1.access_token && tok1.access_token !== tok0.access_token, 'same access token after refresh');
    assert(tok1.refresh_token && tok1.refresh_token !== tok0.refresh_token, 'refresh token not rotated');
    assert(tok1.scope === tok0.scope, `scope after refresh ${show(tok1.scope)}`);
    assert(p.authUrls.length === 1, 'refresh went through /authorize again');
  });
  if (tok1) {
    await check(`${label}: a new connection with the refreshed access token calls list_documents`, async () => {
      const log2 = [];
      const c2 = await connect(url, p, log2);
      seq0 = await lastSeq();
      await callOk(c2, 'list_documents', { page_size: 2 });
      await c2.close();
      assert(!log2.some((e) => e.status === 401), `a 401 on the way: ${show(log2)}`);
      const reqs = await requestsSince(seq0);
      assert(reqs.length >= 1 && reqs.every((r) => r.auth_scheme === expectScheme && r.account_id === expectAccount.account_id),
        `upstream ${show(reqs.map((r) => [r.route, r.auth_scheme, r.account_id]))}`);
      assert(!JSON.stringify(reqs).includes(tok1.access_token), 'the refreshed signbridge token reached the sandbox');
    });
    await check(`${label}: the used refresh token replayed -> 400 invalid_grant`, async () => {
      const r = await rawToken({ grant_type: 'refresh_token', refresh_token: tok0.refresh_token, client_id: p.clientInformation().client_id, resource: url });
      assert(r.status === 400 && r.body.error === 'invalid_grant', `HTTP ${r.status} ${r.text.slice(0, 200)}`);
    });
    await check(`${label}: the authorization code replayed -> 400 invalid_grant`, async () => {
      const r = await rawToken({ grant_type: 'authorization_code', code: p.codes[0], code_verifier: p.codeVerifier(), redirect_uri: redirect, client_id: p.clientInformation().client_id, resource: url });
      assert(r.status === 400 && r.body.error === 'invalid_grant', `HTTP ${r.status} ${r.text.slice(0, 200)}`);
    });
  }
  return p;
}

// ------------------------------------------------------------------------------------------------
// The cases

const REDIRECT = 'http://127.0.0.1:45123/callback'; // never listened on: the consent driver reads Location

await check('unauthenticated initialize -> 401 with WWW-Authenticate resource_metadata and scope', async () => {
  const r = await fetch(`${SB}/mcp`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  });
  await r.text();
  const w = r.headers.get('www-authenticate') || '';
  assert(r.status === 401, `HTTP ${r.status}`);
  assert(w.includes(`resource_metadata="${SB}/.well-known/oauth-protected-resource/mcp"`), `WWW-Authenticate ${w}`);
  assert(w.includes('scope="signbridge.read signbridge.write"'), `WWW-Authenticate ${w}`);
});

// (a) API key, region detected.
const pA = await runCase('(a) API key', {
  route: '/mcp', action: 'api_key', apiKey: KEY_ACCOUNT.api_key, region: '', redirect: REDIRECT,
  expectScheme: 'x-api-key', expectAccount: KEY_ACCOUNT,
});

// (b) Sign in with BoldSign through the sandbox's OAuth app, on /boldsign/us/mcp.
await runCase('(b) provider sign-in', {
  route: '/boldsign/us/mcp', action: 'provider', redirect: 'http://localhost:45124/cb',
  expectScheme: 'bearer', expectAccount: APP_ACCOUNT,
});

// (c) Client ID metadata document over https on 127.0.0.1 (trusted prefix).
let cimdHits = 0;
const cimdServer = https.createServer({ cert: fs.readFileSync(CIMD_CERT), key: fs.readFileSync(CIMD_KEY) }, (req, res) => {
  if (req.url !== '/clients/auth-sdk.json') { res.writeHead(404); res.end(); return; }
  cimdHits++;
  const port = cimdServer.address().port;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=300' });
  res.end(JSON.stringify({
    client_id: `https://127.0.0.1:${port}/clients/auth-sdk.json`, client_name: 'auth-sdk CIMD client',
    redirect_uris: ['http://127.0.0.1:45125/cimd-callback'], token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
  }));
});
await new Promise((r) => cimdServer.listen(0, '127.0.0.1', r));
const CIMD_URL = `https://127.0.0.1:${cimdServer.address().port}/clients/auth-sdk.json`;
const pC = await runCase('(c) client ID metadata document', {
  route: '/mcp', action: 'api_key', apiKey: KEY_ACCOUNT.api_key, region: 'us', redirect: 'http://127.0.0.1:45125/cimd-callback',
  clientMetadataUrl: CIMD_URL, expectScheme: 'x-api-key', expectAccount: KEY_ACCOUNT,
});
await check('(c) signbridge fetched the metadata document, and the consent page shows its client_name', async () => {
  assert(cimdHits >= 1, `document fetched ${cimdHits} times`);
  assert(pC, 'case (c) did not complete');
});
await check('(c) a metadata-document client with a redirect_uri not in the document is refused (no redirect to it)', async () => {
  const u = new URL(`${SB}/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: CIMD_URL, redirect_uri: 'http://127.0.0.1:45125/evil',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's', resource: `${SB}/mcp` })) u.searchParams.set(k, v);
  const r = await fetch(u, { redirect: 'manual' });
  await r.text();
  assert(r.status === 400, `HTTP ${r.status} Location ${r.headers.get('location')}`);
});
cimdServer.close();

// (c2) The same over plain http on loopback (oauth.cimd_trusted_prefixes has "http://127.0.0.1:").
// The SDK only takes https clientMetadataUrl values, so this client is driven by raw HTTP.
const httpDocs = {};
const http = await import('node:http');
const cimdHttp = http.createServer((req, res) => {
  const d = httpDocs[req.url];
  if (!d) { res.writeHead(404); res.end(); return; }
  d.hits++;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(d.doc));
});
await new Promise((r) => cimdHttp.listen(0, '127.0.0.1', r));
const HP = cimdHttp.address().port;
const HTTP_CIMD = `http://127.0.0.1:${HP}/client/http.json`;
const CIMD_REDIRECT = 'http://127.0.0.1:45126/cb';
httpDocs['/client/http.json'] = { hits: 0, doc: { client_id: HTTP_CIMD, client_name: 'http CIMD client', redirect_uris: [CIMD_REDIRECT], token_endpoint_auth_method: 'none' } };
httpDocs['/client/wrong-id.json'] = { hits: 0, doc: { client_id: `http://127.0.0.1:${HP}/client/other.json`, client_name: 'liar', redirect_uris: [CIMD_REDIRECT], token_endpoint_auth_method: 'none' } };
await check('(c2) http metadata document under a trusted prefix: consent page names it, code -> token -> tools/call', async () => {
  const { v, c } = (() => { const v = Buffer.from(crypto.randomBytes(32)).toString('base64url'); return { v, c: crypto.createHash('sha256').update(v).digest('base64url') }; })();
  const u = new URL(`${SB}/authorize`);
  for (const [k, val] of Object.entries({ response_type: 'code', client_id: HTTP_CIMD, redirect_uri: CIMD_REDIRECT, code_challenge: c, code_challenge_method: 'S256', state: 'h1', resource: `${SB}/mcp` })) u.searchParams.set(k, val);
  const page = await fetch(u, { redirect: 'manual' });
  const html = await page.text();
  assert(page.status === 200 && html.includes('http CIMD client'), `consent page: HTTP ${page.status} ${html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 200)}`);
  assert(httpDocs['/client/http.json'].hits >= 1, 'the document was not fetched');
  const res = await consent(u.href, { action: 'api_key', apiKey: KEY_ACCOUNT.api_key });
  const code = new URL(res.location).searchParams.get('code');
  keep(code);
  const t = await rawToken({ grant_type: 'authorization_code', code, code_verifier: v, redirect_uri: CIMD_REDIRECT, client_id: HTTP_CIMD, resource: `${SB}/mcp` });
  keep(t.body.access_token); keep(t.body.refresh_token);
  assert(t.status === 200, `token: HTTP ${t.status} ${t.text.slice(0, 200)}`);
  const r = await rawMcp(`${SB}/mcp`, t.body.access_token, 'tools/call', { name: 'list_documents', arguments: { page_size: 1 } });
  assert(r.status === 200 && r.body.includes('documents'), `tools/call: HTTP ${r.status} ${r.body.slice(0, 200)}`);
});
await check('(c2) a metadata document whose client_id is not its URL -> 400', async () => {
  const u = new URL(`${SB}/authorize`);
  for (const [k, val] of Object.entries({ response_type: 'code', client_id: `http://127.0.0.1:${HP}/client/wrong-id.json`, redirect_uri: CIMD_REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 'h2' })) u.searchParams.set(k, val);
  const r = await fetch(u, { redirect: 'manual' });
  await r.text();
  assert(r.status === 400 && !r.headers.get('location'), `HTTP ${r.status}`);
});
await check('(c2) an http metadata document outside the trusted prefixes (http://localhost:...) is not fetched', async () => {
  httpDocs['/client/untrusted.json'] = { hits: 0, doc: { client_id: `http://localhost:${HP}/client/untrusted.json`, client_name: 'untrusted', redirect_uris: [CIMD_REDIRECT], token_endpoint_auth_method: 'none' } };
  const u = new URL(`${SB}/authorize`);
  for (const [k, val] of Object.entries({ response_type: 'code', client_id: `http://localhost:${HP}/client/untrusted.json`, redirect_uri: CIMD_REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 'h3' })) u.searchParams.set(k, val);
  const r = await fetch(u, { redirect: 'manual' });
  await r.text();
  assert(r.status === 400 && httpDocs['/client/untrusted.json'].hits === 0, `HTTP ${r.status}, fetched ${httpDocs['/client/untrusted.json'].hits} times`);
});
cimdHttp.close();

// (d) Read-only grant.
await check('(d) read-only grant: token scope "signbridge.read", no send_document, calling it -> 403 insufficient_scope', async () => {
  const url = `${SB}/mcp`;
  const log = [];
  const p = new HeadlessProvider({ redirect: REDIRECT, action: 'api_key', apiKey: KEY_ACCOUNT.api_key, scope: 'signbridge.read' });
  const client = await authorizeAndConnect(url, p, log);
  const t = p.tokens();
  assert(t.scope === 'signbridge.read', `token scope ${show(t.scope)}`);
  const names = (await client.listTools()).tools.map((x) => x.name);
  assert(names.includes('list_documents'), `no list_documents in ${show(names)}`);
  assert(!names.includes('send_document') && !names.includes('revoke_document'), `action tools listed: ${show(names)}`);
  await callOk(client, 'list_documents', { page_size: 1 });
  const seq = await lastSeq();
  // Through the SDK: it sees 403 insufficient_scope, tries to step up (with a stored refresh
  // token that is a refresh, which cannot widen the grant), gets 403 again and throws.
  p.o.noConsent = true;
  let threw = null;
  try {
    await client.callTool({ name: 'send_document', arguments: { title: 'x', signers: [{ name: 'A', email: 'a@example.com' }], files: [] } });
  } catch (e) { threw = e; }
  assert(threw, 'the SDK did not throw for send_document on a read-only grant');
  assert(threw.code === 403 || /\b403\b/.test(threw.message), `SDK error: ${threw.constructor.name} code ${threw.code}: ${threw.message}`);
  assert(p.tokens().scope === 'signbridge.read', `the SDK's step-up widened the grant: scope ${show(p.tokens().scope)}`);
  await client.close().catch(() => {});
  // Raw: the HTTP status and challenge.
  const r = await rawMcp(url, p.tokens().access_token, 'tools/call', { name: 'send_document', arguments: { title: 'x' } });
  assert(r.status === 403, `raw tools/call send_document: HTTP ${r.status} ${r.body.slice(0, 200)}`);
  assert(/error="insufficient_scope"/.test(r.www || ''), `WWW-Authenticate ${r.www}`);
  assert(/scope="[^"]*signbridge\.write/.test(r.www || ''), `WWW-Authenticate scope: ${r.www}`);
  assert((r.www || '').includes(`resource_metadata="${SB}/.well-known/oauth-protected-resource/mcp"`), `WWW-Authenticate ${r.www}`);
  const up = await requestsSince(seq);
  assert(!up.some((x) => x.method !== 'GET'), `something reached the provider: ${show(up.map((x) => x.route))}`);
});

await check('a bogus bearer token -> 401 invalid_token', async () => {
  const r = await fetch(`${SB}/mcp`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  });
  await r.text();
  assert(r.status === 401 && /error="invalid_token"/.test(r.headers.get('www-authenticate') || ''), `HTTP ${r.status} ${r.headers.get('www-authenticate')}`);
});

if (pA?.tokens()) {
  await check('revocation: POST /revoke of the refresh token -> 200, then refreshing with it -> invalid_grant', async () => {
    const t = pA.tokens();
    const r = await fetch(`${SB}/revoke`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: t.refresh_token, token_type_hint: 'refresh_token', client_id: pA.clientInformation().client_id }).toString(),
    });
    await r.text();
    assert(r.status === 200, `revoke: HTTP ${r.status}`);
    const x = await rawToken({ grant_type: 'refresh_token', refresh_token: t.refresh_token, client_id: pA.clientInformation().client_id, resource: `${SB}/mcp` });
    assert(x.status === 400 && x.body.error === 'invalid_grant', `HTTP ${x.status} ${x.text.slice(0, 200)}`);
  });
}

// ------------------------------------------------------------------------------------------------
// (e) Protocol edges, raw HTTP: registration, authorize and consent refusals, PKCE, redirect,
// resource and client binding at /token, audience, scope at refresh, refresh-family revocation,
// revocation, callback without the consent cookie.

const b64u = (b) => Buffer.from(b).toString('base64url');
function pkce() {
  const v = b64u(crypto.randomBytes(32));
  return { v, c: b64u(crypto.createHash('sha256').update(v).digest()) };
}
async function register(redirects, extra = {}) {
  const r = await fetch(`${SB}/register`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_name: 'edge', redirect_uris: redirects, token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], ...extra }),
  });
  const j = await r.json().catch(() => ({}));
  return { status: r.status, body: j };
}
function authUrl(q) {
  const u = new URL(`${SB}/authorize`);
  for (const [k, v] of Object.entries(q)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}
/** register + authorize + consent (API key) -> {cid, code, verifier, redirect, resource} */
async function rawGrant({ route = '/mcp', scope, redirect = 'http://127.0.0.1:45130/cb', cid } = {}) {
  if (!cid) {
    const reg = await register([redirect]);
    assert(reg.status === 201, `register: ${reg.status} ${show(reg.body)}`);
    cid = reg.body.client_id;
  }
  const { v, c } = pkce();
  const resource = `${SB}${route}`;
  const state = `s${Math.random()}`;
  const res = await consent(authUrl({ response_type: 'code', client_id: cid, redirect_uri: redirect, code_challenge: c, code_challenge_method: 'S256', state, resource, scope }),
    { action: 'api_key', apiKey: KEY_ACCOUNT.api_key });
  const back = new URL(res.location);
  const code = back.searchParams.get('code');
  assert(code, `no code: ${res.location.split('?')[0]} ${back.searchParams.get('error')}`);
  assert(back.searchParams.get('state') === state, 'state not echoed');
  keep(code);
  return { cid, code, verifier: v, redirect, resource };
}
async function redeem(g, over = {}) {
  const r = await rawToken({ grant_type: 'authorization_code', code: g.code, code_verifier: g.verifier, redirect_uri: g.redirect, client_id: g.cid, resource: g.resource, ...over });
  if (r.status === 200) { keep(r.body.access_token); keep(r.body.refresh_token); }
  return r;
}
async function mcpStatus(route, token, { query = '' } = {}) {
  const r = await fetch(`${SB}${route}${query}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'edge', version: '1' } } }),
  });
  await r.text();
  return { status: r.status, www: r.headers.get('www-authenticate') || '' };
}

await check('(e) /register refuses a non-loopback http redirect URI (400)', async () => {
  const r = await register(['http://evil.example.com/cb']);
  assert(r.status === 400 && /invalid_redirect_uri|invalid_client_metadata/.test(r.body.error || ''), `HTTP ${r.status} ${show(r.body)}`);
});
const EDGE_REDIRECT = 'http://127.0.0.1:45130/cb';
await check('(e) /register with a body over 64 KiB -> 413 with an OAuth error body (not JSON-RPC)', async () => {
  const r = await fetch(`${SB}/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_name: 'x'.repeat(70_000), redirect_uris: ['http://127.0.0.1/cb'] }) });
  const j = await r.json().catch(() => ({}));
  assert(r.status === 413 && j.error === 'invalid_request' && !j.jsonrpc, `HTTP ${r.status} ${show(j)}`);
});
const edgeReg = await register([EDGE_REDIRECT]);
const EDGE_CID = edgeReg.body.client_id;
await check('(e) /authorize: unregistered redirect_uri -> 400 page, no redirect', async () => {
  const r = await fetch(authUrl({ response_type: 'code', client_id: EDGE_CID, redirect_uri: 'http://127.0.0.1:45130/other', code_challenge: pkce().c, code_challenge_method: 'S256', state: 'x' }), { redirect: 'manual' });
  await r.text();
  assert(r.status === 400 && !r.headers.get('location'), `HTTP ${r.status} Location ${r.headers.get('location')}`);
});
await check('(e) /authorize: unknown client_id -> 400', async () => {
  const r = await fetch(authUrl({ response_type: 'code', client_id: 'sbc_nope', redirect_uri: EDGE_REDIRECT, code_challenge: pkce().c, code_challenge_method: 'S256' }), { redirect: 'manual' });
  await r.text();
  assert(r.status === 400 && !r.headers.get('location'), `HTTP ${r.status}`);
});
for (const [what, q] of [['no code_challenge', {}], ['code_challenge_method=plain', { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }]]) {
  await check(`(e) /authorize: ${what} -> 302 back with error=invalid_request and the state`, async () => {
    const r = await fetch(authUrl({ response_type: 'code', client_id: EDGE_CID, redirect_uri: EDGE_REDIRECT, state: 'st1', ...q }), { redirect: 'manual' });
    await r.text();
    const loc = new URL(r.headers.get('location') || 'http://x/');
    assert(r.status === 302 && `${loc.origin}${loc.pathname}` === EDGE_REDIRECT, `HTTP ${r.status} ${loc.href}`);
    assert(loc.searchParams.get('error') === 'invalid_request' && loc.searchParams.get('state') === 'st1' && !loc.searchParams.get('code'), `Location ${loc.search}`);
  });
}
await check('(e) consent page: X-Frame-Options DENY / frame-ancestors none, HttpOnly cookie', async () => {
  const r = await fetch(authUrl({ response_type: 'code', client_id: EDGE_CID, redirect_uri: EDGE_REDIRECT, code_challenge: pkce().c, code_challenge_method: 'S256' }), { redirect: 'manual' });
  await r.text();
  assert(r.status === 200, `HTTP ${r.status}`);
  assert(/deny/i.test(r.headers.get('x-frame-options') || '') || /frame-ancestors 'none'/.test(r.headers.get('content-security-policy') || ''), 'no anti-framing header');
  assert(/HttpOnly/i.test(r.headers.get('set-cookie') || ''), `Set-Cookie ${r.headers.get('set-cookie')}`);
});
async function consentForm() {
  const { c } = pkce();
  const r = await fetch(authUrl({ response_type: 'code', client_id: EDGE_CID, redirect_uri: EDGE_REDIRECT, code_challenge: c, code_challenge_method: 'S256', state: 'cs' }), { redirect: 'manual' });
  const html = await r.text();
  const cookie = (r.headers.getSetCookie() || []).map((x) => x.split(';')[0]).find((x) => x.startsWith('sb_consent='));
  const get = (n) => html.match(new RegExp(`name="${n}" value="([^"]*)"`))[1];
  return { cookie, request_id: get('request_id'), csrf_token: get('csrf_token') };
}
async function postConsent(fields, cookie) {
  const r = await fetch(`${SB}/consent`, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(cookie ? { Cookie: cookie } : {}) },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: r.status, location: r.headers.get('location'), body: await r.text() };
}
await check('(e) POST /consent without the cookie -> 403, with a wrong csrf_token -> 403, no redirect', async () => {
  const f = await consentForm();
  const a = await postConsent({ request_id: f.request_id, csrf_token: f.csrf_token, action: 'api_key', api_key: KEY_ACCOUNT.api_key, region: '' }, null);
  assert(a.status === 403 && !a.location, `no cookie: HTTP ${a.status} ${a.location}`);
  const b = await postConsent({ request_id: f.request_id, csrf_token: f.csrf_token.slice(0, -2) + 'AA', action: 'api_key', api_key: KEY_ACCOUNT.api_key, region: '' }, f.cookie);
  assert(b.status === 403 && !b.location, `wrong csrf: HTTP ${b.status} ${b.location}`);
  const g = await postConsent({ request_id: f.request_id, csrf_token: f.csrf_token, action: 'api_key', api_key: KEY_ACCOUNT.api_key, region: '' }, f.cookie);
  assert(g.status === 302 && new URL(g.location).searchParams.get('code'), `right cookie + csrf afterwards: HTTP ${g.status}`);
  const again = await postConsent({ request_id: f.request_id, csrf_token: f.csrf_token, action: 'api_key', api_key: KEY_ACCOUNT.api_key, region: '' }, f.cookie);
  assert(again.status !== 302, `the same request_id consented twice: HTTP ${again.status}`);
});
await check('(e) consent with a wrong API key -> the page again (4xx), no code', async () => {
  const f = await consentForm();
  const a = await postConsent({ ...f, cookie: undefined, action: 'api_key', api_key: 'bm90LWEtcmVhbC1rZXktYXQtYWxsLTEyMzQ1Njc4', region: 'us' }, f.cookie);
  assert(a.status >= 400 && a.status < 500 && !a.location, `HTTP ${a.status} ${a.location}`);
});
await check('(e) consent "deny" -> 302 back with error=access_denied, state and iss', async () => {
  const f = await consentForm();
  const a = await postConsent({ request_id: f.request_id, csrf_token: f.csrf_token, action: 'deny', region: '' }, f.cookie);
  const loc = new URL(a.location || 'http://x/');
  assert(a.status === 302 && loc.searchParams.get('error') === 'access_denied' && loc.searchParams.get('state') === 'cs' && !loc.searchParams.get('code'), `HTTP ${a.status} ${loc.search}`);
  assert(loc.searchParams.get('iss') === SB, `iss ${loc.searchParams.get('iss')}`);
});
await check('(e) /token: wrong code_verifier -> invalid_grant, and the code is burnt', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const bad = await redeem(g, { code_verifier: pkce().v });
  assert(bad.status === 400 && bad.body.error === 'invalid_grant', `HTTP ${bad.status} ${bad.text.slice(0, 200)}`);
  const ok2 = await redeem(g);
  assert(ok2.status === 400, `the code still worked after a failed PKCE check: HTTP ${ok2.status}`);
});
await check('(e) /token: redirect_uri mismatch -> invalid_grant', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const bad = await redeem(g, { redirect_uri: 'http://127.0.0.1:45130/other' });
  assert(bad.status === 400 && bad.body.error === 'invalid_grant', `HTTP ${bad.status} ${bad.text.slice(0, 200)}`);
});
await check('(e) /token: resource mismatch -> invalid_target', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const bad = await redeem(g, { resource: `${SB}/dropboxsign/mcp` });
  assert(bad.status === 400 && bad.body.error === 'invalid_target', `HTTP ${bad.status} ${bad.text.slice(0, 200)}`);
});
await check('(e) /token: a code redeemed by another client -> invalid_grant', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const other = await register([EDGE_REDIRECT]);
  const bad = await redeem(g, { client_id: other.body.client_id });
  assert(bad.status === 400 && bad.body.error === 'invalid_grant', `HTTP ${bad.status} ${bad.text.slice(0, 200)}`);
});
await check('(e) /token: unknown client_id -> 401 invalid_client', async () => {
  const r = await rawToken({ grant_type: 'authorization_code', code: 'x', code_verifier: pkce().v, redirect_uri: EDGE_REDIRECT, client_id: 'sbc_unknown' });
  assert(r.status === 401 && r.body.error === 'invalid_client', `HTTP ${r.status} ${r.text.slice(0, 200)}`);
});
let edgeTok;
await check('(e) /token success: 200 JSON with Cache-Control no-store', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const r = await redeem(g);
  assert(r.status === 200 && /no-store/.test(r.cacheControl || ''), `HTTP ${r.status} Cache-Control ${r.cacheControl}`);
  edgeTok = { ...r.body, g };
});
if (edgeTok) {
  await check('(e) audience: a /mcp token is 401 invalid_token at /boldsign/us/mcp and /dropboxsign/mcp, 200 at /mcp', async () => {
    const a = await mcpStatus('/mcp', edgeTok.access_token);
    assert(a.status === 200, `/mcp: HTTP ${a.status}`);
    for (const route of ['/boldsign/us/mcp', '/dropboxsign/mcp', '/boldsign/eu/mcp']) {
      const b = await mcpStatus(route, edgeTok.access_token);
      assert(b.status === 401 && /invalid_token/.test(b.www), `${route}: HTTP ${b.status} ${b.www}`);
    }
  });
  await check('(e) an access token in the query string is not accepted (401)', async () => {
    const a = await mcpStatus('/mcp', null, { query: `?access_token=${encodeURIComponent(edgeTok.access_token)}` });
    assert(a.status === 401, `HTTP ${a.status}`);
  });
  await check('(e) refresh-token reuse ends the family: old replayed -> invalid_grant, then the rotated one -> invalid_grant and its access token -> 401', async () => {
    const r1 = await rawToken({ grant_type: 'refresh_token', refresh_token: edgeTok.refresh_token, client_id: EDGE_CID, resource: `${SB}/mcp` });
    assert(r1.status === 200, `first refresh: HTTP ${r1.status} ${r1.text.slice(0, 200)}`);
    keep(r1.body.access_token); keep(r1.body.refresh_token);
    const ok1 = await mcpStatus('/mcp', r1.body.access_token);
    assert(ok1.status === 200, `rotated access token: HTTP ${ok1.status}`);
    const replay = await rawToken({ grant_type: 'refresh_token', refresh_token: edgeTok.refresh_token, client_id: EDGE_CID, resource: `${SB}/mcp` });
    assert(replay.status === 400 && replay.body.error === 'invalid_grant', `replay: HTTP ${replay.status}`);
    const r2 = await rawToken({ grant_type: 'refresh_token', refresh_token: r1.body.refresh_token, client_id: EDGE_CID, resource: `${SB}/mcp` });
    assert(r2.status === 400 && r2.body.error === 'invalid_grant', `rotated refresh token after the replay: HTTP ${r2.status} ${r2.text.slice(0, 200)}`);
    const dead = await mcpStatus('/mcp', r1.body.access_token);
    assert(dead.status === 401, `rotated access token after the replay: HTTP ${dead.status}`);
  });
}
await check('(e) read-only grant: a refresh asking for signbridge.write -> invalid_scope, the refresh token still works (scope stays read)', async () => {
  const g = await rawGrant({ cid: EDGE_CID, scope: 'signbridge.read' });
  const t = await redeem(g);
  assert(t.status === 200 && t.body.scope === 'signbridge.read', `token: HTTP ${t.status} scope ${t.body.scope}`);
  const wide = await rawToken({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: EDGE_CID, scope: 'signbridge.read signbridge.write', resource: g.resource });
  assert(wide.status === 400 && wide.body.error === 'invalid_scope', `widen: HTTP ${wide.status} ${wide.text.slice(0, 200)}`);
  const same = await rawToken({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: EDGE_CID, resource: g.resource });
  keep(same.body.access_token); keep(same.body.refresh_token);
  assert(same.status === 200 && same.body.scope === 'signbridge.read', `refresh: HTTP ${same.status} scope ${same.body.scope}`);
});
await check('(e) write grant narrowed at refresh (scope=signbridge.read) -> read-only token', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const t = await redeem(g);
  const n = await rawToken({ grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: EDGE_CID, scope: 'signbridge.read', resource: g.resource });
  keep(n.body.access_token); keep(n.body.refresh_token);
  assert(n.status === 200 && n.body.scope === 'signbridge.read', `HTTP ${n.status} scope ${n.body.scope}`);
  const r = await rawMcp(`${SB}/mcp`, n.body.access_token, 'tools/list', {});
  assert(r.status === 200 && !r.body.includes('"send_document"') && r.body.includes('"list_documents"'), `tools/list: HTTP ${r.status}`);
});
await check('(e) /revoke of an access token ends the grant: the token -> 401', async () => {
  const g = await rawGrant({ cid: EDGE_CID });
  const t = await redeem(g);
  assert((await mcpStatus('/mcp', t.body.access_token)).status === 200, 'token did not work before revocation');
  const r = await fetch(`${SB}/revoke`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: t.body.access_token, token_type_hint: 'access_token', client_id: EDGE_CID }).toString() });
  await r.text();
  assert(r.status === 200, `revoke: HTTP ${r.status}`);
  const after = await mcpStatus('/mcp', t.body.access_token);
  assert(after.status === 401, `after revocation: HTTP ${after.status}`);
});
await check('(e) provider sign-in: /oauth/callback/boldsign without the consent cookie does not redirect to the client', async () => {
  const { c } = pkce();
  const r = await fetch(authUrl({ response_type: 'code', client_id: EDGE_CID, redirect_uri: EDGE_REDIRECT, code_challenge: c, code_challenge_method: 'S256', state: 'pc', resource: `${SB}/boldsign/us/mcp` }), { redirect: 'manual' });
  const html = await r.text();
  const cookie = (r.headers.getSetCookie() || []).map((x) => x.split(';')[0]).find((x) => x.startsWith('sb_consent='));
  const get = (n) => html.match(new RegExp(`name="${n}" value="([^"]*)"`))[1];
  const p1 = await postConsent({ request_id: get('request_id'), csrf_token: get('csrf_token'), action: 'provider', region: '' }, cookie);
  assert(p1.status === 302, `consent provider: HTTP ${p1.status}`);
  const p2 = await fetch(p1.location, { redirect: 'manual' });
  await p2.text();
  assert(p2.status === 302, `sandbox authorize: HTTP ${p2.status}`);
  const cb = new URL(p2.headers.get('location'), p1.location).href;
  const p3 = await fetch(cb, { redirect: 'manual' });
  await p3.text();
  const loc = p3.headers.get('location') || '';
  assert(!(p3.status === 302 && loc.startsWith(EDGE_REDIRECT) && /[?&]code=/.test(loc)), `callback without cookie redirected to the client with a code: ${p3.status}`);
  const p4 = await fetch(cb, { redirect: 'manual', headers: { Cookie: 'sb_consent=forged-value-1234567890' } });
  await p4.text();
  const loc4 = p4.headers.get('location') || '';
  assert(!(p4.status === 302 && /[?&]code=/.test(loc4)), `callback with a forged cookie redirected with a code: ${p4.status}`);
});

await check('(e) provider sign-in denied at the provider -> 302 to the client with error=access_denied and the state, no code', async () => {
  await sbx('/_sandbox/config', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ oauth_auto_approve: false }) });
  try {
    const { c } = pkce();
    const r = await fetch(authUrl({ response_type: 'code', client_id: EDGE_CID, redirect_uri: EDGE_REDIRECT, code_challenge: c, code_challenge_method: 'S256', state: 'pd', resource: `${SB}/boldsign/us/mcp` }), { redirect: 'manual' });
    const html = await r.text();
    const cookie = (r.headers.getSetCookie() || []).map((x) => x.split(';')[0]).find((x) => x.startsWith('sb_consent='));
    const get = (h, n) => h.match(new RegExp(`name="${n}" value="([^"]*)"`))[1];
    const p1 = await postConsent({ request_id: get(html, 'request_id'), csrf_token: get(html, 'csrf_token'), action: 'provider', region: '' }, cookie);
    assert(p1.status === 302, `consent provider: HTTP ${p1.status}`);
    const page = await fetch(p1.location, { redirect: 'manual' });
    const ph = await page.text();
    assert(page.status === 200, `provider authorize page: HTTP ${page.status}`);
    const fields = {};
    for (const m of ph.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) fields[m[1]] = m[2].replace(/&amp;/g, '&');
    const fa = new URL(ph.match(/<form method="post" action="([^"]+)"/)[1].replace(/&amp;/g, '&'), p1.location).href;
    const d = await fetch(fa, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...fields, action: 'deny' }).toString() });
    await d.text();
    assert(d.status === 302, `provider deny: HTTP ${d.status}`);
    const cb = new URL(d.headers.get('location'), fa).href;
    const back = await fetch(cb, { redirect: 'manual', headers: { Cookie: cookie } });
    await back.text();
    const loc = new URL(back.headers.get('location') || 'http://x/');
    assert(back.status === 302 && `${loc.origin}${loc.pathname}` === EDGE_REDIRECT, `callback: HTTP ${back.status} ${loc.origin}${loc.pathname}`);
    assert(loc.searchParams.get('error') === 'access_denied' && loc.searchParams.get('state') === 'pd' && !loc.searchParams.get('code'), `Location ${loc.search}`);
  } finally {
    await sbx('/_sandbox/config', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ oauth_auto_approve: true }) });
  }
});
for (const method of ['client_secret_basic', 'client_secret_post']) {
  await check(`(e) confidential client (${method}): secret issued; no / wrong secret -> 401 invalid_client; right one -> tokens`, async () => {
    const reg = await register([EDGE_REDIRECT], { token_endpoint_auth_method: method });
    assert(reg.status === 201 && typeof reg.body.client_secret === 'string' && reg.body.client_secret.length >= 16, `register: ${reg.status} ${show({ ...reg.body, client_secret: reg.body.client_secret ? '<set>' : undefined })}`);
    keep(reg.body.client_secret);
    const cid = reg.body.client_id, sec = reg.body.client_secret;
    const g = await rawGrant({ cid });
    const base = { grant_type: 'authorization_code', code: g.code, code_verifier: g.verifier, redirect_uri: g.redirect, resource: g.resource };
    const none = await rawToken({ ...base, client_id: cid });
    assert(none.status === 401 && none.body.error === 'invalid_client', `no secret: HTTP ${none.status} ${none.text.slice(0, 150)}`);
    const g2 = await rawGrant({ cid });
    const base2 = { ...base, code: g2.code, code_verifier: g2.verifier };
    const wrong = await rawToken({ ...base2, client_id: cid, client_secret: sec.slice(0, -3) + 'xyz' });
    assert(wrong.status === 401 && wrong.body.error === 'invalid_client', `wrong secret: HTTP ${wrong.status}`);
    const g3 = await rawGrant({ cid });
    const base3 = { ...base, code: g3.code, code_verifier: g3.verifier };
    let good;
    if (method === 'client_secret_post') {
      good = await rawToken({ ...base3, client_id: cid, client_secret: sec });
    } else {
      const r = await fetch(`${SB}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${Buffer.from(`${encodeURIComponent(cid)}:${encodeURIComponent(sec)}`).toString('base64')}` }, body: new URLSearchParams(base3).toString() });
      const text = await r.text();
      good = { status: r.status, body: JSON.parse(text || '{}'), text };
    }
    keep(good.body.access_token); keep(good.body.refresh_token);
    assert(good.status === 200 && good.body.access_token, `right secret: HTTP ${good.status} ${good.text.slice(0, 150)}`);
  });
}

clearTimeout(watchdog);
finish();
