// sandbox-spec: every sandbox response of an endpoint the providers' official OpenAPI descriptions
// cover validates against them — ../shared/reference/dropbox-sign-openapi.yaml for Dropbox Sign and
// ../shared/reference/boldsign-openapi.yml for BoldSign (iinked publishes no OpenAPI description).
//
// Every emulated endpoint the spec covers is driven (lists, gets, sends incl. multipart and
// data-URI/URL files, template sends, remind, revoke/cancel/remove, change signer, extend expiry,
// contacts CRUD, users, teams, account, templates, brands, files as PDF/zip/URL/data URI, OAuth token
// and refresh, and error answers the spec declares). For each response: the status must be one the
// operation declares, the Content-Type one declared for that status, and the body must validate
// against the declared schema (openapi.mjs). One ok/not ok line per (operation, status).
//
// Where the spec itself is wrong or self-contradictory the exception is spelled out below, quoting
// the spec; nothing else is waived.
import path from 'node:path';
import { Spec } from './openapi.mjs';
import { ROOT, accounts, assert, basicAuth, http, pick, runTest, show, sleep, tinyPdf } from './lib.mjs';

const REF = process.env.SB_REFERENCE_DIR || path.resolve(ROOT, '..', 'shared', 'reference');

// ---- documented exceptions (the spec against itself or against the provider's documented behaviour)

// BoldSign 401. The spec declares, for every operation:
//     '401': description: Unauthorized / content: application/json: schema: $ref: '#/components/schemas/ErrorResult'
// but BoldSign answers 401 with no usable body: reference/boldsign-api.md §2 "The NODE SDK replaces
// any 401 body with the fixed string "Unauthorized request (401): Invalid authentication." — i.e.
// expect an empty/non-JSON 401 body", and the issue requires "every other region answers 401 with
// BoldSign's empty-body behaviour". So a 401 with an EMPTY body passes; a non-empty 401 body must
// still be a valid ErrorResult.
const BOLD_401_EMPTY = { why: 'BoldSign 401 has an empty body (reference §2), the spec says ErrorResult',
                         when: (res, d) => res.status === 401 && d.key === '401' && res.buf.length === 0 };
// BoldSign downloads. The spec declares the 200 of /v1/document/download, /downloadAuditLog and
// /v1/template/download as
//     schema: {title: FileStreamResult, type: string, format: binary}
// under the media types application/json, application/xml, text/plain, application/octet-stream and
// text/json (ASP.NET's default formatter list, not what the action produces), while
// reference/boldsign-api.md §4.1 documents "Download PDF | GET /v1/document/download | ... | 200 binary
// (application/pdf)". So a 200 application/pdf that is a PDF (starts with %PDF-) passes.
const BOLD_PDF = { why: 'BoldSign downloads are application/pdf (reference §4.1); the spec lists ASP.NET formatter types',
                   when: (res, d) => d.key === '200' && /^application\/pdf/.test(res.ctype) &&
                     res.buf.subarray(0, 5).toString('latin1') === '%PDF-' };
// Dropbox Sign cancel/remove. The spec declares
//     '200': description: 'successful operation' / content: application/json: {}   (no schema)
// while its own description of cancel says the request is queued and reference/dropbox-sign-api.md
// A2 records both as "empty" bodies. An EMPTY 200 therefore passes (there is no schema to validate).
const DBX_EMPTY_200 = { why: 'Dropbox cancel/remove: 200 with an empty body; the spec declares application/json without a schema',
                        when: (res, d) => d.key === '200' && res.buf.length === 0 &&
                          Object.values(d.resp.content || {}).every((c) => !c.schema) };

class Recorder {
  constructor(spec, provider, exceptions) {
    this.spec = spec;
    this.provider = provider;
    this.exceptions = exceptions;
    this.results = new Map(); // "METHOD path status" -> {n, fail, exception}
  }

