// tests/interop/sdk-client.test.mjs — the official TypeScript SDK client
// (@modelcontextprotocol/sdk Client + StreamableHTTPClientTransport) against
// a real farm, straight to the gateway with the bearer token in requestInit
// headers. Run by run-node-tests.sh, which starts the farm and passes it in
// the environment (SB_INTEROP_GATEWAY_MCP_URL, SB_INTEROP_TOKEN_FILE,
// SB_INTEROP_SANDBOX_URL, SB_FARM_DIR, SB_INTEROP_TOOLS_PAGE_SIZE):
//
//   tests/interop/run-node-tests.sh BUILD_DIR WORK_DIR tests/interop/sdk-client.test.mjs
//
// What is not covered yet is a node:test `todo` with the reason, never a pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';

function env(name) {
    const value = process.env[name];
    if (!value)
        throw new Error(`${name} is not set: run this file through tests/interop/run-node-tests.sh`);
    return value;
}

const MCP_URL = new URL(env('SB_INTEROP_GATEWAY_MCP_URL'));
const TOKEN = readFileSync(env('SB_INTEROP_TOKEN_FILE'), 'utf8').trim();
const SANDBOX_URL = env('SB_INTEROP_SANDBOX_URL');
const FARM_DIR = env('SB_FARM_DIR');
const PAGE_SIZE = Number(process.env.SB_INTEROP_TOOLS_PAGE_SIZE || 0);
const POLL_MS = 20;          // interval of the log/stats polls below (they have deadlines)

// A connected client; `capabilities` are what this client tells the server.
async function connect(capabilities = {}, onClient = () => {}) {
    const client = new Client({ name: 'switchboard-interop', version: '1.0.0' }, { capabilities });
    onClient(client);
    const transport = new StreamableHTTPClientTransport(MCP_URL, {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
    });
    await client.connect(transport);
    return { client, transport };
}

// Waits until `check()` is truthy, polling; fails after `ms`.
async function eventually(what, check, ms = 10000) {
    const deadline = Date.now() + ms;
    for (;;) {
        const value = await check();
        if (value)
            return value;
        if (Date.now() > deadline)
            assert.fail(`timed out after ${ms} ms waiting for ${what}`);
        await delay(POLL_MS);
    }
}

function logLines(name) {
    try {
        return readFileSync(join(FARM_DIR, 'logs', `${name}.log`), 'utf8').split('\n');
    } catch {
        return [];
    }
}

