// tools-sdk: the official TypeScript SDK client (@modelcontextprotocol/sdk, StreamableHTTPClientTransport)
// against signbridge's provider tools on a running signbridge-sandbox (issue 5, acceptance points 3-6).
//
//  3. Every call's structuredContent passes the SDK's own outputSchema check (Client.callTool
//     validates it against the tool's outputSchema and throws McpError on a mismatch): on
//     /boldsign/mcp, /dropboxsign/mcp and /iinkedsign/mcp every listed read-only tool is called,
//     plus the action tools (contacts, send_document with a base64 PDF and with a file URL,
//     send_from_template, remind_signers, extend_expiry, change_signer, revoke_document on
//     documents sent here). No call may throw or come back isError unexpectedly, and every
//     result's text equals the JSON of its structuredContent. A list_documents page of 100 stays
//     under 100,000 characters of text.
//  4. Idempotency: two concurrent send_document calls with one idempotency_key (two sessions,
//     the sandbox slowed so they overlap) send once upstream and return the same document_id; the
//     key with other arguments is refused and sends nothing; a third call after completion replays
//     the document_id and sends nothing.
//  5. Read-only connections (?read_only=1, and the header X-Read-Only: 1) list no action tool, and
//     calling one anyway is HTTP 403 with WWW-Authenticate error="insufficient_scope" (through the
//     SDK, and with a raw fetch of the tools/call POST); nothing reaches the provider.
//  6. Confirmation by elicitation (actions.confirm = destructive): the client is asked before a
//     send goes upstream (the message names the title and the signers; the sandbox has seen
//     nothing when the question arrives); accept -> exactly one send; decline / cancel -> a normal
//     result with outcome declined_by_user and nothing upstream. With actions.confirm = off (a
//     second signbridge) nobody is asked. The audit log gets one JSON line per action call (tool,
//     provider, outcome ok / error / declined / replayed, a 12-hex credential fingerprint prefix)
//     and no API key.
//
// Run by tests/tools/run-sdk.sh, which starts the processes and sets:
//   SB_URL           origin of signbridge (actions.confirm default: destructive)
//   SB_OFF_URL       origin of a second signbridge with SIGNBRIDGE_ACTIONS_CONFIRM=off
//   SANDBOX_URL      origin of signbridge-sandbox (both signbridges use it)
//   SB_AUDIT_LOG, SB_OFF_AUDIT_LOG   their audit log files
//   SB_SECRET_FILE   the servers' secret files, ':'-separated (must not appear in the audit logs)
//   SB_NODE_MODULES  directory holding @modelcontextprotocol/sdk
// Output: "ok - name" / "not ok - name: detail" lines, then "N passed, N failed"; exit 1 on failure.

import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.SB_NODE_MODULES || path.resolve(here, '..', 'node', 'node_modules');
const sdk = (p) =>
  import(pathToFileURL(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'dist', 'esm', p)).href);

const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport, StreamableHTTPError } = await sdk('client/streamableHttp.js');
const { ElicitRequestSchema } = await sdk('types.js');