  // One call: method + spec path (the operation) + the real URL.
  async call(method, specPath, url, opts = {}) {
    const res = await http(method, url, opts);
    const v = this.spec.check(method, specPath, res, this.exceptions);
    const key = `${method} ${specPath} ${res.status}`;
    const r = this.results.get(key) || { n: 0, fail: null, exception: null };
    r.n++;
    if (!v.ok && !r.fail) r.fail = `${v.detail} [${method} ${url.replace(/^https?:\/\/[^/]+/, '')}]`;
    if (v.exception) r.exception = v.exception;
    this.results.set(key, r);
    return res;
  }

  report(checks) {
    for (const [key, r] of [...this.results.entries()].sort()) {
      const name = `${this.provider} ${key} validates against the spec (${r.n} response${r.n > 1 ? 's' : ''})` +
        (r.exception ? ` [documented exception: ${r.exception}]` : '');
      if (r.fail) checks.fail(name, r.fail);
      else checks.ok(name);
    }
  }

  expectSeen(checks, keys) {
    const missing = keys.filter((k) => ![...this.results.keys()].some((x) => x.startsWith(k + ' ')));
    if (missing.length) checks.fail(`${this.provider}: every planned operation was driven`, `never called: ${missing.join(', ')}`);
    else checks.ok(`${this.provider}: every planned operation was driven (${keys.length})`);
  }
}

// Expected outcomes of the drive itself (a wrong status here is reported, and the drive goes on so
// that every later operation is still validated).
let FLOW = null; // the Checks of the running test
const want = (res, status, what) => {
  if (res.status === status) return true;
  FLOW.fail(`drive: ${what} answers ${status}`, `got ${res.status} ${res.text.slice(0, 300)}`);
  return false;
};
const wantJson = (res, status, what) => (want(res, status, what) && res.json !== undefined ? res.json : {});

// ---- BoldSign ------------------------------------------------------------------------------------