async function sandbox(method, path, body) {
    const response = await fetch(`${SANDBOX_URL}${path}`, {
        method,
        headers: body ? { 'Content-Type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
    });
    assert.ok(response.ok, `sandbox ${method} ${path} answered ${response.status}`);
    return response.status === 204 ? null : response.json();
}

let session;            // { client, transport } shared by the plain tests
let tools = [];         // every tool, over all pages

before(async () => {
    session = await connect();
});

after(async () => {
    await session?.transport.terminateSession().catch(() => {});
    await session?.client.close();
});

test('initialize: the SDK connects and negotiates', () => {
    const { client, transport } = session;
    const info = client.getServerVersion();
    assert.equal(info.name, 'switchboard');
    assert.ok(info.version, 'serverInfo.version');
    const caps = client.getServerCapabilities();
    assert.ok(caps.tools, 'tools capability');
    assert.ok(['2025-06-18', '2025-11-25'].includes(transport.protocolVersion),
              `negotiated protocol version ${transport.protocolVersion}`);
    assert.ok(transport.sessionId, 'the gateway gave an Mcp-Session-Id');
});

test('ping', async () => {
    assert.deepEqual(await session.client.ping(), {});
});

test('tools/list: page through with cursors', async () => {
    let cursor;
    let pages = 0;
    tools = [];
    do {
        const page = await session.client.listTools(cursor ? { cursor } : {});
        pages++;
        if (PAGE_SIZE)
            assert.ok(page.tools.length <= PAGE_SIZE, `page ${pages} has ${page.tools.length} tools`);
        tools.push(...page.tools);
        cursor = page.nextCursor;
        assert.ok(pages < 100, 'pagination ends');
    } while (cursor);
    const names = tools.map((t) => t.name);
    assert.equal(new Set(names).size, names.length, 'no tool appears on two pages');
    for (const name of ['search_accounts', 'get_account', 'test_simple_text'])
        assert.ok(names.includes(name), `${name} is listed`);
    if (PAGE_SIZE)
        assert.equal(pages, Math.ceil(names.length / PAGE_SIZE), `${names.length} tools in pages of ${PAGE_SIZE}`);
    for (const tool of tools) {
        assert.equal(tool.inputSchema.type, 'object', `${tool.name} inputSchema`);
        assert.ok(tool.description, `${tool.name} has a description`);
    }
});

test('tools/list: a cursor the gateway never made is -32602', async () => {
    await assert.rejects(session.client.listTools({ cursor: 'not-a-cursor' }),
        (err) => err instanceof McpError && err.code === ErrorCode.InvalidParams);
});

// structuredContent must match the tool's outputSchema (checked here with the
// SDK's own validator, for every page's tools; Client.callTool only checks
// the tools of the last tools/list page it saw).
function checkOutput(name, result) {
    const tool = tools.find((t) => t.name === name);
    assert.ok(tool, `${name} was listed`);
    if (!tool.outputSchema)
        return;
    const check = new AjvJsonSchemaValidator().getValidator(tool.outputSchema);
    const verdict = check(result.structuredContent);
    assert.ok(verdict.valid, `${name} structuredContent vs outputSchema: ${verdict.errorMessage}`);
}

let acme;
test('tools/call search_accounts: structuredContent with the matches', async () => {
    const result = await session.client.callTool({ name: 'search_accounts', arguments: { query: 'acme' } });
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    const items = result.structuredContent?.items;
    assert.ok(Array.isArray(items) && items.length > 0, 'items');
    assert.equal(result.structuredContent.count, items.length);
    for (const item of items) {
        assert.match(item.id, /^acc_/);
        assert.match(item.name, /acme/i);
    }
    assert.equal(result.content[0].type, 'text');
    assert.match(result.content[0].text, /Acme/);
    checkOutput('search_accounts', result);
    acme = items[0];
});

test('tools/call get_account: the record searched for', async () => {
    assert.ok(acme, 'search_accounts found an account');
    const result = await session.client.callTool({ name: 'get_account', arguments: { id: acme.id } });
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    assert.equal(result.structuredContent.id, acme.id);
    assert.equal(result.structuredContent.name, acme.name);
    assert.match(result.content[0].text, new RegExp(acme.name));
    checkOutput('get_account', result);
});

test('tools/call with bad arguments: an isError result naming the field', async () => {
    const wrongType = await session.client.callTool({ name: 'get_account', arguments: { id: 42 } });
    assert.equal(wrongType.isError, true);
    assert.match(wrongType.content[0].text, /\bid\b/);

    const missing = await session.client.callTool({ name: 'get_account', arguments: {} });
    assert.equal(missing.isError, true);
    assert.match(missing.content[0].text, /\bid\b/);

    const unknownRecord = await session.client.callTool({ name: 'get_account', arguments: { id: 'acc_9999' } });
    assert.equal(unknownRecord.isError, true);
    assert.ok(unknownRecord.content[0].text.length > 0, 'a sentence');
});

test('tools/call: progress notifications reach onprogress', async () => {
    const progress = [];
    const result = await session.client.callTool({ name: 'test_tool_with_progress', arguments: {} },
        undefined, { onprogress: (p) => progress.push(p) });
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    assert.ok(progress.length >= 2, `${progress.length} progress notifications`);
    for (let i = 1; i < progress.length; i++)
        assert.ok(progress[i].progress > progress[i - 1].progress, 'progress increases');
});

test('tools/call: the server asks (elicitation) and the client answers', async () => {
    const asked = [];
    const { client, transport } = await connect({ elicitation: {} }, (c) => {
        c.setRequestHandler(ElicitRequestSchema, async (request) => {
            asked.push(request.params);
            return { action: 'accept', content: { username: 'interop', email: 'interop@example.com' } };
        });
    });
    try {
        const result = await client.callTool({ name: 'test_elicitation',
                                               arguments: { message: 'Who is calling?' } });
        assert.notEqual(result.isError, true, JSON.stringify(result.content));
        assert.equal(asked.length, 1, 'one elicitation/create');
        assert.equal(asked[0].message, 'Who is calling?');
        assert.ok(asked[0].requestedSchema?.properties, 'a requestedSchema');
        assert.match(result.content[0].text, /accept/);
        assert.match(result.content[0].text, /interop@example\.com/);
    } finally {
        await transport.terminateSession().catch(() => {});
        await client.close();
    }
});

test('tools/call: aborting a slow call cancels it in the gateway and the worker', async () => {
    const cancelledBefore = logLines('gateway').filter((l) => l.includes('call_cancelled')).length;
    const jobsBefore = logLines('api-worker-1').filter((l) => l.includes('job_cancelled')).length;
    // The sandbox holds the next account lookup for 20 s.
    await sandbox('POST', '/_sandbox/faults', { path_prefix: '/v1/accounts', delay_ms: 20000, count: 1 });
    try {
        const abort = new AbortController();
        const call = session.client.callTool({ name: 'get_account', arguments: { id: acme?.id ?? 'acc_0001' } },
                                             undefined, { signal: abort.signal });
        call.catch(() => {});
        await eventually('the call to reach the sandbox',
            async () => (await sandbox('GET', '/_sandbox/stats')).delayed_now >= 1);
        abort.abort('the interop test gave up');
        await assert.rejects(call);
        await eventually('the gateway to log call_cancelled', () =>
            logLines('gateway').filter((l) => l.includes('call_cancelled')).length > cancelledBefore);
        await eventually('the worker to log job_cancelled', () =>
            logLines('api-worker-1').filter((l) => l.includes('job_cancelled')).length > jobsBefore);
    } finally {
        await sandbox('DELETE', '/_sandbox/faults');
    }
    // The session still works after a cancellation.
    const after = await session.client.callTool({ name: 'get_account', arguments: { id: 'acc_0001' } });
    assert.notEqual(after.isError, true, JSON.stringify(after.content));
});

// Titles of the tasks in the CRM that contain `text` (list_tasks, read-only: never asks).
async function taskTitles(text) {
    const result = await session.client.callTool({ name: 'list_tasks', arguments: { query: text } });
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    return (result.structuredContent?.items ?? []).map((t) => t.title);
}

test('a connector tool marked "confirm" asks by elicitation: accept creates, decline does not', async () => {
    const asked = [];
    let answer = 'accept';
    const { client, transport } = await connect({ elicitation: {} }, (c) => {
        c.setRequestHandler(ElicitRequestSchema, async (request) => {
            asked.push(request.params);
            return answer === 'accept' ? { action: 'accept', content: { confirm: true } }
                                       : { action: 'decline' };
        });
    });
    const stamp = `${process.pid}-${Date.now()}`;
    try {
        const yes = `interop confirmed ${stamp}`;
        const created = await client.callTool({ name: 'create_task', arguments: { title: yes, priority: 'high' } });
        assert.notEqual(created.isError, true, JSON.stringify(created.content));
        assert.equal(asked.length, 1, 'one elicitation/create before the task is created');
        assert.match(asked[0].message, /Create task/);
        assert.ok(asked[0].message.includes(yes), `the question names the arguments: ${asked[0].message}`);
        assert.equal(asked[0].requestedSchema?.properties?.confirm?.type, 'boolean');
        assert.equal(created._meta?.confirmation, 'accepted');
        assert.equal(created.structuredContent?.title, yes);
        assert.deepEqual(await taskTitles(yes), [yes]);

        answer = 'decline';
        const no = `interop declined ${stamp}`;
        const declined = await client.callTool({ name: 'create_task', arguments: { title: no } });
        assert.equal(asked.length, 2, 'asked again for the second call');
        assert.notEqual(declined.isError, true, JSON.stringify(declined.content));
        assert.match(declined.content[0].text, /^Nothing was done/);
        assert.equal(declined._meta?.confirmation, 'declined');
        assert.deepEqual(await taskTitles(no), [], 'a declined task is not in the CRM');
    } finally {
        await transport.terminateSession().catch(() => {});
        await client.close();
    }
});

test('a client without elicitation is not asked: the call goes ahead and says so in _meta', async () => {
    const title = `interop unasked ${process.pid}-${Date.now()}`;
    const result = await session.client.callTool({ name: 'create_task', arguments: { title } });
    assert.notEqual(result.isError, true, JSON.stringify(result.content));
    assert.equal(result._meta?.confirmation, 'not_asked');
    assert.ok(result._meta?.confirmation_note, 'a note says why nobody was asked');
    assert.deepEqual(await taskTitles(title), [title]);
});

// The SDK resumes a POST stream after a network error once it has seen an
// event ID (2025-11-25 priming). A fetch wrapper plays the network: it cuts
// the tools/call response right after the first progress event, and records
// the GET the SDK then sends with Last-Event-ID. The gateway replays what
// the client missed (the call ran on meanwhile), and the call completes.
test('resumes an interrupted SSE stream with Last-Event-ID', async () => {
    const seen = { cut: false, resumedWith: null };
    const cuttingFetch = async (url, init) => {
        const response = await fetch(url, init);
        const method = init?.method ?? 'GET';
        const headers = new Headers(init?.headers);
        if (method === 'GET' && headers.get('last-event-id'))
            seen.resumedWith = headers.get('last-event-id');
        const body = typeof init?.body === 'string' ? init.body : '';
        if (method !== 'POST' || !body.includes('test_tool_with_progress') || seen.cut
        ||  !response.body || !(response.headers.get('content-type') ?? '').includes('text/event-stream'))
            return response;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let text = '';
        const cut = new ReadableStream({
            async pull(controller) {
                const { value, done } = await reader.read();
                if (done)
                    return controller.close();
                controller.enqueue(value);
                text += decoder.decode(value, { stream: true });
                if (text.includes('notifications/progress') && text.endsWith('\n\n')) {
                    seen.cut = true;
                    await reader.cancel();          // the connection goes away
                    controller.error(new TypeError('network error (cut by the test)'));
                }
            },
        });
        return new Response(cut, { status: response.status, headers: response.headers });
    };
    const client = new Client({ name: 'switchboard-interop-resume', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(MCP_URL, {
        requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
        fetch: cuttingFetch,
        reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 500,
                               reconnectionDelayGrowFactor: 1.5, maxRetries: 5 },
    });
    transport.onerror = () => {};                   // the cut is reported there; expected
    await client.connect(transport);
    try {
        const progress = [];
        const result = await client.callTool({ name: 'test_tool_with_progress', arguments: {} },
            undefined, { onprogress: (p) => progress.push(p.progress), timeout: 10000 });
        assert.ok(seen.cut, 'the response stream was cut mid-call');
        assert.ok(seen.resumedWith, 'the SDK resumed with a GET carrying Last-Event-ID');
        assert.notEqual(result.isError, true, JSON.stringify(result.content));
        assert.equal(result.content[0].text, 'Tool with progress executed successfully');
        assert.ok(progress.length >= 2, `${progress.length} progress notifications`);
        assert.deepEqual(progress, [...new Set(progress)].sort((a, b) => a - b),
                         'each progress once, in order, across the cut');
    } finally {
        await client.close();
    }
});

// ---------------------------------------------------------------------------
// Connector reloads (SIGHUP). The test starts a gateway of its own with the
// farm gateway's options (read from its command line; the farm records PIDs
// in SB_FARM_DIR/pids) but on one copy of its connectors folders, so it can
// change definitions without touching the repository's; it shares the farm's
// broker and token key.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ResourceUpdatedNotificationSchema, ToolListChangedNotificationSchema }
    from '@modelcontextprotocol/sdk/types.js';

// The farm gateway's argv (binary first).
function farmGatewayArgv() {
    const line = readFileSync(join(FARM_DIR, 'pids'), 'utf8').split('\n')
        .find((l) => l.startsWith('gateway '));
    assert.ok(line, 'the farm recorded its gateway PID');
    return readFileSync(`/proc/${line.split(' ')[1]}/cmdline`, 'utf8').split('\0').filter((a) => a);
}

// `argv` with option `name` set to `value`.
function withOption(argv, name, value) {
    const out = [...argv];
    const i = out.indexOf(name);
    if (i >= 0)
        out[i + 1] = value;
    else
        out.push(name, value);
    return out;
}

// Starts sb-gateway on `connectors` and a free port; resolves once it is ready.
async function startGateway(argv, connectors) {
    const [bin, ...args] = argv;
    let options = withOption(args, '--listen', '127.0.0.1:0');
    options = withOption(options, '--connectors', connectors);
    options = withOption(options, '--log-level', 'debug');     // sse_opened is a debug line
    const child = spawn(bin, options, { stdio: ['ignore', 'ignore', 'pipe'] });
    const gateway = { child, lines: [], exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
    let partial = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        gateway.lines.push(...parts);
    });
    const ready = await eventually('our gateway to be ready',
        () => gateway.lines.find((l) => l.includes('"event":"ready"')));
    gateway.url = new URL(`http://127.0.0.1:${/port=(\d+)/.exec(ready)[1]}/mcp`);
    return gateway;
}

test('SIGHUP reloads the connectors: the SDK client hears tools/list_changed and resources/updated', async () => {
    const argv = farmGatewayArgv();
    const dir = mkdtempSync(join(tmpdir(), 'sb-interop-reload-'));
    let gateway;
    let client;
    try {
        // The farm's --connectors list (the product's folder and the fixtures'), merged.
        for (const folder of argv[argv.indexOf('--connectors') + 1].split(':'))
            cpSync(folder, dir, { recursive: true });
        gateway = await startGateway(argv, dir);
        const heard = [];
        client = new Client({ name: 'switchboard-interop-reload', version: '1.0.0' }, { capabilities: {} });
        client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => { heard.push(n.method); });
        client.setNotificationHandler(ResourceUpdatedNotificationSchema,
                                      (n) => { heard.push(`${n.method} ${n.params.uri}`); });
        const transport = new StreamableHTTPClientTransport(gateway.url, {
            requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
        });
        await client.connect(transport);
        const caps = client.getServerCapabilities();
        assert.equal(caps.tools?.listChanged, true, 'tools.listChanged');
        assert.equal(caps.resources?.subscribe, true, 'resources.subscribe');
        await client.subscribeResource({ uri: 'test://watched-resource' });
        // The SDK opens its GET stream by itself after initialize: reload once it is open.
        await eventually('the SDK client\'s GET stream', () =>
            gateway.lines.some((l) => l.includes('"sse_opened"') && l.includes('standalone=1')));

        // A tool more, and the watched resource's text changed; written aside, then renamed.
        const file = join(dir, 'conformance.json');
        const definition = JSON.parse(readFileSync(file, 'utf8'));
        definition.tools.push({ name: 'test_reloaded_tool', description: 'Added by a reload',
                                inputSchema: { type: 'object' }, request: { builtin: 'test_simple_text' } });
        definition.resources.find((r) => r.uri === 'test://watched-resource').text = 'Reloaded content';
        writeFileSync(`${file}.tmp`, JSON.stringify(definition));
        renameSync(`${file}.tmp`, file);
        process.kill(gateway.child.pid, 'SIGHUP');

        await eventually('two notifications', () => heard.length >= 2);
        assert.deepEqual(heard, ['notifications/tools/list_changed',
                                 'notifications/resources/updated test://watched-resource']);
        const names = [];
        let cursor;
        do {
            const page = await client.listTools(cursor ? { cursor } : {});
            names.push(...page.tools.map((t) => t.name));
            cursor = page.nextCursor;
        } while (cursor);
        assert.ok(names.includes('test_reloaded_tool'), 'the new tool is listed');
        const read = await client.readResource({ uri: 'test://watched-resource' });
        assert.equal(read.contents[0].text, 'Reloaded content');
        await transport.terminateSession();
    } finally {
        await client?.close().catch(() => {});
        if (gateway) {
            gateway.child.kill('SIGTERM');
            assert.equal(await gateway.exited, 0, 'our gateway exits 0 on SIGTERM (no sanitizer report)');
        }
        rmSync(dir, { recursive: true, force: true });
    }
});
