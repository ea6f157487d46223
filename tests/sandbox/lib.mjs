// lib.mjs: shared helpers for the sandbox's Node tests (sdk.mjs, spec.mjs).
//   - startSandbox(): SANDBOX_BIN on 127.0.0.1:0 with --port-file and a fixed --seed; stop() sends
//     SIGTERM and reports the exit status and any sanitizer report in its stderr;
//   - need(): CommonJS packages from tests/node/node_modules (SB_NODE_MODULES);
//   - Checks: "ok - ..." / "not ok - ..." lines and the closing "N passed, N failed".
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = process.env.SB_SOURCE_ROOT || path.resolve(here, '..', '..');
export const NODE_MODULES = process.env.SB_NODE_MODULES || path.join(ROOT, 'tests', 'node', 'node_modules');
export const SEED = 4242;
const requireFromTests = createRequire(path.join(NODE_MODULES, '..', 'package.json'));
export const need = (name) => requireFromTests(name);

export const oneLine = (s) => String(s).replace(/\s+/g, ' ').slice(0, 900);
export const show = (v) => oneLine(JSON.stringify(v));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Checks {
  constructor() {
    this.passed = 0;
    this.failed = 0;
  }
  ok(name) {
    this.passed++;
    console.log(`ok - ${name}`);
  }
  fail(name, detail) {
    this.failed++;
    console.log(`not ok - ${name}: ${oneLine(detail)}`);
  }
  async check(name, fn) {
    try {
      const v = await fn();
      this.ok(name);
      return v === undefined ? true : v;
    } catch (e) {
      this.fail(name, describeError(e));
      return undefined;
    }
  }
  finish() {
    console.log(`${this.passed} passed, ${this.failed} failed`);
    return this.failed ? 1 : 0;
  }
}

// An SDK or fetch error, described with the HTTP status and body when there is one.
export function describeError(e) {
  if (!(e instanceof Error) && e && typeof e === 'object') {
    // the SDKs reject with HttpError-like objects
    const st = e.statusCode ?? e.response?.status;
    const body = e.body ?? e.response?.data;
    return `HTTP ${st}: ${show(body)}`;
  }
  if (e?.response) return `${e.constructor.name}: ${e.message}; HTTP ${e.response.status} ${show(e.response.data)}`;
  if (e?.statusCode) return `${e.constructor.name}: HTTP ${e.statusCode} ${show(e.body)}`;
  return e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const CRASH = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|Segmentation fault/;

export async function startSandbox(args = [], seed = SEED) {
  const bin = process.env.SANDBOX_BIN;
  if (!bin || !fs.existsSync(bin)) throw new Error(`SANDBOX_BIN is unset or missing (${bin})`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sbx-node-'));
  const portFile = path.join(dir, 'port');
  const errFile = path.join(dir, 'stderr.log');
  const errFd = fs.openSync(errFile, 'a');
  const child = spawn(bin, ['--seed', String(seed), ...args, '--listen', '127.0.0.1:0', '--port-file', portFile],
                      { stdio: ['ignore', 'ignore', errFd] });
  fs.closeSync(errFd);
  let exited = null;
  const exitP = new Promise((resolve) => child.on('exit', (code, sig) => { exited = { code, sig }; resolve(exited); }));
  const stderr = () => { try { return fs.readFileSync(errFile, 'utf8'); } catch { return ''; } };
  const deadline = Date.now() + 30000;
  let port = 0;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`sandbox exited (${show(exited)}) before writing its port: ${stderr().slice(-1500)}`);
    try {
      const t = fs.readFileSync(portFile, 'utf8');
      if (/^\d+\n$/.test(t)) { port = Number(t); break; }
    } catch { /* not yet */ }
    await sleep(20);
  }
  if (!port) {
    child.kill('SIGKILL');
    throw new Error(`sandbox wrote no port file within 30 s: ${stderr().slice(-1500)}`);
  }
  const origin = `http://127.0.0.1:${port}`;
  return {
    port, origin, pid: child.pid, stderr,
    alive: () => exited === null,
    // SIGTERM, wait; {code, sig, crash} (crash = first sanitizer line or null)
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15000);
        await exitP;
        clearTimeout(t);
      }
      const text = stderr();
      const crash = text.split('\n').find((l) => CRASH.test(l)) || null;
      fs.rmSync(dir, { recursive: true, force: true });
      return { ...exited, crash, tail: text.slice(-3000) };
    },
  };
}

