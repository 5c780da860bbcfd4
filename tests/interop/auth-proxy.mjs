// tests/interop/auth-proxy.mjs — a transparent HTTP proxy in front of one
// sb-gateway that adds `Authorization: Bearer <token>` to every request.
//
//   node auth-proxy.mjs --listen 127.0.0.1:PORT --target http://127.0.0.1:GW \
//                       --token-file FILE
//
// Why: the conformance CLI (`conformance server --url …`) cannot send extra
// headers, and the gateway must stay strict (no token, no service). This
// proxy stands where a load balancer would: every method and path is
// forwarded as is, the request and response bodies stream both ways (SSE
// included, each chunk flushed as it arrives), and every header is kept —
// Host and Origin too, so the gateway's DNS-rebinding checks see what the
// client sent. Only hop-by-hop headers (RFC 9110 §7.6.1) are dropped, and any
// Authorization the client sent is replaced by the farm's token. A client
// that goes away aborts the upstream request, so closing an SSE stream
// closes it at the gateway too.
//
// Ready: prints one JSON line {"event":"ready",…} on stdout once listening
// (the farm scripts wait for it). SIGTERM/SIGINT: stops listening, ends open
// streams, exits 0.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
    options: {
        listen: { type: 'string' },
        target: { type: 'string' },
        'token-file': { type: 'string' },
    },
});
if (!args.listen || !args.target || !args['token-file']) {
    console.error('usage: auth-proxy.mjs --listen HOST:PORT --target http://HOST:PORT --token-file FILE');
    process.exit(2);
}
const token = readFileSync(args['token-file'], 'utf8').trim();
if (!token) {
    console.error(`auth-proxy: ${args['token-file']} holds no token`);
    process.exit(2);
}
const target = new URL(args.target);
const split = args.listen.lastIndexOf(':');
const listenHost = args.listen.slice(0, split);
const listenPort = Number(args.listen.slice(split + 1));

// Hop-by-hop headers: meaningful for one connection only, never forwarded.
// Transfer-Encoding is dropped too: node re-frames each body itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection',
    'proxy-authorization', 'proxy-authenticate', 'te', 'trailer',
    'transfer-encoding', 'upgrade']);

// rawHeaders (flat [name, value, …], duplicates and case kept) minus the
// hop-by-hop ones, those the Connection header names, and `drop`.
function forwardable(raw, drop) {
    const named = new Set();
    for (let i = 0; i < raw.length; i += 2)
        if (raw[i].toLowerCase() === 'connection')
            for (const name of raw[i + 1].split(','))
                named.add(name.trim().toLowerCase());
    const out = [];
    for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toLowerCase();
        if (HOP_BY_HOP.has(name) || named.has(name) || drop.has(name))
            continue;
        out.push(raw[i], raw[i + 1]);
    }
    return out;
}

const agent = new http.Agent({ keepAlive: true });
let requests = 0;

const server = http.createServer((req, res) => {
    requests++;
    req.socket.setNoDelay(true);
    const headers = forwardable(req.rawHeaders, new Set(['authorization']));
    headers.push('Authorization', `Bearer ${token}`);
    const upstream = http.request({
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers,            // Host included, as the client sent it
        setHost: false,
        agent,
    }, (up) => {
        res.writeHead(up.statusCode, up.statusMessage, forwardable(up.rawHeaders, new Set()));
        res.flushHeaders();  // an SSE stream may send its first event much later
        up.pipe(res);        // chunk by chunk, with backpressure
        up.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
        if (!res.headersSent) {
            res.writeHead(502, { 'Content-Type': 'text/plain' });
            res.end(`auth-proxy: the gateway could not be reached (${err.code ?? err.message})\n`);
        } else {
            res.destroy();
        }
    });
    // The client went away before the answer ended: abort upstream as well.
    res.on('close', () => {
        if (!res.writableFinished)
            upstream.destroy();
    });
    req.pipe(upstream);
});

server.keepAliveTimeout = 5000;
server.listen(listenPort, listenHost, () => {
    const { port } = server.address();
    console.log(JSON.stringify({ event: 'ready', component: 'auth-proxy', listen: `${listenHost}:${port}`,
                                 target: target.origin }));
});

function shutdown(signal) {
    console.log(JSON.stringify({ event: 'stop', component: 'auth-proxy', signal, requests }));
    server.close(() => process.exit(0));
    server.closeAllConnections();   // open SSE streams would hold close() forever
    agent.destroy();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
