// tests/tls/h2_reload.mjs — the Node side of tests/30_gateway_tls.sh, with
// Node's built-in http2 and tls modules only (no npm package):
//   1. an HTTP/2 session trusting only the test CA gets /healthz (ALPN h2);
//   2. the certificate files are replaced by the second pair and the
//      gateway is sent SIGHUP; new handshakes present the new serial (each
//      probe is a fresh handshake, until one does or a deadline passes);
//   3. the session opened before still answers, on its old certificate, and
//      so does an HTTP/1.1 keep-alive connection opened before (reused);
//   4. a key that is not the certificate's is written and SIGHUP sent: once
//      the gateway has logged tls_reload_failed, new handshakes still
//      present the second certificate.
// Usage: node h2_reload.mjs PORT CA GATEWAY_PID GATEWAY_LOG LIVE_CRT LIVE_KEY
//                           NEW_CRT NEW_KEY BAD_KEY OLD_SERIAL NEW_SERIAL
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';

const [port, caFile, pid, logFile, liveCrt, liveKey, newCrt, newKey, badKey, oldSerial, newSerial] =
    process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const RELOAD_MS = 10000;        // SIGHUP until the new state shows
const hex = (n) => Number(n).toString(16).toUpperCase().padStart(4, '0');

function check(condition, what) {
    if (!condition) {
        console.error(`FAIL (node): ${what}`);
        process.exit(1);
    }
    console.log(`ok (node): ${what}`);
}

// One fresh handshake; resolves with the served certificate's serial and ALPN.
function handshake() {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost',
                                     ALPNProtocols: ['h2', 'http/1.1'] }, () => {
            const result = { serial: socket.getPeerCertificate().serialNumber,
                             alpn: socket.alpnProtocol, version: socket.getProtocol() };
            socket.end();
            resolve(result);
        });
        socket.on('error', reject);
    });
}

// GET over HTTP/1.1 through `agent`; resolves with status, serial, reuse.
function get1(agent, path) {
    return new Promise((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port: Number(port), path, ca, servername: 'localhost',
                                agent }, (res) => {
            const serial = res.socket.getPeerCertificate().serialNumber;
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket, serial }));
        });
        req.on('error', reject);
    });
}

function get(session, path) {
    return new Promise((resolve, reject) => {
        const stream = session.request({ ':path': path });
        let body = '';
        let status = 0;
        stream.setEncoding('utf8');
        stream.on('response', (headers) => { status = headers[':status']; });
        stream.on('data', (chunk) => { body += chunk; });
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
        stream.end();
    });
}

async function until(what, test) {
    const deadline = Date.now() + RELOAD_MS;
    while (Date.now() < deadline) {
        if (await test())
            return;
        await new Promise((r) => setTimeout(r, 50));
    }
    check(false, what);
}

const session = http2.connect(`https://localhost:${port}`, { ca });
session.on('error', (e) => check(false, `the HTTP/2 session failed: ${e.message}`));
await new Promise((resolve) => session.once('connect', resolve));
check(session.alpnProtocol === 'h2', `ALPN negotiated h2 (got ${session.alpnProtocol})`);
check(session.socket.getPeerCertificate().serialNumber === hex(oldSerial), 'the first certificate is served');
let reply = await get(session, '/healthz');
check(reply.status === 200 && reply.body === '{"status":"ok"}', 'GET /healthz over HTTP/2 with the test CA');
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
let reply1 = await get1(agent, '/healthz');
check(reply1.status === 200 && reply1.serial === hex(oldSerial), 'GET /healthz over HTTP/1.1 keep-alive');
const first = await handshake();
check(first.version === 'TLSv1.3' || first.version === 'TLSv1.2', `TLS ${first.version}`);

fs.copyFileSync(newCrt, liveCrt);
fs.copyFileSync(newKey, liveKey);
process.kill(Number(pid), 'SIGHUP');
await until('new handshakes present the new certificate after SIGHUP',
            async () => (await handshake()).serial === hex(newSerial));
check(true, 'new handshakes present the new certificate after SIGHUP');
reply = await get(session, '/healthz');
check(reply.status === 200, 'the session opened before the reload still answers');
check(session.socket.getPeerCertificate().serialNumber === hex(oldSerial),
      'that session is still on the old certificate (same connection)');
reply1 = await get1(agent, '/healthz');
check(reply1.status === 200 && reply1.reused && reply1.serial === hex(oldSerial),
      'the HTTP/1.1 keep-alive connection opened before is reused, on the old certificate');
agent.destroy();

const failuresBefore = fs.readFileSync(logFile, 'utf8').split('tls_reload_failed').length;
fs.copyFileSync(badKey, liveKey);
process.kill(Number(pid), 'SIGHUP');
await until('the gateway logs tls_reload_failed for a mismatched pair',
            async () => fs.readFileSync(logFile, 'utf8').split('tls_reload_failed').length > failuresBefore);
check(true, 'the gateway logs tls_reload_failed for a mismatched pair');
const after = await handshake();
check(after.serial === hex(newSerial) && after.alpn === 'h2', 'the last good certificate stays after a bad pair');
reply = await get(session, '/healthz');
check(reply.status === 200, 'the first session still answers');
session.close();
