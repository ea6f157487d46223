// sandbox-sdk: the official Node SDKs against the sandbox — @dropbox/sign 1.11.0 and boldsign 3.2.0,
// pointed at the base_url of GET /_sandbox/accounts — list, get, send, send with template, remind and
// cancel/revoke, and deserialize every response without error.
//
// "Without error" is checked twice: the SDK call resolves (no HttpError, no exception in its
// ObjectSerializer), and the deserialized object conforms to the SDK's own model: every attribute
// the model declares has the declared type (string/number/boolean, valid Date, arrays, maps, nested
// models) and every enum-typed attribute holds one of the SDK's enum values — so a field the SDK
// would silently mis-read (a number sent as a string, an unknown status) fails here.
import { Checks, accounts, assert, describeError, need, pick, runTest, show, sleep, tinyPdf } from './lib.mjs';

const DS = need('@dropbox/sign');
const BS = need('boldsign');

// ---- conformance of a deserialized value to an SDK model type ----------------------------------

function resolveType(mod, type) {
  const [a, b] = type.split('.');
  return b ? mod[a]?.[b] : mod[a];
}

function conform(mod, value, type, path, errs) {
  if (value === undefined || value === null) return;
  type = type.replace(/ \| null$/, '').replace(/ \| undefined$/, '').trim();
  if (errs.length > 20) return;
  const bad = (want) => errs.push(`${path}: expected ${want}, got ${show(value).slice(0, 80)}`);
  switch (type) {
    case 'string': if (typeof value !== 'string') bad('string'); return;
    case 'number': if (typeof value !== 'number' || !Number.isFinite(value)) bad('number'); return;
    case 'boolean': if (typeof value !== 'boolean') bad('boolean'); return;
    case 'Date': if (!(value instanceof Date) || Number.isNaN(value.getTime())) bad('a valid Date'); return;
    case 'any': case 'object': case 'Buffer': case 'RequestFile': return;
    default: break;
  }
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (!Array.isArray(value)) return bad(type);
    value.forEach((v, i) => conform(mod, v, m[1], `${path}[${i}]`, errs));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof value !== 'object' || Array.isArray(value)) return bad('an object map');
    for (const [k, v] of Object.entries(value)) conform(mod, v, m[1], `${path}.${k}`, errs);
    return;
  }
  const t = resolveType(mod, type);
  if (t && typeof t === 'object' && /Enum$/.test(type)) {
    if (!Object.values(t).includes(value)) bad(`one of ${type} ${show(Object.values(t))}`);
    return;
  }
  if (typeof t === 'function' && typeof t.getAttributeTypeMap === 'function') {
    if (typeof value !== 'object' || Array.isArray(value)) return bad(`a ${type} object`);
    const cls = value.constructor && typeof value.constructor.getAttributeTypeMap === 'function' ? value.constructor : t;
    for (const a of cls.getAttributeTypeMap()) conform(mod, value[a.name], a.type, `${path}.${a.name}`, errs);
    return;
  }
  errs.push(`${path}: unknown SDK type ${type}`);
}

function conforms(mod, value, type) {
  const errs = [];
  const cls = resolveType(mod, type);
  assert(value instanceof cls, `not deserialized into ${type}: ${show(value).slice(0, 200)}`);
  conform(mod, value, type, type, errs);
  assert(errs.length === 0, `deserialized ${type} does not conform to the SDK model: ${errs.join('; ')}`);
  return value;
}

// ---- Dropbox Sign ----------------------------------------------------------------------------------

