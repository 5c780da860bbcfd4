// tests/webhooks/verify-outbound.mjs IN — switchboard's outbound signatures
// (sb_wh_sign_standard, written by tests/38_workers_wh_verify_libs.c as
// JSON lines {"secret", "id", "timestamp", "body": base64, "signature"})
// checked by standardwebhooks' Webhook.verify (every line) and svix's
// Webhook.verify (the JSON bodies, which it parses). Each must verify as
// signed, and fail with one byte of the body changed, with another id, and
// under another secret. Exits 1 on any disagreement, or when IN has fewer
// than 10 lines.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';

if (process.argv.length !== 3) {
    console.error('usage: node verify-outbound.mjs IN');
    process.exit(2);
}
const lines = readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.length);
let failures = 0, checks = 0;
const fail = (what) => { failures++; console.error(`verify-outbound: ${what}`); };

function expect (ok, verify, what) {
    checks++;
    try {
        verify();
        if (!ok)
            fail(`${what}: verified, should not`);
    } catch (e) {
        if (ok)
            fail(`${what}: ${e.message}`);
    }
}

for (const text of lines) {
    const { secret, id, timestamp, body: b64, signature } = JSON.parse(text);
    const body = Buffer.from(b64, 'base64');
    const headers = { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
    const std = new StandardWebhook(secret);
    const other = new StandardWebhook('whsec_' + randomBytes(32).toString('base64'));
    const tampered = Buffer.from(body);
    if (tampered.length)
        tampered[tampered.length - 1] ^= 1;
    const grown = Buffer.concat([body, Buffer.from(' ')]);
    expect(true, () => std.verify(body, headers, { jsonParse: false }), `${id} standardwebhooks`);
    expect(false, () => std.verify(grown, headers, { jsonParse: false }), `${id} standardwebhooks, body grown`);
    if (body.length)
        expect(false, () => std.verify(tampered, headers, { jsonParse: false }), `${id} standardwebhooks, tampered`);
    expect(false, () => std.verify(body, { ...headers, 'webhook-id': id + 'x' }, { jsonParse: false }),
           `${id} standardwebhooks, another id`);
    expect(false, () => other.verify(body, headers, { jsonParse: false }), `${id} standardwebhooks, another secret`);
    let json = true;
    try { JSON.parse(body.toString('utf8')); } catch { json = false; }
    if (json) {
        const svix = new SvixWebhook(secret);
        const svixHeaders = { 'svix-id': id, 'svix-timestamp': String(timestamp), 'svix-signature': signature };
        expect(true, () => svix.verify(body.toString('utf8'), svixHeaders), `${id} svix`);
        expect(false, () => svix.verify(body.toString('utf8') + ' ', svixHeaders), `${id} svix, body grown`);
    }
}
if (lines.length < 10)
    fail(`${lines.length} signatures in ${process.argv[2]}, want at least 10`);
console.log(`verify-outbound: ${lines.length} signatures, ${checks} checks, ${failures} wrong`);
process.exit(failures ? 1 : 0);
