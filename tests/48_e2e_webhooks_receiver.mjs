// tests/48_e2e_webhooks_receiver.mjs LOG_FILE — a tenant's own endpoint for
// the webhook tests (tests/48_e2e_webhooks*.sh): an HTTP server on
// 127.0.0.1 (a free port, printed as "listening PORT") that verifies every
// delivery with the `standardwebhooks` library (Webhook.verify on the raw
// body and the webhook-* headers) and appends one JSON line per request to
// LOG_FILE: {"mode", "id": webhook-id, "verified", "type", "event", "error"}.
// POST /_control {"secret": "whsec_…", "mode": "ok"|"hang"|"reset"|"500"}
// sets the subscription's secret and how it answers:
//   ok     200 when the signature verifies, else 400
//   hang   never answers (the deliverer's timeout)
//   reset  drops the connection (RST) without an answer
//   500    answers 500
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

const logFile = process.argv[2];
let secret = null;
let mode = 'ok';

const server = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (request.url === '/_control') {
            const control = JSON.parse(body);
            if (control.secret)
                secret = control.secret;
            if (control.mode)
                mode = control.mode;
            response.writeHead(200, { 'content-type': 'application/json' });
            response.end(JSON.stringify({ mode }));
            return;
        }
        const line = { mode, id: request.headers['webhook-id'] ?? null, verified: false };
        try {
            const payload = new Webhook(secret).verify(body, request.headers);
            line.verified = true;
            line.type = payload.type;
            line.event = payload.event;
            line.data = payload.data;
        } catch (error) {
            line.error = String(error.message ?? error);
        }
        appendFileSync(logFile, JSON.stringify(line) + '\n');
        if (mode === 'hang')
            return;                         // never answered; the socket stays open
        if (mode === 'reset') {
            request.socket.resetAndDestroy();
            return;
        }
        if (mode === '500') {
            response.writeHead(500, { 'content-type': 'text/plain' });
            response.end('receiver down for the test');
            return;
        }
        response.writeHead(line.verified ? 200 : 400, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ received: line.verified }));
    });
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