const need = (v) => {
  const x = process.env[v];
  if (!x) {
    console.log(`not ok - setup: ${v} is not set (run tests/tools/run-sdk.sh)`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  return x.replace(/\/+$/, '');
};
const SB = need('SB_URL');
const SB_OFF = need('SB_OFF_URL');
const SBX = need('SANDBOX_URL');
const AUDIT = need('SB_AUDIT_LOG');
const AUDIT_OFF = need('SB_OFF_AUDIT_LOG');
const SECRET_FILE = process.env.SB_SECRET_FILE || '';

const PROVIDERS = ['boldsign', 'dropboxsign', 'iinkedsign'];
const REGION = { boldsign: 'us', dropboxsign: 'global', iinkedsign: 'us' };
// Upstream routes (as the sandbox's request log names them) that send a document.
const SEND_ROUTES = {
  boldsign: ['POST /v1/document/send', 'POST /v1/template/send'],
  dropboxsign: ['POST /v3/signature_request/send', 'POST /v3/signature_request/send_with_template'],
  iinkedsign: ['POST /api/v1/packages/add'],
};

// ------------------------------------------------------------------------------------------------
// Checks and output

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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const watchdog = setTimeout(() => {
  console.log('not ok - watchdog: the run did not finish within 110 s');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 110_000);

// ------------------------------------------------------------------------------------------------
// The sandbox, seen directly

async function sbx(p, init = {}) {
  const r = await fetch(SBX + p, { ...init, signal: AbortSignal.timeout(20_000) });
  const text = await r.text();
  if (!r.ok) throw new Error(`sandbox ${init.method || 'GET'} ${p}: HTTP ${r.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : {};
}

async function lastSeq() {
  return (await sbx('/_sandbox/requests?limit=1')).last_seq ?? 0;
}

/** Provider requests the sandbox logged after `since` (optionally of one provider). */
async function requestsSince(since, provider) {
  const out = [];
  for (;;) {
    const q = `/_sandbox/requests?since=${since}&limit=1000${provider ? `&provider=${provider}` : ''}`;
    const got = (await sbx(q)).requests ?? [];
    out.push(...got);
    if (got.length < 1000) return out;
    since = got[got.length - 1].seq;
  }
}

const sendsIn = (reqs, provider) => reqs.filter((q) => SEND_ROUTES[provider].includes(q.route));
const routes = (reqs) => reqs.map((q) => `${q.method} ${q.path} -> ${q.status}`);

async function sandboxConfig(cfg) {
  return sbx('/_sandbox/config', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(cfg),
  });
}

const ACCOUNTS = (await sbx('/_sandbox/accounts')).accounts;
const ACCT = {};
for (const p of PROVIDERS) {
  ACCT[p] = ACCOUNTS.find((a) => a.provider === p && a.region === REGION[p] && a.api_key);
  if (!ACCT[p]) {
    console.log(`not ok - setup: no ${p}/${REGION[p]} demo account with an api_key in /_sandbox/accounts`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}
const KEY = Object.fromEntries(PROVIDERS.map((p) => [p, ACCT[p].api_key]));

/** Every credential the sandbox hands out (none may reach the audit log). */
function allSecrets() {
  const out = new Set();
  for (const a of ACCOUNTS) {
    for (const k of [a.api_key, ...(a.api_keys ?? []), a.user_api_key?.api_key]) {
      if (typeof k === 'string' && k.length >= 8) {
        out.add(k);
        out.add(Buffer.from(`${k}:`).toString('base64'));
      }
    }
    if (a.oauth?.client_secret) out.add(a.oauth.client_secret);
  }
  for (const f of SECRET_FILE.split(':').filter(Boolean)) {
    try {
      const s = fs.readFileSync(f, 'utf8').trim();
      if (s.length >= 8) out.add(s);
    } catch { /* absent: nothing to look for */ }
  }
  return [...out];
}

/** GET on the provider's REST base with the provider's own credential (to learn seed data). */
async function direct(provider, p) {
  const a = ACCT[provider];
  const headers = provider === 'boldsign' ? { 'X-API-KEY': a.api_key }
    : provider === 'dropboxsign' ? { Authorization: `Basic ${Buffer.from(`${a.api_key}:`).toString('base64')}` }
      : { api_key: a.api_key };
  const r = await fetch(a.base_url + p, { headers, signal: AbortSignal.timeout(20_000) });
  const text = await r.text();
  return { status: r.status, json: () => JSON.parse(text), text };
}

/** BoldSign answers 403 "Invalid Document ID" for a second or two after a send. */
async function boldsignVisible(id, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await direct('boldsign', `/v1/document/properties?documentId=${encodeURIComponent(id)}`);
    if (r.status === 200) return r.json();
    if (Date.now() > end) throw new Error(`BoldSign document ${id} never became visible (last ${r.status})`);
    await sleep(200);
  }
}

// ------------------------------------------------------------------------------------------------
// A tiny valid PDF (correct xref offsets), built here

function tinyPdf(title) {
  const stream = `BT /F1 18 Tf 72 720 Td (${title.replace(/[()\\]/g, '')}) Tj ET`;
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R ' +
      '/Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let pdf = '%PDF-1.4\n';
  const offsets = [];
  objs.forEach((o, i) => {
    offsets.push(pdf.length);
    pdf += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = pdf.length;
  pdf += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const off of offsets) pdf += `${String(off).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}
const PDF_B64 = tinyPdf('signbridge SDK tools test').toString('base64');
const pdfFile = (name = 'contract.pdf') => ({ base64: PDF_B64, name, mime_type: 'application/pdf' });

// ------------------------------------------------------------------------------------------------
// MCP connections and calls

const ledger = {
  calls: 0,
  threw: [],          // SDK errors (an outputSchema mismatch is one)
  unexpected: [],     // isError when success was expected, or success when an error was
  textMismatch: [],   // text content != JSON of structuredContent
  noValidator: [],    // the SDK had no outputSchema validator for the tool (nothing checked)
  identical: 0,       // text byte-identical to JSON.stringify(structuredContent)
  structured: 0,      // results with structuredContent
};
const expectedAudit = { main: [], off: [] };
const conns = [];

async function listAllTools(client) {
  const tools = [];
  let cursor;
  let pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {});
    pages++;
    tools.push(...r.tools);
    cursor = r.nextCursor;
    assert(pages < 50, 'tools/list: more than 50 pages, the cursor never ends');
  } while (cursor);
  // SDK 1.32.2 keeps the outputSchema validators of the last listTools page only: give it them all.
  if (pages > 1) client.cacheToolMetadata(tools);
  return { tools, pages };
}

/**
 * A connection on /<provider>/mcp. opts: base (signbridge origin), readOnly ('query'|'header'),
 * elicit (declare the elicitation capability; answers come from conn.onElicit).
 */
async function connect(provider, opts = {}) {
  const base = opts.base ?? SB;
  const url = new URL(`${base}/${provider}/mcp${opts.readOnly === 'query' ? '?read_only=1' : ''}`);
  const headers = { 'X-API-Key': KEY[provider] };
  if (opts.readOnly === 'header') headers['X-Read-Only'] = '1';
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  const client = new Client({ name: 'signbridge-sdk-tools-test', version: '1.0.0' },
    opts.elicit ? { capabilities: { elicitation: {} } } : {});
  const conn = {
    provider, client, transport, url, headers, instance: base === SB_OFF ? 'off' : 'main',
    elicitations: [], onElicit: null, tools: [], pages: 0,
  };
  if (opts.elicit) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      conn.elicitations.push(req.params);
      if (!conn.onElicit) return { action: 'decline' };
      return conn.onElicit(req);
    });
  }
  await client.connect(transport);
  conns.push(conn);
  const { tools, pages } = await listAllTools(client);
  conn.tools = tools;
  conn.pages = pages;
  return conn;
}

const isAction = (conn, name) => conn.tools.find((t) => t.name === name)?.annotations?.readOnlyHint === false;
const texts = (r) => (r?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);

/**
 * client.callTool, counted. opts.error: an isError result is expected; opts.audit: the audit
 * outcome expected for an action (default from the result).
 */
async function call(conn, name, args, opts = {}) {
  ledger.calls++;
  const where = `${conn.provider}${conn.instance === 'off' ? ' (confirm off)' : ''} ${name}`;
  if (!conn.client.getToolOutputValidator(name)) ledger.noValidator.push(where);
  let r;
  try {
    r = await conn.client.callTool({ name, arguments: args });
  } catch (e) {
    ledger.threw.push(`${where}: ${e?.constructor?.name}: ${e?.message}`);
    if (isAction(conn, name)) {
      expectedAudit[conn.instance].push({ tool: name, provider: conn.provider, outcome: '?' });
    }
    throw e;
  }
  const sc = r.structuredContent;
  if (isAction(conn, name)) {
    const outcome = opts.audit ?? (r.isError ? 'error' : sc?.outcome === 'declined_by_user' ? 'declined' : 'ok');
    expectedAudit[conn.instance].push({ tool: name, provider: conn.provider, outcome });
  }
  if (!!r.isError !== !!opts.error) {
    const msg = `${where} ${show(args).slice(0, 200)}: ${r.isError ? 'isError' : 'not isError'}: ` +
      `${texts(r).join(' ').slice(0, 400)}`;
    ledger.unexpected.push(msg);
    throw new Error(msg);
  }
  if (sc !== undefined) {
    const t = texts(r);
    let same = false;
    try {
      same = t.length === 1 && isDeepStrictEqual(JSON.parse(t[0]), sc);
    } catch { same = false; }
    if (!same) {
      ledger.textMismatch.push(`${where}: ${t.length} text item(s): ${t.map((x) => x.slice(0, 150)).join(' | ')}`);
    } else if (t[0] === JSON.stringify(sc)) {
      ledger.identical++;
    }
    ledger.structured++;
  }
  return r;
}

