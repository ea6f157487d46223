// sdk_client: drive a running `signbridge --conformance` (tools_page_size 4) with the official
// TypeScript SDK client (@modelcontextprotocol/sdk 1.32.2, StreamableHTTPClientTransport).
//
// Usage: node sdk_client.mjs http://localhost:PORT/mcp
// Env:   SB_NODE_MODULES  directory holding @modelcontextprotocol/sdk (default ../node/node_modules)
// Output: "ok - name" / "not ok - name: detail" lines, then "N passed, N failed"; exit 1 on failure.

import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.SB_NODE_MODULES || path.resolve(here, '..', 'node', 'node_modules');
const sdk = (p) =>
  import(pathToFileURL(path.join(nodeModules, '@modelcontextprotocol', 'sdk', 'dist', 'esm', p)).href);

const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport, StreamableHTTPError } = await sdk('client/streamableHttp.js');
const { ElicitRequestSchema, LoggingMessageNotificationSchema } = await sdk('types.js');

const url = new URL(process.argv[2] || 'http://localhost:8080/mcp');
const API_KEY = 'sk-test-sdk-client-4f1e2d3c';
const OTHER_KEY = 'sk-test-sdk-client-other-9a8b';
const FIXTURE_TOOLS = [
  'test_simple_text', 'test_image_content', 'test_audio_content', 'test_embedded_resource',
  'test_multiple_content_types', 'test_tool_with_logging', 'test_tool_with_progress',
  'test_error_handling', 'test_sampling', 'test_elicitation',
];
const PAGE_SIZE = 4;

let passed = 0;
let failed = 0;
const oneLine = (s) => String(s).replace(/\s+/g, ' ').slice(0, 600);

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

const show = (v) => oneLine(JSON.stringify(v));
const texts = (result) =>
  (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

// Whatever happens, do not hang the test run.
const watchdog = setTimeout(() => {
  console.log('not ok - watchdog: the client run did not finish within 150 s');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 150_000);

function makeClient(apiKey, sessionId) {
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { 'X-API-Key': apiKey } },
    ...(sessionId ? { sessionId } : {}),
  });
  const client = new Client(
    { name: 'signbridge-sdk-client-test', version: '1.0.0' },
    { capabilities: { elicitation: {} } },
  );
  return { client, transport };
}

const { client, transport } = makeClient(API_KEY);
const transportErrors = [];
transport.onerror = (e) => transportErrors.push(e);

const elicitations = [];
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  elicitations.push(request.params);
  return { action: 'accept', content: { username: 'u', email: 'u@example.com' } };
});
const logMessages = [];
client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logMessages.push(n.params));

const connected = await check('connect (initialize + initialized)', async () => {
  await client.connect(transport);
  assert(transport.sessionId, 'no Mcp-Session-Id after initialize');
  assert(transport.protocolVersion === '2025-11-25',
    `negotiated protocol version ${transport.protocolVersion}`);
});