async function boldsign(checks, sb, accts) {
  const spec = new Spec(path.join(REF, 'boldsign-openapi.yml'), 'boldsign-openapi');
  const R = new Recorder(spec, 'boldsign', [BOLD_401_EMPTY, BOLD_PDF]);
  const a = pick(accts, 'boldsign', 'us');
  const base = a.base_url;
  const H = { 'X-API-KEY': a.api_key };
  const g = (p, specPath, opts = {}) => R.call('GET', specPath, base + p, { headers: H, ...opts });
  const qs = (o) => new URLSearchParams(o).toString();
  const pdfUri = 'data:application/pdf;base64,' + tinyPdf('spec test').toString('base64');
  const field = (y) => ({ id: `sig${y}`, fieldType: 'Signature', pageNumber: 1, bounds: { x: 100, y, width: 200, height: 50 }, isRequired: true });
  const signer = (n, email) => ({ name: n, emailAddress: email, signerType: 'Signer', formFields: [field(100 + 60 * n.length)] });

  await checks.check('boldsign: drive every covered endpoint', async () => {
    await g('/v1/brand/list', '/v1/brand/list');
    const brands = (await g('/v1/brand/list', '/v1/brand/list')).json?.result || [];
    if (brands[0]) await g('/v1/brand/get?' + qs({ brandId: brands[0].brandId }), '/v1/brand/get');
    await g('/v1/plan/apiCreditsCount', '/v1/plan/apiCreditsCount');
    await g('/v1/senderIdentities/list?Page=1&PageSize=10', '/v1/senderIdentities/list');

    const docs = wantJson(await g('/v1/document/list?Page=1&PageSize=100', '/v1/document/list'), 200, 'document list').result;
    await g('/v1/document/list?Page=1&PageSize=5&Status=Completed&Status=Declined&TransmitType=Both', '/v1/document/list');
    await g('/v1/document/list?Page=1&PageSize=5&SearchKey=NDA', '/v1/document/list');
    await g('/v1/document/teamlist?Page=1&PageSize=50', '/v1/document/teamlist');
    for (const d of docs) await g('/v1/document/properties?' + qs({ documentId: d.documentId }), '/v1/document/properties');
    const byStatus = (s) => docs.filter((d) => d.status === s);
    const done = byStatus('Completed')[0];
    assert(done, 'no Completed document in the seed');
    await g('/v1/document/download?' + qs({ documentId: done.documentId }), '/v1/document/download');
    await g('/v1/document/downloadAuditLog?' + qs({ documentId: done.documentId }), '/v1/document/downloadAuditLog');
    const open = byStatus('InProgress');
    assert(open.length >= 4, `need 4 InProgress documents in the seed, have ${open.length}`);
    const pending = (d) => d.signerDetails.find((s) => s.status === 'NotCompleted') || d.signerDetails[0];
    await g('/v1/document/getEmbeddedSignLink?' + qs({ documentId: open[0].documentId, signerEmail: pending(open[0]).signerEmail }),
            '/v1/document/getEmbeddedSignLink');

    // sends: JSON with a data-URI file, JSON with fileUrls, multipart with a Files part; a 400.
    const send = (body) => R.call('POST', '/v1/document/send', base + '/v1/document/send', { headers: H, json: body });
    const s1 = wantJson(await send({ title: 'Spec JSON send', signers: [signer('Ann', 'ann.spec@example.com')], files: [pdfUri] }), 201, 'send (data URI)');
    await send({ title: 'Spec URL send', signers: [signer('Bob', 'bob.spec@example.com')], fileUrls: ['https://example.com/contract.pdf'] });
    const fd = new FormData();
    fd.append('Title', 'Spec multipart send');
    fd.append('Signers[0][Name]', 'Cid');
    fd.append('Signers[0][EmailAddress]', 'cid.spec@example.com');
    fd.append('Signers[0][SignerType]', 'Signer');
    fd.append('Signers[0][FormFields][0][FieldType]', 'Signature');
    fd.append('Signers[0][FormFields][0][PageNumber]', '1');
    fd.append('Signers[0][FormFields][0][Bounds][X]', '100');
    fd.append('Signers[0][FormFields][0][Bounds][Y]', '100');
    fd.append('Signers[0][FormFields][0][Bounds][Width]', '200');
    fd.append('Signers[0][FormFields][0][Bounds][Height]', '50');
    fd.append('Files', new Blob([tinyPdf('multipart')], { type: 'application/pdf' }), 'multipart.pdf');
    wantJson(await R.call('POST', '/v1/document/send', base + '/v1/document/send', { headers: H, body: fd }), 201, 'send (multipart)');
    await send({ title: 'Spec no signers', files: [pdfUri] }); // 400: declared
    // right after the send: 403 "Invalid Document ID" (declared 403)
    await g('/v1/document/properties?' + qs({ documentId: s1.documentId }), '/v1/document/properties');

    // templates
    const tpls = wantJson(await g('/v1/template/list?Page=1&PageSize=50', '/v1/template/list'), 200, 'template list').result;
    await g('/v1/template/list?Page=1&PageSize=5&TemplateType=mytemplates', '/v1/template/list');
    let withRoles;
    for (const t of tpls) {
      const p = (await g('/v1/template/properties?' + qs({ templateId: t.documentId }), '/v1/template/properties')).json;
      if (!withRoles && p?.roles?.length) withRoles = p;
    }
    assert(withRoles, 'no template with roles');
    await g('/v1/template/download?' + qs({ templateId: withRoles.templateId }), '/v1/template/download');
    const tsend = (id, body) => R.call('POST', '/v1/template/send', base + '/v1/template/send?' + qs({ templateId: id }), { headers: H, json: body });
    wantJson(await tsend(withRoles.templateId, {
      title: 'Spec template send',
      roles: withRoles.roles.map((r, i) => ({ roleIndex: r.index, signerName: `Role ${i}`, signerEmail: `spec.role${i}@example.com` })),
    }), 201, 'template send');
    await tsend(withRoles.templateId, { roles: [{ roleIndex: 50, signerName: 'X', signerEmail: 'not-an-email' }] });

    // remind, change signer, extend expiry, revoke, delete (on seeded in-progress documents)
    const [d1, d2, d3, d4] = open;
    const post = (p, specPath, body) => R.call('POST', specPath, base + p, { headers: H, json: body });
    const patch = (p, specPath, body) => R.call('PATCH', specPath, base + p, { headers: H, json: body });
    want(await post('/v1/document/remind?' + qs({ documentId: d1.documentId }), '/v1/document/remind', { message: 'Spec reminder' }), 204, 'remind');
    const ps = pending(d2);
    want(await patch('/v1/document/changeRecipient?' + qs({ documentId: d2.documentId }), '/v1/document/changeRecipient',
                     { oldSignerEmail: ps.signerEmail, newSignerName: 'Replacement Signer', newSignerEmail: 'replacement.spec@example.com', reason: 'Left the company' }),
         204, 'changeRecipient');
    const p3 = (await g('/v1/document/properties?' + qs({ documentId: d3.documentId }), '/v1/document/properties')).json;
    // newExpiryValue: "yyyy-MM-dd for days type, ISO date-time for specific date time, integer for
    // hours type" (reference §4.1); it must lie after the current expiryDate.
    const later = new Date(((p3?.expiryDate || Date.now() / 1000) + 30 * 86400) * 1000);
    const newExpiry = p3?.expiryDateType === 'Hours' ? String((p3.expiryValue || 24) + 48)
      : p3?.expiryDateType === 'SpecificDateTime' ? later.toISOString() : later.toISOString().slice(0, 10);
    want(await patch('/v1/document/extendExpiry?' + qs({ documentId: d3.documentId }), '/v1/document/extendExpiry', { newExpiryValue: newExpiry }), 200, 'extendExpiry');
    want(await post('/v1/document/revoke?' + qs({ documentId: d4.documentId }), '/v1/document/revoke', { message: 'Spec revoke' }), 204, 'revoke');
    want(await R.call('DELETE', '/v1/document/delete', base + '/v1/document/delete?' + qs({ documentId: done.documentId }), { headers: H }), 204, 'delete');

    // users, teams
    const users = wantJson(await g('/v1/users/list?Page=1&PageSize=20', '/v1/users/list'), 200, 'users').result;
    for (const u of users) await g('/v1/users/get?' + qs({ userId: u.userId }), '/v1/users/get');
    const teams = wantJson(await g('/v1/teams/list?Page=1&PageSize=20', '/v1/teams/list'), 200, 'teams').results;
    for (const t of teams) await g('/v1/teams/get?' + qs({ teamId: t.teamId }), '/v1/teams/get');

    // contacts CRUD
    const cl = wantJson(await g('/v1/contacts/list?Page=1&PageSize=20', '/v1/contacts/list'), 200, 'contacts').result;
    await g('/v1/contacts/list?Page=1&PageSize=5&ContactType=MyContacts&SearchKey=a', '/v1/contacts/list');
    for (const c of cl.slice(0, 5)) await g('/v1/contacts/get?' + qs({ id: c.id }), '/v1/contacts/get');
    const created = wantJson(await R.call('POST', '/v1/contacts/create', base + '/v1/contacts/create',
      { headers: H, json: [{ name: 'Spec Contact', email: 'spec.contact@example.com', companyName: 'Spec Co', jobTitle: 'Tester',
                             phoneNumber: { countryCode: '+1', number: '5550100' } }] }), 201, 'contacts create');
    const cid = created.createdContacts?.[0]?.id;
    assert(cid, `contacts create: ${show(created)}`);
    await R.call('POST', '/v1/contacts/create', base + '/v1/contacts/create', { headers: H, json: [{ name: 'No Email' }] }); // 400
    await g('/v1/contacts/get?' + qs({ id: cid }), '/v1/contacts/get');
    want(await R.call('PUT', '/v1/contacts/update', base + '/v1/contacts/update?' + qs({ id: cid }),
                      { headers: H, json: { name: 'Spec Contact 2', email: 'spec.contact@example.com', jobTitle: 'Lead' } }), 200, 'contacts update');
    want(await R.call('DELETE', '/v1/contacts/delete', base + '/v1/contacts/delete?' + qs({ id: cid }), { headers: H }), 204, 'contacts delete');

    // template delete (after everything else used the templates)
    want(await R.call('DELETE', '/v1/template/delete', base + '/v1/template/delete?' + qs({ templateId: tpls[tpls.length - 1].documentId }), { headers: H }), 204, 'template delete');

    // errors the spec declares: 401 (no key; a foreign region's key), 403 (unknown document id)
    await R.call('GET', '/v1/document/list', base + '/v1/document/list?Page=1');
    const eu = pick(accts, 'boldsign', 'eu');
    await R.call('GET', '/v1/document/list', eu.base_url + '/v1/document/list?Page=1', { headers: H });
    await g('/v1/document/properties?' + qs({ documentId: '00000000-0000-0000-0000-000000000000' }), '/v1/document/properties');
    await g('/v1/document/download?' + qs({ documentId: '00000000-0000-0000-0000-000000000000' }), '/v1/document/download');
  });

  R.report(checks);
  R.expectSeen(checks, [
    'GET /v1/brand/list', 'GET /v1/brand/get', 'GET /v1/plan/apiCreditsCount', 'GET /v1/senderIdentities/list',
    'GET /v1/document/list', 'GET /v1/document/teamlist', 'GET /v1/document/properties', 'GET /v1/document/download',
    'GET /v1/document/downloadAuditLog', 'GET /v1/document/getEmbeddedSignLink', 'POST /v1/document/send',
    'GET /v1/template/list', 'GET /v1/template/properties', 'GET /v1/template/download', 'POST /v1/template/send',
    'POST /v1/document/remind', 'PATCH /v1/document/changeRecipient', 'PATCH /v1/document/extendExpiry',
    'POST /v1/document/revoke', 'DELETE /v1/document/delete', 'GET /v1/users/list', 'GET /v1/users/get',
    'GET /v1/teams/list', 'GET /v1/teams/get', 'GET /v1/contacts/list', 'GET /v1/contacts/get',
    'POST /v1/contacts/create', 'PUT /v1/contacts/update', 'DELETE /v1/contacts/delete', 'DELETE /v1/template/delete',
  ]);
  // Both sides of the contract were exercised: successes and declared errors.
  const statuses = new Set([...R.results.keys()].map((k) => k.split(' ').pop()));
  checks[['200', '201', '204', '400', '401', '403'].every((s) => statuses.has(s)) ? 'ok' : 'fail'](
    'boldsign: responses with 200, 201, 204, 400, 401 and 403 were validated', `seen ${[...statuses].join(', ')}`);
}