const ok = async (conn, name, args, opts) => (await call(conn, name, args, opts)).structuredContent;

function expectProvider(sc, provider) {
  assert(sc.provider === provider && sc.region === REGION[provider],
    `provider/region ${sc.provider}/${sc.region}, expected ${provider}/${REGION[provider]}`);
}

// ------------------------------------------------------------------------------------------------
// 3. Every read-only tool, and the action tools, on each provider

const READ_ONLY_TOOLS = {
  boldsign: ['list_documents', 'get_document', 'get_document_history', 'download_document',
    'get_signing_link', 'list_templates', 'get_template', 'list_contacts', 'get_contact',
    'list_users', 'get_user', 'list_teams', 'get_team', 'get_account'],
  dropboxsign: ['list_documents', 'get_document', 'download_document', 'get_signing_link',
    'list_templates', 'get_template', 'list_users', 'get_user', 'list_teams', 'get_team',
    'get_account'],
  iinkedsign: ['list_documents', 'get_document', 'download_document', 'get_signing_link',
    'list_templates', 'get_template'],
};

const calledReadOnly = { boldsign: new Set(), dropboxsign: new Set(), iinkedsign: new Set() };
async function read(conn, name, args) {
  const sc = await ok(conn, name, args);
  calledReadOnly[conn.provider].add(name);
  expectProvider(sc, conn.provider);
  return sc;
}

const C = {};          // one plain connection per provider (no elicitation: no confirmation asked)
const LISTED = {};     // tool names per provider on a full connection

for (const p of PROVIDERS) {
  await check(`${p}: connect with X-API-Key, tools/list (all pages) lists tools with outputSchemas`, async () => {
    C[p] = await connect(p);
    const names = C[p].tools.map((t) => t.name);
    LISTED[p] = names;
    assert(names.length > 0, 'no tools');
    const noSchema = C[p].tools.filter((t) => !t.outputSchema).map((t) => t.name);
    assert(noSchema.length === 0, `tools without outputSchema: ${noSchema.join(', ')}`);
    const missing = READ_ONLY_TOOLS[p].filter((n) => !names.includes(n));
    assert(missing.length === 0, `read-only tools missing: ${missing.join(', ')}`);
    const unknownRo = C[p].tools.filter((t) => t.annotations?.readOnlyHint === true &&
      !READ_ONLY_TOOLS[p].includes(t.name)).map((t) => t.name);
    assert(unknownRo.length === 0, `read-only tools this test has no arguments for: ${unknownRo.join(', ')}`);
    console.log(`# ${p}: ${names.length} tools in ${C[p].pages} page(s); actions: ` +
      C[p].tools.filter((t) => t.annotations?.readOnlyHint === false).map((t) => t.name).join(' '));
  });
}

// Negative control: the SDK's validators are real (they reject a structuredContent that breaks
// the outputSchema), so "no complaint" below means something.
await check('the SDK holds an outputSchema validator for every tool, and it rejects a wrong structuredContent', async () => {
  let n = 0;
  for (const p of PROVIDERS) {
    if (!C[p]) continue;
    for (const t of C[p].tools) {
      const v = C[p].client.getToolOutputValidator(t.name);
      assert(v, `${p} ${t.name}: no validator`);
      const r = v({ provider: 5, region: [], unexpected_property: true });
      assert(r && r.valid === false, `${p} ${t.name}: a wrong structuredContent passed the validator`);
      n++;
    }
  }
  console.log(`# ${n} validators checked`);
});

async function boldsignReads(c) {
  const P = 'boldsign';
  await check(`${P}: every read-only tool answers (ids from earlier list results)`, async () => {
    const docs = (await read(c, 'list_documents', { page_size: 100 })).documents;
    assert(docs.length > 0, 'no documents');
    await read(c, 'list_documents', { status: ['completed', 'declined'], page_size: 5 });
    const open = docs.find((d) => d.status === 'sent' && d.signers.some((s) => s.status === 'pending'));
    const done = docs.find((d) => d.status === 'completed');
    assert(open && done, `no sent and completed documents in ${show(docs.map((d) => d.status))}`);
    await read(c, 'get_document', { document_id: open.id });
    await read(c, 'get_document', { document_id: done.id });
    await read(c, 'get_document_history', { document_id: done.id });
    await read(c, 'download_document', { document_id: done.id });
    await read(c, 'download_document', { document_id: done.id, kind: 'audit_trail' });
    const signer = open.signers.find((s) => s.status === 'pending');
    await read(c, 'get_signing_link', { document_id: open.id, signer_email: signer.email });
    const tpls = (await read(c, 'list_templates', {})).templates;
    assert(tpls.length > 0, 'no templates');
    for (const t of tpls) await read(c, 'get_template', { template_id: t.id });
    const contacts = (await read(c, 'list_contacts', { page_size: 5 })).contacts;
    assert(contacts.length > 0, 'no contacts');
    await read(c, 'get_contact', { contact_id: contacts[0].id });
    const users = (await read(c, 'list_users', {})).users;
    assert(users.length > 0, 'no users');
    for (const u of users.slice(0, 3)) await read(c, 'get_user', { user_id: u.id });
    const teams = (await read(c, 'list_teams', {})).teams;
    assert(teams.length > 0, 'no teams');
    for (const t of teams) await read(c, 'get_team', { team_id: t.id });
    await read(c, 'get_account', {});
  });
}