// Stop the sandbox and add the three end-of-test checks (alive, exit 0 on SIGTERM, no sanitizer report).
export async function stopAndCheck(checks, sb) {
  const alive = sb.alive();
  const r = await sb.stop();
  if (alive) checks.ok('sandbox alive at the end of the test');
  else checks.fail('sandbox alive at the end of the test', `it exited early: ${show(r)}`);
  if (r.code === 0) checks.ok('sandbox exits 0 on SIGTERM');
  else checks.fail('sandbox exits 0 on SIGTERM', `exit ${r.code} signal ${r.sig}; ${r.tail}`);
  if (r.crash) checks.fail('no sanitizer report from the sandbox', `${r.crash} ... ${r.tail}`);
  else checks.ok('no sanitizer report from the sandbox');
}

// Plain HTTP with fetch: {status, headers, ctype, buf, text, json} (json undefined if not JSON).
export async function http(method, url, { headers = {}, body, json, timeoutMs = 20000 } = {}) {
  const h = { ...headers };
  let b = body;
  if (json !== undefined) {
    b = JSON.stringify(json);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
  }
  const res = await fetch(url, { method, headers: h, body: b, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  const buf = Buffer.from(await res.arrayBuffer());
  const text = buf.toString('utf8');
  let parsed;
  try { parsed = text.length ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, ctype: res.headers.get('content-type') || '', buf, text, json: parsed };
}

export async function accounts(origin) {
  const r = await http('GET', `${origin}/_sandbox/accounts`);
  assert(r.status === 200 && Array.isArray(r.json?.accounts), `GET /_sandbox/accounts: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.accounts;
}

export function pick(accts, provider, region, index = 0) {
  const found = accts.filter((a) => a.provider === provider && a.region === region);
  assert(found.length > index, `no ${provider} account #${index} in region ${region}`);
  return found[index];
}

export const basicAuth = (key) => 'Basic ' + Buffer.from(`${key}:`).toString('base64');

// A small valid PDF (one page with a title), for sends.
export function tinyPdf(title = 'sandbox test') {
  const esc = title.replace(/[()\\]/g, (c) => '\\' + c);
  const stream = `BT /F1 18 Tf 72 720 Td (${esc}) Tj ET`;
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.4\n';
  const offs = [];
  objs.forEach((o, i) => { offs.push(out.length); out += `${i + 1} 0 obj\n${o}\nendobj\n`; });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n`;
  for (const o of offs) out += `${String(o).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

// Run main(checks, sb, accts) against a fresh sandbox; a watchdog keeps the test from hanging.
export async function runTest(name, main, { args = [], seed = SEED, watchdogMs = 240000 } = {}) {
  const checks = new Checks();
  const watchdog = setTimeout(() => {
    console.log(`not ok - watchdog: ${name} did not finish within ${watchdogMs / 1000} s`);
    console.log(`${checks.passed} passed, ${checks.failed + 1} failed`);
    process.exit(1);
  }, watchdogMs);
  let sb;
  try {
    sb = await startSandbox(args, seed);
  } catch (e) {
    checks.fail('sandbox starts', describeError(e));
    process.exit(checks.finish());
  }
  console.log(`# signbridge-sandbox on port ${sb.port} (pid ${sb.pid}, seed ${seed})`);
  try {
    await main(checks, sb);
  } catch (e) {
    checks.fail(`${name}: test body raised`, `${describeError(e)} ${oneLine(e?.stack || '')}`);
  }
  await stopAndCheck(checks, sb);
  clearTimeout(watchdog);
  process.exit(checks.finish());
}