// ---- Dropbox Sign --------------------------------------------------------------------------------

async function dropbox(checks, sb, accts) {
  const spec = new Spec(path.join(REF, 'dropbox-sign-openapi.yaml'), 'dropbox-sign-openapi');
  const R = new Recorder(spec, 'dropboxsign', [DBX_EMPTY_200]);
  const all = accts.filter((x) => x.provider === 'dropboxsign');
  const a = all[0];
  const base = a.base_url;
  const H = { Authorization: basicAuth(a.api_key) };
  const g = (p, specPath, opts = {}) => R.call('GET', specPath, base + p, { headers: H, ...opts });
  const post = (p, specPath, json, headers = H) => R.call('POST', specPath, base + p, { headers, json });

  await checks.check('dropboxsign: drive every covered endpoint', async () => {
    const acct = wantJson(await g('/account', '/account'), 200, 'account').account;
    for (const other of all.slice(1)) await R.call('GET', '/account', other.base_url + '/account', { headers: { Authorization: basicAuth(other.api_key) } });
    await R.call('PUT', '/account', base + '/account', { headers: H, json: { callback_url: 'https://example.com/dropbox-callback', locale: 'en-US' } });
    await post('/account/verify', '/account/verify', { email_address: acct.email_address });
    await post('/account/verify', '/account/verify', { email_address: 'nobody.at.all@example.com' });

    const apps = wantJson(await g('/api_app/list?page=1&page_size=20', '/api_app/list'), 200, 'api_app list').api_apps;
    for (const app of apps) await g(`/api_app/${app.client_id}`, '/api_app/{client_id}');

    const list = wantJson(await g('/signature_request/list?page=1&page_size=100', '/signature_request/list'), 200, 'list').signature_requests;
    await g('/signature_request/list?account_id=all&page=1&page_size=10', '/signature_request/list');
    await g('/signature_request/list?query=complete%3Atrue', '/signature_request/list');
    await g('/signature_request/list?page_size=1000', '/signature_request/list'); // 400: out of range
    for (const s of list) await g(`/signature_request/${s.signature_request_id}`, '/signature_request/{signature_request_id}');
    const complete = list.filter((s) => s.is_complete);
    assert(complete.length >= 2, 'need 2 complete signature requests in the seed');
    const sr0 = complete[0].signature_request_id;
    await g(`/signature_request/files/${sr0}`, '/signature_request/files/{signature_request_id}');
    await g(`/signature_request/files/${sr0}?file_type=zip`, '/signature_request/files/{signature_request_id}');
    await g(`/signature_request/files_as_file_url/${sr0}`, '/signature_request/files_as_file_url/{signature_request_id}');
    await g(`/signature_request/files_as_data_uri/${sr0}`, '/signature_request/files_as_data_uri/{signature_request_id}');

    // sends: JSON with file_urls; multipart with files[0]; a 400
    const signers = [{ name: 'Spec One', email_address: 'spec.one@example.com', order: 0 },
                     { name: 'Spec Two', email_address: 'spec.two@example.com', order: 1 }];
    const s1 = wantJson(await post('/signature_request/send', '/signature_request/send',
      { title: 'Spec send', subject: 'Spec', message: 'Please sign', test_mode: true, signers, cc_email_addresses: ['cc.spec@example.com'],
        file_urls: ['https://example.com/spec.pdf'], metadata: { custom_id: 1234 } }), 200, 'send').signature_request;
    // right after the send: files are still being prepared (409, a 4XX)
    await g(`/signature_request/files/${s1.signature_request_id}`, '/signature_request/files/{signature_request_id}');
    const fd = new FormData();
    fd.append('title', 'Spec multipart');
    fd.append('test_mode', '1');
    fd.append('signers[0][name]', 'Multi Part');
    fd.append('signers[0][email_address]', 'multi.part@example.com');
    fd.append('files[0]', new Blob([tinyPdf('multipart')], { type: 'application/pdf' }), 'multipart.pdf');
    const s2 = wantJson(await R.call('POST', '/signature_request/send', base + '/signature_request/send', { headers: H, body: fd }), 200, 'send multipart').signature_request;
    await post('/signature_request/send', '/signature_request/send', { title: 'no signers', file_urls: ['https://example.com/x.pdf'] });
    // an updatable request: form fields given, so no signature page is appended
    const s3 = wantJson(await post('/signature_request/send', '/signature_request/send',
      { title: 'Spec updatable', test_mode: true, signers: [{ name: 'Up Date', email_address: 'up.date@example.com' }],
        file_urls: ['https://example.com/u.pdf'],
        form_fields_per_document: [{ document_index: 0, api_id: 'sig_1', name: '', type: 'signature', x: 100, y: 100,
                                     width: 120, height: 30, required: true, signer: 0, page: 1 }] }), 200, 'send with form fields').signature_request;

    const tl = wantJson(await g('/template/list?page=1&page_size=50', '/template/list'), 200, 'template list').templates;
    for (const t of tl) await g(`/template/${t.template_id}`, '/template/{template_id}');
    const t0 = tl.find((t) => t.signer_roles?.length);
    assert(t0, 'no template with signer roles');
    await g(`/template/files/${t0.template_id}`, '/template/files/{template_id}');
    await g(`/template/files_as_file_url/${t0.template_id}`, '/template/files_as_file_url/{template_id}');
    await g(`/template/files_as_data_uri/${t0.template_id}`, '/template/files_as_data_uri/{template_id}');
    await post('/signature_request/send_with_template', '/signature_request/send_with_template',
      { template_ids: [t0.template_id], test_mode: true, subject: 'Spec template', message: 'Sign',
        signers: t0.signer_roles.map((r, i) => ({ role: r.name, name: `Role ${i}`, email_address: `spec.role${i}@example.com` })),
        ccs: (t0.cc_roles || []).map((r, i) => ({ role: r.name, email_address: `spec.cc${i}@example.com` })) });
    await post('/signature_request/send_with_template', '/signature_request/send_with_template',
      { template_ids: [t0.template_id], signers: [{ role: 'No Such Role', name: 'X', email_address: 'x@example.com' }] });

    // embedded: create_embedded with the API app's client id, then a sign URL
    const app = apps.find((x) => x.is_approved) || apps[0];
    const emb = (await post('/signature_request/create_embedded', '/signature_request/create_embedded',
      { client_id: app.client_id, title: 'Spec embedded', test_mode: true, signers: [{ name: 'Emb Edded', email_address: 'emb@example.com' }],
        file_urls: ['https://example.com/e.pdf'] })).json?.signature_request;
    if (emb) await g(`/embedded/sign_url/${emb.signatures[0].signature_id}`, '/embedded/sign_url/{signature_id}');
    await post('/signature_request/create_embedded_with_template', '/signature_request/create_embedded_with_template',
      { client_id: app.client_id, template_ids: [t0.template_id], test_mode: true,
        signers: t0.signer_roles.map((r, i) => ({ role: r.name, name: `Emb ${i}`, email_address: `emb.role${i}@example.com` })),
        ccs: (t0.cc_roles || []).map((r, i) => ({ role: r.name, email_address: `emb.cc${i}@example.com` })) });
    // release_hold: a seeded request on hold by its requester
    const held = list.find((x) => x.signatures.some((sg) => sg.status_code === 'on_hold_by_requester'));
    assert(held, 'no signature request on hold in the seed');
    await post(`/signature_request/release_hold/${held.signature_request_id}`, '/signature_request/release_hold/{signature_request_id}');
    await post(`/signature_request/release_hold/${held.signature_request_id}`, '/signature_request/release_hold/{signature_request_id}'); // not on hold any more: 4XX

    await sleep(1500); // the sends' files are ready, their cancel is no longer racing the preparation
    await g(`/signature_request/files/${s1.signature_request_id}`, '/signature_request/files/{signature_request_id}');
    const first = s1.signatures[0].signer_email_address;
    want(await post(`/signature_request/remind/${s1.signature_request_id}`, '/signature_request/remind/{signature_request_id}', { email_address: first }), 200, 'remind');
    await post(`/signature_request/remind/${s1.signature_request_id}`, '/signature_request/remind/{signature_request_id}', { email_address: first }); // within the hour: 4XX
    want(await post(`/signature_request/update/${s3.signature_request_id}`, '/signature_request/update/{signature_request_id}',
                    { signature_id: s3.signatures[0].signature_id, email_address: 'new.address@example.com', name: 'New Name' }), 200, 'update');
    want(await post(`/signature_request/cancel/${s2.signature_request_id}`, '/signature_request/cancel/{signature_request_id}'), 200, 'cancel');
    await sleep(1500);
    await g(`/signature_request/${s2.signature_request_id}`, '/signature_request/{signature_request_id}'); // 410 deleted (4XX)
    want(await post(`/signature_request/remove/${complete[1].signature_request_id}`, '/signature_request/remove/{signature_request_id}'), 200, 'remove');

    // team
    const team = (await g('/team', '/team')).json?.team;
    const teamInfo = (await g('/team/info', '/team/info')).json?.team;
    if (teamInfo?.team_id) await g(`/team/members/${teamInfo.team_id}?page=1&page_size=20`, '/team/members/{team_id}');
    assert(team || teamInfo, 'the first Dropbox account should be on a team');
    const solo = all.find((x) => x !== a && !x.team_id && /solo/.test(x.email || ''));
    if (solo) await R.call('GET', '/team', solo.base_url + '/team', { headers: { Authorization: basicAuth(solo.api_key) } }); // 404 not_found

    // errors: no credentials (401), unknown id (404)
    await R.call('GET', '/signature_request/list', base + '/signature_request/list');
    await g('/signature_request/0123456789abcdef0123456789abcdef01234567', '/signature_request/{signature_request_id}');

    // OAuth token and refresh (app.hellosign.com stand-in), approved at once
    const o = a.oauth;
    const cfg = await http('POST', `${sb.origin}/_sandbox/config`, { json: { oauth_auto_approve: true } });
    want(cfg, 200, 'config');
    const redirect = 'http://127.0.0.1:9/spec-callback';
    const auth = await http('GET', `${o.authorize_url}?${new URLSearchParams({ response_type: 'code', client_id: o.client_id, state: 'spec', redirect_uri: redirect })}`);
    assert(auth.status === 302, `authorize: ${auth.status} ${auth.text.slice(0, 200)}`);
    const code = new URL(auth.headers.get('location')).searchParams.get('code');
    const form = (f) => ({ headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(f).toString() });
    const tok = wantJson(await R.call('POST', '/oauth/token', o.token_url,
      form({ grant_type: 'authorization_code', client_id: o.client_id, client_secret: o.client_secret, code, state: 'spec' })), 200, 'token');
    await R.call('POST', '/oauth/token?refresh', o.refresh_url || `${o.token_url}?refresh`,
      form({ grant_type: 'refresh_token', refresh_token: tok.refresh_token, client_id: o.client_id, client_secret: o.client_secret }));
    await R.call('POST', '/oauth/token', o.token_url, form({ grant_type: 'authorization_code', client_id: o.client_id, code: 'bogus', state: 'spec' }));
    // and the REST API with the Bearer token validates the same way
    await R.call('GET', '/account', base + '/account', { headers: { Authorization: `Bearer ${tok.access_token}` } });
    await http('POST', `${sb.origin}/_sandbox/config`, { json: { oauth_auto_approve: false } });
  });

  R.report(checks);
  R.expectSeen(checks, [
    'GET /account', 'PUT /account', 'POST /account/verify', 'GET /api_app/list', 'GET /api_app/{client_id}',
    'GET /signature_request/list', 'GET /signature_request/{signature_request_id}', 'POST /signature_request/send',
    'POST /signature_request/send_with_template', 'POST /signature_request/create_embedded', 'GET /embedded/sign_url/{signature_id}',
    'POST /signature_request/create_embedded_with_template', 'POST /signature_request/release_hold/{signature_request_id}',
    'POST /signature_request/remind/{signature_request_id}', 'POST /signature_request/update/{signature_request_id}',
    'POST /signature_request/cancel/{signature_request_id}', 'POST /signature_request/remove/{signature_request_id}',
    'GET /signature_request/files/{signature_request_id}', 'GET /signature_request/files_as_file_url/{signature_request_id}',
    'GET /signature_request/files_as_data_uri/{signature_request_id}', 'GET /template/list', 'GET /template/{template_id}',
    'GET /template/files/{template_id}', 'GET /template/files_as_file_url/{template_id}', 'GET /template/files_as_data_uri/{template_id}',
    'GET /team', 'GET /team/info', 'GET /team/members/{team_id}', 'POST /oauth/token', 'POST /oauth/token?refresh',
  ]);
}

await runTest('sandbox-spec', async (checks, sb) => {
  FLOW = checks;
  const accts = await accounts(sb.origin);
  const cfg = await http('POST', `${sb.origin}/_sandbox/config`, { json: { rate_limit_overrides: { boldsign: 100000, dropboxsign: 100000 } } });
  assert(cfg.status === 200, `config ${cfg.status}`);
  await dropbox(checks, sb, accts);
  await boldsign(checks, sb, accts);
});