async function dropboxsignReads(c) {
  const P = 'dropboxsign';
  await check(`${P}: every read-only tool answers (ids from earlier list results)`, async () => {
    const docs = (await read(c, 'list_documents', { page_size: 100 })).documents;
    assert(docs.length > 0, 'no documents');
    await read(c, 'list_documents', { status: ['completed'], page_size: 5 });
    const done = docs.find((d) => d.status === 'completed');
    assert(done, 'no completed document');
    await read(c, 'get_document', { document_id: done.id });
    for (const d of docs.filter((x) => x.status !== 'completed').slice(0, 3)) {
      await read(c, 'get_document', { document_id: d.id });
    }
    await read(c, 'download_document', { document_id: done.id });
    // Dropbox Sign gives sign URLs only for requests created for embedded signing (no
    // signing_url), which the normalized list does not show: find one in the sandbox's own list.
    const raw = (await direct(P, '/signature_request/list?page_size=100')).json().signature_requests;
    const emb = raw.find((x) => x.requester_email_address === ACCT[P].email && x.signing_url === null &&
      !x.is_complete && !x.is_declined && !x.has_error &&
      (x.signatures ?? []).some((s) => s.status_code === 'awaiting_signature'));
    assert(emb, 'no embedded request in the seed');
    const s = emb.signatures.find((x) => x.status_code === 'awaiting_signature');
    await read(c, 'get_signing_link', { document_id: emb.signature_request_id, signer_email: s.signer_email_address });
    const tpls = (await read(c, 'list_templates', {})).templates;
    assert(tpls.length > 0, 'no templates');
    for (const t of tpls) await read(c, 'get_template', { template_id: t.id });
    const users = (await read(c, 'list_users', {})).users;
    assert(users.length > 0, 'no users');
    for (const u of users) await read(c, 'get_user', { user_id: u.id });
    const teams = (await read(c, 'list_teams', {})).teams;
    assert(teams.length > 0, 'no teams');
    for (const t of teams) await read(c, 'get_team', { team_id: t.id });
    await read(c, 'get_account', {});
  });
}

async function iinkedsignReads(c) {
  const P = 'iinkedsign';
  await check(`${P}: every read-only tool answers (ids from earlier list results)`, async () => {
    const docs = (await read(c, 'list_documents', { page_size: 100 })).documents;
    assert(docs.length > 0, 'no documents');
    await read(c, 'list_documents', { status: ['sent', 'in_progress'], page_size: 5 });
    const done = docs.find((d) => d.status === 'completed');
    const open = docs.find((d) => d.status === 'sent' && d.signers.some((s) => s.status === 'pending'));
    assert(done && open, `no completed and sent documents in ${show(docs.map((d) => d.status))}`);
    await read(c, 'get_document', { document_id: done.id });
    await read(c, 'get_document', { document_id: open.id });
    await read(c, 'download_document', { document_id: done.id });
    await read(c, 'download_document', { document_id: done.id, kind: 'audit_trail' });
    const signer = open.signers.find((s) => s.status === 'pending');
    await read(c, 'get_signing_link', { document_id: open.id, signer_email: signer.email });
    const tpls = (await read(c, 'list_templates', {})).templates;
    assert(tpls.length > 0, 'no templates');
    for (const t of tpls) await read(c, 'get_template', { template_id: t.id });
  });
}

/** A file URL the sandbox serves: a Dropbox Sign files_as_file_url link (no auth, 5 minutes). */
async function sandboxFileUrl() {
  const raw = (await direct('dropboxsign', '/signature_request/list?page_size=20')).json().signature_requests;
  for (const x of raw) {
    const r = await direct('dropboxsign', `/signature_request/files_as_file_url/${x.signature_request_id}`);
    if (r.status === 200 && r.json().file_url) return r.json().file_url;
  }
  throw new Error('the sandbox gave no file link');
}

function sendArgs(title, extra = {}) {
  return {
    title, message: 'Please sign (signbridge SDK tools test).', expires_in_days: 30,
    files: [pdfFile()],
    signers: [{ name: 'Ann Signer', email: 'ann.signer@example.org' },
      { name: 'Bob Signer', email: 'bob.signer@example.org' }],
    ...extra,
  };
}

async function sendsCheck(provider, fn, expectSends) {
  const seq = await lastSeq();
  const out = await fn();
  const sends = sendsIn(await requestsSince(seq, provider), provider);
  assert(sends.length === expectSends, `${sends.length} sends upstream, expected ${expectSends}: ${show(routes(sends))}`);
  return out;
}