async function dropbox(checks, acct) {
  const api = (Cls) => {
    const a = new Cls();
    a.basePath = acct.base_url; // the sandbox stands for https://api.hellosign.com/v3
    a.username = acct.api_key;
    return a;
  };
  const sr = api(DS.SignatureRequestApi);
  const acc = api(DS.AccountApi);
  const tpl = api(DS.TemplateApi);
  const team = api(DS.TeamApi);
  const ds = (body, type) => conforms(DS, body, type);
  const st = {};

  await checks.check('Dropbox SDK: accountGet deserializes (AccountGetResponse)', async () => {
    const r = await acc.accountGet();
    ds(r.body, 'AccountGetResponse');
    assert(r.body.account.emailAddress === acct.email, `account email ${r.body.account.emailAddress} != ${acct.email}`);
  });

  await checks.check('Dropbox SDK: signatureRequestList deserializes (list_info, signature_requests)', async () => {
    const r = await sr.signatureRequestList(undefined, 1, 50);
    ds(r.body, 'SignatureRequestListResponse');
    assert(r.body.signatureRequests.length > 0 && r.body.listInfo.numResults >= r.body.signatureRequests.length,
           `list: ${show(r.body.listInfo)}`);
    st.listed = r.body.signatureRequests;
  });

  await checks.check('Dropbox SDK: signatureRequestGet of every listed request deserializes', async () => {
    for (const x of st.listed || []) {
      const r = await sr.signatureRequestGet(x.signatureRequestId);
      ds(r.body, 'SignatureRequestGetResponse');
      assert(r.body.signatureRequest.signatureRequestId === x.signatureRequestId, 'id mismatch');
    }
  });

  await checks.check('Dropbox SDK: signatureRequestSend with files (multipart) deserializes', async () => {
    const req = {
      title: 'SDK NDA', subject: 'SDK NDA', message: 'Please sign', testMode: true,
      signers: [{ emailAddress: 'sdk.one@example.com', name: 'SDK One', order: 0 },
                { emailAddress: 'sdk.two@example.com', name: 'SDK Two', order: 1 }],
      ccEmailAddresses: ['sdk.cc@example.com'],
      files: [{ value: tinyPdf('SDK NDA'), options: { filename: 'nda.pdf', contentType: 'application/pdf' } }],
      metadata: { custom_id: 1234 },
    };
    const r = await sr.signatureRequestSend(req);
    ds(r.body, 'SignatureRequestGetResponse');
    const s = r.body.signatureRequest;
    assert(s.title === 'SDK NDA' && s.signatures.length === 2 && s.testMode === true, `sent: ${show(s).slice(0, 300)}`);
    st.sent = s;
  });

  await checks.check('Dropbox SDK: signatureRequestSend with file_urls (JSON) deserializes', async () => {
    const r = await sr.signatureRequestSend({
      title: 'SDK by URL', testMode: true, fileUrls: ['https://example.com/contract.pdf'],
      signers: [{ emailAddress: 'sdk.url@example.com', name: 'SDK Url' }],
    });
    ds(r.body, 'SignatureRequestGetResponse');
    st.byUrl = r.body.signatureRequest;
  });

  await checks.check('Dropbox SDK: templateList / templateGet deserialize', async () => {
    const r = await tpl.templateList(undefined, 1, 20);
    ds(r.body, 'TemplateListResponse');
    assert(r.body.templates.length > 0, 'no templates');
    for (const t of r.body.templates) ds((await tpl.templateGet(t.templateId)).body, 'TemplateGetResponse');
    st.template = r.body.templates.find((t) => (t.signerRoles || []).length > 0);
    assert(st.template, 'no template with signer roles');
  });

  await checks.check('Dropbox SDK: signatureRequestSendWithTemplate deserializes', async () => {
    const t = st.template;
    const r = await sr.signatureRequestSendWithTemplate({
      templateIds: [t.templateId], testMode: true, subject: 'From template', message: 'Sign please',
      signers: t.signerRoles.map((role, i) => ({ role: role.name, name: `Role Signer ${i}`, emailAddress: `role${i}@example.com` })),
      ccs: (t.ccRoles || []).map((cc, i) => ({ role: cc.name, emailAddress: `cc${i}@example.com` })),
    });
    ds(r.body, 'SignatureRequestGetResponse');
    assert((r.body.signatureRequest.templateIds || []).includes(t.templateId), 'template_ids does not name the template');
  });

  await checks.check('Dropbox SDK: signatureRequestRemind deserializes', async () => {
    const s = st.sent;
    const r = await sr.signatureRequestRemind(s.signatureRequestId, { emailAddress: s.signatures[0].signerEmailAddress });
    ds(r.body, 'SignatureRequestGetResponse');
  });

  await checks.check('Dropbox SDK: signatureRequestCancel resolves (empty 200)', async () => {
    const r = await sr.signatureRequestCancel(st.byUrl.signatureRequestId);
    assert(r.response.status === 200, `status ${r.response.status}`);
  });

  await checks.check('Dropbox SDK: teamGet deserializes (TeamGetResponse)', async () => {
    ds((await team.teamGet()).body, 'TeamGetResponse');
  });

  await checks.check('Dropbox SDK: an unknown id rejects with a deserialized ErrorResponse (404 not_found)', async () => {
    try {
      await sr.signatureRequestGet('0000000000000000000000000000000000000000');
    } catch (e) {
      assert(e.statusCode === 404 || e.response?.status === 404, `status ${e.statusCode}`);
      ds(e.body, 'ErrorResponse');
      assert(e.body.error.errorName === 'not_found', show(e.body));
      return;
    }
    throw new Error('resolved for an unknown id');
  });
}

