// openapi.mjs: validate sandbox responses against a provider's official OpenAPI 3.0 description.
//
// The YAML is loaded with `yaml`; component schemas and each operation's response schemas are
// converted from OpenAPI 3.0 to JSON Schema (draft-07) for Ajv (+ ajv-formats):
//   - `nullable: true` -> the type also admits null (`type: [T, "null"]`, `enum` gains null; a
//     `$ref`/`allOf`/`oneOf`/`anyOf` without a type becomes `anyOf: [<schema>, {type: null}]`);
//   - boolean `exclusiveMinimum`/`exclusiveMaximum` (OpenAPI 3.0 / draft-04 style) -> numeric;
//   - `#/components/...` references point into the converted document;
//   - OpenAPI-only keywords (example, xml, externalDocs, discriminator, ...) are ignored
//     (Ajv strict mode off); formats Ajv does not know (e.g. BoldSign's "Enumeration") accept
//     anything, the known ones (int32, int64, float, double, email, uri, uuid, date-time, ...) are
//     checked.
// check(method, path, res) then says whether the status is one the operation declares (exact code,
// "4XX"-style range or "default"), whether the Content-Type is one declared for that status, and
// whether the body validates against the declared schema (an empty body when nothing is declared).
import fs from 'node:fs';
import { need } from './lib.mjs';

const YAML = need('yaml');
const Ajv = need('ajv');
const addFormats = need('ajv-formats');

const DROP = new Set(['example', 'examples', 'xml', 'externalDocs', 'discriminator', 'x-internal-class',
                      'x-base-class', 'x-enum-varnames', 'x-enum-descriptions']);

function convert(node, id) {
  if (Array.isArray(node)) return node.map((n) => convert(n, id));
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (DROP.has(k)) continue;
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/')) out.$ref = `${id}${v}`;
    else if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, convert(pv, id)]));
    } else out[k] = convert(v, id);
  }
  if (out.exclusiveMinimum === true && typeof out.minimum === 'number') { out.exclusiveMinimum = out.minimum; delete out.minimum; }
  if (out.exclusiveMinimum === false) delete out.exclusiveMinimum;
  if (out.exclusiveMaximum === true && typeof out.maximum === 'number') { out.exclusiveMaximum = out.maximum; delete out.maximum; }
  if (out.exclusiveMaximum === false) delete out.exclusiveMaximum;
  if (out.nullable === true) {
    delete out.nullable;
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else if (out.$ref || out.allOf || out.oneOf || out.anyOf) {
      return { anyOf: [out, { type: 'null' }] };
    }
  } else if ('nullable' in out) {
    delete out.nullable;
  }
  return out;
}

function collectFormats(node, acc) {
  if (Array.isArray(node)) node.forEach((n) => collectFormats(n, acc));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'format' && typeof v === 'string') acc.add(v);
      else collectFormats(v, acc);
    }
  }
  return acc;
}

const mediaBase = (ct) => String(ct || '').split(';')[0].trim().toLowerCase();

export class Spec {
  constructor(file, id) {
    this.id = id;
    this.doc = YAML.parse(fs.readFileSync(file, 'utf8'));
    this.ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    addFormats(this.ajv);
    for (const f of collectFormats(this.doc, new Set())) {
      if (!this.ajv.formats[f]) this.ajv.addFormat(f, true); // unknown to Ajv: accept (documented above)
    }
    this.ajv.addSchema({ $id: id, components: { schemas: convert(this.doc.components?.schemas || {}, id) } });
    this.cache = new Map();
  }

  operation(method, path) {
    const item = this.doc.paths[path];
    const op = item && item[method.toLowerCase()];
    if (!op) throw new Error(`the spec has no ${method} ${path}`);
    return op;
  }

  // The response object declared for a status: exact code, then "4XX", then "default".
  declared(op, status) {
    const r = op.responses || {};
    const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in r);
    return key ? { key, resp: r[key] } : null;
  }

  validator(method, path, key, media, schema) {
    const k = `${method} ${path} ${key} ${media}`;
    if (!this.cache.has(k)) this.cache.set(k, this.ajv.compile(convert(schema, this.id)));
    return this.cache.get(k);
  }

  // res: {status, ctype, buf, text, headers}. Returns {ok, key, detail}. `exceptions` is a list of
  // {when(res, decl), why} that allow a documented deviation (the caller's comment quotes the spec).
  check(method, path, res, exceptions = []) {
    const op = this.operation(method, path);
    const d = this.declared(op, res.status);
    if (!d) {
      return { ok: false, key: String(res.status),
               detail: `status ${res.status} is not declared (declared: ${Object.keys(op.responses || {}).join(', ')}); body ${res.text.slice(0, 300)}` };
    }
    for (const ex of exceptions) {
      if (ex.when(res, d)) return { ok: true, key: d.key, exception: ex.why };
    }
    const content = d.resp.content || {};
    const medias = Object.keys(content);
    if (medias.length === 0) {
      if (res.buf.length !== 0) return { ok: false, key: d.key, detail: `the spec declares no body for ${d.key}, got ${res.buf.length} bytes: ${res.text.slice(0, 200)}` };
      return { ok: true, key: d.key };
    }
    const got = mediaBase(res.ctype);
    const media = medias.find((m) => mediaBase(m) === got);
    if (!media) return { ok: false, key: d.key, detail: `Content-Type "${res.ctype}" is not declared for ${d.key} (declared: ${[...new Set(medias.map(mediaBase))].join(', ')})` };
    const schema = content[media].schema;
    if (!schema) return { ok: true, key: d.key };
    if (schema.type === 'string' && (schema.format === 'binary' || schema.format === 'byte')) {
      if (res.buf.length === 0) return { ok: false, key: d.key, detail: 'binary body is empty' };
      if (got === 'application/pdf' && res.buf.subarray(0, 5).toString('latin1') !== '%PDF-') {
        return { ok: false, key: d.key, detail: `application/pdf body does not start with %PDF-: ${JSON.stringify(res.buf.subarray(0, 16).toString('latin1'))}` };
      }
      if (got === 'application/zip' && res.buf.subarray(0, 2).toString('latin1') !== 'PK') {
        return { ok: false, key: d.key, detail: 'application/zip body does not start with PK' };
      }
      return { ok: true, key: d.key };
    }
    let body;
    try {
      body = JSON.parse(res.text);
    } catch (e) {
      return { ok: false, key: d.key, detail: `body is not JSON (${e.message}): ${res.text.slice(0, 200)}` };
    }
    const v = this.validator(method, path, d.key, media, schema);
    if (!v(body)) {
      const errs = v.errors.slice(0, 8).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : ''}`);
      return { ok: false, key: d.key, detail: `schema ${JSON.stringify(schema).slice(0, 80)}: ${errs.join('; ')}${v.errors.length > 8 ? ` (+${v.errors.length - 8} more)` : ''}` };
    }
    // Declared response headers must be present (e.g. Dropbox Sign's X-RateLimit-* on 200s).
    const missing = Object.keys(d.resp.headers || {}).filter((h) => res.headers && !res.headers.has(h));
    if (missing.length) return { ok: false, key: d.key, detail: `declared response header(s) missing: ${missing.join(', ')}` };
    return { ok: true, key: d.key };
  }
}