async function boldsignActions(c) {
  const P = 'boldsign';
  await check(`${P}: create_contact, get_contact, update_contact, delete_contact`, async () => {
    const created = await ok(c, 'create_contact', {
      name: 'Sdk Tester', email: 'sdk.tester@example.org', phone: '+1 555 010 9999',
      company: 'Signbridge Tests', job_title: 'QA',
    });
    expectProvider(created, P);
    assert(created.outcome === 'done' && created.contact?.id, `create_contact: ${show(created)}`);
    const id = created.contact.id;
    const got = await read(c, 'get_contact', { contact_id: id });
    assert(got.contact.email === 'sdk.tester@example.org', `get_contact: ${show(got)}`);
    const upd = await ok(c, 'update_contact', { contact_id: id, job_title: 'Lead QA', company: 'Signbridge' });
    assert(upd.outcome === 'done' && upd.contact?.job_title === 'Lead QA', `update_contact: ${show(upd)}`);
    const del = await ok(c, 'delete_contact', { contact_id: id });
    assert(del.outcome === 'done' && del.contact_id === id, `delete_contact: ${show(del)}`);
  });

  let docA;
  let docB;
  let docT;
  await check(`${P}: send_document with a base64 PDF (one send upstream), and with a file URL (fileUrls)`, async () => {
    const a = await sendsCheck(P, () => ok(c, 'send_document', sendArgs('SDK base64 send')), 1);
    assert(a.outcome === 'done' && a.document_id && a.status === 'sent', `send_document: ${show(a)}`);
    docA = a.document_id;
    const seq = await lastSeq();
    const b = await ok(c, 'send_document', sendArgs('SDK URL send', {
      files: [{ url: 'https://files.example.com/sdk/contract.pdf' }],
    }));
    assert(b.outcome === 'done' && b.document_id, `send_document (url): ${show(b)}`);
    const sends = sendsIn(await requestsSince(seq, P), P);
    assert(sends.length === 1, `${sends.length} sends`);
    const body = JSON.parse(sends[0].body);
    assert(Array.isArray(body.fileUrls) && body.fileUrls[0] === 'https://files.example.com/sdk/contract.pdf' &&
      !body.files, `BoldSign got ${show(Object.keys(body))}`);
    docB = b.document_id;
  });
  await check(`${P}: send_from_template`, async () => {
    const tpls = (await read(c, 'list_templates', {})).templates;
    const nda = tpls.find((t) => t.title === 'Mutual NDA') ?? tpls[0];
    const signers = nda.roles.filter((r) => r.kind === 'signer' && !r.default_email).map((r, i) => ({
      role: r.name, name: `Role Person${i}`, email: `role${i}.person@example.org`,
    }));
    const t = await sendsCheck(P, () => ok(c, 'send_from_template', { template_id: nda.id, title: 'SDK template send', signers }), 1);
    assert(t.outcome === 'done' && t.document_id, `send_from_template: ${show(t)}`);
    docT = t.document_id;
  });
  await check(`${P}: remind_signers, extend_expiry, change_signer, get_document, revoke_document on documents sent here`, async () => {
    assert(docA && docB && docT, 'the sends failed');
    for (const id of [docA, docB, docT]) await boldsignVisible(id);
    const rem = await ok(c, 'remind_signers', { document_id: docA, message: 'A friendly nudge' });
    assert(rem.outcome === 'done', `remind_signers: ${show(rem)}`);
    const ext = await ok(c, 'extend_expiry', { document_id: docA, days: 90 });
    assert(ext.outcome === 'done' && ext.expires_at, `extend_expiry: ${show(ext)}`);
    const ch = await ok(c, 'change_signer', {
      document_id: docA, old_email: 'bob.signer@example.org', new_name: 'Cara Signer',
      new_email: 'cara.signer@example.org', reason: 'Bob moved on',
    });
    assert(ch.outcome === 'done' && ch.signer?.email === 'cara.signer@example.org', `change_signer: ${show(ch)}`);
    const d = await read(c, 'get_document', { document_id: docA });
    assert(d.document.signers.some((s) => s.email === 'cara.signer@example.org'), `get_document: ${show(d.document.signers)}`);
    await read(c, 'get_document_history', { document_id: docA });
    for (const id of [docB, docT]) {
      const rv = await ok(c, 'revoke_document', { document_id: id, reason: 'Test over' });
      assert(rv.outcome === 'done' && rv.status === 'revoked', `revoke_document: ${show(rv)}`);
    }
  });
  return docA;
}

async function dropboxsignActions(c) {
  const P = 'dropboxsign';
  let dA;
  let dB;
  let dT;
  await check(`${P}: send_document with a base64 PDF (multipart), and with a sandbox file URL (file_urls)`, async () => {
    const a = await sendsCheck(P, () => ok(c, 'send_document', sendArgs('SDK base64 send', { test_mode: true })), 1);
    assert(a.outcome === 'done' && a.document_id, `send_document: ${show(a)}`);
    dA = a.document_id;
    const url = await sandboxFileUrl();
    const seq = await lastSeq();
    const b = await ok(c, 'send_document', sendArgs('SDK URL send', { files: [{ url }] }));
    assert(b.outcome === 'done' && b.document_id, `send_document (url): ${show(b)}`);
    const sends = sendsIn(await requestsSince(seq, P), P);
    assert(sends.length === 1 && sends[0].body?.includes('file_urls'), `sends: ${show(sends.map((q) => q.body))}`);
    dB = b.document_id;
  });
  await check(`${P}: send_from_template, then remind_signers, change_signer, extend_expiry on it`, async () => {
    const tpls = (await read(c, 'list_templates', {})).templates;
    const t = tpls.find((x) => x.title === 'Offer Letter');
    assert(t, `no Offer Letter template in ${show(tpls.map((x) => x.title))}`);
    const sent = await sendsCheck(P, () => ok(c, 'send_from_template', {
      template_id: t.id, title: 'SDK offer', cc: ['hr.sdk@example.org'],
      signers: [{ role: 'Candidate', name: 'Fay Candidate', email: 'fay.sdk@example.org' },
        { role: 'Hiring Manager', name: 'Gus Manager', email: 'gus.sdk@example.org' }],
    }), 1);
    assert(sent.outcome === 'done' && sent.document_id, `send_from_template: ${show(sent)}`);
    dT = sent.document_id;
    const rem = await ok(c, 'remind_signers', { document_id: dT });
    assert(rem.outcome === 'done' && rem.reminded?.length >= 1, `remind_signers: ${show(rem)}`);
    const ch = await ok(c, 'change_signer', {
      document_id: dT, old_email: 'gus.sdk@example.org', new_name: 'Hal Manager', new_email: 'hal.sdk@example.org',
    });
    assert(ch.outcome === 'done' && ch.signer?.email === 'hal.sdk@example.org', `change_signer: ${show(ch)}`);
    const ext = await ok(c, 'extend_expiry', { document_id: dT, days: 45 });
    assert(ext.outcome === 'done' && ext.expires_at, `extend_expiry: ${show(ext)}`);
    await read(c, 'get_document', { document_id: dT });
  });
  await check(`${P}: revoke_document on documents sent here`, async () => {
    assert(dA && dB, 'the sends failed');
    for (const id of [dA, dB]) {
      const rv = await ok(c, 'revoke_document', { document_id: id, reason: 'Test over' });
      assert(rv.outcome === 'done', `revoke_document: ${show(rv)}`);
    }
  });
}

