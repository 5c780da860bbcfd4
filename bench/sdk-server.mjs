// bench/sdk-server.mjs — the comparison server for bench/compare: the
// official MCP TypeScript SDK (McpServer + StreamableHTTPServerTransport,
// stateless, JSON responses — the SDK's documented stateless pattern, one
// server and transport per request) on node's own http module, exposing a
// `search_accounts` tool with the same input schema as the sandbox
// connector's, and `test_simple_text` as the conformance connector has it. Its tool does no I/O: it answers from memory, so the figure
// is an upper bound for the SDK, while switchboard's tool goes through the
// broker and a worker to the sandbox CRM.
//
//   node bench/sdk-server.mjs PORT     (prints "listening <port>" when ready)
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

const MAX_BODY = 1 << 20;
const accounts = [
  { id: 'acc_0001', name: 'Acme Corp', industry: 'Financial Services', city: 'London' },
  { id: 'acc_0002', name: 'Acme Partners', industry: 'Retail', city: 'Paris' },
  { id: 'acc_0003', name: 'Acme Systems', industry: 'Software', city: 'Madrid' },
];

function newServer() {
  const server = new McpServer({ name: 'sdk-bench', version: '1.0.0' });
  server.registerTool('search_accounts', {
    description: 'Search accounts by name.',
    inputSchema: { query: z.string().min(1).max(200).optional(), limit: z.number().int().min(1).max(100).optional() },
  }, async ({ query }) => {
    const q = (query || '').toLowerCase();
    const items = accounts.filter((a) => a.name.toLowerCase().includes(q));
    return {
      content: [{ type: 'text', text: `Found ${items.length} accounts: ${items.map((a) => a.name).join('; ')}` }],
      structuredContent: { items, count: items.length },
    };
  });
  // The same trivial tool the conformance connector's worker fixture answers:
  // bench/compare's "no tool work" row compares the two paths alone.
  server.registerTool('test_simple_text', {
    description: 'Tests simple text content response',
  }, async () => ({ content: [{ type: 'text', text: 'This is a simple text response for testing.' }] }));
  return server;
}

const httpServer = http.createServer((req, res) => {
  if (req.method !== 'POST' || !req.url.startsWith('/mcp')) {
    res.writeHead(405).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on('end', async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
      return;
    }
    const server = newServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => { transport.close(); server.close(); });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  });
});

const port = Number(process.argv[2] || 0);
httpServer.keepAliveTimeout = 60000;
httpServer.listen(port, '127.0.0.1', () => console.log(`listening ${httpServer.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => httpServer.close(() => process.exit(0)));