if (connected) {
  await check('serverInfo has name and version', async () => {
    const info = client.getServerVersion();
    assert(info && typeof info.name === 'string' && info.name.length > 0, `serverInfo ${show(info)}`);
    assert(typeof info.version === 'string' && info.version.length > 0, `serverInfo ${show(info)}`);
  });

  await check('capabilities: tools, logging, completions, resources, prompts', async () => {
    const caps = client.getServerCapabilities();
    for (const c of ['tools', 'logging', 'completions', 'resources', 'prompts']) {
      assert(caps && typeof caps[c] === 'object', `capability ${c} missing: ${show(caps)}`);
    }
  });

  await check(`tools/list pages (page size ${PAGE_SIZE}) cover every fixture tool once`, async () => {
    const names = [];
    let cursor;
    let pages = 0;
    do {
      const r = await client.listTools(cursor ? { cursor } : {});
      pages++;
      assert(r.tools.length <= PAGE_SIZE, `page ${pages} has ${r.tools.length} tools`);
      names.push(...r.tools.map((t) => t.name));
      cursor = r.nextCursor;
      assert(pages < 100, 'more than 100 pages: the cursor never ends');
    } while (cursor);
    assert(pages > 1, `only ${pages} page(s) for ${names.length} tools`);
    const dups = names.filter((n, i) => names.indexOf(n) !== i);
    assert(dups.length === 0, `duplicates across pages: ${dups.join(', ')}`);
    const missing = FIXTURE_TOOLS.filter((n) => !names.includes(n));
    assert(missing.length === 0, `missing: ${missing.join(', ')} (got ${names.join(', ')})`);
    console.log(`# ${names.length} tools in ${pages} pages`);
  });

  await check('test_simple_text returns text content', async () => {
    const r = await client.callTool({ name: 'test_simple_text', arguments: {} });
    assert(!r.isError, `isError: ${show(r)}`);
    assert(r.content?.[0]?.type === 'text' && r.content[0].text.length > 0, `result ${show(r)}`);
  });

  await check('test_image_content returns a base64 PNG', async () => {
    const r = await client.callTool({ name: 'test_image_content', arguments: {} });
    const img = (r.content ?? []).find((c) => c.type === 'image');
    assert(img && img.mimeType === 'image/png', `result ${show(r)}`);
    assert(Buffer.from(img.data, 'base64').subarray(0, 4).toString('latin1') === '\x89PNG',
      'image data is not a PNG');
  });

  await check('test_error_handling returns isError with text', async () => {
    const r = await client.callTool({ name: 'test_error_handling', arguments: {} });
    assert(r.isError === true && texts(r).length > 0, `result ${show(r)}`);
  });

  await check('test_sampling {} -> isError naming prompt and required', async () => {
    const r = await client.callTool({ name: 'test_sampling', arguments: {} });
    assert(r.isError === true, `not isError: ${show(r)}`);
    const t = texts(r);
    assert(t.includes('prompt') && t.includes('required'), `text ${show(t)}`);
  });

  await check('test_sampling {prompt: 5} -> isError naming type', async () => {
    const r = await client.callTool({ name: 'test_sampling', arguments: { prompt: 5 } });
    assert(r.isError === true, `not isError: ${show(r)}`);
    const t = texts(r);
    assert(t.includes('type'), `text ${show(t)}`);
    assert(t.includes('prompt'), `text does not name the field: ${show(t)}`);
  });

  await check('test_tool_with_progress -> >= 3 increasing progress notifications', async () => {
    const progress = [];
    const r = await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
      onprogress: (p) => progress.push(p),
    });
    assert(!r.isError, `isError: ${show(r)}`);
    assert(progress.length >= 3, `${progress.length} progress notifications: ${show(progress)}`);
    for (let i = 1; i < progress.length; i++) {
      assert(progress[i].progress > progress[i - 1].progress, `not increasing: ${show(progress)}`);
    }
  });

  await check('test_tool_with_logging -> >= 3 log notifications before the result', async () => {
    await client.setLoggingLevel('debug');
    const before = logMessages.length;
    const r = await client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    assert(!r.isError, `isError: ${show(r)}`);
    const got = logMessages.length - before;
    assert(got >= 3, `${got} notifications/message: ${show(logMessages)}`);
  });

  await check('test_elicitation -> elicitation/create answered, result mentions the content', async () => {
    const before = elicitations.length;
    const r = await client.callTool({
      name: 'test_elicitation',
      arguments: { message: 'Please provide your username and email' },
    });
    assert(elicitations.length === before + 1, `${elicitations.length - before} elicitation requests`);
    console.log(`# elicitation/create params: ${show(elicitations[before])}`);
    assert(!r.isError, `isError: ${show(r)}`);
    const t = texts(r);
    assert(t.includes('u@example.com'), `result does not mention the content: ${show(r)}`);
  });

  await check('the session is bound to its X-API-Key (another key -> 404)', async () => {
    const other = makeClient(OTHER_KEY, transport.sessionId);
    await other.client.connect(other.transport);   // existing session id: no initialize
    other.transport.setProtocolVersion(transport.protocolVersion);
    try {
      await other.client.ping();
      throw new Error('ping with another X-API-Key succeeded');
    } catch (e) {
      assert(e instanceof StreamableHTTPError && e.code === 404, `expected 404, got ${e}`);
    } finally {
      await other.client.close().catch(() => {});
    }
  });

  await check('ping still works on the original session', async () => {
    await client.ping();
  });

  await check('terminateSession (DELETE) then the old session id -> 404', async () => {
    const old = transport.sessionId;
    const version = transport.protocolVersion;
    await transport.terminateSession();
    assert(transport.sessionId === undefined, 'session id still set after terminateSession');
    const again = makeClient(API_KEY, old);
    await again.client.connect(again.transport);
    again.transport.setProtocolVersion(version);
    try {
      await again.client.ping();
      throw new Error('ping on the terminated session succeeded');
    } catch (e) {
      assert(e instanceof StreamableHTTPError && e.code === 404, `expected 404, got ${e}`);
    } finally {
      await again.client.close().catch(() => {});
    }
  });

  await check('no unexpected transport errors', async () => {
    const unexpected = transportErrors.filter((e) => !(e instanceof StreamableHTTPError && e.code === 404));
    assert(unexpected.length === 0, unexpected.map((e) => String(e)).join('; '));
  });

  await client.close().catch(() => {});
}

clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