async function iinkedsignActions(c) {
  const P = 'iinkedsign';
  let iA;
  let iB;
  let iT;
  await check(`${P}: send_document with a base64 PDF, and with a sandbox file URL (signbridge fetches it)`, async () => {
    const a = await sendsCheck(P, () => ok(c, 'send_document', sendArgs('SDK base64 send')), 1);
    assert(a.outcome === 'done' && a.document_id, `send_document: ${show(a)}`);
    iA = a.document_id;
    const url = await sandboxFileUrl();
    const b = await sendsCheck(P, () => ok(c, 'send_document', sendArgs('SDK URL send', { files: [{ url }] })), 1);
    assert(b.outcome === 'done' && b.document_id, `send_document (url): ${show(b)}`);
    iB = b.document_id;
  });
  await check(`${P}: send_from_template`, async () => {
    const tpls = (await read(c, 'list_templates', {})).templates;
    const nda = tpls.find((t) => t.title === 'Mutual NDA') ?? tpls[0];
    const signers = nda.roles.filter((r) => r.kind === 'signer' && !r.default_email).map((r, i) => ({
      role: r.name, name: `Role Person${i}`, email: `role${i}.person@example.org`,
    }));
    const t = await sendsCheck(P, () => ok(c, 'send_from_template', { template_id: nda.id, title: 'SDK template send', signers }), 1);
    assert(t.outcome === 'done' && t.document_id, `send_from_template: ${show(t)}`);
    iT = t.document_id;
  });
  await check(`${P}: change_signer, extend_expiry, get_document, revoke_document on documents sent here`, async () => {
    assert(iA && iB && iT, 'the sends failed');
    const ch = await ok(c, 'change_signer', {
      document_id: iA, old_email: 'bob.signer@example.org', new_name: 'Cara Signer', new_email: 'cara.signer@example.org',
    });
    assert(ch.outcome === 'done' && ch.signer?.email === 'cara.signer@example.org', `change_signer: ${show(ch)}`);
    const ext = await ok(c, 'extend_expiry', { document_id: iA, days: 60 });
    assert(ext.outcome === 'done' && ext.expires_at, `extend_expiry: ${show(ext)}`);
    await read(c, 'get_document', { document_id: iA });
    for (const id of [iB, iT]) {
      const rv = await ok(c, 'revoke_document', { document_id: id, reason: 'Test over' });
      assert(rv.outcome === 'done', `revoke_document: ${show(rv)}`);
    }
  });
}

if (C.boldsign) await boldsignReads(C.boldsign);
if (C.dropboxsign) await dropboxsignReads(C.dropboxsign);
if (C.iinkedsign) await iinkedsignReads(C.iinkedsign);
let boldsignDoc;
if (C.boldsign) boldsignDoc = await boldsignActions(C.boldsign);
if (C.dropboxsign) await dropboxsignActions(C.dropboxsign);
if (C.iinkedsign) await iinkedsignActions(C.iinkedsign);

for (const p of PROVIDERS) {
  if (!C[p]) continue;
  await check(`${p}: every listed read-only tool was called`, async () => {
    const ro = C[p].tools.filter((t) => t.annotations?.readOnlyHint === true).map((t) => t.name);
    const missed = ro.filter((n) => !calledReadOnly[p].has(n));
    assert(missed.length === 0, `not called: ${missed.join(', ')}`);
  });
  await check(`${p}: list_documents page_size 100 -> text under 100,000 characters`, async () => {
    const r = await call(C[p], 'list_documents', { page_size: 100 });
    const t = texts(r);
    assert(t.length === 1, `${t.length} text items`);
    assert(t[0].length < 100000, `text is ${t[0].length} characters`);
    console.log(`# ${p}: list_documents page_size 100: ${r.structuredContent.documents.length} documents, ` +
      `${t[0].length} characters`);
  });
}

// ------------------------------------------------------------------------------------------------
// 4. Idempotency

for (const p of PROVIDERS) {
  if (!C[p]) continue;
  const key = `sdk-idem-${p}-${process.pid}-${Date.now()}`;
  const args = sendArgs(`SDK idempotent send ${p}`, { idempotency_key: key });
  let first;
  await check(`${p}: two concurrent send_document calls with one idempotency_key (two sessions) -> one send upstream, the same document_id`, async () => {
    const other = await connect(p);
    const seq = await lastSeq();
    // slow the provider down so the two calls overlap for sure
    await sandboxConfig({ latency_ms: 800 });
    let res;
    try {
      res = await Promise.all([
        // as a multiset: one of the two sends (ok), the other gets its outcome (replayed)
        call(C[p], 'send_document', args, { audit: 'ok' }),
        call(other, 'send_document', args, { audit: 'replayed' }),
      ]);
    } finally {
      await sandboxConfig({ latency_ms: 0 });
    }
    const sends = sendsIn(await requestsSince(seq, p), p);
    assert(sends.length === 1, `${sends.length} sends upstream: ${show(routes(sends))}`);
    const ids = res.map((r) => r.structuredContent?.document_id);
    assert(ids[0] && ids[0] === ids[1], `document ids ${show(ids)}`);
    first = ids[0];
    await other.client.close().catch(() => {});
  });
  await check(`${p}: the same idempotency_key with other arguments -> isError, nothing sent`, async () => {
    const seq = await lastSeq();
    const r = await call(C[p], 'send_document', { ...args, title: `${args.title} (changed)` }, { error: true });
    assert(/idempotency_key/.test(texts(r).join(' ')), `text: ${texts(r).join(' ')}`);
    const reqs = await requestsSince(seq, p);
    assert(reqs.length === 0, `the provider got ${show(routes(reqs))}`);
  });
  await check(`${p}: a third call with the key after completion -> the same document_id, nothing sent`, async () => {
    const seq = await lastSeq();
    const r = await call(C[p], 'send_document', args, { audit: 'replayed' });
    assert(first && r.structuredContent?.document_id === first,
      `document_id ${r.structuredContent?.document_id}, first ${first}`);
    const reqs = await requestsSince(seq, p);
    assert(reqs.length === 0, `the provider got ${show(routes(reqs))}`);
  });
}

// ------------------------------------------------------------------------------------------------
// 5. Read-only connections

async function rawToolsCall(conn, name, args) {
  const headers = {
    ...conn.headers,
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'Mcp-Session-Id': conn.transport.sessionId,
    'MCP-Protocol-Version': conn.transport.protocolVersion,
  };
  const r = await fetch(conn.url, {
    method: 'POST', headers, signal: AbortSignal.timeout(20_000),
    body: JSON.stringify({ jsonrpc: '2.0', id: 9001, method: 'tools/call', params: { name, arguments: args } }),
  });
  return { status: r.status, www: r.headers.get('www-authenticate'), body: await r.text() };
}

