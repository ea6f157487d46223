// Headless driver for signbridge's consent page (src/auth/sb_oauth.c), shared by the auth tests:
// acts as the user's browser with plain HTTP (no redirects followed automatically, cookies kept).
//
//   GET  <authorize URL>            -> 200 HTML consent page, Set-Cookie sb_consent=..., a form
//                                      posting to /consent with hidden request_id + csrf_token
//   POST /consent (form, cookie)    -> action=api_key: 302 to the client's redirect_uri
//                                      action=provider: 302 to the provider's authorize page, whose
//                                      302 (sandbox auto-approve) leads to /oauth/callback/<p>,
//                                      which (with the cookie) 302s to the client's redirect_uri
//
// Usage as a module: `await consent(authUrl, {action, apiKey, region})` returns
// {location, steps} where location is the final client redirect (a URL string) and steps lists
// every hop (method, url, status). Throws an Error describing the first unexpected answer.
//
// Usage as a script (tests/auth/conformance.sh):
//   node consent.mjs <authorize URL> <api key>   prints the final client redirect URL, exit 0.

import { pathToFileURL } from 'node:url';

const TIMEOUT = 20_000;

function attr(html, name) {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`, 'i');
  const m = html.match(re);
  return m ? m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"') : null;
}

function cookieFrom(resp, name) {
  const all = typeof resp.headers.getSetCookie === 'function' ? resp.headers.getSetCookie() : [];
  for (const c of all) {
    const first = c.split(';')[0].trim();
    if (first.startsWith(name + '=')) return first;
  }
  return null;
}

export async function consent(authUrl, { action = 'api_key', apiKey = '', region = '', origin } = {}) {
  const steps = [];
  const u = new URL(authUrl);
  const sbOrigin = origin || u.origin;
  const r1 = await fetch(authUrl, { redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT) });
  const html = await r1.text();
  steps.push({ method: 'GET', url: u.pathname, status: r1.status });
  if (r1.status !== 200) throw new Error(`GET /authorize: HTTP ${r1.status} ${html.slice(0, 300)}`);
  if (!/text\/html/.test(r1.headers.get('content-type') || ''))
    throw new Error(`GET /authorize: content-type ${r1.headers.get('content-type')}`);
  const cookie = cookieFrom(r1, 'sb_consent');
  if (!cookie) throw new Error(`GET /authorize: no sb_consent cookie (Set-Cookie: ${r1.headers.get('set-cookie')})`);
  const requestId = attr(html, 'request_id');
  const csrf = attr(html, 'csrf_token');
  if (!requestId || !csrf) throw new Error('consent page has no request_id / csrf_token hidden fields');
  const fa = html.match(/<form[^>]*action="([^"]+)"/i);
  const formAction = new URL(fa ? fa[1].replace(/&amp;/g, '&') : '/consent', sbOrigin).href;
  const body = new URLSearchParams({ request_id: requestId, csrf_token: csrf, region, action });
  if (action === 'api_key') body.set('api_key', apiKey);
  const r2 = await fetch(formAction, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookie, Origin: sbOrigin },
    body: body.toString(),
    signal: AbortSignal.timeout(TIMEOUT),
  });
  const t2 = await r2.text();
  steps.push({ method: 'POST', url: new URL(formAction).pathname, status: r2.status });
  if (r2.status !== 302) throw new Error(`POST /consent (${action}): HTTP ${r2.status} ${t2.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
  let loc = new URL(r2.headers.get('location'), formAction).href;
  if (action !== 'provider') return { location: loc, steps, cookie };

  // Provider sign-in: the provider's authorize page (auto-approve) -> callback -> client.
  steps.push({ method: 'redirect', url: loc, status: 0 });
  const r3 = await fetch(loc, { redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT) });
  const t3 = await r3.text();
  steps.push({ method: 'GET', url: new URL(loc).pathname, status: r3.status });
  if (r3.status !== 302) throw new Error(`GET provider authorize: HTTP ${r3.status} ${t3.slice(0, 300)}`);
  const cb = new URL(r3.headers.get('location'), loc).href;
  if (new URL(cb).origin !== sbOrigin || !new URL(cb).pathname.startsWith('/oauth/callback/'))
    throw new Error(`provider redirected to ${cb}, not to signbridge's /oauth/callback/`);
  const r4 = await fetch(cb, { redirect: 'manual', headers: { Cookie: cookie }, signal: AbortSignal.timeout(TIMEOUT) });
  const t4 = await r4.text();
  steps.push({ method: 'GET', url: new URL(cb).pathname, status: r4.status });
  if (r4.status !== 302) throw new Error(`GET ${new URL(cb).pathname}: HTTP ${r4.status} ${t4.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
  loc = new URL(r4.headers.get('location'), cb).href;
  return { location: loc, steps, cookie, providerAuthorize: steps[2].url, callback: cb };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [authUrl, apiKey] = process.argv.slice(2);
  try {
    const { location } = await consent(authUrl, { action: 'api_key', apiKey });
    console.log(location);
  } catch (e) {
    console.error(`consent failed: ${e.message}`);
    process.exit(1);
  }
}
