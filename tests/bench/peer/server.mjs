// tests/bench/peer/server.mjs: the peer of signbridge in tests/bench/peer.sh (issue 8) -- an MCP
// server the way users deploy one today: the official TypeScript SDK (@modelcontextprotocol/sdk,
// from tests/node/node_modules), Streamable HTTP with sessions and JSON responses
// (enableJsonResponse), on node:http, one tool list_documents that proxies BoldSign's
// GET {base}/v1/document/list with fetch and the caller's API key, returning the upstream JSON as
// text content (as BoldSign's own open-source MCP server does).
//
//   node server.mjs --base URL [--listen HOST:PORT] [--port-file FILE]
//
//   --base       the BoldSign API base, e.g. http://127.0.0.1:PORT/boldsign/us (the sandbox)
//   --listen     default 127.0.0.1:0 (port 0 picks a free port)
//   --port-file  written with the bound port once listening
// The MCP endpoint is POST/GET/DELETE /mcp; GET /healthz answers 200 "ok".
// The caller's key comes from its X-API-Key header (on every request, like signbridge).
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// Resolve the SDK and zod from tests/node/node_modules (this file lives outside that tree).
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'node', 'package.json'));
const load = (id) => import(require.resolve(id));
const { McpServer } = await load('@modelcontextprotocol/sdk/server/mcp.js');
const { StreamableHTTPServerTransport } = await load('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { isInitializeRequest } = await load('@modelcontextprotocol/sdk/types.js');
const { z } = await load('zod');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const base = (arg('--base', '') || '').replace(/\/+$/, '');
if (!base) {
  console.error('server.mjs: --base URL is required');
  process.exit(2);
}
const listen = arg('--listen', '127.0.0.1:0');
const portFile = arg('--port-file', '');
const [host, portText] = [listen.slice(0, listen.lastIndexOf(':')), listen.slice(listen.lastIndexOf(':') + 1)];

function newServer() {
  const server = new McpServer({ name: 'boldsign-peer', version: '1.0.0' });
  server.registerTool(
    'list_documents',
    {
      description: 'List BoldSign documents (one page).',
      inputSchema: {
        page: z.number().int().min(1).optional(),
        page_size: z.number().int().min(1).max(100).optional(),
      },
    },
    async ({ page = 1, page_size = 10 }, extra) => {
      const key = extra?.requestInfo?.headers?.['x-api-key'];
      if (!key) {
        return { isError: true, content: [{ type: 'text', text: 'missing X-API-Key header' }] };
      }
      const url = `${base}/v1/document/list?Page=${page}&PageSize=${page_size}`;
      const resp = await fetch(url, { headers: { 'X-API-KEY': String(key), Accept: 'application/json' } });
      const body = await resp.json();
      if (!resp.ok) {
        return { isError: true, content: [{ type: 'text', text: JSON.stringify(body) }] };
      }
      return { content: [{ type: 'text', text: JSON.stringify(body) }] };
    },
  );
  return server;
}

const transports = new Map(); // session id -> StreamableHTTPServerTransport

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : undefined;
}

function jsonError(res, status, message) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

const http = createServer(async (req, res) => {
  try {
    const url = req.url || '/';
    if (url === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (!url.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const sid = req.headers['mcp-session-id'];
    if (req.method === 'POST') {
      let body;
      try {
        body = await readJson(req);
      } catch {
        jsonError(res, 400, 'Parse error');
        return;
      }
      let transport = sid ? transports.get(sid) : undefined;
      if (!transport) {
        if (sid || !isInitializeRequest(body)) {
          jsonError(res, sid ? 404 : 400, sid ? 'Session not found' : 'Bad Request: No valid session ID provided');
          return;
        }
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableJsonResponse: true,
          onsessioninitialized: (id) => transports.set(id, transport),
        });
        transport.onclose = () => {
          if (transport.sessionId) transports.delete(transport.sessionId);
        };
        await newServer().connect(transport);
      }
      await transport.handleRequest(req, res, body);
      return;
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      const transport = sid ? transports.get(sid) : undefined;
      if (!transport) {
        jsonError(res, 400, 'Invalid or missing session ID');
        return;
      }
      await transport.handleRequest(req, res);
      return;
    }
    res.writeHead(405, { Allow: 'GET, POST, DELETE' }).end();
  } catch (e) {
    console.error('server.mjs: request failed:', e);
    if (!res.headersSent) jsonError(res, 500, 'Internal server error');
    else res.end();
  }
});
http.keepAliveTimeout = 60000;

http.listen(Number(portText), host, () => {
  const port = http.address().port;
  if (portFile) {
    writeFileSync(portFile + '.tmp', `${port}\n`);
    renameSync(portFile + '.tmp', portFile);
  }
  console.error(`server.mjs: listening on ${host}:${port}, upstream ${base}`);
});
const stop = () => http.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