// ---- BoldSign ------------------------------------------------------------------------------------

async function boldsign(checks, acct) {
  const api = (Cls) => {
    const a = new Cls(acct.base_url); // the sandbox stands for https://api[-eu|-ca|-au].boldsign.com
    a.setApiKey(acct.api_key);
    return a;
  };
  const doc = api(BS.DocumentApi);
  const tpl = api(BS.TemplateApi);
  const users = api(BS.UserApi);
  const teams = api(BS.TeamsApi);
  const contacts = api(BS.ContactsApi);
  const brands = api(BS.BrandingApi);
  const bs = (v, type) => conforms(BS, v, type);
  const st = {};

  await checks.check('BoldSign SDK: listDocuments deserializes (pageDetails, result)', async () => {
    const r = bs(await doc.listDocuments(1, undefined, undefined, undefined, undefined, 50), 'DocumentRecords');
    assert(r.result.length > 0 && r.pageDetails.page === 1, show(r.pageDetails));
    st.listed = r.result;
  });

  await checks.check('BoldSign SDK: listDocuments with Status filters (repeated keys) deserializes', async () => {
    const r = bs(await doc.listDocuments(1, undefined, undefined, 'Both', undefined, 50, undefined, ['Completed', 'Declined']), 'DocumentRecords');
    assert(r.result.length > 0 && r.result.every((d) => d.status === 'Completed' || d.status === 'Declined'),
           `statuses ${show(r.result.map((d) => d.status))}`);
  });

  await checks.check('BoldSign SDK: getProperties of every listed document deserializes', async () => {
    for (const d of st.listed || []) {
      const p = bs(await doc.getProperties(d.documentId), 'DocumentProperties');
      assert(p.documentId === d.documentId, 'id mismatch');
    }
  });

  await checks.check('BoldSign SDK: sendDocument with files (multipart) deserializes (DocumentCreated)', async () => {
    const field = (y) => ({ fieldType: 'Signature', pageNumber: 1, bounds: { x: 100, y, width: 200, height: 50 } });
    const r = bs(await doc.sendDocument({
      title: 'SDK agreement', message: 'Please sign',
      signers: [{ name: 'SDK Signer', emailAddress: 'sdk.signer@example.com', signerType: 'Signer', formFields: [field(100)] },
                { name: 'SDK Second', emailAddress: 'sdk.second@example.com', signerType: 'Signer', formFields: [field(200)] }],
      files: [{ value: tinyPdf('SDK agreement'), options: { filename: 'agreement.pdf', contentType: 'application/pdf' } }],
    }), 'DocumentCreated');
    assert(typeof r.documentId === 'string' && r.documentId, show(r));
    st.sent = r.documentId;
  });

  await checks.check('BoldSign SDK: listTemplates / template getProperties deserialize', async () => {
    const r = bs(await tpl.listTemplates(1, 'all', 50), 'TemplateRecords');
    assert(r.result.length > 0, 'no templates');
    for (const t of r.result) {
      const p = bs(await tpl.getProperties(t.documentId), 'TemplateProperties');
      if (!st.template && (p.roles || []).length > 0) st.template = p;
    }
    assert(st.template, 'no template with roles');
  });

  await checks.check('BoldSign SDK: sendUsingTemplate deserializes (DocumentCreated)', async () => {
    const t = st.template;
    const r = bs(await tpl.sendUsingTemplate(t.templateId, {
      title: 'SDK from template', message: 'Sign',
      roles: t.roles.map((role, i) => ({ roleIndex: role.index, signerName: `Role ${i}`, signerEmail: `bsrole${i}@example.com` })),
    }), 'DocumentCreated');
    assert(r.documentId, show(r));
    st.fromTemplate = r.documentId;
  });

  // The send is asynchronous: wait for properties (403 "Invalid Document ID" meanwhile).
  const ready = async (id) => {
    for (let i = 0; i < 100; i++) {
      try { return bs(await doc.getProperties(id), 'DocumentProperties'); } catch (e) {
        if (!(e.statusCode === 403 || e.response?.status === 403)) throw e;
      }
      await sleep(150);
    }
    throw new Error(`document ${id} never became readable`);
  };

  await checks.check('BoldSign SDK: the sent documents become readable (getProperties) after processing', async () => {
    const p = await ready(st.sent);
    assert(p.status === 'InProgress' && p.signerDetails.length === 2, `${p.status} ${p.signerDetails?.length}`);
    await ready(st.fromTemplate);
  });

  await checks.check('BoldSign SDK: remindDocument resolves (204)', async () => {
    await doc.remindDocument(st.sent, ['sdk.signer@example.com'], { message: 'Reminder from the SDK' });
  });

  await checks.check('BoldSign SDK: revokeDocument resolves (204), then status Revoked', async () => {
    await doc.revokeDocument(st.fromTemplate, { message: 'Revoked by the SDK test' });
    const p = await ready(st.fromTemplate);
    assert(p.status === 'Revoked', p.status);
  });

  await checks.check('BoldSign SDK: listUsers / getUser deserialize', async () => {
    const r = bs(await users.listUsers(1, 20), 'UserRecords');
    assert(r.result.length > 0, 'no users');
    bs(await users.getUser(r.result[0].userId), 'UserProperties');
  });

  await checks.check('BoldSign SDK: listTeams (results) / getTeam deserialize', async () => {
    const r = bs(await teams.listTeams(1, 20), 'TeamListResponse');
    assert(r.results.length > 0, 'no teams in `results`');
    bs(await teams.getTeam(r.results[0].teamId), 'TeamResponse');
  });

  await checks.check('BoldSign SDK: contactUserList / getContact / createContact deserialize', async () => {
    const r = bs(await contacts.contactUserList(1, 20), 'ContactsList');
    assert(r.result.length > 0, 'no contacts');
    bs(await contacts.getContact(r.result[0].id), 'ContactsDetails');
    const c = bs(await contacts.createContact([{ name: 'SDK Contact', email: 'sdk.contact@example.com' }]), 'CreateContactResponse');
    assert(c.createdContacts?.length === 1, show(c));
  });

  await checks.check('BoldSign SDK: brandList deserializes (BrandingRecords)', async () => {
    bs(await brands.brandList(), 'BrandingRecords');
  });
}

await runTest('sandbox-sdk', async (checks, sb) => {
  const accts = await accounts(sb.origin);
  // The BoldSign sandbox limit (50 requests/hour/account) is lower than this test's traffic.
  const cfg = await fetch(`${sb.origin}/_sandbox/config`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ rate_limit_overrides: { boldsign: 100000, dropboxsign: 100000 } }),
  });
  assert(cfg.status === 200, `config: ${cfg.status}`);
  await dropbox(checks, pick(accts, 'dropboxsign', 'global'));
  await boldsign(checks, pick(accts, 'boldsign', 'eu'));
});