for (const p of PROVIDERS) {
  for (const mode of ['query', 'header']) {
    const how = mode === 'query' ? '?read_only=1' : 'X-Read-Only: 1';
    let ro;
    await check(`${p} read-only (${how}): tools/list has no action tool, every read-only tool stays`, async () => {
      ro = await connect(p, { readOnly: mode });
      const actions = ro.tools.filter((t) => t.annotations?.readOnlyHint !== true).map((t) => t.name);
      assert(actions.length === 0, `action tools listed: ${actions.join(', ')}`);
      const full = (C[p]?.tools ?? []).filter((t) => t.annotations?.readOnlyHint === true).map((t) => t.name).sort();
      const got = ro.tools.map((t) => t.name).sort();
      assert(isDeepStrictEqual(got, full), `listed ${got.join(',')}; read-only tools of a full connection ${full.join(',')}`);
      const sc = (await call(ro, 'list_documents', { page_size: 2 })).structuredContent;
      expectProvider(sc, p);
    });
    if (!ro) continue;
    await check(`${p} read-only (${how}): send_document through the SDK -> HTTP 403, nothing sent`, async () => {
      const seq = await lastSeq();
      let err;
      try {
        await ro.client.callTool({ name: 'send_document', arguments: sendArgs('read-only attempt') });
      } catch (e) {
        err = e;
      }
      assert(err, 'the call succeeded');
      assert(err instanceof StreamableHTTPError && err.code === 403, `expected StreamableHTTPError 403, got ${err}`);
      const reqs = await requestsSince(seq, p);
      assert(reqs.length === 0, `the provider got ${show(routes(reqs))}`);
    });
    await check(`${p} read-only (${how}): raw tools/call POST of revoke_document -> 403 with WWW-Authenticate error="insufficient_scope"`, async () => {
      const seq = await lastSeq();
      const r = await rawToolsCall(ro, 'revoke_document', { document_id: 'x', reason: 'read-only attempt' });
      assert(r.status === 403, `HTTP ${r.status} ${r.body.slice(0, 300)}`);
      assert(r.www && /error="insufficient_scope"/.test(r.www), `WWW-Authenticate: ${r.www}`);
      assert(/^Bearer /.test(r.www), `WWW-Authenticate: ${r.www}`);
      const reqs = await requestsSince(seq, p);
      assert(reqs.length === 0, `the provider got ${show(routes(reqs))}`);
      if (p === 'boldsign' && mode === 'query') console.log(`# 403 WWW-Authenticate: ${r.www}`);
    });
    await ro.client.close().catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------
// 6. Confirmation by elicitation

const confirmArgs = (title) => ({
  title, message: 'Confirm me', files: [pdfFile('confirm.pdf')],
  signers: [{ name: 'Olga Confirm', email: 'olga.confirm@example.org' },
    { name: 'Piet Confirm', email: 'piet.confirm@example.org' }],
});

async function elicitedSend(conn, answer, title) {
  const p = conn.provider;
  const seq = await lastSeq();
  const before = conn.elicitations.length;
  let seen = null;
  conn.onElicit = async (req) => {
    const reqs = await requestsSince(seq, p);
    seen = { params: req.params, upstream: reqs };
    return answer;
  };
  const args = confirmArgs(title);
  const r = await call(conn, 'send_document', args);
  conn.onElicit = null;
  const after = await requestsSince(seq, p);
  return { r, sc: r.structuredContent, seen, asked: conn.elicitations.length - before, after, args };
}

function checkQuestion(seen, args) {
  assert(seen, 'no elicitation/create arrived');
  const m = seen.params.message ?? '';
  for (const w of [args.title, ...args.signers.flatMap((s) => [s.name, s.email])]) {
    assert(m.includes(w), `the question does not name ${JSON.stringify(w)}: ${m.slice(0, 400)}`);
  }
  assert(!m.includes(PDF_B64), 'the question carries the file contents');
  assert(seen.params.requestedSchema?.properties?.confirm, `requestedSchema ${show(seen.params.requestedSchema)}`);
  assert(seen.upstream.length === 0, `the sandbox had already got ${show(routes(seen.upstream))} when the question came`);
}

for (const p of PROVIDERS) {
  let ec;
  await check(`${p}: a client declaring elicitation connects`, async () => {
    ec = await connect(p, { elicit: true });
  });
  if (!ec) continue;
  await check(`${p}: send_document asks first (title and signers named, nothing upstream yet); accept -> exactly one send`, async () => {
    const x = await elicitedSend(ec, { action: 'accept', content: { confirm: true } }, `SDK confirm accept ${p}`);
    assert(x.asked === 1, `${x.asked} elicitation requests`);
    checkQuestion(x.seen, x.args);
    assert(x.sc.outcome === 'done' && x.sc.document_id, `result ${show(x.sc)}`);
    const sends = sendsIn(x.after, p);
    assert(sends.length === 1, `${sends.length} sends upstream: ${show(routes(x.after))}`);
  });
  for (const [answer, label] of [[{ action: 'decline' }, 'decline'], [{ action: 'cancel' }, 'cancel'],
    [{ action: 'accept', content: { confirm: false } }, 'accept with confirm false']]) {
    await check(`${p}: send_document, ${label} -> not isError, outcome declined_by_user, nothing upstream`, async () => {
      const x = await elicitedSend(ec, answer, `SDK confirm ${label} ${p}`);
      assert(x.asked === 1, `${x.asked} elicitation requests`);
      checkQuestion(x.seen, x.args);
      assert(!x.r.isError && x.sc?.outcome === 'declined_by_user', `result ${show(x.r)}`);
      assert(x.after.length === 0, `the provider got ${show(routes(x.after))}`);
    });
  }
  await ec.client.close().catch(() => {});
}

await check('boldsign: confirm=destructive asks for revoke_document, not for remind_signers', async () => {
  assert(boldsignDoc, 'no document sent earlier');
  const ec = await connect('boldsign', { elicit: true });
  try {
    ec.onElicit = async () => ({ action: 'accept', content: { confirm: true } });
    let n = ec.elicitations.length;
    await ok(ec, 'remind_signers', { document_id: boldsignDoc });
    assert(ec.elicitations.length === n, 'remind_signers asked for confirmation');
    n = ec.elicitations.length;
    const seq = await lastSeq();
    ec.onElicit = async () => ({ action: 'decline' });
    const d = await ok(ec, 'revoke_document', { document_id: boldsignDoc, reason: 'declined revoke' });
    assert(ec.elicitations.length === n + 1 && d.outcome === 'declined_by_user', `revoke declined: ${show(d)}`);
    assert((await requestsSince(seq, 'boldsign')).length === 0, 'the decline reached BoldSign');
    ec.onElicit = async () => ({ action: 'accept', content: { confirm: true } });
    const rv = await ok(ec, 'revoke_document', { document_id: boldsignDoc, reason: 'accepted revoke' });
    assert(ec.elicitations.length === n + 2 && rv.outcome === 'done' && rv.status === 'revoked', `revoke: ${show(rv)}`);
  } finally {
    await ec.client.close().catch(() => {});
  }
});

for (const p of PROVIDERS) {
  await check(`${p}: with SIGNBRIDGE_ACTIONS_CONFIRM=off nobody is asked; the send goes out once`, async () => {
    const oc = await connect(p, { base: SB_OFF, elicit: true });
    try {
      oc.onElicit = async () => ({ action: 'decline' });
      const seq = await lastSeq();
      const sc = await ok(oc, 'send_document', confirmArgs(`SDK confirm off ${p}`));
      assert(oc.elicitations.length === 0, `${oc.elicitations.length} elicitation requests: ${show(oc.elicitations)}`);
      assert(sc.outcome === 'done' && sc.document_id, `result ${show(sc)}`);
      const sends = sendsIn(await requestsSince(seq, p), p);
      assert(sends.length === 1, `${sends.length} sends upstream`);
      if (p !== 'boldsign') {
        const rv = await ok(oc, 'revoke_document', { document_id: sc.document_id, reason: 'confirm off' });
        assert(oc.elicitations.length === 0 && rv.outcome === 'done', `revoke: ${show(rv)}`);
      }
    } finally {
      await oc.client.close().catch(() => {});
    }
  });
}

// ------------------------------------------------------------------------------------------------
// The audit logs

function readAudit(file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const lines = text.split('\n').filter((l) => l.length > 0);
  return { text, lines, recs: lines.map((l) => { try { return JSON.parse(l); } catch { return { unparsable: l }; } }) };
}

// Let the last lines land (written before the result is sent, but be generous).
await sleep(100);
for (const [inst, file] of [['main', AUDIT], ['off', AUDIT_OFF]]) {
  const { text, lines, recs } = readAudit(file);
  const exp = expectedAudit[inst];
  await check(`audit log (${inst}): one JSON line per action call (${exp.length} calls)`, async () => {
    const bad = recs.filter((r) => r.unparsable !== undefined);
    assert(bad.length === 0, `unparsable lines: ${show(bad.slice(0, 2))}`);
    // match expected records (tool, provider, outcome; "a|b" = either) against the lines
    const left = recs.map((r) => `${r.tool} ${r.provider} ${r.outcome}`);
    const missing = [];
    const want = [...exp].sort((a, b) => a.outcome.includes('|') - b.outcome.includes('|'));
    for (const e of want) {
      const alts = e.outcome.split('|');
      const i = left.findIndex((l) => alts.some((o) => l === `${e.tool} ${e.provider} ${o}`));
      if (i < 0) missing.push(`${e.tool} ${e.provider} ${e.outcome}`);
      else left.splice(i, 1);
    }
    assert(missing.length === 0 && left.length === 0,
      `${lines.length} lines for ${exp.length} action calls; no line for: ${missing.join('; ') || '-'}; ` +
      `lines not matched: ${left.join('; ') || '-'}`);
  });
  await check(`audit log (${inst}): every line has ts, tool, provider, region, outcome and a 12-hex credential`, async () => {
    assert(recs.length > 0, 'the audit log is empty');
    const outcomes = new Set(['ok', 'error', 'declined', 'replayed']);
    for (const r of recs) {
      assert(r.event === 'audit' && typeof r.ts === 'string' && r.tool && PROVIDERS.includes(r.provider) &&
        r.region === REGION[r.provider] && outcomes.has(r.outcome), `line ${show(r)}`);
      assert(typeof r.credential === 'string' && /^[0-9a-f]{12}$/.test(r.credential), `credential ${show(r.credential)}`);
    }
    for (const p of PROVIDERS) {
      const fps = new Set(recs.filter((r) => r.provider === p).map((r) => r.credential));
      assert(fps.size <= 1, `${p}: ${fps.size} different fingerprints for one API key: ${[...fps].join(', ')}`);
      for (const fp of fps) assert(!KEY[p].toLowerCase().includes(fp), `${p}: the fingerprint is part of the key`);
    }
  });
  await check(`audit log (${inst}): no API key, Basic credential or server secret in it`, async () => {
    const secrets = allSecrets();
    const hits = secrets.filter((s) => text.includes(s)).length;
    assert(hits === 0, `${hits} secret(s) found in the audit log`);
    for (const p of PROVIDERS) assert(!text.includes(KEY[p].slice(0, 16)), `a ${p} key prefix is in the audit log`);
  });
}

// ------------------------------------------------------------------------------------------------
// Point 3's summary over every call of the run

await check(`every call's structuredContent passed the SDK's outputSchema check (${ledger.calls} calls): none threw, ` +
  'none isError unexpectedly, the SDK had a validator for each', async () => {
  const problems = [
    ...ledger.threw.map((x) => `threw: ${x}`),
    ...ledger.unexpected.map((x) => `unexpected: ${x}`),
    ...ledger.noValidator.map((x) => `no outputSchema validator: ${x}`),
  ];
  assert(problems.length === 0, `${problems.length} problem(s): ${problems.slice(0, 6).join(' || ')}`);
});
await check('every result\'s text content equals the JSON of its structuredContent', async () => {
  assert(ledger.textMismatch.length === 0,
    `${ledger.textMismatch.length} mismatch(es): ${ledger.textMismatch.slice(0, 4).join(' || ')}`);
  console.log(`# ${ledger.structured} results with structuredContent, ${ledger.identical} of their texts ` +
    'byte-identical to JSON.stringify(structuredContent)');
});

for (const c of conns) await c.client.close().catch(() => {});
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
